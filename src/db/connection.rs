//! One connection type over three engines: the type every repository takes, and the few things
//! that are asked of each engine differently (its migrations, whether it takes writes, MySQL's
//! last inserted id). Its transactions are in [`super::transaction`].

use diesel::prelude::*;
use diesel::{MysqlConnection, PgConnection, SqliteConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::DbError;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const MYSQL_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/mysql");

/// The database engine behind a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
    /// A MySQL or MariaDB server.
    Mysql,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
            Self::Mysql => "mysql",
        })
    }
}

/// A connection to whichever engine the URL named. Repository functions take this type; the few
/// statements that differ between engines match on it.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    /// PostgreSQL.
    Postgres(PgConnection),
    /// MySQL or MariaDB.
    Mysql(MysqlConnection),
    /// SQLite.
    Sqlite(SqliteConnection),
}

impl DbConnection {
    /// Which engine this connection talks to.
    pub fn backend(&self) -> Backend {
        match self {
            Self::Postgres(_) => Backend::Postgres,
            Self::Mysql(_) => Backend::Mysql,
            Self::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// Whether the server refuses writes on new transactions: a PostgreSQL standby or
    /// `default_transaction_read_only`, MariaDB's `read_only` or `innodb_read_only`. Always false
    /// on SQLite, whose file [`super::Database::accepts_writes`] checks instead.
    pub fn server_is_read_only(&mut self) -> QueryResult<bool> {
        use diesel::dsl::sql;
        use diesel::sql_types::BigInt;

        let flag = match self {
            Self::Sqlite(_) => return Ok(false),
            Self::Postgres(pg) => diesel::select(sql::<BigInt>(
                "CAST(current_setting('transaction_read_only') = 'on' AS INTEGER)::BIGINT",
            ))
            .get_result::<i64>(pg)?,
            // Read from a table: a Galera node that is not synced with its cluster answers
            // variables but refuses tables (error 1047), as it refuses every request's query.
            Self::Mysql(mysql) => diesel::sql_query(
                "SELECT CAST(@@global.read_only OR @@global.innodb_read_only AS SIGNED) AS flag \
                 FROM station_count LIMIT 1",
            )
            .get_result::<ReadOnlyFlag>(mysql)?
            .flag,
        };
        Ok(flag != 0)
    }

    /// Applies the engine's embedded migrations that have not run yet.
    pub(super) fn run_migrations(&mut self) -> Result<Vec<String>, DbError> {
        let applied = match self {
            Self::Postgres(pg) => pg
                .run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(|versions| versions.iter().map(ToString::to_string).collect()),
            Self::Mysql(mysql) => mysql
                .run_pending_migrations(MYSQL_MIGRATIONS)
                .map(|versions| versions.iter().map(ToString::to_string).collect()),
            Self::Sqlite(sqlite) => sqlite
                .run_pending_migrations(SQLITE_MIGRATIONS)
                .map(|versions| versions.iter().map(ToString::to_string).collect()),
        };
        applied.map_err(DbError::Migration)
    }
}

/// `server_is_read_only`'s answer on MySQL.
#[derive(QueryableByName)]
struct ReadOnlyFlag {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    flag: i64,
}

/// The id MySQL gave the row this connection inserted last.
pub(super) fn last_insert_id(conn: &mut MysqlConnection) -> QueryResult<i64> {
    // LAST_INSERT_ID() is unsigned; the column (and `i64`) is signed.
    diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "CAST(LAST_INSERT_ID() AS SIGNED)",
    ))
    .get_result(conn)
    .map_err(aborted_if_missing)
}

/// For a MySQL read that cannot miss inside its own write transaction (the row just written, the
/// id just given): no row means Galera aborted the transaction under the statement (a
/// conflicting write from another node), which MariaDB reports as an interrupted query with no
/// rows rather than as an error. The writes are undone, so it is a conflict worth a retry.
pub(super) fn aborted_if_missing(error: diesel::result::Error) -> diesel::result::Error {
    match error {
        diesel::result::Error::NotFound => diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::SerializationFailure,
            Box::new(String::from(
                "the row just written was not there: the transaction was aborted",
            )),
        ),
        other => other,
    }
}
