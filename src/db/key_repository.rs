//! Queries on `service_keys`: secrets shared by every instance of the service.

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::service_keys::dsl::{name, secret, service_keys};

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
