//! The newest reading of each station name: a loose index scan (one seek per name through the
//! (name, timestamp, id) index) instead of reading every reading, so it costs the number of
//! stations, not the number of readings.

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::models::StationRow;

/// Each station name's newest reading (greatest timestamp, then greatest id), by name.
pub fn latest_per_name(conn: &mut DbConnection) -> QueryResult<Vec<StationRow>> {
    // The same statement on every engine: a recursive walk from one name to the next, then a
    // seek for each name's newest reading.
    const SQL: &str = "WITH RECURSIVE names (name) AS ( \
            SELECT MIN(name) FROM station \
            UNION ALL \
            SELECT (SELECT MIN(s.name) FROM station s WHERE s.name > names.name) \
            FROM names WHERE names.name IS NOT NULL) \
        SELECT st.id, st.name, st.timestamp, st.temperature, st.lat, st.lon \
        FROM names JOIN station st ON st.id = ( \
            SELECT s.id FROM station s WHERE s.name = names.name \
            ORDER BY s.timestamp DESC, s.id DESC LIMIT 1) \
        ORDER BY st.name";
    on_its_backend!(conn, |conn| diesel::sql_query(SQL).load::<StationRow>(conn))
}
