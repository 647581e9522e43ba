//! Interactive SSO sign-in for unmodified PostgreSQL clients (psql, pgjdbc, psycopg): user
//! `@source_db` (or `sso`), with the device grant. `-c ssoOAuthFlow=authenticationCode` is
//! answered with the device grant too: a server-side code flow for a terminal hands the
//! session to whoever started it, to anyone who opens its link while signed in at the provider
//! (the provider redirects silently) — a victim's session for an attacker's terminal. The
//! device grant makes the person type the terminal's code at the provider. (The command-line
//! client's own code flow is safe: its redirect comes back to the person's own machine.)
//! libpq and pgjdbc refuse notices before AuthenticationOk, so the server sends
//! AuthenticationOk first, then NOTICEs with the code or URL, waits for the provider, and only
//! then finishes the startup (ParameterStatus, BackendKeyData, ReadyForQuery) — or sends FATAL
//! and closes. A message from the client while waiting ends the sign-in: no query runs before
//! approval.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use pgwire::api::auth::ServerParameterProvider;
use pgwire::api::{ClientInfo, PgWireConnectionState};
use pgwire::error::{ErrorInfo, PgWireError};
use pgwire::messages::response::{ReadyForQuery, TransactionStatus};
use pgwire::messages::startup::{Authentication, BackendKeyData, ParameterStatus};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use pgwire::tokio::server::PgWireMessageServerCodec;
use portcullis_auth::{DeviceGrant, DeviceRequest, Poll, SsoError};
use portcullis_catalog::{Attempt, Client, Protocol, Reason, SignInMethod};
use tokio_util::codec::Framed;

use super::errors::fatal_with;
use super::startup::option;
use super::PgConnection;

/// At most one "still waiting" notice per this long (pgjdbc allows 1,000 startup messages).
const REMINDER_EVERY: Duration = Duration::from_secs(30);

/// Which interactive flow a connection asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowKind {
    DeviceGrant,
    AuthorizationCode,
}

/// The flows a terminal can wait on: the provider's device grant (OpenID Connect), and the
/// server's own code page (SAML).
pub struct TerminalFlows {
    pub device: Arc<portcullis_auth::DeviceFlow>,
    pub saml: Arc<portcullis_auth::saml::SamlFlow>,
}

/// An interactive sign-in asked for in the startup message.
#[derive(Debug, Clone)]
pub struct InteractiveLogin {
    pub flow: FlowKind,
    pub source_database: Option<String>,
    pub database: String,
    pub integration: Option<String>,
}

/// How many interactive sign-ins one client address may have waiting at once (each asks the
/// provider for a code and holds a connection for minutes).
pub const MAX_WAITING_PER_ADDRESS: usize = 10;

/// Interactive sign-ins waiting, per client address.
pub struct WaitingPerAddress {
    counts: parking_lot::Mutex<HashMap<IpAddr, usize>>,
    /// Waiting sign-ins in all: a separate capacity, so that they (each holding a connection
    /// for minutes) cannot take every connection slot.
    total: std::sync::atomic::AtomicUsize,
    capacity: usize,
}

/// One place in `WaitingPerAddress`, given back when dropped.
pub struct WaitSlot {
    table: Arc<WaitingPerAddress>,
    ip: IpAddr,
}

impl WaitingPerAddress {
    /// At most `capacity` waiting sign-ins in all.
    pub fn new(capacity: usize) -> Self {
        Self {
            counts: parking_lot::Mutex::new(HashMap::new()),
            total: std::sync::atomic::AtomicUsize::new(0),
            capacity: capacity.max(1),
        }
    }

    pub fn take(self: &Arc<Self>, ip: IpAddr) -> Result<WaitSlot, PgWireError> {
        use std::sync::atomic::Ordering;
        let ip = portcullis_auth::address_key(ip);
        let mut counts = self.counts.lock();
        if self.total.load(Ordering::Relaxed) >= self.capacity {
            return Err(fatal_with(
                "53300",
                format!(
                    "too many interactive sign-ins are waiting (at most {}); try again later or \
                     sign in with a token",
                    self.capacity
                ),
            ));
        }
        let n = counts.entry(ip).or_insert(0);
        if *n >= MAX_WAITING_PER_ADDRESS {
            return Err(fatal_with(
                "53300",
                format!(
                    "too many sign-ins are waiting from this address (at most \
                     {MAX_WAITING_PER_ADDRESS}); finish or cancel one first"
                ),
            ));
        }
        *n += 1;
        self.total.fetch_add(1, Ordering::Relaxed);
        Ok(WaitSlot {
            table: self.clone(),
            ip,
        })
    }
}

impl Drop for WaitSlot {
    fn drop(&mut self) {
        let mut counts = self.table.counts.lock();
        self.table
            .total
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// A sign-in waiting for the user, holding its address's place.
pub struct Waiting {
    pending: Pending,
    /// Who waits, and for which database (the event of a refusal names them).
    client: Client,
    database: String,
    _slot: WaitSlot,
}

enum Pending {
    Device(Box<DeviceGrant>),
    /// A SAML sign-in the person finishes at the server's `/ui/terminal` page.
    Saml(portcullis_auth::saml::terminal::TerminalWait),
}

/// Recognises user `@db`, `sso@db` or `sso`. `Err` for an unknown `ssoOAuthFlow`.
pub fn interactive_login(
    user: &str,
    database: Option<&str>,
    params: &HashMap<String, String>,
) -> Option<Result<InteractiveLogin, PgWireError>> {
    let source = match user.split_once('@') {
        Some(("" | "sso", db)) => Some(db),
        None if user.eq_ignore_ascii_case("sso") => None,
        _ => return None,
    };
    let setting = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .or_else(|| option(params.get("options")?, name))
    };
    let flow = match setting("ssoOAuthFlow").as_deref() {
        None | Some("") => FlowKind::DeviceGrant,
        Some(f) if f.eq_ignore_ascii_case("deviceGrant") => FlowKind::DeviceGrant,
        Some(f)
            if f.eq_ignore_ascii_case("authenticationCode")
                || f.eq_ignore_ascii_case("authorizationCode") =>
        {
            FlowKind::AuthorizationCode
        }
        Some(other) => {
            return Some(Err(fatal_with(
                "22023",
                format!("unknown ssoOAuthFlow \"{other}\"; use deviceGrant or authenticationCode"),
            )))
        }
    };
    let source = source.filter(|s| !s.is_empty());
    let database = database
        .filter(|d| !d.is_empty() && *d != user)
        .or(source)
        .unwrap_or(portcullis_catalog::model::SYSTEM_DATABASE);
    Some(Ok(InteractiveLogin {
        flow,
        source_database: source.map(str::to_owned),
        database: database.to_owned(),
        integration: setting("identityprovider"),
    }))
}

fn sso_fatal(e: &SsoError) -> PgWireError {
    fatal_with(e.sqlstate(), e.to_string())
}

impl PgConnection {
    /// Starts the flow at the provider; answers what to wait for and the notices to show.
    pub(super) async fn start_interactive(
        &self,
        login: &InteractiveLogin,
        client: Client,
    ) -> Result<(Waiting, Vec<String>), PgWireError> {
        let peer: IpAddr = client
            .peer
            .parse::<std::net::SocketAddr>()
            .map(|a| a.ip())
            .map_err(|e| fatal_with("08P01", format!("peer address: {e}")))?;
        let slot = self.shared.waiting.take(peer)?;
        let (pending, notices) = match self.start_saml(login, &client).await? {
            Some(started) => started,
            None => self.start_pending(login).await?,
        };
        Ok((
            Waiting {
                pending,
                client,
                database: login.database.clone(),
                _slot: slot,
            },
            notices,
        ))
    }

    /// A SAML integration has no device grant: the server shows its own page and a code.
    async fn start_saml(
        &self,
        login: &InteractiveLogin,
        client: &Client,
    ) -> Result<Option<(Pending, Vec<String>)>, PgWireError> {
        let pool_id = self.listener.pool_id();
        let choice = portcullis_auth::IntegrationChoice {
            source_database: login.source_database.as_deref(),
            database: &login.database,
            integration: login.integration.as_deref(),
            pool_id,
        };
        let Some(wait) = self
            .shared
            .saml
            .start_terminal(choice, &client.peer)
            .await
            .map_err(|e| sso_fatal(&e))?
        else {
            return Ok(None);
        };
        let saml = &self.shared.saml;
        let notices = vec![
            format!(
                "To sign in to database \"{}\", open {} and enter the code {}",
                login.database,
                saml.terminal_url(pool_id, None),
                wait.user_code
            ),
            format!(
                "Or open {}",
                saml.terminal_url(pool_id, Some(&wait.user_code))
            ),
            format!(
                "Waiting up to {} s for the sign-in…",
                self.shared.max_wait.as_secs()
            ),
        ];
        Ok(Some((Pending::Saml(wait), notices)))
    }

    async fn start_pending(
        &self,
        login: &InteractiveLogin,
    ) -> Result<(Pending, Vec<String>), PgWireError> {
        let grant = self
            .shared
            .device
            .start(&DeviceRequest {
                database: &login.database,
                source_database: login.source_database.as_deref(),
                integration: login.integration.as_deref(),
                pool_id: self.listener.pool_id(),
            })
            .await
            .map_err(|e| sso_fatal(&e))?;
        let code = &grant.code;
        let mut notices = Vec::new();
        if login.flow == FlowKind::AuthorizationCode {
            notices.push(
                "The authorization code flow is not offered to terminals signing in through the \
                 server (its link would sign this terminal in as whoever opened it); use the \
                 device grant below, or `portcullis sql`, whose code flow returns to this machine."
                    .to_owned(),
            );
        }
        notices.push(format!(
            "To sign in to database \"{}\", open {} and enter the code {}",
            login.database, code.verification_uri, code.user_code
        ));
        if let Some(complete) = &code.verification_uri_complete {
            notices.push(format!("Or open {complete}"));
        }
        notices.push(format!(
            "Waiting up to {} s for the sign-in to be approved…",
            code.expires_in.min(self.shared.max_wait).as_secs()
        ));
        Ok((Pending::Device(Box::new(grant)), notices))
    }
}

/// AuthenticationOk and the notices, right after the startup message.
pub async fn announce<C>(client: &mut C, notices: &[String]) -> Result<(), PgWireError>
where
    C: futures::Sink<PgWireBackendMessage> + Unpin,
    PgWireError: From<C::Error>,
{
    client
        .feed(PgWireBackendMessage::Authentication(Authentication::Ok))
        .await?;
    for n in notices {
        client.feed(notice(n)).await?;
    }
    client.flush().await?;
    Ok(())
}

fn notice(text: &str) -> PgWireBackendMessage {
    PgWireBackendMessage::NoticeResponse(
        ErrorInfo::new("NOTICE".into(), "00000".into(), text.to_owned()).into(),
    )
}

type Socket<S> = Framed<pgwire::tokio::server::MaybeTls, PgWireMessageServerCodec<S>>;

/// Waits for the sign-in, then finishes the startup. `Err` is FATAL: the caller sends it and
/// closes. `Ok(false)`: the client went away.
pub async fn wait<S>(
    socket: &mut Socket<S>,
    conn: &PgConnection,
    waiting: Waiting,
) -> Result<bool, PgWireError> {
    let client = &waiting.client;
    let refused = |reason: Reason, e: PgWireError| {
        let attempt = Attempt {
            method: SignInMethod::DeviceGrant,
            database: waiting.database.clone(),
            client: client.clone(),
            ..Attempt::default()
        };
        conn.shared
            .auth
            .catalog()
            .refused(&attempt, reason, &e.to_string());
        e
    };
    let mut last_notice = Instant::now();
    // A waiting sign-in holds a connection slot: at most `sso_flow_seconds`.
    let deadline = Instant::now() + conn.shared.max_wait;
    let session = match waiting.pending {
        Pending::Device(mut grant) => loop {
            let reminder = tokio::time::sleep_until((last_notice + REMINDER_EVERY).into());
            tokio::select! {
                _ = tokio::time::sleep_until(deadline.into()) => {
                    return Err(refused(Reason::DeviceGrant, fatal_with("28000", format!(
                        "the sign-in was not approved within {} s; connect again",
                        conn.shared.max_wait.as_secs()
                    ))));
                }
                polled = conn.shared.device.poll(&mut grant, client, Protocol::Postgres) => {
                    match polled {
                        Ok(Poll::Pending) => continue,
                        Ok(Poll::Approved(session)) => break session,
                        // A token the provider sent but we refused is recorded by sign_in.
                        Err(e) if e.reason() == Reason::DeviceGrant => {
                            return Err(refused(e.reason(), sso_fatal(&e)))
                        }
                        Err(e) => return Err(sso_fatal(&e)),
                    }
                }
                msg = socket.next() => return early_message(msg),
                // The server is stopping: the sign-in is not waited for.
                _ = conn.listener.closing.cancelled() => {
                    let mut info = conn.listener.closed_error();
                    info.message.push_str("; connect again to sign in");
                    return Err(PgWireError::UserError(Box::new(info)));
                }
                _ = reminder => {
                    last_notice = Instant::now();
                    let code = &grant.code;
                    socket.send(notice(&format!(
                        "Still waiting for the sign-in to be approved at {} (code {})",
                        code.verification_uri, code.user_code
                    ))).await?;
                }
            }
        },
        Pending::Saml(mut wait) => loop {
            let reminder = tokio::time::sleep_until((last_notice + REMINDER_EVERY).into());
            tokio::select! {
                _ = tokio::time::sleep_until(deadline.into()) => {
                    return Err(refused(Reason::UserCode, fatal_with("28000", format!(
                        "nobody signed in with code {} within {} s; connect again",
                        wait.user_code,
                        conn.shared.max_wait.as_secs()
                    ))));
                }
                delivered = &mut wait.session => match delivered {
                    Ok(session) => break session,
                    Err(_) => return Err(fatal_with("57P01", "the server stopped the sign-in".into())),
                },
                msg = socket.next() => return early_message(msg),
                _ = conn.listener.closing.cancelled() => {
                    let mut info = conn.listener.closed_error();
                    info.message.push_str("; connect again to sign in");
                    return Err(PgWireError::UserError(Box::new(info)));
                }
                _ = reminder => {
                    last_notice = Instant::now();
                    socket.send(notice(&format!(
                        "Still waiting for the sign-in with code {}",
                        wait.user_code
                    ))).await?;
                }
            }
        },
    };
    conn.admit(session.clone()).await?;
    if let Err(e) = ready(socket, conn).await {
        conn.shared
            .auth
            .catalog()
            .sessions
            .remove(&session.id, Reason::ClientDisconnected);
        return Err(e);
    }
    Ok(true)
}

/// A message (or the end of the stream) before the sign-in finished.
fn early_message(
    msg: Option<Result<PgWireFrontendMessage, PgWireError>>,
) -> Result<bool, PgWireError> {
    match msg {
        None | Some(Ok(PgWireFrontendMessage::Terminate(_))) => Ok(false),
        Some(_) => Err(fatal_with(
            "08P01",
            "a message arrived before the sign-in was approved; nothing was run. Wait for the \
             sign-in to finish before sending queries"
                .into(),
        )),
    }
}

/// The rest of the startup after AuthenticationOk: parameters, key data, ReadyForQuery.
async fn ready<S>(socket: &mut Socket<S>, conn: &PgConnection) -> Result<(), PgWireError> {
    if let Some(params) = conn.parameters().server_parameters(&*socket) {
        for (k, v) in params {
            socket
                .feed(PgWireBackendMessage::ParameterStatus(ParameterStatus::new(
                    k, v,
                )))
                .await?;
        }
    }
    // A key of its own for cancel requests.
    let pid = rand::random::<i32>() & i32::MAX;
    let key = pgwire::messages::startup::SecretKey::I32(rand::random());
    socket.set_pid_and_secret_key(pid, key.clone());
    socket
        .feed(PgWireBackendMessage::BackendKeyData(BackendKeyData::new(
            pid, key,
        )))
        .await?;
    socket
        .feed(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(
            TransactionStatus::Idle,
        )))
        .await?;
    socket.flush().await?;
    socket.set_state(PgWireConnectionState::ReadyForQuery);
    Ok(())
}
