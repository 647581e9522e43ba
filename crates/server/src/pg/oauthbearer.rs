//! SASL OAUTHBEARER (RFC 7628) as PostgreSQL 18 speaks it: parsing the client's initial
//! response (`n,,\x01auth=Bearer <token>\x01\x01`, or an empty `auth=` to ask where to get a
//! token), the JSON error challenge (`status`, `openid-configuration`, `scope`) that answers a
//! discovery request or a refused token, and the client's one-byte `\x01` reply after it.
//! Modelled on PostgreSQL's `auth-oauth.c`; the messages themselves are pgwire's.

/// The mechanism's name in AuthenticationSASL.
pub const MECHANISM: &str = "OAUTHBEARER";

/// What the client's initial response asked for.
#[derive(Debug, PartialEq, Eq)]
pub enum Initial<'a> {
    /// An empty `auth=`: the client wants to know the provider and scopes.
    Discovery,
    /// `auth=Bearer <token>`.
    Token(&'a str),
}

/// Why a message is not OAUTHBEARER: the client is told this (08P01), never any of the token.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("malformed OAUTHBEARER message: {0}")]
    Syntax(&'static str),
    /// An authorization identity (`a=`): PostgreSQL refuses it with 0A000.
    #[error("client uses authorization identity, but it is not supported")]
    AuthorizationIdentity,
    #[error(
        "malformed OAUTHBEARER message: the server does not support channel binding for OAuth"
    )]
    ChannelBinding,
}

impl Malformed {
    pub fn sqlstate(&self) -> &'static str {
        match self {
            Self::AuthorizationIdentity => "0A000",
            _ => "08P01",
        }
    }
}

/// Parses the client's initial response (RFC 7628 §3.1; PostgreSQL's `oauth_exchange`).
pub fn parse_initial(input: &[u8]) -> Result<Initial<'_>, Malformed> {
    let text = std::str::from_utf8(input).map_err(|_| Malformed::Syntax("not UTF-8"))?;
    if text.is_empty() || text.contains('\0') {
        return Err(Malformed::Syntax("empty, or a NUL inside"));
    }
    let rest = match text.as_bytes()[0] {
        b'n' | b'y' => &text[1..],
        b'p' => return Err(Malformed::ChannelBinding),
        _ => return Err(Malformed::Syntax("unexpected channel-binding flag")),
    };
    let rest = rest.strip_prefix(',').ok_or(Malformed::Syntax(
        "comma expected after the channel-binding flag",
    ))?;
    if rest.starts_with('a') {
        return Err(Malformed::AuthorizationIdentity);
    }
    let rest = rest.strip_prefix(',').ok_or(Malformed::Syntax(
        "comma expected after the authorization identity",
    ))?;
    let rest = rest
        .strip_prefix('\x01')
        .ok_or(Malformed::Syntax("key-value separator expected"))?;
    let pairs = rest
        .strip_suffix("\x01\x01")
        .or_else(|| (rest == "\x01").then_some(""))
        .ok_or(Malformed::Syntax(
            "the message does not end with an empty key-value pair",
        ))?;
    let mut auth = None;
    for pair in pairs.split('\x01').filter(|_| !pairs.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or(Malformed::Syntax("a key-value pair without ="))?;
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(Malformed::Syntax("a key that is not letters"));
        }
        if !value
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) || matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        {
            return Err(Malformed::Syntax(
                "a value with characters RFC 7628 does not allow",
            ));
        }
        // Unknown keys (host, port, …) are ignored, as RFC 7628 says.
        if key == "auth" && auth.replace(value).is_some() {
            return Err(Malformed::Syntax("auth is given twice"));
        }
    }
    let auth = auth.ok_or(Malformed::Syntax("the message has no auth value"))?;
    if auth.is_empty() {
        return Ok(Initial::Discovery);
    }
    Ok(Initial::Token(bearer_token(auth).unwrap_or("")))
}

/// The token of `Bearer <token>` (scheme case-insensitive, RFC 6750 b64token), or `None` if the
/// value is not one — answered like a refused token, as PostgreSQL does.
fn bearer_token(auth: &str) -> Option<&str> {
    let (scheme, token) = auth.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case("bearer ") {
        return None;
    }
    let token = token.trim_start_matches(' ');
    let body = token.trim_end_matches('=');
    let ok = !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        });
    ok.then_some(token)
}

/// The error challenge (RFC 7628 §3.2.2) PostgreSQL sends for a discovery request or a refused
/// token: libpq reads `openid-configuration` and `scope`, and retries only on
/// `invalid_token`.
pub fn challenge(issuer: &str, scope: &str) -> String {
    let configuration = if issuer.contains("/.well-known/") {
        issuer.to_owned()
    } else {
        format!("{issuer}/.well-known/openid-configuration")
    };
    serde_json::json!({
        "status": "invalid_token",
        "openid-configuration": configuration,
        "scope": scope,
    })
    .to_string()
}

/// Whether the client's reply to the challenge is the single `\x01` RFC 7628 §3.2.3 asks for.
pub fn is_kvsep(reply: &[u8]) -> bool {
    reply == [0x01]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_libpq_18_sends_is_understood() {
        assert_eq!(
            parse_initial(b"n,,\x01auth=\x01\x01"),
            Ok(Initial::Discovery)
        );
        assert_eq!(
            parse_initial(b"n,,\x01auth=Bearer abc.DEF-_~+/==\x01\x01"),
            Ok(Initial::Token("abc.DEF-_~+/=="))
        );
        // Unknown keys are ignored; the scheme is case-insensitive; `y` is fine.
        assert_eq!(
            parse_initial(b"y,,\x01host=db\x01auth=bEaReR   t0k\x01port=5\x01\x01"),
            Ok(Initial::Token("t0k"))
        );
        // Not a bearer token: refused like a bad token (never echoed).
        assert_eq!(
            parse_initial(b"n,,\x01auth=Basic xyz\x01\x01"),
            Ok(Initial::Token(""))
        );
        assert_eq!(
            parse_initial(b"n,,\x01auth=Bearer a=b\x01\x01"),
            Ok(Initial::Token(""))
        );
    }

    #[test]
    fn malformed_messages_are_refused() {
        for bad in [
            &b""[..],
            b"n,,",
            b"x,,\x01auth=\x01\x01",
            b"n,\x01auth=\x01\x01",
            b"n,,auth=\x01\x01",
            b"n,,\x01auth=\x01",
            b"n,,\x01auth=\x01\x01trailing",
            b"n,,\x01host=x\x01\x01",
            b"n,,\x01auth=\x01auth=\x01\x01",
            b"n,,\x01a-b=1\x01auth=\x01\x01",
            b"n,,\x01auth=Bearer \x00x\x01\x01",
            b"n,,\x01auth=Bearer \xff\x01\x01",
        ] {
            assert!(
                matches!(parse_initial(bad), Err(Malformed::Syntax(_))),
                "{bad:?}"
            );
        }
        assert_eq!(
            parse_initial(b"p=tls-unique,,\x01auth=\x01\x01"),
            Err(Malformed::ChannelBinding)
        );
        let authzid = parse_initial(b"n,a=alice,\x01auth=\x01\x01").unwrap_err();
        assert_eq!(authzid, Malformed::AuthorizationIdentity);
        assert_eq!(authzid.sqlstate(), "0A000");
    }

    #[test]
    fn the_challenge_is_what_postgresql_sends() {
        let c: serde_json::Value =
            serde_json::from_str(&challenge("https://idp.example", "openid email")).unwrap();
        assert_eq!(c["status"], "invalid_token");
        assert_eq!(
            c["openid-configuration"],
            "https://idp.example/.well-known/openid-configuration"
        );
        assert_eq!(c["scope"], "openid email");
        let verbatim: serde_json::Value = serde_json::from_str(&challenge(
            "https://idp.example/.well-known/oauth-authorization-server",
            "openid",
        ))
        .unwrap();
        assert_eq!(
            verbatim["openid-configuration"],
            "https://idp.example/.well-known/oauth-authorization-server"
        );
        assert!(is_kvsep(b"\x01"));
        assert!(!is_kvsep(b"\x01\x01"));
        assert!(!is_kvsep(b""));
    }
}
