//! Typed settings for the server. The command line (`cli`) fills them from flags and the
//! environment; tests build them directly.

use std::time::Duration;

use crate::auth::AuthSettings;
use crate::db::DatabaseSettings;

/// Everything `serve` needs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `HOST:PORT` to listen on; port 0 picks a free one.
    pub bind: String,
    /// `HOST:PORT` to serve Prometheus metrics on, apart from the API and without auth; `None`
    /// (the default) for no metrics at all.
    pub metrics_bind: Option<String>,
    /// The database and its pool.
    pub database: DatabaseSettings,
    /// HTTP limits and proxy trust.
    pub http: HttpSettings,
    /// Credential cache and throttle.
    pub auth: AuthSettings,
    /// How long `Idempotency-Key` answers are kept, and how long a claim holds.
    pub idempotency: IdempotencySettings,
    /// The event stream and the change log behind it.
    pub stream: StreamSettings,
    /// Worker threads; `None` for one per core.
    pub workers: Option<usize>,
    /// How long in-flight requests get to finish on shutdown.
    pub shutdown_timeout: Duration,
    /// Stop gracefully on SIGTERM and Ctrl-C (off in tests, which run many servers at once).
    pub handle_signals: bool,
}

impl Settings {
    /// Defaults for a server on `bind` over the database at `database_url`.
    pub fn new(bind: impl Into<String>, database_url: impl Into<String>) -> Self {
        Self {
            bind: bind.into(),
            metrics_bind: None,
            database: DatabaseSettings::new(database_url),
            http: HttpSettings::default(),
            auth: AuthSettings::default(),
            idempotency: IdempotencySettings::default(),
            stream: StreamSettings::default(),
            workers: None,
            shutdown_timeout: Duration::from_secs(30),
            handle_signals: true,
        }
    }
}

/// Settings of the HTTP layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// Honour `X-Forwarded-Proto`, `X-Forwarded-Host` and `X-Forwarded-For`.
    pub trust_proxy: bool,
    /// The largest request body accepted, in bytes (for a bulk upload: `max_bulk_body_bytes`).
    pub max_body_bytes: usize,
    /// The largest bulk upload accepted (a JSON array, CSV or NDJSON), in bytes.
    pub max_bulk_body_bytes: usize,
    /// The most readings one bulk upload may hold.
    pub max_bulk_items: usize,
    /// Readings per page when the client does not say.
    pub page_size: i64,
    /// The largest `page_size` a client may ask for.
    pub max_page_size: i64,
    /// How long a request's body may take to arrive, counted from its head; then 408.
    pub body_timeout: Duration,
    /// The hosts a request may name (Django's `ALLOWED_HOSTS`: no port, any case, `.example.com`
    /// for a domain and its subdomains, `*` for any); empty accepts every host.
    pub allowed_hosts: Vec<String>,
    /// Origins whose browser apps may call the API (CORS), checked by
    /// [`crate::api::cors::parse_origin`]; empty: no cross-origin access.
    pub cors_origins: Vec<String>,
    /// The most connections served at once, all workers together; `None` to derive it from the
    /// process's open-file limit.
    pub max_connections: Option<usize>,
    /// The `/home/` page.
    pub home: HomeSettings,
}

/// Settings of the `/home/` page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HomeSettings {
    /// Anyone may see the page and the reads it makes (latest, aggregate, stream); otherwise
    /// they need staff credentials (the page) or `read` access (the reads).
    pub public: bool,
    /// Map tiles the page may load from elsewhere; `None`: a world outline served by us alone.
    pub map_tiles: Option<MapTiles>,
}

/// A tile server for the page's map (`--map-tile-url`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapTiles {
    /// A Leaflet URL template, e.g. `https://tile.openstreetmap.org/{z}/{x}/{y}.png`.
    pub url_template: String,
    /// Where the tiles come from, as the page's content security policy names it.
    pub source: String,
    /// The attribution the tiles' licence asks for (HTML).
    pub attribution: String,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            trust_proxy: false,
            max_body_bytes: 256 * 1024,
            // 10,000 readings of up to 400 bytes each: a compact reading is about 100 bytes, one
            // with a 64-character name and every number at full precision about 200.
            max_bulk_body_bytes: 4 * 1024 * 1024,
            max_bulk_items: 10_000,
            page_size: 10,
            max_page_size: 1000,
            body_timeout: Duration::from_secs(30),
            allowed_hosts: Vec::new(),
            cors_origins: Vec::new(),
            max_connections: None,
            home: HomeSettings::default(),
        }
    }
}

/// How `Idempotency-Key` answers are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencySettings {
    /// How long a stored answer is replayed, counted from when it was stored.
    pub ttl: Duration,
    /// How long a request's claim on its key holds before another may take the key over. The
    /// instance renews the claims of its running requests every quarter of this, so only the
    /// claim of an instance that died (SIGKILL, power cut) ever runs out: its retries get 409
    /// for at most this long.
    pub claim_lease: Duration,
}

impl Default for IdempotencySettings {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(24 * 60 * 60),
            claim_lease: Duration::from_secs(20),
        }
    }
}

/// How `GET /station/stream/` serves its subscribers, and how long the change log keeps changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSettings {
    /// The most stream connections one instance holds; past it, 503 with `Retry-After`.
    pub max_clients: usize,
    /// How often an idle stream gets a comment line, so proxies keep it open.
    pub keep_alive: Duration,
    /// How many changes a subscriber may fall behind the instance's feed before it is cut off
    /// (it resumes from the change log with `Last-Event-ID`, losing nothing).
    pub buffer: usize,
    /// How often the feed looks for changes made through other instances; changes made through
    /// this one wake it at once.
    pub poll_every: Duration,
    /// How long changes are kept for resuming streams (`--change-log-retention-days`).
    pub retention: Duration,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            max_clients: 1000,
            keep_alive: Duration::from_secs(15),
            buffer: 16_384,
            poll_every: Duration::from_millis(250),
            retention: Duration::from_secs(7 * 24 * 60 * 60),
        }
    }
}
