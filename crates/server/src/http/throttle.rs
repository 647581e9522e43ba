//! A per-address limit on failed guesses (unknown device user codes): at most `limit` in a
//! window, then refusals until the window ends. Low-entropy codes stay unguessable online.

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
        match self.misses.lock().get(&ip) {
            Some((n, since)) => *n < self.limit || since.elapsed() >= self.window,
            None => true,
        }
    }

    /// Counts a failed guess of `ip`.
    pub fn miss(&self, ip: IpAddr) {
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
        std::thread::sleep(Duration::from_millis(50));
        assert!(t.allows(ip));
    }
}
