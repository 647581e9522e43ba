//! Cookies: reading one by name, and writing them with the attributes the server always sets
//! (`HttpOnly`, `SameSite=Lax`, `Secure` unless the listener is plain-http loopback).

use axum::http::{header, HeaderMap};

/// The session cookie (value: an HTTP access token).
pub const SESSION: &str = "portcullis_session";
/// Binds a browser sign-in to the browser that started it (value: the flow's `state`).
pub const FLOW: &str = "portcullis_flow";

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

/// A `Set-Cookie` value. `max_age` None makes a browser-session cookie.
pub fn set(name: &str, value: &str, path: &str, max_age: Option<i64>, secure: bool) -> String {
    let mut c = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Lax");
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
