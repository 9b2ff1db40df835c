//! Wiring: open the database, apply migrations, build shared state, bind, and serve.

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};

use crate::api::{self, AppState};
use crate::auth::Authenticator;
use crate::auth::password::HashError;
use crate::config::Settings;
use crate::db::{Database, DbError};
use crate::domain::listing::CursorCodec;

/// The `service_keys` entry holding the key that signs list cursors.
const CURSOR_KEY_NAME: &str = "list-cursor-hmac";

/// 32 random bytes, as hex.
fn random_hex_key() -> String {
    use std::fmt::Write as _;

    rand::random::<[u8; 32]>()
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
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
    server: Server,
    shutdown_signals: Option<ShutdownSignals>,
}

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
        let state = web::Data::new(AppState::new(
            database.clone(),
            authenticator,
            settings.http.clone(),
            CursorCodec::new(cursor_key.as_bytes()),
        ));
        let listener = TcpListener::bind(&settings.bind).map_err(|source| StartupError::Bind {
            address: settings.bind.clone(),
            source,
        })?;
        let bind_error = |source| StartupError::Bind {
            address: settings.bind.clone(),
            source,
        };
        let port = listener.local_addr().map_err(bind_error)?.port();
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .configure(api::configure)
                .default_service(web::to(api::not_found))
                .wrap(from_fn(api::json_error_bodies))
                .wrap(from_fn(api::request_log::log_request))
        })
        .shutdown_timeout(settings.shutdown_timeout.as_secs())
        .disable_signals();
        if let Some(workers) = settings.workers {
            server = server.workers(workers.max(1));
        }
        let server = server.listen(listener).map_err(bind_error)?.run();
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
            server,
            shutdown_signals,
        })
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
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
            actix_web::rt::spawn(async move {
                signals.received().await;
                tracing::info!("shutdown signal received; finishing in-flight requests");
                handle.stop(true).await;
            });
        }
        self.server.await
    }
}

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
