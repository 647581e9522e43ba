//! Startup: resolve the user, run SCRAM-SHA-256 against the stored verifier (or a decoy for an
//! unknown user), then the state/expiry/USE checks, then ReadyForQuery — or a FATAL error.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use futures::{Sink, SinkExt};
use pgwire::api::auth::driver::AuthOutcome;
use pgwire::api::auth::finish_authentication;
use pgwire::api::auth::mechanism::AuthMechanismFactory;
use pgwire::api::auth::sasl::scram::{ScramAuth, ScramSecret};
use pgwire::api::auth::{
    protocol_negotiation, save_startup_parameters_to_metadata, AuthSource, LoginInfo, Password,
    StartupHandler,
};
use pgwire::api::{ClientInfo, PgWireConnectionState};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::startup::Authentication;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use portcullis_auth::oidc::TokenKind;
use portcullis_auth::TokenSignIn;
use portcullis_catalog::credential::ScramVerifier;
use portcullis_catalog::{Protocol, Reason, SignInMethod};

use super::errors::{fatal, fatal_with};
use super::interactive::{announce, interactive_login};
use super::{PendingToken, PgConnection};

/// Hands pgwire's SCRAM mechanism the one verifier of this connection.
#[derive(Debug)]
struct ConnectionVerifier(ScramVerifier);

#[async_trait]
impl AuthSource for ConnectionVerifier {
    async fn get_password(&self, _login: &LoginInfo) -> PgWireResult<Password> {
        Err(PgWireError::InvalidPassword(String::new()))
    }

    async fn get_scram_secret(
        &self,
        _login: &LoginInfo,
    ) -> PgWireResult<(ScramSecret, Option<()>)> {
        let v = &self.0;
        Ok((
            ScramSecret::Verifier {
                salt: v.salt.clone(),
                iterations: v.iterations as usize,
                stored_key: v.stored_key.clone(),
                server_key: v.server_key.clone(),
            },
            None,
        ))
    }
}

#[async_trait]
impl StartupHandler for PgConnection {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                let user = client.metadata().get("user").cloned().unwrap_or_default();
                let database = client.metadata().get("database").cloned();
                if let Some(login) =
                    interactive_login(&user, database.as_deref(), client.metadata())
                {
                    let (waiting, notices) = self
                        .start_interactive(&login?, super::client_info(client))
                        .await?;
                    client.set_state(PgWireConnectionState::AuthenticationInProgress);
                    announce(client, &notices).await?;
                    *self.interactive.lock() = Some(waiting);
                    return Ok(());
                }
                if let Some(pending) = token_login(&user, database.as_deref(), client.metadata()) {
                    let loopback = client.socket_addr().ip().is_loopback();
                    if !client.is_secure() && !loopback {
                        return Err(fatal_with(
                            "28000",
                            "SSO tokens are accepted only over TLS (sslmode=require) or on a \
                             loopback address"
                                .into(),
                        ));
                    }
                    *self.token.lock() = Some(pending);
                    client.set_state(PgWireConnectionState::AuthenticationInProgress);
                    client
                        .send(PgWireBackendMessage::Authentication(
                            Authentication::CleartextPassword,
                        ))
                        .await?;
                    client.flush().await?;
                    return Ok(());
                }
                let target = self
                    .shared
                    .auth
                    .lookup(
                        &user,
                        database.as_deref(),
                        &super::client_info(client),
                        SignInMethod::Password,
                    )
                    .map_err(|e| fatal(&e))?;
                let mut scram =
                    ScramAuth::new(Arc::new(ConnectionVerifier(target.verifier.clone())));
                scram.set_iterations(target.verifier.iterations as usize);
                *self.target.lock() = Some(target);
                match self
                    .shared
                    .driver
                    .begin_authentication(client, scram.create())
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(e) => Err(fatal_with(
                        "08P01",
                        format!("authentication could not start: {e}"),
                    )),
                }
            }
            PgWireFrontendMessage::PasswordMessageFamily(msg) if self.token.lock().is_some() => {
                let Some(pending) = self.token.lock().take() else {
                    return Err(fatal_with("08P01", "unexpected password message".into()));
                };
                let token = match msg.into_password() {
                    Ok(p) => p.password,
                    Err(_) => {
                        return Err(fatal_with(
                            "08P01",
                            "expected a password message carrying the token".into(),
                        ))
                    }
                };
                let req = TokenSignIn {
                    kind: pending.kind,
                    token: token.trim(),
                    source_database: pending.source_database.as_deref(),
                    database: &pending.database,
                    integration: pending.integration.as_deref(),
                    pool_id: None,
                    client: &super::client_info(client),
                    via: SignInMethod::Token,
                    protocol: Protocol::Postgres,
                    nonce: None,
                };
                let session = self
                    .shared
                    .sso
                    .sign_in(&req)
                    .await
                    .map_err(|e| fatal_with(e.sqlstate(), e.to_string()))?;
                *self.session.lock() = Some(session.clone());
                if let Err(e) = finish_authentication(client, &self.shared.params).await {
                    self.shared
                        .auth
                        .catalog()
                        .sessions
                        .remove(&session.id, Reason::ClientDisconnected);
                    return Err(e);
                }
                Ok(())
            }
            PgWireFrontendMessage::PasswordMessageFamily(msg) => {
                let Some(target) = self.target.lock().clone() else {
                    return Err(fatal_with(
                        "08P01",
                        "password message before startup".into(),
                    ));
                };
                match self.shared.driver.advance_authentication(client, msg).await {
                    Ok(AuthOutcome::InProgress) => Ok(()),
                    Ok(AuthOutcome::Authenticated { final_message, .. }) => {
                        let auth = &self.shared.auth;
                        let session = auth
                            .succeeded(&target, Protocol::Postgres, None)
                            .await
                            .map_err(|e| fatal(&e))?;
                        *self.session.lock() = Some(session.clone());
                        if let Err(e) = self
                            .shared
                            .driver
                            .complete_authentication(client, final_message)
                            .await
                        {
                            auth.catalog()
                                .sessions
                                .remove(&session.id, Reason::ClientDisconnected);
                            return Err(e);
                        }
                        Ok(())
                    }
                    Err(PgWireError::InvalidPassword(_)) => {
                        let e = self.shared.auth.failed(&target).await;
                        Err(fatal(&e))
                    }
                    Err(e) => {
                        // A malformed SCRAM message counts as a failed attempt too.
                        let counted = self.shared.auth.failed(&target).await;
                        tracing::debug!(error = %e, "SCRAM exchange failed");
                        Err(fatal(&counted))
                    }
                }
            }
            _ => Ok(()),
        }
    }
}

/// A token sign-in: user `id_token` or `access_token`, optionally `@source_db`; the database is
/// the connected one (the source database when none is given). `identityprovider` may come as
/// a startup parameter or in `options` (`-c identityprovider=name`).
fn token_login(
    user: &str,
    database: Option<&str>,
    params: &std::collections::HashMap<String, String>,
) -> Option<PendingToken> {
    let (kind, source) = match user.split_once('@') {
        Some((k, db)) => (k, Some(db)),
        None => (user, None),
    };
    let kind = TokenKind::from_user(kind)?;
    let database = database
        .filter(|d| !d.is_empty() && *d != user)
        .or(source)
        .unwrap_or(portcullis_catalog::model::SYSTEM_DATABASE);
    let integration = params
        .get("identityprovider")
        .cloned()
        .or_else(|| option(params.get("options")?, "identityprovider"));
    Some(PendingToken {
        kind,
        source_database: source.map(str::to_owned),
        database: database.to_owned(),
        integration,
    })
}

/// A `-c name=value` (or `--name=value`) setting from the `options` startup parameter.
pub fn option(options: &str, name: &str) -> Option<String> {
    let mut words = options.split_whitespace();
    while let Some(w) = words.next() {
        let setting = if w == "-c" {
            words.next()?
        } else if let Some(rest) = w.strip_prefix("-c").or_else(|| w.strip_prefix("--")) {
            rest
        } else {
            continue;
        };
        if let Some((k, v)) = setting.split_once('=') {
            if k.eq_ignore_ascii_case(name) {
                return Some(v.to_owned());
            }
        }
    }
    None
}
