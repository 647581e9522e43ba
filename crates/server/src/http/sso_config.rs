//! `GET /v1/sso_config`: what a native client (the `portcullis sql` CLI, a driver) needs to run
//! the sign-in itself — the integration's issuer, client id and scopes. Public values only (the
//! provider shows them in every authorization URL); never the client secret.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::Json;
use portcullis_auth::oidc::authorization::scopes;
use portcullis_auth::{choose_integration, IntegrationChoice, SsoError};
use portcullis_catalog::model::SYSTEM_DATABASE;
use portcullis_catalog::sso::SsoProperties;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, HttpState, Status};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SsoConfigQuery {
    /// The database whose integration signs in. Default `system`.
    pub database: Option<String>,
    /// A named integration of that database (`identityprovider`).
    pub identityprovider: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SsoConfigResponse {
    pub integration: String,
    pub issuer: String,
    pub client_id: String,
    /// Space-separated: `openid` and the integration's additional scopes.
    pub scopes: String,
    pub allow_offline_access: bool,
    pub status: Status,
}

/// The public sign-in settings of a database's SSO integration.
#[utoipa::path(get, path = "/v1/sso_config", params(SsoConfigQuery),
    responses((status = 200, body = SsoConfigResponse), (status = 400, body = super::StatusBody),
              (status = 401, body = super::StatusBody), (status = 403, body = super::StatusBody),
              (status = 404, body = super::StatusBody)))]
pub async fn sso_config(
    State(state): State<Arc<HttpState>>,
    query: Result<Query<SsoConfigQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<SsoConfigResponse>, ApiError> {
    let Query(q) = query.map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "08P01",
            format!("bad query: {}", e.body_text()),
        )
    })?;
    let database = q.database.as_deref().unwrap_or(SYSTEM_DATABASE);
    let catalog = state.auth.catalog().state();
    let record = choose_integration(
        &catalog,
        IntegrationChoice {
            source_database: None,
            database,
            integration: q.identityprovider.as_deref(),
            pool_id: None,
        },
    )?;
    let props = SsoProperties::from_json(&record.properties)
        .map_err(|e| ApiError::from(SsoError::Internal(e.message)))?;
    if props.disabled {
        return Err(SsoError::Disabled(record.name.clone()).into());
    }
    Ok(Json(SsoConfigResponse {
        integration: record.name.clone(),
        scopes: scopes(&props),
        issuer: props.issuer,
        client_id: props.client_id,
        allow_offline_access: props.allow_offline_access,
        status: Status::ok("SSO integration"),
    }))
}
