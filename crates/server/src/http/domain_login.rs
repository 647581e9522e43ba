//! Seed 004's domain login on `POST /v1/login` with a form body: `Domain` is an SSO
//! integration's name (the body then carries `id_token` for an OpenID Connect domain,
//! `identity_username` + `secret_password` for an LDAP one, or `SAMLResponse` for a SAML one) or a database name (its password
//! domain: `identity_username` + `secret_password`). Without `Domain`, the user's own
//! database is the domain. Answers `{"DomainName", "UserName"}` and an `OAuthToken_<Domain>`
//! cookie holding an HTTP access token.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use portcullis_auth::ldap::{throttled_directory_sign_in, DirectorySignIn};
use portcullis_auth::oidc::TokenKind;
use portcullis_auth::saml::AssertionPost;
use portcullis_auth::TokenSignIn;
use portcullis_catalog::sso::SsoProtocol;
use portcullis_catalog::{now, Protocol, SignInMethod};
use serde::Serialize;

use super::{cookies, ApiError, HttpState};

#[derive(Debug, Serialize)]
#[allow(non_snake_case)]
struct DomainLoginResponse {
    DomainName: String,
    UserName: String,
}

fn bad(reason: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "08P01", reason)
}

pub async fn domain_login(
    state: &HttpState,
    peer: SocketAddr,
    headers: &axum::http::HeaderMap,
    query: HashMap<String, String>,
    body: &[u8],
) -> Result<Response, ApiError> {
    let mut form: HashMap<String, String> = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        if form.insert(k.to_string(), v.to_string()).is_some() {
            return Err(bad(format!("field {k} is given twice")));
        }
    }
    for (k, v) in query {
        form.entry(k).or_insert(v);
    }
    let field = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
    let catalog = state.auth.catalog();
    let cstate = catalog.state();
    let client = super::client_of(peer, headers);
    let (domain, session) = match field("Domain") {
        Some(domain) if assigned_domain(&cstate, domain)?.is_some() => {
            let (integration, database) =
                assigned_domain(&cstate, domain)?.ok_or_else(|| bad("gone"))?;
            let domain = integration.name.as_str();
            if integration.protocol == SsoProtocol::Ldap.as_str() {
                // An LDAP domain: the directory's user name and password.
                let (Some(user), Some(password)) =
                    (field("identity_username"), field("secret_password"))
                else {
                    return Err(bad(format!(
                        "domain \"{domain}\" is an LDAP domain: send identity_username and \
                         secret_password"
                    )));
                };
                let session = throttled_directory_sign_in(
                    &state.auth,
                    &state.sso,
                    &DirectorySignIn {
                        database: &database,
                        source_database: None,
                        integration: Some(domain),
                        pool_id: None,
                        username: user,
                        password,
                        client: &client,
                        via: SignInMethod::DomainLogin,
                        protocol: Protocol::Http,
                    },
                )
                .await?;
                return finish(state, domain.to_owned(), session).await;
            }
            if integration.protocol == SsoProtocol::Saml.as_str() {
                // A SAML domain: the IdP's signed response, as its page would post it.
                let response = field("SAMLResponse")
                    .or_else(|| field("identity_SAMLResponse"))
                    .ok_or_else(|| {
                        bad(format!(
                            "domain \"{domain}\" is a SAML domain: send SAMLResponse (and the \
                             RelayState of the request it answers, if any)"
                        ))
                    })?;
                let home = cstate.database_name(integration.database_id).to_owned();
                let done = state
                    .saml
                    .complete(&AssertionPost {
                        home_database: &home,
                        integration: domain,
                        database: Some(&database),
                        saml_response: response,
                        relay_state: field("RelayState"),
                        browser_state: None,
                        client: &client,
                        via: SignInMethod::DomainLogin,
                    })
                    .await?;
                let portcullis_auth::saml::SamlCompleted::Browser(done) = done else {
                    return Err(bad("a terminal's sign-in finishes in its browser"));
                };
                return finish(state, domain.to_owned(), done.session).await;
            }
            let token = field("id_token").ok_or_else(|| {
                bad(format!(
                    "domain \"{domain}\" is an OpenID Connect domain: send id_token"
                ))
            })?;
            let session = state
                .sso
                .sign_in(&TokenSignIn {
                    kind: TokenKind::IdToken,
                    token,
                    source_database: None,
                    database: &database,
                    integration: Some(domain),
                    pool_id: None,
                    client: &client,
                    via: SignInMethod::DomainLogin,
                    protocol: Protocol::Http,
                    nonce: None,
                })
                .await?;
            (domain.to_owned(), session)
        }
        Some(domain) if cstate.database(domain).is_none() => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "28000",
                format!("no SSO integration or database is named \"{domain}\""),
            ))
        }
        domain => {
            let user = field("identity_username").ok_or_else(|| {
                bad("a password domain needs identity_username and secret_password")
            })?;
            let password = field("secret_password").ok_or_else(|| {
                bad("a password domain needs identity_username and secret_password")
            })?;
            let database = domain.map(str::to_owned).or_else(|| {
                user.split_once('@')
                    .map_or(Some("system".to_owned()), |(_, d)| Some(d.to_owned()))
            });
            let session = state
                .auth
                .sign_in_with_password(
                    user,
                    database.as_deref(),
                    password,
                    &client,
                    SignInMethod::DomainLogin,
                    Some(now() + state.token_seconds),
                )
                .await?;
            (database.unwrap_or_default(), session)
        }
    };
    finish(state, domain, session).await
}

/// The `OAuthToken_<Domain>` cookie with an HTTP access token for the session, and
/// `{"DomainName", "UserName"}`.
async fn finish(
    state: &HttpState,
    domain: String,
    session: std::sync::Arc<portcullis_catalog::Session>,
) -> Result<Response, ApiError> {
    let token = state.tokens.issue(&session).await;
    let max_age = session.expires_at.map(|t| (t - now()).max(0));
    let cookie = cookies::set_strict(
        &cookies::domain_cookie_name(&domain),
        &token,
        "/",
        max_age,
        state.secure_cookies,
    );
    Ok((
        [(header::SET_COOKIE, cookie)],
        Json(DomainLoginResponse {
            DomainName: domain,
            UserName: session.user.clone(),
        }),
    )
        .into_response())
}

/// The integration a `Domain` names, with the database it is assigned to:
/// `integration@database`, or an integration name that exactly one database has assigned
/// (only assigned integrations sign anyone in). A name two databases use must be qualified.
fn assigned_domain(
    state: &portcullis_catalog::model::CatalogState,
    domain: &str,
) -> Result<Option<(portcullis_store::SsoIntegrationRecord, String)>, ApiError> {
    use portcullis_store::AssignmentTarget;
    let assigned = |d: &portcullis_store::DatabaseRecord| {
        state
            .assigned_integration(AssignmentTarget::Database(d.id))
            .map(|i| (i.clone(), d.name.clone()))
    };
    if let Some((name, database)) = domain.rsplit_once('@') {
        return Ok(state
            .database(database)
            .and_then(assigned)
            .filter(|(i, _)| i.name == name));
    }
    let mut found: Vec<_> = state
        .snap
        .databases
        .iter()
        .filter_map(assigned)
        .filter(|(i, _)| i.name == domain)
        .collect();
    if found.len() > 1 {
        return Err(bad(format!(
            "several databases have an SSO integration named \"{domain}\": name it as \
             {domain}@database"
        )));
    }
    Ok(found.pop())
}
