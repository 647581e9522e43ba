//! The HTTP listener's accept loop, plain or TLS (`http_tls`): at most `max_connections`
//! connections at once (beyond that a new connection is closed at once), a TLS handshake
//! bounded in time, and one hyper HTTP/1.1 connection per client whose request headers must
//! arrive within [`HEADER_TIMEOUT`] — which also ends a kept-alive connection idle that long
//! (hyper starts that timer whenever it waits for the next request's head), so a slowloris
//! client cannot hold a slot. A connection not inside a request (its head not complete yet,
//! or kept alive idle) waits on its client: among too many such, the one waiting longest is
//! shut down (see crate::waiting), so a slowloris cannot crowd out a client that sends its
//! request at once. The peer address reaches handlers as axum's `ConnectInfo`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request's headers, or stay idle between requests.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    max_connections: usize,
    stopping: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(max_connections));
    // Connections that found every slot taken may wait a moment for one (the connections just
    // cut for keeping the server waiting are closing): at most this many at once.
    let over = Arc::new(Semaphore::new(max_connections.div_ceil(8).max(8)));
    let slow_clients = crate::waiting::Waiting::new(max_connections / 2, "http");
    let tasks = tokio_util::task::TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            _ = stopping.cancelled() => {
                // Stopped accepting: requests in flight are answered (for at most
                // SHUTDOWN_GRACE), idle connections closed.
                drop(listener);
                tasks.close();
                if tokio::time::timeout(SHUTDOWN_GRACE, tasks.wait()).await.is_err() {
                    tracing::warn!(open = tasks.len(), "HTTP requests still running after the shutdown grace");
                }
                return Ok(());
            }
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "HTTP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let admission = match slots.clone().try_acquire_owned() {
            Ok(permit) => Admission::Now(permit),
            Err(_) => match over.clone().try_acquire_owned() {
                Ok(waiting) => Admission::Soon(waiting),
                Err(_) => {
                    tracing::warn!(%peer, max_connections, "HTTP connection refused: too many connections");
                    drop(stream);
                    continue;
                }
            },
        };
        let slots = slots.clone();
        let _ = stream.set_nodelay(true);
        let tls = tls.clone();
        let stops = stopping.clone();
        let cut = tokio_util::sync::CancellationToken::new();
        let waiting = Arc::new(ConnectionWait {
            guard: parking_lot::Mutex::new(Some(slow_clients.enter(peer.ip(), &cut))),
            address: peer.ip(),
            cut: cut.clone(),
            slow_clients: slow_clients.clone(),
        });
        let app = router
            .clone()
            .layer(axum::middleware::from_fn_with_state(waiting, in_request))
            .layer(axum::Extension(ConnectInfo::<SocketAddr>(peer)));
        tasks.spawn(async move {
            let permit = match admission {
                Admission::Now(permit) => permit,
                Admission::Soon(_waiting) => {
                    tokio::select! {
                        p = tokio::time::timeout(SLOT_WAIT, slots.acquire_owned()) => match p {
                            Ok(Ok(permit)) => permit,
                            _ => {
                                tracing::warn!(%peer, "HTTP connection refused: too many connections");
                                return;
                            }
                        },
                        _ = cut.cancelled() => return,
                    }
                }
            };
            let service = TowerToHyperService::new(app);
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(64 * 1024);
            let served = match tls {
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => serve_until_cut(&http, tls, service, &cut, &stops).await,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "HTTPS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    }
                }
                None => serve_until_cut(&http, stream, service, &cut, &stops).await,
            };
            if let Err(e) = served {
                tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
            }
            drop(permit);
        });
    }
}

/// How a connection got its slot.
enum Admission {
    Now(tokio::sync::OwnedSemaphorePermit),
    /// Every slot was taken: it waits up to [`SLOT_WAIT`], holding a place among the few that
    /// may.
    Soon(tokio::sync::OwnedSemaphorePermit),
}

/// How long a connection may wait for a slot when all are taken.
const SLOT_WAIT: Duration = Duration::from_secs(1);

/// How long a shutdown lets HTTP requests in flight finish (as for SQL statements).
const SHUTDOWN_GRACE: Duration = crate::pg::SHUTDOWN_GRACE;

/// How long a connection cut while waiting on its client may take to finish writing a response.
const CUT_GRACE: Duration = Duration::from_millis(500);

/// Serves one connection until its client is done, or until it is cut while waiting on its
/// client (no request is in progress then; a response being written is finished first).
async fn serve_until_cut<I, S>(
    http: &hyper::server::conn::http1::Builder,
    io: I,
    service: S,
    cut: &tokio_util::sync::CancellationToken,
    stopping: &tokio_util::sync::CancellationToken,
) -> hyper::Result<()>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::HttpService<hyper::body::Incoming>,
    S::ResBody: 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let conn = http.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        served = conn.as_mut() => served,
        () = cut.cancelled() => {
            // A response being written is finished; a request head half sent is not waited
            // for (hyper would wait for it): the connection is closed a moment later.
            conn.as_mut().graceful_shutdown();
            tokio::time::timeout(CUT_GRACE, conn).await.unwrap_or(Ok(()))
        }
        () = stopping.cancelled() => {
            // The server stops: the request in flight is answered, then the connection closes.
            conn.as_mut().graceful_shutdown();
            tokio::time::timeout(SHUTDOWN_GRACE, conn).await.unwrap_or(Ok(()))
        }
    }
}

/// A connection's place among those waiting on their clients: held while it is not inside a
/// request.
struct ConnectionWait {
    guard: parking_lot::Mutex<Option<crate::waiting::WaitGuard>>,
    cut: tokio_util::sync::CancellationToken,
    slow_clients: Arc<crate::waiting::Waiting>,
    address: std::net::IpAddr,
}

/// A request arrived whole: the connection stops waiting on its client until the answer is
/// made, then waits again (for the next request on a kept-alive connection).
async fn in_request(
    axum::extract::State(wait): axum::extract::State<Arc<ConnectionWait>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    wait.guard.lock().take();
    let response = next.run(request).await;
    *wait.guard.lock() = Some(wait.slow_clients.enter(wait.address, &wait.cut));
    response
}
