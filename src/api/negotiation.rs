//! Content negotiation: JSON is the only representation, optionally pretty-printed with
//! `Accept: application/json; indent=N`. Runs before authentication, as in DRF.

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

/// How responses to this request are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rendering {
    /// Spaces per level when pretty-printing; `None` for compact JSON.
    pub indent: Option<usize>,
}

/// How well a media range matches JSON: exact beats `application/*` beats `*/*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Specificity {
    Any,
    Application,
    Json,
}

/// Picks the rendering an `Accept` header asks for, or 406 when it rules JSON out.
pub fn from_accept(accept: Option<&str>) -> Result<Rendering, ApiError> {
    let Some(accept) = accept.map(str::trim).filter(|a| !a.is_empty()) else {
        return Ok(Rendering::default());
    };
    let mut best: Option<(u16, Specificity, Option<usize>)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let specificity = match media.as_str() {
            "application/json" => Specificity::Json,
            "application/*" => Specificity::Application,
            "*/*" | "*" => Specificity::Any,
            _ => continue,
        };
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
        let indent = if specificity == Specificity::Json {
            indent
        } else {
            None
        };
        let candidate = (quality, specificity, indent);
        if best.is_none_or(|(q, s, _)| (quality, specificity) > (q, s)) {
            best = Some(candidate);
        }
    }
    best.map(|(_, _, indent)| Rendering { indent })
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

/// The rendering for a request: `?format=json` overrides `Accept`; any other format is a 404.
pub fn for_request(query: &QueryPairs, accept: Option<&str>) -> Result<Rendering, ApiError> {
    match query.last("format") {
        Some("json") => Ok(Rendering::default()),
        Some(other) if !other.is_empty() => Err(ApiError::NotFound),
        _ => from_accept(accept),
    }
}

/// Middleware: decides the rendering (or answers 406) and pretty-prints JSON bodies on request.
pub async fn negotiate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok());
    let query = QueryPairs::parse(req.query_string());
    let rendering = match for_request(&query, accept) {
        Ok(rendering) => rendering,
        Err(error) => return Ok(req.into_response(error.error_response())),
    };
    req.extensions_mut().insert(rendering);
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
        from_accept(Some(accept)).unwrap().indent
    }

    #[test]
    fn json_and_wildcards_are_acceptable() {
        assert!(from_accept(None).is_ok());
        assert!(from_accept(Some("")).is_ok());
        assert!(from_accept(Some("*/*")).is_ok());
        assert!(from_accept(Some("application/*")).is_ok());
        assert!(from_accept(Some("text/html,application/xhtml+xml,*/*;q=0.8")).is_ok());
        assert!(from_accept(Some("Application/JSON; charset=utf-8")).is_ok());
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
                matches!(from_accept(Some(accept)), Err(ApiError::NotAcceptable)),
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
        assert!(for_request(&json, Some("text/html")).is_ok());
        let xml = QueryPairs::parse("format=xml");
        assert!(matches!(for_request(&xml, None), Err(ApiError::NotFound)));
        let empty = QueryPairs::parse("format=");
        assert!(for_request(&empty, None).is_ok());
    }

    #[test]
    fn pretty_printing_keeps_key_order_and_utf8() {
        let value: Value = serde_json::from_str(r#"{"b":1,"a":"é"}"#).unwrap();
        let pretty = String::from_utf8(pretty_json(&value, 4)).unwrap();
        assert_eq!(pretty, "{\n    \"b\": 1,\n    \"a\": \"é\"\n}");
    }
}
