//! The requests a store receives and the answers it gives: resources, create and update
//! requests, list queries and pages, membership pages, and change-feed retention.

use std::fmt;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::filter::{Filter, SortSpec, SortValue};
use crate::resource::{
    Member, MemberRef, MembershipDelta, ResourceId, UniqueKey, UnknownMembers, Version,
};

// What the documentation of these types links to.
#[cfg(doc)]
use super::{apply_query, keyset_cmp, ResourceStore, StoreError};
#[cfg(doc)]
use crate::feed::Change;

/// A resource as a store keeps it.
///
/// `doc` is the normalised document without `id` and `meta` (the service renders those from
/// the other fields) and without `members` (membership is a relation, kept apart).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResource {
    /// The resource id, unique within the tenant across all resource types.
    pub id: ResourceId,
    /// The resource type name (`User`).
    pub resource_type: String,
    /// The current version.
    pub version: Version,
    /// When it was created.
    pub created: DateTime<Utc>,
    /// When it was last written (including membership changes).
    pub last_modified: DateTime<Utc>,
    /// The normalised document, without `id`, `meta` and `members`.
    pub doc: Value,
    /// The members, ordered by member id: after a read, when the caller asked for them;
    /// after a write, when the write set the whole membership (a create with initial
    /// members, or an update whose delta has [`clear`](MembershipDelta::clear) and whose
    /// [`UpdateRequest::return_members`] admits the resulting count), since the store has just
    /// resolved each of them. `None` otherwise: a write never reads the member list back.
    pub members: Option<Vec<Member>>,
    /// After a write under [`UnknownMembers::Skip`]: the member ids to add that were skipped
    /// (not a resource of the tenant, not of the claimed type, or the group itself), each
    /// once, in request order. Empty after a read.
    pub skipped_members: Vec<ResourceId>,
}

/// A new resource.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateRequest {
    /// The id to give it (the service generates it; a store refuses a taken id with
    /// [`StoreError::Conflict`] on `id`).
    pub id: ResourceId,
    /// The normalised document, without `id`, `meta` and `members`.
    pub doc: Value,
    /// The uniqueness keys of `doc`.
    pub unique_keys: Vec<UniqueKey>,
    /// Initial members (groups).
    pub members: Vec<MemberRef>,
    /// What to do with initial members that cannot be members.
    pub unknown_members: UnknownMembers,
    /// The commit time, used for `created`, `lastModified` and the change record.
    pub now: DateTime<Utc>,
    /// Who writes, recorded in the change record ([`Change::actor`]): the service passes
    /// the id of the bearer token that authenticated the request.
    pub actor: Option<String>,
}

/// A new document for an existing resource, with its uniqueness keys.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDocument {
    /// The normalised document, without `id`, `meta` and `members`.
    pub doc: Value,
    /// The uniqueness keys of `doc`; they replace the resource's previous keys.
    pub unique_keys: Vec<UniqueKey>,
}

/// How an update came about, for the change feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum UpdateKind {
    /// A `PUT`.
    #[default]
    Replace,
    /// A `PATCH`.
    Patch,
}

/// A write to an existing resource: a new document, a membership delta, or both, applied
/// atomically with one version bump and one change record.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateRequest {
    /// The version the caller read; a different current version fails with
    /// [`StoreError::VersionMismatch`]. `None` writes unconditionally.
    pub expected_version: Option<Version>,
    /// The new document, if it changes.
    pub document: Option<NewDocument>,
    /// The membership change, if any.
    pub members: Option<MembershipDelta>,
    /// After a delta with [`clear`](MembershipDelta::clear) (a full replacement of the
    /// membership): the store returns the resulting members in [`StoredResource::members`]
    /// when there are at most this many. `None` never returns them, so that the answer to a
    /// write need not grow with the group; `Some(usize::MAX)` always does.
    pub return_members: Option<usize>,
    /// `PUT` or `PATCH` (recorded as [`ChangeKind::Replaced`](crate::feed::ChangeKind) or
    /// `Patched`; a write with only a membership delta is recorded as `MembershipChanged`).
    pub kind: UpdateKind,
    /// The commit time.
    pub now: DateTime<Utc>,
    /// Who writes, recorded in the change record ([`Change::actor`]).
    pub actor: Option<String>,
}

/// A list query (RFC 7644 §3.4.2), already validated by the service.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    /// The filter, if any.
    pub filter: Option<Filter>,
    /// The sort, if any.
    pub sort: Option<SortSpec>,
    /// The 1-based index of the first result. RFC 7644 §3.4.2.4: a `startIndex` below 1 is
    /// interpreted as 1, so the service maps 0 and negative wire values to 1 (0 is also
    /// treated as 1 here).
    pub start_index: usize,
    /// The maximum number of results. RFC 7644 §3.4.2.4: a negative `count` is interpreted as
    /// 0, which asks only for `totalResults`; the service caps it at its page size limit.
    pub count: usize,
    /// Whether groups come with their members.
    pub include_members: bool,
    /// The most candidates the caller evaluates itself. A store answering
    /// [`Pushdown::Inexact`] or [`Pushdown::Unsupported`] may stop after
    /// `max_candidates + 1` candidates (in its candidate order): the caller refuses a query
    /// with more candidates than this (the service answers 400 `tooMany`, see
    /// [`Limits::max_resources_scanned`](crate::settings::Limits::max_resources_scanned)),
    /// so reading further is wasted work. `usize::MAX` (the default) reads them all. An
    /// [`Pushdown::Exact`] answer is not affected.
    pub max_candidates: usize,
    /// Index paging (the default) or keyset paging for RFC 9865 cursors. A store that
    /// answers [`Pushdown::Exact`] to a [`Paging::Keyset`] query must page by keyset
    /// itself and say so with [`ResourceStore::keyset_paging`]; the service never sends a
    /// keyset query to a store that does not.
    pub paging: Paging,
}

/// How a list is paged.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Paging {
    /// Index paging (RFC 7644 §3.4.2.4): the page at [`ListQuery::start_index`], in the
    /// sort's order with creation order breaking ties.
    #[default]
    Index,
    /// Keyset paging (for RFC 9865 cursors): the [`ListQuery::count`] matches that follow
    /// the position (from the first when `None`) in the *cursor order*, and
    /// [`ListQuery::start_index`] is ignored; [`Page::total_results`] still counts every
    /// match. The cursor order (see [`keyset_cmp`]) is total, so a walk from page to page
    /// neither skips nor repeats a resource that exists throughout, whatever is created or
    /// deleted meanwhile:
    /// - without a sort: by id (byte order);
    /// - with a sort: the resources with a sort value (see [`crate::filter::sort_value`])
    ///   by `(value, id)`, both ascending for an ascending sort and both descending for a
    ///   descending one, then the resources without a value by ascending id.
    Keyset(Option<Keyset>),
}

/// A position in the cursor order of a list (see [`Paging::Keyset`]): the sort value and the
/// id of the last resource of a page.
#[derive(Debug, Clone, PartialEq)]
pub struct Keyset {
    /// The resource's sort value; `None` without a sort or when it has no value.
    pub value: Option<SortValue>,
    /// The resource's id.
    pub id: ResourceId,
}

impl ListQuery {
    /// True when the filter or the sort reads `members`. A backend answering
    /// [`Pushdown::Inexact`] or [`Pushdown::Unsupported`] must then return its candidates with
    /// their members even if `include_members` is false, so that [`apply_query`] can evaluate
    /// them (it drops them again unless `include_members` is set).
    pub fn reads_members(&self) -> bool {
        super::query::Needs::of(self.filter.as_ref(), self.sort.as_ref()).members
    }
}

impl Default for ListQuery {
    fn default() -> Self {
        ListQuery {
            filter: None,
            sort: None,
            start_index: 1,
            count: usize::MAX,
            include_members: false,
            max_candidates: usize::MAX,
            paging: Paging::Index,
        }
    }
}

/// How much of a [`ListQuery`] a store answered itself (the DataFusion pushdown model).
///
/// An `Exact` answer costs the service one page; the others cost it every candidate, so the
/// service evaluates at most
/// [`Limits::max_resources_scanned`](crate::settings::Limits::max_resources_scanned) of them
/// (passed as [`ListQuery::max_candidates`]) and answers 400 `tooMany` beyond.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pushdown {
    /// The store filtered, sorted and paged: `resources` is the requested page and
    /// `total_results` the exact number of matches.
    Exact,
    /// The store narrowed the candidates with part of the filter: `resources` is an unpaged,
    /// unsorted superset of the matches, and the service must evaluate, sort and page it
    /// (never paging below an inexact filter). Candidates carry their members when
    /// [`ListQuery::reads_members`] or `include_members` asks for them.
    Inexact,
    /// The store ignored the filter: `resources` is every resource of the type (with members
    /// under the same rule as `Inexact`).
    Unsupported,
}

/// The answer to a [`ListQuery`].
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The page (for [`Pushdown::Exact`]) or the candidates (otherwise).
    pub resources: Vec<StoredResource>,
    /// The number of matches across all pages (for [`Pushdown::Exact`]), or of candidates.
    pub total_results: usize,
    /// What the store did.
    pub pushdown: Pushdown,
}

/// A page of a group's members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberPage {
    /// The members of this page, ordered by member id.
    pub members: Vec<Member>,
    /// The group's member count.
    pub total_results: usize,
}

/// A group a resource is a direct member of (for the read-only `User.groups`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRef {
    /// The group's id.
    pub id: ResourceId,
    /// The group's resource type name.
    pub resource_type: String,
    /// The group's `displayName`.
    pub display: Option<String>,
}

/// How much of a tenant's change feed to keep, for
/// [`ResourceStore::prune_changes`].
///
/// An entry goes when it is older than `max_age` **or** when more than `max_entries` newer
/// entries follow it; `None` puts no limit of that kind (both `None` keeps everything).
/// Pruning only ever removes a prefix of the feed (the oldest entries, in `seq` order): an
/// entry is never removed while an older one is kept, so a reader never sees a gap, only the
/// [`StoreError::ChangesPruned`] answer when it asks for a removed position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChangeRetention {
    /// Entries committed (their [`Change::at`]) more than this long before the `now` given
    /// to `prune_changes` are removed.
    pub max_age: Option<std::time::Duration>,
    /// At most this many of the newest entries are kept.
    pub max_entries: Option<u64>,
    /// At most this many entries are removed by one call (at least 1), so that one call is
    /// bounded work; [`PruneReport::complete`] says whether more was due. The SQL stores
    /// delete in batches of at most [`ChangeRetention::BATCH`] rows, each in its own short
    /// transaction.
    pub max_removed_per_call: u64,
}

impl ChangeRetention {
    /// The default age limit: 30 days.
    pub const DEFAULT_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);

    /// The default of [`max_removed_per_call`](Self::max_removed_per_call).
    pub const DEFAULT_MAX_REMOVED_PER_CALL: u64 = 100_000;

    /// The largest number of rows a SQL store deletes in one transaction.
    pub const BATCH: u64 = 1_000;

    /// Keeps entries younger than `max_age`, with the default bound per call.
    pub fn max_age(max_age: std::time::Duration) -> Self {
        ChangeRetention {
            max_age: Some(max_age),
            ..ChangeRetention::default()
        }
    }

    /// Keeps the newest `max_entries` entries, with the default bound per call.
    pub fn max_entries(max_entries: u64) -> Self {
        ChangeRetention {
            max_entries: Some(max_entries),
            ..ChangeRetention::default()
        }
    }

    /// The oldest commit time kept at `now`: entries strictly before it are too old. `None`
    /// without an age limit (or when it reaches before the earliest representable time).
    pub(crate) fn cutoff(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let age = chrono::Duration::from_std(self.max_age?).ok()?;
        now.checked_sub_signed(age)
    }

    /// The per-call bound, at least 1.
    pub(crate) fn per_call(&self) -> u64 {
        self.max_removed_per_call.max(1)
    }
}

impl Default for ChangeRetention {
    /// Keeps [`DEFAULT_MAX_AGE`](Self::DEFAULT_MAX_AGE) (30 days), with no count limit.
    fn default() -> Self {
        ChangeRetention {
            max_age: Some(Self::DEFAULT_MAX_AGE),
            max_entries: None,
            max_removed_per_call: Self::DEFAULT_MAX_REMOVED_PER_CALL,
        }
    }
}

/// What one [`ResourceStore::prune_changes`] call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PruneReport {
    /// The number of entries removed by this call.
    pub removed: u64,
    /// The tenant's prune horizon after the call: every entry with `seq` up to this one is
    /// gone, and [`changes_since`](ResourceStore::changes_since) accepts any position from
    /// here on. 0 when nothing was ever pruned.
    pub pruned_through: u64,
    /// False when the per-call bound stopped the call before everything due was removed:
    /// call again.
    pub complete: bool,
}

impl fmt::Display for Pushdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Pushdown::Exact => "exact",
            Pushdown::Inexact => "inexact",
            Pushdown::Unsupported => "unsupported",
        })
    }
}
