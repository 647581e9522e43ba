//! Secrets cross the network only over TLS: on a plain-http listener, a client that is not on
//! a loopback address is refused everywhere a credential could travel — passwords
//! (`/v1/login`, Basic), our access tokens, provider tokens (`/v1/sso_token`, Bearer JWTs,
//! seed 004's `id_token`), sign-in pages and flows. The same rule as the PostgreSQL listener's
//! for tokens. Liveness and the API description stay readable.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, HttpState};

/// Paths that carry no credential and may be read over plain http from anywhere.
const OPEN_PATHS: &[&str] = &["/healthz", "/openapi.json", "/openapi.yaml"];

/// Whether a request on this listener may go on.
pub fn allowed(https: bool, peer: &SocketAddr, path: &str) -> bool {
    https || peer.ip().is_loopback() || OPEN_PATHS.contains(&path)
}

pub async fn guard(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    if allowed(state.https, &peer, request.uri().path()) {
        return next.run(request).await;
    }
    super::metrics::refused("plain_http");
    ApiError::new(
        StatusCode::FORBIDDEN,
        "28000",
        "this HTTP listener is plain http: passwords and tokens are accepted only over HTTPS \
         (set http_tls = true) or from a loopback address",
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_plain_http_carries_no_credential() {
        let remote: SocketAddr = "192.0.2.7:5000".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let local6: SocketAddr = "[::1]:5000".parse().unwrap();
        for path in [
            "/v1/login",
            "/v1/sso_token",
            "/v1/execute/system",
            "/ui/signin",
        ] {
            assert!(!allowed(false, &remote, path), "{path}");
            assert!(allowed(true, &remote, path), "{path} over https");
            assert!(allowed(false, &local, path) && allowed(false, &local6, path));
        }
        assert!(allowed(false, &remote, "/healthz"));
    }
}
