//! `POST|GET /v1/execute/{database}`: one statement for a session named by a bearer token, the
//! session cookie, or HTTP Basic credentials (a one-request session).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use portcullis_catalog::{
    now, Client, Protocol, Reason, Session, SignInMethod, StatementResult, Value,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiError, HttpState, Status};

#[derive(Debug, Deserialize, ToSchema)]
pub struct ExecuteRequest {
    /// One SQL statement.
    pub statement: String,
    /// `array` (default: columns plus rows as arrays) or `collection` (rows as objects).
    #[schema(pattern = "^(array|collection)$")]
    pub format: Option<String>,
    /// Values for `{name}` placeholders in the statement.
    #[schema(value_type = Option<Object>)]
    pub params: Option<HashMap<String, serde_json::Value>>,
    /// Accepted for compatibility; the database in the path wins.
    #[allow(dead_code)]
    pub database: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExecuteQuery {
    /// One SQL statement (a read: GET changes nothing).
    pub statement: String,
    /// `array` (default) or `collection`.
    #[param(pattern = "^(array|collection)$")]
    pub format: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ColumnInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExecuteResponse {
    pub query_id: String,
    pub status: Status,
    pub columns: Vec<ColumnInfo>,
    #[schema(value_type = Vec<Object>)]
    pub data: Vec<serde_json::Value>,
}

/// The session a request runs in, removed afterwards if it was made for this request.
struct RequestSession {
    session: Arc<Session>,
    transient: bool,
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(str::trim)
}

fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let decoded = B64.decode(value.strip_prefix("Basic ")?.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// The session cookie, or a seed-004 `OAuthToken_<domain>` cookie.
fn cookie(headers: &HeaderMap) -> Option<String> {
    super::cookies::get(headers, super::cookies::SESSION).or_else(|| {
        super::cookies::all(headers).find_map(|(k, v)| k.starts_with("OAuthToken_").then_some(v))
    })
}

async fn authenticate(
    state: &HttpState,
    headers: &HeaderMap,
    database: &str,
    client: &Client,
    peer: std::net::SocketAddr,
) -> Result<RequestSession, ApiError> {
    let unauthorized = |reason: &str| ApiError::new(StatusCode::UNAUTHORIZED, "28000", reason);
    if let Some((user, password)) = basic(headers) {
        let session = state
            .auth
            .sign_in_with_password(
                &user,
                Some(database),
                &password,
                client,
                SignInMethod::HttpLogin,
                Some(now() + 60),
            )
            .await?;
        return Ok(RequestSession {
            session,
            transient: true,
        });
    }
    let token = bearer(headers)
        .map(str::to_owned)
        .or_else(|| cookie(headers))
        .ok_or_else(|| {
            unauthorized("sign in first: send Authorization: Bearer <token> or Basic credentials")
        })?;
    let known = if looks_like_jwt(&token) {
        None
    } else {
        state.tokens.session_id(&token, peer.ip()).await
    };
    if known.is_none() && looks_like_jwt(&token) {
        // A provider token given directly: signed in for this request only.
        let kind = portcullis_auth::oidc::TokenKind::of_token(&token);
        let session = state
            .sso
            .sign_in(&portcullis_auth::TokenSignIn {
                kind,
                token: &token,
                source_database: None,
                database,
                integration: None,
                pool_id: None,
                client,
                via: SignInMethod::Token,
                protocol: Protocol::Http,
                nonce: None,
            })
            .await?;
        return Ok(RequestSession {
            session,
            transient: true,
        });
    }
    let id = known
        .ok_or_else(|| unauthorized("the access token is unknown or expired; sign in again"))?;
    let session = state
        .auth
        .catalog()
        .live_session(&id)
        .map_err(|reason| unauthorized(&reason.message()))?;
    if session.expires_at.is_some_and(|t| t <= now()) {
        return Err(unauthorized(
            "the access token is unknown or expired; sign in again",
        ));
    }
    // A browser session is renewed with its refresh token when its token is about to expire.
    let session = state.flows.renew_if_due(session).await?;
    if session.database != database {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "28000",
            format!(
                "the access token is for database \"{}\", not \"{database}\"",
                session.database
            ),
        ));
    }
    Ok(RequestSession {
        session,
        transient: false,
    })
}

/// Whether a bearer token is a JWT (three base64url parts) rather than one of ours (hex).
fn looks_like_jwt(token: &str) -> bool {
    token.starts_with("eyJ") && token.split('.').count() == 3
}

/// Replaces `{name}` placeholders outside quotes with positional parameters.
fn bind_named(
    statement: &str,
    params: &HashMap<String, serde_json::Value>,
) -> Result<(String, Vec<Value>), ApiError> {
    let mut out = String::with_capacity(statement.len());
    let mut values = Vec::new();
    let mut quote: Option<char> = None;
    let mut rest = statement;
    while let Some(ch) = rest.chars().next() {
        rest = &rest[ch.len_utf8()..];
        match (quote, ch) {
            (Some(q), c) if c == q => {
                quote = None;
                out.push(c);
            }
            (Some(_), c) => out.push(c),
            (None, '\'' | '"') => {
                quote = Some(ch);
                out.push(ch);
            }
            (None, '{') => {
                let end = rest.find('}').ok_or_else(|| {
                    ApiError::new(StatusCode::BAD_REQUEST, "42601", "unclosed { in statement")
                })?;
                let name = &rest[..end];
                let value = params.get(name).ok_or_else(|| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "22023",
                        format!("no value for parameter {{{name}}}"),
                    )
                })?;
                values.push(match value {
                    serde_json::Value::Null => Value::Null,
                    serde_json::Value::Bool(b) => Value::Bool(*b),
                    serde_json::Value::Number(n) => n
                        .as_i64()
                        .map(Value::Int)
                        .or_else(|| n.as_f64().map(Value::Float))
                        .unwrap_or(Value::Null),
                    serde_json::Value::String(s) => Value::Text(s.clone()),
                    other => Value::Text(other.to_string()),
                });
                out.push_str(&format!("?{}", values.len()));
                rest = &rest[end + 1..];
            }
            (None, c) => out.push(c),
        }
    }
    Ok((out, values))
}

async fn run(
    state: Arc<HttpState>,
    headers: HeaderMap,
    database: String,
    peer: std::net::SocketAddr,
    statement: String,
    format: Option<String>,
    params: HashMap<String, serde_json::Value>,
) -> Result<Json<ExecuteResponse>, ApiError> {
    let collection = match format.as_deref() {
        None | Some("array") => false,
        Some("collection") => true,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "22023",
                format!("format must be array or collection, not {other:?}"),
            ))
        }
    };
    let client = super::client_of(peer, &headers);
    let request = authenticate(&state, &headers, &database, &client, peer).await?;
    let (statement, values) = bind_named(&statement, &params)?;
    let catalog = state.auth.catalog();
    let result = catalog.execute(&request.session, &statement, &values).await;
    if request.transient {
        catalog
            .sessions
            .remove(&request.session.id, Reason::ClientDisconnected);
    }
    let results = result?;
    let query_id = portcullis_catalog::SessionRegistry::new_id();
    let (columns, data) = match results.into_iter().last() {
        Some(StatementResult::Rows(rows)) => {
            let columns: Vec<ColumnInfo> = rows
                .columns
                .iter()
                .map(|c| ColumnInfo {
                    name: c.name.clone(),
                    kind: format!("{:?}", c.kind).to_uppercase(),
                })
                .collect();
            let data = rows
                .rows
                .iter()
                .map(|row| {
                    if collection {
                        serde_json::Value::Object(
                            rows.columns
                                .iter()
                                .zip(row)
                                .map(|(c, v)| (c.name.clone(), v.to_json()))
                                .collect(),
                        )
                    } else {
                        serde_json::Value::Array(row.iter().map(Value::to_json).collect())
                    }
                })
                .collect();
            (columns, data)
        }
        _ => (Vec::new(), Vec::new()),
    };
    Ok(Json(ExecuteResponse {
        query_id,
        status: Status::ok("Query executed successfully"),
        columns,
        data,
    }))
}

/// Runs one statement (JSON body).
#[utoipa::path(post, path = "/v1/execute/{database}", request_body = ExecuteRequest,
    params(("database" = String, Path, description = "the database")),
    responses((status = 200, body = ExecuteResponse), (status = 400, body = super::StatusBody),
              (status = 401, body = super::StatusBody), (status = 403, body = super::StatusBody),
              (status = 404, body = super::StatusBody), (status = 429, body = super::StatusBody)))]
pub async fn execute_post(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    Path(database): Path<String>,
    headers: HeaderMap,
    body: Result<Json<ExecuteRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<ExecuteResponse>, ApiError> {
    let Json(body) = body.map_err(|e| super::bad_body(e.body_text()))?;
    run(
        state,
        headers,
        database,
        peer,
        body.statement,
        body.format,
        body.params.unwrap_or_default(),
    )
    .await
}

/// Runs one statement given in the query string.
#[utoipa::path(get, path = "/v1/execute/{database}",
    params(("database" = String, Path, description = "the database"), ExecuteQuery),
    responses((status = 200, body = ExecuteResponse), (status = 400, body = super::StatusBody),
              (status = 401, body = super::StatusBody), (status = 403, body = super::StatusBody),
              (status = 404, body = super::StatusBody), (status = 429, body = super::StatusBody)))]
pub async fn execute_get(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    Path(database): Path<String>,
    headers: HeaderMap,
    query: Result<Query<ExecuteQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ExecuteResponse>, ApiError> {
    let Query(q) = query.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "08P01",
            format!("bad query string: {}", e.body_text()),
        )
    })?;
    // A GET never changes anything: a link on another site must not run DDL.
    if portcullis_catalog::sql::changes_catalog(&q.statement)? {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "25006",
            "GET runs only statements that read; send statements that change the catalog with POST",
        ));
    }
    run(
        state,
        headers,
        database,
        peer,
        q.statement,
        q.format,
        HashMap::new(),
    )
    .await
}
