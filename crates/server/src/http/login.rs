//! `POST /v1/login`: password sign-in; answers an access token and sets a session cookie.
//! With a form body (seed 004's domain login): `Domain` names an SSO integration (then
//! `id_token`) or a database's password domain (then `identity_username` +
//! `secret_password`); the answer is `{"DomainName", "UserName"}` and an
//! `OAuthToken_<Domain>` cookie.

use std::sync::Arc;

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use portcullis_catalog::{now, SignInMethod};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiError, HttpState, Status};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The FQUN, `user@database`.
    pub username: String,
    pub password: String,
    /// The database to sign in to: default the user's own, or `system` for a name without
    /// `@database`.
    pub database: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    pub access_token: String,
    pub username: String,
    pub database: String,
    pub expires_in: i64,
    pub status: Status,
}

/// Signs in with a password.
#[utoipa::path(post, path = "/v1/login", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 400, body = super::StatusBody),
              (status = 401, body = super::StatusBody), (status = 429, body = super::StatusBody)))]
pub async fn login(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        return super::domain_login::domain_login(&state, peer, &headers, query, &bytes).await;
    }
    let body: Result<Json<LoginRequest>, _> = Json::from_bytes(&bytes);
    let Json(body) = body.map_err(|e| super::bad_body(e.body_text()))?;
    let database = body
        .database
        .clone()
        .or_else(|| (!body.username.contains('@')).then(|| "system".to_owned()));
    let expires_at = now() + state.token_seconds;
    let session = state
        .auth
        .sign_in_with_password(
            &body.username,
            database.as_deref(),
            &body.password,
            &super::client_of(peer, &headers),
            SignInMethod::HttpLogin,
            Some(expires_at),
        )
        .await?;
    let token = state.tokens.issue(&session).await;
    let cookie = super::cookies::set_strict(
        super::cookies::SESSION,
        &token,
        "/",
        Some(state.token_seconds),
        state.secure_cookies,
    );
    let response = LoginResponse {
        access_token: token,
        username: session.user.clone(),
        database: session.database.clone(),
        expires_in: state.token_seconds,
        status: Status::ok("Login successful"),
    };
    Ok(([(header::SET_COOKIE, cookie)], Json(response)).into_response())
}
