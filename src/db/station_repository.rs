//! Queries on `station`. Each function is one unit of work on a connection it is lent.

mod listing;

use diesel::prelude::*;

use listing::ListQueries;

use crate::db::models::{StationChanges, StationRow, StationValues};
use crate::db::{DbConnection, last_insert_id};
use crate::domain::listing::{Ordering, SortValue, StationFilter};
use crate::domain::station::{NewStation, StationPatch};

/// How many readings `filter` lets through: without filters, read from the counts the triggers
/// keep ([`count_all`]); with them, by counting every matching row.
pub fn count(conn: &mut DbConnection, filter: &StationFilter) -> QueryResult<i64> {
    if filter.lets_everything_through() {
        count_all(conn)
    } else {
        on_its_backend!(conn, |conn| conn.count_matching(filter))
    }
}

/// At most `limit` of the readings `filter` lets through, in `ordering`, `offset` rows in: the
/// rows before them are read and skipped, so the cost grows with `offset`.
pub fn rows_at(
    conn: &mut DbConnection,
    filter: &StationFilter,
    ordering: &Ordering,
    offset: i64,
    limit: i64,
) -> QueryResult<Vec<StationRow>> {
    on_its_backend!(conn, |conn| conn
        .numbered_rows(filter, ordering, limit, offset))
}

/// How many readings there are, from the counts the triggers keep (see the migration
/// `count_station_readings`), without reading the readings.
pub fn count_all(conn: &mut DbConnection) -> QueryResult<i64> {
    on_its_backend!(conn, |conn| CountAllReadings.get_result(conn))
}

/// The sum of `station_count`, as a 64-bit integer on every engine (PostgreSQL's and MySQL's SUM
/// of a BIGINT is a decimal), in one row: one statement, prepared once, and one row to read.
#[derive(Debug, Clone, Copy, diesel::query_builder::QueryId)]
struct CountAllReadings;

impl diesel::query_builder::Query for CountAllReadings {
    type SqlType = diesel::sql_types::BigInt;
}

macro_rules! count_all_sql {
    ($backend:ty, $sql:literal) => {
        impl diesel::query_builder::QueryFragment<$backend> for CountAllReadings {
            fn walk_ast<'b>(
                &'b self,
                mut out: diesel::query_builder::AstPass<'_, 'b, $backend>,
            ) -> QueryResult<()> {
                out.push_sql($sql);
                Ok(())
            }
        }
    };
}

count_all_sql!(
    diesel::sqlite::Sqlite,
    "SELECT COALESCE(SUM(readings), 0) FROM station_count"
);
count_all_sql!(
    diesel::pg::Pg,
    "SELECT CAST(COALESCE(SUM(readings), 0) AS BIGINT) FROM station_count"
);
count_all_sql!(
    diesel::mysql::Mysql,
    "SELECT CAST(COALESCE(SUM(readings), 0) AS SIGNED) FROM station_count"
);

impl<Conn> RunQueryDsl<Conn> for CountAllReadings {}

/// At most `limit` of the readings `filter` lets through, strictly beyond the one whose sort-key
/// values are `boundary`, walking `ordering` forwards or `backwards`, in the order walked;
/// without a boundary, from the start of the order (its end, backwards). Read from an index on
/// the ordering's first key: the cost depends on `limit`, not on the table's size or on how deep
/// the walk is.
pub fn rows_beyond(
    conn: &mut DbConnection,
    filter: &StationFilter,
    ordering: &Ordering,
    boundary: Option<&[SortValue]>,
    backwards: bool,
    limit: i64,
) -> QueryResult<Vec<StationRow>> {
    on_its_backend!(conn, |conn| conn
        .rows_from(filter, ordering, boundary, backwards, limit))
}

/// The reading with this id, if any.
pub fn find(conn: &mut DbConnection, station_id: i64) -> QueryResult<Option<StationRow>> {
    use crate::db::schema::station::dsl::station;

    // No `.first()`: SQLite re-prepares a statement whose `LIMIT ?` binding changes, on every run.
    on_its_backend!(conn, |conn| station
        .find(station_id)
        .select(StationRow::as_select())
        .get_result(conn)
        .optional())
}

/// Whether a reading with this id exists.
pub fn exists(conn: &mut DbConnection, station_id: i64) -> QueryResult<bool> {
    use crate::db::schema::station::dsl::{id, station};

    // Not `SELECT EXISTS(…)`: MySQL answers it with an integer the multi-backend `Bool` cannot read.
    let found = station
        .find(station_id)
        .select(id)
        .get_result::<i64>(conn)
        .optional()?;
    Ok(found.is_some())
}

/// Stores a new reading and returns it with its id.
pub fn insert(conn: &mut DbConnection, new_station: &NewStation) -> QueryResult<StationRow> {
    use crate::db::schema::station::dsl::station;

    let statement = diesel::insert_into(station).values(StationValues::from(new_station));
    returning_row!(conn, statement, StationRow, |mysql| {
        let new_id = last_insert_id(mysql)?;
        find_on(mysql, new_id)?.ok_or(diesel::result::Error::NotFound)
    })
}

/// Replaces every field of a reading; `None` when there is no such reading.
pub fn replace(
    conn: &mut DbConnection,
    station_id: i64,
    new_station: &NewStation,
) -> QueryResult<Option<StationRow>> {
    use crate::db::schema::station::dsl::station;

    let statement = diesel::update(station.find(station_id)).set(StationValues::from(new_station));
    returning_optional_row!(conn, statement, StationRow, |mysql| find_current_on(
        mysql, station_id
    ))
}

/// Changes the fields a patch names; `None` when there is no such reading.
pub fn patch(
    conn: &mut DbConnection,
    station_id: i64,
    changes: &StationPatch,
) -> QueryResult<Option<StationRow>> {
    use crate::db::schema::station::dsl::station;

    if changes.is_empty() {
        // Diesel refuses an UPDATE with no columns; an empty PATCH is a read.
        return find(conn, station_id);
    }
    let statement = diesel::update(station.find(station_id)).set(StationChanges::from(changes));
    returning_optional_row!(conn, statement, StationRow, |mysql| find_current_on(
        mysql, station_id
    ))
}

/// [`find`] on a MySQL connection, for reading back a row MySQL cannot return.
fn find_on(conn: &mut MysqlConnection, station_id: i64) -> QueryResult<Option<StationRow>> {
    use crate::db::schema::station::dsl::station;

    station
        .find(station_id)
        .select(StationRow::as_select())
        .get_result(conn)
        .optional()
}

/// The row as it is now, for reading back an UPDATE on MySQL: a locking read, which InnoDB
/// answers from the newest committed version (and this transaction's own changes), not from the
/// snapshot the transaction's first read took. A plain read there answered with the old row when
/// a concurrent DELETE had committed before the UPDATE, which then changed nothing.
fn find_current_on(conn: &mut MysqlConnection, station_id: i64) -> QueryResult<Option<StationRow>> {
    use crate::db::schema::station::dsl::station;

    station
        .find(station_id)
        .select(StationRow::as_select())
        .for_update()
        .get_result(conn)
        .optional()
}

/// Deletes a reading; false when there was none.
pub fn delete(conn: &mut DbConnection, station_id: i64) -> QueryResult<bool> {
    use crate::db::schema::station::dsl::station;

    let deleted = diesel::delete(station.find(station_id)).execute(conn)?;
    Ok(deleted > 0)
}
