//! The admin-only gate (DRF's `IsAdminUser` over basic auth), as middleware so that it runs
//! before method and lookup checks: an anonymous caller learns nothing about what exists.
//!
//! Credentials verified recently are let in before their account is read: the request's first
//! query reads it ([`AdminSession`]), in the same round trip to the database, and the request
//! goes no further if the account changed. A request that makes no query has its account read
//! by the gate once the handler is done, and its answer replaced when the account says no; such
//! handlers change nothing, so the order of checks holds either way.

use std::cell::RefCell;
use std::future::{Ready, ready};
use std::rc::Rc;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, ResponseError, web};

use crate::api::AppState;
use crate::api::links::client_address;
use crate::auth::{Admission, AuthenticatedUser, Checked, Remembered};
use crate::db::{DbConnection, DbError, QueryResult};
use crate::error::ApiError;

/// Remembered credentials not yet checked against their account; empty once checked.
#[derive(Debug, Default)]
struct PendingAccountCheck(RefCell<Option<Remembered>>);

impl PendingAccountCheck {
    fn take(&self) -> Option<Remembered> {
        self.0.borrow_mut().take()
    }
}

/// Middleware: lets active staff through and records who they are; answers 401/403/429 otherwise.
pub async fn require_admin(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        let error = ApiError::Internal("application state is missing".into());
        return Ok(req.into_response(error.error_response()));
    };
    let client = client_address(
        req.headers(),
        req.peer_addr().map(|addr| addr.ip()),
        state.http.trust_proxy,
    );
    let authorization = req.headers().get(header::AUTHORIZATION);
    let admission = state
        .authenticator
        .admit(authorization.map(|value| value.as_bytes()), client)
        .await;
    let pending = Rc::new(PendingAccountCheck::default());
    match admission {
        Ok(Admission::Confirmed(user)) => {
            req.extensions_mut().insert(user);
        }
        Ok(Admission::Remembered(remembered)) => {
            req.extensions_mut().insert(AuthenticatedUser {
                username: remembered.username().to_owned(),
            });
            *pending.0.borrow_mut() = Some(remembered);
            req.extensions_mut().insert(Rc::clone(&pending));
        }
        Err(error) => return Ok(req.into_response(ApiError::from(error).error_response())),
    }
    let response = next.call(req).await?.map_into_boxed_body();
    let Some(remembered) = pending.take() else {
        return Ok(response);
    };
    match state.authenticator.confirm(remembered).await {
        Ok(_) => Ok(response),
        Err(error) => {
            let (req, _) = response.into_parts();
            req.extensions_mut().remove::<AuthenticatedUser>();
            let denied = ApiError::from(error).error_response();
            Ok(ServiceResponse::new(req, denied))
        }
    }
}

/// The database as a request the gate let in reaches it: the first query or write also reads
/// the caller's account when the gate left that pending, and stops with 401/403 if the account
/// no longer admits them (deleted, deactivated, no longer staff, or a new password).
pub struct AdminSession {
    state: web::Data<AppState>,
    pending: Option<Rc<PendingAccountCheck>>,
    req: HttpRequest,
}

impl FromRequest for AdminSession {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let session = req
            .app_data::<web::Data<AppState>>()
            .cloned()
            .map(|state| Self {
                state,
                pending: req.extensions().get::<Rc<PendingAccountCheck>>().cloned(),
                req: req.clone(),
            })
            .ok_or_else(|| ApiError::Internal("application state is missing".into()));
        ready(session)
    }
}

/// Which way a request's work reaches the database.
#[derive(Debug, Clone, Copy)]
enum Access {
    Read,
    Write,
}

/// A query's result, or the query back, unrun, with what the account read showed instead.
type UnlessTurnedAway<T, F> = Result<T, (Checked, F)>;

impl AdminSession {
    /// The shared state (settings, cursor keys).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Runs a read-only `query`, after the pending account read if there is one.
    pub async fn read<T, F>(&self, query: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut DbConnection) -> QueryResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.run(Access::Read, query).await
    }

    /// Runs `change` in a write transaction, after the pending account read if there is one (in
    /// the same transaction, so nothing is written for a caller the account turns away).
    pub async fn write<T, F>(&self, change: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut DbConnection) -> QueryResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.run(Access::Write, change).await
    }

    async fn run<T, F>(&self, access: Access, work: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut DbConnection) -> QueryResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let Some(remembered) = self.pending.as_ref().and_then(|p| p.take()) else {
            return Ok(self.on_database(access, work).await?);
        };
        let check = remembered.check();
        let outcome = self
            .on_database(access, move |conn| after_check(conn, &check, work))
            .await?;
        match outcome {
            Ok(value) => Ok(value),
            Err((checked, work)) => {
                self.settle(remembered, checked).await?;
                Ok(self.on_database(access, work).await?)
            }
        }
    }

    async fn on_database<T, F>(&self, access: Access, work: F) -> Result<T, DbError>
    where
        F: FnOnce(&mut DbConnection) -> QueryResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let database = &self.state.database;
        match access {
            Access::Read => database.read(work).await,
            Access::Write => database.write(work).await,
        }
    }

    async fn settle(&self, remembered: Remembered, checked: Checked) -> Result<(), ApiError> {
        match self.state.authenticator.settle(remembered, checked).await {
            Ok(_) => Ok(()),
            Err(error) => {
                self.req.extensions_mut().remove::<AuthenticatedUser>();
                Err(error.into())
            }
        }
    }
}

/// Runs `query` if the account read admits the caller; otherwise hands it back unrun.
fn after_check<T, F>(
    conn: &mut DbConnection,
    check: &crate::auth::PendingCheck,
    query: F,
) -> QueryResult<UnlessTurnedAway<T, F>>
where
    F: FnOnce(&mut DbConnection) -> QueryResult<T>,
{
    match check.run(conn)? {
        Checked::Admitted(_) => query(conn).map(Ok),
        other => Ok(Err((other, query))),
    }
}
