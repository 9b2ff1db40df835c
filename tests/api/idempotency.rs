//! `Idempotency-Key`: a retry gets the first answer again and writes nothing; another request
//! under the key is 422; a key in use is 409; it holds across instances; expired keys are pruned.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use station_api::accounts::Role;
use station_api::db::DbConnection;
use station_test_macros::backend_test;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::bulk::{count_rows, stored};
use crate::helpers::{
    ADMIN, TestApp, assert_detail, basic_authorization, header, reading, spawn_app, spawn_app_with,
    text_body,
};
use crate::process::start_server_with;

/// POSTs `body` as JSON to `/station/` on `address` as the admin, with `key`.
async fn post_with_key(app: &TestApp, address: &str, key: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(format!("{address}/station/"))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .expect("request sent")
}

/// A request's status, `Idempotent-Replayed` and `Location` headers, and body, exactly as sent.
async fn answer(
    response: reqwest::Response,
) -> (StatusCode, Option<String>, Option<String>, String) {
    let status = response.status();
    let replayed = header(&response, "idempotent-replayed");
    let location = header(&response, "location");
    (status, replayed, location, text_body(response).await)
}

#[backend_test]
async fn a_retry_gets_the_same_answer_byte_for_byte_and_writes_nothing() {
    let app = spawn_app().await;
    let bulk = json!([reading("a"), reading("b")]);

    for (key, body) in [("single-1", reading("One")), ("bulk-1", bulk)] {
        let before = stored(&app);
        let (status, replayed, location, first) =
            answer(post_with_key(&app, &app.address, key, &body).await).await;
        let retry = answer(post_with_key(&app, &app.address, key, &body).await).await;

        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(replayed, None);
        assert_eq!(
            retry,
            (
                status,
                Some("true".to_owned()),
                location.clone(),
                first.clone()
            )
        );
        assert_eq!(location.is_some(), body.is_object());
        let written = if body.is_array() { 2 } else { 1 };
        assert_eq!(stored(&app), before + written);
    }
}

#[backend_test]
async fn the_same_key_with_another_request_is_422_and_writes_nothing() {
    let app = spawn_app().await;
    post_with_key(&app, &app.address, "k", &reading("First")).await;

    let other_body = post_with_key(&app, &app.address, "k", &reading("Second")).await;
    let other_path = app
        .admin(Method::POST, "/station")
        .header("Idempotency-Key", "k")
        .json(&reading("First"))
        .send()
        .await
        .unwrap();

    assert_detail(
        other_body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "This Idempotency-Key was already used with a different request.",
    )
    .await;
    // The unslashed path is redirected (308) before any key is looked at.
    assert_eq!(other_path.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(stored(&app), 1);
}

#[backend_test]
async fn a_malformed_key_is_400_and_writes_nothing() {
    let app = spawn_app().await;

    for key in ["", "has space", &"k".repeat(256), "caf\u{e9}"] {
        let response = app
            .admin(Method::POST, "/station/")
            .header("Idempotency-Key", key.as_bytes())
            .json(&reading("x"))
            .send()
            .await
            .unwrap();

        assert_detail(
            response,
            StatusCode::BAD_REQUEST,
            "Idempotency-Key must be 1 to 255 visible ASCII characters.",
        )
        .await;
    }
    assert_eq!(stored(&app), 0);
    let longest = post_with_key(&app, &app.address, &"k".repeat(255), &reading("x")).await;
    assert_eq!(longest.status(), StatusCode::CREATED);
}

#[backend_test]
async fn keys_belong_to_their_caller() {
    let app = spawn_app().await;
    app.add_user("other", "other-password", Role::Staff);
    post_with_key(&app, &app.address, "shared", &reading("Admin's")).await;

    let response = app
        .anonymous(Method::POST, "/station/")
        .basic_auth("other", Some("other-password"))
        .header("Idempotency-Key", "shared")
        .json(&reading("Other's"))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(header(&response, "idempotent-replayed"), None);
    assert_eq!(stored(&app), 2);
}

/// Starts a POST with `key` on `address` whose body arrives only in part: the request is
/// admitted and stays running until [`finish_held`] sends the rest.
async fn hold_open(address: &str, key: &str, body: &str) -> (tokio::net::TcpStream, String) {
    let authority = address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(authority).await.unwrap();
    let head = format!(
        "POST /station/ HTTP/1.1\r\nHost: {authority}\r\nAuthorization: {}\r\n\
         Content-Type: application/json\r\nIdempotency-Key: {key}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        basic_authorization(ADMIN),
        body.len()
    );
    let (first, rest) = body.split_at(body.len() / 2);
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(first.as_bytes()).await.unwrap();
    // Time for the server to admit the request and claim the key.
    tokio::time::sleep(Duration::from_millis(500)).await;
    (stream, rest.to_owned())
}

/// Sends the rest of a held request's body; returns the raw response.
async fn finish_held((mut stream, rest): (tokio::net::TcpStream, String)) -> String {
    stream.write_all(rest.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[backend_test]
async fn the_same_key_while_the_first_request_runs_is_409_on_any_instance() {
    let app = spawn_app().await;
    let second = app.another_instance().await;
    let body = reading("Slow").to_string();
    let held = hold_open(&app.address, "busy", &body).await;

    for address in [&app.address, &second] {
        let response = post_with_key(&app, address, "busy", &reading("Slow")).await;

        assert_detail(
            response,
            StatusCode::CONFLICT,
            "A request with this Idempotency-Key is still being processed.",
        )
        .await;
    }
    assert_eq!(stored(&app), 0);
    let first = finish_held(held).await;
    assert!(first.starts_with("HTTP/1.1 201"), "{first}");
    let retry = post_with_key(&app, &second, "busy", &reading("Slow")).await;
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(
        header(&retry, "idempotent-replayed").as_deref(),
        Some("true")
    );
    assert_eq!(stored(&app), 1);
}

#[backend_test]
async fn a_request_that_outlasts_the_claim_lease_keeps_its_key() {
    let app = spawn_app_with(|settings| {
        settings.idempotency.claim_lease = Duration::from_millis(400);
    })
    .await;
    let body = reading("Slow").to_string();
    let held = hold_open(&app.address, "long", &body).await;
    // Well past the lease: only the instance's renewals keep the claim.
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let duplicate = post_with_key(&app, &app.address, "long", &reading("Slow")).await;

    assert_detail(
        duplicate,
        StatusCode::CONFLICT,
        "A request with this Idempotency-Key is still being processed.",
    )
    .await;
    let first = finish_held(held).await;
    assert!(first.starts_with("HTTP/1.1 201"), "{first}");
    assert_eq!(stored(&app), 1);
}

#[backend_test]
async fn a_request_cut_short_by_a_graceful_stop_gives_its_key_up() {
    let app = spawn_app().await;
    let server = start_server_with(&app.database_url, &["--shutdown-timeout-secs", "1"]);
    let address = format!("http://127.0.0.1:{}", server.port());
    let body = reading("Cut").to_string();
    let held = hold_open(&address, "cut-short", &body).await;
    let busy = post_with_key(&app, &app.address, "cut-short", &reading("Cut")).await;
    assert_eq!(busy.status(), StatusCode::CONFLICT);

    // The body never completes: the stop's timeout cuts the request short.
    let stopped = tokio::task::spawn_blocking(move || server.signal_and_wait("-TERM"))
        .await
        .unwrap();
    drop(held);
    let retry = post_with_key(&app, &app.address, "cut-short", &reading("Cut")).await;

    assert!(stopped.success(), "{stopped}");
    assert_eq!(
        retry.status(),
        StatusCode::CREATED,
        "not held until the lease ends"
    );
    assert_eq!(header(&retry, "idempotent-replayed"), None);
    assert_eq!(stored(&app), 1);
}

#[backend_test]
async fn an_answer_is_replayed_by_another_instance_and_after_a_restart() {
    let app = spawn_app().await;
    let body = json!([reading("a"), reading("b"), reading("c")]);
    let first = answer(post_with_key(&app, &app.address, "k", &body).await).await;
    // Started after the answer was stored: like the service restarted, it knows only the database.
    let restarted = app.another_instance().await;

    let retry = answer(post_with_key(&app, &restarted, "k", &body).await).await;

    assert_eq!(retry.0, StatusCode::CREATED);
    assert_eq!(retry.1.as_deref(), Some("true"));
    assert_eq!(retry.3, first.3);
    assert_eq!(stored(&app), 3);
}

#[backend_test]
async fn a_4xx_answer_is_stored_but_one_given_before_the_body_was_read_is_not() {
    let app = spawn_app_with(|settings| settings.http.max_body_bytes = 200).await;
    let mut bad = reading("Bad");
    bad["lat"] = json!(100);

    let first = answer(post_with_key(&app, &app.address, "bad", &bad).await).await;
    let retry = answer(post_with_key(&app, &app.address, "bad", &bad).await).await;
    let fixed = post_with_key(&app, &app.address, "bad", &reading("Bad")).await;

    assert_eq!(first.0, StatusCode::BAD_REQUEST);
    assert_eq!(
        retry,
        (first.0, Some("true".to_owned()), None, first.3.clone())
    );
    assert_eq!(fixed.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let mut too_large = reading("Large");
    too_large["padding"] = json!("x".repeat(300));
    let refused = post_with_key(&app, &app.address, "large", &too_large).await;
    let then = post_with_key(&app, &app.address, "large", &reading("Large")).await;

    assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(then.status(), StatusCode::CREATED);
    assert_eq!(header(&then, "idempotent-replayed"), None);
    assert_eq!(stored(&app), 1);
}

/// Makes the database refuse readings named `Boom` (a failure the service cannot foresee, so a
/// 500), or stop refusing them.
fn refuse_boom(app: &TestApp, refuse: bool) {
    app.database
        .blocking(move |conn| {
            use diesel::connection::SimpleConnection as _;
            let statement = match (&*conn, refuse) {
                (DbConnection::Sqlite(_), true) => {
                    "CREATE TRIGGER boom BEFORE INSERT ON station WHEN NEW.name = 'Boom' \
                     BEGIN SELECT RAISE(ABORT, 'boom'); END;"
                }
                (DbConnection::Postgres(_), true) => {
                    "ALTER TABLE station ADD CONSTRAINT boom CHECK (name <> 'Boom') NOT VALID"
                }
                (DbConnection::Mysql(_), true) => {
                    "CREATE TRIGGER boom BEFORE INSERT ON station FOR EACH ROW \
                     IF NEW.name = 'Boom' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'boom'; \
                     END IF"
                }
                (DbConnection::Postgres(_), false) => "ALTER TABLE station DROP CONSTRAINT boom",
                (DbConnection::Sqlite(_) | DbConnection::Mysql(_), false) => "DROP TRIGGER boom",
            };
            conn.batch_execute(statement)
        })
        .unwrap();
}

#[backend_test]
async fn a_5xx_answer_is_not_stored_so_a_retry_runs_again() {
    let app = spawn_app().await;
    refuse_boom(&app, true);

    let failed = post_with_key(&app, &app.address, "boom", &reading("Boom")).await;
    refuse_boom(&app, false);
    let retry = post_with_key(&app, &app.address, "boom", &reading("Boom")).await;

    assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(header(&retry, "idempotent-replayed"), None);
    assert_eq!(stored(&app), 1);
}

#[backend_test]
async fn a_claim_left_by_a_crashed_instance_holds_the_key_only_until_its_lease_ends() {
    let app = spawn_app().await;
    // What an instance that died mid-request leaves: a claim with no answer, leased 1 s more.
    let lease_until = station_api::api::idempotency::now_ms() + 1000;
    app.database
        .blocking(move |conn| {
            use diesel::connection::SimpleConnection as _;
            conn.batch_execute(&format!(
                "INSERT INTO idempotency_keys (caller, idempotency_key, claim, expires_at) \
                 VALUES ('user:admin', 'orphan', 'dead', {lease_until})"
            ))
        })
        .unwrap();

    let during = post_with_key(&app, &app.address, "orphan", &reading("Late")).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let after = post_with_key(&app, &app.address, "orphan", &reading("Late")).await;

    assert_eq!(during.status(), StatusCode::CONFLICT);
    assert_eq!(after.status(), StatusCode::CREATED);
    assert_eq!(stored(&app), 1);
}

#[backend_test]
async fn expired_keys_are_pruned_in_the_background_and_free_again() {
    let app = spawn_app_with(|settings| {
        settings.idempotency.ttl = Duration::from_millis(400);
    })
    .await;
    post_with_key(&app, &app.address, "short", &reading("First")).await;
    assert_eq!(count_rows(&app, "idempotency_keys"), 1);

    let mut remaining = 1;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        remaining = count_rows(&app, "idempotency_keys");
        if remaining == 0 {
            break;
        }
    }

    assert_eq!(remaining, 0, "no request came, yet the expired key is gone");
    let reused = post_with_key(&app, &app.address, "short", &reading("Second")).await;
    assert_eq!(reused.status(), StatusCode::CREATED);
    assert_eq!(stored(&app), 2);
}
