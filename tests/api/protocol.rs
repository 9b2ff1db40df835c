//! HTTP around the resource: HEAD and OPTIONS, `Allow`/`Vary`, 405, redirects, unknown paths,
//! content negotiation, the API root, the order of checks, public endpoints and proxy headers.

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    ADMIN, PRETTY_JSON, TestApp, assert_detail, header, json_body, pretty, reading, send,
    spawn_app, spawn_app_with, station_path, text_body, textbook_reading,
};
use station_test_macros::backend_test;

const ROOT_ALLOW: &str = "GET, HEAD, OPTIONS";
const LIST_ALLOW: &str = "GET, POST, HEAD, OPTIONS";
const DETAIL_ALLOW: &str = "GET, PUT, PATCH, DELETE, HEAD, OPTIONS";
const MISSING: &str = "No Station matches the given query.";

/// Asserts a redirect to `target` (a path with its query); a relative or absolute Location will do.
fn assert_redirect(app: &TestApp, response: &Response, status: StatusCode, target: &str) {
    assert_eq!(response.status(), status, "redirect to {target}");
    let location = header(response, "location").expect("a Location header");
    assert!(
        location == target || location == app.url(target),
        "Location {location:?}, expected {target:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// HEAD and OPTIONS

#[backend_test]
async fn head_answers_as_get_would_but_without_a_body() {
    // Arrange
    let app = spawn_app().await;
    app.seed_stations(1).await;
    let cases: [(&str, bool); 7] = [
        ("/", true),
        ("/station/", true),
        ("/station/1/", true),
        ("/station/2/", true),
        ("/station/?page=9", true),
        ("/station/", false),
        ("/healthz", false),
    ];

    for (path, as_admin) in cases {
        let request = |method| {
            if as_admin {
                app.admin(method, path)
            } else {
                app.anonymous(method, path)
            }
        };

        // Act
        let get = send(request(Method::GET)).await;
        let head = send(request(Method::HEAD)).await;

        // Assert
        assert_eq!(head.status(), get.status(), "{path}");
        for name in [
            "content-type",
            "content-length",
            "allow",
            "vary",
            "www-authenticate",
        ] {
            assert_eq!(header(&head, name), header(&get, name), "{path}: {name}");
        }
        assert!(!get.bytes().await.unwrap().is_empty(), "{path}");
        assert!(head.bytes().await.unwrap().is_empty(), "{path}");
    }
}

/// Asserts DRF's `SimpleMetadata` description of the seven fields.
fn assert_field_metadata(fields: &Value) {
    let keys: Vec<&str> = fields
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
            "name",
            "timestamp",
            "temperature",
            "lat",
            "lon"
        ]
    );
    let expected = [
        ("url", "string", false, true),
        ("id", "integer", false, true),
        ("name", "string", true, false),
        ("timestamp", "integer", true, false),
        ("temperature", "float", true, false),
        ("lat", "float", true, false),
        ("lon", "float", true, false),
    ];
    for (field, kind, required, read_only) in expected {
        let meta = &fields[field];
        assert_eq!(meta["type"], kind, "{field}");
        assert_eq!(meta["required"], required, "{field}");
        assert_eq!(meta["read_only"], read_only, "{field}");
        assert!(
            meta["label"]
                .as_str()
                .is_some_and(|label| !label.is_empty()),
            "{field}"
        );
    }
    assert_eq!(fields["name"]["max_length"], 64);
    let bounds = [
        ("timestamp", 0.0, 253_402_300_799.0),
        ("temperature", -273.15, 1000.0),
        ("lat", -90.0, 90.0),
        ("lon", -180.0, 180.0),
    ];
    for (field, min, max) in bounds {
        assert_eq!(fields[field]["min_value"].as_f64(), Some(min), "{field}");
        assert_eq!(fields[field]["max_value"].as_f64(), Some(max), "{field}");
    }
}

/// Asserts the parts of an OPTIONS body shared by every view.
fn assert_metadata_envelope(body: &Value, name: &str) {
    assert_eq!(body["name"], name);
    assert!(
        body["description"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    assert_eq!(body["renders"], json!(["application/json"]));
    assert_eq!(
        body["parses"],
        json!(["application/json", "application/x-www-form-urlencoded"])
    );
}

#[backend_test]
async fn options_on_the_list_describes_the_post_action() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = send(app.admin(Method::OPTIONS, "/station/")).await;

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "allow").as_deref(), Some(LIST_ALLOW));
    let body = json_body(response).await;
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["name", "description", "renders", "parses", "actions"]
    );
    assert_metadata_envelope(&body, "Station List");
    let actions: Vec<&String> = body["actions"].as_object().unwrap().keys().collect();
    assert_eq!(actions, ["POST"]);
    assert_field_metadata(&body["actions"]["POST"]);
}

#[backend_test]
async fn options_on_a_reading_describes_the_put_action() {
    // Arrange
    let app = spawn_app().await;
    app.seed_stations(1).await;

    // Act
    let response = send(app.admin(Method::OPTIONS, "/station/1/")).await;

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "allow").as_deref(), Some(DETAIL_ALLOW));
    let body = json_body(response).await;
    assert_metadata_envelope(&body, "Station Instance");
    let actions: Vec<&String> = body["actions"].as_object().unwrap().keys().collect();
    assert_eq!(actions, ["PUT"]);
    assert_field_metadata(&body["actions"]["PUT"]);
}

#[backend_test]
async fn options_on_a_missing_reading_describes_no_action_as_drf_does() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = send(app.admin(Method::OPTIONS, "/station/1/")).await;

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    let body = json_body(response).await;
    assert_metadata_envelope(&body, "Station Instance");
    assert!(body.get("actions").is_none(), "{body}");
}

#[backend_test]
async fn options_needs_an_admin() {
    // Arrange
    let app = spawn_app().await;
    app.seed_stations(1).await;

    for path in ["/", "/station/", "/station/1/"] {
        // Act
        let anonymous = send(app.anonymous(Method::OPTIONS, path)).await;
        let viewer = send(app.viewer(Method::OPTIONS, path)).await;

        // Assert
        assert_detail(
            anonymous,
            StatusCode::UNAUTHORIZED,
            "Authentication credentials were not provided.",
        )
        .await;
        assert_detail(
            viewer,
            StatusCode::FORBIDDEN,
            "You do not have permission to perform this action.",
        )
        .await;
    }
}

// ---------------------------------------------------------------------------------------------
// Allow, Vary and 405

#[backend_test]
async fn every_api_response_carries_allow_and_vary_accept() {
    // Arrange
    let app = spawn_app().await;
    app.seed_stations(1).await;
    let cases: Vec<(RequestBuilder, StatusCode, &str)> = vec![
        (app.admin(Method::GET, "/"), StatusCode::OK, ROOT_ALLOW),
        (
            app.anonymous(Method::GET, "/"),
            StatusCode::UNAUTHORIZED,
            ROOT_ALLOW,
        ),
        (
            app.admin(Method::DELETE, "/"),
            StatusCode::METHOD_NOT_ALLOWED,
            ROOT_ALLOW,
        ),
        (app.admin(Method::OPTIONS, "/"), StatusCode::OK, ROOT_ALLOW),
        (
            app.admin(Method::GET, "/station/"),
            StatusCode::OK,
            LIST_ALLOW,
        ),
        (
            app.admin(Method::POST, "/station/")
                .json(&textbook_reading()),
            StatusCode::CREATED,
            LIST_ALLOW,
        ),
        (
            app.admin(Method::POST, "/station/").json(&json!({})),
            StatusCode::BAD_REQUEST,
            LIST_ALLOW,
        ),
        (
            app.admin(Method::POST, "/station/")
                .header("content-type", "text/plain")
                .body("hello"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            LIST_ALLOW,
        ),
        (
            app.anonymous(Method::GET, "/station/"),
            StatusCode::UNAUTHORIZED,
            LIST_ALLOW,
        ),
        (
            app.viewer(Method::GET, "/station/"),
            StatusCode::FORBIDDEN,
            LIST_ALLOW,
        ),
        (
            app.admin(Method::PATCH, "/station/"),
            StatusCode::METHOD_NOT_ALLOWED,
            LIST_ALLOW,
        ),
        (
            app.admin(Method::GET, "/station/")
                .header("accept", "text/html"),
            StatusCode::NOT_ACCEPTABLE,
            LIST_ALLOW,
        ),
        (
            app.admin(Method::GET, "/station/?page=9"),
            StatusCode::NOT_FOUND,
            LIST_ALLOW,
        ),
        (
            app.admin(Method::OPTIONS, "/station/"),
            StatusCode::OK,
            LIST_ALLOW,
        ),
        (
            app.admin(Method::GET, "/station/1/"),
            StatusCode::OK,
            DETAIL_ALLOW,
        ),
        (
            app.admin(Method::GET, "/station/99/"),
            StatusCode::NOT_FOUND,
            DETAIL_ALLOW,
        ),
        (
            app.admin(Method::GET, "/station/abc/"),
            StatusCode::NOT_FOUND,
            DETAIL_ALLOW,
        ),
        (
            app.anonymous(Method::PUT, "/station/1/"),
            StatusCode::UNAUTHORIZED,
            DETAIL_ALLOW,
        ),
        (
            app.viewer(Method::DELETE, "/station/1/"),
            StatusCode::FORBIDDEN,
            DETAIL_ALLOW,
        ),
        (
            app.admin(Method::POST, "/station/1/"),
            StatusCode::METHOD_NOT_ALLOWED,
            DETAIL_ALLOW,
        ),
        (
            app.admin(Method::PATCH, "/station/1/")
                .json(&json!({"lat": 100})),
            StatusCode::BAD_REQUEST,
            DETAIL_ALLOW,
        ),
        (
            app.admin(Method::DELETE, "/station/1/"),
            StatusCode::NO_CONTENT,
            DETAIL_ALLOW,
        ),
    ];

    for (request, status, allow) in cases {
        // Act
        let response = send(request).await;

        // Assert
        let what = format!("{} {}", response.url(), response.status());
        assert_eq!(response.status(), status, "{what}");
        assert_eq!(header(&response, "allow").as_deref(), Some(allow), "{what}");
        let vary = header(&response, "vary").unwrap_or_default();
        assert!(
            vary.split(',')
                .any(|v| v.trim().eq_ignore_ascii_case("accept")),
            "{what}: Vary {vary:?}"
        );
    }
}

#[backend_test]
async fn a_method_a_route_does_not_have_is_405_naming_the_method() {
    // Arrange
    let app = spawn_app().await;
    app.seed_stations(1).await;
    let cases = [
        (Method::PATCH, "/station/"),
        (Method::PUT, "/station/"),
        (Method::DELETE, "/station/"),
        (Method::POST, "/station/1/"),
        (Method::POST, "/"),
        (Method::PUT, "/"),
        (Method::from_bytes(b"PURGE").unwrap(), "/station/"),
    ];

    for (method, path) in cases {
        // Act
        let response = send(app.admin(method.clone(), path)).await;

        // Assert
        assert_detail(
            response,
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("Method \"{method}\" not allowed."),
        )
        .await;
    }
}

// ---------------------------------------------------------------------------------------------
// Redirects and unknown paths

#[backend_test]
async fn a_get_without_the_trailing_slash_is_301_keeping_the_query() {
    // Arrange
    let app = spawn_app().await;

    for (method, path, target) in [
        (Method::GET, "/station", "/station/"),
        (Method::GET, "/station?page=2&x=1", "/station/?page=2&x=1"),
        (Method::GET, "/station/1", "/station/1/"),
        (Method::HEAD, "/station", "/station/"),
        (
            Method::HEAD,
            "/station/7?format=json",
            "/station/7/?format=json",
        ),
    ] {
        // Act
        let response = send(app.admin(method, path)).await;

        // Assert
        assert_redirect(&app, &response, StatusCode::MOVED_PERMANENTLY, target);
    }
}

#[backend_test]
async fn other_methods_without_the_trailing_slash_are_308() {
    // Arrange
    let app = spawn_app().await;

    for (method, path, target) in [
        (Method::POST, "/station", "/station/"),
        (Method::POST, "/station?a=b", "/station/?a=b"),
        (Method::PUT, "/station/1", "/station/1/"),
        (Method::PATCH, "/station/1", "/station/1/"),
        (Method::DELETE, "/station/1", "/station/1/"),
        (Method::OPTIONS, "/station", "/station/"),
    ] {
        // Act
        let response = send(app.admin(method, path)).await;

        // Assert
        assert_redirect(&app, &response, StatusCode::PERMANENT_REDIRECT, target);
    }
}

#[backend_test]
async fn a_client_following_the_308_keeps_its_method_and_body() {
    // Arrange: a client that follows redirects, as curl -L and browsers do.
    let app = spawn_app().await;
    let following = reqwest::Client::new();

    // Act
    let created = send(
        following
            .post(app.url("/station"))
            .basic_auth(ADMIN.0, Some(ADMIN.1))
            .json(&textbook_reading()),
    )
    .await;
    let replaced = send(
        following
            .put(app.url("/station/1"))
            .basic_auth(ADMIN.0, Some(ADMIN.1))
            .json(&reading("Replaced")),
    )
    .await;

    // Assert
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(replaced.status(), StatusCode::OK);
    assert_eq!(json_body(replaced).await["name"], "Replaced");
    assert_eq!(app.get_json("/station/1/").await["name"], "Replaced");
}

#[backend_test]
async fn an_unknown_path_is_a_json_404() {
    // Arrange
    let app = spawn_app().await;
    app.seed_stations(1).await;

    for (method, path) in [
        (Method::GET, "/nope"),
        (Method::GET, "/nope/"),
        (Method::GET, "/stations/"),
        (Method::GET, "/station/1/extra/"),
        (Method::POST, "/nope/"),
        (Method::GET, "/station//"),
    ] {
        // Act
        let response = send(app.admin(method, path)).await;

        // Assert
        assert_detail(response, StatusCode::NOT_FOUND, "Not found.").await;
    }
}

// ---------------------------------------------------------------------------------------------
// Content negotiation

#[backend_test]
async fn an_accept_header_without_json_is_406() {
    // Arrange
    let app = spawn_app().await;
    app.seed_stations(1).await;

    for accept in [
        "text/html",
        "application/xml",
        "application/json;q=0",
        "image/*",
    ] {
        for path in ["/", "/station/", "/station/1/"] {
            // Act
            let response = send(app.admin(Method::GET, path).header("accept", accept)).await;

            // Assert
            assert_detail(
                response,
                StatusCode::NOT_ACCEPTABLE,
                "Could not satisfy the request Accept header.",
            )
            .await;
        }
    }
}

#[backend_test]
async fn accept_headers_that_allow_json_are_served() {
    // Arrange
    let app = spawn_app().await;

    for accept in [
        "application/json",
        "*/*",
        "application/*",
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    ] {
        // Act
        let response = send(app.admin(Method::GET, "/station/").header("accept", accept)).await;

        // Assert
        assert_eq!(response.status(), StatusCode::OK, "{accept}");
        assert_eq!(json_body(response).await["count"], 0);
    }
}

#[backend_test]
async fn indent_in_the_accept_header_pretty_prints_with_that_many_spaces() {
    // Arrange
    let app = spawn_app().await;
    app.seed_stations(1).await;

    for (indent, path) in [(4, "/station/1/"), (2, "/station/"), (4, "/")] {
        // Act
        let response = send(
            app.admin(Method::GET, path)
                .header("accept", format!("application/json; indent={indent}")),
        )
        .await;

        // Assert
        assert_eq!(response.status(), StatusCode::OK);
        let text = text_body(response).await;
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(text, pretty(&value, indent), "{path}");
        assert!(
            text.starts_with(&format!("{{\n{}\"", " ".repeat(indent))),
            "{text}"
        );
    }
}

#[backend_test]
async fn error_bodies_are_pretty_printed_too() {
    // Arrange
    let app = spawn_app().await;
    app.seed_stations(1).await;

    // Act
    let missing = send(
        app.admin(Method::GET, "/station/9/")
            .header("accept", PRETTY_JSON),
    )
    .await;
    let anonymous = send(
        app.anonymous(Method::GET, "/station/")
            .header("accept", PRETTY_JSON),
    )
    .await;
    let invalid = send(
        app.admin(Method::PATCH, "/station/1/")
            .header("accept", PRETTY_JSON)
            .json(&json!({"lat": 91, "lon": 181})),
    )
    .await;

    // Assert
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        text_body(missing).await,
        format!("{{\n    \"detail\": \"{MISSING}\"\n}}")
    );
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        text_body(anonymous).await,
        "{\n    \"detail\": \"Authentication credentials were not provided.\"\n}"
    );
    assert_eq!(invalid.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        text_body(invalid).await,
        "{\n    \"lat\": [\n        \"Ensure this value is less than or equal to 90.\"\n    ],\n    \"lon\": [\n        \"Ensure this value is less than or equal to 180.\"\n    ]\n}"
    );
}

#[backend_test]
async fn a_non_integer_indent_is_ignored() {
    // Arrange
    let app = spawn_app().await;
    app.seed_stations(1).await;

    for accept in [
        "application/json; indent=four",
        "application/json; indent=2.5",
        "application/json; indent=-1",
        "application/json; indent=",
    ] {
        // Act
        let response = send(
            app.admin(Method::GET, "/station/1/")
                .header("accept", accept),
        )
        .await;

        // Assert
        assert_eq!(response.status(), StatusCode::OK, "{accept}");
        let text = text_body(response).await;
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(text, value.to_string(), "{accept}");
        assert!(!text.contains('\n'), "{accept}");
    }
}

#[backend_test]
async fn format_json_is_accepted_and_not_copied_into_urls() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let created = send(
        app.admin(Method::POST, "/station/?format=json")
            .json(&textbook_reading()),
    )
    .await;
    let list = send(
        app.admin(Method::GET, "/station/?format=json")
            .header("accept", "text/html"),
    )
    .await;
    let one = app.get_json("/station/1/?format=json").await;
    let root = app.get_json("/?format=json").await;

    // Assert
    assert_eq!(created.status(), StatusCode::CREATED);
    let url = app.url("/station/1/");
    assert_eq!(header(&created, "location"), Some(url.clone()));
    assert_eq!(json_body(created).await["url"], json!(url));
    assert_eq!(list.status(), StatusCode::OK);
    assert_eq!(json_body(list).await["results"][0]["url"], json!(url));
    assert_eq!(one["url"], json!(url));
    assert_eq!(root, json!({"station": app.url("/station/")}));
}

// ---------------------------------------------------------------------------------------------
// The API root

#[backend_test]
async fn the_api_root_links_to_the_station_collection() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app.get("/").await;
    let elsewhere = send(app.admin(Method::GET, "/").header("host", "api.example:81")).await;

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        text_body(response).await,
        format!(r#"{{"station":"{}/station/"}}"#, app.address)
    );
    assert_eq!(
        json_body(elsewhere).await,
        json!({"station": "http://api.example:81/station/"})
    );
}

#[backend_test]
async fn the_api_root_needs_an_admin_like_the_rest() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let anonymous = send(app.anonymous(Method::GET, "/")).await;
    let viewer = send(app.viewer(Method::GET, "/")).await;

    // Assert
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(viewer.status(), StatusCode::FORBIDDEN);
}

// ---------------------------------------------------------------------------------------------
// The order of checks

#[backend_test]
async fn not_acceptable_comes_before_authentication() {
    // Arrange
    let app = spawn_app().await;

    for request in [
        app.anonymous(Method::GET, "/station/"),
        app.anonymous(Method::PATCH, "/station/"),
        app.anonymous(Method::GET, "/station/99/"),
        app.viewer(Method::GET, "/station/"),
        app.anonymous(Method::GET, "/")
            .header("authorization", "Basic !!!"),
    ] {
        // Act
        let response = send(request.header("accept", "text/html")).await;

        // Assert
        assert_detail(
            response,
            StatusCode::NOT_ACCEPTABLE,
            "Could not satisfy the request Accept header.",
        )
        .await;
    }
}

#[backend_test]
async fn an_anonymous_caller_learns_nothing_about_methods_or_ids() {
    // Arrange
    let app = spawn_app().await;
    app.seed_stations(1).await;

    for (method, path) in [
        (Method::PATCH, "/station/"),
        (Method::POST, "/station/1/"),
        (Method::GET, "/station/1/"),
        (Method::GET, "/station/99/"),
        (Method::GET, "/station/abc/"),
        (Method::PUT, "/station/99/"),
        (Method::DELETE, "/station/99/"),
        (Method::GET, "/station/?page=99"),
    ] {
        // Act
        let response = send(
            app.anonymous(method.clone(), path)
                .header("content-type", "text/plain")
                .body("not json"),
        )
        .await;

        // Assert
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path}"
        );
        assert_eq!(
            json_body(response).await,
            json!({"detail": "Authentication credentials were not provided."})
        );
    }
}

#[backend_test]
async fn a_user_who_is_not_staff_is_refused_before_methods_and_ids_are_checked() {
    // Arrange
    let app = spawn_app().await;

    for (method, path) in [
        (Method::PATCH, "/station/"),
        (Method::POST, "/station/1/"),
        (Method::GET, "/station/99/"),
        (Method::PUT, "/station/99/"),
        (Method::GET, "/station/?page=99"),
    ] {
        // Act
        let response = send(app.viewer(method.clone(), path)).await;

        // Assert
        assert_detail(
            response,
            StatusCode::FORBIDDEN,
            "You do not have permission to perform this action.",
        )
        .await;
    }
}

#[backend_test]
async fn method_not_allowed_comes_before_the_lookup() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let missing = send(
        app.admin(Method::POST, "/station/99/")
            .json(&textbook_reading()),
    )
    .await;
    let not_an_id = send(app.admin(Method::POST, "/station/abc/")).await;

    // Assert
    assert_detail(
        missing,
        StatusCode::METHOD_NOT_ALLOWED,
        "Method \"POST\" not allowed.",
    )
    .await;
    assert_detail(
        not_an_id,
        StatusCode::METHOD_NOT_ALLOWED,
        "Method \"POST\" not allowed.",
    )
    .await;
}

#[backend_test]
async fn the_lookup_comes_before_any_body_error_on_put_and_patch() {
    // Arrange
    let app = spawn_app_with(|settings| settings.http.max_body_bytes = 100).await;
    let bodies = [
        ("text/plain", "hello".to_owned()),
        (
            "application/json",
            format!("{{\"name\": \"{}\"}}", "x".repeat(200)),
        ),
        ("application/json", "{".to_owned()),
        ("application/json", "[]".to_owned()),
        ("application/json", r#"{"lat": 1000}"#.to_owned()),
    ];

    for method in [Method::PUT, Method::PATCH] {
        for (content_type, body) in &bodies {
            // Act
            let missing = app
                .send_raw(method.clone(), "/station/99/", content_type, body.clone())
                .await;
            let not_an_id = app
                .send_raw(method.clone(), "/station/abc/", content_type, body.clone())
                .await;

            // Assert
            assert_detail(missing, StatusCode::NOT_FOUND, MISSING).await;
            assert_detail(not_an_id, StatusCode::NOT_FOUND, "Not found.").await;
        }
    }
}

#[backend_test]
async fn body_errors_come_before_validation() {
    // Arrange: each body also has fields that would fail validation.
    let app = spawn_app_with(|settings| settings.http.max_body_bytes = 100).await;
    let station = app.create_station(&reading("Exists")).await;
    let path = station_path(&station);
    let oversized = format!("{{\"lat\": 1000, \"name\": \"{}\"}}", "x".repeat(200));

    for (method, path) in [(Method::POST, "/station/"), (Method::PUT, path.as_str())] {
        // Act
        let unsupported = app
            .send_raw(method.clone(), path, "text/plain", r#"{"lat": 1000}"#)
            .await;
        let too_large = app
            .send_raw(method.clone(), path, "application/json", oversized.clone())
            .await;
        let malformed = app
            .send_raw(method.clone(), path, "application/json", r#"{"lat": 1000,"#)
            .await;

        // Assert
        assert_eq!(unsupported.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(too_large.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
        let body = json_body(malformed).await;
        assert!(body.get("lat").is_none(), "{body}");
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .starts_with("JSON parse error - "),
            "{body}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Error bodies

#[backend_test]
async fn error_bodies_are_json_and_never_carry_internal_details() {
    // Arrange
    let app = spawn_app().await;
    app.seed_stations(1).await;
    let deep = format!("{}{}", "[".repeat(500), "]".repeat(500));
    let requests: Vec<RequestBuilder> = vec![
        app.admin(Method::GET, "/station/99/"),
        app.admin(Method::GET, "/station/9223372036854775807/"),
        app.admin(Method::GET, "/station/-1/"),
        app.admin(Method::GET, "/station/1%27%20OR%201=1/"),
        app.admin(Method::GET, "/station/?page=1%27"),
        app.admin(Method::POST, "/station/")
            .json(&json!({"name": "nul\u{0}char",
            "timestamp": 1, "temperature": 1, "lat": 1, "lon": 1})),
        app.admin(Method::POST, "/station/")
            .header("content-type", "application/json")
            .body(deep),
        app.admin(Method::POST, "/station/")
            .header("content-type", "application/json")
            .body("{\"name\": \"x\"'; DROP TABLE station; --"),
        app.admin(Method::PUT, "/station/1/")
            .json(&json!({"timestamp": "1e400"})),
        app.admin(Method::PATCH, "/station/1/")
            .json(&json!({"lat": "1e400"})),
        app.admin(Method::PATCH, "/station/1/")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(b"name=\xff".to_vec()),
        app.anonymous(Method::GET, "/station/")
            .header("authorization", "Basic !!!"),
        app.admin(Method::DELETE, "/station/"),
        app.admin(Method::GET, "/nope"),
    ];
    let database_location = app
        .database_url
        .split_once("://")
        .map_or(app.database_url.as_str(), |(_, rest)| rest)
        .to_owned();
    let forbidden = [
        "select",
        "insert",
        "update ",
        "delete from",
        "sqlite",
        "postgres",
        "mysql",
        "mariadb",
        "diesel",
        "constraint",
        "panicked",
        "backtrace",
        ".rs:",
        "src/",
        "/tmp",
        "station.db",
    ];

    for request in requests {
        // Act
        let response = send(request).await;

        // Assert
        let what = format!("{} {}", response.url(), response.status());
        assert!(response.status().is_client_error(), "{what}");
        let text = text_body(response).await;
        let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{what}: {text}"));
        assert!(body.is_object(), "{what}: {text}");
        let lower = text.to_lowercase();
        for needle in forbidden {
            assert!(!lower.contains(needle), "{what} leaks {needle:?}: {text}");
        }
        assert!(!text.contains(&database_location), "{what}: {text}");
    }
    assert_eq!(app.all_stations().await.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Public endpoints

#[backend_test]
async fn health_probes_answer_without_credentials() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let live = send(app.anonymous(Method::GET, "/healthz")).await;
    let ready = send(app.anonymous(Method::GET, "/readyz")).await;

    // Assert
    assert_eq!(live.status(), StatusCode::OK);
    assert_eq!(json_body(live).await, json!({"status": "ok"}));
    assert_eq!(ready.status(), StatusCode::OK);
    assert_eq!(json_body(ready).await, json!({"status": "ready"}));
}

/// GETs `/readyz` until it answers `status` (a pool notices a changed database on its next
/// connection), for at most ten seconds; the last answer.
async fn readiness_becomes(app: &TestApp, status: StatusCode) -> StatusCode {
    let mut last = StatusCode::OK;
    for _ in 0..100 {
        last = send(app.anonymous(Method::GET, "/readyz")).await.status();
        if last == status {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    last
}

/// Waits (ten seconds at most) until a read of the list succeeds.
async fn reads_work(app: &TestApp) {
    for _ in 0..100 {
        if app.get("/station/").await.status() == StatusCode::OK {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("reads did not work again within ten seconds");
}

/// Runs `command` with `args`, failing the test when it does not succeed.
fn run(command: &str, args: &[&str]) {
    let status = std::process::Command::new(command)
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("{command}: {e}"));
    assert!(status.success(), "{command} {args:?}: {status}");
}

// Not on MariaDB: its switch (`read_only`) is global, and flipping it would disturb every other
// test running on that server at the same time.
#[actix_web::test]
async fn readiness_fails_while_the_sqlite_file_refuses_writes() {
    crate::helpers::on_backend(
        crate::helpers::Backend::Sqlite,
        readiness_fails_while_the_database_refuses_writes(),
    )
    .await;
}

#[actix_web::test]
#[cfg_attr(
    not(station_test_postgres),
    ignore = "needs a PostgreSQL server: set TEST_POSTGRES_URL (see README, Development)"
)]
async fn readiness_fails_while_postgres_refuses_writes() {
    crate::helpers::on_backend(
        crate::helpers::Backend::Postgres,
        readiness_fails_while_the_database_refuses_writes(),
    )
    .await;
}

async fn readiness_fails_while_the_database_refuses_writes() {
    // Arrange
    let app = spawn_app().await;
    assert_eq!(
        readiness_becomes(&app, StatusCode::OK).await,
        StatusCode::OK
    );
    let backend = crate::helpers::Backend::current();
    let name = app.database_url.rsplit('/').next().unwrap().to_owned();
    let server = backend.server_url().unwrap_or_default();
    // New sessions of the database are read-only; the app's open ones are ended, so its pool
    // opens new ones.
    let (read_only, writable) = (
        format!("ALTER DATABASE {name} SET default_transaction_read_only = on"),
        format!("ALTER DATABASE {name} RESET default_transaction_read_only"),
    );
    let end_sessions = format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    );
    let sqlite_file = app
        .database_url
        .strip_prefix("sqlite://")
        .map(str::to_owned);
    let refuse_writes = |refuse: bool| match backend {
        // Immutable: not even root may open it for writing, as on a read-only mount.
        crate::helpers::Backend::Sqlite => run(
            "chattr",
            &[
                if refuse { "+i" } else { "-i" },
                sqlite_file.as_deref().unwrap(),
            ],
        ),
        crate::helpers::Backend::Postgres | crate::helpers::Backend::Mysql => {
            let statement = if refuse { &read_only } else { &writable };
            crate::databases::run_on_server(backend, &server, statement);
            crate::databases::run_on_server(backend, &server, &end_sessions);
        }
    };

    // Act: each time, once reads work again (the pool has replaced the sessions ended).
    refuse_writes(true);
    reads_work(&app).await;
    let while_read_only = send(app.anonymous(Method::GET, "/readyz")).await.status();
    refuse_writes(false);
    reads_work(&app).await;
    let afterwards = readiness_becomes(&app, StatusCode::OK).await;

    // Assert
    assert_eq!(while_read_only, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(afterwards, StatusCode::OK);
}

#[backend_test]
async fn the_openapi_document_and_swagger_ui_are_public() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let spec = send(app.anonymous(Method::GET, "/api-docs/openapi.json")).await;
    let ui = send(app.anonymous(Method::GET, "/swagger-ui/")).await;

    // Assert
    assert_eq!(spec.status(), StatusCode::OK);
    let document = json_body(spec).await;
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.")),
        "{}",
        document["openapi"]
    );
    assert!(document["paths"].get("/station/").is_some());
    let schemes = document["components"]["securitySchemes"]
        .as_object()
        .expect("security schemes");
    assert!(
        schemes
            .values()
            .any(|scheme| scheme["type"] == "http" && scheme["scheme"] == "basic"),
        "{schemes:?}"
    );
    assert_eq!(ui.status(), StatusCode::OK);
    assert!(
        header(&ui, "content-type").is_some_and(|t| t.starts_with("text/html")),
        "{:?}",
        header(&ui, "content-type")
    );
    assert!(text_body(ui).await.to_lowercase().contains("swagger"));
}

#[backend_test]
async fn errors_outside_the_api_have_json_bodies_too() {
    // Arrange
    let app = spawn_app().await;

    for path in ["/healthz", "/readyz"] {
        // Act
        let response = send(app.anonymous(Method::POST, path)).await;

        // Assert
        assert_eq!(header(&response, "allow").as_deref(), Some("GET, HEAD"));
        assert_detail(
            response,
            StatusCode::METHOD_NOT_ALLOWED,
            "Method \"POST\" not allowed.",
        )
        .await;
    }
    let missing_file = send(app.anonymous(Method::GET, "/swagger-ui/no-such-file.js")).await;
    assert_detail(missing_file, StatusCode::NOT_FOUND, "Not found.").await;
}

// ---------------------------------------------------------------------------------------------
// Proxy headers

/// Sends `request` with the headers a TLS-terminating proxy adds.
fn through_proxy(request: RequestBuilder) -> RequestBuilder {
    request
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "api.example.com")
        .header("x-forwarded-for", "203.0.113.9")
}

#[backend_test]
async fn proxy_headers_name_the_origin_when_the_proxy_is_trusted() {
    // Arrange
    let app = spawn_app_with(|settings| settings.http.trust_proxy = true).await;
    app.seed_stations(10).await;

    // Act
    let created =
        send(through_proxy(app.admin(Method::POST, "/station/")).json(&textbook_reading())).await;
    let list = send(through_proxy(app.admin(Method::GET, "/station/"))).await;
    let root = send(through_proxy(app.admin(Method::GET, "/"))).await;

    // Assert
    let url = "https://api.example.com/station/11/";
    assert_eq!(header(&created, "location").as_deref(), Some(url));
    assert_eq!(json_body(created).await["url"], url);
    let list = json_body(list).await;
    assert_eq!(list["next"], "https://api.example.com/station/?page=2");
    assert_eq!(
        list["results"][0]["url"],
        "https://api.example.com/station/1/"
    );
    assert_eq!(
        json_body(root).await,
        json!({"station": "https://api.example.com/station/"})
    );
}

#[backend_test]
async fn proxy_headers_are_ignored_unless_the_proxy_is_trusted() {
    // Arrange
    let app = spawn_app().await;
    app.seed_stations(10).await;

    // Act
    let created =
        send(through_proxy(app.admin(Method::POST, "/station/")).json(&textbook_reading())).await;
    let list = send(through_proxy(app.admin(Method::GET, "/station/"))).await;

    // Assert
    let url = app.url("/station/11/");
    assert_eq!(header(&created, "location"), Some(url.clone()));
    assert_eq!(json_body(created).await["url"], json!(url));
    let list = json_body(list).await;
    assert_eq!(list["next"], json!(app.url("/station/?page=2")));
    assert_eq!(list["results"][0]["url"], json!(app.url("/station/1/")));
}
