//! `POST /v1/sso_device_grant` and `POST /v1/sso_device_grant_verify` (reference §12): the
//! device authorization grant for HTTP clients. The first starts it at the database's provider
//! and answers the code to show; the second waits up to `timeout` seconds for the approval and
//! may be called again until it answers a Portcullis access token or an error.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::Json;
use portcullis_auth::DeviceRequest;
use portcullis_catalog::model::SYSTEM_DATABASE;
use portcullis_catalog::{now, Reason};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::pages::signin::{sso_transport_ok, SSO_NEEDS_HTTPS};
use super::{bad_body, optional_json, ApiError, HttpState, Status};

/// `timeout` bounds of `/v1/sso_device_grant_verify` (seconds).
const TIMEOUT_DEFAULT: u64 = 30;
const TIMEOUT_MAX: u64 = 600;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceGrantRequest {
    /// The database to sign in to. Default `system`.
    pub database: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceGrantResponse {
    /// A secret only the caller holds: `…_verify` needs it (the user code alone is public).
    pub device_handle: String,
    pub verification_uri_complete: String,
    pub verification_uri: String,
    pub user_code: String,
    /// Seconds until the code expires.
    pub expires_in: u64,
    pub status: Status,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceGrantVerifyRequest {
    /// The `device_handle` the start call answered.
    pub device_handle: String,
    /// Accepted for compatibility; the handle decides.
    #[allow(dead_code)]
    pub user_code: Option<String>,
    /// Default `system`; must be the database the grant was started for.
    pub database: Option<String>,
    /// Seconds to wait for approval, 1–600. Default 30.
    #[schema(minimum = 1, maximum = 600)]
    pub timeout: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceGrantVerifyResponse {
    /// A Portcullis access token for `/v1/execute` (not the provider's token).
    pub access_token: String,
    pub username: String,
    pub database: String,
    pub expires_in: i64,
    pub status: Status,
}

/// Starts a device sign-in.
#[utoipa::path(post, path = "/v1/sso_device_grant", request_body = DeviceGrantRequest,
    responses((status = 200, body = DeviceGrantResponse), (status = 400, body = super::StatusBody),
              (status = 401, body = super::StatusBody), (status = 404, body = super::StatusBody),
              (status = 429, body = super::StatusBody), (status = 502, body = super::StatusBody)))]
pub async fn device_grant(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: axum::body::Bytes,
) -> Result<Json<DeviceGrantResponse>, ApiError> {
    let req: DeviceGrantRequest = optional_json(&body)?;
    if !sso_transport_ok(&state, &peer) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "28000",
            SSO_NEEDS_HTTPS,
        ));
    }
    let database = req.database.as_deref().unwrap_or(SYSTEM_DATABASE);
    let grant = state
        .device
        .start(&DeviceRequest {
            database,
            source_database: None,
            integration: None,
            pool_id: None,
        })
        .await
        .map_err(ApiError::from)?;
    let (code, device_handle) = state.device.hold(grant).await.map_err(ApiError::from)?;
    Ok(Json(DeviceGrantResponse {
        device_handle,
        verification_uri_complete: code
            .verification_uri_complete
            .unwrap_or_else(|| code.verification_uri.clone()),
        verification_uri: code.verification_uri,
        user_code: code.user_code,
        expires_in: code.expires_in.as_secs(),
        status: Status::ok("Device authorization initiated"),
    }))
}

/// Waits for a device sign-in's approval.
#[utoipa::path(post, path = "/v1/sso_device_grant_verify", request_body = DeviceGrantVerifyRequest,
    responses((status = 200, body = DeviceGrantVerifyResponse),
              (status = 408, description = "not approved within timeout; call again", body = super::StatusBody),
              (status = 400, body = super::StatusBody), (status = 401, body = super::StatusBody),
              (status = 404, body = super::StatusBody), (status = 429, body = super::StatusBody)))]
pub async fn device_grant_verify(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: axum::http::HeaderMap,
    body: Result<Json<DeviceGrantVerifyRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<DeviceGrantVerifyResponse>, ApiError> {
    let Json(req) = body.map_err(|e| bad_body(e.body_text()))?;
    let timeout = req.timeout.unwrap_or(TIMEOUT_DEFAULT);
    if !(1..=TIMEOUT_MAX).contains(&timeout) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "22023",
            format!("timeout must be between 1 and {TIMEOUT_MAX} seconds"),
        ));
    }
    let database = req.database.as_deref().unwrap_or(SYSTEM_DATABASE);
    if !state.device_guesses.allows(peer.ip()) {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "53400",
            "too many unknown device handles from this address; wait a minute",
        ));
    }
    let session = state
        .device
        .verify(
            &req.device_handle,
            database,
            Duration::from_secs(timeout),
            &super::client_of(peer, &headers),
        )
        .await
        .map_err(|e| {
            if e.reason() == Reason::UserCode {
                state.device_guesses.miss(peer.ip());
            }
            ApiError::from(e)
        })?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "57014",
                format!(
                    "the sign-in was not approved within {timeout} s; approve it at the \
                     provider and call again"
                ),
            )
        })?;
    let access_token = state.tokens.issue(&session).await;
    Ok(Json(DeviceGrantVerifyResponse {
        access_token,
        username: session.user.clone(),
        database: session.database.clone(),
        expires_in: session.expires_at.map_or(0, |t| (t - now()).max(0)),
        status: Status::ok("Device sign-in approved"),
    }))
}
