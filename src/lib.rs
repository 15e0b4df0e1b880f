#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod auth;
pub mod error;
pub mod feed;
pub mod filter;
pub mod patch;
pub mod resource;
pub mod schema;
pub mod service;
pub mod settings;
pub mod store;
pub mod tenant;

pub use auth::{BearerTokenVerifier, Principal, TenantStore, Tenants, TokenVerifier};
pub use error::{ScimError, ScimResult, ScimType};
pub use filter::{CompiledFilter, Filter};
pub use resource::{ListResponse, Meta, ResourceId, Version};
pub use schema::{AttrPath, ResourceDef, SchemaRegistry};
pub use service::ScimService;
pub use settings::{Limits, PatchResponse, Settings, Tolerances};
pub use store::{MemoryStore, ResourceStore};
pub use tenant::{BaseUrl, Tenant, TenantId};
