//! Getting an SSO token for a connection: the integration's public settings from the server
//! (`GET /v1/sso_config`), the provider's discovery document, then a cached token, a refreshed
//! one, or a new sign-in by the authorization code flow (loopback listener) or the device grant.

pub mod cache;
mod device;
mod loopback;

use std::time::Duration;

use anyhow::{bail, Context};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use portcullis_auth::oidc::authorization::TokenResponse;
use portcullis_auth::oidc::fetch::Fetcher;
use portcullis_auth::oidc::provider::{parse_discovery, ProviderMetadata};

use crate::settings::{Flow, Settings};
use cache::{CachedTokens, TokenCache};

/// A token is renewed when it expires within this many seconds.
const RENEW_MARGIN: i64 = 60;

/// The kind of token handed to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    IdToken,
    AccessToken,
}

impl TokenKind {
    pub fn user(self) -> &'static str {
        match self {
            Self::IdToken => "id_token",
            Self::AccessToken => "access_token",
        }
    }
}

/// A token ready to be given as the password.
#[derive(Clone)]
pub struct Token {
    pub kind: TokenKind,
    pub value: String,
    pub expires_at: i64,
    /// The access token of the same sign-in, for `portcullis token --access`.
    pub access_token: Option<String>,
}

/// The integration and its provider, as this client sees them.
pub struct Provider {
    pub integration: String,
    pub issuer: String,
    pub client_id: String,
    pub scopes: String,
    pub allow_offline_access: bool,
    pub metadata: ProviderMetadata,
}

impl Provider {
    fn token_endpoint(&self) -> anyhow::Result<&str> {
        self.metadata
            .token_endpoint
            .as_deref()
            .context("the provider names no token endpoint")
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The `exp` of a JWT, read without checking the signature (the server checks it; this only
/// decides when to renew).
pub fn expiry(jwt: &str) -> Option<i64> {
    let payload = jwt.split('.').nth(1)?;
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    claims.get("exp")?.as_i64()
}

/// A claim of a JWT, read without checking the signature.
pub fn claim(jwt: &str, name: &str) -> Option<serde_json::Value> {
    let payload = jwt.split('.').nth(1)?;
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    claims.get(name).cloned()
}

/// Asks the server which integration signs in, then the provider for its endpoints.
pub async fn provider(settings: &Settings, fetcher: &Fetcher) -> anyhow::Result<Provider> {
    let base = settings.http_base();
    // The same rule as the server's: https, or http to a loopback address only.
    portcullis_catalog::sso::check_issuer(&base).map_err(|_| {
        anyhow::anyhow!(
            "the server's HTTP API {base} must be https (plain http only on a loopback address)"
        )
    })?;
    let mut url = url::Url::parse(&format!("{base}/v1/sso_config")).context("bad http setting")?;
    url.query_pairs_mut()
        .append_pair("database", settings.source_database());
    if let Some(idp) = &settings.identityprovider {
        url.query_pairs_mut().append_pair("identityprovider", idp);
    }
    let mut client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10));
    if let Some(path) = &settings.sslrootcert {
        let pem = std::fs::read(path)
            .with_context(|| format!("reading sslrootcert {}", path.display()))?;
        client = client.add_root_certificate(reqwest::Certificate::from_pem(&pem)?);
    }
    let response = client
        .build()?
        .get(url.as_str())
        .send()
        .await
        .with_context(|| format!("asking {} for the SSO settings", settings.http_base()))?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    if !status.is_success() {
        bail!(
            "the server refused SSO for database \"{}\": {}",
            settings.source_database(),
            body["status"]["reason"].as_str().unwrap_or(status.as_str())
        );
    }
    let text = |k: &str| body[k].as_str().map(str::to_owned).unwrap_or_default();
    let issuer = text("issuer");
    portcullis_catalog::sso::check_issuer(&issuer)
        .map_err(|e| anyhow::anyhow!("the server named an unusable provider: {}", e.message))?;
    let doc = fetcher
        .get_json(&format!("{issuer}/.well-known/openid-configuration"))
        .await
        .with_context(|| format!("fetching the discovery document of {issuer}"))?;
    let metadata = parse_discovery(&issuer, &doc)?;
    Ok(Provider {
        integration: text("integration"),
        client_id: text("client_id"),
        scopes: text("scopes"),
        allow_offline_access: body["allow_offline_access"].as_bool().unwrap_or(false),
        issuer,
        metadata,
    })
}

/// A fresh token: from the cache, refreshed, or from a new sign-in (which may open a browser).
pub async fn obtain(settings: &Settings) -> anyhow::Result<Token> {
    let fetcher = Fetcher::new(Duration::from_secs(15))?;
    let provider = provider(settings, &fetcher).await?;
    let cache = TokenCache::new(settings.token_cache.clone())?;
    let key = cache::key(
        &provider.issuer,
        &provider.client_id,
        settings.login_hint.as_deref(),
    );
    if let Some(cached) = cache.get(&key) {
        if let Some(token) = usable(&cached) {
            return Ok(token);
        }
        if let Some(refresh) = &cached.refresh_token {
            match refresh_tokens(&fetcher, &provider, settings, refresh).await {
                Ok(mut fresh) => {
                    if fresh.refresh_token.is_none() {
                        fresh.refresh_token = Some(refresh.clone());
                    }
                    if let Some(token) = usable(&fresh) {
                        cache.put(&key, Some(fresh))?;
                        eprintln!("Signed in with a refreshed token.");
                        return Ok(token);
                    }
                }
                Err(e) => {
                    eprintln!("The cached sign-in could not be renewed ({e:#}); signing in again.")
                }
            }
        }
        cache.put(&key, None)?;
    }
    let response = match settings.flow {
        Flow::AuthenticationCode => loopback::sign_in(&fetcher, &provider, settings).await?,
        Flow::DeviceGrant => device::sign_in(&fetcher, &provider, settings).await?,
    };
    let tokens = cached_tokens(&response);
    let token = usable(&tokens).context("the provider sent no usable token")?;
    cache.put(&key, Some(tokens))?;
    Ok(token)
}

fn cached_tokens(r: &TokenResponse) -> CachedTokens {
    let expires_at = r
        .id_token
        .as_deref()
        .or(r.access_token.as_deref())
        .and_then(expiry)
        .unwrap_or(0);
    CachedTokens {
        id_token: r.id_token.clone(),
        access_token: r.access_token.clone(),
        refresh_token: r.refresh_token.clone(),
        expires_at,
    }
}

/// The ID token (else the access token) when it is valid for more than the margin.
fn usable(t: &CachedTokens) -> Option<Token> {
    let pick = |value: &Option<String>, kind| {
        let value = value.as_ref()?;
        let exp = expiry(value)?;
        (exp - now() > RENEW_MARGIN).then(|| Token {
            kind,
            value: value.clone(),
            expires_at: exp,
            access_token: t.access_token.clone(),
        })
    };
    pick(&t.id_token, TokenKind::IdToken).or_else(|| pick(&t.access_token, TokenKind::AccessToken))
}

async fn refresh_tokens(
    fetcher: &Fetcher,
    provider: &Provider,
    settings: &Settings,
    refresh: &str,
) -> anyhow::Result<CachedTokens> {
    let (status, body) = fetcher
        .post_form(
            provider.token_endpoint()?,
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
            &provider.client_id,
            settings.client_secret.as_deref(),
        )
        .await?;
    let r = TokenResponse::from_json(status.as_u16(), &body).map_err(anyhow::Error::msg)?;
    Ok(cached_tokens(&r))
}
