//! Refresh grants several nodes share. A browser session's refresh token is kept in the store
//! (`grant:<session id>`, sealed with `secret.key`), not on the node that signed the browser
//! in, so any node holding a copy of the session can renew it, and a node that dies takes no
//! grant with it. Taking that row is the lock: one node at a time renews with it, then puts
//! it back with the provider's new refresh token and leaves the renewed session
//! (`renewed:<session id>`) for the other nodes' copies to take up without asking the
//! provider again. A renewal that fails leaves the grant marked failed, so every copy ends at
//! its next renewal instead of waiting.

use std::time::Duration;

use portcullis_catalog::{now, Reason, Session};

use super::{refresh_context, CodeFlow, Grant};
use crate::SsoError;

/// How long a node waits for another node that is renewing the same session.
const WAIT_FOR_OTHER: Duration = Duration::from_secs(5);
const POLL_EVERY: Duration = Duration::from_millis(200);
/// How long a grant is kept for a session with no end of its own.
const KEEP_SECONDS: i64 = 7 * 24 * 3600;

/// A session's refresh grant as the store keeps it (the row is sealed as a whole).
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct SharedRefresh {
    pub integration_id: i64,
    pub integration: String,
    pub pool_id: Option<i64>,
    pub refresh: Option<String>,
    /// Why a renewal with it failed: the session is over on every node.
    pub failed: Option<String>,
}

fn grant_key(session_id: &str) -> String {
    format!("grant:{session_id}")
}

fn renewed_key(session_id: &str) -> String {
    format!("renewed:{session_id}")
}

fn keep_for(session: &Session) -> i64 {
    session
        .expires_at
        .map_or(KEEP_SECONDS, |t| (t - now()).clamp(1, KEEP_SECONDS))
}

fn store_error(e: portcullis_catalog::CatalogError) -> SsoError {
    SsoError::Internal(e.message)
}

impl CodeFlow {
    /// Keeps a new session's refresh grant in the shared store.
    pub(super) async fn share_grant(
        &self,
        session: &Session,
        grant: &SharedRefresh,
    ) -> Result<(), SsoError> {
        self.catalog
            .replace_pending(&grant_key(&session.id), grant, keep_for(session))
            .await
            .map(|_| ())
            .map_err(store_error)
    }

    /// Renews a session whose grant is in the shared store: takes up another node's renewal
    /// if there is a fresh one, else takes the grant (waiting for a node that holds it),
    /// renews with it and puts it back.
    pub(super) async fn renew_shared(
        &self,
        session: &Session,
    ) -> Result<std::sync::Arc<Session>, SsoError> {
        let waited = tokio::time::Instant::now();
        loop {
            if let Some(renewed) = self.take_up_renewal(session).await? {
                return Ok(renewed);
            }
            let taken: Option<SharedRefresh> = self
                .catalog
                .take_pending(&grant_key(&session.id))
                .await
                .map_err(store_error)?;
            if let Some(grant) = taken {
                return self.renew_with(session, grant).await;
            }
            if waited.elapsed() >= WAIT_FOR_OTHER {
                return Err(SsoError::refused(
                    Reason::Renewal,
                    "the session's refresh grant is gone (signed out, expired, or held by a \
                     node that stopped); sign in again",
                ));
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Another node's renewal of this session, if it renewed past the margin: this node's
    /// copy becomes it.
    async fn take_up_renewal(
        &self,
        session: &Session,
    ) -> Result<Option<std::sync::Arc<Session>>, SsoError> {
        let renewed: Option<Session> = self
            .catalog
            .peek_pending(&renewed_key(&session.id))
            .await
            .map_err(store_error)?;
        let fresh = |s: &Session| {
            s.sso
                .as_ref()
                .is_some_and(|x| x.token_expires_at - now() > self.renew_margin)
        };
        let Some(renewed) = renewed.filter(|r| r.id == session.id && fresh(r)) else {
            return Ok(None);
        };
        Ok(self.catalog.sessions.replace(renewed))
    }

    async fn renew_with(
        &self,
        session: &Session,
        shared: SharedRefresh,
    ) -> Result<std::sync::Arc<Session>, SsoError> {
        if let Some(why) = &shared.failed {
            let refusal = SsoError::refused(Reason::Renewal, why.clone());
            self.give_back(session, &shared).await?;
            return Err(refusal);
        }
        let sealed_refresh = match &shared.refresh {
            Some(r) => Some(
                self.catalog
                    .seal(&refresh_context(&session.id), r)
                    .map_err(|e| SsoError::Internal(e.message))?,
            ),
            None => None,
        };
        let mut grant = Grant {
            integration_id: shared.integration_id,
            integration: shared.integration.clone(),
            pool_id: shared.pool_id,
            sealed_refresh,
        };
        let renewed = self.renew(session, &mut grant).await;
        let mut next = shared;
        match &renewed {
            Ok(renewed) => {
                next.refresh = match &grant.sealed_refresh {
                    Some(sealed) => Some(
                        self.catalog
                            .unseal(&refresh_context(&session.id), sealed)
                            .map_err(|e| SsoError::Internal(e.message))?,
                    ),
                    None => None,
                };
                self.catalog
                    .replace_pending(&renewed_key(&session.id), &**renewed, keep_for(renewed))
                    .await
                    .map_err(store_error)?;
            }
            Err(e) => next.failed = Some(format!("the session could not be renewed: {e}")),
        }
        self.give_back(session, &next).await?;
        renewed
    }

    /// Puts a session's grant back in the store for the next renewal, on whichever node.
    async fn give_back(&self, session: &Session, grant: &SharedRefresh) -> Result<(), SsoError> {
        self.catalog
            .put_pending(&grant_key(&session.id), grant, keep_for(session))
            .await
            .map(|_| ())
            .map_err(store_error)
    }

    /// Takes a session's grant out of the shared store (at sign-out, to revoke it).
    pub(super) async fn take_shared_grant(&self, session_id: &str) -> Option<Grant> {
        if !self.catalog.shares_pending() {
            return None;
        }
        let shared: SharedRefresh = self
            .catalog
            .take_pending(&grant_key(session_id))
            .await
            .ok()
            .flatten()?;
        let sealed_refresh = match &shared.refresh {
            Some(r) => Some(self.catalog.seal(&refresh_context(session_id), r).ok()?),
            None => None,
        };
        Some(Grant {
            integration_id: shared.integration_id,
            integration: shared.integration,
            pool_id: shared.pool_id,
            sealed_refresh,
        })
    }
}
