//! Many clients at once: SQLite has one writer, yet no client may see `database is locked`, and
//! no acknowledged write may go missing.

use std::collections::HashSet;

use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::future::{join, join_all};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{ADMIN, json_body, reading, spawn_app, spawn_app_with, station_path};
use station_test_macros::backend_test;

#[backend_test]
async fn concurrent_creates_all_succeed_with_unique_ids_and_are_all_stored() {
    let app = spawn_app().await;
    let creates = (0..64).map(|n| {
        let body = reading(&format!("burst-{n}"));
        let request = app.admin(Method::POST, "/station/").json(&body);
        async move { request.send().await.unwrap() }
    });

    let responses = join_all(creates).await;

    let mut ids = HashSet::new();
    for response in responses {
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        assert!(ids.insert(body["id"].as_i64().unwrap()), "duplicate id");
    }
    let listing: Value = app.get("/station/").await.json().await.unwrap();
    assert_eq!(listing["count"], 64);
}

#[backend_test]
async fn concurrent_writes_of_every_kind_never_fail() {
    let app = spawn_app().await;
    let seeded = app.seed_stations(20).await;
    let ids: Vec<i64> = seeded.iter().map(|s| s["id"].as_i64().unwrap()).collect();
    let mut requests = Vec::new();
    for (n, id) in ids.iter().enumerate() {
        let path = format!("/station/{id}/");
        let request = match n % 4 {
            0 => app.admin(Method::PUT, &path).json(&reading("replaced")),
            1 => app
                .admin(Method::PATCH, &path)
                .json(&serde_json::json!({"temperature": n})),
            2 => app.admin(Method::DELETE, &path),
            _ => app.admin(Method::POST, "/station/").json(&reading("extra")),
        };
        requests.push(async move { request.send().await.unwrap().status() });
    }

    let statuses = join_all(requests).await;

    for status in statuses {
        assert!(status.is_success(), "got {status}");
    }
    let listing: Value = app.get("/station/").await.json().await.unwrap();
    assert_eq!(listing["count"], 20 - 5 + 5);
}

#[backend_test]
async fn a_burst_of_first_requests_with_the_same_credentials_all_get_in() {
    let app = spawn_app().await;
    let requests = (0..32).map(|_| {
        let request = app
            .anonymous(Method::GET, "/station/")
            .basic_auth(ADMIN.0, Some(ADMIN.1));
        async move { request.send().await.unwrap().status() }
    });

    let statuses = join_all(requests).await;

    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
}

#[backend_test]
async fn a_single_connection_pool_serves_a_burst_of_mixed_requests_in_turn() {
    let app =
        crate::helpers::spawn_app_with(|settings| settings.database.pool_size = Some(1)).await;
    let requests = (0..48).map(|n| {
        let request = if n % 3 == 0 {
            app.admin(Method::POST, "/station/")
                .json(&reading(&format!("queued-{n}")))
        } else {
            app.admin(Method::GET, "/station/")
        };
        async move { request.send().await.unwrap().status() }
    });

    let statuses = join_all(requests).await;

    assert!(statuses.iter().all(StatusCode::is_success), "{statuses:?}");
    let listing: Value = app.get("/station/").await.json().await.unwrap();
    assert_eq!(listing["count"], 16);
}

#[backend_test]
async fn every_page_read_during_inserts_agrees_with_its_own_count() {
    let app = spawn_app().await;
    app.seed_stations(15).await;
    let creates = (0..30).map(|n| {
        let request = app
            .admin(Method::POST, "/station/")
            .json(&reading(&format!("late-{n}")));
        async move { request.send().await.unwrap().status() }
    });
    let reads = (0..30).map(|_| {
        let request = app.admin(Method::GET, "/station/?page=2");
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    });

    let (statuses, pages) = futures_util::future::join(join_all(creates), join_all(reads)).await;

    assert!(statuses.iter().all(|s| *s == StatusCode::CREATED));
    for page in pages {
        let count = page["count"].as_u64().unwrap();
        let results = page["results"].as_array().unwrap();
        assert!((15..=45).contains(&count), "{page}");
        assert_eq!(results.len() as u64, (count - 10).min(10), "{page}");
        assert_eq!(page["next"].is_null(), count <= 20, "{page}");
        assert!(page["previous"].is_string(), "{page}");
        let ids: Vec<i64> = results.iter().map(|r| r["id"].as_i64().unwrap()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{page}");
    }
    let all = app.all_stations().await;
    assert_eq!(all.len(), 45);
    let unique: HashSet<i64> = all.iter().map(|s| s["id"].as_i64().unwrap()).collect();
    assert_eq!(unique.len(), 45);
}

#[backend_test]
async fn two_instances_on_one_database_hand_out_unique_ids_and_agree_on_the_count() {
    let app = spawn_app().await;
    let other = app.another_instance().await;
    let instances = [app.address.clone(), other.clone()];
    let creates = (0..40).map(|n| {
        let request = app
            .client
            .post(format!("{}/station/", instances[n % 2]))
            .basic_auth(ADMIN.0, Some(ADMIN.1))
            .json(&reading(&format!("instance-{}-{n}", n % 2)));
        async move { request.send().await.unwrap() }
    });

    let responses = join_all(creates).await;

    let mut ids = HashSet::new();
    for response in responses {
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        assert!(ids.insert(body["id"].as_i64().unwrap()), "duplicate id");
    }
    for instance in &instances {
        let page: Value = app
            .client
            .get(format!("{instance}/station/"))
            .basic_auth(ADMIN.0, Some(ADMIN.1))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(page["count"], 40, "{instance}");
    }
}

#[backend_test]
async fn a_write_that_fails_is_undone_alone_and_the_writes_beside_it_commit() {
    use diesel::prelude::*;
    use station_api::db::station_repository;
    use station_api::domain::station::NewStation;

    // Arrange: writes that arrive together, so SQLite's writer commits them as one group;
    // every fourth stores its reading and then fails.
    let app = spawn_app().await;
    let writes = (0..40).map(|n| {
        let database = app.database.clone();
        let new_station = NewStation::parse(&reading(&format!("write-{n}"))).unwrap();
        async move {
            let outcome = database
                .write(move |conn| {
                    let row = station_repository::insert(conn, &new_station)?;
                    if n % 4 == 0 {
                        diesel::sql_query("INSERT INTO no_such_table VALUES (1)").execute(conn)?;
                    }
                    Ok(row)
                })
                .await;
            (n, outcome)
        }
    });

    // Act
    let outcomes = join_all(writes).await;

    // Assert: the failures are errors, and only the others' readings are stored.
    let mut committed = Vec::new();
    for (n, outcome) in outcomes {
        match outcome {
            Ok(row) if n % 4 != 0 => committed.push(row.name),
            other => assert!(n % 4 == 0 && other.is_err(), "write {n}: {other:?}"),
        }
    }
    let mut stored: Vec<String> = app
        .all_stations()
        .await
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    stored.sort();
    committed.sort();
    assert_eq!(committed.len(), 30);
    assert_eq!(stored, committed);
}

#[backend_test]
async fn each_read_sees_every_write_acknowledged_before_it_was_sent_while_other_reads_crowd_in() {
    let app = spawn_app().await;
    let seeded = app.seed_stations(10).await;
    let crowd_path = station_path(&seeded[0]);
    let writers_done = AtomicBool::new(false);
    // Writers read back each change as soon as it is acknowledged, while a crowd of other reads
    // keeps the query threads busy, so reads queue up and are taken together.
    let writers = (0..8).map(|n| {
        let app = &app;
        async move {
            let created = app.create_station(&reading(&format!("rw-{n}"))).await;
            let path = station_path(&created);
            assert_eq!(app.get_json(&path).await, created);
            let change = serde_json::json!({"temperature": n});
            let patched = json_body(app.send_json(Method::PATCH, &path, &change).await).await;
            assert_eq!(app.get_json(&path).await, patched);
            let deleted = app.admin(Method::DELETE, &path).send().await.unwrap();
            assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
            assert_eq!(app.get(&path).await.status(), StatusCode::NOT_FOUND);
        }
    });
    let crowd = (0..16).map(|_| async {
        let mut reads = 0;
        while !writers_done.load(Ordering::Relaxed) {
            assert_eq!(app.get(&crowd_path).await.status(), StatusCode::OK);
            reads += 1;
        }
        reads
    });

    let ((), reads) = join(
        async {
            join_all(writers).await;
            writers_done.store(true, Ordering::Relaxed);
        },
        join_all(crowd),
    )
    .await;

    assert!(
        reads.iter().sum::<usize>() >= 16,
        "the crowd read alongside: {reads:?}"
    );
}

#[backend_test]
async fn an_update_racing_a_delete_answers_with_what_it_wrote_or_404() {
    let app = spawn_app().await;
    let seeded = app.seed_stations(100).await;

    // Each reading gets a PUT, a PATCH and a DELETE at once. Whatever order they land in, a 200
    // must carry the values its own request wrote: MariaDB's read-back once came from the
    // transaction's first snapshot and answered 200 with the old row, though nothing was
    // written and the row was gone.
    let races = seeded.iter().enumerate().map(|(n, station)| {
        let path = station_path(station);
        let mut replacement = reading(&format!("replaced-{n}"));
        replacement["temperature"] = Value::from(-40.5);
        let put = app.admin(Method::PUT, &path).json(&replacement).send();
        let patch = app
            .admin(Method::PATCH, &path)
            .json(&serde_json::json!({"temperature": 99.5}))
            .send();
        let delete = app.admin(Method::DELETE, &path).send();
        async move {
            let (put, (patch, delete)) = join(put, join(patch, delete)).await;
            (n, put.unwrap(), patch.unwrap(), delete.unwrap())
        }
    });

    for (n, put, patch, delete) in join_all(races).await {
        assert_eq!(delete.status(), StatusCode::NO_CONTENT);
        match put.status() {
            StatusCode::OK => {
                let body = json_body(put).await;
                assert_eq!(body["name"], format!("replaced-{n}"), "{body}");
                assert_eq!(body["temperature"], -40.5, "{body}");
            }
            status => assert_eq!(status, StatusCode::NOT_FOUND),
        }
        match patch.status() {
            StatusCode::OK => {
                let body = json_body(patch).await;
                assert_eq!(body["temperature"], 99.5, "{body}");
            }
            status => assert_eq!(status, StatusCode::NOT_FOUND),
        }
    }
    let listing: Value = app.get("/station/").await.json().await.unwrap();
    assert_eq!(listing["count"], 0);
}

diesel::table! {
    /// A table of the test's own, with a UNIQUE column.
    unique_values (id) {
        id -> BigInt,
        value -> BigInt,
    }
}

/// A statement that failed must not fail again on its next use. Diesel's MySQL statements read
/// their error with `mysql_stmt_error`, which binding new parameters does not clear, so a cached
/// prepared statement that failed once (a duplicate key here; a deadlock or a Galera conflict in
/// production) gave the same error to every later use on that connection. The database layer
/// retires a MySQL connection after a failed statement; with one connection in the pool, every
/// insert here runs on the one the failure happened on, or on its replacement.
#[backend_test]
async fn a_failed_statement_does_not_fail_the_next_use_of_it() {
    use diesel::connection::SimpleConnection as _;
    use diesel::prelude::*;

    let app = spawn_app_with(|settings| settings.database.pool_size = Some(1)).await;
    app.database
        .write_blocking(|conn| {
            conn.batch_execute(
                "CREATE TABLE unique_values (id BIGINT PRIMARY KEY, value BIGINT NOT NULL UNIQUE)",
            )
        })
        .unwrap();
    let insert = |id: i64, value: i64| {
        app.database.write_blocking(move |conn| {
            diesel::insert_into(unique_values::table)
                .values((unique_values::id.eq(id), unique_values::value.eq(value)))
                .execute(conn)
        })
    };
    insert(1, 10).unwrap();
    assert!(insert(2, 10).unwrap_err().is_unique_violation());
    for id in 3..6 {
        insert(id, id * 10).unwrap();
    }
    let stored: Vec<i64> = app
        .database
        .write_blocking(|conn| {
            unique_values::table
                .select(unique_values::value)
                .order(unique_values::id)
                .load(conn)
        })
        .unwrap();
    assert_eq!(stored, [10, 30, 40, 50]);
    let answer = app.get("/station/").await;
    assert_eq!(answer.status(), StatusCode::OK);
}
