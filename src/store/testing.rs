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

/// A [`ResourceStore`] that forwards to another and counts the calls, so that a test can
/// assert what a request cost: for example that a membership PATCH never reads the member
/// list of the group.
pub struct CountingStore {
    inner: Arc<dyn ResourceStore>,
    calls: std::sync::Mutex<StoreCalls>,
}

/// The calls a [`CountingStore`] has seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreCalls {
    /// `create` and `create_many` calls.
    pub creates: usize,
    /// `get` calls without members.
    pub gets: usize,
    /// `get` calls with `include_members` (reads of a whole member list).
    pub gets_with_members: usize,
    /// `update` calls.
    pub updates: usize,
    /// `update` calls with an expected version.
    pub versioned_updates: usize,
    /// `list` calls.
    pub lists: usize,
    /// `list` calls with `include_members`.
    pub lists_with_members: usize,
    /// `members` calls (pages of a member list, counted).
    pub member_pages: usize,
    /// `members_if_at_most` calls (a member list read only when it is short).
    pub short_member_lists: usize,
    /// `groups_of` calls.
    pub groups_of: usize,
    /// Every other call.
    pub other: usize,
}

impl CountingStore {
    /// Counts the calls made to `inner`.
    pub fn new(inner: Arc<dyn ResourceStore>) -> Self {
        CountingStore {
            inner,
            calls: std::sync::Mutex::new(StoreCalls::default()),
        }
    }

    /// The calls so far.
    pub fn calls(&self) -> StoreCalls {
        *self.calls.lock().unwrap()
    }

    /// Starts counting from zero.
    pub fn reset(&self) {
        *self.calls.lock().unwrap() = StoreCalls::default();
    }

    fn count(&self, f: impl FnOnce(&mut StoreCalls)) {
        f(&mut self.calls.lock().unwrap());
    }
}

#[async_trait::async_trait]
impl ResourceStore for CountingStore {
    async fn create(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        req: CreateRequest,
    ) -> Result<StoredResource, StoreError> {
        self.count(|c| c.creates += 1);
        self.inner.create(tenant, rt, req).await
    }

    async fn create_many(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        requests: Vec<CreateRequest>,
    ) -> Result<Vec<StoredResource>, StoreError> {
        self.count(|c| c.creates += 1);
        self.inner.create_many(tenant, rt, requests).await
    }

    async fn get(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        id: &ResourceId,
        include_members: bool,
    ) -> Result<StoredResource, StoreError> {
        self.count(|c| {
            if include_members {
                c.gets_with_members += 1;
            } else {
                c.gets += 1;
            }
        });
        self.inner.get(tenant, rt, id, include_members).await
    }

    async fn update(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        id: &ResourceId,
        req: UpdateRequest,
    ) -> Result<StoredResource, StoreError> {
        self.count(|c| {
            c.updates += 1;
            if req.expected_version.is_some() {
                c.versioned_updates += 1;
            }
        });
        self.inner.update(tenant, rt, id, req).await
    }

    async fn delete(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        id: &ResourceId,
        expected_version: Option<Version>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.count(|c| c.other += 1);
        self.inner
            .delete(tenant, rt, id, expected_version, now)
            .await
    }

    async fn list(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        query: &ListQuery,
    ) -> Result<Page, StoreError> {
        self.count(|c| {
            c.lists += 1;
            if query.include_members {
                c.lists_with_members += 1;
            }
        });
        self.inner.list(tenant, rt, query).await
    }

    async fn members(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        group: &ResourceId,
        start_index: usize,
        count: usize,
    ) -> Result<super::MemberPage, StoreError> {
        self.count(|c| c.member_pages += 1);
        self.inner
            .members(tenant, rt, group, start_index, count)
            .await
    }

    async fn members_if_at_most(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        group: &ResourceId,
        max: usize,
    ) -> Result<Option<Vec<super::Member>>, StoreError> {
        self.count(|c| c.short_member_lists += 1);
        self.inner.members_if_at_most(tenant, rt, group, max).await
    }

    async fn groups_of(
        &self,
        tenant: &TenantId,
        member: &ResourceId,
    ) -> Result<Vec<super::GroupRef>, StoreError> {
        self.count(|c| c.groups_of += 1);
        self.inner.groups_of(tenant, member).await
    }

    async fn changes_since(
        &self,
        tenant: &TenantId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<crate::feed::Change>, StoreError> {
        self.count(|c| c.other += 1);
        self.inner.changes_since(tenant, after, limit).await
    }
}

/// Schemas, resource types and tenants the checks use.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// The default registry plus a custom `Device` resource type.
    pub registry: SchemaRegistry,
    /// The User resource type.
    pub users: Arc<ResourceDef>,
    /// The Group resource type.
    pub groups: Arc<ResourceDef>,
    /// A host-registered resource type (`Device`, with a unique `serialNumber`).
    pub devices: Arc<ResourceDef>,
    /// The tenant the checks write in.
    pub tenant: TenantId,
    /// Another tenant, which must see nothing of the first.
    pub other: TenantId,
}

/// The schema URN of the custom `Device` resource type.
pub const DEVICE_SCHEMA: &str = "urn:example:params:scim:schemas:Device";

impl Default for Fixture {
    fn default() -> Self {
        Fixture::new()
    }
}

impl Fixture {
    /// The fixture.
    pub fn new() -> Self {
        let mut registry = SchemaRegistry::default();
        registry
            .register_schema(Schema {
                id: DEVICE_SCHEMA.into(),
                name: "Device".into(),
                description: "A managed device".into(),
                attributes: vec![
                    AttributeDef::string("serialNumber").required(),
                    AttributeDef::string("displayName"),
                ],
            })
            .expect("device schema");
        registry
            .register_resource_type(ResourceType::new("Device", "/Devices", DEVICE_SCHEMA))
            .expect("device type");
        let users = Arc::clone(registry.user().expect("User"));
        let groups = Arc::clone(registry.group().expect("Group"));
        let devices = Arc::clone(registry.resource_type("Device").expect("Device"));
        Fixture {
            registry,
            users,
            groups,
            devices,
            tenant: TenantId::new("tenant-a").expect("tenant"),
            other: TenantId::new("tenant-b").expect("tenant"),
        }
    }
}

/// A fixed base time, so documents and feeds are reproducible.
pub fn base_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("valid time")
}

/// The `userName` uniqueness key (not `caseExact`, so folded).
pub fn user_name_key(user_name: &str) -> UniqueKey {
    UniqueKey::new("userName", user_name.to_lowercase())
}

/// A user create request with `userName` as its only uniqueness key.
pub fn user_request(id: &str, doc: Value, now: DateTime<Utc>) -> CreateRequest {
    let unique_keys = doc
        .get("userName")
        .and_then(Value::as_str)
        .map(user_name_key)
        .into_iter()
        .collect();
    CreateRequest {
        id: ResourceId::new(id),
        doc,
        unique_keys,
        members: Vec::new(),
        unknown_members: UnknownMembers::Reject,
        now,
    }
}

/// A group create request (`displayName` unique, folded, as a host may configure).
pub fn group_request(id: &str, name: &str, members: &[&str], now: DateTime<Utc>) -> CreateRequest {
    CreateRequest {
        id: ResourceId::new(id),
        doc: json!({"schemas": [GROUP_SCHEMA], "displayName": name}),
        unique_keys: vec![UniqueKey::new("displayName", name.to_lowercase())],
        members: members.iter().map(|m| MemberRef::new(*m)).collect(),
        unknown_members: UnknownMembers::Reject,
        now,
    }
}

/// A page of `count` resources under `filter`, sorted by `userName` ascending: the query
/// shape the store benchmarks measure.
pub fn sorted_by_user_name(filter: &str, count: usize) -> ListQuery {
    ListQuery {
        filter: Some(Filter::parse(filter).expect("a valid filter")),
        sort: Some(SortSpec {
            by: AttrPath::new("userName"),
            order: SortOrder::Ascending,
        }),
        start_index: 1,
        count,
        include_members: false,
    }
}

/// A plain user document.
pub fn simple_user(user_name: &str) -> Value {
    json!({"schemas": [USER_SCHEMA], "userName": user_name, "active": true})
}

fn replace_request(doc: Value, expected: Option<Version>, now: DateTime<Utc>) -> UpdateRequest {
    let unique_keys = doc
        .get("userName")
        .and_then(Value::as_str)
        .map(user_name_key)
        .into_iter()
        .collect();
    UpdateRequest {
        expected_version: expected,
        document: Some(NewDocument { doc, unique_keys }),
        members: None,
        kind: UpdateKind::Replace,
        now,
    }
}

fn delta_request(delta: MembershipDelta, now: DateTime<Utc>) -> UpdateRequest {
    UpdateRequest {
        expected_version: None,
        document: None,
        members: Some(delta),
        kind: UpdateKind::Patch,
        now,
    }
}

fn add(ids: &[&str]) -> MembershipDelta {
    MembershipDelta {
        add: ids.iter().map(|m| MemberRef::new(*m)).collect(),
        ..MembershipDelta::default()
    }
}

/// Answers `query` completely: the store's answer, completed with [`apply_query`] when the
/// store did not push everything down (what the service does).
pub async fn list_exact(
    store: &dyn ResourceStore,
    tenant: &TenantId,
    rt: &ResourceDef,
    query: &ListQuery,
) -> Page {
    let page = store.list(tenant, rt, query).await.expect("list");
    match page.pushdown {
        Pushdown::Exact => page,
        Pushdown::Inexact | Pushdown::Unsupported => {
            // The service asks for members when the filter reads them.
            apply_query(rt, query, page.resources).expect("apply_query")
        }
    }
}

fn ids(resources: &[StoredResource]) -> Vec<String> {
    resources.iter().map(|r| r.id.to_string()).collect()
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
    check_tenant_isolation(&*factory().await, &fx).await;
    check_membership(&*factory().await, &fx).await;
    check_large_group(&*factory().await, &fx).await;
    check_delete_cleans_memberships(&*factory().await, &fx).await;
    check_change_feed(&*factory().await, &fx).await;
    check_filter_equivalence(&*factory().await, &fx).await;
    check_concurrent_member_adds(factory().await, &fx, &spawner).await;
    check_concurrent_read_modify_write(factory().await, &fx, &spawner).await;
    check_unknown_members(&*factory().await, &fx).await;
    check_concurrent_distinct_adds_and_removes(factory().await, &fx, &spawner).await;
    check_membership_at_scale(&*factory().await, &fx).await;
}

/// Create, get, replace, delete; timestamps and versions; wrong types are not found.
pub async fn check_crud(store: &dyn ResourceStore, fx: &Fixture) {
    let t0 = base_time();
    let t1 = t0 + Duration::seconds(10);
    let t2 = t0 + Duration::seconds(20);
    let doc = simple_user("bjensen@example.com");
    let created = store
        .create(&fx.tenant, &fx.users, user_request("u1", doc.clone(), t0))
        .await
        .expect("create");
    assert_eq!(created.id.as_str(), "u1");
    assert_eq!(created.resource_type, "User");
    assert_eq!(created.version, Version::INITIAL);
    assert_eq!((created.created, created.last_modified), (t0, t0));
    assert_eq!(created.doc, doc);

    let got = store
        .get(&fx.tenant, &fx.users, &"u1".into(), false)
        .await
        .expect("get");
    assert_eq!(got, created, "get returns what create stored");

    let wrong_type = store.get(&fx.tenant, &fx.groups, &"u1".into(), false).await;
    assert!(
        matches!(wrong_type, Err(StoreError::NotFound { .. })),
        "a User is not found as a Group: {wrong_type:?}"
    );
    let missing = store
        .get(&fx.tenant, &fx.users, &"nope".into(), false)
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound { .. })));

    let mut doc2 = simple_user("bjensen@example.com");
    doc2["title"] = json!("Tour Guide");
    let updated = store
        .update(
            &fx.tenant,
            &fx.users,
            &"u1".into(),
            replace_request(doc2.clone(), Some(Version::INITIAL), t1),
        )
        .await
        .expect("replace");
    assert_eq!(updated.version, Version::new(2));
    assert_eq!(updated.doc, doc2);
    assert_eq!((updated.created, updated.last_modified), (t0, t1));
    let got = store
        .get(&fx.tenant, &fx.users, &"u1".into(), false)
        .await
        .expect("get after replace");
    assert_eq!(got, updated);

    let wrong = store
        .delete(&fx.tenant, &fx.groups, &"u1".into(), None, t2)
        .await;
    assert!(
        matches!(wrong, Err(StoreError::NotFound { .. })),
        "deleting through the wrong type: {wrong:?}"
    );
    store
        .delete(
            &fx.tenant,
            &fx.users,
            &"u1".into(),
            Some(Version::new(2)),
            t2,
        )
        .await
        .expect("delete");
    let gone = store.get(&fx.tenant, &fx.users, &"u1".into(), false).await;
    assert!(matches!(gone, Err(StoreError::NotFound { .. })));
    let again = store
        .delete(&fx.tenant, &fx.users, &"u1".into(), None, t2)
        .await;
    assert!(matches!(again, Err(StoreError::NotFound { .. })));
    let upd = store
        .update(
            &fx.tenant,
            &fx.users,
            &"u1".into(),
            replace_request(simple_user("x"), None, t2),
        )
        .await;
    assert!(matches!(upd, Err(StoreError::NotFound { .. })));

    // A taken id is a conflict on `id`, whatever the type.
    store
        .create(
            &fx.tenant,
            &fx.users,
            user_request("u2", simple_user("a"), t0),
        )
        .await
        .expect("create u2");
    let dup = store
        .create(&fx.tenant, &fx.groups, group_request("u2", "G", &[], t0))
        .await;
    assert!(
        matches!(&dup, Err(StoreError::Conflict { attribute }) if attribute == "id"),
        "duplicate id: {dup:?}"
    );
}

/// A host-registered resource type works like the built-in ones.
pub async fn check_custom_resource_type(store: &dyn ResourceStore, fx: &Fixture) {
    let t0 = base_time();
    let req = |id: &str, serial: &str| CreateRequest {
        id: id.into(),
        doc: json!({"schemas": [DEVICE_SCHEMA], "serialNumber": serial, "displayName": id}),
        unique_keys: vec![UniqueKey::new("serialNumber", serial)],
        members: Vec::new(),
        unknown_members: UnknownMembers::Reject,
        now: t0,
    };
    store
        .create(&fx.tenant, &fx.devices, req("d1", "SN-1"))
        .await
        .expect("create device");
    let dup = store
        .create(&fx.tenant, &fx.devices, req("d2", "SN-1"))
        .await;
    assert!(
        matches!(&dup, Err(StoreError::Conflict { attribute }) if attribute == "serialNumber"),
        "{dup:?}"
    );
    store
        .create(&fx.tenant, &fx.devices, req("d2", "SN-2"))
        .await
        .expect("create device 2");
    store
        .create(
            &fx.tenant,
            &fx.users,
            user_request("u1", simple_user("d1"), t0),
        )
        .await
        .expect("user");
    let page = list_exact(
        store,
        &fx.tenant,
        &fx.devices,
        &ListQuery {
            filter: Some(Filter::parse(r#"displayName eq "D2""#).unwrap()),
            ..ListQuery::default()
        },
    )
    .await;
    assert_eq!(ids(&page.resources), ["d2"]);
    let all = list_exact(store, &fx.tenant, &fx.devices, &ListQuery::default()).await;
    assert_eq!(all.total_results, 2, "only devices are listed as devices");
    let feed = store.changes_since(&fx.tenant, 0, 100).await.unwrap();
    assert!(feed
        .iter()
        .any(|c| c.resource_type == "Device" && c.id.as_str() == "d2"));
}

/// Stale versions fail with `VersionMismatch` and change nothing.
pub async fn check_versions(store: &dyn ResourceStore, fx: &Fixture) {
    let t0 = base_time();
    store
        .create(
            &fx.tenant,
            &fx.users,
            user_request("u1", simple_user("a"), t0),
        )
        .await
        .unwrap();
    store
        .create(
            &fx.tenant,
            &fx.users,
            user_request("m1", simple_user("m"), t0),
        )
        .await
        .unwrap();
    store
        .create(&fx.tenant, &fx.groups, group_request("g1", "G", &[], t0))
        .await
        .unwrap();
    let v2 = store
        .update(
            &fx.tenant,
            &fx.users,
            &"u1".into(),
            replace_request(simple_user("b"), None, t0),
        )
        .await
        .unwrap();
    assert_eq!(v2.version, Version::new(2), "an unconditional write bumps");
    let feed_len = store
        .changes_since(&fx.tenant, 0, 1000)
        .await
        .unwrap()
        .len();

    let stale = store
        .update(
            &fx.tenant,
            &fx.users,
            &"u1".into(),
            replace_request(simple_user("c"), Some(Version::INITIAL), t0),
        )
        .await;
    match stale {
        Err(StoreError::VersionMismatch { current }) => assert_eq!(current, Version::new(2)),
        other => panic!("stale replace: {other:?}"),
    }
    let mut stale_members = delta_request(add(&["m1"]), t0);
    stale_members.expected_version = Some(Version::new(7));
    let r = store
        .update(&fx.tenant, &fx.groups, &"g1".into(), stale_members)
        .await;
    assert!(
        matches!(r, Err(StoreError::VersionMismatch { .. })),
        "{r:?}"
    );
    let r = store
        .delete(
            &fx.tenant,
            &fx.users,
            &"u1".into(),
            Some(Version::INITIAL),
            t0,
        )
        .await;
    assert!(
        matches!(r, Err(StoreError::VersionMismatch { .. })),
        "{r:?}"
    );

    let now = store
        .get(&fx.tenant, &fx.users, &"u1".into(), false)
        .await
        .unwrap();
    assert_eq!(
        now.doc,
        simple_user("b"),
        "a stale write changed the document"
    );
    assert_eq!(now.version, Version::new(2));
    let g = store
        .get(&fx.tenant, &fx.groups, &"g1".into(), true)
        .await
        .unwrap();
    assert_eq!(g.members.as_deref().map(<[_]>::len), Some(0));
    assert_eq!(g.version, Version::INITIAL);
    let after = store
        .changes_since(&fx.tenant, 0, 1000)
        .await
        .unwrap()
        .len();
    assert_eq!(
        after, feed_len,
        "a failed write appended to the change feed"
    );
    // The name `c` from the failed write must not be reserved.
    store
        .create(
            &fx.tenant,
            &fx.users,
            user_request("u2", simple_user("c"), t0),
        )
        .await
        .expect("`c` is free");
}

/// Uniqueness keys are enforced per tenant and resource type.
pub async fn check_uniqueness(store: &dyn ResourceStore, fx: &Fixture) {
    let t0 = base_time();
    store
        .create(
            &fx.tenant,
            &fx.users,
            user_request("u1", simple_user("BJensen"), t0),
        )
        .await
        .unwrap();
    let dup = store
        .create(
            &fx.tenant,
            &fx.users,
            user_request("u2", simple_user("bjensen"), t0),
        )
        .await;
    assert!(
        matches!(&dup, Err(StoreError::Conflict { attribute }) if attribute == "userName"),
        "case-insensitive userName clash: {dup:?}"
    );
    assert!(matches!(
        store.get(&fx.tenant, &fx.users, &"u2".into(), false).await,
        Err(StoreError::NotFound { .. })
    ));
    store
        .create(
            &fx.tenant,
            &fx.users,
            user_request("u2", simple_user("other"), t0),
        )
        .await
        .unwrap();
    let taken = store
        .update(
            &fx.tenant,
            &fx.users,
            &"u2".into(),
            replace_request(simple_user("BJENSEN"), None, t0),
        )
        .await;
    assert!(
        matches!(taken, Err(StoreError::Conflict { .. })),
        "{taken:?}"
    );
    // Keeping one's own value is no conflict; renaming frees the old value.
    store
        .update(
            &fx.tenant,
            &fx.users,
            &"u1".into(),
            replace_request(simple_user("bjensen"), None, t0),
        )
        .await
        .expect("own value");
    store
        .update(
            &fx.tenant,
            &fx.users,
            &"u1".into(),
            replace_request(simple_user("barbara"), None, t0),
        )
        .await
        .expect("rename");
    store
        .create(
            &fx.tenant,
            &fx.users,
            user_request("u3", simple_user("bjensen"), t0),
        )
        .await
        .expect("the old name is free again");
    store
        .delete(&fx.tenant, &fx.users, &"u3".into(), None, t0)
        .await
        .unwrap();
    store
        .create(
            &fx.tenant,
            &fx.users,
            user_request("u4", simple_user("bjensen"), t0),
        )
        .await
        .expect("a deleted user's name is free");
    // Same value, other type or other tenant: no clash.
    store
        .create(
            &fx.tenant,
            &fx.groups,
            group_request("g1", "bjensen", &[], t0),
        )
        .await
        .expect("keys are per resource type");
    store
        .create(
            &fx.other,
            &fx.users,
            user_request("u1", simple_user("bjensen"), t0),
        )
        .await
        .expect("keys and ids are per tenant");
    let gdup = store
        .create(
            &fx.tenant,
            &fx.groups,
            group_request("g2", "BJensen", &[], t0),
        )
        .await;
    assert!(
        matches!(&gdup, Err(StoreError::Conflict { attribute }) if attribute == "displayName"),
        "{gdup:?}"
    );
}

/// Creates users `u00000`.. from [`generated_user`], one second apart from [`base_time`].
pub async fn load_users(store: &dyn ResourceStore, fx: &Fixture, tenant: &TenantId, n: usize) {
    for i in 0..n {
        let now = base_time() + Duration::seconds(i as i64);
        store
            .create(
                tenant,
                &fx.users,
                user_request(&format!("u{i:05}"), generated_user(i), now),
            )
            .await
            .expect("load user");
    }
}

/// `totalResults` is exact; startIndex/count edge cases.
pub async fn check_paging(store: &dyn ResourceStore, fx: &Fixture) {
    load_users(store, fx, &fx.tenant, 25).await;
    let q = |start: usize, count: usize| ListQuery {
        start_index: start,
        count,
        ..ListQuery::default()
    };
    let all = list_exact(store, &fx.tenant, &fx.users, &q(1, 1000)).await;
    assert_eq!(all.total_results, 25);
    assert_eq!(all.resources.len(), 25);
    let all_ids = ids(&all.resources);
    assert_eq!(
        all_ids.iter().collect::<BTreeSet<_>>().len(),
        25,
        "no duplicates"
    );
    for (start, count, want) in [
        (1, 10, 0..10),
        (11, 10, 10..20),
        (21, 10, 20..25),
        (0, 5, 0..5), // below 1 counts as 1 (RFC 7644 §3.4.2.4)
        (25, 5, 24..25),
        (26, 5, 25..25), // past the end: empty, total still exact
        (1000, 5, 25..25),
        (3, 0, 2..2), // count 0: only totalResults
    ] {
        let p = list_exact(store, &fx.tenant, &fx.users, &q(start, count)).await;
        assert_eq!(p.total_results, 25, "total for start {start} count {count}");
        assert_eq!(
            ids(&p.resources),
            all_ids[want.clone()].to_vec(),
            "page start {start} count {count} (unsorted lists have a stable order)"
        );
    }
    let filtered = list_exact(
        store,
        &fx.tenant,
        &fx.users,
        &ListQuery {
            filter: Some(Filter::parse(r#"userName sw "USER1""#).unwrap()),
            start_index: 2,
            count: 3,
            ..ListQuery::default()
        },
    )
    .await;
    // user1, user10..user19 → 11 matches
    assert_eq!(filtered.total_results, 11);
    assert_eq!(filtered.resources.len(), 3);
}

/// sortBy/sortOrder: the engine's order, missing values last in both orders.
pub async fn check_sorting(store: &dyn ResourceStore, fx: &Fixture) {
    load_users(store, fx, &fx.tenant, 40).await;
    for by in [
        "userName",
        "title",
        "name.familyName",
        "meta.created",
        "emails",
    ] {
        for order in [SortOrder::Ascending, SortOrder::Descending] {
            let spec = SortSpec {
                by: AttrPath::parse(by).unwrap(),
                order,
            };
            let q = ListQuery {
                sort: Some(spec.clone()),
                ..ListQuery::default()
            };
            let p = list_exact(store, &fx.tenant, &fx.users, &q).await;
            assert_eq!(p.resources.len(), 40);
            assert_sorted(&fx.users, &spec, &p.resources, by);
        }
    }
    // userName is unique, so its order is total: pages must be slices of the whole.
    let spec = SortSpec {
        by: AttrPath::new("userName"),
        order: SortOrder::Descending,
    };
    let whole = list_exact(
        store,
        &fx.tenant,
        &fx.users,
        &ListQuery {
            sort: Some(spec.clone()),
            ..ListQuery::default()
        },
    )
    .await;
    let page = list_exact(
        store,
        &fx.tenant,
        &fx.users,
        &ListQuery {
            sort: Some(spec),
            start_index: 5,
            count: 7,
            ..ListQuery::default()
        },
    )
    .await;
    assert_eq!(ids(&page.resources), ids(&whole.resources)[4..11].to_vec());
}

fn assert_sorted(rt: &ResourceDef, spec: &SortSpec, resources: &[StoredResource], what: &str) {
    let views: Vec<Value> = resources.iter().map(view_document).collect();
    for w in views.windows(2) {
        assert_ne!(
            compare_resources(rt, spec, &w[0], &w[1]),
            std::cmp::Ordering::Greater,
            "not sorted by {what} {:?}: {} before {}",
            spec.order,
            w[0]["id"],
            w[1]["id"]
        );
    }
}

/// Nothing of one tenant is visible, writable or deletable from another.
pub async fn check_tenant_isolation(store: &dyn ResourceStore, fx: &Fixture) {
    let t0 = base_time();
    let (a, b) = (&fx.tenant, &fx.other);
    store
        .create(a, &fx.users, user_request("ua", simple_user("alice"), t0))
        .await
        .unwrap();
    store
        .create(a, &fx.groups, group_request("ga", "Admins", &["ua"], t0))
        .await
        .unwrap();
    store
        .create(b, &fx.users, user_request("ub", simple_user("bob"), t0))
        .await
        .unwrap();
    store
        .create(b, &fx.groups, group_request("gb", "Admins", &[], t0))
        .await
        .unwrap();
    let nf = |r: &Result<_, StoreError>| matches!(r, Err(StoreError::NotFound { .. }));
    assert!(nf(&store
        .get(b, &fx.users, &"ua".into(), false)
        .await
        .map(|_| ())));
    assert!(nf(&store
        .update(
            b,
            &fx.users,
            &"ua".into(),
            replace_request(simple_user("x"), None, t0)
        )
        .await
        .map(|_| ())));
    assert!(nf(&store
        .delete(b, &fx.users, &"ua".into(), None, t0)
        .await));
    assert!(nf(&store
        .members(b, &fx.groups, &"ga".into(), 1, 10)
        .await
        .map(|_| ())));
    assert!(store.groups_of(b, &"ua".into()).await.unwrap().is_empty());
    // A member from another tenant does not exist here.
    let cross = store
        .update(b, &fx.groups, &"gb".into(), delta_request(add(&["ua"]), t0))
        .await;
    assert!(
        matches!(&cross, Err(StoreError::InvalidMember(id)) if id.as_str() == "ua"),
        "{cross:?}"
    );
    for f in [None, Some(r#"userName eq "alice""#), Some(r#"id eq "ua""#)] {
        let q = ListQuery {
            filter: f.map(|f| Filter::parse(f).unwrap()),
            ..ListQuery::default()
        };
        let p = list_exact(store, b, &fx.users, &q).await;
        assert!(
            !ids(&p.resources).contains(&"ua".to_string()),
            "tenant B sees A's user with {f:?}"
        );
    }
    let pb = list_exact(store, b, &fx.users, &ListQuery::default()).await;
    assert_eq!(ids(&pb.resources), ["ub"]);
    let feed_b = store.changes_since(b, 0, 100).await.unwrap();
    assert!(feed_b
        .iter()
        .all(|c| &c.tenant == b && c.id.as_str() != "ua"));
    assert_eq!(feed_b.len(), 2);
    // A is untouched.
    let ga = store.get(a, &fx.groups, &"ga".into(), true).await.unwrap();
    assert_eq!(ga.version, Version::INITIAL);
    assert_eq!(ga.members.unwrap().len(), 1);
}

/// Membership deltas: add, idempotent add, remove by value list, clear, invalid members,
/// `display`, paging of members, groups of a member.
pub async fn check_membership(store: &dyn ResourceStore, fx: &Fixture) {
    let t0 = base_time();
    let tn = &fx.tenant;
    for (id, name) in [("u1", "alice"), ("u2", "bob"), ("u3", "carol")] {
        store
            .create(tn, &fx.users, user_request(id, simple_user(name), t0))
            .await
            .unwrap();
    }
    let mut doc = simple_user("dave");
    doc["displayName"] = json!("Dave D.");
    store
        .create(tn, &fx.users, user_request("u4", doc, t0))
        .await
        .unwrap();
    store
        .create(
            tn,
            &fx.groups,
            group_request("g1", "Engineering", &["u1"], t0),
        )
        .await
        .unwrap();
    store
        .create(tn, &fx.groups, group_request("g2", "Everyone", &[], t0))
        .await
        .unwrap();

    let g = store
        .update(
            tn,
            &fx.groups,
            &"g1".into(),
            delta_request(add(&["u2", "u4"]), t0),
        )
        .await
        .unwrap();
    assert_eq!(g.version, Version::new(2), "one delta, one bump");
    let page = store
        .members(tn, &fx.groups, &"g1".into(), 1, 10)
        .await
        .unwrap();
    assert_eq!(page.total_results, 3);
    let got: Vec<(String, String, Option<String>)> = page
        .members
        .iter()
        .map(|m| {
            (
                m.value.to_string(),
                m.resource_type.clone(),
                m.display.clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("u1".into(), "User".into(), Some("alice".into())),
            ("u2".into(), "User".into(), Some("bob".into())),
            ("u4".into(), "User".into(), Some("Dave D.".into())),
        ],
        "members ordered by id; display is displayName, else userName"
    );
    let p2 = store
        .members(tn, &fx.groups, &"g1".into(), 2, 1)
        .await
        .unwrap();
    assert_eq!(p2.members.len(), 1);
    assert_eq!(p2.members[0].value.as_str(), "u2");
    let p3 = store
        .members(tn, &fx.groups, &"g1".into(), 9, 5)
        .await
        .unwrap();
    assert!(p3.members.is_empty());
    assert_eq!(p3.total_results, 3);

    // `display` follows the member's current name.
    let mut renamed = simple_user("dave");
    renamed["displayName"] = json!("David Dee");
    store
        .update(
            tn,
            &fx.users,
            &"u4".into(),
            replace_request(renamed, None, t0),
        )
        .await
        .unwrap();
    let p4 = store
        .members(tn, &fx.groups, &"g1".into(), 3, 1)
        .await
        .unwrap();
    assert_eq!(p4.members[0].display.as_deref(), Some("David Dee"));
    let g1 = store.get(tn, &fx.groups, &"g1".into(), true).await.unwrap();
    assert_eq!(
        g1.version,
        Version::new(2),
        "renaming a member does not bump the group"
    );
    assert_eq!(g1.members.unwrap()[2].display.as_deref(), Some("David Dee"));

    // Idempotent add: nothing changes.
    let same = store
        .update(
            tn,
            &fx.groups,
            &"g1".into(),
            delta_request(add(&["u2"]), t0),
        )
        .await
        .unwrap();
    assert_eq!(
        same.version,
        Version::new(2),
        "re-adding a member is a no-op"
    );

    // Invalid member: nothing changes, not even the valid part.
    let bad = store
        .update(
            tn,
            &fx.groups,
            &"g1".into(),
            delta_request(add(&["u3", "ghost"]), t0),
        )
        .await;
    assert!(
        matches!(&bad, Err(StoreError::InvalidMember(id)) if id.as_str() == "ghost"),
        "{bad:?}"
    );
    let wrong_type = MembershipDelta {
        add: vec![MemberRef {
            value: "u3".into(),
            resource_type: Some("Group".into()),
        }],
        ..MembershipDelta::default()
    };
    let bad = store
        .update(tn, &fx.groups, &"g1".into(), delta_request(wrong_type, t0))
        .await;
    assert!(matches!(bad, Err(StoreError::InvalidMember(_))), "{bad:?}");
    let after = store.get(tn, &fx.groups, &"g1".into(), true).await.unwrap();
    assert_eq!(after.version, Version::new(2));
    assert_eq!(after.members.unwrap().len(), 3);

    // Nested group member with its type.
    let nested = MembershipDelta {
        add: vec![MemberRef {
            value: "g1".into(),
            resource_type: Some("group".into()),
        }],
        ..MembershipDelta::default()
    };
    store
        .update(tn, &fx.groups, &"g2".into(), delta_request(nested, t0))
        .await
        .expect("a group can be a member");
    let m = store
        .members(tn, &fx.groups, &"g2".into(), 1, 10)
        .await
        .unwrap();
    assert_eq!(m.members[0].resource_type, "Group");
    assert_eq!(m.members[0].display.as_deref(), Some("Engineering"));

    // groups_of
    store
        .update(
            tn,
            &fx.groups,
            &"g2".into(),
            delta_request(add(&["u1"]), t0),
        )
        .await
        .unwrap();
    let gs = store.groups_of(tn, &"u1".into()).await.unwrap();
    let gs: Vec<(String, Option<String>)> = gs
        .iter()
        .map(|g| (g.id.to_string(), g.display.clone()))
        .collect();
    assert_eq!(
        gs,
        vec![
            ("g1".into(), Some("Engineering".into())),
            ("g2".into(), Some("Everyone".into()))
        ]
    );
    assert!(store.groups_of(tn, &"u3".into()).await.unwrap().is_empty());

    // Entra's removal with a value list, combined with a document change: one bump.
    let v = store
        .get(tn, &fx.groups, &"g1".into(), false)
        .await
        .unwrap()
        .version;
    let both = UpdateRequest {
        expected_version: Some(v),
        document: Some(NewDocument {
            doc: json!({"schemas": [GROUP_SCHEMA], "displayName": "Eng"}),
            unique_keys: vec![UniqueKey::new("displayName", "eng")],
        }),
        members: Some(MembershipDelta {
            remove: vec!["u1".into(), "u4".into(), "never-a-member".into()],
            ..MembershipDelta::default()
        }),
        kind: UpdateKind::Patch,
        now: t0,
    };
    let g = store
        .update(tn, &fx.groups, &"g1".into(), both)
        .await
        .unwrap();
    assert_eq!(g.version, v.next());
    let m = store.get(tn, &fx.groups, &"g1".into(), true).await.unwrap();
    assert_eq!(ids_of_members(&m), ["u2"]);
    assert_eq!(m.doc["displayName"], "Eng");
    assert_eq!(store.groups_of(tn, &"u1".into()).await.unwrap().len(), 1);
    let gs = store.groups_of(tn, &"u1".into()).await.unwrap();
    assert_eq!(gs[0].id.as_str(), "g2");

    // Replace all members (clear + add); a member both kept and re-added stays once.
    let replace_all = MembershipDelta {
        clear: true,
        add: vec![
            MemberRef::new("u3"),
            MemberRef::new("u2"),
            MemberRef::new("u3"),
        ],
        remove: Vec::new(),
        unknown: UnknownMembers::Reject,
    };
    store
        .update(tn, &fx.groups, &"g1".into(), delta_request(replace_all, t0))
        .await
        .unwrap();
    let m = store.get(tn, &fx.groups, &"g1".into(), true).await.unwrap();
    assert_eq!(ids_of_members(&m), ["u2", "u3"]);
    let clear = MembershipDelta {
        clear: true,
        ..MembershipDelta::default()
    };
    store
        .update(tn, &fx.groups, &"g1".into(), delta_request(clear, t0))
        .await
        .unwrap();
    let m = store.get(tn, &fx.groups, &"g1".into(), true).await.unwrap();
    assert!(ids_of_members(&m).is_empty());
    assert!(store.groups_of(tn, &"u3".into()).await.unwrap().is_empty());
    // A group cannot contain itself.
    let selfish = store
        .update(
            tn,
            &fx.groups,
            &"g1".into(),
            delta_request(add(&["g1"]), t0),
        )
        .await;
    assert!(matches!(selfish, Err(StoreError::InvalidMember(_))));
    // Get without members leaves them out.
    assert!(store
        .get(tn, &fx.groups, &"g2".into(), false)
        .await
        .unwrap()
        .members
        .is_none());
}

fn ids_of_members(r: &StoredResource) -> Vec<String> {
    r.members
        .as_ref()
        .map(|m| m.iter().map(|m| m.value.to_string()).collect())
        .unwrap_or_default()
}

/// Adding one member to a 10,000-member group, then removing it.
pub async fn check_large_group(store: &dyn ResourceStore, fx: &Fixture) {
    let t0 = base_time();
    let tn = &fx.tenant;
    let n = 10_000;
    for i in 0..=n {
        store
            .create(
                tn,
                &fx.users,
                user_request(&format!("m{i:05}"), simple_user(&format!("m{i}")), t0),
            )
            .await
            .unwrap();
    }
    let ids: Vec<String> = (0..n).map(|i| format!("m{i:05}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    store
        .create(tn, &fx.groups, group_request("big", "Big", &refs, t0))
        .await
        .unwrap();
    let seq_before = store.changes_since(tn, 0, usize::MAX).await.unwrap().len();
    let extra = format!("m{n:05}");
    let g = store
        .update(
            tn,
            &fx.groups,
            &"big".into(),
            delta_request(add(&[&extra]), t0),
        )
        .await
        .unwrap();
    assert_eq!(g.version, Version::new(2));
    let page = store
        .members(tn, &fx.groups, &"big".into(), 10_001, 10)
        .await
        .unwrap();
    assert_eq!(page.total_results, 10_001);
    assert_eq!(page.members.len(), 1);
    assert_eq!(page.members[0].value.as_str(), extra);
    let feed = store.changes_since(tn, 0, usize::MAX).await.unwrap();
    assert_eq!(feed.len(), seq_before + 1);
    let last = feed.last().unwrap();
    assert_eq!(
        (last.id.as_str(), last.kind),
        ("big", ChangeKind::MembershipChanged)
    );
    let remove = MembershipDelta {
        remove: vec![extra.as_str().into(), "m00000".into()],
        ..MembershipDelta::default()
    };
    store
        .update(tn, &fx.groups, &"big".into(), delta_request(remove, t0))
        .await
        .unwrap();
    let page = store
        .members(tn, &fx.groups, &"big".into(), 1, 1)
        .await
        .unwrap();
    assert_eq!(page.total_results, 9_999);
    assert_eq!(page.members[0].value.as_str(), "m00001");
}

/// Deleting a user removes it from every group (bumping and recording each); deleting a group
/// removes its memberships.
pub async fn check_delete_cleans_memberships(store: &dyn ResourceStore, fx: &Fixture) {
    let t0 = base_time();
    let t1 = t0 + Duration::seconds(5);
    let tn = &fx.tenant;
    for id in ["u1", "u2"] {
        store
            .create(tn, &fx.users, user_request(id, simple_user(id), t0))
            .await
            .unwrap();
    }
    store
        .create(
            tn,
            &fx.groups,
            group_request("g1", "One", &["u1", "u2"], t0),
        )
        .await
        .unwrap();
    store
        .create(
            tn,
            &fx.groups,
            group_request("g2", "Two", &["u1", "g1"], t0),
        )
        .await
        .unwrap();
    let seq = store
        .changes_since(tn, 0, 100)
        .await
        .unwrap()
        .last()
        .unwrap()
        .seq;
    store
        .delete(tn, &fx.users, &"u1".into(), None, t1)
        .await
        .unwrap();
    for (g, left) in [("g1", vec!["u2"]), ("g2", vec!["g1"])] {
        let r = store.get(tn, &fx.groups, &g.into(), true).await.unwrap();
        assert_eq!(ids_of_members(&r), left, "{g} after deleting u1");
        assert_eq!(r.version, Version::new(2), "{g} was bumped");
        assert_eq!(r.last_modified, t1);
    }
    let changes = store.changes_since(tn, seq, 100).await.unwrap();
    let got: HashSet<(String, ChangeKind)> =
        changes.iter().map(|c| (c.id.to_string(), c.kind)).collect();
    let want: HashSet<(String, ChangeKind)> = [
        ("u1".to_string(), ChangeKind::Deleted),
        ("g1".to_string(), ChangeKind::MembershipChanged),
        ("g2".to_string(), ChangeKind::MembershipChanged),
    ]
    .into_iter()
    .collect();
    assert_eq!(got, want);
    assert_eq!(changes.len(), 3);
    // Deleting a group: it leaves g2, and its members have no groups left.
    store
        .delete(tn, &fx.groups, &"g1".into(), None, t1)
        .await
        .unwrap();
    assert!(store.groups_of(tn, &"u2".into()).await.unwrap().is_empty());
    let g2 = store.get(tn, &fx.groups, &"g2".into(), true).await.unwrap();
    assert!(ids_of_members(&g2).is_empty());
    assert_eq!(g2.version, Version::new(3));
    // A deleted member id can't be added back.
    let r = store
        .update(
            tn,
            &fx.groups,
            &"g2".into(),
            delta_request(add(&["u1"]), t1),
        )
        .await;
    assert!(matches!(r, Err(StoreError::InvalidMember(_))));
}

/// Every committed write appears once, in order, with its kind and version.
pub async fn check_change_feed(store: &dyn ResourceStore, fx: &Fixture) {
    let tn = &fx.tenant;
    let t = |s: i64| base_time() + Duration::seconds(s);
    assert!(store.changes_since(tn, 0, 10).await.unwrap().is_empty());
    store
        .create(tn, &fx.users, user_request("u1", simple_user("a"), t(1)))
        .await
        .unwrap();
    store
        .create(tn, &fx.groups, group_request("g1", "G", &[], t(2)))
        .await
        .unwrap();
    store
        .update(
            tn,
            &fx.users,
            &"u1".into(),
            replace_request(simple_user("b"), None, t(3)),
        )
        .await
        .unwrap();
    let mut patch = replace_request(simple_user("c"), None, t(4));
    patch.kind = UpdateKind::Patch;
    store
        .update(tn, &fx.users, &"u1".into(), patch)
        .await
        .unwrap();
    store
        .update(
            tn,
            &fx.groups,
            &"g1".into(),
            delta_request(add(&["u1"]), t(5)),
        )
        .await
        .unwrap();
    // Failed writes record nothing.
    let _ = store
        .create(tn, &fx.users, user_request("u2", simple_user("C"), t(6)))
        .await
        .unwrap_err();
    let _ = store
        .update(
            tn,
            &fx.groups,
            &"g1".into(),
            delta_request(add(&["zz"]), t(6)),
        )
        .await
        .unwrap_err();
    store
        .delete(tn, &fx.groups, &"g1".into(), Some(Version::new(2)), t(7))
        .await
        .unwrap();

    let all = store.changes_since(tn, 0, 100).await.unwrap();
    let got: Vec<(&str, ChangeKind, u64, DateTime<Utc>, &str)> = all
        .iter()
        .map(|c| {
            (
                c.id.as_str(),
                c.kind,
                c.version.get(),
                c.at,
                c.resource_type.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("u1", ChangeKind::Created, 1, t(1), "User"),
            ("g1", ChangeKind::Created, 1, t(2), "Group"),
            ("u1", ChangeKind::Replaced, 2, t(3), "User"),
            ("u1", ChangeKind::Patched, 3, t(4), "User"),
            ("g1", ChangeKind::MembershipChanged, 2, t(5), "Group"),
            ("g1", ChangeKind::Deleted, 3, t(7), "Group"),
        ]
    );
    for w in all.windows(2) {
        assert!(w[0].seq < w[1].seq, "seq strictly increasing");
    }
    assert!(all.iter().all(|c| &c.tenant == tn));
    // Resuming from any position returns exactly the rest; `limit` caps.
    for (i, c) in all.iter().enumerate() {
        let rest = store.changes_since(tn, c.seq, 100).await.unwrap();
        assert_eq!(rest, all[i + 1..].to_vec());
    }
    let two = store.changes_since(tn, all[1].seq, 2).await.unwrap();
    assert_eq!(two, all[2..4].to_vec());
    assert!(store
        .changes_since(tn, all.last().unwrap().seq, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .changes_since(tn, u64::MAX, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store.changes_since(tn, 0, 0).await.unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------
// Filter equivalence corpus
// ---------------------------------------------------------------------------------------

const GIVEN: [&str; 12] = [
    "Barbara", "James", "Émile", "Zoë", "ann", "Olga", "Li", "Mary", "Jean-Luc", "Ørjan", "Tom",
    "Bjørn",
];
const FAMILY: [&str; 10] = [
    "Jensen", "Smith", "Müller", "O'Brien", "van Dijk", "Ng", "Garcia", "jones", "Stråle", "Doe",
];
const TITLES: [&str; 4] = ["Engineer", "Tour Guide", "VP Sales", "engineer"];
const DEPARTMENTS: [&str; 5] = ["Sales", "Engineering", "Support", "HR", "sales"];

/// User `i` of the generated population (deterministic). Attributes vary in presence, case
/// and type so that every operator is exercised.
pub fn generated_user(i: usize) -> Value {
    let given = GIVEN[i % GIVEN.len()];
    let family = FAMILY[(i / 3) % FAMILY.len()];
    let domain = if i.is_multiple_of(4) {
        "example.org"
    } else {
        "example.com"
    };
    let user_name = if i.is_multiple_of(7) {
        format!("USER{i}@{domain}")
    } else {
        format!("user{i}@{domain}")
    };
    let mut doc = json!({
        "schemas": [USER_SCHEMA],
        "userName": user_name,
        "name": {"givenName": given, "familyName": family, "formatted": format!("{given} {family}")},
        "displayName": format!("{given} {family}"),
        "active": !i.is_multiple_of(5),
        "emails": [
            {"value": format!("{}.{}{}@{domain}", given.to_lowercase(), family.to_lowercase(), i), "type": "work", "primary": i.is_multiple_of(2)},
        ],
        "locale": if i.is_multiple_of(3) { "en-US" } else { "de-DE" },
    });
    if i % 2 == 1 {
        doc["emails"]
            .as_array_mut()
            .unwrap()
            .push(json!({"value": format!("home{i}@mail.test"), "type": "home", "primary": true}));
    }
    if i % 3 != 2 {
        doc["externalId"] = json!(format!("ext-{i}"));
    }
    if i % 4 != 3 {
        doc["title"] = json!(TITLES[i % TITLES.len()]);
    }
    if i % 6 == 1 {
        doc["nickName"] = json!("");
    }
    if i % 10 < 7 {
        doc["phoneNumbers"] = json!([{"value": format!("+1-555-{:04}", i), "type": if i.is_multiple_of(2) {"work"} else {"mobile"}}]);
    }
    if i % 5 != 4 {
        doc["schemas"]
            .as_array_mut()
            .unwrap()
            .push(json!(ENTERPRISE_USER_SCHEMA));
        doc[ENTERPRISE_USER_SCHEMA] = json!({
            "employeeNumber": format!("{:04}", (i * 37) % 1000),
            "department": DEPARTMENTS[i % DEPARTMENTS.len()],
            "manager": {"value": format!("u{:05}", i / 10)},
        });
    }
    doc
}

/// The User filters of the equivalence corpus (over [`generated_user`]s `u00000`...),
/// with `{id:N}` standing for the id of user N.
pub fn user_filters() -> Vec<String> {
    let mut f: Vec<String> = Vec::new();
    for i in (0..500).step_by(23) {
        f.push(format!(r#"userName eq "user{i}@example.com""#));
        f.push(format!(r#"userName eq "USER{i}@EXAMPLE.COM""#));
        f.push(format!(r#"externalId eq "ext-{i}""#));
        f.push(format!(r#"id eq "u{i:05}""#));
    }
    f.push(r#"externalId eq "EXT-1""#.into()); // caseExact: no match
    f.push(r#"id eq "U00001""#.into()); // caseExact: no match
    f.push(r#"userName eq "nobody@example.com""#.into());
    for p in ["user1", "USER2", "user49", "user4", "u", "x", "user10@", ""] {
        f.push(format!(r#"userName sw "{p}""#));
    }
    for p in ["@example.org", "0@example.com", "7@EXAMPLE.COM"] {
        f.push(format!(r#"userName ew "{p}""#));
    }
    for p in ["12", "99@", "ORG"] {
        f.push(format!(r#"userName co "{p}""#));
    }
    for (a, b) in [(3, 250), (7, 49), (100, 101), (0, 499)] {
        f.push(format!(
            r#"userName eq "user{a}@example.com" or userName eq "user{b}@example.com""#
        ));
        f.push(format!(
            r#"userName eq "user{a}@example.com" and externalId eq "ext-{a}""#
        ));
        f.push(format!(
            r#"externalId eq "ext-{a}" or (userName sw "user{b}" and active eq true)"#
        ));
    }
    for g in GIVEN {
        f.push(format!(r#"name.givenName eq "{g}""#));
        f.push(format!(r#"name.givenName eq "{}""#, g.to_uppercase()));
    }
    for fam in FAMILY {
        f.push(format!(
            r#"name.familyName sw "{}""#,
            fam.get(..2).unwrap_or(fam)
        ));
    }
    for t in ["engineer", "Tour", "sales", "VP"] {
        f.push(format!(r#"title eq "{t}""#));
        f.push(format!(r#"title co "{t}""#));
        f.push(format!(r#"title ne "{t}""#));
    }
    f.extend(
        [
            "title pr",
            "not (title pr)",
            "title eq null",
            "title ne null",
            "nickName pr",
            "externalId pr",
            "active eq true",
            "active eq false",
            "active ne true",
            "not (active eq true)",
            r#"active eq "true""#,
            "emails pr",
            "phoneNumbers pr",
            r#"emails[type eq "home"]"#,
            r#"emails[type eq "work" and primary eq true]"#,
            r#"emails[type eq "work" and value ew "example.org"]"#,
            r#"emails[type eq "home" and value co "1"]"#,
            r#"emails.value co "smith""#,
            r#"emails.value ew "@mail.test""#,
            r#"emails.type eq "home""#,
            r#"emails eq "home1@mail.test""#,
            r#"emails[value sw "barbara"] or emails[value sw "zo"]"#,
            r#"phoneNumbers[type eq "mobile"]"#,
            r#"phoneNumbers.value sw "+1-555-01""#,
            r#"locale eq "en-us""#,
            r#"locale ne "de-DE" and active eq false"#,
            r#"userName gt "user4""#,
            r#"userName ge "user48@example.com""#,
            r#"userName lt "user1""#,
            r#"userName le "USER105@example.com""#,
            r#"name.familyName gt "M""#,
            r#"name.familyName lt "d""#,
            r#"title gt "T""#,
            r#"meta.created gt "2026-01-01T00:05:00Z""#,
            r#"meta.created ge "2026-01-01T00:05:00Z""#,
            r#"meta.created lt "2026-01-01T00:00:10Z""#,
            r#"meta.lastModified le "2026-01-01T00:00:03Z""#,
            r#"meta.resourceType eq "User""#,
            r#"meta.version eq "W/\"1\"""#,
            r#"id sw "u001""#,
            r#"id gt "u00490""#,
            r#"id ne "u00003""#,
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "sales""#,
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "Engineering" and active eq true"#,
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber gt "0900""#,
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber pr"#,
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "u00003""#,
            r#"not (urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department pr)"#,
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "user3""#,
            r#"name.formatted co "ø""#,
            r#"name.givenName eq "ÉMILE""#,
            r#"name.givenName eq "zoë""#,
            r#"displayName co "jensen""#,
            r#"not (userName sw "user1") and not (userName sw "user2") and title eq "engineer""#,
            r#"(title eq "Engineer" or title eq "VP Sales") and (active eq false or locale eq "en-US")"#,
            r#"userName sw "user1" and (externalId eq "ext-10" or externalId eq "ext-100" or externalId eq "ext-101")"#,
            r#"userName eq "user5@example.com" or userName eq "user6@example.com" or userName eq "user8@example.com""#,
            r#"userName eq "user5@example.com" and userName eq "user6@example.com""#,
            r#"externalId eq "ext-4" or title pr"#,
            r#"not (not (active eq true))"#,
            r#"groups pr"#,
            r#"unknownAttribute eq "x""#,
            r#"unknownAttribute ne "x""#,
        ]
        .map(String::from),
    );
    f
}

/// The Group filters of the equivalence corpus, naming members among `user_ids`.
pub fn group_filters(user_ids: &[String]) -> Vec<String> {
    let mut f: Vec<String> = Vec::new();
    for i in (0..50).step_by(4) {
        f.push(format!(r#"displayName eq "Group {i}""#));
        f.push(format!(r#"displayName eq "GROUP {i}""#));
    }
    for id in user_ids.iter().step_by(45) {
        f.push(format!(r#"members.value eq "{id}""#));
        f.push(format!(r#"members[value eq "{id}"]"#));
        f.push(format!(r#"members[value eq "{}"]"#, id.to_uppercase()));
    }
    f.extend(
        [
            r#"displayName sw "group 1""#,
            r#"displayName co "2""#,
            r#"displayName eq "Group 3" or displayName eq "Group 30""#,
            r#"displayName eq "Group 3" and members pr"#,
            "members pr",
            "not (members pr)",
            r#"members.type eq "Group""#,
            r#"members[type eq "User" and value eq "u00001"]"#,
            r#"externalId pr"#,
            r#"externalId eq "gext-7""#,
            r#"members.display sw "user1""#,
            r#"meta.lastModified gt "2026-01-01T01:00:00Z""#,
        ]
        .map(String::from),
    );
    f
}

/// The filter equivalence corpus: over 500 generated users and 50 groups, each of more than
/// 200 filters returns exactly what the engine's evaluator returns (the same set; under a
/// `sortBy`, the engine's order; pages are slices of it).
pub async fn check_filter_equivalence(store: &dyn ResourceStore, fx: &Fixture) {
    let tn = &fx.tenant;
    load_users(store, fx, tn, 500).await;
    let user_ids: Vec<String> = (0..500).map(|i| format!("u{i:05}")).collect();
    for g in 0..50usize {
        let members: Vec<&str> = user_ids
            .iter()
            .enumerate()
            .filter(|(i, _)| g > 0 && (i % 50 == g || i % (g + 7) == 0))
            .map(|(_, id)| id.as_str())
            .collect();
        let mut req = group_request(
            &format!("g{g:03}"),
            &format!("Group {g}"),
            &members,
            base_time() + Duration::minutes(g as i64),
        );
        if g % 3 == 0 {
            req.doc["externalId"] = json!(format!("gext-{g}"));
        }
        store.create(tn, &fx.groups, req).await.unwrap();
    }
    // Nested: group 1 contains group 2.
    store
        .update(
            tn,
            &fx.groups,
            &"g001".into(),
            delta_request(add(&["g002"]), base_time() + Duration::hours(2)),
        )
        .await
        .unwrap();

    let mut checked = 0usize;
    for (rt, filters) in [
        (&fx.users, user_filters()),
        (&fx.groups, group_filters(&user_ids)),
    ] {
        // Everything, with members, as the evaluator's input.
        let everything = list_exact(
            store,
            tn,
            rt,
            &ListQuery {
                include_members: true,
                ..ListQuery::default()
            },
        )
        .await;
        let want_total = if rt.name() == "User" { 500 } else { 50 };
        assert_eq!(everything.total_results, want_total);
        let views: Vec<(String, Value)> = everything
            .resources
            .iter()
            .map(|r| (r.id.to_string(), view_document(r)))
            .collect();
        let sorts: Vec<SortSpec> = if rt.name() == "User" {
            [
                "userName",
                "name.familyName",
                "title",
                "meta.created",
                "externalId",
                "userName",
            ]
        } else {
            [
                "displayName",
                "externalId",
                "meta.created",
                "id",
                "displayName",
                "displayName",
            ]
        }
        .iter()
        .enumerate()
        .map(|(i, by)| SortSpec {
            by: AttrPath::parse(by).unwrap(),
            order: if i % 2 == 0 {
                SortOrder::Ascending
            } else {
                SortOrder::Descending
            },
        })
        .collect();
        for (n, text) in filters.iter().enumerate() {
            let filter = Filter::parse(text).unwrap_or_else(|e| panic!("corpus `{text}`: {e}"));
            let compiled = filter.compile(rt, false).unwrap();
            let expected: BTreeSet<&str> = views
                .iter()
                .filter(|(_, v)| compiled.matches(v))
                .map(|(id, _)| id.as_str())
                .collect();
            let q = ListQuery {
                filter: Some(filter.clone()),
                ..ListQuery::default()
            };
            let page = list_exact(store, tn, rt, &q).await;
            let got: BTreeSet<&str> = page.resources.iter().map(|r| r.id.as_str()).collect();
            assert_eq!(
                got,
                expected,
                "{} filter `{text}`: store and evaluator disagree",
                rt.name()
            );
            assert_eq!(page.total_results, expected.len(), "`{text}` totalResults");
            assert_eq!(page.resources.len(), expected.len(), "`{text}` duplicates");

            // Sorted, whole and paged.
            let spec = &sorts[n % sorts.len()];
            let sq = ListQuery {
                filter: Some(filter.clone()),
                sort: Some(spec.clone()),
                ..ListQuery::default()
            };
            let sorted = list_exact(store, tn, rt, &sq).await;
            let got: BTreeSet<&str> = sorted.resources.iter().map(|r| r.id.as_str()).collect();
            assert_eq!(got, expected, "`{text}` sorted by {:?}", spec.by);
            assert_sorted(rt, spec, &sorted.resources, text);
            let total_order = ["userName", "meta.created", "id"]
                .iter()
                .any(|a| spec.by.name.eq_ignore_ascii_case(a));
            if total_order {
                let paged = list_exact(
                    store,
                    tn,
                    rt,
                    &ListQuery {
                        start_index: 3,
                        count: 4,
                        ..sq.clone()
                    },
                )
                .await;
                let all_ids = ids(&sorted.resources);
                let want: Vec<String> = all_ids.iter().skip(2).take(4).cloned().collect();
                assert_eq!(
                    ids(&paged.resources),
                    want,
                    "`{text}` page 3..7 by {:?}",
                    spec.by
                );
                assert_eq!(paged.total_results, expected.len());
            }
            checked += 1;
        }
    }
    assert!(checked >= 200, "the corpus has only {checked} filters");
}

// ---------------------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------------------

/// 16 tasks each add a different member to the same group at once: every member is present,
/// with one version bump and one change record each.
pub async fn check_concurrent_member_adds(
    store: Arc<dyn ResourceStore>,
    fx: &Fixture,
    spawner: &impl Spawner,
) {
    let t0 = base_time();
    let tn = fx.tenant.clone();
    for i in 0..16 {
        store
            .create(
                &tn,
                &fx.users,
                user_request(&format!("c{i:02}"), simple_user(&format!("c{i}")), t0),
            )
            .await
            .unwrap();
    }
    store
        .create(&tn, &fx.groups, group_request("g", "G", &[], t0))
        .await
        .unwrap();
    let seq = store
        .changes_since(&tn, 0, 1000)
        .await
        .unwrap()
        .last()
        .unwrap()
        .seq;
    let mut joins = Vec::new();
    for i in 0..16 {
        let (store, tn, groups) = (Arc::clone(&store), tn.clone(), Arc::clone(&fx.groups));
        joins.push(spawner.spawn(Box::pin(async move {
            let id = format!("c{i:02}");
            store
                .update(&tn, &groups, &"g".into(), delta_request(add(&[&id]), t0))
                .await
                .expect("concurrent add");
        })));
    }
    for j in joins {
        j.await;
    }
    let g = store.get(&tn, &fx.groups, &"g".into(), true).await.unwrap();
    assert_eq!(ids_of_members(&g).len(), 16, "a concurrent add was lost");
    assert_eq!(g.version, Version::new(17));
    let changes = store.changes_since(&tn, seq, 1000).await.unwrap();
    assert_eq!(changes.len(), 16);
    let versions: BTreeSet<u64> = changes.iter().map(|c| c.version.get()).collect();
    assert_eq!(versions, (2..=17).collect(), "each add has its own version");
}

/// Members to add that cannot be members (5,000 unknown ids, an id of another type than
/// claimed, the group itself): under [`UnknownMembers::Reject`] the first fails the write
/// and nothing changes; under `Skip` the rest is applied and the skipped ids are reported,
/// each once, in request order. The same for initial members of a create.
pub async fn check_unknown_members(store: &dyn ResourceStore, fx: &Fixture) {
    let t0 = base_time();
    let tn = &fx.tenant;
    for id in ["k1", "k2", "k3", "k4"] {
        store
            .create(tn, &fx.users, user_request(id, simple_user(id), t0))
            .await
            .unwrap();
    }
    store
        .create(tn, &fx.groups, group_request("g", "G", &["k1"], t0))
        .await
        .unwrap();
    let unknown: Vec<String> = (0..5000).map(|i| format!("missing-{i:04}")).collect();
    let mut add = vec![MemberRef::new("k2")];
    add.extend(unknown.iter().map(|id| MemberRef::new(id.as_str())));
    add.push(MemberRef::new("missing-0000")); // a repeat
    add.push(MemberRef {
        value: "k3".into(),
        resource_type: Some("Group".into()),
    });
    add.push(MemberRef::new("g")); // the group itself
    add.push(MemberRef {
        value: "k4".into(),
        resource_type: Some("user".into()), // the claimed type is compared case-insensitively
    });
    let feed_before = store.changes_since(tn, 0, usize::MAX).await.unwrap().len();
    let delta = |unknown| MembershipDelta {
        add: add.clone(),
        remove: vec!["k1".into()],
        unknown,
        ..MembershipDelta::default()
    };
    let rejected = store
        .update(
            tn,
            &fx.groups,
            &"g".into(),
            delta_request(delta(UnknownMembers::Reject), t0),
        )
        .await;
    assert!(
        matches!(&rejected, Err(StoreError::InvalidMember(id)) if id.as_str() == "missing-0000"),
        "the first unknown id in request order: {rejected:?}"
    );
    let g = store.get(tn, &fx.groups, &"g".into(), true).await.unwrap();
    assert_eq!(
        ids_of_members(&g),
        ["k1"],
        "a rejected delta changed nothing"
    );
    assert_eq!(g.version, Version::INITIAL);
    let feed = store.changes_since(tn, 0, usize::MAX).await.unwrap();
    assert_eq!(feed.len(), feed_before, "a rejected delta records nothing");

    let applied = store
        .update(
            tn,
            &fx.groups,
            &"g".into(),
            delta_request(delta(UnknownMembers::Skip), t0),
        )
        .await
        .expect("unknown ids are skipped");
    let mut expected_skipped: Vec<ResourceId> = unknown
        .iter()
        .map(|id| ResourceId::new(id.as_str()))
        .collect();
    expected_skipped.push("k3".into());
    expected_skipped.push("g".into());
    assert_eq!(applied.skipped_members, expected_skipped);
    assert_eq!(applied.version, Version::new(2));
    assert!(
        applied.members.is_none(),
        "a delta does not read the members back"
    );
    let g = store.get(tn, &fx.groups, &"g".into(), true).await.unwrap();
    assert_eq!(ids_of_members(&g), ["k2", "k4"]);

    // A delta naming only unknown ids changes nothing, and says so.
    let only_unknown = MembershipDelta {
        add: vec![MemberRef::new("nobody")],
        unknown: UnknownMembers::Skip,
        ..MembershipDelta::default()
    };
    let same = store
        .update(tn, &fx.groups, &"g".into(), delta_request(only_unknown, t0))
        .await
        .unwrap();
    assert_eq!(same.version, Version::new(2));
    assert_eq!(same.skipped_members, vec![ResourceId::new("nobody")]);

    // Initial members of a create.
    let mut req = group_request("h", "H", &["k1", "ghost", "k2"], t0);
    let refused = store.create(tn, &fx.groups, req.clone()).await;
    assert!(
        matches!(&refused, Err(StoreError::InvalidMember(id)) if id.as_str() == "ghost"),
        "{refused:?}"
    );
    assert!(store.get(tn, &fx.groups, &"h".into(), false).await.is_err());
    req.unknown_members = UnknownMembers::Skip;
    let h = store.create(tn, &fx.groups, req).await.unwrap();
    assert_eq!(h.skipped_members, vec![ResourceId::new("ghost")]);
    assert_eq!(
        ids_of_members(&h),
        ["k1", "k2"],
        "a create returns its members"
    );
    let h = store.get(tn, &fx.groups, &"h".into(), true).await.unwrap();
    assert_eq!(ids_of_members(&h), ["k1", "k2"]);
}

/// 16 tasks at once, each adding 20 members and removing 10 others of one group, one
/// delta per call without an expected version (as identity providers send them): no call
/// fails, nothing is lost, and each effective delta has its own version and change record.
pub async fn check_concurrent_distinct_adds_and_removes(
    store: Arc<dyn ResourceStore>,
    fx: &Fixture,
    spawner: &impl Spawner,
) {
    let t0 = base_time();
    let tn = fx.tenant.clone();
    let reqs: Vec<CreateRequest> = (0..16 * 30)
        .map(|i| user_request(&format!("d{i:03}"), simple_user(&format!("d{i}")), t0))
        .collect();
    store.create_many(&tn, &fx.users, reqs).await.unwrap();
    // Task t adds d{t*30 .. t*30+20} and removes d{t*30+20 .. t*30+30}, initially members.
    let initial: Vec<String> = (0..16)
        .flat_map(|t| (20..30).map(move |k| format!("d{:03}", t * 30 + k)))
        .collect();
    let refs: Vec<&str> = initial.iter().map(String::as_str).collect();
    store
        .create(&tn, &fx.groups, group_request("cg", "CG", &refs, t0))
        .await
        .unwrap();
    let seq = store.changes_since(&tn, 0, usize::MAX).await.unwrap().len() as u64;
    let mut joins = Vec::new();
    for t in 0..16usize {
        let (store, tn, groups) = (Arc::clone(&store), tn.clone(), Arc::clone(&fx.groups));
        joins.push(spawner.spawn(Box::pin(async move {
            for k in 0..30 {
                let id = format!("d{:03}", t * 30 + k);
                let delta = if k < 20 {
                    add(&[&id])
                } else {
                    MembershipDelta {
                        remove: vec![id.as_str().into()],
                        ..MembershipDelta::default()
                    }
                };
                store
                    .update(&tn, &groups, &"cg".into(), delta_request(delta, t0))
                    .await
                    .expect("a membership delta without expected version never fails");
            }
        })));
    }
    for j in joins {
        j.await;
    }
    let g = store
        .get(&tn, &fx.groups, &"cg".into(), true)
        .await
        .unwrap();
    let expected: Vec<String> = (0..16)
        .flat_map(|t| (0..20).map(move |k| format!("d{:03}", t * 30 + k)))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(
        ids_of_members(&g),
        expected,
        "a concurrent add or remove was lost"
    );
    assert_eq!(g.version, Version::new(1 + 16 * 30));
    let changes = store.changes_since(&tn, seq, usize::MAX).await.unwrap();
    assert_eq!(changes.len(), 16 * 30);
    let versions: BTreeSet<u64> = changes.iter().map(|c| c.version.get()).collect();
    assert_eq!(versions.len(), 16 * 30, "each delta has its own version");
}

/// A group of 100,000 members: created in one write, grown and shrunk by one member, read
/// by page and by filter, and replaced by an overlapping set of 100,000 (a full-list PUT).
pub async fn check_membership_at_scale(store: &dyn ResourceStore, fx: &Fixture) {
    const N: usize = 100_000;
    const SHIFT: usize = 10_000;
    let t0 = base_time();
    let tn = &fx.tenant;
    let id = |i: usize| format!("s{i:06}");
    let reqs: Vec<CreateRequest> = (0..N + SHIFT)
        .map(|i| user_request(&id(i), simple_user(&format!("scale{i}")), t0))
        .collect();
    store.create_many(tn, &fx.users, reqs).await.unwrap();
    let first: Vec<String> = (0..N).map(id).collect();
    let refs: Vec<&str> = first.iter().map(String::as_str).collect();
    let created = store
        .create(tn, &fx.groups, group_request("huge", "Huge", &refs, t0))
        .await
        .unwrap();
    assert_eq!(created.members.as_ref().map(Vec::len), Some(N));
    let huge: ResourceId = "huge".into();

    let extra = id(N);
    let g = store
        .update(tn, &fx.groups, &huge, delta_request(add(&[&extra]), t0))
        .await
        .unwrap();
    assert_eq!(g.version, Version::new(2));
    assert!(
        g.members.is_none(),
        "a one-member delta does not return the members"
    );
    let page = store
        .members(tn, &fx.groups, &huge, N + 1, 10)
        .await
        .unwrap();
    assert_eq!(page.total_results, N + 1);
    assert_eq!(ids_of_page(&page.members), std::slice::from_ref(&extra));
    let remove = MembershipDelta {
        remove: vec![extra.as_str().into()],
        ..MembershipDelta::default()
    };
    store
        .update(tn, &fx.groups, &huge, delta_request(remove, t0))
        .await
        .unwrap();

    // A short list is read, a long one is not.
    assert!(store
        .members_if_at_most(tn, &fx.groups, &huge, 1000)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .members_if_at_most(tn, &fx.groups, &"no-such-group".into(), 3)
        .await
        .unwrap()
        .is_none());
    store
        .create(
            tn,
            &fx.groups,
            group_request("pair", "Pair", &[&id(1), &id(0)], t0),
        )
        .await
        .unwrap();
    let pair = store
        .members_if_at_most(tn, &fx.groups, &"pair".into(), 2)
        .await
        .unwrap()
        .expect("two members are at most two");
    assert_eq!(ids_of_page(&pair), [id(0), id(1)]);
    assert!(store
        .members_if_at_most(tn, &fx.groups, &"pair".into(), 1)
        .await
        .unwrap()
        .is_none());
    store
        .create(tn, &fx.groups, group_request("none", "None", &[], t0))
        .await
        .unwrap();
    assert_eq!(
        store
            .members_if_at_most(tn, &fx.groups, &"none".into(), 1)
            .await
            .unwrap(),
        Some(Vec::new())
    );
    for g in ["pair", "none"] {
        store
            .delete(tn, &fx.groups, &g.into(), None, t0)
            .await
            .unwrap();
    }

    // Reads: one member's groups, and the groups holding a member, by an exact filter.
    let gs = store.groups_of(tn, &id(N / 2).into()).await.unwrap();
    assert_eq!(gs.len(), 1);
    assert_eq!(gs[0].id, huge);
    let query = ListQuery {
        filter: Some(Filter::parse(&format!("members.value eq \"{}\"", id(N / 2))).unwrap()),
        count: 10,
        ..ListQuery::default()
    };
    let found = list_exact(store, tn, &fx.groups, &query).await;
    assert_eq!(ids(&found.resources), ["huge"]);
    assert_eq!(found.total_results, 1);

    // A full-list replacement overlapping by 90%: 10,000 leave, 10,000 join.
    let second: Vec<MemberRef> = (SHIFT..N + SHIFT)
        .rev()
        .map(|i| MemberRef::new(id(i)))
        .collect();
    let replaced = store
        .update(
            tn,
            &fx.groups,
            &huge,
            delta_request(
                MembershipDelta {
                    clear: true,
                    add: second,
                    ..MembershipDelta::default()
                },
                t0,
            ),
        )
        .await
        .unwrap();
    assert_eq!(replaced.version, Version::new(4));
    let returned = replaced
        .members
        .expect("a full replacement returns the members");
    assert_eq!(returned.len(), N);
    assert_eq!(
        returned[0].value.as_str(),
        id(SHIFT),
        "ordered by member id"
    );
    assert_eq!(returned[0].resource_type, "User");
    let page = store.members(tn, &fx.groups, &huge, 1, 2).await.unwrap();
    assert_eq!(page.total_results, N);
    assert_eq!(ids_of_page(&page.members), [id(SHIFT), id(SHIFT + 1)]);
    let page = store.members(tn, &fx.groups, &huge, N, 5).await.unwrap();
    assert_eq!(ids_of_page(&page.members), [id(N + SHIFT - 1)]);
    assert!(store.groups_of(tn, &id(0).into()).await.unwrap().is_empty());
    let feed = store.changes_since(tn, 0, usize::MAX).await.unwrap();
    let last = feed.last().unwrap();
    assert_eq!(
        (last.id.as_str(), last.kind, last.version),
        ("huge", ChangeKind::MembershipChanged, Version::new(4))
    );
}

fn ids_of_page(members: &[super::Member]) -> Vec<String> {
    members.iter().map(|m| m.value.to_string()).collect()
}

/// 16 concurrent read-modify-write cycles (a PATCH without If-Match) on one user through the
/// versioned API, retrying on `VersionMismatch`: no update is lost.
pub async fn check_concurrent_read_modify_write(
    store: Arc<dyn ResourceStore>,
    fx: &Fixture,
    spawner: &impl Spawner,
) {
    let t0 = base_time();
    let tn = fx.tenant.clone();
    store
        .create(&tn, &fx.users, user_request("u", simple_user("rmw"), t0))
        .await
        .unwrap();
    let mut joins = Vec::new();
    for i in 0..16 {
        let (store, tn, users) = (Arc::clone(&store), tn.clone(), Arc::clone(&fx.users));
        joins.push(spawner.spawn(Box::pin(async move {
            for _attempt in 0..1000 {
                let cur = store.get(&tn, &users, &"u".into(), false).await.unwrap();
                let mut doc = cur.doc.clone();
                let list = doc
                    .as_object_mut()
                    .unwrap()
                    .entry("entitlements")
                    .or_insert_with(|| json!([]));
                list.as_array_mut()
                    .unwrap()
                    .push(json!({"value": format!("e{i}")}));
                let mut req = replace_request(doc, Some(cur.version), t0);
                req.kind = UpdateKind::Patch;
                match store.update(&tn, &users, &"u".into(), req).await {
                    Ok(_) => return,
                    Err(StoreError::VersionMismatch { .. }) => {
                        std::thread::yield_now();
                        continue;
                    }
                    Err(e) => panic!("rmw: {e}"),
                }
            }
            panic!("task {i} never won the race");
        })));
    }
    for j in joins {
        j.await;
    }
    let u = store.get(&tn, &fx.users, &"u".into(), false).await.unwrap();
    let got: BTreeSet<String> = u.doc["entitlements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["value"].as_str().unwrap().to_owned())
        .collect();
    let want: BTreeSet<String> = (0..16).map(|i| format!("e{i}")).collect();
    assert_eq!(got, want, "an update was lost");
    assert_eq!(u.doc["entitlements"].as_array().unwrap().len(), 16);
    assert_eq!(u.version, Version::new(17));
}

// ---------------------------------------------------------------------------------------
// Tenant store contract
// ---------------------------------------------------------------------------------------

/// The [`TenantStore`] contract: tenants, token records, tenant-scoped token operations,
/// cascading deletion, forward-only `last_used`, and records read back exactly as stored.
/// Run it on an empty store.
pub async fn check_tenant_store(store: &dyn TenantStore) {
    let t0 = DateTime::from_timestamp(1_750_000_000, 0).unwrap();
    let tid = |s: &str| TenantId::new(s).unwrap();
    let tenant = |id: &str| Tenant {
        id: tid(id),
        display_name: id.to_owned(),
        scim_enabled: true,
        settings: Settings::default(),
        created: t0,
    };
    let record = |tenant: &str, n: u8, created: DateTime<Utc>| TokenRecord {
        id: TokenId::new_random(),
        tenant: tid(tenant),
        label: format!("r{n}"),
        hash: [n; 32],
        created,
        expires: None,
        revoked: false,
        last_used: None,
    };
    store.create_tenant(tenant("b")).await.unwrap();
    store.create_tenant(tenant("a")).await.unwrap();
    assert!(matches!(
        store.create_tenant(tenant("a")).await,
        Err(ScimError::Conflict(_))
    ));
    let ids: Vec<_> = store
        .list_tenants()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id.to_string())
        .collect();
    assert_eq!(ids, ["a", "b"]);
    assert!(matches!(
        store.set_scim_enabled(&tid("zz"), false).await,
        Err(ScimError::NotFound(_))
    ));

    let r2 = record("a", 2, t0 + Duration::seconds(2));
    let r1 = record("a", 1, t0 + Duration::seconds(1));
    let rb = record("b", 3, t0);
    for r in [&r2, &r1, &rb] {
        store.insert_token(r.clone()).await.unwrap();
    }
    assert!(matches!(
        store.insert_token(record("zz", 9, t0)).await,
        Err(ScimError::NotFound(_))
    ));
    let mut same_hash = record("a", 1, t0);
    assert!(matches!(
        store.insert_token(same_hash.clone()).await,
        Err(ScimError::Conflict(_))
    ));
    same_hash.hash = [8; 32];
    same_hash.id = r1.id;
    assert!(matches!(
        store.insert_token(same_hash).await,
        Err(ScimError::Conflict(_))
    ));

    let listed: Vec<_> = store
        .list_tokens(&tid("a"))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(listed, [r1.id, r2.id]);
    assert_eq!(
        store.find_token_by_hash(&[3; 32]).await.unwrap(),
        Some(rb.clone())
    );
    assert_eq!(store.find_token_by_hash(&[4; 32]).await.unwrap(), None);
    assert_eq!(store.get_token(&tid("b"), &r1.id).await.unwrap(), None);

    // Tenant-scoped mutation.
    assert!(!store.revoke_token(&tid("b"), &r1.id).await.unwrap());
    assert!(!store
        .set_token_expiry(&tid("b"), &r1.id, Some(t0))
        .await
        .unwrap());
    assert!(store.revoke_token(&tid("a"), &r1.id).await.unwrap());
    assert_eq!(store.revoke_all_tokens(&tid("a")).await.unwrap(), 1);
    assert!(
        !store
            .find_token_by_hash(&[3; 32])
            .await
            .unwrap()
            .unwrap()
            .revoked
    );

    // last_used only moves forward.
    let later = t0 + Duration::minutes(5);
    store.record_token_use(&rb.id, later).await.unwrap();
    store.record_token_use(&rb.id, t0).await.unwrap();
    store
        .record_token_use(&TokenId::new_random(), t0)
        .await
        .unwrap();
    let got = store.get_token(&tid("b"), &rb.id).await.unwrap().unwrap();
    assert_eq!(got.last_used, Some(later));

    // Deleting cascades to the tenant's tokens only.
    assert!(store.delete_tenant(&tid("a")).await.unwrap());
    assert!(!store.delete_tenant(&tid("a")).await.unwrap());
    assert_eq!(store.find_token_by_hash(&[1; 32]).await.unwrap(), None);
    assert!(store.find_token_by_hash(&[3; 32]).await.unwrap().is_some());
    // The id index was cleaned up too: the ids can be reused.
    store.create_tenant(tenant("a")).await.unwrap();
    store.insert_token(r1.clone()).await.unwrap();

    // Updates come back as stored; times keep their sub-second part.
    let t = store
        .set_display_name(&tid("b"), "Bee".into())
        .await
        .unwrap();
    assert_eq!(t.display_name, "Bee");
    let t = store.set_scim_enabled(&tid("b"), false).await.unwrap();
    assert!(!t.scim_enabled);
    let mut settings = Settings::default();
    settings.limits.max_filter_length += 1;
    let t = store
        .update_tenant_settings(&tid("b"), settings.clone())
        .await
        .unwrap();
    assert_eq!(t.settings, settings);
    assert_eq!(store.get_tenant(&tid("b")).await.unwrap(), Some(t));
    assert!(matches!(
        store.set_display_name(&tid("zz"), "x".into()).await,
        Err(ScimError::NotFound(_))
    ));
    assert!(matches!(
        store
            .update_tenant_settings(&tid("zz"), Settings::default())
            .await,
        Err(ScimError::NotFound(_))
    ));
    assert_eq!(store.get_tenant(&tid("zz")).await.unwrap(), None);
    let precise = t0 + Duration::nanoseconds(123_456_789);
    let mut exact = record("b", 7, precise);
    exact.expires = Some(precise + Duration::days(1));
    exact.last_used = Some(precise);
    store.insert_token(exact.clone()).await.unwrap();
    assert_eq!(
        store.get_token(&tid("b"), &exact.id).await.unwrap(),
        Some(exact.clone())
    );
    assert!(store
        .set_token_expiry(&tid("b"), &exact.id, None)
        .await
        .unwrap());
    assert_eq!(
        store
            .find_token_by_hash(&[7; 32])
            .await
            .unwrap()
            .unwrap()
            .expires,
        None
    );
}
