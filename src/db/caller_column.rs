//! A request's caller check as one more column of the request's own query.
//!
//! A caller whose password (or token) the process remembers still has their account (or token)
//! read on every request, so a deactivated account, a new password or a revoked token takes
//! effect at once on every instance. As a statement of its own that read is one more round trip
//! to a database server per request. As a scalar subquery in the select list of the statement
//! that reads what the request asked for, it costs no round trip: the statement answers both.
//! A statement that returns no row answers nothing about the caller; the caller is then read
//! with [`CallerColumn::read`], the same subquery on its own.

use std::sync::Arc;

use diesel::backend::Backend;
use diesel::expression::{AppearsOnTable, Expression, SelectableExpression, ValidGrouping};
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Nullable, Text};

use crate::db::DbConnection;

/// What a request's caller claims to be, as the column that reads whether it still is.
#[derive(Debug, Clone)]
pub enum CallerColumn {
    /// An account whose password matched the hash `verified_hash` when it was last verified.
    Account {
        /// The account's username.
        username: String,
        /// The stored hash the password was verified against.
        verified_hash: Arc<str>,
    },
    /// A device token, by the hash of its key.
    Token {
        /// The hash its row is found by.
        key_hash: Arc<str>,
    },
}

/// What the caller column read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallerStanding {
    /// No such account, or the token was revoked.
    Missing,
    /// The account's stored hash is no longer the one the password was verified against.
    NewPassword,
    /// The account exists with that hash but is inactive.
    Inactive,
    /// The account exists, with that hash, active.
    Active {
        /// Whether it is a staff account.
        staff: bool,
    },
    /// The token exists.
    Token {
        /// When it was last used (Unix seconds); `None` never.
        last_used: Option<i64>,
    },
}

// The account subquery's values, as its `CASE` (in `walk_ast`) writes them; a changed hash wins
// over everything else.
const NEW_PASSWORD: i64 = -1;
const ACTIVE: i64 = 1;
const ACTIVE_STAFF: i64 = 2;
/// The token subquery's value for a token never used, as its `COALESCE` writes it (a present
/// token's `last_used` is never negative).
const NEVER_USED: i64 = -1;

impl CallerColumn {
    /// What the column's value `read` (`NULL`: no row) says about the caller.
    pub fn standing(&self, read: Option<i64>) -> CallerStanding {
        match (self, read) {
            (_, None) => CallerStanding::Missing,
            (Self::Account { .. }, Some(NEW_PASSWORD)) => CallerStanding::NewPassword,
            (Self::Account { .. }, Some(ACTIVE)) => CallerStanding::Active { staff: false },
            (Self::Account { .. }, Some(ACTIVE_STAFF)) => CallerStanding::Active { staff: true },
            (Self::Account { .. }, Some(_)) => CallerStanding::Inactive,
            (Self::Token { .. }, Some(NEVER_USED)) => CallerStanding::Token { last_used: None },
            (Self::Token { .. }, Some(seconds)) => CallerStanding::Token {
                last_used: Some(seconds),
            },
        }
    }

    /// The column with the values of it whose standing `admits`; `None` when none does.
    pub fn gate(&self, admits: impl Fn(CallerStanding) -> bool) -> Option<CallerGate> {
        let admitting = match self {
            // Any present token: what it may do is the token's, not the row's.
            Self::Token { .. } => {
                if !admits(CallerStanding::Token { last_used: None }) {
                    return None;
                }
                Admitting::AnyRow
            }
            Self::Account { .. } => {
                let values: Vec<i64> = [ACTIVE, ACTIVE_STAFF]
                    .into_iter()
                    .filter(|value| admits(self.standing(Some(*value))))
                    .collect();
                if values.is_empty() {
                    return None;
                }
                Admitting::Values(values)
            }
        };
        Some(CallerGate {
            column: self.clone(),
            admitting,
        })
    }

    /// Reads the caller with a statement of its own, for a request whose query returned no row.
    pub fn read(&self, conn: &mut DbConnection) -> QueryResult<CallerStanding> {
        Ok(self.standing(self.read_value(conn)?))
    }

    /// The column's value, read with a statement of its own.
    pub(in crate::db) fn read_value(&self, conn: &mut DbConnection) -> QueryResult<Option<i64>> {
        on_its_backend!(conn, |conn| diesel::select(self.clone())
            .get_result::<Option<i64>>(conn))
    }
}

impl Expression for CallerColumn {
    type SqlType = Nullable<BigInt>;
}

impl<QS> AppearsOnTable<QS> for CallerColumn {}

impl<QS> SelectableExpression<QS> for CallerColumn {}

impl<GroupByClause> ValidGrouping<GroupByClause> for CallerColumn {
    type IsAggregate = diesel::expression::is_aggregate::Never;
}

/// The two kinds render different SQL: Diesel keys the prepared statement by its text.
impl QueryId for CallerColumn {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

/// How an engine writes the subquery's value as a 64-bit integer: PostgreSQL's `CASE` of small
/// literals is a 32-bit `integer`, and MySQL's is whatever it infers; SQLite has one integer type.
trait AsBigInt: Backend {
    const OPEN: &'static str;
    const CLOSE: &'static str;
}

impl AsBigInt for diesel::sqlite::Sqlite {
    const OPEN: &'static str = "(";
    const CLOSE: &'static str = ")";
}

impl AsBigInt for diesel::pg::Pg {
    const OPEN: &'static str = "CAST((";
    const CLOSE: &'static str = ") AS BIGINT)";
}

impl AsBigInt for diesel::mysql::Mysql {
    const OPEN: &'static str = "CAST((";
    const CLOSE: &'static str = ") AS SIGNED)";
}

impl<DB: AsBigInt> QueryFragment<DB> for CallerColumn
where
    str: diesel::serialize::ToSql<Text, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql(DB::OPEN);
        match self {
            Self::Account {
                username,
                verified_hash,
            } => {
                out.push_sql("SELECT CASE WHEN ");
                out.push_identifier("password_hash")?;
                out.push_sql(" <> ");
                out.push_bind_param::<Text, str>(verified_hash)?;
                out.push_sql(" THEN -1 WHEN ");
                out.push_identifier("is_active")?;
                out.push_sql(" THEN CASE WHEN ");
                out.push_identifier("is_staff")?;
                out.push_sql(" THEN 2 ELSE 1 END ELSE 0 END FROM ");
                out.push_identifier("users")?;
                out.push_sql(" WHERE ");
                out.push_identifier("username")?;
                out.push_sql(" = ");
                out.push_bind_param::<Text, str>(username)?;
            }
            Self::Token { key_hash } => {
                out.push_sql("SELECT COALESCE(");
                out.push_identifier("last_used")?;
                out.push_sql(", -1) FROM ");
                out.push_identifier("device_tokens")?;
                out.push_sql(" WHERE ");
                out.push_identifier("key_hash")?;
                out.push_sql(" = ");
                out.push_bind_param::<Text, str>(key_hash)?;
            }
        }
        out.push_sql(DB::CLOSE);
        Ok(())
    }
}

/// A caller column as a condition: true only for the values that admit the caller, so a
/// statement that writes under it writes nothing for anyone else, and one round trip both checks
/// the caller and writes.
#[derive(Debug, Clone)]
pub struct CallerGate {
    column: CallerColumn,
    admitting: Admitting,
}

/// Which values of the column admit.
#[derive(Debug, Clone)]
enum Admitting {
    /// Any (a token row that exists).
    AnyRow,
    /// These (account standings).
    Values(Vec<i64>),
}

impl CallerGate {
    /// The column the gate reads, for the statement to return what it read.
    pub fn column(&self) -> &CallerColumn {
        &self.column
    }

    /// Reads the column with a statement of its own, where a statement cannot carry the gate
    /// (MySQL has no RETURNING): what it read when that admits the caller, `None` when not.
    pub(in crate::db) fn admitted_read(
        &self,
        conn: &mut DbConnection,
    ) -> QueryResult<Option<Option<i64>>> {
        let read = self.column.read_value(conn)?;
        Ok(self.admits(read).then_some(read))
    }

    /// Whether the column's value `read` admits the caller.
    pub(in crate::db) fn admits(&self, read: Option<i64>) -> bool {
        match (&self.admitting, read) {
            (_, None) => false,
            (Admitting::AnyRow, Some(_)) => true,
            (Admitting::Values(values), Some(value)) => values.contains(&value),
        }
    }
}

impl Expression for CallerGate {
    type SqlType = diesel::sql_types::Bool;
}

impl<QS> AppearsOnTable<QS> for CallerGate {}

impl<QS> SelectableExpression<QS> for CallerGate {}

impl<GroupByClause> ValidGrouping<GroupByClause> for CallerGate {
    type IsAggregate = diesel::expression::is_aggregate::Never;
}

impl QueryId for CallerGate {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<DB: AsBigInt> QueryFragment<DB> for CallerGate
where
    str: diesel::serialize::ToSql<Text, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.column.walk_ast(out.reborrow())?;
        match &self.admitting {
            Admitting::AnyRow => out.push_sql(" IS NOT NULL"),
            Admitting::Values(values) => {
                // Constants of this module, not input: written into the SQL, so each set of
                // values is one statement, kept prepared.
                let listed: Vec<String> = values.iter().map(i64::to_string).collect();
                out.push_sql(&format!(" IN ({})", listed.join(", ")));
            }
        }
        Ok(())
    }
}

/// What a read returned, and what it read of its caller on the way: `None` when it did not (it
/// was given no column, or its statement returned no row).
#[derive(Debug)]
pub struct Carried<T> {
    /// What the read returned.
    pub value: T,
    /// What the caller column read.
    pub caller: Option<CallerStanding>,
}

impl<T> Carried<T> {
    /// A read that carried no caller column.
    pub fn alone(value: T) -> Self {
        Self {
            value,
            caller: None,
        }
    }
}
