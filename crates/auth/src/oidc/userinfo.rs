//! Claims an access token does not carry, from the provider's userinfo endpoint (OIDC Core
//! 5.3, issue 14 item 5). Many providers put no `email` or groups in access tokens, so the same
//! person would sign in as `alice@…` with an ID token and as `iss::sub` with an access token.
//! When a claim the integration needs — the user id claims (by default `email`), the groups or
//! the roles claims — is **missing** from an access token (absent, not empty: an empty list is
//! the provider saying "no groups"), the server asks the userinfo endpoint with that token,
//! once per token (cached until the token's `exp`), and fills in only what was missing. A
//! token that carries what is needed never causes a request. The answer must be about the
//! token's own subject (OIDC Core 5.3.2), or the sign-in is refused.

use std::collections::HashMap;

use parking_lot::Mutex;
use serde_json::{Map, Value};

use super::fetch::Fetcher;
use portcullis_catalog::sso::SsoProperties;

/// Tokens whose userinfo answer is kept.
const CAPACITY: usize = 10_000;

/// Where each needed claim came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sources {
    /// Needed claims the token carried.
    pub token: Vec<String>,
    /// Needed claims filled in from the userinfo endpoint.
    pub userinfo: Vec<String>,
    /// Needed claims neither had.
    pub missing: Vec<String>,
    /// Why the userinfo endpoint could not be asked, if it could not (the missing claims are
    /// then treated as absent: the default identity falls back to `iss::sub`, and a blocked
    /// list that needs them refuses).
    pub unavailable: Option<String>,
}

impl Sources {
    /// EXPLAIN AUTHENTICATION's sentence.
    pub fn describe(&self) -> String {
        let list = |v: &[String]| v.join(", ");
        let mut parts = Vec::new();
        if !self.token.is_empty() {
            parts.push(format!("from the token: {}", list(&self.token)));
        }
        if !self.userinfo.is_empty() {
            parts.push(format!(
                "from the userinfo endpoint: {}",
                list(&self.userinfo)
            ));
        }
        if !self.missing.is_empty() {
            parts.push(format!("in neither: {}", list(&self.missing)));
        }
        if let Some(why) = &self.unavailable {
            parts.push(format!("userinfo not available: {why}"));
        }
        parts.join("; ")
    }
}

/// The claims the integration reads: the user id claims (or the default `email`), the groups
/// and the roles claims.
pub fn needed(props: &SsoProperties) -> Vec<String> {
    let mut out: Vec<String> = if props.user_id_claims.is_empty() {
        vec!["email".into()]
    } else {
        props.user_id_claims.clone()
    };
    for c in props.groups_claim_ids.iter().chain(&props.roles_claim_ids) {
        if !out.contains(c) {
            out.push(c.clone());
        }
    }
    out
}

/// The userinfo answers by token hash, each kept until its token's `exp` (a failed answer at
/// most a minute, so a provider that cannot answer is not asked at every sign-in).
#[derive(Default)]
pub struct UserinfoCache {
    entries: Mutex<HashMap<[u8; 32], (i64, Answer)>>,
}

#[derive(Clone)]
enum Answer {
    Claims(Map<String, Value>),
    Failed(String),
}

/// How long a failed answer is kept.
const FAILURE_SECONDS: i64 = 60;

/// The userinfo endpoint answered about someone other than the token's subject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the userinfo endpoint answered about another subject than the token's (OIDC Core 5.3.2)")]
pub struct WrongSubject;

impl UserinfoCache {
    fn get(&self, key: &[u8; 32], now: i64) -> Option<Answer> {
        let entries = self.entries.lock();
        entries
            .get(key)
            .filter(|(until, _)| *until > now)
            .map(|(_, answer)| answer.clone())
    }

    fn put(&self, key: [u8; 32], until: i64, answer: Answer, now: i64) {
        let mut entries = self.entries.lock();
        if entries.len() >= CAPACITY {
            entries.retain(|_, (u, _)| *u > now);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(key, (until, answer));
    }

    /// Fills the needed claims `claims` lacks from the userinfo endpoint (when there is one
    /// and something is missing), and says where each needed claim came from.
    #[allow(clippy::too_many_arguments)]
    pub async fn fill(
        &self,
        fetcher: &Fetcher,
        endpoint: Option<&str>,
        token: &str,
        expires_at: i64,
        now: i64,
        needed: &[String],
        claims: &mut Map<String, Value>,
    ) -> Result<Sources, WrongSubject> {
        let mut sources = Sources::default();
        let (present, absent): (Vec<String>, Vec<String>) =
            needed.iter().cloned().partition(|c| claims.contains_key(c));
        sources.token = present;
        if absent.is_empty() {
            return Ok(sources);
        }
        let Some(endpoint) = endpoint else {
            sources.missing = absent;
            return Ok(sources);
        };
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(digest.as_ref());
        let subject =
            |m: &Map<String, Value>| m.get("sub").and_then(Value::as_str).map(str::to_owned);
        let answer = match self.get(&key, now) {
            Some(a) => a,
            None => {
                let answer = match fetcher.get_json_bearer(endpoint, token).await {
                    Ok(Value::Object(answer)) => {
                        if subject(&answer).is_none() || subject(&answer) != subject(claims) {
                            return Err(WrongSubject);
                        }
                        Answer::Claims(answer)
                    }
                    Ok(_) => Answer::Failed("it did not answer with a JSON object".into()),
                    Err(e) => Answer::Failed(e.to_string()),
                };
                let until = match answer {
                    Answer::Claims(_) => expires_at,
                    Answer::Failed(_) => expires_at.min(now + FAILURE_SECONDS),
                };
                self.put(key, until, answer.clone(), now);
                answer
            }
        };
        match answer {
            Answer::Claims(answer) => {
                for claim in absent {
                    match answer.get(&claim) {
                        Some(v) => {
                            claims.insert(claim.clone(), v.clone());
                            sources.userinfo.push(claim);
                        }
                        None => sources.missing.push(claim),
                    }
                }
            }
            Answer::Failed(why) => {
                sources.missing = absent;
                sources.unavailable = Some(why);
            }
        }
        Ok(sources)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_identity_claim_and_mapped_claims_are_needed() {
        let mut props = SsoProperties::default();
        assert_eq!(needed(&props), ["email"]);
        props.user_id_claims = vec!["preferred_username".into()];
        props.groups_claim_ids = vec!["groups".into()];
        props.roles_claim_ids = vec!["groups".into(), "roles".into()];
        assert_eq!(needed(&props), ["preferred_username", "groups", "roles"]);
    }

    #[tokio::test]
    async fn a_token_with_every_claim_never_asks() {
        let cache = UserinfoCache::default();
        let fetcher = Fetcher::new(std::time::Duration::from_secs(1)).unwrap();
        let mut claims: Map<String, Value> =
            serde_json::from_str(r#"{"sub": "u1", "email": "a@example.com", "groups": []}"#)
                .unwrap();
        // The endpoint does not exist: asking it would fail.
        let sources = cache
            .fill(
                &fetcher,
                Some("http://127.0.0.1:9/userinfo"),
                "t",
                i64::MAX,
                0,
                &["email".into(), "groups".into()],
                &mut claims,
            )
            .await
            .unwrap();
        assert_eq!(sources.token, ["email", "groups"]);
        assert!(sources.userinfo.is_empty() && sources.missing.is_empty());
        // Without an endpoint a missing claim stays missing.
        let mut claims: Map<String, Value> = serde_json::from_str(r#"{"sub": "u1"}"#).unwrap();
        let sources = cache
            .fill(
                &fetcher,
                None,
                "t",
                i64::MAX,
                0,
                &["email".into()],
                &mut claims,
            )
            .await
            .unwrap();
        assert_eq!(sources.missing, ["email"]);
    }
}
