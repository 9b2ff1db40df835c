//! Prometheus metrics: what the service counts, and the text a scrape reads. Served on a
//! listener of its own (`--metrics-bind`, off by default; see [`crate::api::metrics`]), never on
//! the API's port.
//!
//! Each [`crate::startup::Application`] has its own registry (the exporter's recorder, never
//! installed as the process-wide one), so servers sharing a process (the test suite) keep their
//! counts apart. Everything but the requests is registered at start-up with the exporter.
//!
//! Requests are counted apart from the exporter, because every request is: each worker keeps
//! its own tally per (route, method, status) ([`WorkerRequests`]), which only that worker
//! writes, so counting a request is a map lookup and two plain stores that no other core waits
//! on; a scrape adds the workers' tallies up. (The exporter's histogram appends every sample to
//! a list the workers share until the next upkeep; `bench/run --metrics-ab` measured what that
//! cost, see bench/README.md.) Label values are bounded: routes are the resource patterns
//! (`/station/{id}/`, never a path with an id in it), methods a fixed list.
//!
//! Gauges (pool use, queue depth) and the database's error totals are read when a scrape comes
//! ([`Metrics::render`]), not kept up to date by every request; so are the event stream's
//! clients and the change feed's lag.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use metrics::{Counter, Gauge, Key, KeyName, Label, Level, Metadata, Recorder as _};
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

/// [`REQUESTS`]' help text.
const REQUESTS_HELP: &str = "Requests answered, by route pattern, method and status.";
/// [`REQUEST_DURATION`]'s help text.
const REQUEST_DURATION_HELP: &str =
    "Time until a request's answer was ready to send, by route pattern, method and status.";

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
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct RequestLabels {
    route: Cow<'static, str>,
    method: &'static str,
    status: u16,
}

/// The requests of one (route, method, status) that one worker answered: how many took up to
/// each latency bucket's bound (not cumulative; the last slot past the largest bound), and how
/// long they took in all. One worker writes it, scrapes read it.
#[derive(Debug, Default)]
struct RequestTally {
    buckets: [AtomicU64; DURATION_BUCKETS.len() + 1],
    nanoseconds: AtomicU64,
}

impl RequestTally {
    /// Adds a request that took `elapsed`. Only the worker owning the tally calls this, so a
    /// plain load and store suffice: no read-modify-write, whose locked bus cycle is what the
    /// single writer spares.
    fn add(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let slot = DURATION_BUCKETS.partition_point(|&bound| bound < seconds);
        let nanoseconds = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        bump(&self.buckets[slot], 1);
        bump(&self.nanoseconds, nanoseconds);
    }
}

/// Adds `by` to a counter that only the calling thread writes.
fn bump(counter: &AtomicU64, by: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(by),
        Ordering::Relaxed,
    );
}

/// Every worker's tallies, for scrapes to add up; a tally joins on its worker's first request
/// of its labels.
type Tallies = Mutex<Vec<(RequestLabels, Arc<RequestTally>)>>;

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
    handle: PrometheusHandle,
    /// Requests, by labels and worker.
    request_tallies: Tallies,
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
        let recorder = PrometheusBuilder::new().build_recorder();
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
            request_tallies: Mutex::default(),
            handle: recorder.handle(),
            auth_outcomes,
            ingested_rows,
            database,
        }
    }

    /// A tally a worker keeps for `labels`, added to what scrapes read.
    fn register_request(&self, labels: &RequestLabels) -> Arc<RequestTally> {
        let tally = Arc::new(RequestTally::default());
        self.request_tallies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((labels.clone(), Arc::clone(&tally)));
        tally
    }

    /// The requests' counter and latency histogram in the text format.
    fn render_requests(&self) -> String {
        render_tallies(
            &self
                .request_tallies
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
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
        let mut text = self.handle.render();
        if !text.is_empty() && !text.ends_with("\n\n") {
            text.push('\n');
        }
        text.push_str(&self.render_requests());
        text
    }
}

/// One worker's counting of requests: its own map from a request's labels to its tally of them
/// (registered with the shared registry on first sight), so counting a request takes no lock
/// and writes nothing the workers share.
pub struct WorkerRequests {
    metrics: Arc<Metrics>,
    tallies: RefCell<HashMap<RequestLabels, Arc<RequestTally>>>,
}

impl WorkerRequests {
    /// A worker's counts, kept in `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            metrics,
            tallies: RefCell::new(HashMap::new()),
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
        let mut tallies = self.tallies.borrow_mut();
        tallies
            .entry(labels)
            .or_insert_with_key(|labels| self.metrics.register_request(labels))
            .add(elapsed);
    }
}

/// The requests' counter and latency histogram in the text format: `tallies`, the workers'
/// tallies, added up per label set, in label order.
fn render_tallies(tallies: &[(RequestLabels, Arc<RequestTally>)]) -> String {
    let mut totals: BTreeMap<RequestLabels, ([u64; DURATION_BUCKETS.len() + 1], u64)> =
        BTreeMap::new();
    for (labels, tally) in tallies {
        let (buckets, nanoseconds) = totals.entry(labels.clone()).or_default();
        for (total, bucket) in buckets.iter_mut().zip(&tally.buckets) {
            *total = total.wrapping_add(bucket.load(Ordering::Relaxed));
        }
        *nanoseconds = nanoseconds.wrapping_add(tally.nanoseconds.load(Ordering::Relaxed));
    }
    // Each label set's pairs and request count, worked out once for both metrics.
    let rows: Vec<_> = totals
        .iter()
        .map(|(labels, (buckets, nanoseconds))| {
            let count: u64 = buckets.iter().sum();
            (label_pairs(labels), buckets, *nanoseconds, count)
        })
        .collect();
    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(text, "# HELP {REQUESTS} {REQUESTS_HELP}");
    let _ = writeln!(text, "# TYPE {REQUESTS} counter");
    for (pairs, _, _, count) in &rows {
        let _ = writeln!(text, "{REQUESTS}{{{pairs}}} {count}");
    }
    let _ = writeln!(text, "\n# HELP {REQUEST_DURATION} {REQUEST_DURATION_HELP}");
    let _ = writeln!(text, "# TYPE {REQUEST_DURATION} histogram");
    for (pairs, buckets, nanoseconds, count) in &rows {
        let mut cumulative = 0_u64;
        for (bound, in_bucket) in DURATION_BUCKETS.iter().zip(buckets.iter()) {
            cumulative += in_bucket;
            let _ = writeln!(
                text,
                "{REQUEST_DURATION}_bucket{{{pairs},le=\"{bound}\"}} {cumulative}"
            );
        }
        let seconds = Duration::from_nanos(*nanoseconds).as_secs_f64();
        let _ = writeln!(
            text,
            "{REQUEST_DURATION}_bucket{{{pairs},le=\"+Inf\"}} {count}\n\
             {REQUEST_DURATION}_sum{{{pairs}}} {seconds}\n\
             {REQUEST_DURATION}_count{{{pairs}}} {count}"
        );
    }
    text
}

/// `route="…",method="…",status="…"`, values escaped as the text format asks.
fn label_pairs(labels: &RequestLabels) -> String {
    let mut route = String::with_capacity(labels.route.len());
    for character in labels.route.chars() {
        match character {
            '\\' => route.push_str("\\\\"),
            '"' => route.push_str("\\\""),
            '\n' => route.push_str("\\n"),
            other => route.push(other),
        }
    }
    format!(
        "route=\"{route}\",method=\"{}\",status=\"{}\"",
        labels.method, labels.status
    )
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(route: &'static str, status: u16) -> RequestLabels {
        RequestLabels {
            route: Cow::Borrowed(route),
            method: "GET",
            status,
        }
    }

    #[test]
    fn the_workers_tallies_add_up_per_label_set_with_inclusive_cumulative_buckets() {
        let first_worker = Arc::new(RequestTally::default());
        let second_worker = Arc::new(RequestTally::default());
        let other = Arc::new(RequestTally::default());
        first_worker.add(Duration::from_micros(250)); // on the first bound: in its bucket
        first_worker.add(Duration::from_millis(3));
        second_worker.add(Duration::from_millis(3));
        second_worker.add(Duration::from_secs(11)); // past the largest bound
        other.add(Duration::from_millis(1));
        let tallies = vec![
            (labels("/station/{id}/", 200), first_worker),
            (labels("/a\"b\\c", 404), other),
            (labels("/station/{id}/", 200), second_worker),
        ];

        let text = render_tallies(&tallies);

        let series = "route=\"/station/{id}/\",method=\"GET\",status=\"200\"";
        for expected in [
            format!("{REQUESTS}{{{series}}} 4\n"),
            format!("{REQUEST_DURATION}_bucket{{{series},le=\"0.00025\"}} 1\n"),
            format!("{REQUEST_DURATION}_bucket{{{series},le=\"0.0025\"}} 1\n"),
            format!("{REQUEST_DURATION}_bucket{{{series},le=\"0.005\"}} 3\n"),
            format!("{REQUEST_DURATION}_bucket{{{series},le=\"10\"}} 3\n"),
            format!("{REQUEST_DURATION}_bucket{{{series},le=\"+Inf\"}} 4\n"),
            format!("{REQUEST_DURATION}_sum{{{series}}} 11.00625\n"),
            format!("{REQUEST_DURATION}_count{{{series}}} 4\n"),
            format!("{REQUESTS}{{route=\"/a\\\"b\\\\c\",method=\"GET\",status=\"404\"}} 1\n"),
        ] {
            assert!(text.contains(&expected), "{expected}in:\n{text}");
        }
        assert_eq!(text.matches("# TYPE ").count(), 2);
    }
}
