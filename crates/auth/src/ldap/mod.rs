//! LDAP sign-in (issue 14): a user name and password checked by an LDAP integration's
//! directory — found with the service account, confirmed by binding as the user — then the
//! same claim policy, group resolution and USE check as an OpenID Connect sign-in, with the
//! directory's groups (by CN or DN) in place of a token's. A PostgreSQL password sign-in to a
//! database whose integration is LDAP goes through [`sign_in_cleartext`]: a catalog user is
//! checked against its own verifier, anyone else against the directory.

pub mod directory;
mod explain;

use std::sync::Arc;

use portcullis_catalog::sso::{LdapDirectory, SsoProperties};
use portcullis_catalog::{
    now, Attempt, AuthMethod, Client, Protocol, Reason, Session, SessionRegistry, SignInMethod,
    SsoIdentity,
};
use portcullis_store::SsoIntegrationRecord;
use serde_json::{Map, Value};

use crate::oidc::policy;
use crate::oidc::validate::Trace;
use crate::sso::{admit, choose_integration, chosen_assignment, IntegrationChoice};
use crate::{LoginTarget, PasswordAuthenticator, SignInError, SsoAuthenticator, SsoError};
use directory::{DirectoryError, DirectoryUser, Service};

/// The claim the directory's groups are put under for the policy.
const GROUPS_CLAIM: &str = "ldap_groups";

/// A sign-in the directory checks.
#[derive(Debug, Clone)]
pub struct DirectorySignIn<'a> {
    /// The database the session will be in.
    pub database: &'a str,
    /// The database whose integration checks (`user@source_db`); `database` when `None`.
    pub source_database: Option<&'a str>,
    /// The integration a domain login names (else the pool's or the database's).
    pub integration: Option<&'a str>,
    pub pool_id: Option<i64>,
    pub username: &'a str,
    pub password: &'a str,
    pub client: &'a Client,
    pub via: SignInMethod,
    pub protocol: Protocol,
}

impl<'a> From<&DirectorySignIn<'a>> for IntegrationChoice<'a> {
    fn from(req: &DirectorySignIn<'a>) -> Self {
        IntegrationChoice {
            source_database: req.source_database,
            database: req.database,
            integration: req.integration,
            pool_id: req.pool_id,
        }
    }
}

impl SsoAuthenticator {
    /// The enabled LDAP integration that checks password sign-ins `choice` describes, if the
    /// integration it picks is one.
    pub fn directory_integration(
        &self,
        choice: IntegrationChoice<'_>,
    ) -> Option<SsoIntegrationRecord> {
        let state = self.catalog().state();
        let record = choose_integration(&state, choice).ok()?;
        let props = state.sso_properties(record).ok()?;
        (props.ldap.is_some() && !props.disabled).then(|| record.clone())
    }

    /// Checks a user name and password with the directory and opens a session (or says why
    /// not; a refusal is recorded, with the directory's own reason in the event only).
    pub async fn sign_in_with_directory(
        &self,
        req: &DirectorySignIn<'_>,
    ) -> Result<Arc<Session>, SsoError> {
        let began = std::time::Instant::now();
        let mut trace = Trace::default();
        let result = self.directory_evaluate(req, &mut trace).await;
        let result = match result {
            Ok(session) => Ok(self.catalog().sessions.insert(session)),
            Err((e, detail)) => {
                let attempt = Attempt {
                    method: req.via,
                    identity: req.username.to_owned(),
                    database: req.database.to_owned(),
                    integration: req.integration.map(str::to_owned),
                    client: req.client.clone(),
                    token_id: None,
                };
                self.catalog().refused(&attempt, e.reason(), &detail);
                Err(e)
            }
        };
        portcullis_catalog::metrics::sign_in_took(req.via, result.is_ok(), began.elapsed());
        result
    }

    /// The steps of a directory sign-in: the error the client sees, and the detail recorded.
    async fn directory_evaluate(
        &self,
        req: &DirectorySignIn<'_>,
        trace: &mut Trace,
    ) -> Result<Session, (SsoError, String)> {
        let plain = |e: SsoError| {
            let detail = e.to_string();
            (e, detail)
        };
        let state = self.catalog().state();
        let target = state
            .database(req.database)
            .ok_or_else(|| plain(SsoError::NoDatabase(req.database.to_owned())))?
            .clone();
        let (integration, assigned_by) = chosen_assignment(&state, req.into()).map_err(plain)?;
        let props = state
            .sso_properties(integration)
            .map_err(|e| plain(SsoError::Internal(e.message)))?;
        if props.disabled {
            return Err(plain(SsoError::Disabled(integration.name.clone())));
        }
        let Some(directory) = props.ldap.as_ref() else {
            return Err(plain(SsoError::refused(
                Reason::NoIntegration,
                format!(
                    "SSO integration \"{}\" is not an LDAP directory: it takes tokens",
                    integration.name
                ),
            )));
        };
        let user = self
            .ask_directory(
                integration,
                &props,
                directory,
                req.username,
                Some(req.password),
            )
            .await
            .map_err(|e| match e {
                DirectoryError::Credentials(detail) => (
                    SsoError::refused(
                        Reason::BadPassword,
                        format!(
                            "password authentication failed for user \"{}\"",
                            req.username
                        ),
                    ),
                    detail,
                ),
                DirectoryError::Unavailable(detail) => (
                    SsoError::refused(
                        Reason::Directory,
                        format!(
                            "the directory of SSO integration \"{}\" could not check the \
                             password; try again later (password users are not affected)",
                            integration.name
                        ),
                    ),
                    detail,
                ),
            })?;
        let (policy_props, claims) = as_claims(&props, directory, &user);
        let decision = policy::decide(&policy_props, &claims).map_err(|reason| {
            let e = SsoError::from(trace.fail(Reason::Policy, reason));
            plain(e)
        })?;
        let (groups, roles) = admit(
            &state,
            &target,
            integration,
            &policy_props,
            &decision,
            req.protocol,
            trace,
        )
        .map_err(plain)?;
        let started_at = now();
        let ends_at = started_at.saturating_add(directory.session_seconds);
        Ok(Session {
            id: SessionRegistry::new_id(),
            user_id: 0,
            user: decision.identity,
            database: target.name.clone(),
            database_id: target.id,
            method: AuthMethod::Ldap,
            protocol: req.protocol,
            peer: req.client.peer.clone(),
            started_at,
            expires_at: (req.protocol == Protocol::Http).then_some(ends_at),
            sso: Some(SsoIdentity {
                integration: integration.name.clone(),
                integration_id: integration.id,
                groups,
                roles,
                token_expires_at: ends_at,
                assigned_by,
            }),
            credential_stamp: None,
            via: req.via,
            application: req.client.application.clone(),
            token_id: None,
        })
    }

    /// Asks the integration's directory about `username` (binding as the user when a
    /// password is given).
    pub(crate) async fn ask_directory(
        &self,
        integration: &SsoIntegrationRecord,
        props: &SsoProperties,
        directory: &LdapDirectory,
        username: &str,
        password: Option<&str>,
    ) -> Result<DirectoryUser, DirectoryError> {
        let bind_password = self
            .catalog()
            .bind_password(integration)
            .map_err(|e| DirectoryError::Unavailable(e.message))?;
        let service = Service {
            dn: directory.bind_dn.as_deref(),
            password: bind_password.as_deref(),
        };
        directory::check_user(
            directory,
            &service,
            &props.groups_claim_ids,
            &props.roles_claim_ids,
            username,
            password,
        )
        .await
    }
}

/// The directory's answer as claims, and the properties the policy reads them with: the user
/// is `user_id_attribute`, the groups (each by CN and DN, from the attributes named by
/// `groups_claim_ids` and the group search) one claim, the roles the attributes named by
/// `roles_claim_ids`.
pub(crate) fn as_claims(
    props: &SsoProperties,
    directory: &LdapDirectory,
    user: &DirectoryUser,
) -> (SsoProperties, Map<String, Value>) {
    let mut claims = Map::new();
    for (name, values) in &user.attributes {
        claims.insert(
            name.clone(),
            Value::Array(values.iter().cloned().map(Value::String).collect()),
        );
    }
    let id_claim = directory.user_id_attribute.to_ascii_lowercase();
    claims.insert(id_claim.clone(), Value::String(user.name.clone()));
    claims.insert(
        GROUPS_CLAIM.into(),
        Value::Array(user.groups.iter().cloned().map(Value::String).collect()),
    );
    let policy_props = SsoProperties {
        user_id_claims: vec![id_claim],
        groups_claim_ids: vec![GROUPS_CLAIM.into()],
        roles_claim_ids: props
            .roles_claim_ids
            .iter()
            .map(|r| r.to_ascii_lowercase())
            .collect(),
        ..props.clone()
    };
    (policy_props, claims)
}

/// Why a cleartext password sign-in failed: the catalog's password check, or the directory's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CleartextError {
    #[error(transparent)]
    Password(#[from] SignInError),
    #[error(transparent)]
    Directory(#[from] SsoError),
}

impl CleartextError {
    pub fn reason(&self) -> Reason {
        match self {
            Self::Password(e) => e.reason(),
            Self::Directory(e) => e.reason(),
        }
    }

    pub fn sqlstate(&self) -> &'static str {
        self.reason().sqlstate()
    }
}

/// A password sent in the clear to a database whose integration is an LDAP directory: a
/// catalog user (`target` has a user) is checked against its own verifier — the directory
/// never sees a catalog user's password — and anyone else against the directory, as the
/// part of the name before `@`. Wrong passwords count against the client's address either way.
pub async fn sign_in_cleartext(
    passwords: &PasswordAuthenticator,
    sso: &SsoAuthenticator,
    target: &LoginTarget,
    password: &str,
    pool_id: Option<i64>,
    protocol: Protocol,
) -> Result<Arc<Session>, CleartextError> {
    if target.user_id.is_some() {
        return Ok(passwords
            .check_cleartext(target, password, protocol, None)
            .await?);
    }
    // `lookup` counted this attempt for a catalog password; the directory's check counts it
    // its own way.
    passwords.refund_failure(&target.client);
    let source = (target.fqun.database != target.database).then_some(target.fqun.database.as_str());
    let req = DirectorySignIn {
        database: &target.database,
        source_database: source,
        integration: None,
        pool_id,
        username: &target.fqun.user,
        password,
        client: &target.client,
        via: SignInMethod::Directory,
        protocol,
    };
    // A wrong directory password reads exactly like a wrong catalog one: the answer must not
    // tell which names are catalog users (the event says which it was).
    throttled_directory_sign_in(passwords, sso, &req)
        .await
        .map_err(|e| match e.reason() {
            Reason::BadPassword => SignInError::BadPassword(target.fqun.to_string()).into(),
            _ => e,
        })
}

/// A directory sign-in under the same per-address throttle as catalog passwords: an address
/// that failed too often lately is refused before the directory is asked. The attempt is
/// counted before the directory's answer (which takes a round trip or several) and taken back
/// unless the password was wrong, so guesses sent in parallel cannot outrun the limit.
pub async fn throttled_directory_sign_in(
    passwords: &PasswordAuthenticator,
    sso: &SsoAuthenticator,
    req: &DirectorySignIn<'_>,
) -> Result<Arc<Session>, CleartextError> {
    if !passwords.allows(req.client) {
        return Err(SignInError::Throttled.into());
    }
    passwords.count_failure(req.client);
    let result = sso.sign_in_with_directory(req).await;
    if !matches!(&result, Err(e) if e.reason() == Reason::BadPassword) {
        passwords.refund_failure(req.client);
    }
    Ok(result?)
}
