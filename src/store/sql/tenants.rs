//! What the two SQL [`TenantStore`](crate::auth::TenantStore)s share: reading through the
//! tenant cache, and a token record from its stored columns. The statements, and the
//! tables they read (a tenant as JSON in SQLite, as columns in PostgreSQL), are per dialect.

use std::future::Future;

use chrono::{DateTime, Utc};

use crate::auth::TenantCache;
use crate::auth::{TokenId, TokenRecord};
use crate::error::{ScimError, ScimResult};
use crate::tenant::{Tenant, TenantId};

/// Tenant `id` from the cache, else from `load` (which reads the database), kept in the
/// cache unless a change to tenants was committed while it read.
pub(crate) async fn cached_tenant(
    cache: &TenantCache,
    id: &TenantId,
    load: impl Future<Output = ScimResult<Option<Tenant>>>,
) -> ScimResult<Option<Tenant>> {
    if let Some(t) = cache.tenant(id) {
        return Ok(Some(t));
    }
    let read = cache.begin();
    let tenant = load.await?;
    if let Some(t) = &tenant {
        cache.put_tenant(read, t);
    }
    Ok(tenant)
}

/// The token record with hash `hash` from the cache, else from `load`, kept in the cache
/// as [`cached_tenant`] keeps a tenant.
pub(crate) async fn cached_token(
    cache: &TenantCache,
    hash: &[u8; 32],
    load: impl Future<Output = ScimResult<Option<TokenRecord>>>,
) -> ScimResult<Option<TokenRecord>> {
    if let Some(rec) = cache.token(hash) {
        return Ok(Some(rec));
    }
    let read = cache.begin();
    let rec = load.await?;
    if let Some(r) = &rec {
        cache.put_token(read, r);
    }
    Ok(rec)
}

/// True when `e` is a uniqueness violation (a duplicate key), in either dialect.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// The answer to inserting tenant `id`: a duplicate id is a conflict.
pub(crate) fn tenant_inserted<T>(r: Result<T, sqlx::Error>, id: &TenantId) -> ScimResult<()> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => {
            Err(ScimError::Conflict(format!("tenant '{id}' already exists")))
        }
        Err(e) => Err(ScimError::internal(e)),
    }
}

/// A token record's columns as a SQL store reads them, times decoded.
pub(crate) struct TokenColumns {
    pub(crate) id: String,
    pub(crate) tenant: String,
    pub(crate) label: String,
    pub(crate) hash: Vec<u8>,
    pub(crate) created: DateTime<Utc>,
    pub(crate) expires: Option<DateTime<Utc>>,
    pub(crate) revoked: bool,
    pub(crate) last_used: Option<DateTime<Utc>>,
}

impl TokenColumns {
    /// The record, or an internal error when a stored id or hash is malformed.
    pub(crate) fn into_record(self) -> ScimResult<TokenRecord> {
        Ok(TokenRecord {
            id: self
                .id
                .parse::<TokenId>()
                .map_err(|_| ScimError::internal_msg("a stored token id is not a UUID"))?,
            tenant: TenantId::new(self.tenant).map_err(ScimError::internal)?,
            label: self.label,
            hash: self
                .hash
                .try_into()
                .map_err(|_| ScimError::internal_msg("a stored token hash is not 32 bytes"))?,
            created: self.created,
            expires: self.expires,
            revoked: self.revoked,
            last_used: self.last_used,
        })
    }
}
