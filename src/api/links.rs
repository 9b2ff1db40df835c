//! Absolute URLs for hyperlinks (`url`, `next`, `previous`, `Location`), built from the request as
//! DRF's `build_absolute_uri` does, but trusting proxy headers only when configured to.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::net::IpAddr;

use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderMap};
use actix_web::{FromRequest, HttpRequest, web};

use crate::api::AppState;

/// The path of the station collection.
pub const STATIONS_PATH: &str = "/station/";

/// `scheme://host` of the request, as the client sees the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin(String);

fn first_header_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(',').next())
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

/// Accepts what may appear in a host name, an IPv6 literal and a port; nothing that could break
/// out of a URL.
fn is_plausible_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'[' | b']')
        })
}

/// The host (with its port, if any) the client addressed: the proxy's `X-Forwarded-Host` with
/// `trust_proxy`, else `Host`, else the request target's authority. Unchecked.
pub fn requested_host(req: &HttpRequest, trust_proxy: bool) -> Option<&str> {
    let headers = req.headers();
    trust_proxy
        .then(|| first_header_value(headers, "x-forwarded-host"))
        .flatten()
        .or_else(|| headers.get(header::HOST).and_then(|h| h.to_str().ok()))
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
}

impl Origin {
    /// The origin of `req`; proxy headers count only with `trust_proxy`.
    pub fn of(req: &HttpRequest, trust_proxy: bool) -> Self {
        let headers = req.headers();
        let forwarded = |name| {
            if trust_proxy {
                first_header_value(headers, name)
            } else {
                None
            }
        };
        let scheme = match forwarded("x-forwarded-proto") {
            Some(proto) if proto.eq_ignore_ascii_case("https") => "https",
            _ => "http",
        };
        let host = requested_host(req, trust_proxy)
            .filter(|host| is_plausible_host(host))
            .map_or_else(|| req.app_config().host().to_owned(), str::to_owned);
        Self(format!("{scheme}://{host}"))
    }

    /// The hyperlink of one reading.
    pub fn station_url(&self, id: i64) -> String {
        // Built by hand: a list page makes one per reading, and `format!` costs several times more.
        let mut digits = itoa::Buffer::new();
        let id = digits.format(id);
        let mut url = String::with_capacity(self.0.len() + STATIONS_PATH.len() + id.len() + 1);
        url.push_str(&self.0);
        url.push_str(STATIONS_PATH);
        url.push_str(id);
        url.push('/');
        url
    }

    /// The hyperlink of the collection.
    pub fn stations_url(&self) -> String {
        format!("{}{STATIONS_PATH}", self.0)
    }

    /// `scheme://host`, to put paths after.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromRequest for Origin {
    type Error = Infallible;
    type Future = Ready<Result<Self, Infallible>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let trust_proxy = req
            .app_data::<web::Data<AppState>>()
            .is_some_and(|state| state.http().trust_proxy);
        ready(Ok(Self::of(req, trust_proxy)))
    }
}

/// The client's address: the peer, or with `trust_proxy` the address the proxy reports (the
/// right-most `X-Forwarded-For` entry, the one our own proxy appended).
pub fn client_address(
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    trust_proxy: bool,
) -> Option<IpAddr> {
    if trust_proxy {
        let forwarded = headers
            .get("x-forwarded-for")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.rsplit(',').next())
            .and_then(|last| last.trim().parse().ok());
        if forwarded.is_some() {
            return forwarded;
        }
    }
    peer
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn the_host_header_names_the_origin() {
        let req = TestRequest::default()
            .insert_header((header::HOST, "example.com:8000"))
            .to_http_request();
        assert_eq!(
            Origin::of(&req, false).station_url(4),
            "http://example.com:8000/station/4/"
        );
    }

    #[test]
    fn proxy_headers_count_only_when_trusted() {
        let req = TestRequest::default()
            .insert_header((header::HOST, "internal:8000"))
            .insert_header(("x-forwarded-proto", "https"))
            .insert_header(("x-forwarded-host", "api.example.com"))
            .to_http_request();
        assert_eq!(
            Origin::of(&req, false).stations_url(),
            "http://internal:8000/station/"
        );
        assert_eq!(
            Origin::of(&req, true).stations_url(),
            "https://api.example.com/station/"
        );
    }

    #[test]
    fn a_hostile_host_header_is_not_copied_into_links() {
        let req = TestRequest::default()
            .insert_header((header::HOST, "evil.com/\"><script>"))
            .to_http_request();
        assert!(!Origin::of(&req, false).stations_url().contains("evil"));
    }

    #[test]
    fn forwarded_client_addresses_count_only_when_trusted() {
        let req = TestRequest::default()
            .insert_header(("x-forwarded-for", "10.0.0.1, 192.0.2.7"))
            .to_http_request();
        let peer = Some("127.0.0.1".parse().unwrap());
        assert_eq!(client_address(req.headers(), peer, false), peer);
        assert_eq!(
            client_address(req.headers(), peer, true),
            Some("192.0.2.7".parse().unwrap())
        );
    }
}
