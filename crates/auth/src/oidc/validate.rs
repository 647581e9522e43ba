//! Token validation (OIDC Core 3.1.3.7, RFC 8725, RFC 9068): the header rules, the signature
//! (jsonwebtoken, aws-lc), and the claim rules, each recorded as a named check so that a refusal
//! names what failed and EXPLAIN AUTHENTICATION can show every step.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, Validation};
use portcullis_catalog::sso::SsoProperties;
use portcullis_catalog::Reason;
use serde_json::{Map, Value};

use super::provider::{ProviderCache, SigningKey};
use super::verified::VerifiedTokens;

/// Clock skew tolerated on `exp`, `nbf` and `iat`.
pub const LEEWAY_SECS: i64 = 60;
/// The largest token accepted (PostgreSQL's own password limit).
pub const MAX_TOKEN_BYTES: usize = 65_535;

/// What the client says it presents (the user name `id_token` or `access_token`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    IdToken,
    AccessToken,
}

impl TokenKind {
    /// The rules a token given without saying which (a Bearer token) is checked under: an
    /// access token if its header says `typ: at+jwt` (RFC 9068), else an ID token. Nothing
    /// is trusted from this guess: the checks of that kind still all run.
    pub fn of_token(token: &str) -> Self {
        let typ = token
            .split('.')
            .next()
            .and_then(decode_part)
            .and_then(|h| h.get("typ")?.as_str().map(str::to_ascii_lowercase));
        match typ.as_deref() {
            Some("at+jwt" | "application/at+jwt") => Self::AccessToken,
            _ => Self::IdToken,
        }
    }

    pub fn from_user(user: &str) -> Option<Self> {
        match user {
            "id_token" => Some(Self::IdToken),
            "access_token" => Some(Self::AccessToken),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::IdToken => "id_token",
            Self::AccessToken => "access_token",
        }
    }
}

/// One check and its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The code a failure of this check refuses with ([`Reason::check`] names the check).
    pub reason: Reason,
    pub passed: bool,
    pub detail: String,
}

/// The first failed check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: Reason,
    pub detail: String,
}

/// A token that passed every check.
#[derive(Debug, Clone)]
pub struct ValidToken {
    pub claims: Map<String, Value>,
    /// Which rules it was validated under.
    pub validated_as: TokenKind,
    pub expires_at: i64,
}

/// The checks made so far.
#[derive(Debug, Default)]
pub struct Trace {
    pub checks: Vec<Check>,
}

impl Trace {
    pub fn pass(&mut self, reason: Reason, detail: impl Into<String>) {
        self.checks.push(Check {
            reason,
            passed: true,
            detail: detail.into(),
        });
    }

    pub fn fail(&mut self, reason: Reason, detail: impl Into<String>) -> Refusal {
        let detail = detail.into();
        self.checks.push(Check {
            reason,
            passed: false,
            detail: detail.clone(),
        });
        Refusal { reason, detail }
    }
}

/// The parts of a token header the checks use.
#[derive(Debug, Clone)]
pub struct HeaderInfo {
    pub alg: Algorithm,
    pub kid: Option<String>,
    /// Lower case, without an `application/` prefix.
    pub typ: Option<String>,
}

const ALLOWED: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

fn decode_part(part: &str) -> Option<Map<String, Value>> {
    let bytes = URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

/// The header rules: a compact JWS (not JWE, not nested), an allow-listed asymmetric `alg`, no
/// `crit` extension; `jku`, `x5u`, `jwk` and `x5c` are ignored (never fetched or trusted).
pub fn check_header(token: &str, trace: &mut Trace) -> Result<HeaderInfo, Refusal> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(trace.fail(
            Reason::TokenFormat,
            format!("the token is longer than {MAX_TOKEN_BYTES} bytes"),
        ));
    }
    let parts: Vec<&str> = token.split('.').collect();
    match parts.len() {
        3 => {}
        5 => {
            return Err(trace.fail(
                Reason::TokenFormat,
                "encrypted tokens (JWE) are not accepted",
            ))
        }
        _ => {
            return Err(trace.fail(
                Reason::TokenFormat,
                "the token is not a JWT (three base64url parts separated by dots)",
            ))
        }
    }
    let Some(header) = decode_part(parts[0]) else {
        return Err(trace.fail(
            Reason::TokenFormat,
            "the token header is not base64url-encoded JSON",
        ));
    };
    trace.pass(Reason::TokenFormat, "a signed JWT (JWS compact form)");
    let alg_text = header
        .get("alg")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if alg_text.is_empty() {
        return Err(trace.fail(Reason::TokenAlgorithm, "the token header has no alg"));
    }
    if alg_text.eq_ignore_ascii_case("none") {
        return Err(trace.fail(
            Reason::TokenAlgorithm,
            "unsigned tokens (alg none) are never accepted",
        ));
    }
    if alg_text.starts_with("HS") {
        return Err(trace.fail(
            Reason::TokenAlgorithm,
            format!("symmetric algorithm {alg_text} is never accepted for provider tokens"),
        ));
    }
    let alg = alg_text
        .parse::<Algorithm>()
        .ok()
        .filter(|a| ALLOWED.contains(a));
    let Some(alg) = alg else {
        return Err(trace.fail(
            Reason::TokenAlgorithm,
            format!("algorithm {alg_text} is not accepted"),
        ));
    };
    if let Some(crit) = header.get("crit") {
        return Err(trace.fail(
            Reason::TokenAlgorithm,
            format!("the token marks header parameters {crit} as critical; none are supported"),
        ));
    }
    if header
        .get("cty")
        .and_then(Value::as_str)
        .is_some_and(|c| c.eq_ignore_ascii_case("jwt"))
    {
        return Err(trace.fail(
            Reason::TokenFormat,
            "nested tokens (cty JWT) are not accepted",
        ));
    }
    let ignored: Vec<&str> = ["jku", "x5u", "jwk", "x5c"]
        .into_iter()
        .filter(|h| header.contains_key(*h))
        .collect();
    let mut detail = format!("{alg:?}");
    if !ignored.is_empty() {
        detail.push_str(&format!(" (header {} ignored)", ignored.join(", ")));
    }
    trace.pass(Reason::TokenAlgorithm, detail);
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(k)) if k.len() <= 256 => Some(k.clone()),
        Some(_) => {
            return Err(trace.fail(Reason::TokenKey, "the token's kid is not a short string"))
        }
    };
    let typ = match header.get("typ") {
        None => None,
        Some(Value::String(t)) => {
            let t = t.to_ascii_lowercase();
            Some(
                t.strip_prefix("application/")
                    .map(str::to_owned)
                    .unwrap_or(t),
            )
        }
        Some(_) => return Err(trace.fail(Reason::TokenType, "the token's typ is not a string")),
    };
    Ok(HeaderInfo { alg, kid, typ })
}

/// Which rules apply: an `at+jwt` is an access token; anything else an ID token, which may sign
/// in as `access_token` only when `enable_id_token_authentication` is on.
pub fn choose_rules(
    header: &HeaderInfo,
    presented_as: TokenKind,
    props: &SsoProperties,
    trace: &mut Trace,
) -> Result<TokenKind, Refusal> {
    let is_access = header.typ.as_deref() == Some("at+jwt");
    if let Some(t) = header
        .typ
        .as_deref()
        .filter(|t| *t != "at+jwt" && *t != "jwt")
    {
        return Err(trace.fail(
            Reason::TokenType,
            format!("token type \"{t}\" is not accepted"),
        ));
    }
    match (presented_as, is_access) {
        (TokenKind::AccessToken, true) => {
            trace.pass(Reason::TokenType, "JWT access token (typ at+jwt, RFC 9068)");
            Ok(TokenKind::AccessToken)
        }
        (TokenKind::AccessToken, false) if props.enable_id_token_authentication => {
            trace.pass(
                Reason::TokenType,
                "ID token standing in as the access token (enable_id_token_authentication)",
            );
            Ok(TokenKind::IdToken)
        }
        (TokenKind::AccessToken, false) => Err(trace.fail(
            Reason::TokenType,
            "the token is not a JWT access token (typ at+jwt); ID tokens may sign in as \
             access_token only when the integration sets enable_id_token_authentication = true \
             (or sign in as user id_token)",
        )),
        (TokenKind::IdToken, true) => Err(trace.fail(
            Reason::TokenType,
            "the token is an access token (typ at+jwt), not an ID token; sign in as user \
             access_token",
        )),
        (TokenKind::IdToken, false) => {
            trace.pass(Reason::TokenType, "ID token");
            Ok(TokenKind::IdToken)
        }
    }
}

/// Verifies the signature with the chosen key; returns the claims.
pub fn check_signature(
    token: &str,
    header: &HeaderInfo,
    key: &SigningKey,
    trace: &mut Trace,
) -> Result<Map<String, Value>, Refusal> {
    let mut validation = Validation::new(header.alg);
    validation.algorithms = vec![header.alg];
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    match jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation) {
        Ok(data) => {
            trace.pass(
                Reason::TokenSignature,
                format!(
                    "valid {:?} signature by key {}",
                    header.alg,
                    key.kid.as_deref().unwrap_or("(no kid)")
                ),
            );
            Ok(data.claims)
        }
        Err(e) => {
            let why = match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                    "the signature does not verify with the provider's key".to_owned()
                }
                other => format!("the token could not be verified ({other:?})"),
            };
            Err(trace.fail(Reason::TokenSignature, why))
        }
    }
}

fn string_claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    claims.get(name).and_then(Value::as_str)
}

fn time_claim(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, String> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| format!("claim {name} is not a number of seconds")),
        Some(_) => Err(format!("claim {name} is not a number")),
    }
}

/// The claim rules for the chosen kind. Returns the expiry.
pub fn check_claims(
    claims: &Map<String, Value>,
    rules: TokenKind,
    props: &SsoProperties,
    now: i64,
    trace: &mut Trace,
) -> Result<i64, Refusal> {
    // iss
    match string_claim(claims, "iss") {
        Some(iss) if iss == props.issuer => trace.pass(Reason::TokenIssuer, format!("\"{iss}\"")),
        Some(iss) => {
            return Err(trace.fail(
                Reason::TokenIssuer,
                format!(
                    "token issuer \"{iss}\" is not the integration's issuer \"{}\"",
                    props.issuer
                ),
            ))
        }
        None => return Err(trace.fail(Reason::TokenIssuer, "the token has no iss claim")),
    }
    // aud
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(list)) => {
            let items: Option<Vec<&str>> = list.iter().map(Value::as_str).collect();
            match items {
                Some(items) if !items.is_empty() => items,
                _ => {
                    return Err(trace.fail(
                        Reason::TokenAudience,
                        "claim aud is not a string or a list of strings",
                    ))
                }
            }
        }
        _ => return Err(trace.fail(Reason::TokenAudience, "the token has no aud claim")),
    };
    if audiences.contains(&props.client_id.as_str()) {
        trace.pass(
            Reason::TokenAudience,
            format!("includes the client_id \"{}\"", props.client_id),
        );
    } else if let Some(extra) = audiences.iter().find(|a| {
        // Additional audiences are for access tokens (an API's audience); an ID token is for
        // us only when our client_id is among its audiences (OIDC Core 3.1.3.7 step 3).
        rules == TokenKind::AccessToken && props.additional_audiences.iter().any(|x| x == *a)
    }) {
        trace.pass(
            Reason::TokenAudience,
            format!("includes the additional audience \"{extra}\""),
        );
    } else {
        return Err(trace.fail(
            Reason::TokenAudience,
            format!(
                "token audience {audiences:?} does not include the integration's client_id \"{}\"{}",
                props.client_id,
                if props.additional_audiences.is_empty() { "" } else { " or an additional audience" }
            ),
        ));
    }
    // azp
    match claims.get("azp") {
        Some(Value::String(azp)) if *azp == props.client_id => trace.pass(
            Reason::TokenAuthorizedParty,
            format!("\"{azp}\" is the client_id"),
        ),
        Some(Value::String(azp)) => {
            return Err(trace.fail(
                Reason::TokenAuthorizedParty,
                format!(
                    "authorized party \"{azp}\" is not the integration's client_id \"{}\"",
                    props.client_id
                ),
            ))
        }
        Some(_) => {
            return Err(trace.fail(Reason::TokenAuthorizedParty, "claim azp is not a string"))
        }
        None if audiences.len() > 1 => {
            return Err(trace.fail(
                Reason::TokenAuthorizedParty,
                "a token with several audiences must name its authorized party (azp)",
            ))
        }
        None => trace.pass(Reason::TokenAuthorizedParty, "absent (single audience)"),
    }
    // times
    let exp = match time_claim(claims, "exp") {
        Ok(Some(exp)) => exp,
        Ok(None) => return Err(trace.fail(Reason::TokenTimes, "the token has no exp claim")),
        Err(e) => return Err(trace.fail(Reason::TokenTimes, e)),
    };
    if exp.saturating_add(LEEWAY_SECS) <= now {
        return Err(trace.fail(
            Reason::TokenTimes,
            format!("the token expired {} s ago", now.saturating_sub(exp)),
        ));
    }
    match time_claim(claims, "nbf") {
        Ok(Some(nbf)) if nbf > now.saturating_add(LEEWAY_SECS) => {
            return Err(trace.fail(
                Reason::TokenTimes,
                format!("the token is not valid for another {} s (nbf)", nbf - now),
            ))
        }
        Err(e) => return Err(trace.fail(Reason::TokenTimes, e)),
        _ => {}
    }
    match time_claim(claims, "iat") {
        Ok(Some(iat)) if iat > now.saturating_add(LEEWAY_SECS) => {
            return Err(trace.fail(
                Reason::TokenTimes,
                format!("the token was issued {} s in the future (iat)", iat - now),
            ))
        }
        Ok(Some(_)) => {}
        Ok(None) => return Err(trace.fail(Reason::TokenTimes, "the token has no iat claim")),
        Err(e) => return Err(trace.fail(Reason::TokenTimes, e)),
    }
    trace.pass(
        Reason::TokenTimes,
        format!(
            "expires in {} s (leeway {LEEWAY_SECS} s)",
            exp.saturating_sub(now)
        ),
    );
    // required claims of the kind
    if string_claim(claims, "sub").is_none_or(str::is_empty) {
        return Err(trace.fail(Reason::TokenClaims, "the token has no sub claim"));
    }
    if rules == TokenKind::AccessToken {
        if string_claim(claims, "jti").is_none_or(str::is_empty) {
            return Err(trace.fail(
                Reason::TokenClaims,
                "an access token must have a jti claim (RFC 9068)",
            ));
        }
        match string_claim(claims, "client_id") {
            Some(c) if c == props.client_id => {}
            Some(c) => {
                return Err(trace.fail(
                    Reason::TokenClaims,
                    format!("the access token was issued to client \"{c}\", not to the integration's client_id \"{}\"", props.client_id),
                ))
            }
            None => return Err(trace.fail(Reason::TokenClaims, "an access token must have a client_id claim (RFC 9068)")),
        }
        trace.pass(
            Reason::TokenClaims,
            "sub, jti and client_id present (RFC 9068)",
        );
    } else {
        // Another client's access token is no ID token of ours, whatever its typ says.
        for name in ["client_id", "cid", "appid"] {
            if let Some(other) = string_claim(claims, name).filter(|c| *c != props.client_id) {
                return Err(trace.fail(
                    Reason::TokenClaims,
                    format!(
                        "the token names client \"{other}\" ({name}), not the integration's \
                         client_id \"{}\": it is not an ID token issued to us",
                        props.client_id
                    ),
                ));
            }
        }
        if claims.contains_key("scope") || claims.contains_key("scp") {
            return Err(trace.fail(
                Reason::TokenClaims,
                "the token carries a scope claim: it is an access token, not an ID token (sign \
                 in as access_token)",
            ));
        }
        trace.pass(Reason::TokenClaims, "sub present");
    }
    Ok(exp)
}

/// Validates a token for an integration: header, key, signature, claims.
pub async fn validate(
    providers: &ProviderCache,
    props: &SsoProperties,
    token: &str,
    presented_as: TokenKind,
    now: i64,
    trace: &mut Trace,
) -> Result<ValidToken, Refusal> {
    let header = check_header(token, trace)?;
    let rules = choose_rules(&header, presented_as, props, trace)?;
    let lookup = match providers
        .key(&props.issuer, header.kid.as_deref(), header.alg)
        .await
    {
        Ok(l) => l,
        Err(e) => {
            return Err(trace.fail(
                Reason::ProviderDiscovery,
                format!("issuer {}: {e}", props.issuer),
            ))
        }
    };
    trace.pass(
        Reason::ProviderDiscovery,
        format!(
            "issuer {} ({} usable keys{})",
            lookup.provider.metadata.issuer,
            lookup.provider.keys.len(),
            if lookup.fetched {
                ", fetched now"
            } else {
                ", cached"
            }
        ),
    );
    let status = providers.refetch_status(&props.issuer, header.kid.as_deref());
    let key = match lookup.key {
        Ok(k) => k,
        Err(e) => return Err(trace.fail(Reason::TokenKey, format!("{e} ({status})"))),
    };
    trace.pass(
        Reason::TokenKey,
        format!("kid {} ({status})", key.kid.as_deref().unwrap_or("(none)")),
    );
    let digest = VerifiedTokens::digest(token);
    let claims = match providers.verified.get(&digest, &key) {
        Some(claims) => {
            trace.pass(
                Reason::TokenSignature,
                format!(
                    "valid {:?} signature by key {} (verified at an earlier sign-in)",
                    header.alg,
                    key.kid.as_deref().unwrap_or("(no kid)")
                ),
            );
            claims
        }
        None => {
            let claims = check_signature(token, &header, &key, trace)?;
            providers.verified.put(digest, &key, &claims, now);
            claims
        }
    };
    let expires_at = check_claims(&claims, rules, props, now, trace)?;
    Ok(ValidToken {
        claims,
        validated_as: rules,
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(v: &Value) -> String {
        URL_SAFE_NO_PAD.encode(v.to_string())
    }

    fn token(header: Value) -> String {
        format!("{}.{}.c2ln", b64(&header), b64(&json!({"sub": "x"})))
    }

    fn props() -> SsoProperties {
        SsoProperties {
            issuer: "https://idp.example".into(),
            client_id: "app".into(),
            default_group: "users".into(),
            additional_audiences: vec!["https://api.example".into()],
            ..Default::default()
        }
    }

    #[test]
    fn header_rules() {
        let cases = [
            (json!({"alg": "none"}), "alg none"),
            (json!({"alg": "HS256"}), "symmetric"),
            (json!({"alg": "RS1"}), "not accepted"),
            (json!({}), "no alg"),
            (json!({"alg": "RS256", "crit": ["exp"]}), "critical"),
            (json!({"alg": "RS256", "cty": "JWT"}), "nested"),
            (json!({"alg": "RS256", "kid": 5}), "kid"),
        ];
        for (h, needle) in cases {
            let mut t = Trace::default();
            let e = check_header(&token(h.clone()), &mut t).unwrap_err();
            assert!(e.detail.contains(needle), "{h}: {}", e.detail);
        }
        let mut t = Trace::default();
        assert!(check_header("a.b.c.d.e", &mut t)
            .unwrap_err()
            .detail
            .contains("JWE"));
        let mut t = Trace::default();
        let h = check_header(
            &token(json!({"alg": "RS256", "kid": "k", "typ": "application/at+JWT", "jku": "https://evil"})),
            &mut t,
        )
        .unwrap();
        assert_eq!(h.typ.as_deref(), Some("at+jwt"));
        assert!(t.checks.iter().any(|c| c.detail.contains("jku ignored")));
    }

    #[test]
    fn id_and_access_rules_are_kept_apart() {
        let at = HeaderInfo {
            alg: Algorithm::RS256,
            kid: None,
            typ: Some("at+jwt".into()),
        };
        let id = HeaderInfo {
            alg: Algorithm::RS256,
            kid: None,
            typ: Some("jwt".into()),
        };
        let mut p = props();
        let mut t = Trace::default();
        assert_eq!(
            choose_rules(&at, TokenKind::AccessToken, &p, &mut t).unwrap(),
            TokenKind::AccessToken
        );
        assert!(choose_rules(&at, TokenKind::IdToken, &p, &mut t).is_err());
        assert!(choose_rules(&id, TokenKind::AccessToken, &p, &mut t)
            .unwrap_err()
            .detail
            .contains("enable_id_token_authentication"));
        p.enable_id_token_authentication = true;
        assert_eq!(
            choose_rules(&id, TokenKind::AccessToken, &p, &mut t).unwrap(),
            TokenKind::IdToken
        );
        let odd = HeaderInfo {
            typ: Some("dpop+jwt".into()),
            ..id
        };
        assert!(choose_rules(&odd, TokenKind::IdToken, &p, &mut t).is_err());
    }

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn claim_rules() {
        let now = 1_000_000;
        let good = json!({"iss": "https://idp.example", "aud": "app", "sub": "s", "exp": now + 300, "iat": now});
        let p = props();
        let mut t = Trace::default();
        assert_eq!(
            check_claims(&claims(good.clone()), TokenKind::IdToken, &p, now, &mut t).unwrap(),
            now + 300
        );
        let with = |k: &str, v: Value| {
            let mut c = good.clone();
            c[k] = v;
            c
        };
        let without = |k: &str| {
            let mut c = good.clone();
            c.as_object_mut().unwrap().remove(k);
            c
        };
        let cases = [
            (with("iss", json!("https://idp.example/")), "iss"),
            (without("iss"), "iss"),
            (with("aud", json!("other")), "aud"),
            (with("aud", json!(["app", "other"])), "azp"),
            (with("azp", json!("other")), "azp"),
            (with("exp", json!(now - 61)), "times"),
            (with("exp", json!("tomorrow")), "times"),
            (without("exp"), "times"),
            (with("nbf", json!(now + 120)), "times"),
            (with("iat", json!(now + 120)), "times"),
            (without("iat"), "times"),
            (without("sub"), "claims"),
        ];
        for (c, check) in cases {
            let mut t = Trace::default();
            let e =
                check_claims(&claims(c.clone()), TokenKind::IdToken, &p, now, &mut t).unwrap_err();
            assert_eq!(e.reason.check(), check, "{c}: {}", e.detail);
        }
        // within the leeway
        let mut t = Trace::default();
        assert!(check_claims(
            &claims(with("exp", json!(now - 30))),
            TokenKind::IdToken,
            &p,
            now,
            &mut t
        )
        .is_ok());
        // an additional audience is accepted for access tokens only; several audiences with
        // azp = client_id too
        let mut api = with("aud", json!("https://api.example"));
        assert_eq!(
            check_claims(&claims(api.clone()), TokenKind::IdToken, &p, now, &mut t)
                .unwrap_err()
                .reason,
            Reason::TokenAudience
        );
        api["jti"] = json!("j0");
        api["client_id"] = json!("app");
        assert!(check_claims(&claims(api), TokenKind::AccessToken, &p, now, &mut t).is_ok());
        // an ID token naming another client, or carrying a scope, is refused
        for (k, v) in [
            ("client_id", json!("other")),
            ("cid", json!("other")),
            ("appid", json!("other")),
            ("scope", json!("openid")),
            ("scp", json!(["read"])),
        ] {
            assert_eq!(
                check_claims(&claims(with(k, v)), TokenKind::IdToken, &p, now, &mut t)
                    .unwrap_err()
                    .reason,
                Reason::TokenClaims,
                "{k}"
            );
        }
        let mut multi = with("aud", json!(["app", "x"]));
        multi["azp"] = json!("app");
        assert!(check_claims(&claims(multi), TokenKind::IdToken, &p, now, &mut t).is_ok());
        // access tokens need jti and the right client_id
        let mut at = with("jti", json!("j1"));
        at["client_id"] = json!("app");
        assert!(check_claims(&claims(at.clone()), TokenKind::AccessToken, &p, now, &mut t).is_ok());
        at["client_id"] = json!("someone-else");
        assert!(check_claims(&claims(at), TokenKind::AccessToken, &p, now, &mut t).is_err());
        assert!(
            check_claims(&claims(good), TokenKind::AccessToken, &p, now, &mut t)
                .unwrap_err()
                .detail
                .contains("jti")
        );
    }
}
