//! Cancellation: a queued job runs only if its caller still waits, and a caller waits only so long
//! for its job to start.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::db::DbError;

/// Who decides a queued job's fate: the thread that would run it, or the caller giving up.
#[derive(Debug, Default)]
pub(in crate::db) struct Claim(AtomicU8);

impl Claim {
    const WAITING: u8 = 0;
    const STARTED: u8 = 1;
    const ABANDONED: u8 = 2;

    /// The executor's side: true if the job may run (its caller is still waiting).
    pub(super) fn start(&self) -> bool {
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
pub(in crate::db) async fn answer<T>(
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
