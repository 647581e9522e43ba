//! Tokens whose signature a provider's key has verified, remembered so that a client signing in
//! again with the same token (a connection pool, `pgbench -C`, a CLI that reconnects) skips the
//! RSA or ECDSA verification. Only the signature check is skipped: the key is looked up in the
//! provider's current key set first (a withdrawn or rotated key is a miss), and the claims —
//! expiry included — and the whole policy are checked at every sign-in.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use serde_json::{Map, Value};

use super::provider::SigningKey;

/// How many verified tokens are remembered; when full, the expired ones are dropped, and if
/// that frees nothing, all of them.
pub const CAPACITY: usize = 10_000;

/// A token's SHA-256: the key of the map (the token itself is never kept).
pub type TokenDigest = [u8; 32];

#[derive(Default)]
pub struct VerifiedTokens {
    entries: Mutex<HashMap<TokenDigest, Verified>>,
}

struct Verified {
    /// The key that verified it: a hit needs the very key the lookup found now (the `Weak`
    /// keeps the allocation, so its address is never another key's).
    key: Weak<SigningKey>,
    claims: Map<String, Value>,
    /// The token's `exp`, for dropping it once it cannot be used any more.
    expires_at: i64,
}

impl VerifiedTokens {
    pub fn digest(token: &str) -> TokenDigest {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        out
    }

    /// The claims of a token `key` verified before, if it did.
    pub fn get(&self, digest: &TokenDigest, key: &Arc<SigningKey>) -> Option<Map<String, Value>> {
        let entries = self.entries.lock();
        let hit = entries.get(digest)?;
        std::ptr::eq(hit.key.as_ptr(), Arc::as_ptr(key)).then(|| hit.claims.clone())
    }

    /// Remembers a token `key` has just verified (one without a numeric `exp` is not kept).
    pub fn put(
        &self,
        digest: TokenDigest,
        key: &Arc<SigningKey>,
        claims: &Map<String, Value>,
        now: i64,
    ) {
        let Some(expires_at) = claims.get("exp").and_then(Value::as_i64) else {
            return;
        };
        if expires_at <= now {
            return;
        }
        let mut entries = self.entries.lock();
        if entries.len() >= CAPACITY {
            entries.retain(|_, v| v.expires_at > now);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(
            digest,
            Verified {
                key: Arc::downgrade(key),
                claims: claims.clone(),
                expires_at,
            },
        );
    }

    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::oidc::provider::KeyFamily;
    use jsonwebtoken::DecodingKey;

    fn key(kid: &str) -> Arc<SigningKey> {
        Arc::new(SigningKey {
            kid: Some(kid.into()),
            alg: None,
            family: KeyFamily::Rsa,
            key: DecodingKey::from_secret(b"not used"),
        })
    }

    fn claims(exp: i64) -> Map<String, Value> {
        serde_json::json!({"sub": "s", "exp": exp})
            .as_object()
            .unwrap()
            .clone()
    }

    #[test]
    fn a_hit_needs_the_same_token_and_the_same_key() {
        let cache = VerifiedTokens::default();
        let k = key("k1");
        let d = VerifiedTokens::digest("a.b.c");
        assert!(cache.get(&d, &k).is_none());
        cache.put(d, &k, &claims(200), 100);
        assert_eq!(cache.get(&d, &k).unwrap()["exp"], 200);
        assert!(cache.get(&VerifiedTokens::digest("a.b.d"), &k).is_none());
        // The provider's key set was fetched again: the same kid is another key now.
        assert!(
            cache.get(&d, &key("k1")).is_none(),
            "a rotated key is a miss"
        );
        drop(k);
        assert!(
            cache.get(&d, &key("k1")).is_none(),
            "a dropped key is a miss"
        );
    }

    #[test]
    fn expired_and_expiry_less_tokens_are_not_kept_and_the_size_is_bounded() {
        let cache = VerifiedTokens::default();
        let k = key("k");
        cache.put(VerifiedTokens::digest("old"), &k, &claims(100), 100);
        let mut no_exp = claims(0);
        no_exp.remove("exp");
        cache.put(VerifiedTokens::digest("none"), &k, &no_exp, 100);
        assert!(cache.is_empty());
        for i in 0..CAPACITY {
            cache.put(
                VerifiedTokens::digest(&i.to_string()),
                &k,
                &claims(150),
                100,
            );
        }
        assert_eq!(cache.len(), CAPACITY);
        // Full at a moment when all have expired: they go, the new one stays.
        cache.put(VerifiedTokens::digest("new"), &k, &claims(300), 200);
        assert_eq!(cache.len(), 1);
    }
}
