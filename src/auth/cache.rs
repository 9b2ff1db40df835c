//! Remembers which credentials were verified recently, so a repeat request skips the hash.
//!
//! Entries are keyed by an HMAC (with a key drawn at start-up and never stored) over the username
//! and the password, so a memory dump holds no password; each remembers the stored hash the
//! password was verified against. A request that finds its entry still reads the account (see
//! [`super::PendingCheck`]): a password changed anywhere (another process, another instance)
//! shows up there as a different stored hash, and the entry stops counting at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// A keyed digest of a username and password, or of those and a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

/// A bounded, expiring map from credential fingerprints to the stored hash they matched. Full, it
/// evicts what is least likely to be asked for again (quick_cache's S3-FIFO), so a fleet larger
/// than the capacity costs a hash for the coldest credentials, not for all of them.
pub struct VerifiedCredentials {
    /// The HMAC with its random key already absorbed: cloning it per fingerprint skips hashing
    /// the key's two padded blocks again, half of the work of a fingerprint.
    keyed_mac: Hmac<Sha256>,
    ttl: Duration,
    capacity: usize,
    /// `None` when nothing is to be remembered (capacity or TTL zero).
    entries: Option<quick_cache::sync::Cache<Fingerprint, Verified>>,
}

#[derive(Debug, Clone)]
struct Verified {
    stored_hash: Arc<str>,
    expiry: Instant,
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
        let keyed_mac = <Hmac<Sha256> as Mac>::new_from_slice(&key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        let remembers = capacity > 0 && !ttl.is_zero();
        Self {
            keyed_mac,
            ttl,
            capacity,
            entries: remembers.then(|| quick_cache::sync::Cache::new(capacity)),
        }
    }

    /// The keyed digest of `parts`, length-prefixed so ("ab", "c") and ("a", "bc") differ.
    pub fn fingerprint(&self, parts: &[&str]) -> Fingerprint {
        let mut mac = self.keyed_mac.clone();
        for part in parts {
            mac.update(&(part.len() as u64).to_le_bytes());
            mac.update(part.as_bytes());
        }
        Fingerprint(mac.finalize().into_bytes().into())
    }

    /// The stored hash these credentials were verified against within the last `ttl`, if any.
    pub fn verified_hash(&self, credentials: &Fingerprint) -> Option<Arc<str>> {
        let entries = self.entries.as_ref()?;
        let verified = entries.get(credentials)?;
        if verified.expiry > Instant::now() {
            return Some(verified.stored_hash);
        }
        entries.remove_if(credentials, |current| current.expiry <= Instant::now());
        None
    }

    /// Records that the credentials matched `stored_hash`.
    pub fn remember(&self, credentials: Fingerprint, stored_hash: Arc<str>) {
        if let Some(entries) = &self.entries {
            let expiry = Instant::now() + self.ttl;
            entries.insert(
                credentials,
                Verified {
                    stored_hash,
                    expiry,
                },
            );
        }
    }

    /// Drops what was remembered about these credentials.
    pub fn forget(&self, credentials: &Fingerprint) {
        if let Some(entries) = &self.entries {
            entries.remove(credentials);
        }
    }

    /// How many credentials are remembered now.
    pub fn len(&self) -> usize {
        self.entries
            .as_ref()
            .map_or(0, quick_cache::sync::Cache::len)
    }

    /// True when no credentials are remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(text: &str) -> Arc<str> {
        Arc::from(text)
    }

    #[test]
    fn verified_credentials_are_remembered_with_their_hash_until_they_expire() {
        let cache = VerifiedCredentials::new(Duration::from_millis(50), 10);
        let credentials = cache.fingerprint(&["admin", "pw"]);
        assert!(cache.verified_hash(&credentials).is_none());
        cache.remember(credentials, hash("$argon2id$x"));
        assert_eq!(
            cache.verified_hash(&credentials).as_deref(),
            Some("$argon2id$x")
        );
        std::thread::sleep(Duration::from_millis(60));
        assert!(cache.verified_hash(&credentials).is_none());
    }

    #[test]
    fn a_full_cache_keeps_what_is_asked_for_instead_of_forgetting_everything() {
        let cache = VerifiedCredentials::new(Duration::from_secs(60), 100);
        let hot = cache.fingerprint(&["hot", "pw"]);
        cache.remember(hot, hash("h"));
        for i in 0..1000 {
            assert!(
                cache.verified_hash(&hot).is_some(),
                "evicted after {i} others"
            );
            cache.remember(cache.fingerprint(&["cold", &i.to_string()]), hash("h"));
        }
        assert!(cache.len() <= 100);
    }

    #[test]
    fn nothing_is_remembered_with_no_capacity_or_no_ttl() {
        for cache in [
            VerifiedCredentials::new(Duration::from_secs(60), 0),
            VerifiedCredentials::new(Duration::ZERO, 10),
        ] {
            let credentials = cache.fingerprint(&["admin", "pw"]);
            cache.remember(credentials, hash("h"));
            assert!(cache.verified_hash(&credentials).is_none());
        }
    }

    #[test]
    fn forgotten_credentials_are_not_remembered() {
        let cache = VerifiedCredentials::new(Duration::from_secs(60), 10);
        let credentials = cache.fingerprint(&["admin", "pw"]);
        cache.remember(credentials, hash("h"));
        cache.forget(&credentials);
        assert!(cache.verified_hash(&credentials).is_none());
    }

    #[test]
    fn every_part_counts_and_parts_cannot_be_shifted() {
        let cache = VerifiedCredentials::new(Duration::from_secs(60), 10);
        let before = cache.fingerprint(&["admin", "pw"]);
        assert_ne!(before, cache.fingerprint(&["admin", "pW"]));
        assert_ne!(before, cache.fingerprint(&["admin", "pw", "h"]));
        assert_ne!(
            cache.fingerprint(&["ab", "c"]),
            cache.fingerprint(&["a", "bc"])
        );
    }

    #[test]
    fn fingerprints_differ_between_processes_so_a_dump_is_useless_elsewhere() {
        let one = VerifiedCredentials::new(Duration::from_secs(60), 10);
        let other = VerifiedCredentials::new(Duration::from_secs(60), 10);
        assert_ne!(
            one.fingerprint(&["admin", "pw"]),
            other.fingerprint(&["admin", "pw"])
        );
    }

    #[test]
    fn the_cache_never_grows_past_its_capacity() {
        let cache = VerifiedCredentials::new(Duration::from_secs(60), 3);
        for i in 0..10 {
            cache.remember(cache.fingerprint(&["u", &i.to_string()]), hash("h"));
        }
        assert!(cache.len() <= 3, "{}", cache.len());
        assert!(
            cache
                .verified_hash(&cache.fingerprint(&["u", "9"]))
                .is_some()
        );
    }
}
