//! Conditional requests: `ETag` on a reading and a list page, `If-None-Match` → 304, and
//! `If-Match` on PUT, PATCH and DELETE → 412 when the reading changed meanwhile (no lost update).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use station_test_macros::backend_test;

use crate::bulk::stored;
use crate::helpers::{ADMIN, TestApp, assert_detail, header, reading, spawn_app};

const CHANGED: &str =
    "The reading has changed since it was read: If-Match does not match its ETag.";

/// Creates a reading; its path.
async fn create(app: &TestApp, name: &str) -> String {
    let created = app.create_station(&reading(name)).await;
    let url = created["url"].as_str().unwrap();
    url.trim_start_matches(&app.address).to_owned()
}

/// `method` on `path` at `address` as the admin, with `headers`.
async fn send(
    app: &TestApp,
    address: &str,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app
        .client
        .request(method, format!("{address}{path}"))
        .basic_auth(ADMIN.0, Some(ADMIN.1));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

async fn etag_of(app: &TestApp, path: &str) -> String {
    let response = app.get(path).await;
    assert_eq!(response.status(), StatusCode::OK);
    header(&response, "etag").expect("an ETag")
}

#[backend_test]
async fn a_current_copy_of_a_reading_or_a_page_is_304_without_a_body() {
    let app = spawn_app().await;
    let path = create(&app, "Oslo").await;
    let second = app.another_instance().await;

    for target in [
        path.as_str(),
        "/station/",
        "/station/?ordering=-temperature",
    ] {
        let etag = etag_of(&app, target).await;
        let weak = format!("W/{}", etag.trim_start_matches("W/"));

        for copies in [etag.as_str(), weak.as_str(), "\"other\", ", "*"] {
            let copies = copies.replace(", ", &format!(", {etag}"));
            let response = send(
                &app,
                &app.address,
                Method::GET,
                target,
                &[("If-None-Match", &copies)],
                None,
            )
            .await;

            assert_eq!(
                response.status(),
                StatusCode::NOT_MODIFIED,
                "{target} {copies}"
            );
            assert_eq!(header(&response, "etag").as_deref(), Some(etag.as_str()));
            assert!(response.bytes().await.unwrap().is_empty());
        }
        let stale = send(
            &app,
            &app.address,
            Method::GET,
            target,
            &[("If-None-Match", "\"stale\"")],
            None,
        )
        .await;
        assert_eq!(stale.status(), StatusCode::OK);
    }
    // A reading's ETag is its stored version: every instance gives the same.
    let from_second = send(&app, &second, Method::GET, &path, &[], None).await;
    assert_eq!(
        header(&from_second, "etag"),
        Some(etag_of(&app, &path).await)
    );
}

#[backend_test]
async fn etags_change_with_the_reading_and_with_the_page() {
    let app = spawn_app().await;
    let path = create(&app, "Oslo").await;
    let reading_before = etag_of(&app, &path).await;
    let page_before = etag_of(&app, "/station/").await;
    assert!(reading_before.starts_with('"'), "strong: {reading_before}");
    assert!(page_before.starts_with("W/\""), "weak: {page_before}");

    let patched = send(
        &app,
        &app.address,
        Method::PATCH,
        &path,
        &[],
        Some(json!({"temperature": 30.5})),
    )
    .await;
    assert_eq!(patched.status(), StatusCode::OK);
    let reading_after = header(&patched, "etag").unwrap();

    assert_ne!(reading_after, reading_before);
    assert_eq!(etag_of(&app, &path).await, reading_after);
    assert_ne!(etag_of(&app, "/station/").await, page_before);
    create(&app, "Bergen").await;
    let page_later = etag_of(&app, "/station/").await;
    assert_ne!(page_later, page_before);
}

#[backend_test]
async fn if_match_with_a_stale_etag_is_412_and_changes_nothing() {
    let app = spawn_app().await;
    let path = create(&app, "Oslo").await;
    let first = etag_of(&app, &path).await;
    let replaced = send(
        &app,
        &app.address,
        Method::PUT,
        &path,
        &[("If-Match", &first)],
        Some(reading("Oslo v2")),
    )
    .await;
    assert_eq!(replaced.status(), StatusCode::OK);
    let second = header(&replaced, "etag").unwrap();
    let weak_current = format!("W/{second}");

    for (method, body) in [
        (Method::PUT, Some(reading("Lost"))),
        (Method::PATCH, Some(json!({"name": "Lost"}))),
        (Method::DELETE, None),
    ] {
        for stale in [first.as_str(), weak_current.as_str()] {
            let response = send(
                &app,
                &app.address,
                method.clone(),
                &path,
                &[("If-Match", stale)],
                body.clone(),
            )
            .await;
            assert_detail(response, StatusCode::PRECONDITION_FAILED, CHANGED).await;
        }
    }
    assert_eq!(app.get_json(&path).await["name"], "Oslo v2");

    let deleted = send(
        &app,
        &app.address,
        Method::DELETE,
        &path,
        &[("If-Match", &format!("\"x\", {second}"))],
        None,
    )
    .await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let gone = send(
        &app,
        &app.address,
        Method::DELETE,
        &path,
        &[("If-Match", "*")],
        None,
    )
    .await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
}

#[backend_test]
async fn two_clients_changing_the_same_version_at_once_one_wins_one_gets_412() {
    let app = spawn_app().await;
    let path = create(&app, "Oslo").await;
    let second = app.another_instance().await;
    for round in 0..5 {
        let etag = etag_of(&app, &path).await;
        let condition = [("If-Match", etag.as_str())];
        let (a, b) = tokio::join!(
            send(
                &app,
                &app.address,
                Method::PATCH,
                &path,
                &condition,
                Some(json!({"temperature": f64::from(round)})),
            ),
            send(
                &app,
                &second,
                Method::PATCH,
                &path,
                &condition,
                Some(json!({"temperature": f64::from(round) + 0.5})),
            ),
        );
        let mut statuses = [a.status(), b.status()];
        statuses.sort();

        assert_eq!(
            statuses,
            [StatusCode::OK, StatusCode::PRECONDITION_FAILED],
            "round {round}"
        );
    }
}

#[backend_test]
async fn malformed_conditional_headers_are_400_and_change_nothing() {
    let app = spawn_app().await;
    let path = create(&app, "Oslo").await;
    let bad_if_match = "If-Match must be \"*\" or a comma-separated list of entity tags such as \
                        \"5d41402abc4b\".";
    let bad_if_none_match = bad_if_match.replace("If-Match", "If-None-Match");

    for value in ["abc", "\"open", "W/abc", "*, \"a\"", ",", "\"a b\""] {
        for (method, body) in [
            (Method::PUT, Some(reading("Changed"))),
            (Method::PATCH, Some(json!({"name": "Changed"}))),
            (Method::DELETE, None),
        ] {
            let response = send(
                &app,
                &app.address,
                method,
                &path,
                &[("If-Match", value)],
                body,
            )
            .await;
            assert_detail(response, StatusCode::BAD_REQUEST, bad_if_match).await;
        }
        for target in [path.as_str(), "/station/"] {
            let response = send(
                &app,
                &app.address,
                Method::GET,
                target,
                &[("If-None-Match", value)],
                None,
            )
            .await;
            assert_detail(response, StatusCode::BAD_REQUEST, &bad_if_none_match).await;
        }
    }
    assert_eq!(stored(&app), 1);
    assert_eq!(app.get_json(&path).await["name"], "Oslo");
}
