//! A reading's UPDATE that checks its caller in the same statement and stays prepared.

use diesel::backend::Backend;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Double, Nullable, Text};

use crate::db::CallerGate;
use crate::db::models::StationValues;
use crate::db::schema::station;
use crate::domain::station::StationPatch;

/// A column a change writes, with its new value.
#[derive(Debug, Clone, Copy)]
pub(super) enum NewValue<'a> {
    Name(&'a str),
    Timestamp(i64),
    Temperature(f64),
    Lat(f64),
    Lon(f64),
}

impl<'a> NewValue<'a> {
    /// Every column, as a PUT writes them.
    pub(super) fn all(values: &StationValues<'a>) -> Vec<Self> {
        vec![
            Self::Name(values.name),
            Self::Timestamp(values.timestamp),
            Self::Temperature(values.temperature),
            Self::Lat(values.lat),
            Self::Lon(values.lon),
        ]
    }

    /// The columns `patch` names, in the table's order.
    pub(super) fn named_by(patch: &'a StationPatch) -> Vec<Self> {
        [
            patch.name.as_ref().map(|name| Self::Name(name.as_ref())),
            patch.timestamp.map(|t| Self::Timestamp(t.seconds())),
            patch.temperature.map(|t| Self::Temperature(t.celsius())),
            patch.lat.map(|l| Self::Lat(l.degrees())),
            patch.lon.map(|l| Self::Lon(l.degrees())),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    fn column(self) -> &'static str {
        match self {
            Self::Name(_) => "name",
            Self::Timestamp(_) => "timestamp",
            Self::Temperature(_) => "temperature",
            Self::Lat(_) => "lat",
            Self::Lon(_) => "lon",
        }
    }
}

/// `UPDATE station SET <values> WHERE id = <id> AND <gate> RETURNING <the row>, <the caller
/// column>`: changes the reading only if the gate admits the caller, and says what the caller
/// column read. Diesel's own UPDATE marks itself as never to be kept prepared, so PostgreSQL
/// parsed and planned every PUT and PATCH; this one is kept, by its text: one statement per set
/// of columns (at most 31) and kind of caller.
pub(super) struct GatedUpdate<'a> {
    pub(super) id: i64,
    /// Not empty: an UPDATE needs a column to set.
    pub(super) values: &'a [NewValue<'a>],
    pub(super) gate: &'a CallerGate,
}

impl QueryId for GatedUpdate<'_> {
    type QueryId = ();
    // The SQL varies with the columns and the gate: keyed by text.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for GatedUpdate<'_> {
    type SqlType = (station::SqlType, Nullable<BigInt>);
}

impl<DB: Backend> QueryFragment<DB> for GatedUpdate<'_>
where
    CallerGate: QueryFragment<DB>,
    crate::db::CallerColumn: QueryFragment<DB>,
    str: diesel::serialize::ToSql<Text, DB>,
    i64: diesel::serialize::ToSql<BigInt, DB>,
    f64: diesel::serialize::ToSql<Double, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        if self.values.is_empty() {
            return Err(diesel::result::Error::QueryBuilderError(
                "an UPDATE with no column to set".into(),
            ));
        }
        out.push_sql("UPDATE ");
        out.push_identifier("station")?;
        out.push_sql(" SET ");
        for (position, value) in self.values.iter().enumerate() {
            if position > 0 {
                out.push_sql(", ");
            }
            out.push_identifier(value.column())?;
            out.push_sql(" = ");
            match value {
                NewValue::Name(name) => out.push_bind_param::<Text, str>(*name)?,
                NewValue::Timestamp(seconds) => out.push_bind_param::<BigInt, i64>(seconds)?,
                NewValue::Temperature(degrees)
                | NewValue::Lat(degrees)
                | NewValue::Lon(degrees) => out.push_bind_param::<Double, f64>(degrees)?,
            }
        }
        out.push_sql(" WHERE ");
        out.push_identifier("id")?;
        out.push_sql(" = ");
        out.push_bind_param::<BigInt, i64>(&self.id)?;
        out.push_sql(" AND ");
        self.gate.walk_ast(out.reborrow())?;
        super::gated_insert::returning_row_and_caller(out, self.gate)
    }
}

impl<Conn> RunQueryDsl<Conn> for GatedUpdate<'_> {}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use diesel::debug_query;
    use diesel::pg::Pg;
    use diesel::sqlite::Sqlite;

    use super::*;
    use crate::db::{CallerColumn, CallerStanding};

    fn staff_only() -> CallerGate {
        CallerColumn::Account {
            username: "editor".to_owned(),
            verified_hash: Arc::from("hash"),
        }
        .gate(|standing| standing == CallerStanding::Active { staff: true })
        .expect("a staff account admits")
    }

    #[test]
    fn a_gated_update_sets_the_columns_given_and_may_be_kept_prepared() {
        let gate = staff_only();
        let values = [NewValue::Temperature(1.5), NewValue::Name("Oslo")];
        let update = GatedUpdate {
            id: 7,
            values: &values,
            gate: &gate,
        };

        let sql = debug_query::<Pg, _>(&update).to_string();

        assert!(
            sql.starts_with(
                r#"UPDATE "station" SET "temperature" = $1, "name" = $2 WHERE "id" = $3 AND CAST("#
            ),
            "{sql}"
        );
        assert!(
            sql.contains(r#") IN (2) RETURNING "id", "name", "timestamp""#),
            "{sql}"
        );
        assert!(QueryFragment::<Pg>::is_safe_to_cache_prepared(&update, &Pg).unwrap());
        assert!(QueryFragment::<Sqlite>::is_safe_to_cache_prepared(&update, &Sqlite).unwrap());
    }

    #[test]
    fn an_update_with_no_column_is_refused_before_it_is_sent() {
        let gate = staff_only();
        let update = GatedUpdate {
            id: 7,
            values: &[],
            gate: &gate,
        };

        assert!(
            QueryFragment::<Pg>::to_sql(&update, &mut diesel::pg::PgQueryBuilder::default(), &Pg)
                .is_err()
        );
    }
}
