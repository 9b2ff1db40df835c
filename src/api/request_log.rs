//! One structured log event per request: method, path, status, latency and user. Never the
//! query string's secrets, the body, or the `Authorization` header. Each request runs in a
//! `request` span carrying its id (the client's `X-Request-Id` when it sent a sane one, a new one
//! otherwise, echoed in the response), so every line it logs, on the worker or on a query
//! thread, names it. While a request's work runs, its thread is marked as serving it, so a panic
//! report names the request.

use std::future::poll_fn;
use std::pin::pin;
use std::time::Instant;

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

use actix_web::http::header::{HeaderName, HeaderValue};
use tracing::Instrument as _;

use crate::api::guard::CallerName;
use crate::telemetry::{RequestLabel, sane_request_id, serving};

/// The header a request's id travels in, both ways.
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A new request id: 64 random bits, as 16 hex digits.
fn new_request_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Middleware: marks the thread as serving the request while its work runs, and logs the
/// request once it has been answered.
pub async fn log_request(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let request_id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|id| id.to_str().ok())
        .and_then(sane_request_id)
        .map_or_else(new_request_id, str::to_owned);
    let label = RequestLabel::new(req.method().as_str(), req.path(), Some(&request_id));
    let span = tracing::info_span!("request", id = %request_id);
    let logged = tracing::enabled!(tracing::Level::INFO);
    let started = Instant::now();
    let method = logged.then(|| req.method().clone());
    let path = logged.then(|| req.path().to_owned());
    let mut answer = pin!(next.call(req).instrument(span.clone()));
    // Requests interleave on a worker thread: the mark is set for each poll, not for the whole
    // request.
    let response = poll_fn(|cx| {
        let _serving = serving(Some(label.clone()));
        answer.as_mut().poll(cx)
    })
    .await?;
    let mut response = response;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    let _in_span = span.enter();
    if let (Some(method), Some(path)) = (method, path) {
        let user = response
            .request()
            .extensions()
            .get::<CallerName>()
            .map(|caller| caller.0.clone());
        tracing::info!(
            method = %method,
            path = %path,
            status = response.status().as_u16(),
            latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            user = user.as_deref().unwrap_or("-"),
            "request"
        );
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use actix_web::middleware::from_fn;
    use actix_web::{App, HttpResponse, test, web};

    use super::*;
    use crate::telemetry::current_request;

    #[actix_web::test]
    async fn a_handler_runs_marked_as_serving_its_request_and_the_mark_goes_after() {
        let app = test::init_service(
            App::new()
                .route(
                    "/station/{id}/",
                    web::get().to(|| async {
                        HttpResponse::Ok().body(format!("{:?}", current_request()))
                    }),
                )
                .wrap(from_fn(log_request)),
        )
        .await;

        let req = test::TestRequest::get()
            .uri("/station/7/?secret=hunter2")
            .insert_header(("x-request-id", "req-1"))
            .to_request();
        let body = test::call_and_read_body(&app, req).await;

        let expected = RequestLabel::new("GET", "/station/7/", Some("req-1"));
        assert_eq!(body, format!("{:?}", Some(expected)));
        assert!(!String::from_utf8_lossy(&body).contains("hunter2"));
        assert_eq!(current_request(), None);
    }
}
