//! A connection lent to one query: runs it with the statement clock started, turns its failure
//! into a [`DbError`], and notes when the failure shows the connection is gone.

use diesel::QueryResult;
use diesel::connection::SimpleConnection;

use super::error::may_be_connection_failure;
use super::{Backend, DbConnection, DbError, statement_deadline};

/// A connection lent to one query, which notes when a failure shows the connection is gone.
pub(super) struct Session<'c> {
    conn: &'c mut DbConnection,
    lost: bool,
}

impl<'c> Session<'c> {
    /// Lends `conn` to the queries run through this session.
    pub(super) fn new(conn: &'c mut DbConnection) -> Self {
        Self { conn, lost: false }
    }

    /// Runs `query`, turning its failure into a [`DbError`].
    pub(super) fn run<T>(
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
            Err(error) => {
                if self.conn.backend() == Backend::Mysql
                    && matches!(error, diesel::result::Error::DatabaseError(..))
                {
                    // Diesel's MySQL statements read their error with `mysql_stmt_error`, which
                    // binding new parameters does not clear: a cached prepared statement that
                    // failed once (a deadlock, a duplicate key) fails the same way on every later
                    // use on this connection. A new connection starts with no cached statements.
                    self.lost = true;
                }
                Err(DbError::from_query(error))
            }
        }
    }

    /// Marks the connection for retirement.
    pub(super) fn mark_lost(&mut self) {
        self.lost = true;
    }

    /// Whether the connection should be retired when it goes back to the pool.
    pub(super) fn is_lost(&self) -> bool {
        self.lost
    }
}
