//! Queries on `station`. Each function is one unit of work on a connection it is lent.

mod aggregates;
mod data_commands;
mod gated_insert;
mod gated_update;
mod latest;
mod listing;
mod sqlite_bulk;

use diesel::prelude::*;

pub use aggregates::{BucketRow, aggregate};
pub use data_commands::{copy_sqlite_database, delete_older_than, insert_with_ids, taken_ids};
pub use latest::latest_per_name;
use listing::ListQueries;

use crate::db::models::{CountedRows, StationChanges, StationRow, StationValues};
use crate::db::{CallerColumn, CallerGate, Carried, DbConnection, last_insert_id};
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

/// [`CountAllReadings`] as a scalar subquery, for a column of the statement that reads a page:
/// the engines evaluate it once per statement, not per row.
#[derive(Debug, Clone, Copy, diesel::query_builder::QueryId)]
struct KeptCount;

impl diesel::expression::Expression for KeptCount {
    type SqlType = diesel::sql_types::BigInt;
}

impl<QS> diesel::expression::AppearsOnTable<QS> for KeptCount {}

impl<QS> diesel::expression::SelectableExpression<QS> for KeptCount {}

impl<GroupByClause> diesel::expression::ValidGrouping<GroupByClause> for KeptCount {
    type IsAggregate = diesel::expression::is_aggregate::Never;
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

        impl diesel::query_builder::QueryFragment<$backend> for KeptCount {
            fn walk_ast<'b>(
                &'b self,
                mut out: diesel::query_builder::AstPass<'_, 'b, $backend>,
            ) -> QueryResult<()> {
                out.push_sql(concat!("(", $sql, ")"));
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

/// At most `limit` of the readings `filter` lets through, in `ordering`, `offset` rows in, with
/// how many it lets through and what `caller` read, all from one statement, so the count and the
/// rows agree without a transaction around them.
pub fn counted_rows_at(
    conn: &mut DbConnection,
    filter: &StationFilter,
    ordering: &Ordering,
    offset: i64,
    limit: i64,
    caller: &CallerColumn,
) -> QueryResult<CountedRows<StationRow>> {
    let read = on_its_backend!(conn, |conn| conn
        .counted_rows(filter, ordering, limit, offset, caller))?;
    let Some(&(_, total, standing)) = read.first() else {
        return Ok(CountedRows::NoneAtOffset);
    };
    Ok(CountedRows::Found {
        rows: read.into_iter().map(|(row, _, _)| row).collect(),
        total,
        caller: caller.standing(standing),
    })
}

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

/// [`rows_beyond`], with what `caller` read from the same statement: no standing when no row
/// came back.
pub fn rows_beyond_carrying(
    conn: &mut DbConnection,
    filter: &StationFilter,
    ordering: &Ordering,
    boundary: Option<&[SortValue]>,
    backwards: bool,
    limit: i64,
    caller: &CallerColumn,
) -> QueryResult<Carried<Vec<StationRow>>> {
    let read = on_its_backend!(conn, |conn| conn
        .rows_from_carrying(filter, ordering, boundary, backwards, limit, caller))?;
    let standing = read.first().map(|&(_, read)| caller.standing(read));
    Ok(Carried {
        value: read.into_iter().map(|(row, _)| row).collect(),
        caller: standing,
    })
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

/// [`find`], carrying `caller` in the same statement when there is one.
pub fn find_carrying(
    conn: &mut DbConnection,
    station_id: i64,
    caller: Option<&CallerColumn>,
) -> QueryResult<Carried<Option<StationRow>>> {
    use crate::db::schema::station::dsl::station;

    let Some(caller) = caller else {
        return find(conn, station_id).map(Carried::alone);
    };
    let found: Option<(StationRow, Option<i64>)> = on_its_backend!(conn, |conn| station
        .find(station_id)
        .select((StationRow::as_select(), caller.clone()))
        .get_result(conn)
        .optional())?;
    Ok(match found {
        Some((row, read)) => Carried {
            value: Some(row),
            caller: Some(caller.standing(read)),
        },
        None => Carried::alone(None),
    })
}

/// [`find`], with the row locked until the transaction ends (SQLite's one writer needs no lock),
/// so what is decided from it still holds when the transaction writes.
pub fn find_for_update(
    conn: &mut DbConnection,
    station_id: i64,
) -> QueryResult<Option<StationRow>> {
    use crate::db::schema::station::dsl::station;

    let query = || station.find(station_id);
    match conn {
        DbConnection::Sqlite(sqlite) => query()
            .select(StationRow::as_select())
            .get_result(sqlite)
            .optional(),
        DbConnection::Postgres(pg) => query()
            .select(StationRow::as_select())
            .for_update()
            .get_result(pg)
            .optional(),
        DbConnection::Mysql(mysql) => query()
            .select(StationRow::as_select())
            .for_update()
            .get_result(mysql)
            .optional(),
    }
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

/// Stores a new reading if `gate` (when there is one) admits the caller, checked by the same
/// statement that writes (see [`CallerGate`]): the reading as stored and what the caller column
/// read, or `None` when the caller was turned away and nothing was written.
///
/// On PostgreSQL and SQLite one statement does both, atomic by itself; MySQL has no RETURNING,
/// so there the caller is read first and the reading inserted and read back after: run it in a
/// transaction on MySQL.
pub fn insert_if_admitted(
    conn: &mut DbConnection,
    new_station: &NewStation,
    gate: Option<&CallerGate>,
) -> QueryResult<Option<(StationRow, Option<i64>)>> {
    let Some(gate) = gate else {
        return insert(conn, new_station).map(|row| Some((row, None)));
    };
    let statement = gated_insert::GatedInsert {
        values: StationValues::from(new_station),
        gate,
    };
    match conn {
        DbConnection::Sqlite(sqlite) => statement.get_result(sqlite).optional(),
        DbConnection::Postgres(pg) => statement.get_result(pg).optional(),
        DbConnection::Mysql(_) => {
            let Some(read) = gate.admitted_read(conn)? else {
                return Ok(None);
            };
            insert(conn, new_station).map(|row| Some((row, read)))
        }
    }
}

/// The most readings one INSERT writes: 5,000 bind parameters, well under SQLite's 32,766 and
/// the 65,535 of PostgreSQL's and MySQL's protocols, while a statement stays a few tens of KB.
const ROWS_PER_INSERT: usize = 1000;

/// Stores `readings` with multi-row INSERTs (a round trip per thousand rows, not per row) and
/// returns them as stored, in the order given. Run it in one transaction: all or none.
///
/// Ids are handed out in the order of the VALUES list on every engine, so the rows a statement
/// returns, sorted by id, are in input order. MySQL has no RETURNING: there the first id comes
/// from `LAST_INSERT_ID()` and the rows are read back by id (see [`insert_chunk_on_mysql`]).
pub fn insert_many(
    conn: &mut DbConnection,
    readings: &[NewStation],
) -> QueryResult<Vec<StationRow>> {
    use crate::db::schema::station::dsl::station;

    match conn {
        DbConnection::Sqlite(sqlite) => sqlite_bulk::insert_many(sqlite, readings),
        DbConnection::Postgres(pg) => insert_in_chunks(readings, |values| {
            diesel::insert_into(station)
                .values(values)
                .returning(StationRow::as_returning())
                .get_results(pg)
        }),
        DbConnection::Mysql(mysql) => {
            let consecutive_ids = mysql_ids_are_consecutive(mysql)?;
            insert_in_chunks(readings, |values| {
                insert_chunk_on_mysql(mysql, values, consecutive_ids)
            })
        }
    }
}

/// Runs `insert_chunk` on `readings` a thousand at a time and gathers the rows, by id.
fn insert_in_chunks<'a>(
    readings: &'a [NewStation],
    mut insert_chunk: impl FnMut(&[StationValues<'a>]) -> QueryResult<Vec<StationRow>>,
) -> QueryResult<Vec<StationRow>> {
    let mut rows = Vec::with_capacity(readings.len());
    for chunk in readings.chunks(ROWS_PER_INSERT) {
        let values: Vec<StationValues<'a>> = chunk.iter().map(StationValues::from).collect();
        let mut written = insert_chunk(&values)?;
        written.sort_unstable_by_key(|row| row.id);
        rows.append(&mut written);
    }
    Ok(rows)
}

/// The step between the ids of one multi-row INSERT, when InnoDB hands them out consecutively:
/// `innodb_autoinc_lock_mode` 0 or 1 (MariaDB's default) give a statement whose row count is
/// known one block of ids, `auto_increment_increment` apart. `None` in mode 2 (interleaved,
/// MySQL 8's default), where another statement's ids may fall in between.
fn mysql_ids_are_consecutive(conn: &mut MysqlConnection) -> QueryResult<Option<i64>> {
    use diesel::dsl::sql;
    use diesel::sql_types::BigInt;

    let (lock_mode, step) = diesel::select(sql::<(BigInt, BigInt)>(
        "CAST(@@innodb_autoinc_lock_mode AS SIGNED), CAST(@@auto_increment_increment AS SIGNED)",
    ))
    .get_result::<(i64, i64)>(conn)?;
    Ok((lock_mode != 2 && step >= 1).then_some(step))
}

/// Inserts `values` on MySQL and reads them back: with consecutive ids (`step` apart), one
/// statement and one read of the id range; otherwise a statement and a read per row.
fn insert_chunk_on_mysql(
    conn: &mut MysqlConnection,
    values: &[StationValues<'_>],
    step: Option<i64>,
) -> QueryResult<Vec<StationRow>> {
    use crate::db::schema::station::dsl::{id, station};

    let Some(step) = step else {
        return values
            .iter()
            .map(|value| {
                diesel::insert_into(station).values(value).execute(conn)?;
                let new_id = last_insert_id(conn)?;
                find_on(conn, new_id)?.ok_or(diesel::result::Error::NotFound)
            })
            .collect();
    };
    diesel::insert_into(station).values(values).execute(conn)?;
    let first = last_insert_id(conn)?;
    let count = i64::try_from(values.len()).unwrap_or(i64::MAX);
    let last = first.saturating_add(step.saturating_mul(count - 1));
    let mut rows: Vec<StationRow> = station
        .filter(id.between(first, last))
        .select(StationRow::as_select())
        .load(conn)?;
    // With a step over 1 (several writers, as in Galera), other servers' ids lie in between.
    rows.retain(|row| (row.id - first) % step == 0);
    if rows.len() != values.len() {
        // Not the block InnoDB promised: refuse (the transaction rolls back) rather than answer
        // with rows that are not these.
        return Err(diesel::result::Error::QueryBuilderError(
            format!(
                "read back {} rows of a {}-row insert",
                rows.len(),
                values.len()
            )
            .into(),
        ));
    }
    Ok(rows)
}

/// A change of one reading that checks its caller in the same statement, when given a
/// [`CallerGate`]: `None` when no row came back under the gate (the caller was turned away or
/// there is no such reading: nothing was changed either way), otherwise what the change returns
/// (`None` in it: no such reading) with what the caller column read (nothing without a gate).
pub type ChangedIfAdmitted<T> = QueryResult<Option<(Option<T>, Option<i64>)>>;

/// The UPDATE of reading `station_id` that writes `values`, only if `gate` (when there is one)
/// admits the caller, as [`ChangedIfAdmitted`]. One statement on SQLite and PostgreSQL
/// ([`gated_update`]); without a gate, and on MySQL (no `RETURNING`) after reading the caller,
/// `ungated` (the change as such) runs instead: run it in a transaction on MySQL
/// ([`crate::db::Database::write_atomic`] does).
fn updated_if_admitted(
    conn: &mut DbConnection,
    station_id: i64,
    values: &[gated_update::NewValue<'_>],
    gate: Option<&CallerGate>,
    ungated: impl FnOnce(&mut DbConnection) -> QueryResult<Option<StationRow>>,
) -> ChangedIfAdmitted<StationRow> {
    let Some(gate) = gate else {
        return ungated(conn).map(|row| Some((row, None)));
    };
    let statement = gated_update::GatedUpdate {
        id: station_id,
        values,
        gate,
    };
    let updated: Option<(StationRow, Option<i64>)> = match conn {
        DbConnection::Sqlite(sqlite) => statement.get_result(sqlite).optional()?,
        DbConnection::Postgres(pg) => statement.get_result(pg).optional()?,
        DbConnection::Mysql(_) => {
            let Some(read) = gate.admitted_read(conn)? else {
                return Ok(None);
            };
            return ungated(conn).map(|row| Some((row, read)));
        }
    };
    Ok(updated.map(|(row, read)| (Some(row), read)))
}

/// [`replace`] under `gate`: see [`ChangedIfAdmitted`].
pub fn replace_if_admitted(
    conn: &mut DbConnection,
    station_id: i64,
    new_station: &NewStation,
    gate: Option<&CallerGate>,
) -> ChangedIfAdmitted<StationRow> {
    let values = gated_update::NewValue::all(&StationValues::from(new_station));
    updated_if_admitted(conn, station_id, &values, gate, |conn| {
        replace(conn, station_id, new_station)
    })
}

/// [`patch`] under `gate`: see [`ChangedIfAdmitted`].
pub fn patch_if_admitted(
    conn: &mut DbConnection,
    station_id: i64,
    changes: &StationPatch,
    gate: Option<&CallerGate>,
) -> ChangedIfAdmitted<StationRow> {
    if let Some(gate) = gate
        && changes.is_empty()
    {
        // A read (an UPDATE needs a column to set), under the gate all the same.
        use crate::db::schema::station::dsl::station;

        let found: Option<(StationRow, Option<i64>)> = on_its_backend!(conn, |conn| station
            .find(station_id)
            .select((StationRow::as_select(), gate.column().clone()))
            .get_result(conn)
            .optional())?;
        return Ok(found
            .filter(|&(_, read)| gate.admits(read))
            .map(|(row, read)| (Some(row), read)));
    }
    let values = gated_update::NewValue::named_by(changes);
    updated_if_admitted(conn, station_id, &values, gate, |conn| {
        patch(conn, station_id, changes)
    })
}

/// [`delete`] under `gate`: see [`ChangedIfAdmitted`]; `Some(())` in it for a deleted reading.
pub fn delete_if_admitted(
    conn: &mut DbConnection,
    station_id: i64,
    gate: Option<&CallerGate>,
) -> ChangedIfAdmitted<()> {
    use crate::db::schema::station::dsl::station;

    let Some(gate) = gate else {
        return delete(conn, station_id).map(|deleted| Some((deleted.then_some(()), None)));
    };
    let statement = || {
        diesel::delete(station.find(station_id).filter(gate.clone()))
            .returning(gate.column().clone())
    };
    let deleted: Option<Option<i64>> = match conn {
        DbConnection::Sqlite(sqlite) => statement().get_result(sqlite).optional()?,
        DbConnection::Postgres(pg) => statement().get_result(pg).optional()?,
        DbConnection::Mysql(_) => {
            let Some(read) = gate.admitted_read(conn)? else {
                return Ok(None);
            };
            return delete(conn, station_id).map(|deleted| Some((deleted.then_some(()), read)));
        }
    };
    Ok(deleted.map(|read| (Some(()), read)))
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
