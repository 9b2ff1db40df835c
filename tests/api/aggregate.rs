//! `/station/aggregate/`: one station's temperatures in time buckets, on every engine.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use station_test_macros::backend_test;

use crate::helpers::{TestApp, json_body, send, spawn_app};

const HOUR: i64 = 3_600;
/// 2014-03-04 00:00:00 UTC, a multiple of an hour (and of a day).
const MIDNIGHT: i64 = 1_393_891_200;

async fn post(app: &TestApp, readings: &[(&str, i64, f64)]) {
    let body: Vec<Value> = readings
        .iter()
        .map(|(name, timestamp, temperature)| {
            json!({"name": name, "timestamp": timestamp, "temperature": temperature,
                   "lat": 30.733315, "lon": 76.779418})
        })
        .collect();
    let response = send(app.admin(Method::POST, "/station/").json(&body)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

async fn aggregate(app: &TestApp, query: &str) -> (StatusCode, Value) {
    let response = send(app.admin(Method::GET, &format!("/station/aggregate/?{query}"))).await;
    (response.status(), json_body(response).await)
}

#[backend_test]
async fn buckets_hold_count_min_max_and_mean_oldest_first_and_empty_ones_are_left_out() {
    let app = spawn_app().await;
    post(
        &app,
        &[
            // Hour 0: three readings (one on the hour itself).
            ("Kitchen", MIDNIGHT, 20.0),
            ("Kitchen", MIDNIGHT + 1_800, 22.5),
            ("Kitchen", MIDNIGHT + HOUR - 1, 24.5),
            // Hour 1: nothing. Hour 2: one reading.
            ("Kitchen", MIDNIGHT + 2 * HOUR + 5, -3.25),
            // Outside the range, and another station inside it.
            ("Kitchen", MIDNIGHT - 1, 99.0),
            ("Kitchen", MIDNIGHT + 3 * HOUR, 99.0),
            ("Garden", MIDNIGHT + 10, 99.0),
        ],
    )
    .await;

    let (status, body) = aggregate(
        &app,
        &format!(
            "name=Kitchen&timestamp__gte={MIDNIGHT}&timestamp__lt={}&interval=3600",
            MIDNIGHT + 3 * HOUR
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"name": "Kitchen", "interval": 3600, "results": [
            {"start": MIDNIGHT, "count": 3, "min": 20.0, "max": 24.5, "mean": 22.333333333333332},
            {"start": MIDNIGHT + 2 * HOUR, "count": 1, "min": -3.25, "max": -3.25, "mean": -3.25},
        ]})
    );

    // Buckets align to multiples of the interval, not to the range's start.
    let (_, body) = aggregate(
        &app,
        &format!(
            "name=Kitchen&timestamp__gte={}&timestamp__lt={}&interval=86400",
            MIDNIGHT + 1_000,
            MIDNIGHT + 4 * HOUR
        ),
    )
    .await;
    // From 1,000 s past midnight: 22.5, 24.5, -3.25 and the 99 at 3 h, all in the first day.
    assert_eq!(
        body["results"],
        json!([{"start": MIDNIGHT, "count": 4, "min": -3.25, "max": 99.0, "mean": 35.6875}])
    );

    // A station with no readings in the range: no buckets.
    let (status, body) = aggregate(
        &app,
        &format!(
            "name=Attic&timestamp__gte={MIDNIGHT}&timestamp__lt={}&interval=60",
            MIDNIGHT + HOUR
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["results"], json!([]));
}

#[backend_test]
async fn bad_or_missing_parameters_and_too_many_buckets_are_400_naming_them() {
    let app = spawn_app().await;

    let (status, body) = aggregate(&app, "timestamp__gte=soon&interval=30").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["name", "timestamp__gte", "timestamp__lt", "interval"]
    );

    let (status, body) = aggregate(
        &app,
        "name=Kitchen&timestamp__gte=0&timestamp__lt=31536000&interval=60",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["interval"][0]
            .as_str()
            .unwrap()
            .contains("at most 10000 buckets"),
        "{body}"
    );

    let (status, _) = aggregate(
        &app,
        "name=Kitchen&timestamp__gte=10&timestamp__lt=10&interval=60",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let anonymous = send(app.anonymous(
        Method::GET,
        "/station/aggregate/?name=a&timestamp__gte=0&timestamp__lt=60&interval=60",
    ))
    .await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

#[backend_test]
async fn a_token_bound_to_a_station_aggregates_that_station_alone() {
    let app = spawn_app().await;
    post(
        &app,
        &[("Kitchen", MIDNIGHT, 20.0), ("Garden", MIDNIGHT, 10.0)],
    )
    .await;
    let issued = json_body(
        app.post_json(
            "/tokens/",
            &json!({"label": "screen", "scopes": ["read"], "station": "Kitchen"}),
        )
        .await,
    )
    .await;
    let key = issued["key"].as_str().unwrap();
    let query = |name: &str| {
        format!(
            "/station/aggregate/?name={name}&timestamp__gte={MIDNIGHT}&timestamp__lt={}&interval=3600",
            MIDNIGHT + HOUR
        )
    };
    for (name, count) in [("Kitchen", 1), ("Garden", 0)] {
        let response = send(app.anonymous(Method::GET, &query(name)).bearer_auth(key)).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body = json_body(response).await;
        assert_eq!(
            body["results"].as_array().unwrap().len(),
            count,
            "{name}: {body}"
        );
    }
}
