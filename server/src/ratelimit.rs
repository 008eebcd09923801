//! Per-client token buckets: session creation, and failed workshop joins and
//! instructor logins (guessing a join code or a password).
//!
//! Memory is bounded: IPv6 clients are keyed by their /64 (one host holds a
//! whole /64), and past [`MAX_CLIENTS`] the full buckets are forgotten and, if
//! that is not enough, all of them (a flood of addresses then costs the
//! throttle its memory, never the host).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// Clients remembered at most.
pub const MAX_CLIENTS: usize = 10_000;

/// `per_minute` requests per client, in bursts of up to `per_minute`.
#[derive(Debug)]
pub struct RateLimiter {
    per_minute: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute: per_minute.max(1) as f64,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `client`: `Ok` or the seconds until one is free.
    pub fn take(&self, client: IpAddr) -> Result<(), u64> {
        self.with_bucket(client, true)
    }

    /// Whether `client` has a token left, without taking it (failures take
    /// theirs afterwards with [`RateLimiter::take`]).
    pub fn check(&self, client: IpAddr) -> Result<(), u64> {
        self.with_bucket(client, false)
    }

    fn with_bucket(&self, client: IpAddr, take: bool) -> Result<(), u64> {
        let client = key(client);
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > MAX_CLIENTS {
            let full = self.per_minute;
            buckets.retain(|_, (t, at)| {
                *t + now.duration_since(*at).as_secs_f64() * full / 60.0 < full
            });
            if buckets.len() > MAX_CLIENTS {
                buckets.clear();
            }
        }
        let (tokens, at) = buckets.entry(client).or_insert((self.per_minute, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.per_minute / 60.0)
            .min(self.per_minute);
        *at = now;
        if *tokens >= 1.0 {
            if take {
                *tokens -= 1.0;
            }
            Ok(())
        } else {
            Err(((1.0 - *tokens) * 60.0 / self.per_minute).ceil().max(1.0) as u64)
        }
    }
}

/// The address a bucket belongs to: IPv4 as is, IPv6 by its /64.
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_refused_per_client() {
        let r = RateLimiter::new(3);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(r.take(a).is_ok() && r.take(a).is_ok() && r.take(a).is_ok());
        let wait = r.take(a).unwrap_err();
        assert!((1..=20).contains(&wait), "{wait}");
        assert!(r.take(b).is_ok(), "another client is not affected");
    }

    #[test]
    fn check_does_not_spend_and_v6_hosts_share_their_64() {
        let r = RateLimiter::new(2);
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let b: IpAddr = "2001:db8::2".parse().unwrap();
        for _ in 0..5 {
            assert!(r.check(a).is_ok());
        }
        assert!(r.take(a).is_ok() && r.take(b).is_ok());
        assert!(r.check(a).is_err(), "same /64, same bucket");
        assert!(r.check("2001:db8:0:1::1".parse().unwrap()).is_ok());
    }

    #[test]
    fn memory_stays_bounded_under_many_addresses() {
        let r = RateLimiter::new(1);
        for i in 0..(MAX_CLIENTS as u32 * 2) {
            let _ = r.take(IpAddr::V4(std::net::Ipv4Addr::from(i)));
        }
        assert!(r.buckets.lock().unwrap().len() <= MAX_CLIENTS + 1);
    }
}
