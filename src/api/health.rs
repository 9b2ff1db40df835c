//! Liveness and readiness probes for load balancers and orchestrators; no auth.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::AppState;
use crate::error::{ApiError, ErrorDetail};

/// A probe's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthStatus {
    /// `ok` (process up) or `ready` (database reachable).
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// The process is up and answering.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "health_check",
    tag = "health",
    security(()),
    responses((status = 200, description = "The process is up.", body = HealthStatus))
)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(HealthStatus { status: "ok" })
}

/// The service can reach its database, the database takes writes, and the service can take
/// traffic.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readiness_check",
    tag = "health",
    security(()),
    responses(
        (status = 200, description = "The database answers.", body = HealthStatus),
        (status = 503, description = "The database cannot be reached, or is read-only.", body = ErrorDetail,
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    )
)]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if state.database_is_ready().await {
        Ok(HttpResponse::Ok().json(HealthStatus { status: "ready" }))
    } else {
        Err(ApiError::Unavailable(
            "the database did not answer, or refuses writes".into(),
        ))
    }
}
