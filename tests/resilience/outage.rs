//! A dead database gives quick 503s, `/readyz` says so, and the service recovers by itself when
//! the database returns. PostgreSQL and MariaDB are really stopped and started, with the commands
//! in `TEST_POSTGRES_STOP`/`TEST_POSTGRES_START` and `TEST_MYSQL_STOP`/`TEST_MYSQL_START`; on
//! SQLite the file is moved away and back, and another connection locks it.

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::{Connection, RunQueryDsl as _, SqliteConnection};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use station_test_macros::backend_test;

use crate::databases::Backend;
use crate::helpers::{TestApp, reading, spawn_app_with};

/// The shell commands that stop and start this engine's server.
struct ServerControl {
    backend: Backend,
    start: String,
    stopped: bool,
}

impl ServerControl {
    fn for_backend(backend: Backend) -> Self {
        let variable = |action: &str| {
            let name = format!("TEST_{}_{action}", prefix(backend));
            std::env::var(&name).unwrap_or_else(|_| {
                panic!("{name} must say how to {action} the server (see README, Development)")
            })
        };
        let stop = variable("STOP");
        let start = variable("START");
        shell(&stop);
        Self {
            backend,
            start,
            stopped: true,
        }
    }

    fn start(&mut self) {
        shell(&self.start);
        self.stopped = false;
        wait_until_server_answers(self.backend);
    }
}

impl Drop for ServerControl {
    /// A failed test must not leave the server down for the tests after it.
    fn drop(&mut self) {
        if self.stopped {
            shell(&self.start);
            wait_until_server_answers(self.backend);
        }
    }
}

fn prefix(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => "POSTGRES",
        Backend::Mysql => "MYSQL",
        Backend::Sqlite => unreachable!("SQLite has no server"),
    }
}

fn shell(command: &str) {
    let status = std::process::Command::new("sh")
        .args(["-c", command])
        .status()
        .unwrap_or_else(|error| panic!("{command}: {error}"));
    assert!(status.success(), "{command}: {status}");
}

fn wait_until_server_answers(backend: Backend) {
    let url = backend.server_url().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    station_api::db::prepare_client_libraries();
    loop {
        let answered = match backend {
            Backend::Postgres => diesel::PgConnection::establish(&url).is_ok(),
            Backend::Mysql => diesel::MysqlConnection::establish(&url).is_ok(),
            Backend::Sqlite => true,
        };
        if answered {
            return;
        }
        assert!(Instant::now() < deadline, "{backend:?} did not come back");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A server that gives up on the database after one second.
async fn impatient_app() -> TestApp {
    spawn_app_with(|settings| {
        settings.database.checkout_timeout = Duration::from_secs(1);
        settings.database.busy_timeout = Duration::from_millis(300);
        settings.database.pool_size = Some(4);
    })
    .await
}

/// Asserts the 503 of CONTRACT.md: its body and a `Retry-After`.
async fn assert_unavailable(response: reqwest::Response) {
    let what = format!("{} {}", response.url(), response.status());
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{what}");
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(retry_after, 5, "{what}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"detail": "Service temporarily unavailable."}),
        "{what}"
    );
}

/// Every kind of request while the database is gone: 503s, none of them hanging.
async fn assert_every_request_is_unavailable(app: &TestApp, path: &str) {
    let requests = [
        app.admin(Method::GET, "/station/"),
        app.admin(Method::GET, path),
        app.admin(Method::POST, "/station/").json(&reading("lost")),
        app.admin(Method::PATCH, path)
            .json(&json!({"temperature": 1})),
        app.admin(Method::DELETE, path),
    ];
    for request in requests {
        assert_unavailable(request.send().await.unwrap()).await;
    }
    assert_unavailable(app.anonymous(Method::GET, "/readyz").send().await.unwrap()).await;
}

/// Polls `path` until it answers 200; the service must get there without a restart.
async fn wait_for_recovery(app: &TestApp, path: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let response = app.get(path).await;
        if response.status() == StatusCode::OK {
            return response.json().await.unwrap();
        }
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(Instant::now() < deadline, "no recovery after 30 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Stops the server, checks the outage behaviour, starts it, checks the recovery.
async fn survives_a_server_restart() {
    let _turn = crate::ONE_AT_A_TIME.lock().await;
    let backend = Backend::current();
    let app = impatient_app().await;
    let before = app.create_station(&reading("before")).await;
    let path = format!("/station/{}/", before["id"]);

    let mut server = ServerControl::for_backend(backend);
    assert_every_request_is_unavailable(&app, &path).await;
    server.start();

    assert_eq!(wait_for_recovery(&app, &path).await, before);
    let after = app.create_station(&reading("after")).await;
    let names = station_names(&app).await;
    assert_eq!(names, [json!("before"), json!("after")]);
    assert!(after["id"].as_i64() > before["id"].as_i64());
    let ready = app.anonymous(Method::GET, "/readyz").send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
}

#[backend_test]
async fn the_service_answers_503_while_its_database_is_down_and_recovers_when_it_returns() {
    if Backend::current() == Backend::Sqlite {
        return survives_its_sqlite_file_going_away().await;
    }
    survives_a_server_restart().await;
}

#[actix_web::test]
async fn writes_to_a_sqlite_file_another_process_has_locked_get_503_until_the_lock_goes() {
    sqlite_locked_by_another_process().await;
}

/// The SQLite file (with its WAL) is moved away while the service runs, as an unmounted volume
/// or a mistaken `mv` would take it, and later put back.
async fn survives_its_sqlite_file_going_away() {
    let _turn = crate::ONE_AT_A_TIME.lock().await;
    let app = impatient_app().await;
    let before = app.create_station(&reading("before")).await;
    let path = format!("/station/{}/", before["id"]);
    let file = app.database_url.trim_start_matches("sqlite://").to_owned();
    let move_files = |from: &str, to: &str| {
        for suffix in ["", "-wal", "-shm"] {
            let source = format!("{from}{suffix}");
            if std::path::Path::new(&source).exists() {
                std::fs::rename(&source, format!("{to}{suffix}")).unwrap();
            }
        }
    };
    let aside = format!("{file}.aside");

    move_files(&file, &aside);
    // Longer than a pooled connection waits between checks of its file.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_every_request_is_unavailable(&app, &path).await;
    assert!(
        !std::path::Path::new(&file).exists(),
        "no new, empty database was made in the file's place"
    );
    move_files(&aside, &file);

    assert_eq!(wait_for_recovery(&app, &path).await, before);
    app.create_station(&reading("after")).await;
    let names = station_names(&app).await;
    assert_eq!(names, [json!("before"), json!("after")]);
    let ready = app.anonymous(Method::GET, "/readyz").send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
}

/// SQLite has no server to stop, and a file the service has open stays readable whatever
/// happens to its name or mode. What does happen is another process taking the write lock (a
/// backup, a bulk import, a second service on the same file): writes then wait the busy timeout
/// and get a 503, while reads go on from the WAL snapshot; when the lock goes, writes recover.
async fn sqlite_locked_by_another_process() {
    let _turn = crate::ONE_AT_A_TIME.lock().await;
    let app = impatient_app().await;
    let before = app.create_station(&reading("before")).await;
    let path = format!("/station/{}/", before["id"]);
    let file = app.database_url.trim_start_matches("sqlite://").to_owned();

    let mut locker = SqliteConnection::establish(&file).unwrap();
    locker.batch_execute("BEGIN EXCLUSIVE").unwrap();
    let writes = [
        app.admin(Method::POST, "/station/").json(&reading("lost")),
        app.admin(Method::PUT, &path).json(&reading("lost")),
        app.admin(Method::PATCH, &path)
            .json(&json!({"temperature": 1})),
        app.admin(Method::DELETE, &path),
    ];
    for write in writes {
        assert_unavailable(write.send().await.unwrap()).await;
    }
    assert_eq!(app.get_json(&path).await, before);
    assert_eq!(app.get_json("/station/").await["count"], 1);
    locker.batch_execute("COMMIT").unwrap();
    drop(locker);

    app.create_station(&reading("after")).await;
    let names = station_names(&app).await;
    assert_eq!(names, [json!("before"), json!("after")]);
}

#[actix_web::test]
async fn a_key_whose_release_the_database_refused_is_released_when_it_returns() {
    key_released_after_the_database_refused_it().await;
}

/// A POST with an `Idempotency-Key` claims the key, then fails (503) because another process
/// holds the SQLite write lock, which also refuses the release of the claim. Once the lock goes
/// (before the lease ends), a retry with the key must run within a few renewal periods, not get
/// 409 for as long as the instance lives (the instance used to renew such a claim forever; the
/// fault tests found it in a PostgreSQL failover).
async fn key_released_after_the_database_refused_it() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let _turn = crate::ONE_AT_A_TIME.lock().await;
    let lease = Duration::from_secs(4);
    let app = spawn_app_with(|settings| {
        settings.database.checkout_timeout = Duration::from_secs(1);
        settings.database.busy_timeout = Duration::from_millis(300);
        settings.idempotency.claim_lease = lease;
    })
    .await;
    let file = app.database_url.trim_start_matches("sqlite://").to_owned();
    let body = serde_json::to_vec(&reading("retried")).unwrap();

    // The head first: the key is claimed before the body is read.
    let authority = app.address.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(authority).await.unwrap();
    let credentials = base64_basic("admin", "admin-password");
    let head = format!(
        "POST /station/ HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Basic {credentials}\r\n\
         Content-Type: application/json\r\nIdempotency-Key: k-1\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut watcher = SqliteConnection::establish(&file).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let claims =
        diesel::dsl::sql::<diesel::sql_types::BigInt>("SELECT COUNT(*) FROM idempotency_keys");
    while claims.clone().get_result::<i64>(&mut watcher).unwrap() == 0 {
        assert!(Instant::now() < deadline, "the key was never claimed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(watcher);

    let mut locker = SqliteConnection::establish(&file).unwrap();
    locker.batch_execute("BEGIN EXCLUSIVE").unwrap();
    socket.write_all(&body).await.unwrap();
    let mut answer = String::new();
    socket.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    // Long enough for the release tried in the background to fail too, and short of the
    // lease: the claim is still live when the database returns, and would be renewed.
    tokio::time::sleep(Duration::from_secs(1)).await;
    locker.batch_execute("COMMIT").unwrap();
    drop(locker);

    let deadline = Instant::now() + lease * 3;
    loop {
        let retry = app
            .admin(Method::POST, "/station/")
            .header("Idempotency-Key", "k-1")
            .body(body.clone())
            .header("Content-Type", "application/json")
            .send()
            .await
            .unwrap();
        if retry.status() == StatusCode::CREATED {
            break;
        }
        assert_eq!(
            retry.status(),
            StatusCode::CONFLICT,
            "{:?}",
            retry.text().await
        );
        assert!(
            Instant::now() < deadline,
            "the key was still held {:?} after the database returned",
            lease * 3
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(station_names(&app).await, [json!("retried")]);
}

/// The value of a basic `Authorization` header.
fn base64_basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

/// The names of every stored reading, in list order.
async fn station_names(app: &TestApp) -> Vec<Value> {
    app.all_stations()
        .await
        .into_iter()
        .map(|s| s["name"].clone())
        .collect()
}
