//! Requests actix-http's parser rejects before our code sees them: answered 400 with the
//! contract's JSON body, logged as the client's fault (WARN, rate-limited), never as ours (ERROR).

use std::time::Duration;

use crate::helpers::TestDatabase;
use crate::process::{lines_until, start_server};
use crate::raw::{read_until_closed, send_head};

const MALFORMED: [&str; 3] = [
    "GARBAGE\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: localhost\r\nBad Header\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: localhost\r\nContent-Length: abc\r\n\r\n",
];

#[actix_web::test]
async fn malformed_requests_get_400_and_a_few_warnings_but_no_error_in_the_log() {
    // Arrange
    let database = TestDatabase::fresh();
    let server = start_server(&database.url);
    let authority = format!("127.0.0.1:{}", server.port());

    // Act
    let mut statuses = Vec::new();
    let mut bodies = Vec::new();
    for n in 0..30 {
        let mut stream = send_head(&authority, MALFORMED[n % MALFORMED.len()]).await;
        let received = read_until_closed(&mut stream, Duration::from_secs(5)).await;
        statuses.push(received.status());
        bodies.push(received.text());
    }
    // A request logged after them marks where their lines end.
    let healthy = reqwest::get(format!("http://{authority}/healthz"))
        .await
        .unwrap();
    let log = lines_until(&server.stderr, "path=/healthz");

    // Assert
    assert!(statuses.iter().all(|s| *s == Some(400)), "{statuses:?}");
    assert!(healthy.status().is_success());
    for answer in &bodies {
        let lower = answer.to_ascii_lowercase();
        assert!(
            lower.contains("content-type: application/json\r\n"),
            "{answer}"
        );
        assert!(
            answer.ends_with("\r\n\r\n{\"detail\":\"Malformed request.\"}"),
            "{answer}"
        );
    }
    let errors: Vec<&String> = log.iter().filter(|l| l.contains(" ERROR ")).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let warnings = log
        .iter()
        .filter(|l| l.contains(" WARN ") && l.contains("parse error"))
        .count();
    assert!(
        (1..=station_api::telemetry::CLIENT_ERRORS_PER_WINDOW as usize).contains(&warnings),
        "{warnings} warnings in {log:#?}"
    );
}

#[actix_web::test]
async fn a_request_head_too_large_gets_431_with_a_json_body() {
    // Arrange
    let database = TestDatabase::fresh();
    let server = start_server(&database.url);
    let authority = format!("127.0.0.1:{}", server.port());
    let headers = "X-Filler: 0123456789abcdef\r\n".repeat(4000);

    // Act
    let mut stream = send_head(
        &authority,
        &format!("GET /healthz HTTP/1.1\r\nHost: localhost\r\n{headers}\r\n"),
    )
    .await;
    let received = read_until_closed(&mut stream, Duration::from_secs(5)).await;

    // Assert
    assert_eq!(received.status(), Some(431), "{}", received.text());
    assert!(
        received
            .text()
            .ends_with("\r\n\r\n{\"detail\":\"Request header fields too large.\"}"),
        "{}",
        received.text()
    );
}
