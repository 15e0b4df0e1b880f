//! Persistence of tenants and token records.

use std::collections::{BTreeMap, HashMap};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::token::{TokenId, TokenRecord};
use crate::error::{ScimError, ScimResult};
use crate::settings::Settings;
use crate::tenant::{Tenant, TenantId};

/// Where tenants and their token records live.
///
/// Every backend (memory, SQLite, PostgreSQL, a host's own) implements this trait; the
/// contract below is what [`super::Tenants`] and [`super::BearerTokenVerifier`] rely on.
///
/// - Tenant ids are unique; token ids are unique; token hashes are unique.
/// - Token operations that name a tenant only ever touch that tenant's tokens: revoking
///   tenant A's token id through tenant B does nothing.
/// - Deleting a tenant deletes its token records (its SCIM resources belong to the resource
///   store and are the host's to delete).
/// - A missing tenant in an update is [`ScimError::NotFound`]; a duplicate tenant, token id
///   or token hash is [`ScimError::Conflict`]; backend failures are [`ScimError::Internal`].
/// - Records come back exactly as stored: a backend must not alter `hash`.
#[async_trait]
pub trait TenantStore: Send + Sync {
    /// Stores a new tenant. [`ScimError::Conflict`] if the id is taken.
    async fn create_tenant(&self, tenant: Tenant) -> ScimResult<()>;

    /// The tenant with this id, if any.
    async fn get_tenant(&self, id: &TenantId) -> ScimResult<Option<Tenant>>;

    /// Every tenant, ordered by id.
    async fn list_tenants(&self) -> ScimResult<Vec<Tenant>>;

    /// Replaces a tenant's settings and returns the updated tenant.
    async fn update_tenant_settings(&self, id: &TenantId, settings: Settings)
        -> ScimResult<Tenant>;

    /// Switches SCIM on or off for a tenant and returns the updated tenant.
    async fn set_scim_enabled(&self, id: &TenantId, enabled: bool) -> ScimResult<Tenant>;

    /// Renames a tenant and returns the updated tenant.
    async fn set_display_name(&self, id: &TenantId, display_name: String) -> ScimResult<Tenant>;

    /// Deletes a tenant and all its token records. `false` if there was no such tenant.
    async fn delete_tenant(&self, id: &TenantId) -> ScimResult<bool>;

    /// Stores a new token record. [`ScimError::NotFound`] if its tenant does not exist,
    /// [`ScimError::Conflict`] if its id or hash is already stored.
    async fn insert_token(&self, record: TokenRecord) -> ScimResult<()>;

    /// The record whose hash is `hash`, whatever its tenant or state. This is the lookup of
    /// every authenticated request: backends should index the hash.
    async fn find_token_by_hash(&self, hash: &[u8; 32]) -> ScimResult<Option<TokenRecord>>;

    /// The record of token `id` of `tenant`, if any.
    async fn get_token(&self, tenant: &TenantId, id: &TokenId) -> ScimResult<Option<TokenRecord>>;

    /// Every token record of `tenant` (revoked and expired included), oldest first.
    async fn list_tokens(&self, tenant: &TenantId) -> ScimResult<Vec<TokenRecord>>;

    /// Sets the expiry of token `id` of `tenant`. `false` if there is no such token.
    async fn set_token_expiry(
        &self,
        tenant: &TenantId,
        id: &TokenId,
        expires: Option<DateTime<Utc>>,
    ) -> ScimResult<bool>;

    /// Revokes token `id` of `tenant`. `false` if there is no such token (revoking a revoked
    /// token is `true`).
    async fn revoke_token(&self, tenant: &TenantId, id: &TokenId) -> ScimResult<bool>;

    /// Revokes every token of `tenant`; returns how many were not revoked before.
    async fn revoke_all_tokens(&self, tenant: &TenantId) -> ScimResult<usize>;

    /// Records that token `id` authenticated a request at `at`. A time earlier than the
    /// stored one is ignored, so concurrent writers cannot move it backwards. An unknown id
    /// is not an error (the token may have been deleted meanwhile).
    async fn record_token_use(&self, id: &TokenId, at: DateTime<Utc>) -> ScimResult<()>;
}

#[derive(Default)]
struct Inner {
    tenants: BTreeMap<TenantId, Tenant>,
    /// Token records keyed by hash: the hot path of every request is one lookup here.
    tokens: HashMap<[u8; 32], TokenRecord>,
    /// Token id to hash, for the admin operations.
    by_id: HashMap<TokenId, [u8; 32]>,
}

impl Inner {
    fn tenant_mut(&mut self, id: &TenantId) -> ScimResult<&mut Tenant> {
        self.tenants
            .get_mut(id)
            .ok_or_else(|| ScimError::NotFound(format!("tenant '{id}' does not exist")))
    }

    fn token_of_tenant_mut(&mut self, tenant: &TenantId, id: &TokenId) -> Option<&mut TokenRecord> {
        let hash = self.by_id.get(id)?;
        self.tokens.get_mut(hash).filter(|r| &r.tenant == tenant)
    }
}

/// A [`TenantStore`] in memory, for tests, demos and single-process hosts that keep their
/// tenants elsewhere and load them at start-up. Nothing survives a restart.
#[derive(Default)]
pub struct MemoryTenantStore {
    inner: RwLock<Inner>,
}

impl MemoryTenantStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    // A poisoned lock means a panic while holding it; every update below is a few map
    // operations that cannot leave the maps inconsistent, so the data is still sound.
    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for MemoryTenantStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.read();
        f.debug_struct("MemoryTenantStore")
            .field("tenants", &inner.tenants.len())
            .field("tokens", &inner.tokens.len())
            .finish()
    }
}

#[async_trait]
impl TenantStore for MemoryTenantStore {
    async fn create_tenant(&self, tenant: Tenant) -> ScimResult<()> {
        let mut inner = self.write();
        if inner.tenants.contains_key(&tenant.id) {
            return Err(ScimError::Conflict(format!(
                "tenant '{}' already exists",
                tenant.id
            )));
        }
        inner.tenants.insert(tenant.id.clone(), tenant);
        Ok(())
    }

    async fn get_tenant(&self, id: &TenantId) -> ScimResult<Option<Tenant>> {
        Ok(self.read().tenants.get(id).cloned())
    }

    async fn list_tenants(&self) -> ScimResult<Vec<Tenant>> {
        Ok(self.read().tenants.values().cloned().collect())
    }

    async fn update_tenant_settings(
        &self,
        id: &TenantId,
        settings: Settings,
    ) -> ScimResult<Tenant> {
        let mut inner = self.write();
        let t = inner.tenant_mut(id)?;
        t.settings = settings;
        Ok(t.clone())
    }

    async fn set_scim_enabled(&self, id: &TenantId, enabled: bool) -> ScimResult<Tenant> {
        let mut inner = self.write();
        let t = inner.tenant_mut(id)?;
        t.scim_enabled = enabled;
        Ok(t.clone())
    }

    async fn set_display_name(&self, id: &TenantId, display_name: String) -> ScimResult<Tenant> {
        let mut inner = self.write();
        let t = inner.tenant_mut(id)?;
        t.display_name = display_name;
        Ok(t.clone())
    }

    async fn delete_tenant(&self, id: &TenantId) -> ScimResult<bool> {
        let mut inner = self.write();
        if inner.tenants.remove(id).is_none() {
            return Ok(false);
        }
        let Inner { tokens, by_id, .. } = &mut *inner;
        tokens.retain(|_, r| {
            let keep = &r.tenant != id;
            if !keep {
                by_id.remove(&r.id);
            }
            keep
        });
        Ok(true)
    }

    async fn insert_token(&self, record: TokenRecord) -> ScimResult<()> {
        let mut inner = self.write();
        if !inner.tenants.contains_key(&record.tenant) {
            return Err(ScimError::NotFound(format!(
                "tenant '{}' does not exist",
                record.tenant
            )));
        }
        if inner.by_id.contains_key(&record.id) || inner.tokens.contains_key(&record.hash) {
            return Err(ScimError::Conflict(format!(
                "token '{}' is already stored",
                record.id
            )));
        }
        inner.by_id.insert(record.id, record.hash);
        inner.tokens.insert(record.hash, record);
        Ok(())
    }

    async fn find_token_by_hash(&self, hash: &[u8; 32]) -> ScimResult<Option<TokenRecord>> {
        Ok(self.read().tokens.get(hash).cloned())
    }

    async fn get_token(&self, tenant: &TenantId, id: &TokenId) -> ScimResult<Option<TokenRecord>> {
        let inner = self.read();
        Ok(inner
            .by_id
            .get(id)
            .and_then(|h| inner.tokens.get(h))
            .filter(|r| &r.tenant == tenant)
            .cloned())
    }

    async fn list_tokens(&self, tenant: &TenantId) -> ScimResult<Vec<TokenRecord>> {
        let mut out: Vec<TokenRecord> = self
            .read()
            .tokens
            .values()
            .filter(|r| &r.tenant == tenant)
            .cloned()
            .collect();
        out.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    async fn set_token_expiry(
        &self,
        tenant: &TenantId,
        id: &TokenId,
        expires: Option<DateTime<Utc>>,
    ) -> ScimResult<bool> {
        let mut inner = self.write();
        Ok(match inner.token_of_tenant_mut(tenant, id) {
            Some(r) => {
                r.expires = expires;
                true
            }
            None => false,
        })
    }

    async fn revoke_token(&self, tenant: &TenantId, id: &TokenId) -> ScimResult<bool> {
        let mut inner = self.write();
        Ok(match inner.token_of_tenant_mut(tenant, id) {
            Some(r) => {
                r.revoked = true;
                true
            }
            None => false,
        })
    }

    async fn revoke_all_tokens(&self, tenant: &TenantId) -> ScimResult<usize> {
        let mut inner = self.write();
        let mut n = 0;
        for r in inner.tokens.values_mut() {
            if &r.tenant == tenant && !r.revoked {
                r.revoked = true;
                n += 1;
            }
        }
        Ok(n)
    }

    async fn record_token_use(&self, id: &TokenId, at: DateTime<Utc>) -> ScimResult<()> {
        let mut inner = self.write();
        let Inner { tokens, by_id, .. } = &mut *inner;
        if let Some(r) = by_id.get(id).and_then(|h| tokens.get_mut(h)) {
            if r.last_used.is_none_or(|prev| prev < at) {
                r.last_used = Some(at);
            }
        }
        Ok(())
    }
}
