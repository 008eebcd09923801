//! Per-client token buckets for session creation.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

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

    /// Whether `client` has a token left, without taking it: `Ok` or the
    /// seconds until one is free.
    pub fn check(&self, client: IpAddr) -> Result<(), u64> {
        let now = Instant::now();
        let buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        match buckets.get(&client) {
            Some((tokens, at)) => {
                let tokens = (tokens
                    + now.duration_since(*at).as_secs_f64() * self.per_minute / 60.0)
                    .min(self.per_minute);
                if tokens >= 1.0 {
                    Ok(())
                } else {
                    Err(((1.0 - tokens) * 60.0 / self.per_minute).ceil() as u64)
                }
            }
            None => Ok(()),
        }
    }

    /// Takes a token for `client`: `Ok` or the seconds until one is free.
    pub fn take(&self, client: IpAddr) -> Result<(), u64> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > 10_000 {
            let full = self.per_minute;
            buckets.retain(|_, (t, at)| {
                *t + now.duration_since(*at).as_secs_f64() * full / 60.0 < full
            });
        }
        let (tokens, at) = buckets.entry(client).or_insert((self.per_minute, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.per_minute / 60.0)
            .min(self.per_minute);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) * 60.0 / self.per_minute).ceil() as u64)
        }
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
}
