//! `GET /station/stream/` (issue 16): every committed change once, in id order, as Server-Sent
//! Events; resumable from the change log (also on another instance, and after retention with
//! `event: reset`); filtered like the list; keep-alives; slow clients cut and resumed without
//! loss; a cap on clients; transactions that commit out of id order.

use std::sync::mpsc;
use std::time::Duration;

use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use station_api::config::Settings;
use station_api::db::{Database, DatabaseSettings, station_repository};
use station_api::domain::station::NewStation;
use station_test_macros::backend_test;

use crate::helpers::{
    ADMIN, TestApp, assert_detail, header, json_body, reading, send, spawn_app, spawn_app_with,
};

/// How long a test waits for the next bytes of a stream before it fails.
const PATIENCE: Duration = Duration::from_secs(20);

/// One Server-Sent Event.
#[derive(Debug, Clone, PartialEq)]
struct Event {
    id: Option<i64>,
    kind: String,
    data: Value,
}

/// What a stream sends between blank lines.
#[derive(Debug, Clone, PartialEq)]
enum Block {
    Event(Event),
    Comment(String),
    Retry(u64),
}

/// An open event stream, read block by block.
struct EventStream {
    response: reqwest::Response,
    buffer: Vec<u8>,
}

impl EventStream {
    /// Sends `request` and checks that it opened a stream.
    async fn open(request: RequestBuilder) -> Self {
        let response = request.send().await.expect("stream request sent");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            header(&response, "content-type").as_deref(),
            Some("text/event-stream")
        );
        let mut stream = Self {
            response,
            buffer: Vec::new(),
        };
        // The first block tells browsers when to reconnect; after it, the subscription exists.
        assert_eq!(stream.next_block().await, Some(Block::Retry(2000)));
        stream
    }

    /// The next block; `None` when the server ended the stream.
    async fn next_block(&mut self) -> Option<Block> {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|pair| pair == b"\n\n") {
                let block: Vec<u8> = self.buffer.drain(..end + 2).collect();
                return Some(parse_block(std::str::from_utf8(&block).expect("UTF-8")));
            }
            let chunk = tokio::time::timeout(PATIENCE, self.response.chunk())
                .await
                .expect("the stream sent nothing for too long")
                .expect("the stream was read");
            match chunk {
                Some(bytes) => self.buffer.extend_from_slice(&bytes),
                None => {
                    assert!(self.buffer.is_empty(), "a partial block at the end");
                    return None;
                }
            }
        }
    }

    /// The next event, skipping comments (keep-alives do not count as progress).
    async fn next_event(&mut self) -> Event {
        let next = async {
            loop {
                match self.next_block().await.expect("the stream ended") {
                    Block::Event(event) => return event,
                    Block::Comment(_) | Block::Retry(_) => {}
                }
            }
        };
        tokio::time::timeout(PATIENCE, next)
            .await
            .expect("no event came in time")
    }

    /// The next `count` events.
    async fn events(&mut self, count: usize) -> Vec<Event> {
        let mut events = Vec::with_capacity(count);
        for _ in 0..count {
            events.push(self.next_event().await);
        }
        events
    }

    /// Every event until the server ends the stream (within two minutes).
    async fn until_the_end(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        let read = async {
            while let Some(block) = self.next_block().await {
                if let Block::Event(event) = block {
                    events.push(event);
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(120), read)
            .await
            .expect("the stream did not end");
        events
    }
}

fn parse_block(block: &str) -> Block {
    let mut event = Event {
        id: None,
        kind: "message".to_owned(),
        data: Value::Null,
    };
    for line in block.lines().filter(|line| !line.is_empty()) {
        if let Some(comment) = line.strip_prefix(':') {
            return Block::Comment(comment.trim().to_owned());
        }
        let (field, value) = line.split_once(": ").unwrap_or((line, ""));
        match field {
            "retry" => return Block::Retry(value.parse().expect("retry in ms")),
            "id" => event.id = Some(value.parse().expect("a numeric id")),
            "event" => event.kind = value.to_owned(),
            "data" => event.data = serde_json::from_str(value).expect("JSON data"),
            other => panic!("unexpected field {other:?} in {block:?}"),
        }
    }
    Block::Event(event)
}

/// A client without the helpers' 30-second limit on a whole response: streams outlive it.
fn stream_client() -> reqwest::Client {
    reqwest::Client::builder().build().expect("HTTP client")
}

/// GET `path` on `address` as the admin, for a stream.
fn stream_request(address: &str, path: &str) -> RequestBuilder {
    stream_client()
        .get(format!("{address}{path}"))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
}

async fn subscribe(app: &TestApp, path: &str) -> EventStream {
    EventStream::open(stream_request(&app.address, path)).await
}

fn reading_at(name: &str, temperature: f64) -> Value {
    json!({"name": name, "timestamp": 1_700_000_000_i64, "temperature": temperature,
           "lat": 59.91, "lon": 10.75})
}

/// Creates `count` readings of stations `{prefix}-0`, `{prefix}-1`, … in one bulk request;
/// the readings as stored.
async fn create_many(app: &TestApp, prefix: &str, count: usize) -> Vec<Value> {
    let body: Vec<Value> = (0..count)
        .map(|n| reading_at(&format!("{prefix}-{n}"), 1.0))
        .collect();
    let response = app.post_json("/station/", &json!(body)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    json_body(response).await.as_array().unwrap().clone()
}

fn ids(events: &[Event]) -> Vec<i64> {
    events
        .iter()
        .map(|event| event.id.expect("an id"))
        .collect()
}

fn station_ids(events: &[Event]) -> Vec<i64> {
    events
        .iter()
        .map(|event| event.data["id"].as_i64().expect("a reading id"))
        .collect()
}

/// The events with their readings' `url`s left out, to compare what different instances sent.
fn without_urls(events: &[Event]) -> Vec<Event> {
    events
        .iter()
        .cloned()
        .map(|mut event| {
            if let Some(data) = event.data.as_object_mut() {
                data.remove("url");
            }
            event
        })
        .collect()
}

fn kinds(events: &[Event]) -> Vec<&str> {
    events.iter().map(|event| event.kind.as_str()).collect()
}

fn assert_increasing(events: &[Event]) {
    let ids = ids(events);
    assert!(
        ids.windows(2).all(|pair| pair[0] < pair[1]),
        "ids not increasing: {ids:?}"
    );
}

#[backend_test]
async fn every_committed_change_arrives_once_in_order_with_the_reading() {
    // Arrange
    let app = spawn_app().await;
    let mut stream = EventStream::open(
        stream_request(&app.address, "/station/stream/").header("accept-encoding", "gzip, br"),
    )
    .await;

    // Act: a create, a bulk create, a bulk that fails as a whole, a replace, a patch, a delete.
    let first = app.create_station(&reading_at("Oslo", 1.0)).await;
    let bulk = [reading_at("Bergen", 2.0), reading_at("Tromsø", 3.0)];
    let response = app.post_json("/station/", &json!(bulk)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let bulk = json_body(response).await;
    let refused = json!([reading_at("Bergen", 4.0), {"name": "Bergen", "temperature": "warm"}]);
    let response = app.post_json("/station/", &refused).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let id = first["id"].as_i64().unwrap();
    let path = format!("/station/{id}/");
    let response = send(app.admin(Method::PUT, &path).json(&reading_at("Oslo", 5.0))).await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = send(
        app.admin(Method::PATCH, &path)
            .json(&json!({"temperature": 6.5})),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let patched = json_body(response).await;
    let response = send(app.admin(Method::DELETE, &path)).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    // Assert: exactly the committed changes, in id order, each with what the API answered.
    let events = stream.events(6).await;
    assert_eq!(
        kinds(&events),
        [
            "created", "created", "created", "updated", "updated", "deleted"
        ]
    );
    assert_increasing(&events);
    assert_eq!(events[0].data, first);
    assert_eq!(events[1].data, bulk[0]);
    assert_eq!(events[2].data, bulk[1]);
    assert_eq!(events[3].data["temperature"], json!(5.0));
    assert_eq!(events[4].data, patched);
    assert_eq!(
        events[5].data,
        json!({"id": id, "url": app.url(&format!("/station/{id}/"))})
    );
    // The next event is the next change: nothing from the refused bulk is in between.
    let last = app.create_station(&reading_at("Oslo", 7.0)).await;
    let next = stream.next_event().await;
    assert_eq!(next.data, last);
    assert_eq!(next.id, Some(events[5].id.unwrap() + 1));
}

#[backend_test]
async fn the_stream_is_neither_compressed_nor_cached_by_proxies() {
    let app = spawn_app().await;
    let response = send(
        stream_request(&app.address, "/station/stream/").header("accept-encoding", "gzip, br"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_ne!(
        header(&response, "content-encoding").as_deref(),
        Some("gzip")
    );
    assert_ne!(header(&response, "content-encoding").as_deref(), Some("br"));
    assert_eq!(
        header(&response, "x-accel-buffering").as_deref(),
        Some("no")
    );
    assert!(
        header(&response, "cache-control").is_some_and(|value| value.contains("no-cache")),
        "{:?}",
        response.headers()
    );
}

#[backend_test]
async fn a_client_resumes_after_its_last_event_id_on_any_instance() {
    // Arrange: three changes while nobody listened.
    let app = spawn_app().await;
    let mut live = subscribe(&app, "/station/stream/").await;
    for n in 1..=3 {
        app.create_station(&reading_at("Oslo", f64::from(n))).await;
    }
    let seen = live.events(3).await;
    drop(live);
    let (first, last) = (seen[0].id.unwrap(), seen[2].id.unwrap());
    let restarted = app.another_instance().await;

    // Act: resume after the first, by header, on a new instance (as after a restart), by query
    // string, and by both (the header, which a browser updates on reconnecting, wins).
    let mut by_header = EventStream::open(
        stream_request(&restarted, "/station/stream/").header("last-event-id", first.to_string()),
    )
    .await;
    let mut by_query = EventStream::open(stream_request(
        &restarted,
        &format!("/station/stream/?last_event_id={first}"),
    ))
    .await;
    let mut by_both = EventStream::open(
        stream_request(&app.address, "/station/stream/?last_event_id=0")
            .header("last-event-id", last.to_string()),
    )
    .await;

    // Assert: the missed changes from the log, then live ones.
    let replayed = by_header.events(2).await;
    assert_eq!(without_urls(&replayed), without_urls(&seen[1..]));
    assert_eq!(
        without_urls(&by_query.events(2).await),
        without_urls(&seen[1..])
    );
    let fourth = app.create_station(&reading_at("Oslo", 4.0)).await;
    for stream in [&mut by_header, &mut by_query, &mut by_both] {
        let event = stream.next_event().await;
        assert_eq!(event.data["id"], fourth["id"]);
        assert_eq!(event.id, Some(last + 1));
    }
}

#[backend_test]
async fn a_change_through_one_instance_reaches_a_stream_on_another() {
    // Arrange
    let app = spawn_app().await;
    let other = app.another_instance().await;
    let mut stream = EventStream::open(stream_request(&other, "/station/stream/")).await;

    // Act
    let created = app.create_station(&reading_at("Oslo", 1.0)).await;

    // Assert: there, with that instance's URLs.
    let event = stream.next_event().await;
    assert_eq!(event.kind, "created");
    assert_eq!(event.data["id"], created["id"]);
    assert_eq!(
        event.data["url"],
        json!(format!("{other}/station/{}/", created["id"]))
    );
}

#[backend_test]
async fn the_lists_filters_and_a_bound_token_narrow_the_stream() {
    // Arrange
    let app = spawn_app().await;
    let response = app
        .post_json(
            "/tokens/",
            &json!({"label": "screen", "scopes": ["read"], "station": "Kitchen"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let key = json_body(response).await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut by_name = subscribe(&app, "/station/stream/?name=Kitchen").await;
    let mut warm = subscribe(&app, "/station/stream/?temperature__gte=20&search=e").await;
    let mut bound = EventStream::open(
        stream_client()
            .get(app.url("/station/stream/"))
            .header("authorization", format!("Bearer {key}")),
    )
    .await;

    // Act
    let kitchen_cold = app.create_station(&reading_at("Kitchen", 5.0)).await;
    let cellar_warm = app.create_station(&reading_at("Cellar", 25.0)).await;
    let kitchen_warm = app.create_station(&reading_at("Kitchen", 22.0)).await;
    let path = format!("/station/{}/", kitchen_cold["id"]);
    let response = send(app.admin(Method::DELETE, &path)).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let marker = app.create_station(&reading_at("Kitchen", 30.0)).await;

    // Assert: a delete passes a filter by the values the reading had.
    let kitchen = by_name.events(4).await;
    assert_eq!(
        kinds(&kitchen),
        ["created", "created", "deleted", "created"]
    );
    assert_eq!(
        station_ids(&kitchen),
        [&kitchen_cold, &kitchen_warm, &kitchen_cold, &marker].map(|s| s["id"].as_i64().unwrap())
    );
    let warm_events = warm.events(3).await;
    assert_eq!(
        station_ids(&warm_events),
        [&cellar_warm, &kitchen_warm, &marker].map(|s| s["id"].as_i64().unwrap())
    );
    assert_eq!(bound.events(4).await, kitchen);
}

#[backend_test]
async fn bad_resume_points_and_filters_are_refused_and_streams_need_read_access() {
    let app = spawn_app().await;
    let detail = "Last-Event-ID must be a change id: a whole number, 0 or more.";
    for bad in ["abc", "-1", "1.5", "99999999999999999999", "0x10"] {
        let response =
            send(stream_request(&app.address, "/station/stream/").header("last-event-id", bad))
                .await;
        assert_detail(response, StatusCode::BAD_REQUEST, detail).await;
        let path = format!("/station/stream/?last_event_id={bad}");
        assert_detail(
            send(stream_request(&app.address, &path)).await,
            StatusCode::BAD_REQUEST,
            detail,
        )
        .await;
    }
    let twice = stream_request(&app.address, "/station/stream/")
        .header("last-event-id", "1")
        .header("last-event-id", "2");
    assert_detail(send(twice).await, StatusCode::BAD_REQUEST, detail).await;
    let response = send(stream_request(
        &app.address,
        "/station/stream/?temperature__gte=warm",
    ))
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(json_body(response).await["temperature__gte"].is_array());
    let response = send(stream_client().get(app.url("/station/stream/"))).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response =
        send(stream_request(&app.address, "/station/stream/").header("accept", "application/json"))
            .await;
    assert_eq!(response.status(), StatusCode::NOT_ACCEPTABLE);
    // An empty Last-Event-ID (a browser that has seen no id yet) starts with the next change.
    let mut stream = EventStream::open(
        stream_request(&app.address, "/station/stream/").header("last-event-id", ""),
    )
    .await;
    let created = app.create_station(&reading("Oslo")).await;
    assert_eq!(stream.next_event().await.data, created);
}

#[backend_test]
async fn a_resume_point_the_log_no_longer_keeps_gets_a_reset_then_the_rest() {
    // Arrange: three changes, the first two older than the retention.
    let app = spawn_app().await;
    let mut live = subscribe(&app, "/station/stream/").await;
    for n in 1..=3 {
        app.create_station(&reading_at("Oslo", f64::from(n))).await;
    }
    let seen = live.events(3).await;
    let second = seen[1].id.unwrap();
    app.database
        .blocking(move |conn| {
            use diesel::prelude::*;
            use station_api::db::schema::station_changes::dsl::{changed_at, id, station_changes};
            diesel::update(station_changes.filter(id.le(second)))
                .set(changed_at.eq(0))
                .execute(conn)
        })
        .unwrap();
    // A new instance prunes as it starts.
    let pruning = app.another_instance().await;
    let mut pruned = 0;
    for _ in 0..100 {
        pruned = app
            .database
            .blocking(station_api::db::change_repository::pruned_through)
            .unwrap();
        if pruned > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(pruned, second);

    // Act: resume from before what is kept, and from a point the log has not reached.
    let first = seen[0].id.unwrap();
    let mut behind = EventStream::open(
        stream_request(&pruning, "/station/stream/").header("last-event-id", first.to_string()),
    )
    .await;
    let mut ahead = EventStream::open(
        stream_request(&pruning, "/station/stream/").header("last-event-id", "1000000"),
    )
    .await;

    // Assert: a reset, whose id is where the stream goes on from, then every kept change.
    let reset = behind.next_event().await;
    assert_eq!(reset.kind, "reset");
    assert_eq!(reset.id, Some(second));
    assert!(
        reset.data["detail"]
            .as_str()
            .unwrap()
            .contains("Re-read the list")
    );
    assert_eq!(
        without_urls(&[behind.next_event().await]),
        without_urls(&seen[2..])
    );
    let reset = ahead.next_event().await;
    assert_eq!((reset.kind.as_str(), reset.id), ("reset", seen[2].id));
    let fourth = app.create_station(&reading_at("Oslo", 4.0)).await;
    assert_eq!(behind.next_event().await.data["id"], fourth["id"]);
    assert_eq!(ahead.next_event().await.data["id"], fourth["id"]);
}

#[backend_test]
async fn streams_past_the_maximum_get_503_and_a_closed_one_frees_its_place() {
    // A client that went away is noticed when its stream is next written to: at the latest,
    // the next keep-alive.
    let app = spawn_app_with(|settings: &mut Settings| {
        settings.stream.max_clients = 2;
        settings.stream.keep_alive = Duration::from_millis(200);
    })
    .await;
    let first = subscribe(&app, "/station/stream/").await;
    let _second = subscribe(&app, "/station/stream/").await;

    let response = send(stream_request(&app.address, "/station/stream/")).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(header(&response, "retry-after").is_some());
    assert_detail(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "Too many event streams are open; try again later.",
    )
    .await;

    drop(first);
    let mut reopened = None;
    for _ in 0..100 {
        let response = send(stream_request(&app.address, "/station/stream/")).await;
        if response.status() == StatusCode::OK {
            reopened = Some(response);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        reopened.is_some(),
        "the closed stream's place was never freed"
    );
}

#[backend_test]
async fn an_idle_stream_gets_keep_alive_comments() {
    let app = spawn_app_with(|settings: &mut Settings| {
        settings.stream.keep_alive = Duration::from_millis(300);
    })
    .await;
    let mut stream = subscribe(&app, "/station/stream/").await;
    for _ in 0..2 {
        assert_eq!(
            stream.next_block().await,
            Some(Block::Comment("keep-alive".to_owned()))
        );
    }
}

#[backend_test]
async fn a_client_that_cannot_keep_up_is_cut_off_and_resumes_without_loss() {
    // Arrange: a buffer of 16 changes, and a client that does not read.
    let app = spawn_app_with(|settings: &mut Settings| settings.stream.buffer = 16).await;
    let mut slow = subscribe(&app, "/station/stream/").await;
    let mut created = Vec::new();

    // Act: more changes than the sockets' buffers hold (here at most 6 MiB to receive and 4 MiB
    // to send, by net.ipv4.tcp_rmem and tcp_wmem): 100,000 events of about 190 bytes.
    for batch in 0..10 {
        let stored = create_many(&app, &format!("station-{batch}"), 10_000).await;
        created.extend(
            stored
                .iter()
                .map(|data| data["id"].as_i64().expect("a reading id")),
        );
    }

    // Assert: the stream ends early; resuming after its last event delivers the rest.
    let before_the_cut = slow.until_the_end().await;
    assert!(before_the_cut.len() < created.len(), "never cut off");
    assert_increasing(&before_the_cut);
    let last = before_the_cut.last().and_then(|event| event.id).unwrap();
    let mut resumed = EventStream::open(
        stream_request(&app.address, "/station/stream/").header("last-event-id", last.to_string()),
    )
    .await;
    let rest = resumed.events(created.len() - before_the_cut.len()).await;
    assert_eq!(rest[0].id, Some(last + 1));
    let mut received = station_ids(&before_the_cut);
    received.extend(station_ids(&rest));
    assert_eq!(received, created);
}

#[backend_test]
async fn a_filtered_stream_outlasts_many_changes_it_does_not_want() {
    // Arrange: a buffer of 16 changes, and a stream for one station only.
    let app = spawn_app_with(|settings: &mut Settings| settings.stream.buffer = 16).await;
    let mut kitchen = subscribe(&app, "/station/stream/?name=Kitchen").await;

    // Act: far more changes to other stations than the buffer holds, in bursts, then one to
    // the station it wants.
    for batch in 0..5 {
        create_many(&app, &format!("garage-{batch}"), 200).await;
    }
    let wanted = app
        .post_json("/station/", &reading_at("Kitchen", 21.5))
        .await;
    assert_eq!(wanted.status(), StatusCode::CREATED);
    let wanted = json_body(wanted).await;

    // Assert: the stream was not cut off for sleeping through them; the next event is the
    // one it wants.
    let event = kitchen.next_event().await;
    assert_eq!(event.kind, "created");
    assert_eq!(event.data, wanted);
}

#[backend_test]
async fn changes_committed_out_of_id_order_are_delivered_in_id_order() {
    // Arrange: a subscriber, and a transaction of our own on the same database.
    let app = spawn_app().await;
    let mut stream = subscribe(&app, "/station/stream/").await;
    let baseline = app.create_station(&reading_at("Oslo", 1.0)).await;
    let baseline_event = stream.next_event().await;
    assert_eq!(baseline_event.data, baseline);
    let mut settings = DatabaseSettings::new(app.database_url.clone());
    settings.pool_size = Some(1);
    let held = Database::connect(&settings).expect("a second pool");
    let (inserted_tx, inserted) = mpsc::channel();
    let (commit_tx, commit) = mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        held.write_blocking(|conn| {
            // The trigger takes the next change id here; it is not visible until the commit.
            let new = NewStation::parse(&reading_at("Held", 2.0)).expect("valid reading");
            let row = station_repository::insert(conn, &new)?;
            inserted_tx.send(row.id).expect("told");
            commit.recv().expect("told to commit");
            Ok(row.id)
        })
        .expect("the held transaction commits")
    });
    let held_id = tokio::task::spawn_blocking(move || inserted.recv().expect("inserted"))
        .await
        .unwrap();

    // MariaDB lists transactions from a cache up to 100 ms old.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let writing = app
        .database
        .blocking(station_api::db::change_repository::writers_in_progress)
        .expect("the transactions in progress can be listed");
    if app.database.backend() != station_api::db::Backend::Sqlite {
        assert!(!writing.is_empty(), "the held transaction is not listed");
    }

    // Act: a change that takes a later id and (except on SQLite, whose one writer waits for
    // the held transaction) commits first; then the held transaction commits.
    let app_address = app.address.clone();
    let later = actix_web::rt::spawn(async move {
        send(
            stream_client()
                .post(format!("{app_address}/station/"))
                .basic_auth(ADMIN.0, Some(ADMIN.1))
                .json(&reading_at("Later", 3.0)),
        )
        .await
    });
    // Long enough for the later change to commit and for the feed to look at the log.
    tokio::time::sleep(Duration::from_secs(1)).await;
    commit_tx.send(()).unwrap();
    tokio::task::spawn_blocking(move || holder.join().expect("holder"))
        .await
        .unwrap();
    let later = later.await.unwrap();
    assert_eq!(later.status(), StatusCode::CREATED);
    let later = json_body(later).await;

    // Assert: both, in id order: the held one first, though it committed last.
    let events = stream.events(2).await;
    assert_eq!(
        ids(&events),
        [
            baseline_event.id.unwrap() + 1,
            baseline_event.id.unwrap() + 2
        ]
    );
    assert_eq!(events[0].data["id"], json!(held_id));
    assert_eq!(events[1].data, later);
    // A client resuming from before them gets the same.
    let mut resumed = EventStream::open(
        stream_request(&app.address, "/station/stream/")
            .header("last-event-id", baseline_event.id.unwrap().to_string()),
    )
    .await;
    assert_eq!(resumed.events(2).await, events);
}

#[backend_test]
async fn a_stopping_service_ends_its_streams_instead_of_waiting_out_its_shutdown_timeout() {
    // Arrange: a service whose in-flight requests would get a minute, with a stream open.
    let database = crate::helpers::TestDatabase::fresh();
    let secrets = tempfile::tempdir().unwrap();
    let file = secrets.path().join("admin-password");
    std::fs::write(&file, ADMIN.1).unwrap();
    let mut command = crate::process::station_api(&database.url);
    command
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--shutdown-timeout-secs",
            "60",
        ])
        .env("STATION_ADMIN_PASSWORD_FILE", &file)
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let server = crate::process::Server::of(command.spawn().unwrap());
    let address = format!("http://127.0.0.1:{}", server.port());
    let mut stream = EventStream::open(stream_request(&address, "/station/stream/")).await;

    // Act: SIGTERM; `signal_and_wait` gives up after 30 s, half the shutdown timeout.
    let stopped = tokio::task::spawn_blocking(move || server.signal_and_wait("-TERM"))
        .await
        .unwrap();

    // Assert: the process exited cleanly, and the stream ended rather than broke.
    assert!(stopped.success());
    assert_eq!(stream.until_the_end().await, Vec::<Event>::new());
}
