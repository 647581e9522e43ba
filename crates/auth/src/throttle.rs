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
        let ip = address_key(ip);
        match self.misses.lock().get(&ip) {
            Some((n, since)) => *n < self.limit || since.elapsed() >= self.window,
            None => true,
        }
    }

    /// Counts a failed guess of `ip`.
    pub fn miss(&self, ip: IpAddr) {
        let ip = address_key(ip);
        let mut misses = self.misses.lock();
        if misses.len() > 100_000 {
            let window = self.window;
            misses.retain(|_, (_, since)| since.elapsed() < window);
        }
        let entry = misses.entry(ip).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= self.window {
            *entry = (0, Instant::now());
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

    #[test]
    fn refuses_after_the_limit_until_the_window_ends() {
        let t = Throttle::new(2, Duration::from_millis(40));
        let ip: IpAddr = [127, 0, 0, 1].into();
        assert!(t.allows(ip));
        t.miss(ip);
        t.miss(ip);
        assert!(!t.allows(ip));
        assert!(t.allows([127, 0, 0, 2].into()), "per address");
        let a: IpAddr = "2001:db8:1:2::5".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        t.miss(a);
        t.miss(a);
        assert!(!t.allows(b), "per /64");
        assert!(t.allows("2001:db8:1:3::5".parse().unwrap()));
        std::thread::sleep(Duration::from_millis(50));
        assert!(t.allows(ip));
    }
}
