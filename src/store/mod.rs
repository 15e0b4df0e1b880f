//! Storage: the [`ResourceStore`] trait every backend implements, the in-memory reference
//! backend [`MemoryStore`], and the query helper [`apply_query`].
//!
//! The store knows nothing of HTTP. It receives tenant-scoped, already validated operations:
//! documents normalised against the schema, uniqueness keys computed from it, membership
//! deltas computed by the PATCH engine, and the public filter AST. It answers each list query
//! and says how well it did ([`Pushdown`]): a SQL backend may translate only part of a filter,
//! and the service completes the rest with [`apply_query`], so a new backend can start by
//! returning every resource as [`Pushdown::Unsupported`] and still be correct.
//!
//! A backend is checked by the contract suite in the `testing` module (cargo feature
//! `testing`), which every backend runs.

mod log;
mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
pub(crate) mod provisioning;
mod query;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
pub mod sqlite;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod types;

pub use memory::MemoryStore;
pub use provisioning::{EventWriter, ProvisioningLog, StoreEventSink};
pub use query::{apply_query, keyset_cmp, keyset_of, page_window, view_document};
pub use types::{
    ChangeRetention, CreateRequest, GroupRef, Keyset, ListQuery, MemberPage, NewDocument, Page,
    Paging, PruneReport, Pushdown, StoredResource, UpdateKind, UpdateRequest,
};

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::ScimError;
use crate::feed::Change;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
use crate::feed::MemberChanges;
use crate::resource::{
    member_display, Member, MemberRef, MembershipDelta, ResourceId, UniqueKey, UnknownMembers,
    Version,
};
use crate::schema::ResourceDef;
use crate::tenant::TenantId;

/// A storage failure.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No resource of that type with that id in the tenant.
    #[error("{resource_type} `{id}` not found")]
    NotFound {
        /// The resource type looked in.
        resource_type: String,
        /// The id looked for.
        id: ResourceId,
    },
    /// A uniqueness key (or the id) is already taken in the tenant and resource type.
    #[error("`{attribute}` is already in use")]
    Conflict {
        /// The attribute whose value is taken.
        attribute: String,
    },
    /// The expected version is not the current one; nothing was changed.
    #[error("expected another version; current is {current}")]
    VersionMismatch {
        /// The current version.
        current: Version,
    },
    /// A member to add does not exist in the tenant, is not of the claimed type, or is the
    /// group itself; nothing was changed.
    #[error("member `{0}` is not an existing resource of this tenant that can be a member")]
    InvalidMember(ResourceId),
    /// The filter cannot be evaluated against the resource type.
    #[error("invalid filter: {0}")]
    InvalidFilter(String),
    /// A value cannot be stored by this backend (for example a string holding a NUL
    /// character, which PostgreSQL text cannot hold); nothing was changed.
    #[error("invalid value: {0}")]
    InvalidValue(String),
    /// [`ResourceStore::changes_since`] was asked for a position before the tenant's prune
    /// horizon: changes after it were removed by [`ResourceStore::prune_changes`], so
    /// reading on would skip them. The reader must resynchronise (read the resources it
    /// follows afresh, as after an expired sync token) and then continue from a current
    /// position. Reading from `pruned_through` or later works.
    #[error(
        "change feed position {requested} was pruned (the feed now starts after {pruned_through}); resynchronise"
    )]
    ChangesPruned {
        /// The position asked for (the `after` argument).
        requested: u64,
        /// The tenant's prune horizon: the oldest position still accepted.
        pruned_through: u64,
    },
    /// The backend failed (I/O, database). Its text is for logs only.
    #[error("storage backend failure: {0}")]
    Backend(#[source] Arc<dyn std::error::Error + Send + Sync + 'static>),
}

impl StoreError {
    /// `NotFound` for resource `id` of type `rt`.
    pub(crate) fn not_found(rt: &ResourceDef, id: &ResourceId) -> Self {
        StoreError::NotFound {
            resource_type: rt.name().to_owned(),
            id: id.clone(),
        }
    }

    /// `VersionMismatch` when a write expected another version than the `current` one.
    pub(crate) fn check_version(expected: Option<Version>, current: Version) -> Result<(), Self> {
        match expected {
            Some(v) if v != current => Err(StoreError::VersionMismatch { current }),
            _ => Ok(()),
        }
    }

    /// Wraps a backend failure.
    pub fn backend<E>(source: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        StoreError::Backend(Arc::new(source))
    }
}

impl From<StoreError> for ScimError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { resource_type, id } => {
                ScimError::NotFound(format!("{resource_type} `{id}` not found"))
            }
            // RFC 7644 §3.3: a taken unique value is 409 with scimType `uniqueness`.
            StoreError::Conflict { attribute } => {
                let detail = format!("`{attribute}` is already in use by another resource");
                ScimError::uniqueness(attribute, detail)
            }
            // RFC 7644 §3.14: a stale If-Match (or meta.version) is 412.
            StoreError::VersionMismatch { current } => ScimError::PreconditionFailed(format!(
                "the resource was modified; its current version is {current}"
            )),
            StoreError::InvalidMember(id) => ScimError::InvalidValue(format!(
                "`members`: `{id}` is not an existing resource of this tenant that can be a member"
            )),
            StoreError::InvalidFilter(detail) => ScimError::invalid_filter(detail),
            StoreError::InvalidValue(detail) => ScimError::InvalidValue(detail),
            // No SCIM request reads the change feed: a host that reaches here from its own
            // endpoint has not handled the resynchronisation it asks for.
            e @ StoreError::ChangesPruned { .. } => ScimError::Internal(Arc::new(e)),
            StoreError::Backend(source) => ScimError::Internal(source),
        }
    }
}

/// Where resources, memberships and the change feed live.
///
/// Every method is scoped to one tenant: nothing of one tenant is visible, writable or
/// deletable through another. Resource ids are unique within a tenant across resource types.
/// Resource types are passed as [`ResourceDef`] so that host-registered types work like the
/// built-in ones; a backend keys them by [`ResourceDef::name`].
///
/// Every successful write bumps the resource's version by one and appends exactly one
/// [`Change`] to the tenant's feed in the same atomic step (deleting a resource also bumps and
/// records each group it is removed from). A failed write changes nothing.
///
/// The contract is defined by the suite in the `testing` module; run it against a new
/// backend before anything else.
#[async_trait]
pub trait ResourceStore: Send + Sync {
    /// Creates a resource at [`Version::INITIAL`] and records [`ChangeKind::Created`].
    /// Returns it with its members (see [`StoredResource::members`]).
    ///
    /// Fails with [`StoreError::Conflict`] when the id or a uniqueness key is taken, and with
    /// [`StoreError::InvalidMember`] when an initial member does not exist (under
    /// [`UnknownMembers::Reject`]).
    ///
    /// [`ChangeKind::Created`]: crate::feed::ChangeKind::Created
    async fn create(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        req: CreateRequest,
    ) -> Result<StoredResource, StoreError>;

    /// Creates many resources of one type: an initial import, or a host seeding a tenant.
    /// Returns them in request order.
    ///
    /// The SQL stores write them in one transaction (all of them, or none when one fails,
    /// with that one's error as [`create`](Self::create) would give it). The default calls
    /// `create` for each and stops at the first failure, keeping those created before it.
    async fn create_many(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        requests: Vec<CreateRequest>,
    ) -> Result<Vec<StoredResource>, StoreError> {
        let mut out = Vec::with_capacity(requests.len());
        for req in requests {
            out.push(self.create(tenant, rt, req).await?);
        }
        Ok(out)
    }

    /// Reads a resource, with its members when `include_members` is set.
    async fn get(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        id: &ResourceId,
        include_members: bool,
    ) -> Result<StoredResource, StoreError>;

    /// Replaces the document and/or applies a membership delta, atomically, with one version
    /// bump and one change record. Returns the resource after the write; its `members` only
    /// when the delta replaced them all (see [`StoredResource::members`]).
    ///
    /// With `expected_version: None` a membership-only delta is applied as set operations
    /// under the store's own lock or transaction: concurrent deltas never fail with
    /// [`StoreError::VersionMismatch`] and never lose one another. The cost is that of the
    /// ids the delta names (one batched lookup), not of the group's size.
    ///
    /// A request with neither a document nor an effective membership change (for example
    /// adding a present member) changes nothing and returns the current resource; the
    /// expected version is still checked.
    async fn update(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        id: &ResourceId,
        req: UpdateRequest,
    ) -> Result<StoredResource, StoreError>;

    /// Deletes a resource (checking `expected_version` when given), its memberships as a
    /// group, and its memberships as a member (bumping and recording each group it leaves).
    async fn delete(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        id: &ResourceId,
        expected_version: Option<Version>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// [`delete`](Self::delete), recording `actor` as the change records' [`Change::actor`].
    /// The default calls `delete` (the records then have no actor); the stores of this crate
    /// record it.
    async fn delete_as(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        id: &ResourceId,
        expected_version: Option<Version>,
        now: DateTime<Utc>,
        actor: Option<&str>,
    ) -> Result<(), StoreError> {
        let _ = actor;
        self.delete(tenant, rt, id, expected_version, now).await
    }

    /// True when [`list`](Self::list) honours [`Paging::Keyset`] in its exact answers.
    /// The default is false: the service then asks such a store for every match (index
    /// paging, at most
    /// [`Limits::max_resources_scanned`](crate::settings::Limits::max_resources_scanned) of
    /// them, 400 `tooMany` beyond) and pages by keyset itself, which is correct but costs
    /// every match per page. The three stores of this crate page by keyset.
    fn keyset_paging(&self) -> bool {
        false
    }

    /// Answers a list query; see [`Pushdown`] for what the answer holds.
    async fn list(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        query: &ListQuery,
    ) -> Result<Page, StoreError>;

    /// A page of a group's members, ordered by member id, with `display` filled in.
    /// `start_index` is 1-based (values below 1 are treated as 1).
    async fn members(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        group: &ResourceId,
        start_index: usize,
        count: usize,
    ) -> Result<MemberPage, StoreError>;

    /// The members of a group, ordered by member id, when it has at most `max` of them;
    /// `None` when it has more (or is unknown). For answers that carry a member list only
    /// when it is short: the cost is bounded by `max`, whatever the group's size. The
    /// default reads a page with [`members`](Self::members); a store whose count is not
    /// free overrides it.
    async fn members_if_at_most(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        group: &ResourceId,
        max: usize,
    ) -> Result<Option<Vec<Member>>, StoreError> {
        match self.members(tenant, rt, group, 1, max).await {
            Ok(page) if page.total_results <= max => Ok(Some(page.members)),
            Ok(_) | Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The groups `member` is a direct member of, ordered by group id. Empty for an unknown
    /// id.
    async fn groups_of(
        &self,
        tenant: &TenantId,
        member: &ResourceId,
    ) -> Result<Vec<GroupRef>, StoreError>;

    /// [`get`](Self::get) (without members) and [`groups_of`](Self::groups_of) of one
    /// resource in one read: what a GET of a User needs. The default makes the two calls; the
    /// SQL stores answer with one statement.
    async fn get_with_groups(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        id: &ResourceId,
    ) -> Result<(StoredResource, Vec<GroupRef>), StoreError> {
        let res = self.get(tenant, rt, id, false).await?;
        let groups = self.groups_of(tenant, id).await?;
        Ok((res, groups))
    }

    /// [`list`](Self::list), and possibly the derived groups of every resource of the
    /// page (as [`groups_of_many`](Self::groups_of_many) of their ids, in page order) read
    /// with it: what a list of Users needs. `None` when the store did not read them with the
    /// page (the caller asks `groups_of_many`); the default always answers `None`. The
    /// PostgreSQL store reads an index page, its total and its groups in one statement.
    async fn list_with_groups(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        query: &ListQuery,
    ) -> Result<(Page, Option<Vec<Vec<GroupRef>>>), StoreError> {
        Ok((self.list(tenant, rt, query).await?, None))
    }

    /// [`groups_of`](Self::groups_of) for each of `members` (the resources of one page), in
    /// the same order. The default asks once per id; the SQL stores answer with one
    /// statement whatever the page size.
    async fn groups_of_many(
        &self,
        tenant: &TenantId,
        members: &[ResourceId],
    ) -> Result<Vec<Vec<GroupRef>>, StoreError> {
        let mut out = Vec::with_capacity(members.len());
        for m in members {
            out.push(self.groups_of(tenant, m).await?);
        }
        Ok(out)
    }

    /// Up to `limit` change records of the tenant with `seq > after`, in `seq` order.
    ///
    /// Fails with [`StoreError::ChangesPruned`] when `after` is below the tenant's prune
    /// horizon (see [`prune_changes`](Self::prune_changes)): the records right after `after`
    /// are gone, and answering with the later ones would be a silent gap. A position at the
    /// horizon or later is answered as usual.
    async fn changes_since(
        &self,
        tenant: &TenantId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Change>, StoreError>;

    /// The sequence number of the tenant's newest change record: what a reader that has
    /// processed everything up to now has seen (0 for an empty feed; after pruning
    /// everything, the prune horizon). A follower starting from scratch, or resynchronising
    /// after [`StoreError::ChangesPruned`], reads the resources and continues from here.
    ///
    /// The default pages through [`changes_since`](Self::changes_since) (reading the whole
    /// retained feed); the stores of this crate answer with one lookup.
    async fn head_seq(&self, tenant: &TenantId) -> Result<u64, StoreError> {
        let mut after = 0;
        loop {
            match self.changes_since(tenant, after, 1_000).await {
                Ok(page) => match page.last() {
                    Some(last) => after = last.seq,
                    None => return Ok(after),
                },
                Err(StoreError::ChangesPruned { pruned_through, .. }) if pruned_through > after => {
                    after = pruned_through;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// A subscription to this store's commits: it wakes after every committed write (see
    /// [`ChangeSubscription`](crate::feed::ChangeSubscription); no wake-up is lost while the
    /// reader is busy). Take it before reading the feed, then read, then wait on it.
    ///
    /// `None` when the store cannot tell (the default): a reader then polls. The stores of
    /// this crate always offer one; a `PostgresStore` sees the writes of other instances too
    /// while its `listen` task runs.
    fn subscribe(&self) -> Option<crate::feed::ChangeSubscription> {
        None
    }

    /// Removes the tenant's oldest change records as `retention` says (older than its
    /// `max_age` before `now`, or beyond its `max_entries` newest), at most
    /// `retention.max_removed_per_call` of them, and raises the tenant's prune horizon to
    /// the last removed `seq`. Other tenants are untouched; calling it again with the same
    /// arguments removes nothing more. Sequence numbers are never reused: the next write
    /// after pruning everything still gets a `seq` above the horizon.
    ///
    /// Only a prefix of the feed is removed: if an entry is due but an older one is not
    /// (commit times passed in out of order), pruning by age stops at the one that is not.
    ///
    /// The default keeps everything (it removes nothing and reports a horizon of 0), which
    /// is correct for a store that never prunes: its feed has no gaps to report. The three
    /// stores of this crate implement it; a SQL store does so with index range deletes in
    /// bounded batches, never reading the feed into memory.
    async fn prune_changes(
        &self,
        tenant: &TenantId,
        retention: &ChangeRetention,
        now: DateTime<Utc>,
    ) -> Result<PruneReport, StoreError> {
        let _ = (tenant, retention, now);
        Ok(PruneReport {
            removed: 0,
            pruned_through: 0,
            complete: true,
        })
    }
}

/// The members to add of a write, resolved by a SQL store: each once, in request order,
/// with its type and display, and the ids skipped under [`UnknownMembers::Skip`].
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[derive(Debug, Default)]
pub(crate) struct ResolvedMembers {
    pub(crate) members: Vec<Member>,
    pub(crate) skipped: Vec<ResourceId>,
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl ResolvedMembers {
    /// The members as a write leaves them after a `clear` (ordered by id), and the skipped.
    pub(crate) fn into_sorted(mut self) -> (Vec<Member>, Vec<ResourceId>) {
        self.members
            .sort_by(|a, b| a.value.as_str().cmp(b.value.as_str()));
        (self.members, self.skipped)
    }

    /// What an update with the membership delta `delta` did, given these resolved members
    /// to add and whether the membership `changed`: the change record's [`MemberChanges`]
    /// (`None` when unchanged; `Replaced` after a `clear`, else the ids added and removed),
    /// the members the answer carries (after a `clear`, when at most `return_members`), and
    /// the ids skipped.
    pub(crate) fn update_outcome(
        self,
        delta: Option<&MembershipDelta>,
        changed: bool,
        return_members: Option<usize>,
    ) -> (Option<MemberChanges>, Option<Vec<Member>>, Vec<ResourceId>) {
        let replaced_all = delta.is_some_and(|d| d.clear);
        let changes = match delta {
            Some(_) if changed && replaced_all => Some(MemberChanges::Replaced),
            Some(delta) if changed => {
                let added: Vec<ResourceId> = self.members.iter().map(|m| m.value.clone()).collect();
                let mut seen = std::collections::HashSet::new();
                let removed = delta
                    .remove
                    .iter()
                    .filter(|r| !added.contains(r) && seen.insert(r.as_str()))
                    .cloned()
                    .collect();
                Some(MemberChanges::delta(added, removed))
            }
            _ => None,
        };
        let (members, skipped) = self.into_sorted();
        let members = (replaced_all && return_members.is_some_and(|max| members.len() <= max))
            .then_some(members);
        (changes, members, skipped)
    }

    /// Resolves `add` (each id once, in request order) against `found`, the ids of the
    /// tenant among them with their `(resource type, display)`: a member must exist, be of
    /// the claimed type (compared case-insensitively) and not be `group` itself; the others
    /// fail the write or are skipped, per `policy`.
    pub(crate) fn resolve(
        add: &[MemberRef],
        mut found: std::collections::HashMap<String, (String, Option<String>)>,
        group: &str,
        policy: UnknownMembers,
    ) -> Result<Self, StoreError> {
        let mut out = ResolvedMembers {
            members: Vec::with_capacity(found.len()),
            skipped: Vec::new(),
        };
        let mut seen = std::collections::HashSet::with_capacity(add.len());
        for m in add.iter().filter(|m| seen.insert(m.value.as_str())) {
            let hit = found.remove(m.value.as_str()).filter(|(rt, _)| {
                m.value.as_str() != group
                    && m.resource_type
                        .as_deref()
                        .is_none_or(|t| t.eq_ignore_ascii_case(rt))
            });
            match (hit, policy) {
                (Some((resource_type, display)), _) => out.members.push(Member {
                    value: m.value.clone(),
                    resource_type,
                    display,
                }),
                (None, UnknownMembers::Skip) => out.skipped.push(m.value.clone()),
                (None, UnknownMembers::Reject) => {
                    return Err(StoreError::InvalidMember(m.value.clone()))
                }
            }
        }
        Ok(out)
    }
}

/// The groups of a resource as a SQL store's one-statement read gives them: a JSON array of
/// `[id, resource type, display]` triples.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn groups_from_json(text: &str) -> Result<Vec<GroupRef>, StoreError> {
    let triples: Vec<(String, String, Option<String>)> =
        serde_json::from_str(text).map_err(StoreError::backend)?;
    Ok(triples
        .into_iter()
        .map(|(id, resource_type, display)| GroupRef {
            id: ResourceId::new(id),
            resource_type,
            display,
        })
        .collect())
}

/// Groups read for a page of members, as `(member id, group)` rows ordered by group id,
/// distributed to one list per requested member, in request order.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn groups_by_member(
    members: &[ResourceId],
    rows: Vec<(String, GroupRef)>,
) -> Vec<Vec<GroupRef>> {
    let mut at: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, m) in members.iter().enumerate() {
        at.entry(m.as_str()).or_insert(i);
    }
    let mut out: Vec<Vec<GroupRef>> = vec![Vec::new(); members.len()];
    for (member, group) in rows {
        if let Some(list) = at.get(member.as_str()).and_then(|&i| out.get_mut(i)) {
            list.push(group);
        }
    }
    // A member id requested twice gets the same list twice.
    for (i, m) in members.iter().enumerate() {
        if let Some(&first) = at.get(m.as_str()) {
            if first != i {
                let copy = out.get(first).cloned().unwrap_or_default();
                if let Some(slot) = out.get_mut(i) {
                    *slot = copy;
                }
            }
        }
    }
    out
}

/// A change kind read back from a storage column (written with [`ChangeKind::as_str`]).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn stored_change_kind(s: &str) -> Result<crate::feed::ChangeKind, StoreError> {
    crate::feed::ChangeKind::from_name(s).ok_or_else(|| {
        StoreError::backend(std::io::Error::other(format!(
            "unknown change kind `{s}` in the database"
        )))
    })
}

/// The `LIMIT` clause for the candidates of an inexact answer: one past `max` (see
/// [`ListQuery::max_candidates`]), none when `max` is unbounded.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn candidate_limit(max: usize) -> String {
    if max >= i64::MAX as usize {
        String::new()
    } else {
        format!(" LIMIT {}", max.saturating_add(1))
    }
}

/// A SQL connection that work done in batches (a migration's re-fold, a sort-key rebuild)
/// opens its transactions on: a write transaction from the start in SQLite
/// (`BEGIN IMMEDIATE`), a plain one in PostgreSQL.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[async_trait]
pub(crate) trait BatchConnection: sqlx::Connection {
    /// A transaction for one batch.
    async fn begin_batch(&mut self) -> Result<sqlx::Transaction<'_, Self::Database>, StoreError>;
}

/// A count or sequence for a signed 64-bit database column (saturating).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A count or sequence read from a signed 64-bit database column (a negative one is 0).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_map_to_scim_errors() {
        let cases: Vec<(StoreError, u16, Option<&str>)> = vec![
            (
                StoreError::NotFound {
                    resource_type: "User".into(),
                    id: "u1".into(),
                },
                404,
                None,
            ),
            (
                StoreError::Conflict {
                    attribute: "userName".into(),
                },
                409,
                Some("uniqueness"),
            ),
            (
                StoreError::VersionMismatch {
                    current: Version::new(3),
                },
                412,
                None,
            ),
            (
                StoreError::InvalidMember("x".into()),
                400,
                Some("invalidValue"),
            ),
            (
                StoreError::InvalidFilter("f".into()),
                400,
                Some("invalidFilter"),
            ),
            (
                StoreError::InvalidValue("v".into()),
                400,
                Some("invalidValue"),
            ),
        ];
        for (e, status, ty) in cases {
            let s = ScimError::from(e.clone());
            assert_eq!(s.status().as_u16(), status, "{e:?}");
            assert_eq!(s.scim_type().map(|t| t.as_str()), ty, "{e:?}");
        }
        let conflict = ScimError::from(StoreError::Conflict {
            attribute: "userName".into(),
        });
        assert!(conflict.detail().contains("userName"));
        let member = ScimError::from(StoreError::InvalidMember("abc-1".into()));
        assert!(member.detail().contains("abc-1"));
    }

    #[test]
    fn backend_errors_do_not_leak() {
        let e = StoreError::backend(std::io::Error::other("db.internal:5432 password=x"));
        let s = ScimError::from(e);
        assert_eq!(s.status().as_u16(), 500);
        assert!(!s.to_body().to_string().contains("db.internal"));
    }

    #[test]
    fn store_is_object_safe_and_shareable() {
        fn assert_send_sync<T: Send + Sync + ?Sized>() {}
        assert_send_sync::<dyn ResourceStore>();
        let _: Arc<dyn ResourceStore> = Arc::new(MemoryStore::new());
    }
}
