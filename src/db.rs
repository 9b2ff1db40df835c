//! The only module that speaks SQL. One binary serves SQLite, PostgreSQL and MySQL/MariaDB,
//! chosen by the database URL; everything backend-specific lives here and in the repositories.
//! Diesel is synchronous, so every query runs on threads of its own through [`Database::read`] or
//! [`Database::write`] (see [`executor`]), never on an async worker.
//!
//! This file is the facade, the one door: [`Database`] and the types its callers name. Behind it,
//! one job a file under `db/`: `settings`; `error` (which failures are worth a retry); `url`
//! (which engine a URL names); `pool` (the r2d2 manager that opens and retires connections) and
//! `sqlite_file` (the file a SQLite pool opens, and watches); `connection` (one connection type
//! over three engines) and its `transaction`s; `session` (a connection lent to one query);
//! `executor` (the threads queries run on); `macros` the repositories share; and the
//! repositories, which hold the queries themselves.

#[macro_use]
mod macros;
mod caller_column;
pub mod change_repository;
mod connection;
mod error;
mod executor;
pub mod idempotency_repository;
pub mod key_repository;
pub mod models;
mod pool;
pub mod schema;
mod session;
mod settings;
mod sqlite_file;
mod statement_deadline;
pub mod station_repository;
pub mod token_repository;
mod transaction;
mod url;
pub mod user_repository;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// What a query closure returns.
pub use diesel::QueryResult;
use diesel::connection::SimpleConnection;
use diesel::r2d2::PooledConnection;
use secrecy::ExposeSecret as _;

pub use caller_column::{CallerColumn, CallerGate, CallerStanding, Carried};
use connection::last_insert_id;
pub use connection::{Backend, DbConnection};
use error::ErrorCounts;
pub use error::{DbError, DbErrorTotals};
use executor::{Claim, GroupCommitWriter, QueryThreads};
use pool::ConnectionPool;
use session::Session;
pub use settings::{DatabaseSettings, SqliteSynchronous};
use url::Target;
pub use url::redact_password;

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
    sqlite_path: Option<PathBuf>,
    /// Failed calls, for metrics.
    errors: Arc<ErrorCounts>,
    /// Told after each write this process commits, so the change feed looks at once.
    committed: Arc<tokio::sync::Notify>,
}

/// What the database layer holds and owes right now, for metrics read at scrape time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatabaseStats {
    /// The most connections the pool opens (on SQLite, the writer's included).
    pub max_connections: u32,
    /// Connections open now.
    pub connections: u32,
    /// Of those, the ones nobody is using.
    pub idle: u32,
    /// Queries (reads, and writes on a server database) waiting for a query thread.
    pub queued_queries: usize,
    /// Writes waiting for SQLite's next group commit; 0 on a server database.
    pub queued_writes: usize,
    /// Calls that failed so far.
    pub errors: DbErrorTotals,
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
            Target::Sqlite(path) => Some(sqlite_file::create_once(path)?),
            Target::Postgres(_) | Target::Mysql(_) => None,
        };
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
        pool::check_first_connection(&target, settings, settings.checkout_timeout)?;
        let pool = pool::open(target, settings, pool_size)?;
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
            errors: Arc::default(),
            committed: Arc::default(),
        })
    }

    /// Which database engine this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool's use, the queues' lengths and the failures so far. Takes the pool's and the
    /// queues' locks for a moment: for a scrape, not for every request.
    pub fn stats(&self) -> DatabaseStats {
        let pool = self.pool.state();
        DatabaseStats {
            max_connections: self.pool.max_size(),
            connections: pool.connections,
            idle: pool.idle_connections,
            queued_queries: self.query_threads.queued(),
            queued_writes: self.writer.as_ref().map_or(0, |writer| writer.queued()),
            errors: self.errors.totals(),
        }
    }

    /// Applies every embedded migration not applied yet; returns the versions it applied.
    pub fn run_migrations(&self) -> Result<Vec<String>, DbError> {
        let mut conn = self.checkout()?;
        conn.connection().run_migrations()
    }

    fn checkout(&self) -> Result<PooledConnection<pool::ConnectionManager>, DbError> {
        self.checkout_within(self.checkout_timeout)
    }

    fn checkout_within(
        &self,
        patience: Duration,
    ) -> Result<PooledConnection<pool::ConnectionManager>, DbError> {
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
        let result = executor::answer(&claim, answer, self.checkout_timeout).await;
        self.errors.count(&result);
        result
    }

    /// Runs `change` in a write transaction: on SQLite in the writer's next group commit, on a
    /// server database in a transaction of its own.
    pub async fn write<T, F>(&self, change: F) -> Result<T, DbError>
    where
        F: FnOnce(&mut DbConnection) -> QueryResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.write_within(true, change).await
    }

    /// Runs `change`, which is atomic by itself on PostgreSQL (a single statement): there with
    /// no transaction around it, sparing the round trips of `BEGIN` and `COMMIT`; on SQLite in
    /// the writer's next group commit and on MySQL in a transaction, as [`Self::write`].
    pub async fn write_atomic<T, F>(&self, change: F) -> Result<T, DbError>
    where
        F: FnOnce(&mut DbConnection) -> QueryResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.write_within(self.backend != Backend::Postgres, change)
            .await
    }

    /// Runs `change` as a write, in a transaction on a server database when `transaction`.
    async fn write_within<T, F>(&self, transaction: bool, change: F) -> Result<T, DbError>
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
                        if transaction {
                            session.run(|conn| conn.write_transaction(change))
                        } else {
                            session.run(change)
                        }
                    })
            }
        };
        let result = executor::answer(&claim, answer, self.checkout_timeout).await;
        self.errors.count(&result);
        if result.is_ok() {
            self.committed.notify_one();
        }
        result
    }

    /// Waits until a write made through this handle (or a clone) commits; a commit made while
    /// nobody waited is remembered for the next wait. For the change feed: it looks for changes
    /// when told, and on a timer for those other processes make.
    pub async fn next_commit(&self) {
        self.committed.notified().await;
    }

    /// Runs `change` in a write transaction on this thread (command line, start-up).
    pub fn write_blocking<T>(
        &self,
        change: impl FnOnce(&mut DbConnection) -> QueryResult<T>,
    ) -> Result<T, DbError> {
        self.blocking(|conn| conn.write_transaction(change))
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
            let file = path.clone();
            let writable = tokio::task::spawn_blocking(move || sqlite_file::is_writable(&file))
                .await
                .unwrap_or(false);
            return writable && self.is_reachable().await;
        }
        let read_only = self.read(DbConnection::server_is_read_only).await;
        matches!(read_only, Ok(false))
    }
}
