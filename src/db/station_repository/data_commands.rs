//! What the command line's data commands need beyond the API's queries: storing readings with
//! the ids a file gives them (`import`), deleting old readings in batches (`prune`), and an
//! online copy of an SQLite database (`backup`).

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Text};

use crate::db::DbConnection;
use crate::db::models::StationValuesWithId;
use crate::domain::station::NewStation;

/// The most readings one INSERT with ids writes: 6,000 bind parameters, under SQLite's 32,766.
const ROWS_PER_INSERT: usize = 1000;

/// Which of `ids` are already taken.
pub fn taken_ids(conn: &mut DbConnection, ids: &[i64]) -> QueryResult<Vec<i64>> {
    use crate::db::schema::station::dsl::{id, station};

    let mut taken = Vec::new();
    for chunk in ids.chunks(ROWS_PER_INSERT) {
        let mut found = on_its_backend!(conn, |conn| station
            .filter(id.eq_any(chunk))
            .select(id)
            .load::<i64>(conn))?;
        taken.append(&mut found);
    }
    taken.sort_unstable();
    Ok(taken)
}

/// Stores `readings` with the ids given, which must be free ([`taken_ids`]); the database's id
/// counter moves past the largest, so readings created later never collide with them.
pub fn insert_with_ids(
    conn: &mut DbConnection,
    readings: &[(i64, &NewStation)],
) -> QueryResult<usize> {
    use crate::db::schema::station::dsl::station;

    let mut written = 0;
    for chunk in readings.chunks(ROWS_PER_INSERT) {
        written += match conn {
            DbConnection::Sqlite(sqlite) => insert_with_ids_on_sqlite(sqlite, chunk)?,
            DbConnection::Postgres(pg) => diesel::insert_into(station)
                .values(values_with_ids(chunk))
                .execute(pg)?,
            DbConnection::Mysql(mysql) => diesel::insert_into(station)
                .values(values_with_ids(chunk))
                .execute(mysql)?,
        };
    }
    // SQLite's AUTOINCREMENT and InnoDB's counter follow explicit ids by themselves;
    // PostgreSQL's identity sequence does not.
    if let DbConnection::Postgres(pg) = conn {
        diesel::sql_query(
            "SELECT setval(seq, top) FROM (SELECT pg_get_serial_sequence('station', 'id')::regclass \
             AS seq, (SELECT MAX(id) FROM station) AS top) AS s \
             WHERE top > COALESCE(pg_sequence_last_value(seq), 0)",
        )
        .execute(pg)?;
    }
    Ok(written)
}

fn values_with_ids<'a>(readings: &[(i64, &'a NewStation)]) -> Vec<StationValuesWithId<'a>> {
    readings
        .iter()
        .map(|(id, reading)| StationValuesWithId::new(*id, reading))
        .collect()
}

/// One multi-row statement: Diesel's batch insert on SQLite runs a statement per row.
fn insert_with_ids_on_sqlite(
    conn: &mut diesel::SqliteConnection,
    readings: &[(i64, &NewStation)],
) -> QueryResult<usize> {
    let mut sql = String::with_capacity(64 + readings.len() * 14);
    sql.push_str("INSERT INTO station (id, name, timestamp, temperature, lat, lon) VALUES ");
    for n in 0..readings.len() {
        sql.push_str(if n == 0 {
            "(?,?,?,?,?,?)"
        } else {
            ",(?,?,?,?,?,?)"
        });
    }
    let mut query = diesel::sql_query(sql).into_boxed::<diesel::sqlite::Sqlite>();
    for (id, reading) in readings {
        query = query
            .bind::<BigInt, _>(*id)
            .bind::<Text, _>(reading.name.as_ref().to_owned())
            .bind::<BigInt, _>(reading.timestamp.seconds())
            .bind::<Double, _>(reading.temperature.celsius())
            .bind::<Double, _>(reading.lat.degrees())
            .bind::<Double, _>(reading.lon.degrees());
    }
    query.execute(conn)
}

/// Deletes at most `limit` of the readings taken before `cutoff` (Unix seconds), oldest ids
/// first; how many it deleted. Found through the timestamp index, so a batch costs the same
/// however large the table.
pub fn delete_older_than(conn: &mut DbConnection, cutoff: i64, limit: i64) -> QueryResult<usize> {
    // MySQL cannot take LIMIT in an IN subquery, but deletes with ORDER BY and LIMIT.
    let statement = |sql: &'static str| {
        diesel::sql_query(sql)
            .bind::<BigInt, _>(cutoff)
            .bind::<BigInt, _>(limit)
    };
    match conn {
        DbConnection::Mysql(mysql) => {
            statement("DELETE FROM station WHERE `timestamp` < ? ORDER BY `timestamp`, id LIMIT ?")
                .execute(mysql)
        }
        DbConnection::Sqlite(sqlite) => statement(
            "DELETE FROM station WHERE id IN (SELECT id FROM station WHERE timestamp < ? \
             ORDER BY timestamp, id LIMIT ?)",
        )
        .execute(sqlite),
        DbConnection::Postgres(pg) => statement(
            "DELETE FROM station WHERE id IN (SELECT id FROM station WHERE timestamp < $1 \
             ORDER BY timestamp, id LIMIT $2)",
        )
        .execute(pg),
    }
}

/// Writes a consistent copy of an SQLite database to `path` (`VACUUM INTO`), while the service
/// goes on reading and writing it. `Ok(false)` on PostgreSQL and MySQL, which have their own
/// tools for it.
pub fn copy_sqlite_database(conn: &mut DbConnection, path: &str) -> QueryResult<bool> {
    match conn {
        DbConnection::Sqlite(sqlite) => {
            diesel::sql_query("VACUUM INTO ?")
                .bind::<Text, _>(path)
                .execute(sqlite)?;
            Ok(true)
        }
        DbConnection::Postgres(_) | DbConnection::Mysql(_) => Ok(false),
    }
}
