//! The gate in front of every API route, and the only way from a handler to the database.
//!
//! Each route names what it needs of its caller ([`RouteAccess`]); the gate, as middleware, runs
//! before method and lookup checks, so an anonymous caller learns nothing about what exists. It
//! asks `auth` who the caller is (a [`Principal`](crate::auth::Principal)) and whether they may, and answers 401/403/429
//! otherwise.
//!
//! Credentials verified recently are let in before their account is read: the request's first
//! query reads it ([`Session`]), in the same round trip to the database, and the request goes
//! no further if the account changed or no longer may. A device token seen before is let in
//! the same way, its row read in that round trip, so a revoked token is refused at once. A request that makes no query has its
//! account read by the gate once the handler is done, and its answer replaced when the account
//! says no; such handlers change nothing, so the order of checks holds either way.
//!
//! [`AppState`] lives here, with its database private: a handler can reach the database only
//! through a [`Session`], so nothing is written for a caller the account check turns away.

use std::cell::RefCell;
use std::future::{Ready, ready};
use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, ResponseError, web};

use crate::api::idempotency::ClaimsInFlight;
use crate::api::links::client_address;
use crate::auth::{
    Admission, AuthError, Authenticator, Checked, PendingCheck, Permission, Principal, Remembered,
    authorize,
};
use crate::changes::ChangeFeed;
use crate::config::{HttpSettings, IdempotencySettings};
use crate::db::{CallerColumn, CallerGate, Carried, Database, DbConnection, DbError, QueryResult};
use crate::error::ApiError;
use crate::metrics::{AuthOutcome, Metrics};
use crate::pagination::{CursorCodec, PageSizeLimits};

/// What every handler can reach: one per process, shared by the workers.
#[derive(Debug)]
pub struct AppState {
    /// Private: handlers reach it only through a [`Session`].
    database: Database,
    authenticator: Authenticator,
    http: HttpSettings,
    cursors: CursorCodec,
    idempotency: IdempotencySettings,
    claims_in_flight: ClaimsInFlight,
    /// `None` unless `--metrics-bind` was given.
    metrics: Option<Arc<Metrics>>,
    /// The instance's feed of committed changes, for event streams.
    change_feed: Arc<ChangeFeed>,
}

impl AppState {
    /// The state over `database`, checking callers with `authenticator`.
    pub fn new(
        database: Database,
        authenticator: Authenticator,
        http: HttpSettings,
        cursors: CursorCodec,
        change_feed: Arc<ChangeFeed>,
    ) -> Self {
        Self {
            change_feed,
            database,
            authenticator,
            http,
            cursors,
            idempotency: IdempotencySettings::default(),
            claims_in_flight: ClaimsInFlight::default(),
            metrics: None,
        }
    }

    /// The state, counting what happens in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The instance's feed of committed changes.
    pub fn change_feed(&self) -> &Arc<ChangeFeed> {
        &self.change_feed
    }

    /// Where requests are counted; `None` when metrics are off.
    pub fn metrics(&self) -> Option<&Arc<Metrics>> {
        self.metrics.as_ref()
    }

    /// The state with `idempotency` settings instead of the defaults.
    pub fn with_idempotency(mut self, idempotency: IdempotencySettings) -> Self {
        self.idempotency = idempotency;
        self
    }

    /// How long `Idempotency-Key` answers are kept and claims hold.
    pub fn idempotency(&self) -> &IdempotencySettings {
        &self.idempotency
    }

    /// The `Idempotency-Key` claims this instance's running requests hold.
    pub fn claims_in_flight(&self) -> &ClaimsInFlight {
        &self.claims_in_flight
    }

    /// Limits and proxy trust.
    pub fn http(&self) -> &HttpSettings {
        &self.http
    }

    /// Signs and checks list cursors, with a key all instances share.
    pub fn cursors(&self) -> &CursorCodec {
        &self.cursors
    }

    /// The page sizes a list may be asked for.
    pub fn page_sizes(&self) -> PageSizeLimits {
        PageSizeLimits {
            default: self.http.page_size,
            max: self.http.max_page_size,
        }
    }

    /// Whether the database answers and takes writes, for the readiness probe.
    pub async fn database_is_ready(&self) -> bool {
        self.database.accepts_writes().await
    }
}

/// What a route needs of its caller, by method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteAccess {
    /// Readings: reading them needs [`Permission::ReadReadings`], adding them (POST)
    /// [`Permission::WriteReadings`], changing or deleting them [`Permission::Staff`].
    Readings,
    /// Staff only, whatever the method.
    StaffOnly,
    /// Readings the home page reads: as [`Self::Readings`], but with `--public-home` anyone
    /// may read them without credentials.
    HomeData,
    /// The home page itself: staff, or anyone with `--public-home`.
    HomePage,
}

impl RouteAccess {
    /// What `method` on such a route needs.
    pub fn needs(self, method: &Method) -> Permission {
        match (self, method) {
            (Self::StaffOnly | Self::HomePage, _) => Permission::Staff,
            (Self::Readings | Self::HomeData, &Method::GET | &Method::HEAD | &Method::OPTIONS) => {
                Permission::ReadReadings
            }
            (Self::Readings | Self::HomeData, &Method::POST) => Permission::WriteReadings,
            (Self::Readings | Self::HomeData, _) => Permission::Staff,
        }
    }

    /// Whether `--public-home` lets anyone make such a request without credentials: reads of
    /// the page and of what it shows, nothing else.
    fn opened_by_public_home(self, method: &Method) -> bool {
        matches!(self, Self::HomeData | Self::HomePage)
            && matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
    }
}

/// How the request log names a caller `--public-home` let in without credentials.
const ANONYMOUS_CALLER: &str = "anonymous";

/// Who made the request, for the request log; set once the gate knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerName(pub String);

/// What a handler may need to know about its caller beyond what they may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Names the caller stably across requests and instances (`user:<username>`, and for a
    /// device token `token:<id>`): idempotency keys are scoped to it.
    pub key: String,
    /// The one station name the caller may read and write (a bound device token); `None` for
    /// everyone else.
    pub bound_station: Option<String>,
}

impl Caller {
    /// A user who authenticated with their password.
    pub fn user(username: &str) -> Self {
        Self {
            key: format!("user:{username}"),
            bound_station: None,
        }
    }

    /// The caller `principal` is.
    pub fn of(principal: &Principal) -> Self {
        Self {
            key: principal.key(),
            bound_station: principal.bound_station().map(str::to_owned),
        }
    }

    /// Whether this caller may see or write readings of the station named `name`: everyone but
    /// a token bound to another station.
    pub fn may_touch_station(&self, name: &str) -> bool {
        self.bound_station
            .as_deref()
            .is_none_or(|bound| bound == name)
    }
}

/// Remembered credentials not yet checked against their account, and what the route needs;
/// empty once checked.
#[derive(Debug, Default)]
struct PendingAccountCheck(RefCell<Option<(Remembered, Permission)>>);

impl PendingAccountCheck {
    fn take(&self) -> Option<(Remembered, Permission)> {
        self.0.borrow_mut().take()
    }
}

/// Middleware: lets through callers who may do what `access` needs of the request's method, and
/// records who they are; answers 401/403/429 otherwise.
pub async fn require(
    access: RouteAccess,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        let error = ApiError::Internal("application state is missing".into());
        return Ok(req.into_response(error.error_response()));
    };
    let needed = access.needs(req.method());
    let client = client_address(
        req.headers(),
        req.peer_addr().map(|addr| addr.ip()),
        state.http.trust_proxy,
    );
    let authorization = req.headers().get(header::AUTHORIZATION);
    // Credentials, when a caller sends them anyway, are still checked (DRF's way): a wrong
    // password is a 401 even where none is needed.
    if authorization.is_none()
        && state.http.home.public
        && access.opened_by_public_home(req.method())
    {
        req.extensions_mut()
            .insert(CallerName(ANONYMOUS_CALLER.to_owned()));
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let admission = state
        .authenticator
        .admit(authorization.map(|value| value.as_bytes()), client)
        .await;
    if let Some(metrics) = &state.metrics {
        metrics.record_auth(AuthOutcome::of(&admission));
    }
    let pending = Rc::new(PendingAccountCheck::default());
    let token = match admission {
        Ok(Admission::Confirmed(principal, token)) => {
            req.extensions_mut().insert(CallerName(principal.name()));
            req.extensions_mut().insert(Caller::of(&principal));
            if let Err(denied) = authorize(&principal, needed) {
                return Ok(req.into_response(ApiError::from(denied).error_response()));
            }
            token
        }
        Ok(Admission::Remembered(remembered)) => {
            let token = remembered.token();
            req.extensions_mut().insert(CallerName(remembered.name()));
            req.extensions_mut().insert(Caller {
                key: remembered.key(),
                bound_station: remembered.bound_station().map(str::to_owned),
            });
            *pending.0.borrow_mut() = Some((remembered, needed));
            req.extensions_mut().insert(Rc::clone(&pending));
            token
        }
        Err(error) => return Ok(req.into_response(ApiError::from(error).error_response())),
    };
    let response = next.call(req).await?.map_into_boxed_body();
    let Some((remembered, needed)) = pending.take() else {
        // A token that was turned away (revoked meanwhile) was not used.
        if let Some(token) = token
            && response.status() != StatusCode::UNAUTHORIZED
        {
            state.authenticator.record_use(&token);
        }
        return Ok(response);
    };
    let confirmed = state
        .authenticator
        .confirm(remembered)
        .await
        .and_then(|principal| authorize(&principal, needed));
    match confirmed {
        Ok(()) => {
            if let Some(token) = token {
                state.authenticator.record_use(&token);
            }
            Ok(response)
        }
        Err(error) => {
            let (req, _) = response.into_parts();
            let denied = ApiError::from(error).error_response();
            Ok(ServiceResponse::new(req, denied))
        }
    }
}

/// The database as a request the gate let in reaches it: the first query or write also reads
/// the caller's account when the gate left that pending, and stops with 401/403 if the account
/// no longer admits them (deleted, deactivated, no longer allowed, or a new password).
pub struct Session {
    state: web::Data<AppState>,
    pending: Option<Rc<PendingAccountCheck>>,
    caller: Option<Caller>,
}

impl FromRequest for Session {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let session = req
            .app_data::<web::Data<AppState>>()
            .cloned()
            .map(|state| Self {
                state,
                pending: req.extensions().get::<Rc<PendingAccountCheck>>().cloned(),
                caller: req.extensions().get::<Caller>().cloned(),
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

impl Session {
    /// The shared state (settings, cursor keys); not the database.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Who the gate let in; `None` only on a route without a gate.
    pub fn caller(&self) -> Option<&Caller> {
        self.caller.as_ref()
    }

    /// A handle that writes after this request is gone, for cleanup that must happen even when
    /// the client hangs up. `None` while the caller's account is still to be read: only a
    /// request that already wrote through this session may leave work behind.
    pub fn detached_writer(&self) -> Option<DetachedWriter> {
        let unchecked = self
            .pending
            .as_ref()
            .is_some_and(|pending| pending.0.borrow().is_some());
        (!unchecked).then(|| DetachedWriter(self.state.clone()))
    }

    /// Runs a read-only `query`, after the pending account read if there is one.
    pub async fn read<T, F>(&self, query: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut DbConnection) -> QueryResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.run(Access::Read, query).await
    }

    /// Runs a read-only `query` that may read the pending account (or token) itself: given the
    /// [`CallerColumn`], it can carry it in its own statement (no round trip of its own) and say
    /// what it read; when it does not (say, no row came back), the account is read right after,
    /// on the same connection. What was read is returned only if the account still admits the
    /// caller.
    pub async fn read_carrying<T, F>(&self, query: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut DbConnection, Option<&CallerColumn>) -> QueryResult<Carried<T>>
            + Send
            + 'static,
        T: Send + 'static,
    {
        let database = &self.state.database;
        let Some((remembered, needed)) = self.pending.as_ref().and_then(|p| p.take()) else {
            return Ok(database
                .read(move |conn| query(conn, None).map(|carried| carried.value))
                .await?);
        };
        let check = remembered.check();
        let (value, checked) = database
            .read(move |conn| {
                let column = check.column();
                let carried = query(conn, Some(&column))?;
                let standing = match carried.caller {
                    Some(standing) => standing,
                    None => column.read(conn)?,
                };
                Ok((carried.value, check.judge(standing)))
            })
            .await?;
        let checked = match checked {
            Checked::Admitted(principal) if principal.may(needed) => return Ok(value),
            Checked::Admitted(_) => Checked::Denied(AuthError::Forbidden),
            other => other,
        };
        // A new password verified again (or the refusal): what was read stands for a caller
        // the account admits, as reads change nothing.
        let principal = self.state.authenticator.settle(remembered, checked).await?;
        authorize(&principal, needed)?;
        Ok(value)
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

    /// Runs `statement`, a write that checks the pending caller itself when given their
    /// [`CallerGate`]: one statement that writes only for an admitted caller and returns what it
    /// wrote with what the caller column read, or `None` having written nothing. A caller it
    /// turned away is read as any request reads them (a new password is verified again, a
    /// refusal is the usual one) and, if admitted after all, the statement runs again without a
    /// gate, as it does when nothing is pending. On PostgreSQL there is no transaction around it
    /// ([`Database::write_atomic`]): one round trip checks and writes.
    pub async fn write_if_admitted<T, F>(&self, statement: F) -> Result<T, ApiError>
    where
        F: Fn(&mut DbConnection, Option<&CallerGate>) -> QueryResult<Option<(T, Option<i64>)>>
            + Clone
            + Send
            + 'static,
        T: Send + 'static,
    {
        let database = &self.state.database;
        let ungated = async |statement: F| {
            database
                .write_atomic(move |conn| {
                    // Without a gate the statement always writes.
                    statement(conn, None)?
                        .map(|(value, _)| value)
                        .ok_or(diesel::result::Error::NotFound)
                })
                .await
        };
        let Some((remembered, needed)) = self.pending.as_ref().and_then(|p| p.take()) else {
            return Ok(ungated(statement).await?);
        };
        let check = remembered.check();
        if let Some(gate) = check.gate(needed) {
            let column = gate.column().clone();
            let gated = statement.clone();
            let written = database
                .write_atomic(move |conn| gated(conn, Some(&gate)))
                .await?;
            if let Some((value, read)) = written {
                // The gate admitted the caller; judged for what judging notes (a token's use).
                check.judge(column.standing(read));
                return Ok(value);
            }
        }
        let checked = database.read(move |conn| check.run(conn)).await?;
        let principal = self.state.authenticator.settle(remembered, checked).await?;
        authorize(&principal, needed)?;
        Ok(ungated(statement).await?)
    }

    async fn run<T, F>(&self, access: Access, work: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut DbConnection) -> QueryResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let Some((remembered, needed)) = self.pending.as_ref().and_then(|p| p.take()) else {
            return Ok(self.on_database(access, work).await?);
        };
        let check = remembered.check();
        let outcome = self
            .on_database(access, move |conn| after_check(conn, &check, needed, work))
            .await?;
        match outcome {
            Ok(value) => Ok(value),
            Err((checked, work)) => {
                let principal = self.state.authenticator.settle(remembered, checked).await?;
                authorize(&principal, needed)?;
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
}

/// Writes that outlive their request (see [`Session::detached_writer`]).
pub struct DetachedWriter(web::Data<AppState>);

impl DetachedWriter {
    /// Runs `change` in a write transaction in the background; a failure is logged.
    pub fn spawn<F>(self, what: &'static str, change: F)
    where
        F: FnOnce(&mut DbConnection) -> QueryResult<()> + Send + 'static,
    {
        actix_web::rt::spawn(async move {
            if let Err(error) = self.0.database.write(change).await {
                tracing::warn!(error = %error, "{what} failed");
            }
        });
    }
}

/// Runs `query` if the account read admits the caller and they may do what `needed` names;
/// otherwise hands it back unrun.
fn after_check<T, F>(
    conn: &mut DbConnection,
    check: &PendingCheck,
    needed: Permission,
    query: F,
) -> QueryResult<UnlessTurnedAway<T, F>>
where
    F: FnOnce(&mut DbConnection) -> QueryResult<T>,
{
    match check.run(conn)? {
        Checked::Admitted(principal) if principal.may(needed) => query(conn).map(Ok),
        Checked::Admitted(_) => Ok(Err((Checked::Denied(AuthError::Forbidden), query))),
        other => Ok(Err((other, query))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_method_of_a_readings_route_needs_its_own_permission() {
        let needs = |method: Method| RouteAccess::Readings.needs(&method);
        assert_eq!(needs(Method::GET), Permission::ReadReadings);
        assert_eq!(needs(Method::HEAD), Permission::ReadReadings);
        assert_eq!(needs(Method::OPTIONS), Permission::ReadReadings);
        assert_eq!(needs(Method::POST), Permission::WriteReadings);
        for method in [Method::PUT, Method::PATCH, Method::DELETE, Method::TRACE] {
            assert_eq!(needs(method), Permission::Staff);
        }
        assert_eq!(
            RouteAccess::StaffOnly.needs(&Method::GET),
            Permission::Staff
        );
    }

    #[test]
    fn tokens_may_read_and_write_as_scoped_and_never_what_staff_may() {
        use crate::domain::token::Scopes;
        let token = |read, write| crate::auth::Principal::Token {
            id: 7,
            scopes: Scopes::new(read, write).unwrap(),
            station: Some("Kitchen".into()),
        };
        assert!(authorize(&token(true, false), Permission::ReadReadings).is_ok());
        assert!(authorize(&token(true, false), Permission::WriteReadings).is_err());
        assert!(authorize(&token(false, true), Permission::WriteReadings).is_ok());
        assert!(authorize(&token(false, true), Permission::ReadReadings).is_err());
        assert!(authorize(&token(true, true), Permission::Staff).is_err());
        let caller = Caller::of(&token(true, true));
        assert_eq!(caller.key, "token:7");
        assert!(caller.may_touch_station("Kitchen"));
        assert!(!caller.may_touch_station("Garage"));
        assert!(Caller::user("admin").may_touch_station("Garage"));
    }

    #[test]
    fn staff_users_may_everything_and_other_users_nothing() {
        let user = |staff| crate::auth::Principal::User {
            username: "u".into(),
            staff,
        };
        for needed in [
            Permission::ReadReadings,
            Permission::WriteReadings,
            Permission::Staff,
        ] {
            assert!(authorize(&user(true), needed).is_ok());
            assert!(matches!(
                authorize(&user(false), needed),
                Err(AuthError::Forbidden)
            ));
        }
    }
}
