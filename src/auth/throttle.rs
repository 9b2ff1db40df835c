//! Slows down password guessing: a token bucket of failed attempts per client address and per
//! username, checked before any hash is computed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What failed attempts are counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ThrottleKey {
    /// The client's address.
    Client(IpAddr),
    /// The username tried.
    Username(String),
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// How many failures are allowed in a burst and how fast the allowance comes back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThrottleSettings {
    /// Failures allowed back to back.
    pub burst: u32,
    /// One more failure is allowed each time this passes.
    pub refill_every: Duration,
}

/// Failed-attempt counters, bounded in memory.
#[derive(Debug)]
pub struct FailureThrottle {
    settings: ThrottleSettings,
    max_tracked: usize,
    buckets: Mutex<HashMap<ThrottleKey, Bucket>>,
}

impl FailureThrottle {
    /// A throttle with `settings`, tracking at most `max_tracked` keys at once.
    pub fn new(settings: ThrottleSettings, max_tracked: usize) -> Self {
        Self {
            settings,
            max_tracked,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn refilled(&self, bucket: Bucket, now: Instant) -> f64 {
        let burst = f64::from(self.settings.burst);
        if self.settings.refill_every.is_zero() {
            return burst;
        }
        let earned = now.duration_since(bucket.updated).as_secs_f64()
            / self.settings.refill_every.as_secs_f64();
        (bucket.tokens + earned).min(burst)
    }

    /// `Err(wait)` when any key has no attempts left; `wait` is when one comes back.
    pub fn check(&self, keys: &[ThrottleKey]) -> Result<(), Duration> {
        let now = Instant::now();
        let buckets = self.lock();
        let longest_wait = keys
            .iter()
            .filter_map(|key| buckets.get(key))
            .map(|bucket| self.refilled(*bucket, now))
            .filter(|tokens| *tokens < 1.0)
            .map(|tokens| self.settings.refill_every.mul_f64(1.0 - tokens))
            .max();
        match longest_wait {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    /// Counts one failed attempt against every key.
    pub fn record_failure(&self, keys: &[ThrottleKey]) {
        let now = Instant::now();
        let mut buckets = self.lock();
        if buckets.len() + keys.len() > self.max_tracked {
            // Forget keys that have fully recovered; they carry no information.
            let burst = f64::from(self.settings.burst);
            buckets.retain(|_, bucket| self.refilled(*bucket, now) < burst);
        }
        for key in keys {
            if buckets.len() >= self.max_tracked && !buckets.contains_key(key) {
                continue;
            }
            let full = Bucket {
                tokens: f64::from(self.settings.burst),
                updated: now,
            };
            let bucket = buckets.entry(key.clone()).or_insert(full);
            bucket.tokens = (self.refilled(*bucket, now) - 1.0).max(0.0);
            bucket.updated = now;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ThrottleKey, Bucket>> {
        self.buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(burst: u32, refill_ms: u64) -> FailureThrottle {
        FailureThrottle::new(
            ThrottleSettings {
                burst,
                refill_every: Duration::from_millis(refill_ms),
            },
            100,
        )
    }

    #[test]
    fn a_burst_of_failures_is_allowed_and_then_throttled() {
        let throttle = throttle(3, 60_000);
        let keys = [ThrottleKey::Username("admin".into())];
        for _ in 0..3 {
            assert!(throttle.check(&keys).is_ok());
            throttle.record_failure(&keys);
        }
        let wait = throttle.check(&keys).unwrap_err();
        assert!(wait > Duration::from_secs(50) && wait <= Duration::from_secs(60));
        assert!(
            throttle
                .check(&[ThrottleKey::Username("other".into())])
                .is_ok()
        );
    }

    #[test]
    fn attempts_come_back_with_time() {
        let throttle = throttle(1, 30);
        let keys = [ThrottleKey::Client("127.0.0.1".parse().unwrap())];
        throttle.record_failure(&keys);
        assert!(throttle.check(&keys).is_err());
        std::thread::sleep(Duration::from_millis(40));
        assert!(throttle.check(&keys).is_ok());
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_usernames() {
        let throttle = FailureThrottle::new(
            ThrottleSettings {
                burst: 5,
                refill_every: Duration::from_secs(60),
            },
            50,
        );
        for i in 0..1000 {
            throttle.record_failure(&[ThrottleKey::Username(format!("user{i}"))]);
        }
        assert!(throttle.lock().len() <= 50);
    }
}
