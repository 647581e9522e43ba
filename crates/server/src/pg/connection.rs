//! The per-connection message loop. It is pgwire's own loop (TLS negotiation, startup timeout,
//! FATAL closes) with one change: during authentication a PasswordMessage longer than pgwire's
//! 10,000-byte cap is read here, up to PostgreSQL's 65,535-byte limit, because provider tokens
//! given as passwords are often larger; and an interactive sign-in started by the startup
//! message is waited for here, where the socket can be watched.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use pgwire::api::{ClientInfo, ErrorHandler, PgWireConnectionState, PgWireServerHandlers};
use pgwire::error::PgWireError;
use pgwire::messages::response::{ReadyForQuery, TransactionStatus};
use pgwire::messages::startup::PasswordMessageFamily;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use pgwire::tokio::server::{
    negotiate_tls, process_error, process_message, MaybeTls, PgWireMessageServerCodec,
};
use tokio_rustls::TlsAcceptor;
use tokio_util::codec::Framed;

use super::listen::{Accepted, UNIX_PEER};
use super::{interactive, Handlers, PgConnection};

/// The longest password message accepted (PostgreSQL's `PG_MAX_AUTH_TOKEN_LENGTH`).
pub const MAX_PASSWORD_MESSAGE: usize = 65_535;
/// How long a client may take from connecting to finishing authentication.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// pgwire's own cap on messages it decodes during startup.
const PGWIRE_SMALL_LIMIT: usize = 10_000;
/// The longest message accepted after sign-in (a catalog statement is at most 1 MiB of SQL;
/// pgwire alone would buffer up to 1 GiB).
pub const MAX_MESSAGE: usize = 1 << 20;

type Socket<S> = Framed<MaybeTls, PgWireMessageServerCodec<S>>;

/// The connection's first exchange. Over TCP, pgwire's TLS negotiation. On the Unix socket
/// there is no TLS (as in PostgreSQL): an SSLRequest or GSSENCRequest is answered "no", and
/// the startup message follows.
async fn negotiate<S>(
    accepted: Accepted,
    tls: Option<TlsAcceptor>,
) -> io::Result<Option<Socket<S>>> {
    use pgwire::messages::response::{GssEncResponse, SslResponse};
    use pgwire::messages::SslNegotiationMetaMessage as Request;
    let unix = match accepted {
        Accepted::Tcp(tcp) => return negotiate_tls(tcp, tls).await,
        Accepted::Unix(unix) => unix,
    };
    let mut socket = Framed::new(
        MaybeTls::Unix(unix),
        PgWireMessageServerCodec::new(pgwire::api::DefaultClient::new(UNIX_PEER, false)),
    );
    // Each request is answered once; a client that keeps asking is cut.
    for _ in 0..2 {
        let answer = match socket.next().await {
            Some(Ok(PgWireFrontendMessage::SslNegotiation(Request::PostgresSsl(_)))) => {
                PgWireBackendMessage::SslResponse(SslResponse::Refuse)
            }
            Some(Ok(PgWireFrontendMessage::SslNegotiation(Request::PostgresGss(_)))) => {
                PgWireBackendMessage::GssEncResponse(GssEncResponse::Refuse)
            }
            Some(Err(e)) => return Err(e.into()),
            None => return Ok(None),
            Some(Ok(_)) => break,
        };
        socket.send(answer).await?;
    }
    socket.set_state(PgWireConnectionState::AwaitingStartup);
    Ok(Some(socket))
}

/// Serves one connection to its end (`peer`: its address, as accepted).
pub async fn run(
    accepted: Accepted,
    peer: std::net::SocketAddr,
    tls: Option<TlsAcceptor>,
    conn: Arc<PgConnection>,
) -> io::Result<()> {
    let handlers = Handlers(conn.clone());
    let deadline = tokio::time::sleep(STARTUP_TIMEOUT);
    tokio::pin!(deadline);
    // Until signed in, the connection waits on its client: among too many such, the one
    // waiting longest is cut (see crate::waiting).
    let cut = tokio_util::sync::CancellationToken::new();
    let mut waiting_on_client = Some(conn.shared.slow_clients.enter(peer.ip(), &cut));
    let socket = tokio::select! {
        _ = &mut deadline => return Ok(()),
        _ = cut.cancelled() => return Ok(()),
        s = Box::pin(negotiate(accepted, tls)) => s?,
    };
    let Some(mut socket) = socket else {
        return Ok(());
    };
    let startup = handlers.startup_handler();
    let simple = handlers.simple_query_handler();
    let extended = handlers.extended_query_handler();
    let copy = handlers.copy_handler();
    let cancel = handlers.cancel_handler();
    let errors = handlers.error_handler();
    // In a database bound to an upstream: the person's own session there, relayed to.
    let mut relay: Option<Box<portcullis_gateway::session::UpstreamSession>> = None;
    let mut cancel_key: Option<super::relay::ClientKey> = None;
    // The client said goodbye (Terminate or end of stream) with its session still standing: its
    // upstream session may be kept for the person's next sign-in.
    let mut client_left = false;
    let mut checked = None;
    let mut watching = None;
    // The server is stopping and this session waits for its statement in flight until then.
    let mut stop_by: Option<tokio::time::Instant> = None;
    let result = async {
    loop {
        let authenticating = matches!(
            socket.state(),
            PgWireConnectionState::AwaitingStartup
                | PgWireConnectionState::AuthenticationInProgress
        );
        if !authenticating {
            waiting_on_client = None;
        }
        let msg = if authenticating {
            tokio::select! {
                _ = &mut deadline => None,
                _ = cut.cancelled() => {
                    send_error(&mut socket, crowded_out()).await?;
                    break;
                }
                _ = conn.listener.closing.cancelled() => {
                    send_error(&mut socket, conn.listener.closed_error()).await?;
                    break;
                }
                m = next_auth_message(&mut socket) => m,
            }
        } else {
            // Signed in: wait for the client, or for the session's authority to end, or for
            // its sign-in token to expire. (A statement in flight is not interrupted: the
            // end is noticed here, between statements, and the next statement checks too.)
            // Both waits are made once per session, not once per message.
            if watching.is_none() {
                watching = conn
                    .watch_end()
                    .map(|ended| (ended, Box::pin(token_expiry(&conn))));
            }
            match watching.as_mut() {
                Some((ended, expiry)) => {
                    let relaying = relay.is_some();

                    if !relaying {
                        release_idle_buffers(&mut socket);
                    }
                    let ends = tokio::select! {
                        m = next_incoming(&mut socket, relaying) => match m {
                            Incoming::Message(m) => Ok(m),
                            // Frames that go upstream as they are: no decoding, one write.
                            Incoming::Raw(bytes) => {
                                if let Some(up) = relay.as_mut() {
                                    if let Err(reason) = still_live_cached(&conn, &mut checked) {
                    let info = super::errors::session_ended(&reason).into();
                                        send_error(&mut socket, info).await?;
                                        break;
                                    }
                                    Box::pin(super::relay::send_frames(up, &bytes, |sql| {
                                        let catalog = conn.shared.auth.catalog();
                                        portcullis_catalog::upstream::object_grant_upstream(
                                            &catalog.state(),
                                            conn.session().map_or(0, |s| s.database_id),
                                            sql,
                                        )
                                    }))
                                    .await?;
                                }
                                continue;
                            }
                        },
                        up = super::relay::read_upstream(&mut relay) => {
                            match up {
                                // The upstream's answers go to the client as they are.
                                Ok(bytes) => {
                                    if !socket.write_buffer().is_empty() {
                                        SinkExt::<pgwire::messages::PgWireBackendMessage>::flush(
                                            &mut socket,
                                        )
                                        .await?;
                                    }
                                    use tokio::io::AsyncWriteExt;
                                    socket.get_mut().write_all(&bytes).await?;
                                    socket.get_mut().flush().await?;
                                    // Stopping: the statement in flight is done.
                                    let at_rest =
                                        relay.as_ref().is_some_and(|up| up.flow.at_rest().is_some());
                                    if stop_by.is_some() && at_rest {
                                        send_error(&mut socket, conn.listener.closed_error()).await?;
                                        break;
                                    }
                                    continue;
                                }
                                Err(e) => {
                                    tracing::debug!(error = %e, "the upstream session ended");
                                    let info = pgwire::error::ErrorInfo::new(
                                        "FATAL".into(),
                                        "08006".into(),
                                        "terminating connection: the upstream database ended \
                                         the session"
                                            .into(),
                                    );
                                    send_error(&mut socket, info).await?;
                                    break;
                                }
                            }
                        }
                        _ = expiry.as_mut() => {
                            conn.end_expired();
                            Err(())
                        }
                        _ = ended.changed() => Err(()),
                        // The server stops: now, unless an upstream statement is in flight
                        // (then when it is done, or at the grace's end).
                        _ = conn.listener.closing.cancelled(), if stop_by.is_none() => {
                            let in_flight =
                                relay.as_ref().is_some_and(|up| up.flow.at_rest().is_none());
                            if !in_flight {
                                send_error(&mut socket, conn.listener.closed_error()).await?;
                                break;
                            }
                            stop_by = Some(tokio::time::Instant::now() + super::SHUTDOWN_GRACE);
                            continue;
                        }
                        _ = tokio::time::sleep_until(stop_by.unwrap_or_else(tokio::time::Instant::now)),
                            if stop_by.is_some() => {
                            send_error(&mut socket, conn.listener.closed_error()).await?;
                            break;
                        }
                    };
                    match ends {
                        Ok(m) => m,
                        Err(()) => {
                            let reason = conn
                                .end_reason()
                                .unwrap_or(portcullis_catalog::EndReason::Gone);
                            let info: pgwire::error::ErrorInfo =
                                super::errors::session_ended(&reason).into();
                            send_error(&mut socket, info).await?;
                            break;
                        }
                    }
                }
                None => next_bounded(&mut socket).await,
            }
        };
        let Some(Ok(msg)) = msg else {
            client_left = msg.is_none();
            if let Some(Err(e)) = msg {
                tracing::debug!(error = %e, "undecodable message; closing");
                let info = match e {
                    PgWireError::MessageTooLarge(limit, len) => Some(pgwire::error::ErrorInfo::new(
                        "FATAL".into(),
                        "54000".into(),
                        format!("message of {len} bytes is longer than the limit of {limit} bytes"),
                    )),
                    // A protocol violation found before decoding (FATAL 08P01).
                    PgWireError::UserError(info) => Some(*info),
                    _ => None,
                };
                if let Some(info) = info {
                    let _ = socket
                        .send(pgwire::messages::PgWireBackendMessage::ErrorResponse(
                            info.into(),
                        ))
                        .await;
                }
            }
            break;
        };
        if matches!(msg, PgWireFrontendMessage::Terminate(_)) {
            client_left = true;
            break;
        }
        if let Some(up) = relay.as_mut() {
            if super::relay::forwards(&msg) {
                // Every statement runs on authority that still holds.
                if let Err(reason) = still_live_cached(&conn, &mut checked) {
                    let info = super::errors::session_ended(&reason).into();
                    send_error(&mut socket, info).await?;
                    break;
                }
                let database_id = conn.session().map_or(0, |s| s.database_id);
                let msg = match super::relay::for_upstream(
                    msg,
                    conn.shared.auth.catalog(),
                    database_id,
                ) {
                    Ok(msg) => msg,
                    Err(e) => {
                        // Nothing went upstream: the error, and the upstream's status as it was.
                        let info: pgwire::error::ErrorInfo =
                            super::errors::statement_error(e).into();
                        let status = match up.flow.status() {
                            b'T' => TransactionStatus::Transaction,
                            b'E' => TransactionStatus::Error,
                            _ => TransactionStatus::Idle,
                        };
                        socket
                            .feed(PgWireBackendMessage::ErrorResponse(info.into()))
                            .await?;
                        socket
                            .send(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(
                                status,
                            )))
                            .await?;
                        continue;
                    }
                };
                Box::pin(super::relay::send_message(up, &msg)).await?;
                continue;
            }
        }
        let is_extended = match socket.state() {
            PgWireConnectionState::CopyInProgress(ext) => ext,
            _ => msg.is_extended_query(),
        };
        let is_cancel = matches!(msg, PgWireFrontendMessage::CancelRequest(_));
        // Boxed, like the other rare or large steps below: the connection's future is kept
        // to what its idle wait needs (a few hundred bytes, not the sign-in's state).
        if let Err(mut e) = Box::pin(process_message(
            msg,
            &mut socket,
            startup.clone(),
            simple.clone(),
            extended.clone(),
            copy.clone(),
            cancel.clone(),
        ))
        .await
        {
            errors.on_error(&socket, &mut e);
            if e.is_fatal() {
                // FATAL, then close — like PostgreSQL, no ReadyForQuery after it (pgwire's
                // process_error would send one).
                let info: pgwire::error::ErrorInfo = e.into();
                send_error(&mut socket, info).await?;
                break;
            }
            Box::pin(process_error(&mut socket, e, is_extended)).await?;
        }
        if is_cancel {
            break;
        }
        if relay.is_none() {
            relay = Box::pin(start_relay(&mut socket, &conn, &mut cancel_key)).await?;
        }
        let waiting = conn.take_interactive();
        if let Some(waiting) = waiting {
            // Waiting for the provider now, not for the client.
            waiting_on_client = None;
            match Box::pin(interactive::wait(&mut socket, &conn, waiting)).await {
                Ok(true) => {
                    relay = Box::pin(start_relay(&mut socket, &conn, &mut cancel_key)).await?
                }
                Ok(false) => break,
                Err(e) => {
                    // FATAL, then close: no ReadyForQuery after a failed sign-in.
                    let info: pgwire::error::ErrorInfo = e.into();
                    send_error(&mut socket, info).await?;
                    break;
                }
            }
        }
    }
    Ok::<(), io::Error>(())
    }
    .await;
    if let Some(key) = cancel_key {
        conn.shared.cancels.forget(&key);
    }
    if let Some(up) = relay.take() {
        // Kept only if the client left it at rest on a session that still holds (the pool
        // checks the rest); the upstream session of a session that ended ends with it.
        if result.is_ok() && client_left && still_live(&conn).is_ok() {
            conn.shared.gateway.give_back(up);
        } else {
            tokio::spawn(up.close());
        }
    }
    result
}

/// Too many connections were waiting on their clients to sign in, and this one had waited
/// longest.
fn crowded_out() -> pgwire::error::ErrorInfo {
    pgwire::error::ErrorInfo::new(
        "FATAL".into(),
        "53300".into(),
        "sorry, too many clients are signing in at once; this connection had waited longest \
         for its client"
            .into(),
    )
}

/// Sends an ErrorResponse (a FATAL the caller then closes the connection after).
async fn send_error<S>(socket: &mut Socket<S>, info: pgwire::error::ErrorInfo) -> io::Result<()> {
    socket
        .send(pgwire::messages::PgWireBackendMessage::ErrorResponse(
            info.into(),
        ))
        .await
}

/// Whether the signed-in session still holds (checked before relaying anything for it).
fn still_live(conn: &PgConnection) -> Result<(), portcullis_catalog::EndReason> {
    match conn.session() {
        Some(session) => conn
            .shared
            .auth
            .catalog()
            .live_session(&session.id)
            .map(|_| ()),
        None => Ok(()),
    }
}

/// [`still_live`] for the relay, at most once per catalog generation and second: a message
/// relayed in the same second as the last check, with no catalog change since, is on the same
/// authority. (Ends decided elsewhere — token expiry, idle and age limits, END SESSION, a
/// change that takes authority away — reach the connection at once through its watch.)
fn still_live_cached(
    conn: &PgConnection,
    checked: &mut Option<(u64, i64)>,
) -> Result<(), portcullis_catalog::EndReason> {
    let now = (
        conn.shared.auth.catalog().generation(),
        portcullis_catalog::now(),
    );
    if *checked == Some(now) {
        return Ok(());
    }
    still_live(conn)?;
    *checked = Some(now);
    Ok(())
}

/// Takes the signed-in session's upstream, if it has one, to relay to, and registers it for
/// cancel requests under the key the client was given.
async fn start_relay<S>(
    socket: &mut Socket<S>,
    conn: &PgConnection,
    cancel_key: &mut Option<super::relay::ClientKey>,
) -> io::Result<Option<Box<portcullis_gateway::session::UpstreamSession>>> {
    let Some(up) = conn.take_upstream() else {
        return Ok(None);
    };
    let (pid, secret) = socket.pid_and_secret_key();
    *cancel_key = Some(conn.shared.cancels.register(pid, &secret, &up));
    Ok(Some(up))
}

/// What the client sent next: a decoded message, or (relaying) complete frames that go to the
/// upstream as they are.
enum Incoming {
    Message(Option<Result<PgWireFrontendMessage, PgWireError>>),
    Raw(tokio_util::bytes::BytesMut),
}

/// The next message; when relaying, every complete frame but a simple Query (which may be
/// Portcullis's) and Terminate is taken off the buffer raw, without decoding.
async fn next_incoming<S>(socket: &mut Socket<S>, relaying: bool) -> Incoming {
    if !relaying {
        return Incoming::Message(next_bounded(socket).await);
    }
    loop {
        // The run of complete frames at the front of the buffer, taken in one piece.
        let mut end = 0;
        let buf = socket.read_buffer();
        while let Some(head) = buf.get(end..end + 5) {
            if matches!(head[0], b'Q' | b'X') {
                break;
            }
            let len = usize::try_from(i32::from_be_bytes([head[1], head[2], head[3], head[4]]))
                .unwrap_or(usize::MAX);
            if !(4..=MAX_MESSAGE + 4).contains(&len) || buf.len() < end + 1 + len {
                break;
            }
            end += 1 + len;
        }
        if end > 0 {
            return Incoming::Raw(socket.read_buffer_mut().split_to(end));
        }
        let buf = socket.read_buffer();
        let decode = buf.len() >= 5
            && (matches!(buf[0], b'Q' | b'X')
                || usize::try_from(i32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]))
                    .map_or(true, |len| !(4..=MAX_MESSAGE + 4).contains(&len)));
        if decode {
            // A query, a terminate, or a length out of bounds (answered with its error).
            return Incoming::Message(next_bounded(socket).await);
        }
        let want = socket.read_buffer().len() + 1;
        if let Err(e) = fill(socket, want).await {
            return Incoming::Message(e.map(Err));
        }
    }
}

/// The next message while authenticating: framed here (a long PasswordMessage beyond pgwire's
/// cap too), checked against its layout, then decoded by pgwire's codec; the startup packet
/// (before) is pgwire's alone.
async fn next_auth_message<S>(
    socket: &mut Socket<S>,
) -> Option<Result<PgWireFrontendMessage, PgWireError>> {
    if matches!(
        socket.state(),
        PgWireConnectionState::AuthenticationInProgress
    ) {
        if let Err(e) = fill(socket, 5).await {
            return e.map(Err);
        }
        let buf = socket.read_buffer();
        if let Some(e) = short_frame(buf) {
            return Some(Err(e));
        }
        let tag = buf[0];
        let len = usize::try_from(i32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]))
            .unwrap_or(usize::MAX);
        if tag == b'p' && len > PGWIRE_SMALL_LIMIT {
            if len > MAX_PASSWORD_MESSAGE + 4 {
                return Some(Err(PgWireError::MessageTooLarge(MAX_PASSWORD_MESSAGE, len)));
            }
            if let Err(e) = fill(socket, 1 + len).await {
                return e.map(Err);
            }
            let mut frame = socket.read_buffer_mut().split_to(1 + len);
            let body = frame.split_off(5);
            return Some(Ok(PgWireFrontendMessage::PasswordMessageFamily(
                PasswordMessageFamily::Raw(body),
            )));
        }
        if len > PGWIRE_SMALL_LIMIT {
            return Some(Err(PgWireError::MessageTooLarge(PGWIRE_SMALL_LIMIT, len)));
        }
        // The whole frame, checked, then decoded by pgwire.
        if let Err(e) = fill(socket, 1 + len).await {
            return e.map(Err);
        }
        return decode_buffered(socket);
    }
    socket.next().await
}

/// The next message after sign-in, refused (before it is buffered) if longer than
/// [`MAX_MESSAGE`]. Cancel-safe: bytes read stay in the socket's buffer.
async fn next_bounded<S>(
    socket: &mut Socket<S>,
) -> Option<Result<PgWireFrontendMessage, PgWireError>> {
    loop {
        let buf = socket.read_buffer();
        if let Some(e) = short_frame(buf) {
            return Some(Err(e));
        }
        if buf.len() >= 5 {
            let len = i32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
            let len = usize::try_from(len).unwrap_or(usize::MAX);
            if len > MAX_MESSAGE + 4 {
                return Some(Err(PgWireError::MessageTooLarge(MAX_MESSAGE, len)));
            }
            if buf.len() > len {
                return decode_buffered(socket);
            }
        }
        let want = socket.read_buffer().len() + 1;
        if let Err(e) = fill(socket, want).await {
            return e.map(Err);
        }
    }
}

/// A frame whose length field is below 4 (the length counts its own four bytes) is a protocol
/// violation. pgwire would decode it by subtracting 4 and panic (found by fuzzing,
/// `fuzz/fuzz_targets/pg_connection.rs`): it is refused before pgwire sees it.
fn short_frame(buf: &[u8]) -> Option<PgWireError> {
    let len = i32::from_be_bytes(buf.get(1..5)?.try_into().ok()?);
    (len < 4).then(|| super::errors::fatal_with("08P01", format!("invalid message length {len}")))
}

/// Decodes the complete message at the front of the read buffer with the connection's codec.
/// Not `socket.next()`: after bytes were read here, `Framed` may still believe its buffer holds
/// no frame and wait for more input before decoding.
fn decode_buffered<S>(
    socket: &mut Socket<S>,
) -> Option<Result<PgWireFrontendMessage, PgWireError>> {
    use tokio_util::codec::Decoder;
    // The frame at the front must fit its message's layout (pgwire's decoders would panic or
    // read into the next frame otherwise).
    let buf = socket.read_buffer();
    if let Some(head) = buf.get(..5) {
        let len =
            usize::try_from(i32::from_be_bytes([head[1], head[2], head[3], head[4]])).unwrap_or(0);
        if let Some(body) = buf.get(5..1 + len) {
            if let Err(e) = super::frames::check(head[0], body) {
                return Some(Err(e));
            }
        }
    }
    let mut buf = std::mem::take(socket.read_buffer_mut());
    let decoded = socket.codec_mut().decode(&mut buf);
    *socket.read_buffer_mut() = buf;
    decoded.transpose()
}

/// How much room a read makes in the read buffer at least, once a message is coming in.
const READ_AHEAD: usize = 8 * 1024;
/// The room made for the first read into an empty buffer (an idle connection waits with only
/// this much: most messages fit, and a longer one is read on with [`READ_AHEAD`]).
const FIRST_READ: usize = 512;

/// Reads until the buffer holds `want` bytes. `Err(None)` is a clean end of stream. Reads go
/// straight into the socket's own read buffer (no buffer of its own, so a connection idle here
/// holds nothing more), and the buffer is back in the socket whenever this is suspended: it is
/// cancel-safe.
async fn fill<S>(socket: &mut Socket<S>, want: usize) -> Result<(), Option<PgWireError>> {
    while socket.read_buffer().len() < want {
        let n = std::future::poll_fn(|cx| {
            let mut buf = std::mem::take(socket.read_buffer_mut());
            let ahead = if buf.is_empty() {
                FIRST_READ
            } else {
                READ_AHEAD
            };
            buf.reserve((want - buf.len()).max(ahead));
            let polled =
                tokio_util::io::poll_read_buf(std::pin::Pin::new(socket.get_mut()), cx, &mut buf);
            *socket.read_buffer_mut() = buf;
            polled
        })
        .await
        .map_err(|e| Some(PgWireError::IoError(e)))?;
        if n == 0 {
            return Err(None);
        }
    }
    Ok(())
}

/// A signed-in connection about to wait for its client gives back its read and write buffers
/// if they hold nothing (they are made again by the next message): an idle session then holds
/// no buffer at all.
fn release_idle_buffers<S>(socket: &mut Socket<S>) {
    if socket.read_buffer().is_empty() && socket.read_buffer().capacity() > 0 {
        *socket.read_buffer_mut() = tokio_util::bytes::BytesMut::new();
    }
    if socket.write_buffer().is_empty() && socket.write_buffer().capacity() > 0 {
        *socket.write_buffer_mut() = tokio_util::bytes::BytesMut::new();
    }
}

/// Resolves when the signed-in session's token expires (never for password sessions).
async fn token_expiry(conn: &PgConnection) {
    let at = conn
        .session()
        .and_then(|s| s.sso.as_ref().map(|sso| sso.token_expires_at));
    let Some(at) = at else {
        return std::future::pending().await;
    };
    // In steps of at most a day (a token's exp may be far away, even near i64::MAX).
    loop {
        let wait = u64::try_from(at.saturating_sub(portcullis_catalog::now())).unwrap_or(0);
        if wait == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_secs(wait.min(86_400))).await;
    }
}

impl PgConnection {
    /// Ends the session because its token expired (the registry tells this connection why).
    fn end_expired(&self) {
        let session = self.session();
        if let Some((id, at)) = session.and_then(|s| {
            s.sso
                .as_ref()
                .map(|sso| (s.id.clone(), sso.token_expires_at))
        }) {
            self.shared
                .auth
                .catalog()
                .sessions
                .end(&id, portcullis_catalog::EndReason::TokenExpired { at });
        }
    }

    /// A receiver for the end of the signed-in session (subscribed on first use).
    fn watch_end(
        &self,
    ) -> Option<tokio::sync::watch::Receiver<Option<portcullis_catalog::EndReason>>> {
        let mut phase = self.phase.lock();
        let super::Phase::SignedIn { session, ended, .. } = &mut *phase else {
            return None;
        };
        if ended.is_none() {
            *ended = Some(self.shared.auth.catalog().sessions.watch(&session.id)?);
        }
        ended.clone()
    }
}
