//! Wiring: open the database, apply migrations, build shared state, bind, and serve.

use std::net::{SocketAddr, TcpListener};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix_http::{HttpService, Protocol};
use actix_service::{ServiceFactory, ServiceFactoryExt as _, map_config};
use actix_web::body::MessageBody;
use actix_web::dev::{AppConfig, Server, ServiceRequest, ServiceResponse, fn_factory, fn_service};
use actix_web::middleware::{Compress, Condition, from_fn};
use actix_web::rt::net::TcpStream;
use actix_web::{App, web};

use crate::api::expect_continue::{ContinueWhenRead, ResumeOrCall};
use crate::api::idempotency::{ClaimsInFlight, keep_claims_alive, release_claims};
use crate::api::parser_errors::JsonDispatcherErrors;
use crate::api::{self, AppState};
use crate::auth::Authenticator;
use crate::auth::password::HashError;
use crate::changes::{ChangeFeed, prune_change_log};
use crate::config::{IdempotencySettings, Settings};
use crate::db::{Database, DbError};
use crate::metrics::{Metrics, WorkerRequests};
use crate::pagination::CursorCodec;

/// The `service_keys` entry holding the key that signs list cursors.
const CURSOR_KEY_NAME: &str = "list-cursor-hmac";

/// 32 random bytes, as hex.
fn random_hex_key() -> String {
    crate::hex::encode(&rand::random::<[u8; 32]>())
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Database(#[from] DbError),
    /// The password-hash settings are invalid.
    #[error(transparent)]
    Hashing(#[from] HashError),
    /// The address could not be bound.
    #[error("could not listen on {address}")]
    Bind {
        /// What we tried to bind.
        address: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
}

/// A bound, ready-to-run server. Tests build one on port 0 and read [`Application::port`].
pub struct Application {
    port: u16,
    database: Database,
    idempotency: IdempotencySettings,
    claims_in_flight: ClaimsInFlight,
    server: Server,
    shutdown_signals: Option<ShutdownSignals>,
    /// The scrape listener, when `--metrics-bind` was given.
    metrics: Option<MetricsListener>,
    /// Committed changes, for event streams.
    change_feed: Arc<ChangeFeed>,
}

/// The metrics and the listener that serves them.
struct MetricsListener {
    port: u16,
    server: Server,
}

/// How often the change log is pruned of changes older than its retention.
const CHANGE_LOG_PRUNE_EVERY: Duration = Duration::from_secs(10 * 60);

impl Application {
    /// Opens the database, applies migrations and binds the listener; serving starts with
    /// [`Application::run_until_stopped`].
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let database = Database::connect(&settings.database)?;
        let applied = database.run_migrations()?;
        if !applied.is_empty() {
            tracing::info!(migrations = ?applied, "applied database migrations");
        }
        let authenticator = Authenticator::new(database.clone(), &settings.auth)?;
        let cursor_key = database.shared_secret(CURSOR_KEY_NAME, &random_hex_key())?;
        let change_feed = ChangeFeed::new(database.clone(), settings.stream.clone());
        let mut state = AppState::new(
            database.clone(),
            authenticator,
            settings.http.clone(),
            CursorCodec::new(cursor_key.as_bytes()),
            Arc::clone(&change_feed),
        )
        .with_idempotency(settings.idempotency.clone());
        let metrics = settings
            .metrics_bind
            .is_some()
            .then(|| Arc::new(Metrics::new(database.clone(), Arc::clone(&change_feed))));
        if let Some(metrics) = &metrics {
            state = state.with_metrics(Arc::clone(metrics));
        }
        let state = web::Data::new(state);
        let claims_in_flight = state.claims_in_flight().clone();
        let listener = TcpListener::bind(&settings.bind).map_err(|source| StartupError::Bind {
            address: settings.bind.clone(),
            source,
        })?;
        // Bound before either server starts, so a taken metrics address leaves nothing running.
        let metrics_listener = match &settings.metrics_bind {
            Some(address) => {
                let metrics_bind_error = |source| StartupError::Bind {
                    address: address.clone(),
                    source,
                };
                let listener = TcpListener::bind(address).map_err(metrics_bind_error)?;
                let port = listener.local_addr().map_err(metrics_bind_error)?.port();
                Some((listener, port, address))
            }
            None => None,
        };
        let bind_error = |source| StartupError::Bind {
            address: settings.bind.clone(),
            source,
        };
        let local_addr = listener.local_addr().map_err(bind_error)?;
        let port = local_addr.port();
        let workers = settings.workers.map_or_else(
            || std::thread::available_parallelism().map_or(2, usize::from),
            |workers| workers.max(1),
        );
        let limit = ConnectionLimit::choose(&settings, database.backend(), workers);
        limit.log();
        if settings.http.allowed_hosts.is_empty() {
            tracing::info!("every Host header is accepted (no --allowed-host given)");
        } else {
            tracing::info!(allowed_hosts = ?settings.http.allowed_hosts, "Host headers accepted");
        }
        let builder = Server::build()
            .workers(workers)
            .max_concurrent_connections(limit.per_worker)
            .shutdown_timeout(settings.shutdown_timeout.as_secs())
            .disable_signals();
        let graceful_shutdown = builder.graceful_shutdown_signal();
        let server = builder
            .listen("station-api", listener, move || {
                let app_factory = app_factory(state.clone(), local_addr);
                let expect_factory = app_factory.clone();
                let graceful_shutdown = graceful_shutdown.clone();
                let http = HttpService::build()
                    // What actix-web's HttpServer sets: keep-alive connections close promptly on
                    // a graceful stop, and an unread body is discarded for at most a second.
                    .graceful_shutdown_signal(move || {
                        let signal = graceful_shutdown.clone();
                        async move { signal.notified().await }
                    })
                    .client_disconnect_timeout(Duration::from_secs(1))
                    .h1_allow_half_closed(true)
                    .local_addr(local_addr)
                    .expect(fn_factory(move || {
                        let app = expect_factory().new_service(());
                        async move { app.await.map(ContinueWhenRead::new) }
                    }))
                    .finish(fn_factory(move || {
                        let app = app_factory().new_service(());
                        async move { app.await.map(ResumeOrCall::new) }
                    }));
                // `HttpService::tcp`, with the connection wrapped so that the dispatcher's own
                // bodiless error answers get JSON bodies.
                fn_service(|io: TcpStream| async move {
                    let peer = io.peer_addr().ok();
                    Ok((JsonDispatcherErrors::new(io), Protocol::Http1, peer))
                })
                .and_then(http)
            })
            .map_err(bind_error)?
            .run();
        let metrics = match (metrics_listener, metrics) {
            (Some((listener, port, address)), Some(metrics)) => {
                let server = api::metrics::scrape_server(listener, Arc::clone(&metrics)).map_err(
                    |source| StartupError::Bind {
                        address: address.clone(),
                        source,
                    },
                )?;
                tracing::info!(
                    address = %address,
                    port,
                    path = api::metrics::METRICS_PATH,
                    "metrics listening (no authentication: keep this address private)"
                );
                Some(MetricsListener { port, server })
            }
            _ => None,
        };
        // Registered now, not when serving starts, so a signal sent as soon as the server says it
        // is listening is already handled gracefully.
        let shutdown_signals = if settings.handle_signals {
            Some(ShutdownSignals::register().map_err(bind_error)?)
        } else {
            None
        };
        Ok(Self {
            port,
            database,
            idempotency: settings.idempotency.clone(),
            claims_in_flight,
            server,
            shutdown_signals,
            metrics,
            change_feed,
        })
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port `/metrics` is served on; `None` when metrics are off (no `--metrics-bind`).
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|listener| listener.port)
    }

    /// The database the server uses.
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// Serves until stopped; with signal handling on, SIGTERM or Ctrl-C stop it gracefully
    /// (in-flight requests finish, up to the shutdown timeout).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        if let Some(signals) = self.shutdown_signals {
            let handle = self.server.handle();
            let feed = Arc::clone(&self.change_feed);
            actix_web::rt::spawn(async move {
                signals.received().await;
                tracing::info!("shutdown signal received; finishing in-flight requests");
                // Event streams never finish by themselves: end them, so they do not hold the
                // shutdown for its whole timeout.
                feed.close();
                handle.stop(true).await;
            });
        }
        let pruning = actix_web::rt::spawn(prune_idempotency_keys(
            self.database.clone(),
            self.idempotency.ttl,
        ));
        let renewing = actix_web::rt::spawn(keep_claims_alive(
            self.database.clone(),
            self.claims_in_flight.clone(),
            self.idempotency.claim_lease,
        ));
        let scraping = self.metrics.map(|listener| {
            let handle = listener.server.handle();
            let serving = actix_web::rt::spawn(listener.server);
            (handle, serving)
        });
        let feeding = actix_web::rt::spawn(Arc::clone(&self.change_feed).run());
        let pruning_changes = actix_web::rt::spawn(prune_change_log(
            self.database.clone(),
            self.change_feed.settings().retention,
            CHANGE_LOG_PRUNE_EVERY,
            self.change_feed.closing(),
        ));
        let served = self.server.await;
        self.change_feed.close();
        let _ = feeding.await;
        pruning_changes.abort();
        pruning.abort();
        renewing.abort();
        if let Some((handle, serving)) = scraping {
            handle.stop(true).await;
            let _ = serving.await;
        }
        // The workers are gone: requests the shutdown timeout cut short can no longer release
        // their keys themselves.
        release_claims(&self.database, &self.claims_in_flight).await;
        served
    }
}

/// Deletes expired `Idempotency-Key` rows in the background, so no request pays for it: every
/// quarter of the time they are kept (at least every 100 ms, at most every 10 minutes).
async fn prune_idempotency_keys(database: Database, ttl: Duration) {
    let every = (ttl / 4).clamp(Duration::from_millis(100), Duration::from_secs(600));
    loop {
        actix_web::rt::time::sleep(every).await;
        let now = crate::api::idempotency::now_ms();
        match database
            .write(move |conn| crate::db::idempotency_repository::prune(conn, now))
            .await
        {
            Ok(0) => {}
            Ok(pruned) => tracing::debug!(pruned, "pruned expired idempotency keys"),
            Err(error) => tracing::warn!(error = %error, "pruning idempotency keys failed"),
        }
    }
}

/// What builds the app for one worker: called twice per worker, since the service that decides
/// on `Expect: 100-continue` runs an instance of its own (see [`crate::api::expect_continue`]).
/// actix-web's `HttpServer` offers no way to replace that service, so the server is assembled
/// from actix-server and actix-http here as `HttpServer::listen` does.
fn app_factory(
    state: web::Data<AppState>,
    local_addr: SocketAddr,
) -> impl Fn() -> actix_service::boxed::BoxServiceFactory<
    (),
    actix_http::Request,
    ServiceResponse<actix_web::body::BoxBody>,
    actix_web::Error,
    (),
> + Clone {
    move || {
        let host = local_addr.to_string();
        // `AppConfig::new` is crate-private; this is the constructor actix-web's own test server
        // uses. It names the bound address as the host for requests that give none.
        let app = map_config(app(state.clone()), move |()| {
            AppConfig::__priv_test_new(false, host.clone(), local_addr)
        });
        actix_service::boxed::factory(actix_service::ServiceFactoryExt::map(
            app,
            ServiceResponse::map_into_boxed_body,
        ))
    }
}

/// The app: routes, then the middleware every request passes, outermost last.
fn app(
    state: web::Data<AppState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let cors = api::cors::policy(&state.http().cors_origins);
    // Each worker builds its own app, and so its own counts.
    let requests = state
        .metrics()
        .cloned()
        .map(|metrics| Rc::new(WorkerRequests::new(metrics)));
    let counted = requests.is_some();
    App::new()
        .app_data(state)
        .configure(api::configure)
        .default_service(web::to(api::not_found))
        .wrap(Condition::new(cors.is_some(), cors.unwrap_or_default()))
        .wrap(from_fn(api::json_error_bodies))
        // gzip, brotli or zstd as the client's Accept-Encoding prefers; nothing without one.
        .wrap(Compress::default())
        .wrap(from_fn(api::request_checks::check_request_head))
        .wrap(from_fn(api::slow_clients::bound_request_body))
        .wrap(from_fn(api::security_headers::add_security_headers))
        .wrap(from_fn(api::request_log::log_request))
        // Outermost, so a request's time includes every other layer's.
        .wrap(Condition::new(
            counted,
            from_fn(move |req, next| {
                let requests = requests.clone();
                async move {
                    // Always `Some` where this runs: the condition is that it is.
                    match requests {
                        Some(requests) => api::metrics::observe(requests, req, next).await,
                        None => next.call(req).await,
                    }
                }
            }),
        ))
}

/// Open files kept for everything but client connections: the listener, the runtime's own
/// descriptors per worker, standard streams, log files.
const FD_RESERVE: u64 = 64;
/// Open files kept per pooled database connection: a socket, or SQLite's database, WAL and
/// shared-memory files and a journal.
const FD_PER_DB_CONNECTION: u64 = 4;

/// How many client connections the server keeps open at once.
#[derive(Debug, Clone, Copy)]
struct ConnectionLimit {
    /// The open-file limit the process runs with (after raising it), if known.
    open_files: Option<u64>,
    /// Workers sharing the limit.
    workers: usize,
    /// What each worker accepts (actix's limit is per worker).
    per_worker: usize,
    /// Configured rather than derived from the open-file limit.
    configured: bool,
}

impl ConnectionLimit {
    /// Raises the soft open-file limit to the hard one, then picks the per-worker connection
    /// limit: the configured total, or what the open files allow once the database and the
    /// process's own files are provided for. Past it, connections wait in the listen queue
    /// instead of failing with "Too many open files", which also starves the database and logs.
    fn choose(settings: &Settings, backend: crate::db::Backend, workers: usize) -> Self {
        let open_files = rlimit::increase_nofile_limit(u64::MAX).ok();
        let pool = settings
            .database
            .pool_size
            .unwrap_or_else(|| crate::db::DatabaseSettings::default_pool_size(backend));
        // SQLite's writer holds a connection beyond the pool.
        let reserve = FD_RESERVE + FD_PER_DB_CONNECTION * (u64::from(pool) + 1);
        let affordable = open_files
            .map(|files| usize::try_from(files.saturating_sub(reserve)).unwrap_or(usize::MAX));
        let (total, configured) = match settings.http.max_connections {
            Some(total) => {
                if affordable.is_some_and(|affordable| total > affordable) {
                    tracing::warn!(
                        max_connections = total,
                        open_file_limit = %open_files.unwrap_or_default(),
                        "--max-connections is more than the open-file limit allows: a flood of \
                         connections will meet \"Too many open files\""
                    );
                }
                (total, true)
            }
            None => (
                affordable.map_or(DEFAULT_MAX_CONNECTIONS, |affordable| {
                    affordable.min(DEFAULT_MAX_CONNECTIONS)
                }),
                false,
            ),
        };
        Self {
            open_files,
            workers,
            per_worker: (total / workers).max(1),
            configured,
        }
    }

    fn log(&self) {
        tracing::info!(
            max_connections = self.per_worker * self.workers,
            per_worker = self.per_worker,
            workers = self.workers,
            open_file_limit = %self.open_files.map_or_else(|| "unknown".to_owned(), |n| n.to_string()),
            source = if self.configured { "--max-connections" } else { "open-file limit" },
            "connection limit chosen"
        );
    }
}

/// The most connections when the open-file limit does not say otherwise.
const DEFAULT_MAX_CONNECTIONS: usize = 25_000;

/// SIGTERM and SIGINT (Ctrl-C), both meaning "stop gracefully".
struct ShutdownSignals {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    #[cfg(unix)]
    fn register() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    #[cfg(not(unix))]
    fn register() -> std::io::Result<Self> {
        Ok(Self {})
    }

    #[cfg(unix)]
    async fn received(mut self) {
        tokio::select! {
            _ = self.terminate.recv() => {}
            _ = self.interrupt.recv() => {}
        }
    }

    #[cfg(not(unix))]
    async fn received(self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}
