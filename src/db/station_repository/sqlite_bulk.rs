//! Bulk inserts on SQLite, where one writer does all the work: multi-row INSERTs whose full-size
//! statement stays prepared, rows answered from what was inserted instead of read back, and the
//! change log and the kept count written once for the whole upload instead of by a trigger per
//! row (see the `log_bulk_inserts_per_statement` migration).

use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Double, Text};
use diesel::sqlite::Sqlite;
use diesel::{QueryResult, RunQueryDsl, SqliteConnection};

use super::{ROWS_PER_INSERT, insert_in_chunks};
use crate::db::models::{StationRow, StationValues};
use crate::domain::station::NewStation;

/// Writes what the change log's insert trigger writes for each reading, for ids `?1` to `?2`.
const LOG_CREATED: &str = "\
    INSERT INTO station_changes \
        (kind, station_id, name, timestamp, temperature, lat, lon, changed_at) \
    SELECT 'created', id, name, timestamp, temperature, lat, lon, \
           CAST(strftime('%s', 'now') AS INTEGER) \
    FROM station WHERE id BETWEEN ?1 AND ?2 ORDER BY id";

/// Adds to each shard of the kept count its ids among `?1` to `?2` (those equal to the shard
/// modulo 16), as the count's insert trigger does one row at a time. The `+ 16` keeps both
/// numerators positive, where SQLite's integer division (which truncates) is a floor.
const COUNT_CREATED: &str = "\
    UPDATE station_count \
    SET readings = readings + (?2 - shard + 16) / 16 - (?1 - 1 - shard + 16) / 16";

/// Stores `readings`, all in the caller's transaction, and returns them as stored, in order.
pub(super) fn insert_many(
    conn: &mut SqliteConnection,
    readings: &[NewStation],
) -> QueryResult<Vec<StationRow>> {
    diesel::sql_query("INSERT INTO station_bulk_insert (singleton) VALUES (1)").execute(conn)?;
    let rows = insert_in_chunks(readings, |values| {
        let last_id = insert_chunk(conn, values)?;
        Ok(rows_as_inserted(values, last_id).collect())
    })?;
    diesel::sql_query("DELETE FROM station_bulk_insert").execute(conn)?;
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        return Ok(rows);
    };
    for statement in [LOG_CREATED, COUNT_CREATED] {
        diesel::sql_query(statement)
            .bind::<BigInt, _>(first.id)
            .bind::<BigInt, _>(last.id)
            .execute(conn)?;
    }
    Ok(rows)
}

/// Inserts `values` in one statement and returns the last one's id. Diesel's own batch insert
/// runs one statement per row on SQLite, many times slower.
fn insert_chunk(conn: &mut SqliteConnection, values: &[StationValues<'_>]) -> QueryResult<i64> {
    use diesel::dsl::sql;

    let inserted = ChunkInsert(values).execute(conn)?;
    if inserted != values.len() {
        return Err(diesel::result::Error::QueryBuilderError(
            format!("inserted {inserted} rows of {}", values.len()).into(),
        ));
    }
    diesel::select(sql::<BigInt>("last_insert_rowid()")).get_result::<i64>(conn)
}

/// The rows one multi-row INSERT stored, without reading them back: SQLite has one writer, so
/// one statement's rows have consecutive ids ending at `last_id`, and it stores what it was given
/// (the domain has no negative zero, the one value SQLite would not keep).
fn rows_as_inserted<'v>(
    values: &'v [StationValues<'_>],
    last_id: i64,
) -> impl Iterator<Item = StationRow> + 'v {
    let first_id = last_id - i64::try_from(values.len()).unwrap_or(i64::MAX) + 1;
    (first_id..)
        .zip(values)
        .map(|(id, reading)| reading.stored_as(id))
}

/// One multi-row INSERT of these values with bound parameters. A full chunk's statement is the
/// same text every time, so Diesel keeps it prepared, keyed by that text; a shorter one, whose
/// length varies, is prepared for its one use rather than filling the cache.
struct ChunkInsert<'v, 'a>(&'v [StationValues<'a>]);

impl QueryId for ChunkInsert<'_, '_> {
    type QueryId = ();
    // No static id: Diesel then caches the statement by its SQL text.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl QueryFragment<Sqlite> for ChunkInsert<'_, '_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        if self.0.len() != ROWS_PER_INSERT {
            out.unsafe_to_cache_prepared();
        }
        out.push_sql("INSERT INTO station (name, timestamp, temperature, lat, lon) VALUES ");
        for (n, reading) in self.0.iter().enumerate() {
            out.push_sql(if n == 0 { "(" } else { ",(" });
            out.push_bind_param::<Text, str>(reading.name)?;
            out.push_sql(",");
            out.push_bind_param::<BigInt, i64>(&reading.timestamp)?;
            out.push_sql(",");
            out.push_bind_param::<Double, f64>(&reading.temperature)?;
            out.push_sql(",");
            out.push_bind_param::<Double, f64>(&reading.lat)?;
            out.push_sql(",");
            out.push_bind_param::<Double, f64>(&reading.lon)?;
            out.push_sql(")");
        }
        Ok(())
    }
}

impl RunQueryDsl<SqliteConnection> for ChunkInsert<'_, '_> {}
