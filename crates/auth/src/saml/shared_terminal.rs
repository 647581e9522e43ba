//! Terminal sign-ins across nodes that share a store: the psql client waits on the node it
//! connected to (A), while the person may open `/ui/terminal` and finish the SAML sign-in on
//! any node (B). The waiting terminal is kept in the store (`terminal:<code>`, sealed); the node
//! that finishes the sign-in takes that row (so a code signs in once, on whichever node) and,
//! when the terminal waits elsewhere, leaves the session for it (`terminal-session:<code>`,
//! sealed), which node A's watcher picks up within half a second.

use std::sync::Arc;
use std::time::Duration;

use portcullis_catalog::{Catalog, Reason, Session};

use super::terminal::{normalize, TerminalRequest, TerminalWait, Terminals};
use super::{refused, SamlFlow};
use crate::SsoError;

/// How often a waiting terminal's node looks for a session another node left for it.
const WATCH_EVERY: Duration = Duration::from_millis(500);
/// How long a session left for a terminal on another node is kept for it to pick up.
const HANDOVER_SECONDS: i64 = 120;

fn terminal_key(code: &str) -> String {
    format!("terminal:{code}")
}

fn handover_key(code: &str) -> String {
    format!("terminal-session:{code}")
}

fn unavailable(e: &portcullis_catalog::CatalogError) -> SsoError {
    SsoError::Internal(e.message.clone())
}

impl SamlFlow {
    /// Several nodes: publishes a terminal that started waiting here, and watches for a
    /// session another node signs it in with.
    pub(super) async fn share_terminal(&self, wait: &TerminalWait) -> Result<(), SsoError> {
        if !self.catalog.shares_pending() {
            return Ok(());
        }
        let Some(request) = self.terminals.get(&wait.user_code) else {
            return Ok(());
        };
        let ttl = i64::try_from(self.terminals.ttl().as_secs()).unwrap_or(i64::MAX);
        self.catalog
            .put_pending(&terminal_key(&wait.user_code), &request, ttl.max(1))
            .await
            .map_err(|e| unavailable(&e))?;
        tokio::spawn(watch(
            self.catalog.clone(),
            self.terminals.clone(),
            wait.user_code.clone(),
        ));
        Ok(())
    }

    /// The waiting terminal a code (as typed) names, here or (several nodes) on another node.
    pub async fn terminal(&self, code: &str) -> Option<TerminalRequest> {
        if let Some(t) = self.terminals.get(code) {
            return Some(t);
        }
        if !self.catalog.shares_pending() {
            return None;
        }
        match self
            .catalog
            .peek_pending::<TerminalRequest>(&terminal_key(&normalize(code)))
            .await
        {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e.message, "reading a waiting terminal from the store failed");
                None
            }
        }
    }

    /// Signs the terminal of `code` in with `session`, wherever it waits. The code is used up
    /// first (on every node), so two sign-ins for one code never both land.
    pub(super) async fn hand_to_terminal(
        &self,
        code: &str,
        session: Session,
    ) -> Result<(), SsoError> {
        let gone = || {
            refused(
                Reason::UserCode,
                "the terminal stopped waiting (or was signed in already); connect again",
            )
        };
        if self.catalog.shares_pending() {
            let taken: Option<TerminalRequest> = self
                .catalog
                .take_pending(&terminal_key(code))
                .await
                .map_err(|e| unavailable(&e))?;
            if taken.is_none() {
                return Err(gone());
            }
            if !self.terminals.holds(code) {
                // It waits on another node: leave the session there for it.
                return self
                    .catalog
                    .put_pending(&handover_key(code), &session, HANDOVER_SECONDS)
                    .await
                    .map(|_| ())
                    .map_err(|e| unavailable(&e));
            }
        }
        let session = self.catalog.sessions.insert(session);
        self.terminals.deliver(code, session).map_err(|session| {
            self.catalog
                .sessions
                .remove(&session.id, Reason::ClientDisconnected);
            gone()
        })
    }
}

/// Waits for a session another node leaves for the terminal of `code`, while the terminal
/// waits here; when it stops waiting unsigned, its row is taken so no node signs it in.
async fn watch(catalog: Arc<Catalog>, terminals: Arc<Terminals>, code: String) {
    loop {
        tokio::time::sleep(WATCH_EVERY).await;
        if !terminals.holds(&code) {
            let _: Result<Option<TerminalRequest>, _> =
                catalog.take_pending(&terminal_key(&code)).await;
            return;
        }
        let left: Option<Session> = match catalog.take_pending(&handover_key(&code)).await {
            Ok(left) => left,
            Err(e) => {
                tracing::warn!(error = %e.message, "looking for a terminal's session in the store failed");
                continue;
            }
        };
        if let Some(session) = left {
            // The sign-in is recorded here, where the session lives.
            let session = catalog.sessions.insert(session);
            if let Err(session) = terminals.deliver(&code, session) {
                catalog
                    .sessions
                    .remove(&session.id, Reason::ClientDisconnected);
            }
            return;
        }
    }
}
