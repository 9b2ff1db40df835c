//! Why a database call failed, as far as a caller needs to know: which failures are worth a retry
//! (503), which are bugs or bad data (500), and which may mean the connection itself is gone.

use std::sync::atomic::{AtomicU64, Ordering};

use diesel::result::{DatabaseErrorKind, Error as QueryError};

use super::statement_deadline;

/// Why a database call failed, as far as a caller needs to know.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL names no backend this build knows.
    #[error(
        "unsupported database URL {0:?}: use sqlite://PATH (or a file path), postgres://… or mysql://…"
    )]
    UnsupportedUrl(String),
    /// The first connection at start-up failed: names the target (password hidden) and the cause.
    /// Errors waiting cannot fix (a wrong password, an unknown role or database, a file that is
    /// not a database) come at once; others once the checkout timeout has passed.
    #[error("cannot connect to {target}: {cause}")]
    Connect {
        /// The database URL or file, password replaced by `***`.
        target: String,
        /// What the engine said, on one line.
        cause: String,
    },
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
    pub(super) fn for_each_in_batch(&self, what: &str) -> Self {
        match self {
            Self::TaskLost => Self::TaskLost,
            // Whatever stopped it (a lock held too long, a full disk, a file moved away),
            // retrying later is the client's best move; the job itself was fine.
            other => Self::Unavailable(format!("{what} failed: {other}").into()),
        }
    }

    pub(super) fn from_query(error: QueryError) -> Self {
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
                || MYSQL_UNAVAILABLE.iter().any(|m| message.contains(m))
                || STATEMENT_TIMED_OUT.iter().any(|m| message.contains(m))
            {
                return Self::Unavailable(Box::new(error));
            }
        }
        Self::Query(error)
    }
}

/// How many of a database's calls failed, by kind, since it was opened: totals for metrics,
/// counted where every request's call is answered (`Database::read` and `write`).
#[derive(Debug, Default)]
pub(super) struct ErrorCounts {
    unavailable: AtomicU64,
    query: AtomicU64,
    task_lost: AtomicU64,
}

impl ErrorCounts {
    /// Counts `result` if it is a failure.
    pub(super) fn count<T>(&self, result: &Result<T, DbError>) {
        let Err(error) = result else {
            return;
        };
        let counter = match error {
            DbError::Unavailable(_) | DbError::UnsupportedUrl(_) | DbError::Connect { .. } => {
                &self.unavailable
            }
            DbError::Query(_) | DbError::Migration(_) => &self.query,
            DbError::TaskLost => &self.task_lost,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The totals so far.
    pub(super) fn totals(&self) -> DbErrorTotals {
        DbErrorTotals {
            unavailable: self.unavailable.load(Ordering::Relaxed),
            query: self.query.load(Ordering::Relaxed),
            task_lost: self.task_lost.load(Ordering::Relaxed),
        }
    }
}

/// Failed database calls since the database was opened, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DbErrorTotals {
    /// No connection in time, or the database locked, read-only or gone (answered 503).
    pub unavailable: u64,
    /// A statement failed for a reason a retry will not fix (constraint violations included).
    pub query: u64,
    /// The thread running the call panicked or stopped.
    pub task_lost: u64,
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

/// MySQL's and MariaDB's messages for a transaction worth retrying, whatever kind Diesel gave
/// them (it reads error numbers only for prepared statements, not for `COMMIT`): a deadlock or a
/// Galera certification conflict (1213), a lock wait that timed out (1205), a Galera node that
/// is not part of the cluster's primary component or is still catching up (1047).
const MYSQL_UNAVAILABLE: [&str; 4] = [
    "Deadlock found when trying to get lock",
    "WSREP detected deadlock/conflict",
    "Lock wait timeout exceeded",
    "WSREP has not yet prepared node for application use",
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
pub(super) fn may_be_connection_failure(error: &QueryError) -> bool {
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
            database_error(
                DatabaseErrorKind::Unknown,
                "Deadlock found when trying to get lock; try restarting transaction",
            ),
            database_error(
                DatabaseErrorKind::Unknown,
                "WSREP has not yet prepared node for application use",
            ),
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
