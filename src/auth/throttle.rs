//! Guessing is slowed two ways. Password logins are limited per username (a few a minute,
//! then `429`), which stops hammering one account. Failed credentials of any kind (API keys,
//! session tokens, passwords) are limited per client address, which stops spraying across
//! usernames and key guessing. Only failures are counted per address: valid traffic never
//! spends that budget, and an address that has not failed pays one map lookup.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Keys remembered before idle ones are dropped (guessing random names must not grow memory).
const MAX_TRACKED: usize = 100_000;

pub struct LoginThrottle {
    limiter: DefaultKeyedRateLimiter<String>,
}

impl LoginThrottle {
    /// `per_minute` attempts per username, all of which may come at once.
    pub fn new(per_minute: u32) -> Self {
        LoginThrottle {
            limiter: RateLimiter::keyed(per_minute_quota(per_minute)),
        }
    }

    /// Takes one attempt for `username`, or says how long until the next is allowed.
    pub fn attempt(&self, username: &str) -> Result<(), Duration> {
        if self.limiter.len() > MAX_TRACKED {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(&username.trim().to_lowercase())
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

fn per_minute_quota(per_minute: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(per_minute.max(1)).expect("at least one"))
}

/// Failed authentication attempts per client address (governor, keyed by address).
///
/// An address may fail `per_minute` times at once, then one more time per `60 / per_minute`
/// seconds. While it is over budget every credential it presents, right or wrong, gets `429`
/// before being checked: otherwise a guesser would simply learn which guess was right.
/// A client retrying with a logged-out or expired token spends the budget too (it cannot be
/// told from a guess), so clients should log in again on the first 401.
pub struct GuessThrottle {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    /// Addresses over budget and when they may try again. Usually empty.
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    /// Reverse proxies whose `X-Forwarded-For` names the real client.
    trusted_proxies: Vec<IpAddr>,
}

impl GuessThrottle {
    pub fn new(per_minute: u32, trusted_proxies: Vec<IpAddr>) -> Self {
        GuessThrottle {
            limiter: RateLimiter::keyed(per_minute_quota(per_minute)),
            blocked: Mutex::new(HashMap::new()),
            trusted_proxies,
        }
    }

    /// `Err(wait)` while `addr` is over its failure budget.
    pub fn check(&self, addr: IpAddr) -> Result<(), Duration> {
        let blocked = self.blocked.lock().expect("throttle lock");
        match blocked.get(&bucket(addr)) {
            Some(until) => match until.checked_duration_since(Instant::now()) {
                Some(wait) if !wait.is_zero() => Err(wait),
                _ => Ok(()),
            },
            None => Ok(()),
        }
    }

    /// Counts one failed attempt; `Err(wait)` when it went over the budget.
    pub fn failed(&self, addr: IpAddr) -> Result<(), Duration> {
        let key = bucket(addr);
        if self.limiter.len() > MAX_TRACKED {
            self.limiter.retain_recent();
        }
        let wait = match self.limiter.check_key(&key) {
            Ok(()) => return Ok(()),
            Err(not_until) => not_until.wait_time_from(DefaultClock::default().now()),
        };
        let now = Instant::now();
        let mut blocked = self.blocked.lock().expect("throttle lock");
        if blocked.len() > MAX_TRACKED {
            blocked.retain(|_, until| *until > now);
        }
        blocked.insert(key, now + wait);
        Err(wait)
    }

    /// The client's address: the peer, or the last hop a trusted proxy forwarded for.
    pub fn client(&self, parts: &Parts) -> IpAddr {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            // Served without connection info (a router driven in-process): one shared bucket.
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        if !self.trusted_proxies.contains(&peer) {
            return peer;
        }
        // The right-most entry not added by one of our proxies is the one a client cannot forge.
        parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse::<IpAddr>().ok())
            .rev()
            .find(|ip| !self.trusted_proxies.contains(ip))
            .unwrap_or(peer)
    }
}

/// IPv6 clients get a whole /64 each, so one address counts for its network: otherwise a
/// single host could rotate through 2^64 addresses.
fn bucket(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_name_has_its_own_quota() {
        let t = LoginThrottle::new(3);
        for _ in 0..3 {
            assert!(t.attempt("amy").is_ok());
        }
        let wait = t.attempt("Amy ").unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert!(t.attempt("bob").is_ok());
    }

    #[test]
    fn an_address_over_its_failure_budget_is_blocked_others_are_not() {
        let t = GuessThrottle::new(3, vec![]);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        for _ in 0..3 {
            assert!(t.failed(a).is_ok());
            assert!(t.check(a).is_ok());
        }
        let wait = t.failed(a).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert!(t.check(a).is_err());
        assert!(t.check(b).is_ok());
        assert!(t.failed(b).is_ok());
    }

    #[test]
    fn ipv6_addresses_share_their_slash_64() {
        let t = GuessThrottle::new(1, vec![]);
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(t.failed(a).is_ok());
        assert!(t.failed(b).is_err());
        assert!(t.check(a).is_err());
        assert!(t.check(other).is_ok());
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.9".parse().unwrap();
        let t = GuessThrottle::new(1, vec![proxy]);
        let parts = |peer: &str, xff: &str| {
            let mut req = axum::http::Request::builder()
                .header("x-forwarded-for", xff)
                .body(())
                .unwrap();
            let addr: SocketAddr = format!("{peer}:5000").parse().unwrap();
            req.extensions_mut().insert(ConnectInfo(addr));
            req.into_parts().0
        };
        // Through our proxy: the client it saw, not what the client claimed before it.
        let via = parts("10.0.0.9", "1.2.3.4, 203.0.113.7");
        assert_eq!(t.client(&via), "203.0.113.7".parse::<IpAddr>().unwrap());
        // Straight from a client: the header is the client's own claim and is ignored.
        let direct = parts("198.51.100.1", "203.0.113.7");
        assert_eq!(t.client(&direct), "198.51.100.1".parse::<IpAddr>().unwrap());
    }
}
