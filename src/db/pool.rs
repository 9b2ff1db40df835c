//! The connection pool: r2d2, with a manager that opens each connection on the engine the URL
//! names, prepares its session, and retires it once it is gone.

use std::time::{Duration, Instant};

use diesel::connection::{SimpleConnection, TransactionManager};
use diesel::prelude::*;
use diesel::r2d2::Pool;
use diesel::{MysqlConnection, PgConnection, SqliteConnection};

use super::sqlite_file::{OpenedFile, existing_file_uri};
use super::url::{Target, with_libpq_defaults};
use super::{DatabaseSettings, DbConnection, DbError, SqliteSynchronous};

/// The pool every query's connection comes from.
pub(super) type ConnectionPool = Pool<ConnectionManager>;

/// A pool of at most `max_size` connections to `target`, each prepared as `settings` ask. Fails
/// when a database server cannot be reached within the checkout timeout.
pub(super) fn open(
    target: Target,
    settings: &DatabaseSettings,
    max_size: u32,
) -> Result<ConnectionPool, DbError> {
    Pool::builder()
        .max_size(max_size)
        // No idle target: r2d2 would open replacement connections on its own threads after a
        // checkout, work nobody asked for (and, before `prepare_client_libraries`, a CLI run
        // exiting during one crashed). Connections open on demand; idle ones close after
        // r2d2's idle timeout (10 minutes).
        .min_idle(Some(0))
        .connection_timeout(settings.checkout_timeout)
        // At checkout only SQLite's cheap file check runs (see `ConnectionManager::is_valid`);
        // a failed query checks a server connection and retires it when it is gone
        // (`Session::run`).
        .test_on_check_out(true)
        .error_handler(Box::new(ConnectFailureLog {
            target: target.shown(),
        }))
        .build(ConnectionManager::new(target, settings))
        .map_err(|e| DbError::Unavailable(Box::new(e)))
}

/// Opens one connection before the pool serves anyone, so that start-up fails at once, in one
/// line naming the target and the cause, on an error waiting cannot fix (a wrong password, an
/// unknown role or database, a file that cannot be opened), and waits out only transient ones
/// (a server refusing connections or still starting, at its connection limit, a locked file)
/// until `patience` runs out.
pub(super) fn check_first_connection(
    target: &Target,
    settings: &DatabaseSettings,
    patience: Duration,
) -> Result<(), DbError> {
    let manager = ConnectionManager::new(target.clone(), settings);
    let started = Instant::now();
    let mut pause = FIRST_PAUSE;
    loop {
        let cause = match manager.open() {
            Ok(_) => return Ok(()),
            Err(error) => explain(target, &error),
        };
        if !waiting_may_help(&cause) || started.elapsed() + pause > patience {
            return Err(DbError::Connect {
                target: target.shown(),
                cause,
            });
        }
        if pause == FIRST_PAUSE {
            tracing::info!(target = %target.shown(), %cause,
                "the database does not answer yet; retrying for up to {} s", patience.as_secs());
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

/// The first wait before trying a transient failure again; each next wait doubles, up to a second.
const FIRST_PAUSE: Duration = Duration::from_millis(100);

/// Whether an engine's refusal can go away by itself: the server is down, starting, stopping,
/// unreachable for now or full, or a SQLite file is locked. Anything else (credentials, names,
/// options, files) stays wrong until someone changes it.
fn waiting_may_help(cause: &str) -> bool {
    const TRANSIENT: [&str; 16] = [
        "connection refused",
        "could not connect",
        "can't connect",
        "timeout expired",
        "timed out",
        "is starting up",
        "is shutting down",
        "in recovery mode",
        "not yet accepting connections",
        "too many clients",
        "too many connections",
        "no route to host",
        "network is unreachable",
        "server closed the connection unexpectedly",
        "lost connection",
        "database is locked",
    ];
    let cause = cause.to_lowercase();
    TRANSIENT.iter().any(|pattern| cause.contains(pattern))
}

/// r2d2's own handler logs every failed connection at ERROR with the path of its source file;
/// this one logs a line that names the database (password hidden) and what its engine said.
#[derive(Debug)]
struct ConnectFailureLog {
    target: String,
}

impl diesel::r2d2::HandleError<ConnectError> for ConnectFailureLog {
    fn handle_error(&self, error: ConnectError) {
        tracing::warn!(target = %self.target, cause = %one_line(&error_chain(&error)), "opening a database connection failed");
    }
}

/// An error and its sources, as one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.contains(&next) {
            text = format!("{text}: {next}");
        }
        source = cause.source();
    }
    text
}

/// `text` with every run of white space (libpq's messages span lines) made one space.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What went wrong opening a connection to `target`, on one line; for a SQLite file that "cannot
/// be opened", what the file system says about it.
fn explain(target: &Target, error: &ConnectError) -> String {
    let said = one_line(&error_chain(error));
    match target {
        Target::Sqlite(path) if said.contains("unable to open database file") => {
            match std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
            {
                Err(io) => format!("{said} ({io})"),
                Ok(_) if std::path::Path::new(path).is_dir() => {
                    format!("{said} (it is a directory)")
                }
                Ok(_) => said,
            }
        }
        _ => said,
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
    synchronous: SqliteSynchronous,
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
            synchronous: settings.sqlite_synchronous,
        }
    }

    fn open(&self) -> Result<DbConnection, ConnectError> {
        match &self.target {
            Target::Sqlite(path) => {
                let mut sqlite = SqliteConnection::establish(&existing_file_uri(path))?;
                // Diesel turns foreign keys on but leaves the busy timeout at 0 and the journal
                // in rollback mode: make SQLite behave as a server database. `synchronous` is
                // FULL unless the operator chose speed: in WAL mode NORMAL syncs only at
                // checkpoints, so a power cut could lose commits already answered 201.
                // Temporary tables stay in memory: an INSERT … RETURNING of many rows buffers
                // them in one, which SQLite otherwise writes, page by page, to a file.
                sqlite.batch_execute(&format!(
                    "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = {}; PRAGMA foreign_keys = ON; \
                     PRAGMA temp_store = MEMORY;",
                    self.busy_timeout.as_millis(),
                    self.synchronous.pragma_value()
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
    use secrecy::ExposeSecret as _;

    use super::*;

    #[test]
    fn a_manager_never_shows_the_database_password() {
        let settings = DatabaseSettings::new("postgres://app:hunter2@db.example/station");
        let target = Target::parse(settings.url.expose_secret()).unwrap();
        let manager = ConnectionManager::new(target, &settings);
        let shown = format!("{manager:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("db.example"), "{shown}");
    }
}
