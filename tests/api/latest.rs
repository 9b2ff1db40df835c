//! `/station/latest/`: each station's newest reading, by name, paged like the list.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use station_test_macros::backend_test;

use crate::helpers::{TestApp, json_body, send, spawn_app};

async fn post(app: &TestApp, readings: &[(&str, i64, f64, f64)]) -> Vec<i64> {
    let body: Vec<Value> = readings
        .iter()
        .map(|(name, timestamp, temperature, lat)| {
            json!({"name": name, "timestamp": timestamp, "temperature": temperature,
                   "lat": lat, "lon": 76.779418})
        })
        .collect();
    let response = send(app.admin(Method::POST, "/station/").json(&body)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    json_body(response)
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|station| station["id"].as_i64().unwrap())
        .collect()
}

fn ids(page: &Value) -> Vec<i64> {
    page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|station| station["id"].as_i64().unwrap())
        .collect()
}

#[backend_test]
async fn each_station_shows_its_newest_reading_by_name_and_follows_changes() {
    let app = spawn_app().await;
    let created = post(
        &app,
        &[
            ("Kitchen", 100, 20.0, 10.0),
            ("Attic", 300, 30.0, 50.0),
            ("Kitchen", 200, 21.0, 10.0),
            // The same timestamp: the greater id wins.
            ("Kitchen", 200, 22.0, 10.0),
            ("Attic", 250, 31.0, 50.0),
            ("garden", 50, 5.0, -20.0),
        ],
    )
    .await;

    let page = app.get_json("/station/latest/").await;
    assert_eq!(page["count"], 3);
    assert_eq!(ids(&page), [created[1], created[3], created[5]]);
    assert_eq!(page["results"][1]["temperature"], 22.0);
    assert!(
        page["results"][1]["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/station/{}/", created[3]))
    );

    // Filters: name text, and the box around where the newest reading was taken.
    assert_eq!(
        ids(&app.get_json("/station/latest/?name__icontains=KIT").await),
        [created[3]]
    );
    assert_eq!(
        ids(&app.get_json("/station/latest/?search=a,e").await),
        [created[5]]
    );
    assert_eq!(
        ids(&app
            .get_json("/station/latest/?lat__gte=0&lat__lte=20")
            .await),
        [created[3]]
    );
    assert_eq!(
        ids(&app.get_json("/station/latest/?name=Attic").await),
        [created[1]]
    );

    // Deleting the newest brings back the one before; a newer reading replaces it.
    let deleted = send(app.admin(Method::DELETE, &format!("/station/{}/", created[3]))).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let newer = post(&app, &[("Attic", 400, 32.0, 50.0)]).await;
    assert_eq!(
        ids(&app.get_json("/station/latest/").await),
        [newer[0], created[2], created[5]]
    );
}

#[backend_test]
async fn latest_pages_by_number_and_by_cursor_and_refuses_bad_parameters() {
    let app = spawn_app().await;
    let readings: Vec<(String, i64, f64, f64)> = (0..25)
        .map(|n| (format!("Station {n:02}"), 100 + n, 20.0, 0.0))
        .collect();
    let borrowed: Vec<(&str, i64, f64, f64)> = readings
        .iter()
        .map(|(n, t, c, l)| (n.as_str(), *t, *c, *l))
        .collect();
    let created = post(&app, &borrowed).await;

    let first = app.get_json("/station/latest/?page_size=10").await;
    assert_eq!(first["count"], 25);
    assert_eq!(ids(&first), created[..10]);
    let last = app
        .get_json("/station/latest/?page_size=10&page=last")
        .await;
    assert_eq!(ids(&last), created[20..]);
    assert_eq!(last["next"], Value::Null);

    let mut walked = Vec::new();
    let mut next = Some(app.url("/station/latest/?page_size=7&cursor="));
    while let Some(url) = next {
        let page = app.follow(&url).await;
        walked.extend(ids(&page));
        next = page["next"].as_str().map(str::to_owned);
    }
    assert_eq!(walked, created);

    let missing = send(app.admin(Method::GET, "/station/latest/?page=9")).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let bad = send(app.admin(Method::GET, "/station/latest/?page_size=0&lat__gte=north")).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let body = json_body(bad).await;
    assert!(
        body["lat__gte"].is_array() && body["page_size"].is_array(),
        "{body}"
    );
}

#[backend_test]
async fn a_token_bound_to_a_station_sees_its_latest_reading_alone() {
    let app = spawn_app().await;
    let created = post(
        &app,
        &[("Kitchen", 100, 20.0, 0.0), ("Garden", 100, 10.0, 0.0)],
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
    let response = send(
        app.anonymous(Method::GET, "/station/latest/")
            .bearer_auth(issued["key"].as_str().unwrap()),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let page = json_body(response).await;
    assert_eq!(page["count"], 1);
    assert_eq!(ids(&page), [created[0]]);
}
