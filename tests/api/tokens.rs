//! Device tokens (issue 15): issued by staff at `/tokens/`, sent as `Token <key>` or
//! `Bearer <key>`, scoped, optionally bound to a station and expiring, revoked at once on every
//! instance, stored only hashed, throttled like passwords.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use station_api::auth::token::KeyHash;
use station_api::db::models::TokenRow;
use station_api::db::{station_repository, token_repository};
use station_test_macros::backend_test;

use crate::helpers::{
    TestApp, assert_detail, header, json_body, reading,
    reads_that_find_rows_and_reads_that_find_none, send, spawn_app, spawn_app_with,
};

const INVALID_TOKEN: &str = "Invalid token.";
const FORBIDDEN: &str = "You do not have permission to perform this action.";

/// Issues a token as the admin; its representation and its key.
async fn issue(app: &TestApp, body: Value) -> (Value, String) {
    let response = app.post_json("/tokens/", &body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let token = json_body(response).await;
    let key = token["key"].as_str().expect("a key").to_owned();
    (token, key)
}

/// Revokes the `issued` token as the admin: 204, with an empty body.
async fn revoke(app: &TestApp, issued: &Value) {
    let revoked = send(app.admin(Method::DELETE, &format!("/tokens/{}/", issued["id"]))).await;
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    assert_eq!(revoked.text().await.unwrap(), "");
}

/// A request to `address` + `path` carrying `Authorization: Token <key>`.
fn with_token(
    app: &TestApp,
    address: &str,
    method: Method,
    path: &str,
    key: &str,
) -> RequestBuilder {
    app.client
        .request(method, format!("{address}{path}"))
        .header("authorization", format!("Token {key}"))
}

/// A request to this app carrying `Authorization: Token <key>`.
fn token(app: &TestApp, method: Method, path: &str, key: &str) -> RequestBuilder {
    with_token(app, &app.address, method, path, key)
}

/// Every stored token.
fn stored_tokens(app: &TestApp) -> Vec<TokenRow> {
    app.database.blocking(token_repository::list).unwrap()
}

/// How many readings are stored.
fn reading_count(app: &TestApp) -> i64 {
    app.database
        .blocking(station_repository::count_all)
        .unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[backend_test]
async fn a_write_token_adds_readings_and_a_read_token_reads_them_with_either_header() {
    let app = spawn_app().await;
    let (_, writer) = issue(&app, json!({"label": "pi", "scopes": ["write"]})).await;
    let (_, reader) = issue(&app, json!({"label": "screen", "scopes": ["read"]})).await;

    // Act: DRF's `Token` header, and `Bearer`.
    let created =
        send(token(&app, Method::POST, "/station/", &writer).json(&reading("Oslo"))).await;
    let bearer = send(
        app.anonymous(Method::POST, "/station/")
            .bearer_auth(&writer)
            .json(&reading("Oslo")),
    )
    .await;

    // Assert
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(bearer.status(), StatusCode::CREATED);
    let station = json_body(created).await;
    let path = format!("/station/{}/", station["id"]);
    let read = send(token(&app, Method::GET, &path, &reader)).await;
    assert_eq!(read.status(), StatusCode::OK);
    assert_eq!(json_body(read).await, station);
    let list = send(app.anonymous(Method::GET, "/station/").bearer_auth(&reader)).await;
    assert_eq!(json_body(list).await["count"], 2);
    let head = send(token(&app, Method::HEAD, &path, &reader)).await;
    assert_eq!(head.status(), StatusCode::OK);
    let root = send(token(&app, Method::GET, "/", &reader)).await;
    assert_eq!(root.status(), StatusCode::OK);

    // A scope not held is 403, and a refused write writes nothing.
    let read_only_write =
        send(token(&app, Method::POST, "/station/", &reader).json(&reading("Oslo"))).await;
    assert_detail(read_only_write, StatusCode::FORBIDDEN, FORBIDDEN).await;
    let write_only_read = send(token(&app, Method::GET, &path, &writer)).await;
    assert_detail(write_only_read, StatusCode::FORBIDDEN, FORBIDDEN).await;
    assert_eq!(reading_count(&app), 2);
}

#[backend_test]
async fn a_token_never_changes_or_deletes_readings_nor_manages_tokens() {
    let app = spawn_app().await;
    let station = app.create_station(&reading("Oslo")).await;
    let path = format!("/station/{}/", station["id"]);
    let (issued, key) = issue(&app, json!({"label": "pi", "scopes": ["read", "write"]})).await;
    let token_path = format!("/tokens/{}/", issued["id"]);

    for (method, target) in [
        (Method::PUT, path.as_str()),
        (Method::PATCH, path.as_str()),
        (Method::DELETE, path.as_str()),
        (Method::GET, "/tokens/"),
        (Method::POST, "/tokens/"),
        (Method::GET, token_path.as_str()),
        (Method::DELETE, token_path.as_str()),
    ] {
        let response =
            send(token(&app, method.clone(), target, &key).json(&reading("Changed"))).await;
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "{method} {target}"
        );
        assert_eq!(json_body(response).await, json!({"detail": FORBIDDEN}));
    }

    assert_eq!(app.get_json(&path).await, station);
    assert_eq!(stored_tokens(&app).len(), 1);
}

#[backend_test]
async fn every_malformed_token_header_gets_drfs_401_and_nothing_is_written() {
    let app = spawn_app().await;
    let cases: [(&[u8], &str); 6] = [
        (b"Token", "Invalid token header. No credentials provided."),
        (
            b"Bearer   ",
            "Invalid token header. No credentials provided.",
        ),
        (
            b"Token abc def",
            "Invalid token header. Token string should not contain spaces.",
        ),
        (
            b"Token \xff\xfe",
            "Invalid token header. Token string should not contain invalid characters.",
        ),
        (
            b"Token 0123456789abcdef0123456789abcdef01234567",
            INVALID_TOKEN,
        ),
        (b"bearer not-a-key", INVALID_TOKEN),
    ];

    for (value, detail) in cases {
        let response = send(
            app.anonymous(Method::POST, "/station/")
                .header(
                    "authorization",
                    reqwest::header::HeaderValue::from_bytes(value).unwrap(),
                )
                .json(&reading("Oslo")),
        )
        .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{value:?}");
        assert!(header(&response, "www-authenticate").is_some());
        assert_eq!(json_body(response).await, json!({ "detail": detail }));
    }
    assert_eq!(reading_count(&app), 0);
}

#[backend_test]
async fn a_bound_token_writes_reads_and_lists_only_its_station() {
    let app = spawn_app().await;
    let elsewhere = app.create_station(&reading("Garage")).await;
    let (issued, key) = issue(
        &app,
        json!({"label": "pi-kitchen", "scopes": ["read", "write"], "station": "Kitchen"}),
    )
    .await;
    assert_eq!(issued["station"], "Kitchen");

    // Act
    let other = send(token(&app, Method::POST, "/station/", &key).json(&reading("Garage"))).await;
    let own = send(token(&app, Method::POST, "/station/", &key).json(&reading("Kitchen"))).await;

    // Assert
    assert_detail(
        other,
        StatusCode::FORBIDDEN,
        "This token may only write readings of station \"Kitchen\".",
    )
    .await;
    assert_eq!(own.status(), StatusCode::CREATED);
    let own = json_body(own).await;
    assert_eq!(
        reading_count(&app),
        2,
        "the refused reading was not written"
    );

    let hidden = send(token(
        &app,
        Method::GET,
        &format!("/station/{}/", elsewhere["id"]),
        &key,
    ))
    .await;
    assert_detail(
        hidden,
        StatusCode::NOT_FOUND,
        "No Station matches the given query.",
    )
    .await;
    let visible = send(token(
        &app,
        Method::GET,
        &format!("/station/{}/", own["id"]),
        &key,
    ))
    .await;
    assert_eq!(visible.status(), StatusCode::OK);

    let list = json_body(send(token(&app, Method::GET, "/station/", &key)).await).await;
    assert_eq!(list["count"], 1);
    assert_eq!(list["results"], json!([own]));
    let asked_for_other =
        json_body(send(token(&app, Method::GET, "/station/?name=Garage", &key)).await).await;
    assert_eq!(asked_for_other["count"], 0);
    let cursor_page =
        json_body(send(token(&app, Method::GET, "/station/?cursor=", &key)).await).await;
    assert_eq!(cursor_page["results"], json!([own]));
    // The admin still sees everything.
    assert_eq!(app.get_json("/station/").await["count"], 2);
}

#[backend_test]
async fn an_expired_token_is_refused() {
    let app = spawn_app().await;
    let (issued, key) = issue(
        &app,
        json!({"label": "short", "scopes": ["read"], "expires": now() + 2}),
    )
    .await;
    assert!(issued["expires"].is_i64());
    let before = send(token(&app, Method::GET, "/station/", &key)).await;
    assert_eq!(before.status(), StatusCode::OK);

    tokio::time::sleep(Duration::from_millis(3100)).await;

    let after = send(token(&app, Method::GET, "/station/", &key)).await;
    assert_detail(after, StatusCode::UNAUTHORIZED, INVALID_TOKEN).await;
    // Another instance, which never saw it, refuses it too.
    let other = app.another_instance().await;
    let elsewhere = send(with_token(&app, &other, Method::GET, "/station/", &key)).await;
    assert_detail(elsewhere, StatusCode::UNAUTHORIZED, INVALID_TOKEN).await;
}

#[backend_test]
async fn a_revoked_token_is_refused_at_once_on_every_instance() {
    let app = spawn_app().await;
    let other = app.another_instance().await;
    let (issued, key) = issue(&app, json!({"label": "pi", "scopes": ["read", "write"]})).await;
    // Both instances have seen the token, so both remember it.
    for address in [&app.address, &other] {
        for _ in 0..2 {
            let response = send(with_token(&app, address, Method::GET, "/station/", &key)).await;
            assert_eq!(response.status(), StatusCode::OK);
        }
    }

    // Act
    revoke(&app, &issued).await;

    // Assert
    for address in [&app.address, &other] {
        let read = send(with_token(&app, address, Method::GET, "/station/", &key)).await;
        assert_detail(read, StatusCode::UNAUTHORIZED, INVALID_TOKEN).await;
        // A route that makes no query of its own is checked all the same.
        let root = send(with_token(&app, address, Method::GET, "/", &key)).await;
        assert_detail(root, StatusCode::UNAUTHORIZED, INVALID_TOKEN).await;
        let write =
            send(with_token(&app, address, Method::POST, "/station/", &key).json(&reading("Oslo")))
                .await;
        assert_detail(write, StatusCode::UNAUTHORIZED, INVALID_TOKEN).await;
    }
    assert_eq!(reading_count(&app), 0);
}

#[backend_test]
async fn a_revoked_token_is_refused_by_reads_that_find_rows_and_reads_that_find_none() {
    let app = spawn_app().await;
    let id = app.create_station(&reading("Oslo")).await["id"].to_string();
    let (issued, key) = issue(&app, json!({"label": "pi", "scopes": ["read"]})).await;
    let reads = reads_that_find_rows_and_reads_that_find_none(&id, "Oslo");
    // Twice each: the first use reads the token in full, later ones check it with the read.
    for (path, answered) in reads.iter().chain(&reads) {
        let before = send(token(&app, Method::GET, path, &key)).await;
        assert_eq!(before.status(), *answered, "{path}");
    }

    // Act
    revoke(&app, &issued).await;

    // Assert
    for (path, _) in &reads {
        let after = send(token(&app, Method::GET, path, &key)).await;
        assert_detail(after, StatusCode::UNAUTHORIZED, INVALID_TOKEN).await;
    }
}

#[backend_test]
async fn last_used_is_written_once_and_not_again_within_the_minute() {
    let app = spawn_app().await;
    let (issued, key) = issue(&app, json!({"label": "pi", "scopes": ["read"]})).await;
    assert_eq!(issued["last_used"], Value::Null);
    let other = app.another_instance().await;

    // Act: a first use, recorded off the request.
    let first = send(token(&app, Method::GET, "/station/", &key)).await;
    assert_eq!(first.status(), StatusCode::OK);
    let mut recorded = None;
    for _ in 0..100 {
        recorded = stored_tokens(&app)[0].last_used;
        if recorded.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let recorded = recorded.expect("last_used recorded after the first use");
    assert!((now() - recorded).abs() <= 5);

    // More uses, a second later, here and on another instance.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for address in [&app.address, &other, &app.address] {
        let response = send(with_token(&app, address, Method::GET, "/station/", &key)).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Assert: not rewritten, and shown to staff.
    assert_eq!(stored_tokens(&app)[0].last_used, Some(recorded));
    let shown = app.get_json(&format!("/tokens/{}/", issued["id"])).await;
    assert_eq!(shown["last_used"], recorded);
}

#[backend_test]
async fn failed_token_attempts_count_toward_the_failed_auth_throttle() {
    let app = spawn_app_with(|settings| {
        settings.auth.throttle.burst = 3;
        settings.auth.throttle.refill_every = Duration::from_secs(60);
    })
    .await;
    let (_, key) = issue(&app, json!({"label": "pi", "scopes": ["read"]})).await;
    // A valid token, once known, is not held up by others' failures.
    let known = send(token(&app, Method::GET, "/station/", &key)).await;
    assert_eq!(known.status(), StatusCode::OK);

    for _ in 0..3 {
        let wrong = send(token(&app, Method::GET, "/station/", "wrong-key")).await;
        assert_detail(wrong, StatusCode::UNAUTHORIZED, INVALID_TOKEN).await;
    }
    let throttled = send(token(&app, Method::GET, "/station/", "another-wrong-key")).await;

    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(header(&throttled, "retry-after").is_some());
    assert!(
        json_body(throttled).await["detail"]
            .as_str()
            .unwrap()
            .starts_with("Request was throttled.")
    );
    // Passwords share the allowance.
    let password = send(
        app.anonymous(Method::GET, "/station/")
            .basic_auth("admin", Some("wrong password")),
    )
    .await;
    assert_eq!(password.status(), StatusCode::TOO_MANY_REQUESTS);
    let still_known = send(token(&app, Method::GET, "/station/", &key)).await;
    assert_eq!(still_known.status(), StatusCode::OK);
}

#[backend_test]
async fn staff_issue_list_read_and_revoke_tokens_and_keys_are_shown_only_once() {
    let app = spawn_app().await;

    // Act: issue 11 tokens.
    let (first, key) = issue(
        &app,
        json!({"label": " pi-kitchen ", "scopes": ["write"], "station": "Kitchen",
               "expires": null}),
    )
    .await;
    for n in 2..=11 {
        issue(
            &app,
            json!({"label": format!("device-{n}"), "scopes": ["read"]}),
        )
        .await;
    }

    // Assert: the representation, keys in order, plus the key this once.
    let keys: Vec<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "url",
            "id",
            "label",
            "scopes",
            "station",
            "prefix",
            "created",
            "last_used",
            "expires",
            "key"
        ]
    );
    let id = first["id"].as_i64().unwrap();
    assert_eq!(first["url"], app.url(&format!("/tokens/{id}/")));
    assert_eq!(first["label"], "pi-kitchen");
    assert_eq!(first["scopes"], json!(["write"]));
    assert_eq!(first["prefix"], &key[..8]);
    assert!((now() - first["created"].as_i64().unwrap()).abs() <= 5);
    assert!(key.len() >= 32, "at least 128 random bits");

    let page = app.get_json("/tokens/").await;
    assert_eq!(page["count"], 11);
    assert_eq!(page["results"].as_array().unwrap().len(), 10);
    assert_eq!(page["next"], app.url("/tokens/?page=2"));
    let mut expected = first.clone();
    expected.as_object_mut().unwrap().remove("key");
    assert_eq!(page["results"][0], expected);
    let second = app.get_json("/tokens/?page=2").await;
    assert_eq!(second["results"].as_array().unwrap().len(), 1);
    assert_eq!(second["previous"], app.url("/tokens/"));
    assert_detail(
        app.get("/tokens/?page=3").await,
        StatusCode::NOT_FOUND,
        "Invalid page.",
    )
    .await;
    let detail = app.get_json(&format!("/tokens/{id}/")).await;
    assert_eq!(detail, expected);

    // Stored only hashed: no column holds the key.
    let stored = stored_tokens(&app);
    assert_eq!(stored.len(), 11);
    assert_eq!(stored[0].key_hash, KeyHash::of(&key).as_ref());
    assert!(!format!("{stored:?}").contains(&key));

    // Revoked: gone, and a second revocation is 404.
    let revoked = send(app.admin(Method::DELETE, &format!("/tokens/{id}/"))).await;
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    let gone = app.get(&format!("/tokens/{id}/")).await;
    assert_detail(
        gone,
        StatusCode::NOT_FOUND,
        "No Token matches the given query.",
    )
    .await;
    let again = send(app.admin(Method::DELETE, &format!("/tokens/{id}/"))).await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    assert_detail(
        app.get("/tokens/abc/").await,
        StatusCode::NOT_FOUND,
        "Not found.",
    )
    .await;
    assert_eq!(app.get_json("/tokens/").await["count"], 10);
}

#[backend_test]
async fn token_management_is_for_staff_and_behaves_like_the_other_routes() {
    let app = spawn_app().await;

    let anonymous = send(app.anonymous(Method::GET, "/tokens/")).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let viewer = send(
        app.viewer(Method::POST, "/tokens/")
            .json(&json!({"label": "x", "scopes": ["read"]})),
    )
    .await;
    assert_detail(viewer, StatusCode::FORBIDDEN, FORBIDDEN).await;
    let put = send(app.admin(Method::PUT, "/tokens/")).await;
    assert_detail(
        put,
        StatusCode::METHOD_NOT_ALLOWED,
        "Method \"PUT\" not allowed.",
    )
    .await;
    let patch = send(app.admin(Method::PATCH, "/tokens/1/")).await;
    assert_eq!(patch.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        header(&patch, "allow").unwrap(),
        "GET, DELETE, HEAD, OPTIONS"
    );
    let html = send(
        app.admin(Method::GET, "/tokens/")
            .header("accept", "text/html"),
    )
    .await;
    assert_eq!(html.status(), StatusCode::NOT_ACCEPTABLE);
    let options = send(app.admin(Method::OPTIONS, "/tokens/")).await;
    assert_eq!(options.status(), StatusCode::OK);
    assert_eq!(
        header(&options, "allow").unwrap(),
        "GET, POST, HEAD, OPTIONS"
    );
    let metadata = json_body(options).await;
    assert_eq!(metadata["name"], "Token List");
    assert_eq!(metadata["actions"]["POST"]["label"]["max_length"], 64);
    let empty = app.get_json("/tokens/").await;
    assert_eq!(
        empty,
        json!({"count": 0, "next": null, "previous": null, "results": []})
    );
    assert!(stored_tokens(&app).is_empty());
}

#[backend_test]
async fn bad_token_requests_get_drfs_400_and_nothing_is_stored() {
    let app = spawn_app().await;
    let past = now() - 10;
    let cases = [
        (
            json!({}),
            json!({"label": ["This field is required."], "scopes": ["This field is required."]}),
        ),
        (
            json!({"label": "  ", "scopes": [], "station": "", "expires": past}),
            json!({"label": ["This field may not be blank."],
                   "scopes": ["This selection may not be empty."],
                   "station": ["This field may not be blank."],
                   "expires": ["Ensure this value is in the future."]}),
        ),
        (
            json!({"label": "x".repeat(65), "scopes": "write", "station": "s".repeat(65),
                   "expires": "tomorrow"}),
            json!({"label": ["Ensure this field has no more than 64 characters."],
                   "scopes": ["Expected a list of items but got type \"str\"."],
                   "station": ["Ensure this field has no more than 64 characters."],
                   "expires": ["A valid integer is required."]}),
        ),
        (
            json!({"label": null, "scopes": ["read", "admin"]}),
            json!({"label": ["This field may not be null."],
                   "scopes": ["\"admin\" is not a valid choice."]}),
        ),
        (
            json!(["label"]),
            json!({"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}),
        ),
    ];

    for (body, errors) in cases {
        let response = app.post_json("/tokens/", &body).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(json_body(response).await, errors, "{body}");
    }
    let malformed = app
        .send_raw(Method::POST, "/tokens/", "application/json", "{\"label\":")
        .await;
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    let text = app
        .send_raw(Method::POST, "/tokens/", "text/plain", "label=x")
        .await;
    assert_eq!(text.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(stored_tokens(&app).is_empty());
}

#[backend_test]
async fn a_bound_tokens_bulk_upload_with_another_stations_reading_writes_nothing() {
    let app = spawn_app().await;
    let (_, key) = issue(
        &app,
        json!({"label": "pi-kitchen", "scopes": ["write"], "station": "Kitchen"}),
    )
    .await;
    let mut backlog: Vec<Value> = (0..50).map(|_| reading("Kitchen")).collect();
    backlog.push(reading("Garage"));
    let csv = "name,timestamp,temperature,lat,lon\n\
               Kitchen,1700000000,21.5,59.91,10.75\n\
               Garage,1700000010,21.5,59.91,10.75\n";

    // Act
    let json_upload = send(token(&app, Method::POST, "/station/", &key).json(&backlog)).await;
    let csv_upload = send(
        token(&app, Method::POST, "/station/", &key)
            .header("content-type", "text/csv")
            .body(csv),
    )
    .await;

    // Assert
    for response in [json_upload, csv_upload] {
        assert_detail(
            response,
            StatusCode::FORBIDDEN,
            "This token may only write readings of station \"Kitchen\".",
        )
        .await;
    }
    assert_eq!(
        reading_count(&app),
        0,
        "nothing of either upload was written"
    );
    backlog.pop();
    let own = send(token(&app, Method::POST, "/station/", &key).json(&backlog)).await;
    assert_eq!(own.status(), StatusCode::CREATED);
    assert_eq!(reading_count(&app), 50);
}

#[backend_test]
async fn idempotency_keys_of_a_token_are_its_own() {
    let app = spawn_app().await;
    let (_, first) = issue(&app, json!({"label": "pi-1", "scopes": ["write"]})).await;
    let (_, second) = issue(&app, json!({"label": "pi-2", "scopes": ["write"]})).await;
    let post = |key: &str, name: &str| {
        token(&app, Method::POST, "/station/", key)
            .header("idempotency-key", "batch-0001")
            .json(&json!([reading(name)]))
    };

    // Act: the same key from two devices, then a retry by the first.
    let from_first = send(post(&first, "Kitchen")).await;
    let from_second = send(post(&second, "Garage")).await;
    let retry = send(post(&first, "Kitchen")).await;

    // Assert: two uploads ran; the retry replayed the first device's answer.
    assert_eq!(from_first.status(), StatusCode::CREATED);
    assert_eq!(header(&from_first, "idempotent-replayed"), None);
    assert_eq!(from_second.status(), StatusCode::CREATED);
    assert_eq!(header(&from_second, "idempotent-replayed"), None);
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(
        header(&retry, "idempotent-replayed"),
        Some("true".to_owned())
    );
    assert_eq!(json_body(from_first).await, json_body(retry).await);
    assert_eq!(reading_count(&app), 2);
}
