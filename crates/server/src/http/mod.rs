//! The HTTP front end (axum): `/v1/login`, `/v1/execute/{database}`, `/v1/sso_token`, the
//! browser sign-in (`/v1/sso_authentication`, `/v1/callback`, the IdP chooser and the web
//! pages under `/ui`), the device grant (`/v1/sso_device_grant`, `…_verify`), `/healthz` and the OpenAPI description. API responses carry
//! `{"status":{"reason","sql_state","vendor_code"}}`; every response carries the security
//! headers.

pub mod cookies;
mod csrf;
mod device_grant;
mod domain_login;
mod execute;
mod flood;
mod listener;
mod login;
pub mod metrics;
pub mod pages;
mod saml_acs;
mod sso_authentication;
mod sso_config;
mod sso_token;
mod tokens;
mod transport;

use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use portcullis_auth::{PasswordAuthenticator, SignInError};
use portcullis_catalog::{CatalogError, Client, Reason};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

pub use flood::SignInStarts;
pub use listener::serve;
pub use portcullis_auth::Throttle;
pub use tokens::TokenTable;

/// What the handlers share.
pub struct HttpState {
    pub auth: Arc<PasswordAuthenticator>,
    pub sso: Arc<portcullis_auth::SsoAuthenticator>,
    pub tokens: TokenTable,
    pub token_seconds: i64,
    /// Whether cookies are `Secure` (the listener is HTTPS).
    pub secure_cookies: bool,
    /// Whether the listener is HTTPS (SSO over plain http is refused except on loopback).
    pub https: bool,
    pub flows: Arc<portcullis_auth::CodeFlow>,
    /// SAML browser sign-ins (requests sent to IdPs, assertions used).
    pub saml: Arc<portcullis_auth::saml::SamlFlow>,
    /// Device grants started over HTTP (`/v1/sso_device_grant`).
    pub device: Arc<portcullis_auth::DeviceFlow>,
    /// Unknown user codes at `/v1/sso_device_grant_verify`, per address.
    pub device_guesses: Throttle,
    pub request_states: pages::signin::RequestStates,
    /// Sign-ins started per address.
    pub sign_in_starts: flood::SignInStarts,
    /// Lifetime of a pending browser sign-in (the flow cookie's Max-Age).
    pub flow_seconds: i64,
    /// Renders `/metrics` (none if another recorder was installed first).
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

/// The status object of every response (seed 000).
#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    pub reason: String,
    pub sql_state: String,
    pub vendor_code: i32,
}

impl Status {
    pub fn ok(reason: &str) -> Self {
        Self {
            reason: reason.into(),
            sql_state: "00000".into(),
            vendor_code: 0,
        }
    }
}

/// A response that is only a status.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusBody {
    pub status: Status,
}

/// An error answered with its HTTP status and the status object.
#[derive(Debug)]
pub struct ApiError {
    pub http: StatusCode,
    pub sql_state: String,
    pub reason: String,
}

impl ApiError {
    pub fn new(http: StatusCode, sql_state: &str, reason: impl Into<String>) -> Self {
        Self {
            http,
            sql_state: sql_state.into(),
            reason: reason.into(),
        }
    }
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        let http = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
        let reason = match e.position {
            Some(p) => format!("{} (at character {p})", e.message),
            None => e.message,
        };
        Self::new(http, e.sqlstate, reason)
    }
}

impl ApiError {
    /// A refusal: its reason code decides the HTTP status and the SQLSTATE.
    pub fn refused(reason: Reason, message: impl Into<String>) -> Self {
        let http = StatusCode::from_u16(reason.http_status()).unwrap_or(StatusCode::UNAUTHORIZED);
        Self::new(http, reason.sqlstate(), message)
    }
}

impl From<SignInError> for ApiError {
    fn from(e: SignInError) -> Self {
        Self::refused(e.reason(), e.to_string())
    }
}

impl From<portcullis_auth::SsoError> for ApiError {
    fn from(e: portcullis_auth::SsoError) -> Self {
        Self::refused(e.reason(), e.to_string())
    }
}

impl From<portcullis_auth::ldap::CleartextError> for ApiError {
    fn from(e: portcullis_auth::ldap::CleartextError) -> Self {
        Self::refused(e.reason(), e.to_string())
    }
}

impl From<portcullis_catalog::EndReason> for ApiError {
    fn from(e: portcullis_catalog::EndReason) -> Self {
        Self::refused(e.reason(), e.message())
    }
}

/// Who sent a request: its address and the product its `User-Agent` names first.
pub fn client_of(peer: std::net::SocketAddr, headers: &axum::http::HeaderMap) -> Client {
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_whitespace().next());
    Client::new(peer.to_string(), agent)
}

/// A request body that is not what the endpoint takes: 400, `08P01`.
pub fn bad_body(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "08P01",
        format!("bad request body: {e}"),
    )
}

/// A JSON body whose fields are all optional: an empty body means the defaults.
pub fn optional_json<T: Default + serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(bad_body)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = StatusBody {
            status: Status {
                reason: self.reason,
                sql_state: self.sql_state,
                vendor_code: i32::from(self.http.as_u16()),
            },
        };
        let mut response = (self.http, Json(body)).into_response();
        if self.http == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer, Basic realm=\"portcullis\""),
            );
        }
        response
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Portcullis HTTP API",
        description = "Sign-in and catalog statements over HTTP"
    ),
    paths(
        login::login,
        sso_token::sso_token,
        sso_authentication::sso_authentication,
        device_grant::device_grant,
        device_grant::device_grant_verify,
        sso_config::sso_config,
        execute::execute_post,
        execute::execute_get,
        healthz
    ),
    components(schemas(
        Status,
        StatusBody,
        login::LoginRequest,
        login::LoginResponse,
        sso_token::SsoTokenRequest,
        sso_token::SsoTokenResponse,
        sso_authentication::SsoAuthenticationRequest,
        sso_authentication::SsoAuthenticationResponse,
        device_grant::DeviceGrantRequest,
        device_grant::DeviceGrantResponse,
        device_grant::DeviceGrantVerifyRequest,
        device_grant::DeviceGrantVerifyResponse,
        sso_config::SsoConfigResponse,
        execute::ExecuteRequest,
        execute::ExecuteResponse,
        execute::ColumnInfo,
        Health
    ))
)]
pub struct ApiDoc;

/// Liveness only (the counters are at `/metrics`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: Status,
}

#[utoipa::path(get, path = "/healthz", responses((status = 200, body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health {
        status: Status::ok("ok"),
    })
}

async fn openapi_json() -> Response {
    Json(ApiDoc::openapi()).into_response()
}

async fn openapi_yaml() -> Response {
    match ApiDoc::openapi().to_yaml() {
        Ok(yaml) => ([(header::CONTENT_TYPE, "application/yaml")], yaml).into_response(),
        Err(e) => {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "XX000", e.to_string()).into_response()
        }
    }
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "42704", "no such endpoint")
}

/// The HTTP application.
pub fn app(state: Arc<HttpState>) -> Router {
    Router::new()
        .route("/v1/login", post(login::login))
        .route("/v1/sso_token", post(sso_token::sso_token))
        .route(
            "/v1/execute/{database}",
            post(execute::execute_post).get(execute::execute_get),
        )
        .route(
            "/v1/sso_authentication",
            post(sso_authentication::sso_authentication),
        )
        .route("/v1/callback", get(sso_authentication::callback))
        .route(
            "/v1/saml/acs/{database}/{integration}",
            post(saml_acs::assertion_consumer),
        )
        .route(
            "/v1/saml/metadata/{database}/{integration}",
            get(saml_acs::sp_metadata),
        )
        .route("/v1/sso_device_grant", post(device_grant::device_grant))
        .route("/v1/sso_config", get(sso_config::sso_config))
        .route(
            "/v1/sso_device_grant_verify",
            post(device_grant::device_grant_verify),
        )
        .route("/sso/v1/sdk/idp", post(pages::signin::choose_idp))
        .route(
            "/",
            get(|| async { axum::response::Redirect::to("/ui/signin") }),
        )
        .route("/ui/signin", get(pages::signin::signin_page))
        .route(
            "/ui/terminal",
            get(pages::terminal::terminal_page).post(pages::terminal::terminal_start),
        )
        .route("/ui/password", post(pages::signin::password))
        .route("/ui/session", get(pages::session::session_page))
        .route("/ui/signout", post(pages::session::sign_out))
        .route("/ui/admin", get(pages::admin::admin_page))
        .route("/ui/sessions/end", post(pages::admin::end_session))
        .route("/ui/console", get(pages::admin::console_page))
        .route("/ui/style.css", get(pages::assets::style))
        .route("/ui/console.js", get(pages::assets::console_js))
        .route("/ui/continue.js", get(pages::assets::continue_js))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::metrics))
        .route("/openapi.json", get(openapi_json))
        .route("/openapi.yaml", get(openapi_yaml))
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(1 << 20))
        .layer(axum::middleware::from_fn(csrf::guard))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            flood::guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            transport::guard,
        ))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// Headers on every response: no sniffing, no caching (tokens and sessions pass through),
/// no framing, no scripts or styles but the server's own, no referrer (authorization
/// responses carry codes in the URL).
async fn security_headers(mut response: Response) -> Response {
    use axum::http::HeaderValue;
    let h = response.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
             object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}
