//! Cross-site request forgery: what another site's page can make a signed-in browser send.
//! Every request that may change something (any method but GET, HEAD and OPTIONS) must come
//! from this server's own pages — `Sec-Fetch-Site` same-origin (or none: typed by the user),
//! or, from browsers that do not send that header, an `Origin` equal to this server's — and the API under `/v1/` takes JSON bodies only
//! (a cross-site form can send `text/plain` or form bodies, never `application/json`), except
//! seed 004's form login on `/v1/login`. Clients that are not browsers send neither header and
//! pass. SAML assertion consumer services (posted to by IdPs' pages) are the one exception;
//! see `saml_acs`. A GET never changes anything (`GET /v1/execute` runs only statements that read).

use axum::extract::Request;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;

/// The assertion consumer services' path prefix.
pub const SAML_ACS: &str = "/v1/saml/acs/";

/// Why a request was refused as cross-site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrossSite {
    /// `Sec-Fetch-Site` says another site (or a sibling subdomain) sent it.
    FetchSite(String),
    /// `Origin` names another origin (or is `null`).
    Origin(String),
    /// An API body that is not JSON.
    NotJson(String),
}

impl CrossSite {
    fn into_api_error(self) -> ApiError {
        match self {
            Self::FetchSite(site) => ApiError::new(
                StatusCode::FORBIDDEN,
                "42501",
                format!("cross-site request refused (Sec-Fetch-Site: {site}); use this server's own pages"),
            ),
            Self::Origin(origin) => ApiError::new(
                StatusCode::FORBIDDEN,
                "42501",
                format!("cross-site request refused (Origin: {origin}); use this server's own pages"),
            ),
            Self::NotJson(ct) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "08P01",
                format!("the API takes Content-Type: application/json, not {ct:?}"),
            ),
        }
    }
}

fn text<'a>(headers: &'a HeaderMap, name: &header::HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Whether `origin` (`scheme://host[:port]`) is this server as the request's Host names it.
fn same_origin(origin: &str, host: Option<&str>) -> bool {
    let Some(host) = host else { return false };
    let Some((_, authority)) = origin.split_once("://") else {
        return false;
    };
    authority.eq_ignore_ascii_case(host)
}

/// The check, apart from axum so it can be tested directly.
pub fn check(method: &Method, path: &str, headers: &HeaderMap) -> Result<(), CrossSite> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    // A SAML assertion consumer service is posted to by the IdP's page (another site) with a
    // form by definition; no cookie authorizes anything there (the signed response, its
    // pending request and, on the same-site re-post it asks for, the flow cookie do).
    if path.starts_with(SAML_ACS) {
        return Ok(());
    }
    // Sec-Fetch-Site, where the browser sends it, decides (our pages' Referrer-Policy
    // no-referrer makes browsers send `Origin: null` even on our own forms); older browsers
    // send only Origin.
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    match fetch_site {
        Some("same-origin" | "none") => {}
        Some(site) => return Err(CrossSite::FetchSite(site.to_owned())),
        None => {
            if let Some(origin) = text(headers, &header::ORIGIN) {
                if !same_origin(origin, text(headers, &header::HOST)) {
                    return Err(CrossSite::Origin(origin.to_owned()));
                }
            }
        }
    }
    if path.starts_with("/v1/") {
        if let Some(ct) = text(headers, &header::CONTENT_TYPE) {
            let media = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            let form_login = path == "/v1/login" && media == "application/x-www-form-urlencoded";
            if media != "application/json" && !form_login {
                return Err(CrossSite::NotJson(media));
            }
        }
    }
    Ok(())
}

/// The middleware.
pub async fn guard(request: Request, next: Next) -> Response {
    match check(request.method(), request.uri().path(), request.headers()) {
        Ok(()) => next.run(request).await,
        Err(refusal) => {
            tracing::info!(target: "portcullis::audit", path = %request.uri().path(), refusal = ?refusal, "cross-site request refused");
            super::metrics::refused("cross_site");
            refusal.into_api_error().into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn only_same_origin_json_changes_pass() {
        let post = Method::POST;
        let host = ("host", "db.example:9090");
        let json = ("content-type", "application/json");
        let ok = [
            headers(&[host, json]),
            headers(&[host, json, ("origin", "https://db.example:9090")]),
            headers(&[host, json, ("sec-fetch-site", "same-origin")]),
            headers(&[host, json, ("sec-fetch-site", "none")]),
            headers(&[
                host,
                json,
                ("sec-fetch-site", "same-origin"),
                ("origin", "null"),
            ]),
            headers(&[host]),
        ];
        for h in &ok {
            assert!(check(&post, "/v1/execute/x", h).is_ok(), "{h:?}");
        }
        let bad = [
            headers(&[host, json, ("origin", "https://evil.example")]),
            headers(&[host, json, ("origin", "null")]),
            headers(&[host, json, ("sec-fetch-site", "cross-site")]),
            headers(&[host, json, ("sec-fetch-site", "same-site")]),
            headers(&[
                host,
                json,
                ("sec-fetch-site", "cross-site"),
                ("origin", "https://db.example:9090"),
            ]),
            headers(&[host, ("content-type", "text/plain")]),
            headers(&[host, ("content-type", "application/x-www-form-urlencoded")]),
            headers(&[host, ("content-type", "multipart/form-data; boundary=x")]),
        ];
        for h in &bad {
            assert!(check(&post, "/v1/execute/x", h).is_err(), "{h:?}");
        }
        // seed 004's form login, from this server's page or a client without a browser
        let form = ("content-type", "application/x-www-form-urlencoded");
        assert!(check(&post, "/v1/login", &headers(&[host, form])).is_ok());
        assert!(check(
            &post,
            "/v1/login",
            &headers(&[host, form, ("origin", "https://evil.example")])
        )
        .is_err());
        // pages' own forms are not API bodies, but still same-origin only
        assert!(check(&post, "/ui/signout", &headers(&[host, form])).is_ok());
        assert!(check(
            &post,
            "/ui/signout",
            &headers(&[host, form, ("sec-fetch-site", "cross-site")])
        )
        .is_err());
        assert!(check(
            &Method::GET,
            "/v1/execute/x",
            &headers(&[("sec-fetch-site", "cross-site")])
        )
        .is_ok());
    }
}
