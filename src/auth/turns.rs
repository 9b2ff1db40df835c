//! Locks by key (a client address, a username), made on first use and forgotten when nobody
//! holds or waits for them, so memory follows what is being verified now, not what ever was.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::{Mutex as AsyncMutex, MutexGuard as AsyncMutexGuard};

/// One lock per key.
#[derive(Debug)]
pub(super) struct Turns<K> {
    locks: Mutex<HashMap<K, Arc<AsyncMutex<()>>>>,
}

impl<K> Default for Turns<K> {
    fn default() -> Self {
        Self {
            locks: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Clone> Turns<K> {
    /// A place in `key`'s queue; [`Turn::take`] waits for it.
    pub(super) fn turn(&self, key: K) -> Turn<'_, K> {
        let lock = Arc::clone(self.lock_map().entry(key.clone()).or_default());
        Turn {
            turns: self,
            key,
            lock,
        }
    }

    fn lock_map(&self) -> std::sync::MutexGuard<'_, HashMap<K, Arc<AsyncMutex<()>>>> {
        self.locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock_map().len()
    }
}

/// A claim on one key's lock; forgets the lock once nobody else holds or waits for it.
pub(super) struct Turn<'a, K: Eq + Hash + Clone> {
    turns: &'a Turns<K>,
    key: K,
    lock: Arc<AsyncMutex<()>>,
}

impl<K: Eq + Hash + Clone> Turn<'_, K> {
    /// Waits until every earlier holder of this key's lock is done (first come, first served).
    pub(super) async fn take(&self) -> AsyncMutexGuard<'_, ()> {
        self.lock.lock().await
    }
}

impl<K: Eq + Hash + Clone> Drop for Turn<'_, K> {
    fn drop(&mut self) {
        let mut locks = self.turns.lock_map();
        // The map's handle and this one: nobody else waits.
        if Arc::strong_count(&self.lock) == 2 {
            locks.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_key_is_held_by_one_at_a_time_and_forgotten_when_free() {
        let turns = Turns::default();
        let first = turns.turn("admin".to_owned());
        let held = first.take().await;
        let second = turns.turn("admin".to_owned());
        assert!(second.lock.try_lock().is_err(), "held by the first");
        assert!(turns.turn("other".to_owned()).lock.try_lock().is_ok());
        drop(held);
        assert!(second.lock.try_lock().is_ok());
        drop(first);
        assert_eq!(turns.len(), 1, "the second still waits");
        drop(second);
        assert_eq!(turns.len(), 0);
    }
}
