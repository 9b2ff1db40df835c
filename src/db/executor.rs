//! Where queries run: off the async workers, on threads of their own, with a bounded wait.
//!
//! Two executors, both behind [`super::Database`], both fed by a [`JobQueue`] whose threads take
//! every job waiting (up to a bound) at once and sleep only when there is none, so under load a
//! job costs no wake-up and no context switch (which were most of a request's time in the
//! profile: `bench/run`, `perf record`):
//!
//! - [`QueryThreads`]: one thread per pooled query connection. On SQLite a thread runs the reads
//!   it takes in one read transaction.
//! - [`GroupCommitWriter`] (SQLite only): one thread that runs the writes it takes in one
//!   `BEGIN IMMEDIATE` transaction, each in its own savepoint, and answers them all after the one
//!   commit. SQLite has a single writer; a commit per request made writers queue for the lock
//!   and pay for a commit each.
//!
//! A job waits at most the checkout timeout to start; a caller that gives up first gets a 503,
//! and its job can then never start ([`Claim`]), so a 503 never hides a change that was made.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use diesel::QueryResult;
use diesel::connection::Connection as _;
use diesel::r2d2::Pool;
use tokio::sync::oneshot;

use super::pool::ConnectionManager;
use super::{Backend, DbConnection, DbError, Session};

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

/// Jobs waiting for the threads that run them, which take them in batches, oldest first.
struct JobQueue<J> {
    state: Mutex<Waiting<J>>,
    arrived: Condvar,
}

struct Waiting<J> {
    jobs: VecDeque<J>,
    /// Threads asleep in [`JobQueue::take`].
    sleepers: usize,
    /// Sleepers already woken that have not run yet. A job wakes a thread only if one sleeps
    /// and none is on its way: while the threads are busy, or waking, queueing a job costs no
    /// system call (a `futex` wake for every job queued while the thread woke up was a twentieth
    /// of a retrieve's time in the profile).
    woken: usize,
    open: bool,
}

impl<J> JobQueue<J> {
    fn new() -> Self {
        Self {
            state: Mutex::new(Waiting {
                jobs: VecDeque::new(),
                sleepers: 0,
                woken: 0,
                open: true,
            }),
            arrived: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Waiting<J>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `job`; hands it back once the queue is closed.
    fn push(&self, job: J) -> Result<(), J> {
        let mut state = self.lock();
        if !state.open {
            return Err(job);
        }
        state.jobs.push_back(job);
        let wake_one = state.sleepers > state.woken;
        if wake_one {
            state.woken += 1;
        }
        drop(state);
        if wake_one {
            self.arrived.notify_one();
        }
        Ok(())
    }

    /// Waits for jobs and moves up to `most` of them into `batch`; false once the queue is closed
    /// and empty.
    fn take(&self, most: usize, batch: &mut Vec<J>) -> bool {
        let mut state = self.lock();
        while state.jobs.is_empty() {
            if !state.open {
                return false;
            }
            state.sleepers += 1;
            state = self
                .arrived
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
            state.sleepers -= 1;
            // Woken or not (a spurious wake-up), this thread is no longer one to wait for.
            state.woken = state.woken.saturating_sub(1);
        }
        let taken = most.min(state.jobs.len());
        batch.extend(state.jobs.drain(..taken));
        true
    }

    /// Refuses new jobs; the threads finish those queued, then stop.
    fn close(&self) {
        self.lock().open = false;
        self.arrived.notify_all();
    }
}

/// Starts a thread named `name` that runs `work`.
fn start_thread(name: &str, work: impl FnOnce() + Send + 'static) -> Result<(), DbError> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(work)
        .map(drop)
        .map_err(|e| DbError::Unavailable(Box::new(e)))
}

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
pub(super) struct QueryThreads {
    queue: Arc<JobQueue<PendingQuery>>,
}

impl std::fmt::Debug for QueryThreads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryThreads").finish_non_exhaustive()
    }
}

impl QueryThreads {
    /// Starts `threads` threads running queries on connections from `pool`.
    pub(super) fn start(
        pool: &Pool<ConnectionManager>,
        backend: Backend,
        threads: usize,
        checkout_timeout: Duration,
    ) -> Result<Self, DbError> {
        let queue = Arc::new(JobQueue::new());
        let reads_per_snapshot = match backend {
            Backend::Sqlite => MOST_READS_PER_SNAPSHOT,
            Backend::Postgres | Backend::Mysql => 1,
        };
        // Made before the threads: should one fail to start, dropping it stops the others.
        let query_threads = Self {
            queue: Arc::clone(&queue),
        };
        for _ in 0..threads.max(1) {
            let (pool, queue) = (pool.clone(), Arc::clone(&queue));
            start_thread("station-db", move || {
                query_until_closed(&pool, &queue, reads_per_snapshot, checkout_timeout);
            })?;
        }
        Ok(query_threads)
    }

    /// Queues `query`; it runs unless `claim` was abandoned first, and its result goes to the
    /// returned receiver.
    pub(super) fn submit<T: Send + 'static>(
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
        // Refused only once the threads are stopping; the dropped sender then answers.
        let _ = self.queue.push(PendingQuery {
            claim,
            queued: Instant::now(),
            run,
        });
        receiver
    }
}

impl Drop for QueryThreads {
    fn drop(&mut self) {
        self.queue.close();
    }
}

fn query_until_closed(
    pool: &Pool<ConnectionManager>,
    pending: &JobQueue<PendingQuery>,
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
pub(super) struct GroupCommitWriter {
    queue: Arc<JobQueue<PendingWrite>>,
}

impl std::fmt::Debug for GroupCommitWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommitWriter").finish_non_exhaustive()
    }
}

impl GroupCommitWriter {
    /// Starts the writer thread on connections from `pool`.
    pub(super) fn start(
        pool: Pool<ConnectionManager>,
        checkout_timeout: Duration,
    ) -> Result<Self, DbError> {
        let queue = Arc::new(JobQueue::new());
        let pending = Arc::clone(&queue);
        start_thread("station-db-writer", move || {
            write_until_closed(&pool, checkout_timeout, &pending);
        })?;
        Ok(Self { queue })
    }

    /// Queues `change` for the next group commit; the receiver gets its result after the commit.
    pub(super) fn submit<T: Send + 'static>(
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
        // Refused only once the writer is stopping; the dropped sender then answers.
        let _ = self.queue.push(PendingWrite { claim, change });
        receiver
    }
}

impl Drop for GroupCommitWriter {
    fn drop(&mut self) {
        self.queue.close();
    }
}

fn write_until_closed(
    pool: &Pool<ConnectionManager>,
    checkout_timeout: Duration,
    pending: &JobQueue<PendingWrite>,
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
        .map_or_else(|| DbError::TaskLost, |f| f.for_each_in_batch("the commit"));
    for write in batch {
        (write.change)(Err(&failure_before_running))(None);
    }
    for deliver in deliveries {
        deliver(failure.as_ref());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::mpsc;

    /// Long enough for any wake-up; a taker not back by then was never woken.
    const WAKE_UP: Duration = Duration::from_secs(10);

    /// Starts `count` threads that each take up to `most` jobs from `queue` and report what they
    /// took (`None` once the queue is closed); returns once all of them sleep.
    fn sleeping_takers<J: Send + 'static>(
        queue: &Arc<JobQueue<J>>,
        count: usize,
        most: usize,
    ) -> mpsc::Receiver<Option<Vec<J>>> {
        let (report, reports) = mpsc::channel();
        for _ in 0..count {
            let (queue, report) = (Arc::clone(queue), report.clone());
            std::thread::spawn(move || {
                let mut batch = Vec::new();
                let open = queue.take(most, &mut batch);
                let _ = report.send(open.then_some(batch));
            });
        }
        while queue.lock().sleepers < count {
            std::thread::yield_now();
        }
        reports
    }

    #[test]
    fn a_taker_gets_at_most_its_share_oldest_first() {
        let queue = JobQueue::new();
        for job in 0..5 {
            queue.push(job).unwrap();
        }
        let mut batch = Vec::new();

        assert!(queue.take(3, &mut batch));
        assert_eq!(batch, [0, 1, 2]);
        batch.clear();
        assert!(queue.take(3, &mut batch));
        assert_eq!(batch, [3, 4]);
    }

    #[test]
    fn a_job_wakes_a_sleeping_taker() {
        let queue = Arc::new(JobQueue::new());
        let reports = sleeping_takers(&queue, 1, 8);

        queue.push("job").unwrap();

        assert_eq!(reports.recv_timeout(WAKE_UP).unwrap(), Some(vec!["job"]));
    }

    #[test]
    fn jobs_queued_one_after_another_wake_as_many_sleeping_takers() {
        let queue = Arc::new(JobQueue::new());
        let reports = sleeping_takers(&queue, 2, 1);

        queue.push(1).unwrap();
        queue.push(2).unwrap();

        let mut taken: Vec<i32> = (0..2)
            .flat_map(|_| reports.recv_timeout(WAKE_UP).unwrap().unwrap())
            .collect();
        taken.sort_unstable();
        assert_eq!(taken, [1, 2]);
    }

    #[test]
    fn a_closed_queue_refuses_jobs_and_hands_out_those_waiting_before_it_says_so() {
        let queue = JobQueue::new();
        queue.push(1).unwrap();

        queue.close();

        assert_eq!(queue.push(2), Err(2));
        let mut batch = Vec::new();
        assert!(queue.take(8, &mut batch));
        assert_eq!(batch, [1]);
        assert!(!queue.take(8, &mut batch));
    }

    #[test]
    fn closing_wakes_every_sleeping_taker() {
        let queue = Arc::new(JobQueue::<u8>::new());
        let reports = sleeping_takers(&queue, 2, 8);

        queue.close();

        for _ in 0..2 {
            assert_eq!(reports.recv_timeout(WAKE_UP).unwrap(), None);
        }
    }
}
