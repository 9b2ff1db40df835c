//! A process that ends while other threads are opening and closing TLS connections to
//! PostgreSQL must end cleanly. OpenSSL, left to initialise itself inside libpq, registers an
//! exit-time cleanup that freed its state under those threads: about one exit in eight died
//! with "double free or corruption" or a segfault (this suite's own binary did, once, in CI).
//!
//! The test runs this binary again as a child (`--exact` on the test's own name) with
//! `STATION_EXIT_CHILD` set; the child opens pools over TLS on several threads and exits while
//! they work. The parent runs it many times and wants every run to exit 0. Without the fix about
//! one child in thirteen crashed here, so 60 runs miss it about once in a hundred CI runs.

use std::process::Command;
use std::thread;
use std::time::Duration;

use station_api::db::{Database, DatabaseSettings};

use crate::databases::Backend;

const CHILD_MARKER: &str = "STATION_EXIT_CHILD";
const RUNS: usize = 60;

#[test]
#[cfg_attr(
    not(station_test_postgres),
    ignore = "needs a PostgreSQL server: set TEST_POSTGRES_URL (see README, Development)"
)]
fn a_process_exits_cleanly_while_other_threads_use_tls_connections() {
    if let Ok(url) = std::env::var(CHILD_MARKER) {
        churn_connections_then_exit(&url);
    }
    let server_url = Backend::Postgres
        .server_url()
        .expect("TEST_POSTGRES_URL is set");
    let tls_url = with_sslmode_require(&server_url);
    Database::connect(&DatabaseSettings::new(tls_url.clone()))
        .and_then(|database| database.blocking(|conn| conn.server_is_read_only()))
        .expect("the PostgreSQL server takes TLS connections, which this test is about");
    let this_binary = std::env::current_exe().unwrap();
    for run in 1..=RUNS {
        let output = Command::new(&this_binary)
            .args([
                "--exact",
                "exit::a_process_exits_cleanly_while_other_threads_use_tls_connections",
                "--include-ignored",
                "--nocapture",
            ])
            .env(CHILD_MARKER, &tls_url)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "run {run} of {RUNS} ended with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// The child's whole life: threads that keep opening (and closing) TLS connections, and an exit
/// under them.
fn churn_connections_then_exit(url: &str) -> ! {
    for _ in 0..16 {
        let settings = DatabaseSettings {
            pool_size: Some(1),
            ..DatabaseSettings::new(url.to_owned())
        };
        thread::spawn(move || {
            loop {
                // A pool opens its connection on first use. Whether one succeeds at the moment of
                // exit is not the point; that exiting under it is survived is.
                if let Ok(database) = Database::connect(&settings) {
                    let _ = database.blocking(|conn| conn.server_is_read_only());
                }
            }
        });
    }
    thread::sleep(Duration::from_millis(300));
    std::process::exit(0);
}

/// The URL with `sslmode=require`, so the child's connections use TLS whatever the server's
/// default (the local server here accepts TLS; libpq's default, `prefer`, would use it too).
fn with_sslmode_require(url: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}sslmode=require")
}
