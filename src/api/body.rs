//! Reading request bodies: JSON or form data, within the size limit, into a JSON value that
//! `domain` parses; for a create, also a bulk upload (a JSON array, CSV or NDJSON), read whole
//! but not yet parsed. Errors come out in the contract's order: 415, then 413, then 400.

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
    payload: web::Payload,
    limit: usize,
) -> Result<Value, ApiError> {
    let media_type = media_type(req);
    let format = match media_type.as_deref() {
        Some("application/json") => Some(BodyFormat::Json),
        Some("application/x-www-form-urlencoded") => Some(BodyFormat::Form),
        _ => None,
    };
    let unsupported = || ApiError::UnsupportedMediaType(media_type.clone().unwrap_or_default());
    let format = refuse_unsupported(req, format, unsupported)?;
    let bytes = read_within(req, payload, |_| limit, limit).await?;
    if bytes.is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    match format {
        Some(BodyFormat::Json) => parse_json(&bytes),
        Some(BodyFormat::Form) => parse_form(&bytes),
        None => Err(unsupported()),
    }
}

/// A JSON body as a value.
pub fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|error| ApiError::MalformedBody(format!("JSON parse error - {error}")))
}

/// `format`, unless a body is announced in a format we do not read (415). A request without a
/// body needs no media type.
fn refuse_unsupported<F>(
    req: &HttpRequest,
    format: Option<F>,
    unsupported: impl FnOnce() -> ApiError,
) -> Result<Option<F>, ApiError> {
    // In HTTP/1.1 a request without Content-Length or Transfer-Encoding has no body.
    let announces_body = declared_length(req).map_or(
        req.headers().contains_key(header::TRANSFER_ENCODING),
        |length| length > 0,
    );
    if format.is_none() && announces_body {
        return Err(unsupported());
    }
    Ok(format)
}

/// The formats a create (`POST /station/`) reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateFormat {
    /// `application/json`: one object, or an array of them (a bulk upload).
    Json,
    /// `application/x-www-form-urlencoded`: one reading.
    Form,
    /// `text/csv`: a header row naming the fields, then one reading a row.
    Csv,
    /// `application/x-ndjson`: one JSON object a line.
    Ndjson,
}

/// A create's body, read whole within its limit, not yet parsed: what an idempotent retry is
/// compared by.
#[derive(Debug)]
pub struct CreateBody {
    /// How the body is written.
    pub format: CreateFormat,
    /// The body as sent.
    pub bytes: web::Bytes,
}

/// The size limits of a create's body.
#[derive(Debug, Clone, Copy)]
pub struct CreateLimits {
    /// One reading (an object or form fields).
    pub single: usize,
    /// A bulk upload (a JSON array, CSV or NDJSON).
    pub bulk: usize,
}

/// Reads a create's body: one reading as JSON or form fields within `limits.single`, or a bulk
/// upload within `limits.bulk`. JSON is a bulk upload when it is an array, which its first
/// character tells, so a single object is still held to the single limit.
pub async fn read_create_body(
    req: &HttpRequest,
    payload: web::Payload,
    limits: CreateLimits,
) -> Result<CreateBody, ApiError> {
    let media_type = media_type(req);
    let format = match media_type.as_deref() {
        Some("application/json") => Some(CreateFormat::Json),
        Some("application/x-www-form-urlencoded") => Some(CreateFormat::Form),
        Some("text/csv") => Some(CreateFormat::Csv),
        Some("application/x-ndjson") => Some(CreateFormat::Ndjson),
        _ => None,
    };
    let unsupported = || ApiError::UnsupportedMediaType(media_type.clone().unwrap_or_default());
    // A bodiless create is an empty JSON object, as in DRF: every field is required.
    let format = refuse_unsupported(req, format, unsupported)?.unwrap_or(CreateFormat::Json);
    let largest = match format {
        CreateFormat::Form => limits.single,
        CreateFormat::Json | CreateFormat::Csv | CreateFormat::Ndjson => limits.bulk,
    };
    let limit_for = |start: &[u8]| match format {
        CreateFormat::Json if !starts_an_array(start) => limits.single,
        _ => largest,
    };
    let bytes = read_within(req, payload, limit_for, largest).await?;
    Ok(CreateBody { format, bytes })
}

/// Whether a JSON text beginning with `start` is an array.
fn starts_an_array(start: &[u8]) -> bool {
    start
        .iter()
        .find(|byte| !byte.is_ascii_whitespace())
        .is_some_and(|byte| *byte == b'[')
}

/// Reads the whole body of `req`: at most `largest` bytes, and at most what `limit_for` says for
/// a body beginning as this one does; 413 past either, as soon as it is known.
async fn read_within(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit_for: impl Fn(&[u8]) -> usize,
    largest: usize,
) -> Result<web::Bytes, ApiError> {
    let declared = declared_length(req);
    if declared.is_some_and(|length| length > largest as u64) {
        return Err(ApiError::PayloadTooLarge);
    }
    let declared = declared.and_then(|length| usize::try_from(length).ok());
    // Room for the whole body at once when its length is announced: no copy as it grows.
    let mut bytes = web::BytesMut::with_capacity(declared.unwrap_or(0));
    // Known once the body shows how it begins, past any leading white space.
    let mut decided_limit = None;
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| {
            ApiError::MalformedBody("Parse error - the request body could not be read".to_owned())
        })?;
        if bytes.is_empty() && Some(chunk.len()) == declared {
            // The whole body in one chunk: kept as it came, not copied.
            if chunk.len() > limit_for(&chunk).min(largest) {
                return Err(ApiError::PayloadTooLarge);
            }
            return Ok(chunk);
        }
        bytes.extend_from_slice(&chunk);
        let limit = match decided_limit {
            Some(limit) => limit,
            None => {
                let limit = limit_for(&bytes).min(largest);
                if bytes.iter().any(|byte| !byte.is_ascii_whitespace()) {
                    decided_limit = Some(limit);
                }
                limit
            }
        };
        if bytes.len() > limit {
            return Err(ApiError::PayloadTooLarge);
        }
    }
    Ok(bytes.freeze())
}

/// Form fields become JSON strings; a repeated key keeps its last value, as Django's
/// `QueryDict.get` does.
pub fn parse_form(bytes: &[u8]) -> Result<Value, ApiError> {
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
