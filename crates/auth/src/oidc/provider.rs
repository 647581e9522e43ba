//! OpenID Provider metadata and signing keys, cached per issuer.
//!
//! The discovery document comes from `<issuer>/.well-known/openid-configuration` and must name
//! exactly that issuer; the key set from its `jwks_uri`. A token naming a key the cache does not
//! know triggers one refetch, at most once per `min_refresh` per issuer. When the provider is
//! unreachable the cached keys keep working. Keys that cannot verify signatures (symmetric
//! keys, encryption keys, unknown curves, short RSA moduli) are skipped with a reason.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use parking_lot::{Mutex, RwLock};
use portcullis_catalog::sso::check_issuer;

use super::fetch::{FetchError, Fetcher};

/// Key-set (discovery + JWKS) fetches, by issuer and result.
pub const KEY_REFRESHES: &str = "portcullis_key_refreshes_total";

/// The shortest RSA modulus accepted (RFC 7518 §3.3).
const MIN_RSA_BITS: usize = 2048;

/// What the server uses from a discovery document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub jwks_uri: String,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub device_authorization_endpoint: Option<String>,
    pub revocation_endpoint: Option<String>,
    /// OIDC Core 5.3: asked for claims an access token does not carry.
    pub userinfo_endpoint: Option<String>,
    /// RFC 9207: the provider sends `iss` with every authorization response.
    pub iss_parameter_supported: bool,
}

/// The kind of a verification key, which fixes the algorithms it may verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFamily {
    Rsa,
    EcP256,
    EcP384,
    Ed25519,
}

impl KeyFamily {
    pub fn allows(self, alg: Algorithm) -> bool {
        use Algorithm::*;
        match self {
            Self::Rsa => matches!(alg, RS256 | RS384 | RS512 | PS256 | PS384 | PS512),
            Self::EcP256 => alg == ES256,
            Self::EcP384 => alg == ES384,
            Self::Ed25519 => alg == EdDSA,
        }
    }
}

/// One usable verification key.
pub struct SigningKey {
    pub kid: Option<String>,
    /// The key's own `alg`, when the key set names one.
    pub alg: Option<Algorithm>,
    pub family: KeyFamily,
    pub key: DecodingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("family", &self.family)
            .finish()
    }
}

/// A provider's metadata and keys as fetched at one moment.
#[derive(Debug)]
pub struct ProviderKeys {
    pub metadata: ProviderMetadata,
    pub keys: Vec<Arc<SigningKey>>,
    /// Keys of the set that were not usable, with why.
    pub skipped: Vec<String>,
    pub fetched_at: Instant,
}

impl ProviderKeys {
    /// The key a token header names: by `kid`, or the only key fitting `alg` when there is no
    /// `kid`. The key's family (and its own `alg`, when given) must fit the header's `alg`.
    pub fn find(&self, kid: Option<&str>, alg: Algorithm) -> Result<Arc<SigningKey>, KeyError> {
        let fits = |k: &&Arc<SigningKey>| k.family.allows(alg) && k.alg.is_none_or(|a| a == alg);
        match kid {
            Some(kid) => {
                let Some(key) = self.keys.iter().find(|k| k.kid.as_deref() == Some(kid)) else {
                    return Err(KeyError::UnknownKid(kid.to_owned()));
                };
                if fits(&key) {
                    Ok(key.clone())
                } else {
                    Err(KeyError::WrongAlgorithm {
                        kid: kid.to_owned(),
                        alg,
                    })
                }
            }
            None => {
                let mut fitting = self.keys.iter().filter(fits);
                match (fitting.next(), fitting.next()) {
                    (Some(k), None) => Ok(k.clone()),
                    (None, _) => Err(KeyError::NoKeyForAlgorithm(alg)),
                    (Some(_), Some(_)) => Err(KeyError::AmbiguousKey(alg)),
                }
            }
        }
    }
}

/// Why no key could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the provider's key set has no key with kid \"{0}\"")]
    UnknownKid(String),
    #[error("key \"{kid}\" cannot verify {alg:?} signatures")]
    WrongAlgorithm { kid: String, alg: Algorithm },
    #[error("the token names no kid and the provider has no key for {0:?}")]
    NoKeyForAlgorithm(Algorithm),
    #[error("the token names no kid and the provider has several keys for {0:?}")]
    AmbiguousKey(Algorithm),
    #[error("the provider's metadata could not be fetched: {0}")]
    Unavailable(String),
}

/// Parses a discovery document fetched for `issuer`.
pub fn parse_discovery(
    issuer: &str,
    doc: &serde_json::Value,
) -> Result<ProviderMetadata, FetchError> {
    let text = |name: &str| doc.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    let found =
        text("issuer").ok_or_else(|| FetchError("the discovery document has no issuer".into()))?;
    if found != issuer {
        return Err(FetchError(format!(
            "the discovery document names issuer \"{found}\", not \"{issuer}\" (they must be equal)"
        )));
    }
    let jwks_uri = text("jwks_uri")
        .ok_or_else(|| FetchError("the discovery document has no jwks_uri".into()))?;
    // Every endpoint the server will call: https, or http on a loopback address only (the
    // same rule as the issuer), so an integration cannot point the server at internal http
    // services.
    for name in [
        "jwks_uri",
        "authorization_endpoint",
        "token_endpoint",
        "device_authorization_endpoint",
        "revocation_endpoint",
        "userinfo_endpoint",
    ] {
        if let Some(url) = text(name) {
            check_issuer(&url).map_err(|_| {
                FetchError(format!(
                    "{name} \"{url}\" must be an https URL (http only on a loopback address)"
                ))
            })?;
        }
    }
    Ok(ProviderMetadata {
        issuer: found,
        jwks_uri,
        authorization_endpoint: text("authorization_endpoint"),
        token_endpoint: text("token_endpoint"),
        device_authorization_endpoint: text("device_authorization_endpoint"),
        revocation_endpoint: text("revocation_endpoint"),
        userinfo_endpoint: text("userinfo_endpoint"),
        iss_parameter_supported: doc
            .get("authorization_response_iss_parameter_supported")
            .and_then(|v| v.as_bool())
            .unwrap_or(false),
    })
}

/// Parses a JWK set into usable keys (and reasons for the skipped ones).
pub fn parse_jwks(
    doc: &serde_json::Value,
) -> Result<(Vec<Arc<SigningKey>>, Vec<String>), FetchError> {
    let Some(list) = doc.get("keys").and_then(|k| k.as_array()) else {
        return Err(FetchError("the key set has no \"keys\" array".into()));
    };
    let mut keys = Vec::new();
    let mut skipped = Vec::new();
    for (i, raw) in list.iter().enumerate() {
        let label = raw
            .get("kid")
            .and_then(|k| k.as_str())
            .map_or_else(|| format!("key #{i}"), |k| format!("key \"{k}\""));
        match usable_key(raw) {
            Ok(k) => keys.push(Arc::new(k)),
            Err(why) => skipped.push(format!("{label}: {why}")),
        }
    }
    Ok((keys, skipped))
}

fn usable_key(raw: &serde_json::Value) -> Result<SigningKey, String> {
    let jwk: Jwk = serde_json::from_value(raw.clone()).map_err(|e| format!("unreadable ({e})"))?;
    if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
        return Err("not a signing key (use is not \"sig\")".into());
    }
    if let Some(ops) = &jwk.common.key_operations {
        if !ops.contains(&KeyOperations::Verify) {
            return Err("key_ops does not include \"verify\"".into());
        }
    }
    let family = match &jwk.algorithm {
        AlgorithmParameters::RSA(p) => {
            let bits = URL_SAFE_NO_PAD
                .decode(p.n.trim_end_matches('='))
                .map_err(|_| "bad RSA modulus".to_owned())?
                .iter()
                .skip_while(|b| **b == 0)
                .count()
                * 8;
            if bits < MIN_RSA_BITS {
                return Err(format!("RSA modulus of {bits} bits is too short"));
            }
            KeyFamily::Rsa
        }
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => KeyFamily::EcP256,
            EllipticCurve::P384 => KeyFamily::EcP384,
            _ => return Err("unsupported curve".into()),
        },
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            KeyFamily::Ed25519
        }
        AlgorithmParameters::OctetKey(_) => {
            return Err("symmetric keys are never used to verify provider tokens".into())
        }
        _ => return Err("unsupported key type".into()),
    };
    let alg = match jwk.common.key_algorithm {
        None => None,
        Some(a) => {
            let alg = format!("{a:?}")
                .parse::<Algorithm>()
                .map_err(|_| format!("alg {a:?} is not a signature algorithm"))?;
            if !family.allows(alg) {
                return Err(format!("alg {alg:?} does not fit the key type"));
            }
            Some(alg)
        }
    };
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| format!("unusable ({e})"))?;
    Ok(SigningKey {
        kid: jwk.common.key_id.clone(),
        alg,
        family,
        key,
    })
}

/// At most one fetch of an issuer per this long for unknown kids, whoever asks (a small global
/// cap): a later one waits for its turn instead of being refused, so a stream of bogus kids
/// delays a real, newly rotated key by at most this much.
const MIN_FETCH_SPACING: Duration = Duration::from_secs(1);
/// Kids remembered per issuer (the oldest are forgotten first).
const KIDS_REMEMBERED: usize = 1024;

#[derive(Default)]
struct Entry {
    current: Option<Arc<ProviderKeys>>,
    last_attempt: Option<Instant>,
    last_error: Option<String>,
    /// When a fetch was last made for each unknown kid: one kid is refetched at most once per
    /// `min_refresh`, so one attacker's kid cannot spend the allowance of another.
    kid_tries: HashMap<String, Instant>,
}

impl Entry {
    fn kid_tried_recently(&self, kid: &str, min_refresh: Duration) -> bool {
        self.kid_tries
            .get(kid)
            .is_some_and(|t| t.elapsed() < min_refresh)
    }

    fn remember_kid(&mut self, kid: &str) {
        if self.kid_tries.len() >= KIDS_REMEMBERED {
            if let Some(oldest) = self
                .kid_tries
                .iter()
                .min_by_key(|(_, t)| **t)
                .map(|(k, _)| k.clone())
            {
                self.kid_tries.remove(&oldest);
            }
        }
        self.kid_tries.insert(kid.to_owned(), Instant::now());
    }
}

/// The per-issuer cache.
pub struct ProviderCache {
    fetcher: Fetcher,
    min_refresh: Duration,
    /// How old a cached key set may get before it is fetched again: a key the provider
    /// withdrew stops being trusted within this long. The periodic sweep refreshes sets before
    /// that (off the sign-in path); a lookup that meets an older set fetches first. While the
    /// provider is down the last good set stays in use.
    max_age: Duration,
    entries: RwLock<HashMap<String, Entry>>,
    refresh_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Tokens these keys verified (a hit needs the key the lookup finds now).
    pub verified: super::verified::VerifiedTokens,
}

/// What a lookup found, for EXPLAIN AUTHENTICATION.
#[derive(Debug, Clone)]
pub struct Lookup {
    pub provider: Arc<ProviderKeys>,
    pub key: Result<Arc<SigningKey>, KeyError>,
    /// Whether this lookup fetched from the provider.
    pub fetched: bool,
}

impl ProviderCache {
    pub fn new(
        fetch_timeout: Duration,
        min_refresh: Duration,
        max_age: Duration,
    ) -> Result<Self, FetchError> {
        Ok(Self {
            fetcher: Fetcher::new(fetch_timeout)?,
            min_refresh,
            max_age,
            entries: RwLock::new(HashMap::new()),
            refresh_locks: Mutex::new(HashMap::new()),
            verified: Default::default(),
        })
    }

    /// The HTTP client (no redirects, time and size limits) for the provider's endpoints.
    pub fn fetcher(&self) -> &Fetcher {
        &self.fetcher
    }

    /// The cached metadata of an issuer, fetching it when there is none.
    pub async fn metadata(&self, issuer: &str) -> Result<Arc<ProviderKeys>, KeyError> {
        if let Some(p) = self.cached(issuer) {
            return Ok(p);
        }
        self.refresh(issuer, None).await;
        self.cached(issuer)
            .ok_or_else(|| KeyError::Unavailable(self.last_error(issuer)))
    }

    fn cached(&self, issuer: &str) -> Option<Arc<ProviderKeys>> {
        self.entries
            .read()
            .get(issuer)
            .and_then(|e| e.current.clone())
    }

    fn last_error(&self, issuer: &str) -> String {
        self.entries
            .read()
            .get(issuer)
            .and_then(|e| e.last_error.clone())
            .unwrap_or_else(|| "not fetched yet".into())
    }

    /// The key for a token of `issuer` with header `kid`/`alg`.
    pub async fn key(
        &self,
        issuer: &str,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Lookup, KeyError> {
        if let Some(p) = self.cached(issuer) {
            if p.fetched_at.elapsed() >= self.max_age {
                self.refresh_aged(issuer).await;
            } else if let Ok(key) = p.find(kid, alg) {
                return Ok(Lookup {
                    provider: p,
                    key: Ok(key),
                    fetched: false,
                });
            }
        }
        let fetched = self.refresh(issuer, Some((kid, alg))).await;
        let provider = self
            .cached(issuer)
            .ok_or_else(|| KeyError::Unavailable(self.last_error(issuer)))?;
        let key = provider.find(kid, alg);
        Ok(Lookup {
            provider,
            key,
            fetched,
        })
    }

    /// Refetches the issuer's metadata and keys for a wanted key that is not cached, unless
    /// that kid was already fetched for within `min_refresh` (or another task just fetched and
    /// the key is now there). Fetches of one issuer are at least [`MIN_FETCH_SPACING`] apart: a
    /// request that comes sooner waits its turn. Returns whether it fetched.
    async fn refresh(&self, issuer: &str, wanted: Option<(Option<&str>, Algorithm)>) -> bool {
        let lock = self.refresh_lock(issuer);
        let _guard = lock.lock().await;
        let kid = wanted
            .map(|(kid, alg)| kid.map_or_else(|| format!("(no kid, {alg:?})"), str::to_owned));
        let wait = {
            let entries = self.entries.read();
            match entries.get(issuer) {
                Some(e) => {
                    let found = match (&e.current, wanted) {
                        (Some(p), Some((kid, alg))) => p.find(kid, alg).is_ok(),
                        (Some(_), None) => true,
                        (None, _) => false,
                    };
                    let tried = match &kid {
                        Some(k) => e.kid_tried_recently(k, self.min_refresh),
                        // metadata only: the last attempt of any kind counts
                        None => e
                            .last_attempt
                            .is_some_and(|t| t.elapsed() < self.min_refresh),
                    };
                    if found || tried {
                        return false;
                    }
                    e.last_attempt
                        .map(|t| MIN_FETCH_SPACING.saturating_sub(t.elapsed()))
                        .unwrap_or_default()
                }
                None => Duration::ZERO,
            }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        self.fetch_into(issuer, kid.as_deref()).await;
        true
    }

    /// Fetches every cached issuer whose key set is within a minute of `max_age` (called
    /// periodically, off the sign-in path): withdrawn keys stop being trusted; a failed fetch
    /// keeps the last good set.
    pub async fn refresh_stale(&self) {
        let soon = self.max_age.saturating_sub(Duration::from_secs(60));
        let stale: Vec<String> = self
            .entries
            .read()
            .iter()
            .filter(|(_, e)| {
                e.current
                    .as_ref()
                    .is_some_and(|p| p.fetched_at.elapsed() >= soon)
            })
            .map(|(issuer, _)| issuer.clone())
            .collect();
        for issuer in stale {
            self.refresh_aged(&issuer).await;
        }
    }

    /// Fetches an issuer whose set is old, unless another task just did (or a fetch failed
    /// within `min_refresh`: the last good set then stays in use).
    async fn refresh_aged(&self, issuer: &str) {
        let lock = self.refresh_lock(issuer);
        let _guard = lock.lock().await;
        let due = self.entries.read().get(issuer).is_some_and(|e| {
            let aged = e.current.as_ref().is_none_or(|p| {
                p.fetched_at.elapsed() >= self.max_age.saturating_sub(Duration::from_secs(60))
            });
            // A provider that just failed is not asked again within `min_refresh`; otherwise
            // only the spacing between fetches applies.
            let wait = if e.last_error.is_some() {
                self.min_refresh.max(MIN_FETCH_SPACING)
            } else {
                MIN_FETCH_SPACING
            };
            let tried = e.last_attempt.is_some_and(|t| t.elapsed() < wait);
            aged && !tried
        });
        if due {
            self.fetch_into(issuer, None).await;
        }
    }

    /// When the issuer's key set was fetched, and when an unknown `kid` may next be fetched
    /// for (for EXPLAIN AUTHENTICATION).
    pub fn refetch_status(&self, issuer: &str, kid: Option<&str>) -> String {
        let entries = self.entries.read();
        let Some(e) = entries.get(issuer) else {
            return "not fetched yet".into();
        };
        let fetched = e.current.as_ref().map_or_else(
            || "no key set yet".to_owned(),
            |p| format!("key set fetched {} s ago", p.fetched_at.elapsed().as_secs()),
        );
        let next = kid
            .and_then(|k| e.kid_tries.get(k))
            .map(|t| self.min_refresh.saturating_sub(t.elapsed()))
            .filter(|d| !d.is_zero())
            .map_or_else(
                || "a refetch for an unknown kid is allowed now".to_owned(),
                |d| format!("a refetch for this kid is allowed in {} s", d.as_secs() + 1),
            );
        format!("{fetched}; {next}")
    }

    /// The lock one issuer's fetches take turns on.
    fn refresh_lock(&self, issuer: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.refresh_locks
            .lock()
            .entry(issuer.to_owned())
            .or_default()
            .clone()
    }

    async fn fetch_into(&self, issuer: &str, kid: Option<&str>) {
        let result = self.fetch(issuer).await;
        let mut entries = self.entries.write();
        let entry = entries.entry(issuer.to_owned()).or_default();
        entry.last_attempt = Some(Instant::now());
        if let Some(k) = kid {
            entry.remember_kid(k);
        }
        match result {
            Ok(p) => {
                metrics::counter!(KEY_REFRESHES, "issuer" => issuer.to_owned(), "result" => "ok")
                    .increment(1);
                for why in &p.skipped {
                    tracing::warn!(issuer, "skipped a provider key: {why}");
                }
                entry.current = Some(Arc::new(p));
                entry.last_error = None;
            }
            Err(e) => {
                metrics::counter!(KEY_REFRESHES, "issuer" => issuer.to_owned(), "result" => "failed")
                    .increment(1);
                tracing::warn!(issuer, error = %e, "provider metadata fetch failed; cached keys stay in use");
                entry.last_error = Some(e.0);
            }
        }
    }

    async fn fetch(&self, issuer: &str) -> Result<ProviderKeys, FetchError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let doc = self.fetcher.get_json(&url).await?;
        let metadata = parse_discovery(issuer, &doc)?;
        let jwks = self.fetcher.get_json(&metadata.jwks_uri).await?;
        let (keys, skipped) = parse_jwks(&jwks)?;
        Ok(ProviderKeys {
            metadata,
            keys,
            skipped,
            fetched_at: Instant::now(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // A real 2048-bit RSA public key (from RFC 7517 appendix A.1) and a P-256 key (A.1).
    const RSA_N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";

    fn rsa(kid: &str, alg: Option<&str>) -> serde_json::Value {
        let mut k = json!({"kty": "RSA", "kid": kid, "use": "sig", "n": RSA_N, "e": "AQAB"});
        if let Some(a) = alg {
            k["alg"] = json!(a);
        }
        k
    }

    #[test]
    fn unusable_keys_are_skipped_with_reasons() {
        let set = json!({"keys": [
            rsa("good", Some("RS256")),
            rsa("any-rsa", None),
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": RSA_N, "e": "AQAB"},
            {"kty": "RSA", "kid": "short", "n": "AQAB", "e": "AQAB"},
            rsa("mismatch", Some("ES256")),
            {"kty": "EC", "kid": "ec", "crv": "P-256",
             "x": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
             "y": "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"},
            {"kty": "weird", "kid": "w"}
        ]});
        let (keys, skipped) = parse_jwks(&set).unwrap();
        let kids: Vec<_> = keys.iter().map(|k| k.kid.clone().unwrap()).collect();
        assert_eq!(kids, ["good", "any-rsa", "ec"]);
        assert_eq!(skipped.len(), 5, "{skipped:?}");
        assert!(skipped
            .iter()
            .any(|s| s.contains("hmac") && s.contains("symmetric")));
        assert!(skipped
            .iter()
            .any(|s| s.contains("short") && s.contains("too short")));
    }

    #[test]
    fn key_choice_follows_kid_and_algorithm() {
        let set = json!({"keys": [rsa("a", Some("RS256")), rsa("b", None)]});
        let (keys, skipped) = parse_jwks(&set).unwrap();
        let p = ProviderKeys {
            metadata: ProviderMetadata {
                issuer: "https://i".into(),
                jwks_uri: "https://i/jwks".into(),
                authorization_endpoint: None,
                token_endpoint: None,
                device_authorization_endpoint: None,
                revocation_endpoint: None,
                userinfo_endpoint: None,
                iss_parameter_supported: false,
            },
            keys,
            skipped,
            fetched_at: Instant::now(),
        };
        assert!(p.find(Some("a"), Algorithm::RS256).is_ok());
        // a key bound to RS256 never verifies RS512 or HS256
        assert!(matches!(
            p.find(Some("a"), Algorithm::RS512),
            Err(KeyError::WrongAlgorithm { .. })
        ));
        assert!(matches!(
            p.find(Some("a"), Algorithm::HS256),
            Err(KeyError::WrongAlgorithm { .. })
        ));
        assert!(p.find(Some("b"), Algorithm::PS256).is_ok());
        assert!(matches!(
            p.find(Some("zz"), Algorithm::RS256),
            Err(KeyError::UnknownKid(_))
        ));
        assert!(matches!(
            p.find(None, Algorithm::RS256),
            Err(KeyError::AmbiguousKey(_))
        ));
        assert!(matches!(
            p.find(None, Algorithm::ES256),
            Err(KeyError::NoKeyForAlgorithm(_))
        ));
    }

    #[test]
    fn discovery_issuer_must_match_exactly() {
        let doc = json!({"issuer": "https://idp.example/", "jwks_uri": "https://idp.example/jwks"});
        assert!(parse_discovery("https://idp.example", &doc).is_err());
        assert!(parse_discovery("https://idp.example/", &doc).is_ok());
        let doc = json!({"issuer": "https://idp.example", "jwks_uri": "http://idp.example/jwks"});
        assert!(parse_discovery("https://idp.example", &doc).is_err());
        for endpoint in [
            "authorization_endpoint",
            "token_endpoint",
            "device_authorization_endpoint",
            "revocation_endpoint",
            "userinfo_endpoint",
        ] {
            let mut doc =
                json!({"issuer": "https://idp.example", "jwks_uri": "https://idp.example/jwks"});
            doc[endpoint] = json!("http://169.254.169.254/latest/meta-data");
            let e = parse_discovery("https://idp.example", &doc).unwrap_err();
            assert!(e.0.contains(endpoint), "{endpoint}: {}", e.0);
            doc[endpoint] = json!("http://127.0.0.1:8080/token");
            assert!(
                parse_discovery("https://idp.example", &doc).is_ok(),
                "{endpoint}: loopback"
            );
        }
    }
}
