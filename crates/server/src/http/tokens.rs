//! HTTP access tokens: random bearer strings mapped to sessions. Only a SHA-256 of each token
//! is kept, so the table (and `sys.sessions`, which shows session ids) never reveals one.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use parking_lot::RwLock;
use sha2::{Digest, Sha256};

#[derive(Default)]
pub struct TokenTable {
    by_hash: RwLock<HashMap<[u8; 32], String>>,
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl TokenTable {
    /// Issues a token for a session.
    pub fn issue(&self, session_id: &str) -> String {
        let bytes: [u8; 32] = rand::random();
        let token = URL_SAFE_NO_PAD.encode(bytes);
        self.by_hash
            .write()
            .insert(hash(&token), session_id.to_owned());
        token
    }

    /// The session a token stands for.
    pub fn session_id(&self, token: &str) -> Option<String> {
        self.by_hash.read().get(&hash(token)).cloned()
    }

    /// Forgets one token (sign-out).
    pub fn revoke(&self, token: &str) {
        self.by_hash.write().remove(&hash(token));
    }

    /// Forgets tokens whose sessions are gone.
    pub fn retain(&self, live: impl Fn(&str) -> bool) {
        self.by_hash.write().retain(|_, id| live(id));
    }
}
