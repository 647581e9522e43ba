//! Whether a live session still has the authority it signed in with. Checked for every session
//! after every catalog change (the registry then ends those that lost it) and again before each
//! statement, so DROP USER, DISABLE, a password reset, DROP GROUP, REVOKE USE or ROLE, and a
//! dropped or disabled SSO integration end the sessions they cover at once.

use portcullis_store::{ObjectRef, PrincipalRef};

use crate::model::{user_state, CatalogState};
use crate::privileges::{holds, session_principals, Action, Privilege};
use crate::sessions::{EndReason, Session};

/// A short fingerprint of a user's current password verifier (salted, so every password set
/// gives a new one): a session remembers it, and a password changed since ends the session.
pub fn credential_stamp(user: &portcullis_store::UserRecord) -> i64 {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, user.verifier.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_ref()[..8]);
    i64::from_be_bytes(first)
}

/// The checks, over one version of the catalog.
pub struct Authority<'a> {
    state: &'a CatalogState,
}

impl<'a> Authority<'a> {
    pub fn new(state: &'a CatalogState) -> Self {
        Self { state }
    }

    /// Whether the integration's properties say `disabled` (checked before every statement of
    /// an SSO session: the properties are parsed once per version of their text).
    fn integration_disabled(&self, id: i64) -> bool {
        self.state
            .integration_by_id(id)
            .is_some_and(|i| self.state.sso_properties(i).is_ok_and(|p| p.disabled))
    }

    /// `Some(reason)` when the session must end.
    pub fn lapsed(&self, session: &Session) -> Option<EndReason> {
        let state = self.state;
        if state.database_by_id(session.database_id).is_none() {
            return Some(EndReason::DatabaseDropped);
        }
        match &session.sso {
            None => {
                let Some(user) = state.user_by_id(session.user_id) else {
                    return Some(EndReason::UserDropped);
                };
                if user.state == user_state::DISABLED {
                    return Some(EndReason::UserDisabled);
                }
                if session
                    .credential_stamp
                    .is_some_and(|stamp| stamp != credential_stamp(user))
                {
                    return Some(EndReason::PasswordChanged);
                }
            }
            Some(sso) => {
                if state.integration_by_id(sso.integration_id).is_none() {
                    return Some(EndReason::IntegrationDropped);
                }
                if self.integration_disabled(sso.integration_id) {
                    return Some(EndReason::IntegrationDisabled);
                }
                let gone = sso.groups.iter().any(|g| state.group_by_id(*g).is_none())
                    || sso.roles.iter().any(|r| state.role_by_id(*r).is_none());
                if gone {
                    return Some(EndReason::GroupOrRoleDropped);
                }
                // What the sign-in conferred must still be the integration's to confer (it
                // is still assigned, and its writer still holds what it hands on).
                let Some(integration) = state.integration_by_id(sso.integration_id) else {
                    return Some(EndReason::IntegrationDropped);
                };
                // Assigned still where the sign-in found it (REMOVE, or another integration set
                // there, ends the session even if this one is assigned elsewhere too).
                if state
                    .assigned_integration(sso.assigned_by)
                    .is_none_or(|i| i.id != integration.id)
                {
                    return Some(EndReason::ConferralWithdrawn);
                }
                let targets = sso
                    .groups
                    .iter()
                    .map(|g| PrincipalRef::Group(*g))
                    .chain(sso.roles.iter().map(|r| PrincipalRef::Role(*r)));
                for target in targets {
                    if !crate::exec::sso::still_conferred(state, integration, target) {
                        return Some(EndReason::ConferralWithdrawn);
                    }
                }
            }
        }
        let principals = session_principals(state, session);
        if !holds(
            state,
            &principals,
            Privilege::new(Action::Use),
            ObjectRef::Database(session.database_id),
        ) {
            return Some(EndReason::UseRevoked);
        }
        None
    }
}
