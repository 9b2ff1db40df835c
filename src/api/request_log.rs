//! One structured log event per request: method, path, status, latency and user. Never the
//! query string's secrets, the body, or the `Authorization` header.

use std::time::Instant;

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

use crate::api::guard::CallerName;

/// Middleware: logs each request once it has been answered.
pub async fn log_request(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if !tracing::enabled!(tracing::Level::INFO) {
        return next.call(req).await;
    }
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.path().to_owned();
    let response = next.call(req).await?;
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
    Ok(response)
}
