//! For administrators: the database's SSO integrations in summary (from
//! `sys.oidc_integrations`, which never shows secrets), live sessions with an End session
//! button, and the latest refused sign-ins and session ends (`sys.authentication_events`);
//! and for everyone signed in, a SQL console that runs statements through `/v1/execute`.

use std::sync::Arc;

use std::collections::HashMap;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Form;
use portcullis_catalog::privileges::{administers, session_principals};
use portcullis_catalog::{QueryResult, Value};
use serde::Deserialize;
use std::net::SocketAddr;

use super::session::{csrf, current, Current};
use super::{esc, message, respond, url_encode};
use crate::http::{cookies, HttpState};

async fn signed_in(
    state: &HttpState,
    headers: &HeaderMap,
    peer: SocketAddr,
) -> Result<Arc<portcullis_catalog::Session>, Response> {
    match current(state, headers, peer).await {
        Current::Session { session, .. } => Ok(session),
        Current::None => {
            Err((StatusCode::SEE_OTHER, [(header::LOCATION, "/ui/signin")]).into_response())
        }
        Current::Ended { reason, database } => Err(message(
            StatusCode::UNAUTHORIZED,
            "Session ended",
            &reason,
            &database,
        )),
    }
}

/// The administration page, rendered by askama (escapes every value by default).
#[derive(askama::Template)]
#[template(path = "admin.html")]
struct AdminPage {
    database: String,
    user: String,
    /// The anti-forgery value of the End session forms.
    csrf: String,
    notice: Option<String>,
    integrations: Vec<IntegrationView>,
    sessions: Vec<SessionView>,
    refused: Vec<EventView>,
    ended: Vec<EventView>,
}

struct IntegrationView {
    name: String,
    protocol: String,
    issuer: String,
    client_id: String,
    secret_set: bool,
    assigned_to: String,
    default_group: String,
    group_mappings: String,
    role_mappings: String,
    allowed: String,
    blocked: String,
    disabled: bool,
    id_tokens: bool,
}

struct SessionView {
    id: String,
    user: String,
    method: String,
    protocol: String,
    peer: String,
    started: String,
    token_expires: String,
    own: bool,
}

struct EventView {
    time: String,
    method: String,
    identity: String,
    peer: String,
    application: String,
    reason: String,
    detail: String,
}

/// A query's rows as column name → text (NULL as empty).
fn rows(result: &QueryResult) -> Vec<HashMap<&str, String>> {
    result
        .rows
        .iter()
        .map(|row| {
            result
                .columns
                .iter()
                .zip(row)
                .map(|(c, v)| {
                    let text = match v {
                        Value::Null => String::new(),
                        v => v.to_text().unwrap_or_default(),
                    };
                    (c.name.as_str(), text)
                })
                .collect()
        })
        .collect()
}

/// "a, b" from a JSON list, "x → a, y → b" from a JSON object (a mapping), else the text as
/// it is; "—" when empty.
fn list(text: &str) -> String {
    let plain = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let joined = match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(pairs)) => pairs
            .iter()
            .map(|(k, v)| format!("{k} → {}", plain(v)))
            .collect::<Vec<_>>()
            .join(", "),
        Ok(serde_json::Value::Array(items)) => {
            items.iter().map(plain).collect::<Vec<_>>().join(", ")
        }
        _ => text.to_owned(),
    };
    if joined.is_empty() {
        "—".to_owned()
    } else {
        joined
    }
}

fn both(a: &str, b: &str) -> String {
    match (list(a).as_str(), list(b).as_str()) {
        ("—", "—") => "—".to_owned(),
        (x, "—") => format!("groups: {x}"),
        ("—", y) => format!("roles: {y}"),
        (x, y) => format!("groups: {x}; roles: {y}"),
    }
}

const INTEGRATIONS: &str = "SELECT name, protocol, issuer, client_id, client_secret_set, \
     assigned_to, default_group, groups_claim_mappings, roles_claim_mappings, allowed_groups, \
     allowed_roles, blocked_groups, blocked_roles, disabled, enable_id_token_authentication \
     FROM sys.oidc_integrations ORDER BY name";
const SESSIONS: &str = "SELECT id, user, authentication_method, protocol, peer, start_time, \
     token_expires_at FROM sys.sessions ORDER BY start_time, id";
const REFUSED: &str = "SELECT time, method, identity, peer, application, reason, detail \
     FROM sys.authentication_events WHERE result = 'failure' ORDER BY id DESC LIMIT 20";
const ENDED: &str = "SELECT time, method, identity, peer, application, reason, detail \
     FROM sys.authentication_events WHERE event = 'session_end' \
     AND reason <> 'client_disconnected' ORDER BY id DESC LIMIT 20";

/// GET /ui/admin: the database's integrations in summary, its live sessions with an End
/// session button, and the latest refused sign-ins and session ends with their reasons —
/// all read through the signed-in session's own view of the `sys` tables.
pub async fn admin_page(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let session = match signed_in(&state, &headers, peer).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let catalog = state.auth.catalog();
    let cstate = catalog.state();
    if !administers(
        &cstate,
        &session_principals(&cstate, &session),
        session.database_id,
    ) {
        return message(
            StatusCode::FORBIDDEN,
            "Administrators only",
            &format!(
                "this page needs administrator rights on database \"{}\"",
                session.database
            ),
            &session.database,
        );
    }
    let mut results = Vec::new();
    for sql in [INTEGRATIONS, SESSIONS, REFUSED, ENDED] {
        match catalog.query(&session, sql, &[]).await {
            Ok(r) => results.push(r),
            Err(e) => {
                return message(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Administration",
                    &e.message,
                    &session.database,
                )
            }
        }
    }
    let events = |r: &QueryResult| {
        rows(r)
            .into_iter()
            .map(|e| EventView {
                time: e["time"].chars().take(19).collect(),
                method: e["method"].clone(),
                identity: e["identity"].clone(),
                peer: e["peer"].clone(),
                application: e["application"].clone(),
                reason: e["reason"].clone(),
                detail: e["detail"].clone(),
            })
            .collect()
    };
    let token = cookies::get(&headers, cookies::SESSION).unwrap_or_default();
    let page = AdminPage {
        database: session.database.clone(),
        user: session.user.clone(),
        csrf: csrf(&token),
        notice: query
            .get("ended")
            .map(|id| format!("Session {} ended.", id.chars().take(8).collect::<String>())),
        integrations: rows(&results[0])
            .into_iter()
            .map(|i| IntegrationView {
                name: i["name"].clone(),
                protocol: i["protocol"].clone(),
                issuer: i["issuer"].clone(),
                client_id: i["client_id"].clone(),
                secret_set: i["client_secret_set"] == "1",
                assigned_to: list(&i["assigned_to"]),
                default_group: list(&i["default_group"]),
                group_mappings: list(&i["groups_claim_mappings"]),
                role_mappings: list(&i["roles_claim_mappings"]),
                allowed: both(&i["allowed_groups"], &i["allowed_roles"]),
                blocked: both(&i["blocked_groups"], &i["blocked_roles"]),
                disabled: i["disabled"] == "1",
                id_tokens: i["enable_id_token_authentication"] == "1",
            })
            .collect(),
        sessions: rows(&results[1])
            .into_iter()
            .map(|s| SessionView {
                own: s["id"] == session.id,
                id: s["id"].clone(),
                user: s["user"].clone(),
                method: s["authentication_method"].clone(),
                protocol: s["protocol"].clone(),
                peer: s["peer"].clone(),
                started: s["start_time"].clone(),
                token_expires: if s["token_expires_at"].is_empty() {
                    "—".to_owned()
                } else {
                    s["token_expires_at"].clone()
                },
            })
            .collect(),
        refused: events(&results[2]),
        ended: events(&results[3]),
    };
    match askama::Template::render(&page) {
        Ok(html) => Html(html).into_response(),
        Err(e) => message(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Administration",
            &format!("the page could not be rendered: {e}"),
            &session.database,
        ),
    }
}

#[derive(Debug, Deserialize)]
pub struct EndSessionForm {
    pub id: String,
    pub csrf: String,
}

/// POST /ui/sessions/end: an administrator ends a session (the form carries the page's
/// anti-forgery value; the cross-site guard already refused other origins).
pub async fn end_session(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Result<Form<EndSessionForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let session = match signed_in(&state, &headers, peer).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let token = cookies::get(&headers, cookies::SESSION).unwrap_or_default();
    let Ok(Form(form)) = form.map_err(|_| ()).and_then(|f| {
        if f.csrf == csrf(&token) {
            Ok(f)
        } else {
            Err(())
        }
    }) else {
        return message(
            StatusCode::FORBIDDEN,
            "Not ended",
            "the form is not this page's (anti-forgery check failed); nothing was ended",
            &session.database,
        );
    };
    match state.auth.catalog().end_session(&session, &form.id).await {
        Ok(()) => (
            StatusCode::SEE_OTHER,
            [(
                header::LOCATION,
                format!("/ui/admin?ended={}", url_encode(&form.id)),
            )],
        )
            .into_response(),
        Err(e) => message(
            StatusCode::NOT_FOUND,
            "Not ended",
            &e.message,
            &session.database,
        ),
    }
}

/// GET /ui/console
pub async fn console_page(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let session = match signed_in(&state, &headers, peer).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let body = format!(
        "<h1>SQL console</h1><p>Signed in as {user} in {db}.</p>\
         <form id=\"console\" data-database=\"{db}\">\
         <label for=\"statement\">Statement</label>\
         <textarea id=\"statement\" name=\"statement\">SELECT CURRENT_USER(), CURRENT_GROUPS()</textarea>\
         <button type=\"submit\" id=\"run\">Run</button></form><div id=\"result\"></div>\
         <nav><a href=\"/ui/session\">Session</a></nav>\
         <script src=\"/ui/console.js\"></script>",
        user = esc(&session.user),
        db = esc(&session.database),
    );
    respond(StatusCode::OK, "SQL console", &body)
}
