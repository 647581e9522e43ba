//! Assertions already used: each assertion id (per IdP) signs in at most once. An id is kept
//! until its assertion could no longer be accepted anyway (its `NotOnOrAfter` plus the clock
//! allowance), and the cache is bounded: when full of live ids it refuses new sign-ins rather
//! than forgetting one that could still be replayed.

use std::collections::HashMap;

use parking_lot::Mutex;

/// At most this many live assertion ids.
const CAPACITY: usize = 200_000;

/// Why an assertion could not be recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayError {
    /// It was used before.
    Replayed,
    /// Too many live assertions are remembered.
    Full,
}

/// Used assertion ids and when each may be forgotten (Unix seconds).
#[derive(Default)]
pub struct ReplayCache {
    seen: Mutex<HashMap<String, i64>>,
}

impl ReplayCache {
    /// Records `id` of `issuer` as used until `until`; refuses one seen before.
    pub fn first_use(
        &self,
        issuer: &str,
        id: &str,
        until: i64,
        now: i64,
    ) -> Result<(), ReplayError> {
        let key = format!("{issuer}\u{0}{id}");
        let mut seen = self.seen.lock();
        if let Some(&kept) = seen.get(&key) {
            if kept >= now {
                return Err(ReplayError::Replayed);
            }
        }
        if seen.len() >= CAPACITY {
            seen.retain(|_, &mut t| t >= now);
            if seen.len() >= CAPACITY {
                return Err(ReplayError::Full);
            }
        }
        seen.insert(key, until);
        Ok(())
    }

    /// Forgets ids whose assertions have expired.
    pub fn sweep(&self, now: i64) {
        self.seen.lock().retain(|_, &mut t| t >= now);
    }

    pub fn len(&self) -> usize {
        self.seen.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_assertion_is_used_once_until_it_expires() {
        let c = ReplayCache::default();
        assert_eq!(c.first_use("idp", "a1", 100, 10), Ok(()));
        assert_eq!(
            c.first_use("idp", "a1", 100, 50),
            Err(ReplayError::Replayed)
        );
        // Another IdP's assertion with the same id is another assertion.
        assert_eq!(c.first_use("other", "a1", 100, 50), Ok(()));
        c.sweep(101);
        assert!(c.is_empty());
    }
}
