//! Temperatures grouped into time buckets, for charts: read from the (name, timestamp,
//! temperature) index alone, so a month of one station's readings is one index range.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Text};

use crate::db::DbConnection;
use crate::domain::aggregate::AggregateRequest;

/// One bucket of readings.
#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct BucketRow {
    /// Unix seconds: the bucket's start, a multiple of the interval.
    #[diesel(sql_type = BigInt)]
    pub start: i64,
    /// How many readings fell in it (at least one: empty buckets are not rows).
    #[diesel(sql_type = BigInt)]
    pub count: i64,
    /// The lowest temperature.
    #[diesel(sql_type = Double)]
    pub min: f64,
    /// The highest temperature.
    #[diesel(sql_type = Double)]
    pub max: f64,
    /// The mean temperature.
    #[diesel(sql_type = Double)]
    pub mean: f64,
}

/// The buckets of `request` holding at least one reading, oldest first; `bound` (a token's
/// station) narrows the readings further.
pub fn aggregate(
    conn: &mut DbConnection,
    request: &AggregateRequest,
    bound: Option<&str>,
) -> QueryResult<Vec<BucketRow>> {
    // Timestamps are never negative (a CHECK on every engine), so integer division floors.
    let name = match bound {
        Some(station) if station != request.name => return Ok(Vec::new()),
        _ => request.name.clone(),
    };
    macro_rules! bucket_query {
        ($sql:literal) => {
            diesel::sql_query($sql)
                .bind::<BigInt, _>(request.interval)
                .bind::<Text, _>(name)
                .bind::<BigInt, _>(request.from)
                .bind::<BigInt, _>(request.until)
        };
    }
    match conn {
        DbConnection::Sqlite(sqlite) => bucket_query!(
            "SELECT timestamp / ?1 * ?1 AS start, COUNT(*) AS count, MIN(temperature) AS min, \
             MAX(temperature) AS max, AVG(temperature) AS mean FROM station \
             WHERE name = ?2 AND timestamp >= ?3 AND timestamp < ?4 GROUP BY 1 ORDER BY 1"
        )
        .load(sqlite),
        DbConnection::Postgres(pg) => bucket_query!(
            "SELECT timestamp / $1 * $1 AS start, COUNT(*) AS count, MIN(temperature) AS min, \
             MAX(temperature) AS max, AVG(temperature) AS mean FROM station \
             WHERE name = $2 AND timestamp >= $3 AND timestamp < $4 GROUP BY 1 ORDER BY 1"
        )
        .load(pg),
        // MySQL numbers no placeholders: the interval is bound twice.
        DbConnection::Mysql(mysql) => diesel::sql_query(
            "SELECT CAST(`timestamp` DIV ? * ? AS SIGNED) AS start, COUNT(*) AS count, \
             MIN(temperature) AS min, MAX(temperature) AS max, AVG(temperature) AS mean \
             FROM station WHERE name = ? AND `timestamp` >= ? AND `timestamp` < ? \
             GROUP BY 1 ORDER BY 1",
        )
        .bind::<BigInt, _>(request.interval)
        .bind::<BigInt, _>(request.interval)
        .bind::<Text, _>(name)
        .bind::<BigInt, _>(request.from)
        .bind::<BigInt, _>(request.until)
        .load(mysql),
    }
}
