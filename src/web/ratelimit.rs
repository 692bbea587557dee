//! Fixed-window rate limits per client address, for sign-in and for failed API
//! authentication. Kept in the process: each web process limits on its own,
//! which bounds guessing without a shared store.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct RateLimit {
    max: u32,
    window: Duration,
    hits: Mutex<HashMap<String, (Instant, u32)>>,
}

impl RateLimit {
    pub fn new(max: u32, window: Duration) -> Self {
        Self {
            max,
            window,
            hits: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one attempt by `key`; false once `max` attempts fell in the window.
    pub fn check(&self, key: &str) -> bool {
        self.record(key) <= self.max
    }

    /// Would one more attempt by `key` be allowed (without counting one)?
    pub fn allowed(&self, key: &str) -> bool {
        let Ok(hits) = self.hits.lock() else {
            return true;
        };
        match hits.get(key) {
            Some((start, n)) if start.elapsed() < self.window => *n < self.max,
            _ => true,
        }
    }

    /// Counts one attempt and returns the count in the current window.
    pub fn record(&self, key: &str) -> u32 {
        let Ok(mut hits) = self.hits.lock() else {
            return 0;
        };
        if hits.len() > 10_000 {
            let window = self.window;
            hits.retain(|_, (start, _)| start.elapsed() < window);
        }
        let entry = hits.entry(key.to_owned()).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= self.window {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
        entry.1
    }
}

/// The limits the web server applies.
pub struct Limits {
    /// Starting a sign-in, the callback, the development sign-in.
    pub sign_in: RateLimit,
    /// Requests with a wrong API token.
    pub api_auth_failures: RateLimit,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            sign_in: RateLimit::new(30, Duration::from_secs(60)),
            api_auth_failures: RateLimit::new(10, Duration::from_secs(60)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_max_per_window_per_key() {
        let limit = RateLimit::new(3, Duration::from_secs(60));
        assert!(limit.check("a") && limit.check("a") && limit.check("a"));
        assert!(!limit.check("a"));
        assert!(limit.check("b"), "other clients are not affected");
        assert!(!limit.allowed("a"));
    }

    #[test]
    fn a_new_window_starts_afresh() {
        let limit = RateLimit::new(1, Duration::from_millis(20));
        assert!(limit.check("a"));
        assert!(!limit.check("a"));
        std::thread::sleep(Duration::from_millis(30));
        assert!(limit.check("a"));
    }
}
