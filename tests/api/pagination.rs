//! Pagination: DRF's `PageNumberPagination` envelope, 10 a page, absolute links, a total order.

use std::collections::HashSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{ADMIN, assert_detail, json_body, send, spawn_app, station_path, text_body};
use station_test_macros::backend_test;

/// The ids on a page, in the order listed.
fn ids(page: &Value) -> Vec<i64> {
    page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|station| station["id"].as_i64().unwrap())
        .collect()
}

#[backend_test]
async fn the_first_page_lists_count_next_previous_and_ten_results_in_that_order() {
    // Arrange
    let app = spawn_app().await;
    let stations = app.seed_stations(25).await;

    // Act
    let response = app.get("/station/").await;

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    let text = text_body(response).await;
    let expected_start = format!(
        r#"{{"count":25,"next":"{}/station/?page=2","previous":null,"results":[{{"url":"#,
        app.address
    );
    assert!(text.starts_with(&expected_start), "{text}");
    let page: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(page["results"], json!(stations[..10]));
}

#[backend_test]
async fn a_middle_page_links_both_ways_and_previous_to_page_2_drops_the_page_parameter() {
    // Arrange
    let app = spawn_app().await;
    let stations = app.seed_stations(25).await;

    // Act
    let page = app.get_json("/station/?page=2").await;

    // Assert
    assert_eq!(
        page,
        json!({"count": 25, "next": app.url("/station/?page=3"),
               "previous": app.url("/station/"), "results": stations[10..20]})
    );
}

#[backend_test]
async fn the_last_page_holds_the_remainder_and_has_no_next() {
    // Arrange
    let app = spawn_app().await;
    let stations = app.seed_stations(25).await;

    // Act
    let page = app.get_json("/station/?page=3").await;

    // Assert
    assert_eq!(
        page,
        json!({"count": 25, "next": null, "previous": app.url("/station/?page=2"),
               "results": stations[20..]})
    );
}

#[backend_test]
async fn page_last_is_the_last_page_and_an_empty_page_is_the_first() {
    // Arrange
    let app = spawn_app().await;
    app.seed_stations(25).await;
    let first = app.get_json("/station/").await;
    let third = app.get_json("/station/?page=3").await;

    // Act
    let empty = app.get_json("/station/?page=").await;
    let last = app.get_json("/station/?page=last").await;

    // Assert
    assert_eq!(empty, first);
    assert_eq!(last, third);
}

#[backend_test]
async fn malformed_and_out_of_range_pages_are_404_invalid_page() {
    // Arrange
    let app = spawn_app().await;
    app.seed_stations(25).await;

    for page in ["0", "-1", "1.0", "abc", "4", "99999999999999999999", "LAST"] {
        // Act
        let response = app.get(&format!("/station/?page={page}")).await;

        // Assert
        assert_detail(response, StatusCode::NOT_FOUND, "Invalid page.").await;
    }
}

#[backend_test]
async fn exactly_twenty_readings_make_two_full_pages_and_no_third() {
    // Arrange
    let app = spawn_app().await;
    app.seed_stations(20).await;

    // Act
    let second = app.get_json("/station/?page=2").await;
    let third = app.get("/station/?page=3").await;

    // Assert
    assert_eq!(second["next"], Value::Null);
    assert_eq!(ids(&second), (11..=20).collect::<Vec<i64>>());
    assert_detail(third, StatusCode::NOT_FOUND, "Invalid page.").await;
}

#[backend_test]
async fn an_empty_table_has_an_empty_first_page_and_no_second() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let first = app.get("/station/").await;
    let last = app.get_json("/station/?page=last").await;
    let second = app.get("/station/?page=2").await;

    // Assert
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(
        text_body(first).await,
        r#"{"count":0,"next":null,"previous":null,"results":[]}"#
    );
    assert_eq!(
        last,
        json!({"count": 0, "next": null, "previous": null, "results": []})
    );
    assert_detail(second, StatusCode::NOT_FOUND, "Invalid page.").await;
}

#[backend_test]
async fn links_keep_the_other_query_parameters() {
    // Arrange
    let app = spawn_app().await;
    app.seed_stations(25).await;

    // Act
    let page = app.get_json("/station/?tag=oslo&page=2&note=a+b").await;

    // Assert
    assert_eq!(
        page["next"],
        json!(app.url("/station/?tag=oslo&page=3&note=a+b"))
    );
    assert_eq!(
        page["previous"],
        json!(app.url("/station/?tag=oslo&note=a+b"))
    );
}

#[backend_test]
async fn links_are_absolute_urls_on_the_request_host() {
    // Arrange
    let app = spawn_app().await;
    app.seed_stations(25).await;

    // Act
    let response = send(
        app.admin(Method::GET, "/station/?page=2")
            .header("host", "stations.example:8080"),
    )
    .await;

    // Assert
    let page = json_body(response).await;
    assert_eq!(page["next"], "http://stations.example:8080/station/?page=3");
    assert_eq!(page["previous"], "http://stations.example:8080/station/");
    assert_eq!(
        page["results"][0]["url"],
        "http://stations.example:8080/station/11/"
    );
}

#[backend_test]
async fn readings_are_listed_by_id_ascending_even_after_changes() {
    // Arrange: rows are deleted, changed and added, which could reorder an unordered scan.
    let app = spawn_app().await;
    let stations = app.seed_stations(15).await;
    for station in [&stations[2], &stations[11]] {
        let response = send(app.admin(Method::DELETE, &station_path(station))).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }
    let response = app
        .send_json(
            Method::PATCH,
            &station_path(&stations[0]),
            &json!({"name": "zzz"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    app.seed_stations(8).await;

    // Act
    let listed: Vec<i64> = app
        .all_stations()
        .await
        .iter()
        .map(|station| station["id"].as_i64().unwrap())
        .collect();

    // Assert
    let expected: Vec<i64> = (1..=23).filter(|id| ![3, 12].contains(id)).collect();
    assert_eq!(listed, expected);
}

#[backend_test]
async fn walking_next_visits_every_reading_exactly_once() {
    // Arrange
    let app = spawn_app().await;
    let stations = app.seed_stations(27).await;

    // Act
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut next = Some(app.url("/station/"));
    while let Some(url) = next {
        let page =
            json_body(send(app.client.get(url).basic_auth(ADMIN.0, Some(ADMIN.1))).await).await;
        assert_eq!(page["count"], 27);
        seen.extend(ids(&page));
        next = page["next"].as_str().map(str::to_owned);
        pages += 1;
    }

    // Assert
    assert_eq!(pages, 3);
    let unique: HashSet<i64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "a reading was listed twice");
    let created: Vec<i64> = stations.iter().map(|s| s["id"].as_i64().unwrap()).collect();
    assert_eq!(seen, created);
}

#[backend_test]
async fn walking_previous_from_the_last_page_comes_back_to_the_first() {
    // Arrange
    let app = spawn_app().await;
    app.seed_stations(25).await;
    let first = app.get_json("/station/").await;

    // Act
    let mut page = app.get_json("/station/?page=last").await;
    let mut steps = 0;
    while let Some(previous) = page["previous"].as_str() {
        let path = previous.strip_prefix(&app.address).unwrap().to_owned();
        page = app.get_json(&path).await;
        steps += 1;
    }

    // Assert
    assert_eq!(steps, 2);
    assert_eq!(page, first);
}
