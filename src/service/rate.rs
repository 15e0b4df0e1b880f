//! Per-tenant (optionally per-token) rate limiting: a token bucket for each, on the service's
//! clock, checked right after authentication.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};

use crate::auth::{Principal, Subject};
use crate::error::ScimError;
use crate::settings::RateLimit;
use crate::tenant::TenantId;

/// How many buckets a service keeps by default (one per tenant, or per token with
/// [`RateLimit::per_token`]).
pub(super) const DEFAULT_BUCKETS: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    tenant: TenantId,
    /// `Some` when the tenant limits each token on its own.
    subject: Option<Subject>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Requests that may start now (fractional while refilling).
    tokens: f64,
    /// When `tokens` was last brought up to date.
    at: DateTime<Utc>,
    /// The rate and size it was last checked with, to tell when it is full again.
    rate: f64,
    burst: f64,
}

impl Bucket {
    /// The tokens at `now`, refilled at `rate` since `at` and capped at `burst`. A clock that
    /// went backwards refills nothing.
    fn refilled(&self, now: DateTime<Utc>) -> f64 {
        let micros = (now - self.at)
            .num_microseconds()
            .unwrap_or(i64::MAX)
            .max(0);
        // Precision loss above 2^53 microseconds (285 years) does not matter here.
        let seconds = micros as f64 / 1_000_000.0;
        (self.tokens + seconds * self.rate).min(self.burst)
    }

    /// A full bucket is the same as none: it can be forgotten.
    fn is_full(&self, now: DateTime<Utc>) -> bool {
        self.refilled(now) >= self.burst
    }
}

/// The buckets of one service: at most `capacity` of them.
pub(super) struct RateLimiter {
    buckets: Mutex<HashMap<Key, Bucket>>,
    capacity: usize,
}

impl RateLimiter {
    pub(super) fn new(capacity: usize) -> Self {
        RateLimiter {
            buckets: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// Takes one request from the bucket of `principal` under `limit` at `now`, or answers
    /// 429 with the whole seconds to wait (at least 1).
    pub(super) fn check(
        &self,
        limit: &RateLimit,
        principal: &Principal,
        now: DateTime<Utc>,
    ) -> Result<(), ScimError> {
        let rate = f64::from(limit.requests_per_second.max(1));
        let burst = f64::from(limit.burst.max(1));
        let key = Key {
            tenant: principal.tenant().clone(),
            subject: limit.per_token.then(|| principal.subject().clone()),
        };
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if !buckets.contains_key(&key) && buckets.len() >= self.capacity {
            evict(&mut buckets, now);
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: burst,
            at: now,
            rate,
            burst,
        });
        bucket.rate = rate;
        bucket.burst = burst;
        bucket.tokens = bucket.refilled(now);
        bucket.at = bucket.at.max(now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = ((1.0 - bucket.tokens) / rate).ceil().max(1.0);
        // `wait` is at most 1 s here (one token at no less than 1 per second).
        let retry_after = wait as u64;
        let who = if limit.per_token {
            "this client's token"
        } else {
            "this tenant"
        };
        Err(ScimError::TooManyRequests {
            detail: format!(
                "{who} is over its rate limit of {} requests per second (bursts of {}); \
                 retry after {retry_after} s",
                limit.requests_per_second.max(1),
                limit.burst.max(1)
            ),
            retry_after,
        })
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// Makes room for one bucket: forgets every full one (they would start full anyway), and if
/// none is, the one unused the longest (its tenant or token starts again with a full burst:
/// lenient, never wrongly refusing).
fn evict(buckets: &mut HashMap<Key, Bucket>, now: DateTime<Utc>) {
    buckets.retain(|_, b| !b.is_full(now));
    let before = buckets.len();
    if before == 0 {
        return;
    }
    let oldest = buckets
        .iter()
        .min_by_key(|(_, b)| b.at)
        .map(|(k, _)| k.clone());
    if let Some(k) = oldest {
        // Only when nothing was full; `retain` above usually frees many at once.
        buckets.remove(&k);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn at(seconds: i64, millis: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
            + chrono::Duration::milliseconds(millis)
    }

    fn principal(tenant: &str) -> Principal {
        Principal::host(TenantId::new(tenant).unwrap(), "idp")
    }

    const LIMIT: RateLimit = RateLimit {
        requests_per_second: 2,
        burst: 3,
        per_token: false,
    };

    #[test]
    fn a_bucket_admits_its_burst_then_refills_at_its_rate() {
        let limiter = RateLimiter::new(10);
        let p = principal("acme");
        for _ in 0..3 {
            assert!(limiter.check(&LIMIT, &p, at(0, 0)).is_ok());
        }
        let refused = limiter.check(&LIMIT, &p, at(0, 0)).unwrap_err();
        assert_eq!(refused.status(), 429);
        assert!(matches!(
            refused,
            ScimError::TooManyRequests { retry_after: 1, .. }
        ));
        // Half a second at 2/s is one request; not two.
        assert!(limiter.check(&LIMIT, &p, at(0, 500)).is_ok());
        assert!(limiter.check(&LIMIT, &p, at(0, 500)).is_err());
        // A clock going backwards gives nothing back.
        assert!(limiter.check(&LIMIT, &p, at(-5, 0)).is_err());
        // A long pause refills up to the burst, no further.
        for _ in 0..3 {
            assert!(limiter.check(&LIMIT, &p, at(60, 0)).is_ok());
        }
        assert!(limiter.check(&LIMIT, &p, at(60, 0)).is_err());
    }

    #[test]
    fn the_map_stays_within_its_capacity() {
        let limiter = RateLimiter::new(3);
        // Busy tenants (empty buckets) at the same instant: the oldest is forgotten.
        for i in 0..10 {
            let p = principal(&format!("t{i}"));
            for _ in 0..3 {
                limiter.check(&LIMIT, &p, at(0, i)).unwrap();
            }
            assert!(limiter.len() <= 3);
        }
        // Later, every bucket is full again: all are forgotten for the newcomer.
        limiter
            .check(&LIMIT, &principal("late"), at(100, 0))
            .unwrap();
        assert_eq!(limiter.len(), 1);
    }
}
