//! HTTP sessions several nodes share: an access token issued on one node works on all of them.
//!
//! The node that issues a token keeps the session, sealed with `secret.key`, in the store
//! under the SHA-256 of the token (never the token). A node that meets a token it does not
//! know takes a copy of the session from there and holds it from then on, checked against its
//! own catalog like any other session (a dropped user or a removed group ends it there too).
//! Ending a session for good — sign-out, `END SESSION` — first leaves a tombstone, so that no
//! node takes a copy again, then asks every live node to end the copy it holds (within a
//! second). With one node (SQLite) none of this runs.

use std::sync::Arc;

use crate::catalog::SIGNED_OUT;
use crate::sessions::Session;
use crate::{now, Catalog, CatalogError};

/// How long a shared session (and a tombstone) is kept at most: an HTTP session with no end
/// of its own is shared for this long, then works only on the node that issued it.
const KEEP_SECONDS: i64 = 7 * 24 * 3600;

fn session_key(token_hash: &str) -> String {
    format!("http:{token_hash}")
}

fn tombstone_key(session_id: &str) -> String {
    format!("ended:{session_id}")
}

fn keep_for(session: &Session) -> i64 {
    session
        .expires_at
        .map_or(KEEP_SECONDS, |t| (t - now()).clamp(1, KEEP_SECONDS))
}

/// Marks a session as ended for good, for every node.
pub(crate) async fn leave_tombstone(
    catalog: &Catalog,
    session_id: &str,
) -> Result<(), CatalogError> {
    catalog
        .replace_pending(&tombstone_key(session_id), &true, KEEP_SECONDS)
        .await
        .map(|_| ())
}

impl Catalog {
    /// Several nodes: keeps an HTTP session in the store under its token's hash (hex), for the
    /// other nodes. With one node it does nothing.
    pub async fn share_http_session(
        &self,
        token_hash: &str,
        session: &Session,
    ) -> Result<(), CatalogError> {
        if !self.shares_pending() {
            return Ok(());
        }
        self.put_pending(&session_key(token_hash), session, keep_for(session))
            .await
            .map(|_| ())
    }

    /// Several nodes: the session another node issued the token of `token_hash` for, now held
    /// here too. `None`: no node issued it, it expired, or it was ended for good.
    pub async fn adopt_http_session(
        &self,
        token_hash: &str,
    ) -> Result<Option<Arc<Session>>, CatalogError> {
        if !self.shares_pending() {
            return Ok(None);
        }
        let Some(session) = self
            .peek_pending::<Session>(&session_key(token_hash))
            .await?
        else {
            return Ok(None);
        };
        if let Some(held) = self.sessions.get(&session.id) {
            return Ok(Some(held));
        }
        let now = now();
        if session.expires_at.is_some_and(|t| t <= now) {
            return Ok(None);
        }
        // Read after any END SESSION request this node has taken so far: an end written
        // before the tombstone was read is found here, and one written after is found by the
        // next exchange of sessions.
        if self
            .peek_pending::<bool>(&tombstone_key(&session.id))
            .await?
            .is_some()
        {
            return Ok(None);
        }
        tracing::info!(session = %session.id, user = %session.user, "took a copy of an HTTP session another node signed in");
        Ok(Some(self.sessions.adopt(session, now)))
    }

    /// Several nodes: the person signed out of an HTTP session. Its token stops working on
    /// every node, and every node holding a copy ends it within a second.
    pub async fn sign_out_everywhere(
        &self,
        token_hash: &str,
        session_id: &str,
    ) -> Result<(), CatalogError> {
        if !self.shares_pending() {
            return Ok(());
        }
        let _: Option<Session> = self.take_pending(&session_key(token_hash)).await?;
        self.end_everywhere(session_id, SIGNED_OUT)
            .await
            .map(|_| ())
    }
}
