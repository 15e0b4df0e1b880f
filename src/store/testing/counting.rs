//! A store wrapper that counts calls, for tests that assert what a request cost.

#[allow(unused_imports)]
use super::*;

/// A [`ResourceStore`] that forwards to another and counts the calls, so that a test can
/// assert what a request cost: for example that a membership PATCH never reads the member
/// list of the group.
pub struct CountingStore {
    inner: Arc<dyn ResourceStore>,
    calls: std::sync::Mutex<StoreCalls>,
    no_pushdown: std::sync::atomic::AtomicBool,
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
    /// Resources returned by `list` calls, all calls together (pages or candidates).
    pub listed: usize,
    /// The most resources one `list` call returned.
    pub most_listed: usize,
    /// `members` calls (pages of a member list, counted).
    pub member_pages: usize,
    /// `members_if_at_most` calls (a member list read only when it is short).
    pub short_member_lists: usize,
    /// `groups_of` calls.
    pub groups_of: usize,
    /// `get_with_groups` calls.
    pub gets_with_groups: usize,
    /// `groups_of_many` calls (one per page).
    pub groups_of_pages: usize,
    /// Every other call.
    pub other: usize,
}

impl CountingStore {
    /// Counts the calls made to `inner`.
    pub fn new(inner: Arc<dyn ResourceStore>) -> Self {
        CountingStore {
            inner,
            calls: std::sync::Mutex::new(StoreCalls::default()),
            no_pushdown: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// From now on (when `on`), answers every `list` as a backend that translates nothing
    /// would: [`Pushdown::Unsupported`] with the type's resources as candidates, in creation
    /// order, at most [`ListQuery::max_candidates`] + 1 of them, with members when the query
    /// reads or asks for them.
    pub fn without_pushdown(&self, on: bool) {
        self.no_pushdown
            .store(on, std::sync::atomic::Ordering::SeqCst);
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

    async fn delete_as(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        id: &ResourceId,
        expected_version: Option<crate::resource::Version>,
        now: DateTime<Utc>,
        actor: Option<&str>,
    ) -> Result<(), StoreError> {
        self.count(|c| c.other += 1);
        self.inner
            .delete_as(tenant, rt, id, expected_version, now, actor)
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
        let page = if self.no_pushdown.load(std::sync::atomic::Ordering::SeqCst) {
            let all = ListQuery {
                include_members: query.include_members || query.reads_members(),
                count: query.max_candidates.saturating_add(1),
                ..ListQuery::default()
            };
            let mut page = self.inner.list(tenant, rt, &all).await?;
            page.total_results = page.resources.len();
            page.pushdown = Pushdown::Unsupported;
            page
        } else {
            self.inner.list(tenant, rt, query).await?
        };
        self.count(|c| {
            c.listed += page.resources.len();
            c.most_listed = c.most_listed.max(page.resources.len());
        });
        Ok(page)
    }

    async fn members(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        group: &ResourceId,
        start_index: usize,
        count: usize,
    ) -> Result<crate::store::MemberPage, StoreError> {
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
    ) -> Result<Option<Vec<crate::resource::Member>>, StoreError> {
        self.count(|c| c.short_member_lists += 1);
        self.inner.members_if_at_most(tenant, rt, group, max).await
    }

    async fn groups_of(
        &self,
        tenant: &TenantId,
        member: &ResourceId,
    ) -> Result<Vec<crate::store::GroupRef>, StoreError> {
        self.count(|c| c.groups_of += 1);
        self.inner.groups_of(tenant, member).await
    }

    async fn get_with_groups(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        id: &ResourceId,
    ) -> Result<(StoredResource, Vec<crate::store::GroupRef>), StoreError> {
        self.count(|c| c.gets_with_groups += 1);
        self.inner.get_with_groups(tenant, rt, id).await
    }

    async fn groups_of_many(
        &self,
        tenant: &TenantId,
        members: &[ResourceId],
    ) -> Result<Vec<Vec<crate::store::GroupRef>>, StoreError> {
        self.count(|c| c.groups_of_pages += 1);
        self.inner.groups_of_many(tenant, members).await
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

    async fn prune_changes(
        &self,
        tenant: &TenantId,
        retention: &crate::store::ChangeRetention,
        now: DateTime<Utc>,
    ) -> Result<crate::store::PruneReport, StoreError> {
        self.count(|c| c.other += 1);
        self.inner.prune_changes(tenant, retention, now).await
    }

    async fn head_seq(&self, tenant: &TenantId) -> Result<u64, StoreError> {
        self.count(|c| c.other += 1);
        self.inner.head_seq(tenant).await
    }

    fn subscribe(&self) -> Option<crate::feed::ChangeSubscription> {
        self.inner.subscribe()
    }
}
