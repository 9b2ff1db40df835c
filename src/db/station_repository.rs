//! Queries on `station`. Each function is one unit of work on a connection it is lent.

mod listing;

use diesel::prelude::*;

use listing::ListQueries;

use crate::domain::listing::{
    CursorPosition, Direction, Ordering, PageNumber, SortField, SortValue, StationFilter,
};

use crate::db::models::{StationChanges, StationRow, StationValues};
use crate::db::{DbConnection, last_insert_id};
use crate::domain::station::{NewStation, StationPatch};

/// One page of readings and the total it was cut from.
#[derive(Debug)]
pub struct PageOfRows {
    /// Rows that pass the filter.
    pub total: i64,
    /// The 1-based number of this page.
    pub number: i64,
    /// How many pages there are (at least 1, even when empty).
    pub page_count: i64,
    /// This page's rows, in the requested order.
    pub rows: Vec<StationRow>,
}

/// One cursor page: its rows, and whether more lie beyond them in the walk's direction.
#[derive(Debug)]
pub struct CursorPage {
    /// This page's rows, in the requested order (also when walking backwards).
    pub rows: Vec<StationRow>,
    /// True when rows exist past the last one fetched (past the first, walking backwards).
    pub more_beyond: bool,
}

/// The values of `row` for each key of `ordering`, for the cursor that continues after it.
pub fn sort_values(row: &StationRow, ordering: &Ordering) -> Vec<SortValue> {
    ordering
        .keys()
        .iter()
        .map(|key| match key.field {
            SortField::Id => SortValue::Integer(row.id),
            SortField::Timestamp => SortValue::Integer(row.timestamp),
            SortField::Temperature => SortValue::Real(row.temperature),
            SortField::Name => SortValue::Text(row.name.clone()),
        })
        .collect()
}

/// Counts the filtered rows and reads one numbered page of them, in one snapshot so `count` and
/// `results` agree. `None` when the page does not exist. The count costs a scan of every
/// matching row; cursor pages ([`page_by_cursor`]) have none.
pub fn page_by_number(
    conn: &mut DbConnection,
    filter: &StationFilter,
    ordering: &Ordering,
    page_size: i64,
    selector: PageNumber,
) -> QueryResult<Option<PageOfRows>> {
    conn.in_one_snapshot(|conn| {
        let total = if filter.lets_everything_through() {
            count_all(conn)?
        } else {
            on_its_backend!(conn, |conn| conn.count_matching(filter))?
        };
        let page_count = ((total + page_size - 1) / page_size).max(1);
        let number = match selector {
            PageNumber::Number(n) if (1..=page_count).contains(&n) => n,
            PageNumber::Number(_) => return Ok(None),
            PageNumber::Last => page_count,
        };
        let offset = (number - 1) * page_size;
        let rows = on_its_backend!(conn, |conn| conn
            .numbered_rows(filter, ordering, page_size, offset))?;
        Ok(Some(PageOfRows {
            total,
            number,
            page_count,
            rows,
        }))
    })
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

/// Reads the page that starts just beyond `position` (or at the start of the order when there is
/// none), from an index on the ordering's first key: its cost depends on the page size, not on
/// the table's size or on how deep the walk is.
pub fn page_by_cursor(
    conn: &mut DbConnection,
    filter: &StationFilter,
    ordering: &Ordering,
    page_size: i64,
    position: Option<&CursorPosition>,
) -> QueryResult<CursorPage> {
    let backwards = position.is_some_and(|p| p.direction == Direction::Before);
    let mut rows = on_its_backend!(conn, |conn| conn.rows_from(
        filter,
        ordering,
        position,
        page_size + 1
    ))?;
    let more_beyond = rows.len() as u64 > page_size.unsigned_abs();
    rows.truncate(usize::try_from(page_size).unwrap_or(usize::MAX));
    if backwards {
        rows.reverse();
    }
    Ok(CursorPage { rows, more_beyond })
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
