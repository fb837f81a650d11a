//! One async lock per key (a repo), created on first use: two triggers never work the same
//! repo (or clone) at once, while different repos proceed in parallel.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

/// A map of per-key locks; cheap to clone (shared).
#[derive(Clone, Debug, Default)]
pub struct KeyedLocks {
    locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl KeyedLocks {
    /// Waits for `key`'s lock (keys are compared case-insensitively).
    pub async fn lock(&self, key: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock().expect("lock map");
            Arc::clone(locks.entry(key.to_ascii_lowercase()).or_default())
        };
        lock.lock_owned().await
    }
}
