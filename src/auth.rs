//! Who is calling and what they may do: HTTP basic credentials checked against stored Argon2id
//! hashes (with a cache so repeat requests are cheap and a throttle so guessing is slow), or a
//! device token's key checked by its SHA-256 ([`token`]), make a [`Principal`]; each route names
//! the [`Permission`] it needs and [`authorize`] decides. A new kind of credential is a new kind
//! of principal, here; handlers never see the difference. Knows nothing about HTTP types.

pub mod cache;
pub mod credentials;
pub mod password;
pub mod throttle;
pub mod token;
mod turns;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OnceCell, Semaphore};

use crate::auth::cache::{Fingerprint, VerifiedCredentials};
use crate::auth::credentials::{Credential, Credentials, HeaderError, parse_authorization};
use crate::auth::password::{HashCost, HashError, PasswordHasher, WorkingMemory};
use crate::auth::throttle::{FailureThrottle, ThrottleSettings};
use crate::auth::token::{
    KeyHash, KnownToken, KnownTokens, LAST_USED_INTERVAL_SECONDS, now_unix_seconds,
};
use crate::auth::turns::Turns;
use crate::db::models::AccountStanding;
use crate::db::{CallerColumn, CallerGate, CallerStanding, DbConnection, QueryResult};
use crate::db::{Database, DbError, token_repository, user_repository};
use crate::domain::token::Scopes;

/// How authentication trades safety against speed.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// How long a verified password is trusted without hashing it again.
    pub cache_ttl: Duration,
    /// The most verified credentials remembered at once.
    pub cache_capacity: usize,
    /// Failed attempts allowed per client address, and their refill rate.
    pub throttle: ThrottleSettings,
    /// The most password hashes computed at once (each holds its Argon2 memory).
    pub max_concurrent_hashes: usize,
    /// The cost of new hashes: the decoy checked for unknown users, and passwords re-hashed
    /// when they are verified against a hash of another cost, so every account comes to cost
    /// what the decoy costs and timing tells no name from an unknown one.
    pub hash_cost: HashCost,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            cache_ttl: Duration::from_secs(300),
            cache_capacity: 10_000,
            throttle: ThrottleSettings {
                burst: 10,
                refill_every: Duration::from_secs(6),
            },
            max_concurrent_hashes: std::thread::available_parallelism().map_or(2, usize::from),
            hash_cost: HashCost::default(),
        }
    }
}

/// A caller who proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A user who gave their password: active, and staff or not.
    User {
        /// Their username.
        username: String,
        /// Staff may use the API (DRF's `IsAdminUser`); others may only log in.
        staff: bool,
    },
    /// A device holding a token: reads and adds readings as its scopes say, never more.
    Token {
        /// The token's id.
        id: i64,
        /// What it may do.
        scopes: Scopes,
        /// The one station name whose readings it may read and write, if bound.
        station: Option<String>,
    },
}

impl Principal {
    /// Whether this caller may do what `needed` names.
    pub fn may(&self, needed: Permission) -> bool {
        match (self, needed) {
            // IsAdminUser: staff may do everything; other users nothing.
            (Self::User { staff, .. }, _) => *staff,
            (Self::Token { scopes, .. }, Permission::ReadReadings) => scopes.read(),
            (Self::Token { scopes, .. }, Permission::WriteReadings) => scopes.write(),
            // Changing, deleting, and managing tokens stay with staff users.
            (Self::Token { .. }, Permission::Staff) => false,
        }
    }

    /// Who this is, for logs and for scoping what they store: `user:<name>` or `token:<id>`.
    pub fn key(&self) -> String {
        match self {
            Self::User { username, .. } => format!("user:{username}"),
            Self::Token { id, .. } => format!("token:{id}"),
        }
    }

    /// Who this is, for logs: the username, or `token:<id>`.
    pub fn name(&self) -> String {
        match self {
            Self::User { username, .. } => username.clone(),
            Self::Token { .. } => self.key(),
        }
    }

    /// The one station name this caller may read and write, if it is bound to one.
    pub fn bound_station(&self) -> Option<&str> {
        match self {
            Self::User { .. } => None,
            Self::Token { station, .. } => station.as_deref(),
        }
    }
}

/// What a route needs of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Read readings (GET, HEAD, OPTIONS on the readings).
    ReadReadings,
    /// Add readings (POST to the collection).
    WriteReadings,
    /// Change or delete readings, and everything else: staff only.
    Staff,
}

/// Lets `principal` do what `needed` names, or says why not.
pub fn authorize(principal: &Principal, needed: Permission) -> Result<(), AuthError> {
    if principal.may(needed) {
        Ok(())
    } else {
        Err(AuthError::Forbidden)
    }
}

/// What the gate decided before a request runs.
#[derive(Debug)]
pub enum Admission {
    /// The account was read and the password verified for this request, or the token read; the
    /// token, when it was one, so its use can be recorded ([`Authenticator::record_use`]).
    Confirmed(Principal, Option<Arc<KnownToken>>),
    /// The password matched the account's stored hash recently; whether the account still has
    /// that hash, and is active staff, is yet to be read. The request's first query does that
    /// ([`PendingCheck::run`]) in the same round trip to the database. Likewise a token seen
    /// before, whose existence is yet to be read.
    Remembered(Remembered),
}

/// Credentials the cache vouches for, still to be checked against the account (or a known
/// token, against its row).
#[derive(Debug)]
pub struct Remembered {
    claim: Claim,
    client: Option<IpAddr>,
    check: PendingCheck,
}

/// What a remembered request claims to be.
#[derive(Debug)]
enum Claim {
    Password {
        credentials: Credentials,
        key: Fingerprint,
    },
    Token(Arc<KnownToken>),
}

impl Remembered {
    /// The claimed username (or `token:<id>`), for logs.
    pub fn name(&self) -> String {
        match &self.claim {
            Claim::Password { credentials, .. } => credentials.username.clone(),
            Claim::Token(token) => token.principal.name(),
        }
    }

    /// The claimed caller's key, as [`Principal::key`] gives it.
    pub fn key(&self) -> String {
        match &self.claim {
            Claim::Password { credentials, .. } => format!("user:{}", credentials.username),
            Claim::Token(token) => token.principal.key(),
        }
    }

    /// The station a claimed token is bound to, if any.
    pub fn bound_station(&self) -> Option<&str> {
        match &self.claim {
            Claim::Password { .. } => None,
            Claim::Token(token) => token.principal.bound_station(),
        }
    }

    /// The token claimed, if it is one.
    pub fn token(&self) -> Option<Arc<KnownToken>> {
        match &self.claim {
            Claim::Password { .. } => None,
            Claim::Token(token) => Some(Arc::clone(token)),
        }
    }

    /// The account read that confirms these credentials, to run on a request's connection.
    pub fn check(&self) -> PendingCheck {
        self.check.clone()
    }
}

/// Reads an account and compares it with what the cache remembers, or reads whether a known
/// token still exists; runs on any connection.
#[derive(Debug, Clone)]
pub struct PendingCheck(Check);

#[derive(Debug, Clone)]
enum Check {
    Account {
        username: String,
        verified_hash: Arc<str>,
    },
    Token(Arc<KnownToken>),
}

/// What reading the account showed.
#[derive(Debug)]
pub enum Checked {
    /// Same stored hash, active: who the caller is.
    Admitted(Principal),
    /// Gone or inactive.
    Denied(AuthError),
    /// The stored hash changed since the password was verified: verify it again.
    Stale,
}

impl PendingCheck {
    /// The read as a column another statement can carry (see [`CallerColumn`]).
    pub fn column(&self) -> CallerColumn {
        match &self.0 {
            Check::Account {
                username,
                verified_hash,
            } => CallerColumn::Account {
                username: username.clone(),
                verified_hash: Arc::clone(verified_hash),
            },
            Check::Token(token) => CallerColumn::Token {
                key_hash: token.key_hash.shared(),
            },
        }
    }

    /// Reads the account (or the token) on `conn`, with a statement of its own.
    pub fn run(&self, conn: &mut DbConnection) -> QueryResult<Checked> {
        let standing = self.column().read(conn)?;
        Ok(self.judge(standing))
    }

    /// What the read `standing` makes of the caller.
    pub fn judge(&self, standing: CallerStanding) -> Checked {
        if let (Check::Token(token), CallerStanding::Token { last_used }) = (&self.0, standing) {
            token.note_last_used(last_used);
        }
        self.verdict(standing)
    }

    /// The values of the caller column that admit the caller to do what `needed` names, for a
    /// statement that writes only for them; `None` when no value would.
    pub fn gate(&self, needed: Permission) -> Option<CallerGate> {
        self.column().gate(|standing| {
            matches!(self.verdict(standing), Checked::Admitted(principal) if principal.may(needed))
        })
    }

    /// What the read `standing` makes of the caller, with no effect of its own.
    fn verdict(&self, standing: CallerStanding) -> Checked {
        match (&self.0, standing) {
            (Check::Token(token), CallerStanding::Token { .. }) => {
                Checked::Admitted(token.principal.clone())
            }
            (Check::Token(_), _) => Checked::Denied(AuthError::InvalidToken),
            (Check::Account { .. }, CallerStanding::NewPassword) => Checked::Stale,
            (Check::Account { username, .. }, CallerStanding::Active { staff }) => {
                Checked::Admitted(Principal::User {
                    username: username.clone(),
                    staff,
                })
            }
            // DRF treats an inactive user's right password as a wrong one.
            (Check::Account { .. }, _) => Checked::Denied(AuthError::InvalidCredentials),
        }
    }
}

/// The principal an account whose password matched makes: none when it is inactive (DRF treats
/// an inactive user's right password as a wrong one).
fn admit(username: &str, account: &AccountStanding) -> Result<Principal, AuthError> {
    if account.is_active {
        Ok(Principal::User {
            username: username.to_owned(),
            staff: account.is_staff,
        })
    } else {
        Err(AuthError::InvalidCredentials)
    }
}

/// Why a request was not let in.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No usable `Authorization` header.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// Wrong password, or an unknown or inactive user (indistinguishable on purpose).
    #[error("Invalid username/password.")]
    InvalidCredentials,
    /// An unknown, revoked or expired token key.
    #[error("Invalid token.")]
    InvalidToken,
    /// Authenticated, but the route needs more than the caller may do.
    #[error("You do not have permission to perform this action.")]
    Forbidden,
    /// Too many recent failures from this client or for this username.
    #[error("Request was throttled.")]
    Throttled {
        /// When the next attempt will be allowed.
        retry_after: Duration,
    },
    /// The user table could not be read.
    #[error(transparent)]
    Database(#[from] DbError),
    /// Hashing could not run.
    #[error("password verification did not complete")]
    Verification,
}

/// Checks credentials; one per process, shared by all workers.
pub struct Authenticator {
    database: Database,
    cache: VerifiedCredentials,
    /// Tokens seen recently, by key hash.
    tokens: KnownTokens,
    throttle: FailureThrottle,
    hash_permits: Semaphore,
    /// Hashes passwords that are re-hashed at the configured cost.
    hasher: PasswordHasher,
    /// Checked against for unknown usernames, so they cost what a wrong password costs.
    decoy_hash: Arc<str>,
    /// One verification per client address at a time, so each sees the failures before it.
    client_turns: Turns<IpAddr>,
    /// One verification per username at a time, so guesses at one account from many addresses
    /// (each within its own allowance) come one hash after another, and the owner's right
    /// password waits its turn instead of being refused.
    username_turns: Turns<String>,
    /// One verification per fingerprint at a time; the others wait for its answer.
    in_flight: Mutex<HashMap<Fingerprint, Arc<OnceCell<bool>>>>,
    /// Argon2 memory shared by the verifications, so they do not each allocate their own.
    working_memory: Arc<WorkingMemory>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Builds the authenticator; computes the decoy hash once.
    pub fn new(database: Database, settings: &AuthSettings) -> Result<Self, HashError> {
        let hasher = PasswordHasher::new(settings.hash_cost)?;
        let decoy_hash = hasher.hash("decoy password")?.into();
        Ok(Self {
            database,
            cache: VerifiedCredentials::new(settings.cache_ttl, settings.cache_capacity),
            tokens: KnownTokens::new(settings.cache_capacity),
            throttle: FailureThrottle::new(settings.throttle, 100_000),
            hash_permits: Semaphore::new(settings.max_concurrent_hashes.max(1)),
            hasher,
            decoy_hash,
            client_turns: Turns::default(),
            username_turns: Turns::default(),
            in_flight: Mutex::new(HashMap::new()),
            working_memory: Arc::new(WorkingMemory::default()),
        })
    }

    /// Decides on a request from its raw `Authorization` header and client address: remembered
    /// credentials are admitted pending [`PendingCheck`]; others are checked in full now.
    pub async fn admit(
        &self,
        authorization: Option<&[u8]>,
        client: Option<IpAddr>,
    ) -> Result<Admission, AuthError> {
        let credentials = match parse_authorization(authorization)? {
            Credential::Basic(credentials) => credentials,
            Credential::Token(key) => return self.admit_token(&key, client).await,
        };
        let key = self
            .cache
            .fingerprint(&[&credentials.username, &credentials.password]);
        match self.cache.verified_hash(&key) {
            Some(verified_hash) => Ok(Admission::Remembered(Remembered {
                check: PendingCheck(Check::Account {
                    username: credentials.username.clone(),
                    verified_hash,
                }),
                claim: Claim::Password { credentials, key },
                client,
            })),
            None => self
                .authenticate(credentials, key, client)
                .await
                .map(|principal| Admission::Confirmed(principal, None)),
        }
    }

    /// A token key: a known token is admitted pending the read that it still exists; another is
    /// looked up now, after the client's allowance of failures is checked. Expiry is the clock's
    /// to decide. An unknown, revoked or expired key counts as a failure, as a wrong password
    /// does.
    async fn admit_token(&self, key: &str, client: Option<IpAddr>) -> Result<Admission, AuthError> {
        let hash = KeyHash::of(key);
        let now = now_unix_seconds();
        if let Some(token) = self.tokens.get(&hash) {
            if token.has_expired(now) {
                self.tokens.forget(&hash);
                return Err(self.token_refused(client));
            }
            return Ok(Admission::Remembered(Remembered {
                check: PendingCheck(Check::Token(Arc::clone(&token))),
                claim: Claim::Token(token),
                client,
            }));
        }
        if let Some(client) = client {
            self.throttle_check(client)?;
        }
        let lookup = hash.clone();
        let row = self
            .database
            .read(move |conn| token_repository::find_by_key_hash(conn, lookup.as_ref()))
            .await?;
        match row.and_then(KnownToken::from_row) {
            Some(token) if !token.has_expired(now) => {
                let token = Arc::new(token);
                self.tokens.remember(Arc::clone(&token));
                Ok(Admission::Confirmed(token.principal.clone(), Some(token)))
            }
            _ => Err(self.token_refused(client)),
        }
    }

    /// Counts a refused token against the client; the error to answer with.
    fn token_refused(&self, client: Option<IpAddr>) -> AuthError {
        if let Some(client) = client {
            self.throttle.record_failure(client);
        }
        AuthError::InvalidToken
    }

    /// Records that `token` was used now, at most once a minute per token: most calls only
    /// compare a number; the one that writes does so off the request, conditionally (another
    /// instance may have written it meanwhile), and a failure is only logged.
    pub fn record_use(&self, token: &KnownToken) {
        let now = now_unix_seconds();
        if !token.claim_use(now) {
            return;
        }
        let database = self.database.clone();
        let id = token.id;
        tokio::spawn(async move {
            let written = database
                .write(move |conn| {
                    token_repository::touch(conn, id, now, LAST_USED_INTERVAL_SECONDS)
                })
                .await;
            if let Err(error) = written {
                tracing::warn!(error = %error, token = id, "recording a token's last use failed");
            }
        });
    }

    /// Finishes what [`Authenticator::admit`] left pending, given what the account read showed.
    pub async fn settle(
        &self,
        remembered: Remembered,
        checked: Checked,
    ) -> Result<Principal, AuthError> {
        let (credentials, key) = match (remembered.claim, checked) {
            (_, Checked::Admitted(principal)) => return Ok(principal),
            // The password (or key) was right: nothing to forget.
            (_, Checked::Denied(AuthError::Forbidden)) => return Err(AuthError::Forbidden),
            (Claim::Token(token), _) => {
                self.tokens.forget(&token.key_hash);
                return Err(self.token_refused(remembered.client));
            }
            (Claim::Password { key, .. }, Checked::Denied(denied)) => {
                self.cache.forget(&key);
                return Err(denied);
            }
            (Claim::Password { credentials, key }, Checked::Stale) => (credentials, key),
        };
        self.cache.forget(&key);
        self.authenticate(credentials, key, remembered.client).await
    }

    /// Reads the account for remembered credentials, for a request that made no query of its
    /// own, and settles them.
    pub async fn confirm(&self, remembered: Remembered) -> Result<Principal, AuthError> {
        let check = remembered.check();
        let checked = self.database.read(move |conn| check.run(conn)).await?;
        self.settle(remembered, checked).await
    }

    /// The full check: the client's allowance (before anything is read), the account, the
    /// password against its hash (or the decoy's), and a right password remembered.
    async fn authenticate(
        &self,
        credentials: Credentials,
        key: Fingerprint,
        client: Option<IpAddr>,
    ) -> Result<Principal, AuthError> {
        if let Some(client) = client {
            self.throttle_check(client)?;
        }
        let Credentials { username, password } = credentials;
        let lookup = username.clone();
        let user = self
            .database
            .read(move |conn| user_repository::find_by_username(conn, &lookup))
            .await?;
        let stored_hash: Arc<str> = user.as_ref().map_or(Arc::clone(&self.decoy_hash), |u| {
            Arc::from(u.password_hash.as_str())
        });
        let attempt = Attempt {
            fingerprint: self
                .cache
                .fingerprint(&[&username, &password, &stored_hash]),
            username: &username,
            client,
            account_exists: user.is_some(),
        };
        let matches = self
            .verify_once(attempt, Arc::clone(&stored_hash), &password)
            .await?;
        let Some(user) = user.filter(|_| matches) else {
            return Err(AuthError::InvalidCredentials);
        };
        let verified_hash = if password::has_cost(&stored_hash, self.hasher.cost()) {
            Some(stored_hash)
        } else {
            self.rehash(&user.username, &stored_hash, password).await
        };
        if let Some(verified_hash) = verified_hash {
            self.cache.remember(key, verified_hash);
        }
        let standing = AccountStanding {
            password_hash: user.password_hash,
            is_staff: user.is_staff,
            is_active: user.is_active,
        };
        admit(&user.username, &standing)
    }

    fn throttle_check(&self, client: IpAddr) -> Result<(), AuthError> {
        self.throttle
            .check(client)
            .map_err(|retry_after| AuthError::Throttled { retry_after })
    }

    /// Stores `password` hashed at the configured cost in place of `old_hash`, unless the
    /// account's hash changed meanwhile; the hash now stored, when this stored it. A failure only
    /// means the next login tries again, so it is logged, not returned.
    async fn rehash(&self, username: &str, old_hash: &str, password: String) -> Option<Arc<str>> {
        let hasher = self.hasher.clone();
        let new_hash = {
            let _permit = self.hash_permits.acquire().await.ok()?;
            tokio::task::spawn_blocking(move || hasher.hash(&password))
                .await
                .ok()?
                .ok()?
        };
        let (name, old, new) = (username.to_owned(), old_hash.to_owned(), new_hash.clone());
        let stored = self
            .database
            .write(move |conn| user_repository::replace_password_hash(conn, &name, &old, &new))
            .await;
        match stored {
            Ok(true) => Some(Arc::from(new_hash)),
            Ok(false) => None,
            Err(error) => {
                tracing::warn!(error = %error, username, "re-hashing a password at the configured cost failed");
                None
            }
        }
    }

    /// Verifies on the blocking pool, at most `max_concurrent_hashes` at once, one at a time
    /// per client address and per username, and only once for identical concurrent requests. A
    /// failure is counted against the client before the next verification from there begins,
    /// which checks the allowance again: concurrent guesses cannot outrun it.
    async fn verify_once(
        &self,
        attempt: Attempt<'_>,
        stored_hash: Arc<str>,
        password: &str,
    ) -> Result<bool, AuthError> {
        let cell = self
            .lock_in_flight()
            .entry(attempt.fingerprint)
            .or_default()
            .clone();
        let outcome = cell
            .get_or_try_init(|| async {
                let client_turn = attempt.client.map(|c| self.client_turns.turn(c));
                let _client_turn = match &client_turn {
                    Some(turn) => Some(turn.take().await),
                    None => None,
                };
                if let Some(client) = attempt.client {
                    self.throttle_check(client)?;
                }
                let username_turn = self.username_turns.turn(attempt.username.to_owned());
                let _username_turn = username_turn.take().await;
                let _permit = self
                    .hash_permits
                    .acquire()
                    .await
                    .map_err(|_| AuthError::Verification)?;
                let memory = Arc::clone(&self.working_memory);
                let password = password.to_owned();
                let matches = tokio::task::spawn_blocking(move || {
                    password::verify(&memory, &stored_hash, &password)
                })
                .await
                .map_err(|_| AuthError::Verification)?;
                if let Some(client) = attempt.client
                    && !(matches && attempt.account_exists)
                {
                    self.throttle.record_failure(client);
                }
                Ok(matches)
            })
            .await
            .copied();
        let mut in_flight = self.lock_in_flight();
        if in_flight
            .get(&attempt.fingerprint)
            .is_some_and(|current| Arc::ptr_eq(current, &cell))
        {
            in_flight.remove(&attempt.fingerprint);
        }
        outcome
    }

    fn lock_in_flight(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<Fingerprint, Arc<OnceCell<bool>>>> {
        lock_map(&self.in_flight)
    }
}

/// Locks a map that a panic elsewhere cannot leave inconsistent.
fn lock_map<K, V>(map: &Mutex<HashMap<K, V>>) -> std::sync::MutexGuard<'_, HashMap<K, V>> {
    map.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One verification's identity: what it checks, for whom, from where.
#[derive(Clone, Copy)]
struct Attempt<'a> {
    /// The username, password and stored hash, keyed: identical attempts share one hash.
    fingerprint: Fingerprint,
    username: &'a str,
    client: Option<IpAddr>,
    /// A right password for an account that does not exist (the decoy's) is still a failure.
    account_exists: bool,
}
