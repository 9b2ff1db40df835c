//! Who is calling: HTTP basic credentials checked against stored Argon2id hashes, with a cache so
//! repeat requests are cheap and a throttle so guessing is slow. Knows nothing about HTTP types.

pub mod cache;
pub mod credentials;
pub mod password;
pub mod throttle;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OnceCell, Semaphore};

use crate::auth::cache::{Fingerprint, VerifiedCredentials};
use crate::auth::credentials::{Credentials, HeaderError, parse_basic};
use crate::auth::password::{HashCost, HashError, PasswordHasher, WorkingMemory};
use crate::auth::throttle::{FailureThrottle, ThrottleKey, ThrottleSettings};
use crate::db::{Database, DbError, user_repository};

/// How authentication trades safety against speed.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// How long a verified password is trusted without hashing it again.
    pub cache_ttl: Duration,
    /// The most verified credentials remembered at once.
    pub cache_capacity: usize,
    /// Failed attempts allowed per client address and per username, and their refill rate.
    pub throttle: ThrottleSettings,
    /// The most password hashes computed at once (each holds its Argon2 memory).
    pub max_concurrent_hashes: usize,
    /// The cost of the decoy hash checked for unknown users; match it to real hashes.
    pub decoy_cost: HashCost,
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
            decoy_cost: HashCost::default(),
        }
    }
}

/// A caller who proved who they are and may use the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedUser {
    /// Their username, for logs.
    pub username: String,
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
    /// Authenticated, but not staff.
    #[error("You do not have permission to perform this action.")]
    NotStaff,
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
    throttle: FailureThrottle,
    hash_permits: Semaphore,
    /// Checked against for unknown usernames, so they cost what a wrong password costs.
    decoy_hash: String,
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
        let decoy_hash = PasswordHasher::new(settings.decoy_cost)?.hash("decoy password")?;
        Ok(Self {
            database,
            cache: VerifiedCredentials::new(settings.cache_ttl, settings.cache_capacity),
            throttle: FailureThrottle::new(settings.throttle, 100_000),
            hash_permits: Semaphore::new(settings.max_concurrent_hashes.max(1)),
            decoy_hash,
            in_flight: Mutex::new(HashMap::new()),
            working_memory: Arc::new(WorkingMemory::default()),
        })
    }

    /// Authenticates a request from its raw `Authorization` header and client address, and
    /// checks that the user is active staff (`IsAdminUser`).
    pub async fn authenticate(
        &self,
        authorization: Option<&[u8]>,
        client: Option<IpAddr>,
    ) -> Result<AuthenticatedUser, AuthError> {
        let Credentials { username, password } = parse_basic(authorization)?;
        let lookup = username.clone();
        let user = self
            .database
            .read(move |conn| user_repository::find_by_username(conn, &lookup))
            .await?;
        let stored_hash = user
            .as_ref()
            .map_or(self.decoy_hash.as_str(), |u| u.password_hash.as_str());
        let fingerprint = self.cache.fingerprint(&username, &password, stored_hash);

        // A cached success proves the caller knows the password, so it is not throttled: an
        // attacker guessing a user's password cannot lock that user out this way.
        let known_good = user.is_some() && self.cache.contains(&fingerprint);
        if !known_good {
            let mut keys = vec![ThrottleKey::Username(username.clone())];
            keys.extend(client.map(ThrottleKey::Client));
            self.throttle
                .check(&keys)
                .map_err(|retry_after| AuthError::Throttled { retry_after })?;
            let matches = self
                .verify_once(fingerprint, stored_hash.to_owned(), password)
                .await?;
            if matches && user.is_some() {
                self.cache.insert(fingerprint);
            } else {
                self.throttle.record_failure(&keys);
                return Err(AuthError::InvalidCredentials);
            }
        }
        match user {
            Some(user) if user.is_active && user.is_staff => Ok(AuthenticatedUser {
                username: user.username,
            }),
            Some(user) if user.is_active => Err(AuthError::NotStaff),
            _ => Err(AuthError::InvalidCredentials),
        }
    }

    /// Verifies on the blocking pool, at most `max_concurrent_hashes` at once, and only once for
    /// identical concurrent requests.
    async fn verify_once(
        &self,
        fingerprint: Fingerprint,
        stored_hash: String,
        password: String,
    ) -> Result<bool, AuthError> {
        let cell = self
            .lock_in_flight()
            .entry(fingerprint)
            .or_default()
            .clone();
        let outcome = cell
            .get_or_try_init(|| async {
                let _permit = self
                    .hash_permits
                    .acquire()
                    .await
                    .map_err(|_| AuthError::Verification)?;
                let memory = Arc::clone(&self.working_memory);
                tokio::task::spawn_blocking(move || {
                    password::verify(&memory, &stored_hash, &password)
                })
                .await
                .map_err(|_| AuthError::Verification)
            })
            .await
            .copied();
        let mut in_flight = self.lock_in_flight();
        if in_flight
            .get(&fingerprint)
            .is_some_and(|current| Arc::ptr_eq(current, &cell))
        {
            in_flight.remove(&fingerprint);
        }
        outcome
    }

    fn lock_in_flight(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<Fingerprint, Arc<OnceCell<bool>>>> {
        self.in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
