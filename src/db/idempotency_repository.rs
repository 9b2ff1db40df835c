//! Queries on `idempotency_keys`: a request's claim on its key, the answer stored with its
//! writes, and the pruning of expired rows. Times are Unix milliseconds.
//!
//! A claim is taken in a transaction of its own before the request's body is read, so a second
//! request with the key is turned away (409) while the first runs, on any instance. The answer is
//! stored in the transaction of the request's writes, after a locking read shows the claim is
//! still this request's: both commit, or neither does.

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::idempotency_keys;

/// Which key, of whom, held by which request.
#[derive(Debug, Clone)]
pub struct KeyClaim {
    /// The caller the key belongs to (`user:<name>`, `token:<id>`).
    pub caller: String,
    /// The key as the client sent it.
    pub key: String,
    /// Random, one per request: tells this request's claim from a later one's.
    pub token: String,
}

/// An answer as stored for replays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    /// SHA-256 (hex) of the request's method, path and body.
    pub request_hash: String,
    /// The HTTP status.
    pub status: i64,
    /// The `Location` header, if any.
    pub location: Option<String>,
    /// The JSON body, as first sent.
    pub body: String,
}

/// What a request found when it claimed its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The key is this request's now.
    Claimed,
    /// Another request holds the key and is still running.
    Running,
    /// The key's answer is stored.
    Completed(StoredAnswer),
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = idempotency_keys)]
struct KeyRow {
    claim: String,
    request_hash: Option<String>,
    status: Option<i64>,
    location: Option<String>,
    body: Option<String>,
    expires_at: i64,
}

/// Claims `claim`'s key until `lease_until`, unless a live claim or an unexpired answer holds it
/// (an expired one is taken over).
pub fn claim(
    conn: &mut DbConnection,
    claim: &KeyClaim,
    now: i64,
    lease_until: i64,
) -> QueryResult<ClaimOutcome> {
    use idempotency_keys::dsl as k;

    let new_row = (
        k::caller.eq(&claim.caller),
        k::idempotency_key.eq(&claim.key),
        k::claim.eq(&claim.token),
        k::expires_at.eq(lease_until),
    );
    // Insert unless present: a concurrent claimer's insert makes this one wait for its commit.
    let inserted = match conn {
        DbConnection::Sqlite(sqlite) => diesel::insert_into(k::idempotency_keys)
            .values(new_row)
            .on_conflict_do_nothing()
            .execute(sqlite)?,
        DbConnection::Postgres(pg) => diesel::insert_into(k::idempotency_keys)
            .values(new_row)
            .on_conflict_do_nothing()
            .execute(pg)?,
        DbConnection::Mysql(mysql) => {
            diesel::insert_into(k::idempotency_keys)
                .values(new_row)
                .on_conflict(diesel::dsl::DuplicatedKeys)
                .do_update()
                .set(k::idempotency_key.eq(k::idempotency_key))
                .execute(mysql)?;
            // Diesel's client counts a row found by the no-op update as affected, so whether
            // the row is ours is told by its claim, which is random per request.
            0
        }
    };
    if inserted > 0 {
        return Ok(ClaimOutcome::Claimed);
    }
    let Some(row) = locked_row(conn, claim)? else {
        // Pruned in between: the key is free.
        diesel::insert_into(k::idempotency_keys)
            .values(new_row)
            .execute(conn)?;
        return Ok(ClaimOutcome::Claimed);
    };
    if row.claim == claim.token {
        return Ok(ClaimOutcome::Claimed);
    }
    if row.expires_at <= now {
        diesel::update(
            k::idempotency_keys
                .filter(k::caller.eq(&claim.caller))
                .filter(k::idempotency_key.eq(&claim.key)),
        )
        .set((
            k::claim.eq(&claim.token),
            k::request_hash.eq(None::<String>),
            k::status.eq(None::<i64>),
            k::location.eq(None::<String>),
            k::body.eq(None::<String>),
            k::expires_at.eq(lease_until),
        ))
        .execute(conn)?;
        return Ok(ClaimOutcome::Claimed);
    }
    match (row.status, row.request_hash, row.body) {
        (Some(status), Some(request_hash), Some(body)) => {
            Ok(ClaimOutcome::Completed(StoredAnswer {
                request_hash,
                status,
                location: row.location,
                body,
            }))
        }
        _ => Ok(ClaimOutcome::Running),
    }
}

/// The key's row, locked until the transaction ends (SQLite's one writer needs no lock).
fn locked_row(conn: &mut DbConnection, claim: &KeyClaim) -> QueryResult<Option<KeyRow>> {
    use idempotency_keys::dsl as k;

    let query = || {
        k::idempotency_keys
            .filter(k::caller.eq(&claim.caller))
            .filter(k::idempotency_key.eq(&claim.key))
    };
    match conn {
        DbConnection::Sqlite(sqlite) => query()
            .select(KeyRow::as_select())
            .get_result(sqlite)
            .optional(),
        DbConnection::Postgres(pg) => query()
            .select(KeyRow::as_select())
            .for_update()
            .get_result(pg)
            .optional(),
        DbConnection::Mysql(mysql) => query()
            .select(KeyRow::as_select())
            .for_update()
            .get_result(mysql)
            .optional(),
    }
}

/// Whether `claim` still holds its key, unanswered; the row stays locked until the transaction
/// ends, so the answer stored next is this request's.
pub fn holds(conn: &mut DbConnection, claim: &KeyClaim) -> QueryResult<bool> {
    Ok(
        locked_row(conn, claim)?
            .is_some_and(|row| row.claim == claim.token && row.status.is_none()),
    )
}

/// The key's row while `claim` holds it unanswered: what storing the answer, releasing the key
/// and renewing the lease each change, and only then.
#[diesel::dsl::auto_type(no_type_alias)]
fn unanswered<'a>(claim: &'a KeyClaim) -> _ {
    let caller: &'a str = &claim.caller;
    let key: &'a str = &claim.key;
    let token: &'a str = &claim.token;
    idempotency_keys::table
        .filter(idempotency_keys::caller.eq(caller))
        .filter(idempotency_keys::idempotency_key.eq(key))
        .filter(idempotency_keys::claim.eq(token))
        .filter(idempotency_keys::status.is_null())
}

/// Stores `answer` as the key's, kept until `expires_at`; false when the claim is no longer this
/// request's.
pub fn complete(
    conn: &mut DbConnection,
    claim: &KeyClaim,
    answer: &StoredAnswer,
    expires_at: i64,
) -> QueryResult<bool> {
    use idempotency_keys::dsl as k;

    let updated = diesel::update(unanswered(claim))
        .set((
            k::request_hash.eq(&answer.request_hash),
            k::status.eq(answer.status),
            k::location.eq(&answer.location),
            k::body.eq(&answer.body),
            k::expires_at.eq(expires_at),
        ))
        .execute(conn)?;
    Ok(updated > 0)
}

/// Gives the key up, if `claim` still holds it unanswered: the request failed in a way a retry
/// should run again.
pub fn release(conn: &mut DbConnection, claim: &KeyClaim) -> QueryResult<()> {
    diesel::delete(unanswered(claim)).execute(conn).map(drop)
}

/// Moves the lease of each of `claims` that still holds its key unanswered to `lease_until`.
/// One update per claim, each by the primary key: the table holds every key kept for replays.
pub fn extend(conn: &mut DbConnection, claims: &[KeyClaim], lease_until: i64) -> QueryResult<()> {
    use idempotency_keys::dsl as k;

    for claim in claims {
        diesel::update(unanswered(claim))
            .set(k::expires_at.eq(lease_until))
            .execute(conn)?;
    }
    Ok(())
}

/// Deletes every row that expired before `now`: answers kept long enough, and claims of
/// instances that crashed. Returns how many.
pub fn prune(conn: &mut DbConnection, now: i64) -> QueryResult<usize> {
    use idempotency_keys::dsl as k;

    diesel::delete(k::idempotency_keys.filter(k::expires_at.lt(now))).execute(conn)
}
