//! The only module that speaks SQL. Diesel is synchronous, so every query runs on the blocking
//! thread pool through [`Database::read`] or [`Database::write`], never on an async worker.

pub mod models;
pub mod schema;
pub mod station_repository;
pub mod user_repository;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel::result::Error as QueryError;
use diesel::{QueryResult, SqliteConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use tokio::sync::Semaphore;

/// The connection type every repository function takes.
pub type DbConnection = SqliteConnection;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// How to reach the database and how hard to lean on it.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// `sqlite://PATH`, `sqlite:PATH` or a plain file path.
    pub url: String,
    /// The most connections the pool opens.
    pub pool_size: u32,
    /// How long a request waits for a free connection before it gets a 503.
    pub checkout_timeout: Duration,
    /// How long SQLite waits for another writer (another process) before giving up.
    pub busy_timeout: Duration,
}

impl DatabaseSettings {
    /// Settings for `url` with the service's defaults.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            pool_size: 8,
            checkout_timeout: Duration::from_secs(5),
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// Why a database call failed, as far as a caller needs to know.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL names something this build cannot open.
    #[error("unsupported database URL {0:?}: use sqlite://PATH or a file path")]
    UnsupportedUrl(String),
    /// No connection could be had in time, or the database is locked or gone: worth a retry.
    #[error("the database is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A query failed for a reason retrying will not fix.
    #[error("a database query failed")]
    Query(#[source] QueryError),
    /// Applying the embedded migrations failed.
    #[error("applying database migrations failed")]
    Migration(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The blocking task running the query panicked or was cancelled.
    #[error("a database task did not complete")]
    Task(#[source] tokio::task::JoinError),
}

impl DbError {
    /// True when a write broke a UNIQUE constraint.
    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            Self::Query(QueryError::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }

    fn from_query(error: QueryError) -> Self {
        // SQLite reports contention as an ordinary error; to a client it is a temporary outage.
        if let QueryError::DatabaseError(_, info) = &error {
            let message = info.message();
            if message.contains("database is locked") || message.contains("database is busy") {
                return Self::Unavailable(Box::new(error));
            }
        }
        Self::Query(error)
    }
}

type ConnectionPool = Pool<ConnectionManager<DbConnection>>;

/// A pooled database handle; cheap to clone.
#[derive(Clone)]
pub struct Database {
    pool: ConnectionPool,
    /// One permit per pooled connection: requests queue here, as futures, instead of each
    /// taking a blocking thread only to wait inside `pool.get()` (hundreds of parked threads
    /// under load, each with its own stack and malloc arena).
    connection_permits: Arc<Semaphore>,
    checkout_timeout: Duration,
    /// SQLite has one writer at a time: queueing writers here, before they take a blocking thread
    /// and a connection, beats having them spin on the file lock.
    write_gate: Arc<Semaphore>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("state", &self.pool.state())
            .finish_non_exhaustive()
    }
}

/// Per-connection settings that make SQLite behave as a server database.
#[derive(Debug)]
struct SqliteServerPragmas {
    busy_timeout: Duration,
}

impl CustomizeConnection<DbConnection, diesel::r2d2::Error> for SqliteServerPragmas {
    fn on_acquire(&self, conn: &mut DbConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(&format!(
            "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; \
             PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
            self.busy_timeout.as_millis()
        ))
        .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// The file path inside a SQLite URL.
fn sqlite_path(url: &str) -> Result<&str, DbError> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let has_other_scheme = path.contains("://");
    if path.is_empty() || has_other_scheme {
        return Err(DbError::UnsupportedUrl(url.to_owned()));
    }
    Ok(path)
}

impl Database {
    /// Opens a pool on the database `settings` names, creating a SQLite file if it is missing.
    pub fn connect(settings: &DatabaseSettings) -> Result<Self, DbError> {
        let path = sqlite_path(&settings.url)?;
        if let Some(parent) = Path::new(path).parent()
            && !parent.as_os_str().is_empty()
            && !parent.exists()
        {
            return Err(DbError::Unavailable(
                format!("directory {} does not exist", parent.display()).into(),
            ));
        }
        let pool_size = settings.pool_size.max(1);
        let pool = Pool::builder()
            .max_size(pool_size)
            .min_idle(Some(1))
            .connection_timeout(settings.checkout_timeout)
            // r2d2 would run `SELECT 1` before every checkout; a failing query reports a broken
            // connection just as well, and Diesel marks it broken so the pool replaces it.
            .test_on_check_out(false)
            .connection_customizer(Box::new(SqliteServerPragmas {
                busy_timeout: settings.busy_timeout,
            }))
            .build(ConnectionManager::<DbConnection>::new(path))
            .map_err(|e| DbError::Unavailable(Box::new(e)))?;
        Ok(Self {
            pool,
            connection_permits: Arc::new(Semaphore::new(pool_size as usize)),
            checkout_timeout: settings.checkout_timeout,
            write_gate: Arc::new(Semaphore::new(1)),
        })
    }

    /// Applies every embedded migration not applied yet; returns the versions it applied.
    pub fn run_migrations(&self) -> Result<Vec<String>, DbError> {
        let mut conn = self.checkout()?;
        let applied = conn
            .run_pending_migrations(MIGRATIONS)
            .map_err(DbError::Migration)?;
        Ok(applied.iter().map(ToString::to_string).collect())
    }

    fn checkout(&self) -> Result<PooledConnection<ConnectionManager<DbConnection>>, DbError> {
        self.pool
            .get()
            .map_err(|e| DbError::Unavailable(Box::new(e)))
    }

    /// Runs `query` on this thread; for the command line and start-up, never for a request.
    pub fn blocking<T>(
        &self,
        query: impl FnOnce(&mut DbConnection) -> QueryResult<T>,
    ) -> Result<T, DbError> {
        let mut conn = self.checkout()?;
        query(&mut conn).map_err(DbError::from_query)
    }

    /// Runs a read-only `query` on the blocking pool.
    pub async fn read<T, F>(&self, query: F) -> Result<T, DbError>
    where
        F: FnOnce(&mut DbConnection) -> QueryResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.off_the_async_workers(query).await
    }

    /// Runs `change` in an immediate (write-locking) transaction, one writer at a time.
    pub async fn write<T, F>(&self, change: F) -> Result<T, DbError>
    where
        F: FnOnce(&mut DbConnection) -> QueryResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let _turn = self.wait_for(&self.write_gate).await?;
        self.off_the_async_workers(move |conn| conn.immediate_transaction(change))
            .await
    }

    /// The one way requests reach the database: checkout and query on the blocking pool, keeping
    /// the caller's tracing span.
    async fn off_the_async_workers<T, F>(&self, work: F) -> Result<T, DbError>
    where
        F: FnOnce(&mut DbConnection) -> QueryResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let permit = self.wait_for(&self.connection_permits).await?;
        let database = self.clone();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let _permit = permit;
            database.blocking(work)
        })
        .await
        .map_err(DbError::Task)?
    }

    /// A permit from `semaphore`, waiting at most the checkout timeout.
    async fn wait_for(
        &self,
        semaphore: &Arc<Semaphore>,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, DbError> {
        match tokio::time::timeout(self.checkout_timeout, semaphore.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(closed)) => Err(DbError::Unavailable(Box::new(closed))),
            Err(elapsed) => Err(DbError::Unavailable(Box::new(elapsed))),
        }
    }

    /// Runs `change` in an immediate transaction on this thread (command line, start-up).
    pub fn write_blocking<T>(
        &self,
        change: impl FnOnce(&mut DbConnection) -> QueryResult<T>,
    ) -> Result<T, DbError> {
        self.blocking(|conn| conn.immediate_transaction(change))
    }

    /// True when a connection can be had and answers a trivial query.
    pub async fn is_reachable(&self) -> bool {
        self.read(|conn| conn.batch_execute("SELECT 1"))
            .await
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_and_plain_paths_name_a_file() {
        assert_eq!(sqlite_path("sqlite://station.db").unwrap(), "station.db");
        assert_eq!(sqlite_path("sqlite:///tmp/s.db").unwrap(), "/tmp/s.db");
        assert_eq!(sqlite_path("sqlite:s.db").unwrap(), "s.db");
        assert_eq!(sqlite_path("data/s.db").unwrap(), "data/s.db");
        assert!(sqlite_path("postgres://localhost/x").is_err());
        assert!(sqlite_path("sqlite://").is_err());
    }
}
