//! Macros the repositories use where one statement must be written per engine: MySQL has no
//! `RETURNING`, and a concrete connection keeps prepared statements the multi-backend one does not.

/// Runs an INSERT or UPDATE `$statement` and reads back the row it wrote, as `$row`: with
/// `RETURNING` on SQLite and PostgreSQL. MySQL has no `RETURNING`, so there the statement runs and
/// `$read_back` (given the MySQL connection as `$mysql`) reads the row in the same transaction.
macro_rules! returning_row {
    ($conn:expr, $statement:expr, $row:ty, |$mysql:ident| $read_back:expr) => {
        match $conn {
            $crate::db::DbConnection::Sqlite(sqlite) => $statement
                .returning(<$row>::as_returning())
                .get_result(sqlite),
            $crate::db::DbConnection::Postgres(pg) => {
                $statement.returning(<$row>::as_returning()).get_result(pg)
            }
            $crate::db::DbConnection::Mysql($mysql) => {
                $statement.execute($mysql)?;
                let mut read_back = || -> diesel::QueryResult<_> { $read_back };
                read_back().map_err($crate::db::connection::aborted_if_missing)
            }
        }
    };
}

/// [`returning_row!`] for an UPDATE that may match no row: `Ok(None)` then.
macro_rules! returning_optional_row {
    ($conn:expr, $statement:expr, $row:ty, |$mysql:ident| $read_back:expr) => {
        match $conn {
            $crate::db::DbConnection::Sqlite(sqlite) => $statement
                .returning(<$row>::as_returning())
                .get_result(sqlite)
                .optional(),
            $crate::db::DbConnection::Postgres(pg) => $statement
                .returning(<$row>::as_returning())
                .get_result(pg)
                .optional(),
            $crate::db::DbConnection::Mysql($mysql) => {
                // Not the affected-row count: MySQL counts only rows whose values changed.
                $statement.execute($mysql)?;
                $read_back
            }
        }
    };
}

/// Runs `$query`, one Diesel expression, on whichever concrete connection `$conn` holds, bound
/// to `$concrete`. Diesel caches a concrete backend's prepared statements by the query's type
/// and never renders their SQL again; through the multi-backend wrapper it renders the SQL on
/// every run (a few percent of a request in the profile). For the queries every request makes.
macro_rules! on_its_backend {
    ($conn:expr, |$concrete:ident| $query:expr) => {
        match $conn {
            $crate::db::DbConnection::Sqlite($concrete) => $query,
            $crate::db::DbConnection::Postgres($concrete) => $query,
            $crate::db::DbConnection::Mysql($concrete) => $query,
        }
    };
}
