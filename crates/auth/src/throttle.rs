//! A per-address limit on failed guesses (wrong passwords, unknown device user codes): at most
//! `limit` in a window, then refusals until the window ends. Passwords and low-entropy codes
//! stay unguessable online, and guessing from one address cannot lock an account out. IPv6
//! addresses count per /64 (one host usually holds a whole /64).
//!
//! Hand-written rather than `governor`: what is limited here is failures, looked at before an
//! attempt and counted after it, while governor's cells are spent by every attempt.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

pub struct Throttle {
    misses: Mutex<HashMap<IpAddr, (u32, Instant)>>,
    limit: u32,
    window: Duration,
}

impl Throttle {
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            misses: Mutex::new(HashMap::new()),
            limit,
            window,
        }
    }

    /// Whether `ip` may try again.
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.allows_at(ip, Instant::now())
    }

    /// Counts a failed guess of `ip`.
    pub fn miss(&self, ip: IpAddr) {
        self.miss_at(ip, Instant::now());
    }

    /// Takes back one counted guess of `ip` (an attempt counted before it was checked, which
    /// turned out right).
    pub fn refund(&self, ip: IpAddr) {
        let ip = address_key(ip);
        if let Some(entry) = self.misses.lock().get_mut(&ip) {
            entry.0 = entry.0.saturating_sub(1);
        }
    }

    /// [`Self::allows`] at the moment `now` (tests step a clock instead of sleeping).
    pub fn allows_at(&self, ip: IpAddr, now: Instant) -> bool {
        let ip = address_key(ip);
        match self.misses.lock().get(&ip) {
            Some((n, since)) => *n < self.limit || now.duration_since(*since) >= self.window,
            None => true,
        }
    }

    /// [`Self::miss`] at the moment `now`.
    pub fn miss_at(&self, ip: IpAddr, now: Instant) {
        let ip = address_key(ip);
        let window = self.window;
        let mut misses = self.misses.lock();
        if misses.len() > 100_000 {
            misses.retain(|_, (_, since)| now.duration_since(*since) < window);
        }
        let entry = misses.entry(ip).or_insert((0, now));
        if now.duration_since(entry.1) >= window {
            *entry = (0, now);
        }
        entry.0 += 1;
    }
}

/// The key an address is counted under: itself (IPv4) or its /64 (IPv6).
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The clock is stepped, not slept on.
    #[test]
    fn refuses_after_the_limit_until_the_window_ends() {
        let window = Duration::from_secs(60);
        let t = Throttle::new(2, window);
        let t0 = Instant::now();
        let ip: IpAddr = [127, 0, 0, 1].into();
        assert!(t.allows_at(ip, t0));
        t.miss_at(ip, t0);
        t.miss_at(ip, t0 + Duration::from_secs(10));
        assert!(!t.allows_at(ip, t0 + Duration::from_secs(10)));
        assert!(t.allows_at([127, 0, 0, 2].into(), t0), "per address");
        let a: IpAddr = "2001:db8:1:2::5".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        t.miss_at(a, t0);
        t.miss_at(a, t0);
        assert!(!t.allows_at(b, t0), "per /64");
        assert!(t.allows_at("2001:db8:1:3::5".parse().unwrap(), t0));
        // The window counts from the first miss: still refused just before it ends, not after.
        assert!(!t.allows_at(ip, t0 + window - Duration::from_millis(1)));
        assert!(t.allows_at(ip, t0 + window));
        // A miss after the window starts a new count.
        t.miss_at(ip, t0 + window);
        assert!(t.allows_at(ip, t0 + window));
    }
}
