//! Content negotiation: each route declares the media types it renders ([`MediaType`], JSON
//! first on every route today), and a request gets the one its `Accept` header (or `?format=`)
//! prefers, or 406. JSON can be pretty-printed with `Accept: application/json; indent=N`. Runs
//! before authentication, as in DRF. Also parses the query string, once, for the handlers.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, ResponseError};
use serde::Serialize;
use serde_json::Value;

use crate::api::query::QueryPairs;
use crate::error::ApiError;

/// Indentation beyond this is clamped: a client must not make us build huge bodies.
const MAX_INDENT: usize = 16;

/// A representation a route can render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaType {
    /// `type/subtype`, lower case.
    pub essence: &'static str,
    /// The `?format=` value that asks for it.
    pub format: &'static str,
}

impl MediaType {
    /// `application/json`, `?format=json`.
    pub const JSON: Self = Self {
        essence: "application/json",
        format: "json",
    };

    /// `text/csv`, `?format=csv`.
    pub const CSV: Self = Self {
        essence: "text/csv",
        format: "csv",
    };

    /// `application/x-ndjson`, `?format=ndjson`.
    pub const NDJSON: Self = Self {
        essence: "application/x-ndjson",
        format: "ndjson",
    };

    /// `text/event-stream`, `?format=event-stream`: Server-Sent Events.
    pub const EVENT_STREAM: Self = Self {
        essence: "text/event-stream",
        format: "event-stream",
    };

    fn major_type(self) -> &'static str {
        self.essence.split('/').next().unwrap_or_default()
    }
}

/// What the API's JSON resources render: JSON alone, as DRF's `JSONRenderer`.
pub const JSON_ONLY: &[MediaType] = &[MediaType::JSON];

/// What an export renders: CSV unless NDJSON is asked for.
pub const EXPORTS: &[MediaType] = &[MediaType::CSV, MediaType::NDJSON];

/// What the event stream renders.
pub const EVENT_STREAMS: &[MediaType] = &[MediaType::EVENT_STREAM];

/// How responses to this request are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rendering {
    /// The representation chosen.
    pub media: MediaType,
    /// Spaces per level when pretty-printing JSON; `None` for compact JSON.
    pub indent: Option<usize>,
}

/// How well a media range matches a media type: exact beats `type/*` beats `*/*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Specificity {
    Any,
    Type,
    Exact,
}

fn specificity(range: &str, media: MediaType) -> Option<Specificity> {
    match range {
        "*/*" | "*" => Some(Specificity::Any),
        _ if range == media.essence => Some(Specificity::Exact),
        _ => range
            .strip_suffix("/*")
            .filter(|major| *major == media.major_type())
            .map(|_| Specificity::Type),
    }
}

/// Picks, among what the route `renders` (its first is the default), the rendering an `Accept`
/// header prefers, or 406 when it rules every one out.
pub fn from_accept(accept: Option<&str>, renders: &[MediaType]) -> Result<Rendering, ApiError> {
    let first = renders.first().copied().ok_or(ApiError::NotAcceptable)?;
    let Some(accept) = accept.map(str::trim).filter(|a| !a.is_empty()) else {
        return Ok(Rendering {
            media: first,
            indent: None,
        });
    };
    // (quality, specificity, earlier in `renders`) decides; the last is negated so that the
    // route's own order breaks ties.
    let mut best: Option<(u16, Specificity, isize, Rendering)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let mut quality = 1000u16;
        let mut indent = None;
        for parameter in parts {
            let Some((key, value)) = parameter.split_once('=') else {
                continue;
            };
            let value = value.trim().trim_matches('"');
            match key.trim().to_ascii_lowercase().as_str() {
                "q" => quality = parse_quality(value),
                "indent" => indent = value.parse::<usize>().ok().map(|n| n.min(MAX_INDENT)),
                _ => {}
            }
        }
        if quality == 0 {
            continue;
        }
        for (position, media) in renders.iter().enumerate() {
            let Some(specificity) = specificity(&essence, *media) else {
                continue;
            };
            let rank = -isize::try_from(position).unwrap_or(isize::MAX);
            let rendering = Rendering {
                media: *media,
                indent: if specificity == Specificity::Exact && *media == MediaType::JSON {
                    indent
                } else {
                    None
                },
            };
            if best.is_none_or(|(q, s, r, _)| (quality, specificity, rank) > (q, s, r)) {
                best = Some((quality, specificity, rank, rendering));
            }
        }
    }
    best.map(|(_, _, _, rendering)| rendering)
        .ok_or(ApiError::NotAcceptable)
}

/// An HTTP quality value in thousandths; anything unparsable counts as 1.
fn parse_quality(value: &str) -> u16 {
    value
        .parse::<f32>()
        .ok()
        .filter(|q| q.is_finite())
        .map_or(1000, |q| (q.clamp(0.0, 1.0) * 1000.0).round() as u16)
}

/// The rendering for a request: `?format=` names one of what the route `renders`, overriding
/// `Accept`; a format the route does not render is a 404, as in DRF.
pub fn for_request(
    query: &QueryPairs,
    accept: Option<&str>,
    renders: &[MediaType],
) -> Result<Rendering, ApiError> {
    match query.last("format") {
        Some(format) if !format.is_empty() => renders
            .iter()
            .find(|media| media.format == format)
            .map(|media| Rendering {
                media: *media,
                indent: None,
            })
            .ok_or(ApiError::NotFound),
        _ => from_accept(accept, renders),
    }
}

/// Middleware: decides the rendering among what the route `renders` (or answers 406), leaves
/// the parsed query string for the handlers, and pretty-prints JSON bodies on request.
pub async fn negotiate(
    renders: &'static [MediaType],
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok());
    let query = QueryPairs::parse(req.query_string());
    let rendering = match for_request(&query, accept, renders) {
        Ok(rendering) => rendering,
        Err(error) => return Ok(req.into_response(error.error_response())),
    };
    req.extensions_mut().insert(rendering);
    req.extensions_mut().insert(query);
    let response = next.call(req).await?.map_into_boxed_body();
    match rendering.indent {
        Some(indent) if is_json(&response) => reindent(response, indent).await,
        _ => Ok(response),
    }
}

fn is_json(response: &ServiceResponse<BoxBody>) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"))
}

async fn reindent(
    response: ServiceResponse<BoxBody>,
    indent: usize,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let (request, response) = response.into_parts();
    let (response, body) = response.into_parts();
    let bytes = actix_web::body::to_bytes(body)
        .await
        .map_err(|_| ApiError::Internal("response body could not be read".into()))?;
    let pretty = match serde_json::from_slice::<Value>(&bytes) {
        Ok(value) => pretty_json(&value, indent),
        Err(_) => bytes.to_vec(),
    };
    Ok(ServiceResponse::new(
        request,
        response.set_body(BoxBody::new(pretty)),
    ))
}

fn pretty_json(value: &Value, indent: usize) -> Vec<u8> {
    let spaces = " ".repeat(indent);
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(spaces.as_bytes());
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    match value.serialize(&mut serializer) {
        Ok(()) => out,
        Err(_) => value.to_string().into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn indent(accept: &str) -> Option<usize> {
        from_accept(Some(accept), JSON_ONLY).unwrap().indent
    }

    fn json(accept: Option<&str>) -> Result<Rendering, ApiError> {
        from_accept(accept, JSON_ONLY)
    }

    #[test]
    fn json_and_wildcards_are_acceptable() {
        assert!(json(None).is_ok());
        assert!(json(Some("")).is_ok());
        assert!(json(Some("*/*")).is_ok());
        assert!(json(Some("application/*")).is_ok());
        assert!(json(Some("text/html,application/xhtml+xml,*/*;q=0.8")).is_ok());
        assert!(json(Some("Application/JSON; charset=utf-8")).is_ok());
    }

    #[test]
    fn anything_else_is_not_acceptable() {
        for accept in [
            "text/html",
            "application/xml",
            "application/json;q=0",
            "image/*",
        ] {
            assert!(
                matches!(json(Some(accept)), Err(ApiError::NotAcceptable)),
                "{accept}"
            );
        }
    }

    #[test]
    fn indent_comes_from_the_json_range_and_junk_is_ignored() {
        assert_eq!(indent("application/json; indent=4"), Some(4));
        assert_eq!(indent("application/json;indent=2, */*;q=0.1"), Some(2));
        assert_eq!(indent("application/json; indent=four"), None);
        assert_eq!(indent("application/json; indent=-1"), None);
        assert_eq!(indent("application/json; indent=100000"), Some(MAX_INDENT));
        assert_eq!(indent("*/*; indent=4"), None);
    }

    #[test]
    fn format_json_overrides_accept_and_other_formats_are_not_found() {
        let json = QueryPairs::parse("format=json");
        assert!(for_request(&json, Some("text/html"), JSON_ONLY).is_ok());
        let xml = QueryPairs::parse("format=xml");
        assert!(matches!(
            for_request(&xml, None, JSON_ONLY),
            Err(ApiError::NotFound)
        ));
        let empty = QueryPairs::parse("format=");
        assert!(for_request(&empty, None, JSON_ONLY).is_ok());
    }

    #[test]
    fn a_route_that_renders_more_picks_what_accept_prefers_and_defaults_to_its_first() {
        const CSV: MediaType = MediaType::CSV;
        let renders = &[MediaType::JSON, CSV];
        let picked = |accept| from_accept(Some(accept), renders).map(|r| r.media);
        assert_eq!(from_accept(None, renders).unwrap().media, MediaType::JSON);
        assert_eq!(picked("text/csv").unwrap(), CSV);
        assert_eq!(picked("text/*").unwrap(), CSV);
        assert_eq!(picked("*/*").unwrap(), MediaType::JSON);
        assert_eq!(
            picked("text/csv;q=0.5, application/json").unwrap(),
            MediaType::JSON
        );
        assert!(matches!(picked("text/html"), Err(ApiError::NotAcceptable)));
        let csv_indented = from_accept(Some("text/csv; indent=4"), renders).unwrap();
        assert_eq!((csv_indented.media, csv_indented.indent), (CSV, None));
        let csv = QueryPairs::parse("format=csv");
        assert_eq!(for_request(&csv, None, renders).unwrap().media, CSV);
    }

    #[test]
    fn pretty_printing_keeps_key_order_and_utf8() {
        let value: Value = serde_json::from_str(r#"{"b":1,"a":"é"}"#).unwrap();
        let pretty = String::from_utf8(pretty_json(&value, 4)).unwrap();
        assert_eq!(pretty, "{\n    \"b\": 1,\n    \"a\": \"é\"\n}");
    }
}
