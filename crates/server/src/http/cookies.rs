//! Cookies: reading one by name, and writing them with the attributes the server always sets
//! (`HttpOnly`, `SameSite`, `Secure` unless the listener is plain-http loopback).
//!
//! The session cookie is `SameSite=Strict` when a password sign-in sets it, so no other site's
//! page can make a browser send it. The one exception is the cookie the authorization code
//! flow sets at `/v1/callback`: that response ends a navigation the provider started, and a
//! Strict cookie set there would not be sent on the redirect to the page that follows (a
//! redirect chain begun by another site), so the signed-in user would land signed out; it is
//! `Lax`, which still never rides on another site's POST (and no GET changes anything). The
//! flow cookie itself must reach `/v1/callback` from the provider's redirect: `Lax` as well.

use axum::http::{header, HeaderMap};

/// The session cookie (value: an HTTP access token).
pub const SESSION: &str = "portcullis_session";
/// Binds a browser sign-in to the browser that started it (value: the flow's `state`).
pub const FLOW: &str = "portcullis_flow";
/// The same for a SAML sign-in (value: the request's id), sent only to `/v1/saml/`. The IdP's
/// POST to the assertion consumer service is cross-site, so a `Lax` cookie does not ride on
/// it: the service answers with a page that posts the response again from this origin, and
/// that same-site POST brings the cookie.
pub const SAML_FLOW: &str = "portcullis_saml_flow";

/// The value of cookie `name`, if the request carries it.
pub fn get(headers: &HeaderMap, name: &str) -> Option<String> {
    all(headers).find_map(|(k, v)| (k == name).then_some(v))
}

/// Every `name=value` pair of the request's cookies.
pub fn all(headers: &HeaderMap) -> impl Iterator<Item = (String, String)> + '_ {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            Some((k.to_owned(), v.to_owned()))
        })
}

/// A `Set-Cookie` value with `SameSite=Lax`. `max_age` None makes a browser-session cookie.
pub fn set(name: &str, value: &str, path: &str, max_age: Option<i64>, secure: bool) -> String {
    set_same_site(name, value, path, max_age, secure, "Lax")
}

/// A `Set-Cookie` value with `SameSite=Strict` (the session cookie of password sign-ins).
pub fn set_strict(
    name: &str,
    value: &str,
    path: &str,
    max_age: Option<i64>,
    secure: bool,
) -> String {
    set_same_site(name, value, path, max_age, secure, "Strict")
}

fn set_same_site(
    name: &str,
    value: &str,
    path: &str,
    max_age: Option<i64>,
    secure: bool,
    same_site: &str,
) -> String {
    let mut c = format!("{name}={value}; Path={path}; HttpOnly; SameSite={same_site}");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    c
}

/// A `Set-Cookie` value that deletes cookie `name`.
pub fn clear(name: &str, path: &str, secure: bool) -> String {
    set(name, "", path, Some(0), secure)
}

/// A cookie name made from a provider or domain name (seed 004's `OAuthToken_{name}`): only
/// characters allowed in a cookie name are kept.
pub fn domain_cookie_name(domain: &str) -> String {
    let safe: String = domain
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("OAuthToken_{safe}")
}
