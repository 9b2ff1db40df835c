//! Cross-origin requests from browser apps on other origins (`--cors-origin`), off by default.
//! actix-cors answers preflights (before authentication: a preflight carries no credentials) and
//! adds the `Access-Control-*` headers; this module decides its policy and checks origins.

use actix_cors::Cors;
use actix_web::http::{Method, header};

/// The request headers a cross-origin request may send: credentials, bodies, retries,
/// conditional requests and content negotiation.
const ALLOWED_HEADERS: [header::HeaderName; 7] = [
    header::AUTHORIZATION,
    header::CONTENT_TYPE,
    header::ACCEPT,
    header::IF_MATCH,
    header::IF_NONE_MATCH,
    header::HeaderName::from_static("idempotency-key"),
    header::HeaderName::from_static("x-request-id"),
];

/// The response headers a cross-origin script may read, beyond the CORS-safelisted ones.
const EXPOSED_HEADERS: [header::HeaderName; 5] = [
    header::ETAG,
    header::LOCATION,
    header::RETRY_AFTER,
    header::HeaderName::from_static("idempotent-replayed"),
    header::HeaderName::from_static("x-request-id"),
];

/// How long a browser may cache a preflight's answer, in seconds.
const PREFLIGHT_MAX_AGE_SECS: usize = 600;

/// An origin `--cors-origin` accepts: `scheme://host[:port]` with no path, as browsers send it in
/// `Origin`, or `*` for any origin (without credentials).
pub fn parse_origin(raw: &str) -> Result<String, String> {
    let origin = raw.trim();
    if origin == "*" {
        return Ok(origin.to_owned());
    }
    let Some((scheme, authority)) = origin.split_once("://") else {
        return Err(format!(
            "{origin:?} is not an origin: give scheme://host[:port], e.g. https://app.example.com"
        ));
    };
    let scheme_ok = matches!(scheme, "http" | "https");
    let authority_ok = !authority.is_empty()
        && authority
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"-.:[]".contains(&byte));
    if !scheme_ok || !authority_ok {
        return Err(format!(
            "{origin:?} is not an origin: give http(s)://host[:port] with no path, e.g. \
             https://app.example.com"
        ));
    }
    Ok(origin.to_owned())
}

/// The CORS policy for `origins` (already checked by [`parse_origin`]); `None` when there are
/// none, so no `Access-Control-*` header is ever sent.
///
/// Listed origins may send credentials (`Access-Control-Allow-Credentials: true`, with the
/// origin echoed, never `*`). `*` admits every origin without credentials: a browser then sends
/// no cookies or HTTP-auth it manages itself, though a script may still set `Authorization`.
/// A request from an origin not listed gets no CORS headers, so the browser withholds the answer
/// from the script; its preflight is refused (400).
pub fn policy(origins: &[String]) -> Option<Cors> {
    if origins.is_empty() {
        return None;
    }
    let cors = Cors::default()
        .allowed_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allowed_headers(ALLOWED_HEADERS)
        .expose_headers(EXPOSED_HEADERS)
        .max_age(PREFLIGHT_MAX_AGE_SECS)
        .block_on_origin_mismatch(false);
    if origins.iter().any(|origin| origin == "*") {
        return Some(cors.allow_any_origin().send_wildcard());
    }
    Some(
        origins
            .iter()
            .fold(cors, |cors, origin| cors.allowed_origin(origin))
            .supports_credentials(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        for good in [
            "https://app.example.com",
            "http://127.0.0.1:3000",
            "*",
            "http://[::1]:8080",
        ] {
            assert_eq!(parse_origin(good).as_deref(), Ok(good));
        }
        for bad in [
            "app.example.com",
            "https://app.example.com/",
            "ftp://x",
            "https://",
            "",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }
}
