//! The device authorization grant (RFC 8628), run by the server for clients that cannot open a
//! browser: ask the provider for a device code, show the user code, then poll the token
//! endpoint honouring `interval` (default 5 s), `slow_down` (+5 s for good),
//! `authorization_pending`, `access_denied` and `expired_token`, backing off on transport
//! errors. On approval the ID token signs in exactly as in the token flow. The device code
//! itself is a secret: it never leaves this module.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use portcullis_catalog::sso::SsoProperties;
use portcullis_catalog::{Catalog, Client, Protocol, Reason, Session, SignInMethod};
use portcullis_store::SsoIntegrationRecord;

use crate::oidc::authorization::{scopes, DeviceAuthorization, DevicePoll};
use crate::oidc::TokenKind;
use crate::sso::{integration_now, FlowIntegration, IntegrationChoice};
use crate::{SsoAuthenticator, SsoError, TokenSignIn};

/// RFC 8628 §3.5: what every `slow_down` adds, for this and all later polls.
const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);
/// The longest wait between polls after transport errors.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Who asks for a device sign-in.
#[derive(Debug, Clone, Copy)]
pub struct DeviceRequest<'a> {
    /// The database the session will be in.
    pub database: &'a str,
    /// The database whose integration signs in (`@source_db`); the target when `None`.
    pub source_database: Option<&'a str>,
    /// `identityprovider`: a named integration.
    pub integration: Option<&'a str>,
    pub pool_id: Option<i64>,
}

/// What the user is shown.
#[derive(Debug, Clone)]
pub struct DeviceCode {
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    pub user_code: String,
    pub expires_in: Duration,
}

/// A device sign-in in progress.
pub struct DeviceGrant {
    pub code: DeviceCode,
    /// The provider's device code: a bearer secret, never shown or logged.
    device_code: String,
    integration_id: i64,
    integration: String,
    token_endpoint: String,
    database: String,
    source_database: Option<String>,
    pool_id: Option<i64>,
    interval: Duration,
    backoff: u32,
    next_poll: Instant,
    deadline: Instant,
}

impl std::fmt::Debug for DeviceGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceGrant")
            .field("user_code", &self.code.user_code)
            .field("integration", &self.integration)
            .field("database", &self.database)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl DeviceGrant {
    pub fn database(&self) -> &str {
        &self.database
    }

    /// The current poll interval (grows with every `slow_down`).
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Whether the device code's lifetime is over.
    pub fn expired(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// When the next poll is due.
    pub fn next_poll(&self) -> Instant {
        self.next_poll
    }
}

/// What one poll found.
#[derive(Debug)]
pub enum Poll {
    /// The user has not approved yet.
    Pending,
    /// Approved: the session is open.
    Approved(Arc<Session>),
}

/// Device grants started, polls sent, grants approved (`/metrics`).
pub const DEVICE_STARTED: &str = "portcullis_sso_device_started_total";
pub const DEVICE_POLLS: &str = "portcullis_sso_device_polls_total";
pub const DEVICE_APPROVED: &str = "portcullis_sso_device_approved_total";

fn refused(reason: Reason, detail: impl Into<String>) -> SsoError {
    SsoError::refused(reason, detail)
}

/// A held grant as kept in the store several nodes share (sealed there: it holds the device
/// code), so that `verify` on any node can poll it.
#[derive(serde::Serialize, serde::Deserialize)]
struct SharedGrant {
    verification_uri: String,
    verification_uri_complete: Option<String>,
    user_code: String,
    device_code: String,
    integration_id: i64,
    integration: String,
    token_endpoint: String,
    database: String,
    source_database: Option<String>,
    pool_id: Option<i64>,
    interval_ms: u64,
    /// Unix seconds at which the device code expires.
    expires_at: i64,
}

impl SharedGrant {
    fn of(grant: &DeviceGrant) -> Self {
        let left = grant.deadline.saturating_duration_since(Instant::now());
        Self {
            verification_uri: grant.code.verification_uri.clone(),
            verification_uri_complete: grant.code.verification_uri_complete.clone(),
            user_code: grant.code.user_code.clone(),
            device_code: grant.device_code.clone(),
            integration_id: grant.integration_id,
            integration: grant.integration.clone(),
            token_endpoint: grant.token_endpoint.clone(),
            database: grant.database.clone(),
            source_database: grant.source_database.clone(),
            pool_id: grant.pool_id,
            interval_ms: u64::try_from(grant.interval.as_millis()).unwrap_or(u64::MAX),
            expires_at: unix_now() + i64::try_from(left.as_secs()).unwrap_or(i64::MAX / 2),
        }
    }

    fn grant(self) -> DeviceGrant {
        let left = Duration::from_secs(u64::try_from(self.expires_at - unix_now()).unwrap_or(0));
        let now = Instant::now();
        let interval = Duration::from_millis(self.interval_ms);
        DeviceGrant {
            code: DeviceCode {
                verification_uri: self.verification_uri,
                verification_uri_complete: self.verification_uri_complete,
                user_code: self.user_code,
                expires_in: left,
            },
            device_code: self.device_code,
            integration_id: self.integration_id,
            integration: self.integration,
            token_endpoint: self.token_endpoint,
            database: self.database,
            source_database: self.source_database,
            pool_id: self.pool_id,
            interval,
            backoff: 0,
            // Polled on the other node until now: the first poll here waits a whole interval.
            next_poll: now + interval,
            deadline: now + left,
        }
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The store key of a held grant (the handle is 256 random bits).
fn shared_key(handle: &str) -> String {
    format!("device:{handle}")
}

/// Starts and polls device sign-ins; holds the ones started over HTTP until they are verified.
pub struct DeviceFlow {
    catalog: Arc<Catalog>,
    sso: Arc<SsoAuthenticator>,
    /// Grants started by `POST /v1/sso_device_grant`, by user code.
    held: Mutex<HashMap<String, Arc<tokio::sync::Mutex<DeviceGrant>>>>,
    capacity: usize,
}

impl DeviceFlow {
    pub fn new(catalog: Arc<Catalog>, sso: Arc<SsoAuthenticator>) -> Self {
        Self {
            catalog,
            sso,
            held: Mutex::new(HashMap::new()),
            capacity: 10_000,
        }
    }

    /// Asks the integration's provider for a device code.
    pub async fn start(&self, req: &DeviceRequest<'_>) -> Result<DeviceGrant, SsoError> {
        let state = self.catalog.state();
        if state.database(req.database).is_none() {
            return Err(SsoError::NoDatabase(req.database.to_owned()));
        }
        drop(state);
        let FlowIntegration {
            record,
            props,
            provider,
        } = self
            .sso
            .flow_integration(IntegrationChoice {
                source_database: req.source_database,
                database: req.database,
                integration: req.integration,
                pool_id: req.pool_id,
            })
            .await?;
        let endpoint = provider
            .metadata
            .device_authorization_endpoint
            .clone()
            .ok_or_else(|| {
                refused(
                    Reason::ProviderDiscovery,
                    format!(
                        "the provider of SSO integration \"{}\" offers no device authorization \
                         endpoint; use the authorization code flow or a token",
                        record.name
                    ),
                )
            })?;
        let token_endpoint = provider.metadata.token_endpoint.clone().ok_or_else(|| {
            refused(
                Reason::ProviderDiscovery,
                "the provider names no token endpoint",
            )
        })?;
        let scope = scopes(&props);
        let (status, body) = self
            .post(&record, &props, &endpoint, &[("scope", &scope)])
            .await
            .map_err(|e| refused(Reason::ProviderDeviceAuthorization, e))?;
        let answer = DeviceAuthorization::from_json(status.as_u16(), &body)
            .map_err(|e| refused(Reason::ProviderDeviceAuthorization, e))?;
        let now = Instant::now();
        metrics::counter!(DEVICE_STARTED).increment(1);
        Ok(DeviceGrant {
            code: DeviceCode {
                verification_uri: answer.verification_uri,
                verification_uri_complete: answer.verification_uri_complete,
                user_code: answer.user_code,
                expires_in: answer.expires_in,
            },
            device_code: answer.device_code,
            integration_id: record.id,
            integration: record.name.clone(),
            token_endpoint,
            database: req.database.to_owned(),
            source_database: req.source_database.map(str::to_owned),
            pool_id: req.pool_id,
            interval: answer.interval,
            backoff: 0,
            next_poll: now + answer.interval,
            deadline: now + answer.expires_in,
        })
    }

    /// Waits until the next poll is due and polls once. `Err` ends the sign-in: denied,
    /// expired, or a token that does not sign in.
    pub async fn poll(
        &self,
        grant: &mut DeviceGrant,
        client: &Client,
        protocol: Protocol,
    ) -> Result<Poll, SsoError> {
        if grant.expired() {
            return Err(expired());
        }
        tokio::time::sleep_until(grant.next_poll.min(grant.deadline).into()).await;
        if grant.expired() {
            return Err(expired());
        }
        metrics::counter!(DEVICE_POLLS).increment(1);
        let (record, props) =
            integration_now(&self.catalog, grant.integration_id, &grant.integration)?;
        if props.disabled {
            return Err(SsoError::Disabled(record.name.clone()));
        }
        let answer = self
            .post(
                &record,
                &props,
                &grant.token_endpoint,
                &[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                    ("device_code", &grant.device_code),
                ],
            )
            .await;
        let (status, body) = match answer {
            Ok(a) => a,
            Err(e) => {
                // RFC 8628 §3.5: back off on transport errors, keep polling.
                grant.backoff = (grant.backoff + 1).min(4);
                let wait = (grant.interval * 2u32.pow(grant.backoff)).min(MAX_BACKOFF);
                tracing::info!(integration = %grant.integration, error = %e, wait_s = wait.as_secs(), "device grant poll failed; backing off");
                grant.next_poll = Instant::now() + wait;
                return Ok(Poll::Pending);
            }
        };
        grant.backoff = 0;
        let tokens = match DevicePoll::from_json(status.as_u16(), &body) {
            DevicePoll::Pending => {
                grant.next_poll = Instant::now() + grant.interval;
                return Ok(Poll::Pending);
            }
            DevicePoll::SlowDown => {
                grant.interval += SLOW_DOWN_STEP;
                grant.next_poll = Instant::now() + grant.interval;
                return Ok(Poll::Pending);
            }
            DevicePoll::Denied => {
                return Err(refused(
                    Reason::DeviceGrant,
                    "the sign-in was denied at the identity provider",
                ))
            }
            DevicePoll::Expired => return Err(expired()),
            DevicePoll::Failed(e) => return Err(refused(Reason::DeviceGrant, e)),
            DevicePoll::Approved(tokens) => tokens,
        };
        let (kind, token) = match (tokens.id_token, tokens.access_token) {
            (Some(t), _) => (TokenKind::IdToken, t),
            (None, Some(t)) => (TokenKind::AccessToken, t),
            (None, None) => {
                return Err(refused(
                    Reason::DeviceGrant,
                    "the provider approved the sign-in but sent no token",
                ))
            }
        };
        let session = self
            .sso
            .sign_in(&TokenSignIn {
                kind,
                token: &token,
                source_database: grant.source_database.as_deref(),
                database: &grant.database,
                integration: Some(&grant.integration),
                pool_id: grant.pool_id,
                client,
                via: SignInMethod::DeviceGrant,
                protocol,
                nonce: None,
            })
            .await?;
        metrics::counter!(DEVICE_APPROVED).increment(1);
        Ok(Poll::Approved(session))
    }

    async fn post(
        &self,
        record: &SsoIntegrationRecord,
        props: &SsoProperties,
        endpoint: &str,
        form: &[(&str, &str)],
    ) -> Result<(reqwest::StatusCode, serde_json::Value), String> {
        let secret = self.catalog.client_secret(record).map_err(|e| e.message)?;
        self.sso
            .providers()
            .fetcher()
            .post_form(endpoint, form, &props.client_id, secret.as_deref())
            .await
            .map_err(|e| e.0)
    }

    /// Keeps a grant started over HTTP until `verify` finishes it. With several nodes it is
    /// also kept, sealed, in the store they share, so that `verify` may come to any of them.
    pub async fn hold(&self, grant: DeviceGrant) -> Result<(DeviceCode, String), SsoError> {
        let code = grant.code.clone();
        // The handle, not the user code, names the held grant: the user code is public (the
        // person types it at the provider, it is short and can be shoulder-surfed), so it
        // must not be what claims the session.
        let handle = crate::oidc::authorization::random_value();
        let shared = {
            let mut held = self.held.lock();
            if held.len() >= self.capacity {
                held.retain(|_, g| g.try_lock().map_or(true, |g| !g.expired()));
                if held.len() >= self.capacity {
                    return Err(refused(
                        Reason::Capacity,
                        "too many device sign-ins are waiting; try again later",
                    ));
                }
            }
            let shared = self
                .catalog
                .shares_pending()
                .then(|| SharedGrant::of(&grant));
            held.insert(handle.clone(), Arc::new(tokio::sync::Mutex::new(grant)));
            shared
        };
        if let Some(shared) = shared {
            let ttl = (shared.expires_at - unix_now()).max(1);
            if let Err(e) = self
                .catalog
                .put_pending(&shared_key(&handle), &shared, ttl)
                .await
            {
                self.held.lock().remove(&handle);
                return Err(SsoError::Internal(e.message));
            }
        }
        Ok((code, handle))
    }

    /// The held grant of `handle`: this node's, or (several nodes) the one another node
    /// started, which this node holds from now on.
    async fn held_grant(
        &self,
        handle: &str,
    ) -> Result<Option<Arc<tokio::sync::Mutex<DeviceGrant>>>, SsoError> {
        let local = self.held.lock().get(handle).cloned();
        if !self.catalog.shares_pending() {
            return Ok(local);
        }
        // Several nodes: the store says whether the grant is still waiting (another node may
        // have finished it since this one last polled it).
        let shared: Option<SharedGrant> = self
            .catalog
            .peek_pending(&shared_key(handle))
            .await
            .map_err(|e| SsoError::Internal(e.message))?;
        let Some(shared) = shared else {
            self.held.lock().remove(handle);
            return Ok(None);
        };
        if local.is_some() {
            return Ok(local);
        }
        let grant = Arc::new(tokio::sync::Mutex::new(shared.grant()));
        Ok(Some(
            self.held
                .lock()
                .entry(handle.to_owned())
                .or_insert(grant)
                .clone(),
        ))
    }

    /// Forgets a finished grant here and, with several nodes, in the store.
    async fn forget(&self, handle: &str) {
        self.held.lock().remove(handle);
        if self.catalog.shares_pending() {
            let gone: Result<Option<SharedGrant>, _> =
                self.catalog.take_pending(&shared_key(handle)).await;
            if let Err(e) = gone {
                tracing::warn!(error = %e.message, "could not forget a finished device sign-in in the store");
            }
        }
    }

    /// Polls a held grant until it is approved, refused, or `timeout` passes. Approval and
    /// refusal forget the grant; a timeout keeps it for the next call.
    pub async fn verify(
        &self,
        handle: &str,
        database: &str,
        timeout: Duration,
        client: &Client,
    ) -> Result<Option<Arc<Session>>, SsoError> {
        let unknown = || {
            refused(
                Reason::UserCode,
                format!(
                    "no device sign-in with this handle is waiting for database \"{database}\" \
                     (unknown, finished or expired); start a new one"
                ),
            )
        };
        let grant = self.held_grant(handle).await?.ok_or_else(unknown)?;
        let until = Instant::now() + timeout;
        let mut grant = match tokio::time::timeout_at(until.into(), grant.lock()).await {
            Ok(g) => g,
            Err(_) => return Ok(None),
        };
        if grant.database != database {
            return Err(unknown());
        }
        loop {
            if grant.next_poll.min(grant.deadline) > until {
                tokio::time::sleep_until(until.into()).await;
                return Ok(None);
            }
            match self.poll(&mut grant, client, Protocol::Http).await {
                Ok(Poll::Pending) => continue,
                Ok(Poll::Approved(session)) => {
                    self.forget(handle).await;
                    return Ok(Some(session));
                }
                Err(e) => {
                    self.forget(handle).await;
                    return Err(e);
                }
            }
        }
    }

    /// Forgets held grants whose device code expired.
    pub fn sweep(&self) {
        self.held
            .lock()
            .retain(|_, g| g.try_lock().map_or(true, |g| !g.expired()));
    }

    pub fn held(&self) -> usize {
        self.held.lock().len()
    }
}

fn expired() -> SsoError {
    refused(
        Reason::DeviceGrant,
        "the device code expired before the sign-in was approved; start again",
    )
}
