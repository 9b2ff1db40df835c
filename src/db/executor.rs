//! Where queries run: off the async workers, on a fixed set of threads, with a bounded wait.
//!
//! Two executors, both behind [`super::Database`]:
//!
//! - [`QueryThreads`]: at most one thread per pooled connection. Jobs beyond that wait in the
//!   pool's queue, and a thread that finishes one takes the next without going to sleep; under
//!   load that saves the two context switches a sleep-and-wake round trip costs, which were most
//!   of a request's time in the profile (`bench/run`, `perf record`).
//! - [`GroupCommitWriter`] (SQLite only): one thread that takes every write waiting for it and
//!   runs them in one `BEGIN IMMEDIATE` transaction, each in its own savepoint, and answers them
//!   all after the one commit. SQLite has a single writer; a commit per request made writers
//!   queue for the lock and pay for a commit each.
//!
//! A job waits at most the checkout timeout to start; a caller that gives up first gets a 503,
//! and its job can then never start ([`Claim`]), so a 503 never hides a change that was made.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use diesel::QueryResult;
use diesel::connection::Connection as _;
use diesel::r2d2::Pool;
use tokio::sync::oneshot;

use super::DbError;
use super::connection::ConnectionManager;
use crate::db::DbConnection;

/// The most writes one group commit takes.
const MOST_WRITES_PER_COMMIT: usize = 128;

/// Who decides a queued job's fate: the thread that would run it, or the caller giving up.
#[derive(Debug, Default)]
pub(super) struct Claim(AtomicU8);

impl Claim {
    const WAITING: u8 = 0;
    const STARTED: u8 = 1;
    const ABANDONED: u8 = 2;

    /// The executor's side: true if the job may run (its caller is still waiting).
    fn start(&self) -> bool {
        self.transition(Self::STARTED)
    }

    /// The caller's side: true if the job had not started and now never will.
    fn abandon(&self) -> bool {
        self.transition(Self::ABANDONED)
    }

    fn transition(&self, to: u8) -> bool {
        self.0
            .compare_exchange(Self::WAITING, to, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

/// Waits for a job's answer; gives up with a 503 if it has not started within `patience`.
pub(super) async fn answer<T>(
    claim: &Claim,
    answer: oneshot::Receiver<Result<T, DbError>>,
    patience: Duration,
) -> Result<T, DbError> {
    tokio::pin!(answer);
    let lost = |_| DbError::TaskLost;
    tokio::select! {
        biased;
        outcome = &mut answer => outcome.map_err(lost)?,
        () = tokio::time::sleep(patience) => {
            if claim.abandon() {
                return Err(DbError::Unavailable(
                    "no database connection became free within the checkout timeout".into(),
                ));
            }
            // It is running: its outcome, whatever it is, is the answer.
            answer.await.map_err(lost)?
        }
    }
}

/// Threads for queries, at most one per pooled connection.
pub(super) struct QueryThreads {
    /// Only its blocking pool is used; it is shut down without waiting when dropped, so a
    /// `Database` can be dropped anywhere, async contexts included.
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for QueryThreads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryThreads").finish_non_exhaustive()
    }
}

impl QueryThreads {
    /// Up to `threads` threads, started as work arrives.
    pub(super) fn new(threads: usize) -> Result<Self, DbError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .thread_name("station-db")
            .max_blocking_threads(threads.max(1))
            .build()
            .map_err(|e| DbError::Unavailable(Box::new(e)))?;
        Ok(Self {
            runtime: Some(runtime),
        })
    }

    /// Queues `job`; it runs unless `claim` was abandoned first, and its result goes to the
    /// returned receiver.
    pub(super) fn submit<T: Send + 'static>(
        &self,
        claim: Arc<Claim>,
        job: impl FnOnce() -> Result<T, DbError> + Send + 'static,
    ) -> oneshot::Receiver<Result<T, DbError>> {
        let (sender, receiver) = oneshot::channel();
        if let Some(runtime) = &self.runtime {
            runtime.spawn_blocking(move || {
                if claim.start() {
                    let _ = sender.send(job());
                }
            });
        }
        receiver
    }
}

impl Drop for QueryThreads {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A write waiting for the group commit. Given the transaction's connection, its change runs in a
/// savepoint and hands back how to deliver its result once the commit's fate is known; given why
/// no transaction could start, it hands back the delivery of that failure.
struct PendingWrite {
    claim: Arc<Claim>,
    change: Change,
}

/// A write's change: runs in the transaction, or hears why there is none.
type Change = Box<dyn FnOnce(Result<&mut DbConnection, &DbError>) -> Delivery + Send>;

/// Sends one write's result: `None` when the commit succeeded, else why it failed.
type Delivery = Box<dyn FnOnce(Option<&DbError>) + Send>;

/// SQLite's one writer thread; dropping the last handle ends it once the queue is drained.
#[derive(Debug, Clone)]
pub(super) struct GroupCommitWriter {
    queue: mpsc::Sender<PendingWrite>,
}

impl GroupCommitWriter {
    /// Starts the writer thread on connections from `pool`.
    pub(super) fn start(
        pool: Pool<ConnectionManager>,
        checkout_timeout: Duration,
    ) -> Result<Self, DbError> {
        let (queue, pending) = mpsc::channel();
        std::thread::Builder::new()
            .name("station-db-writer".to_owned())
            .spawn(move || write_until_closed(&pool, checkout_timeout, &pending))
            .map_err(|e| DbError::Unavailable(Box::new(e)))?;
        Ok(Self { queue })
    }

    /// Queues `change` for the next group commit; the receiver gets its result after the commit.
    pub(super) fn submit<T: Send + 'static>(
        &self,
        claim: Arc<Claim>,
        change: impl FnOnce(&mut DbConnection) -> QueryResult<T> + Send + 'static,
    ) -> oneshot::Receiver<Result<T, DbError>> {
        let (sender, receiver) = oneshot::channel();
        let change = Box::new(
            move |transaction: Result<&mut DbConnection, &DbError>| -> Delivery {
                let outcome = match transaction {
                    // A savepoint per write: one that fails is undone alone; the others commit.
                    Ok(conn) => conn.transaction(change).map_err(DbError::from_query),
                    Err(failure) => Err(failure.for_each_write()),
                };
                Box::new(move |commit_failure: Option<&DbError>| {
                    let result = match commit_failure {
                        Some(failure) if outcome.is_ok() => Err(failure.for_each_write()),
                        _ => outcome,
                    };
                    let _ = sender.send(result);
                })
            },
        );
        // A send fails only once the writer thread is gone; the dropped sender then answers.
        let _ = self.queue.send(PendingWrite { claim, change });
        receiver
    }
}

fn write_until_closed(
    pool: &Pool<ConnectionManager>,
    checkout_timeout: Duration,
    pending: &mpsc::Receiver<PendingWrite>,
) {
    while let Ok(first) = pending.recv() {
        let mut batch = vec![first];
        while batch.len() < MOST_WRITES_PER_COMMIT {
            match pending.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        batch.retain(|write| write.claim.start());
        if !batch.is_empty() {
            commit_together(pool, checkout_timeout, batch);
        }
    }
}

/// Runs `batch` in one transaction and tells each write how it ended.
fn commit_together(
    pool: &Pool<ConnectionManager>,
    checkout_timeout: Duration,
    batch: Vec<PendingWrite>,
) {
    let started = Instant::now();
    let mut conn = match pool.get_timeout(checkout_timeout) {
        Ok(conn) => conn,
        Err(error) => {
            let failure = DbError::Unavailable(Box::new(error));
            for write in batch {
                (write.change)(Err(&failure))(None);
            }
            return;
        }
    };
    let mut batch = batch;
    let mut deliveries = Vec::with_capacity(batch.len());
    let committed = std::panic::catch_unwind(AssertUnwindSafe(|| {
        conn.connection().write_transaction(|conn| {
            for write in batch.drain(..) {
                deliveries.push((write.change)(Ok(conn)));
            }
            Ok(())
        })
    }));
    let failure = match committed {
        Ok(Ok(())) => None,
        Ok(Err(error)) => Some(DbError::from_query(error)),
        Err(_) => {
            // A change panicked: the transaction is in an unknown state, so the connection goes.
            conn.mark_lost();
            Some(DbError::TaskLost)
        }
    };
    tracing::trace!(
        writes = deliveries.len(),
        elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        "group commit"
    );
    // Writes that never ran (the transaction could not begin) hear why.
    let failure_before_running = failure
        .as_ref()
        .map_or_else(|| DbError::TaskLost, DbError::for_each_write);
    for write in batch {
        (write.change)(Err(&failure_before_running))(None);
    }
    for deliver in deliveries {
        deliver(failure.as_ref());
    }
}
