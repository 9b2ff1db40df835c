//! The HTTP surface: routes, middleware order and the handlers behind them.
//!
//! Each API resource is wrapped, outermost first, in: default `Allow`/`Vary` headers, content
//! negotiation (406), the gate (401/403/429, by what the route needs of each method), then the
//! routes, whose fallback is 405. That nesting is the contract's order of checks. API answers
//! are never cached by shared caches (`Cache-Control: private, no-cache`), errors included.

pub mod body;
pub mod expect_continue;
pub mod guard;
pub mod health;
pub mod links;
pub mod negotiation;
pub mod parser_errors;
pub mod query;
pub mod request_checks;
pub mod request_log;
pub mod security_headers;
pub mod slow_clients;
pub mod stations;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{HttpServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode, header};
use actix_web::middleware::{DefaultHeaders, Next, from_fn};
use actix_web::{HttpRequest, HttpResponse, Resource, ResponseError, guard as route_guard, web};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};
use utoipa_swagger_ui::SwaggerUi;

pub use crate::api::guard::AppState;
use crate::api::guard::RouteAccess;
use crate::api::links::Origin;
use crate::api::negotiation::{JSON_ONLY, MediaType};
use crate::error::ApiError;
use crate::openapi::ApiDoc;

/// Where the OpenAPI document is served.
pub const OPENAPI_PATH: &str = "/api-docs/openapi.json";

/// Registers every route of the service.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/healthz").route(get_or_head().to(health::healthz)))
        .service(web::resource("/readyz").route(get_or_head().to(health::readyz)))
        .service(api_resource(
            web::resource("/")
                .name("api-root")
                .route(get_or_head().to(api_root))
                .route(web::method(Method::OPTIONS).to(root_options)),
            "GET, HEAD, OPTIONS",
            RouteAccess::Readings,
            JSON_ONLY,
        ))
        .service(api_resource(
            web::resource("/station/")
                .name("station-list")
                .route(get_or_head().to(stations::list_stations))
                .route(web::post().to(stations::create_station))
                .route(web::method(Method::OPTIONS).to(stations::list_options)),
            "GET, POST, HEAD, OPTIONS",
            RouteAccess::Readings,
            JSON_ONLY,
        ))
        .service(api_resource(
            web::resource("/station/{id}/")
                .name("station-detail")
                .route(get_or_head().to(stations::retrieve_station))
                .route(web::put().to(stations::update_station))
                .route(web::patch().to(stations::partial_update_station))
                .route(web::delete().to(stations::destroy_station))
                .route(web::method(Method::OPTIONS).to(stations::detail_options)),
            "GET, PUT, PATCH, DELETE, HEAD, OPTIONS",
            RouteAccess::Readings,
            JSON_ONLY,
        ))
        .service(SwaggerUi::new("/swagger-ui/{_:.*}").url(OPENAPI_PATH, ApiDoc::openapi()));
}

fn get_or_head() -> actix_web::Route {
    web::route().guard(route_guard::Any(route_guard::Get()).or(route_guard::Head()))
}

/// Wraps an API resource in the contract's checks, outermost first: headers, 406 (unless the
/// request accepts one of the media types the route `renders`), auth (what `access` needs of
/// each method), 405.
fn api_resource(
    resource: Resource,
    allow: &'static str,
    access: RouteAccess,
    renders: &'static [MediaType],
) -> impl HttpServiceFactory {
    resource
        .default_service(web::to(method_not_allowed))
        .wrap(from_fn(move |req, next| guard::require(access, req, next)))
        .wrap(from_fn(move |req, next| {
            negotiation::negotiate(renders, req, next)
        }))
        .wrap(
            DefaultHeaders::new()
                .add((header::ALLOW, allow))
                .add((header::VARY, "Accept"))
                // Answers for one admin: no shared cache may keep them, and a client revalidates.
                .add((header::CACHE_CONTROL, "private, no-cache")),
        )
}

async fn method_not_allowed(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed(req.method().to_string()))
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
    let error = match response.status() {
        StatusCode::NOT_FOUND => ApiError::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => {
            ApiError::MethodNotAllowed(response.request().method().to_string())
        }
        _ => return Ok(response),
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
