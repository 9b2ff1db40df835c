//! CORS (`--cors-origin`): off by default; listed origins get preflights answered without
//! credentials and answers they may read, credentials included; others get no CORS headers.

use reqwest::{Method, StatusCode};
use station_test_macros::backend_test;

use crate::helpers::{TestApp, assert_detail, header, reading, spawn_app, spawn_app_with};
use crate::process::{run, text};

const APP: &str = "https://app.example.com";
const OTHER: &str = "https://evil.example.net";

async fn with_origins(origins: &[&str]) -> TestApp {
    let origins: Vec<String> = origins.iter().map(|&origin| origin.to_owned()).collect();
    spawn_app_with(move |settings| settings.http.cors_origins = origins).await
}

/// Asserts `response` lets a script of `origin` read it, credentials included.
fn assert_admits_with_credentials(response: &reqwest::Response, origin: &str) {
    assert_eq!(
        header(response, "access-control-allow-origin").as_deref(),
        Some(origin)
    );
    assert_eq!(
        header(response, "access-control-allow-credentials").as_deref(),
        Some("true")
    );
}

/// A browser's preflight for a POST from `origin` with credentials, a body and a key.
async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.anonymous(Method::OPTIONS, "/station/")
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization,content-type,idempotency-key,if-match",
        )
        .send()
        .await
        .unwrap()
}

#[backend_test]
async fn without_cors_origins_no_cors_header_is_ever_sent() {
    let app = spawn_app().await;

    let read = app
        .admin(Method::GET, "/station/")
        .header("Origin", APP)
        .send()
        .await
        .unwrap();
    let preflight = preflight(&app, APP).await;

    assert_eq!(read.status(), StatusCode::OK);
    assert_eq!(header(&read, "access-control-allow-origin"), None);
    // Not a preflight the service knows of: OPTIONS is an admin's, as any other request.
    assert_eq!(preflight.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header(&preflight, "access-control-allow-origin"), None);
}

#[backend_test]
async fn a_listed_origin_gets_its_preflight_answered_and_may_read_with_credentials() {
    let app = with_origins(&[APP, "http://127.0.0.1:3000"]).await;

    let answer = preflight(&app, APP).await;

    assert_eq!(answer.status(), StatusCode::OK, "no credentials needed");
    assert_admits_with_credentials(&answer, APP);
    let methods = header(&answer, "access-control-allow-methods").unwrap();
    assert!(
        methods.contains("POST") && methods.contains("DELETE"),
        "{methods}"
    );
    let headers = header(&answer, "access-control-allow-headers")
        .unwrap()
        .to_lowercase();
    for needed in [
        "authorization",
        "idempotency-key",
        "if-match",
        "if-none-match",
    ] {
        assert!(headers.contains(needed), "{needed}: {headers}");
    }
    assert!(header(&answer, "access-control-max-age").is_some());

    let created = app
        .admin(Method::POST, "/station/")
        .header("Origin", APP)
        .json(&reading("Cors"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_admits_with_credentials(&created, APP);
    let exposed = header(&created, "access-control-expose-headers")
        .unwrap()
        .to_lowercase();
    for readable in ["location", "retry-after", "etag"] {
        assert!(exposed.contains(readable), "{readable}: {exposed}");
    }
    assert!(
        header(&created, "vary")
            .unwrap()
            .to_lowercase()
            .contains("origin")
    );

    // A refusal is readable too, so the app can tell the user to log in.
    let refused = app
        .anonymous(Method::GET, "/station/")
        .header("Origin", APP)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(&refused, "access-control-allow-origin").as_deref(),
        Some(APP)
    );
}

#[backend_test]
async fn an_origin_not_listed_gets_no_cors_headers_and_its_preflight_is_a_json_400() {
    let app = with_origins(&[APP]).await;

    let read = app
        .admin(Method::GET, "/station/")
        .header("Origin", OTHER)
        .send()
        .await
        .unwrap();
    assert_eq!(
        read.status(),
        StatusCode::OK,
        "curl and servers are not browsers"
    );
    // Without Access-Control-Allow-Origin a browser keeps the answer from the script (whatever
    // else is sent).
    assert_eq!(header(&read, "access-control-allow-origin"), None);

    assert_detail(
        preflight(&app, OTHER).await,
        StatusCode::BAD_REQUEST,
        "Origin is not allowed to make this request.",
    )
    .await;
}

#[backend_test]
async fn a_wildcard_admits_any_origin_but_never_with_credentials() {
    let app = with_origins(&["*"]).await;

    let answer = preflight(&app, OTHER).await;
    let read = app
        .admin(Method::GET, "/station/")
        .header("Origin", OTHER)
        .send()
        .await
        .unwrap();

    assert_eq!(answer.status(), StatusCode::OK);
    for response in [&answer, &read] {
        assert_eq!(
            header(response, "access-control-allow-origin").as_deref(),
            Some("*")
        );
        assert_eq!(header(response, "access-control-allow-credentials"), None);
    }
}

#[test]
fn an_origin_that_is_not_one_is_refused_at_start() {
    for bad in ["app.example.com", "https://app.example.com/path"] {
        let output = run("sqlite::memory:", &["serve", "--cors-origin", bad], "");
        let error = text(&output.stderr);

        assert_eq!(output.status.code(), Some(2), "{error}");
        assert!(error.contains("is not an origin"), "{error}");
    }
}
