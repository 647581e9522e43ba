//! HTTP access tokens: random bearer strings mapped to sessions. Only a SHA-256 of each token
//! is kept, so the table (and `sys.sessions`, which shows session ids) never reveals one. With
//! several nodes, a token issued on one works on every node (the catalog's `shared_http`); a
//! token this node does not know costs a store read, so only well-formed tokens are looked
//! up, and an address whose unknown tokens pass a limit is refused without one.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use parking_lot::RwLock;
use portcullis_catalog::{Catalog, Session};
use sha2::{Digest, Sha256};

pub struct TokenTable {
    by_hash: RwLock<HashMap<[u8; 32], Held>>,
    catalog: Arc<Catalog>,
    /// Unknown tokens per address that were looked up in the shared store.
    unknown: portcullis_auth::Throttle,
}

/// Unknown tokens an address may have looked up in the shared store per minute.
const UNKNOWN_PER_MINUTE: u32 = 60;
/// The length of an issued token: 32 random bytes in unpadded base64url.
const TOKEN_LEN: usize = 43;

/// Whether `token` has the shape of one this server issues (anything else is not looked up).
fn well_formed(token: &str) -> bool {
    token.len() == TOKEN_LEN
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A token's session, and until when the token is remembered here (its session's end, Unix
/// seconds).
struct Held {
    session_id: String,
    until: i64,
}

impl Held {
    fn of(session: &Session) -> Self {
        Self {
            session_id: session.id.clone(),
            // A token whose session has no end of its own is remembered for a day.
            until: session
                .expires_at
                .unwrap_or_else(|| portcullis_catalog::now() + 24 * 3600),
        }
    }
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn hex(hash: &[u8; 32]) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

impl TokenTable {
    pub fn new(catalog: Arc<Catalog>) -> Self {
        Self {
            by_hash: RwLock::default(),
            catalog,
            unknown: portcullis_auth::Throttle::new(
                UNKNOWN_PER_MINUTE,
                std::time::Duration::from_secs(60),
            ),
        }
    }

    /// Issues a token for a session. With several nodes the session is shared first; when the
    /// store cannot take it, the token still works here (and the failure is logged).
    pub async fn issue(&self, session: &Session) -> String {
        let bytes: [u8; 32] = rand::random();
        let token = URL_SAFE_NO_PAD.encode(bytes);
        let hashed = hash(&token);
        self.by_hash.write().insert(hashed, Held::of(session));
        if let Err(e) = self
            .catalog
            .share_http_session(&hex(&hashed), session)
            .await
        {
            tracing::warn!(session = %session.id, error = %e.message, "could not share an HTTP session with the other nodes; its token works on this node only");
        }
        token
    }

    /// The session a token stands for: one this node issued or holds, or (several nodes) one
    /// another node issued, which this node holds from then on. `peer` sent the token.
    pub async fn session_id(&self, token: &str, peer: IpAddr) -> Option<String> {
        let hashed = hash(token);
        if let Some(held) = self.by_hash.read().get(&hashed) {
            return Some(held.session_id.clone());
        }
        if !self.catalog.shares_pending() || !well_formed(token) || !self.unknown.allows(peer) {
            return None;
        }
        match self.catalog.adopt_http_session(&hex(&hashed)).await {
            Ok(Some(session)) => {
                self.by_hash.write().insert(hashed, Held::of(&session));
                Some(session.id.clone())
            }
            Ok(None) => {
                self.unknown.miss(peer);
                None
            }
            Err(e) => {
                tracing::warn!(error = %e.message, "could not look up an HTTP token in the shared store");
                None
            }
        }
    }

    /// Forgets one token (sign-out): here and, with several nodes, everywhere.
    pub async fn revoke(&self, token: &str, session_id: Option<&str>) {
        let hashed = hash(token);
        self.by_hash.write().remove(&hashed);
        let Some(id) = session_id else {
            return;
        };
        if let Err(e) = self.catalog.sign_out_everywhere(&hex(&hashed), id).await {
            tracing::warn!(session = %id, error = %e.message, "could not end an HTTP session on the other nodes");
        }
    }

    /// Forgets tokens whose sessions are gone. With several nodes a token is remembered
    /// until its session's end even so: the session ended here (idle, say) must not be taken
    /// again from the store by this node.
    pub fn sweep(&self, now: i64, live: impl Fn(&str) -> bool) {
        let shared = self.catalog.shares_pending();
        self.by_hash
            .write()
            .retain(|_, held| live(&held.session_id) || (shared && now < held.until));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tokens_of_the_issued_shape_are_looked_up() {
        let issued = URL_SAFE_NO_PAD.encode([7u8; 32]);
        assert!(well_formed(&issued));
        assert!(!well_formed(&issued[1..]));
        assert!(!well_formed(&format!("{}=", &issued[1..])));
        assert!(!well_formed("eyJhbGciOiJSUzI1NiJ9.e30.sig"));
        assert!(!well_formed(&"a".repeat(4096)));
    }
}
