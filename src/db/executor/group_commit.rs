//! SQLite's one writer: a thread that commits the writes waiting for it together, each in a
//! savepoint of one transaction, and answers them all once the commit's fate is known.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::QueryResult;
use diesel::connection::Connection as _;
use tokio::sync::oneshot;

use super::queue::{JobReceiver, JobSender, job_queue};
use super::{Claim, start_thread};
use crate::db::pool::ConnectionPool;
use crate::db::{DbConnection, DbError};

/// The most writes one group commit takes.
const MOST_WRITES_PER_COMMIT: usize = 128;

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

/// SQLite's one writer thread; it stops once the queue is drained after the last handle goes.
pub(in crate::db) struct GroupCommitWriter {
    queue: JobSender<PendingWrite>,
}

impl std::fmt::Debug for GroupCommitWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommitWriter").finish_non_exhaustive()
    }
}

impl GroupCommitWriter {
    /// Starts the writer thread on connections from `pool`.
    pub(in crate::db) fn start(
        pool: ConnectionPool,
        checkout_timeout: Duration,
    ) -> Result<Self, DbError> {
        let (queue, pending) = job_queue();
        start_thread("station-db-writer", move || {
            write_until_closed(&pool, checkout_timeout, &pending);
        })?;
        Ok(Self { queue })
    }

    /// How many writes wait for the next group commit now.
    pub(in crate::db) fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Queues `change` for the next group commit; the receiver gets its result after the commit.
    pub(in crate::db) fn submit<T: Send + 'static>(
        &self,
        claim: Arc<Claim>,
        change: impl FnOnce(&mut DbConnection) -> QueryResult<T> + Send + 'static,
    ) -> oneshot::Receiver<Result<T, DbError>> {
        let (sender, receiver) = oneshot::channel();
        let request = crate::telemetry::current_request();
        let change = Box::new(
            move |transaction: Result<&mut DbConnection, &DbError>| -> Delivery {
                let _serving = crate::telemetry::serving(request);
                let outcome = match transaction {
                    // A savepoint per write: one that fails is undone alone; the others commit.
                    Ok(conn) => conn.transaction(change).map_err(DbError::from_query),
                    Err(failure) => Err(failure.for_each_in_batch("the commit")),
                };
                Box::new(move |commit_failure: Option<&DbError>| {
                    let result = match commit_failure {
                        Some(failure) if outcome.is_ok() => {
                            Err(failure.for_each_in_batch("the commit"))
                        }
                        _ => outcome,
                    };
                    let _ = sender.send(result);
                })
            },
        );
        // Refused only once the writer has stopped; the dropped sender then answers.
        let _ = self.queue.push(PendingWrite { claim, change });
        receiver
    }
}

/// The writer thread's life: commits the writes waiting, in groups, until the queue is closed and
/// empty.
fn write_until_closed(
    pool: &ConnectionPool,
    checkout_timeout: Duration,
    pending: &JobReceiver<PendingWrite>,
) {
    let mut batch = Vec::with_capacity(MOST_WRITES_PER_COMMIT);
    while pending.take(MOST_WRITES_PER_COMMIT, &mut batch) {
        batch.retain(|write| write.claim.start());
        if !batch.is_empty() {
            commit_together(pool, checkout_timeout, std::mem::take(&mut batch));
        }
    }
}

/// Runs `batch` in one transaction and tells each write how it ended.
fn commit_together(pool: &ConnectionPool, checkout_timeout: Duration, batch: Vec<PendingWrite>) {
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
        .map_or_else(|| DbError::TaskLost, |f| f.for_each_in_batch("the commit"));
    for write in batch {
        (write.change)(Err(&failure_before_running))(None);
    }
    for deliver in deliveries {
        deliver(failure.as_ref());
    }
}
