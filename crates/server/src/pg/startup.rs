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
use pgwire::messages::startup::PasswordMessageFamily;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use portcullis_auth::oidc::TokenKind;
use portcullis_auth::{IntegrationChoice, TokenSignIn};
use portcullis_catalog::credential::ScramVerifier;
use portcullis_catalog::{Protocol, Reason, Session, SignInMethod};

use super::errors::{fatal, fatal_with};
use super::interactive::{announce, interactive_login};
use super::oauthbearer;
use super::phase::{OAuthExchange, Phase};
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
            PgWireFrontendMessage::Startup(ref startup) => self.begin(client, startup).await,
            PgWireFrontendMessage::PasswordMessageFamily(msg) => match self.take_phase() {
                Phase::Token(pending) => self.token_message(client, pending, msg).await,
                Phase::Directory(target) => self.directory_message(client, target, msg).await,
                Phase::Password { target, initial } => {
                    if initial {
                        sasl_initial_framing(&msg)?;
                    }
                    self.scram_message(client, target, msg).await
                }
                Phase::OAuth(exchange) => self.oauth_message(client, exchange, msg).await,
                _ => Err(fatal_with("08P01", "unexpected password message".into())),
            },
            _ => Ok(()),
        }
    }
}

/// Checks a SASLInitialResponse's framing — the mechanism's name ends with a NUL, then a
/// 4-byte length of the data, -1 or at most what follows — before pgwire decodes it: pgwire
/// trusts the declared length and panics past the message's end (found by fuzzing,
/// `fuzz/fuzz_targets/pg_connection.rs`).
pub(crate) fn sasl_initial_framing(msg: &PasswordMessageFamily) -> PgWireResult<()> {
    let PasswordMessageFamily::Raw(body) = msg else {
        return Ok(());
    };
    let framed = body
        .iter()
        .position(|b| *b == 0)
        .and_then(|nul| body.get(nul + 1..))
        .and_then(|rest| {
            let len = i32::from_be_bytes(rest.get(..4)?.try_into().ok()?);
            let data = rest.len() - 4;
            (len == -1 || usize::try_from(len).is_ok_and(|len| len <= data)).then_some(())
        });
    framed.ok_or_else(|| {
        fatal_with(
            "08P01",
            "invalid SASLInitialResponse: its lengths do not fit the message".into(),
        )
    })
}

impl PgConnection {
    /// The startup message: decides how this connection signs in and asks for it.
    async fn begin<C>(
        &self,
        client: &mut C,
        startup: &pgwire::messages::startup::Startup,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if matches!(*self.phase.lock(), Phase::OverLimit) {
            return Err(fatal_with(
                "53300",
                "sorry, too many clients already (the server's max_connections are in use; try \
                 again later)"
                    .into(),
            ));
        }
        protocol_negotiation(client, startup).await?;
        save_startup_parameters_to_metadata(client, startup);
        let user = client.metadata().get("user").cloned().unwrap_or_default();
        let database = client.metadata().get("database").cloned();
        if let Some(login) = interactive_login(&user, database.as_deref(), client.metadata()) {
            let (waiting, notices) = self
                .start_interactive(&login?, super::client_info(client))
                .await?;
            client.set_state(PgWireConnectionState::AuthenticationInProgress);
            announce(client, &notices).await?;
            self.set_phase(Phase::Interactive(waiting));
            return Ok(());
        }
        let token = token_login(&user, database.as_deref(), client.metadata());
        let oauth = if token.is_none() {
            self.oauth_login(&user, database.as_deref(), client.metadata())
        } else {
            None
        };
        if token.is_some() || oauth.is_some() {
            let loopback = client.socket_addr().ip().is_loopback();
            if !client.is_secure() && !loopback {
                return Err(fatal_with(
                    "28000",
                    "SSO tokens are accepted only over TLS (sslmode=require) or on a loopback \
                     address"
                        .into(),
                ));
            }
        }
        client.set_state(PgWireConnectionState::AuthenticationInProgress);
        if let Some(pending) = token {
            self.set_phase(Phase::Token(pending));
            client
                .send(PgWireBackendMessage::Authentication(
                    Authentication::CleartextPassword,
                ))
                .await?;
            client.flush().await?;
            return Ok(());
        }
        if let Some(exchange) = oauth {
            self.set_phase(Phase::OAuth(exchange));
            client
                .send(PgWireBackendMessage::Authentication(Authentication::SASL(
                    vec![oauthbearer::MECHANISM.to_owned()],
                )))
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
        // A database whose integration is an LDAP directory takes every password in the clear
        // (over TLS or on loopback only), so which names are catalog users does not show.
        let private = client.is_secure() || client.socket_addr().ip().is_loopback();
        if private && self.directory_checks(&target) {
            self.set_phase(Phase::Directory(target));
            client
                .send(PgWireBackendMessage::Authentication(
                    Authentication::CleartextPassword,
                ))
                .await?;
            client.flush().await?;
            return Ok(());
        }
        let mut scram = ScramAuth::new(Arc::new(ConnectionVerifier(target.verifier.clone())));
        scram.set_iterations(target.verifier.iterations as usize);
        self.set_phase(Phase::Password {
            target,
            initial: true,
        });
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

    /// SASL OAUTHBEARER is offered to a user name without `@` on a database with an SSO
    /// integration (the identity then comes from the token, never from the name). A name
    /// with `@` is a password user (SCRAM): libpq 18 picks the first mechanism it supports,
    /// so one connection is offered one of the two, decided by the name's form alone (not by
    /// whether such a user exists, which would tell who does).
    fn oauth_login(
        &self,
        user: &str,
        database: Option<&str>,
        params: &std::collections::HashMap<String, String>,
    ) -> Option<OAuthExchange> {
        if user.is_empty() || user.contains('@') {
            return None;
        }
        let database = database.filter(|d| !d.is_empty())?.to_owned();
        let integration = params
            .get("identityprovider")
            .cloned()
            .or_else(|| option(params.get("options")?, "identityprovider"));
        let (issuer, scope) = self.shared.sso.bearer_challenge(IntegrationChoice {
            source_database: None,
            database: &database,
            integration: integration.as_deref(),
            pool_id: self.listener.pool_id(),
        })?;
        Some(OAuthExchange {
            user: user.to_owned(),
            database,
            integration,
            challenge: oauthbearer::challenge(&issuer, &scope),
            refused: None,
        })
    }

    /// The password message of a token sign-in: the token itself.
    async fn token_message<C>(
        &self,
        client: &mut C,
        pending: PendingToken,
        msg: PasswordMessageFamily,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let token = cleartext(msg, "a password message carrying the token")?;
        let req = TokenSignIn {
            kind: pending.kind,
            token: token.trim(),
            source_database: pending.source_database.as_deref(),
            database: &pending.database,
            integration: pending.integration.as_deref(),
            pool_id: self.listener.pool_id(),
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
        self.finish_token_sign_in(client, session).await
    }

    /// Whether an LDAP integration checks this password sign-in's non-catalog users.
    fn directory_checks(&self, target: &portcullis_auth::LoginTarget) -> bool {
        let source =
            (target.fqun.database != target.database).then_some(target.fqun.database.as_str());
        self.shared
            .sso
            .directory_integration(IntegrationChoice {
                source_database: source,
                database: &target.database,
                integration: None,
                pool_id: self.listener.pool_id(),
            })
            .is_some()
    }

    /// The cleartext password for a database whose integration is an LDAP directory.
    async fn directory_message<C>(
        &self,
        client: &mut C,
        target: portcullis_auth::LoginTarget,
        msg: PasswordMessageFamily,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let password = cleartext(msg, "a password message")?;
        let session = portcullis_auth::ldap::sign_in_cleartext(
            &self.shared.auth,
            &self.shared.sso,
            &target,
            &password,
            self.listener.pool_id(),
            Protocol::Postgres,
        )
        .await
        .map_err(|e| fatal_with(e.sqlstate(), e.to_string()))?;
        self.finish_token_sign_in(client, session).await
    }

    /// Sends AuthenticationOk and what follows for a session opened without SCRAM (a token,
    /// a directory's password).
    async fn finish_token_sign_in<C>(
        &self,
        client: &mut C,
        session: Arc<Session>,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self.admit(session.clone()).await?;
        // A key of its own for cancel requests (pgwire's default would be 0 for everyone).
        client.set_pid_and_secret_key(
            rand::random::<i32>() & i32::MAX,
            pgwire::messages::startup::SecretKey::I32(rand::random()),
        );
        if let Err(e) = finish_authentication(client, &self.parameters()).await {
            self.shared
                .auth
                .catalog()
                .sessions
                .remove(&session.id, Reason::ClientDisconnected);
            return Err(e);
        }
        Ok(())
    }

    /// One SCRAM-SHA-256 message.
    async fn scram_message<C>(
        &self,
        client: &mut C,
        target: portcullis_auth::LoginTarget,
        msg: PasswordMessageFamily,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match self.shared.driver.advance_authentication(client, msg).await {
            Ok(AuthOutcome::InProgress) => {
                self.set_phase(Phase::Password {
                    target,
                    initial: false,
                });
                Ok(())
            }
            Ok(AuthOutcome::Authenticated { final_message, .. }) => {
                let auth = &self.shared.auth;
                let session = auth
                    .succeeded(&target, Protocol::Postgres, None)
                    .await
                    .map_err(|e| fatal(&e))?;
                self.admit(session.clone()).await?;
                // pgwire's complete_authentication, with this sign-in's parameters (the
                // upstream's, in a bound database).
                let finished = async {
                    if let Some(message) = final_message {
                        client
                            .send(PgWireBackendMessage::Authentication(message))
                            .await?;
                    }
                    client.set_pid_and_secret_key(
                        rand::random::<i32>() & i32::MAX,
                        pgwire::messages::startup::SecretKey::I32(rand::random()),
                    );
                    finish_authentication(client, &self.parameters()).await
                };
                if let Err(e) = finished.await {
                    auth.catalog()
                        .sessions
                        .remove(&session.id, Reason::ClientDisconnected);
                    return Err(e);
                }
                Ok(())
            }
            Err(PgWireError::InvalidPassword(_)) => {
                Err(fatal(&self.shared.auth.failed(&target).await))
            }
            Err(e) => {
                // A malformed SCRAM message counts as a failed attempt too.
                let counted = self.shared.auth.failed(&target).await;
                tracing::debug!(error = %e, "SCRAM exchange failed");
                Err(fatal(&counted))
            }
        }
    }

    /// One OAUTHBEARER message: the initial response (a token, or a discovery request), or
    /// the client's `\x01` after the challenge.
    async fn oauth_message<C>(
        &self,
        client: &mut C,
        mut exchange: OAuthExchange,
        msg: PasswordMessageFamily,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let malformed = |m: oauthbearer::Malformed| fatal_with(m.sqlstate(), m.to_string());
        if let Some(why) = exchange.refused {
            // After the challenge the client must send a single 0x01 (RFC 7628 §3.2.3).
            let reply = msg.into_sasl_response().map_err(|_| {
                malformed(oauthbearer::Malformed::Syntax(
                    "a SASL response was expected",
                ))
            })?;
            if !oauthbearer::is_kvsep(&reply.data) {
                return Err(malformed(oauthbearer::Malformed::Syntax(
                    "the client did not send a kvsep response",
                )));
            }
            return Err(fatal_with(
                "28000",
                format!(
                    "OAuth bearer authentication failed for user \"{}\"{why}",
                    exchange.user
                ),
            ));
        }
        sasl_initial_framing(&msg)?;
        let initial = msg.into_sasl_initial_response().map_err(|_| {
            malformed(oauthbearer::Malformed::Syntax(
                "a SASL initial response was expected",
            ))
        })?;
        if initial.auth_method != oauthbearer::MECHANISM {
            return Err(fatal_with(
                "28000",
                format!(
                    "SASL mechanism {:?} was not offered; this connection signs in with {}",
                    initial.auth_method,
                    oauthbearer::MECHANISM
                ),
            ));
        }
        let data = initial.data.unwrap_or_default();
        let refused = match oauthbearer::parse_initial(&data).map_err(malformed)? {
            oauthbearer::Initial::Discovery => String::new(),
            oauthbearer::Initial::Token(token) => {
                let req = TokenSignIn {
                    kind: TokenKind::of_token(token),
                    token,
                    source_database: None,
                    database: &exchange.database,
                    integration: exchange.integration.as_deref(),
                    pool_id: self.listener.pool_id(),
                    client: &super::client_info(client),
                    via: SignInMethod::OAuthBearer,
                    protocol: Protocol::Postgres,
                    nonce: None,
                };
                match self.shared.sso.sign_in(&req).await {
                    Ok(session) => return self.finish_token_sign_in(client, session).await,
                    // The refusal's sentence never holds the token.
                    Err(e) => format!(": {e}"),
                }
            }
        };
        // Discovery, or a refused token: the challenge, then the client's 0x01, then FATAL.
        client
            .send(PgWireBackendMessage::Authentication(
                Authentication::SASLContinue(exchange.challenge.clone().into_bytes().into()),
            ))
            .await?;
        client.flush().await?;
        exchange.refused = Some(refused);
        self.set_phase(Phase::OAuth(exchange));
        Ok(())
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

/// The text of a cleartext PasswordMessage (a token, a directory's password), or FATAL 08P01
/// saying what was expected.
fn cleartext(msg: PasswordMessageFamily, expected: &str) -> PgWireResult<String> {
    msg.into_password()
        .map(|p| p.password)
        .map_err(|_| fatal_with("08P01", format!("expected {expected}")))
}
