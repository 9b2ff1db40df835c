//! Transactions on a [`DbConnection`]: a write transaction that takes SQLite's write lock up
//! front, a request's read transaction, and one snapshot for a count and the page it describes.

use diesel::SqliteConnection;
use diesel::connection::{
    AnsiTransactionManager, TransactionDepthChange, TransactionManager, TransactionManagerStatus,
};
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::sqlite::Sqlite;

use super::DbConnection;

impl DbConnection {
    /// Runs `change` in a transaction that writes. On SQLite it starts with `BEGIN IMMEDIATE`, so
    /// the write lock is taken up front and a second writer waits (busy timeout) instead of
    /// failing when it tries to upgrade a read lock.
    pub fn write_transaction<T>(
        &mut self,
        change: impl FnOnce(&mut Self) -> QueryResult<T>,
    ) -> QueryResult<T> {
        match self {
            Self::Sqlite(_) => self.within_begun("BEGIN IMMEDIATE", change),
            Self::Postgres(_) | Self::Mysql(_) => self.transaction(change),
        }
    }

    /// Runs `body` in a transaction begun with `begin_sql`, for what a plain `BEGIN` cannot say
    /// (SQLite's write lock up front, PostgreSQL's isolation level, in the same round trip);
    /// committed if `body` succeeds, rolled back if not.
    fn within_begun<T>(
        &mut self,
        begin_sql: &str,
        body: impl FnOnce(&mut Self) -> QueryResult<T>,
    ) -> QueryResult<T> {
        on_its_backend!(&mut *self, |conn| {
            AnsiTransactionManager::begin_transaction_sql(conn, begin_sql)
        })?;
        match body(self) {
            Ok(value) => {
                on_its_backend!(&mut *self, |conn| {
                    AnsiTransactionManager::commit_transaction(conn)
                })?;
                Ok(value)
            }
            Err(error) => {
                // A failed rollback leaves the transaction manager broken and the pool retires
                // the connection; the caller still learns what went wrong first.
                let _ = on_its_backend!(&mut *self, |conn| {
                    AnsiTransactionManager::rollback_transaction(conn)
                });
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
    /// whose default `READ COMMITTED` gives each statement its own. Inside a transaction already,
    /// `query` runs in it.
    pub fn in_one_snapshot<T>(
        &mut self,
        query: impl FnOnce(&mut Self) -> QueryResult<T>,
    ) -> QueryResult<T> {
        if self.in_transaction()? {
            // The caller's transaction is the snapshot (and, on PostgreSQL, too late to change
            // its isolation level: a savepoint cannot).
            return query(self);
        }
        match self {
            Self::Sqlite(_) | Self::Mysql(_) => self.transaction(query),
            // The isolation level in the `BEGIN` itself: one round trip, not two.
            Self::Postgres(_) => {
                self.within_begun("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", query)
            }
        }
    }

    /// Whether a transaction is open on this connection.
    fn in_transaction(&mut self) -> QueryResult<bool> {
        let status = <Self as Connection>::TransactionManager::transaction_manager_status_mut(self);
        Ok(status.transaction_depth()?.is_some())
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
