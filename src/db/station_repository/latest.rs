//! The newest reading of each station name: a loose index scan (one seek per name through the
//! (name, timestamp, id) index) instead of reading every reading, so it costs the number of
//! stations, not the number of readings.
//!
//! The walk goes from the last name down: read backwards, the index's first entry below a name
//! is the next name's newest reading, so one seek both finds the next name and its reading
//! (walking up needs a seek for the next name and another for its newest reading).

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::models::StationRow;

/// PostgreSQL: each step of the walk reads the whole row in its one seek (`LATERAL`).
const WALK_DOWN_LATERAL: &str = "WITH RECURSIVE newest AS ( \
        (SELECT id, name, timestamp, temperature, lat, lon FROM station \
         ORDER BY name DESC, timestamp DESC, id DESC LIMIT 1) \
        UNION ALL \
        SELECT next.id, next.name, next.timestamp, next.temperature, next.lat, next.lon \
        FROM newest CROSS JOIN LATERAL ( \
            SELECT s.id, s.name, s.timestamp, s.temperature, s.lat, s.lon FROM station s \
            WHERE s.name < newest.name \
            ORDER BY s.name DESC, s.timestamp DESC, s.id DESC LIMIT 1) next) \
    SELECT id, name, timestamp, temperature, lat, lon FROM newest ORDER BY name";

/// SQLite and MariaDB (which has no `LATERAL`): the step's seek yields the id, and the row
/// behind it is read by primary key.
const WALK_DOWN_BY_ID: &str = "WITH RECURSIVE newest (id, name) AS ( \
        SELECT id, name FROM (SELECT id, name FROM station \
            ORDER BY name DESC, timestamp DESC, id DESC LIMIT 1) first_name \
        UNION ALL \
        SELECT next.id, next.name FROM newest JOIN station next ON next.id = ( \
            SELECT s.id FROM station s WHERE s.name < newest.name \
            ORDER BY s.name DESC, s.timestamp DESC, s.id DESC LIMIT 1)) \
    SELECT st.id, st.name, st.timestamp, st.temperature, st.lat, st.lon \
    FROM newest JOIN station st ON st.id = newest.id ORDER BY st.name";

/// Each station name's newest reading (greatest timestamp, then greatest id), by name.
pub fn latest_per_name(conn: &mut DbConnection) -> QueryResult<Vec<StationRow>> {
    match conn {
        DbConnection::Postgres(conn) => diesel::sql_query(WALK_DOWN_LATERAL).load(conn),
        DbConnection::Sqlite(conn) => diesel::sql_query(WALK_DOWN_BY_ID).load(conn),
        DbConnection::Mysql(conn) => diesel::sql_query(WALK_DOWN_BY_ID).load(conn),
    }
}
