//! The HTTP surface: routes, middleware order and the handlers behind them.
//!
//! Each API resource is wrapped, outermost first, in: default `Allow`/`Vary` headers, content
//! negotiation (406), the gate (401/403/429, by what the route needs of each method), then the
//! routes, whose fallback is 405. That nesting is the contract's order of checks. API answers
//! are never cached by shared caches (`Cache-Control: private, no-cache`), errors included.

pub mod aggregate;
pub mod body;
pub mod bulk;
pub mod conditional;
pub mod cors;
pub mod expect_continue;
pub mod export;
pub mod guard;
pub mod health;
pub mod home;
pub mod idempotency;
pub mod latest;
pub mod links;
pub mod metrics;
pub mod negotiation;
pub mod parser_errors;
pub mod query;
pub mod request_checks;
pub mod request_log;
pub mod routes;
pub mod security_headers;
pub mod slow_clients;
pub mod stations;
pub mod stream;
pub mod tokens;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_swagger_ui::SwaggerUi;

pub use crate::api::guard::AppState;
use crate::api::guard::RouteAccess;
use crate::api::links::Origin;
use crate::api::negotiation::{EVENT_STREAMS, EXPORTS, JSON_ONLY};
use crate::api::routes::{ApiResource, Routes, operation};
use crate::error::ApiError;
use crate::openapi;

/// Where the OpenAPI document is served.
pub const OPENAPI_PATH: &str = "/api-docs/openapi.json";

/// Every route of the service, each listed once: the one list both serves and documents them.
/// The document lists paths in this order.
fn routes() -> Routes {
    Routes::default()
        .api(
            ApiResource::new(
                "/",
                "api-root",
                RouteAccess::Readings,
                JSON_ONLY,
                root_options,
            )
            .operation(operation!(api_root)),
        )
        .api(
            ApiResource::new(
                "/station/",
                "station-list",
                RouteAccess::Readings,
                JSON_ONLY,
                stations::list_options,
            )
            .operation(operation!(stations::list_stations))
            .operation(operation!(stations::create_station)),
        )
        .api(
            ApiResource::new(
                "/station/export/",
                "station-export",
                RouteAccess::Readings,
                EXPORTS,
                export::export_options,
            )
            .operation(operation!(export::export_stations)),
        )
        .api(
            ApiResource::new(
                "/station/latest/",
                "station-latest",
                RouteAccess::HomeData,
                JSON_ONLY,
                latest::latest_options,
            )
            .operation(operation!(latest::latest_stations)),
        )
        .api(
            ApiResource::new(
                "/station/stream/",
                "station-stream",
                RouteAccess::HomeData,
                EVENT_STREAMS,
                stream::stream_options,
            )
            .operation(operation!(stream::stream_stations)),
        )
        .api(
            ApiResource::new(
                "/station/aggregate/",
                "station-aggregate",
                RouteAccess::HomeData,
                JSON_ONLY,
                aggregate::aggregate_options,
            )
            .operation(operation!(aggregate::aggregate_stations)),
        )
        .api(
            ApiResource::new(
                "/station/{id}/",
                "station-detail",
                RouteAccess::Readings,
                JSON_ONLY,
                stations::detail_options,
            )
            .operation(operation!(stations::retrieve_station))
            .operation(operation!(stations::update_station))
            .operation(operation!(stations::partial_update_station))
            .operation(operation!(stations::destroy_station)),
        )
        .api(
            ApiResource::new(
                "/tokens/",
                "token-list",
                RouteAccess::StaffOnly,
                JSON_ONLY,
                tokens::list_options,
            )
            .operation(operation!(tokens::list_tokens))
            .operation(operation!(tokens::create_token)),
        )
        .api(
            ApiResource::new(
                "/tokens/{id}/",
                "token-detail",
                RouteAccess::StaffOnly,
                JSON_ONLY,
                tokens::detail_options,
            )
            .operation(operation!(tokens::retrieve_token))
            .operation(operation!(tokens::destroy_token)),
        )
        .probe(operation!(health::healthz))
        .probe(operation!(health::readyz))
}

/// Registers every route of the service, and Swagger UI over the document they make.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let document = openapi::complete(routes().register(cfg));
    cfg.service(home::scope());
    cfg.service(SwaggerUi::new("/swagger-ui/{_:.*}").url(OPENAPI_PATH, document));
}

/// The OpenAPI document, as served at [`OPENAPI_PATH`].
pub fn document() -> utoipa::openapi::OpenApi {
    openapi::complete(routes().into_document())
}

/// The links a client starts from.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiRoot {
    /// The station collection.
    #[schema(format = "uri", example = "http://127.0.0.1:8000/station/")]
    pub station: String,
}

/// The API root: a link to each collection (DRF's `DefaultRouter` root view).
#[utoipa::path(
    get,
    path = "/",
    operation_id = "api_root",
    tag = "station",
    responses((status = 200, description = "Links to the collections.", body = ApiRoot))
)]
pub async fn api_root(origin: Origin) -> HttpResponse {
    HttpResponse::Ok().json(ApiRoot {
        station: origin.stations_url(),
    })
}

async fn root_options() -> HttpResponse {
    HttpResponse::Ok().json(stations::metadata(
        "Api Root",
        "The default basic root view for DefaultRouter",
        None,
    ))
}

/// Fallback for unknown paths: a missing trailing slash is redirected (301 for GET/HEAD, 308
/// otherwise so the method and body survive); anything else is a JSON 404.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    let path = req.path();
    if !path.ends_with('/') {
        let slashed = format!("{path}/");
        if req.resource_map().has_resource(&slashed) {
            let location = match req.query_string() {
                "" => slashed,
                query => format!("{slashed}?{query}"),
            };
            let status = if matches!(*req.method(), Method::GET | Method::HEAD) {
                StatusCode::MOVED_PERMANENTLY
            } else {
                StatusCode::PERMANENT_REDIRECT
            };
            return HttpResponse::build(status)
                .insert_header((header::LOCATION, location))
                .finish();
        }
    }
    ApiError::NotFound.error_response()
}

/// Middleware for the whole app: the bodiless 404s and 405s that come from outside our handlers
/// (actix's 405 on a probe, Swagger UI's 404 for a file it does not have) get the same JSON body
/// as every other error; their headers, such as `Allow`, are kept.
pub async fn json_error_bodies(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let response = next.call(req).await?.map_into_boxed_body();
    if response.headers().contains_key(header::CONTENT_TYPE) {
        return Ok(response);
    }
    let refused_by_cors = response
        .response()
        .error()
        .and_then(|error| error.as_error::<actix_cors::CorsError>())
        .map(ToString::to_string);
    let error = match (refused_by_cors, response.status()) {
        (Some(reason), _) => ApiError::CorsRefused(reason),
        (None, StatusCode::NOT_FOUND) => ApiError::NotFound,
        (None, StatusCode::METHOD_NOT_ALLOWED) => {
            ApiError::MethodNotAllowed(response.request().method().to_string())
        }
        (None, _) => return Ok(response),
    };
    let (req, bare) = response.into_parts();
    let mut json = error.error_response();
    for name in bare.headers().keys() {
        if !json.headers().contains_key(name) {
            for value in bare.headers().get_all(name) {
                json.headers_mut().append(name.clone(), value.clone());
            }
        }
    }
    Ok(ServiceResponse::new(req, json))
}
