//! `POST /v1/sso_authentication` (seed 000: start the authorization code flow) and
//! `GET /v1/callback` (the provider's redirect back: finish it, open a session, send the
//! browser to the local `sso_callback_path`).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use portcullis_auth::{BeginSignIn, CallbackParams};
use portcullis_catalog::model::SYSTEM_DATABASE;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::pages::signin::{
    begin_browser, redirect_to_provider, sso_transport_ok, SSO_NEEDS_HTTPS,
};
use super::pages::{esc, message, respond};
use super::{cookies, optional_json, ApiError, HttpState, Status};

/// Where the browser lands after sign-in when the request names no path.
const DEFAULT_CALLBACK_PATH: &str = "/ui/session";

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SsoAuthenticationRequest {
    /// Target database. Default `system`.
    pub database: Option<String>,
    /// Local path for the browser after sign-in: `/` or a page under `/ui/`, with an optional
    /// query string (no scheme, no host, no `//`, `..`, `%` escapes, fragment or backslash).
    /// Default `/ui/session`.
    #[serde(alias = "sso_callback_path\t")]
    #[schema(
        pattern = "^/(ui/[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*)?([?][A-Za-z0-9_=&.-]*)?$",
        max_length = 2048
    )]
    pub sso_callback_path: Option<String>,
    /// true (default): answer 302 to the provider; false: answer the URL in the body.
    pub do_redirect: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SsoAuthenticationResponse {
    /// The provider's authorization URL; empty when the database has no SSO integration.
    pub redirect: String,
    pub status: Status,
}

/// Starts a browser sign-in: the OpenID Connect authorization code flow, or a SAML
/// authentication request (HTTP-Redirect binding) when the database's integration is SAML.
#[utoipa::path(post, path = "/v1/sso_authentication", request_body = SsoAuthenticationRequest,
    responses((status = 302, description = "to the provider"), (status = 200, body = SsoAuthenticationResponse),
              (status = 400, body = super::StatusBody), (status = 401, body = super::StatusBody),
              (status = 404, body = super::StatusBody), (status = 429, body = super::StatusBody),
              (status = 502, body = super::StatusBody)))]
pub async fn sso_authentication(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: SsoAuthenticationRequest = optional_json(&body)?;
    if !sso_transport_ok(&state, &peer) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "28000",
            SSO_NEEDS_HTTPS,
        ));
    }
    let database = req.database.as_deref().unwrap_or(SYSTEM_DATABASE);
    let do_redirect = req.do_redirect.unwrap_or(true);
    let started = begin_browser(
        &state,
        &BeginSignIn {
            database,
            source_database: None,
            integration: None,
            pool_id: None,
            callback_path: req
                .sso_callback_path
                .as_deref()
                .unwrap_or(DEFAULT_CALLBACK_PATH),
            // Always bound to this browser, redirect or not: the JSON answer sets the same
            // flow cookie (a script on this origin then navigates to the URL).
            browser_bound: true,
        },
    )
    .await
    .map_err(ApiError::from)?;
    match (started, do_redirect) {
        (Some(s), true) => {
            let mut r = redirect_to_provider(&state, &s);
            *r.status_mut() = StatusCode::FOUND;
            Ok(r)
        }
        (Some(s), false) => {
            let cookie = super::pages::signin::flow_cookie(&state, &s);
            Ok((
                [(axum::http::header::SET_COOKIE, cookie)],
                Json(SsoAuthenticationResponse {
                    redirect: s.started.url,
                    status: Status::ok("Redirect to the identity provider"),
                }),
            )
                .into_response())
        }
        (None, true) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "28000",
            format!("database \"{database}\" has no SSO integration to redirect to"),
        )),
        (None, false) => Ok(Json(SsoAuthenticationResponse {
            redirect: String::new(),
            status: Status::ok("The database has no SSO integration"),
        })
        .into_response()),
    }
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    pub state: Option<String>,
    pub code: Option<String>,
    pub iss: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// GET /v1/callback: the provider's authorization response.
pub async fn callback(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    query: Result<Query<CallbackQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let clear_flow = cookies::clear(cookies::FLOW, "/v1/callback", state.secure_cookies);
    let Ok(Query(q)) = query else {
        return with_cookie(
            message(
                StatusCode::BAD_REQUEST,
                "Sign-in failed",
                "the callback's parameters are malformed",
                SYSTEM_DATABASE,
            ),
            &clear_flow,
        );
    };
    let params = CallbackParams {
        state: q.state.as_deref(),
        code: q.code.as_deref(),
        iss: q.iss.as_deref(),
        error: q.error.as_deref(),
        error_description: q.error_description.as_deref(),
    };
    let browser_state = cookies::get(&headers, cookies::FLOW);
    match state
        .flows
        .complete(
            &params,
            browser_state.as_deref(),
            &super::client_of(peer, &headers),
        )
        .await
    {
        Ok(done) => {
            let token = state.tokens.issue(&done.session).await;
            let session_cookie =
                cookies::set(cookies::SESSION, &token, "/", None, state.secure_cookies);
            let mut r = (
                StatusCode::SEE_OTHER,
                [(header::LOCATION, done.callback_path)],
            )
                .into_response();
            for c in [session_cookie, clear_flow] {
                if let Ok(v) = c.parse() {
                    r.headers_mut().append(header::SET_COOKIE, v);
                }
            }
            r
        }
        Err(e) => {
            // A token the provider sent but we refused was recorded by the token sign-in;
            // the flow's own refusals are recorded here.
            use portcullis_catalog::Reason as R;
            if matches!(
                e.reason(),
                R::FlowState
                    | R::FlowCode
                    | R::FlowBrowser
                    | R::ProviderError
                    | R::ProviderTokenEndpoint
                    | R::IntegrationDisabled
                    | R::UnknownIntegration
            ) {
                let attempt = portcullis_catalog::Attempt {
                    method: portcullis_catalog::SignInMethod::CodeFlow,
                    client: super::client_of(peer, &headers),
                    ..Default::default()
                };
                state
                    .auth
                    .catalog()
                    .refused(&attempt, e.reason(), &e.to_string());
            }
            let status =
                StatusCode::from_u16(e.reason().http_status()).unwrap_or(StatusCode::UNAUTHORIZED);
            let body = format!(
                "<h1>Sign-in failed</h1><p class=\"error\" id=\"error\">{}</p>\
                 <p>No session was opened. <a href=\"/ui/signin\">Sign in again</a></p>",
                esc(&e.to_string())
            );
            with_cookie(respond(status, "Sign-in failed", &body), &clear_flow)
        }
    }
}

fn with_cookie(mut r: Response, cookie: &str) -> Response {
    if let Ok(v) = cookie.parse() {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}
