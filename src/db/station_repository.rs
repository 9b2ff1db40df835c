//! Queries on `station`. Each function is one unit of work on a connection it is lent.

use diesel::prelude::*;

use crate::db::models::{StationChanges, StationRow, StationValues};
use crate::db::{DbConnection, last_insert_id};
use crate::domain::station::{NewStation, StationPatch};

/// Which page of the id-ordered list a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageSelector {
    /// A 1-based page number.
    Number(i64),
    /// Whatever page is last now.
    Last,
}

/// One page of readings and the total it was cut from.
#[derive(Debug)]
pub struct PageOfRows {
    /// Rows in the whole table.
    pub total: i64,
    /// The 1-based number of this page.
    pub number: i64,
    /// How many pages there are (at least 1, even when empty).
    pub page_count: i64,
    /// This page's rows, by id.
    pub rows: Vec<StationRow>,
}

/// Counts and reads one page in one transaction, so `count` and `results` agree.
/// `None` when the page does not exist.
pub fn page(
    conn: &mut DbConnection,
    selector: PageSelector,
    page_size: i64,
) -> QueryResult<Option<PageOfRows>> {
    use crate::db::schema::station::dsl::{id, station};

    conn.transaction(|conn| {
        conn.use_one_snapshot()?;
        let total: i64 = station.count().get_result(conn)?;
        let page_count = ((total + page_size - 1) / page_size).max(1);
        let number = match selector {
            PageSelector::Number(n) if (1..=page_count).contains(&n) => n,
            PageSelector::Number(_) => return Ok(None),
            PageSelector::Last => page_count,
        };
        let rows = station
            .order(id.asc())
            .limit(page_size)
            .offset((number - 1) * page_size)
            .select(StationRow::as_select())
            .load(conn)?;
        Ok(Some(PageOfRows {
            total,
            number,
            page_count,
            rows,
        }))
    })
}

/// The reading with this id, if any.
pub fn find(conn: &mut DbConnection, station_id: i64) -> QueryResult<Option<StationRow>> {
    use crate::db::schema::station::dsl::station;

    // No `.first()`: SQLite re-prepares a statement whose `LIMIT ?` binding changes, on every run.
    station
        .find(station_id)
        .select(StationRow::as_select())
        .get_result(conn)
        .optional()
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
    returning_optional_row!(conn, statement, StationRow, |mysql| find_on(
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
    returning_optional_row!(conn, statement, StationRow, |mysql| find_on(
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

/// Deletes a reading; false when there was none.
pub fn delete(conn: &mut DbConnection, station_id: i64) -> QueryResult<bool> {
    use crate::db::schema::station::dsl::station;

    let deleted = diesel::delete(station.find(station_id)).execute(conn)?;
    Ok(deleted > 0)
}
