//! `POST /v1/saml/acs/<database>/<integration>`: a SAML integration's assertion consumer
//! service. The IdP's page posts the signed response here (HTTP-POST binding); it is checked
//! and used once, and the browser gets a session cookie and goes to the local page its
//! sign-in named. The IdP's POST is cross-site, so the `Lax` flow cookie is not on it: the
//! first answer is then a page that posts the same fields again from this origin, which
//! brings the cookie. A POST that says it was re-posted and still has no cookie is refused.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use portcullis_auth::saml::{AssertionPost, SamlCompleted};
use portcullis_catalog::SignInMethod;

use super::pages::signin::{sso_transport_ok, SSO_NEEDS_HTTPS};
use super::pages::{esc, respond};
use super::{cookies, HttpState};

/// The form of a POST to the assertion consumer service.
struct AcsForm {
    saml_response: String,
    relay_state: Option<String>,
    reposted: bool,
}

fn parse_form(body: &[u8]) -> Result<AcsForm, String> {
    let mut fields: HashMap<String, String> = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        if fields.insert(k.to_string(), v.to_string()).is_some() {
            return Err(format!("field {k} is given twice"));
        }
    }
    let saml_response = fields
        .remove("SAMLResponse")
        .filter(|v| !v.is_empty())
        .ok_or("the POST has no SAMLResponse")?;
    Ok(AcsForm {
        saml_response,
        relay_state: fields.remove("RelayState").filter(|v| !v.is_empty()),
        reposted: fields.get("reposted").is_some_and(|v| v == "1"),
    })
}

fn failed(status: StatusCode, text: &str) -> Response {
    let body = format!(
        "<h1>Sign-in failed</h1><p class=\"error\" id=\"error\">{}</p>\
         <p>No session was opened. <a href=\"/ui/signin\">Sign in again</a></p>",
        esc(text)
    );
    respond(status, "Sign-in failed", &body)
}

/// The page that posts the response again from this origin (so the flow cookie comes too).
fn repost_page(action: &str, form: &AcsForm) -> Response {
    let relay = form.relay_state.as_deref().unwrap_or_default();
    let body = format!(
        "<h1>Signing in…</h1>\
         <form id=\"continue\" method=\"post\" action=\"{}\">\
         <input type=\"hidden\" name=\"SAMLResponse\" value=\"{}\">\
         <input type=\"hidden\" name=\"RelayState\" value=\"{}\">\
         <input type=\"hidden\" name=\"reposted\" value=\"1\">\
         <noscript><button type=\"submit\">Continue</button></noscript></form>\
         <script src=\"/ui/continue.js\"></script>",
        esc(action),
        esc(&form.saml_response),
        esc(relay)
    );
    respond(StatusCode::OK, "Signing in", &body)
}

/// `GET /v1/saml/metadata/<database>/<integration>`: the server as that integration's service
/// provider (entity id, assertion consumer service), to give the IdP's administrator.
pub async fn sp_metadata(
    State(state): State<Arc<HttpState>>,
    Path((database, integration)): Path<(String, String)>,
) -> Response {
    match state.saml.sp_metadata(&database, &integration) {
        Some(xml) => (
            [(header::CONTENT_TYPE, "application/samlmetadata+xml")],
            xml,
        )
            .into_response(),
        None => failed(
            StatusCode::NOT_FOUND,
            &format!("no assigned SAML integration \"{integration}\" in database \"{database}\""),
        ),
    }
}

pub async fn assertion_consumer(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((database, integration)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let clear_flow = cookies::clear(cookies::SAML_FLOW, "/v1/saml/", state.secure_cookies);
    if !sso_transport_ok(&state, &peer) {
        return failed(StatusCode::FORBIDDEN, SSO_NEEDS_HTTPS);
    }
    let form = match parse_form(&body) {
        Ok(f) => f,
        Err(why) => return failed(StatusCode::BAD_REQUEST, &why),
    };
    // The re-post comes from this server's own page; a browser that says otherwise is refused.
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if form.reposted && fetch_site.is_some_and(|s| s != "same-origin") {
        return failed(
            StatusCode::FORBIDDEN,
            "the sign-in's second POST must come from this server's own page",
        );
    }
    let browser_state = cookies::get(&headers, cookies::SAML_FLOW);
    let bound = match form.relay_state.as_deref() {
        Some(r) if browser_state.is_none() && !form.reposted => {
            state.saml.is_browser_bound(r).await
        }
        _ => false,
    };
    if bound {
        let seg =
            |s: &str| -> String { url::form_urlencoded::byte_serialize(s.as_bytes()).collect() };
        let action = format!("/v1/saml/acs/{}/{}", seg(&database), seg(&integration));
        return repost_page(&action, &form);
    }
    let client = super::client_of(peer, &headers);
    let result = state
        .saml
        .complete(&AssertionPost {
            home_database: &database,
            integration: &integration,
            database: None,
            saml_response: &form.saml_response,
            relay_state: form.relay_state.as_deref(),
            browser_state: browser_state.as_deref(),
            client: &client,
            via: SignInMethod::Saml,
        })
        .await;
    let mut r = match result {
        Ok(SamlCompleted::Terminal { database }) => respond(
            StatusCode::OK,
            "Terminal signed in",
            &format!(
                "<h1>Terminal signed in</h1><p class=\"message\" id=\"message\">The terminal is \
                 signed in to database \"{}\". You can close this window.</p>",
                esc(&database)
            ),
        ),
        Ok(SamlCompleted::Browser(done)) => {
            let token = state.tokens.issue(&done.session).await;
            let session_cookie =
                cookies::set(cookies::SESSION, &token, "/", None, state.secure_cookies);
            let mut r = (
                StatusCode::SEE_OTHER,
                [(header::LOCATION, done.callback_path)],
            )
                .into_response();
            if let Ok(v) = session_cookie.parse() {
                r.headers_mut().append(header::SET_COOKIE, v);
            }
            r
        }
        Err(e) => failed(
            StatusCode::from_u16(e.reason().http_status()).unwrap_or(StatusCode::UNAUTHORIZED),
            &e.to_string(),
        ),
    };
    if let Ok(v) = clear_flow.parse() {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}
