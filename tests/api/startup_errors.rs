//! What an operator sees when the service cannot open its database at start-up: one line that
//! names the target (password hidden) and the cause, at once for errors waiting cannot fix.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use station_test_macros::backend_test;

use crate::helpers::Backend;
use crate::process::{BINARY, text};

/// Longer than any test waits: a start-up that retried a permanent error would hit the watchdog.
const PATIENCE_SECS: &str = "600";

/// Runs `serve` on `database_url` with `checkout_timeout_secs`, logging at `log_level`; returns its standard error once it
/// exits, which it must do within a minute, and by failing.
fn failed_start(database_url: &str, checkout_timeout_secs: &str, log_level: &str) -> String {
    let mut child = Command::new(BINARY)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("DATABASE_URL", database_url)
        .env("STATION_DB_CHECKOUT_TIMEOUT_SECS", checkout_timeout_secs)
        .env("RUST_LOG", log_level)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let watchdog = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if watchdog.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("serve on {database_url} still waiting after a minute");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success(), "serve on {database_url} started");
    text(&output.stderr)
}

/// Asserts `stderr` is one line naming `target` and saying `cause`, with no password and no
/// source paths.
fn assert_one_line(stderr: &str, target: &str, cause: &str) {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    let line = lines[0];
    assert!(line.starts_with("error: cannot connect to "), "{line}");
    assert!(line.contains(target), "{line} should name {target}");
    assert!(line.contains(cause), "{line} should say {cause}");
    for leak in ["hunter2", ".cargo/registry", "r2d2"] {
        assert!(!line.contains(leak), "{line} shows {leak}");
    }
}

/// The server URL with `user:password` and `database` put in.
fn server_url_with(backend: Backend, credentials: &str, database: &str) -> String {
    let server = backend.server_url().unwrap();
    let (scheme, rest) = server.split_once("://").unwrap();
    let host_and_rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let host = host_and_rest.split(['/', '?']).next().unwrap();
    format!("{scheme}://{credentials}@{host}/{database}")
}

#[backend_test]
async fn a_permanent_connection_error_fails_at_once_in_one_line_naming_the_target() {
    let backend = Backend::current();
    let cases: Vec<(String, String, &str)> = match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let not_a_database = dir.path().join("notes.txt");
            std::fs::write(
                &not_a_database,
                "not a database, but long enough to be read as one",
            )
            .unwrap();
            let missing_dir = dir.path().join("missing/station.db");
            let cases = vec![
                (
                    format!("sqlite://{}", missing_dir.display()),
                    format!("the SQLite database {}", missing_dir.display()),
                    "does not exist",
                ),
                (
                    format!("sqlite://{}", dir.path().display()),
                    format!("the SQLite database {}", dir.path().display()),
                    "Is a directory",
                ),
                (
                    format!("sqlite://{}", not_a_database.display()),
                    format!("the SQLite database {}", not_a_database.display()),
                    "file is not a database",
                ),
            ];
            for (url, target, cause) in &cases {
                assert_one_line(&failed_start(url, PATIENCE_SECS, "info"), target, cause);
            }
            return;
        }
        Backend::Postgres => vec![
            (
                server_url_with(backend, "no_such_role:hunter2", "postgres"),
                "no_such_role:***@".to_owned(),
                "role \"no_such_role\" does not exist",
            ),
            (
                server_url_with(backend, "postgres", "no_such_database"),
                "/no_such_database".to_owned(),
                "database \"no_such_database\" does not exist",
            ),
        ],
        Backend::Mysql => vec![
            (
                server_url_with(backend, "no_such_user:hunter2", "test"),
                "no_such_user:***@".to_owned(),
                "Access denied",
            ),
            (
                server_url_with(backend, "root", "no_such_database"),
                "/no_such_database".to_owned(),
                "Unknown database 'no_such_database'",
            ),
        ],
    };
    for (url, target, cause) in &cases {
        assert_one_line(&failed_start(url, PATIENCE_SECS, "info"), target, cause);
    }
}

#[test]
fn a_server_that_refuses_connections_is_waited_for_then_named() {
    for (scheme, cause) in [
        ("postgres", "Connection refused"),
        ("mysql", "Can't connect"),
    ] {
        // A port nothing listens on: bound, then released.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("{scheme}://someone:hunter2@127.0.0.1:{port}/station");
        let stderr = failed_start(&url, "1", "info");
        let (retrying, error): (Vec<&str>, Vec<&str>) =
            stderr.lines().partition(|line| line.contains("retrying"));
        assert_eq!(retrying.len(), 1, "one notice that it waits: {stderr}");
        assert!(!retrying[0].contains("hunter2"), "{stderr}");
        let target = format!("someone:***@127.0.0.1:{port}/station");
        assert_one_line(&error.join("\n"), &target, cause);
    }
}
