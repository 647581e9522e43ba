//! For administrators: the database's SSO integrations (from `sys.oidc_integrations`, which
//! never shows secrets) and live sessions; and for everyone signed in, a SQL console that
//! runs statements through `/v1/execute`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use portcullis_catalog::privileges::{administers, session_principals};

use super::session::{current, Current};
use super::{esc, message, respond, table};
use crate::http::HttpState;

async fn signed_in(
    state: &HttpState,
    headers: &HeaderMap,
) -> Result<Arc<portcullis_catalog::Session>, Response> {
    match current(state, headers).await {
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

/// GET /ui/admin
pub async fn admin_page(State(state): State<Arc<HttpState>>, headers: HeaderMap) -> Response {
    let session = match signed_in(&state, &headers).await {
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
    let mut body = format!("<h1>Administration of {}</h1>", esc(&session.database));
    for (title, id, sql) in [
        (
            "SSO integrations",
            "integrations",
            "SELECT * FROM sys.oidc_integrations",
        ),
        ("Live sessions", "sessions", "SELECT * FROM sys.sessions"),
    ] {
        body.push_str(&format!("<h2>{title}</h2>"));
        match catalog.query(&session, sql, &[]).await {
            Ok(r) => body.push_str(&table(id, &r)),
            Err(e) => body.push_str(&format!("<p class=\"error\">{}</p>", esc(&e.message))),
        }
    }
    body.push_str(
        "<nav><a href=\"/ui/session\">Session</a><a href=\"/ui/console\">SQL console</a></nav>",
    );
    respond(StatusCode::OK, "Administration", &body)
}

/// GET /ui/console
pub async fn console_page(State(state): State<Arc<HttpState>>, headers: HeaderMap) -> Response {
    let session = match signed_in(&state, &headers).await {
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
