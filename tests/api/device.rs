//! The device program of `examples/device/` (Python, standard library only) against the real
//! server binary: it takes readings fast, the server is stopped in the middle and started again
//! on the same port and file, and afterwards every reading the device took is stored exactly once.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::databases::{Backend, TestDatabase};
use crate::process::{Server, run, station_api, text, wait_for};

const PASSWORD: &str = "a-device-test-password";
const STATION: &str = "Pi-Kitchen";
/// Readings the device takes, 0.1 s apart.
const READINGS: usize = 60;
/// The server is stopped once the device has taken this many.
const STOP_AFTER: usize = 15;

fn device_directory() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/device")
}

/// The program's own logic (buffering, backoff, keys, setting aside, restarts), without a server.
#[test]
fn the_device_program_passes_its_own_unit_tests() {
    let output = Command::new("python3")
        .args(["-m", "unittest", "discover", "-s", "."])
        .current_dir(device_directory())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("python3 runs (the device program needs Python 3)");
    assert!(
        output.status.success(),
        "{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    assert!(
        text(&output.stderr).contains("OK"),
        "{}",
        text(&output.stderr)
    );
}

/// Starts `serve` on `address` (`127.0.0.1:0` for any free port).
fn serve_on(database_url: &str, address: &str) -> Server {
    Server::of(
        station_api(database_url)
            .args(["serve", "--bind", address])
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

/// Every line the receiver still gets, until its writer is gone (at most 10 s).
fn remaining(lines: &mpsc::Receiver<String>) -> Vec<String> {
    let mut seen = Vec::new();
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(10)) {
        seen.push(line);
    }
    seen
}

/// What a device run left: the readings it took, what it logged, and what the service stores.
struct DeviceRun {
    produced: Vec<(String, i64)>,
    log: Vec<String>,
    stored: Vec<(String, i64)>,
}

/// Runs the device with `auth` (its flags) and `options` against a server that is stopped with
/// `signal` after `STOP_AFTER` readings and restarted a second later on the same port and file.
async fn run_device_through_a_restart(
    database: &TestDatabase,
    auth: &[String],
    options: &[&str],
    signal: &str,
) -> DeviceRun {
    let server = serve_on(&database.url, "127.0.0.1:0");
    let port = server.port();
    let base = format!("http://127.0.0.1:{port}");
    let buffer = tempfile::tempdir().unwrap();
    let mut device = Command::new("python3");
    device
        .arg(device_directory().join("station_device.py"))
        .args(["--url", &base, "--station", STATION])
        .args(auth)
        .args(["--interval", "0.1", "--count", &READINGS.to_string()])
        .args(["--simulate-from", "1700000000", "--drain-seconds", "60"])
        .args(["--timeout", "5"])
        .arg("--buffer")
        .arg(buffer.path())
        .args(options)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut device = Server::of(device.spawn().expect("python3 runs the device program"));

    // Stop the server once the device is well under way.
    let mut produced_lines = Vec::new();
    while produced_lines.len() < STOP_AFTER {
        produced_lines.push(
            device
                .stdout
                .recv_timeout(Duration::from_secs(30))
                .expect("the device takes readings"),
        );
    }
    let stopped = server.signal_and_wait(signal);
    if signal == "-TERM" {
        assert!(stopped.success(), "the server stops cleanly on SIGTERM");
    }
    std::thread::sleep(Duration::from_secs(1));
    let restarted = serve_on(&database.url, &format!("127.0.0.1:{port}"));
    assert!(
        wait_for(&restarted.stderr, "station-api listening").is_some(),
        "the server starts again on port {port}"
    );

    // Let the device finish: it exits 0 once everything it took is acknowledged.
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = device.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the device did not finish");
        std::thread::sleep(Duration::from_millis(50));
    };
    produced_lines.extend(remaining(&device.stdout));
    let log = remaining(&device.stderr);
    assert!(status.success(), "device exited with {status}: {log:#?}");
    let produced = produced_lines
        .iter()
        .map(|line| {
            let reading: Value = serde_json::from_str(line).unwrap();
            (
                reading["name"].as_str().unwrap().to_owned(),
                reading["timestamp"].as_i64().unwrap(),
            )
        })
        .collect();
    let stored = stored(&format!("{base}/station/?page_size=1000")).await;
    drop(restarted);
    DeviceRun {
        produced,
        log,
        stored,
    }
}

/// Every reading the service lists, as (name, timestamp), in id order.
async fn stored(first_page: &str) -> Vec<(String, i64)> {
    let client = reqwest::Client::new();
    let mut readings = Vec::new();
    let mut next = Some(first_page.to_owned());
    while let Some(url) = next {
        let page: Value = client
            .get(url)
            .basic_auth("admin", Some(PASSWORD))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for reading in page["results"].as_array().unwrap() {
            readings.push((
                reading["name"].as_str().unwrap().to_owned(),
                reading["timestamp"].as_i64().unwrap(),
            ));
        }
        next = page["next"].as_str().map(str::to_owned);
    }
    readings
}

/// Asserts the device took `READINGS` distinct readings and each is stored exactly once.
fn assert_each_stored_exactly_once(outcome: &DeviceRun) {
    assert_eq!(outcome.produced.len(), READINGS, "{:#?}", outcome.log);
    let mut counts: BTreeMap<&(String, i64), usize> = BTreeMap::new();
    for reading in &outcome.stored {
        *counts.entry(reading).or_default() += 1;
    }
    let distinct: std::collections::BTreeSet<_> = outcome.produced.iter().collect();
    assert_eq!(
        distinct.len(),
        READINGS,
        "readings have distinct timestamps"
    );
    for reading in &outcome.produced {
        assert_eq!(
            counts.get(reading).copied().unwrap_or(0),
            1,
            "reading {reading:?} is stored once"
        );
    }
    assert_eq!(
        outcome.stored.len(),
        READINGS,
        "nothing but the device's readings is stored"
    );
    assert!(
        outcome
            .log
            .iter()
            .any(|line| line.contains("service unavailable")),
        "the device saw the outage and buffered: {:#?}",
        outcome.log
    );
}

fn database_with_admin() -> TestDatabase {
    let database = TestDatabase::fresh_on(Backend::Sqlite);
    let created = run(
        &database.url,
        &["createsuperuser", "--username", "admin"],
        &format!("{PASSWORD}\n"),
    );
    assert!(created.status.success(), "{}", text(&created.stderr));
    database
}

/// What runs before the token, bulk and idempotency features are merged: basic auth and one
/// reading per request (`--batch-size 1`), through a graceful stop (SIGTERM lets in-flight
/// requests finish, so without idempotency no answer is lost and nothing is sent twice).
#[actix_web::test]
async fn the_device_buffers_through_a_server_restart_and_loses_nothing() {
    let database = database_with_admin();
    let auth = ["--basic".to_owned(), format!("admin:{PASSWORD}")];
    let outcome =
        run_device_through_a_restart(&database, &auth, &["--batch-size", "1"], "-TERM").await;
    assert_each_stored_exactly_once(&outcome);
}

/// Issue 15 as a whole: a write token from `createtoken`, the backlog in bulk with an
/// Idempotency-Key, and a server killed outright (SIGKILL) in the middle, so an answer may be
/// lost after its commit and the retry must be replayed, not duplicated.
#[actix_web::test]
async fn the_device_uploads_every_reading_exactly_once_through_a_killed_server() {
    let database = database_with_admin();
    let token = run(
        &database.url,
        &["createtoken", "--label", "pi-kitchen", "--scope", "write"],
        "",
    );
    assert!(token.status.success(), "{}", text(&token.stderr));
    let key = text(&token.stdout).trim().to_owned();
    assert!(
        !key.is_empty() && !key.contains(char::is_whitespace),
        "{key:?}"
    );
    let auth = ["--token".to_owned(), key];
    let outcome = run_device_through_a_restart(&database, &auth, &[], "-KILL").await;
    assert_each_stored_exactly_once(&outcome);
    assert!(
        outcome
            .log
            .iter()
            .any(|line| line.contains("uploaded a backlog")),
        "the backlog went in bulk: {:#?}",
        outcome.log
    );
}
