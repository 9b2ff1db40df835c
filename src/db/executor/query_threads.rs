//! The threads that run queries, one per pooled query connection, each taking its queries in
//! batches; on SQLite a batch of reads shares one read transaction.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::queue::{JobReceiver, JobSender, job_queue};
use super::{Claim, start_thread};
use crate::db::pool::ConnectionPool;
use crate::db::{Backend, DbConnection, DbError, Session};

/// The most reads that share one SQLite read transaction.
const MOST_READS_PER_SNAPSHOT: usize = 64;

/// A query waiting for a query thread. Given a session, or why there is none, it runs and
/// answers its caller.
struct PendingQuery {
    claim: Arc<Claim>,
    queued: Instant,
    run: Query,
}

/// A query's work: runs in a session, or hears why there is none, and answers its caller.
type Query = Box<dyn FnOnce(Result<&mut Session<'_>, &DbError>) + Send>;

/// The threads that run queries, one per pooled query connection.
///
/// On SQLite a thread takes every read waiting (up to [`MOST_READS_PER_SNAPSHOT`]) and runs them
/// in one read transaction: beginning and ending one takes and releases the WAL read lock, two
/// `fcntl` calls that were about a seventh of a retrieve's time in the profile. Each read is
/// answered as soon as it has run. A batch reads the database as it was when the batch began,
/// after every one of its requests arrived, so no read misses a write acknowledged before its
/// request. On a server database each query runs on its own, as each waits on the network.
///
/// Dropping it closes the queue: the threads run the queries already queued, then stop.
pub(in crate::db) struct QueryThreads {
    queue: JobSender<PendingQuery>,
}

impl std::fmt::Debug for QueryThreads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryThreads").finish_non_exhaustive()
    }
}

impl QueryThreads {
    /// Starts `threads` threads running queries on connections from `pool`.
    pub(in crate::db) fn start(
        pool: &ConnectionPool,
        backend: Backend,
        threads: usize,
        checkout_timeout: Duration,
    ) -> Result<Self, DbError> {
        let (queue, pending) = job_queue();
        let reads_per_snapshot = match backend {
            Backend::Sqlite => MOST_READS_PER_SNAPSHOT,
            Backend::Postgres | Backend::Mysql => 1,
        };
        // Made before the threads: should one fail to start, dropping it stops the others.
        let query_threads = Self { queue };
        for _ in 0..threads.max(1) {
            let (pool, pending) = (pool.clone(), pending.clone());
            start_thread("station-db", move || {
                query_until_closed(&pool, &pending, reads_per_snapshot, checkout_timeout);
            })?;
        }
        Ok(query_threads)
    }

    /// How many queries wait for a thread now.
    pub(in crate::db) fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Queues `query`; it runs unless `claim` was abandoned first, and its result goes to the
    /// returned receiver.
    pub(in crate::db) fn submit<T: Send + 'static>(
        &self,
        claim: Arc<Claim>,
        query: impl FnOnce(&mut Session<'_>) -> Result<T, DbError> + Send + 'static,
    ) -> oneshot::Receiver<Result<T, DbError>> {
        let (sender, receiver) = oneshot::channel();
        let request = crate::telemetry::current_request();
        let run = Box::new(move |session: Result<&mut Session<'_>, &DbError>| {
            let _serving = crate::telemetry::serving(request);
            let result = match session {
                Ok(session) => query(session),
                Err(failure) => Err(failure.for_each_in_batch("the read")),
            };
            let _ = sender.send(result);
        });
        // Refused only once every thread has stopped; the dropped sender then answers.
        let _ = self.queue.push(PendingQuery {
            claim,
            queued: Instant::now(),
            run,
        });
        receiver
    }
}

/// A query thread's life: takes the queries waiting, in batches, until the queue is closed and
/// empty.
fn query_until_closed(
    pool: &ConnectionPool,
    pending: &JobReceiver<PendingQuery>,
    reads_per_snapshot: usize,
    checkout_timeout: Duration,
) {
    let mut batch = Vec::with_capacity(reads_per_snapshot);
    while pending.take(reads_per_snapshot, &mut batch) {
        // The oldest query has waited longest: it sets how long a connection may take.
        let Some(oldest) = batch.first() else {
            continue;
        };
        let patience = checkout_timeout.saturating_sub(oldest.queued.elapsed());
        match pool.get_timeout(patience.max(Duration::from_millis(1))) {
            Ok(mut conn) => {
                let lost = if reads_per_snapshot > 1 {
                    run_in_one_snapshot(conn.connection(), &mut batch)
                } else {
                    run_each(conn.connection(), &mut batch)
                };
                if lost {
                    conn.mark_lost();
                }
            }
            Err(error) => tell_each(&mut batch, &DbError::Unavailable(Box::new(error))),
        }
    }
}

/// Runs `batch` in one read transaction; true when the connection should be retired.
fn run_in_one_snapshot(conn: &mut DbConnection, batch: &mut Vec<PendingQuery>) -> bool {
    let mut lost = false;
    let outcome = conn.read_transaction(|conn| {
        lost = run_each(conn, batch);
        Ok(())
    });
    if let Err(error) = outcome {
        // The transaction did not begin (nothing ran) or did not end (everything was answered).
        tell_each(batch, &DbError::from_query(error));
        lost = true;
    }
    lost
}

/// Answers each query in `batch` whose caller still waits with `failure`, unrun.
fn tell_each(batch: &mut Vec<PendingQuery>, failure: &DbError) {
    for query in batch.drain(..) {
        if query.claim.start() {
            (query.run)(Err(failure));
        }
    }
}

/// Runs each query in `batch` whose caller still waits; true when the connection should be
/// retired.
fn run_each(conn: &mut DbConnection, batch: &mut Vec<PendingQuery>) -> bool {
    let mut session = Session::new(conn);
    for query in batch.drain(..) {
        if !query.claim.start() {
            continue;
        }
        let ran = std::panic::catch_unwind(AssertUnwindSafe(|| (query.run)(Ok(&mut session))));
        if ran.is_err() {
            // Its caller hears of it from the dropped sender; the connection's state is unknown.
            session.mark_lost();
        }
    }
    session.is_lost()
}
