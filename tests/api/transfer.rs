//! Readings in bulk, out and in: `GET /station/export/`, and the command line's `export`,
//! `import`, `prune` and `backup`, on every engine.

use std::fs;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use station_test_macros::backend_test;

use crate::bulk::stored;
use crate::databases::TestDatabase;
use crate::helpers::{TestApp, assert_detail, header, json_body, send, spawn_app, text_body};
use crate::process::{run, start_server, text};

const CSV_HEADER: &str = "id,name,timestamp,temperature,lat,lon";
const FIRST_TIMESTAMP: i64 = 1_393_926_310;

/// The `n`th (0-based) of the seeded readings, as a CSV row without its id.
fn seeded_row(n: usize) -> String {
    let temperature = (n % 500) as f64 / 10.0 - 20.0;
    let lat = (n % 180) as f64 - 89.5;
    let lon = (n % 360) as f64 / 2.0 + 0.125;
    format!(
        "Station {},{},{temperature:?},{lat:?},{lon:?}",
        n % 7,
        FIRST_TIMESTAMP + n as i64 * 10
    )
}

/// Creates `count` readings, [`seeded_row`] 0 to `count - 1`, in bulk CSV uploads.
async fn seed(app: &TestApp, count: usize) {
    for start in (0..count).step_by(2_500) {
        let mut body = String::from("name,timestamp,temperature,lat,lon\n");
        for n in start..count.min(start + 2_500) {
            body.push_str(&seeded_row(n));
            body.push('\n');
        }
        let response = send(
            app.admin(Method::POST, "/station/")
                .header("content-type", "text/csv")
                .body(body),
        )
        .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
}

async fn export(app: &TestApp, query: &str, accept: Option<&str>) -> reqwest::Response {
    let mut request = app.admin(Method::GET, &format!("/station/export/{query}"));
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    send(request).await
}

/// The ids the list shows for `query`, every page of it.
async fn listed_ids(app: &TestApp, query: &str) -> Vec<i64> {
    let mut ids = Vec::new();
    let mut next = Some(app.url(&format!("/station/?page_size=1000&{query}")));
    while let Some(url) = next {
        let page = app.follow(&url).await;
        ids.extend(
            page["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|station| station["id"].as_i64().unwrap()),
        );
        next = page["next"].as_str().map(str::to_owned);
    }
    ids
}

#[backend_test]
async fn export_writes_every_matching_reading_as_csv_or_ndjson_in_the_lists_order() {
    let app = spawn_app().await;
    // More than two of the export's chunks.
    seed(&app, 4_500).await;

    let response = export(&app, "", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header(&response, "content-type").as_deref(),
        Some("text/csv; charset=utf-8")
    );
    assert_eq!(
        header(&response, "content-disposition").as_deref(),
        Some("attachment; filename=\"stations.csv\"")
    );
    let csv = text_body(response).await;
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4_501);
    assert_eq!(lines[0], CSV_HEADER);
    let ids = listed_ids(&app, "").await;
    assert_eq!(ids.len(), 4_500);
    for (n, (line, id)) in lines[1..].iter().zip(&ids).enumerate() {
        assert_eq!(*line, format!("{id},{}", seeded_row(n)), "row {n}");
    }

    // Filters and ordering as the list's; NDJSON by `?format=` and by `Accept`.
    let query = "name=Station%203&temperature__gte=0&ordering=-temperature,timestamp";
    for (export_query, accept) in [
        (format!("?{query}&format=ndjson"), None),
        (format!("?{query}"), Some("application/x-ndjson")),
    ] {
        let response = export(&app, &export_query, accept).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            header(&response, "content-type").as_deref(),
            Some("application/x-ndjson")
        );
        assert_eq!(
            header(&response, "content-disposition").as_deref(),
            Some("attachment; filename=\"stations.ndjson\"")
        );
        let body = text_body(response).await;
        let readings: Vec<Value> = body
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        let exported: Vec<i64> = readings.iter().map(|r| r["id"].as_i64().unwrap()).collect();
        assert_eq!(exported, listed_ids(&app, query).await);
        assert!(exported.len() > 100);
        let first = readings[0].as_object().unwrap();
        assert_eq!(
            first.keys().collect::<Vec<_>>(),
            ["id", "name", "timestamp", "temperature", "lat", "lon"]
        );
        assert!(readings.iter().all(|r| r["name"] == "Station 3"));
    }

    // Nothing matches: the header alone.
    let empty = text_body(export(&app, "?name=nobody", None).await).await;
    assert_eq!(empty, format!("{CSV_HEADER}\n"));
}

#[backend_test]
async fn export_refuses_bad_filters_formats_and_callers_with_json_errors() {
    let app = spawn_app().await;
    app.create_station(&crate::helpers::reading("Kitchen"))
        .await;

    let bad = export(&app, "?timestamp__gte=soon&ordering=colour", None).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let errors = json_body(bad).await;
    assert!(errors["timestamp__gte"].is_array(), "{errors}");
    assert!(errors["ordering"].is_array(), "{errors}");

    assert_detail(
        export(&app, "?format=xml", None).await,
        StatusCode::NOT_FOUND,
        "Not found.",
    )
    .await;
    let json_only = export(&app, "", Some("application/json")).await;
    assert_eq!(json_only.status(), StatusCode::NOT_ACCEPTABLE);
    assert!(json_body(json_only).await["detail"].is_string());

    let anonymous = send(app.anonymous(Method::GET, "/station/export/")).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert!(json_body(anonymous).await["detail"].is_string());

    let post = send(app.admin(Method::POST, "/station/export/").json(&json!({}))).await;
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    // Not the reading with id "export".
    let options = send(app.admin(Method::OPTIONS, "/station/export/")).await;
    assert_eq!(options.status(), StatusCode::OK);
    assert_eq!(
        json_body(options).await["renders"],
        json!(["text/csv", "application/x-ndjson"])
    );
}

#[backend_test]
async fn a_read_token_bound_to_a_station_exports_that_station_alone() {
    let app = spawn_app().await;
    for name in ["Kitchen", "Garden", "Kitchen"] {
        app.create_station(&crate::helpers::reading(name)).await;
    }
    let issued = json_body(
        app.post_json(
            "/tokens/",
            &json!({"label": "screen", "scopes": ["read"], "station": "Kitchen"}),
        )
        .await,
    )
    .await;
    let key = issued["key"].as_str().unwrap();

    let response = send(
        app.anonymous(Method::GET, "/station/export/?format=ndjson")
            .bearer_auth(key),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = text_body(response).await;
    let names: Vec<String> = body
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap()["name"].to_string())
        .collect();
    assert_eq!(names, ["\"Kitchen\"", "\"Kitchen\""]);
}

/// Runs the binary; its standard output, failing the test with its standard error.
fn succeed(database_url: &str, args: &[&str]) -> String {
    let output = run(database_url, args, "");
    assert!(
        output.status.success(),
        "{args:?}: {}",
        text(&output.stderr)
    );
    text(&output.stdout)
}

#[backend_test]
async fn import_and_export_round_trip_byte_for_byte_and_match_the_api() {
    let app = spawn_app().await;
    seed(&app, 2_500).await;
    let deleted = send(app.admin(Method::DELETE, "/station/7/")).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let directory = tempfile::tempdir().unwrap();

    // The command line writes what the API does.
    let exported = succeed(&app.database_url, &["export"]);
    assert_eq!(exported, text_body(export(&app, "", None).await).await);
    let ndjson = succeed(&app.database_url, &["export", "--format", "ndjson"]);
    assert_eq!(
        ndjson,
        text_body(export(&app, "?format=ndjson", None).await).await
    );
    let filtered = succeed(
        &app.database_url,
        &["export", "name=Station 2", "ordering=-timestamp"],
    );
    assert_eq!(
        filtered,
        text_body(export(&app, "?name=Station%202&ordering=-timestamp", None).await).await
    );

    // Into an empty database, in small transactions, and out again: the same bytes, the ids
    // kept (the deleted 7 stays a gap), and new readings numbered after the imported ones.
    for (file, contents) in [("all.csv", &exported), ("all.ndjson", &ndjson)] {
        let path = directory.path().join(file);
        fs::write(&path, contents).unwrap();
        let copy = TestDatabase::fresh();
        let summary = succeed(
            &copy.url,
            &["import", path.to_str().unwrap(), "--chunk-rows", "1000"],
        );
        assert!(
            summary.starts_with("Imported 2,499 readings from ") && summary.contains("file's ids"),
            "{summary}"
        );
        let format = if file.ends_with("csv") {
            "csv"
        } else {
            "ndjson"
        };
        assert_eq!(
            &succeed(&copy.url, &["export", "--format", format]),
            contents
        );
        let server = start_server(&copy.url);
        let created = server_create(&server, &copy.url).await;
        assert_eq!(created, 2_501);
    }
}

/// Creates a reading through a `serve` process as a new superuser; the new reading's id.
async fn server_create(server: &crate::process::Server, database_url: &str) -> i64 {
    run(
        database_url,
        &["createsuperuser", "--username", "importer"],
        "importer-password\n",
    );
    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/station/", server.port()))
        .basic_auth("importer", Some("importer-password"))
        .json(&crate::helpers::reading("After"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    json_body(response).await["id"].as_i64().unwrap()
}

#[backend_test]
async fn import_stops_at_a_bad_line_keeps_whole_chunks_and_resumes_with_skip() {
    let app = spawn_app().await;
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("readings.csv");
    let mut file = String::from("name,timestamp,temperature,lat,lon\n");
    for n in 0..25 {
        file.push_str(&seeded_row(n));
        file.push('\n');
    }
    // Line 24 (the 23rd reading) is below absolute zero.
    let bad = file.replacen(&seeded_row(22), "Station 1,1393926530,-300,0,0", 1);
    fs::write(&path, &bad).unwrap();
    let path_text = path.to_str().unwrap();

    let failed = run(
        &app.database_url,
        &["import", path_text, "--chunk-rows", "10"],
        "",
    );
    assert!(!failed.status.success());
    let message = text(&failed.stderr);
    assert!(message.contains("line 24: temperature: "), "{message}");
    assert!(
        message.contains("20 readings were imported before it")
            && message.contains(&format!("import --skip 20 {path_text}")),
        "{message}"
    );
    assert_eq!(stored(&app), 20);

    fs::write(&path, &file).unwrap();
    let resumed = succeed(
        &app.database_url,
        &["import", path_text, "--chunk-rows", "10", "--skip", "20"],
    );
    assert!(resumed.starts_with("Imported 5 readings"), "{resumed}");
    let names: Vec<String> = app
        .all_stations()
        .await
        .iter()
        .map(|station| {
            format!(
                "{},{}",
                station["name"].as_str().unwrap(),
                station["timestamp"]
            )
        })
        .collect();
    let expected: Vec<String> = (0..25)
        .map(|n| format!("Station {},{}", n % 7, FIRST_TIMESTAMP + n as i64 * 10))
        .collect();
    assert_eq!(names, expected);

    // Importing an export again would duplicate ids: refused, by line, nothing written.
    let exported = succeed(&app.database_url, &["export"]);
    let again = directory.path().join("again.csv");
    fs::write(&again, exported).unwrap();
    let duplicate = run(&app.database_url, &["import", again.to_str().unwrap()], "");
    assert!(!duplicate.status.success());
    assert!(
        text(&duplicate.stderr).contains("line 2: a reading with id 1 is already stored"),
        "{}",
        text(&duplicate.stderr)
    );
    assert_eq!(stored(&app), 25);

    // A file that is not what it claims: nothing imported, the reason on one line.
    let broken = directory.path().join("broken.ndjson");
    fs::write(&broken, b"{\"name\": \"a\xff\"}\n").unwrap();
    let refused = run(&app.database_url, &["import", broken.to_str().unwrap()], "");
    assert!(!refused.status.success());
    assert!(text(&refused.stderr).contains("line 1: JSON parse error"));
    let unnamed = directory.path().join("readings.txt");
    fs::write(&unnamed, &file).unwrap();
    let unknown = run(
        &app.database_url,
        &["import", unnamed.to_str().unwrap()],
        "",
    );
    assert!(text(&unknown.stderr).contains("give --format csv or --format ndjson"));
    assert_eq!(stored(&app), 25);
}

#[backend_test]
async fn prune_deletes_readings_older_than_the_age_in_batches() {
    let app = spawn_app().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let day = 86_400;
    for (name, age_days) in [
        ("old", 100),
        ("old", 95),
        ("old", 31),
        ("recent", 29),
        ("new", 0),
    ] {
        let mut body = crate::helpers::reading(name);
        body["timestamp"] = json!(now - age_days * day);
        app.create_station(&body).await;
    }

    let bad = run(&app.database_url, &["prune", "--older-than", "soon"], "");
    assert!(!bad.status.success());
    assert!(text(&bad.stderr).contains("--older-than"));
    assert_eq!(stored(&app), 5);

    let pruned = succeed(
        &app.database_url,
        &["prune", "--older-than", "30d", "--batch-rows", "2"],
    );
    assert!(
        pruned.starts_with("Deleted 3 readings taken before "),
        "{pruned}"
    );
    let left: Vec<Value> = app.all_stations().await;
    assert_eq!(
        left.iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["recent", "new"]
    );
    assert_eq!(stored(&app), 2, "the kept count follows");
}

#[backend_test]
async fn a_backup_restores_with_every_reading() {
    let app = spawn_app().await;
    seed(&app, 300).await;
    let directory = tempfile::tempdir().unwrap();
    let original = succeed(&app.database_url, &["export"]);
    let restored = TestDatabase::fresh();
    match crate::databases::Backend::current() {
        crate::databases::Backend::Sqlite => {
            let path = directory.path().join("backup.db");
            let path_text = path.to_str().unwrap();
            // While the service runs and writes.
            let writes = async {
                for n in 0..20 {
                    app.create_station(&crate::helpers::reading(&format!("during {n}")))
                        .await;
                }
            };
            let backup = std::thread::spawn({
                let (url, path) = (app.database_url.clone(), path_text.to_owned());
                move || succeed(&url, &["backup", &path])
            });
            writes.await;
            let copied = backup.join().unwrap();
            assert!(copied.starts_with("Copied the database to "), "{copied}");
            let copy_url = format!("sqlite://{path_text}");
            let exported = succeed(&copy_url, &["export"]);
            let lines = exported.lines().count();
            assert!((301..=321).contains(&lines), "{lines}");
            assert!(exported.starts_with(&original));
            let again = run(&app.database_url, &["backup", path_text], "");
            assert!(text(&again.stderr).contains("already exists"));
        }
        crate::databases::Backend::Postgres => {
            let refused = run(&app.database_url, &["backup", "x.sql"], "");
            assert!(text(&refused.stderr).contains("pg_dump"));
            let dump = directory.path().join("station.sql");
            shell(&format!(
                "pg_dump --no-owner --no-privileges -d '{}' -f '{}' && psql -q -v ON_ERROR_STOP=1 -d '{}' -f '{}'",
                app.database_url,
                dump.display(),
                restored.url,
                dump.display()
            ));
            assert_eq!(succeed(&restored.url, &["export"]), original);
        }
        crate::databases::Backend::Mysql => {
            let refused = run(&app.database_url, &["backup", "x.sql"], "");
            assert!(text(&refused.stderr).contains("mariadb-dump"));
            let (source, target) = (mysql_args(&app.database_url), mysql_args(&restored.url));
            let dump = directory.path().join("station.sql");
            shell(&format!(
                "mariadb-dump --single-transaction --routines --triggers {source} > '{}' && mariadb {target} < '{}'",
                dump.display(),
                dump.display()
            ));
            assert_eq!(succeed(&restored.url, &["export"]), original);
        }
    }
}

/// `mysql://user[:password]@host:port/db` as the MariaDB tools' arguments.
fn mysql_args(database_url: &str) -> String {
    let url = url::Url::parse(database_url).unwrap();
    let password = url
        .password()
        .map(|p| format!(" --password='{p}'"))
        .unwrap_or_default();
    format!(
        "--host={} --port={} --user={}{password} {}",
        url.host_str().unwrap(),
        url.port().unwrap_or(3306),
        url.username(),
        url.path().trim_start_matches('/')
    )
}

/// Runs `script` with `sh -c`, failing the test with its output when it fails.
fn shell(script: &str) {
    let output = std::process::Command::new("sh")
        .args(["-c", script])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{script}: {}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
}
