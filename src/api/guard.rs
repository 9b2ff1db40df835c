//! The admin-only gate (DRF's `IsAdminUser` over basic auth), as middleware so that it runs
//! before method and lookup checks: an anonymous caller learns nothing about what exists.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, ResponseError, web};

use crate::api::AppState;
use crate::api::links::client_address;
use crate::error::ApiError;

/// Middleware: lets active staff through and records who they are; answers 401/403/429 otherwise.
pub async fn require_admin(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        let error = ApiError::Internal("application state is missing".into());
        return Ok(req.into_response(error.error_response()));
    };
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|value| value.as_bytes().to_vec());
    let client = client_address(
        req.headers(),
        req.peer_addr().map(|addr| addr.ip()),
        state.http.trust_proxy,
    );
    match state
        .authenticator
        .authenticate(authorization.as_deref(), client)
        .await
    {
        Ok(user) => {
            req.extensions_mut().insert(user);
            Ok(next.call(req).await?.map_into_boxed_body())
        }
        Err(error) => Ok(req.into_response(ApiError::from(error).error_response())),
    }
}
