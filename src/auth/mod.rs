//! Tenants' bearer tokens: issuance, storage, verification, rotation and revocation.
//!
//! The flow an admin follows: create a tenant for an IdP connection ([`Tenants::create_tenant`]),
//! issue a token ([`Tenants::issue_token`]) and paste it, with the tenant's base URL
//! ([`crate::tenant::BaseUrl`]), into the IdP. scimkit keeps only the token's SHA-256 in a
//! [`TenantStore`]. Each SCIM request then goes through a [`TokenVerifier`]; the built-in
//! [`BearerTokenVerifier`] checks the `Authorization: Bearer` header against the store.
//!
//! Every authentication failure is the same 401 ([`unauthorized`], with the
//! [`WWW_AUTHENTICATE`] header), so a client cannot tell an unknown token from a revoked,
//! expired or foreign one, or from a tenant whose SCIM is switched off.
//!
//! Secrets hygiene: [`TokenSecret`] prints `[redacted]`, has no `PartialEq` or `Clone`, and
//! is zeroed on drop; [`TokenRecord`] holds only the hash and does not print it either.

mod cache;
mod clock;
mod manage;
mod store;
mod token;
mod verify;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) use cache::TenantCache;
pub use cache::{TENANT_CACHE_CAPACITY, TENANT_CACHE_TTL};
pub use clock::{Clock, ManualClock, SystemClock};
pub use manage::{Tenants, MAX_LABEL_CHARS};
pub use store::{MemoryTenantStore, TenantStore};
pub use token::{
    hash_token, is_well_formed, TokenId, TokenRecord, TokenSecret, TOKEN_LEN, TOKEN_PREFIX,
};
pub(crate) use verify::authenticate_loading_tenant;
pub use verify::{
    authenticate, parse_bearer, unauthorized, www_authenticate, BearerTokenVerifier, Principal,
    Subject, TokenVerifier, MAX_AUTHORIZATION_LEN, UNAUTHORIZED_DETAIL, WWW_AUTHENTICATE,
};
