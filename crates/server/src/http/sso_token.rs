//! `POST /v1/sso_token`: exchanges a provider token (ID or access token) for a Portcullis
//! access token, server to server (reference §12).

use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::Json;
use portcullis_auth::oidc::TokenKind;
use portcullis_auth::TokenSignIn;
use portcullis_catalog::{now, Protocol, SignInMethod};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiError, HttpState, Status};

/// `database` and exactly one of `id_token` and `access_token` (the schema says so with
/// `oneOf`, written by hand: the derive cannot).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsoTokenRequest {
    /// The database to sign in to; its SSO integration checks the token.
    pub database: String,
    pub id_token: Option<String>,
    pub access_token: Option<String>,
}

impl utoipa::ToSchema for SsoTokenRequest {}

impl utoipa::PartialSchema for SsoTokenRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Type};
        let with = |token: &str, description: &str| {
            ObjectBuilder::new()
                .property(
                    "database",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .description(Some(
                            "The database to sign in to; its SSO integration checks the token.",
                        )),
                )
                .required("database")
                .property(
                    token,
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .description(Some(description)),
                )
                .required(token)
                .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        };
        OneOfBuilder::new()
            .item(with("id_token", "An OpenID Connect ID token."))
            .item(with("access_token", "An OAuth 2.0 JWT access token."))
            .into()
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SsoTokenResponse {
    /// A Portcullis access token for `/v1/execute` (not the provider's token).
    pub access_token: String,
    pub username: String,
    pub database: String,
    /// Seconds; never beyond the provider token's own expiry.
    pub expires_in: i64,
    pub status: Status,
}

/// Exchanges a provider token for a Portcullis access token.
#[utoipa::path(post, path = "/v1/sso_token", request_body = SsoTokenRequest,
    responses((status = 200, body = SsoTokenResponse), (status = 400, body = super::StatusBody),
              (status = 401, body = super::StatusBody), (status = 403, body = super::StatusBody),
              (status = 404, body = super::StatusBody), (status = 429, body = super::StatusBody)))]
pub async fn sso_token(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: axum::http::HeaderMap,
    body: Result<Json<SsoTokenRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<SsoTokenResponse>, ApiError> {
    let Json(body) = body.map_err(|e| super::bad_body(e.body_text()))?;
    let (kind, token) = match (&body.id_token, &body.access_token) {
        (Some(t), None) => (TokenKind::IdToken, t),
        (None, Some(t)) => (TokenKind::AccessToken, t),
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "08P01",
                "give exactly one of id_token and access_token",
            ))
        }
    };
    let client = super::client_of(peer, &headers);
    let session = state
        .sso
        .sign_in(&TokenSignIn {
            kind,
            token,
            source_database: None,
            database: &body.database,
            integration: None,
            pool_id: None,
            client: &client,
            via: SignInMethod::Token,
            protocol: Protocol::Http,
            nonce: None,
        })
        .await?;
    let access_token = state.tokens.issue(&session).await;
    let expires_in = session.expires_at.map_or(0, |t| (t - now()).max(0));
    Ok(Json(SsoTokenResponse {
        access_token,
        username: session.user.clone(),
        database: session.database.clone(),
        expires_in,
        status: Status::ok("SSO token accepted"),
    }))
}
