//! The queue between the callers who submit jobs and the threads that run them, which take them
//! in batches, oldest job first.
//!
//! Queueing a job takes a short lock and makes no system call unless a thread sleeps waiting for
//! one and none is already on its way: a woken thread stops counting as asleep, so the jobs
//! queued while it wakes up wake nobody else (a `futex` wake for every job queued meanwhile was a
//! twentieth of a retrieve's time in the profile). A thread sleeps as soon as the queue is empty,
//! and takes everything waiting, up to its bound, when it wakes.
//!
//! Hand-written rather than crossbeam-channel's unbounded channel, which was tried: its receivers
//! spin and yield before they sleep, CPU that the two cores' HTTP workers wanted, and the
//! service's CPU per retrieve rose by a fifth under `bench/run` (bench/README.md, "The job
//! queue").

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

/// A new, open queue: its sending end, for the executor's handle, and its receiving end, which
/// each of the executor's threads clones.
pub(super) fn job_queue<J>() -> (JobSender<J>, JobReceiver<J>) {
    let queue = Arc::new(JobQueue {
        state: Mutex::new(Waiting {
            jobs: VecDeque::new(),
            sleepers: 0,
            woken: 0,
            receivers: 1,
            open: true,
        }),
        arrived: Condvar::new(),
    });
    (JobSender(Arc::clone(&queue)), JobReceiver(queue))
}

/// What both ends share.
struct JobQueue<J> {
    state: Mutex<Waiting<J>>,
    /// Signalled for a job when a thread sleeps and none is on its way, and for closing.
    arrived: Condvar,
}

/// The queue's state, under its lock.
struct Waiting<J> {
    jobs: VecDeque<J>,
    /// Threads asleep in [`JobReceiver::take`].
    sleepers: usize,
    /// Sleepers already woken that have not run yet.
    woken: usize,
    /// Receiving ends still alive; with none, nobody would ever run a queued job.
    receivers: usize,
    /// False once the sending end is gone.
    open: bool,
}

impl<J> JobQueue<J> {
    fn lock(&self) -> MutexGuard<'_, Waiting<J>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Where jobs are queued. Dropping it closes the queue: the threads take the jobs still queued,
/// then hear that it is closed.
pub(super) struct JobSender<J>(Arc<JobQueue<J>>);

impl<J> JobSender<J> {
    /// Queues `job`; hands it back when every thread taking jobs has stopped.
    pub(super) fn push(&self, job: J) -> Result<(), J> {
        let mut state = self.0.lock();
        if state.receivers == 0 {
            return Err(job);
        }
        state.jobs.push_back(job);
        let wake_one = state.sleepers > state.woken;
        if wake_one {
            state.woken += 1;
        }
        drop(state);
        if wake_one {
            self.0.arrived.notify_one();
        }
        Ok(())
    }
}

impl<J> JobSender<J> {
    /// How many jobs wait for a thread now, for metrics; takes the queue's lock.
    pub(super) fn len(&self) -> usize {
        self.0.lock().jobs.len()
    }
}

impl<J> Drop for JobSender<J> {
    fn drop(&mut self) {
        self.0.lock().open = false;
        self.0.arrived.notify_all();
    }
}

/// Where the threads take jobs from.
pub(super) struct JobReceiver<J>(Arc<JobQueue<J>>);

impl<J> Clone for JobReceiver<J> {
    fn clone(&self) -> Self {
        self.0.lock().receivers += 1;
        Self(Arc::clone(&self.0))
    }
}

impl<J> Drop for JobReceiver<J> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.receivers -= 1;
    }
}

impl<J> JobReceiver<J> {
    /// Waits for jobs and moves up to `most` of them into `batch`, oldest first; false once the
    /// queue is closed and empty.
    pub(super) fn take(&self, most: usize, batch: &mut Vec<J>) -> bool {
        let mut state = self.0.lock();
        while state.jobs.is_empty() {
            if !state.open {
                return false;
            }
            state.sleepers += 1;
            state = self
                .0
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
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::mpsc;
    use std::time::Duration;

    /// Long enough for any wake-up; a taker not back by then was never woken.
    const WAKE_UP: Duration = Duration::from_secs(10);

    /// Starts `count` threads that each take up to `most` jobs from `queue` and report what they
    /// took (`None` once the queue is closed); returns once they have had time to fall asleep.
    /// (The channel does not tell how many wait; a taker still awake when a job comes takes it
    /// all the same, so a slow start cannot fail a test, only make it test less.)
    fn sleeping_takers<J: Send + 'static>(
        queue: &JobReceiver<J>,
        count: usize,
        most: usize,
    ) -> mpsc::Receiver<Option<Vec<J>>> {
        let (report, reports) = mpsc::channel();
        for _ in 0..count {
            let (queue, report) = (queue.clone(), report.clone());
            std::thread::spawn(move || {
                let mut batch = Vec::new();
                let open = queue.take(most, &mut batch);
                let _ = report.send(open.then_some(batch));
            });
        }
        std::thread::sleep(Duration::from_millis(100));
        reports
    }

    #[test]
    fn a_taker_gets_at_most_its_share_oldest_first() {
        let (jobs, queue) = job_queue();
        for job in 0..5 {
            jobs.push(job).unwrap();
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
        let (jobs, queue) = job_queue();
        let reports = sleeping_takers(&queue, 1, 8);

        jobs.push("job").unwrap();

        assert_eq!(reports.recv_timeout(WAKE_UP).unwrap(), Some(vec!["job"]));
    }

    #[test]
    fn jobs_queued_one_after_another_wake_as_many_sleeping_takers() {
        let (jobs, queue) = job_queue();
        let reports = sleeping_takers(&queue, 2, 1);

        jobs.push(1).unwrap();
        jobs.push(2).unwrap();

        let mut taken: Vec<i32> = (0..2)
            .flat_map(|_| reports.recv_timeout(WAKE_UP).unwrap().unwrap())
            .collect();
        taken.sort_unstable();
        assert_eq!(taken, [1, 2]);
    }

    #[test]
    fn a_closed_queue_hands_out_the_jobs_waiting_before_it_says_so() {
        let (jobs, queue) = job_queue();
        jobs.push(1).unwrap();

        drop(jobs);

        let mut batch = Vec::new();
        assert!(queue.take(8, &mut batch));
        assert_eq!(batch, [1]);
        assert!(!queue.take(8, &mut batch));
    }

    #[test]
    fn a_queue_whose_takers_have_stopped_hands_jobs_back() {
        let (jobs, queue) = job_queue();

        drop(queue);

        assert_eq!(jobs.push(2), Err(2));
    }

    #[test]
    fn closing_wakes_every_sleeping_taker() {
        let (jobs, queue) = job_queue::<u8>();
        let reports = sleeping_takers(&queue, 2, 8);

        drop(jobs);

        for _ in 0..2 {
            assert_eq!(reports.recv_timeout(WAKE_UP).unwrap(), None);
        }
    }
}
