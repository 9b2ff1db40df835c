//! The queue between the callers who submit jobs and the threads that run them: crossbeam's
//! unbounded channel, which the threads empty in batches, oldest job first.
//!
//! What the executors need of it, and what the channel does: queueing a job takes no lock and
//! makes no system call unless a thread sleeps waiting for one; then it wakes one sleeper, which
//! stops counting as asleep, so the jobs queued while it wakes up wake nobody else (a `futex` wake
//! for every job queued meanwhile was a twentieth of a retrieve's time in the profile). A thread
//! sleeps only when the queue is empty (after spinning and yielding briefly, crossbeam's backoff,
//! which catches a job queued just after), and takes everything waiting, up to its bound, when it
//! wakes.

use crossbeam_channel::{Receiver, Sender};

/// A new, open queue: its sending end, for the executor's handle, and its receiving end, which
/// each of the executor's threads clones.
pub(super) fn job_queue<J>() -> (JobSender<J>, JobReceiver<J>) {
    let (sender, receiver) = crossbeam_channel::unbounded();
    (JobSender(sender), JobReceiver(receiver))
}

/// Where jobs are queued. Dropping it closes the queue: the threads take the jobs still queued,
/// then hear that it is closed.
pub(super) struct JobSender<J>(Sender<J>);

impl<J> JobSender<J> {
    /// Queues `job`; hands it back when every thread taking jobs has stopped.
    pub(super) fn push(&self, job: J) -> Result<(), J> {
        self.0.send(job).map_err(|refused| refused.into_inner())
    }
}

/// Where the threads take jobs from.
pub(super) struct JobReceiver<J>(Receiver<J>);

impl<J> Clone for JobReceiver<J> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<J> JobReceiver<J> {
    /// Waits for jobs and moves up to `most` of them into `batch`, oldest first; false once the
    /// queue is closed and empty.
    pub(super) fn take(&self, most: usize, batch: &mut Vec<J>) -> bool {
        let Ok(first) = self.0.recv() else {
            return false;
        };
        batch.push(first);
        batch.extend(self.0.try_iter().take(most.saturating_sub(1)));
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
