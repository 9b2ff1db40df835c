//! The Input section of the contract: every rule and message, body formats, size limits, and that
//! nothing invalid ever reaches the stored data.

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    ADMIN, TestApp, assert_detail, basic_authorization, json_body, reading, spawn_app,
    spawn_app_with, station_path, text_body, textbook_reading,
};
use station_test_macros::backend_test;

const FIELDS: [&str; 5] = ["name", "timestamp", "temperature", "lat", "lon"];

/// Asserts a 400 and returns its JSON body.
async fn bad_request(response: Response) -> Value {
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    json_body(response).await
}

/// POSTs the textbook reading with `field` set to `value`, and returns the 400 body.
async fn errors_with(app: &TestApp, field: &str, value: Value) -> Value {
    let mut body = textbook_reading();
    body[field] = value;
    bad_request(app.post_json("/station/", &body).await).await
}

/// POSTs the textbook reading with `field` set to `value`, asserting a 201; returns the reading.
async fn accepted_with(app: &TestApp, field: &str, value: Value) -> Value {
    let mut body = textbook_reading();
    body[field] = value.clone();
    let response = app.post_json("/station/", &body).await;
    assert_eq!(response.status(), StatusCode::CREATED, "{field} = {value}");
    json_body(response).await
}

/// `{field: [message]}`
fn one_error(field: &str, message: &str) -> Value {
    json!({ field: [message] })
}

#[backend_test]
async fn every_missing_field_is_required_and_reported_in_field_order() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app.post_json("/station/", &json!({})).await;

    // Assert
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        text_body(response).await,
        r#"{"name":["This field is required."],"timestamp":["This field is required."],"temperature":["This field is required."],"lat":["This field is required."],"lon":["This field is required."]}"#
    );
}

#[backend_test]
async fn every_blank_field_may_not_be_blank() {
    // Arrange
    let app = spawn_app().await;

    for blank in ["", "   ", "\t\n"] {
        for field in FIELDS {
            // Act
            let errors = errors_with(&app, field, json!(blank)).await;

            // Assert
            assert_eq!(
                errors,
                one_error(field, "This field may not be blank."),
                "{field} = {blank:?}"
            );
        }
    }
}

#[backend_test]
async fn every_null_field_may_not_be_null() {
    // Arrange
    let app = spawn_app().await;

    for field in FIELDS {
        // Act
        let errors = errors_with(&app, field, Value::Null).await;

        // Assert
        assert_eq!(
            errors,
            one_error(field, "This field may not be null."),
            "{field}"
        );
    }
}

#[backend_test]
async fn a_name_that_is_not_a_string_is_refused() {
    // Arrange
    let app = spawn_app().await;

    for value in [json!(true), json!(["Oslo"]), json!({"name": "Oslo"})] {
        // Act
        let errors = errors_with(&app, "name", value.clone()).await;

        // Assert
        assert_eq!(errors, one_error("name", "Not a valid string."), "{value}");
    }
}

#[backend_test]
async fn a_name_of_64_unicode_characters_is_accepted_and_65_is_refused() {
    // Arrange: multi-byte characters, so a byte count would get it wrong.
    let app = spawn_app().await;

    for character in ["a", "é", "東", "🌡"] {
        // Act
        let created = accepted_with(&app, "name", json!(character.repeat(64))).await;
        let errors = errors_with(&app, "name", json!(character.repeat(65))).await;

        // Assert
        assert_eq!(created["name"], json!(character.repeat(64)));
        assert_eq!(
            errors,
            one_error("name", "Ensure this field has no more than 64 characters."),
            "{character}"
        );
    }
}

#[backend_test]
async fn names_are_trimmed_before_they_are_checked_and_stored() {
    // Arrange
    let app = spawn_app().await;
    let padded = format!("  {}  ", "x".repeat(64));

    // Act
    let created = accepted_with(&app, "name", json!(padded)).await;

    // Assert
    assert_eq!(created["name"], json!("x".repeat(64)));
    assert_eq!(app.get_json(&station_path(&created)).await, created);
}

#[backend_test]
async fn timestamps_from_0_to_253402300799_are_accepted() {
    // Arrange
    let app = spawn_app().await;

    for (value, stored) in [
        (json!(0), 0_i64),
        (json!(253_402_300_799_i64), 253_402_300_799),
        (json!("0"), 0),
        (json!("253402300799"), 253_402_300_799),
    ] {
        // Act
        let created = accepted_with(&app, "timestamp", value).await;

        // Assert
        assert_eq!(created["timestamp"], json!(stored));
    }
}

#[backend_test]
async fn timestamps_outside_their_bounds_are_refused() {
    // Arrange
    let app = spawn_app().await;
    let cases = [
        (
            json!(-1),
            "Ensure this value is greater than or equal to 0.",
        ),
        (
            json!("-1"),
            "Ensure this value is greater than or equal to 0.",
        ),
        (
            json!(253_402_300_800_i64),
            "Ensure this value is less than or equal to 253402300799.",
        ),
        (
            json!("99999999999999999999999"),
            "Ensure this value is less than or equal to 253402300799.",
        ),
    ];

    for (value, message) in cases {
        // Act
        let errors = errors_with(&app, "timestamp", value.clone()).await;

        // Assert
        assert_eq!(errors, one_error("timestamp", message), "{value}");
    }
}

#[backend_test]
async fn a_timestamp_that_is_not_an_integer_is_refused() {
    // Arrange
    let app = spawn_app().await;

    for value in [
        json!(1.5),
        json!("1.5"),
        json!("abc"),
        json!("NaN"),
        json!("Infinity"),
        json!(true),
        json!([1]),
    ] {
        // Act
        let errors = errors_with(&app, "timestamp", value.clone()).await;

        // Assert
        assert_eq!(
            errors,
            one_error("timestamp", "A valid integer is required."),
            "{value}"
        );
    }
}

#[backend_test]
async fn measurements_at_their_bounds_are_accepted() {
    // Arrange
    let app = spawn_app().await;
    let cases = [
        ("temperature", json!(-273.15), -273.15),
        ("temperature", json!(1000), 1000.0),
        ("temperature", json!("-273.15"), -273.15),
        ("lat", json!(-90), -90.0),
        ("lat", json!(90), 90.0),
        ("lon", json!(-180), -180.0),
        ("lon", json!("180"), 180.0),
    ];

    for (field, value, stored) in cases {
        // Act
        let created = accepted_with(&app, field, value).await;

        // Assert
        assert_eq!(created[field], json!(stored), "{field}");
    }
}

#[backend_test]
async fn measurements_beyond_their_bounds_are_refused_with_the_bound() {
    // Arrange
    let app = spawn_app().await;
    let cases = [
        (
            "temperature",
            json!(-273.16),
            "greater than or equal to -273.15",
        ),
        (
            "temperature",
            json!("-300"),
            "greater than or equal to -273.15",
        ),
        ("temperature", json!(1000.01), "less than or equal to 1000"),
        ("lat", json!(-90.000_001), "greater than or equal to -90"),
        ("lat", json!(90.5), "less than or equal to 90"),
        ("lon", json!(-180.5), "greater than or equal to -180"),
        ("lon", json!("181"), "less than or equal to 180"),
    ];

    for (field, value, bound) in cases {
        // Act
        let errors = errors_with(&app, field, value.clone()).await;

        // Assert
        assert_eq!(
            errors,
            one_error(field, &format!("Ensure this value is {bound}.")),
            "{field} = {value}"
        );
    }
}

#[backend_test]
async fn measurements_that_are_not_finite_numbers_are_refused() {
    // Arrange
    let app = spawn_app().await;
    let values = [
        json!("NaN"),
        json!("nan"),
        json!("Infinity"),
        json!("-Infinity"),
        json!("inf"),
        json!("1e999"),
        json!("abc"),
        json!("1,5"),
        json!(true),
        json!([1]),
    ];

    for field in ["temperature", "lat", "lon"] {
        for value in &values {
            // Act
            let errors = errors_with(&app, field, value.clone()).await;

            // Assert
            assert_eq!(
                errors,
                one_error(field, "A valid number is required."),
                "{field} = {value}"
            );
        }
    }
}

#[backend_test]
async fn a_nan_literal_is_not_json() {
    // Arrange
    let app = spawn_app().await;
    let body = r#"{"name": "x", "timestamp": 1, "temperature": NaN, "lat": 1, "lon": 1}"#;

    // Act
    let response = app
        .send_raw(Method::POST, "/station/", "application/json", body)
        .await;

    // Assert
    let detail = bad_request(response).await["detail"].clone();
    assert!(
        detail.as_str().unwrap().starts_with("JSON parse error - "),
        "{detail}"
    );
}

#[backend_test]
async fn numbers_in_strings_may_carry_surrounding_spaces() {
    // Arrange
    let app = spawn_app().await;
    let body = json!({"name": " Chandigarh ", "timestamp": " 1393926310 ", "temperature": " 28 ",
                      "lat": "\t30.733315 ", "lon": " 76.779418\n"});

    // Act
    let response = app.post_json("/station/", &body).await;

    // Assert
    assert_eq!(response.status(), StatusCode::CREATED);
    let created = json_body(response).await;
    assert_eq!(created["name"], "Chandigarh");
    assert_eq!(created["timestamp"], 1_393_926_310_i64);
    assert_eq!(created["temperature"], 28.0);
    assert_eq!(created["lat"], 30.733_315);
    assert_eq!(created["lon"], 76.779_418);
}

#[backend_test]
async fn only_failing_fields_are_reported_and_in_field_order() {
    // Arrange: keys sent in reverse order; name and lon fail.
    let app = spawn_app().await;
    let body = json!({"lon": 200, "lat": 10, "temperature": 20, "timestamp": 5, "name": ""});

    // Act
    let response = app.post_json("/station/", &body).await;

    // Assert
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        text_body(response).await,
        r#"{"name":["This field may not be blank."],"lon":["Ensure this value is less than or equal to 180."]}"#
    );
}

#[backend_test]
async fn form_bodies_are_checked_by_the_same_rules() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app
        .send_raw(
            Method::POST,
            "/station/",
            "application/x-www-form-urlencoded",
            "name=&timestamp=abc&temperature=28&lat=91",
        )
        .await;

    // Assert
    assert_eq!(
        bad_request(response).await,
        json!({"name": ["This field may not be blank."],
               "timestamp": ["A valid integer is required."],
               "lat": ["Ensure this value is less than or equal to 90."],
               "lon": ["This field is required."]})
    );
}

#[backend_test]
async fn a_patch_checks_the_fields_it_gets() {
    // Arrange
    let app = spawn_app().await;
    let original = app.create_station(&reading("Patched")).await;
    let path = station_path(&original);

    // Act
    let response = app
        .send_json(
            Method::PATCH,
            &path,
            &json!({"lat": 91, "name": null, "temperature": 20}),
        )
        .await;

    // Assert
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        text_body(response).await,
        r#"{"name":["This field may not be null."],"lat":["Ensure this value is less than or equal to 90."]}"#
    );
    assert_eq!(app.get_json(&path).await, original);
}

#[backend_test]
async fn a_body_that_is_not_an_object_gets_non_field_errors() {
    // Arrange
    let app = spawn_app().await;
    let original = app.create_station(&reading("Object")).await;
    let cases = [
        ("[]", "Invalid data. Expected a dictionary, but got list."),
        (
            r#"["name"]"#,
            "Invalid data. Expected a dictionary, but got list.",
        ),
        (
            r#""text""#,
            "Invalid data. Expected a dictionary, but got str.",
        ),
        ("42", "Invalid data. Expected a dictionary, but got int."),
        ("true", "Invalid data. Expected a dictionary, but got bool."),
        ("null", "No data provided"),
    ];

    for method in [Method::POST, Method::PUT, Method::PATCH] {
        let path = if method == Method::POST {
            "/station/".to_owned()
        } else {
            station_path(&original)
        };
        for (body, message) in cases {
            if method == Method::POST && body.starts_with('[') {
                // A list is a bulk upload on POST (tests/api/bulk.rs).
                continue;
            }
            // Act
            let response = app
                .send_raw(method.clone(), &path, "application/json", body)
                .await;

            // Assert
            assert_eq!(
                bad_request(response).await,
                json!({"non_field_errors": [message]}),
                "{method} {body}"
            );
        }
    }
}

#[backend_test]
async fn malformed_json_is_a_400_parse_error() {
    // Arrange
    let app = spawn_app().await;

    for body in [r#"{"name": "#, "{name: 'x'}", "{\"name\": \"x\",}", "{} {}"] {
        // Act
        let response = app
            .send_raw(Method::POST, "/station/", "application/json", body)
            .await;

        // Assert
        let errors = bad_request(response).await;
        let keys: Vec<&String> = errors.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["detail"], "{body}");
        let detail = errors["detail"].as_str().unwrap();
        assert!(
            detail.starts_with("JSON parse error - "),
            "{body}: {detail}"
        );
        assert!(detail.len() > "JSON parse error - ".len(), "{detail}");
    }
}

#[backend_test]
async fn invalid_utf8_in_a_json_body_is_a_400_parse_error() {
    // Arrange
    let app = spawn_app().await;
    let body =
        b"{\"name\": \"\xff\xfe\", \"timestamp\": 1, \"temperature\": 1, \"lat\": 1, \"lon\": 1}";

    // Act
    let response = app
        .send_raw(Method::POST, "/station/", "application/json", body.to_vec())
        .await;

    // Assert
    let detail = bad_request(response).await["detail"].clone();
    assert!(
        detail.as_str().unwrap().starts_with("JSON parse error - "),
        "{detail}"
    );
}

#[backend_test]
async fn a_body_that_is_neither_json_nor_form_data_is_415() {
    // Arrange
    let app = spawn_app().await;
    let original = app.create_station(&reading("Media")).await;
    let path = station_path(&original);
    let body = serde_json::to_string(&textbook_reading()).unwrap();

    for (method, path) in [
        (Method::POST, "/station/"),
        (Method::PUT, path.as_str()),
        (Method::PATCH, path.as_str()),
    ] {
        // Act
        let response = app
            .send_raw(method.clone(), path, "text/plain", body.clone())
            .await;

        // Assert
        assert_detail(
            response,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported media type \"text/plain\" in request.",
        )
        .await;
    }
    assert_eq!(app.all_stations().await, vec![original]);
}

#[backend_test]
async fn a_charset_parameter_on_the_content_type_is_accepted() {
    // Arrange
    let app = spawn_app().await;
    let body = serde_json::to_string(&textbook_reading()).unwrap();

    for content_type in [
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
        "Application/JSON",
    ] {
        // Act
        let response = app
            .send_raw(Method::POST, "/station/", content_type, body.clone())
            .await;

        // Assert
        assert_eq!(response.status(), StatusCode::CREATED, "{content_type}");
    }
    let form = app
        .send_raw(
            Method::POST,
            "/station/",
            "application/x-www-form-urlencoded; charset=utf-8",
            "name=F&timestamp=1&temperature=1&lat=1&lon=1",
        )
        .await;
    assert_eq!(form.status(), StatusCode::CREATED);
}

/// A valid JSON body of exactly `length` bytes, padded with trailing spaces.
fn body_of_length(length: usize) -> String {
    let compact = serde_json::to_string(&reading("Limit")).unwrap();
    assert!(compact.len() <= length, "{} > {length}", compact.len());
    format!("{compact}{}", " ".repeat(length - compact.len()))
}

#[backend_test]
async fn a_body_at_the_limit_is_accepted_and_one_byte_more_is_413() {
    // Arrange
    let app = spawn_app_with(|settings| settings.http.max_body_bytes = 100).await;

    // Act
    let at_limit = app
        .send_raw(
            Method::POST,
            "/station/",
            "application/json",
            body_of_length(100),
        )
        .await;
    let over_limit = app
        .send_raw(
            Method::POST,
            "/station/",
            "application/json",
            body_of_length(101),
        )
        .await;

    // Assert
    assert_eq!(at_limit.status(), StatusCode::CREATED);
    assert_detail(
        over_limit,
        StatusCode::PAYLOAD_TOO_LARGE,
        "Request body is too large.",
    )
    .await;
    assert_eq!(app.all_stations().await.len(), 1);
}

#[backend_test]
async fn the_size_limit_applies_to_every_write_and_to_form_bodies() {
    // Arrange
    let app = spawn_app_with(|settings| settings.http.max_body_bytes = 100).await;
    let original = app.create_station(&reading("Small")).await;
    let path = station_path(&original);
    let big_form = format!(
        "name={}&timestamp=1&temperature=1&lat=1&lon=1",
        "x".repeat(60)
    );

    for (method, path, content_type, body) in [
        (
            Method::PUT,
            path.as_str(),
            "application/json",
            body_of_length(101),
        ),
        (
            Method::PATCH,
            path.as_str(),
            "application/json",
            body_of_length(500),
        ),
        (
            Method::POST,
            "/station/",
            "application/x-www-form-urlencoded",
            big_form,
        ),
    ] {
        // Act
        let response = app.send_raw(method, path, content_type, body).await;

        // Assert
        assert_detail(
            response,
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request body is too large.",
        )
        .await;
    }
    assert_eq!(app.all_stations().await, vec![original]);
}

/// A chunked POST of `body` to the station list as the admin, closing the connection after.
fn chunked_post(body: &str) -> Vec<u8> {
    let (first, second) = body.split_at(body.len() / 2);
    let mut request = format!(
        "POST /station/ HTTP/1.1\r\nHost: localhost\r\nAuthorization: {}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        basic_authorization(ADMIN)
    );
    for chunk in [first, second] {
        request.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    request.push_str("0\r\n\r\n");
    request.into_bytes()
}

#[backend_test]
async fn a_chunked_body_without_a_length_is_held_to_the_limit_too() {
    // Arrange: no Content-Length, so only the bytes themselves can be counted.
    let app = spawn_app_with(|settings| settings.http.max_body_bytes = 100).await;

    // Act
    let within = app.raw_exchange(chunked_post(&body_of_length(100))).await;
    let over = app.raw_exchange(chunked_post(&body_of_length(150))).await;

    // Assert
    assert_eq!(within.status, 201, "{}", within.body);
    assert_eq!(over.status, 413, "{}", over.body);
    assert_eq!(
        serde_json::from_str::<Value>(&over.body).unwrap(),
        json!({"detail": "Request body is too large."})
    );
    assert_eq!(app.all_stations().await.len(), 1);
}

#[backend_test]
async fn a_body_announced_over_the_limit_is_refused_before_it_is_sent() {
    // Arrange: only the head is sent; a server that waited for the 10 MB would never answer.
    let app = spawn_app_with(|settings| settings.http.max_body_bytes = 100).await;
    let head = format!(
        "POST /station/ HTTP/1.1\r\nHost: localhost\r\nAuthorization: {}\r\n\
         Content-Type: application/json\r\nContent-Length: 10000000\r\nConnection: close\r\n\r\n",
        basic_authorization(ADMIN)
    );

    // Act
    let response = app.raw_exchange(head.into_bytes()).await;

    // Assert
    assert_eq!(response.status, 413, "{}", response.body);
    assert_eq!(
        serde_json::from_str::<Value>(&response.body).unwrap(),
        json!({"detail": "Request body is too large."})
    );
}

#[backend_test]
async fn an_unsupported_media_type_is_reported_before_the_size_and_the_size_before_parsing() {
    // Arrange
    let app = spawn_app_with(|settings| settings.http.max_body_bytes = 100).await;
    let oversized = format!("{{{}", "x".repeat(200));

    // Act
    let text = app
        .send_raw(Method::POST, "/station/", "text/plain", oversized.clone())
        .await;
    let json = app
        .send_raw(Method::POST, "/station/", "application/json", oversized)
        .await;

    // Assert
    assert_eq!(text.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(json.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[backend_test]
async fn no_invalid_request_changes_the_stored_data() {
    // Arrange
    let app = spawn_app().await;
    let stored = app.seed_stations(2).await;
    let path = station_path(&stored[0]);
    let mut too_cold = textbook_reading();
    too_cold["temperature"] = json!(-274);
    let attempts: Vec<(Method, &str, &str, String)> = vec![
        (
            Method::POST,
            "/station/",
            "application/json",
            "{}".to_owned(),
        ),
        (
            Method::POST,
            "/station/",
            "application/json",
            too_cold.to_string(),
        ),
        (
            Method::POST,
            "/station/",
            "application/json",
            "[]".to_owned(),
        ),
        (
            Method::POST,
            "/station/",
            "application/json",
            "{".to_owned(),
        ),
        (
            Method::POST,
            "/station/",
            "text/plain",
            textbook_reading().to_string(),
        ),
        (Method::PUT, &path, "application/json", too_cold.to_string()),
        (
            Method::PUT,
            &path,
            "application/json",
            r#"{"name": "only"}"#.to_owned(),
        ),
        (
            Method::PATCH,
            &path,
            "application/json",
            r#"{"name": "", "lat": 5}"#.to_owned(),
        ),
        (
            Method::PATCH,
            &path,
            "application/json",
            r#"{"lat": 5, "lon": "east"}"#.to_owned(),
        ),
        (
            Method::PATCH,
            &path,
            "application/x-www-form-urlencoded",
            "lat=95".to_owned(),
        ),
    ];

    for (method, path, content_type, body) in attempts {
        // Act
        let response = app
            .send_raw(method.clone(), path, content_type, body.clone())
            .await;

        // Assert
        assert!(
            response.status().is_client_error(),
            "{method} {path} {body}: {}",
            response.status()
        );
    }
    assert_eq!(app.all_stations().await, stored);
}

#[backend_test]
async fn the_documented_name_pattern_and_the_server_agree_on_every_edge_case() {
    // Arrange: the rule as the served OpenAPI document states it, for create and patch.
    let app = spawn_app().await;
    let spec = app.get_json("/api-docs/openapi.json").await;
    let schemas = &spec["components"]["schemas"];
    let pattern = schemas["StationInput"]["properties"]["name"]["pattern"]
        .as_str()
        .expect("a name pattern");
    assert_eq!(
        schemas["StationPatchInput"]["properties"]["name"]["pattern"],
        pattern
    );
    assert_eq!(pattern, station_api::domain::station::NAME_PATTERN);
    let documented = regex::Regex::new(pattern).expect("the pattern compiles");

    // Act and assert: each name is accepted by the server exactly when the document says so.
    // `\S` once let a lone NUL after a letter through, and engines disagree on U+0085 and U+FEFF.
    for name in [
        "a",
        "a\u{0}",
        "\u{0}",
        "\u{0}a",
        " ",
        " a ",
        "\t\n",
        "\u{85}",
        "\u{85}a",
        "\u{feff}",
        "\u{a0}",
        "\u{a0}x",
        "x\u{3000}",
        "\u{3000}",
        "\u{200b}",
        "\u{180e}",
        "\u{2028}",
        "\u{1c}",
        "\u{205f}\u{2029}",
    ] {
        let mut body = reading("placeholder");
        body["name"] = json!(name);
        let response = app.post_json("/station/", &body).await;
        let accepted = response.status() == StatusCode::CREATED;
        assert!(
            accepted || response.status() == StatusCode::BAD_REQUEST,
            "{name:?}: {}",
            response.status()
        );
        assert_eq!(documented.is_match(name), accepted, "{name:?}");
    }
}
