//! Startup: resolve the user, run SCRAM-SHA-256 against the stored verifier (or a decoy for an
//! unknown user), then the state/expiry/USE checks, then ReadyForQuery — or a FATAL error.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use futures::Sink;
use pgwire::api::auth::driver::AuthOutcome;
use pgwire::api::auth::mechanism::AuthMechanismFactory;
use pgwire::api::auth::sasl::scram::{ScramAuth, ScramSecret};
use pgwire::api::auth::{
    protocol_negotiation, save_startup_parameters_to_metadata, AuthSource, LoginInfo, Password,
    StartupHandler,
};
use pgwire::api::ClientInfo;
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use portcullis_catalog::credential::ScramVerifier;
use portcullis_catalog::{AuthMethod, Protocol};

use super::errors::{fatal, fatal_with};
use super::PgConnection;

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
        let peer = client.socket_addr().to_string();
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                let user = client.metadata().get("user").cloned().unwrap_or_default();
                let database = client.metadata().get("database").cloned();
                let target = match self.shared.auth.lookup(&user, database.as_deref()) {
                    Ok(t) => t,
                    Err(e) => return Err(fatal(&e)),
                };
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
                            .succeeded(&target, &peer, AuthMethod::Scram, Protocol::Postgres, None)
                            .await
                            .map_err(|e| fatal(&e))?;
                        *self.session.lock() = Some(session.clone());
                        if let Err(e) = self
                            .shared
                            .driver
                            .complete_authentication(client, final_message)
                            .await
                        {
                            auth.catalog().sessions.remove(&session.id);
                            return Err(e);
                        }
                        Ok(())
                    }
                    Err(PgWireError::InvalidPassword(_)) => {
                        let e = self
                            .shared
                            .auth
                            .failed(&target, &peer, AuthMethod::Scram)
                            .await;
                        Err(fatal(&e))
                    }
                    Err(e) => {
                        // A malformed SCRAM message counts as a failed attempt too.
                        let counted = self
                            .shared
                            .auth
                            .failed(&target, &peer, AuthMethod::Scram)
                            .await;
                        tracing::debug!(error = %e, "SCRAM exchange failed");
                        Err(fatal(&counted))
                    }
                }
            }
            _ => Ok(()),
        }
    }
}
