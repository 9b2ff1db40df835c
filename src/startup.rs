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
    handle_signals: bool,
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
        let state = web::Data::new(AppState {
            database: database.clone(),
            authenticator,
            http: settings.http.clone(),
        });
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
                .wrap(from_fn(api::request_log::log_request))
        })
        .shutdown_timeout(settings.shutdown_timeout.as_secs())
        .disable_signals();
        if let Some(workers) = settings.workers {
            server = server.workers(workers.max(1));
        }
        let server = server.listen(listener).map_err(bind_error)?.run();
        Ok(Self {
            port,
            database,
            server,
            handle_signals: settings.handle_signals,
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
        if self.handle_signals {
            let handle = self.server.handle();
            actix_web::rt::spawn(async move {
                wait_for_shutdown_signal().await;
                tracing::info!("shutdown signal received; finishing in-flight requests");
                handle.stop(true).await;
            });
        }
        self.server.await
    }
}

async fn wait_for_shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the server");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
