//! A single reading's INSERT that checks its caller in the same statement.

use diesel::backend::Backend;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Double, Nullable, Text};

use crate::db::CallerGate;
use crate::db::models::StationValues;
use crate::db::schema::station;

/// `INSERT INTO station (…) SELECT <values> WHERE <gate> RETURNING <the row>, <the caller column>`:
/// writes the reading only if the gate admits the caller, and says what the caller column read.
/// One statement, so on PostgreSQL it needs no transaction around it: one round trip where a
/// checked create took four (`BEGIN`, the check, the INSERT, `COMMIT`).
pub(super) struct GatedInsert<'a> {
    pub(super) values: StationValues<'a>,
    pub(super) gate: &'a CallerGate,
}

impl QueryId for GatedInsert<'_> {
    type QueryId = ();
    // The gate's SQL varies with the kind of caller and the values that admit: keyed by text.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for GatedInsert<'_> {
    type SqlType = (station::SqlType, Nullable<BigInt>);
}

impl<DB: Backend> QueryFragment<DB> for GatedInsert<'_>
where
    CallerGate: QueryFragment<DB>,
    crate::db::CallerColumn: QueryFragment<DB>,
    str: diesel::serialize::ToSql<Text, DB>,
    i64: diesel::serialize::ToSql<BigInt, DB>,
    f64: diesel::serialize::ToSql<Double, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        let columns = ["name", "timestamp", "temperature", "lat", "lon"];
        out.push_sql("INSERT INTO ");
        out.push_identifier("station")?;
        out.push_sql(" (");
        for (position, column) in columns.into_iter().enumerate() {
            if position > 0 {
                out.push_sql(", ");
            }
            out.push_identifier(column)?;
        }
        out.push_sql(") SELECT ");
        out.push_bind_param::<Text, str>(self.values.name)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, i64>(&self.values.timestamp)?;
        out.push_sql(", ");
        out.push_bind_param::<Double, f64>(&self.values.temperature)?;
        out.push_sql(", ");
        out.push_bind_param::<Double, f64>(&self.values.lat)?;
        out.push_sql(", ");
        out.push_bind_param::<Double, f64>(&self.values.lon)?;
        out.push_sql(" WHERE ");
        self.gate.walk_ast(out.reborrow())?;
        returning_row_and_caller(out, self.gate)
    }
}

/// ` RETURNING <the row>, <the caller column>`: how a gated INSERT and UPDATE end.
pub(super) fn returning_row_and_caller<'b, DB: Backend>(
    mut out: AstPass<'_, 'b, DB>,
    gate: &'b CallerGate,
) -> QueryResult<()>
where
    crate::db::CallerColumn: QueryFragment<DB>,
{
    out.push_sql(" RETURNING ");
    for (position, column) in ["id", "name", "timestamp", "temperature", "lat", "lon"]
        .into_iter()
        .enumerate()
    {
        if position > 0 {
            out.push_sql(", ");
        }
        out.push_identifier(column)?;
    }
    out.push_sql(", ");
    gate.column().walk_ast(out.reborrow())
}

impl<Conn> RunQueryDsl<Conn> for GatedInsert<'_> {}
