//! The station resource: the textbook's curl session, the representation of a reading, and what
//! create, read, replace, change and delete do to the stored data.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    PRETTY_JSON, assert_detail, header, json_body, reading, send, spawn_app, station_path,
    text_body, textbook_reading,
};
use station_test_macros::backend_test;

/// The textbook's reading as the API returns it, at `url`.
fn textbook_station(url: &str, id: i64) -> Value {
    json!({"url": url, "id": id, "name": "CityName", "timestamp": 1_393_926_310_i64,
           "temperature": 28.0, "lat": 30.733_315, "lon": 76.779_418})
}

#[backend_test]
async fn the_textbook_curl_session_works_as_printed() {
    // Arrange: three readings exist, so the textbook's POST creates the fourth.
    let app = spawn_app().await;
    app.seed_stations(3).await;

    // Act: POST the textbook's body, every value a string.
    let response = send(
        app.admin(Method::POST, "/station/")
            .header("accept", PRETTY_JSON)
            .json(&textbook_reading()),
    )
    .await;

    // Assert: 201, Location is the new reading's url, and the body is pretty-printed.
    assert_eq!(response.status(), StatusCode::CREATED);
    let new_url = app.url("/station/4/");
    assert_eq!(header(&response, "location"), Some(new_url.clone()));
    let text = text_body(response).await;
    assert!(text.starts_with("{\n    \"url\": "), "{text}");
    let created: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(created, textbook_station(&new_url, 4));
    assert_eq!(created["url"], json!(new_url));

    // Act + Assert: GET the list.
    let response = send(
        app.admin(Method::GET, "/station/")
            .header("accept", PRETTY_JSON),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let list = json_body(response).await;
    let keys: Vec<&str> = list
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["count", "next", "previous", "results"]);
    assert_eq!(list["count"], 4);
    assert_eq!(list["results"][3], textbook_station(&new_url, 4));

    // Act + Assert: GET one.
    let response = send(
        app.admin(Method::GET, "/station/1/")
            .header("accept", PRETTY_JSON),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let first = json_body(response).await;
    assert_eq!(first["id"], 1);
    assert_eq!(first["url"], json!(app.url("/station/1/")));

    // Act + Assert: PUT all five fields.
    let response = send(
        app.admin(Method::PUT, "/station/1/")
            .header("accept", PRETTY_JSON)
            .json(&textbook_reading()),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        json_body(response).await,
        textbook_station(&app.url("/station/1/"), 1)
    );

    // Act + Assert: DELETE one: 204 with an empty body.
    let response = send(
        app.admin(Method::DELETE, "/station/2/")
            .header("accept", PRETTY_JSON),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(text_body(response).await, "");
    assert_eq!(app.get("/station/2/").await.status(), StatusCode::NOT_FOUND);
}

#[backend_test]
async fn a_form_encoded_post_as_curl_d_sends_it_creates_a_reading() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app
        .send_raw(
            Method::POST,
            "/station/",
            "application/x-www-form-urlencoded",
            "name=CityName&timestamp=1393926310&temperature=28&lat=30.733315&lon=76.779418",
        )
        .await;

    // Assert
    assert_eq!(response.status(), StatusCode::CREATED);
    let url = app.url("/station/1/");
    assert_eq!(header(&response, "location"), Some(url.clone()));
    assert_eq!(json_body(response).await, textbook_station(&url, 1));
    assert_eq!(app.get_json("/station/1/").await, textbook_station(&url, 1));
}

#[backend_test]
async fn form_encoding_decodes_escapes_and_plus_signs() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app
        .send_raw(
            Method::POST,
            "/station/",
            "application/x-www-form-urlencoded",
            "name=S%C3%A3o+Paulo&timestamp=1&temperature=-1.5&lat=-23.55&lon=-46.63",
        )
        .await;

    // Assert
    assert_eq!(response.status(), StatusCode::CREATED);
    let created = json_body(response).await;
    assert_eq!(created["name"], "São Paulo");
    assert_eq!(created["temperature"], -1.5);
}

#[backend_test]
async fn a_reading_is_written_with_keys_in_contract_order_and_typed_values() {
    // Arrange
    let app = spawn_app().await;
    let expected = format!(
        r#"{{"url":"{}/station/1/","id":1,"name":"CityName","timestamp":1393926310,"temperature":28.0,"lat":30.733315,"lon":76.779418}}"#,
        app.address
    );

    // Act
    let created = text_body(app.post_json("/station/", &textbook_reading()).await).await;
    let fetched = text_body(app.get("/station/1/").await).await;

    // Assert: compact, ordered, typed; 28 comes back as 28.0.
    assert_eq!(created, expected);
    assert_eq!(fetched, expected);
}

#[backend_test]
async fn the_url_is_built_from_the_request_host_header() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = send(
        app.admin(Method::POST, "/station/")
            .header("host", "example.com:8000")
            .json(&textbook_reading()),
    )
    .await;

    // Assert
    assert_eq!(response.status(), StatusCode::CREATED);
    let url = "http://example.com:8000/station/1/";
    assert_eq!(header(&response, "location").as_deref(), Some(url));
    assert_eq!(json_body(response).await["url"], url);
    let fetched = send(
        app.admin(Method::GET, "/station/1/")
            .header("host", "api.test"),
    )
    .await;
    assert_eq!(
        json_body(fetched).await["url"],
        "http://api.test/station/1/"
    );
}

#[backend_test]
async fn non_ascii_names_are_written_as_utf8_not_escapes() {
    // Arrange
    let app = spawn_app().await;
    let name = "Zürich – 東京 🌡";

    // Act
    let created = text_body(app.post_json("/station/", &reading(name)).await).await;
    let fetched = text_body(app.get("/station/1/").await).await;

    // Assert
    for text in [created, fetched] {
        assert!(text.contains(&format!(r#""name":"{name}""#)), "{text}");
        assert!(!text.contains("\\u"), "{text}");
    }
}

#[backend_test]
async fn what_is_posted_is_what_is_stored() {
    // Arrange
    let app = spawn_app().await;
    let body = json!({"name": "Oslo", "timestamp": 1_700_000_123_i64, "temperature": -12.25,
                      "lat": 59.913_868, "lon": 10.752_245});

    // Act
    let created = app.create_station(&body).await;

    // Assert: read back through a fresh request.
    let fetched = app.get_json(&station_path(&created)).await;
    assert_eq!(fetched, created);
    for field in ["name", "timestamp", "temperature", "lat", "lon"] {
        assert_eq!(fetched[field], body[field], "{field}");
    }
}

#[backend_test]
async fn a_put_replaces_all_five_fields() {
    // Arrange
    let app = spawn_app().await;
    let original = app.create_station(&reading("Before")).await;
    let path = station_path(&original);
    let replacement = json!({"name": "After", "timestamp": "5", "temperature": "-3.5",
                             "lat": " -45.5 ", "lon": "170"});

    // Act
    let response = app.send_json(Method::PUT, &path, &replacement).await;

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    let expected = json!({"url": app.url(&path), "id": original["id"], "name": "After",
                          "timestamp": 5, "temperature": -3.5, "lat": -45.5, "lon": 170.0});
    assert_eq!(json_body(response).await, expected);
    assert_eq!(app.get_json(&path).await, expected);
}

#[backend_test]
async fn a_put_without_every_field_is_refused_and_changes_nothing() {
    // Arrange
    let app = spawn_app().await;
    let original = app.create_station(&reading("Kept")).await;
    let path = station_path(&original);

    // Act
    let response = app
        .send_json(Method::PUT, &path, &json!({"name": "Changed", "lat": 1}))
        .await;

    // Assert
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let required = json!(["This field is required."]);
    assert_eq!(
        json_body(response).await,
        json!({"timestamp": required, "temperature": required, "lon": required})
    );
    assert_eq!(app.get_json(&path).await, original);
}

#[backend_test]
async fn a_put_on_a_missing_id_is_404_and_creates_nothing() {
    // Arrange
    let app = spawn_app().await;
    app.seed_stations(1).await;

    // Act
    let response = app
        .send_json(Method::PUT, "/station/7/", &textbook_reading())
        .await;

    // Assert: no upsert.
    assert_detail(
        response,
        StatusCode::NOT_FOUND,
        "No Station matches the given query.",
    )
    .await;
    assert_eq!(app.get("/station/7/").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.all_stations().await.len(), 1);
}

#[backend_test]
async fn a_patch_changes_only_the_fields_it_names() {
    // Arrange
    let app = spawn_app().await;
    let original = app.create_station(&reading("Bergen")).await;
    let path = station_path(&original);

    // Act
    let response = app
        .send_json(
            Method::PATCH,
            &path,
            &json!({"temperature": "29.5", "lon": 5.32}),
        )
        .await;

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    let mut expected = original.clone();
    expected["temperature"] = json!(29.5);
    expected["lon"] = json!(5.32);
    assert_eq!(json_body(response).await, expected);
    assert_eq!(app.get_json(&path).await, expected);
}

#[backend_test]
async fn an_empty_patch_returns_the_reading_unchanged() {
    // Arrange
    let app = spawn_app().await;
    let original = app.create_station(&reading("Tromsø")).await;
    let path = station_path(&original);

    // Act
    let response = app.send_json(Method::PATCH, &path, &json!({})).await;

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_body(response).await, original);
    assert_eq!(app.get_json(&path).await, original);
}

#[backend_test]
async fn a_patch_on_a_missing_id_is_404() {
    // Arrange
    let app = spawn_app().await;

    for body in [json!({"name": "x"}), json!({})] {
        // Act
        let response = app.send_json(Method::PATCH, "/station/1/", &body).await;

        // Assert
        assert_detail(
            response,
            StatusCode::NOT_FOUND,
            "No Station matches the given query.",
        )
        .await;
    }
}

#[backend_test]
async fn a_deleted_reading_is_gone() {
    // Arrange
    let app = spawn_app().await;
    let stations = app.seed_stations(3).await;
    let path = station_path(&stations[1]);

    // Act
    let response = send(app.admin(Method::DELETE, &path)).await;

    // Assert
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(response.bytes().await.unwrap().is_empty());
    assert_detail(
        app.get(&path).await,
        StatusCode::NOT_FOUND,
        "No Station matches the given query.",
    )
    .await;
    assert_detail(
        send(app.admin(Method::DELETE, &path)).await,
        StatusCode::NOT_FOUND,
        "No Station matches the given query.",
    )
    .await;
    let remaining: Vec<Value> = app.all_stations().await;
    assert_eq!(remaining, vec![stations[0].clone(), stations[2].clone()]);
}

#[backend_test]
async fn ids_are_never_reused_after_a_delete() {
    // Arrange: the newest reading is deleted, then every other one.
    let app = spawn_app().await;
    let stations = app.seed_stations(3).await;
    for station in stations.iter().rev() {
        let response = send(app.admin(Method::DELETE, &station_path(station))).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }

    // Act
    let created = app.create_station(&reading("after")).await;

    // Assert
    assert_eq!(created["id"], 4);
    assert_eq!(created["url"], json!(app.url("/station/4/")));
}

#[backend_test]
async fn url_id_and_unknown_keys_are_ignored_on_create() {
    // Arrange
    let app = spawn_app().await;
    let mut body = reading("Ignored keys");
    body["url"] = json!("http://elsewhere.example/station/99/");
    body["id"] = json!(99);
    body["colour"] = json!("blue");

    // Act
    let response = app.post_json("/station/", &body).await;

    // Assert
    assert_eq!(response.status(), StatusCode::CREATED);
    let created = json_body(response).await;
    assert_eq!(created["id"], 1);
    assert_eq!(created["url"], json!(app.url("/station/1/")));
    assert!(created.get("colour").is_none());
    assert_eq!(
        app.get("/station/99/").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[backend_test]
async fn url_and_id_are_ignored_on_put_and_patch() {
    // Arrange
    let app = spawn_app().await;
    let original = app.create_station(&reading("Steady")).await;
    let path = station_path(&original);
    let mut put_body = reading("Renamed");
    put_body["id"] = json!(42);
    put_body["url"] = json!("http://elsewhere.example/station/42/");

    // Act
    let put = app.send_json(Method::PUT, &path, &put_body).await;
    let patch = app
        .send_json(Method::PATCH, &path, &json!({"id": 43, "colour": "red"}))
        .await;

    // Assert
    assert_eq!(put.status(), StatusCode::OK);
    assert_eq!(patch.status(), StatusCode::OK);
    let mut expected = original.clone();
    expected["name"] = json!("Renamed");
    assert_eq!(json_body(put).await, expected);
    assert_eq!(json_body(patch).await, expected);
    assert_eq!(app.all_stations().await, vec![expected]);
}

#[backend_test]
async fn a_missing_id_and_a_non_integer_id_get_different_404s() {
    // Arrange
    let app = spawn_app().await;

    // Act + Assert
    assert_detail(
        app.get("/station/1/").await,
        StatusCode::NOT_FOUND,
        "No Station matches the given query.",
    )
    .await;
    for path in [
        "/station/abc/",
        "/station/1.0/",
        "/station/99999999999999999999/",
    ] {
        assert_detail(app.get(path).await, StatusCode::NOT_FOUND, "Not found.").await;
    }
}
