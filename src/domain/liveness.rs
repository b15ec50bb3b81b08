//! The isolate's memory of whether credentials are still live: revocation that reaches every
//! request within `REVOCATION_DELAY_SECONDS`.
//!
//! An access token is checked from its signature alone (the verify cache); what can end it
//! before its `exp` lives in storage: its session (revoked, past its absolute lifetime), its
//! user (disabled, roles changed). An API key's row says the same of the key. Reading that on
//! every request would put storage on the proxy's hot path, so `services::auth` reads it once
//! and keeps it here, keyed by session, user or key hash, for at most the delay. An entry
//! fetched at `fetched_at` answers requests whose clock reads less than
//! `fetched_at + delay`; from that instant on the next request reads storage again (and so does
//! every request of that credential that arrives while the read is under way: concurrent reads
//! are not merged, which costs reads, never correctness). Because
//! `fetched_at` is the clock reading of the request that did the read, taken before the read
//! ran, a change committed at instant `T` is seen by every request whose clock reads
//! `T + delay` or later.
//!
//! The cache holds at most [`LivenessCache::CAPACITY`] entries. When it is full, entries older
//! than the delay go first, then the oldest fetched. Only what a signed token (its session,
//! user, or the key a scoped token was minted from) or a stored key names is kept (never an unknown key hash), so a flood of made-up credentials costs reads
//! but cannot fill it; one that a holder of many real credentials fills only evicts entries
//! early, which costs reads, never correctness.
//!
//! Pure: the time is passed in, never read.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::domain::store::{KeyHash, KeyLookup, SessionLiveness};

/// What an entry is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LivenessKey {
    /// An access token's session: its `sid`, a refresh family id.
    Session(String),
    /// An access token without a `sid`: its user (`sub`).
    User(String),
    /// An API key, by its stored hash.
    ApiKey(KeyHash),
    /// An API key by id: what a scoped token minted from the key names (`act.key_id`).
    ApiKeyId(String),
}

/// A user as a credential without a session needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserLiveness {
    /// Whether the user is disabled.
    pub disabled: bool,
    /// The user's current roles.
    pub roles: Vec<String>,
}

/// What storage said of a [`LivenessKey`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    /// A session joined with its user; `None`: no such session.
    Session(Option<SessionLiveness>),
    /// A user; `None`: no such user.
    User(Option<UserLiveness>),
    /// An API key with its owner's roles and status.
    ApiKey(KeyLookup),
    /// An API key read by id, with its owner's roles and status; `None`: no such key.
    ApiKeyId(Option<KeyLookup>),
}

#[derive(Debug)]
struct Entry {
    fetched_at: i64,
    liveness: Liveness,
}

/// Liveness read from storage by this isolate, each entry for at most the delay.
#[derive(Debug, Default)]
pub struct LivenessCache {
    entries: RefCell<HashMap<LivenessKey, Entry>>,
}

impl LivenessCache {
    /// Most entries kept.
    pub const CAPACITY: usize = 4096;

    /// What was read of `key` less than `delay_ms` before `now`, if anything was.
    pub fn get(&self, key: &LivenessKey, now: i64, delay_ms: i64) -> Option<Liveness> {
        let entries = self.entries.borrow();
        let entry = entries.get(key)?;
        fresh(entry, now, delay_ms).then(|| entry.liveness.clone())
    }

    /// Remembers what a read that started at `fetched_at` found of `key`. With a delay of 0
    /// nothing is kept; an entry fetched later than this one is kept instead.
    pub fn put(&self, key: LivenessKey, liveness: Liveness, fetched_at: i64, delay_ms: i64) {
        if delay_ms <= 0 {
            return;
        }
        let mut entries = self.entries.borrow_mut();
        if let Some(existing) = entries.get_mut(&key) {
            if existing.fetched_at <= fetched_at {
                *existing = Entry {
                    fetched_at,
                    liveness,
                };
            }
            return;
        }
        if entries.len() >= Self::CAPACITY {
            entries.retain(|_, e| fresh(e, fetched_at, delay_ms));
        }
        if entries.len() >= Self::CAPACITY {
            let oldest = entries
                .iter()
                .min_by_key(|(_, e)| e.fetched_at)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                entries.remove(&oldest);
            }
        }
        entries.insert(
            key,
            Entry {
                fetched_at,
                liveness,
            },
        );
    }

    /// How many entries are kept.
    pub fn len(&self) -> usize {
        self.entries.borrow().len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.entries.borrow().is_empty()
    }
}

/// Whether `entry` may still answer at `now`: fetched less than `delay_ms` before it.
fn fresh(entry: &Entry, now: i64, delay_ms: i64) -> bool {
    now.saturating_sub(entry.fetched_at) < delay_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(roles: &[&str]) -> Liveness {
        Liveness::User(Some(UserLiveness {
            disabled: false,
            roles: roles.iter().map(|r| r.to_string()).collect(),
        }))
    }

    fn key(n: usize) -> LivenessKey {
        LivenessKey::User(format!("usr_{n}"))
    }

    #[test]
    fn an_entry_answers_until_the_delay_has_passed() {
        let cache = LivenessCache::default();
        cache.put(key(1), user(&["a"]), 1_000, 10_000);
        assert_eq!(cache.get(&key(1), 1_000, 10_000), Some(user(&["a"])));
        assert_eq!(cache.get(&key(1), 10_999, 10_000), Some(user(&["a"])));
        assert_eq!(cache.get(&key(1), 11_000, 10_000), None);
        assert_eq!(cache.get(&key(2), 1_000, 10_000), None);
        // A request whose clock reads a little earlier than the read's is still answered.
        assert_eq!(cache.get(&key(1), 900, 10_000), Some(user(&["a"])));
    }

    #[test]
    fn a_delay_of_zero_keeps_nothing() {
        let cache = LivenessCache::default();
        cache.put(key(1), user(&["a"]), 1_000, 0);
        assert!(cache.is_empty());
        assert_eq!(cache.get(&key(1), 1_000, 0), None);
    }

    #[test]
    fn a_newer_read_is_not_replaced_by_an_older_one() {
        let cache = LivenessCache::default();
        cache.put(key(1), user(&["new"]), 2_000, 10_000);
        cache.put(key(1), user(&["old"]), 1_000, 10_000);
        assert_eq!(cache.get(&key(1), 2_000, 10_000), Some(user(&["new"])));
        cache.put(key(1), user(&["newer"]), 3_000, 10_000);
        assert_eq!(cache.get(&key(1), 3_000, 10_000), Some(user(&["newer"])));
    }

    #[test]
    fn the_cache_is_bounded_and_evicts_stale_then_oldest_entries() {
        let cache = LivenessCache::default();
        let delay = 10_000;
        // Half of them stale by the time the cache fills up.
        for n in 0..LivenessCache::CAPACITY {
            let at = if n % 2 == 0 { 0 } else { 20_000 + n as i64 };
            cache.put(key(n), user(&[]), at, delay);
        }
        assert_eq!(cache.len(), LivenessCache::CAPACITY);
        cache.put(key(usize::MAX), user(&[]), 25_000, delay);
        assert_eq!(
            cache.len(),
            LivenessCache::CAPACITY / 2 + 1,
            "stale ones went"
        );
        // Fill it with fresh entries only: once full, each new one evicts the oldest fetched,
        // here every entry of the first round (fetched at 20,001 and later) but none newer.
        let start = LivenessCache::CAPACITY * 10;
        for n in start..start + LivenessCache::CAPACITY - 1 {
            cache.put(key(n), user(&[]), 26_000, delay);
        }
        assert_eq!(cache.len(), LivenessCache::CAPACITY);
        for n in (1..LivenessCache::CAPACITY).step_by(2) {
            assert_eq!(cache.get(&key(n), 26_000, delay), None, "the oldest went");
        }
        assert!(cache.get(&key(start), 26_000, delay).is_some());
        assert!(cache.get(&key(usize::MAX), 26_000, delay).is_some());
    }
}
