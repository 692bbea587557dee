//! Rate limits for what anyone may try without being known: starting a sign-in,
//! the callback, the development sign-in, and presenting an API token that turns
//! out to be wrong. Each is keyed by the client's address (see `client_address`);
//! a caller who is known (a valid token, a signed-in session) is never refused
//! for what others, or the same address, did wrong. Kept in the process (each web
//! process limits on its own), which bounds guessing without a shared store.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use actix_web::HttpRequest;
use governor::clock::DefaultClock;
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};
use ipnet::IpNet;

/// At most `max` attempts per `per` for each key, refilled evenly.
pub struct RateLimit {
    limiter: RateLimiter<IpAddr, HashMapStateStore<IpAddr>, DefaultClock>,
}

impl RateLimit {
    pub fn new(max: u32, per: Duration) -> Self {
        let max = NonZeroU32::new(max.max(1)).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(per / max.get())
            .unwrap_or_else(|| Quota::per_second(max))
            .allow_burst(max);
        Self {
            limiter: RateLimiter::hashmap(quota),
        }
    }

    /// Counts one attempt by `key`: false once it is over its budget.
    pub fn check(&self, key: IpAddr) -> bool {
        // Forget clients that have been quiet, so memory stays bounded.
        if self.limiter.len() > 10_000 {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(&key).is_ok()
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

/// Whose request this is. The TCP peer, unless the peer is one of the trusted
/// proxies: then what the proxy says, `Fly-Client-IP`, else the right-most
/// address of `X-Forwarded-For` that is not itself a trusted proxy (anything to
/// its left was written by the client and proves nothing).
pub fn client_address(req: &HttpRequest, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    if let Some(ip) = header("fly-client-ip").and_then(|v| v.trim().parse().ok()) {
        return Some(ip);
    }
    let forwarded = header("x-forwarded-for").unwrap_or_default();
    let from_proxy = forwarded
        .rsplit(',')
        .map(|hop| hop.trim().parse::<IpAddr>())
        .take_while(Result::is_ok)
        .flatten()
        .find(|ip| !is_trusted(ip));
    Some(from_proxy.unwrap_or(peer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn allows_max_per_window_per_key() {
        let limit = RateLimit::new(3, Duration::from_secs(60));
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        assert!(limit.check(a) && limit.check(a) && limit.check(a));
        assert!(!limit.check(a));
        assert!(limit.check(b), "other clients are not affected");
    }

    #[test]
    fn the_budget_refills_with_time() {
        let limit = RateLimit::new(1, Duration::from_millis(20));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(limit.check(a));
        assert!(!limit.check(a));
        std::thread::sleep(Duration::from_millis(30));
        assert!(limit.check(a));
    }

    fn request(peer: &str, headers: &[(&str, &str)]) -> HttpRequest {
        let mut req = TestRequest::default().peer_addr(format!("{peer}:40000").parse().unwrap());
        for (name, value) in headers {
            req = req.insert_header((*name, *value));
        }
        req.to_http_request()
    }

    #[test]
    fn only_a_trusted_proxy_may_say_whose_request_it_is() {
        let trusted: Vec<IpNet> = vec!["172.16.0.0/12".parse().unwrap()];
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        // A client talking to us directly cannot pretend to be someone else.
        let direct = request(
            "198.51.100.7",
            &[
                ("x-forwarded-for", "203.0.113.9"),
                ("fly-client-ip", "203.0.113.9"),
            ],
        );
        assert_eq!(client_address(&direct, &trusted), Some(ip("198.51.100.7")));
        // Behind the proxy: what it says.
        let fly = request("172.16.0.2", &[("fly-client-ip", "203.0.113.9")]);
        assert_eq!(client_address(&fly, &trusted), Some(ip("203.0.113.9")));
        // X-Forwarded-For: the right-most hop that is not a proxy of ours; what
        // the client wrote to its left is ignored.
        let chain = request(
            "172.16.0.2",
            &[("x-forwarded-for", "10.9.9.9, 203.0.113.9, 172.16.0.5")],
        );
        assert_eq!(client_address(&chain, &trusted), Some(ip("203.0.113.9")));
        let bare = request("172.16.0.2", &[]);
        assert_eq!(client_address(&bare, &trusted), Some(ip("172.16.0.2")));
        assert_eq!(
            client_address(&fly, &[]),
            Some(ip("172.16.0.2")),
            "no proxy trusted: the peer"
        );
    }
}
