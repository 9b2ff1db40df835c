//! How to reach the database and how hard to lean on it.

use std::time::Duration;

use secrecy::SecretString;

use super::Backend;

/// How to reach the database and how hard to lean on it.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// `sqlite://PATH`, `sqlite:PATH`, a plain file path, `postgres://…`/`postgresql://…` or
    /// `mysql://…`. Secret, as it may hold a password: `Debug` shows none of it.
    pub url: SecretString,
    /// The most connections the pool opens for queries; `None` for the engine's default
    /// ([`DatabaseSettings::default_pool_size`]). SQLite's writer has one more of its own.
    pub pool_size: Option<u32>,
    /// How long a request waits for a free connection before it gets a 503; also the bound on
    /// opening a connection to a database server.
    pub checkout_timeout: Duration,
    /// How long SQLite waits for another writer (another process) before giving up.
    pub busy_timeout: Duration,
    /// The longest one statement may run before it is cancelled (by the server on PostgreSQL
    /// and MySQL/MariaDB, by the service on SQLite) and the request answered 503; zero for no
    /// limit.
    pub statement_timeout: Duration,
    /// When SQLite syncs its write-ahead log to disk; the server engines ignore it.
    pub sqlite_synchronous: SqliteSynchronous,
}

/// When SQLite syncs its write-ahead log to disk (its `synchronous` pragma, in WAL mode).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SqliteSynchronous {
    /// `FULL`: every commit syncs the log before it is acknowledged, so a 201 survives a power
    /// cut or an OS crash. The group commit shares that one sync among every write it holds.
    #[default]
    Full,
    /// `NORMAL`: the log is synced only at checkpoints. Faster; a killed process still loses
    /// nothing, but a power cut or an OS crash can lose the last acknowledged commits.
    Normal,
}

impl SqliteSynchronous {
    /// The value of SQLite's `synchronous` pragma.
    pub fn pragma_value(self) -> &'static str {
        match self {
            Self::Full => "FULL",
            Self::Normal => "NORMAL",
        }
    }
}

impl DatabaseSettings {
    /// Query connections when none are configured: on SQLite one per two cores, since a query
    /// there is work for this machine's CPU, which the HTTP workers and the writer need too (on
    /// 2 cores one query thread served the retrieve benchmark 7-10% faster than two: `bench/run`);
    /// 8 on a server database, where a query mostly waits on the network.
    pub fn default_pool_size(backend: Backend) -> u32 {
        match backend {
            Backend::Sqlite => std::thread::available_parallelism()
                .map_or(1, |cores| {
                    u32::try_from(cores.get() / 2).unwrap_or(u32::MAX)
                })
                .max(1),
            Backend::Postgres | Backend::Mysql => 8,
        }
    }

    /// Settings for `url` with the service's defaults.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: SecretString::from(url.into()),
            pool_size: None,
            checkout_timeout: Duration::from_secs(5),
            busy_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(10),
            sqlite_synchronous: SqliteSynchronous::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_never_show_the_database_password() {
        let settings = DatabaseSettings::new("postgres://app:hunter2@db.example/station");
        assert!(!format!("{settings:?}").contains("hunter2"));
    }

    #[test]
    fn sqlite_commits_are_durable_unless_told_otherwise() {
        let settings = DatabaseSettings::new("sqlite://station.db");
        assert_eq!(settings.sqlite_synchronous.pragma_value(), "FULL");
        assert_eq!(SqliteSynchronous::Normal.pragma_value(), "NORMAL");
    }
}
