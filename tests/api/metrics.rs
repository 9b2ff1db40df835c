//! Prometheus metrics on their own listener (`--metrics-bind`): off unless asked for; requests
//! counted by route pattern, method and status with latency histograms; the gate's decisions;
//! readings ingested; the database's pool, queues and errors. What promtool and a real Prometheus
//! make of the output is checked by `.ci/prometheus.sh`, which needs Debian's `prometheus`.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use station_test_macros::backend_test;

use crate::helpers::{
    ADMIN, TestApp, VIEWER, assert_detail, header, reading, send, spawn_app, spawn_app_with,
    station_path, text_body,
};
use crate::process::{lines_until, port_of, start_server_with};

/// One sample line of the text exposition.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A scrape, parsed.
#[derive(Debug)]
struct Exposition {
    samples: Vec<Sample>,
    text: String,
}

impl Exposition {
    /// Parses the text format as the service writes it: `# HELP`/`# TYPE` lines, and samples
    /// `name{label="value",…} number` whose label values hold no `"` , `,` or `}`.
    fn parse(text: String) -> Self {
        let samples = text
            .lines()
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|line| {
                let (series, value) = line.rsplit_once(' ').expect("a value after the series");
                let (name, labels) = match series.split_once('{') {
                    Some((name, labels)) => {
                        let labels = labels.strip_suffix('}').expect("labels end with }");
                        let labels = labels
                            .split(',')
                            .map(|pair| {
                                let (key, value) = pair.split_once('=').expect("label=value");
                                let value = value
                                    .strip_prefix('"')
                                    .and_then(|v| v.strip_suffix('"'))
                                    .expect("a quoted label value");
                                (key.to_owned(), value.to_owned())
                            })
                            .collect();
                        (name, labels)
                    }
                    None => (series, BTreeMap::new()),
                };
                Sample {
                    name: name.to_owned(),
                    labels,
                    value: value.parse().expect("a numeric value"),
                }
            })
            .collect();
        Self { samples, text }
    }

    /// The value of the series `name` with exactly `labels`, if it is there.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let wanted: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut found = self
            .samples
            .iter()
            .filter(|sample| sample.name == name && sample.labels == wanted);
        let sample = found.next()?;
        assert!(found.next().is_none(), "{name} {labels:?} appears twice");
        Some(sample.value)
    }

    /// The value of the series `name` with exactly `labels`; fails the test when it is missing.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels)
            .unwrap_or_else(|| panic!("no {name} {labels:?} in:\n{}", self.text))
    }

    /// Every sample of `name`.
    fn all(&self, name: &str) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|sample| sample.name == name)
            .collect()
    }
}

/// A server with metrics on, on a free port.
async fn spawn_metered_app() -> TestApp {
    spawn_metered_app_with(|_| {}).await
}

async fn spawn_metered_app_with(
    customize: impl FnOnce(&mut station_api::config::Settings),
) -> TestApp {
    spawn_app_with(|settings| {
        settings.metrics_bind = Some("127.0.0.1:0".to_owned());
        customize(settings);
    })
    .await
}

impl TestApp {
    /// `GET /metrics` on the metrics listener, asserting a 200 in the text format.
    async fn scrape(&self) -> Exposition {
        let address = self.metrics_address.as_deref().expect("metrics are on");
        let response = send(self.client.get(format!("{address}/metrics"))).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            header(&response, "content-type").as_deref(),
            Some("text/plain; version=0.0.4; charset=utf-8")
        );
        Exposition::parse(text_body(response).await)
    }
}

const REQUESTS: &str = "station_http_requests_total";
const DURATION: &str = "station_http_request_duration_seconds";

/// The latency buckets' upper bounds, as the exposition spells them.
const BUCKETS: [&str; 15] = [
    "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
    "1", "2.5", "10", "+Inf",
];

#[actix_web::test]
async fn metrics_are_off_unless_an_address_is_given_and_never_on_the_api_port() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let on_api_port = app.get("/metrics").await;

    // Assert: no listener, and the API knows no such path.
    assert_eq!(app.metrics_address, None);
    assert_eq!(
        station_api::config::Settings::new("a", "b").metrics_bind,
        None
    );
    assert_detail(on_api_port, StatusCode::NOT_FOUND, "Not found.").await;
}

#[actix_web::test]
async fn the_metrics_listener_serves_metrics_without_credentials_and_nothing_else() {
    // Arrange
    let app = spawn_metered_app().await;
    let metrics = app.metrics_address.clone().unwrap();

    // Act
    let head = send(app.client.head(format!("{metrics}/metrics"))).await;
    let elsewhere = send(app.client.get(format!("{metrics}/station/"))).await;
    let post = send(app.client.post(format!("{metrics}/metrics"))).await;
    let on_api_port = app.get("/metrics").await;

    // Assert
    assert_eq!(head.status(), StatusCode::OK);
    assert_detail(elsewhere, StatusCode::NOT_FOUND, "Not found.").await;
    assert_eq!(header(&post, "allow").as_deref(), Some("GET, HEAD"));
    assert_detail(
        post,
        StatusCode::METHOD_NOT_ALLOWED,
        "Method \"POST\" not allowed.",
    )
    .await;
    assert_detail(on_api_port, StatusCode::NOT_FOUND, "Not found.").await;
    // Every metric has its help text and type.
    let text = app.scrape().await.text;
    for name in [
        REQUESTS,
        DURATION,
        "station_auth_outcomes_total",
        "station_ingested_rows_total",
        "station_db_pool_connections",
        "station_db_pool_max_connections",
        "station_db_queue_depth",
        "station_db_errors_total",
        "station_stream_clients",
        "station_change_feed_held_changes",
        "station_change_feed_lag_seconds",
    ] {
        assert!(text.contains(&format!("# HELP {name} ")), "{name}:\n{text}");
        assert!(text.contains(&format!("# TYPE {name} ")), "{name}:\n{text}");
    }
}

#[backend_test]
async fn requests_are_counted_by_route_pattern_method_and_status_with_latency_buckets() {
    // Arrange
    let app = spawn_metered_app().await;
    let created = app.create_station(&reading("Oslo")).await;
    let bulk = json!([reading("a"), reading("b"), reading("c")]);

    // Act
    let retrieved = app.get(&station_path(&created)).await;
    let missing = app.get("/station/987654321/").await;
    let unknown = app.get("/no/such/place/").await;
    let bulk_created = app.post_json("/station/", &bulk).await;
    let made_up = send(app.admin(Method::from_bytes(b"FROB").unwrap(), "/station/")).await;
    let scraped = app.scrape().await;

    // Assert
    assert_eq!(retrieved.status(), StatusCode::OK);
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(bulk_created.status(), StatusCode::CREATED);
    assert_eq!(made_up.status(), StatusCode::METHOD_NOT_ALLOWED);
    let requests = |route, method, status| {
        scraped.value(
            REQUESTS,
            &[("route", route), ("method", method), ("status", status)],
        )
    };
    assert_eq!(requests("/station/", "POST", "201"), 2.0);
    assert_eq!(requests("/station/{id}/", "GET", "200"), 1.0);
    assert_eq!(requests("/station/{id}/", "GET", "404"), 1.0);
    assert_eq!(requests("unmatched", "GET", "404"), 1.0);
    // A made-up method shares one label value, so methods cannot grow the label set.
    assert_eq!(requests("/station/", "other", "405"), 1.0);
    assert_eq!(scraped.all(REQUESTS).len(), 5, "{}", scraped.text);
    // Ids never become label values: every route is a pattern, or the one for no match.
    for sample in scraped.all(REQUESTS) {
        assert!(
            ["/station/", "/station/{id}/", "unmatched"].contains(&sample.labels["route"].as_str()),
            "{sample:?}"
        );
    }
    // A histogram per series: cumulative buckets up to +Inf, which is the count.
    let retrieve = [
        ("route", "/station/{id}/"),
        ("method", "GET"),
        ("status", "200"),
    ];
    let mut previous = 0.0;
    for le in BUCKETS {
        let mut labels = retrieve.to_vec();
        labels.push(("le", le));
        let count = scraped.value(&format!("{DURATION}_bucket"), &labels);
        assert!(
            count >= previous,
            "bucket {le} holds fewer than the one before"
        );
        previous = count;
    }
    assert_eq!(previous, 1.0);
    assert_eq!(scraped.value(&format!("{DURATION}_count"), &retrieve), 1.0);
    let seconds = scraped.value(&format!("{DURATION}_sum"), &retrieve);
    assert!(seconds > 0.0 && seconds < 30.0, "{seconds}");
    // Exactly what was posted, one by one and in bulk.
    assert_eq!(scraped.value("station_ingested_rows_total", &[]), 4.0);
}

#[backend_test]
async fn the_pool_queues_and_database_errors_are_read_when_scraped() {
    // Arrange: two query connections (on SQLite, the writer's one more).
    let app = spawn_metered_app_with(|settings| settings.database.pool_size = Some(2)).await;
    app.create_station(&reading("Oslo")).await;
    app.get_json("/station/").await;

    // Act
    let scraped = app.scrape().await;

    // Assert
    let most = scraped.value("station_db_pool_max_connections", &[]);
    let expected_most = if app.database_url.starts_with("sqlite") {
        3.0
    } else {
        2.0
    };
    assert_eq!(most, expected_most);
    let in_use = scraped.value("station_db_pool_connections", &[("state", "in_use")]);
    let idle = scraped.value("station_db_pool_connections", &[("state", "idle")]);
    assert!(
        in_use + idle >= 1.0 && in_use + idle <= most,
        "{in_use} + {idle}"
    );
    // Every request has been answered: the queues drain. The change feed reads in the background
    // every 250 ms, so one scrape may catch its read queued for an instant; a depth that never
    // returns to zero is what would be wrong.
    let mut depths = Vec::new();
    for _ in 0..50 {
        let scraped = app.scrape().await;
        depths = ["queries", "writes"]
            .map(|queue| scraped.value("station_db_queue_depth", &[("queue", queue)]))
            .to_vec();
        if depths == [0.0, 0.0] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(depths, [0.0, 0.0], "queries, writes");
    for kind in ["unavailable", "query", "task_lost"] {
        assert_eq!(
            scraped.value("station_db_errors_total", &[("kind", kind)]),
            0.0
        );
    }
}

#[backend_test]
async fn stream_clients_and_the_change_feeds_lag_are_read_when_scraped() {
    // Arrange
    let app = spawn_metered_app().await;
    assert_eq!(app.scrape().await.value("station_stream_clients", &[]), 0.0);
    let streams = reqwest::Client::new();
    let mut open = Vec::new();

    // Act: two streams open (their first bytes read, so they are subscribed).
    for _ in 0..2 {
        let mut response = send(
            streams
                .get(app.url("/station/stream/"))
                .basic_auth(ADMIN.0, Some(ADMIN.1)),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.chunk().await.unwrap().is_some());
        open.push(response);
    }
    app.create_station(&reading("Oslo")).await;
    let scraped = app.scrape().await;

    // Assert: nothing is held back on a log without gaps.
    assert_eq!(scraped.value("station_stream_clients", &[]), 2.0);
    assert_eq!(scraped.value("station_change_feed_held_changes", &[]), 0.0);
    assert_eq!(scraped.value("station_change_feed_lag_seconds", &[]), 0.0);
}

#[backend_test]
async fn the_gates_decisions_are_counted_by_outcome() {
    // Arrange: one failed login is all a client gets for a minute.
    let app = spawn_metered_app_with(|settings| {
        settings.auth.throttle.burst = 1;
        settings.auth.throttle.refill_every = Duration::from_secs(60);
    })
    .await;
    let as_user = |(username, password): (&str, &str)| {
        app.anonymous(Method::GET, "/station/")
            .basic_auth(username, Some(password))
    };

    // Act
    let verified = send(as_user(ADMIN)).await;
    let remembered = send(as_user(ADMIN)).await;
    let anonymous = send(app.anonymous(Method::GET, "/station/")).await;
    let wrong = send(as_user((VIEWER.0, "wrong-password"))).await;
    let throttled = send(as_user((VIEWER.0, "wrong-password"))).await;
    let scraped = app.scrape().await;

    // Assert
    assert_eq!(verified.status(), StatusCode::OK);
    assert_eq!(remembered.status(), StatusCode::OK);
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    let outcome = |outcome| scraped.value("station_auth_outcomes_total", &[("outcome", outcome)]);
    assert_eq!(outcome("verified"), 1.0);
    assert_eq!(outcome("cache_hit"), 1.0);
    assert_eq!(outcome("refused"), 2.0);
    assert_eq!(outcome("throttled"), 1.0);
    assert_eq!(outcome("error"), 0.0);
    let requests = |status| {
        scraped.value(
            REQUESTS,
            &[
                ("route", "/station/"),
                ("method", "GET"),
                ("status", status),
            ],
        )
    };
    assert_eq!(requests("200"), 2.0);
    assert_eq!(requests("401"), 2.0);
    assert_eq!(requests("429"), 1.0);
}

#[backend_test]
async fn a_replayed_create_ingests_nothing_more() {
    // Arrange
    let app = spawn_metered_app().await;
    let post = || {
        app.admin(Method::POST, "/station/")
            .header("Idempotency-Key", "once")
            .json(&reading("Oslo"))
    };

    // Act
    let first = send(post()).await;
    let replayed = send(post()).await;
    let scraped = app.scrape().await;

    // Assert
    assert_eq!(first.status(), StatusCode::CREATED);
    assert_eq!(
        header(&replayed, "idempotent-replayed").as_deref(),
        Some("true")
    );
    assert_eq!(scraped.value("station_ingested_rows_total", &[]), 1.0);
}

#[test]
fn the_binary_serves_metrics_on_the_address_metrics_bind_names() {
    // Arrange
    let directory = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", directory.path().join("station.db").display());
    let server = start_server_with(&url, &["--metrics-bind", "127.0.0.1:0"]);

    // Act
    let started = lines_until(&server.stderr, "station-api listening");
    let announced = started
        .iter()
        .find(|line| line.contains("metrics listening"))
        .unwrap_or_else(|| panic!("no metrics line in {started:#?}"));
    let port = port_of(announced);
    let scraped = get_metrics_over_a_socket(port);

    // Assert
    assert!(
        scraped.contains("station_auth_outcomes_total{outcome=\"verified\"} 0"),
        "{scraped}"
    );
    assert!(server.signal_and_wait("-TERM").success());
}

/// `GET /metrics` on `port` over a plain socket (the suite's reqwest has no blocking client).
fn get_metrics_over_a_socket(port: u16) -> String {
    use std::io::{Read as _, Write as _};

    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    answer
}
