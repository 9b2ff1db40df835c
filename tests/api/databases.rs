//! A fresh database per test on the engine the test runs for: a temporary SQLite file, or a
//! database with a random name on the PostgreSQL or MySQL/MariaDB server named by
//! `TEST_POSTGRES_URL` / `TEST_MYSQL_URL`, dropped when the test ends.

use std::future::Future;

use diesel::connection::SimpleConnection;
use diesel::{Connection, MysqlConnection, PgConnection};
use tempfile::TempDir;

/// The database engines every black-box test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A temporary SQLite file; always available.
    Sqlite,
    /// The PostgreSQL server at `TEST_POSTGRES_URL`.
    Postgres,
    /// The MySQL or MariaDB server at `TEST_MYSQL_URL`.
    Mysql,
}

tokio::task_local! {
    static CURRENT: Backend;
}

impl Backend {
    /// The engine of the test running on this task (SQLite outside [`on_backend`]).
    pub fn current() -> Self {
        CURRENT.try_with(|backend| *backend).unwrap_or(Self::Sqlite)
    }

    /// The environment variable naming this engine's server, if it needs one.
    pub fn server_variable(self) -> Option<&'static str> {
        match self {
            Self::Sqlite => None,
            Self::Postgres => Some("TEST_POSTGRES_URL"),
            Self::Mysql => Some("TEST_MYSQL_URL"),
        }
    }

    /// The URL of this engine's server (an administrative database on it), if configured.
    pub fn server_url(self) -> Option<String> {
        self.server_variable()
            .and_then(|variable| std::env::var(variable).ok())
            .filter(|url| !url.is_empty())
    }
}

/// Runs `test` with `backend` as the engine `spawn_app` and [`TestDatabase::fresh`] use. The
/// server engines' variants are built ignored unless their URL was set (see `build.rs`); one run
/// anyway (`cargo test -- --ignored`) without its URL fails and says which variable to set.
pub async fn on_backend(backend: Backend, test: impl Future<Output = ()>) {
    if let Some(variable) = backend.server_variable()
        && backend.server_url().is_none()
    {
        panic!("the {backend:?} variant needs a server: set {variable}");
    }
    CURRENT.scope(backend, test).await;
}

/// A database that exists for one test.
pub struct TestDatabase {
    /// What to give the service as `DATABASE_URL`.
    pub url: String,
    backend: Backend,
    name: String,
    server_url: String,
    _directory: Option<TempDir>,
}

impl TestDatabase {
    /// A new, empty database on the current test's engine.
    pub fn fresh() -> Self {
        Self::fresh_on(Backend::current())
    }

    /// A new, empty database on `backend`.
    pub fn fresh_on(backend: Backend) -> Self {
        if backend == Backend::Sqlite {
            let directory = tempfile::tempdir().expect("temporary directory");
            let url = format!("sqlite://{}", directory.path().join("station.db").display());
            return Self {
                url,
                backend,
                name: String::new(),
                server_url: String::new(),
                _directory: Some(directory),
            };
        }
        let server_url = backend.server_url().unwrap_or_else(|| {
            panic!(
                "{} is not set",
                backend.server_variable().unwrap_or_default()
            )
        });
        let name = format!("station_test_{:016x}", rand::random::<u64>());
        run_on_server(backend, &server_url, &format!("CREATE DATABASE {name}"));
        Self {
            url: with_database(&server_url, &name),
            backend,
            name,
            server_url,
            _directory: None,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let statement = match self.backend {
            Backend::Sqlite => return,
            // FORCE: the test's server may still hold idle connections.
            Backend::Postgres => format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            Backend::Mysql => format!(
                "SET SESSION lock_wait_timeout = 10; DROP DATABASE IF EXISTS {}",
                self.name
            ),
        };
        if let Err(error) = try_run_on_server(self.backend, &self.server_url, &statement) {
            eprintln!("could not drop test database {}: {error}", self.name);
        }
    }
}

/// Runs `statement` on the server at `server_url`, failing the test when it cannot.
pub fn run_on_server(backend: Backend, server_url: &str, statement: &str) {
    if let Err(error) = try_run_on_server(backend, server_url, statement) {
        panic!(
            "{backend:?} server at {} ({}): {statement}: {error}",
            server_url,
            backend.server_variable().unwrap_or_default()
        );
    }
}

fn try_run_on_server(
    backend: Backend,
    server_url: &str,
    statement: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    // Before this process's first connection, or OpenSSL's exit-time cleanup can crash it.
    station_api::db::prepare_client_libraries();
    match backend {
        Backend::Sqlite => Ok(()),
        Backend::Postgres => Ok(PgConnection::establish(server_url)?.batch_execute(statement)?),
        Backend::Mysql => Ok(MysqlConnection::establish(server_url)?.batch_execute(statement)?),
    }
}

/// `server_url` with its path (the database name) replaced by `name`, keeping any query.
fn with_database(server_url: &str, name: &str) -> String {
    let (scheme, rest) = server_url
        .split_once("://")
        .expect("a server URL has a scheme");
    let (location, query) = match rest.split_once('?') {
        Some((location, query)) => (location, format!("?{query}")),
        None => (rest, String::new()),
    };
    let authority = location.split('/').next().unwrap_or(location);
    format!("{scheme}://{authority}/{name}{query}")
}

#[test]
fn a_database_name_replaces_the_path_only() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
        "postgres://postgres@127.0.0.1:5432/t1"
    );
    assert_eq!(
        with_database("mysql://root@127.0.0.1:3306", "t1"),
        "mysql://root@127.0.0.1:3306/t1"
    );
    assert_eq!(
        with_database("postgres://u:p@h/db?sslmode=disable", "t1"),
        "postgres://u:p@h/t1?sslmode=disable"
    );
}
