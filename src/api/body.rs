//! Reading request bodies: JSON or form data, within the size limit, into a JSON value that
//! `domain` parses. Errors come out in the contract's order: 415, then 413, then 400.

use actix_web::http::header;
use actix_web::{HttpRequest, web};
use futures_util::StreamExt as _;
use serde_json::{Map, Value};

use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyFormat {
    Json,
    Form,
}

fn media_type(req: &HttpRequest) -> Option<String> {
    req.headers().get(header::CONTENT_TYPE).map(|value| {
        String::from_utf8_lossy(value.as_bytes())
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    })
}

fn declared_length(req: &HttpRequest) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse().ok())
}

/// Reads the body of `req` as a JSON value. An empty body is an empty object (as in DRF).
pub async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Value, ApiError> {
    let declared = declared_length(req);
    // In HTTP/1.1 a request without Content-Length or Transfer-Encoding has no body.
    let announces_body = declared.map_or(
        req.headers().contains_key(header::TRANSFER_ENCODING),
        |length| length > 0,
    );
    let media_type = media_type(req);
    let format = match media_type.as_deref() {
        Some("application/json") => Some(BodyFormat::Json),
        Some("application/x-www-form-urlencoded") => Some(BodyFormat::Form),
        _ => None,
    };
    let unsupported = || ApiError::UnsupportedMediaType(media_type.clone().unwrap_or_default());
    if format.is_none() && announces_body {
        return Err(unsupported());
    }
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(ApiError::PayloadTooLarge);
    }
    let mut bytes = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| {
            ApiError::MalformedBody("Parse error - the request body could not be read".to_owned())
        })?;
        if bytes.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    if bytes.is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    match format {
        Some(BodyFormat::Json) => serde_json::from_slice(&bytes)
            .map_err(|error| ApiError::MalformedBody(format!("JSON parse error - {error}"))),
        Some(BodyFormat::Form) => parse_form(&bytes),
        None => Err(unsupported()),
    }
}

/// Form fields become JSON strings; a repeated key keeps its last value, as Django's
/// `QueryDict.get` does.
fn parse_form(bytes: &[u8]) -> Result<Value, ApiError> {
    if std::str::from_utf8(bytes).is_err() {
        return Err(ApiError::MalformedBody(
            "Form parse error - the body is not valid UTF-8".to_owned(),
        ));
    }
    let object: Map<String, Value> = form_urlencoded::parse(bytes)
        .map(|(key, value)| (key.into_owned(), Value::String(value.into_owned())))
        .collect();
    Ok(Value::Object(object))
}
