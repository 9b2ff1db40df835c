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
    /// The database and its pool.
    pub database: DatabaseSettings,
    /// HTTP limits and proxy trust.
    pub http: HttpSettings,
    /// Credential cache and throttle.
    pub auth: AuthSettings,
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
            database: DatabaseSettings::new(database_url),
            http: HttpSettings::default(),
            auth: AuthSettings::default(),
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
    /// The largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Readings per page when the client does not say.
    pub page_size: i64,
    /// The largest `page_size` a client may ask for.
    pub max_page_size: i64,
    /// How long a request's body may take to arrive, counted from its head; then 408.
    pub body_timeout: Duration,
    /// The hosts a request may name (Django's `ALLOWED_HOSTS`: no port, any case, `.example.com`
    /// for a domain and its subdomains, `*` for any); empty accepts every host.
    pub allowed_hosts: Vec<String>,
    /// The most connections served at once, all workers together; `None` to derive it from the
    /// process's open-file limit.
    pub max_connections: Option<usize>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            trust_proxy: false,
            max_body_bytes: 256 * 1024,
            page_size: 10,
            max_page_size: 1000,
            body_timeout: Duration::from_secs(30),
            allowed_hosts: Vec::new(),
            max_connections: None,
        }
    }
}
