//! Device tokens as credentials: keys made from 160 random bits (DRF's 40 hex digits), stored
//! only as their SHA-256, so checking one is a hash and an indexed read, never Argon2.
//!
//! A token's attributes never change once issued (scopes, binding, expiry), so a token seen once
//! is remembered in process by its key's hash ([`KnownTokens`]); what can change, that it still
//! exists, is read on every request, in the same round trip as the request's first query (see
//! [`super::PendingCheck`]). Expiry needs no read: it is compared with the clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

use crate::auth::Principal;
use crate::db::models::TokenRow;
use crate::domain::token::Scopes;
use crate::hex;

/// How many characters of a key are kept in the clear, to recognise a token by.
pub const PREFIX_CHARS: usize = 8;
/// `last_used` is written at most once per this many seconds per token.
pub const LAST_USED_INTERVAL_SECONDS: i64 = 60;

/// A freshly made key: shown once, to whoever issued it, and never stored.
#[derive(Clone, PartialEq, Eq)]
pub struct NewKey(String);

impl std::fmt::Debug for NewKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewKey(<redacted>)")
    }
}

impl NewKey {
    /// 160 random bits as 40 lowercase hex digits, as DRF's `Token.generate_key` makes them.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 20];
        rand::rng().fill_bytes(&mut bytes);
        Self(hex::encode(&bytes))
    }

    /// The key itself, for the one response (or line of output) that shows it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What is stored instead of the key.
    pub fn hash(&self) -> KeyHash {
        KeyHash::of(&self.0)
    }

    /// The non-secret beginning of the key.
    pub fn prefix(&self) -> &str {
        self.0.get(..PREFIX_CHARS).unwrap_or(&self.0)
    }
}

/// The SHA-256 of a key, as 64 lowercase hex digits: how a token is stored and found.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyHash(Arc<str>);

impl KeyHash {
    /// The hash of `key`, as offered by a client.
    pub fn of(key: &str) -> Self {
        Self(hex::encode(&Sha256::digest(key.as_bytes())).into())
    }

    /// The hash as shared text, for a query that outlives the borrow.
    pub fn shared(&self) -> Arc<str> {
        Arc::clone(&self.0)
    }
}

impl AsRef<str> for KeyHash {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A token this process has seen: its immutable attributes, and a note of when its use was last
/// recorded, so most requests do not even try to record it.
#[derive(Debug)]
pub struct KnownToken {
    /// Who the token makes its caller.
    pub principal: Principal,
    /// Its key's hash, by which its existence is checked.
    pub key_hash: KeyHash,
    /// The token's id.
    pub id: i64,
    /// Unix seconds; `None` never.
    pub expires: Option<i64>,
    /// The latest `last_used` this process knows of (written here or read from the database);
    /// `i64::MIN` for never.
    last_used_note: AtomicI64,
}

impl KnownToken {
    /// The token a stored row describes; `None` when the row's scopes are not ones this version
    /// writes (such a token admits nobody).
    pub fn from_row(row: TokenRow) -> Option<Self> {
        let scopes = Scopes::from_stored(&row.scopes)?;
        Some(Self {
            principal: Principal::Token {
                id: row.id,
                scopes,
                station: row.station,
            },
            key_hash: KeyHash(row.key_hash.into()),
            id: row.id,
            expires: row.expires,
            last_used_note: AtomicI64::new(row.last_used.unwrap_or(i64::MIN)),
        })
    }

    /// Whether the token has expired at `now` (Unix seconds).
    pub fn has_expired(&self, now: i64) -> bool {
        self.expires.is_some_and(|expires| expires <= now)
    }

    /// Notes a `last_used` read from the database (another instance may have written it).
    pub fn note_last_used(&self, seen: Option<i64>) {
        if let Some(seen) = seen {
            self.last_used_note.fetch_max(seen, Ordering::Relaxed);
        }
    }

    /// True for the one caller that should record a use at `now`: none was noted within the
    /// interval, and no other request claimed this one first.
    pub fn claim_use(&self, now: i64) -> bool {
        let noted = self.last_used_note.load(Ordering::Relaxed);
        noted <= now - LAST_USED_INTERVAL_SECONDS
            && self
                .last_used_note
                .compare_exchange(noted, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

/// Tokens seen recently, by key hash: bounded, the least asked-for forgotten first.
pub struct KnownTokens {
    entries: Option<quick_cache::sync::Cache<KeyHash, Arc<KnownToken>>>,
}

impl std::fmt::Debug for KnownTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnownTokens").finish_non_exhaustive()
    }
}

impl KnownTokens {
    /// Remembers at most `capacity` tokens; none with capacity zero.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: (capacity > 0).then(|| quick_cache::sync::Cache::new(capacity)),
        }
    }

    /// The token whose key hashes to `hash`, if this process knows it.
    pub fn get(&self, hash: &KeyHash) -> Option<Arc<KnownToken>> {
        self.entries.as_ref()?.get(hash)
    }

    /// Remembers `token`.
    pub fn remember(&self, token: Arc<KnownToken>) {
        if let Some(entries) = &self.entries {
            entries.insert(token.key_hash.clone(), token);
        }
    }

    /// Forgets the token whose key hashes to `hash` (revoked, or expired).
    pub fn forget(&self, hash: &KeyHash) {
        if let Some(entries) = &self.entries {
            entries.remove(hash);
        }
    }
}

/// The current time in Unix seconds.
pub fn now_unix_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_40_hex_digits_and_differ() {
        let (one, other) = (NewKey::generate(), NewKey::generate());
        assert_eq!(one.expose().len(), 40);
        assert!(one.expose().bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(one, other);
        assert_eq!(one.prefix(), &one.expose()[..8]);
        assert!(!format!("{one:?}").contains(one.expose()));
    }

    #[test]
    fn a_key_hashes_to_its_sha256() {
        // echo -n abc | sha256sum
        assert_eq!(
            KeyHash::of("abc").as_ref(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_use_is_claimed_once_a_minute() {
        let row = TokenRow {
            id: 1,
            label: "pi".into(),
            key_hash: KeyHash::of("k").as_ref().to_owned(),
            prefix: "k".into(),
            scopes: "write".into(),
            station: None,
            created: 0,
            last_used: None,
            expires: Some(100),
        };
        let token = KnownToken::from_row(row).unwrap();
        assert!(token.claim_use(1000));
        assert!(!token.claim_use(1059));
        assert!(token.claim_use(1060));
        token.note_last_used(Some(1100));
        assert!(!token.claim_use(1120));
        assert!(token.has_expired(100));
        assert!(!token.has_expired(99));
    }
}
