//! The sign-in page of a database: its password form and its identity providers (seed 002's
//! IdP chooser). Choosing a provider POSTs `requestState`, `idpName`, … to `/sso/v1/sdk/idp`,
//! which answers 303 to the provider with the flow cookie.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use parking_lot::Mutex;
use portcullis_auth::oidc::authorization::random_value;
use portcullis_auth::BeginSignIn;
use portcullis_catalog::model::SYSTEM_DATABASE;
use portcullis_catalog::sso::SsoProperties;
use portcullis_catalog::{now, SignInMethod};
use serde::Deserialize;

use super::{esc, message, respond};
use crate::http::{cookies, HttpState};

/// How long a sign-in page's `requestState` stays usable.
const REQUEST_STATE_TTL: Duration = Duration::from_secs(600);
const REQUEST_STATE_CAPACITY: usize = 100_000;

/// `requestState` values handed to sign-in pages: each names its database and is used once.
#[derive(Default)]
pub struct RequestStates {
    states: Mutex<HashMap<String, (String, Instant)>>,
}

impl RequestStates {
    fn issue(&self, database: &str) -> Option<String> {
        let mut states = self.states.lock();
        if states.len() >= REQUEST_STATE_CAPACITY {
            states.retain(|_, (_, t)| t.elapsed() < REQUEST_STATE_TTL);
            if states.len() >= REQUEST_STATE_CAPACITY {
                return None;
            }
        }
        let value = random_value();
        states.insert(value.clone(), (database.to_owned(), Instant::now()));
        Some(value)
    }

    fn take(&self, value: &str) -> Option<String> {
        let (database, at) = self.states.lock().remove(value)?;
        (at.elapsed() < REQUEST_STATE_TTL).then_some(database)
    }

    pub fn sweep(&self) {
        self.states
            .lock()
            .retain(|_, (_, t)| t.elapsed() < REQUEST_STATE_TTL);
    }
}

/// SSO needs HTTPS, except for a browser on this machine talking plain http on loopback.
pub fn sso_transport_ok(state: &HttpState, peer: &SocketAddr) -> bool {
    state.https || peer.ip().is_loopback()
}

pub const SSO_NEEDS_HTTPS: &str =
    "single sign-on needs HTTPS: configure http_tls (plain http is allowed only on loopback)";

#[derive(Debug, Deserialize)]
pub struct SigninQuery {
    pub database: Option<String>,
    pub signed_out: Option<String>,
}

/// GET /ui/signin?database=…
pub async fn signin_page(
    State(state): State<Arc<HttpState>>,
    Query(q): Query<SigninQuery>,
) -> Response {
    let database = q.database.unwrap_or_else(|| SYSTEM_DATABASE.to_owned());
    let notice = match q.signed_out.as_deref() {
        Some("revoked") => {
            Some("You are signed out. The identity provider revoked the session's refresh token.")
        }
        Some(_) => Some("You are signed out."),
        None => None,
    };
    render(&state, &database, notice, None, StatusCode::OK)
}

fn render(
    state: &HttpState,
    database: &str,
    notice: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    if state.auth.catalog().state().database(database).is_none() {
        return message(
            StatusCode::NOT_FOUND,
            "No such database",
            &format!("database \"{database}\" does not exist"),
            SYSTEM_DATABASE,
        );
    }
    let Some(request_state) = state.request_states.issue(database) else {
        return message(
            StatusCode::SERVICE_UNAVAILABLE,
            "Busy",
            "too many sign-in pages are open; try again in a minute",
            database,
        );
    };
    let mut body = format!("<h1>Sign in to {}</h1>", esc(database));
    if let Some(n) = notice {
        body.push_str(&format!(
            "<p class=\"message\" id=\"message\">{}</p>",
            esc(n)
        ));
    }
    if let Some(e) = error {
        body.push_str(&format!("<p class=\"error\" id=\"error\">{}</p>", esc(e)));
    }
    let offered = state.flows.offered(database);
    if !offered.is_empty() {
        body.push_str("<fieldset><legend>Single sign-on</legend>");
        for (integration, _pool) in &offered {
            let client_id = SsoProperties::from_json(&integration.properties)
                .map(|p| p.client_id)
                .unwrap_or_default();
            body.push_str(&format!(
                "<form method=\"post\" action=\"/sso/v1/sdk/idp\">\
                 <input type=\"hidden\" name=\"requestState\" value=\"{rs}\">\
                 <input type=\"hidden\" name=\"idpName\" value=\"{name}\">\
                 <input type=\"hidden\" name=\"idpType\" value=\"OIDC\">\
                 <input type=\"hidden\" name=\"idpId\" value=\"{id}\">\
                 <input type=\"hidden\" name=\"appName\" value=\"portcullis\">\
                 <input type=\"hidden\" name=\"clientID\" value=\"{client}\">\
                 <button class=\"idp\" type=\"submit\" id=\"idp-{name}\">Sign in with {name}</button>\
                 </form>",
                rs = esc(&request_state),
                name = esc(&integration.name),
                id = integration.id,
                client = esc(&client_id),
            ));
        }
        body.push_str("</fieldset>");
    }
    body.push_str(&format!(
        "<fieldset><legend>Password</legend>\
         <form method=\"post\" action=\"/ui/password\">\
         <input type=\"hidden\" name=\"requestState\" value=\"{rs}\">\
         <input type=\"hidden\" name=\"database\" value=\"{db}\">\
         <label for=\"username\">User name</label>\
         <input type=\"text\" id=\"username\" name=\"username\" autocomplete=\"username\" placeholder=\"user@{db}\">\
         <label for=\"password\">Password</label>\
         <input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\">\
         <button type=\"submit\" id=\"password-submit\">Sign in</button></form></fieldset>",
        rs = esc(&request_state),
        db = esc(database),
    ));
    respond(status, "Sign in", &body)
}

/// Seed 002's form: which provider the person chose on the sign-in page.
#[derive(Debug, Deserialize)]
#[allow(non_snake_case, dead_code)]
pub struct IdpChoice {
    pub requestState: String,
    pub idpName: String,
    pub idpType: Option<String>,
    pub idpId: Option<String>,
    pub appName: Option<String>,
    pub clientID: Option<String>,
}

/// POST /sso/v1/sdk/idp: 303 to the chosen provider, with the flow cookie.
pub async fn choose_idp(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    form: Result<Form<IdpChoice>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(choice)) = form else {
        return message(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "the form needs requestState and idpName",
            SYSTEM_DATABASE,
        );
    };
    let Some(database) = state.request_states.take(&choice.requestState) else {
        return message(
            StatusCode::BAD_REQUEST,
            "Sign-in page expired",
            "this sign-in page is unknown, expired or was already used; open it again",
            SYSTEM_DATABASE,
        );
    };
    if !sso_transport_ok(&state, &peer) {
        return message(
            StatusCode::FORBIDDEN,
            "HTTPS needed",
            SSO_NEEDS_HTTPS,
            &database,
        );
    }
    let offered = state.flows.offered(&database);
    let Some((integration, pool)) = offered.iter().find(|(i, _)| i.name == choice.idpName) else {
        return message(
            StatusCode::BAD_REQUEST,
            "Unknown identity provider",
            &format!(
                "database \"{database}\" offers no identity provider named \"{}\"",
                choice.idpName
            ),
            &database,
        );
    };
    let started = begin_browser(
        &state,
        &BeginSignIn {
            database: &database,
            source_database: None,
            integration: Some(&integration.name),
            pool_id: *pool,
            callback_path: "/ui/session",
            browser_bound: true,
        },
    )
    .await;
    match started {
        Ok(Some(s)) => redirect_to_provider(&state, &s),
        Ok(None) => message(
            StatusCode::NOT_FOUND,
            "No identity provider",
            "the database has no SSO integration",
            &database,
        ),
        Err(e) => message(
            StatusCode::BAD_GATEWAY,
            "Sign-in failed",
            &e.to_string(),
            &database,
        ),
    }
}

/// Which browser flow a sign-in started: where its flow cookie goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowKind {
    /// OpenID Connect: the provider redirects to `/v1/callback`.
    Oidc,
    /// SAML: the IdP posts to `/v1/saml/acs/…`.
    Saml,
}

/// A started browser sign-in and its kind.
pub struct BrowserStart {
    pub started: portcullis_auth::Started,
    pub kind: FlowKind,
}

/// Starts a browser sign-in with the integration `req` picks: a SAML one sends an
/// authentication request, an OpenID Connect one the authorization code flow.
pub async fn begin_browser(
    state: &HttpState,
    req: &BeginSignIn<'_>,
) -> Result<Option<BrowserStart>, portcullis_auth::SsoError> {
    if let Some(started) = state.saml.begin(req).await? {
        return Ok(Some(BrowserStart {
            started,
            kind: FlowKind::Saml,
        }));
    }
    Ok(state.flows.begin(req).await?.map(|started| BrowserStart {
        started,
        kind: FlowKind::Oidc,
    }))
}

/// 303 See Other to the provider, binding the flow to this browser with a cookie that only
/// the callback path receives.
pub fn redirect_to_provider(state: &HttpState, started: &BrowserStart) -> Response {
    let cookie = flow_cookie(state, started);
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, started.started.url.clone()),
            (header::SET_COOKIE, cookie),
            (header::EXPIRES, "Sat, 01 Jan 2000 00:00:00 GMT".to_owned()),
        ],
    )
        .into_response()
}

/// The cookie that binds a started sign-in to the browser that started it: the callback is
/// refused in any other browser (no login CSRF, no session fixation).
pub fn flow_cookie(state: &HttpState, started: &BrowserStart) -> String {
    let (name, path) = match started.kind {
        FlowKind::Oidc => (cookies::FLOW, "/v1/callback"),
        FlowKind::Saml => (cookies::SAML_FLOW, "/v1/saml/"),
    };
    cookies::set(
        name,
        &started.started.state,
        path,
        Some(state.flow_seconds),
        state.secure_cookies,
    )
}

#[derive(Debug, Deserialize)]
#[allow(non_snake_case)]
pub struct PasswordForm {
    pub requestState: String,
    pub database: String,
    pub username: String,
    pub password: String,
}

/// POST /ui/password: the sign-in page's password form.
pub async fn password(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: axum::http::HeaderMap,
    form: Result<Form<PasswordForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(f)) = form else {
        return message(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "the form needs requestState, database, username and password",
            SYSTEM_DATABASE,
        );
    };
    if state.request_states.take(&f.requestState).as_deref() != Some(f.database.as_str()) {
        return message(
            StatusCode::BAD_REQUEST,
            "Sign-in page expired",
            "this sign-in page is unknown, expired or was already used; open it again",
            &f.database,
        );
    }
    let result = state
        .auth
        .sign_in_with_password(
            &f.username,
            Some(&f.database),
            &f.password,
            &crate::http::client_of(peer, &headers),
            SignInMethod::HttpLogin,
            Some(now() + state.token_seconds),
        )
        .await;
    match result {
        Ok(session) => {
            let token = state.tokens.issue(&session).await;
            super::session::to_session_page(&state, &token)
        }
        Err(e) => render(
            &state,
            &f.database,
            None,
            Some(&e.to_string()),
            StatusCode::UNAUTHORIZED,
        ),
    }
}
