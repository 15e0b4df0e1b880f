//! The in-memory reference backend.

mod compact;
mod lists;
pub(crate) mod log;
mod state;
mod writes;

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::query::{compile, page_window};
use super::{
    CreateRequest, GroupRef, ListQuery, Member, MemberPage, Page, Pushdown, ResourceStore,
    StoreError, StoredResource, UpdateRequest,
};
use crate::feed::{Change, ChangeHub, ChangeNotifier, ChangeSubscription};
use crate::resource::{ResourceId, Version};
use crate::schema::ResourceDef;
use crate::tenant::TenantId;
use lists::list_in;
use state::TenantData;

/// The in-memory reference [`ResourceStore`].
///
/// Each tenant is a separate unit behind its own `RwLock`: writes of one tenant are
/// serialised (which makes uniqueness, versions, membership and the change feed atomic),
/// reads run in parallel, and tenants never contend. No lock is held across an `.await`.
///
/// Hash and ordered indexes on `id`, `userName` (case-folded), `externalId` and, for types
/// without a `userName` such as Group, `displayName` answer the `eq` filters identity
/// providers send (and `and`/`or` of them, and `sw` on those attributes) without a scan;
/// everything else is evaluated with the filter engine. Memberships are kept as a forward
/// set per group and a reverse index per member, so adding one member to a large group is
/// one insert, and `User.groups` is one lookup. Every list answer is [`Pushdown::Exact`].
///
/// Documents are kept in a compact binary form (about 1.1 KB per typical Okta user,
/// indexes and change feed included) and decoded when read.
///
/// ```
/// use std::sync::Arc;
/// use chrono::Utc;
/// use scimkit::store::{CreateRequest, ListQuery, MemoryStore, ResourceStore};
/// use scimkit::resource::UniqueKey;
/// use scimkit::{filter::Filter, schema::SchemaRegistry, tenant::TenantId};
/// use serde_json::json;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let registry = SchemaRegistry::default();
/// let users = registry.user().expect("built in");
/// let tenant = TenantId::new("acme-okta")?;
/// let store: Arc<dyn ResourceStore> = Arc::new(MemoryStore::new());
/// store
///     .create(&tenant, users, CreateRequest {
///         id: "2819c223".into(),
///         doc: json!({"userName": "BJensen", "active": true}),
///         unique_keys: vec![UniqueKey::new("userName", "bjensen")],
///         members: vec![],
///         unknown_members: Default::default(),
///         now: Utc::now(),
///         actor: None,
///     })
///     .await?;
/// let query = ListQuery {
///     filter: Some(Filter::parse(r#"userName eq "bjensen""#)?),
///     ..ListQuery::default()
/// };
/// let page = store.list(&tenant, users, &query).await?;
/// assert_eq!(page.total_results, 1);
/// assert_eq!(page.resources[0].id.as_str(), "2819c223");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub struct MemoryStore {
    tenants: RwLock<HashMap<TenantId, Arc<RwLock<TenantData>>>>,
    notifier: Option<Arc<dyn ChangeNotifier>>,
    /// The provisioning log ([`ProvisioningLog`](crate::store::ProvisioningLog)).
    log: log::MemoryLog,
    hub: ChangeHub,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("tenants", &read(&self.tenants).len())
            .field("notifier", &self.notifier.is_some())
            .finish()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl MemoryStore {
    /// An empty store without a change notifier (readers of the feed use
    /// [`ResourceStore::subscribe`]).
    pub fn new() -> Self {
        MemoryStore {
            tenants: RwLock::new(HashMap::new()),
            notifier: None,
            log: log::MemoryLog::default(),
            hub: ChangeHub::new(),
        }
    }

    /// Also calls `notifier` after every committed write (with the last sequence number it
    /// wrote), as `SqliteStore::with_notifier` and `PostgresStore::with_notifier` do.
    /// [`ResourceStore::subscribe`] needs no notifier.
    pub fn with_notifier(mut self, notifier: Arc<dyn ChangeNotifier>) -> Self {
        self.notifier = Some(notifier);
        self
    }

    fn tenant(&self, tenant: &TenantId) -> Option<Arc<RwLock<TenantData>>> {
        read(&self.tenants).get(tenant).cloned()
    }

    fn tenant_or_create(&self, tenant: &TenantId) -> Arc<RwLock<TenantData>> {
        if let Some(t) = self.tenant(tenant) {
            return t;
        }
        Arc::clone(
            write(&self.tenants)
                .entry(tenant.clone())
                .or_insert_with(|| Arc::new(RwLock::new(TenantData::default()))),
        )
    }

    fn notify(&self, tenant: &TenantId, seq: Option<u64>) {
        let Some(seq) = seq else { return };
        self.hub.publish(tenant, seq);
        if let Some(n) = &self.notifier {
            n.notify(tenant, seq);
        }
    }
}

// A panic while a lock is held can only come from a bug; the data it guards is updated only
// after every check passed, so it stays usable and the store keeps serving.
fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

#[async_trait]
impl ResourceStore for MemoryStore {
    fn keyset_paging(&self) -> bool {
        true
    }

    async fn create(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        req: CreateRequest,
    ) -> Result<StoredResource, StoreError> {
        self.create_in(tenant, rt, req)
    }

    async fn get(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        id: &ResourceId,
        include_members: bool,
    ) -> Result<StoredResource, StoreError> {
        let t = self
            .tenant(tenant)
            .ok_or_else(|| StoreError::not_found(rt, id))?;
        let data = read(&t);
        let (key, rec) = data
            .records
            .get_key_value(id.as_str())
            .filter(|(_, r)| &*r.rt == rt.name())
            .ok_or_else(|| StoreError::not_found(rt, id))?;
        data.stored(key, rec, include_members)
    }

    async fn update(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        id: &ResourceId,
        req: UpdateRequest,
    ) -> Result<StoredResource, StoreError> {
        self.update_in(tenant, rt, id, req)
    }

    async fn delete(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        id: &ResourceId,
        expected_version: Option<Version>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.delete_as(tenant, rt, id, expected_version, now, None)
            .await
    }

    async fn delete_as(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        id: &ResourceId,
        expected_version: Option<Version>,
        now: DateTime<Utc>,
        actor: Option<&str>,
    ) -> Result<(), StoreError> {
        self.delete_in(tenant, rt, id, expected_version, now, actor)
    }

    async fn list(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        query: &ListQuery,
    ) -> Result<Page, StoreError> {
        let empty = || -> Result<Page, StoreError> {
            // Nothing to search, but a filter the engine refuses is still an error.
            if let Some(f) = &query.filter {
                compile(rt, f)?;
            }
            Ok(Page {
                resources: Vec::new(),
                total_results: 0,
                pushdown: Pushdown::Exact,
            })
        };
        let Some(t) = self.tenant(tenant) else {
            return empty();
        };
        let data = read(&t);
        let Some(ti) = data.types.get(rt.name()) else {
            return empty();
        };
        list_in(&data, ti, rt, query)
    }

    async fn members_if_at_most(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        group: &ResourceId,
        max: usize,
    ) -> Result<Option<Vec<Member>>, StoreError> {
        let Some(t) = self.tenant(tenant) else {
            return Ok(None);
        };
        let data = read(&t);
        let Ok(rec) = data.get(rt, group) else {
            return Ok(None);
        };
        Ok((rec.members.len() <= max).then(|| data.member_list(rec)))
    }

    async fn members(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        group: &ResourceId,
        start_index: usize,
        count: usize,
    ) -> Result<MemberPage, StoreError> {
        let t = self
            .tenant(tenant)
            .ok_or_else(|| StoreError::not_found(rt, group))?;
        let data = read(&t);
        let rec = data.get(rt, group)?;
        let total = rec.members.len();
        let w = page_window(start_index, count, total);
        let members = rec
            .members
            .iter()
            .skip(w.start)
            .take(w.len())
            .map(|m| data.member(m))
            .collect();
        Ok(MemberPage {
            members,
            total_results: total,
        })
    }

    async fn groups_of(
        &self,
        tenant: &TenantId,
        member: &ResourceId,
    ) -> Result<Vec<GroupRef>, StoreError> {
        let Some(t) = self.tenant(tenant) else {
            return Ok(Vec::new());
        };
        let data = read(&t);
        let Some(groups) = data.reverse.get(member.as_str()) else {
            return Ok(Vec::new());
        };
        Ok(groups
            .iter()
            .filter_map(|g| {
                let rec = data.records.get(g)?;
                Some(GroupRef {
                    id: ResourceId::new(&**g),
                    resource_type: rec.rt.to_string(),
                    display: rec.display.as_deref().map(str::to_owned),
                })
            })
            .collect())
    }

    async fn changes_since(
        &self,
        tenant: &TenantId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Change>, StoreError> {
        let Some(t) = self.tenant(tenant) else {
            return Ok(Vec::new());
        };
        let data = read(&t);
        if after < data.pruned_through {
            return Err(StoreError::ChangesPruned {
                requested: after,
                pruned_through: data.pruned_through,
            });
        }
        // Clamped, so that `range` cannot panic.
        let start = usize::try_from(after - data.pruned_through)
            .unwrap_or(usize::MAX)
            .min(data.feed.len());
        Ok(data
            .feed
            .range(start..)
            .take(limit)
            .zip((after.saturating_add(1))..)
            .map(|(e, seq)| Change {
                seq,
                tenant: tenant.clone(),
                resource_type: e.rt.to_string(),
                id: ResourceId::new(&*e.id),
                kind: e.kind,
                version: e.version,
                at: e.at,
                members: e.members.as_deref().cloned(),
                actor: e.actor.as_deref().map(str::to_owned),
            })
            .collect())
    }

    async fn head_seq(&self, tenant: &TenantId) -> Result<u64, StoreError> {
        Ok(self.tenant(tenant).map_or(0, |t| read(&t).last_seq()))
    }

    fn subscribe(&self) -> Option<ChangeSubscription> {
        Some(self.hub.subscribe())
    }

    async fn prune_changes(
        &self,
        tenant: &TenantId,
        retention: &super::ChangeRetention,
        now: DateTime<Utc>,
    ) -> Result<super::PruneReport, StoreError> {
        let Some(t) = self.tenant(tenant) else {
            return Ok(super::PruneReport {
                complete: true,
                ..super::PruneReport::default()
            });
        };
        let report = write(&t).prune(retention, now);
        Ok(report)
    }
}

#[cfg(test)]
mod tests;
