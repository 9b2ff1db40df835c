//! Generated files must match what generates them: `openapi/openapi.json` (from the handlers'
//! annotations) and `src/db/schema.rs` (from the migrations). Run with `STATION_BLESS=1` to
//! rewrite them after an intended change.

use std::path::PathBuf;

use diesel::prelude::*;
use diesel::sql_types::{Integer, Text};
use serde_json::Value;
use station_api::db::DbConnection;

use crate::helpers::spawn_app;

fn repository_file(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn blessing() -> bool {
    std::env::var_os("STATION_BLESS").is_some_and(|v| v == "1")
}

/// Compares `generated` with the committed file, or rewrites the file when blessing.
fn assert_fresh(relative: &str, generated: &str) {
    let path = repository_file(relative);
    if blessing() {
        std::fs::write(&path, generated).expect("generated file written");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{relative} is stale: regenerate it with `STATION_BLESS=1 cargo test --test api generated`"
    );
}

#[test]
fn the_committed_openapi_document_matches_the_code() {
    let generated = station_api::openapi::pretty_json(&station_api::api::document())
        .expect("document serializes");
    assert_fresh("openapi/openapi.json", &generated);
}

#[actix_web::test]
async fn the_served_openapi_document_is_the_committed_one() {
    let app = spawn_app().await;

    let response = app
        .anonymous(reqwest::Method::GET, "/api-docs/openapi.json")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    let served: Value = response.json().await.unwrap();
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(repository_file("openapi/openapi.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(served, committed);
    assert_eq!(served["openapi"], "3.1.0");
}

#[derive(QueryableByName)]
struct TableName {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct ColumnInfo {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text, column_name = "type")]
    declared_type: String,
    #[diesel(sql_type = Integer)]
    notnull: i32,
    #[diesel(sql_type = Integer)]
    pk: i32,
}

/// Diesel's type for a declared SQLite column type. SQLite integers are 64-bit, so every
/// integer column is `BigInt`.
fn diesel_type(declared: &str) -> &'static str {
    match declared.to_ascii_uppercase().as_str() {
        "INTEGER" | "BIGINT" => "BigInt",
        "TEXT" => "Text",
        "DOUBLE" | "REAL" => "Double",
        "BOOLEAN" => "Bool",
        other => panic!("no Diesel type chosen for SQLite type {other}"),
    }
}

/// Renders `schema.rs` from the migrated database, as `diesel print-schema` lays it out.
fn render_schema(conn: &mut diesel::SqliteConnection) -> String {
    let tables: Vec<TableName> = diesel::sql_query(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite_%' AND name != '__diesel_schema_migrations' ORDER BY name",
    )
    .load(conn)
    .unwrap();
    let mut out = String::from(
        "// @generated from the migrations by `STATION_BLESS=1 cargo test --test api schema`; do not edit.\n",
    );
    for table in &tables {
        let columns: Vec<ColumnInfo> =
            diesel::sql_query(format!("PRAGMA table_info({})", table.name))
                .load(conn)
                .unwrap();
        let keys: Vec<&str> = columns
            .iter()
            .filter(|c| c.pk > 0)
            .map(|c| c.name.as_str())
            .collect();
        out.push_str(&format!(
            "\ndiesel::table! {{\n    {} ({}) {{\n",
            table.name,
            keys.join(", ")
        ));
        for column in &columns {
            let base = diesel_type(&column.declared_type);
            let sql_type = if column.notnull == 0 && column.pk == 0 {
                format!("Nullable<{base}>")
            } else {
                base.to_owned()
            };
            out.push_str(&format!("        {} -> {sql_type},\n", column.name));
        }
        out.push_str("    }\n}\n");
    }
    let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
    let one_line = format!(
        "diesel::allow_tables_to_appear_in_same_query!({});",
        names.join(", ")
    );
    // As rustfmt lays it out: on one line when it fits in 100 columns, else a name a line.
    if one_line.len() <= 100 {
        out.push_str(&format!("\n{one_line}\n"));
    } else {
        out.push_str("\ndiesel::allow_tables_to_appear_in_same_query!(\n");
        out.push_str(&format!("    {}\n);\n", names.join(",\n    ")));
    }
    out
}

#[actix_web::test]
async fn the_committed_diesel_schema_matches_the_migrations() {
    let app = spawn_app().await;

    let rendered = app
        .database
        .blocking(|conn| {
            let DbConnection::Sqlite(sqlite) = conn else {
                panic!("schema.rs is rendered from SQLite")
            };
            Ok(render_schema(sqlite))
        })
        .unwrap();

    assert!(rendered.contains("station (id)"));
    assert_fresh("src/db/schema.rs", &rendered);
}
