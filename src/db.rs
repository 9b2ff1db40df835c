//! The only module that speaks SQL. One binary serves SQLite, PostgreSQL and MySQL/MariaDB,
//! chosen by the database URL; everything backend-specific lives here and in the repositories.
//! Diesel is synchronous, so every query runs on threads of its own through [`Database::read`] or
//! [`Database::write`] (see [`executor`]), never on an async worker.

/// Runs an INSERT or UPDATE `$statement` and reads back the row it wrote, as `$row`: with
/// `RETURNING` on SQLite and PostgreSQL. MySQL has no `RETURNING`, so there the statement runs and
/// `$read_back` (given the MySQL connection as `$mysql`) reads the row in the same transaction.
macro_rules! returning_row {
    ($conn:expr, $statement:expr, $row:ty, |$mysql:ident| $read_back:expr) => {
        match $conn {
            $crate::db::DbConnection::Sqlite(sqlite) => $statement
                .returning(<$row>::as_returning())
                .get_result(sqlite),
            $crate::db::DbConnection::Postgres(pg) => {
                $statement.returning(<$row>::as_returning()).get_result(pg)
            }
            $crate::db::DbConnection::Mysql($mysql) => {
                $statement.execute($mysql)?;
                $read_back
            }
        }
    };
}

/// [`returning_row!`] for an UPDATE that may match no row: `Ok(None)` then.
macro_rules! returning_optional_row {
    ($conn:expr, $statement:expr, $row:ty, |$mysql:ident| $read_back:expr) => {
        match $conn {
            $crate::db::DbConnection::Sqlite(sqlite) => $statement
                .returning(<$row>::as_returning())
                .get_result(sqlite)
                .optional(),
            $crate::db::DbConnection::Postgres(pg) => $statement
                .returning(<$row>::as_returning())
                .get_result(pg)
                .optional(),
            $crate::db::DbConnection::Mysql($mysql) => {
                // Not the affected-row count: MySQL counts only rows whose values changed.
                $statement.execute($mysql)?;
                $read_back
            }
        }
    };
}

/// Runs `$query`, one Diesel expression, on whichever concrete connection `$conn` holds, bound
/// to `$concrete`. Diesel caches a concrete backend's prepared statements by the query's type
/// and never renders their SQL again; through the multi-backend wrapper it renders the SQL on
/// every run (a few percent of a request in the profile). For the queries every request makes.
macro_rules! on_its_backend {
    ($conn:expr, |$concrete:ident| $query:expr) => {
        match $conn {
            $crate::db::DbConnection::Sqlite($concrete) => $query,
            $crate::db::DbConnection::Postgres($concrete) => $query,
            $crate::db::DbConnection::Mysql($concrete) => $query,
        }
    };
}

mod connection;
mod executor;
pub mod key_repository;
pub mod models;
pub mod schema;
mod statement_deadline;
pub mod station_repository;
pub mod user_repository;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// What a query closure returns.
pub use diesel::QueryResult;
use diesel::connection::SimpleConnection;
use diesel::r2d2::{Pool, PooledConnection};
use diesel::result::{DatabaseErrorKind, Error as QueryError};
use secrecy::{ExposeSecret as _, SecretString};

pub use connection::{Backend, DbConnection, redact_password};
use connection::{ConnectionManager, Target};
use executor::{Claim, GroupCommitWriter, QueryThreads};

/// Sets up the TLS library the PostgreSQL and MySQL clients share, once per process, before
/// either opens a connection; the server and anything else in the process that connects to
/// those databases directly (the test suite does) call it first.
///
/// OpenSSL, initialised by the clients themselves, registers a cleanup that runs at process exit
/// and frees its global state while other threads may still be using a TLS connection (a pool
/// dropping one, a request finishing), which crashed processes at exit ("double free or
/// corruption"). Initialised here first, it registers no such cleanup; the memory goes back to
/// the system with the process.
pub fn prepare_client_libraries() {
    openssl_sys::init();
}

/// The id MySQL gave the row this connection inserted last.
pub(crate) fn last_insert_id(conn: &mut diesel::MysqlConnection) -> QueryResult<i64> {
    use diesel::RunQueryDsl;

    // LAST_INSERT_ID() is unsigned; the column (and `i64`) is signed.
    diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "CAST(LAST_INSERT_ID() AS SIGNED)",
    ))
    .get_result(conn)
}

/// How to reach the database and how hard to lean on it.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// `sqlite://PATH`, `sqlite:PATH`, a plain file path, `postgres://…`/`postgresql://…` or
    /// `mysql://…`. Secret, as it may hold a password: `Debug` shows none of it.
    pub url: SecretString,
    /// The most connections the pool opens for queries; `None` for the engine's default
    /// ([`DatabaseSettings::default_pool_size`]). SQLite's writer has one more of its own.
    pub pool_size: Option<u32>,
    /// How long a request waits for a free connection before it gets a 503; also the bound on
    /// opening a connection to a database server.
    pub checkout_timeout: Duration,
    /// How long SQLite waits for another writer (another process) before giving up.
    pub busy_timeout: Duration,
    /// The longest one statement may run before it is cancelled (by the server on PostgreSQL
    /// and MySQL/MariaDB, by the service on SQLite) and the request answered 503; zero for no
    /// limit.
    pub statement_timeout: Duration,
}

impl DatabaseSettings {
    /// Query connections when none are configured: on SQLite one per two cores, since a query
    /// there is work for this machine's CPU, which the HTTP workers and the writer need too (on
    /// 2 cores one query thread served the retrieve benchmark 7-10% faster than two: `bench/run`);
    /// 8 on a server database, where a query mostly waits on the network.
    pub fn default_pool_size(backend: Backend) -> u32 {
        match backend {
            Backend::Sqlite => std::thread::available_parallelism()
                .map_or(1, |cores| {
                    u32::try_from(cores.get() / 2).unwrap_or(u32::MAX)
                })
                .max(1),
            Backend::Postgres | Backend::Mysql => 8,
        }
    }

    /// Settings for `url` with the service's defaults.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: SecretString::from(url.into()),
            pool_size: None,
            checkout_timeout: Duration::from_secs(5),
            busy_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a database call failed, as far as a caller needs to know.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL names no backend this build knows.
    #[error(
        "unsupported database URL {0:?}: use sqlite://PATH (or a file path), postgres://… or mysql://…"
    )]
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
    /// The thread running the query panicked, or shut down before answering.
    #[error("a database task did not complete")]
    TaskLost,
}

impl DbError {
    /// True when a write broke a UNIQUE constraint.
    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            Self::Query(QueryError::DatabaseError(
                DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }

    /// The same failure, told to each job of a batch: `what` (the commit of a group of writes, or
    /// the transaction a group of reads shares) failed or could not begin.
    fn for_each_in_batch(&self, what: &str) -> Self {
        match self {
            Self::TaskLost => Self::TaskLost,
            // Whatever stopped it (a lock held too long, a full disk, a file moved away),
            // retrying later is the client's best move; the job itself was fine.
            other => Self::Unavailable(format!("{what} failed: {other}").into()),
        }
    }

    fn from_query(error: QueryError) -> Self {
        if let QueryError::DatabaseError(kind, info) = &error {
            // Worth a retry, so a 503 with Retry-After rather than a 500: SQLite reports lock
            // contention as an ordinary error; PostgreSQL-compatible engines that run
            // serializable (CockroachDB, YugabyteDB) abort a conflicting transaction; a server
            // that has just failed over to a replica refuses writes for a moment.
            let message = info.message();
            if matches!(
                kind,
                DatabaseErrorKind::SerializationFailure | DatabaseErrorKind::ReadOnlyTransaction
            ) || SQLITE_UNAVAILABLE.iter().any(|m| message.contains(m))
                || STATEMENT_TIMED_OUT.iter().any(|m| message.contains(m))
            {
                return Self::Unavailable(Box::new(error));
            }
        }
        Self::Query(error)
    }
}

/// SQLite's messages for a database that cannot be used right now: locked by another process, or
/// a file that cannot be opened, read or written (moved away, a full or failing disk).
const SQLITE_UNAVAILABLE: [&str; 6] = [
    "database is locked",
    "database is busy",
    "unable to open database file",
    "disk I/O error",
    "attempt to write a readonly database",
    "database or disk is full",
];

/// What each engine says when a statement ran past the statement timeout: busy now, so a 503
/// like any other overload, never a 500.
const STATEMENT_TIMED_OUT: [&str; 4] = [
    statement_deadline::TIMED_OUT,
    "canceling statement due to statement timeout",
    "max_statement_time exceeded",
    "maximum statement execution time exceeded",
];

/// True for failures that say nothing about the data and may mean the connection itself is
/// gone: everything but "no rows" and the constraint violations a request can cause.
fn may_be_connection_failure(error: &QueryError) -> bool {
    match error {
        QueryError::NotFound | QueryError::DeserializationError(_) => false,
        QueryError::DatabaseError(kind, _) => !matches!(
            kind,
            DatabaseErrorKind::UniqueViolation
                | DatabaseErrorKind::ForeignKeyViolation
                | DatabaseErrorKind::NotNullViolation
                | DatabaseErrorKind::CheckViolation
                | DatabaseErrorKind::SerializationFailure
                | DatabaseErrorKind::ReadOnlyTransaction
        ),
        _ => true,
    }
}

/// A connection lent to one query, which notes when a failure shows the connection is gone.
struct Session<'c> {
    conn: &'c mut DbConnection,
    lost: bool,
}

impl<'c> Session<'c> {
    fn new(conn: &'c mut DbConnection) -> Self {
        Self { conn, lost: false }
    }

    /// Runs `query`, turning its failure into a [`DbError`].
    fn run<T>(
        &mut self,
        query: impl FnOnce(&mut DbConnection) -> QueryResult<T>,
    ) -> Result<T, DbError> {
        let _timing = statement_deadline::time_query();
        match query(self.conn) {
            Ok(value) => Ok(value),
            // A server restart or a dropped socket surfaces as an arbitrary query error; a
            // connection that cannot answer `SELECT 1` either is retired, so the pool reconnects
            // and the service recovers by itself.
            Err(error)
                if self.conn.backend() != Backend::Sqlite
                    && may_be_connection_failure(&error)
                    && self.conn.batch_execute("SELECT 1").is_err() =>
            {
                self.lost = true;
                Err(DbError::Unavailable(Box::new(error)))
            }
            Err(error) => Err(DbError::from_query(error)),
        }
    }

    /// Marks the connection for retirement.
    fn mark_lost(&mut self) {
        self.lost = true;
    }

    /// Whether the connection should be retired when it goes back to the pool.
    fn is_lost(&self) -> bool {
        self.lost
    }
}

type ConnectionPool = Pool<ConnectionManager>;

/// A pooled database handle; cheap to clone.
#[derive(Clone)]
pub struct Database {
    pool: ConnectionPool,
    backend: Backend,
    /// Run reads, and writes on server databases: one thread per pooled connection.
    query_threads: Arc<QueryThreads>,
    /// SQLite's writes, committed in groups by one thread; server databases have none.
    writer: Option<Arc<GroupCommitWriter>>,
    checkout_timeout: Duration,
    /// The SQLite database file; `None` on a server database.
    sqlite_path: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("backend", &self.backend)
            .field("state", &self.pool.state())
            .finish_non_exhaustive()
    }
}

impl Database {
    /// Opens a pool on the database `settings` names, creating a SQLite file if it is missing.
    /// Fails when a database server cannot be reached within the checkout timeout.
    pub fn connect(settings: &DatabaseSettings) -> Result<Self, DbError> {
        let target = Target::parse(settings.url.expose_secret())?;
        let sqlite_path = match &target {
            Target::Sqlite(path) => Some(std::path::PathBuf::from(path)),
            Target::Postgres(_) | Target::Mysql(_) => None,
        };
        if let Target::Sqlite(path) = &target {
            if let Some(parent) = Path::new(path).parent()
                && !parent.as_os_str().is_empty()
                && !parent.exists()
            {
                return Err(DbError::Unavailable(
                    format!("directory {} does not exist", parent.display()).into(),
                ));
            }
            // Made here, once; the pool opens only a file that exists, so while it is gone
            // requests fail (503) instead of writing to a new, empty database.
            if !Path::new(path).exists() {
                <diesel::SqliteConnection as diesel::Connection>::establish(path)
                    .map_err(|e| DbError::Unavailable(Box::new(e)))?;
            }
        }
        let backend = target.backend();
        let query_threads = settings
            .pool_size
            .unwrap_or_else(|| DatabaseSettings::default_pool_size(backend))
            .max(1);
        // SQLite's writer thread holds one connection of its own.
        let pool_size = match backend {
            Backend::Sqlite => query_threads + 1,
            Backend::Postgres | Backend::Mysql => query_threads,
        };
        let pool = Pool::builder()
            .max_size(pool_size)
            // No idle target: r2d2 would open replacement connections on its own threads after a
            // checkout, work nobody asked for (and, before `prepare_client_libraries`, a CLI run
            // exiting during one crashed). Connections open on demand; idle ones close after
            // r2d2's idle timeout (10 minutes).
            .min_idle(Some(0))
            .connection_timeout(settings.checkout_timeout)
            // At checkout only SQLite's cheap file check runs (see `ConnectionManager::is_valid`);
            // a failed query checks a server connection and retires it when it is gone (`run`).
            .test_on_check_out(true)
            .build(ConnectionManager::new(target, settings))
            .map_err(|e| DbError::Unavailable(Box::new(e)))?;
        let writer = match backend {
            Backend::Sqlite => Some(Arc::new(GroupCommitWriter::start(
                pool.clone(),
                settings.checkout_timeout,
            )?)),
            Backend::Postgres | Backend::Mysql => None,
        };
        let query_threads = Arc::new(QueryThreads::start(
            &pool,
            backend,
            query_threads as usize,
            settings.checkout_timeout,
        )?);
        Ok(Self {
            pool,
            backend,
            query_threads,
            writer,
            checkout_timeout: settings.checkout_timeout,
            sqlite_path,
        })
    }

    /// Which database engine this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies every embedded migration not applied yet; returns the versions it applied.
    pub fn run_migrations(&self) -> Result<Vec<String>, DbError> {
        let mut conn = self.checkout()?;
        conn.connection().run_migrations()
    }

    fn checkout(&self) -> Result<PooledConnection<ConnectionManager>, DbError> {
        self.checkout_within(self.checkout_timeout)
    }

    fn checkout_within(
        &self,
        patience: Duration,
    ) -> Result<PooledConnection<ConnectionManager>, DbError> {
        self.pool
            .get_timeout(patience.max(Duration::from_millis(1)))
            .map_err(|e| DbError::Unavailable(Box::new(e)))
    }

    /// Runs `query` on this thread; for the command line and start-up, never for a request.
    pub fn blocking<T>(
        &self,
        query: impl FnOnce(&mut DbConnection) -> QueryResult<T>,
    ) -> Result<T, DbError> {
        self.run(self.checkout_timeout, query)
    }

    /// Runs `query` on this thread with a connection checked out within `patience`; retires the
    /// connection when a failure shows it is gone.
    fn run<T>(
        &self,
        patience: Duration,
        query: impl FnOnce(&mut DbConnection) -> QueryResult<T>,
    ) -> Result<T, DbError> {
        let mut conn = self.checkout_within(patience)?;
        let mut session = Session::new(conn.connection());
        let result = session.run(query);
        if session.is_lost() {
            conn.mark_lost();
        }
        result
    }

    /// Runs a read-only `query` on a query thread.
    pub async fn read<T, F>(&self, query: F) -> Result<T, DbError>
    where
        F: FnOnce(&mut DbConnection) -> QueryResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let claim = Arc::new(Claim::default());
        let span = tracing::Span::current();
        let answer = self
            .query_threads
            .submit(Arc::clone(&claim), move |session| {
                let _entered = span.enter();
                session.run(|conn| conn.read_transaction(query))
            });
        executor::answer(&claim, answer, self.checkout_timeout).await
    }

    /// Runs `change` in a write transaction: on SQLite in the writer's next group commit, on a
    /// server database in a transaction of its own.
    pub async fn write<T, F>(&self, change: F) -> Result<T, DbError>
    where
        F: FnOnce(&mut DbConnection) -> QueryResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let claim = Arc::new(Claim::default());
        let answer = match &self.writer {
            Some(writer) => writer.submit(Arc::clone(&claim), change),
            None => {
                let span = tracing::Span::current();
                self.query_threads
                    .submit(Arc::clone(&claim), move |session| {
                        let _entered = span.enter();
                        session.run(|conn| conn.write_transaction(change))
                    })
            }
        };
        executor::answer(&claim, answer, self.checkout_timeout).await
    }

    /// Runs `change` in a write transaction on this thread (command line, start-up).
    pub fn write_blocking<T>(
        &self,
        change: impl FnOnce(&mut DbConnection) -> QueryResult<T>,
    ) -> Result<T, DbError> {
        self.blocking(|conn| conn.write_transaction(change))
    }

    /// The secret every instance shares under `key_name`: the stored one, or `candidate`, stored
    /// now by the first instance to ask.
    pub fn shared_secret(&self, key_name: &str, candidate: &str) -> Result<String, DbError> {
        let stored = self.write_blocking(|conn| {
            if let Some(existing) = key_repository::find(conn, key_name)? {
                return Ok(existing);
            }
            key_repository::insert(conn, key_name, candidate)?;
            Ok(candidate.to_owned())
        });
        match stored {
            // Another instance stored one between our read and our insert: use theirs.
            Err(error) if error.is_unique_violation() => self
                .blocking(|conn| key_repository::find(conn, key_name))?
                .ok_or_else(|| DbError::Query(diesel::result::Error::NotFound)),
            other => other,
        }
    }

    /// True when a connection can be had and answers a trivial query.
    pub async fn is_reachable(&self) -> bool {
        self.read(|conn| conn.batch_execute("SELECT 1"))
            .await
            .is_ok()
    }

    /// True when the database answers and would take a write: a read-only server (a standby,
    /// `default_transaction_read_only`, MariaDB's `read_only`) or a SQLite file that cannot be
    /// opened for writing answers every read and fails every write.
    pub async fn accepts_writes(&self) -> bool {
        if let Some(path) = &self.sqlite_path {
            // What SQLite itself needs to write: the file, opened for writing (root included,
            // which file modes do not stop but a read-only mount or an immutable file does).
            let file = path.clone();
            let writable = tokio::task::spawn_blocking(move || {
                std::fs::OpenOptions::new().write(true).open(file).is_ok()
            })
            .await
            .unwrap_or(false);
            return writable && self.is_reachable().await;
        }
        let read_only = self.read(DbConnection::server_is_read_only).await;
        matches!(read_only, Ok(false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database_error(kind: DatabaseErrorKind, message: &str) -> QueryError {
        QueryError::DatabaseError(kind, Box::new(message.to_owned()))
    }

    #[test]
    fn failures_worth_a_retry_are_unavailable_and_the_rest_are_query_errors() {
        for retryable in [
            database_error(
                DatabaseErrorKind::SerializationFailure,
                "could not serialize",
            ),
            database_error(
                DatabaseErrorKind::ReadOnlyTransaction,
                "read-only transaction",
            ),
            database_error(DatabaseErrorKind::Unknown, "database is locked"),
            database_error(DatabaseErrorKind::Unknown, "disk I/O error"),
            database_error(DatabaseErrorKind::Unknown, "unable to open database file"),
        ] {
            let described = format!("{retryable:?}");
            assert!(
                matches!(DbError::from_query(retryable), DbError::Unavailable(_)),
                "{described}"
            );
        }
        for permanent in [
            database_error(DatabaseErrorKind::UniqueViolation, "duplicate key"),
            database_error(DatabaseErrorKind::CheckViolation, "check constraint"),
            QueryError::NotFound,
        ] {
            assert!(matches!(DbError::from_query(permanent), DbError::Query(_)));
        }
    }

    #[test]
    fn settings_never_show_the_database_password() {
        let settings = DatabaseSettings::new("postgres://app:hunter2@db.example/station");
        assert!(!format!("{settings:?}").contains("hunter2"));
        let target = Target::parse(settings.url.expose_secret()).unwrap();
        let manager = ConnectionManager::new(target, &settings);
        let shown = format!("{manager:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("db.example"), "{shown}");
    }

    #[test]
    fn only_connection_trouble_can_retire_a_connection() {
        let unique = QueryError::DatabaseError(
            DatabaseErrorKind::UniqueViolation,
            Box::new(String::from("duplicate")),
        );
        let closed = QueryError::DatabaseError(
            DatabaseErrorKind::ClosedConnection,
            Box::new(String::from("server closed the connection unexpectedly")),
        );
        assert!(!may_be_connection_failure(&QueryError::NotFound));
        assert!(!may_be_connection_failure(&unique));
        assert!(may_be_connection_failure(&closed));
    }
}
