//! `/ui/terminal`: where a person signs a waiting PostgreSQL client (psql) in through a SAML
//! integration. The GET shows a form (the code filled in from the link, and what it signs in:
//! the database and the terminal's address) and changes nothing; the POST — this page's own
//! form, same-origin — checks the code and sends the browser to the IdP. Unknown codes are
//! throttled per address on both, so neither can be used to search for a live code. The
//! session goes to the terminal; the browser gets no cookie.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

use super::signin::{
    redirect_to_provider, sso_transport_ok, BrowserStart, FlowKind, SSO_NEEDS_HTTPS,
};
use super::{esc, message, respond};
use crate::http::HttpState;
use portcullis_catalog::model::SYSTEM_DATABASE;

#[derive(Debug, Deserialize)]
pub struct CodeQuery {
    pub user_code: Option<String>,
}

fn form_page(code: &str, about: Option<String>, error: Option<&str>) -> Response {
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let body = format!(
        "<h1>Sign in a terminal</h1>{}{}\
         <form method=\"post\" action=\"/ui/terminal\">\
         <label for=\"user_code\">Code shown in the terminal</label>\
         <input type=\"text\" id=\"user_code\" name=\"user_code\" value=\"{}\" autocomplete=\"off\">\
         <button type=\"submit\" id=\"continue\">Continue to the identity provider</button></form>\
         <p class=\"muted\">Only continue if you started this sign-in yourself: the terminal \
         gets your session.</p>",
        error
            .map(|e| format!("<p class=\"error\" id=\"error\">{}</p>", esc(e)))
            .unwrap_or_default(),
        about
            .map(|a| format!("<p class=\"message\" id=\"about\">{}</p>", esc(&a)))
            .unwrap_or_default(),
        esc(code)
    );
    respond(status, "Sign in a terminal", &body)
}

fn about(t: &portcullis_auth::saml::terminal::TerminalRequest) -> String {
    format!(
        "This signs in a PostgreSQL client connecting from {} to database \"{}\" through \
         \"{}\".",
        t.peer, t.database, t.integration
    )
}

/// GET /ui/terminal?user_code=…: the form, saying what a code signs in if it is a live one.
pub async fn terminal_page(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(q): Query<CodeQuery>,
) -> Response {
    let code = q.user_code.unwrap_or_default();
    if code.is_empty() {
        return form_page(&code, None, None);
    }
    if !state.device_guesses.allows(peer.ip()) {
        return form_page(
            &code,
            None,
            Some("too many unknown codes from this address; wait a minute"),
        );
    }
    let found = state.saml.terminal(&code).await;
    if found.is_none() {
        state.device_guesses.miss(peer.ip());
    }
    form_page(&code, found.as_ref().map(about), None)
}

/// POST /ui/terminal: the code, then the IdP.
pub async fn terminal_start(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    form: Result<Form<CodeQuery>, axum::extract::rejection::FormRejection>,
) -> Response {
    if !sso_transport_ok(&state, &peer) {
        return message(
            StatusCode::FORBIDDEN,
            "HTTPS needed",
            SSO_NEEDS_HTTPS,
            SYSTEM_DATABASE,
        );
    }
    let code = form
        .ok()
        .and_then(|Form(f)| f.user_code)
        .unwrap_or_default();
    if !state.device_guesses.allows(peer.ip()) {
        return form_page(
            &code,
            None,
            Some("too many unknown codes from this address; wait a minute"),
        );
    }
    if state.saml.terminal(&code).await.is_none() {
        state.device_guesses.miss(peer.ip());
        return form_page(
            &code,
            None,
            Some("this code is unknown or expired, or its terminal stopped waiting"),
        );
    }
    match state.saml.begin_terminal(&code).await {
        Ok(started) => redirect_to_provider(
            &state,
            &BrowserStart {
                started,
                kind: FlowKind::Saml,
            },
        ),
        Err(e) => message(
            StatusCode::BAD_GATEWAY,
            "Sign-in failed",
            &e.to_string(),
            SYSTEM_DATABASE,
        ),
    }
}
