//! The pieces of an authorization request (OIDC Core 3.1.2, RFC 7636 PKCE S256, RFC 9700):
//! random `state`/`nonce`/verifier values, the authorization URL, the token endpoint's answer, and the device authorization
//! grant's answers (RFC 8628).

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use portcullis_catalog::sso::SsoProperties;

/// 32 random bytes, base64url (43 characters): state, nonce and PKCE verifier values.
pub fn random_value() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The S256 code challenge of a verifier (RFC 7636 §4.2).
pub fn pkce_challenge(verifier: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// The authorization URL: `response_type=code`, scopes `openid` plus `additional_scopes`,
/// PKCE S256, state, nonce, and `access_type=offline&prompt=consent` when the integration
/// allows offline access.
pub fn authorization_url(
    endpoint: &str,
    props: &SsoProperties,
    redirect_uri: &str,
    state: &str,
    nonce: &str,
    verifier: &str,
) -> Result<String, String> {
    let mut url = url::Url::parse(endpoint)
        .map_err(|e| format!("the provider's authorization endpoint is not a URL: {e}"))?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", &props.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", &scopes(props))
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", &pkce_challenge(verifier))
            .append_pair("code_challenge_method", "S256");
        if props.allow_offline_access {
            q.append_pair("access_type", "offline")
                .append_pair("prompt", "consent");
        }
    }
    Ok(url.into())
}

/// The scopes asked for: `openid` plus the integration's additional scopes, once each.
pub fn scopes(props: &SsoProperties) -> String {
    let mut scopes = vec!["openid"];
    for s in &props.additional_scopes {
        if !scopes.contains(&s.as_str()) {
            scopes.push(s);
        }
    }
    scopes.join(" ")
}

/// Is `path` a path on this server (no scheme, no host, no `//`, no backslash, no control
/// characters)? Only such paths are redirect targets after sign-in: no open redirects.
pub fn is_local_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && path.len() <= 2048
        && !path
            .chars()
            .any(|c| c == '\\' || c.is_control() || c.is_whitespace())
}

/// Is `path` one of the server's own pages (`/` or under `/ui/`), the only places a browser
/// is sent back to after sign-in? Not the API: an address like `/v1/execute/…?statement=…` must
/// never be where a sign-in lands. An allow-list, the same as the OpenAPI document's pattern
/// for `sso_callback_path`: segments of letters, digits, `_` and `-` (so no `.`/`..`, `%`
/// escapes or `//`), and a query string of those and `=&.` (no fragment).
pub fn is_own_page(path: &str) -> bool {
    let (route, query) = match path.split_once('?') {
        Some((route, query)) => (route, Some(query)),
        None => (path, None),
    };
    let word = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    let route_ok = route == "/"
        || route
            .strip_prefix("/ui/")
            .is_some_and(|rest| rest.split('/').all(word));
    let query_ok = query.is_none_or(|q| {
        q.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-=&.".contains(&b))
    });
    is_local_path(path) && route_ok && query_ok
}

/// An OAuth error code from a provider's answer, as shown to clients: only a code of the
/// RFC 6749 form (a short lower-case word), never free text. Nothing else a provider's endpoint
/// sends is echoed: an endpoint a tenant administrator pointed somewhere else must not become a
/// way to read that place.
pub fn oauth_error_code(error: &str) -> &str {
    let well_formed = !error.is_empty()
        && error.len() <= 64
        && error.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    if well_formed {
        error
    } else {
        "an error that is not a standard OAuth error code"
    }
}

/// What the token endpoint answered.
#[derive(Debug, Clone)]
pub struct TokenResponse {
    pub id_token: Option<String>,
    pub access_token: Option<String>,
    pub refresh_token: Option<String>,
}

impl TokenResponse {
    /// Reads a token endpoint answer; an OAuth error (`{"error": …}`) becomes a message.
    pub fn from_json(status: u16, body: &serde_json::Value) -> Result<Self, String> {
        let text = |name: &str| body.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        if let Some(error) = text("error") {
            return Err(format!(
                "the provider refused the token request: {}",
                oauth_error_code(&error)
            ));
        }
        if !(200..300).contains(&status) {
            return Err(format!("the provider's token endpoint answered {status}"));
        }
        if let Some(t) = text("token_type") {
            if !t.eq_ignore_ascii_case("bearer") && !t.eq_ignore_ascii_case("dpop") {
                return Err(format!("unexpected token_type \"{t}\""));
            }
        }
        Ok(Self {
            id_token: text("id_token"),
            access_token: text("access_token"),
            refresh_token: text("refresh_token"),
        })
    }
}

/// RFC 8628 §3.2: the poll interval when the provider names none (or 0).
pub const DEVICE_DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// The longest device-code lifetime honoured, whatever the provider says.
const DEVICE_MAX_LIFETIME: Duration = Duration::from_secs(1800);

/// The device authorization endpoint's answer (RFC 8628 §3.2). `device_code` is a bearer
/// secret: never show or log it.
#[derive(Clone)]
pub struct DeviceAuthorization {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    /// Capped at 30 minutes.
    pub expires_in: Duration,
    /// At least 5 s.
    pub interval: Duration,
}

impl DeviceAuthorization {
    pub fn from_json(status: u16, body: &serde_json::Value) -> Result<Self, String> {
        let text = |name: &str| body.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        if let Some(error) = text("error") {
            return Err(format!(
                "the provider refused to start a device sign-in: {}",
                oauth_error_code(&error)
            ));
        }
        if !(200..300).contains(&status) {
            return Err(format!(
                "the provider's device authorization endpoint answered {status}"
            ));
        }
        let (Some(device_code), Some(user_code), Some(verification_uri)) = (
            text("device_code"),
            text("user_code"),
            text("verification_uri"),
        ) else {
            return Err(
                "the provider's answer lacks device_code, user_code or verification_uri".into(),
            );
        };
        let seconds = |name: &str| body.get(name).and_then(serde_json::Value::as_u64);
        Ok(Self {
            device_code,
            user_code,
            verification_uri,
            verification_uri_complete: text("verification_uri_complete"),
            expires_in: Duration::from_secs(seconds("expires_in").unwrap_or(600))
                .min(DEVICE_MAX_LIFETIME),
            // Never poll faster than the RFC's default, whatever the provider says.
            interval: Duration::from_secs(seconds("interval").unwrap_or(0))
                .max(DEVICE_DEFAULT_INTERVAL),
        })
    }
}

/// What one device-code poll of the token endpoint answered (RFC 8628 §3.5).
#[derive(Debug, Clone)]
pub enum DevicePoll {
    /// `authorization_pending`: poll again after the interval.
    Pending,
    /// `slow_down`: add 5 s to the interval, for good.
    SlowDown,
    Approved(TokenResponse),
    /// `access_denied`.
    Denied,
    /// `expired_token`.
    Expired,
    /// Any other error: stop.
    Failed(String),
}

impl DevicePoll {
    pub fn from_json(status: u16, body: &serde_json::Value) -> Self {
        let text = |name: &str| body.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        match text("error").as_deref() {
            Some("authorization_pending") => Self::Pending,
            Some("slow_down") => Self::SlowDown,
            Some("access_denied") => Self::Denied,
            Some("expired_token") => Self::Expired,
            _ => match TokenResponse::from_json(status, body) {
                Ok(t) => Self::Approved(t),
                Err(e) => Self::Failed(e),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn pkce_matches_rfc7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert_ne!(random_value(), random_value());
        assert_eq!(random_value().len(), 43);
    }

    #[test]
    fn authorization_url_carries_everything() {
        let props = SsoProperties {
            issuer: "https://idp.example".into(),
            client_id: "app id".into(),
            additional_scopes: vec!["email".into(), "openid".into()],
            allow_offline_access: true,
            ..Default::default()
        };
        let url = authorization_url(
            "https://idp.example/auth?tenant=1",
            &props,
            "https://db.example/v1/callback",
            "S",
            "N",
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        )
        .unwrap();
        let parsed = url::Url::parse(&url).unwrap();
        let q: HashMap<_, _> = parsed.query_pairs().into_owned().collect();
        assert_eq!(q["tenant"], "1");
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], "app id");
        assert_eq!(q["scope"], "openid email");
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(
            q["code_challenge"],
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert_eq!(q["access_type"], "offline");
        assert_eq!(q["prompt"], "consent");
        assert_eq!(q["redirect_uri"], "https://db.example/v1/callback");
        assert!(authorization_url("not a url", &props, "x", "s", "n", "v").is_err());
    }

    #[test]
    fn own_pages_only() {
        for good in ["/", "/ui/session", "/ui/console?x=1"] {
            assert!(is_own_page(good), "{good}");
        }
        for bad in [
            "/v1/execute/system?statement=DROP%20DATABASE%20x",
            "/ui/../v1/execute/system",
            "/ui/%2e%2e/v1/execute",
            "/ui//evil.example",
            "/ui/",
            "/ui/session#frag",
            "/ui/session?next=%2F%2Fevil",
            "/ui/x*",
            "/healthz",
            "//evil.example",
        ] {
            assert!(!is_own_page(bad), "{bad}");
        }
    }

    #[test]
    fn local_paths_only() {
        for good in ["/", "/ui/session", "/auth/callback?x=1"] {
            assert!(is_local_path(good), "{good}");
        }
        for bad in [
            "",
            "//evil.example",
            "https://evil.example/",
            "evil.example",
            "/\\evil.example",
            "\\\\evil",
            "/ok\r\nSet-Cookie: x",
            "javascript:alert(1)",
            "/a b",
        ] {
            assert!(!is_local_path(bad), "{bad}");
        }
    }

    #[test]
    fn token_responses() {
        let ok = serde_json::json!({"id_token": "i", "access_token": "a", "token_type": "Bearer"});
        let r = TokenResponse::from_json(200, &ok).unwrap();
        assert_eq!(r.id_token.as_deref(), Some("i"));
        assert!(r.refresh_token.is_none());
        let err = serde_json::json!({"error": "invalid_grant", "error_description": "grant request is invalid"});
        assert!(TokenResponse::from_json(400, &err)
            .unwrap_err()
            .contains("invalid_grant"));
        assert!(TokenResponse::from_json(500, &serde_json::json!({})).is_err());
        // The description and any odd error text are never echoed.
        let odd = serde_json::json!({"error": "<html>internal admin page</html>", "error_description": "secret"});
        let e = TokenResponse::from_json(400, &odd).unwrap_err();
        assert!(!e.contains("internal") && !e.contains("secret"), "{e}");
        assert!(!TokenResponse::from_json(400, &err)
            .unwrap_err()
            .contains("grant request is invalid"));
    }

    #[test]
    fn device_answers() {
        let start = serde_json::json!({"device_code": "D", "user_code": "U", "verification_uri": "https://idp/device", "interval": 0, "expires_in": 99999});
        let d = DeviceAuthorization::from_json(200, &start).unwrap();
        assert_eq!(
            d.interval,
            Duration::from_secs(5),
            "interval 0 means the default"
        );
        assert_eq!(d.expires_in, Duration::from_secs(1800), "lifetime capped");
        assert!(
            DeviceAuthorization::from_json(200, &serde_json::json!({"user_code": "U"})).is_err()
        );
        let poll = |v| DevicePoll::from_json(400, &v);
        assert!(matches!(
            poll(serde_json::json!({"error": "authorization_pending"})),
            DevicePoll::Pending
        ));
        assert!(matches!(
            poll(serde_json::json!({"error": "slow_down"})),
            DevicePoll::SlowDown
        ));
        assert!(matches!(
            poll(serde_json::json!({"error": "access_denied"})),
            DevicePoll::Denied
        ));
        assert!(matches!(
            poll(serde_json::json!({"error": "expired_token"})),
            DevicePoll::Expired
        ));
        assert!(matches!(
            poll(serde_json::json!({"error": "invalid_grant"})),
            DevicePoll::Failed(_)
        ));
        let ok = DevicePoll::from_json(
            200,
            &serde_json::json!({"id_token": "i", "token_type": "Bearer"}),
        );
        assert!(matches!(ok, DevicePoll::Approved(t) if t.id_token.as_deref() == Some("i")));
    }
}
