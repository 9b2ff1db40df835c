//! Row types: what the tables hold, shaped for Diesel. Wire types live in `api`.

use diesel::mysql::Mysql;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sqlite::Sqlite;

use crate::db::schema::{device_tokens, station, users};
use crate::domain::station::{NewStation, StationPatch};
use crate::domain::token::NewToken;

/// One stored reading.
#[derive(Debug, Clone, PartialEq, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = station, check_for_backend(Sqlite, Pg, Mysql))]
pub struct StationRow {
    /// Primary key, never reused.
    pub id: i64,
    /// Station name.
    pub name: String,
    /// Unix seconds.
    pub timestamp: i64,
    /// Degrees Celsius.
    pub temperature: f64,
    /// Degrees north.
    pub lat: f64,
    /// Degrees east.
    pub lon: f64,
}

/// What one statement read of a page: its rows with the count of the list they belong to and what
/// the request's caller column read (see [`crate::db::CallerColumn`]), or that there was no row.
#[derive(Debug)]
pub enum CountedRows<R> {
    /// Rows at the page's offset.
    Found {
        /// The rows, in the list's order.
        rows: Vec<R>,
        /// How many rows the whole list has.
        total: i64,
        /// What the caller column read.
        caller: crate::db::CallerStanding,
    },
    /// No row at the page's offset: the list ends before it. Nothing was read of the caller.
    NoneAtOffset,
}

/// Every writable column: inserted by POST, written whole by PUT.
///
/// No field is optional, so no value is ever `DEFAULT`: saying so lets Diesel keep a single
/// reading's INSERT as a prepared statement on PostgreSQL and MySQL. By default it wraps each
/// value in a may-be-`DEFAULT` that marks the statement as not cacheable, so every create was
/// parsed and planned anew.
#[derive(Debug, Insertable, AsChangeset)]
#[diesel(table_name = station, treat_none_as_default_value = false)]
pub struct StationValues<'a> {
    pub(in crate::db) name: &'a str,
    pub(in crate::db) timestamp: i64,
    pub(in crate::db) temperature: f64,
    pub(in crate::db) lat: f64,
    pub(in crate::db) lon: f64,
}

impl StationValues<'_> {
    /// The row these values make once stored as reading `id`.
    pub(in crate::db) fn stored_as(&self, id: i64) -> StationRow {
        StationRow {
            id,
            name: self.name.to_owned(),
            timestamp: self.timestamp,
            temperature: self.temperature,
            lat: self.lat,
            lon: self.lon,
        }
    }
}

impl<'a> From<&'a NewStation> for StationValues<'a> {
    fn from(station: &'a NewStation) -> Self {
        Self {
            name: station.name.as_ref(),
            timestamp: station.timestamp.seconds(),
            temperature: station.temperature.celsius(),
            lat: station.lat.degrees(),
            lon: station.lon.degrees(),
        }
    }
}

/// Every column, the id included: a reading imported with the id a file gives it.
#[derive(Debug, Insertable)]
#[diesel(table_name = station)]
pub struct StationValuesWithId<'a> {
    id: i64,
    #[diesel(embed)]
    values: StationValues<'a>,
}

impl<'a> StationValuesWithId<'a> {
    /// `station` stored as reading `id`.
    pub fn new(id: i64, station: &'a NewStation) -> Self {
        Self {
            id,
            values: StationValues::from(station),
        }
    }
}

/// The columns a PATCH names; `None` leaves a column as it is.
#[derive(Debug, AsChangeset)]
#[diesel(table_name = station)]
pub struct StationChanges<'a> {
    name: Option<&'a str>,
    timestamp: Option<i64>,
    temperature: Option<f64>,
    lat: Option<f64>,
    lon: Option<f64>,
}

impl<'a> From<&'a StationPatch> for StationChanges<'a> {
    fn from(patch: &'a StationPatch) -> Self {
        Self {
            name: patch.name.as_ref().map(AsRef::as_ref),
            timestamp: patch.timestamp.map(|t| t.seconds()),
            temperature: patch.temperature.map(|t| t.celsius()),
            lat: patch.lat.map(|l| l.degrees()),
            lon: patch.lon.map(|l| l.degrees()),
        }
    }
}

/// One stored account.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(Sqlite, Pg, Mysql))]
pub struct UserRow {
    /// Primary key.
    pub id: i64,
    /// Login name, unique.
    pub username: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// May use the API (`IsAdminUser`).
    pub is_staff: bool,
    /// Created by `createsuperuser`.
    pub is_superuser: bool,
    /// Inactive accounts cannot log in.
    pub is_active: bool,
    /// Unix seconds.
    pub date_joined: i64,
}

/// What decides whether an account may use the API, read on every request.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(Sqlite, Pg, Mysql))]
pub struct AccountStanding {
    /// Argon2id PHC string.
    pub password_hash: String,
    /// May use the API (`IsAdminUser`).
    pub is_staff: bool,
    /// Inactive accounts cannot log in.
    pub is_active: bool,
}

/// A new account, password already hashed.
#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUserRow<'a> {
    /// Login name.
    pub username: &'a str,
    /// Argon2id PHC string.
    pub password_hash: &'a str,
    /// May use the API.
    pub is_staff: bool,
    /// Created by `createsuperuser`.
    pub is_superuser: bool,
    /// May log in.
    pub is_active: bool,
    /// Unix seconds.
    pub date_joined: i64,
}

/// One stored device token: never its key, only the key's SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = device_tokens, check_for_backend(Sqlite, Pg, Mysql))]
pub struct TokenRow {
    /// Primary key, never reused.
    pub id: i64,
    /// What the token is for.
    pub label: String,
    /// The SHA-256 of the key, as 64 lowercase hex digits.
    pub key_hash: String,
    /// The key's first characters, to recognise it by.
    pub prefix: String,
    /// `read`, `write` or `read,write`.
    pub scopes: String,
    /// The one station name it may read and write, if bound.
    pub station: Option<String>,
    /// Unix seconds.
    pub created: i64,
    /// Unix seconds, at most a minute stale; `None` before first use.
    pub last_used: Option<i64>,
    /// Unix seconds; `None` never.
    pub expires: Option<i64>,
}

/// A token to store.
#[derive(Debug, Insertable)]
#[diesel(table_name = device_tokens)]
pub struct NewTokenRow<'a> {
    /// What the token is for.
    pub label: &'a str,
    /// The SHA-256 of the key, hex.
    pub key_hash: &'a str,
    /// The key's first characters.
    pub prefix: &'a str,
    /// `read`, `write` or `read,write`.
    pub scopes: &'a str,
    /// The bound station name, if any.
    pub station: Option<&'a str>,
    /// Unix seconds.
    pub created: i64,
    /// Unix seconds, if it expires.
    pub expires: Option<i64>,
}

impl<'a> NewTokenRow<'a> {
    /// The row storing `token`, whose key hashes to `key_hash` and begins with `prefix`, issued
    /// at `created`.
    pub fn new(token: &'a NewToken, key_hash: &'a str, prefix: &'a str, created: i64) -> Self {
        Self {
            label: token.label.as_ref(),
            key_hash,
            prefix,
            scopes: token.scopes.as_stored(),
            station: token.station.as_ref().map(AsRef::as_ref),
            created,
            expires: token.expires,
        }
    }
}

/// One row of the change log: a reading created, updated or deleted, with its values after the
/// change (before it, for a delete).
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = crate::db::schema::station_changes, check_for_backend(Sqlite, Pg, Mysql))]
pub struct ChangeRow {
    /// The change's id: increasing in commit order as the stream delivers them.
    pub id: i64,
    /// `created`, `updated` or `deleted`.
    pub kind: String,
    /// The reading's id.
    pub station_id: i64,
    /// Station name.
    pub name: String,
    /// Unix seconds.
    pub timestamp: i64,
    /// Degrees Celsius.
    pub temperature: f64,
    /// Degrees north.
    pub lat: f64,
    /// Degrees east.
    pub lon: f64,
}

#[cfg(test)]
mod tests {
    use diesel::mysql::Mysql;
    use diesel::pg::Pg;
    use diesel::prelude::*;
    use diesel::query_builder::QueryFragment;

    use super::*;

    fn values() -> StationValues<'static> {
        StationValues {
            name: "Oslo",
            timestamp: 1_700_000_000,
            temperature: 3.5,
            lat: 59.9,
            lon: 10.7,
        }
    }

    #[test]
    fn a_single_reading_insert_may_be_kept_prepared() {
        let on_postgres = diesel::insert_into(station::table)
            .values(values())
            .returning(StationRow::as_returning());
        let on_mysql = diesel::insert_into(station::table).values(values());

        assert!(QueryFragment::<Pg>::is_safe_to_cache_prepared(&on_postgres, &Pg).unwrap());
        assert!(QueryFragment::<Mysql>::is_safe_to_cache_prepared(&on_mysql, &Mysql).unwrap());
    }
}
