//! The one place where failures become HTTP responses: a status, a JSON body in DRF's shape, and
//! the headers that go with them. Causes of 5xx responses are logged here and never sent.

use std::fmt::Write as _;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::auth::AuthError;
use crate::db::DbError;
use crate::domain::bulk::InvalidUpload;
use crate::domain::listing::InvalidQuery;
use crate::domain::station::InvalidStation;
use crate::domain::token::InvalidTokenRequest;
use crate::pagination::ListQueryError;

/// The realm named in `WWW-Authenticate` challenges.
pub const REALM: &str = "station-api";
/// What a client is told to wait when the database is unavailable.
const UNAVAILABLE_RETRY_AFTER_SECONDS: u64 = 5;

/// Every way a request can fail. Each variant's doc names its status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 406: nothing in `Accept` is JSON.
    #[error("Could not satisfy the request Accept header.")]
    NotAcceptable,
    /// 401: no credentials, malformed ones, or wrong ones; the text is DRF's message.
    #[error("{0}")]
    Unauthenticated(String),
    /// 403: authenticated, but the route needs more than the caller may do.
    #[error("You do not have permission to perform this action.")]
    PermissionDenied,
    /// 403: a device token bound to one station, writing a reading of another; holds the
    /// station it is bound to.
    #[error("This token may only write readings of station \"{0}\".")]
    OtherStation(String),
    /// 405: the route exists, the method does not.
    #[error("Method \"{0}\" not allowed.")]
    MethodNotAllowed(String),
    /// 404: no such route, or an id that is not an integer.
    #[error("Not found.")]
    NotFound,
    /// 404: an integer id with no reading behind it.
    #[error("No Station matches the given query.")]
    StationNotFound,
    /// 404: a page number that is malformed or past the end.
    #[error("Invalid page.")]
    InvalidPage,
    /// 415: a body in a format we do not parse; holds the media type as sent.
    #[error("Unsupported media type \"{0}\" in request.")]
    UnsupportedMediaType(String),
    /// 413: a body over the configured limit.
    #[error("Request body is too large.")]
    PayloadTooLarge,
    /// 408: the request (its head, or its body) did not arrive within the configured time; the
    /// connection closes.
    #[error("The request was not received in time.")]
    RequestTimeout,
    /// 400: a request HTTP cannot parse (answered by actix-http; see `api::parser_errors`).
    #[error("Malformed request.")]
    MalformedRequest,
    /// 431: a request head over actix-http's limit (answered by actix-http).
    #[error("Request header fields too large.")]
    RequestHeaderTooLarge,
    /// 400: the `Host` (or trusted `X-Forwarded-Host`) is not one of the allowed hosts.
    #[error("Invalid Host header.")]
    InvalidHost,
    /// 400: more than one `Authorization` header.
    #[error("Multiple Authorization headers.")]
    MultipleAuthorization,
    /// 400: list parameters with bad values, each with DRF-style messages.
    #[error("Invalid query parameters.")]
    InvalidQuery(InvalidQuery),
    /// 400: a body that is not well-formed JSON (or form data); holds the whole message.
    #[error("{0}")]
    MalformedBody(String),
    /// 400: well-formed, but some fields break the rules.
    #[error("Invalid input.")]
    Invalid(InvalidStation),
    /// 400: a token request whose fields break the rules.
    #[error("Invalid input.")]
    InvalidToken(InvalidTokenRequest),
    /// 404: an integer id with no token behind it.
    #[error("No Token matches the given query.")]
    TokenNotFound,
    /// 400: a bulk upload that is empty, too long, or has bad items.
    #[error("Invalid input.")]
    InvalidUpload(InvalidUpload),
    /// 400: an `Idempotency-Key` header that is not 1 to 255 visible ASCII characters.
    #[error("Idempotency-Key must be 1 to 255 visible ASCII characters.")]
    MalformedIdempotencyKey,
    /// 400: a cross-origin preflight the CORS policy refuses (actix-cors's reason).
    #[error("{0}.")]
    CorsRefused(String),
    /// 400: an `If-Match` or `If-None-Match` header that is neither `*` nor a list of entity tags.
    #[error("{0} must be \"*\" or a comma-separated list of entity tags such as \"5d41402abc4b\".")]
    MalformedPrecondition(&'static str),
    /// 412: `If-Match` names another version of the reading than the current one.
    #[error("The reading has changed since it was read: If-Match does not match its ETag.")]
    PreconditionFailed,
    /// 409: a request with this `Idempotency-Key` is still running.
    #[error("A request with this Idempotency-Key is still being processed.")]
    IdempotencyKeyInUse,
    /// 422: this `Idempotency-Key` was used with another request.
    #[error("This Idempotency-Key was already used with a different request.")]
    IdempotencyKeyReused,
    /// 429: too many failed logins; try again after this long.
    #[error("Request was throttled. Expected available in {} seconds.", whole_seconds(*.0))]
    Throttled(Duration),
    /// 400: a `Last-Event-ID` header or `last_event_id` parameter that is not a change id.
    #[error("Last-Event-ID must be a change id: a whole number, 0 or more.")]
    MalformedLastEventId,
    /// 503: as many event streams are open as `--max-stream-clients` allows.
    #[error("Too many event streams are open; try again later.")]
    TooManyStreams,
    /// 503: the database cannot be reached right now.
    #[error("Service temporarily unavailable.")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// 500: a bug or an unexpected failure; the cause is logged, not shown.
    #[error("A server error occurred.")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// `Retry-After` takes whole seconds; round up so a client never retries too early.
fn whole_seconds(wait: Duration) -> u64 {
    let seconds = wait.as_secs();
    if wait.subsec_nanos() > 0 || seconds == 0 {
        seconds + 1
    } else {
        seconds
    }
}

impl From<DbError> for ApiError {
    fn from(error: DbError) -> Self {
        match error {
            DbError::Unavailable(_) | DbError::UnsupportedUrl(_) | DbError::Connect { .. } => {
                Self::Unavailable(Box::new(error))
            }
            DbError::Query(_) | DbError::Migration(_) | DbError::TaskLost => {
                Self::Internal(Box::new(error))
            }
        }
    }
}

impl From<ListQueryError> for ApiError {
    fn from(error: ListQueryError) -> Self {
        match error {
            ListQueryError::Invalid(invalid) => Self::InvalidQuery(invalid),
            ListQueryError::Page(_) => Self::InvalidPage,
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Header(_) | AuthError::InvalidCredentials | AuthError::InvalidToken => {
                Self::Unauthenticated(error.to_string())
            }
            AuthError::Forbidden => Self::PermissionDenied,
            AuthError::Throttled { retry_after } => Self::Throttled(retry_after),
            AuthError::Database(db) => db.into(),
            AuthError::Verification => Self::Internal(Box::new(error)),
        }
    }
}

/// The body of every error but field validation: `{"detail": "..."}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"detail": "Not found."}))]
pub struct ErrorDetail {
    /// A human-readable explanation, in DRF's wording.
    pub detail: String,
}

/// A 400 for field rules: each failing field maps to its messages; a body that is not an object
/// reports under `non_field_errors`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"lat": ["Ensure this value is less than or equal to 90."]}))]
pub struct ValidationErrors {
    /// Problems with `name`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(min_items = 1)]
    pub name: Vec<String>,
    /// Problems with `timestamp`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(min_items = 1)]
    pub timestamp: Vec<String>,
    /// Problems with `temperature`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(min_items = 1)]
    pub temperature: Vec<String>,
    /// Problems with `lat`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(min_items = 1)]
    pub lat: Vec<String>,
    /// Problems with `lon`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(min_items = 1)]
    pub lon: Vec<String>,
    /// Problems with the body as a whole.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(min_items = 1)]
    pub non_field_errors: Vec<String>,
}

/// `{"parameter": ["message", …]}` for a list request with bad parameters.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"timestamp__gte": ["Enter a whole number."],
                          "ordering": ["Select a valid choice. colour is not one of the available choices (id, timestamp, temperature, name, each optionally prefixed with -)."]}))]
pub struct QueryParameterErrors(std::collections::BTreeMap<String, Vec<String>>);

fn field_errors_body(errors: &[(&'static str, String)]) -> Value {
    let mut body = Map::new();
    for (field, message) in errors {
        let messages = body
            .entry((*field).to_owned())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = messages {
            list.push(Value::String(message.clone()));
        }
    }
    Value::Object(body)
}

/// The full cause chain of an error, for the log.
fn cause_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

impl ApiError {
    /// The JSON body this error is answered with.
    pub fn body(&self) -> Value {
        match self {
            Self::Invalid(invalid) => field_errors_body(invalid.errors()),
            Self::InvalidQuery(invalid) => field_errors_body(invalid.errors()),
            Self::InvalidToken(invalid) => field_errors_body(invalid.errors()),
            Self::InvalidUpload(InvalidUpload::Whole(invalid)) => {
                field_errors_body(invalid.errors())
            }
            Self::InvalidUpload(InvalidUpload::Items(items)) => Value::Array(
                items
                    .iter()
                    .map(|item| {
                        item.as_ref().map_or_else(
                            || Value::Object(Map::new()),
                            |invalid| field_errors_body(invalid.errors()),
                        )
                    })
                    .collect(),
            ),
            other => serde_json::json!({ "detail": other.to_string() }),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            Self::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Self::PermissionDenied | Self::OtherStation(_) => StatusCode::FORBIDDEN,
            Self::IdempotencyKeyInUse => StatusCode::CONFLICT,
            Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::NotFound | Self::StationNotFound | Self::TokenNotFound | Self::InvalidPage => {
                StatusCode::NOT_FOUND
            }
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::RequestHeaderTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::MalformedBody(_)
            | Self::Invalid(_)
            | Self::InvalidToken(_)
            | Self::InvalidUpload(_)
            | Self::MalformedIdempotencyKey
            | Self::MalformedLastEventId
            | Self::CorsRefused(_)
            | Self::MalformedPrecondition(_)
            | Self::InvalidQuery(_)
            | Self::MalformedRequest
            | Self::InvalidHost
            | Self::MultipleAuthorization => StatusCode::BAD_REQUEST,
            Self::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) | Self::TooManyStreams => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Internal(cause) => {
                tracing::error!(cause = %cause_chain(cause.as_ref()), "request failed");
            }
            Self::Unavailable(cause) => {
                tracing::warn!(cause = %cause_chain(cause.as_ref()), "database unavailable");
            }
            _ => {}
        }
        let body = self.body();
        let mut response = HttpResponse::build(self.status_code());
        match self {
            Self::Unauthenticated(_) => {
                let challenge =
                    actix_web_httpauth::headers::www_authenticate::basic::Basic::with_realm(REALM);
                response.insert_header((header::WWW_AUTHENTICATE, challenge.to_string()));
            }
            Self::Throttled(wait) => {
                response.insert_header((header::RETRY_AFTER, whole_seconds(*wait)));
            }
            Self::Unavailable(_) | Self::TooManyStreams => {
                response.insert_header((header::RETRY_AFTER, UNAVAILABLE_RETRY_AFTER_SECONDS));
            }
            _ => {}
        }
        response
            .insert_header((
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ))
            .body(body.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_waits_round_up_to_whole_seconds() {
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_secs(6)), 6);
        assert_eq!(whole_seconds(Duration::from_millis(5100)), 6);
        assert_eq!(
            ApiError::Throttled(Duration::from_millis(5100)).to_string(),
            "Request was throttled. Expected available in 6 seconds."
        );
    }
}
