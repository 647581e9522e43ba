//! Unauthenticated floods: starting a sign-in costs the server a pending flow (or a request
//! state, or a device code at the provider) that waits for minutes, so each client address
//! (IPv6: each /64) may start only `sso_starts_per_second` of them per second, in bursts of five
//! times that (`governor`'s GCRA, keyed by address); beyond that, 429. The tables behind them
//! keep their own global capacities.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::{ApiError, HttpState};

/// The requests that start a sign-in.
fn starts_sign_in(method: &Method, path: &str) -> bool {
    matches!(
        (method.as_str(), path),
        ("POST", "/v1/sso_authentication")
            | ("POST", "/sso/v1/sdk/idp")
            | ("POST", "/v1/sso_device_grant")
            | ("GET", "/ui/signin")
    )
}

/// Sign-in starts per address.
pub struct SignInStarts {
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
}

impl SignInStarts {
    /// `per_second` 0 turns the limit off.
    pub fn new(per_second: u32) -> Self {
        let limiter = NonZeroU32::new(per_second).map(|rate| {
            let burst = NonZeroU32::new(per_second.saturating_mul(5)).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        Self { limiter }
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        self.limiter
            .as_ref()
            .is_none_or(|l| l.check_key(&portcullis_auth::address_key(ip)).is_ok())
    }

    /// Forgets addresses that are back to a full allowance (called periodically).
    pub fn sweep(&self) {
        if let Some(l) = &self.limiter {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

pub async fn guard(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    if starts_sign_in(request.method(), request.uri().path())
        && !state.sign_in_starts.allows(peer.ip())
    {
        tracing::info!(target: "portcullis::audit", %peer, path = %request.uri().path(), "sign-in start refused: too many from this address");
        super::metrics::refused("sign_in_flood");
        return ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "53400",
            "too many sign-ins started from this address; wait a moment",
        )
        .into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_gets_its_own_burst_then_429() {
        let starts = SignInStarts::new(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let allowed = (0..30).filter(|_| starts.allows(a)).count();
        assert!((10..=12).contains(&allowed), "{allowed}");
        assert!(
            starts.allows("192.0.2.2".parse().unwrap()),
            "another address"
        );
        // one /64 is one address
        let v6a: IpAddr = "2001:db8::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8::2".parse().unwrap();
        (0..10).for_each(|_| {
            starts.allows(v6a);
        });
        assert!(!starts.allows(v6b));
        assert!((0..100).all(|_| SignInStarts::new(0).allows(a)), "0 is off");
    }
}
