//! SSO sign-in with a provider token (the token flow): choose the integration, validate the
//! token, apply the claim policy, resolve groups and roles in the catalog, check USE on the
//! target database, open the session, and write one audit event. `explain` runs the same steps
//! without signing in (EXPLAIN AUTHENTICATION).

use std::sync::Arc;

use portcullis_catalog::events::token_id;
use portcullis_catalog::model::CatalogState;
use portcullis_catalog::privileges::{holds, session_principals, Action, Privilege};
use portcullis_catalog::sso::SsoProperties;
use portcullis_catalog::{
    explain_columns, now, Attempt, AuthMethod, Catalog, CatalogError, Client, Protocol,
    QueryResult, Reason, Session, SessionRegistry, SignInMethod, SsoIdentity, Value,
};
use portcullis_store::{AssignmentTarget, ObjectRef, SsoIntegrationRecord};

use crate::oidc::policy;
use crate::oidc::provider::ProviderCache;
use crate::oidc::validate::{validate, Refusal, TokenKind, Trace};

/// Why an SSO sign-in was refused. Every variant is FATAL on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SsoError {
    /// A check refused: the code says which, the detail says why (safe to show the client).
    #[error("SSO sign-in refused: {detail}")]
    Refused { reason: Reason, detail: String },
    #[error("database \"{0}\" does not exist")]
    NoDatabase(String),
    #[error("source database \"{0}\" (named after @ in the user name) does not exist")]
    NoSourceDatabase(String),
    #[error("database \"{0}\" has no SSO integration; an administrator can add one with ALTER DATABASE … SET SSO INTEGRATION")]
    NoIntegration(String),
    #[error("SSO integration \"{0}\" does not exist for this database or is not assigned to it (ALTER DATABASE … SET SSO INTEGRATION)")]
    UnknownIntegration(String),
    #[error(
        "SSO integration \"{0}\" is disabled; sign in with a password or ask an administrator"
    )]
    Disabled(String),
    #[error("sign-in failed: {0}")]
    Internal(String),
}

impl SsoError {
    /// The reason code; it decides the SQLSTATE and the HTTP status.
    pub fn reason(&self) -> Reason {
        match self {
            Self::Refused { reason, .. } => *reason,
            Self::NoDatabase(_) => Reason::UnknownDatabase,
            Self::NoSourceDatabase(_) => Reason::UnknownSourceDatabase,
            Self::NoIntegration(_) => Reason::NoIntegration,
            Self::UnknownIntegration(_) => Reason::UnknownIntegration,
            Self::Disabled(_) => Reason::IntegrationDisabled,
            Self::Internal(_) => Reason::Internal,
        }
    }

    pub fn sqlstate(&self) -> &'static str {
        self.reason().sqlstate()
    }

    /// A refusal with its code and the sentence the client sees.
    pub fn refused(reason: Reason, detail: impl Into<String>) -> Self {
        Self::Refused {
            reason,
            detail: detail.into(),
        }
    }
}

impl From<Refusal> for SsoError {
    fn from(r: Refusal) -> Self {
        Self::Refused {
            reason: r.reason,
            detail: r.detail,
        }
    }
}

/// A token sign-in request, from any front end.
#[derive(Debug, Clone)]
pub struct TokenSignIn<'a> {
    pub kind: TokenKind,
    pub token: &'a str,
    /// The database named after `@` in the user name (cross-database sign-in).
    pub source_database: Option<&'a str>,
    /// The database the session will be in.
    pub database: &'a str,
    /// `identityprovider`: a named integration of the source database.
    pub integration: Option<&'a str>,
    /// The connectivity pool the connection arrived on.
    pub pool_id: Option<i64>,
    pub client: &'a Client,
    /// How the token was obtained (token, device grant, code flow, OAUTHBEARER, domain login).
    pub via: SignInMethod,
    pub protocol: Protocol,
    /// The nonce the authorization request sent (code flow): the ID token must carry it.
    pub nonce: Option<&'a str>,
}

/// What a token established, before the session exists.
struct Established {
    identity: String,
    integration: String,
    integration_id: i64,
    groups: Vec<i64>,
    roles: Vec<i64>,
    expires_at: i64,
    validated_as: TokenKind,
    /// The token's `jti` or hash prefix.
    token_id: String,
    /// The assignment the integration was found through.
    assigned_by: AssignmentTarget,
}

/// Token sign-ins and their explanation.
pub struct SsoAuthenticator {
    catalog: Arc<Catalog>,
    providers: Arc<ProviderCache>,
    /// Claims access tokens lacked, from the providers' userinfo endpoints, per token.
    userinfo: crate::oidc::userinfo::UserinfoCache,
}

impl SsoAuthenticator {
    pub fn new(catalog: Arc<Catalog>, providers: Arc<ProviderCache>) -> Self {
        Self {
            catalog,
            providers,
            userinfo: Default::default(),
        }
    }

    pub fn providers(&self) -> &ProviderCache {
        &self.providers
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// Signs in with a token and opens a session (or explains why not).
    pub async fn sign_in(&self, req: &TokenSignIn<'_>) -> Result<Arc<Session>, SsoError> {
        let began = std::time::Instant::now();
        let mut trace = Trace::default();
        let result = match self.evaluate(req, &mut trace).await {
            Ok(e) => Ok(self.open(req, e)),
            Err(e) => {
                self.record_refusal(req, &trace, &e);
                Err(e)
            }
        };
        portcullis_catalog::metrics::sign_in_took(req.via, result.is_ok(), began.elapsed());
        result
    }

    /// Records a refused token sign-in (never the token: its hash prefix).
    fn record_refusal(&self, req: &TokenSignIn<'_>, trace: &Trace, e: &SsoError) {
        let integration = trace
            .checks
            .iter()
            .find(|c| c.reason == Reason::IntegrationDisabled)
            .and_then(|c| c.detail.split(" of database ").next())
            .map(str::to_owned);
        let attempt = Attempt {
            method: req.via,
            identity: String::new(),
            database: req.database.to_owned(),
            integration,
            client: req.client.clone(),
            token_id: (!req.token.is_empty()).then(|| token_id(req.token, None)),
        };
        self.catalog.refused(&attempt, e.reason(), &e.to_string());
    }

    /// Re-checks a fresh token of a live session (a browser session renewed with its refresh
    /// token) and updates the session in place: same id, new groups, roles and expiry. A token
    /// that no longer passes (blocked meanwhile, no USE any more) ends the session.
    pub async fn renew(
        &self,
        session: &Session,
        req: &TokenSignIn<'_>,
    ) -> Result<Arc<Session>, SsoError> {
        let mut trace = Trace::default();
        let result = self.evaluate(req, &mut trace).await;
        let renewed = match result {
            Ok(e) if e.identity != session.user => Err(SsoError::refused(
                Reason::Renewal,
                "the renewed token names another user",
            )),
            Ok(e) => self
                .catalog
                .sessions
                .replace(self.session_of(req, e, &session.id, session.started_at))
                .ok_or_else(|| {
                    SsoError::refused(
                        Reason::Renewal,
                        "the session ended while it was being renewed",
                    )
                }),
            Err(e) => Err(e),
        };
        if let Err(e) = &renewed {
            // Blocked meanwhile, no USE any more, another user: the session ends, its
            // connection is told, and the event says why renewal failed.
            self.record_refusal(req, &trace, e);
            self.catalog
                .sessions
                .end(&session.id, portcullis_catalog::EndReason::RenewalFailed);
        }
        renewed
    }

    fn open(&self, req: &TokenSignIn<'_>, e: Established) -> Arc<Session> {
        let session = self.session_of(req, e, &SessionRegistry::new_id(), now());
        self.catalog.sessions.insert(session)
    }

    /// The session a sign-in establishes (registered by the caller: inserted, or for a
    /// renewal replacing the live one of that id, so an ended session never comes back).
    fn session_of(
        &self,
        req: &TokenSignIn<'_>,
        e: Established,
        id: &str,
        started_at: i64,
    ) -> Session {
        let state = self.catalog.state();
        let database_id = state.database(req.database).map_or(0, |d| d.id);
        Session {
            id: id.to_owned(),
            user_id: 0,
            user: e.identity,
            database: req.database.to_owned(),
            database_id,
            method: match e.validated_as {
                TokenKind::IdToken => AuthMethod::SsoIdToken,
                TokenKind::AccessToken => AuthMethod::SsoAccessToken,
            },
            protocol: req.protocol,
            peer: req.client.peer.clone(),
            started_at,
            expires_at: (req.protocol == Protocol::Http).then_some(e.expires_at),
            sso: Some(SsoIdentity {
                integration: e.integration,
                integration_id: e.integration_id,
                groups: e.groups,
                roles: e.roles,
                token_expires_at: e.expires_at,
                assigned_by: e.assigned_by,
            }),
            credential_stamp: None,
            via: req.via,
            application: req.client.application.clone(),
            token_id: Some(e.token_id),
        }
    }

    /// Every step of a sign-in, recorded in `trace`.
    async fn evaluate(
        &self,
        req: &TokenSignIn<'_>,
        trace: &mut Trace,
    ) -> Result<Established, SsoError> {
        let state = self.catalog.state();
        let target = state
            .database(req.database)
            .ok_or_else(|| SsoError::NoDatabase(req.database.to_owned()))?
            .clone();
        let (integration, assigned_by) = chosen_assignment(&state, req.into())?;
        trace.pass(
            Reason::IntegrationDisabled,
            format!(
                "{} of database {}",
                integration.name,
                state.database_name(integration.database_id)
            ),
        );
        let props = state
            .sso_properties(integration)
            .map_err(|e| SsoError::Internal(e.message))?;
        if props.disabled {
            trace.fail(Reason::IntegrationDisabled, "the integration is disabled");
            return Err(SsoError::Disabled(integration.name.clone()));
        }
        oidc_only(integration, &props)?;
        let mut token =
            validate(&self.providers, &props, req.token, req.kind, now(), trace).await?;
        if let Some(expected) = req.nonce {
            check_nonce(&token.claims, expected, trace)?;
        }
        self.complete_claims(&props, req.token, &mut token, trace)
            .await?;
        let decision = match policy::decide(&props, &token.claims) {
            Ok(d) => d,
            Err(reason) => return Err(trace.fail(Reason::Policy, reason).into()),
        };
        let (group_ids, role_ids) = admit(
            &state,
            &target,
            integration,
            &props,
            &decision,
            req.protocol,
            trace,
        )?;
        Ok(Established {
            identity: decision.identity,
            integration: integration.name.clone(),
            integration_id: integration.id,
            groups: group_ids,
            roles: role_ids,
            expires_at: token.expires_at,
            validated_as: token.validated_as,
            token_id: token_id(
                req.token,
                token.claims.get("jti").and_then(serde_json::Value::as_str),
            ),
            assigned_by,
        })
    }

    /// Fills in the claims the integration reads that an access token lacks, from the
    /// provider's userinfo endpoint (see [`crate::oidc::userinfo`]), and records where each
    /// came from. A blocked list cannot be checked without the claim it reads: a groups (or
    /// roles) claim missing from both refuses the sign-in when `blocked_groups` (or
    /// `blocked_roles`) is set.
    async fn complete_claims(
        &self,
        props: &SsoProperties,
        raw: &str,
        token: &mut crate::oidc::validate::ValidToken,
        trace: &mut Trace,
    ) -> Result<(), SsoError> {
        use crate::oidc::userinfo::needed;
        let needed = needed(props);
        let lacking = needed.iter().any(|c| !token.claims.contains_key(c));
        // Only an access token may be shown to the userinfo endpoint.
        let endpoint = if lacking && token.validated_as == TokenKind::AccessToken {
            self.providers
                .metadata(&props.issuer)
                .await
                .ok()
                .and_then(|p| p.metadata.userinfo_endpoint.clone())
        } else {
            None
        };
        let sources = self
            .userinfo
            .fill(
                self.providers.fetcher(),
                endpoint.as_deref(),
                raw,
                token.expires_at,
                now(),
                &needed,
                &mut token.claims,
            )
            .await
            .map_err(|e| SsoError::from(trace.fail(Reason::TokenClaims, e.to_string())))?;
        for (claims, blocked, what) in [
            (&props.groups_claim_ids, &props.blocked_groups, "groups"),
            (&props.roles_claim_ids, &props.blocked_roles, "roles"),
        ] {
            let unknown = !claims.is_empty() && claims.iter().all(|c| sources.missing.contains(c));
            if unknown && !blocked.is_empty() {
                return Err(trace
                    .fail(
                        Reason::TokenClaims,
                        format!(
                            "the token has no {what} claim ({}) and the provider's userinfo \
                             endpoint gave none: blocked_{what} cannot be checked (an empty \
                             list would say \"none\")",
                            claims.join(", ")
                        ),
                    )
                    .into());
            }
        }
        trace.pass(
            Reason::TokenClaims,
            format!("claims {}", sources.describe()),
        );
        Ok(())
    }

    /// EXPLAIN AUTHENTICATION: the checks of a sign-in with `token`, without signing in.
    /// Administrators of the database may explain any token; anyone may explain a token that
    /// identifies themselves (the token they signed in with).
    pub async fn explain(
        &self,
        session: &Session,
        token: &str,
        database: Option<&str>,
    ) -> Result<QueryResult, CatalogError> {
        let database = database.unwrap_or(&session.database).to_owned();
        let administers = |database: &str| {
            let state = self.catalog.state();
            state.database(database).is_some_and(|d| {
                portcullis_catalog::privileges::administers(
                    &state,
                    &session_principals(&state, session),
                    d.id,
                )
            })
        };
        // Another database's tokens are explained only to its administrators — refused before
        // anything is fetched from its provider.
        if database != session.database && !administers(&database) {
            return Err(CatalogError::denied(format!(
                "EXPLAIN AUTHENTICATION for database \"{database}\" needs administrator rights \
                 on it"
            )));
        }
        let kind = TokenKind::of_token(token);
        let req = TokenSignIn {
            kind,
            token,
            source_database: None,
            database: &database,
            integration: None,
            pool_id: None,
            client: &Client::new(session.peer.clone(), None),
            via: SignInMethod::Token,
            protocol: session.protocol,
            nonce: None,
        };
        let mut trace = Trace::default();
        let result = self.evaluate(&req, &mut trace).await;
        let is_admin = administers(&database);
        let own = match &result {
            Ok(e) => e.identity == session.user,
            Err(_) => false,
        };
        if !is_admin && !own {
            return Err(CatalogError::denied(format!(
                "EXPLAIN AUTHENTICATION of another user's token needs administrator rights on \
                 database \"{database}\""
            )));
        }
        let outcome = match &result {
            Ok(_) => (true, "the token would sign in".to_owned(), None),
            Err(e @ SsoError::Refused { .. }) => (
                false,
                "the token would be refused".to_owned(),
                Some(e.reason()),
            ),
            Err(e) => (false, e.to_string(), Some(e.reason())),
        };
        Ok(explained(trace, outcome))
    }
}

/// EXPLAIN AUTHENTICATION's answer: one row per check, then a last row that says what the
/// sign-in would do. A failed row carries the reason code the sign-in would be refused with.
pub(crate) fn explained(trace: Trace, outcome: (bool, String, Option<Reason>)) -> QueryResult {
    let row = |step: usize, check: &str, passed: bool, detail: String, code: Option<Reason>| {
        vec![
            Value::Int(step as i64 + 1),
            Value::Text(check.to_owned()),
            Value::Text(if passed { "pass" } else { "fail" }.to_owned()),
            Value::Text(detail),
            code.map_or(Value::Null, |r| Value::Text(r.code().to_owned())),
        ]
    };
    let mut rows: Vec<Vec<Value>> = trace
        .checks
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let code = (!c.passed).then_some(c.reason);
            row(i, c.reason.check(), c.passed, c.detail, code)
        })
        .collect();
    rows.push(row(rows.len(), "result", outcome.0, outcome.1, outcome.2));
    QueryResult {
        columns: explain_columns(),
        rows,
    }
}

#[async_trait::async_trait]
impl portcullis_catalog::AuthenticationExplainer for SsoAuthenticator {
    async fn explain(
        &self,
        session: &Session,
        token: &str,
        database: Option<&str>,
    ) -> Result<QueryResult, CatalogError> {
        SsoAuthenticator::explain(self, session, token, database).await
    }

    async fn explain_user(
        &self,
        session: &Session,
        user: &str,
        database: Option<&str>,
    ) -> Result<QueryResult, CatalogError> {
        SsoAuthenticator::explain_directory_user(self, session, user, database).await
    }
}

impl SsoAuthenticator {
    /// What SASL OAUTHBEARER's discovery answer names for a database: the issuer and the
    /// scopes of the integration that would check its tokens (none: OAUTHBEARER is not
    /// offered there).
    pub fn bearer_challenge(&self, choice: IntegrationChoice<'_>) -> Option<(String, String)> {
        let state = self.catalog.state();
        let record = choose_integration(&state, choice).ok()?;
        let props = SsoProperties::from_json(&record.properties).ok()?;
        oidc_only(record, &props).ok()?;
        let mut scopes = vec!["openid".to_owned()];
        scopes.extend(props.additional_scopes.iter().cloned());
        Some((props.issuer, scopes.join(" ")))
    }
}

/// An enabled integration chosen for an interactive flow, with its provider's metadata.
pub struct FlowIntegration {
    pub record: SsoIntegrationRecord,
    pub props: SsoProperties,
    pub provider: Arc<crate::oidc::provider::ProviderKeys>,
}

impl SsoAuthenticator {
    /// Chooses the integration of an interactive flow (code flow or device grant), refuses a
    /// disabled one, and fetches (or reuses) its provider's metadata.
    pub async fn flow_integration(
        &self,
        choice: IntegrationChoice<'_>,
    ) -> Result<FlowIntegration, SsoError> {
        let record = choose_integration(&self.catalog.state(), choice)?.clone();
        let props = SsoProperties::from_json(&record.properties)
            .map_err(|e| SsoError::Internal(e.message))?;
        if props.disabled {
            return Err(SsoError::Disabled(record.name.clone()));
        }
        oidc_only(&record, &props)?;
        let provider = self.providers.metadata(&props.issuer).await.map_err(|e| {
            SsoError::refused(
                Reason::ProviderDiscovery,
                format!("issuer {}: {e}", props.issuer),
            )
        })?;
        Ok(FlowIntegration {
            record,
            props,
            provider,
        })
    }
}

/// Tokens and provider flows need an OpenID Connect integration; an LDAP one checks user names
/// and passwords only, a SAML one assertions only.
pub(crate) fn oidc_only(
    record: &SsoIntegrationRecord,
    props: &SsoProperties,
) -> Result<(), SsoError> {
    if props.ldap.is_some() {
        return Err(SsoError::refused(
            Reason::NoIntegration,
            format!(
                "SSO integration \"{}\" is an LDAP directory: sign in with the directory's user \
                 name and password, not a token",
                record.name
            ),
        ));
    }
    if props.saml.is_some() {
        return Err(SsoError::refused(
            Reason::NoIntegration,
            format!(
                "SSO integration \"{}\" is a SAML identity provider: sign in through the \
                 browser (POST /v1/sso_authentication), not with a token",
                record.name
            ),
        ));
    }
    Ok(())
}

/// The integration a pending flow started with, and its properties, as they are now (it may
/// have been changed or dropped meanwhile).
pub fn integration_now(
    catalog: &Catalog,
    id: i64,
    name: &str,
) -> Result<(SsoIntegrationRecord, SsoProperties), SsoError> {
    let record = catalog
        .state()
        .integration_by_id(id)
        .cloned()
        .ok_or_else(|| SsoError::UnknownIntegration(name.to_owned()))?;
    let props =
        SsoProperties::from_json(&record.properties).map_err(|e| SsoError::Internal(e.message))?;
    Ok((record, props))
}

/// What picks the integration of a sign-in.
#[derive(Debug, Clone, Copy)]
pub struct IntegrationChoice<'a> {
    pub source_database: Option<&'a str>,
    pub database: &'a str,
    pub integration: Option<&'a str>,
    pub pool_id: Option<i64>,
}

impl<'a> From<&TokenSignIn<'a>> for IntegrationChoice<'a> {
    fn from(req: &TokenSignIn<'a>) -> Self {
        Self {
            source_database: req.source_database,
            database: req.database,
            integration: req.integration,
            pool_id: req.pool_id,
        }
    }
}

/// From the policy's decision to what the session holds: resolves the groups and roles the
/// integration may confer (the default group if none), and checks USE on the target database
/// through them. Every SSO protocol ends its sign-in here.
pub(crate) fn admit(
    state: &CatalogState,
    target: &portcullis_store::DatabaseRecord,
    integration: &SsoIntegrationRecord,
    props: &SsoProperties,
    decision: &policy::Decision,
    protocol: Protocol,
    trace: &mut Trace,
) -> Result<(Vec<i64>, Vec<i64>), SsoError> {
    let (mut groups, roles, mut notes) = resolve(state, integration, props, decision);
    // No provider group matched a catalog group: the default group, as seed 003 says.
    if groups.is_empty() && !decision.used_default_group {
        match portcullis_catalog::conferred_group(
            state,
            integration,
            props,
            &props.default_group,
            portcullis_catalog::NameSource::Configured,
        ) {
            Ok(g) => {
                let fq = format!("{}@{}", g.name, state.database_name(g.database_id));
                notes.push(format!("no provider group matched; default group {fq}"));
                groups.push((g.id, fq));
            }
            Err(note) => notes.push(format!("default group: {note}")),
        }
    }
    trace.pass(
        Reason::Policy,
        format!(
            "user {}; provider groups {:?}, roles {:?}; groups {:?}{}; roles {:?}{}",
            decision.identity,
            decision.provider_groups,
            decision.provider_roles,
            groups.iter().map(|(_, n)| n).collect::<Vec<_>>(),
            if decision.used_default_group {
                " (default group)"
            } else {
                ""
            },
            roles.iter().map(|(_, n)| n).collect::<Vec<_>>(),
            if notes.is_empty() {
                String::new()
            } else {
                format!("; {}", notes.join("; "))
            }
        ),
    );
    // USE on the target database through the mapped groups, roles or the Public Role.
    let group_ids: Vec<i64> = groups.iter().map(|(id, _)| *id).collect();
    let role_ids: Vec<i64> = roles.iter().map(|(id, _)| *id).collect();
    let probe = Session {
        id: String::new(),
        user_id: 0,
        user: decision.identity.clone(),
        database: target.name.clone(),
        database_id: target.id,
        method: AuthMethod::SsoAccessToken,
        protocol,
        peer: String::new(),
        started_at: 0,
        expires_at: None,
        sso: Some(SsoIdentity {
            integration: integration.name.clone(),
            integration_id: integration.id,
            groups: group_ids.clone(),
            roles: role_ids.clone(),
            // The probe only names principals; its times and method do not count.
            token_expires_at: 0,
            assigned_by: AssignmentTarget::Database(target.id),
        }),
        credential_stamp: None,
        via: SignInMethod::Token,
        application: None,
        token_id: None,
    };
    let principals = session_principals(state, &probe);
    if !holds(
        state,
        &principals,
        Privilege::new(Action::Use),
        ObjectRef::Database(target.id),
    ) {
        return Err(trace
            .fail(
                Reason::NoUsePrivilege,
                format!(
                    "none of the user's groups ({}) has the USE privilege on database \"{}\"",
                    if groups.is_empty() {
                        "none".to_owned()
                    } else {
                        groups
                            .iter()
                            .map(|(_, n)| n.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    },
                    target.name
                ),
            )
            .into());
    }
    trace.pass(
        Reason::NoUsePrivilege,
        format!("USE on database {}", target.name),
    );
    Ok((group_ids, role_ids))
}

/// The integration that checks a sign-in: the one named by `identityprovider` (of the source
/// database or the pool), else the pool's, else the source database's assigned one.
pub fn choose_integration<'a>(
    state: &'a CatalogState,
    req: IntegrationChoice<'_>,
) -> Result<&'a SsoIntegrationRecord, SsoError> {
    chosen_assignment(state, req).map(|(i, _)| i)
}

/// [`choose_integration`], with the assignment it was found through.
pub fn chosen_assignment<'a>(
    state: &'a CatalogState,
    req: IntegrationChoice<'_>,
) -> Result<(&'a SsoIntegrationRecord, AssignmentTarget), SsoError> {
    let source_name = req.source_database.unwrap_or(req.database);
    let source = state.database(source_name).ok_or_else(|| {
        if req.source_database.is_some() {
            SsoError::NoSourceDatabase(source_name.to_owned())
        } else {
            SsoError::NoDatabase(source_name.to_owned())
        }
    })?;
    // A pool's integration signs people in only to its own database, or anywhere when it is
    // system-wide: a tenant's integration on a pool must not admit anyone to another tenant's
    // database (its tenant controls its issuer, directory and mappings).
    let pool = req
        .pool_id
        .and_then(|p| state.assigned_integration(AssignmentTarget::ConnectivityPool(p)))
        .filter(|i| {
            i.database_id == source.id
                || state.database_name(i.database_id) == portcullis_catalog::model::SYSTEM_DATABASE
        });
    // Only an integration someone assigned signs anyone in: the source database's, or the
    // pool's the client came through. A name (`identityprovider`) only picks between those;
    // an integration that exists but is not assigned (REMOVE SSO INTEGRATION) is not usable.
    let own = AssignmentTarget::Database(source.id);
    let pool = pool.zip(req.pool_id.map(AssignmentTarget::ConnectivityPool));
    if let Some(name) = req.integration {
        let assigned = state.assigned_integration(own).map(|i| (i, own));
        return [assigned, pool]
            .into_iter()
            .flatten()
            .find(|(i, _)| i.name == name)
            .ok_or_else(|| SsoError::UnknownIntegration(name.to_owned()));
    }
    if req.source_database.is_none() {
        if let Some(p) = pool {
            return Ok(p);
        }
    }
    state
        .assigned_integration(own)
        .map(|i| (i, own))
        .ok_or_else(|| SsoError::NoIntegration(source.name.clone()))
}

/// OIDC Core 3.1.3.7 step 11: the ID token carries the nonce of the authorization request.
fn check_nonce(
    claims: &serde_json::Map<String, serde_json::Value>,
    expected: &str,
    trace: &mut Trace,
) -> Result<(), Refusal> {
    use aws_lc_rs::constant_time::verify_slices_are_equal;
    match claims.get("nonce").and_then(|v| v.as_str()) {
        Some(n) if verify_slices_are_equal(n.as_bytes(), expected.as_bytes()).is_ok() => {
            trace.pass(Reason::TokenNonce, "matches the sign-in request");
            Ok(())
        }
        Some(_) => Err(trace.fail(
            Reason::TokenNonce,
            "the ID token's nonce is not the one this sign-in sent (a replayed or injected token)",
        )),
        None => Err(trace.fail(
            Reason::TokenNonce,
            "the ID token has no nonce although the sign-in request sent one",
        )),
    }
}

type Named = Vec<(i64, String)>;

/// Resolves the decision's groups and roles to what the integration may confer (see
/// [`portcullis_catalog::conferred_group`]); names that confer nothing are reported, not fatal.
fn resolve(
    state: &CatalogState,
    integration: &SsoIntegrationRecord,
    props: &SsoProperties,
    decision: &policy::Decision,
) -> (Named, Named, Vec<String>) {
    use portcullis_catalog::{conferred_group, conferred_role, NameSource};
    let source = |t: &policy::Target| match t {
        policy::Target::FromToken(_) => NameSource::Token,
        policy::Target::Configured(_) => NameSource::Configured,
    };
    let mut notes = Vec::new();
    let mut groups = Vec::new();
    for target in &decision.groups {
        match conferred_group(state, integration, props, target.name(), source(target)) {
            Ok(g) => {
                let fq = format!("{}@{}", g.name, state.database_name(g.database_id));
                if !groups.iter().any(|(id, _)| *id == g.id) {
                    groups.push((g.id, fq));
                }
            }
            Err(note) => notes.push(note),
        }
    }
    let mut roles = Vec::new();
    for target in &decision.roles {
        match conferred_role(state, integration, props, target.name(), source(target)) {
            Ok(r) => {
                let fq = format!("{}@{}", r.name, state.database_name(r.database_id));
                if !roles.iter().any(|(id, _)| *id == r.id) {
                    roles.push((r.id, fq));
                }
            }
            Err(note) => notes.push(note),
        }
    }
    (groups, roles, notes)
}
