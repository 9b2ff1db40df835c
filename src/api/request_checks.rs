//! Checks on a request's head that run before anything else does with it: the `Host` it names
//! must be one we serve (so a forged host never reaches a generated link), and it may carry at
//! most one `Authorization` header (which one a proxy, a cache or we would read is anyone's guess).

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{ResponseError, web};

use crate::api::AppState;
use crate::api::links::requested_host;
use crate::error::ApiError;

/// Middleware for the whole app: 400 for a host not allowed or for two `Authorization` headers.
pub async fn check_request_head(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if let Some(error) = rejection(&req) {
        return Ok(req.into_response(error.error_response()));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

fn rejection(req: &ServiceRequest) -> Option<ApiError> {
    if let Some(state) = req.app_data::<web::Data<AppState>>() {
        let allowed = &state.http().allowed_hosts;
        if !allowed.is_empty() {
            let host = requested_host(req.request(), state.http().trust_proxy);
            if !host.is_some_and(|host| is_allowed_host(host, allowed)) {
                return Some(ApiError::InvalidHost);
            }
        }
    }
    if req
        .headers()
        .get_all(header::AUTHORIZATION)
        .nth(1)
        .is_some()
    {
        return Some(ApiError::MultipleAuthorization);
    }
    None
}

/// Django's `validate_host`: `host` without its port, compared case-insensitively with each
/// pattern; `*` matches anything, and `.example.com` matches `example.com` and its subdomains.
pub fn is_allowed_host(host: &str, patterns: &[String]) -> bool {
    let Some(domain) = domain_of(host) else {
        return false;
    };
    let domain = domain.to_ascii_lowercase();
    patterns.iter().any(|pattern| {
        let pattern = pattern.trim().to_ascii_lowercase();
        match pattern.strip_prefix('.') {
            _ if pattern == "*" => true,
            // `.example.org` itself starts with the dot a subdomain's suffix has.
            Some(parent) => domain == parent || domain.ends_with(&pattern),
            None => domain == pattern.trim_end_matches('.'),
        }
    })
}

/// The host part of `host[:port]`, without a trailing dot; an IPv6 literal keeps its brackets.
/// `None` for what cannot be a host (Django's `host_validation_re`, loosely).
fn domain_of(host: &str) -> Option<&str> {
    let host = host.trim();
    let domain = if host.starts_with('[') {
        let end = host.find(']')?;
        let port = &host[end + 1..];
        if !(port.is_empty()
            || port.starts_with(':') && port[1..].bytes().all(|b| b.is_ascii_digit()))
        {
            return None;
        }
        &host[..=end]
    } else {
        match host.rsplit_once(':') {
            Some((domain, port)) if port.bytes().all(|b| b.is_ascii_digit()) => domain,
            Some(_) => return None,
            None => host,
        }
    };
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    let plausible = !domain.is_empty()
        && domain.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'[' | b']')
        });
    plausible.then_some(domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(host: &str, patterns: &[&str]) -> bool {
        let patterns: Vec<String> = patterns.iter().map(|p| (*p).to_owned()).collect();
        is_allowed_host(host, &patterns)
    }

    #[test]
    fn hosts_match_as_in_django() {
        let patterns = ["api.example.com", ".example.org", "[::1]", "10.0.0.1"];
        for host in [
            "api.example.com",
            "API.Example.COM:8443",
            "api.example.com.",
            "example.org",
            "a.b.example.org:80",
            "[::1]:8000",
            "10.0.0.1",
        ] {
            assert!(allowed(host, &patterns), "{host}");
        }
        for host in [
            "example.com",
            "evil.com",
            "notexample.org",
            "api.example.com.evil.com",
            "api.example.com:http",
            "api.example.com/x",
            "",
            "[::2]",
        ] {
            assert!(!allowed(host, &patterns), "{host}");
        }
        assert!(allowed("anything.test:1", &["*"]));
        assert!(!allowed("bad host", &["*"]));
    }
}
