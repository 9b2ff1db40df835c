//! No acknowledged write is lost: the service is killed with SIGKILL in the middle of a stream of
//! creates, started again on the same database, and every create that got a 201 is there.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use station_test_macros::backend_test;

use crate::databases::TestDatabase;
use crate::helpers::reading;
use crate::process::{Server, run, start_server, text};

const PASSWORD: &str = "a-durable-password";
const WRITERS: usize = 4;

/// Posts readings until the server stops answering; returns the ids and names it acknowledged.
async fn write_until_killed(
    client: reqwest::Client,
    base: String,
    writer: usize,
) -> Vec<(i64, String)> {
    let mut acknowledged = Vec::new();
    for n in 0.. {
        let name = format!("w{writer}-{n}");
        let sent = client
            .post(format!("{base}/station/"))
            .basic_auth("admin", Some(PASSWORD))
            .json(&reading(&name))
            .send()
            .await;
        let Ok(response) = sent else { break };
        if response.status() != StatusCode::CREATED {
            break;
        }
        // A 201 whose body never arrived was not acknowledged to this client.
        let Ok(body) = response.json::<Value>().await else {
            break;
        };
        acknowledged.push((body["id"].as_i64().unwrap(), name));
    }
    acknowledged
}

/// Every reading the service at `base` lists, id to name.
async fn stored(client: &reqwest::Client, base: &str) -> BTreeMap<i64, String> {
    let mut stations = BTreeMap::new();
    let mut next = Some(format!("{base}/station/"));
    while let Some(url) = next {
        let page: Value = client
            .get(url)
            .basic_auth("admin", Some(PASSWORD))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for station in page["results"].as_array().unwrap() {
            stations.insert(
                station["id"].as_i64().unwrap(),
                station["name"].as_str().unwrap().to_owned(),
            );
        }
        next = page["next"].as_str().map(str::to_owned);
    }
    stations
}

fn started(database: &TestDatabase) -> (Server, String) {
    let server = start_server(&database.url);
    let base = format!("http://127.0.0.1:{}", server.port());
    (server, base)
}

#[backend_test]
async fn every_acknowledged_create_survives_a_sigkill() {
    let _turn = crate::ONE_AT_A_TIME.lock().await;
    let database = TestDatabase::fresh();
    let created = run(
        &database.url,
        &["createsuperuser", "--username", "admin"],
        &format!("{PASSWORD}\n"),
    );
    assert!(created.status.success(), "{}", text(&created.stderr));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let (server, base) = started(&database);

    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| tokio::spawn(write_until_killed(client.clone(), base.clone(), writer)))
        .collect();
    // Kill once every writer is well into its stream.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let killed = server.signal_and_wait("-KILL");
    let mut acknowledged = Vec::new();
    for writer in writers {
        acknowledged.extend(writer.await.unwrap());
    }

    assert!(!killed.success(), "the server was killed, not stopped");
    assert!(
        acknowledged.len() >= WRITERS * 5,
        "too few creates before the kill"
    );
    let (restarted, base) = started(&database);
    let stored = stored(&client, &base).await;
    eprintln!(
        "{} creates acknowledged before SIGKILL, {} rows stored after restart",
        acknowledged.len(),
        stored.len()
    );
    for (id, name) in &acknowledged {
        assert_eq!(
            stored.get(id),
            Some(name),
            "acknowledged create {id} ({name}) lost"
        );
    }
    assert!(restarted.signal_and_wait("-TERM").success());
}
