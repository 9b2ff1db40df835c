//! Metrics over HTTP: the middleware that counts every API request, and the separate listener
//! (`--metrics-bind`) that serves `/metrics` in the Prometheus text format.
//!
//! The listener is for the operator's network, as PostgREST's admin port is: it asks for no
//! credentials, so bind it to loopback or a private interface, never where the API's clients
//! reach. It answers `/metrics` (GET, HEAD) only; the API's port has no `/metrics` at all.

use std::borrow::Cow;
use std::net::TcpListener;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::{App, HttpResponse, HttpServer, ResponseError, guard, web};

use crate::error::ApiError;
use crate::metrics::{Metrics, UNMATCHED_ROUTE, WorkerRequests};

/// Where the scrape listener serves the metrics.
pub const METRICS_PATH: &str = "/metrics";

/// The media type of the Prometheus text exposition format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Middleware, outermost: counts each request by the pattern of the resource that answered it
/// (`/station/{id}/`, never the path itself, so ids do not become label values), its method and
/// status, and how long its answer took.
pub async fn observe<B: MessageBody + 'static>(
    requests: Rc<WorkerRequests>,
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    let started = Instant::now();
    let method = method_label(req.method());
    let answered = next.call(req).await;
    let elapsed = started.elapsed();
    match &answered {
        Ok(response) => {
            let route = response
                .request()
                .match_pattern()
                .map_or(Cow::Borrowed(UNMATCHED_ROUTE), Cow::Owned);
            requests.record(route, method, response.status().as_u16(), elapsed);
        }
        // No response to read the route from; the error tells the status it will be answered.
        Err(error) => requests.record(
            Cow::Borrowed(UNMATCHED_ROUTE),
            method,
            error.as_response_error().status_code().as_u16(),
            elapsed,
        ),
    }
    answered
}

/// A method's label value: the standard ones by name, anything else as `other`, so made-up
/// methods cannot grow the label set.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

/// The scrape listener on `listener`: one worker of its own, so a scrape never waits behind API
/// requests, nor they behind it. Runs once awaited (or spawned); stops with its handle.
pub fn scrape_server(listener: TcpListener, metrics: Arc<Metrics>) -> std::io::Result<Server> {
    let metrics = web::Data::from(metrics);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(metrics.clone())
            .service(
                web::resource(METRICS_PATH)
                    .route(
                        web::route()
                            .guard(guard::Any(guard::Get()).or(guard::Head()))
                            .to(scrape),
                    )
                    .default_service(web::to(scrape_method_not_allowed)),
            )
            .default_service(web::to(|| async { ApiError::NotFound.error_response() }))
    })
    .workers(1)
    .disable_signals()
    // A scrape is over in milliseconds; the API server's stop waits for nothing here.
    .shutdown_timeout(1)
    .client_disconnect_timeout(Duration::from_secs(1))
    .listen(listener)?
    .run();
    Ok(server)
}

/// `GET /metrics`: the text exposition, gauges read now.
async fn scrape(metrics: web::Data<Metrics>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, TEXT_FORMAT))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(metrics.render())
}

/// Any other method on `/metrics`: 405, JSON as everywhere else.
async fn scrape_method_not_allowed(req: actix_web::HttpRequest) -> HttpResponse {
    let mut response = ApiError::MethodNotAllowed(req.method().to_string()).error_response();
    response
        .headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
    response
}
