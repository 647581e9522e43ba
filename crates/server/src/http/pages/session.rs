//! The session page (user, groups, roles, database, token expiry, sign out) and sign-out.
//! Browser sessions are renewed here with their refresh token when their token is about to
//! expire; when renewal fails the session ends with a page that says why.

use std::sync::Arc;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use portcullis_catalog::model::SYSTEM_DATABASE;
use portcullis_catalog::{now, Session};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{esc, message, respond, url_encode};
use crate::http::{cookies, HttpState};

/// The signed-in browser's session: its token and session, renewed when due.
pub enum Current {
    Session {
        token: String,
        session: Arc<Session>,
    },
    /// No cookie, or one for a session that is gone.
    None,
    /// The session ended at renewal; why.
    Ended { reason: String, database: String },
}

pub async fn current(state: &HttpState, headers: &HeaderMap, peer: SocketAddr) -> Current {
    let Some(token) = cookies::get(headers, cookies::SESSION) else {
        return Current::None;
    };
    // The session as it is now: a session whose authority ended is no session.
    let catalog = state.auth.catalog();
    let Some(session) = state
        .tokens
        .session_id(&token, peer.ip())
        .await
        .and_then(|id| catalog.live_session(&id).ok())
    else {
        return Current::None;
    };
    let database = session.database.clone();
    match state.flows.renew_if_due(session).await {
        Ok(s) if s.expires_at.is_none_or(|t| t > now()) => Current::Session { token, session: s },
        Ok(_) => Current::Ended {
            reason: "your session expired; sign in again".into(),
            database,
        },
        Err(e) => Current::Ended {
            reason: format!("your session ended: it could not be renewed ({e})"),
            database,
        },
    }
}

/// The anti-forgery value of the sign-out form, derived from the (secret) session cookie.
pub fn csrf(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(&Sha256::digest(format!("portcullis-csrf:{token}").as_bytes())[..18])
}

/// 303 to the session page, setting the session cookie.
pub fn to_session_page(state: &HttpState, token: &str) -> Response {
    let cookie = cookies::set_strict(cookies::SESSION, token, "/", None, state.secure_cookies);
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "/ui/session".to_owned()),
            (header::SET_COOKIE, cookie),
        ],
    )
        .into_response()
}

fn ended(state: &HttpState, reason: &str, database: &str) -> Response {
    let mut r = message(StatusCode::UNAUTHORIZED, "Session ended", reason, database);
    if let Ok(v) = cookies::clear(cookies::SESSION, "/", state.secure_cookies).parse() {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

fn when(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0).map_or_else(
        || unix.to_string(),
        |t| {
            format!(
                "{} UTC (in {} s)",
                t.format("%Y-%m-%d %H:%M:%S"),
                unix - now()
            )
        },
    )
}

/// GET /ui/session
pub async fn session_page(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let (token, session) = match current(&state, &headers, peer).await {
        Current::Session { token, session } => (token, session),
        Current::None => {
            return (StatusCode::SEE_OTHER, [(header::LOCATION, "/ui/signin")]).into_response()
        }
        Current::Ended { reason, database } => return ended(&state, &reason, &database),
    };
    let catalog = state.auth.catalog();
    let facts = catalog
        .query(
            &session,
            "SELECT current_user(), current_database(), current_groups(), current_roles()",
            &[],
        )
        .await
        .ok()
        .and_then(|r| r.rows.into_iter().next())
        .map(|row| {
            row.into_iter()
                .map(|v| v.to_text().unwrap_or_default())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let fact = |i: usize| facts.get(i).cloned().unwrap_or_default();
    let list = |text: String| {
        if text.is_empty() {
            "(none)".to_owned()
        } else {
            text.split(',')
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let mut body = format!(
        "<h1>Signed in</h1><dl>\
         <dt>User</dt><dd id=\"user\">{user}</dd>\
         <dt>Database</dt><dd id=\"database\">{db}</dd>\
         <dt>Groups</dt><dd id=\"groups\">{groups}</dd>\
         <dt>Roles</dt><dd id=\"roles\">{roles}</dd>\
         <dt>Signed in with</dt><dd id=\"method\">{method}</dd>",
        user = esc(&fact(0)),
        db = esc(&fact(1)),
        groups = esc(&list(fact(2))),
        roles = esc(&list(fact(3))),
        method = esc(&match &session.sso {
            Some(s) => format!("{} ({})", session.method.name(), s.integration),
            None => session.method.name().to_owned(),
        }),
    );
    if let Some(sso) = &session.sso {
        body.push_str(&format!(
            "<dt>Token expires</dt><dd id=\"token-expiry\">{}</dd>\
             <dt>Renewal</dt><dd id=\"renewal\">{}</dd>",
            esc(&when(sso.token_expires_at)),
            if state.flows.has_refresh(&session.id) {
                "with the provider's refresh token, before the token expires"
            } else {
                "none (no refresh token); the session ends when the token expires"
            }
        ));
    } else if let Some(t) = session.expires_at {
        body.push_str(&format!(
            "<dt>Session expires</dt><dd id=\"token-expiry\">{}</dd>",
            esc(&when(t))
        ));
    }
    body.push_str(&format!(
        "</dl><nav><a href=\"/ui/console\">SQL console</a><a href=\"/ui/admin\">Administration</a></nav>\
         <form method=\"post\" action=\"/ui/signout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <button type=\"submit\" id=\"signout\">Sign out</button></form>",
        esc(&csrf(&token))
    ));
    respond(StatusCode::OK, "Session", &body)
}

#[derive(Debug, Deserialize)]
pub struct SignOutForm {
    pub csrf: String,
}

/// POST /ui/signout: ends the session, revokes the refresh token at the provider.
pub async fn sign_out(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Result<Form<SignOutForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Some(token) = cookies::get(&headers, cookies::SESSION) else {
        return (StatusCode::SEE_OTHER, [(header::LOCATION, "/ui/signin")]).into_response();
    };
    let forged = form.map_or(true, |Form(f)| f.csrf != csrf(&token));
    if forged {
        return message(
            StatusCode::FORBIDDEN,
            "Sign-out refused",
            "the sign-out form did not come from this site's session page",
            SYSTEM_DATABASE,
        );
    }
    let catalog = state.auth.catalog();
    let session_id = state.tokens.session_id(&token, peer.ip()).await;
    let (database, revoked) = match session_id
        .as_deref()
        .and_then(|id| catalog.sessions.get(id))
    {
        Some(s) => (s.database.clone(), state.flows.sign_out(&s.id).await),
        None => (SYSTEM_DATABASE.to_owned(), false),
    };
    state.tokens.revoke(&token, session_id.as_deref()).await;
    let location = format!(
        "/ui/signin?database={}&signed_out={}",
        url_encode(&database),
        if revoked { "revoked" } else { "yes" }
    );
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, location),
            (
                header::SET_COOKIE,
                cookies::clear(cookies::SESSION, "/", state.secure_cookies),
            ),
        ],
    )
        .into_response()
}
