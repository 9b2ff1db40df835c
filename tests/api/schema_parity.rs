//! The migrations of the three engines mean the same schema: the same columns, types and
//! nullability, the same keys, and constraints that refuse the same rows.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use station_api::db::DbConnection;
use station_test_macros::backend_test;

use crate::helpers::spawn_app;

#[derive(QueryableByName)]
struct ColumnRow {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    data_type: String,
    #[diesel(sql_type = Text)]
    nullable: String,
}

#[derive(QueryableByName)]
struct IndexRow {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    index_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = BigInt)]
    position: i64,
}

const SQLITE_COLUMNS: &str = "
    SELECT m.name AS table_name, p.name AS column_name, lower(p.type) AS data_type,
           CASE WHEN p.\"notnull\" = 1 OR p.pk > 0 THEN 'NO' ELSE 'YES' END AS nullable
    FROM sqlite_master m JOIN pragma_table_info(m.name) p
    WHERE m.type = 'table' AND m.name IN ('device_tokens', 'idempotency_keys', 'service_keys', 'station', 'station_count', 'users')
    ORDER BY m.name, p.cid";
const POSTGRES_COLUMNS: &str = "
    SELECT table_name::text AS table_name, column_name::text AS column_name,
           data_type::text AS data_type, is_nullable::text AS nullable
    FROM information_schema.columns
    WHERE table_schema = current_schema() AND table_name IN ('device_tokens', 'idempotency_keys', 'service_keys', 'station', 'station_count', 'users')
    ORDER BY table_name, ordinal_position";
const MYSQL_COLUMNS: &str = "
    SELECT TABLE_NAME AS table_name, COLUMN_NAME AS column_name, COLUMN_TYPE AS data_type,
           IS_NULLABLE AS nullable
    FROM information_schema.COLUMNS
    WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ('device_tokens', 'idempotency_keys', 'service_keys', 'station', 'station_count', 'users')
    ORDER BY TABLE_NAME, ORDINAL_POSITION";

// SQLite keeps an INTEGER PRIMARY KEY in the rowid, not in an index: read it from the columns.
const SQLITE_INDEXES: &str = "
    SELECT m.name AS table_name, 'rowid' AS index_name, p.name AS column_name,
           'primary' AS kind, CAST(p.pk AS BIGINT) AS position
    FROM sqlite_master m JOIN pragma_table_info(m.name) p
    WHERE m.type = 'table' AND m.name IN ('device_tokens', 'idempotency_keys', 'service_keys', 'station', 'station_count', 'users')
          AND p.pk > 0 AND lower(p.type) = 'integer'
    UNION ALL
    SELECT m.name, il.name, ii.name,
           CASE WHEN il.origin = 'pk' THEN 'primary' WHEN il.\"unique\" THEN 'unique'
                ELSE 'index' END,
           CAST(ii.seqno AS BIGINT)
    FROM sqlite_master m JOIN pragma_index_list(m.name) il JOIN pragma_index_info(il.name) ii
    WHERE m.type = 'table' AND m.name IN ('device_tokens', 'idempotency_keys', 'service_keys', 'station', 'station_count', 'users')";
const POSTGRES_INDEXES: &str = "
    SELECT t.relname::text AS table_name, i.relname::text AS index_name,
           a.attname::text AS column_name,
           CASE WHEN ix.indisprimary THEN 'primary' WHEN ix.indisunique THEN 'unique'
                ELSE 'index' END AS kind,
           k.ord AS position
    FROM pg_index ix
    JOIN pg_class t ON t.oid = ix.indrelid
    JOIN pg_class i ON i.oid = ix.indexrelid
    JOIN pg_namespace n ON n.oid = t.relnamespace
    CROSS JOIN LATERAL unnest(ix.indkey) WITH ORDINALITY AS k(attnum, ord)
    JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
    WHERE n.nspname = current_schema() AND t.relname IN ('device_tokens', 'idempotency_keys', 'service_keys', 'station', 'station_count', 'users')";
const MYSQL_INDEXES: &str = "
    SELECT TABLE_NAME AS table_name, INDEX_NAME AS index_name, COLUMN_NAME AS column_name,
           CASE WHEN INDEX_NAME = 'PRIMARY' THEN 'primary' WHEN NON_UNIQUE = 0 THEN 'unique'
                ELSE 'index' END AS kind,
           CAST(SEQ_IN_INDEX AS SIGNED) AS position
    FROM information_schema.STATISTICS
    WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ('device_tokens', 'idempotency_keys', 'service_keys', 'station', 'station_count', 'users')";

/// An engine's column type, as the kind of value it holds: integers are 64-bit everywhere (a
/// 32-bit `integer` on PostgreSQL or `int(11)` on MySQL would not pass).
fn type_class(conn: &DbConnection, declared: &str) -> &'static str {
    let declared = declared.to_lowercase();
    match (conn, declared.as_str()) {
        // SQLite's integers are all 64-bit, whatever the declaration says.
        (DbConnection::Sqlite(_), "integer" | "bigint") => "int64",
        (DbConnection::Postgres(_), "bigint") => "int64",
        (DbConnection::Mysql(_), "bigint" | "bigint(20)") => "int64",
        (_, "text" | "character varying") => "text",
        (DbConnection::Mysql(_), t) if t.starts_with("varchar(") => "text",
        (DbConnection::Mysql(_), "longtext") => "text",
        (DbConnection::Sqlite(_) | DbConnection::Mysql(_), "double") => "double",
        (DbConnection::Postgres(_), "double precision") => "double",
        (DbConnection::Sqlite(_) | DbConnection::Postgres(_), "boolean") => "boolean",
        (DbConnection::Mysql(_), "tinyint(1)") => "boolean",
        (_, other) => panic!("unexpected column type {other:?}"),
    }
}

/// `table.column type NULL|NOT NULL`, one per column, in table order.
fn described_columns(conn: &mut DbConnection) -> Vec<String> {
    let query = match conn {
        DbConnection::Sqlite(_) => SQLITE_COLUMNS,
        DbConnection::Postgres(_) => POSTGRES_COLUMNS,
        DbConnection::Mysql(_) => MYSQL_COLUMNS,
    };
    let rows: Vec<ColumnRow> = diesel::sql_query(query).load(conn).unwrap();
    rows.iter()
        .map(|row| {
            let null = if row.nullable == "YES" {
                "NULL"
            } else {
                "NOT NULL"
            };
            format!(
                "{}.{} {} {null}",
                row.table_name,
                row.column_name,
                type_class(conn, &row.data_type)
            )
        })
        .collect()
}

/// `table kind (columns…)` for each key and index, whatever the engine named it, sorted; an index
/// made twice is listed twice. An index is described by the order it keeps: SQLite orders every
/// index of a table whose rowid is its `id` by that id last, so its index on (name) keeps the
/// order of the other engines' index on (name, id).
fn described_indexes(conn: &mut DbConnection) -> Vec<String> {
    let on_sqlite = matches!(conn, DbConnection::Sqlite(_));
    let query = match conn {
        DbConnection::Sqlite(_) => SQLITE_INDEXES,
        DbConnection::Postgres(_) => POSTGRES_INDEXES,
        DbConnection::Mysql(_) => MYSQL_INDEXES,
    };
    let mut rows: Vec<IndexRow> = diesel::sql_query(query).load(conn).unwrap();
    rows.sort_by(|a, b| {
        (&a.table_name, &a.index_name, a.position).cmp(&(&b.table_name, &b.index_name, b.position))
    });
    let mut indexes = std::collections::BTreeMap::<(String, String, String), Vec<String>>::new();
    for row in rows {
        indexes
            .entry((row.table_name, row.index_name, row.kind))
            .or_default()
            .push(row.column_name);
    }
    if on_sqlite {
        let ordered_by_id: Vec<String> = indexes
            .iter()
            .filter(|((_, index, _), columns)| index == "rowid" && **columns == ["id"])
            .map(|((table, _, _), _)| table.clone())
            .collect();
        for ((table, _, kind), columns) in &mut indexes {
            if kind == "index"
                && ordered_by_id.contains(table)
                && !columns.iter().any(|c| c == "id")
            {
                columns.push("id".to_owned());
            }
        }
    }
    let mut described: Vec<String> = indexes
        .into_iter()
        .map(|((table, _, kind), columns)| format!("{table} {kind} ({})", columns.join(", ")))
        .collect();
    described.sort();
    described
}

#[backend_test]
async fn every_engine_has_the_same_columns_types_and_keys() {
    let app = spawn_app().await;

    let (columns, indexes) = app
        .database
        .blocking(|conn| Ok((described_columns(conn), described_indexes(conn))))
        .unwrap();

    assert_eq!(
        columns,
        [
            "device_tokens.id int64 NOT NULL",
            "device_tokens.label text NOT NULL",
            "device_tokens.key_hash text NOT NULL",
            "device_tokens.prefix text NOT NULL",
            "device_tokens.scopes text NOT NULL",
            "device_tokens.station text NULL",
            "device_tokens.created int64 NOT NULL",
            "device_tokens.last_used int64 NULL",
            "device_tokens.expires int64 NULL",
            "idempotency_keys.caller text NOT NULL",
            "idempotency_keys.idempotency_key text NOT NULL",
            "idempotency_keys.claim text NOT NULL",
            "idempotency_keys.request_hash text NULL",
            "idempotency_keys.status int64 NULL",
            "idempotency_keys.location text NULL",
            "idempotency_keys.body text NULL",
            "idempotency_keys.expires_at int64 NOT NULL",
            "service_keys.name text NOT NULL",
            "service_keys.secret text NOT NULL",
            "station.id int64 NOT NULL",
            "station.name text NOT NULL",
            "station.timestamp int64 NOT NULL",
            "station.temperature double NOT NULL",
            "station.lat double NOT NULL",
            "station.lon double NOT NULL",
            "station_count.shard int64 NOT NULL",
            "station_count.readings int64 NOT NULL",
            "users.id int64 NOT NULL",
            "users.username text NOT NULL",
            "users.password_hash text NOT NULL",
            "users.is_staff boolean NOT NULL",
            "users.is_superuser boolean NOT NULL",
            "users.is_active boolean NOT NULL",
            "users.date_joined int64 NOT NULL",
        ]
    );
    assert_eq!(
        indexes,
        [
            "device_tokens primary (id)",
            "device_tokens unique (key_hash)",
            "idempotency_keys index (expires_at)",
            "idempotency_keys primary (caller, idempotency_key)",
            "service_keys primary (name)",
            "station index (name, id)",
            "station index (name, timestamp, id, temperature)",
            "station index (temperature, id)",
            "station index (timestamp, id)",
            "station primary (id)",
            "station_count primary (shard)",
            "users primary (id)",
            "users unique (username)",
        ]
    );
}

#[backend_test]
async fn every_engine_refuses_the_same_rows() {
    let app = spawn_app().await;
    let insert = |values: &str| {
        let statement =
            format!("INSERT INTO station (name, timestamp, temperature, lat, lon) VALUES {values}");
        app.database
            .blocking(move |conn| diesel::sql_query(statement).execute(conn))
    };
    let long_name = "n".repeat(65);
    let longest_name = "n".repeat(64);

    // The extremes are stored: a refusal below is the constraint, not the SQL.
    insert("('x', 0, -273.15, -90, -180)").expect("lower bounds are valid");
    insert(&format!("('{longest_name}', 253402300799, 1000, 90, 180)"))
        .expect("upper bounds are valid");
    insert("('åäö 🌡', 1, 0, 0, 0)").expect("four-byte UTF-8 fits");
    for refused in [
        "('', 0, 0, 0, 0)".to_owned(),
        format!("('{long_name}', 0, 0, 0, 0)"),
        "('x', -1, 0, 0, 0)".to_owned(),
        "('x', 253402300800, 0, 0, 0)".to_owned(),
        "('x', 0, -273.16, 0, 0)".to_owned(),
        "('x', 0, 1000.01, 0, 0)".to_owned(),
        "('x', 0, 0, -90.0001, 0)".to_owned(),
        "('x', 0, 0, 90.0001, 0)".to_owned(),
        "('x', 0, 0, 0, -180.0001)".to_owned(),
        "('x', 0, 0, 0, 180.0001)".to_owned(),
        "(NULL, 0, 0, 0, 0)".to_owned(),
    ] {
        assert!(insert(&refused).is_err(), "stored {refused}");
    }
    let duplicate_user = app.database.blocking(|conn| {
        diesel::sql_query(
            "INSERT INTO users (username, password_hash, is_staff, is_superuser, is_active, \
             date_joined) VALUES ('admin', 'x', FALSE, FALSE, TRUE, 0)",
        )
        .execute(conn)
    });
    assert!(duplicate_user.unwrap_err().is_unique_violation());
    let case_variant = app.database.blocking(|conn| {
        diesel::sql_query(
            "INSERT INTO users (username, password_hash, is_staff, is_superuser, is_active, \
             date_joined) VALUES ('Admin', 'x', FALSE, FALSE, TRUE, 0)",
        )
        .execute(conn)
    });
    assert_eq!(case_variant.unwrap(), 1, "usernames are case-sensitive");
    let stored: Vec<serde_json::Value> = app.all_stations().await;
    assert_eq!(stored.len(), 3);
    assert_eq!(stored[2]["name"], "åäö 🌡");
}

#[derive(QueryableByName)]
struct TriggerRow {
    #[diesel(sql_type = Text)]
    trigger_name: String,
}

#[backend_test]
async fn every_engine_keeps_the_count_and_the_change_log_with_the_same_triggers() {
    let app = spawn_app().await;
    let query = match crate::helpers::Backend::current() {
        crate::helpers::Backend::Sqlite => {
            "SELECT name AS trigger_name FROM sqlite_master WHERE type = 'trigger' \
             AND tbl_name = 'station' ORDER BY name"
        }
        crate::helpers::Backend::Postgres => {
            "SELECT DISTINCT trigger_name::text AS trigger_name FROM information_schema.triggers \
             WHERE event_object_table = 'station' AND trigger_name <> 'station_count_truncate' \
             ORDER BY 1"
        }
        crate::helpers::Backend::Mysql => {
            "SELECT TRIGGER_NAME AS trigger_name FROM information_schema.TRIGGERS \
             WHERE TRIGGER_SCHEMA = DATABASE() AND EVENT_OBJECT_TABLE = 'station' ORDER BY 1"
        }
    };
    let triggers: Vec<String> = app
        .database
        .blocking(|conn| diesel::sql_query(query).load::<TriggerRow>(conn))
        .unwrap()
        .into_iter()
        .map(|row| row.trigger_name)
        .collect();
    assert_eq!(
        triggers,
        [
            "station_changes_delete",
            "station_changes_insert",
            "station_changes_update",
            "station_count_delete",
            "station_count_insert"
        ]
    );
}

#[backend_test]
async fn the_count_follows_rows_written_outside_the_api_many_at_a_time() {
    // Arrange: rows inserted and deleted by SQL, many per statement, as a bulk load would.
    let app = spawn_app().await;
    let sql = |statement: String| {
        app.database
            .write_blocking(move |conn| diesel::sql_query(statement).execute(conn))
            .unwrap()
    };
    let values: Vec<String> = (0..50)
        .map(|n| format!("('bulk-{n}', {n}, 1.5, 2.5, 3.5)"))
        .collect();
    sql(format!(
        "INSERT INTO station (name, timestamp, temperature, lat, lon) VALUES {}",
        values.join(", ")
    ));
    app.seed_stations(3).await;
    sql("DELETE FROM station WHERE timestamp < 20 AND name LIKE 'bulk-%'".to_owned());

    // Act
    let listing = crate::helpers::json_body(app.get("/station/").await).await;

    // Assert: the kept count is the count of the rows.
    #[derive(QueryableByName)]
    struct Counted {
        #[diesel(sql_type = BigInt)]
        readings: i64,
    }
    let counted = app
        .database
        .blocking(|conn| {
            diesel::sql_query("SELECT COUNT(*) AS readings FROM station")
                .get_result::<Counted>(conn)
        })
        .unwrap();
    assert_eq!(counted.readings, 33);
    assert_eq!(listing["count"], 33);
    assert_eq!(app.all_stations().await.len(), 33);
    if crate::helpers::Backend::current() == crate::helpers::Backend::Postgres {
        // TRUNCATE fires no row triggers; PostgreSQL has a trigger of its own for it.
        sql("TRUNCATE station".to_owned());
        let emptied = crate::helpers::json_body(app.get("/station/").await).await;
        assert_eq!(emptied["count"], 0);
    }
}
