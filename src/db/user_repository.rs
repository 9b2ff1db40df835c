//! Queries on `users`.

use diesel::prelude::*;

use crate::db::models::{NewUserRow, UserRow};
use crate::db::{DbConnection, last_insert_id};

/// The account with this username, if any.
pub fn find_by_username(conn: &mut DbConnection, name: &str) -> QueryResult<Option<UserRow>> {
    use crate::db::schema::users::dsl::{username, users};

    // `username` is unique, so no `.first()` (whose `LIMIT ?` makes SQLite re-prepare each run).
    on_its_backend!(conn, |conn| users
        .filter(username.eq(name))
        .select(UserRow::as_select())
        .get_result(conn)
        .optional())
}

/// Stores a new account; fails with a unique violation when the username is taken.
pub fn insert(conn: &mut DbConnection, user: &NewUserRow<'_>) -> QueryResult<UserRow> {
    use crate::db::schema::users::dsl::users;

    let statement = diesel::insert_into(users).values(user);
    returning_row!(conn, statement, UserRow, |mysql| {
        let new_id = last_insert_id(mysql)?;
        users
            .find(new_id)
            .select(UserRow::as_select())
            .get_result(mysql)
    })
}

/// Replaces an account's password hash; false when there is no such account.
pub fn set_password_hash(conn: &mut DbConnection, name: &str, hash: &str) -> QueryResult<bool> {
    use crate::db::schema::users::dsl::{password_hash, username, users};

    let updated = diesel::update(users.filter(username.eq(name)))
        .set(password_hash.eq(hash))
        .execute(conn)?;
    Ok(updated > 0)
}

/// Replaces an account's password hash if it is still `old_hash`; false when it was changed
/// meanwhile (or the account is gone), so a concurrent password change is never undone.
pub fn replace_password_hash(
    conn: &mut DbConnection,
    name: &str,
    old_hash: &str,
    new_hash: &str,
) -> QueryResult<bool> {
    use crate::db::schema::users::dsl::{password_hash, username, users};

    let updated = diesel::update(
        users
            .filter(username.eq(name))
            .filter(password_hash.eq(old_hash)),
    )
    .set(password_hash.eq(new_hash))
    .execute(conn)?;
    Ok(updated > 0)
}

/// Deletes an account; false when there was none.
pub fn delete(conn: &mut DbConnection, name: &str) -> QueryResult<bool> {
    use crate::db::schema::users::dsl::{username, users};

    let deleted = diesel::delete(users.filter(username.eq(name))).execute(conn)?;
    Ok(deleted > 0)
}

/// Every account, by username.
pub fn list(conn: &mut DbConnection) -> QueryResult<Vec<UserRow>> {
    use crate::db::schema::users::dsl::{username, users};

    users
        .order(username.asc())
        .select(UserRow::as_select())
        .load(conn)
}

/// How many accounts exist.
pub fn count(conn: &mut DbConnection) -> QueryResult<i64> {
    use crate::db::schema::users::dsl::users;

    users.count().get_result(conn)
}
