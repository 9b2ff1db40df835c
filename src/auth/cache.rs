//! Remembers which credentials were verified recently, so a repeat request skips the hash.
//!
//! Entries are keyed by an HMAC (with a key drawn at start-up and never stored) over the username,
//! the password and the stored hash. A memory dump therefore holds no password, and a password
//! change anywhere (another process, another instance) makes every old entry unreachable at once,
//! because the stored hash is part of the key.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// The cache key for one (username, password, stored hash) triple.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

/// A bounded, expiring set of verified credential fingerprints.
pub struct VerifiedCredentials {
    key: [u8; 32],
    ttl: Duration,
    capacity: usize,
    expiry_by_fingerprint: Mutex<HashMap<Fingerprint, Instant>>,
}

impl std::fmt::Debug for VerifiedCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedCredentials")
            .field("ttl", &self.ttl)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl VerifiedCredentials {
    /// An empty cache whose entries live for `ttl`, holding at most `capacity` of them.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Self {
            key,
            ttl,
            capacity,
            expiry_by_fingerprint: Mutex::new(HashMap::new()),
        }
    }

    /// The keyed digest identifying these credentials against this stored hash.
    pub fn fingerprint(&self, username: &str, password: &str, stored_hash: &str) -> Fingerprint {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        // Length prefixes keep ("ab", "c") and ("a", "bc") apart.
        for part in [username, password, stored_hash] {
            mac.update(&(part.len() as u64).to_le_bytes());
            mac.update(part.as_bytes());
        }
        Fingerprint(mac.finalize().into_bytes().into())
    }

    /// Whether these credentials were verified within the last `ttl`.
    pub fn contains(&self, fingerprint: &Fingerprint) -> bool {
        let now = Instant::now();
        let mut entries = self.lock();
        match entries.get(fingerprint) {
            Some(expiry) if *expiry > now => true,
            Some(_) => {
                entries.remove(fingerprint);
                false
            }
            None => false,
        }
    }

    /// Records a successful verification.
    pub fn insert(&self, fingerprint: Fingerprint) {
        if self.capacity == 0 || self.ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut entries = self.lock();
        if entries.len() >= self.capacity {
            entries.retain(|_, expiry| *expiry > now);
        }
        if entries.len() >= self.capacity {
            // Still full of live entries: forgetting them costs one hash each, never correctness.
            entries.clear();
        }
        entries.insert(fingerprint, now + self.ttl);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Fingerprint, Instant>> {
        // A panic while holding this lock cannot leave the map inconsistent: keep serving.
        self.expiry_by_fingerprint
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verified_fingerprint_is_remembered_until_it_expires() {
        let cache = VerifiedCredentials::new(Duration::from_millis(50), 10);
        let fingerprint = cache.fingerprint("admin", "pw", "$argon2id$x");
        assert!(!cache.contains(&fingerprint));
        cache.insert(fingerprint);
        assert!(cache.contains(&fingerprint));
        std::thread::sleep(Duration::from_millis(60));
        assert!(!cache.contains(&fingerprint));
    }

    #[test]
    fn a_new_stored_hash_or_password_gives_a_new_fingerprint() {
        let cache = VerifiedCredentials::new(Duration::from_secs(60), 10);
        let before = cache.fingerprint("admin", "pw", "$argon2id$old");
        assert_ne!(before, cache.fingerprint("admin", "pw", "$argon2id$new"));
        assert_ne!(before, cache.fingerprint("admin", "pW", "$argon2id$old"));
        assert_ne!(
            cache.fingerprint("ab", "c", "h"),
            cache.fingerprint("a", "bc", "h")
        );
    }

    #[test]
    fn fingerprints_differ_between_processes_so_a_dump_is_useless_elsewhere() {
        let one = VerifiedCredentials::new(Duration::from_secs(60), 10);
        let other = VerifiedCredentials::new(Duration::from_secs(60), 10);
        assert_ne!(
            one.fingerprint("admin", "pw", "h"),
            other.fingerprint("admin", "pw", "h")
        );
    }

    #[test]
    fn the_cache_never_grows_past_its_capacity() {
        let cache = VerifiedCredentials::new(Duration::from_secs(60), 3);
        for i in 0..10 {
            cache.insert(cache.fingerprint("u", &i.to_string(), "h"));
        }
        assert!(cache.lock().len() <= 3);
        assert!(cache.contains(&cache.fingerprint("u", "9", "h")));
    }
}
