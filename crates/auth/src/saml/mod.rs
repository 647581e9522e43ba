//! SAML sign-in (issue 14): the server as a SAML service provider. A browser sign-in sends an
//! `AuthnRequest` to the IdP by the HTTP-Redirect binding (a 128-bit random id, kept pending
//! like a code flow's state and bound to the browser with a cookie); the IdP posts the signed
//! response back to the integration's assertion consumer service
//! (`/v1/saml/acs/<database>/<integration>`), where it is checked ([`verify`]), used once
//! ([`replay`]), and turned into a session by the same claim policy, group resolution and USE
//! check as every other SSO sign-in. Seed 004's form login posts the same response.

pub mod metadata;
pub mod replay;
mod shared_terminal;
pub mod terminal;
pub mod verify;

use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis_catalog::sso::{SamlIdp, SsoProperties};
use portcullis_catalog::{
    now, Attempt, AuthMethod, Catalog, Client, Protocol, Reason, Session, SessionRegistry,
    SignInMethod, SsoIdentity,
};
use portcullis_store::SsoIntegrationRecord;
use serde_json::{Map, Value};

use crate::code_flow::{advertised_for, Advertised, BeginSignIn, Completed, Started};
use crate::oidc::authorization::is_own_page;
use crate::oidc::flows::{FlowTable, Pending};
use crate::oidc::policy;
use crate::oidc::validate::Trace;
use crate::sso::{admit, chosen_assignment, IntegrationChoice};
use crate::{SsoAuthenticator, SsoError};
use metadata::MetadataCache;
use replay::{ReplayCache, ReplayError};
use terminal::{TerminalRequest, TerminalWait, Terminals};
use verify::{Expected, Verified};

/// The claim a response's `NameID` is put under (the default user id).
pub const NAME_ID_CLAIM: &str = "nameid";

/// A SAML sign-in request waiting for the IdP's response.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PendingRequest {
    /// The request's `ID` (also its `RelayState`, and the flow cookie's value).
    pub id: String,
    pub database: String,
    pub source_database: Option<String>,
    pub integration_id: i64,
    pub integration: String,
    pub pool_id: Option<i64>,
    /// Where the response must be sent (recipient and destination).
    pub acs_url: String,
    pub callback_path: String,
    pub browser_bound: bool,
    /// The user code of the terminal this sign-in is for (the session goes there).
    pub terminal: Option<String>,
    /// When it started, on this node (one read from a shared store counts from its reading:
    /// the store checks its expiry).
    #[serde(skip, default = "Instant::now")]
    pub created: Instant,
}

impl Pending for PendingRequest {
    fn key(&self) -> &str {
        &self.id
    }
    fn created(&self) -> Instant {
        self.created
    }
    fn browser_bound(&self) -> bool {
        self.browser_bound
    }
}

/// A response posted to an assertion consumer service, or given to the form login.
#[derive(Debug, Clone)]
pub struct AssertionPost<'a> {
    /// The integration's own database and name (the ACS path, or the form login's domain).
    pub home_database: &'a str,
    pub integration: &'a str,
    /// The database an unsolicited response signs in to (default: `home_database`).
    pub database: Option<&'a str>,
    /// The `SAMLResponse` field (base64).
    pub saml_response: &'a str,
    pub relay_state: Option<&'a str>,
    /// The flow cookie's value.
    pub browser_state: Option<&'a str>,
    pub client: &'a Client,
    pub via: SignInMethod,
}

/// The assertion consumer service URL of an integration, as browsers reach the server.
pub fn acs_url(props: &SsoProperties, advertised: &Advertised, home: &str, name: &str) -> String {
    let host = props
        .redirect_host
        .as_deref()
        .unwrap_or(&advertised.authority);
    let https = props.redirect_ssl.unwrap_or(advertised.https);
    let seg = |s: &str| -> String { url::form_urlencoded::byte_serialize(s.as_bytes()).collect() };
    format!(
        "{}://{}/v1/saml/acs/{}/{}",
        if https { "https" } else { "http" },
        host.trim_end_matches('/'),
        seg(home),
        seg(name)
    )
}

fn refused(reason: Reason, detail: impl Into<String>) -> SsoError {
    SsoError::refused(reason, detail)
}

/// SAML browser sign-ins: pending requests, used assertions, IdP metadata.
pub struct SamlFlow {
    catalog: Arc<Catalog>,
    sso: Arc<SsoAuthenticator>,
    advertised: Advertised,
    requests: FlowTable<PendingRequest>,
    used: ReplayCache,
    metadata: MetadataCache,
    terminals: Arc<Terminals>,
}

/// A finished SAML sign-in: a browser session (with where the browser goes next), or a
/// session handed to a waiting terminal.
#[derive(Debug, Clone)]
pub enum SamlCompleted {
    Browser(Completed),
    Terminal { database: String },
}

impl SamlFlow {
    pub fn new(
        catalog: Arc<Catalog>,
        sso: Arc<SsoAuthenticator>,
        advertised: Advertised,
        ttl: Duration,
    ) -> Self {
        Self {
            catalog,
            sso,
            advertised,
            requests: FlowTable::new(ttl, 250_000),
            used: ReplayCache::default(),
            metadata: MetadataCache::default(),
            terminals: Terminals::new(ttl),
        }
    }

    /// The integration `choice` picks, if it is an enabled SAML one.
    fn saml_integration(
        &self,
        choice: IntegrationChoice<'_>,
    ) -> Result<Option<(SsoIntegrationRecord, SsoProperties, SamlIdp)>, SsoError> {
        let state = self.catalog.state();
        let Ok((record, _)) = chosen_assignment(&state, choice) else {
            return Ok(None);
        };
        let props = state
            .sso_properties(record)
            .map_err(|e| SsoError::Internal(e.message))?;
        let Some(idp) = props.saml.clone() else {
            return Ok(None);
        };
        if props.disabled {
            return Err(SsoError::Disabled(record.name.clone()));
        }
        Ok(Some((record.clone(), (*props).clone(), idp)))
    }

    /// A PostgreSQL client's interactive sign-in through a SAML integration (`Ok(None)` if
    /// `choice` picks no SAML integration): a code for the person to confirm at
    /// [`Self::terminal_url`].
    pub async fn start_terminal(
        &self,
        choice: IntegrationChoice<'_>,
        peer: &str,
    ) -> Result<Option<TerminalWait>, SsoError> {
        let Some((record, _, _)) = self.saml_integration(choice)? else {
            return Ok(None);
        };
        let wait = self
            .terminals
            .start(TerminalRequest {
                user_code: String::new(),
                database: choice.database.to_owned(),
                source_database: choice.source_database.map(str::to_owned),
                integration: record.name.clone(),
                pool_id: choice.pool_id,
                peer: peer.to_owned(),
                created: Instant::now(),
            })
            .ok_or_else(|| {
                refused(
                    Reason::Capacity,
                    "too many terminals are waiting to sign in",
                )
            })?;
        self.share_terminal(&wait).await?;
        Ok(Some(wait))
    }

    /// The page a terminal's person opens (with the code filled in when given).
    pub fn terminal_url(&self, pool_id: Option<i64>, code: Option<&str>) -> String {
        let a = advertised_for(&self.catalog, &self.advertised, pool_id);
        let base = format!(
            "{}://{}/ui/terminal",
            if a.https { "https" } else { "http" },
            a.authority
        );
        match code {
            Some(c) => format!("{base}?user_code={c}"),
            None => base,
        }
    }

    /// The server's metadata as the service provider of an integration (its entity id and
    /// assertion consumer service), for the IdP's administrator; `None` unless it is a SAML
    /// integration someone assigned.
    pub fn sp_metadata(&self, home: &str, name: &str) -> Option<String> {
        let state = self.catalog.state();
        let record = state.integration(state.database(home)?.id, name)?;
        let assigned = state.snap.databases.iter().any(|d| {
            state
                .assigned_integration(portcullis_store::AssignmentTarget::Database(d.id))
                .is_some_and(|i| i.id == record.id)
        });
        let props = state.sso_properties(record).ok()?;
        let idp = props.saml.as_ref().filter(|_| assigned)?;
        let acs = acs_url(&props, &self.advertised, home, name);
        let esc = |s: &str| {
            s.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;")
        };
        Some(format!(
            "<?xml version=\"1.0\"?>\n\
             <md:EntityDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" \
             entityID=\"{}\">\n  <md:SPSSODescriptor AuthnRequestsSigned=\"false\" \
             WantAssertionsSigned=\"true\" \
             protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\">\n    \
             <md:AssertionConsumerService \
             Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST\" Location=\"{}\" \
             index=\"0\" isDefault=\"true\"/>\n  </md:SPSSODescriptor>\n</md:EntityDescriptor>\n",
            esc(&idp.sp_entity_id),
            esc(&acs)
        ))
    }

    /// Starts the browser sign-in that signs the terminal of `code` in.
    pub async fn begin_terminal(&self, code: &str) -> Result<Started, SsoError> {
        let t = self.terminal(code).await.ok_or_else(|| {
            refused(
                Reason::UserCode,
                "this code is unknown or expired, or its terminal stopped waiting",
            )
        })?;
        let req = BeginSignIn {
            database: &t.database,
            source_database: t.source_database.as_deref(),
            integration: Some(&t.integration),
            pool_id: t.pool_id,
            callback_path: "/ui/session",
            browser_bound: true,
        };
        self.begin_for(&req, Some(t.user_code.clone()))
            .await?
            .ok_or_else(|| SsoError::UnknownIntegration(t.integration.clone()))
    }

    /// Requests waiting for their response.
    pub fn pending(&self) -> usize {
        self.requests.len()
    }

    /// Whether the pending request `relay_state` names must be finished in the browser that
    /// started it.
    pub async fn is_browser_bound(&self, relay_state: &str) -> bool {
        self.peek(relay_state)
            .await
            .ok()
            .flatten()
            .is_some_and(|p| p.browser_bound)
    }

    /// The live request `id` names, wherever it is kept (this node's memory, or the store
    /// several nodes share).
    async fn peek(&self, id: &str) -> Result<Option<PendingRequest>, SsoError> {
        if !self.catalog.shares_pending() {
            return Ok(self.requests.peek(id));
        }
        self.catalog
            .peek_pending(&shared_key(id))
            .await
            .map_err(|e| SsoError::Internal(e.message))
    }

    /// Uses up the request `id`: `false` if it was gone (answered meanwhile).
    async fn take(&self, id: &str) -> Result<bool, SsoError> {
        if !self.catalog.shares_pending() {
            return Ok(self.requests.take(id).is_ok());
        }
        let taken: Option<PendingRequest> = self
            .catalog
            .take_pending(&shared_key(id))
            .await
            .map_err(|e| SsoError::Internal(e.message))?;
        Ok(taken.is_some())
    }

    /// Forgets expired requests and assertions.
    pub fn sweep(&self) {
        self.requests.sweep();
        self.used.sweep(now());
    }

    /// Starts a browser sign-in if the integration `req` picks is a SAML one (`Ok(None)`
    /// otherwise: the caller tries OpenID Connect).
    pub async fn begin(&self, req: &BeginSignIn<'_>) -> Result<Option<Started>, SsoError> {
        self.begin_for(req, None).await
    }

    async fn begin_for(
        &self,
        req: &BeginSignIn<'_>,
        terminal: Option<String>,
    ) -> Result<Option<Started>, SsoError> {
        let choice = IntegrationChoice {
            source_database: req.source_database,
            database: req.database,
            integration: req.integration,
            pool_id: req.pool_id,
        };
        let Some((record, props, idp)) = self.saml_integration(choice)? else {
            return Ok(None);
        };
        if !is_own_page(req.callback_path) {
            return Err(refused(
                Reason::CallbackPath,
                "sso_callback_path must be one of this server's pages (/ or under /ui/, like \
                 /ui/session): no scheme, no host, no API path, no //, no backslash",
            ));
        }
        let metadata = self.idp_metadata(&record, &idp).await?;
        let sso_url = metadata.sso_redirect_url.clone().ok_or_else(|| {
            refused(
                Reason::ProviderDiscovery,
                format!(
                    "the IdP of SSO integration \"{}\" has no single sign-on endpoint with the \
                     HTTP-Redirect binding",
                    record.name
                ),
            )
        })?;
        let home = self
            .catalog
            .state()
            .database_name(record.database_id)
            .to_owned();
        let advertised = advertised_for(&self.catalog, &self.advertised, req.pool_id);
        let acs = acs_url(&props, &advertised, &home, &record.name);
        // An NCName: a letter first, then 128 random bits.
        let id = format!("_{}", crate::oidc::authorization::random_value());
        let request = samael::schema::AuthnRequest {
            id: id.clone(),
            version: "2.0".into(),
            issue_instant: chrono::Utc::now(),
            destination: Some(sso_url),
            issuer: Some(samael::schema::Issuer {
                value: Some(idp.sp_entity_id.clone()),
                ..Default::default()
            }),
            assertion_consumer_service_url: Some(acs.clone()),
            protocol_binding: Some("urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST".into()),
            ..Default::default()
        };
        let url = request
            .redirect(&id)
            .map_err(|e| refused(Reason::ProviderDiscovery, format!("the SAML request: {e}")))?
            .ok_or_else(|| {
                refused(
                    Reason::ProviderDiscovery,
                    "the SAML request has no destination",
                )
            })?;
        let pending = PendingRequest {
            id: id.clone(),
            database: req.database.to_owned(),
            source_database: req.source_database.map(str::to_owned),
            integration_id: record.id,
            integration: record.name.clone(),
            pool_id: req.pool_id,
            acs_url: acs,
            callback_path: req.callback_path.to_owned(),
            browser_bound: req.browser_bound,
            terminal,
            created: Instant::now(),
        };
        if self.catalog.shares_pending() {
            // Several nodes: the IdP may post the response to another one.
            let ttl = i64::try_from(self.requests.ttl().as_secs()).unwrap_or(600);
            self.catalog
                .put_pending(&shared_key(&id), &pending, ttl)
                .await
                .map_err(|e| SsoError::Internal(e.message))?;
        } else {
            self.requests
                .insert(pending)
                .map_err(|e| refused(Reason::Capacity, e))?;
        }
        metrics::counter!(crate::code_flow::FLOWS_STARTED).increment(1);
        Ok(Some(Started {
            url: url.to_string(),
            state: id,
        }))
    }

    async fn idp_metadata(
        &self,
        record: &SsoIntegrationRecord,
        idp: &SamlIdp,
    ) -> Result<Arc<metadata::IdpMetadata>, SsoError> {
        self.metadata
            .get(idp, self.sso.providers().fetcher())
            .await
            .map_err(|e| {
                refused(
                    Reason::ProviderDiscovery,
                    format!(
                        "the IdP metadata of SSO integration \"{}\": {e}",
                        record.name
                    ),
                )
            })
    }

    /// Checks a posted response and opens a session (or says why not; every refusal is
    /// recorded, and none leaves a session or uses up the request).
    pub async fn complete(&self, post: &AssertionPost<'_>) -> Result<SamlCompleted, SsoError> {
        let began = Instant::now();
        let mut identity = String::new();
        let result = self.evaluate(post, &mut identity).await;
        let result = match result {
            Ok((session, Landing::Page(callback_path))) => Ok(SamlCompleted::Browser(Completed {
                session: self.catalog.sessions.insert(session),
                callback_path,
            })),
            Ok((session, Landing::Terminal(code))) => {
                let database = session.database.clone();
                self.hand_to_terminal(&code, session)
                    .await
                    .map(|()| SamlCompleted::Terminal { database })
            }
            Err(e) => {
                let attempt = Attempt {
                    method: post.via,
                    identity,
                    database: post.database.unwrap_or(post.home_database).to_owned(),
                    integration: Some(post.integration.to_owned()),
                    client: post.client.clone(),
                    token_id: None,
                };
                self.catalog.refused(&attempt, e.reason(), &e.to_string());
                Err(e)
            }
        };
        portcullis_catalog::metrics::sign_in_took(post.via, result.is_ok(), began.elapsed());
        result
    }

    async fn evaluate(
        &self,
        post: &AssertionPost<'_>,
        identity: &mut String,
    ) -> Result<(Session, Landing), SsoError> {
        let (record, props) = {
            let state = self.catalog.state();
            let home = state
                .database(post.home_database)
                .ok_or_else(|| SsoError::UnknownIntegration(post.integration.to_owned()))?;
            let record = state
                .integration(home.id, post.integration)
                .ok_or_else(|| SsoError::UnknownIntegration(post.integration.to_owned()))?
                .clone();
            let props = state
                .sso_properties(&record)
                .map_err(|e| SsoError::Internal(e.message))?;
            (record, props)
        };
        let Some(idp) = props.saml.clone() else {
            return Err(refused(
                Reason::NoIntegration,
                format!(
                    "SSO integration \"{}\" is not a SAML integration",
                    record.name
                ),
            ));
        };
        if props.disabled {
            return Err(SsoError::Disabled(record.name.clone()));
        }
        let xml = verify::decode(post.saml_response).map_err(|(r, d)| refused(r, d))?;
        let pending = self.pending_for(post, &xml, &record, &idp).await?;
        let metadata = self.idp_metadata(&record, &idp).await?;
        let acs = match &pending {
            Some(p) => p.acs_url.clone(),
            None => acs_url(&props, &self.advertised, post.home_database, &record.name),
        };
        let verified = {
            let expected_id = pending.as_ref().map(|p| p.id.clone());
            let sp_entity_id = idp.sp_entity_id.clone();
            let skew = idp.clock_skew_seconds;
            let descriptor = metadata.descriptor.clone();
            let acs = acs.clone();
            tokio::task::spawn_blocking(move || {
                verify::verify(
                    &xml,
                    &descriptor,
                    &Expected {
                        sp_entity_id: &sp_entity_id,
                        acs_url: &acs,
                        request_id: expected_id.as_deref(),
                        clock_skew_seconds: skew,
                    },
                )
            })
            .await
            .map_err(|e| SsoError::Internal(format!("SAML verification: {e}")))?
            .map_err(|(r, d)| refused(r, d))?
        };
        // The refusal events name the person as the policy would.
        *identity = {
            let (policy_props, claims) = as_claims(&props, &verified);
            policy::identity(&policy_props, &claims)
                .unwrap_or_else(|_| verified.name_id.clone().unwrap_or_default())
        };
        let first_use = if self.catalog.shares_pending() {
            // Several nodes: an assertion used on one is used on all.
            let key = format!("saml-used:{} {}", verified.issuer, verified.assertion_id);
            match self
                .catalog
                .first_use(&key, verified.valid_until.timestamp())
                .await
                .map_err(|e| SsoError::Internal(e.message))?
            {
                true => Ok(()),
                false => Err(ReplayError::Replayed),
            }
        } else {
            self.used.first_use(
                &verified.issuer,
                &verified.assertion_id,
                verified.valid_until.timestamp(),
                now(),
            )
        };
        match first_use {
            Ok(()) => {}
            Err(ReplayError::Replayed) => {
                return Err(refused(
                    Reason::SamlReplay,
                    format!(
                        "assertion {} was already used to sign in; sign in again",
                        verified.assertion_id
                    ),
                ))
            }
            Err(ReplayError::Full) => {
                return Err(refused(
                    Reason::Capacity,
                    "too many SAML sign-ins are remembered; try again later",
                ))
            }
        }
        if let Some(p) = &pending {
            // Checked and unused: now it is used up (a second response to it is refused).
            if !self.take(&p.id).await? {
                return Err(refused(
                    Reason::SamlRequest,
                    "this sign-in request was already answered; sign in again",
                ));
            }
        }
        let (database, source, pool_id, landing) = match pending {
            Some(p) => (
                p.database,
                p.source_database,
                p.pool_id,
                match p.terminal {
                    Some(code) => Landing::Terminal(code),
                    None => Landing::Page(p.callback_path),
                },
            ),
            None => (
                post.database.unwrap_or(post.home_database).to_owned(),
                None,
                None,
                Landing::Page("/ui/session".to_owned()),
            ),
        };
        let protocol = match landing {
            Landing::Terminal(_) => Protocol::Postgres,
            Landing::Page(_) => Protocol::Http,
        };
        let session = self.open(
            &record,
            &props,
            &verified,
            IntegrationChoice {
                source_database: source.as_deref(),
                database: &database,
                integration: Some(&record.name),
                pool_id,
            },
            post,
            protocol,
        )?;
        Ok((session, landing))
    }

    /// The pending request a response answers: the one its `RelayState` names, else the one
    /// its `InResponseTo` claims; `None` for an unsolicited response (refused unless the
    /// integration allows IdP-initiated sign-in).
    async fn pending_for(
        &self,
        post: &AssertionPost<'_>,
        xml: &str,
        record: &SsoIntegrationRecord,
        idp: &SamlIdp,
    ) -> Result<Option<PendingRequest>, SsoError> {
        let relay = post.relay_state.filter(|r| !r.is_empty());
        let claimed = verify::claimed_request_id(xml);
        let relay_pending = match relay {
            Some(r) => self.peek(r).await?.is_some(),
            None => false,
        };
        let key = match (relay, &claimed) {
            (Some(r), _) if relay_pending => Some(r.to_owned()),
            (_, Some(c)) => Some(c.clone()),
            // IdPs may send their own RelayState with an unsolicited response.
            (Some(_), None) if idp.allow_idp_initiated => None,
            (Some(_), None) => {
                return Err(refused(
                    Reason::FlowState,
                    "this sign-in request is unknown, expired or already used; sign in again",
                ))
            }
            (None, None) => None,
        };
        let Some(key) = key else {
            if !idp.allow_idp_initiated {
                return Err(refused(
                    Reason::SamlRequest,
                    format!(
                        "the response answers no sign-in request of this server, and SSO \
                         integration \"{}\" does not accept IdP-initiated sign-in \
                         (allow_idp_initiated)",
                        record.name
                    ),
                ));
            }
            return Ok(None);
        };
        let pending = self.peek(&key).await?.ok_or_else(|| {
            refused(
                Reason::SamlRequest,
                "the response answers a sign-in request this server does not have (used, \
                 expired or never made); sign in again",
            )
        })?;
        if pending.integration_id != record.id {
            return Err(refused(
                Reason::SamlRequest,
                "the response was posted to another integration than the one its request \
                 went to",
            ));
        }
        if relay.is_some_and(|r| r != pending.id)
            || claimed.as_deref().is_some_and(|c| c != pending.id)
        {
            return Err(refused(
                Reason::SamlRequest,
                "the response answers another sign-in request than the one its RelayState \
                 names",
            ));
        }
        if pending.browser_bound {
            use aws_lc_rs::constant_time::verify_slices_are_equal;
            let same = post.browser_state.is_some_and(|b| {
                verify_slices_are_equal(b.as_bytes(), pending.id.as_bytes()).is_ok()
            });
            if !same {
                return Err(refused(
                    Reason::FlowBrowser,
                    "this sign-in was started in another browser (the sign-in cookie is missing \
                     or different); start the sign-in again",
                ));
            }
        }
        Ok(Some(pending))
    }

    /// From a verified assertion to a session: claims, policy, groups, USE.
    fn open(
        &self,
        record: &SsoIntegrationRecord,
        props: &SsoProperties,
        verified: &Verified,
        choice: IntegrationChoice<'_>,
        post: &AssertionPost<'_>,
        protocol: Protocol,
    ) -> Result<Session, SsoError> {
        let state = self.catalog.state();
        let target = state
            .database(choice.database)
            .ok_or_else(|| SsoError::NoDatabase(choice.database.to_owned()))?
            .clone();
        let (chosen, assigned_by) = chosen_assignment(&state, choice)?;
        if chosen.id != record.id {
            return Err(refused(
                Reason::NoIntegration,
                format!(
                    "SSO integration \"{}\" is not the one database \"{}\" uses",
                    record.name, target.name
                ),
            ));
        }
        let (policy_props, claims) = as_claims(props, verified);
        let mut trace = Trace::default();
        let decision = policy::decide(&policy_props, &claims)
            .map_err(|reason| SsoError::from(trace.fail(Reason::Policy, reason)))?;
        let (groups, roles) = admit(
            &state,
            &target,
            record,
            &policy_props,
            &decision,
            protocol,
            &mut trace,
        )?;
        let started_at = now();
        let session_seconds = props
            .saml
            .as_ref()
            .map_or(portcullis_catalog::sso::saml::SAML_SESSION_SECONDS, |i| {
                i.session_seconds
            });
        let ends_at = started_at.saturating_add(session_seconds);
        Ok(Session {
            id: SessionRegistry::new_id(),
            user_id: 0,
            user: decision.identity,
            database: target.name.clone(),
            database_id: target.id,
            method: AuthMethod::Saml,
            protocol,
            peer: post.client.peer.clone(),
            started_at,
            // A browser session ends at session_seconds; a terminal's, like a token's, when
            // its authority (`token_expires_at`) does.
            expires_at: (protocol == Protocol::Http).then_some(ends_at),
            sso: Some(SsoIdentity {
                integration: record.name.clone(),
                integration_id: record.id,
                groups,
                roles,
                token_expires_at: ends_at,
                assigned_by,
            }),
            credential_stamp: None,
            via: post.via,
            application: post.client.application.clone(),
            token_id: None,
        })
    }
}

/// The store key of a pending SAML request (several nodes).
fn shared_key(id: &str) -> String {
    format!("saml:{id}")
}

/// Where a finished sign-in goes.
enum Landing {
    /// The browser, to this local page.
    Page(String),
    /// The terminal with this user code.
    Terminal(String),
}

/// A verified assertion as claims, and the properties the policy reads them with: the
/// `NameID` under [`NAME_ID_CLAIM`] (the default user id), each attribute under its `Name`
/// and its `FriendlyName`.
pub fn as_claims(
    props: &SsoProperties,
    verified: &Verified,
) -> (SsoProperties, Map<String, Value>) {
    let mut claims = Map::new();
    if let Some(n) = &verified.name_id {
        claims.insert(NAME_ID_CLAIM.into(), Value::String(n.clone()));
    }
    for (name, friendly, values) in &verified.attributes {
        let value = match values.as_slice() {
            [one] => Value::String(one.clone()),
            many => Value::Array(many.iter().cloned().map(Value::String).collect()),
        };
        for key in std::iter::once(name).chain(friendly.as_ref()) {
            claims.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
    let policy_props = SsoProperties {
        user_id_claims: if props.user_id_claims.is_empty() {
            vec![NAME_ID_CLAIM.into()]
        } else {
            props.user_id_claims.clone()
        },
        ..props.clone()
    };
    (policy_props, claims)
}
