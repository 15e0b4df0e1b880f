//! A short-lived, bounded cache of what authenticating a request reads from a database: token
//! records by hash and tenant records by id.
//!
//! The SQL stores keep one per store handle (shared by its clones), so that an authenticated
//! request costs no query while the entries are fresh. Every write through the handle forgets
//! what it changes before it returns, so revocation, expiry changes and "SCIM off" take effect
//! at once in the process that made them; other processes sharing the database see them when
//! their entry expires ([`TENANT_CACHE_TTL`]), or at once on PostgreSQL when they listen for the
//! store's notifications.
//!
//! Only records that exist are cached: an unknown token is looked up every time.
#![cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::{TokenId, TokenRecord};
use crate::tenant::{Tenant, TenantId};

/// How long a cached record is used before it is read again: the longest another process's
/// revocation can go unnoticed where no notification reaches this one.
pub const TENANT_CACHE_TTL: Duration = Duration::from_secs(2);

/// The most records of each kind (tokens, tenants) a cache holds.
pub const TENANT_CACHE_CAPACITY: usize = 10_000;

/// The cache (see the module docs).
#[derive(Debug)]
pub(crate) struct TenantCache {
    ttl: Duration,
    capacity: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    tokens: HashMap<[u8; 32], (TokenRecord, Instant)>,
    tenants: HashMap<TenantId, (Tenant, Instant)>,
    /// Bumped by every forget: a record read from the database before a forget must not be
    /// cached after it (it may be the state the forget was about).
    generation: u64,
}

/// The cache's state when a database read began (see [`TenantCache::begin`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Generation(u64);

impl TenantCache {
    /// A cache keeping records for `ttl`, at most `capacity` of each kind. A zero `ttl` or
    /// `capacity` caches nothing.
    pub(crate) fn new(ttl: Duration, capacity: usize) -> Self {
        TenantCache {
            ttl,
            capacity,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn fresh(&self, at: Instant) -> bool {
        at.elapsed() < self.ttl
    }

    /// To call before reading a record from the database that is to be cached.
    pub(crate) fn begin(&self) -> Generation {
        Generation(self.lock().generation)
    }

    /// The fresh cached token record with this hash.
    pub(crate) fn token(&self, hash: &[u8; 32]) -> Option<TokenRecord> {
        let state = self.lock();
        let (rec, at) = state.tokens.get(hash)?;
        self.fresh(*at).then(|| rec.clone())
    }

    /// Caches a token record read since `read`, unless something was forgotten meanwhile.
    pub(crate) fn put_token(&self, read: Generation, rec: &TokenRecord) {
        self.put(read, |s| &mut s.tokens, rec.hash, rec);
    }

    /// Caches `value` under `key` in the map `pick` chooses, unless something was forgotten
    /// since `read`.
    fn put<K: Clone + Eq + std::hash::Hash, V: Clone>(
        &self,
        read: Generation,
        pick: impl FnOnce(&mut State) -> &mut HashMap<K, (V, Instant)>,
        key: K,
        value: &V,
    ) {
        if self.ttl.is_zero() || self.capacity == 0 {
            return;
        }
        let mut state = self.lock();
        if state.generation != read.0 {
            return;
        }
        let map = pick(&mut state);
        make_room(map, self.capacity, self.ttl);
        map.insert(key, (value.clone(), Instant::now()));
    }

    /// The fresh cached record of tenant `id`.
    pub(crate) fn tenant(&self, id: &TenantId) -> Option<Tenant> {
        let state = self.lock();
        let (t, at) = state.tenants.get(id)?;
        self.fresh(*at).then(|| t.clone())
    }

    /// Caches a tenant record read since `read`, unless something was forgotten meanwhile.
    pub(crate) fn put_tenant(&self, read: Generation, tenant: &Tenant) {
        self.put(read, |s| &mut s.tenants, tenant.id.clone(), tenant);
    }

    /// Forgets tenant `id` and every token of it.
    pub(crate) fn forget_tenant(&self, id: &TenantId) {
        let mut state = self.lock();
        state.generation = state.generation.wrapping_add(1);
        state.tenants.remove(id);
        state.tokens.retain(|_, (rec, _)| rec.tenant != *id);
    }

    /// Forgets everything (after notifications may have been missed; PostgreSQL's listener).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn clear(&self) {
        let mut state = self.lock();
        state.generation = state.generation.wrapping_add(1);
        state.tokens.clear();
        state.tenants.clear();
    }

    /// Records a use of token `id` at `at` in its cached record, as the store just did, so
    /// that the verifier does not write it again on every request.
    pub(crate) fn touch_token(&self, id: &TokenId, at: DateTime<Utc>) {
        let mut state = self.lock();
        for (rec, _) in state.tokens.values_mut() {
            if rec.id == *id {
                rec.last_used = Some(at);
            }
        }
    }
}

/// Makes room for one more entry: drops the expired ones when full, then, if still full, the
/// oldest.
fn make_room<K: Clone + Eq + std::hash::Hash, V>(
    map: &mut HashMap<K, (V, Instant)>,
    capacity: usize,
    ttl: Duration,
) {
    if map.len() < capacity {
        return;
    }
    map.retain(|_, (_, at)| at.elapsed() < ttl);
    while map.len() >= capacity {
        let Some(oldest) = map
            .iter()
            .min_by_key(|(_, (_, at))| *at)
            .map(|(k, _)| k.clone())
        else {
            return;
        };
        map.remove(&oldest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;

    fn token(tenant: &str, byte: u8) -> TokenRecord {
        TokenRecord {
            id: TokenId::from_uuid(uuid::Uuid::from_bytes([byte; 16])),
            tenant: TenantId::new(tenant).unwrap(),
            label: String::new(),
            hash: [byte; 32],
            created: Utc::now(),
            expires: None,
            revoked: false,
            last_used: None,
        }
    }

    fn tenant(id: &str) -> Tenant {
        Tenant {
            id: TenantId::new(id).unwrap(),
            display_name: id.to_owned(),
            scim_enabled: true,
            settings: Settings::default(),
            created: Utc::now(),
        }
    }

    #[test]
    fn forgets_what_writes_change_and_refuses_stale_reads() {
        let c = TenantCache::new(Duration::from_secs(60), 10);
        let g = c.begin();
        c.put_token(g, &token("acme", 1));
        c.put_token(g, &token("other", 2));
        c.put_tenant(g, &tenant("acme"));
        assert!(c.token(&[1; 32]).is_some());
        assert!(c.tenant(&TenantId::new("acme").unwrap()).is_some());

        c.forget_tenant(&TenantId::new("acme").unwrap());
        assert!(c.token(&[1; 32]).is_none());
        assert!(c.tenant(&TenantId::new("acme").unwrap()).is_none());
        assert!(c.token(&[2; 32]).is_some(), "other tenants stay");

        // A read that began before a forget is not cached after it.
        let before = c.begin();
        c.forget_tenant(&TenantId::new("other").unwrap());
        c.put_token(before, &token("other", 2));
        assert!(c.token(&[2; 32]).is_none());
        let after = c.begin();
        c.put_token(after, &token("other", 2));
        assert!(c.token(&[2; 32]).is_some());

        let at = Utc::now();
        c.touch_token(&token("other", 2).id, at);
        assert_eq!(c.token(&[2; 32]).unwrap().last_used, Some(at));
        c.clear();
        assert!(c.token(&[2; 32]).is_none());
    }

    #[test]
    fn is_bounded_and_expires() {
        let c = TenantCache::new(Duration::from_secs(60), 3);
        for b in 0..10u8 {
            c.put_token(c.begin(), &token("acme", b));
        }
        assert_eq!(c.lock().tokens.len(), 3);
        assert!(c.token(&[9; 32]).is_some(), "the newest stays");

        let none = TenantCache::new(Duration::ZERO, 3);
        none.put_token(none.begin(), &token("acme", 1));
        assert!(none.token(&[1; 32]).is_none());
    }
}
