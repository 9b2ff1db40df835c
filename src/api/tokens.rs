//! `/tokens/` and `/tokens/{id}/`: staff issue, list, read and revoke device tokens. A key is
//! shown once, in the answer to the POST that made it; only its hash is stored.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use crate::api::body::read_body;
use crate::api::guard::Session;
use crate::api::links::Origin;
use crate::api::query::QueryPairs;
use crate::api::stations::parse_id;
use crate::auth::token::{NewKey, now_unix_seconds};
use crate::db::models::{NewTokenRow, TokenRow};
use crate::db::{DbConnection, QueryResult, token_repository};
use crate::domain::listing::InvalidQuery;
use crate::domain::token::{LABEL_MAX_CHARS, NewToken, SCOPE_NAMES, Scopes};
use crate::error::{ApiError, ErrorDetail, QueryParameterErrors};
use crate::pagination::{ListUrl, PageRequest, PagedList};

/// The path of the token collection.
pub const TOKENS_PATH: &str = "/tokens/";

/// A device token, as the API shows it: never its key.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"url": "http://127.0.0.1:8000/tokens/1/", "id": 1,
    "label": "pi-kitchen", "scopes": ["write"], "station": "Kitchen", "prefix": "3f9a2c1b",
    "created": 1764720000, "last_used": null, "expires": null}))]
pub struct Token {
    /// The absolute URL of this token.
    #[schema(format = "uri", example = "http://127.0.0.1:8000/tokens/1/")]
    pub url: String,
    /// The token's id; ids are never reused.
    #[schema(example = 1, minimum = 1)]
    pub id: i64,
    /// What the token is for.
    #[schema(example = "pi-kitchen")]
    pub label: String,
    /// What it may do: `read` (GET, HEAD, OPTIONS on readings), `write` (POST readings).
    #[schema(example = json!(["write"]))]
    pub scopes: Vec<String>,
    /// The one station whose readings it may read and write; null for any.
    #[schema(required = true, example = "Kitchen")]
    pub station: Option<String>,
    /// The key's first characters, to recognise it by; not a secret.
    #[schema(example = "3f9a2c1b")]
    pub prefix: String,
    /// When it was issued, in Unix seconds.
    #[schema(example = 1_764_720_000_i64)]
    pub created: i64,
    /// When it was last used, in Unix seconds (written at most once a minute); null if never.
    #[schema(required = true, example = json!(null))]
    pub last_used: Option<i64>,
    /// When it stops working, in Unix seconds; null for never.
    #[schema(required = true, example = json!(null))]
    pub expires: Option<i64>,
}

impl Token {
    /// The wire form of a stored row, hyperlinked from `origin`.
    pub fn from_row(row: TokenRow, origin: &Origin) -> Self {
        let scopes = Scopes::from_stored(&row.scopes)
            .map(|scopes| scopes.names().into_iter().map(str::to_owned).collect())
            .unwrap_or_default();
        Self {
            url: format!("{}{TOKENS_PATH}{}/", origin.as_str(), row.id),
            id: row.id,
            label: row.label,
            scopes,
            station: row.station,
            prefix: row.prefix,
            created: row.created,
            last_used: row.last_used,
            expires: row.expires,
        }
    }
}

/// A token just issued: its representation and, this once, its key.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedToken {
    /// The token.
    #[serde(flatten)]
    pub token: Token,
    /// The key to send as `Authorization: Token <key>` (or `Bearer <key>`). Shown only here.
    #[schema(example = "3f9a2c1b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a")]
    pub key: String,
}

/// A token to issue.
#[derive(Debug, ToSchema)]
#[schema(example = json!({"label": "pi-kitchen", "scopes": ["write"], "station": "Kitchen",
    "expires": null}))]
#[allow(
    dead_code,
    reason = "exists only to describe the body in the OpenAPI document"
)]
pub struct TokenInput {
    /// What the token is for: not blank, at most 64 characters.
    #[schema(example = "pi-kitchen", min_length = 1, max_length = 64)]
    label: String,
    /// At least one of `read` and `write`.
    #[schema(min_items = 1, example = json!(["write"]))]
    scopes: Vec<ScopeName>,
    /// Bind the token to one station name; null (the default) for any.
    #[schema(required = false, example = "Kitchen", min_length = 1, max_length = 64)]
    station: Option<String>,
    /// When it stops working, in Unix seconds, in the future; null (the default) for never.
    #[schema(required = false, example = json!(null))]
    expires: Option<i64>,
}

/// A scope a token may hold.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(
    dead_code,
    reason = "exists only to describe the body in the OpenAPI document"
)]
pub enum ScopeName {
    /// GET, HEAD and OPTIONS on readings.
    Read,
    /// POST readings.
    Write,
}

/// A 400 body for a token request: a parse error (`detail`) or field errors.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
#[allow(
    dead_code,
    reason = "exists only to describe the body in the OpenAPI document"
)]
pub enum TokenBadRequestBody {
    /// The body could not be parsed.
    Detail(ErrorDetail),
    /// Some fields break the rules.
    Fields(TokenFieldErrors),
}

/// A 400 for a token's field rules: each failing field maps to its messages.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"scopes": ["\"admin\" is not a valid choice."]}))]
#[allow(
    dead_code,
    reason = "exists only to describe the body in the OpenAPI document"
)]
pub struct TokenFieldErrors {
    /// Problems with `label`.
    #[schema(required = false, min_items = 1)]
    label: Vec<String>,
    /// Problems with `scopes`.
    #[schema(required = false, min_items = 1)]
    scopes: Vec<String>,
    /// Problems with `station`.
    #[schema(required = false, min_items = 1)]
    station: Vec<String>,
    /// Problems with `expires`.
    #[schema(required = false, min_items = 1)]
    expires: Vec<String>,
    /// Problems with the body as a whole.
    #[schema(required = false, min_items = 1)]
    non_field_errors: Vec<String>,
}

/// One page of tokens, DRF's `PageNumberPagination` envelope.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaginatedTokenList {
    /// How many tokens exist (absent with `cursor`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = 3, minimum = 0, nullable = false)]
    pub count: Option<i64>,
    /// The next page's URL, or null on the last page.
    #[schema(required = true, format = "uri")]
    pub next: Option<String>,
    /// The previous page's URL, or null on the first page.
    #[schema(required = true, format = "uri")]
    pub previous: Option<String>,
    /// This page's tokens, by id.
    pub results: Vec<Token>,
}

/// The list's query parameters, as the OpenAPI document shows them.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct TokenListParameters {
    /// 1-based page number, or `last`; pages past the end are 404.
    #[param(example = "2", pattern = "^([1-9][0-9]*|last)?$")]
    page: Option<String>,
    /// Keyset paging: an empty value starts at the beginning; `next` and `previous` carry the
    /// tokens to follow.
    #[param(example = "")]
    cursor: Option<String>,
    /// Tokens per page (default 10).
    #[param(minimum = 1, maximum = 1000, example = 100)]
    page_size: Option<i64>,
}

/// Every token, by id.
#[derive(Debug, Clone, Copy)]
struct TokenList;

impl PagedList for TokenList {
    type Row = TokenRow;
    type Key = i64;

    fn order_name(&self) -> String {
        "tokens:id".to_owned()
    }

    fn fits(&self, _: &i64) -> bool {
        true
    }

    fn key_of(&self, row: &TokenRow) -> i64 {
        row.id
    }

    fn count(&self, conn: &mut DbConnection) -> QueryResult<i64> {
        token_repository::count(conn)
    }

    fn rows_at(
        &self,
        conn: &mut DbConnection,
        offset: i64,
        limit: i64,
    ) -> QueryResult<Vec<TokenRow>> {
        token_repository::rows_at(conn, offset, limit)
    }

    fn rows_beyond(
        &self,
        conn: &mut DbConnection,
        boundary: Option<&i64>,
        backwards: bool,
        limit: i64,
    ) -> QueryResult<Vec<TokenRow>> {
        token_repository::rows_beyond(conn, boundary.copied(), backwards, limit)
    }
}

/// List device tokens (staff only), 10 a page; never their keys.
#[utoipa::path(
    get,
    path = "/tokens/",
    operation_id = "list_tokens",
    tag = "tokens",
    params(TokenListParameters),
    responses(
        (status = 200, description = "One page of tokens.", body = PaginatedTokenList),
        (status = 400, description = "A parameter has a bad value.", body = QueryParameterErrors),
        (status = 404, description = "The page does not exist (`Invalid page.`).", body = ErrorDetail),
    )
)]
pub async fn list_tokens(
    query: QueryPairs,
    session: Session,
    origin: Origin,
) -> Result<HttpResponse, ApiError> {
    let state = session.state();
    let request = PageRequest::parse(
        &query,
        state.page_sizes(),
        state.cursors(),
        &TokenList,
        InvalidQuery::default(),
    )?;
    let page = session
        .read(move |conn| request.read(conn, &TokenList))
        .await?
        .ok_or(ApiError::InvalidPage)?;
    let links = page.links(
        &ListUrl::new(origin.as_str(), TOKENS_PATH, &query),
        state.cursors(),
    );
    Ok(HttpResponse::Ok().json(PaginatedTokenList {
        count: page.count,
        next: links.next,
        previous: links.previous,
        results: page
            .rows
            .into_iter()
            .map(|row| Token::from_row(row, &origin))
            .collect(),
    }))
}

/// Issue a device token (staff only). The answer holds its key, shown this once.
#[utoipa::path(
    post,
    path = "/tokens/",
    operation_id = "create_token",
    tag = "tokens",
    request_body(content((TokenInput = "application/json"))),
    responses(
        (status = 201, description = "Issued; `key` is shown only here.", body = IssuedToken,
            headers(("Location" = String, description = "The new token's URL."))),
        (status = 400, description = "Malformed body or invalid fields.",
            body = inline(TokenBadRequestBody)),
        (status = 413, description = "The body is over the size limit.", body = ErrorDetail),
        (status = 415, description = "The body is neither JSON nor form data.", body = ErrorDetail),
    )
)]
pub async fn create_token(
    req: HttpRequest,
    payload: web::Payload,
    session: Session,
    origin: Origin,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(&req, payload, session.state().http().max_body_bytes).await?;
    let now = now_unix_seconds();
    let new_token = NewToken::parse(&body, now).map_err(ApiError::InvalidToken)?;
    let key = NewKey::generate();
    let (hash, prefix) = (key.hash(), key.prefix().to_owned());
    let row = session
        .write(move |conn| {
            let row = NewTokenRow::new(&new_token, hash.as_ref(), &prefix, now);
            token_repository::insert(conn, &row)
        })
        .await?;
    let token = Token::from_row(row, &origin);
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, token.url.clone()))
        .json(IssuedToken {
            token,
            key: key.expose().to_owned(),
        }))
}

/// Read one device token (staff only); never its key.
#[utoipa::path(
    get,
    path = "/tokens/{id}/",
    operation_id = "retrieve_token",
    tag = "tokens",
    params(("id" = i64, Path, description = "The token's id.", example = 1)),
    responses(
        (status = 200, description = "The token.", body = Token),
        (status = 404, description = "No such token.", body = ErrorDetail),
    )
)]
pub async fn retrieve_token(
    id: web::Path<String>,
    session: Session,
    origin: Origin,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let row = session
        .read(move |conn| token_repository::find(conn, id))
        .await?
        .ok_or(ApiError::TokenNotFound)?;
    Ok(HttpResponse::Ok().json(Token::from_row(row, &origin)))
}

/// Revoke a device token (staff only): every instance refuses it from the next request on.
#[utoipa::path(
    delete,
    path = "/tokens/{id}/",
    operation_id = "destroy_token",
    tag = "tokens",
    params(("id" = i64, Path, description = "The token's id.", example = 2)),
    responses(
        (status = 204, description = "Revoked; no body."),
        (status = 404, description = "No such token.", body = ErrorDetail),
    )
)]
pub async fn destroy_token(
    id: web::Path<String>,
    session: Session,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let deleted = session
        .write(move |conn| token_repository::delete(conn, id))
        .await?;
    if deleted {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::TokenNotFound)
    }
}

/// DRF's `SimpleMetadata` description of a token's fields.
fn field_metadata() -> Value {
    json!({
        "url": {"type": "string", "required": false, "read_only": true, "label": "Url"},
        "id": {"type": "integer", "required": false, "read_only": true, "label": "ID"},
        "label": {"type": "string", "required": true, "read_only": false, "label": "Label",
                  "max_length": LABEL_MAX_CHARS},
        "scopes": {"type": "multiple choice", "required": true, "read_only": false,
                   "label": "Scopes",
                   "choices": SCOPE_NAMES.iter()
                       .map(|name| json!({"value": name, "display_name": name}))
                       .collect::<Vec<_>>()},
        "station": {"type": "string", "required": false, "read_only": false,
                    "label": "Station", "max_length": 64},
        "prefix": {"type": "string", "required": false, "read_only": true, "label": "Prefix"},
        "created": {"type": "integer", "required": false, "read_only": true, "label": "Created"},
        "last_used": {"type": "integer", "required": false, "read_only": true,
                      "label": "Last used"},
        "expires": {"type": "integer", "required": false, "read_only": false,
                    "label": "Expires"},
    })
}

/// OPTIONS on the collection.
pub async fn list_options() -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "name": "Token List",
        "description": "Device tokens: list them, 10 a page, or issue a new one.",
        "renders": ["application/json"],
        "parses": ["application/json", "application/x-www-form-urlencoded"],
        "actions": {"POST": field_metadata()},
    }))
}

/// OPTIONS on one token (tokens are never changed, so no `actions`).
pub async fn detail_options() -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "name": "Token Instance",
        "description": "One device token: read or revoke it.",
        "renders": ["application/json"],
        "parses": ["application/json", "application/x-www-form-urlencoded"],
    }))
}
