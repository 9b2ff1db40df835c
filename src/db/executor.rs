//! Where queries run: off the async workers, on threads of their own, with a bounded wait.
//!
//! Two executors, both behind [`super::Database`], both fed by a job queue ([`queue`]) whose
//! threads take every job waiting (up to a bound) at once and sleep only when there is none, so
//! under load a job costs no wake-up and no context switch (which were most of a request's time
//! in the profile: `bench/run`, `perf record`):
//!
//! - [`QueryThreads`] ([`query_threads`]): one thread per pooled query connection. On SQLite a
//!   thread runs the reads it takes in one read transaction.
//! - [`GroupCommitWriter`] ([`group_commit`], SQLite only): one thread that runs the writes it
//!   takes in one `BEGIN IMMEDIATE` transaction, each in its own savepoint, and answers them all
//!   after the one commit. SQLite has a single writer; a commit per request made writers queue
//!   for the lock and pay for a commit each.
//!
//! A job waits at most the checkout timeout to start; a caller that gives up first gets a 503,
//! and its job can then never start ([`claim`]), so a 503 never hides a change that was made.

mod claim;
mod group_commit;
mod query_threads;
mod queue;

pub(super) use claim::{Claim, answer};
pub(super) use group_commit::GroupCommitWriter;
pub(super) use query_threads::QueryThreads;

use super::DbError;

/// Starts a thread named `name` that runs `work`.
fn start_thread(name: &str, work: impl FnOnce() + Send + 'static) -> Result<(), DbError> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(work)
        .map(drop)
        .map_err(|e| DbError::Unavailable(Box::new(e)))
}
