//! Database URLs: which engine a URL names, the options added to a PostgreSQL URL, and a URL fit
//! for messages and logs.
//!
//! Edited as text, not with `url::Url`: libpq's multi-host URLs (`postgres://h1:5432,h2:5432/db`,
//! for a primary and its standby) are not URLs the `url` crate parses, so every edit would need
//! this path anyway, and where the crate does parse a URL the two agree (a test checks that).

use std::time::Duration;

use super::{Backend, DbError};

/// What a database URL points at, decided by its scheme alone: Diesel's own `establish` on a
/// multi-connection tries each engine in turn and would turn a refused PostgreSQL URL into a
/// new SQLite file.
#[derive(Clone, PartialEq, Eq)]
pub(super) enum Target {
    /// A SQLite file path.
    Sqlite(String),
    /// A `postgres://` or `postgresql://` URL.
    Postgres(String),
    /// A `mysql://` URL.
    Mysql(String),
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            Self::Postgres(url) => f
                .debug_tuple("Postgres")
                .field(&redact_password(url))
                .finish(),
            Self::Mysql(url) => f.debug_tuple("Mysql").field(&redact_password(url)).finish(),
        }
    }
}

impl Target {
    /// Reads the engine from the scheme; anything without a scheme is a SQLite file path.
    pub(super) fn parse(url: &str) -> Result<Self, DbError> {
        let unsupported = || DbError::UnsupportedUrl(redact_password(url));
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_owned()));
        }
        if url.starts_with("mysql://") {
            return Ok(Self::Mysql(url.to_owned()));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        if path.is_empty() || path.contains("://") {
            return Err(unsupported());
        }
        Ok(Self::Sqlite(path.to_owned()))
    }

    /// The target for messages: a server URL with its password hidden, or the SQLite file.
    pub(super) fn shown(&self) -> String {
        match self {
            Self::Sqlite(path) => format!("the SQLite database {path}"),
            Self::Postgres(url) | Self::Mysql(url) => redact_password(url),
        }
    }

    /// The engine this target runs.
    pub(super) fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
            Self::Mysql(_) => Backend::Mysql,
        }
    }
}

/// `url` with any password replaced by `***`, for messages and logs.
pub fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((credentials, host)) if credentials.contains(':') => {
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        _ => url.to_owned(),
    }
}

/// Adds libpq options the URL does not set: `connect_timeout` (whole seconds, at least 1), so a
/// database host that drops packets cannot hold a pool thread for minutes; and
/// `gssencmode=disable`, because libpq's default first probes for Kerberos encryption on every
/// connection, and a process exiting while a pool thread was in that probe aborted inside
/// libkrb5 (seen here in about one run of the CLI in seven).
pub(super) fn with_libpq_defaults(url: &str, timeout: Duration) -> String {
    let mut url = url.to_owned();
    let mut add = |option: &str, value: String| {
        if !url.contains(&format!("{option}=")) {
            let separator = if url.contains('?') { '&' } else { '?' };
            url = format!("{url}{separator}{option}={value}");
        }
    };
    add("connect_timeout", timeout.as_secs().max(1).to_string());
    add("gssencmode", "disable".to_owned());
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_alone_picks_the_engine() {
        let sqlite = |path: &str| Target::Sqlite(path.to_owned());
        assert_eq!(
            Target::parse("sqlite://station.db").unwrap(),
            sqlite("station.db")
        );
        assert_eq!(
            Target::parse("sqlite:///tmp/s.db").unwrap(),
            sqlite("/tmp/s.db")
        );
        assert_eq!(Target::parse("sqlite:s.db").unwrap(), sqlite("s.db"));
        assert_eq!(Target::parse("data/s.db").unwrap(), sqlite("data/s.db"));
        assert_eq!(
            Target::parse("postgres://u@localhost/x").unwrap().backend(),
            Backend::Postgres
        );
        assert_eq!(
            Target::parse("postgresql://localhost/x").unwrap().backend(),
            Backend::Postgres
        );
        assert_eq!(
            Target::parse("mysql://root@127.0.0.1/x").unwrap().backend(),
            Backend::Mysql
        );
        assert!(Target::parse("redis://localhost").is_err());
        assert!(Target::parse("sqlite://").is_err());
    }

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact_password("postgres://app:s3cret@db:5432/station?sslmode=require"),
            "postgres://app:***@db:5432/station?sslmode=require"
        );
        assert_eq!(
            redact_password("mysql://root@127.0.0.1/x"),
            "mysql://root@127.0.0.1/x"
        );
        assert_eq!(redact_password("station.db"), "station.db");
        let error = Target::parse("redis://u:hunter2@cache").unwrap_err();
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }

    #[test]
    fn libpq_options_are_added_unless_the_url_has_them() {
        let five = Duration::from_secs(5);
        assert_eq!(
            with_libpq_defaults("postgres://h/db", five),
            "postgres://h/db?connect_timeout=5&gssencmode=disable"
        );
        assert_eq!(
            with_libpq_defaults("postgres://h/db?sslmode=disable&gssencmode=prefer", five),
            "postgres://h/db?sslmode=disable&gssencmode=prefer&connect_timeout=5"
        );
        assert_eq!(
            with_libpq_defaults("postgres://h/db?connect_timeout=2", five),
            "postgres://h/db?connect_timeout=2&gssencmode=disable"
        );
    }

    #[test]
    fn edits_agree_with_the_url_crate_where_it_parses_and_work_where_it_does_not() {
        let five = Duration::from_secs(5);
        for single_host in [
            "postgres://app:s3cret@db:5432/station?sslmode=require",
            "postgresql://localhost/x",
            "postgres://u:p%40ss@h/db",
            "postgres://h/db?connect_timeout=2",
            "mysql://root@127.0.0.1/x",
            "mysql://root:pw@127.0.0.1:3306/x?ssl_mode=disabled",
        ] {
            let parsed = ::url::Url::parse(single_host).unwrap();
            let mut redacted = parsed.clone();
            if redacted.password().is_some() {
                redacted.set_password(Some("***")).unwrap();
            }
            assert_eq!(redact_password(single_host), redacted.as_str());
            if parsed.scheme().starts_with("postgres") {
                let mut with_options = parsed.clone();
                let present: Vec<String> = parsed
                    .query_pairs()
                    .map(|(key, _)| key.into_owned())
                    .collect();
                for (option, value) in [("connect_timeout", "5"), ("gssencmode", "disable")] {
                    if !present.iter().any(|key| key == option) {
                        with_options.query_pairs_mut().append_pair(option, value);
                    }
                }
                assert_eq!(
                    with_libpq_defaults(single_host, five),
                    with_options.as_str()
                );
            }
        }

        let primary_and_standby =
            "postgres://app:s3cret@h1:5432,h2:5433/db?target_session_attrs=read-write";
        assert!(::url::Url::parse(primary_and_standby).is_err());
        assert_eq!(
            redact_password(primary_and_standby),
            "postgres://app:***@h1:5432,h2:5433/db?target_session_attrs=read-write"
        );
        assert_eq!(
            with_libpq_defaults(primary_and_standby, five),
            "postgres://app:s3cret@h1:5432,h2:5433/db?target_session_attrs=read-write\
             &connect_timeout=5&gssencmode=disable"
        );
        assert_eq!(
            Target::parse(primary_and_standby).unwrap().backend(),
            Backend::Postgres
        );
    }
}
