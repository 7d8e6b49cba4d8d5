//! Password guessing is slowed per username: a few attempts a minute, then `429` until the
//! quota refills. Keyed by the name tried, not the client address (behind a proxy every
//! client has the same one).

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Names remembered before idle ones are dropped (guessing random names must not grow memory).
const MAX_TRACKED: usize = 100_000;

pub struct LoginThrottle {
    limiter: DefaultKeyedRateLimiter<String>,
}

impl LoginThrottle {
    /// `per_minute` attempts per username, all of which may come at once.
    pub fn new(per_minute: u32) -> Self {
        let n = NonZeroU32::new(per_minute.max(1)).expect("at least one");
        LoginThrottle {
            limiter: RateLimiter::keyed(Quota::per_minute(n)),
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
}
