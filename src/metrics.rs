//! Prometheus metrics: what the service counts, and the text a scrape reads. Served on a
//! listener of its own (`--metrics-bind`, off by default; see [`crate::api::metrics`]), never on
//! the API's port.
//!
//! Each [`crate::startup::Application`] has its own registry (the exporter's recorder, never
//! installed as the process-wide one), so servers sharing a process (the test suite) keep their
//! counts apart. Everything a request touches is registered once: the per-request handles on
//! first sight of their (route, method, status) in each worker's own map ([`WorkerRequests`]),
//! the rest at start-up, so the hot path is a lookup no other worker touches and two atomic
//! updates. Label values are bounded: routes are the resource patterns (`/station/{id}/`,
//! never a path with an id in it), methods a fixed list.
//!
//! Gauges (pool use, queue depth) and the database's error totals are read when a scrape comes
//! ([`Metrics::render`]), not kept up to date by every request; so are the event stream's
//! clients and the change feed's lag.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Level, Metadata, Recorder as _};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use crate::auth::{Admission, AuthError};
use crate::changes::ChangeFeed;
use crate::db::Database;

/// Requests answered, by route, method and status.
pub const REQUESTS: &str = "station_http_requests_total";
/// How long requests took until their answer's head was ready, by route, method and status.
pub const REQUEST_DURATION: &str = "station_http_request_duration_seconds";
/// How the gate decided on credentials, by outcome.
pub const AUTH_OUTCOMES: &str = "station_auth_outcomes_total";
/// Readings written by creates and bulk creates.
pub const INGESTED_ROWS: &str = "station_ingested_rows_total";
/// Database connections open, by state (in use, idle).
pub const POOL_CONNECTIONS: &str = "station_db_pool_connections";
/// The most database connections the pool opens.
pub const POOL_MAX_CONNECTIONS: &str = "station_db_pool_max_connections";
/// Database jobs waiting for a thread, by queue (queries, writes).
pub const QUEUE_DEPTH: &str = "station_db_queue_depth";
/// Database calls that failed, by kind.
pub const DB_ERRORS: &str = "station_db_errors_total";

/// Event stream connections open now.
pub const STREAM_CLIENTS: &str = "station_stream_clients";
/// Changes the feed has read but holds back, waiting for transactions that may commit a
/// smaller id.
pub const CHANGE_FEED_HELD: &str = "station_change_feed_held_changes";
/// How long the feed has been holding a change back; 0 when it has delivered all it read.
pub const CHANGE_FEED_LAG: &str = "station_change_feed_lag_seconds";

/// The route label of a request no resource matched (a 404, a redirect to the slashed path).
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Latency buckets, in seconds: a cached retrieve takes well under a millisecond, a large bulk
/// upload or a password hash at full cost tens to hundreds.
const DURATION_BUCKETS: [f64; 14] = [
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// What the exporter's registry asks of each registration; it keeps none of it.
static METADATA: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, None);

/// How the gate decided on a request's credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthOutcome {
    /// Let in on credentials (or a token) verified recently, without a hash or token lookup.
    CacheHit,
    /// Checked in full now (a password hashed, or a token read) and accepted.
    Verified,
    /// No usable credentials, a wrong password, or an unknown, revoked or expired token (401).
    Refused,
    /// Too many recent failures from the client (429).
    Throttled,
    /// The check could not run: the database failed, or hashing did.
    Error,
}

impl AuthOutcome {
    const ALL: [Self; 5] = [
        Self::CacheHit,
        Self::Verified,
        Self::Refused,
        Self::Throttled,
        Self::Error,
    ];

    /// The outcome the gate's admission decision stands for.
    pub fn of(admission: &Result<Admission, AuthError>) -> Self {
        match admission {
            Ok(Admission::Remembered(_)) => Self::CacheHit,
            Ok(Admission::Confirmed(..)) => Self::Verified,
            Err(AuthError::Throttled { .. }) => Self::Throttled,
            Err(AuthError::Database(_) | AuthError::Verification) => Self::Error,
            Err(AuthError::Header(_) | AuthError::InvalidCredentials | AuthError::InvalidToken) => {
                Self::Refused
            }
            // Decided after admission, never by it; counted with the refusals should that change.
            Err(AuthError::Forbidden) => Self::Refused,
        }
    }

    /// Its label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::CacheHit => "cache_hit",
            Self::Verified => "verified",
            Self::Refused => "refused",
            Self::Throttled => "throttled",
            Self::Error => "error",
        }
    }
}

/// One request's label values; the route is a resource pattern, owned as actix hands it over.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RequestLabels {
    route: Cow<'static, str>,
    method: &'static str,
    status: u16,
}

/// A (route, method, status)'s counter and latency histogram.
#[derive(Debug)]
struct RequestHandles {
    count: Counter,
    duration: Histogram,
}

/// Gauges and totals set from the database's own figures when a scrape comes.
struct DatabaseReadings {
    database: Database,
    pool_in_use: Gauge,
    pool_idle: Gauge,
    pool_max: Gauge,
    queued_queries: Gauge,
    queued_writes: Gauge,
    unavailable: Counter,
    failed_queries: Counter,
    lost_tasks: Counter,
}

/// The service's metrics: one per [`crate::startup::Application`], shared by its workers.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// In [`AuthOutcome::ALL`]'s order.
    auth_outcomes: [Counter; 5],
    ingested_rows: Counter,
    database: DatabaseReadings,
    stream: StreamReadings,
}

/// Gauges set from the change feed when a scrape comes.
struct StreamReadings {
    feed: Arc<ChangeFeed>,
    clients: Gauge,
    held: Gauge,
    lag: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// A registry with every metric described and the fixed ones registered (at zero), reading
    /// its gauges from `database` and the change `feed`.
    pub fn new(database: Database, feed: Arc<ChangeFeed>) -> Self {
        // Histograms, not the exporter's default summaries: buckets add up across instances.
        let recorder = match PrometheusBuilder::new().set_buckets(&DURATION_BUCKETS) {
            Ok(builder) => builder.build_recorder(),
            Err(_) => unreachable!("the latency buckets are not empty"),
        };
        describe(&recorder);
        let counter = |name: &'static str, labels: Vec<Label>| {
            recorder.register_counter(&Key::from_parts(name, labels), &METADATA)
        };
        let gauge = |name: &'static str, labels: Vec<Label>| {
            recorder.register_gauge(&Key::from_parts(name, labels), &METADATA)
        };
        let label = |key: &'static str, value: &'static str| vec![Label::new(key, value)];
        let auth_outcomes = AuthOutcome::ALL
            .map(|outcome| counter(AUTH_OUTCOMES, label("outcome", outcome.label())));
        let database = DatabaseReadings {
            database,
            pool_in_use: gauge(POOL_CONNECTIONS, label("state", "in_use")),
            pool_idle: gauge(POOL_CONNECTIONS, label("state", "idle")),
            pool_max: gauge(POOL_MAX_CONNECTIONS, Vec::new()),
            queued_queries: gauge(QUEUE_DEPTH, label("queue", "queries")),
            queued_writes: gauge(QUEUE_DEPTH, label("queue", "writes")),
            unavailable: counter(DB_ERRORS, label("kind", "unavailable")),
            failed_queries: counter(DB_ERRORS, label("kind", "query")),
            lost_tasks: counter(DB_ERRORS, label("kind", "task_lost")),
        };
        let ingested_rows = counter(INGESTED_ROWS, Vec::new());
        let stream = StreamReadings {
            feed,
            clients: gauge(STREAM_CLIENTS, Vec::new()),
            held: gauge(CHANGE_FEED_HELD, Vec::new()),
            lag: gauge(CHANGE_FEED_LAG, Vec::new()),
        };
        Self {
            stream,
            handle: recorder.handle(),
            recorder,
            auth_outcomes,
            ingested_rows,
            database,
        }
    }

    fn register_request(&self, labels: &RequestLabels) -> RequestHandles {
        let labels = vec![
            Label::new("route", labels.route.clone().into_owned()),
            Label::new("method", labels.method),
            Label::new("status", labels.status.to_string()),
        ];
        RequestHandles {
            count: self
                .recorder
                .register_counter(&Key::from_parts(REQUESTS, labels.clone()), &METADATA),
            duration: self
                .recorder
                .register_histogram(&Key::from_parts(REQUEST_DURATION, labels), &METADATA),
        }
    }

    /// Counts one decision of the gate.
    pub fn record_auth(&self, outcome: AuthOutcome) {
        // The variants are declared in `ALL`'s order.
        self.auth_outcomes[outcome as usize].increment(1);
    }

    /// Counts `rows` readings written.
    pub fn record_ingested(&self, rows: usize) {
        self.ingested_rows
            .increment(u64::try_from(rows).unwrap_or(u64::MAX));
    }

    /// The Prometheus text exposition of everything, with the gauges read now.
    pub fn render(&self) -> String {
        let readings = &self.database;
        let stats = readings.database.stats();
        readings
            .pool_in_use
            .set(f64::from(stats.connections.saturating_sub(stats.idle)));
        readings.pool_idle.set(f64::from(stats.idle));
        readings.pool_max.set(f64::from(stats.max_connections));
        readings.queued_queries.set(count(stats.queued_queries));
        readings.queued_writes.set(count(stats.queued_writes));
        readings.unavailable.absolute(stats.errors.unavailable);
        readings.failed_queries.absolute(stats.errors.query);
        readings.lost_tasks.absolute(stats.errors.task_lost);
        let stream = &self.stream;
        stream.clients.set(count(stream.feed.clients()));
        let (held, lag) = stream.feed.lag();
        stream
            .held
            .set(count(usize::try_from(held).unwrap_or(usize::MAX)));
        stream.lag.set(lag.as_secs_f64());
        self.handle.render()
    }

    /// Moves the latency samples recorded since the last time into their buckets. The exporter
    /// keeps each sample until then, so this must run every few seconds whether or not anyone
    /// scrapes ([`crate::startup::Application::run_until_stopped`] does it).
    pub fn run_upkeep(&self) {
        self.handle.run_upkeep();
    }
}

/// One worker's counting of requests: its own map from a request's labels to their handles
/// (registered with the shared registry on first sight), so counting a request takes no lock
/// the workers share.
pub struct WorkerRequests {
    metrics: Arc<Metrics>,
    handles: RefCell<HashMap<RequestLabels, RequestHandles>>,
}

impl WorkerRequests {
    /// A worker's counts, kept in `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            metrics,
            handles: RefCell::new(HashMap::new()),
        }
    }

    /// Counts a request answered with `status` after `elapsed`; `route` is the pattern of the
    /// resource that matched ([`UNMATCHED_ROUTE`] when none did), and `method` one of a fixed
    /// set of names.
    pub fn record(
        &self,
        route: Cow<'static, str>,
        method: &'static str,
        status: u16,
        elapsed: Duration,
    ) {
        let labels = RequestLabels {
            route,
            method,
            status,
        };
        let seconds = elapsed.as_secs_f64();
        let mut handles = self.handles.borrow_mut();
        let handles = handles
            .entry(labels)
            .or_insert_with_key(|labels| self.metrics.register_request(labels));
        handles.count.increment(1);
        handles.duration.record(seconds);
    }
}

/// A queue length as a gauge's value.
fn count(length: usize) -> f64 {
    // Exact up to 2^53, far past any queue.
    u32::try_from(length).map_or(f64::from(u32::MAX), f64::from)
}

/// Gives every metric its `# HELP` text (promtool's lint wants one for each).
fn describe(recorder: &PrometheusRecorder) {
    let counters = [
        (
            REQUESTS,
            "Requests answered, by route pattern, method and status.",
        ),
        (
            AUTH_OUTCOMES,
            "Credential checks at the API's gate, by outcome: cache_hit (recently verified, no \
             hash), verified (hashed or looked up now, accepted), refused (401), throttled (429), \
             error.",
        ),
        (
            INGESTED_ROWS,
            "Readings written by creates and bulk creates.",
        ),
        (
            DB_ERRORS,
            "Database calls that failed, by kind: unavailable (answered 503), query (a failed \
             statement, constraint violations included), task_lost.",
        ),
    ];
    for (name, help) in counters {
        recorder.describe_counter(KeyName::from_const_str(name), None, help.into());
    }
    let gauges = [
        (
            POOL_CONNECTIONS,
            "Database connections open now, by state (in_use, idle).",
        ),
        (
            POOL_MAX_CONNECTIONS,
            "The most database connections the pool opens (on SQLite, the writer's included).",
        ),
        (
            QUEUE_DEPTH,
            "Database jobs waiting for a thread now, by queue (queries; writes: SQLite's group \
             commit).",
        ),
        (
            STREAM_CLIENTS,
            "Event stream (/station/stream/) connections open now.",
        ),
        (
            CHANGE_FEED_HELD,
            "Changes the feed has read but holds back until every transaction that may still \
             commit a smaller id has ended.",
        ),
        (
            CHANGE_FEED_LAG,
            "Seconds the feed has been holding a change back; 0 when subscribers have all it \
             read.",
        ),
    ];
    for (name, help) in gauges {
        recorder.describe_gauge(KeyName::from_const_str(name), None, help.into());
    }
    recorder.describe_histogram(
        KeyName::from_const_str(REQUEST_DURATION),
        None,
        "Time until a request's answer was ready to send, by route pattern, method and status."
            .into(),
    );
}
