//! The store contract suite on [`MemoryStore`], plus its concurrency checks.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use scimkit::feed::Change;
use scimkit::store::testing::{self, Fixture, TaskFuture};
use scimkit::store::{
    ChangeRetention, CreateRequest, GroupRef, ListQuery, MemberPage, MemoryStore, Page,
    PruneReport, Pushdown, ResourceStore, StoreError, StoredResource, UpdateRequest,
};
use scimkit::{resource::ResourceId, resource::Version, schema::ResourceDef, tenant::TenantId};

/// A backend that cannot filter at all: `list` returns every resource as
/// `Unsupported`, like a new custom backend would. The suite completes its answers with
/// `apply_query`, as the service does, so this checks that helper against the corpus.
struct Unfiltered(MemoryStore);

#[async_trait]
impl ResourceStore for Unfiltered {
    async fn create(
        &self,
        t: &TenantId,
        rt: &ResourceDef,
        req: CreateRequest,
    ) -> Result<StoredResource, StoreError> {
        self.0.create(t, rt, req).await
    }
    async fn get(
        &self,
        t: &TenantId,
        rt: &ResourceDef,
        id: &ResourceId,
        members: bool,
    ) -> Result<StoredResource, StoreError> {
        self.0.get(t, rt, id, members).await
    }
    async fn update(
        &self,
        t: &TenantId,
        rt: &ResourceDef,
        id: &ResourceId,
        req: UpdateRequest,
    ) -> Result<StoredResource, StoreError> {
        self.0.update(t, rt, id, req).await
    }
    async fn delete(
        &self,
        t: &TenantId,
        rt: &ResourceDef,
        id: &ResourceId,
        v: Option<Version>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.0.delete(t, rt, id, v, now).await
    }
    async fn list(
        &self,
        t: &TenantId,
        rt: &ResourceDef,
        query: &ListQuery,
    ) -> Result<Page, StoreError> {
        // Members only when the query needs them, as a real backend would do.
        let all = ListQuery {
            include_members: query.include_members || query.reads_members(),
            ..ListQuery::default()
        };
        let mut page = self.0.list(t, rt, &all).await?;
        page.pushdown = Pushdown::Unsupported;
        Ok(page)
    }
    async fn members(
        &self,
        t: &TenantId,
        rt: &ResourceDef,
        g: &ResourceId,
        start: usize,
        count: usize,
    ) -> Result<MemberPage, StoreError> {
        self.0.members(t, rt, g, start, count).await
    }
    async fn groups_of(&self, t: &TenantId, m: &ResourceId) -> Result<Vec<GroupRef>, StoreError> {
        self.0.groups_of(t, m).await
    }
    async fn changes_since(
        &self,
        t: &TenantId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Change>, StoreError> {
        self.0.changes_since(t, after, limit).await
    }
    async fn prune_changes(
        &self,
        t: &TenantId,
        retention: &ChangeRetention,
        now: DateTime<Utc>,
    ) -> Result<PruneReport, StoreError> {
        self.0.prune_changes(t, retention, now).await
    }
}

fn memory() -> Arc<dyn ResourceStore> {
    Arc::new(MemoryStore::new())
}

fn spawn(task: TaskFuture) -> TaskFuture {
    let handle = tokio::spawn(task);
    Box::pin(async move { handle.await.expect("task panicked") })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn contract_suite() {
    testing::run_contract_suite(|| async { memory() }, spawn).await;
}

#[tokio::test]
async fn crud() {
    testing::check_crud(&*memory(), &Fixture::new()).await;
}

#[tokio::test]
async fn filter_equivalence() {
    testing::check_filter_equivalence(&*memory(), &Fixture::new()).await;
}

#[tokio::test]
async fn membership() {
    testing::check_membership(&*memory(), &Fixture::new()).await;
    testing::check_delete_cleans_memberships(&*memory(), &Fixture::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_member_adds() {
    // Repeat: a race that loses an update is rarely hit on the first run.
    for _ in 0..20 {
        testing::check_concurrent_member_adds(memory(), &Fixture::new(), &spawn).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_read_modify_write() {
    for _ in 0..20 {
        testing::check_concurrent_read_modify_write(memory(), &Fixture::new(), &spawn).await;
    }
}

#[tokio::test]
async fn apply_query_completes_an_unsupported_backend() {
    let fx = Fixture::new();
    let store = Unfiltered(MemoryStore::new());
    testing::check_filter_equivalence(&store, &fx).await;
    testing::check_paging(&Unfiltered(MemoryStore::new()), &fx).await;
    testing::check_sorting(&Unfiltered(MemoryStore::new()), &fx).await;
}

#[tokio::test]
async fn tenant_store_contract() {
    testing::check_tenant_store(&scimkit::auth::MemoryTenantStore::new()).await;
}

#[tokio::test]
async fn provisioning_log() {
    testing::check_provisioning_log(&MemoryStore::new()).await;
}

/// The memory log is a bounded ring: beyond its capacity the oldest events go.
#[tokio::test]
async fn provisioning_log_is_bounded() {
    use scimkit::{
        events::{LogFilter, Outcome, ProvisioningEvent},
        store::ProvisioningLog,
    };
    let store = MemoryStore::new();
    let t = TenantId::new("ring").unwrap();
    let batch: Vec<ProvisioningEvent> = (0..10_005)
        .map(|i| {
            ProvisioningEvent::new(
                Utc::now(),
                Some(t.clone()),
                "GET",
                format!("/scim/v2/ring/Users/{i}"),
                Outcome::success(200),
            )
        })
        .collect();
    store.append(&batch).await.unwrap();
    let mut total = 0;
    let mut before = None;
    let mut oldest = String::new();
    loop {
        let page = store
            .query(&t, &LogFilter::all(), before, 1000)
            .await
            .unwrap();
        total += page.events.len();
        if let Some((_, e)) = page.events.last() {
            oldest = e.path.clone();
        }
        match page.next {
            Some(c) => before = Some(c),
            None => break,
        }
    }
    assert_eq!(total, 10_000);
    assert_eq!(oldest, "/scim/v2/ring/Users/5");
    assert_eq!(store.health(&t).await.unwrap().successes, 10_005);
}
