//! SQLite's WAL checkpoints, on a thread and a connection of their own.
//!
//! By default SQLite checkpoints from the connection that commits, once the log passes 1,000
//! pages: the group-commit writer then copied pages into the database file and synced it (with
//! `synchronous=FULL`) while every write waiting behind it waited too. The service's connections
//! turn that off (`wal_autocheckpoint = 0`, see `pool`) and this thread runs a `PASSIVE`
//! checkpoint shortly after commits instead: it never waits for a lock or blocks the writer or
//! a reader, copies what no reader still needs, and syncs the database file. A commit's own
//! durability is unchanged: the writer still syncs the log before it answers.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use diesel::connection::SimpleConnection;

use super::start_thread;
use crate::db::DbError;
use crate::db::pool::DedicatedConnection;

/// How long commits gather before a checkpoint copies them: often enough that the log stays a
/// few megabytes under a steady stream of bulk uploads, rarely enough that the database file is
/// synced tens of times a second, not once per commit.
const GATHER: Duration = Duration::from_millis(25);

/// The longest the thread sleeps: writes that do not go through the group-commit writer (the
/// command line's, and other processes' on the same file) are checkpointed within this.
const IDLE: Duration = Duration::from_secs(1);

/// Commits the writer made, and whether the checkpointer should stop.
#[derive(Default)]
struct Shared {
    commits: AtomicU64,
    closed: AtomicBool,
    /// Wakes the thread early when it should stop.
    stop: (Mutex<()>, Condvar),
}

/// The checkpointing thread; dropping this stops it.
pub(in crate::db) struct WalCheckpointer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for WalCheckpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalCheckpointer").finish_non_exhaustive()
    }
}

impl WalCheckpointer {
    /// Starts checkpointing the database `conn` connects to.
    pub(in crate::db) fn start(mut conn: DedicatedConnection) -> Result<Self, DbError> {
        let shared = Arc::new(Shared::default());
        let thread_shared = Arc::clone(&shared);
        start_thread("station-db-checkpoint", move || {
            checkpoint_until_closed(&mut conn, &thread_shared);
        })?;
        Ok(Self { shared })
    }

    /// A handle the writer tells of each commit.
    pub(in crate::db) fn commits(&self) -> CommitCounter {
        CommitCounter(Arc::clone(&self.shared))
    }
}

impl Drop for WalCheckpointer {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        let (lock, stop) = &self.shared.stop;
        let _held = lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        stop.notify_all();
    }
}

/// Counts the writer's commits for the checkpointer: one atomic add a commit, no wake-up.
#[derive(Clone)]
pub(in crate::db) struct CommitCounter(Arc<Shared>);

impl CommitCounter {
    /// Notes one more commit.
    pub(in crate::db) fn committed(&self) {
        self.0.commits.fetch_add(1, Ordering::Relaxed);
    }
}

/// Checkpoints after commits, every [`GATHER`] while they come, and at least every [`IDLE`];
/// between commits the naps lengthen to [`IDLE`], so an idle service wakes once a second.
fn checkpoint_until_closed(conn: &mut DedicatedConnection, shared: &Shared) {
    let mut seen = shared.commits.load(Ordering::Relaxed);
    let mut nap = GATHER;
    let mut since_checkpoint = Duration::ZERO;
    loop {
        if sleep_unless_closed(shared, nap) {
            return;
        }
        since_checkpoint += nap;
        let commits = shared.commits.load(Ordering::Relaxed);
        let committed = commits != seen;
        nap = if committed {
            GATHER
        } else {
            (nap * 2).min(IDLE)
        };
        if committed || since_checkpoint >= IDLE {
            seen = commits;
            since_checkpoint = Duration::ZERO;
            checkpoint(conn);
        }
    }
}

/// Sleeps for `nap`; true when the checkpointer was stopped meanwhile.
fn sleep_unless_closed(shared: &Shared, nap: Duration) -> bool {
    let (lock, stop) = &shared.stop;
    let held = lock
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if shared.closed.load(Ordering::Acquire) {
        return true;
    }
    let _held = stop
        .wait_timeout(held, nap)
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    shared.closed.load(Ordering::Acquire)
}

/// One `PASSIVE` checkpoint; a failure (a full disk, a file gone) is logged and tried again
/// next time, as SQLite itself would at the next commit.
fn checkpoint(conn: &mut DedicatedConnection) {
    if let Err(error) = conn.run(|conn| conn.batch_execute("PRAGMA wal_checkpoint(PASSIVE)")) {
        tracing::warn!(%error, "WAL checkpoint failed; retrying after the next commits");
    }
}
