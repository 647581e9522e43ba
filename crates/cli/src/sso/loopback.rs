//! The authorization code flow from the terminal (RFC 8252 native app, RFC 7636 PKCE S256):
//! a loopback listener at `http://localhost:7050/ocient/oauth2/v1/callback` (the seed's driver
//! redirect URI; port and path configurable), the browser opened (or the URL printed), the
//! callback's `state` and `iss` checked, the code exchanged, and the ID token's `nonce` checked.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use axum::extract::{Query, State};
use axum::response::Html;
use axum::routing::get;
use axum::Router;
use portcullis_auth::oidc::authorization::{authorization_url, random_value, TokenResponse};
use portcullis_auth::oidc::fetch::Fetcher;
use portcullis_catalog::sso::SsoProperties;
use tokio::sync::mpsc;

use super::{claim, Provider};
use crate::settings::Settings;

type Params = HashMap<String, String>;

pub async fn sign_in(
    fetcher: &Fetcher,
    provider: &Provider,
    settings: &Settings,
) -> anyhow::Result<TokenResponse> {
    let endpoint = provider
        .metadata
        .authorization_endpoint
        .as_deref()
        .context("the provider names no authorization endpoint; use ssoOAuthFlow=deviceGrant")?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", settings.redirect_port))
        .await
        .with_context(|| {
            format!(
                "cannot listen on 127.0.0.1:{} for the sign-in callback (another sign-in running?)",
                settings.redirect_port
            )
        })?;
    let port = listener.local_addr()?.port();
    let redirect_uri = settings.redirect_uri(port);
    let (state, nonce, verifier) = (random_value(), random_value(), random_value());
    let mut scopes: Vec<String> = provider
        .scopes
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    if provider.allow_offline_access && !scopes.iter().any(|s| s == "offline_access") {
        scopes.push("offline_access".into());
    }
    let props = SsoProperties {
        issuer: provider.issuer.clone(),
        client_id: provider.client_id.clone(),
        additional_scopes: scopes,
        allow_offline_access: provider.allow_offline_access,
        ..Default::default()
    };
    let mut url = authorization_url(endpoint, &props, &redirect_uri, &state, &nonce, &verifier)
        .map_err(anyhow::Error::msg)?;
    if let Some(hint) = &settings.login_hint {
        let mut parsed = url::Url::parse(&url)?;
        parsed.query_pairs_mut().append_pair("login_hint", hint);
        url = parsed.into();
    }

    let (tx, mut rx) = mpsc::channel::<Params>(4);
    let app = Router::new()
        .route(&settings.redirect_path, get(callback))
        .with_state(Arc::new(tx));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    eprintln!(
        "Sign in to \"{}\" with {} in your browser:",
        settings.database, provider.integration
    );
    eprintln!("{url}");
    if !settings.no_browser {
        open_browser(&url);
    }

    let timeout = Duration::from_secs(settings.sign_in_timeout);
    let result = tokio::time::timeout(timeout, async {
        while let Some(params) = rx.recv().await {
            // Only the answer to this request counts; anything else is ignored (and told so).
            if params.get("state") == Some(&state) {
                return Some(params);
            }
        }
        None
    })
    .await;
    server.abort();
    let params = match result {
        Ok(Some(p)) => p,
        Ok(None) => bail!("the sign-in callback listener stopped"),
        Err(_) => bail!("the sign-in did not finish within {} s", timeout.as_secs()),
    };
    if let Some(error) = params.get("error") {
        bail!(
            "the identity provider did not sign you in: {error}{}",
            params
                .get("error_description")
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        );
    }
    match params.get("iss") {
        Some(iss) if *iss != provider.issuer => {
            bail!(
                "the sign-in answer comes from issuer \"{iss}\", not \"{}\"",
                provider.issuer
            )
        }
        None if provider.metadata.iss_parameter_supported => {
            bail!("the sign-in answer has no iss parameter although the provider promises one")
        }
        _ => {}
    }
    let code = params
        .get("code")
        .context("the sign-in answer has no code")?;
    let (status, body) = fetcher
        .post_form(
            provider.token_endpoint()?,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &redirect_uri),
                ("code_verifier", &verifier),
            ],
            &provider.client_id,
            settings.client_secret.as_deref(),
        )
        .await?;
    let tokens = TokenResponse::from_json(status.as_u16(), &body).map_err(anyhow::Error::msg)?;
    if let Some(id) = &tokens.id_token {
        if claim(id, "nonce").and_then(|n| n.as_str().map(str::to_owned)) != Some(nonce) {
            bail!("the ID token does not carry this sign-in's nonce; refusing it");
        }
    }
    Ok(tokens)
}

async fn callback(
    State(tx): State<Arc<mpsc::Sender<Params>>>,
    Query(params): Query<Params>,
) -> Html<&'static str> {
    let failed = params.contains_key("error");
    let _ = tx.send(params).await;
    Html(if failed {
        "<!doctype html><title>Sign-in failed</title><p>Sign-in failed. Return to the terminal for details.</p>"
    } else {
        "<!doctype html><title>Sign-in received</title><p>The sign-in answer was received. You can close this window and return to the terminal.</p>"
    })
}

/// `$BROWSER`, else `xdg-open` when a display is there; failures are not fatal (the URL was
/// printed).
fn open_browser(url: &str) {
    // Only an https address (or http on loopback) is handed to a browser: never a file:,
    // javascript: or other scheme a hostile answer might carry.
    let authority_ok = url
        .strip_prefix("https://")
        .map(|_| true)
        .or_else(|| {
            url.strip_prefix("http://").map(|rest| {
                portcullis_catalog::sso::is_loopback_authority(
                    rest.split(['/', '?', '#']).next().unwrap_or_default(),
                )
            })
        })
        .unwrap_or(false);
    if !authority_ok {
        eprintln!("(not opening {url} in a browser: only https addresses are opened)");
        return;
    }
    let program = std::env::var("BROWSER")
        .ok()
        .filter(|b| !b.is_empty())
        .or_else(|| {
            (std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some())
                .then(|| "xdg-open".to_owned())
        });
    if let Some(program) = program {
        if std::process::Command::new(&program)
            .arg(url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .is_err()
        {
            eprintln!("(could not start {program}; open the address above yourself)");
        }
    }
}
