//! `Idempotency-Key` on a POST: a retry of a request whose answer was lost gets that answer again
//! (with `Idempotent-Replayed: true`) instead of writing twice. Any POST handler can use it through
//! [`respond`]; its writes go through [`Recorder::commit`], which stores the answer in the same
//! transaction.
//!
//! Keys are scoped to the caller ([`Caller::key`](crate::api::guard::Caller)) and kept for the
//! configured time. A request claims its key as soon as it is admitted, before its body is read,
//! so a second request with the key gets 409 while the first runs, on any instance sharing the
//! database. A claim has a lease, which the instance renews while the request runs
//! ([`keep_claims_alive`]) and gives up when it stops ([`release_claims`]): only an instance that
//! died outright leaves a claim behind, and it holds the key until the lease ends. What is
//! stored: every answer the request itself produced once its body was read, 2xx and 4xx alike (a 400 for bad fields is the answer to that body, and a retry of the
//! same body gets it again). Not stored, so a retry runs afresh: 5xx answers, and answers given
//! before the whole body was read (415, 413, 408), which no retry can be compared with.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, ResponseError as _};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::api::guard::{DetachedWriter, Session};
use crate::db::idempotency_repository::{self, ClaimOutcome, KeyClaim, StoredAnswer};
use crate::db::{Database, DbConnection, QueryResult};
use crate::error::ApiError;
use crate::hex;

/// The request header carrying the key.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The response header marking a replayed answer.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";
/// The longest key accepted.
const MAX_KEY_LEN: usize = 255;

/// An answer as sent the first time and stored for replays: status, JSON body and `Location`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    status: StatusCode,
    body: String,
    location: Option<String>,
}

impl Answer {
    /// `body` as JSON with `status`.
    pub fn json(status: StatusCode, body: &impl Serialize) -> Self {
        Self::json_with_capacity(status, body, 128)
    }

    /// `body` as JSON with `status`, written into a buffer of `capacity` bytes: an estimate that
    /// spares a large body the copies of a buffer grown step by step.
    pub fn json_with_capacity(status: StatusCode, body: &impl Serialize, capacity: usize) -> Self {
        let mut buffer = Vec::with_capacity(capacity);
        // The API's wire types have string keys and finite numbers only: serializing them into a
        // Vec cannot fail, and an empty body would be caught by every test.
        let body = match serde_json::to_writer(&mut buffer, body) {
            Ok(()) => String::from_utf8(buffer).unwrap_or_default(),
            Err(_) => String::new(),
        };
        Self {
            status,
            body,
            location: None,
        }
    }

    /// This answer with a `Location` header.
    pub fn with_location(mut self, location: String) -> Self {
        self.location = Some(location);
        self
    }

    /// The answer an error gives.
    fn of_error(error: &ApiError) -> Self {
        Self::json(error.status_code(), &error.body())
    }

    /// The HTTP response.
    pub fn into_response(self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if let Some(location) = self.location {
            response.insert_header((header::LOCATION, location));
        }
        response.content_type(mime_json()).body(self.body)
    }

    fn stored(&self, request_hash: &str) -> StoredAnswer {
        StoredAnswer {
            request_hash: request_hash.to_owned(),
            status: i64::from(self.status.as_u16()),
            location: self.location.clone(),
            body: self.body.clone(),
        }
    }

    fn replayed(stored: StoredAnswer) -> HttpResponse {
        let status = u16::try_from(stored.status)
            .ok()
            .and_then(|code| StatusCode::from_u16(code).ok())
            .unwrap_or(StatusCode::OK);
        let mut response = Self {
            status,
            body: stored.body,
            location: stored.location,
        }
        .into_response();
        response.headers_mut().insert(
            header::HeaderName::from_static(IDEMPOTENT_REPLAYED),
            header::HeaderValue::from_static("true"),
        );
        response
    }
}

fn mime_json() -> header::HeaderValue {
    header::HeaderValue::from_static("application/json")
}

/// The key a request carries: absent, or 1 to 255 visible ASCII characters (400 otherwise, and
/// when sent twice).
fn key_of(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let mut values = req.headers().get_all(IDEMPOTENCY_KEY);
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let key = value.as_bytes();
    let visible = key.iter().all(|byte| byte.is_ascii_graphic());
    if values.next().is_some() || key.is_empty() || key.len() > MAX_KEY_LEN || !visible {
        return Err(ApiError::MalformedIdempotencyKey);
    }
    Ok(Some(String::from_utf8_lossy(key).into_owned()))
}

/// Now, in Unix milliseconds: the clock keys are kept and leased by.
pub fn now_ms() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

fn after(now: i64, wait: Duration) -> i64 {
    now.saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX))
}

/// What identifies a request for a retry: SHA-256 of its method, path and body.
fn request_hash(req: &HttpRequest, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(req.method().as_str().as_bytes());
    hasher.update(b"\n");
    hasher.update(req.path().as_bytes());
    hasher.update(b"\n");
    hasher.update(body);
    hex::encode(&hasher.finalize())
}

/// A claim this request holds, with what its answer is stored under.
#[derive(Debug)]
struct HeldClaim {
    claim: KeyClaim,
    request_hash: String,
    ttl: Duration,
    /// The answer is stored (or the claim was lost): nothing is left to release.
    settled: AtomicBool,
}

/// What a handler stores its answer with: in the transaction of its writes
/// ([`Recorder::commit`]). Without a key it records nothing.
#[derive(Debug, Clone, Default)]
pub struct Recorder(Option<Arc<HeldClaim>>);

/// How a write under a [`Recorder`] ended.
#[derive(Debug)]
pub enum Committed<T> {
    /// Written; no key, so nothing stored: the handler renders the answer.
    Unrecorded(T),
    /// Written, and this answer stored with the writes.
    Recorded(Answer),
    /// Nothing written: the claim ran out and another request took the key over.
    Superseded,
}

impl<T> Committed<T> {
    /// The answer to send: `render`ed now when it was not already.
    pub fn into_answer(self, render: impl FnOnce(T) -> Answer) -> Result<Answer, ApiError> {
        match self {
            Self::Unrecorded(value) => Ok(render(value)),
            Self::Recorded(answer) => Ok(answer),
            Self::Superseded => Err(ApiError::IdempotencyKeyInUse),
        }
    }
}

impl Recorder {
    /// Whether the request came with a key, so its answer is stored with its writes.
    pub fn records(&self) -> bool {
        self.0.is_some()
    }

    /// Runs `work`, then stores the answer `render` makes of its result, in the caller's
    /// transaction; with no key, only runs `work`. Nothing is written when the claim was lost.
    pub fn commit<T>(
        &self,
        conn: &mut DbConnection,
        work: impl FnOnce(&mut DbConnection) -> QueryResult<T>,
        render: impl FnOnce(T) -> Answer,
    ) -> QueryResult<Committed<T>> {
        let Some(held) = &self.0 else {
            return work(conn).map(Committed::Unrecorded);
        };
        if !idempotency_repository::holds(conn, &held.claim)? {
            held.settled.store(true, Ordering::Release);
            return Ok(Committed::Superseded);
        }
        let answer = render(work(conn)?);
        let expires_at = after(now_ms(), held.ttl);
        idempotency_repository::complete(
            conn,
            &held.claim,
            &answer.stored(&held.request_hash),
            expires_at,
        )?;
        // Settled only if the transaction commits; the flag is read after it has.
        Ok(Committed::Recorded(answer))
    }
}

/// The claims this instance holds for requests that have not settled yet, by claim token: renewed
/// while they run, released once they end without an answer (retried until the database takes
/// the release), and given up when the instance stops with some still held (a request cut by the
/// shutdown timeout, or a release that had no runtime left to run on).
#[derive(Debug, Clone, Default)]
pub struct ClaimsInFlight(Arc<Mutex<HashMap<String, HeldKey>>>);

/// A claim of [`ClaimsInFlight`], and whether its request has ended.
#[derive(Debug, Clone)]
struct HeldKey {
    claim: KeyClaim,
    /// The request ended without storing an answer: release the claim, never renew it.
    ended: bool,
}

impl ClaimsInFlight {
    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, HeldKey>> {
        // The map stays consistent whatever panicked while holding it: each step is one insert,
        // one remove or one flag.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn hold(&self, claim: &KeyClaim) {
        let key = HeldKey {
            claim: claim.clone(),
            ended: false,
        };
        self.held().insert(claim.token.clone(), key);
    }

    /// Marks `claim`'s request as ended: from now on it is released, not renewed.
    fn end(&self, claim: &KeyClaim) {
        if let Some(key) = self.held().get_mut(&claim.token) {
            key.ended = true;
        }
    }

    fn forget(&self, claim: &KeyClaim) {
        self.held().remove(&claim.token);
    }

    fn all(&self) -> Vec<KeyClaim> {
        self.held().values().map(|key| key.claim.clone()).collect()
    }

    /// The claims of requests still running, and those of requests that ended unreleased.
    fn running_and_ended(&self) -> (Vec<KeyClaim>, Vec<KeyClaim>) {
        let (ended, running): (Vec<HeldKey>, Vec<HeldKey>) =
            self.held().values().cloned().partition(|key| key.ended);
        let claims = |keys: Vec<HeldKey>| keys.into_iter().map(|key| key.claim).collect();
        (claims(running), claims(ended))
    }
}

/// Every quarter of `lease`: renews the claims of requests still running, so one that runs longer
/// than the lease (a large body on a slow link) keeps its key; and releases those of requests that
/// ended while the database refused the release (an outage, a failover), so a retry is not turned
/// away (409) until the lease ends. Runs until aborted.
pub async fn keep_claims_alive(database: Database, claims: ClaimsInFlight, lease: Duration) {
    let every = (lease / 4).max(Duration::from_millis(50));
    loop {
        actix_web::rt::time::sleep(every).await;
        let (running, ended) = claims.running_and_ended();
        if !running.is_empty() {
            let lease_until = after(now_ms(), lease);
            let renewed = database
                .write(move |conn| idempotency_repository::extend(conn, &running, lease_until))
                .await;
            if let Err(error) = renewed {
                tracing::warn!(error = %error, "renewing idempotency key claims failed");
            }
        }
        if !ended.is_empty() {
            let releasing = ended.clone();
            let released = database
                .write(move |conn| {
                    releasing
                        .iter()
                        .try_for_each(|claim| idempotency_repository::release(conn, claim))
                })
                .await;
            match released {
                Ok(()) => ended.iter().for_each(|claim| claims.forget(claim)),
                Err(error) => {
                    tracing::warn!(error = %error, "releasing idempotency key claims failed");
                }
            }
        }
    }
}

/// Gives up every claim still held, for a stopping instance: a retry of a request the stop cut
/// short then runs at once on the next instance instead of waiting for the lease to end.
pub async fn release_claims(database: &Database, claims: &ClaimsInFlight) {
    let held = claims.all();
    if held.is_empty() {
        return;
    }
    let count = held.len();
    let released = database
        .write(move |conn| {
            held.iter()
                .try_for_each(|claim| idempotency_repository::release(conn, claim))
        })
        .await;
    match released {
        Ok(()) => tracing::info!(
            count,
            "released the idempotency keys of unfinished requests"
        ),
        Err(error) => tracing::warn!(
            error = %error,
            count,
            "releasing idempotency keys failed; they free themselves when their lease ends"
        ),
    }
}

/// Releases a claim when the request ends without storing an answer, including when the client
/// hangs up and the handler is dropped mid-way.
struct ReleaseOnDrop {
    held: Arc<HeldClaim>,
    claims: ClaimsInFlight,
    writer: Option<DetachedWriter>,
}

impl ReleaseOnDrop {
    fn new(held: Arc<HeldClaim>, session: &Session) -> Self {
        let claims = session.state().claims_in_flight().clone();
        claims.hold(&held.claim);
        Self {
            held,
            claims,
            writer: session.detached_writer(),
        }
    }

    fn settle(&self) {
        self.held.settled.store(true, Ordering::Release);
        self.claims.forget(&self.held.claim);
    }
}

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        if self.held.settled.load(Ordering::Acquire) {
            self.claims.forget(&self.held.claim);
            return;
        }
        // Released now if the database takes it, else by `keep_claims_alive` later; forgotten
        // only once released, so if the runtime stops first the stopping instance releases it.
        self.claims.end(&self.held.claim);
        if let Some(writer) = self.writer.take() {
            let claim = self.held.claim.clone();
            let claims = self.claims.clone();
            writer.spawn("releasing an idempotency key", move |conn| {
                idempotency_repository::release(conn, &claim)?;
                claims.forget(&claim);
                Ok(())
            });
        }
    }
}

/// Answers a POST with `Idempotency-Key` support: claims the key (409 while another request
/// holds it), reads the body with `read_body`, replays a stored answer for the same request (422
/// for another request), or runs `run` with a [`Recorder`] its writes must store the answer
/// through. Without a key, reads the body and runs `run` with a recorder that records nothing.
pub async fn respond<B>(
    req: &HttpRequest,
    session: &Session,
    read_body: impl Future<Output = Result<B, ApiError>>,
    bytes_of: fn(&B) -> &[u8],
    run: impl AsyncFnOnce(B, Recorder) -> Result<Answer, ApiError>,
) -> Result<HttpResponse, ApiError> {
    let key = key_of(req)?;
    let (Some(key), Some(caller)) = (key, session.caller()) else {
        let body = read_body.await?;
        return run(body, Recorder::default())
            .await
            .map(Answer::into_response);
    };
    let settings = session.state().idempotency().clone();
    let claim = KeyClaim {
        caller: caller.key.clone(),
        key,
        token: request_token(),
    };
    let now = now_ms();
    let lease_until = after(now, settings.claim_lease);
    let claiming = claim.clone();
    let outcome = session
        .write(move |conn| idempotency_repository::claim(conn, &claiming, now, lease_until))
        .await?;
    match outcome {
        ClaimOutcome::Running => Err(ApiError::IdempotencyKeyInUse),
        ClaimOutcome::Completed(stored) => {
            let body = read_body.await?;
            if request_hash(req, bytes_of(&body)) == stored.request_hash {
                Ok(Answer::replayed(stored))
            } else {
                Err(ApiError::IdempotencyKeyReused)
            }
        }
        ClaimOutcome::Claimed => {
            let held = Arc::new(HeldClaim {
                claim,
                request_hash: String::new(),
                ttl: settings.ttl,
                settled: AtomicBool::new(false),
            });
            let mut guard = ReleaseOnDrop::new(held, session);
            // Answers given before the body is whole are not stored: the key is given up.
            let body = match read_body.await {
                Ok(body) => body,
                Err(error) => {
                    release(session, &guard).await;
                    return Err(error);
                }
            };
            let held = Arc::new(HeldClaim {
                claim: guard.held.claim.clone(),
                request_hash: request_hash(req, bytes_of(&body)),
                ttl: settings.ttl,
                settled: AtomicBool::new(false),
            });
            guard.held = Arc::clone(&held);
            match run(body, Recorder(Some(Arc::clone(&held)))).await {
                Ok(answer) => {
                    guard.settle();
                    Ok(answer.into_response())
                }
                Err(error) if held.settled.load(Ordering::Acquire) => Err(error),
                Err(error) if error.status_code().is_client_error() => {
                    let answer = Answer::of_error(&error);
                    let stored = answer.stored(&held.request_hash);
                    let expires_at = after(now_ms(), held.ttl);
                    let claim = held.claim.clone();
                    let recorded = session
                        .write(move |conn| {
                            idempotency_repository::complete(conn, &claim, &stored, expires_at)
                        })
                        .await;
                    if matches!(recorded, Ok(true)) {
                        guard.settle();
                    }
                    Err(error)
                }
                // 5xx: the key is given up before answering, so a retry runs again.
                Err(error) => {
                    release(session, &guard).await;
                    Err(error)
                }
            }
        }
    }
}

/// Gives the guarded claim up now, before the request is answered, so a retry that follows the
/// answer finds the key free; if that fails, the guard tries again in the background.
async fn release(session: &Session, guard: &ReleaseOnDrop) {
    let claim = guard.held.claim.clone();
    let released = session
        .write(move |conn| idempotency_repository::release(conn, &claim))
        .await;
    if released.is_ok() {
        guard.settle();
    }
}

/// 128 random bits, as hex: one request's claim.
fn request_token() -> String {
    hex::encode(&rand::random::<[u8; 16]>())
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn keys_are_one_to_255_visible_ascii_characters() {
        let key = |value: &str| {
            key_of(
                &TestRequest::post()
                    .insert_header((IDEMPOTENCY_KEY, value))
                    .to_http_request(),
            )
        };
        assert_eq!(key("a").unwrap().as_deref(), Some("a"));
        assert!(key(&"k".repeat(255)).unwrap().is_some());
        for bad in ["", "with space", "tab\there", &"k".repeat(256)] {
            assert!(
                matches!(key(bad), Err(ApiError::MalformedIdempotencyKey)),
                "{bad:?}"
            );
        }
        assert_eq!(
            key_of(&TestRequest::post().to_http_request()).unwrap(),
            None
        );
    }

    #[test]
    fn the_request_hash_covers_method_path_and_body() {
        let post = TestRequest::post().uri("/station/").to_http_request();
        let other_path = TestRequest::post().uri("/tokens/").to_http_request();
        let put = TestRequest::put().uri("/station/").to_http_request();
        let hash = request_hash(&post, b"[1]");
        assert_eq!(hash, request_hash(&post, b"[1]"));
        assert_eq!(hash.len(), 64);
        for other in [
            request_hash(&post, b"[2]"),
            request_hash(&other_path, b"[1]"),
            request_hash(&put, b"[1]"),
        ] {
            assert_ne!(hash, other);
        }
    }
}
