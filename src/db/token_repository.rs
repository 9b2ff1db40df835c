//! Queries on `device_tokens`. A key is looked up by its hash (a unique index), so checking one
//! is one indexed read.

use diesel::prelude::*;

use crate::db::models::{NewTokenRow, TokenRow};
use crate::db::schema::device_tokens;
use crate::db::{DbConnection, last_insert_id};

/// The token whose key hashes to `hash`, if any.
pub fn find_by_key_hash(conn: &mut DbConnection, hash: &str) -> QueryResult<Option<TokenRow>> {
    use crate::db::schema::device_tokens::dsl::key_hash;

    on_its_backend!(conn, |conn| device_tokens::table
        .filter(key_hash.eq(hash))
        .select(TokenRow::as_select())
        .get_result(conn)
        .optional())
}

/// Records a use at `now`, unless one was recorded within the last `interval` seconds (by this
/// instance or another); true when this call wrote it.
pub fn touch(conn: &mut DbConnection, token_id: i64, now: i64, interval: i64) -> QueryResult<bool> {
    use crate::db::schema::device_tokens::dsl::{id, last_used};

    let updated = diesel::update(
        device_tokens::table
            .filter(id.eq(token_id))
            .filter(last_used.is_null().or(last_used.lt(now - interval))),
    )
    .set(last_used.eq(now))
    .execute(conn)?;
    Ok(updated > 0)
}

/// Stores a new token.
pub fn insert(conn: &mut DbConnection, token: &NewTokenRow<'_>) -> QueryResult<TokenRow> {
    let statement = diesel::insert_into(device_tokens::table).values(token);
    returning_row!(conn, statement, TokenRow, |mysql| {
        let new_id = last_insert_id(mysql)?;
        device_tokens::table
            .find(new_id)
            .select(TokenRow::as_select())
            .get_result(mysql)
    })
}

/// The token with this id, if any.
pub fn find(conn: &mut DbConnection, token_id: i64) -> QueryResult<Option<TokenRow>> {
    device_tokens::table
        .find(token_id)
        .select(TokenRow::as_select())
        .get_result(conn)
        .optional()
}

/// Deletes (revokes) a token; false when there was none.
pub fn delete(conn: &mut DbConnection, token_id: i64) -> QueryResult<bool> {
    let deleted = diesel::delete(device_tokens::table.find(token_id)).execute(conn)?;
    Ok(deleted > 0)
}

/// How many tokens exist.
pub fn count(conn: &mut DbConnection) -> QueryResult<i64> {
    device_tokens::table.count().get_result(conn)
}

/// At most `limit` tokens by id, `offset` into that order.
pub fn rows_at(conn: &mut DbConnection, offset: i64, limit: i64) -> QueryResult<Vec<TokenRow>> {
    use crate::db::schema::device_tokens::dsl::id;

    device_tokens::table
        .order(id.asc())
        .offset(offset)
        .limit(limit)
        .select(TokenRow::as_select())
        .load(conn)
}

/// At most `limit` tokens beyond id `boundary`, by id (descending with `backwards`).
pub fn rows_beyond(
    conn: &mut DbConnection,
    boundary: Option<i64>,
    backwards: bool,
    limit: i64,
) -> QueryResult<Vec<TokenRow>> {
    use crate::db::schema::device_tokens::dsl::id;

    let mut query = device_tokens::table
        .select(TokenRow::as_select())
        .limit(limit)
        .into_boxed();
    query = match (boundary, backwards) {
        (Some(after), false) => query.filter(id.gt(after)).order(id.asc()),
        (Some(before), true) => query.filter(id.lt(before)).order(id.desc()),
        (None, false) => query.order(id.asc()),
        (None, true) => query.order(id.desc()),
    };
    query.load(conn)
}

/// Every token, by id (for the command line).
pub fn list(conn: &mut DbConnection) -> QueryResult<Vec<TokenRow>> {
    use crate::db::schema::device_tokens::dsl::id;

    device_tokens::table
        .order(id.asc())
        .select(TokenRow::as_select())
        .load(conn)
}
