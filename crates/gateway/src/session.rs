//! A person's own session upstream: a connection that logs in as their role (SCRAM-SHA-256 with
//! the password provisioning just set), over TLS (`verify-full`) or plain TCP to loopback
//! (`disable`), up to its first ReadyForQuery. The relay then carries the client's messages
//! to it and its answers back, byte for byte.

use bytes::{Buf, BytesMut};
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
use postgres_protocol::message::{backend, frontend};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use portcullis_catalog::upstream::{unreachable, SslMode, UpstreamUrl};
use portcullis_catalog::CatalogError;

use crate::flow::Flow;
use crate::pool::Key;
use crate::roles::UpstreamLogin;

/// A byte stream to the upstream (TLS or not).
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A logged-in upstream session, ready for queries.
pub struct UpstreamSession {
    pub stream: Box<dyn Io>,
    /// The relay's read buffer (reused).
    pub inbuf: BytesMut,
    /// The upstream's parameters (`server_version`, `TimeZone`, …), for the client: it should
    /// know the server it really talks to. `is_superuser` and `session_authorization` are left
    /// out (Portcullis says them).
    pub parameters: Vec<(String, String)>,
    /// The upstream's BackendKeyData (for cancelling its queries).
    pub process_id: i32,
    pub secret_key: i32,
    /// Where it runs (a cancel request opens a new connection there).
    pub host: String,
    pub port: u16,
    pub sslmode: SslMode,
    /// Where the conversation is (whether the session may be kept for the next sign-in).
    pub flow: Flow,
    /// The groups the creator-group rule picks from, for the person signed in now.
    pub creator: crate::creator::Creator,
    /// The pool's key for it.
    pub(crate) key: Option<Key>,
}

impl std::fmt::Debug for UpstreamSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamSession")
            .field("process_id", &self.process_id)
            .finish_non_exhaustive()
    }
}

async fn open(url: &UpstreamUrl) -> Result<Box<dyn Io>, CatalogError> {
    let tcp = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        TcpStream::connect((url.host.as_str(), url.port)),
    )
    .await
    .map_err(|_| unreachable(format!("{} did not answer in time", url.display())))?
    .map_err(|e| unreachable(format!("{} could not be reached ({e})", url.display())))?;
    let _ = tcp.set_nodelay(true);
    match url.sslmode {
        SslMode::Disable => Ok(Box::new(tcp)),
        SslMode::Require => Err(unreachable("sslmode=require is not supported")),
        SslMode::VerifyFull => {
            let mut tcp = tcp;
            let mut buf = BytesMut::new();
            frontend::ssl_request(&mut buf);
            tcp.write_all(&buf)
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            let mut answer = [0u8; 1];
            tcp.read_exact(&mut answer)
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            if answer[0] != b'S' {
                return Err(unreachable(format!(
                    "{} does not speak TLS (sslmode=verify-full)",
                    url.display()
                )));
            }
            let name = rustls::pki_types::ServerName::try_from(url.host.clone())
                .map_err(|e| unreachable(format!("host name: {e}")))?;
            let tls = tokio_rustls::TlsConnector::from(crate::connect::client_config()?)
                .connect(name, tcp)
                .await
                .map_err(|e| unreachable(format!("TLS with {}: {e}", url.display())))?;
            Ok(Box::new(tls))
        }
    }
}

/// Reads one backend message.
async fn read_message(
    stream: &mut Box<dyn Io>,
    buf: &mut BytesMut,
) -> Result<backend::Message, CatalogError> {
    loop {
        if let Some(m) = backend::Message::parse(buf).map_err(|e| unreachable(e.to_string()))? {
            return Ok(m);
        }
        if stream
            .read_buf(buf)
            .await
            .map_err(|e| unreachable(e.to_string()))?
            == 0
        {
            return Err(unreachable(
                "the upstream closed the connection while logging in",
            ));
        }
    }
}

fn error_text(body: &backend::ErrorResponseBody) -> String {
    use fallible_iterator::FallibleIterator;
    let mut fields = body.fields();
    let mut message = String::from("refused");
    while let Ok(Some(f)) = fields.next() {
        if f.type_() == b'M' {
            message = String::from_utf8_lossy(f.value_bytes()).into_owned();
        }
    }
    message
}

/// Logs in as `login` to the database of `url`, with the client's `application_name`.
pub async fn connect(
    url: &UpstreamUrl,
    login: &UpstreamLogin,
    application: Option<&str>,
) -> Result<UpstreamSession, CatalogError> {
    let mut stream = open(url).await?;
    let mut out = BytesMut::new();
    let mut params = vec![
        ("user", login.role.as_str()),
        ("database", url.database.as_str()),
        ("client_encoding", "UTF8"),
    ];
    if let Some(app) = application {
        params.push(("application_name", app));
    }
    frontend::startup_message(params, &mut out).map_err(|e| unreachable(e.to_string()))?;
    stream
        .write_all(&out)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let mut buf = BytesMut::new();
    let mut scram: Option<ScramSha256> = None;
    let mut parameters = Vec::new();
    let (mut process_id, mut secret_key) = (0, 0);
    loop {
        let message = read_message(&mut stream, &mut buf).await?;
        let mut reply = BytesMut::new();
        match message {
            backend::Message::AuthenticationSasl(_) => {
                let s = ScramSha256::new(login.password.as_bytes(), ChannelBinding::unsupported());
                frontend::sasl_initial_response("SCRAM-SHA-256", s.message(), &mut reply)
                    .map_err(|e| unreachable(e.to_string()))?;
                scram = Some(s);
            }
            backend::Message::AuthenticationSaslContinue(body) => {
                let s = scram
                    .as_mut()
                    .ok_or_else(|| unreachable("SCRAM out of order"))?;
                s.update(body.data())
                    .map_err(|e| unreachable(format!("SCRAM: {e}")))?;
                frontend::sasl_response(s.message(), &mut reply)
                    .map_err(|e| unreachable(e.to_string()))?;
            }
            backend::Message::AuthenticationSaslFinal(body) => {
                scram
                    .as_mut()
                    .ok_or_else(|| unreachable("SCRAM out of order"))?
                    .finish(body.data())
                    .map_err(|e| unreachable(format!("the upstream's SCRAM proof: {e}")))?;
            }
            backend::Message::AuthenticationOk => {}
            backend::Message::ParameterStatus(p) => {
                if let (Ok(name), Ok(value)) = (p.name(), p.value()) {
                    if !matches!(name, "is_superuser" | "session_authorization") {
                        parameters.push((name.to_owned(), value.to_owned()));
                    }
                }
            }
            backend::Message::BackendKeyData(k) => {
                process_id = k.process_id();
                secret_key = k.secret_key();
            }
            backend::Message::ReadyForQuery(_) => break,
            backend::Message::ErrorResponse(body) => {
                return Err(unreachable(format!(
                    "{} refused {}: {}",
                    url.display(),
                    login.role,
                    error_text(&body)
                )));
            }
            backend::Message::NoticeResponse(_) => {}
            _ => {
                return Err(unreachable(
                    "the upstream asked for an authentication method other than SCRAM-SHA-256",
                ))
            }
        }
        if !reply.is_empty() {
            stream
                .write_all(&reply)
                .await
                .map_err(|e| unreachable(e.to_string()))?;
        }
    }
    if buf.has_remaining() {
        return Err(unreachable("the upstream sent data before it was asked"));
    }
    Ok(UpstreamSession {
        stream,
        inbuf: BytesMut::with_capacity(16 * 1024),
        parameters,
        process_id,
        secret_key,
        host: url.host.clone(),
        port: url.port,
        sslmode: url.sslmode,
        flow: Flow::default(),
        creator: crate::creator::Creator::default(),
        key: Some(Key {
            upstream: url.display(),
            role: login.role.clone(),
            application: application.map(str::to_owned),
        }),
    })
}

impl UpstreamSession {
    /// Whether the connection is still open and quiet (an upstream that shut down sends its
    /// FATAL and closes; either shows here without waiting).
    pub fn alive(&mut self) -> bool {
        use futures_util::FutureExt;
        let mut probe = [0u8; 1];
        // Pending: nothing to read, the connection open. Anything else (a FATAL, the end of
        // the stream, an error) means it is done.
        self.stream.read(&mut probe).now_or_never().is_none()
    }

    /// Makes the session as a new login would find it: the open transaction (status `T` or
    /// `E`) rolled back, then `DISCARD ALL` (prepared statements, temporary tables, settings,
    /// `SET ROLE`, advisory locks, LISTENs all gone). Any error refuses the reset.
    pub async fn reset(&mut self, status: u8) -> Result<(), CatalogError> {
        let mut out = BytesMut::new();
        let mut expect = 1;
        if status != b'I' {
            frontend::query("ROLLBACK", &mut out).map_err(|e| unreachable(e.to_string()))?;
            expect += 1;
        }
        frontend::query("DISCARD ALL", &mut out).map_err(|e| unreachable(e.to_string()))?;
        self.stream
            .write_all(&out)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let mut buf = std::mem::take(&mut self.inbuf);
        let mut failed = None;
        while expect > 0 {
            match read_message(&mut self.stream, &mut buf).await? {
                backend::Message::ReadyForQuery(r) => {
                    expect -= 1;
                    if expect == 0 && r.status() != b'I' {
                        failed = Some("the session is still in a transaction".to_owned());
                    }
                }
                backend::Message::ErrorResponse(body) => failed = Some(error_text(&body)),
                backend::Message::ParameterStatus(p) => {
                    if let (Ok(name), Ok(value)) = (p.name(), p.value()) {
                        if let Some(slot) = self.parameters.iter_mut().find(|(n, _)| n == name) {
                            slot.1 = value.to_owned();
                        }
                    }
                }
                _ => {}
            }
        }
        if let Some(why) = failed {
            return Err(unreachable(format!("resetting the session: {why}")));
        }
        if buf.has_remaining() {
            return Err(unreachable("the upstream sent data nobody asked for"));
        }
        // An idle session holds no read buffer.
        self.inbuf = BytesMut::new();
        self.flow = Flow::default();
        self.creator = crate::creator::Creator::default();
        Ok(())
    }

    /// Ends the session: a Terminate, then the connection closes.
    pub async fn close(mut self: Box<Self>) {
        let mut out = BytesMut::new();
        frontend::terminate(&mut out);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
            let _ = self.stream.write_all(&out).await;
            let _ = self.stream.shutdown().await;
        })
        .await;
    }
}

/// Asks the upstream to cancel the session's running query (a new connection, as PostgreSQL
/// cancel requests are).
pub async fn cancel(host: &str, port: u16, process_id: i32, secret_key: i32) {
    let Ok(Ok(mut tcp)) = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        TcpStream::connect((host, port)),
    )
    .await
    else {
        return;
    };
    let mut buf = BytesMut::new();
    frontend::cancel_request(process_id, secret_key, &mut buf);
    let _ = tcp.write_all(&buf).await;
}
