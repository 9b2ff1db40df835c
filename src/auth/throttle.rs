//! Slows down password guessing from one place: a token bucket of failed attempts per client
//! address, checked before anything is read or hashed.
//!
//! Nothing is counted per username: a bucket there refused the right password once others had
//! guessed wrong, handing anyone the power to lock a user out. The `Authenticator` verifies one
//! password at a time per address (so concurrent guesses cannot all pass the check before the
//! first failure is counted) and per username (so guesses at one account from many addresses
//! come one hash after another).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// Attempt counters per client address, bounded in memory.
#[derive(Debug)]
pub struct FailureThrottle {
    settings: ThrottleSettings,
    max_tracked: usize,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl FailureThrottle {
    /// A throttle with `settings`, tracking at most `max_tracked` addresses at once.
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

    /// `Err(wait)` when `client` has no attempts left; `wait` is when one comes back.
    pub fn check(&self, client: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        match self.lock().get(&client).map(|b| self.refilled(*b, now)) {
            Some(tokens) if tokens < 1.0 => Err(self.settings.refill_every.mul_f64(1.0 - tokens)),
            _ => Ok(()),
        }
    }

    /// Counts one failed attempt against `client`.
    pub fn record_failure(&self, client: IpAddr) {
        let now = Instant::now();
        let mut buckets = self.lock();
        if !buckets.contains_key(&client) && buckets.len() >= self.max_tracked {
            // Forget addresses that have fully recovered; they carry no information.
            let burst = f64::from(self.settings.burst);
            buckets.retain(|_, bucket| self.refilled(*bucket, now) < burst);
            if buckets.len() >= self.max_tracked {
                // Every tracked address is mid-attack: this one goes uncounted rather than
                // growing the map; the bound on concurrent hashes still holds its cost down.
                return;
            }
        }
        let full = Bucket {
            tokens: f64::from(self.settings.burst),
            updated: now,
        };
        let bucket = buckets.entry(client).or_insert(full);
        *bucket = Bucket {
            tokens: (self.refilled(*bucket, now) - 1.0).max(0.0),
            updated: now,
        };
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Bucket>> {
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

    fn address(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn a_burst_of_failures_is_allowed_and_then_throttled_per_address() {
        let throttle = throttle(3, 60_000);
        for _ in 0..3 {
            assert!(throttle.check(address(1)).is_ok());
            throttle.record_failure(address(1));
        }
        let wait = throttle.check(address(1)).unwrap_err();
        assert!(wait > Duration::from_secs(50) && wait <= Duration::from_secs(60));
        assert!(throttle.check(address(2)).is_ok());
    }

    #[test]
    fn attempts_come_back_with_time() {
        let throttle = throttle(1, 30);
        throttle.record_failure(address(1));
        assert!(throttle.check(address(1)).is_err());
        std::thread::sleep(Duration::from_millis(40));
        assert!(throttle.check(address(1)).is_ok());
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_addresses() {
        let throttle = FailureThrottle::new(
            ThrottleSettings {
                burst: 1,
                refill_every: Duration::from_secs(60),
            },
            50,
        );
        for i in 0..1000u32 {
            throttle.record_failure(IpAddr::from(i.to_be_bytes()));
        }
        assert!(throttle.lock().len() <= 50);
    }
}
