//! Bulk ingest: a JSON array, CSV or NDJSON body on `POST /station/` creates every reading or
//! none, and every refusal says where the body went wrong.

use diesel::prelude::*;
use diesel::sql_types::BigInt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use station_api::db::{DbConnection, station_repository};
use station_test_macros::backend_test;

use crate::helpers::{
    TestApp, assert_detail, header, json_body, reading, spawn_app, spawn_app_with,
};

#[derive(QueryableByName)]
struct Counted {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// `COUNT(*)` of `table`, as a 64-bit integer on every engine.
pub fn count_rows(app: &TestApp, table: &str) -> i64 {
    let table = table.to_owned();
    app.database
        .blocking(move |conn| {
            let cast = match conn {
                DbConnection::Mysql(_) => "SIGNED",
                DbConnection::Sqlite(_) | DbConnection::Postgres(_) => "BIGINT",
            };
            let counted: Counted =
                diesel::sql_query(format!("SELECT CAST(COUNT(*) AS {cast}) AS n FROM {table}"))
                    .get_result(conn)?;
            Ok(counted.n)
        })
        .unwrap()
}

/// How many readings are stored: counted row by row, after checking the kept count agrees.
pub fn stored(app: &TestApp) -> i64 {
    let kept = app
        .database
        .blocking(station_repository::count_all)
        .unwrap();
    let counted = count_rows(app, "station");
    assert_eq!(kept, counted, "the kept count matches the rows");
    counted
}

fn names(created: &Value) -> Vec<&str> {
    created
        .as_array()
        .expect("an array")
        .iter()
        .map(|station| station["name"].as_str().expect("a name"))
        .collect()
}

/// Asserts ids rise in input order and each reading's URL serves it.
async fn assert_created_in_order(app: &TestApp, created: &Value) {
    let stations = created.as_array().expect("an array");
    let ids: Vec<i64> = stations.iter().map(|s| s["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "{ids:?}");
    for station in stations.iter().take(3) {
        let url = station["url"].as_str().unwrap();
        assert_eq!(&app.follow(url).await, station);
    }
}

async fn post(
    app: &TestApp,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    app.send_raw(Method::POST, "/station/", content_type, body)
        .await
}

#[backend_test]
async fn a_json_array_creates_every_reading_in_input_order_without_location() {
    let app = spawn_app().await;
    let body = json!([reading("Oslo"), reading("Bergen"), reading("Tromsø")]);

    let response = app.post_json("/station/", &body).await;

    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(header(&response, "location"), None);
    let created = json_body(response).await;
    assert_eq!(names(&created), ["Oslo", "Bergen", "Tromsø"]);
    assert_eq!(created[0]["temperature"], 21.5);
    assert_created_in_order(&app, &created).await;
    assert_eq!(stored(&app), 3);
}

#[backend_test]
async fn what_a_bulk_upload_answers_is_exactly_what_is_stored() {
    let app = spawn_app().await;
    let long_name = "Å".repeat(64);
    let body = json!([
        {"name": "Edge", "timestamp": 0, "temperature": -273.15, "lat": -90, "lon": -180},
        {"name": long_name, "timestamp": 253_402_300_799_i64, "temperature": 1000,
         "lat": 90, "lon": 180},
        {"name": " Padded ", "timestamp": "1700000000", "temperature": "-0.0",
         "lat": 30.733315, "lon": 76.779418},
        {"name": "Tiny", "timestamp": 1, "temperature": 1e-300, "lat": -0.0, "lon": 0.1},
    ]);

    let response = app.post_json("/station/", &body).await;

    assert_eq!(response.status(), StatusCode::CREATED);
    let created = json_body(response).await;
    let stations = created.as_array().expect("an array");
    assert_eq!(stations.len(), 4);
    assert_eq!(stations[1]["name"], long_name.as_str());
    assert_eq!(stations[2]["name"], "Padded");
    // Negative zero is stored, and so answered, as zero.
    assert_eq!(stations[2]["temperature"].to_string(), "0.0");
    assert_eq!(stations[3]["lat"].to_string(), "0.0");
    for station in stations {
        let stored = app.follow(station["url"].as_str().unwrap()).await;
        // Compared as text: `Value`'s equality would call -0.0 and 0.0 the same.
        assert_eq!(stored.to_string(), station.to_string());
    }
    assert_eq!(app.all_stations().await, *stations);
}

#[derive(QueryableByName, Debug, PartialEq)]
struct ShardCount {
    #[diesel(sql_type = BigInt)]
    shard: i64,
    #[diesel(sql_type = BigInt)]
    readings: i64,
}

/// The kept count's shards, and the rows counted by the same rule (id modulo 16).
fn shards_kept_and_counted(app: &TestApp) -> (Vec<ShardCount>, Vec<ShardCount>) {
    app.database
        .blocking(|conn| {
            let cast = match conn {
                DbConnection::Mysql(_) => "SIGNED",
                DbConnection::Sqlite(_) | DbConnection::Postgres(_) => "BIGINT",
            };
            let kept = diesel::sql_query(format!(
                "SELECT CAST(shard AS {cast}) AS shard, CAST(readings AS {cast}) AS readings \
                 FROM station_count WHERE readings <> 0 ORDER BY shard"
            ))
            .load(conn)?;
            let counted = diesel::sql_query(format!(
                "SELECT CAST(id % 16 AS {cast}) AS shard, CAST(COUNT(*) AS {cast}) AS readings \
                 FROM station GROUP BY id % 16 ORDER BY 1"
            ))
            .load(conn)?;
            Ok((kept, counted))
        })
        .unwrap()
}

#[backend_test]
async fn uploads_of_any_length_keep_every_shard_of_the_count_and_log_every_reading() {
    let app = spawn_app().await;
    app.create_station(&reading("Before")).await;
    let mut created = 1;

    // Uploads of lengths around the 1,000-row statement's, each starting where the last ended.
    for length in [1, 2, 15, 16, 17, 999, 1000, 1001, 2017] {
        let body = Value::Array((0..length).map(|_| reading("Bulk")).collect());
        let response = app.post_json("/station/", &body).await;
        assert_eq!(response.status(), StatusCode::CREATED, "{length} readings");
        created += length;
    }
    app.create_station(&reading("After")).await;
    created += 1;

    let (kept, counted) = shards_kept_and_counted(&app);
    assert_eq!(kept, counted);
    assert_eq!(stored(&app), created);
    // One change for each reading, the single creates around the uploads included.
    assert_eq!(count_rows(&app, "station_changes"), created);
    assert_eq!(
        count_rows(
            &app,
            "(SELECT DISTINCT station_id FROM station_changes) AS logged"
        ),
        created
    );
}

#[backend_test]
async fn csv_with_the_header_in_another_order_creates_typed_readings() {
    let app = spawn_app().await;
    let body = "lon,lat,temperature,timestamp,name,comment\r\n\
                76.779418,30.733315,28,1393926310,\"City, North\",ignored\r\n\
                10.75,59.91, -3.5 ,1700000000,Oslo,\r\n";

    let response = post(&app, "text/csv", body).await;

    assert_eq!(response.status(), StatusCode::CREATED);
    let created = json_body(response).await;
    assert_eq!(names(&created), ["City, North", "Oslo"]);
    assert_eq!(created[0]["timestamp"], 1_393_926_310_i64);
    assert_eq!(created[0]["lat"], 30.733315);
    assert_eq!(created[1]["temperature"], -3.5);
    assert_created_in_order(&app, &created).await;
    assert_eq!(stored(&app), 2);
}

#[backend_test]
async fn ndjson_creates_one_reading_a_line() {
    let app = spawn_app().await;
    let body = format!("{}\n{}\r\n\n{}", reading("a"), reading("b"), reading("c"));

    let response = post(&app, "application/x-ndjson", body).await;

    assert_eq!(response.status(), StatusCode::CREATED);
    let created = json_body(response).await;
    assert_eq!(names(&created), ["a", "b", "c"]);
    assert_created_in_order(&app, &created).await;
    assert_eq!(stored(&app), 3);
}

#[backend_test]
async fn bad_items_get_errors_aligned_to_the_input_and_nothing_is_written() {
    let app = spawn_app().await;
    app.create_station(&reading("Before")).await;
    let mut bad_number = reading("Bad");
    bad_number["temperature"] = json!("NaN");
    let body = json!([reading("Good"), bad_number, 42, {"name": ""}]);

    let response = app.post_json("/station/", &body).await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        json_body(response).await,
        json!([
            {},
            {"temperature": ["A valid number is required."]},
            {"non_field_errors": ["Invalid data. Expected a dictionary, but got int."]},
            {"name": ["This field may not be blank."],
             "timestamp": ["This field is required."],
             "temperature": ["This field is required."],
             "lat": ["This field is required."],
             "lon": ["This field is required."]},
        ])
    );
    assert_eq!(stored(&app), 1);
}

#[backend_test]
async fn an_empty_upload_and_one_over_the_limit_are_refused_whole() {
    let app = spawn_app_with(|settings| settings.http.max_bulk_items = 3).await;
    let four = json!([reading("a"), reading("b"), reading("c"), reading("d")]);
    let header_only = "name,timestamp,temperature,lat,lon\n";

    for (content_type, body, message) in [
        (
            "application/json",
            "[]".to_owned(),
            "This list may not be empty.",
        ),
        (
            "text/csv",
            header_only.to_owned(),
            "This list may not be empty.",
        ),
        (
            "application/x-ndjson",
            "\n".to_owned(),
            "This list may not be empty.",
        ),
        (
            "application/json",
            four.to_string(),
            "Ensure this field has no more than 3 elements.",
        ),
        (
            "text/csv",
            format!("{header_only}a,1,1,1,1\nb,1,1,1,1\nc,1,1,1,1\nd,1,1,1,1\n"),
            "Ensure this field has no more than 3 elements.",
        ),
    ] {
        let response = post(&app, content_type, body).await;

        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{content_type}");
        assert_eq!(
            json_body(response).await,
            json!({"non_field_errors": [message]})
        );
    }
    assert_eq!(stored(&app), 0);
    let three = json!([reading("a"), reading("b"), reading("c")]);
    assert_eq!(
        app.post_json("/station/", &three).await.status(),
        StatusCode::CREATED
    );
}

#[backend_test]
async fn ten_thousand_readings_with_a_bad_9999th_write_nothing_and_without_it_all() {
    let app = spawn_app().await;
    let mut items: Vec<Value> = (0..10_000).map(|n| reading(&format!("s{n}"))).collect();
    items[9998]["lat"] = json!(91);

    let refused = app
        .post_json("/station/", &Value::Array(items.clone()))
        .await;

    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let errors = json_body(refused).await;
    let errors = errors.as_array().unwrap();
    assert_eq!(errors.len(), 10_000);
    assert_eq!(
        errors[9998],
        json!({"lat": ["Ensure this value is less than or equal to 90."]})
    );
    assert!(
        errors
            .iter()
            .enumerate()
            .all(|(n, e)| n == 9998 || *e == json!({}))
    );
    assert_eq!(stored(&app), 0);

    items[9998]["lat"] = json!(90);
    let created = app.post_json("/station/", &Value::Array(items)).await;

    assert_eq!(created.status(), StatusCode::CREATED);
    let created = json_body(created).await;
    let expected: Vec<String> = (0..10_000).map(|n| format!("s{n}")).collect();
    assert_eq!(names(&created), expected);
    assert_created_in_order(&app, &created).await;
    assert_eq!(stored(&app), 10_000);
}

#[backend_test]
async fn broken_bodies_are_a_400_that_says_where_and_write_nothing() {
    let app = spawn_app().await;
    let good = reading("Good").to_string();
    let header_row = "name,timestamp,temperature,lat,lon\n";
    let mut non_utf8_csv = format!("{header_row}ok,1,1,1,1\n").into_bytes();
    non_utf8_csv.extend_from_slice(b"b\xff,1,1,1,1\n");
    let mut non_utf8_json = format!("[{good},").into_bytes();
    non_utf8_json.extend_from_slice(b"{\"name\":\"\xff\"}]");

    for (content_type, body, starts) in [
        (
            "application/json",
            format!("[{good},{good},{{\"lat\": NaN}}]").into_bytes(),
            "JSON parse error - item at index 2: ",
        ),
        (
            "application/json",
            non_utf8_json,
            "JSON parse error - item at index 1: ",
        ),
        (
            "application/json",
            format!("[{good}] x").into_bytes(),
            "JSON parse error - after the array: ",
        ),
        (
            "text/csv",
            format!("{header_row}a,1,1,1,1\n\"b,1,1,1,1\nc,1,1,1,1\n").into_bytes(),
            "CSV parse error - line 3: a quoted field is not closed",
        ),
        (
            "text/csv",
            non_utf8_csv,
            "CSV parse error - line 3: name is not valid UTF-8",
        ),
        (
            "text/csv",
            format!("{header_row}a,1,1,1,1\nb,1,1,1\n").into_bytes(),
            "CSV parse error - line 3: expected 5 fields, found 4",
        ),
        (
            "text/csv",
            "name,lat,lon\na,1,1\n".as_bytes().to_vec(),
            "CSV parse error - the header row must name name, timestamp, temperature, lat and lon; \"timestamp\" is missing",
        ),
        (
            "application/x-ndjson",
            format!("{good}\n{good}\nnot json\n").into_bytes(),
            "JSON parse error - line 3: ",
        ),
    ] {
        let response = post(&app, content_type, body).await;

        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{starts}");
        let detail = json_body(response).await["detail"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            detail.starts_with(starts),
            "{detail:?} should start {starts:?}"
        );
    }
    assert_eq!(stored(&app), 0);
}

#[backend_test]
async fn a_bulk_upload_has_its_own_size_limit_and_a_single_reading_keeps_the_old_one() {
    let app = spawn_app_with(|settings| {
        settings.http.max_body_bytes = 200;
        settings.http.max_bulk_body_bytes = 1000;
    })
    .await;
    let five = Value::Array((0..5).map(|n| reading(&format!("r{n}"))).collect());
    let twenty = Value::Array((0..20).map(|n| reading(&format!("r{n}"))).collect());
    let mut big_single = reading("Big");
    big_single["padding"] = json!("x".repeat(300));

    let within = app.post_json("/station/", &five).await;
    let over = app.post_json("/station/", &twenty).await;
    let single = app.post_json("/station/", &big_single).await;
    let csv = post(
        &app,
        "text/csv",
        format!(
            "name,timestamp,temperature,lat,lon\n{}",
            "a,1,1,1,1\n".repeat(100)
        ),
    )
    .await;

    assert!(five.to_string().len() > 200);
    assert_eq!(within.status(), StatusCode::CREATED);
    for response in [over, single, csv] {
        assert_detail(
            response,
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request body is too large.",
        )
        .await;
    }
    assert_eq!(stored(&app), 5);
}

#[backend_test]
async fn single_objects_and_form_bodies_still_create_one_reading_with_location() {
    let app = spawn_app().await;

    let json = app.post_json("/station/", &reading("One")).await;
    let form = post(
        &app,
        "application/x-www-form-urlencoded",
        "name=Two&timestamp=1&temperature=1&lat=1&lon=1",
    )
    .await;

    for response in [json, form] {
        assert_eq!(response.status(), StatusCode::CREATED);
        let location = header(&response, "location").expect("a Location");
        let body = json_body(response).await;
        assert!(body.is_object());
        assert_eq!(body["url"], location);
    }
    assert_eq!(stored(&app), 2);
}

#[backend_test]
async fn other_media_types_are_still_415() {
    let app = spawn_app().await;

    let response = post(&app, "text/plain", reading("x").to_string()).await;

    assert_detail(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "Unsupported media type \"text/plain\" in request.",
    )
    .await;
    assert_eq!(stored(&app), 0);
}
