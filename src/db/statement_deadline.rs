//! A time limit for SQLite statements, which SQLite (unlike PostgreSQL's `statement_timeout` and
//! MariaDB's `max_statement_time`) does not have.
//!
//! SQLite's own mechanisms for it (a progress handler, `sqlite3_interrupt`) need the raw
//! connection handle, which Diesel does not lend out. So the list's pattern scans (`search`,
//! `name__icontains`: a `LIKE '%…%'` per term per row, no index) carry one more condition,
//! `within_statement_time()`, a function SQLite calls for every row it examines: past the limit
//! it fails, and SQLite abandons the statement with that error. Without it one slow scan would
//! hold a query thread (on two cores, the only one) while every other request waited for it and
//! got a 503. Statements that walk an index range are not timed on SQLite.

use std::cell::Cell;
use std::time::{Duration, Instant};

use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Bool;
use diesel::sqlite::{Sqlite, SqliteConnection};

/// What a statement that ran out of time fails with; [`super::DbError`] recognises it.
pub(super) const TIMED_OUT: &str = "statement timeout: the query took longer than allowed";

thread_local! {
    /// When the query now running on this thread began; `None` outside queries.
    static QUERY_STARTED: Cell<Option<Instant>> = const { Cell::new(None) };
    /// Calls of the check since it last read the clock.
    static CALLS_SINCE_CLOCK: Cell<u32> = const { Cell::new(0) };
}

/// The check reads the clock once per this many rows: reading it for every row cost more than
/// the rest of the check, and a few hundred rows take microseconds.
const ROWS_PER_CLOCK_READ: u32 = 256;

diesel::define_sql_function! {
    /// True while the statement running on this thread is within its time limit; past it, an
    /// error that aborts the statement. Registered on SQLite connections only.
    fn within_statement_time() -> Bool;
}

/// Times the queries run on this thread until dropped.
#[must_use = "the query is timed only while the guard lives"]
pub(super) struct QueryTiming(());

/// Starts timing the query about to run on this thread.
pub(super) fn time_query() -> QueryTiming {
    QUERY_STARTED.set(Some(Instant::now()));
    CALLS_SINCE_CLOCK.set(0);
    QueryTiming(())
}

impl Drop for QueryTiming {
    fn drop(&mut self) {
        QUERY_STARTED.set(None);
    }
}

/// Registers `within_statement_time()` on `conn`, failing statements that run longer than
/// `limit` (zero: no limit).
pub(super) fn register(conn: &SqliteConnection, limit: Duration) -> diesel::QueryResult<()> {
    within_statement_time_utils::register_nondeterministic_impl(conn, move || {
        let calls = CALLS_SINCE_CLOCK.get() + 1;
        if calls < ROWS_PER_CLOCK_READ {
            CALLS_SINCE_CLOCK.set(calls);
            return Verdict { overdue: false };
        }
        CALLS_SINCE_CLOCK.set(0);
        let overdue = !limit.is_zero()
            && QUERY_STARTED
                .get()
                .is_some_and(|started| started.elapsed() > limit);
        Verdict { overdue }
    })
}

/// The function's answer: true, or the error that stops the statement.
#[derive(Debug)]
struct Verdict {
    overdue: bool,
}

impl ToSql<Bool, Sqlite> for Verdict {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        if self.overdue {
            return Err(TIMED_OUT.into());
        }
        <bool as ToSql<Bool, Sqlite>>::to_sql(&true, out)
    }
}

#[cfg(test)]
mod tests {
    use diesel::connection::SimpleConnection as _;
    use diesel::prelude::*;

    use super::*;

    fn counting_connection(limit: Duration) -> SqliteConnection {
        let mut conn = SqliteConnection::establish(":memory:").unwrap();
        register(&conn, limit).unwrap();
        conn.batch_execute(
            "CREATE TABLE n (v INTEGER); \
             WITH RECURSIVE c(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM c WHERE v < 2000) \
             INSERT INTO n SELECT v FROM c;",
        )
        .unwrap();
        conn
    }

    fn slow_count(conn: &mut SqliteConnection) -> QueryResult<i64> {
        // A self-join matching nothing: four million pairs to examine, seconds in a debug build.
        diesel::sql_query(
            "SELECT COUNT(*) AS total FROM n a, n b WHERE within_statement_time() AND a.v + b.v < 0",
        )
        .load::<Total>(conn)
        .map(|rows| rows.first().map_or(0, |row| row.total))
    }

    #[derive(QueryableByName)]
    struct Total {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        total: i64,
    }

    #[test]
    fn a_statement_past_its_limit_fails_with_the_timeout_error() {
        let mut conn = counting_connection(Duration::from_millis(50));
        let _timing = time_query();
        let error = slow_count(&mut conn).unwrap_err().to_string();
        assert!(error.contains(TIMED_OUT), "{error}");
    }

    #[test]
    fn statements_run_unlimited_outside_a_timed_query_or_with_no_limit() {
        let mut conn = counting_connection(Duration::from_millis(1));
        let quick =
            diesel::sql_query("SELECT COUNT(*) AS total FROM n WHERE within_statement_time()")
                .load::<Total>(&mut conn)
                .unwrap();
        assert_eq!(quick[0].total, 2_000);

        let mut unlimited = counting_connection(Duration::ZERO);
        let _timing = time_query();
        std::thread::sleep(Duration::from_millis(5));
        let all =
            diesel::sql_query("SELECT COUNT(*) AS total FROM n WHERE within_statement_time()")
                .load::<Total>(&mut unlimited)
                .unwrap();
        assert_eq!(all[0].total, 2_000);
    }
}
