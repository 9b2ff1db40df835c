//! Queries on `service_keys`: secrets shared by every instance of the service, and the one way to
//! get one ([`Database::shared_secret`]), which is safe when instances start at the same time.

use diesel::prelude::*;

use crate::db::schema::service_keys::dsl::{name, secret, service_keys};
use crate::db::{Database, DbConnection, DbError};

/// The secret stored under `key_name`, if any.
pub fn find(conn: &mut DbConnection, key_name: &str) -> QueryResult<Option<String>> {
    service_keys
        .filter(name.eq(key_name))
        .select(secret)
        .get_result(conn)
        .optional()
}

/// Stores `value` under `key_name`; a unique violation when another instance stored one first.
pub fn insert(conn: &mut DbConnection, key_name: &str, value: &str) -> QueryResult<()> {
    diesel::insert_into(service_keys)
        .values((name.eq(key_name), secret.eq(value)))
        .execute(conn)
        .map(drop)
}

impl Database {
    /// The secret every instance shares under `key_name`: the stored one, or `candidate`, stored
    /// now by the first instance to ask.
    pub fn shared_secret(&self, key_name: &str, candidate: &str) -> Result<String, DbError> {
        let stored = self.write_blocking(|conn| {
            if let Some(existing) = find(conn, key_name)? {
                return Ok(existing);
            }
            insert(conn, key_name, candidate)?;
            Ok(candidate.to_owned())
        });
        match stored {
            // Another instance stored one between our read and our insert: use theirs.
            Err(error) if error.is_unique_violation() => self
                .blocking(|conn| find(conn, key_name))?
                .ok_or_else(|| DbError::Query(diesel::result::Error::NotFound)),
            other => other,
        }
    }
}
