//! psql (and any PostgreSQL client) signing in through a SAML integration, which has no device
//! grant of its own: the server runs one (RFC 8628's shape). The terminal is shown a URL of this
//! server and a short code; the person opens the page, checks what it signs in (database and
//! address), types or confirms the code, and goes through the SAML browser sign-in; the session
//! goes to the waiting terminal, not to the browser. A code is used once, expires with the wait,
//! and unknown codes are throttled per address by the caller.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use portcullis_catalog::Session;
use tokio::sync::oneshot;

/// RFC 8628 §6.1's alphabet: no vowels (no words), no look-alikes.
const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
/// At most this many terminals wait at once.
const CAPACITY: usize = 10_000;

/// A terminal waiting for its person to sign in at the server's page (kept in the store too
/// when several nodes share it, so that the page may be opened on any of them).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TerminalRequest {
    pub user_code: String,
    pub database: String,
    pub source_database: Option<String>,
    pub integration: String,
    pub pool_id: Option<i64>,
    /// The terminal's address, shown on the page so the person can tell it is theirs.
    pub peer: String,
    /// When it started waiting (a copy read from the store counts from then: the store's row
    /// expires with the wait).
    #[serde(skip, default = "Instant::now")]
    pub created: Instant,
}

struct Entry {
    request: TerminalRequest,
    /// Where the session goes; taken when a sign-in for it starts finishing.
    deliver: Option<oneshot::Sender<Arc<Session>>>,
}

/// Waiting terminals by user code.
pub struct Terminals {
    waiting: Mutex<HashMap<String, Entry>>,
    ttl: Duration,
}

/// What the terminal's connection waits on; dropping it (the client went away) forgets the
/// code.
pub struct TerminalWait {
    pub user_code: String,
    pub session: oneshot::Receiver<Arc<Session>>,
    terminals: Arc<Terminals>,
}

impl Drop for TerminalWait {
    fn drop(&mut self) {
        self.terminals.waiting.lock().remove(&self.user_code);
    }
}

/// `XXXX-XXXX` from the alphabet (about 34.6 bits).
fn user_code() -> String {
    let mut code = String::with_capacity(9);
    for i in 0..8 {
        if i == 4 {
            code.push('-');
        }
        let n = rand::random_range(0..ALPHABET.len());
        code.push(char::from(ALPHABET[n]));
    }
    code
}

/// A code as a person may type it: case, spaces and dashes do not matter.
pub fn normalize(code: &str) -> String {
    let letters: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if letters.len() == 8 {
        format!("{}-{}", &letters[..4], &letters[4..])
    } else {
        letters
    }
}

impl Terminals {
    pub fn new(ttl: Duration) -> Arc<Self> {
        Arc::new(Self {
            waiting: Mutex::new(HashMap::new()),
            ttl,
        })
    }

    /// Registers a waiting terminal; `None` when too many wait.
    pub fn start(self: &Arc<Self>, mut request: TerminalRequest) -> Option<TerminalWait> {
        let (tx, rx) = oneshot::channel();
        let mut waiting = self.waiting.lock();
        waiting.retain(|_, e| e.request.created.elapsed() < self.ttl);
        if waiting.len() >= CAPACITY {
            return None;
        }
        let mut code = user_code();
        while waiting.contains_key(&code) {
            code = user_code();
        }
        request.user_code = code.clone();
        waiting.insert(
            code.clone(),
            Entry {
                request,
                deliver: Some(tx),
            },
        );
        Some(TerminalWait {
            user_code: code,
            session: rx,
            terminals: self.clone(),
        })
    }

    /// The live request of a code (as typed).
    pub fn get(&self, code: &str) -> Option<TerminalRequest> {
        let waiting = self.waiting.lock();
        let e = waiting.get(&normalize(code))?;
        (e.request.created.elapsed() < self.ttl && e.deliver.is_some()).then(|| e.request.clone())
    }

    /// Whether the terminal of `code` (normalized) waits here, not yet signed in.
    pub fn holds(&self, code: &str) -> bool {
        self.get(code).is_some()
    }

    /// How long a terminal waits.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Hands a session to the terminal of `code`; gives it back if that terminal is gone
    /// (stopped waiting, or already signed in).
    pub fn deliver(&self, code: &str, session: Arc<Session>) -> Result<(), Arc<Session>> {
        let sender = self
            .waiting
            .lock()
            .get_mut(code)
            .and_then(|e| e.deliver.take());
        match sender {
            Some(tx) => tx.send(session),
            None => Err(session),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_typed_loosely_and_used_once() {
        let t = Terminals::new(Duration::from_secs(60));
        let wait = t
            .start(TerminalRequest {
                user_code: String::new(),
                database: "d".into(),
                source_database: None,
                integration: "i".into(),
                pool_id: None,
                peer: "127.0.0.1:5".into(),
                created: Instant::now(),
            })
            .unwrap();
        let code = wait.user_code.clone();
        assert_eq!(code.len(), 9);
        assert!(t.get(&code.to_lowercase().replace('-', " ")).is_some());
        assert!(t.get("BCDF-GHJK-X").is_none());
        drop(wait);
        assert!(
            t.get(&code).is_none(),
            "a terminal that went away forgets its code"
        );
    }
}
