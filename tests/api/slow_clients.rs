//! Clients that never finish their request: bodies that never end or trickle in, thousands of
//! them, and more connections than the process may open files.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::json;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

use std::process::Stdio;

use crate::helpers::{ADMIN, TestDatabase, basic_authorization, spawn_app, spawn_app_with};
use crate::process::{BINARY, Server, lines_until, port_of, with_service_environment};
use crate::raw::{authority, raise_open_file_limit, read_until, read_until_closed, send_head};

/// A request whose chunked body starts and never ends, on one of the routes an anonymous client
/// can reach: a health check, the docs, an unknown path, and the API without credentials.
fn never_ending_request(n: usize) -> String {
    let (method, path) = match n % 4 {
        0 => ("GET", "/healthz"),
        1 => ("GET", "/swagger-ui/"),
        2 => ("GET", "/no-such-path/"),
        _ => ("POST", "/station/"),
    };
    format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n5\r\n{{\"a\":\r\n"
    )
}

/// Opens `count` connections, each with a never-ending body, a batch at a time so the listen
/// queue does not overflow.
async fn open_never_ending_requests(authority: &str, count: usize) -> Vec<TcpStream> {
    let mut streams = Vec::with_capacity(count);
    for batch in (0..count).collect::<Vec<_>>().chunks(100) {
        let opened = join_all(
            batch
                .iter()
                .map(|&n| async move { send_head(authority, &never_ending_request(n)).await }),
        )
        .await;
        streams.extend(opened);
    }
    streams
}

#[actix_web::test]
async fn two_thousand_never_ending_bodies_are_answered_and_closed_and_others_are_served() {
    // Arrange
    raise_open_file_limit();
    let app = spawn_app().await;
    let mut streams = open_never_ending_requests(authority(&app.address), 2000).await;

    // Act
    let started = Instant::now();
    let normal = app.client.get(app.url("/healthz")).send().await;
    let normal_took = started.elapsed();
    // Under the 30 s body timeout: a server that only closed them then would fail.
    let received = join_all(
        streams
            .iter_mut()
            .map(|stream| read_until_closed(stream, Duration::from_secs(28))),
    )
    .await;

    // Assert
    assert_eq!(normal.expect("answered").status(), StatusCode::OK);
    assert!(normal_took < Duration::from_secs(5), "took {normal_took:?}");
    let still_open = received.iter().filter(|r| !r.closed).count();
    assert_eq!(still_open, 0, "connections left open after their answer");
    for (n, received) in received.iter().enumerate() {
        let expected = match n % 4 {
            0 | 1 => 200,
            2 => 404,
            _ => 401,
        };
        assert_eq!(received.status(), Some(expected), "{}", received.text());
    }
}

#[actix_web::test]
async fn a_trickled_body_is_cut_off_with_408_at_the_deadline() {
    // Arrange
    let app = spawn_app_with(|settings| settings.http.body_timeout = Duration::from_secs(2)).await;
    let body = json!({"name": "Trickle", "timestamp": 1, "temperature": 1, "lat": 1, "lon": 1})
        .to_string();
    let head = format!(
        "POST /station/ HTTP/1.1\r\nHost: localhost\r\nAuthorization: {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        basic_authorization(ADMIN),
        body.len()
    );
    let mut stream = send_head(authority(&app.address), &head).await;
    let (mut reader, mut writer) = stream.split();

    // Act
    let started = Instant::now();
    let trickle = async {
        for byte in body.as_bytes() {
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    let read = async {
        read_until(&mut reader, Duration::from_secs(10), |bytes| {
            bytes.windows(4).any(|w| w == b"\r\n\r\n") && bytes.ends_with(b"}")
        })
        .await
    };
    let received = tokio::select! {
        received = read => received,
        () = trickle => panic!("the whole body went through"),
    };
    let took = started.elapsed();

    // Assert
    assert_eq!(received.status(), Some(408), "{}", received.text());
    assert!(took < Duration::from_secs(7), "took {took:?}");
    let text = received.text();
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
    assert!(
        text.ends_with(r#"{"detail":"The request was not received in time."}"#),
        "{text}"
    );
    assert_eq!(app.all_stations().await.len(), 0);
}

#[tokio::test]
async fn more_never_ending_bodies_than_open_files_do_not_stop_the_service() {
    // Arrange: the real binary, allowed 256 open files, hard limit included.
    raise_open_file_limit();
    let database = TestDatabase::fresh();
    let mut command = std::process::Command::new("bash");
    with_service_environment(&mut command, &database.url);
    let child = command
        .args([
            "-c",
            r#"ulimit -n 256 && exec "$0" serve --bind 127.0.0.1:0 --workers 2"#,
        ])
        .arg(BINARY)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("server starts");
    let server = Server::of(child);
    let start_up = lines_until(&server.stderr, "station-api listening");
    let port = port_of(start_up.last().expect("the listening line"));
    let limit_line = start_up
        .iter()
        .find(|line| line.contains("connection limit chosen"))
        .expect("the limit is logged")
        .clone();
    let address = format!("127.0.0.1:{port}");

    // Act
    let mut streams = open_never_ending_requests(&address, 600).await;
    let started = Instant::now();
    let normal = reqwest::Client::new()
        .get(format!("http://{address}/healthz"))
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    let normal_took = started.elapsed();
    let received = join_all(
        streams
            .iter_mut()
            .map(|stream| read_until_closed(stream, Duration::from_secs(28))),
    )
    .await;
    let log: Vec<String> = server.stderr.try_iter().collect();

    // Assert
    assert!(limit_line.contains("open_file_limit=256"), "{limit_line}");
    let max_connections: usize = limit_line
        .split_whitespace()
        .find_map(|field| field.strip_prefix("max_connections="))
        .and_then(|n| n.parse().ok())
        .expect("max_connections in the line");
    assert!(max_connections < 256 - 64, "{limit_line}");
    assert_eq!(normal.expect("answered").status(), StatusCode::OK);
    assert!(
        normal_took < Duration::from_secs(10),
        "took {normal_took:?}"
    );
    assert_eq!(received.iter().filter(|r| !r.closed).count(), 0);
    assert!(
        !log.iter().any(|line| line.contains("Too many open files")),
        "{log:#?}"
    );
}
