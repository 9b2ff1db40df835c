//! One connection type over three engines, chosen by the URL's scheme, and the r2d2 manager that
//! opens, prepares and retires those connections.

use std::time::{Duration, Instant};

use diesel::connection::{
    AnsiTransactionManager, SimpleConnection, TransactionDepthChange, TransactionManager,
    TransactionManagerStatus,
};
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::sqlite::Sqlite;
use diesel::{MysqlConnection, PgConnection, SqliteConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::{DatabaseSettings, DbError};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const MYSQL_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/mysql");

/// The database engine behind a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
    /// A MySQL or MariaDB server.
    Mysql,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
            Self::Mysql => "mysql",
        })
    }
}

/// A connection to whichever engine the URL named. Repository functions take this type; the few
/// statements that differ between engines match on it.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    /// PostgreSQL.
    Postgres(PgConnection),
    /// MySQL or MariaDB.
    Mysql(MysqlConnection),
    /// SQLite.
    Sqlite(SqliteConnection),
}

impl DbConnection {
    /// Which engine this connection talks to.
    pub fn backend(&self) -> Backend {
        match self {
            Self::Postgres(_) => Backend::Postgres,
            Self::Mysql(_) => Backend::Mysql,
            Self::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// Runs `change` in a transaction that writes. On SQLite it starts with `BEGIN IMMEDIATE`, so
    /// the write lock is taken up front and a second writer waits (busy timeout) instead of
    /// failing when it tries to upgrade a read lock.
    pub fn write_transaction<T>(
        &mut self,
        change: impl FnOnce(&mut Self) -> QueryResult<T>,
    ) -> QueryResult<T> {
        let Self::Sqlite(sqlite) = self else {
            return self.transaction(change);
        };
        AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE")?;
        let outcome = change(self);
        let Self::Sqlite(sqlite) = self else {
            return outcome;
        };
        match outcome {
            Ok(value) => {
                AnsiTransactionManager::commit_transaction(sqlite)?;
                Ok(value)
            }
            Err(error) => {
                // A failed rollback leaves the transaction manager broken and the pool retires
                // the connection; the caller still learns what went wrong first.
                let _ = AnsiTransactionManager::rollback_transaction(sqlite);
                Err(error)
            }
        }
    }

    /// Runs a request's read-only `query`. On SQLite that is one (deferred) transaction, which
    /// takes the WAL read lock (two `fcntl` calls) once instead of once per statement: a
    /// request's account check and its query then share one lock, and one snapshot. Server
    /// databases run the statements as they come, sparing the round trips of BEGIN and COMMIT.
    pub fn read_transaction<T>(
        &mut self,
        query: impl FnOnce(&mut Self) -> QueryResult<T>,
    ) -> QueryResult<T> {
        if self.in_transaction()? || !matches!(self, Self::Sqlite(_)) {
            return query(self);
        }
        self.on_sqlite(|sqlite| Begin.execute(sqlite).map(drop))?;
        self.change_transaction_depth(TransactionDepthChange::IncreaseDepth)?;
        let outcome = query(self);
        let ended = self.on_sqlite(|sqlite| match &outcome {
            Ok(_) => Commit.execute(sqlite).map(drop),
            Err(_) => Rollback.execute(sqlite).map(drop),
        });
        self.change_transaction_depth(TransactionDepthChange::DecreaseDepth)?;
        if ended.is_err() {
            // Still inside a transaction SQLite would not end: the pool retires the connection.
            <Self as Connection>::TransactionManager::transaction_manager_status_mut(self)
                .set_in_error();
        }
        let value = outcome?;
        ended?;
        Ok(value)
    }

    /// Whether the server refuses writes on new transactions: a PostgreSQL standby or
    /// `default_transaction_read_only`, MariaDB's `read_only` or `innodb_read_only`. Always false
    /// on SQLite, whose file [`super::Database::accepts_writes`] checks instead.
    pub fn server_is_read_only(&mut self) -> QueryResult<bool> {
        use diesel::dsl::sql;
        use diesel::sql_types::BigInt;

        let flag = match self {
            Self::Sqlite(_) => return Ok(false),
            Self::Postgres(pg) => diesel::select(sql::<BigInt>(
                "CAST(current_setting('transaction_read_only') = 'on' AS INTEGER)::BIGINT",
            ))
            .get_result::<i64>(pg)?,
            Self::Mysql(mysql) => diesel::select(sql::<BigInt>(
                "CAST(@@global.read_only OR @@global.innodb_read_only AS SIGNED)",
            ))
            .get_result::<i64>(mysql)?,
        };
        Ok(flag != 0)
    }

    /// Runs `statement` on the SQLite connection this is (there is nothing to run otherwise).
    fn on_sqlite(
        &mut self,
        statement: impl FnOnce(&mut SqliteConnection) -> QueryResult<()>,
    ) -> QueryResult<()> {
        match self {
            Self::Sqlite(sqlite) => statement(sqlite),
            Self::Postgres(_) | Self::Mysql(_) => Ok(()),
        }
    }

    /// Tells Diesel's transaction manager about a transaction begun or ended behind its back, so
    /// a nested `transaction` inside becomes a savepoint.
    fn change_transaction_depth(&mut self, change: TransactionDepthChange) -> QueryResult<()> {
        match <Self as Connection>::TransactionManager::transaction_manager_status_mut(self) {
            TransactionManagerStatus::Valid(status) => status.change_transaction_depth(change),
            TransactionManagerStatus::InError => {
                Err(diesel::result::Error::BrokenTransactionManager)
            }
        }
    }

    /// Runs `query` with all its statements reading one snapshot, so a count and the page it
    /// describes agree under concurrent writes: inside a transaction on SQLite (the caller's, if
    /// there is one) and InnoDB (`REPEATABLE READ`); in a `REPEATABLE READ` one on PostgreSQL,
    /// whose default `READ COMMITTED` gives each statement its own.
    pub fn in_one_snapshot<T>(
        &mut self,
        query: impl FnOnce(&mut Self) -> QueryResult<T>,
    ) -> QueryResult<T> {
        let already_in_one = self.in_transaction()?;
        match self {
            Self::Sqlite(_) if already_in_one => query(self),
            Self::Sqlite(_) | Self::Mysql(_) => self.transaction(query),
            Self::Postgres(_) => self.transaction(|conn| {
                conn.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")?;
                query(conn)
            }),
        }
    }

    /// Whether a transaction is open on this connection.
    fn in_transaction(&mut self) -> QueryResult<bool> {
        let status = <Self as Connection>::TransactionManager::transaction_manager_status_mut(self);
        Ok(status.transaction_depth()?.is_some())
    }

    /// Applies the engine's embedded migrations that have not run yet.
    pub(super) fn run_migrations(&mut self) -> Result<Vec<String>, DbError> {
        let applied = match self {
            Self::Postgres(pg) => pg
                .run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(|versions| versions.iter().map(ToString::to_string).collect()),
            Self::Mysql(mysql) => mysql
                .run_pending_migrations(MYSQL_MIGRATIONS)
                .map(|versions| versions.iter().map(ToString::to_string).collect()),
            Self::Sqlite(sqlite) => sqlite
                .run_pending_migrations(SQLITE_MIGRATIONS)
                .map(|versions| versions.iter().map(ToString::to_string).collect()),
        };
        applied.map_err(DbError::Migration)
    }
}

/// `$sql` as a statement Diesel prepares once per connection and keeps, cached by its type.
macro_rules! fixed_sqlite_statement {
    ($name:ident, $sql:literal) => {
        #[derive(Debug, Clone, Copy, diesel::query_builder::QueryId)]
        struct $name;

        impl QueryFragment<Sqlite> for $name {
            fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
                out.push_sql($sql);
                Ok(())
            }
        }

        impl RunQueryDsl<SqliteConnection> for $name {}
    };
}

// A request's read transaction on SQLite. Diesel's transaction manager would run these through
// `sqlite3_exec`, which parses each anew: a quarter of a retrieve's database time in the profile.
fixed_sqlite_statement!(Begin, "BEGIN");
fixed_sqlite_statement!(Commit, "COMMIT");
fixed_sqlite_statement!(Rollback, "ROLLBACK");

/// What a database URL points at, decided by its scheme alone: Diesel's own `establish` on a
/// multi-connection tries each engine in turn and would turn a refused PostgreSQL URL into a
/// new SQLite file.
#[derive(Clone, PartialEq, Eq)]
pub(super) enum Target {
    /// A SQLite file path.
    Sqlite(String),
    /// A `postgres://` or `postgresql://` URL.
    Postgres(String),
    /// A `mysql://` URL.
    Mysql(String),
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            Self::Postgres(url) => f
                .debug_tuple("Postgres")
                .field(&redact_password(url))
                .finish(),
            Self::Mysql(url) => f.debug_tuple("Mysql").field(&redact_password(url)).finish(),
        }
    }
}

impl Target {
    /// Reads the engine from the scheme; anything without a scheme is a SQLite file path.
    pub(super) fn parse(url: &str) -> Result<Self, DbError> {
        let unsupported = || DbError::UnsupportedUrl(redact_password(url));
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_owned()));
        }
        if url.starts_with("mysql://") {
            return Ok(Self::Mysql(url.to_owned()));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        if path.is_empty() || path.contains("://") {
            return Err(unsupported());
        }
        Ok(Self::Sqlite(path.to_owned()))
    }

    /// The engine this target runs.
    pub(super) fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
            Self::Mysql(_) => Backend::Mysql,
        }
    }
}

/// `url` with any password replaced by `***`, for messages and logs.
pub fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((credentials, host)) if credentials.contains(':') => {
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        _ => url.to_owned(),
    }
}

/// Why a new connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The engine refused or could not be reached.
    #[error(transparent)]
    Connect(#[from] diesel::ConnectionError),
    /// The connection opened, but preparing the session failed.
    #[error("preparing the database session failed")]
    Session(#[from] diesel::result::Error),
    /// The SQLite file the connection has open is no longer at the database's path.
    #[error("the database file is no longer at its path")]
    FileMoved,
}

/// A pooled connection and whether a failure showed it is gone.
pub struct ManagedConnection {
    connection: DbConnection,
    lost: bool,
    /// For SQLite, the file this connection has open.
    file: Option<OpenedFile>,
}

/// How often a pooled SQLite connection checks, at checkout, that its file is still the one at
/// the database's path.
const FILE_CHECK_EVERY: Duration = Duration::from_millis(100);

/// The SQLite file a connection opened, to notice when the path stops leading to it: moved,
/// deleted or replaced, the file a connection keeps open is no longer the database, and what it
/// reads is stale and what it writes is lost.
struct OpenedFile {
    path: String,
    identity: Option<(u64, u64)>,
    checked: Instant,
}

impl OpenedFile {
    fn at(path: &str) -> Self {
        Self {
            path: path.to_owned(),
            identity: file_identity(path),
            checked: Instant::now(),
        }
    }

    /// False once the path leads elsewhere, or nowhere; checks at most every
    /// [`FILE_CHECK_EVERY`].
    fn still_there(&mut self) -> bool {
        if self.checked.elapsed() < FILE_CHECK_EVERY {
            return true;
        }
        self.checked = Instant::now();
        self.identity.is_some() && file_identity(&self.path) == self.identity
    }
}

/// The device and inode of the file at `path`, if there is one.
#[cfg(unix)]
fn file_identity(path: &str) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt as _;

    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Where inodes are not to be had, only whether something is at `path`.
#[cfg(not(unix))]
fn file_identity(path: &str) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|_| (0, 0))
}

/// A `file:` URI that opens the SQLite database at `path` only if it exists (`mode=rw`): the
/// pool must fail while the file is gone, not make a new, empty database in its place.
fn existing_file_uri(path: &str) -> String {
    let mut uri = String::from("file:");
    for c in path.chars() {
        match c {
            '%' => uri.push_str("%25"),
            '?' => uri.push_str("%3f"),
            '#' => uri.push_str("%23"),
            c => uri.push(c),
        }
    }
    uri.push_str("?mode=rw");
    uri
}

impl ManagedConnection {
    /// The connection, for running queries.
    pub fn connection(&mut self) -> &mut DbConnection {
        &mut self.connection
    }

    /// Retires this connection when it goes back to the pool.
    pub fn mark_lost(&mut self) {
        self.lost = true;
    }
}

/// Opens connections for r2d2, by the URL's scheme, and prepares each session.
#[derive(Debug)]
pub struct ConnectionManager {
    target: Target,
    busy_timeout: Duration,
    statement_timeout: Duration,
}

impl ConnectionManager {
    /// A manager for `target`, preparing sessions as `settings` ask.
    pub(super) fn new(target: Target, settings: &DatabaseSettings) -> Self {
        let target = match target {
            Target::Postgres(url) => {
                Target::Postgres(with_libpq_defaults(&url, settings.checkout_timeout))
            }
            other => other,
        };
        Self {
            target,
            busy_timeout: settings.busy_timeout,
            statement_timeout: settings.statement_timeout,
        }
    }

    fn open(&self) -> Result<DbConnection, ConnectError> {
        match &self.target {
            Target::Sqlite(path) => {
                let mut sqlite = SqliteConnection::establish(&existing_file_uri(path))?;
                // Diesel turns foreign keys on but leaves the busy timeout at 0 and the journal
                // in rollback mode: make SQLite behave as a server database.
                sqlite.batch_execute(&format!(
                    "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
                    self.busy_timeout.as_millis()
                ))?;
                super::statement_deadline::register(&sqlite, self.statement_timeout)?;
                Ok(DbConnection::Sqlite(sqlite))
            }
            Target::Postgres(url) => {
                super::prepare_client_libraries();
                let mut pg = PgConnection::establish(url)?;
                pg.batch_execute(&format!(
                    "SET statement_timeout = {}; SET application_name = 'station-api';",
                    self.statement_timeout.as_millis()
                ))?;
                Ok(DbConnection::Postgres(pg))
            }
            Target::Mysql(url) => {
                super::prepare_client_libraries();
                let mut mysql = MysqlConnection::establish(url)?;
                // Strict mode: a value out of range or too long is an error, never clipped.
                mysql.batch_execute("SET SESSION sql_mode = 'TRADITIONAL'")?;
                if !self.statement_timeout.is_zero() {
                    // MariaDB and MySQL name (and measure) this limit differently.
                    let seconds = self.statement_timeout.as_secs_f64();
                    let millis = self.statement_timeout.as_millis();
                    mysql
                        .batch_execute(&format!("SET SESSION max_statement_time = {seconds}"))
                        .or_else(|_| {
                            mysql.batch_execute(&format!(
                                "SET SESSION max_execution_time = {millis}"
                            ))
                        })?;
                }
                Ok(DbConnection::Mysql(mysql))
            }
        }
    }
}

/// Adds libpq options the URL does not set: `connect_timeout` (whole seconds, at least 1), so a
/// database host that drops packets cannot hold a pool thread for minutes; and
/// `gssencmode=disable`, because libpq's default first probes for Kerberos encryption on every
/// connection, and a process exiting while a pool thread was in that probe aborted inside
/// libkrb5 (seen here in about one run of the CLI in seven).
fn with_libpq_defaults(url: &str, timeout: Duration) -> String {
    let mut url = url.to_owned();
    let mut add = |option: &str, value: String| {
        if !url.contains(&format!("{option}=")) {
            let separator = if url.contains('?') { '&' } else { '?' };
            url = format!("{url}{separator}{option}={value}");
        }
    };
    add("connect_timeout", timeout.as_secs().max(1).to_string());
    add("gssencmode", "disable".to_owned());
    url
}

impl diesel::r2d2::ManageConnection for ConnectionManager {
    type Connection = ManagedConnection;
    type Error = ConnectError;

    fn connect(&self) -> Result<Self::Connection, Self::Error> {
        let connection = self.open()?;
        let file = match &self.target {
            Target::Sqlite(path) => Some(OpenedFile::at(path)),
            Target::Postgres(_) | Target::Mysql(_) => None,
        };
        Ok(ManagedConnection {
            connection,
            lost: false,
            file,
        })
    }

    /// At checkout: a SQLite connection whose file is no longer at the path is retired (and a
    /// new one fails to open until the file is back). Server connections are not tested here,
    /// which would cost a round trip per request; a failed query retires them instead.
    fn is_valid(&self, conn: &mut Self::Connection) -> Result<(), Self::Error> {
        match conn.file.as_mut().map(OpenedFile::still_there) {
            Some(false) => Err(ConnectError::FileMoved),
            Some(true) | None => Ok(()),
        }
    }

    fn has_broken(&self, conn: &mut Self::Connection) -> bool {
        conn.lost
            || std::thread::panicking()
            || <DbConnection as Connection>::TransactionManager::is_broken_transaction_manager(
                &mut conn.connection,
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_alone_picks_the_engine() {
        let sqlite = |path: &str| Target::Sqlite(path.to_owned());
        assert_eq!(
            Target::parse("sqlite://station.db").unwrap(),
            sqlite("station.db")
        );
        assert_eq!(
            Target::parse("sqlite:///tmp/s.db").unwrap(),
            sqlite("/tmp/s.db")
        );
        assert_eq!(Target::parse("sqlite:s.db").unwrap(), sqlite("s.db"));
        assert_eq!(Target::parse("data/s.db").unwrap(), sqlite("data/s.db"));
        assert_eq!(
            Target::parse("postgres://u@localhost/x").unwrap().backend(),
            Backend::Postgres
        );
        assert_eq!(
            Target::parse("postgresql://localhost/x").unwrap().backend(),
            Backend::Postgres
        );
        assert_eq!(
            Target::parse("mysql://root@127.0.0.1/x").unwrap().backend(),
            Backend::Mysql
        );
        assert!(Target::parse("redis://localhost").is_err());
        assert!(Target::parse("sqlite://").is_err());
    }

    #[test]
    fn the_pool_opens_only_an_existing_file_whatever_its_name() {
        assert_eq!(existing_file_uri("station.db"), "file:station.db?mode=rw");
        assert_eq!(
            existing_file_uri("/srv/a b/100%?#.db"),
            "file:/srv/a b/100%25%3f%23.db?mode=rw"
        );
        let directory = tempfile::tempdir().unwrap();
        let missing = directory.path().join("missing.db");
        let uri = existing_file_uri(missing.to_str().unwrap());
        assert!(SqliteConnection::establish(&uri).is_err());
        assert!(!missing.exists(), "no new, empty database was made");
    }

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact_password("postgres://app:s3cret@db:5432/station?sslmode=require"),
            "postgres://app:***@db:5432/station?sslmode=require"
        );
        assert_eq!(
            redact_password("mysql://root@127.0.0.1/x"),
            "mysql://root@127.0.0.1/x"
        );
        assert_eq!(redact_password("station.db"), "station.db");
        let error = Target::parse("redis://u:hunter2@cache").unwrap_err();
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }

    #[test]
    fn libpq_options_are_added_unless_the_url_has_them() {
        let five = Duration::from_secs(5);
        assert_eq!(
            with_libpq_defaults("postgres://h/db", five),
            "postgres://h/db?connect_timeout=5&gssencmode=disable"
        );
        assert_eq!(
            with_libpq_defaults("postgres://h/db?sslmode=disable&gssencmode=prefer", five),
            "postgres://h/db?sslmode=disable&gssencmode=prefer&connect_timeout=5"
        );
        assert_eq!(
            with_libpq_defaults("postgres://h/db?connect_timeout=2", five),
            "postgres://h/db?connect_timeout=2&gssencmode=disable"
        );
    }
}
