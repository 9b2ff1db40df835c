//! Every request has an id: the client's `X-Request-Id` when it is sane, a new one otherwise. It
//! comes back in the response, and every log line the request writes names it, in text and in
//! JSON logs.

use reqwest::{Method, StatusCode};

use crate::helpers::{TestDatabase, header, send, spawn_app};
use crate::process::{Server, lines_until, start_server_with, wait_for};

#[actix_web::test]
async fn a_sane_request_id_is_echoed_and_any_other_is_replaced_by_a_new_one() {
    let app = spawn_app().await;

    let sent = send(
        app.anonymous(Method::GET, "/healthz")
            .header("x-request-id", "trace-42.a_b"),
    )
    .await;
    assert_eq!(
        header(&sent, "x-request-id").as_deref(),
        Some("trace-42.a_b")
    );

    for (request_id, why) in [
        (None, "none sent"),
        (Some("two words"), "a space"),
        (Some(&*"x".repeat(129)), "too long"),
    ] {
        let mut request = app.anonymous(Method::GET, "/station/");
        if let Some(id) = request_id {
            request = request.header("x-request-id", id);
        }
        let response = send(request).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let given = header(&response, "x-request-id").expect(why);
        assert_eq!(given.len(), 16, "{why}: {given}");
        assert!(
            given.bytes().all(|b| b.is_ascii_hexdigit()),
            "{why}: {given}"
        );
    }
    let first = header(
        &send(app.anonymous(Method::GET, "/healthz")).await,
        "x-request-id",
    );
    let second = header(
        &send(app.anonymous(Method::GET, "/healthz")).await,
        "x-request-id",
    );
    assert_ne!(first, second);
}

/// Starts `serve` with `--log-format FORMAT`, logging at INFO.
fn server_logging(database_url: &str, format: &str) -> Server {
    start_server_with(database_url, &["--log-format", format])
}

#[actix_web::test]
async fn each_log_line_of_a_request_names_its_id_in_text_logs() {
    let database = TestDatabase::fresh();
    let server = server_logging(&database.url, "text");

    let response = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/station/", server.port()))
        .header("x-request-id", "text-log-7")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let line = lines_until(&server.stderr, "path=/station/").pop().unwrap();
    assert!(
        line.contains(r#" request{id=text-log-7}: station_api::api::request_log: request "#),
        "{line}"
    );
    assert!(line.contains("status=401"), "{line}");
}

#[actix_web::test]
async fn json_logs_are_one_object_a_line_with_the_request_span() {
    let database = TestDatabase::fresh();
    let server = server_logging(&database.url, "json");

    let response = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/healthz", server.port()))
        .header("x-request-id", "json-log-9")
        .send()
        .await
        .unwrap();

    assert!(response.status().is_success());
    let line = wait_for(&server.stderr, "/healthz").expect("the request's line");
    let event: serde_json::Value = serde_json::from_str(&line).expect("a JSON object");
    assert_eq!(event["level"], "INFO", "{line}");
    assert_eq!(event["message"], "request", "{line}");
    assert_eq!(event["path"], "/healthz", "{line}");
    assert_eq!(event["status"], 200, "{line}");
    assert_eq!(event["span"]["name"], "request", "{line}");
    assert_eq!(event["span"]["id"], "json-log-9", "{line}");
}
