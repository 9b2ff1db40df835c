//! What one list request may ask of the database: bounded search terms and filter values, and a
//! statement time limit on every engine, so no request can crash the service or hold its
//! database.

use std::time::Duration;

use diesel::connection::SimpleConnection as _;
use reqwest::StatusCode;
use serde_json::json;
use station_api::db::{Database, DatabaseSettings};
use station_test_macros::backend_test;

use crate::helpers::{Backend, TestApp, json_body, reading, spawn_app, spawn_app_with};

/// `search=` with `terms` single-letter terms, as a URL path.
fn search_with(terms: usize) -> String {
    format!("/station/?search={}", vec!["a"; terms].join("+"))
}

#[backend_test]
async fn thousands_of_search_terms_get_a_400_and_the_service_lives_on() {
    let app = spawn_app().await;
    app.create_station(&reading("Alta")).await;

    // 13,000 terms once nested one condition per term, overflowed a query thread's stack and
    // aborted the process; 998 gave SQLite's "Expression tree is too large" as a 500.
    for (terms, message) in [
        (
            17,
            "Ensure this value has at most 16 search terms (it has 17).",
        ),
        (
            500,
            "Ensure this value has at most 16 search terms (it has 500).",
        ),
        (
            998,
            "Ensure this value has at most 1000 characters (it has 1995).",
        ),
        (
            13_000,
            "Ensure this value has at most 1000 characters (it has 25999).",
        ),
        (
            20_000,
            "Ensure this value has at most 1000 characters (it has 39999).",
        ),
    ] {
        let response = app.get(&search_with(terms)).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{terms} terms");
        assert_eq!(json_body(response).await, json!({"search": [message]}));
    }

    let response = app.get(&search_with(16)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_body(response).await["count"], 1);
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
}

#[backend_test]
async fn overlong_filter_values_get_a_400_naming_each_parameter() {
    let app = spawn_app().await;
    let long = "x".repeat(1001);

    let response = app
        .get(&format!(
            "/station/?name__icontains={long}&temperature__lte={long}&ordering={long}"
        ))
        .await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let message = "Ensure this value has at most 1000 characters (it has 1001).";
    assert_eq!(
        json_body(response).await,
        json!({"name__icontains": [message], "temperature__lte": [message], "ordering": [message]})
    );
    let at_the_limit = "x".repeat(1000);
    let response = app.get(&format!("/station/?name={at_the_limit}")).await;
    assert_eq!(response.status(), StatusCode::OK);
}

/// A name that pattern matches have to read to its end.
const LONG_NAME: &str = "abcdefghijklmnopqrstuvwxyz-abcdefghijklmnopqrstuvwxyz-abcdefg";

/// Adds `rows` readings named [`LONG_NAME`] straight into the table, the fastest way each engine has.
fn bulk_insert(app: &TestApp, rows: u32) {
    let numbers = match Backend::current() {
        Backend::Sqlite => format!(
            "(WITH RECURSIVE n(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM n WHERE v < {rows}) \
             SELECT v FROM n)"
        ),
        Backend::Postgres => format!("(SELECT generate_series(1, {rows}) AS v)"),
        // MariaDB's sequence engine.
        Backend::Mysql => format!("(SELECT seq AS v FROM seq_1_to_{rows})"),
    };
    let sql = format!(
        "INSERT INTO station (name, timestamp, temperature, lat, lon) \
         SELECT '{LONG_NAME}', v, 20, 0, 0 FROM {numbers} AS numbers"
    );
    // Not through the app's pool, whose statement timeout the test makes short.
    let mut settings = DatabaseSettings::new(app.database_url.clone());
    settings.statement_timeout = Duration::ZERO;
    Database::connect(&settings)
        .expect("database")
        .blocking(|conn| conn.batch_execute(&sql))
        .expect("rows inserted");
}

#[backend_test]
async fn a_query_past_the_statement_timeout_gets_a_503_and_others_are_still_answered() {
    // SQLite times only the list's queries, so its limit can be tiny; a server times every
    // statement, so its limit must leave the account check and a retrieve room.
    let limit = match Backend::current() {
        Backend::Sqlite => Duration::from_millis(1),
        Backend::Postgres | Backend::Mysql => Duration::from_millis(300),
    };
    let app = spawn_app_with(|settings| settings.database.statement_timeout = limit).await;
    // Before any request: a connection the client kept open could go idle past the server's
    // keep-alive while the rows go in.
    bulk_insert(&app, 400_000);
    let kept = app.create_station(&reading("Kept")).await;

    // Sixteen patterns over every row, each but the last matching near the name's end, so
    // every one is tried on every row: far past the limit on any engine.
    let mut terms: Vec<String> = (0..15).map(|n| LONG_NAME[45 + n..].to_owned()).collect();
    terms.push("zq".to_owned());
    let slow = app
        .get(&format!("/station/?search={}", terms.join("+")))
        .await;

    assert_eq!(slow.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(slow.headers().contains_key("retry-after"));
    assert_eq!(
        json_body(slow).await,
        json!({"detail": "Service temporarily unavailable."})
    );
    let path = crate::helpers::station_path(&kept);
    assert_eq!(app.get(&path).await.status(), StatusCode::OK);
}
