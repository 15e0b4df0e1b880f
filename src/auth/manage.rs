//! The host's admin API: tenants and their tokens.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::clock::{Clock, SystemClock};
use super::store::{MemoryTenantStore, TenantStore};
use super::token::{TokenId, TokenRecord, TokenSecret};
use super::verify::BearerTokenVerifier;
use crate::error::{ScimError, ScimResult};
use crate::settings::Settings;
use crate::tenant::{Tenant, TenantId};

/// Longest accepted tenant display name or token label, in characters.
pub const MAX_LABEL_CHARS: usize = 256;

/// What a host's admin screens call: create tenants, switch SCIM on and off, issue, list,
/// rotate and revoke tokens.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use scimkit::auth::{Tenants, TokenVerifier};
/// use scimkit::{settings::Settings, tenant::TenantId};
///
/// let tenants = Tenants::in_memory();
/// let id = TenantId::new("acme-okta").unwrap();
/// tenants.create_tenant(id.clone(), "Acme Okta", Settings::default()).await?;
/// let (record, secret) = tenants.issue_token(&id, "Okta production", None).await?;
/// // Show `secret.expose_secret()` to the admin once; only `record` is kept.
///
/// let header = format!("Bearer {}", secret.expose_secret()).parse().unwrap();
/// let principal = tenants.verifier().verify(&id, Some(&header)).await?;
/// assert_eq!(principal.token_id(), Some(record.id));
/// # Ok::<(), scimkit::error::ScimError>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct Tenants {
    store: Arc<dyn TenantStore>,
    clock: Arc<dyn Clock>,
}

impl Tenants {
    /// The admin API over `store`, reading time from `clock`.
    pub fn new(store: Arc<dyn TenantStore>, clock: Arc<dyn Clock>) -> Self {
        Tenants { store, clock }
    }

    /// The admin API over `store` (any [`TenantStore`]: a `SqliteStore`, a `PostgresStore`,
    /// a [`MemoryTenantStore`] or the host's own), reading time from the system clock.
    pub fn from_store(store: Arc<dyn TenantStore>) -> Self {
        Tenants::new(store, Arc::new(SystemClock))
    }

    /// The admin API over a fresh [`MemoryTenantStore`] and the system clock.
    pub fn in_memory() -> Self {
        Tenants::new(Arc::new(MemoryTenantStore::new()), Arc::new(SystemClock))
    }

    /// The underlying store.
    pub fn store(&self) -> &Arc<dyn TenantStore> {
        &self.store
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The built-in verifier over the same store and clock.
    pub fn verifier(&self) -> BearerTokenVerifier {
        BearerTokenVerifier::new(Arc::clone(&self.store), Arc::clone(&self.clock))
    }

    /// Creates a tenant with SCIM enabled (creating a tenant is how an admin switches
    /// provisioning on for a connection; it serves nothing until a token is issued).
    /// [`ScimError::Conflict`] if the id is taken.
    pub async fn create_tenant(
        &self,
        id: TenantId,
        display_name: impl Into<String>,
        settings: Settings,
    ) -> ScimResult<Tenant> {
        let display_name = checked_label("displayName", display_name.into(), false)?;
        let tenant = Tenant {
            id,
            display_name,
            scim_enabled: true,
            settings,
            created: self.clock.now(),
        };
        self.store.create_tenant(tenant.clone()).await?;
        Ok(tenant)
    }

    /// The tenant `id`, or [`ScimError::NotFound`].
    pub async fn get_tenant(&self, id: &TenantId) -> ScimResult<Tenant> {
        self.store
            .get_tenant(id)
            .await?
            .ok_or_else(|| tenant_not_found(id))
    }

    /// Every tenant, ordered by id.
    pub async fn list_tenants(&self) -> ScimResult<Vec<Tenant>> {
        self.store.list_tenants().await
    }

    /// Switches SCIM provisioning on or off. While off, every request to the tenant is
    /// refused with 401; tokens and data are kept.
    pub async fn set_scim_enabled(&self, id: &TenantId, enabled: bool) -> ScimResult<Tenant> {
        self.store.set_scim_enabled(id, enabled).await
    }

    /// Replaces the tenant's settings.
    pub async fn update_settings(&self, id: &TenantId, settings: Settings) -> ScimResult<Tenant> {
        self.store.update_tenant_settings(id, settings).await
    }

    /// Renames the tenant.
    pub async fn rename_tenant(
        &self,
        id: &TenantId,
        display_name: impl Into<String>,
    ) -> ScimResult<Tenant> {
        let display_name = checked_label("displayName", display_name.into(), false)?;
        self.store.set_display_name(id, display_name).await
    }

    /// Deletes the tenant and its tokens. [`ScimError::NotFound`] if there is no such tenant.
    pub async fn delete_tenant(&self, id: &TenantId) -> ScimResult<()> {
        if self.store.delete_tenant(id).await? {
            Ok(())
        } else {
            Err(tenant_not_found(id))
        }
    }

    /// Issues a new token for `tenant`. The secret is returned here and nowhere else: show it
    /// to the admin once and drop it; the store keeps only its hash.
    ///
    /// `expires`, when given, must be in the future ([`ScimError::InvalidValue`] otherwise).
    /// The tenant's other tokens keep working, which is how a token is rotated without
    /// downtime (see also [`Tenants::rotate_token`]).
    pub async fn issue_token(
        &self,
        tenant: &TenantId,
        label: impl Into<String>,
        expires: Option<DateTime<Utc>>,
    ) -> ScimResult<(TokenRecord, TokenSecret)> {
        let label = checked_label("label", label.into(), true)?;
        let now = self.clock.now();
        if let Some(e) = expires {
            if e <= now {
                return Err(ScimError::InvalidValue(format!(
                    "token expiry {} is not in the future",
                    e.to_rfc3339()
                )));
            }
        }
        // Fail with a clear error before drawing randomness for a tenant that is not there.
        self.get_tenant(tenant).await?;
        let secret = TokenSecret::generate()?;
        let record = TokenRecord {
            id: TokenId::new_random(),
            tenant: tenant.clone(),
            label,
            hash: secret.hash(),
            created: now,
            expires,
            revoked: false,
            last_used: None,
        };
        self.store.insert_token(record.clone()).await?;
        Ok((record, secret))
    }

    /// Every token record of `tenant`, oldest first, revoked and expired ones included.
    pub async fn list_tokens(&self, tenant: &TenantId) -> ScimResult<Vec<TokenRecord>> {
        self.get_tenant(tenant).await?;
        self.store.list_tokens(tenant).await
    }

    /// Token `id` of `tenant`, or [`ScimError::NotFound`].
    pub async fn get_token(&self, tenant: &TenantId, id: &TokenId) -> ScimResult<TokenRecord> {
        self.store
            .get_token(tenant, id)
            .await?
            .ok_or_else(|| token_not_found(tenant, id))
    }

    /// Revokes token `id` of `tenant` at once. [`ScimError::NotFound`] if the tenant has no
    /// such token.
    pub async fn revoke_token(&self, tenant: &TenantId, id: &TokenId) -> ScimResult<()> {
        if self.store.revoke_token(tenant, id).await? {
            Ok(())
        } else {
            Err(token_not_found(tenant, id))
        }
    }

    /// Revokes every token of `tenant` (after a leak); returns how many were still active.
    pub async fn revoke_all_tokens(&self, tenant: &TenantId) -> ScimResult<usize> {
        self.get_tenant(tenant).await?;
        self.store.revoke_all_tokens(tenant).await
    }

    /// Replaces token `old` with a new one without downtime.
    ///
    /// The new token gets the old one's label and, if the old one had an expiry, the same
    /// lifetime counted from now. The old token keeps working for `overlap` (never longer
    /// than it would have anyway) so the admin can paste the new one into the IdP; a zero
    /// `overlap` revokes it at once. The new token is stored before the old one is cut
    /// short, so a failure in between never leaves the tenant without a working token.
    ///
    /// [`ScimError::NotFound`] if the tenant has no token `old`; [`ScimError::Conflict`] if
    /// it is revoked or expired (issue a fresh token instead).
    pub async fn rotate_token(
        &self,
        tenant: &TenantId,
        old: &TokenId,
        overlap: std::time::Duration,
    ) -> ScimResult<(TokenRecord, TokenSecret)> {
        let previous = self.get_token(tenant, old).await?;
        let now = self.clock.now();
        if !previous.is_active(now) {
            return Err(ScimError::Conflict(format!(
                "token '{old}' is revoked or expired and cannot be rotated"
            )));
        }
        let expires = previous
            .expires
            .map(|e| now.checked_add_signed(e - previous.created).unwrap_or(e));
        let issued = self
            .issue_token(tenant, previous.label.clone(), expires)
            .await?;
        let overlap = Duration::from_std(overlap).unwrap_or(Duration::MAX);
        if overlap.is_zero() {
            self.revoke_token(tenant, old).await?;
        } else {
            let cut = now.checked_add_signed(overlap);
            let new_expiry = match (previous.expires, cut) {
                (Some(e), Some(c)) => Some(e.min(c)),
                (e, None) => e,
                (None, c) => c,
            };
            if !self.store.set_token_expiry(tenant, old, new_expiry).await? {
                return Err(token_not_found(tenant, old));
            }
        }
        Ok(issued)
    }
}

impl fmt::Debug for Tenants {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tenants").finish_non_exhaustive()
    }
}

fn tenant_not_found(id: &TenantId) -> ScimError {
    ScimError::NotFound(format!("tenant '{id}' does not exist"))
}

fn token_not_found(tenant: &TenantId, id: &TokenId) -> ScimError {
    ScimError::NotFound(format!("tenant '{tenant}' has no token '{id}'"))
}

/// Checks an admin-supplied name: at most [`MAX_LABEL_CHARS`] characters, no control
/// characters (they would corrupt admin screens and logs), and non-blank unless
/// `allow_empty`.
fn checked_label(what: &str, value: String, allow_empty: bool) -> ScimResult<String> {
    if !allow_empty && value.trim().is_empty() {
        return Err(ScimError::InvalidValue(format!("{what} must not be blank")));
    }
    if value.chars().count() > MAX_LABEL_CHARS {
        return Err(ScimError::InvalidValue(format!(
            "{what} is longer than {MAX_LABEL_CHARS} characters"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(ScimError::InvalidValue(format!(
            "{what} contains a control character"
        )));
    }
    Ok(value)
}
