//! Browser sign-in with the authorization code flow (OIDC Core 3.1, RFC 7636, RFC 9207,
//! RFC 9700): start a flow (state, nonce, PKCE verifier kept server-side), finish it at the
//! callback (the flow is taken once; `iss` checked; the code exchanged with the client secret;
//! the ID token validated as in the token flow plus the nonce), keep the refresh token sealed,
//! renew sessions before their tokens expire, and revoke the refresh token at sign-out.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use portcullis_catalog::sso::SsoProperties;
use portcullis_catalog::{now, Catalog, Client, Protocol, Reason, Session, SignInMethod};
use portcullis_store::{AssignmentTarget, SsoIntegrationRecord};

use crate::oidc::authorization::{authorization_url, is_own_page, random_value, TokenResponse};
use crate::oidc::flows::{FlowTable, PendingFlow, TakeError};
use crate::oidc::TokenKind;
use crate::sso::{integration_now, FlowIntegration, IntegrationChoice};
use crate::{SsoAuthenticator, SsoError, TokenSignIn};

mod shared;

/// How the server is reached by browsers, for `redirect_uri` when an integration sets no
/// `redirect_host`/`redirect_ssl`.
#[derive(Debug, Clone)]
pub struct Advertised {
    /// `host:port` as browsers reach the HTTP listener.
    pub authority: String,
    /// Whether that listener is HTTPS.
    pub https: bool,
}

/// The redirect URI of an integration: `<scheme>://<redirect_host or advertised>/v1/callback`.
pub fn redirect_uri(props: &SsoProperties, advertised: &Advertised) -> String {
    let host = props
        .redirect_host
        .as_deref()
        .unwrap_or(&advertised.authority);
    let https = props.redirect_ssl.unwrap_or(advertised.https);
    format!(
        "{}://{}/v1/callback",
        if https { "https" } else { "http" },
        host.trim_end_matches('/')
    )
}

/// How browsers reach the server for a sign-in through `pool_id`: a pool that advertises its
/// own address has the provider's redirect come back by it.
pub(crate) fn advertised_for(
    catalog: &Catalog,
    server: &Advertised,
    pool_id: Option<i64>,
) -> Advertised {
    let pool_address = pool_id.and_then(|id| {
        let state = catalog.state();
        state
            .snap
            .connectivity_pools
            .iter()
            .find(|p| p.id == id)
            .and_then(|p| p.advertised.clone())
    });
    match pool_address {
        Some(authority) => Advertised {
            authority,
            https: server.https,
        },
        None => server.clone(),
    }
}

/// The store key of a code flow's pending sign-in (several nodes).
fn shared_key(state: &str) -> String {
    format!("code:{state}")
}

/// A request to start a browser sign-in.
#[derive(Debug, Clone)]
pub struct BeginSignIn<'a> {
    pub database: &'a str,
    /// The database whose integration signs in (`@source_db`); `database` when `None`.
    pub source_database: Option<&'a str>,
    /// A named integration (the IdP chooser); else the database's assigned one.
    pub integration: Option<&'a str>,
    pub pool_id: Option<i64>,
    /// Where the browser goes afterwards; must be a local path.
    pub callback_path: &'a str,
    /// Whether the callback must bring the flow cookie.
    pub browser_bound: bool,
}

/// A started flow: send the browser to `url`; `state` names the flow (and is the value of the
/// flow cookie when the flow is browser-bound).
#[derive(Debug, Clone)]
pub struct Started {
    pub url: String,
    pub state: String,
}

/// The callback's query parameters.
#[derive(Debug, Clone, Default)]
pub struct CallbackParams<'a> {
    pub state: Option<&'a str>,
    pub code: Option<&'a str>,
    pub iss: Option<&'a str>,
    pub error: Option<&'a str>,
    pub error_description: Option<&'a str>,
}

/// A finished sign-in.
#[derive(Debug, Clone)]
pub struct Completed {
    pub session: Arc<Session>,
    pub callback_path: String,
}

/// A session's refresh grant, sealed.
#[derive(Clone)]
struct Grant {
    integration_id: i64,
    integration: String,
    pool_id: Option<i64>,
    sealed_refresh: Option<Vec<u8>>,
}

/// Where a session's refresh grant is: here, or (several nodes) in the store they share,
/// where any node holding a copy of the session renews it ([`shared`]).
enum Held {
    Here(Grant),
    Shared,
}

/// Browser flows started, sessions renewed, refresh tokens revoked (`/metrics`).
pub const FLOWS_STARTED: &str = "portcullis_sso_flows_started_total";
pub const SESSIONS_RENEWED: &str = "portcullis_sso_sessions_renewed_total";
pub const REFRESH_TOKENS_REVOKED: &str = "portcullis_sso_refresh_tokens_revoked_total";
/// Time in successful callbacks, and the part of it spent waiting for the provider's token
/// endpoint: the server's own share is the difference.
pub const CALLBACK_SECONDS: &str = "portcullis_sso_callback_seconds";
pub const CALLBACK_PROVIDER_SECONDS: &str = "portcullis_sso_callback_provider_seconds";

/// The authorization code flow for browsers and its sessions' refresh grants.
pub struct CodeFlow {
    catalog: Arc<Catalog>,
    sso: Arc<SsoAuthenticator>,
    advertised: Advertised,
    flows: FlowTable,
    grants: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Held>>>>,
    /// Sessions are renewed when their token expires within this margin.
    renew_margin: i64,
}

fn refused(reason: Reason, detail: impl Into<String>) -> SsoError {
    SsoError::refused(reason, detail)
}

fn refresh_context(session_id: &str) -> String {
    format!("refresh:{session_id}")
}

impl CodeFlow {
    pub fn new(
        catalog: Arc<Catalog>,
        sso: Arc<SsoAuthenticator>,
        advertised: Advertised,
        flow_ttl: Duration,
        renew_margin: Duration,
    ) -> Self {
        Self {
            catalog,
            sso,
            advertised,
            flows: FlowTable::new(flow_ttl, 250_000),
            grants: Mutex::new(HashMap::new()),
            renew_margin: i64::try_from(renew_margin.as_secs()).unwrap_or(60),
        }
    }

    pub fn advertised(&self) -> &Advertised {
        &self.advertised
    }

    /// Sign-ins waiting for their callback.
    pub fn pending(&self) -> usize {
        self.flows.len()
    }

    /// The integrations a database offers browsers: its assigned one, the ones it owns, and
    /// those assigned to connectivity pools that belong to it. Disabled ones are left out.
    pub fn offered(&self, database: &str) -> Vec<(SsoIntegrationRecord, Option<i64>)> {
        let state = self.catalog.state();
        let Some(db) = state.database(database) else {
            return Vec::new();
        };
        let mut out: Vec<(SsoIntegrationRecord, Option<i64>)> = Vec::new();
        let mut push = |i: &SsoIntegrationRecord, pool: Option<i64>| {
            // Only OpenID Connect integrations have a provider page to send a browser to.
            let enabled = SsoProperties::from_json(&i.properties)
                .is_ok_and(|p| !p.disabled && p.ldap.is_none());
            if enabled && !out.iter().any(|(o, _)| o.id == i.id) {
                out.push((i.clone(), pool));
            }
        };
        // Only assigned integrations are offered (an unassigned one signs nobody in).
        if let Some(i) = state.assigned_integration(AssignmentTarget::Database(db.id)) {
            push(i, None);
        }
        for pool in &state.snap.connectivity_pools {
            if let Some(i) = state.assigned_integration(AssignmentTarget::ConnectivityPool(pool.id))
            {
                if i.database_id == db.id {
                    push(i, Some(pool.id));
                }
            }
        }
        out
    }

    /// How long a started sign-in waits for its callback.
    pub fn ttl(&self) -> Duration {
        self.flows.ttl()
    }

    /// Starts a sign-in. `Ok(None)` when the database has no integration (and none was named).
    pub async fn begin(&self, req: &BeginSignIn<'_>) -> Result<Option<Started>, SsoError> {
        if !is_own_page(req.callback_path) {
            return Err(refused(
                Reason::CallbackPath,
                "sso_callback_path must be one of this server's pages (/ or under /ui/, like \
                 /ui/session): no scheme, no host, no API path, no //, no backslash",
            ));
        }
        let choice = IntegrationChoice {
            source_database: req.source_database,
            database: req.database,
            integration: req.integration,
            pool_id: req.pool_id,
        };
        let FlowIntegration {
            record: integration,
            props,
            provider,
        } = match self.sso.flow_integration(choice).await {
            Ok(i) => i,
            Err(SsoError::NoIntegration(_)) if req.integration.is_none() => return Ok(None),
            Err(e) => return Err(e),
        };
        let endpoint = provider
            .metadata
            .authorization_endpoint
            .as_deref()
            .ok_or_else(|| {
                refused(
                    Reason::ProviderDiscovery,
                    "the provider names no authorization endpoint",
                )
            })?;
        let advertised = advertised_for(&self.catalog, &self.advertised, req.pool_id);
        let redirect = redirect_uri(&props, &advertised);
        let flow = PendingFlow {
            state: random_value(),
            nonce: random_value(),
            verifier: random_value(),
            database: req.database.to_owned(),
            source_database: req.source_database.map(str::to_owned),
            integration_id: integration.id,
            integration: integration.name.clone(),
            pool_id: req.pool_id,
            issuer: props.issuer.clone(),
            redirect_uri: redirect.clone(),
            callback_path: req.callback_path.to_owned(),
            browser_bound: req.browser_bound,
            created: Instant::now(),
        };
        let url = authorization_url(
            endpoint,
            &props,
            &redirect,
            &flow.state,
            &flow.nonce,
            &flow.verifier,
        )
        .map_err(|e| refused(Reason::ProviderDiscovery, e))?;
        let started = Started {
            url,
            state: flow.state.clone(),
        };
        if self.catalog.shares_pending() {
            // Several nodes: the provider may send the browser back to another one.
            let ttl = i64::try_from(self.flows.ttl().as_secs()).unwrap_or(600);
            self.catalog
                .put_pending(&shared_key(&flow.state), &flow, ttl)
                .await
                .map_err(|e| SsoError::Internal(e.message))?;
        } else {
            self.flows
                .insert(flow)
                .map_err(|e| refused(Reason::Capacity, e))?;
        }
        metrics::counter!(FLOWS_STARTED).increment(1);
        Ok(Some(started))
    }

    /// Finishes a sign-in at the callback. `browser_state` is the flow cookie's value. On any
    /// refusal no session exists and the flow is gone.
    pub async fn complete(
        &self,
        params: &CallbackParams<'_>,
        browser_state: Option<&str>,
        client: &Client,
    ) -> Result<Completed, SsoError> {
        let began = Instant::now();
        let state = params
            .state
            .ok_or_else(|| refused(Reason::FlowState, "the callback has no state parameter"))?;
        // Every flow is bound to the browser that started it (its flow cookie holds the
        // state): another browser is refused before the flow is used up, so whoever learns a
        // state from an authorization URL cannot cancel someone else's sign-in.
        {
            use aws_lc_rs::constant_time::verify_slices_are_equal;
            let same = browser_state
                .is_some_and(|b| verify_slices_are_equal(b.as_bytes(), state.as_bytes()).is_ok());
            if !same && self.is_browser_bound(state).await? {
                return Err(refused(
                    Reason::FlowBrowser,
                    "this sign-in was started in another browser (the sign-in cookie is missing \
                     or different); start the sign-in again",
                ));
            }
        }
        let flow = self.take(state).await?.map_err(|e| match e {
            TakeError::Unknown => refused(
                Reason::FlowState,
                "this sign-in request is unknown or was already used; start the sign-in again",
            ),
            TakeError::Expired => refused(
                Reason::FlowState,
                format!(
                    "this sign-in request expired (after {} s); start the sign-in again",
                    self.flows.ttl().as_secs()
                ),
            ),
        })?;
        self.finish(flow, params, browser_state, client, began)
            .await
    }

    /// Whether the live flow of `state` is bound to a browser (wherever it is kept).
    async fn is_browser_bound(&self, state: &str) -> Result<bool, SsoError> {
        if !self.catalog.shares_pending() {
            return Ok(self.flows.is_browser_bound(state));
        }
        let flow: Option<PendingFlow> = self
            .catalog
            .peek_pending(&shared_key(state))
            .await
            .map_err(|e| SsoError::Internal(e.message))?;
        Ok(flow.is_some_and(|f| f.browser_bound))
    }

    /// Takes the flow of `state` (wherever it is kept): at most once.
    async fn take(&self, state: &str) -> Result<Result<PendingFlow, TakeError>, SsoError> {
        if !self.catalog.shares_pending() {
            return Ok(self.flows.take(state));
        }
        let flow: Option<PendingFlow> = self
            .catalog
            .take_pending(&shared_key(state))
            .await
            .map_err(|e| SsoError::Internal(e.message))?;
        Ok(flow.ok_or(TakeError::Unknown))
    }

    /// The callback's checks, the code exchange and the sign-in, for a flow already taken.
    async fn finish(
        &self,
        flow: PendingFlow,
        params: &CallbackParams<'_>,
        browser_state: Option<&str>,
        client: &Client,
        began: Instant,
    ) -> Result<Completed, SsoError> {
        if flow.browser_bound {
            use aws_lc_rs::constant_time::verify_slices_are_equal;
            let same = browser_state.is_some_and(|b| {
                verify_slices_are_equal(b.as_bytes(), flow.state.as_bytes()).is_ok()
            });
            if !same {
                return Err(refused(
                    Reason::FlowBrowser,
                    "this sign-in was started in another browser (the sign-in cookie is missing \
                     or different); start the sign-in again",
                ));
            }
        }
        if let Some(error) = params.error {
            return Err(refused(
                Reason::ProviderError,
                match params.error_description {
                    Some(d) => format!("the identity provider did not sign you in: {error} ({d})"),
                    None => format!("the identity provider did not sign you in: {error}"),
                },
            ));
        }
        let provider = self
            .sso
            .providers()
            .metadata(&flow.issuer)
            .await
            .map_err(|e| {
                refused(
                    Reason::ProviderDiscovery,
                    format!("issuer {}: {e}", flow.issuer),
                )
            })?;
        match params.iss {
            Some(iss) if iss != flow.issuer => {
                return Err(refused(
                    Reason::TokenIssuer,
                    format!(
                        "the authorization response comes from issuer \"{iss}\", not \"{}\" \
                         (RFC 9207 mix-up defence)",
                        flow.issuer
                    ),
                ))
            }
            None if provider.metadata.iss_parameter_supported => {
                return Err(refused(
                    Reason::TokenIssuer,
                    "the authorization response has no iss parameter although the provider \
                     promises one (RFC 9207)",
                ))
            }
            _ => {}
        }
        let code = params
            .code
            .filter(|c| !c.is_empty())
            .ok_or_else(|| refused(Reason::FlowCode, "the callback has no code parameter"))?;
        let (record, props) =
            integration_now(&self.catalog, flow.integration_id, &flow.integration)?;
        let asked = Instant::now();
        let tokens = self
            .token_request(
                &record,
                &props,
                provider.metadata.token_endpoint.as_deref(),
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", &flow.redirect_uri),
                    ("code_verifier", &flow.verifier),
                ],
            )
            .await?;
        let provider_time = asked.elapsed();
        let id_token = tokens.id_token.as_deref().ok_or_else(|| {
            refused(
                Reason::ProviderTokenEndpoint,
                "the provider sent no ID token",
            )
        })?;
        let session = self
            .sso
            .sign_in(&TokenSignIn {
                kind: TokenKind::IdToken,
                token: id_token,
                source_database: flow.source_database.as_deref(),
                database: &flow.database,
                integration: Some(&flow.integration),
                pool_id: flow.pool_id,
                client,
                via: SignInMethod::CodeFlow,
                protocol: Protocol::Http,
                nonce: Some(&flow.nonce),
            })
            .await?;
        let held = if self.catalog.shares_pending() {
            let shared = shared::SharedRefresh {
                integration_id: record.id,
                integration: record.name.clone(),
                pool_id: flow.pool_id,
                refresh: tokens.refresh_token.clone(),
                failed: None,
            };
            if let Err(e) = self.share_grant(&session, &shared).await {
                self.catalog.sessions.remove(&session.id, Reason::Internal);
                return Err(e);
            }
            Held::Shared
        } else {
            Held::Here(self.grant_here(&session, &record, flow.pool_id, tokens.refresh_token)?)
        };
        self.grants
            .lock()
            .insert(session.id.clone(), Arc::new(tokio::sync::Mutex::new(held)));
        self.count_completion(began, provider_time);
        Ok(Completed {
            session,
            callback_path: flow.callback_path,
        })
    }

    /// A refresh grant kept on this node (one node), its token sealed.
    fn grant_here(
        &self,
        session: &Session,
        record: &SsoIntegrationRecord,
        pool_id: Option<i64>,
        refresh: Option<String>,
    ) -> Result<Grant, SsoError> {
        let sealed_refresh = match &refresh {
            Some(r) => match self.catalog.seal(&refresh_context(&session.id), r) {
                Ok(s) => Some(s),
                Err(e) => {
                    self.catalog.sessions.remove(&session.id, Reason::Internal);
                    return Err(SsoError::Internal(e.message));
                }
            },
            None => None,
        };
        Ok(Grant {
            integration_id: record.id,
            integration: record.name.clone(),
            pool_id,
            sealed_refresh,
        })
    }

    fn count_completion(&self, began: Instant, provider_time: Duration) {
        metrics::histogram!(CALLBACK_SECONDS).record(began.elapsed().as_secs_f64());
        metrics::histogram!(CALLBACK_PROVIDER_SECONDS).record(provider_time.as_secs_f64());
    }

    async fn token_request(
        &self,
        record: &SsoIntegrationRecord,
        props: &SsoProperties,
        endpoint: Option<&str>,
        form: &[(&str, &str)],
    ) -> Result<TokenResponse, SsoError> {
        let endpoint = endpoint.ok_or_else(|| {
            refused(
                Reason::ProviderTokenEndpoint,
                "the provider names no token endpoint",
            )
        })?;
        let secret = self
            .catalog
            .client_secret(record)
            .map_err(|e| SsoError::Internal(e.message))?;
        let (status, body) = self
            .sso
            .providers()
            .fetcher()
            .post_form(endpoint, form, &props.client_id, secret.as_deref())
            .await
            .map_err(|e| refused(Reason::ProviderTokenEndpoint, e.0))?;
        TokenResponse::from_json(status.as_u16(), &body)
            .map_err(|e| refused(Reason::ProviderTokenEndpoint, e))
    }

    /// Whether a session has a refresh grant (one kept in the shared store counts).
    pub fn has_refresh(&self, session_id: &str) -> bool {
        let grant = self.grants.lock().get(session_id).cloned();
        grant.is_some_and(|g| {
            g.try_lock().map_or(true, |g| match &*g {
                Held::Here(g) => g.sealed_refresh.is_some(),
                Held::Shared => true,
            })
        })
    }

    /// Renews a browser session whose token expires within the margin, with its refresh token.
    /// Answers the (possibly renewed) session; when renewal fails the session is ended and the
    /// error says why.
    pub async fn renew_if_due(&self, session: Arc<Session>) -> Result<Arc<Session>, SsoError> {
        let Some(sso) = &session.sso else {
            return Ok(session);
        };
        if sso.token_expires_at - now() > self.renew_margin {
            return Ok(session);
        }
        let held = self.grants.lock().get(&session.id).cloned();
        let held = match held {
            Some(held) => held,
            // A copy of a browser session another node signed in: its grant is in the store.
            None if self.catalog.shares_pending() && session.via == SignInMethod::CodeFlow => self
                .grants
                .lock()
                .entry(session.id.clone())
                .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(Held::Shared)))
                .clone(),
            None => return Ok(session),
        };
        let mut held = held.lock().await;
        // Another request may have renewed it while this one waited.
        let current = self
            .catalog
            .sessions
            .get(&session.id)
            .ok_or_else(|| refused(Reason::Renewal, "the session has ended"))?;
        if current
            .sso
            .as_ref()
            .is_some_and(|s| s.token_expires_at - now() > self.renew_margin)
        {
            return Ok(current);
        }
        let result = match &mut *held {
            Held::Here(grant) => self.renew(&current, grant).await,
            Held::Shared => self.renew_shared(&current).await,
        };
        if result.is_err() {
            // The connection is told; the event says the renewal failed.
            self.catalog
                .sessions
                .end(&session.id, portcullis_catalog::EndReason::RenewalFailed);
            self.grants.lock().remove(&session.id);
        }
        result
    }

    async fn renew(&self, session: &Session, grant: &mut Grant) -> Result<Arc<Session>, SsoError> {
        let Some(sealed) = &grant.sealed_refresh else {
            return Err(refused(
                Reason::Renewal,
                "the session's token expired and the provider gave no refresh token; sign in again",
            ));
        };
        let refresh = self
            .catalog
            .unseal(&refresh_context(&session.id), sealed)
            .map_err(|e| SsoError::Internal(e.message))?;
        let (record, props) =
            integration_now(&self.catalog, grant.integration_id, &grant.integration)?;
        let provider = self
            .sso
            .providers()
            .metadata(&props.issuer)
            .await
            .map_err(|e| refused(Reason::Renewal, format!("issuer {}: {e}", props.issuer)))?;
        let tokens = self
            .token_request(
                &record,
                &props,
                provider.metadata.token_endpoint.as_deref(),
                &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
            )
            .await
            .map_err(|e| refused(Reason::Renewal, e.to_string()))?;
        let id_token = tokens.id_token.as_deref().ok_or_else(|| {
            refused(
                Reason::Renewal,
                "the provider sent no ID token when renewing the session",
            )
        })?;
        let renewed = self
            .sso
            .renew(
                session,
                &TokenSignIn {
                    kind: TokenKind::IdToken,
                    token: id_token,
                    source_database: None,
                    database: &session.database,
                    integration: Some(&grant.integration),
                    pool_id: grant.pool_id,
                    client: &Client::new(session.peer.clone(), session.application.as_deref()),
                    via: session.via,
                    protocol: Protocol::Http,
                    nonce: None,
                },
            )
            .await?;
        if let Some(next) = &tokens.refresh_token {
            grant.sealed_refresh = Some(
                self.catalog
                    .seal(&refresh_context(&session.id), next)
                    .map_err(|e| SsoError::Internal(e.message))?,
            );
        }
        metrics::counter!(SESSIONS_RENEWED).increment(1);
        Ok(renewed)
    }

    /// Ends a session and revokes its refresh token where the provider has a revocation
    /// endpoint. Answers whether the provider confirmed the revocation.
    pub async fn sign_out(&self, session_id: &str) -> bool {
        self.catalog.sessions.remove(session_id, Reason::SignedOut);
        let held = self.grants.lock().remove(session_id);
        let here = match held {
            Some(held) => match &*held.lock().await {
                Held::Here(grant) => Some(grant.clone()),
                Held::Shared => None,
            },
            None => None,
        };
        let grant = match here {
            Some(grant) => grant,
            None => match self.take_shared_grant(session_id).await {
                Some(grant) => grant,
                None => return false,
            },
        };
        let Some(sealed) = &grant.sealed_refresh else {
            return false;
        };
        let revoked = self.revoke(session_id, &grant, sealed).await;
        if revoked {
            metrics::counter!(REFRESH_TOKENS_REVOKED).increment(1);
        }
        revoked
    }

    async fn revoke(&self, session_id: &str, grant: &Grant, sealed: &[u8]) -> bool {
        let Ok(refresh) = self.catalog.unseal(&refresh_context(session_id), sealed) else {
            return false;
        };
        let Some(record) = self
            .catalog
            .state()
            .integration_by_id(grant.integration_id)
            .cloned()
        else {
            return false;
        };
        let Ok(props) = SsoProperties::from_json(&record.properties) else {
            return false;
        };
        let Ok(provider) = self.sso.providers().metadata(&props.issuer).await else {
            return false;
        };
        let Some(endpoint) = provider.metadata.revocation_endpoint.clone() else {
            return false;
        };
        let Ok(secret) = self.catalog.client_secret(&record) else {
            return false;
        };
        match self
            .sso
            .providers()
            .fetcher()
            .post_form(
                &endpoint,
                &[("token", &refresh), ("token_type_hint", "refresh_token")],
                &props.client_id,
                secret.as_deref(),
            )
            .await
        {
            Ok((status, _)) if status.is_success() => true,
            Ok((status, _)) => {
                tracing::warn!(integration = %record.name, %status, "refresh token revocation refused");
                false
            }
            Err(e) => {
                tracing::warn!(integration = %record.name, error = %e, "refresh token revocation failed");
                false
            }
        }
    }

    /// Forgets expired flows and the grants of sessions that are gone.
    pub fn sweep(&self) {
        self.flows.sweep();
        let sessions = &self.catalog.sessions;
        self.grants
            .lock()
            .retain(|id, _| sessions.get(id).is_some());
    }

    /// Renews every browser session whose token is about to expire (the sweeper calls this,
    /// so idle sessions stay alive while their refresh token works). Several nodes: the
    /// copies of other nodes' browser sessions too.
    pub async fn renew_due(&self) {
        let mut ids: Vec<String> = self.grants.lock().keys().cloned().collect();
        if self.catalog.shares_pending() {
            let margin = now() + self.renew_margin;
            ids.extend(
                self.catalog
                    .sessions
                    .list()
                    .iter()
                    .filter(|s| s.via == SignInMethod::CodeFlow)
                    .filter(|s| s.sso.as_ref().is_some_and(|x| x.token_expires_at <= margin))
                    .map(|s| s.id.clone()),
            );
            ids.sort_unstable();
            ids.dedup();
        }
        for id in ids {
            if let Some(s) = self.catalog.sessions.get(&id) {
                if let Err(e) = self.renew_if_due(s).await {
                    tracing::info!(error = %e, "browser session ended at renewal");
                }
            }
        }
    }
}
