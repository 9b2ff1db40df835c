//! Finding readings: django-filter style filters, ordering, page sizes, and cursor paging, on
//! every engine.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use station_test_macros::backend_test;

use crate::helpers::{TestApp, json_body, spawn_app};

/// A reading with every field chosen.
fn reading(name: &str, timestamp: i64, temperature: f64, lat: f64, lon: f64) -> Value {
    json!({"name": name, "timestamp": timestamp, "temperature": temperature,
           "lat": lat, "lon": lon})
}

/// Six readings from three places, with ties in name, timestamp and temperature.
async fn seed_network(app: &TestApp) -> Vec<Value> {
    let readings = [
        reading("Oslo", 1_700_000_000, 5.0, 59.91, 10.75),
        reading("Bergen", 1_700_000_100, 8.5, 60.39, 5.32),
        reading("oslo north", 1_700_000_100, -2.0, 60.10, 10.80),
        reading("Tromsø", 1_700_000_200, -2.0, 69.65, 18.96),
        reading("Oslo", 1_700_000_300, 6.5, 59.91, 10.75),
        reading("50%_off!", 1_700_000_400, 20.0, 0.0, 0.0),
    ];
    let mut created = Vec::new();
    for body in readings {
        created.push(app.create_station(&body).await);
    }
    created
}

/// The ids of a page's results.
fn ids(page: &Value) -> Vec<i64> {
    page["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["id"].as_i64().expect("id"))
        .collect()
}

/// The ids of `created` at these positions (0-based, in creation order).
fn pick(created: &[Value], positions: &[usize]) -> Vec<i64> {
    positions
        .iter()
        .map(|&n| created[n]["id"].as_i64().expect("id"))
        .collect()
}

/// GETs `path` and returns the 400 body.
async fn bad_request(app: &TestApp, path: &str) -> Value {
    let response = app.get(path).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
    json_body(response).await
}

#[backend_test]
async fn each_filter_narrows_the_list_and_its_count() {
    let app = spawn_app().await;
    let all = seed_network(&app).await;
    let cases: [(&str, &[usize]); 19] = [
        ("name=Oslo", &[0, 4]),
        ("name=%20Oslo%09", &[0, 4]),
        ("name=oslo", &[]),
        ("name__icontains=%20osl%20", &[0, 2, 4]),
        ("name__icontains=OSLO", &[0, 2, 4]),
        ("name__icontains=%25_", &[5]),
        ("name__icontains=_", &[5]),
        ("name__icontains=!", &[5]),
        ("search=oslo%20north", &[2]),
        ("search=os,lo", &[0, 2, 4]),
        ("search=os%00lo%20north", &[2]),
        ("timestamp__gte=1700000100", &[1, 2, 3, 4, 5]),
        ("timestamp__gt=1700000100", &[3, 4, 5]),
        ("timestamp__lte=1700000100", &[0, 1, 2]),
        ("timestamp__lt=1700000100", &[0]),
        ("temperature__gte=6.5", &[1, 4, 5]),
        ("temperature__lte=-2", &[2, 3]),
        (
            "lat__gte=59.91&lat__lte=60.2&lon__gte=10&lon__lte=11",
            &[0, 2, 4],
        ),
        (
            "name=Oslo&timestamp__gt=1700000000&temperature__lte=10",
            &[4],
        ),
    ];

    for (filter, expected) in cases {
        let page = app.get_json(&format!("/station/?{filter}")).await;

        assert_eq!(ids(&page), pick(&all, expected), "{filter}");
        assert_eq!(page["count"], expected.len(), "{filter}");
    }
}

#[backend_test]
async fn empty_filter_values_and_unknown_parameters_change_nothing() {
    let app = spawn_app().await;
    let all = seed_network(&app).await;

    let page = app
        .get_json("/station/?name=&timestamp__gte=&search=&colour=red&name__exact=Oslo")
        .await;

    assert_eq!(ids(&page), pick(&all, &[0, 1, 2, 3, 4, 5]));
}

#[backend_test]
async fn bad_filter_values_are_400s_naming_each_parameter() {
    let app = spawn_app().await;

    let body = bad_request(
        &app,
        "/station/?timestamp__gte=yesterday&timestamp__lt=1.5&temperature__lte=warm\
         &lat__gte=NaN&lon__lte=1e999&page_size=0&ordering=colour",
    )
    .await;

    assert_eq!(
        body,
        json!({
            "timestamp__gte": ["Enter a whole number."],
            "timestamp__lt": ["Enter a whole number."],
            "temperature__lte": ["Enter a number."],
            "lat__gte": ["Enter a number."],
            "lon__lte": ["Enter a number."],
            "ordering": ["Select a valid choice. colour is not one of the available choices \
                          (id, timestamp, temperature, name, each optionally prefixed with -)."],
            "page_size": ["Ensure this value is greater than or equal to 1."],
        })
    );
}

#[backend_test]
async fn every_ordering_is_total_with_ties_broken_by_id() {
    let app = spawn_app().await;
    let all = seed_network(&app).await;
    let cases: [(&str, &[usize]); 10] = [
        ("id", &[0, 1, 2, 3, 4, 5]),
        ("-id", &[5, 4, 3, 2, 1, 0]),
        ("timestamp", &[0, 1, 2, 3, 4, 5]),
        // The id added last runs the way the key before it does; one named keeps its own way.
        ("-timestamp", &[5, 4, 3, 2, 1, 0]),
        ("-timestamp,id", &[5, 4, 3, 1, 2, 0]),
        ("-temperature", &[5, 1, 4, 0, 3, 2]),
        ("temperature", &[2, 3, 0, 4, 1, 5]),
        ("-temperature,-id", &[5, 1, 4, 0, 3, 2]),
        // By code point: digits, then upper case, then lower case, then "ø" after "o".
        ("name", &[5, 1, 0, 4, 3, 2]),
        ("-name,timestamp", &[2, 3, 0, 4, 1, 5]),
    ];

    for (ordering, expected) in cases {
        let page = app
            .get_json(&format!("/station/?ordering={ordering}"))
            .await;

        assert_eq!(ids(&page), pick(&all, expected), "ordering={ordering}");
    }
}

#[backend_test]
async fn a_filtered_list_counts_pages_and_links_only_what_the_filter_lets_through() {
    // Arrange: 25 readings, 11 of them named station-1 or station-1x.
    let app = spawn_app().await;
    let created = app.seed_stations(25).await;
    let matching: Vec<i64> = created
        .iter()
        .filter(|r| r["name"].as_str().expect("name").starts_with("station-1"))
        .map(|r| r["id"].as_i64().expect("id"))
        .rev()
        .collect();
    assert_eq!(matching.len(), 11);
    let filter = "name__icontains=station-1&ordering=-id&page_size=4";

    // Act: every page, the first request of them remembering the password (so the rest are
    // read in one statement with the account check), and one past the end.
    let mut pages = Vec::new();
    for number in 1..=3 {
        pages.push(
            app.get_json(&format!("/station/?{filter}&page={number}"))
                .await,
        );
    }
    let past_the_end = app.get(&format!("/station/?{filter}&page=4")).await;

    // Assert
    let read: Vec<i64> = pages.iter().flat_map(ids).collect();
    assert_eq!(read, matching);
    for (page, number) in pages.iter().zip(1..) {
        assert_eq!(page["count"], 11, "page {number}");
        let link = |n: i64| match n {
            1 => json!(app.url(&format!("/station/?{filter}"))),
            n => json!(app.url(&format!("/station/?{filter}&page={n}"))),
        };
        let next = if number < 3 {
            link(number + 1)
        } else {
            Value::Null
        };
        let previous = if number > 1 {
            link(number - 1)
        } else {
            Value::Null
        };
        assert_eq!(page["next"], next, "page {number}");
        assert_eq!(page["previous"], previous, "page {number}");
    }
    assert_eq!(past_the_end.status(), StatusCode::NOT_FOUND);
}

#[backend_test]
async fn page_size_is_bounded_and_kept_in_the_links() {
    let app = spawn_app().await;
    app.seed_stations(25).await;

    let small = app.get_json("/station/?page_size=4&page=2").await;
    let whole = app.get_json("/station/?page_size=1000").await;

    assert_eq!(small["results"].as_array().unwrap().len(), 4);
    assert_eq!(small["count"], 25);
    assert_eq!(
        small["next"],
        json!(app.url("/station/?page_size=4&page=3"))
    );
    assert_eq!(small["previous"], json!(app.url("/station/?page_size=4")));
    assert_eq!(whole["results"].as_array().unwrap().len(), 25);
    assert!(whole["next"].is_null());
    for (size, message) in [
        ("1001", "Ensure this value is less than or equal to 1000."),
        ("-3", "Ensure this value is greater than or equal to 1."),
        ("ten", "Enter a whole number."),
        ("2.5", "Enter a whole number."),
    ] {
        let body = bad_request(&app, &format!("/station/?page_size={size}")).await;
        assert_eq!(body, json!({"page_size": [message]}), "page_size={size}");
    }
}

#[backend_test]
async fn the_largest_page_size_is_a_setting() {
    let app = crate::helpers::spawn_app_with(|settings| settings.http.max_page_size = 5).await;

    assert_eq!(
        app.get("/station/?page_size=5").await.status(),
        StatusCode::OK
    );
    let body = bad_request(&app, "/station/?page_size=6").await;
    assert_eq!(
        body,
        json!({"page_size": ["Ensure this value is less than or equal to 5."]})
    );
}

/// Follows `next` (or `previous`) links from `path` to the end; returns each page's ids.
async fn walk(app: &TestApp, path: &str, link: &str) -> Vec<Vec<i64>> {
    let mut pages = Vec::new();
    let mut url = Some(app.url(path));
    while let Some(current) = url {
        let page = app.follow(&current).await;
        assert!(
            page.get("count").is_none(),
            "cursor pages have no count: {page}"
        );
        pages.push(ids(&page));
        url = page[link].as_str().map(str::to_owned);
        assert!(pages.len() < 100, "the walk does not end");
    }
    pages
}

#[backend_test]
async fn a_cursor_walk_visits_every_row_once_in_order_forwards_and_back() {
    let app = spawn_app().await;
    let all = seed_network(&app).await;
    // Ties (-2.0 twice) go by id, descending, as the temperature does.
    let by_temperature = pick(&all, &[5, 1, 4, 0, 3, 2]);

    let forwards = walk(
        &app,
        "/station/?ordering=-temperature&page_size=4&cursor=",
        "next",
    )
    .await;
    let first_page = app
        .get_json("/station/?ordering=-temperature&page_size=4&cursor=")
        .await;
    let second_page = app.follow(first_page["next"].as_str().unwrap()).await;

    assert_eq!(
        forwards,
        [by_temperature[..4].to_vec(), by_temperature[4..].to_vec()]
    );
    assert!(first_page["previous"].is_null());
    let back = app.follow(second_page["previous"].as_str().unwrap()).await;
    assert_eq!(ids(&back), by_temperature[..4].to_vec());
    assert!(back["previous"].is_null());
    assert!(back["next"].is_string());
}

#[backend_test]
async fn rows_inserted_during_a_cursor_walk_are_neither_skipped_nor_repeated() {
    let app = spawn_app().await;
    app.seed_stations(9).await;
    let mut seen: Vec<(String, i64)> = Vec::new();
    let mut url = Some(app.url("/station/?ordering=name&page_size=3&cursor="));
    let mut round = 0;

    while let Some(current) = url {
        let page = app.follow(&current).await;
        for row in page["results"].as_array().unwrap() {
            seen.push((
                row["name"].as_str().unwrap().to_owned(),
                row["id"].as_i64().unwrap(),
            ));
        }
        url = page["next"].as_str().map(str::to_owned);
        // Between pages, readings arrive on both sides of the walk's position: with page
        // numbers these would shift rows across page boundaries.
        if url.is_some() {
            round += 1;
            for name in [format!("aaa-{round}"), format!("zzz-{round}")] {
                app.create_station(&crate::helpers::reading(&name)).await;
            }
        }
    }

    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen, "repeated or out of order");
    let names: Vec<&str> = seen.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names.iter().filter(|n| n.starts_with("station-")).count(),
        9
    );
    assert_eq!(
        names.iter().filter(|n| n.starts_with("zzz-")).count(),
        round
    );
    assert!(!names.iter().any(|n| n.starts_with("aaa-")), "{names:?}");
}

#[backend_test]
async fn a_cursor_walk_keeps_its_filters_and_the_previous_link_goes_back() {
    let app = spawn_app().await;
    let all = seed_network(&app).await;

    let pages = walk(
        &app,
        "/station/?name__icontains=o&ordering=timestamp&page_size=2&cursor=",
        "next",
    )
    .await;

    assert_eq!(
        pages,
        [pick(&all, &[0, 2]), pick(&all, &[3, 4]), pick(&all, &[5])],
        "Oslo, oslo north, Tromsø, Oslo, 50%_off! by time"
    );
    let first = app
        .get_json("/station/?name__icontains=o&ordering=timestamp&page_size=2&cursor=")
        .await;
    let second_url = first["next"].as_str().unwrap().to_owned();
    assert!(second_url.contains("name__icontains=o"));
    assert!(second_url.contains("ordering=timestamp"));
    assert!(second_url.contains("page_size=2"));
    let path = second_url.trim_start_matches(&app.address).to_owned();
    let second = app.get_json(&path).await;
    let back_path = second["previous"]
        .as_str()
        .unwrap()
        .trim_start_matches(&app.address)
        .to_owned();
    assert_eq!(ids(&app.get_json(&back_path).await), pick(&all, &[0, 2]));
}

#[backend_test]
async fn tampered_or_misused_cursors_are_400s() {
    let app = spawn_app().await;
    app.seed_stations(5).await;
    let first = app.get_json("/station/?page_size=2&cursor=").await;
    let next = first["next"].as_str().unwrap().to_owned();
    let token = next.split("cursor=").nth(1).unwrap().to_owned();
    let mut tampered = token.clone().into_bytes();
    tampered[5] = if tampered[5] == b'x' { b'y' } else { b'x' };
    let tampered = String::from_utf8(tampered).unwrap();

    for query in [
        format!("page_size=2&cursor={tampered}"),
        "cursor=not-a-cursor".to_owned(),
        format!("page_size=2&ordering=-id&cursor={token}"),
    ] {
        let body = bad_request(&app, &format!("/station/?{query}")).await;
        assert_eq!(body, json!({"cursor": ["Invalid cursor."]}), "{query}");
    }
    let both = bad_request(&app, &format!("/station/?page=2&cursor={token}")).await;
    assert_eq!(
        both,
        json!({"cursor": ["Use either page or cursor, not both."]})
    );
    let untouched = app
        .get_json(&format!("/station/?page_size=2&cursor={token}"))
        .await;
    assert_eq!(untouched["results"].as_array().unwrap().len(), 2);
}

#[backend_test]
async fn a_cursor_from_one_instance_works_on_another() {
    let app = spawn_app().await;
    app.seed_stations(5).await;
    let other = app.another_instance().await;
    let first = app.get_json("/station/?page_size=2&cursor=").await;
    let next = first["next"]
        .as_str()
        .unwrap()
        .replace(&app.address, &other);

    let page = app.follow(&next).await;

    assert_eq!(page["results"].as_array().unwrap().len(), 2);
}

#[backend_test]
async fn an_empty_cursor_walk_has_no_links() {
    let app = spawn_app().await;

    let page = app.get_json("/station/?cursor=&name=nobody").await;

    assert_eq!(page, json!({"next": null, "previous": null, "results": []}));
}

#[backend_test]
async fn text_filters_with_nul_characters_are_400s_not_database_errors() {
    let app = spawn_app().await;
    seed_network(&app).await;

    let body = bad_request(
        &app,
        "/station/?name=Os%00lo&name__icontains=%00&search=%00&cursor=",
    )
    .await;

    // search drops them, as DRF's SearchFilter does; the name filters refuse them, as Django's
    // CharField does.
    assert_eq!(
        body,
        json!({"name": ["Null characters are not allowed."],
               "name__icontains": ["Null characters are not allowed."]})
    );
}

/// Readings whose temperatures tie in runs of three: `ordering=temperature` puts page
/// boundaries inside the ties, where only `id` decides.
async fn seed_ties(app: &TestApp) -> Vec<i64> {
    let mut by_temperature = Vec::new();
    for n in 0..12 {
        let temperature = f64::from((n * 5) % 4); // 0, 1, 2, 3, 0, 1, …: three of each
        let body = reading(
            &format!("tie-{n}"),
            1_700_000_000 + i64::from(n),
            temperature,
            1.0,
            1.0,
        );
        let created = app.create_station(&body).await;
        by_temperature.push((temperature.to_bits(), created["id"].as_i64().unwrap()));
    }
    by_temperature.sort();
    by_temperature.into_iter().map(|(_, id)| id).collect()
}

#[backend_test]
async fn cursor_pages_that_split_a_tie_neither_skip_nor_repeat_a_row_either_way() {
    let app = spawn_app().await;
    let expected = seed_ties(&app).await;

    let forwards: Vec<i64> = walk(
        &app,
        "/station/?ordering=temperature&page_size=2&cursor=",
        "next",
    )
    .await
    .concat();
    let descending: Vec<i64> = walk(
        &app,
        "/station/?ordering=-temperature&page_size=5&cursor=",
        "next",
    )
    .await
    .concat();

    assert_eq!(forwards, expected);
    // Descending temperature, and within a tie `id` descending too: the whole order reversed.
    let by_descending_temperature: Vec<i64> = expected.iter().rev().copied().collect();
    assert_eq!(descending, by_descending_temperature);
}

#[backend_test]
async fn following_previous_from_the_last_page_walks_the_whole_order_backwards() {
    let app = spawn_app().await;
    let expected = seed_ties(&app).await;
    let mut last = app
        .get_json("/station/?ordering=temperature&page_size=5&cursor=")
        .await;
    while let Some(next) = last["next"].as_str().map(str::to_owned) {
        last = app.follow(&next).await;
    }

    let mut pages = vec![ids(&last)];
    let mut previous = last["previous"].as_str().map(str::to_owned);
    while let Some(url) = previous {
        let page = app.follow(&url).await;
        assert!(page.get("count").is_none());
        pages.push(ids(&page));
        previous = page["previous"].as_str().map(str::to_owned);
        assert!(pages.len() < 10, "the walk back does not end");
    }

    // Each page in order, the pages from last to first; the first page has no previous.
    let backwards: Vec<i64> = pages.iter().rev().flatten().copied().collect();
    assert_eq!(backwards, expected);
    assert_eq!(pages.last().map(Vec::len), Some(5));
}

#[backend_test]
async fn rows_deleted_during_a_cursor_walk_leave_the_rest_of_the_walk_whole() {
    let app = spawn_app().await;
    let created = app.seed_stations(9).await;
    let id = |n: usize| created[n]["id"].as_i64().unwrap();
    let first = app.get_json("/station/?page_size=3&cursor=").await;
    assert_eq!(ids(&first), [id(0), id(1), id(2)]);

    // The row the cursor stands on and one just after it go.
    for gone in [2, 3] {
        let response = app
            .send_json(
                Method::DELETE,
                &format!("/station/{}/", id(gone)),
                &json!({}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }
    let rest = walk(
        &app,
        first["next"]
            .as_str()
            .unwrap()
            .trim_start_matches(&app.address),
        "next",
    )
    .await;

    assert_eq!(rest.concat(), [id(4), id(5), id(6), id(7), id(8)]);
}

#[backend_test]
async fn a_cursor_page_emptied_by_deletes_leads_back_to_the_last_rows() {
    let app = spawn_app().await;
    let created = app.seed_stations(6).await;
    let id = |n: usize| created[n]["id"].as_i64().unwrap();
    let first = app.get_json("/station/?page_size=3&cursor=").await;
    for gone in 3..6 {
        app.send_json(
            Method::DELETE,
            &format!("/station/{}/", id(gone)),
            &json!({}),
        )
        .await;
    }

    // Everything after the first page is gone: the next page is empty, and its previous link
    // (a cursor from the end of the order) is the last page there is.
    let empty = app.follow(first["next"].as_str().unwrap()).await;
    assert_eq!(ids(&empty), Vec::<i64>::new());
    assert!(empty["next"].is_null());
    let last = app.follow(empty["previous"].as_str().unwrap()).await;

    assert_eq!(ids(&last), [id(0), id(1), id(2)]);
    assert!(last["previous"].is_null());
}

#[backend_test]
async fn the_smallest_page_size_is_one() {
    let app = spawn_app().await;
    let all = seed_network(&app).await;

    let page = app.get_json("/station/?page_size=1&page=2").await;

    assert_eq!(ids(&page), pick(&all, &[1]));
    assert_eq!(page["count"], 6);
    assert!(page["next"].as_str().unwrap().contains("page=3"));
    assert!(page["next"].as_str().unwrap().contains("page_size=1"));
}
