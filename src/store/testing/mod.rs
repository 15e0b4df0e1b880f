//! The store contract suite: the behaviour every [`ResourceStore`] must have.
//!
//! A backend's tests call [`run_contract_suite`] with a factory that builds an empty store
//! and a spawner for concurrent tasks, or call the individual `check_*` functions. Each check
//! panics with a message naming what broke (this module is test support: assertions are its
//! purpose).
//!
//! ```no_run
//! # // needs the `testing` feature and a tokio runtime
//! use std::sync::Arc;
//! use scimkit::store::{testing, MemoryStore, ResourceStore};
//!
//! # async fn run() {
//! testing::run_contract_suite(
//!     || async { Arc::new(MemoryStore::new()) as Arc<dyn ResourceStore> },
//!     |task: testing::TaskFuture| -> testing::TaskFuture {
//!         let handle = tokio::spawn(task);
//!         Box::pin(async move { handle.await.expect("task panicked") })
//!     },
//! )
//! .await;
//! # }
//! ```
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

#[cfg(feature = "postgres")]
pub mod postgres;

mod concurrency;
mod counting;
mod filters;
mod fixture;
mod folding;
mod keyset;
mod log;
mod membership;
mod paging;
mod resources;
mod retention;
mod sort_keys;
mod subscription;
mod tenants;

pub use concurrency::*;
pub use counting::*;
pub use filters::*;
pub use fixture::*;
pub use folding::*;
pub use keyset::*;
pub use log::*;
pub use membership::*;
pub use paging::*;
pub use resources::*;
pub use retention::*;
pub use sort_keys::*;
pub use subscription::*;
pub use tenants::*;

use std::collections::{BTreeSet, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Value};

use super::{
    apply_query, view_document, CreateRequest, ListQuery, MemberRef, MembershipDelta, NewDocument,
    Page, Pushdown, ResourceStore, StoreError, StoredResource, UniqueKey, UnknownMembers,
    UpdateKind, UpdateRequest,
};
use crate::auth::{TenantStore, TokenId, TokenRecord};
use crate::error::ScimError;
use crate::feed::ChangeKind;
use crate::filter::{compare_resources, Filter, SortOrder, SortSpec};
use crate::resource::{ResourceId, Version};
use crate::schema::{
    AttrPath, AttributeDef, ResourceDef, ResourceType, Schema, SchemaRegistry,
    ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA,
};
use crate::settings::Settings;
use crate::tenant::Tenant;
use crate::tenant::TenantId;

/// A boxed task for a [`Spawner`].
pub type TaskFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Runs a task concurrently (on the test's runtime) and returns a future that completes when
/// the task has, panicking if the task panicked. The task must be started before the returned
/// future is polled: `tokio::spawn` eagerly, then await the handle.
pub trait Spawner {
    /// Starts `task`; the result completes with it.
    fn spawn(&self, task: TaskFuture) -> TaskFuture;
}

impl<F> Spawner for F
where
    F: Fn(TaskFuture) -> TaskFuture,
{
    fn spawn(&self, task: TaskFuture) -> TaskFuture {
        self(task)
    }
}

/// Runs every check, each on a fresh store from `factory`.
pub async fn run_contract_suite<F, Fut>(factory: F, spawner: impl Spawner)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn ResourceStore>>,
{
    let fx = Fixture::new();
    check_crud(&*factory().await, &fx).await;
    check_custom_resource_type(&*factory().await, &fx).await;
    check_versions(&*factory().await, &fx).await;
    check_uniqueness(&*factory().await, &fx).await;
    check_paging(&*factory().await, &fx).await;
    check_sorting(&*factory().await, &fx).await;
    check_sorting_any_attribute(&*factory().await, &fx).await;
    check_sort_keys(&*factory().await, &fx).await;
    check_keyset_paging(factory().await, &fx).await;
    check_tenant_isolation(&*factory().await, &fx).await;
    check_membership(&*factory().await, &fx).await;
    check_large_group(&*factory().await, &fx).await;
    check_delete_cleans_memberships(&*factory().await, &fx).await;
    check_change_feed(&*factory().await, &fx).await;
    check_change_retention(&*factory().await, &fx).await;
    check_change_subscription(&*factory().await, &fx).await;
    check_filter_equivalence(&*factory().await, &fx).await;
    check_filter_ne_any_value(&*factory().await, &fx).await;
    check_filter_regressions(&*factory().await, &fx).await;
    check_case_folding(&*factory().await, &fx).await;
    check_concurrent_member_adds(factory().await, &fx, &spawner).await;
    check_concurrent_read_modify_write(factory().await, &fx, &spawner).await;
    check_unknown_members(&*factory().await, &fx).await;
    check_concurrent_distinct_adds_and_removes(factory().await, &fx, &spawner).await;
    check_membership_at_scale(&*factory().await, &fx).await;
}
