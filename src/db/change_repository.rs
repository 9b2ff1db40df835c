//! The change log (`station_changes`), which triggers write in the same transaction as every
//! change to `station`: reading it in id order, finding the transactions that may still commit
//! a smaller id than one already visible, and pruning it.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use std::time::Duration;

use crate::db::models::ChangeRow;
use crate::db::{Backend, DbConnection};

/// At most `limit` changes with ids above `after` (and at most `through`, when given), by id.
pub fn after(
    conn: &mut DbConnection,
    after: i64,
    through: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<ChangeRow>> {
    use crate::db::schema::station_changes::dsl::{id, station_changes};

    let upper = through.unwrap_or(i64::MAX);
    on_its_backend!(conn, |conn| station_changes
        .filter(id.gt(after))
        .filter(id.le(upper))
        .order(id)
        .limit(limit)
        .select(ChangeRow::as_select())
        .load(conn))
}

/// The greatest change id committed so far, or retention's horizon when the log is empty (0 for
/// a log that never held a change).
pub fn newest_id(conn: &mut DbConnection) -> QueryResult<i64> {
    use crate::db::schema::station_changes::dsl::{id, station_changes};
    use diesel::dsl::max;

    let newest: Option<i64> = on_its_backend!(conn, |conn| station_changes
        .select(max(id))
        .get_result(conn))?;
    Ok(newest.unwrap_or(0).max(pruned_through(conn)?))
}

/// The greatest change id retention has removed (0 when none was).
pub fn pruned_through(conn: &mut DbConnection) -> QueryResult<i64> {
    use crate::db::schema::station_changes_pruned::dsl::{station_changes_pruned, through_id};

    on_its_backend!(conn, |conn| station_changes_pruned
        .select(through_id)
        .get_result(conn))
}

/// One transaction in progress, as the engine names it.
#[derive(Debug, QueryableByName)]
struct TransactionInProgress {
    #[diesel(sql_type = Text)]
    id: String,
}

/// The transactions that have written and not yet ended, other than this connection's: those
/// that may still commit a change whose id is below one already visible. Empty on SQLite, whose
/// one writer commits ids in order; on PostgreSQL the transaction ids locked right now; on
/// MySQL/MariaDB the InnoDB transactions that have modified rows (which needs the PROCESS
/// privilege).
pub fn writers_in_progress(conn: &mut DbConnection) -> QueryResult<Vec<String>> {
    let rows: Vec<TransactionInProgress> = match conn {
        DbConnection::Sqlite(_) => return Ok(Vec::new()),
        // Every transaction holds a lock on its own id while it runs. (A snapshot's in-progress
        // list would not do: it leaves out transactions whose ids are above its `xmax`.) Only
        // this database's: a long transaction elsewhere on the server holds no change id.
        DbConnection::Postgres(pg) => diesel::sql_query(
            "SELECT CAST(l.transactionid AS TEXT) AS id FROM pg_locks l \
             JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock' AND l.granted \
             AND l.pid <> pg_backend_pid() AND a.datname = current_database()",
        )
        .load(pg)?,
        DbConnection::Mysql(mysql) => diesel::sql_query(
            "SELECT CAST(trx_id AS CHAR) AS id FROM information_schema.INNODB_TRX \
             WHERE trx_mysql_thread_id <> CONNECTION_ID() AND trx_rows_modified > 0",
        )
        .load(mysql)?,
    };
    Ok(rows.into_iter().map(|row| row.id).collect())
}

/// How old [`writers_in_progress`] may be when it answers: InnoDB serves INFORMATION_SCHEMA's
/// transaction tables from a cache it refreshes at most every 100 ms. A caller that needs the
/// transactions in progress at some moment asks this long after it (with a margin); zero
/// elsewhere.
pub fn writers_list_staleness(backend: Backend) -> Duration {
    match backend {
        Backend::Mysql => Duration::from_millis(150),
        Backend::Sqlite | Backend::Postgres => Duration::ZERO,
    }
}

/// Whether the server is a node of a Galera cluster (`wsrep_on`). A node lists only its own
/// transactions in progress, not those still running on other nodes, and applies what other
/// nodes commit a little later than they do; the feed allows for both there.
pub fn in_galera_cluster(conn: &mut DbConnection) -> QueryResult<bool> {
    let DbConnection::Mysql(mysql) = conn else {
        return Ok(false);
    };
    // SHOW, not @@wsrep_on: MySQL and MariaDB builds without Galera have no such variable, and
    // SHOW answers them with no row rather than an error.
    let rows: Vec<ServerVariable> =
        diesel::sql_query("SHOW GLOBAL VARIABLES LIKE 'wsrep_on'").load(mysql)?;
    Ok(rows.iter().any(|row| row.value.eq_ignore_ascii_case("ON")))
}

/// A row of `SHOW VARIABLES`.
#[derive(Debug, QueryableByName)]
struct ServerVariable {
    #[diesel(sql_type = Text, column_name = "Value")]
    value: String,
}

/// Waits until this Galera node has applied every transaction the cluster had committed when
/// it asked (a causal read, `wsrep_sync_wait`): afterwards every statement on the node sees
/// them. Call it only where [`in_galera_cluster`] said so.
pub fn catch_up_with_cluster(conn: &mut DbConnection) -> QueryResult<()> {
    if !matches!(conn, DbConnection::Mysql(_)) {
        return Ok(());
    }
    diesel::sql_query("SET SESSION wsrep_sync_wait = 1").execute(conn)?;
    // Any read waits; this one is a single row.
    let waited = pruned_through(conn).map(drop);
    // The connection goes back to the pool: other requests' reads must not wait too.
    diesel::sql_query("SET SESSION wsrep_sync_wait = 0").execute(conn)?;
    waited
}

/// The last id of the oldest changes (at most `limit`) made before `cutoff` (Unix seconds),
/// stopping at the first change made since: what [`prune_through`] may remove next.
pub fn prunable(conn: &mut DbConnection, cutoff: i64, limit: i64) -> QueryResult<Option<i64>> {
    use crate::db::schema::station_changes::dsl::{changed_at, id, station_changes};

    let oldest: Vec<(i64, i64)> = on_its_backend!(conn, |conn| station_changes
        .order(id)
        .limit(limit)
        .select((id, changed_at))
        .load(conn))?;
    Ok(oldest
        .iter()
        .take_while(|(_, at)| *at < cutoff)
        .map(|(change, _)| *change)
        .last())
}

/// Removes every change up to `last` and records `last` as the pruned horizon; run it in one
/// transaction, so a stream never sees the one without the other.
pub fn prune_through(conn: &mut DbConnection, last: i64) -> QueryResult<usize> {
    use crate::db::schema::station_changes::dsl::{id, station_changes};
    use crate::db::schema::station_changes_pruned::dsl::{station_changes_pruned, through_id};

    let removed = diesel::delete(station_changes.filter(id.le(last))).execute(conn)?;
    diesel::update(station_changes_pruned.filter(through_id.lt(last)))
        .set(through_id.eq(last))
        .execute(conn)?;
    Ok(removed)
}

/// Unix seconds now, by the database's clock: the clock `changed_at` was written with.
pub fn database_now(conn: &mut DbConnection) -> QueryResult<i64> {
    let sql = match conn {
        DbConnection::Sqlite(_) => "SELECT CAST(strftime('%s', 'now') AS INTEGER) AS now",
        DbConnection::Postgres(_) => {
            "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS BIGINT) AS now"
        }
        DbConnection::Mysql(_) => "SELECT CAST(UNIX_TIMESTAMP() AS SIGNED) AS now",
    };
    #[derive(QueryableByName)]
    struct Now {
        #[diesel(sql_type = BigInt)]
        now: i64,
    }
    let row: Now = on_its_backend!(conn, |conn| diesel::sql_query(sql).get_result(conn))?;
    Ok(row.now)
}
