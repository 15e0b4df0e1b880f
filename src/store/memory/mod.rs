//! The in-memory reference backend.

mod compact;
pub(crate) mod log;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::query::{compile, into_view, page_window, Needs};
use super::{
    CreateRequest, GroupRef, Keyset, ListQuery, Member, MemberPage, MemberRef, MembershipDelta,
    Page, Paging, Pushdown, ResourceStore, StoreError, StoredResource, UniqueKey, UnknownMembers,
    UpdateKind, UpdateRequest,
};
use crate::feed::{
    Change, ChangeHub, ChangeKind, ChangeNotifier, ChangeSubscription, MemberChanges,
};
use crate::filter::{
    compare_resources, fold_case_owned, CompValue, CompareOp, CompiledFilter, Filter, SortOrder,
    SortValue,
};
use crate::resource::{ResourceId, Version};
use crate::schema::{AttrPath, AttributeType, ResourceDef};
use crate::tenant::TenantId;

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

type Key = Arc<str>;

/// An entry of an [`AttrIndex`]: ((value, ord), id).
type IndexEntry<'a> = (&'a (Box<str>, u64), &'a Key);

#[derive(Default)]
struct TenantData {
    records: HashMap<Key, Record>,
    types: HashMap<Box<str>, TypeIndex>,
    /// member id -> the groups it is a direct member of.
    reverse: HashMap<Key, BTreeSet<Key>>,
    /// Record `i` has `seq == pruned_through + i + 1`: the feed is contiguous, and pruning
    /// only pops from the front.
    feed: VecDeque<FeedEntry>,
    /// The prune horizon: every record up to this `seq` was removed.
    pruned_through: u64,
    next_ord: u64,
}

struct Record {
    rt: Key,
    /// Creation order within the tenant: the order of unsorted lists.
    ord: u64,
    version: Version,
    created: DateTime<Utc>,
    last_modified: DateTime<Utc>,
    /// The document in the compact form of [`compact`]: a `serde_json::Value` takes about
    /// three times the memory. Indexed lookups and pages decode only what they return.
    doc: Box<[u8]>,
    /// `displayName`, else `userName`: the `display` of this resource as a member.
    display: Option<Box<str>>,
    /// Keys into `TypeIndex::unique`.
    unique: Box<[Key]>,
    /// The direct members, ordered by id; each the member record's own key (see
    /// [`key_addr`]).
    members: BTreeSet<Key>,
}

struct FeedEntry {
    rt: Key,
    id: Key,
    kind: ChangeKind,
    version: Version,
    at: DateTime<Utc>,
    members: Option<Box<MemberChanges>>,
    actor: Option<Box<str>>,
}

struct TypeIndex {
    /// The type's name, shared by its records and change records.
    name: Key,
    /// ord -> id, every resource of the type.
    order: BTreeMap<u64, Key>,
    /// Every id of the type, in id order: the cursor order of an unsorted keyset page.
    ids: BTreeSet<Key>,
    /// `attribute \0 value` -> id.
    unique: HashMap<Key, Key>,
    attrs: Vec<AttrIndex>,
}

struct AttrIndex {
    /// The canonical attribute name, as it appears in documents.
    name: String,
    fold: bool,
    /// (value, folded when not caseExact; ord) -> id. The ord breaks ties in creation order,
    /// as a stable sort of a creation-ordered list does.
    map: BTreeMap<(Box<str>, u64), Key>,
}

/// Attributes indexed when the resource type has them as single-valued strings.
/// `displayName` only for types without `userName` (groups), where IdPs look it up; on users
/// it would cost memory for a lookup nobody sends.
fn index_attrs(rt: &ResourceDef) -> Vec<AttrIndex> {
    let mut names = vec!["userName", "externalId"];
    if rt.top_level("userName").is_none() {
        names.push("displayName");
    }
    names
        .into_iter()
        .filter_map(|n| {
            let def = rt.top_level(n)?;
            (def.ty == AttributeType::String && !def.multi_valued).then(|| AttrIndex {
                name: def.name.clone(),
                fold: !def.case_exact,
                map: BTreeMap::new(),
            })
        })
        .collect()
}

impl TypeIndex {
    fn new(rt: &ResourceDef) -> Self {
        TypeIndex {
            name: Key::from(rt.name()),
            order: BTreeMap::new(),
            ids: BTreeSet::new(),
            unique: HashMap::new(),
            attrs: index_attrs(rt),
        }
    }

    fn attr_for(&self, rt: &ResourceDef, path: &AttrPath) -> Option<usize> {
        if path.sub_attr.is_some() {
            return None;
        }
        if let Some(urn) = &path.urn {
            if !rt.core().id.eq_ignore_ascii_case(urn) {
                return None;
            }
        }
        self.attrs
            .iter()
            .position(|a| a.name.eq_ignore_ascii_case(&path.name))
    }

    fn index(&mut self, id: &Key, ord: u64, doc: &Value) {
        for a in &mut self.attrs {
            if let Some(Value::String(s)) = doc.get(&a.name) {
                let k = if a.fold {
                    fold_case_owned(s)
                } else {
                    s.clone()
                };
                a.map.insert((k.into_boxed_str(), ord), Arc::clone(id));
            }
        }
    }

    fn unindex(&mut self, ord: u64, doc: &Value) {
        for a in &mut self.attrs {
            if let Some(Value::String(s)) = doc.get(&a.name) {
                let k = if a.fold {
                    fold_case_owned(s)
                } else {
                    s.clone()
                };
                a.map.remove(&(k.into_boxed_str(), ord));
            }
        }
    }
}

impl AttrIndex {
    fn key(&self, v: &str) -> String {
        if self.fold {
            fold_case_owned(v)
        } else {
            v.to_owned()
        }
    }

    /// Entries whose value equals (`prefix == false`) or starts with (`prefix == true`) `v`,
    /// in index order.
    fn range<'a>(
        &'a self,
        v: &str,
        prefix: bool,
    ) -> impl Iterator<Item = (&'a (Box<str>, u64), &'a Key)> + 'a {
        let k = self.key(v);
        let lo = Bound::Included((k.clone().into_boxed_str(), 0u64));
        let hi = if prefix {
            Bound::Unbounded
        } else {
            Bound::Included((k.clone().into_boxed_str(), u64::MAX))
        };
        self.map
            .range((lo, hi))
            .take_while(move |((s, _), _)| if prefix { s.starts_with(&k) } else { **s == *k })
    }
}

fn unique_key(k: &UniqueKey) -> String {
    format!("{}\u{0}{}", k.attribute, k.value)
}

fn encode(doc: &Value) -> Result<Box<[u8]>, StoreError> {
    compact::encode(doc).map_err(StoreError::backend)
}

impl Record {
    fn doc(&self) -> Result<Value, StoreError> {
        compact::decode(&self.doc).map_err(StoreError::backend)
    }
}

impl TenantData {
    fn get<'a>(&'a self, rt: &ResourceDef, id: &ResourceId) -> Result<&'a Record, StoreError> {
        self.records
            .get_key_value(id.as_str())
            .map(|(_, r)| r)
            .filter(|r| &*r.rt == rt.name())
            .ok_or_else(|| StoreError::not_found(rt, id))
    }

    #[allow(clippy::too_many_arguments)]
    fn push_change(
        &mut self,
        rt: &Key,
        id: &Key,
        kind: ChangeKind,
        version: Version,
        at: DateTime<Utc>,
        members: Option<MemberChanges>,
        actor: Option<&str>,
    ) -> u64 {
        self.feed.push_back(FeedEntry {
            actor: actor.map(Box::from),
            rt: Arc::clone(rt),
            id: Arc::clone(id),
            kind,
            version,
            at,
            members: members.map(Box::new),
        });
        self.last_seq()
    }

    /// The `seq` of the newest record (the horizon when the feed is empty).
    fn last_seq(&self) -> u64 {
        self.pruned_through
            .saturating_add(u64::try_from(self.feed.len()).unwrap_or(u64::MAX))
    }

    /// Pops the records `retention` says are due, at most its per-call bound.
    fn prune(
        &mut self,
        retention: &super::ChangeRetention,
        now: DateTime<Utc>,
    ) -> super::PruneReport {
        let cutoff = retention.cutoff(now);
        // Beyond the newest `max_entries`: the records up to this seq.
        let over = retention.max_entries.map_or(self.pruned_through, |keep| {
            self.last_seq().saturating_sub(keep)
        });
        let mut removed = 0u64;
        let complete = loop {
            let Some(front) = self.feed.front() else {
                break true;
            };
            let seq = self.pruned_through.saturating_add(1);
            let due = seq <= over || cutoff.is_some_and(|c| front.at < c);
            if !due {
                break true;
            }
            if removed >= retention.per_call() {
                break false;
            }
            self.feed.pop_front();
            self.pruned_through = seq;
            removed += 1;
        };
        super::PruneReport {
            removed,
            pruned_through: self.pruned_through,
            complete,
        }
    }

    fn member_list(&self, rec: &Record) -> Vec<Member> {
        rec.members.iter().map(|m| self.member(m)).collect()
    }

    fn member(&self, id: &Key) -> Member {
        let rec = self.records.get(id);
        Member {
            value: ResourceId::new(&**id),
            resource_type: rec.map(|r| r.rt.to_string()).unwrap_or_default(),
            display: rec.and_then(|r| r.display.as_deref()).map(str::to_owned),
        }
    }

    fn stored(
        &self,
        id: &Key,
        rec: &Record,
        with_members: bool,
    ) -> Result<StoredResource, StoreError> {
        Ok(StoredResource {
            id: ResourceId::new(&**id),
            resource_type: rec.rt.to_string(),
            version: rec.version,
            created: rec.created,
            last_modified: rec.last_modified,
            doc: rec.doc()?,
            members: with_members.then(|| self.member_list(rec)),
            skipped_members: Vec::new(),
        })
    }

    /// Resolves the members to add, each once (the first mention of an id decides): an id
    /// must be a resource of the tenant, of the claimed type, and not the group itself. Under
    /// [`UnknownMembers::Skip`] the others are returned apart; under `Reject` the first of
    /// them fails the write. Also returns the resolved members as a set of [`key_addr`]s, for
    /// the difference against the current members.
    fn resolve_members(
        &self,
        group: &str,
        add: &[MemberRef],
        policy: UnknownMembers,
    ) -> Result<ResolvedAdds, StoreError> {
        let mut out = ResolvedAdds {
            keys: Vec::with_capacity(add.len()),
            set: AddrSet::with_capacity_and_hasher(add.len(), Default::default()),
            skipped: Vec::new(),
        };
        let mut failed: HashSet<&str> = HashSet::new();
        for m in add {
            let id = m.value.as_str();
            let entry = self.records.get_key_value(id);
            let fits = entry.filter(|(key, rec)| {
                &***key != group
                    && m.resource_type
                        .as_deref()
                        .is_none_or(|t| t.eq_ignore_ascii_case(&rec.rt))
            });
            if let Some((key, _)) = fits {
                if (failed.is_empty() || !failed.contains(id)) && out.set.insert(key_addr(key)) {
                    out.keys.push(Arc::clone(key));
                }
                continue;
            }
            let resolved_before = entry.is_some_and(|(key, _)| out.set.contains(&key_addr(key)));
            if resolved_before || !failed.insert(id) {
                continue;
            }
            match policy {
                UnknownMembers::Skip => out.skipped.push(m.value.clone()),
                UnknownMembers::Reject => return Err(StoreError::InvalidMember(m.value.clone())),
            }
        }
        Ok(out)
    }
}

/// The identity of a record's id: the address of its shared `Arc<str>`. Every [`Key`] that
/// names an existing record (in member sets and the reverse index) is a clone of the record's
/// own key in `TenantData::records`, so two of them name the same record exactly when they
/// are the same allocation: comparing addresses needs neither the string nor its hash.
fn key_addr(key: &Key) -> usize {
    Arc::as_ptr(key).cast::<u8>() as usize
}

/// A hasher for [`key_addr`]s: one multiplication (Fibonacci hashing). Addresses are not
/// chosen by clients, so the set needs no protection against crafted collisions.
#[derive(Default)]
struct AddrHasher(u64);

impl std::hash::Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(26);
    }
}

/// A set of [`key_addr`]s.
type AddrSet = HashSet<usize, std::hash::BuildHasherDefault<AddrHasher>>;

/// The members to add of a write, resolved against the tenant's records.
struct ResolvedAdds {
    /// Each once, in request order.
    keys: Vec<Key>,
    /// The same, as [`key_addr`]s.
    set: AddrSet,
    /// The ids skipped under [`UnknownMembers::Skip`], each once, in request order.
    skipped: Vec<ResourceId>,
}

/// Candidates for a filter from the indexes.
enum Cands {
    /// No index applies: every resource of the type.
    All,
    /// Exactly these (ord -> id).
    Set(BTreeMap<u64, Key>),
}

struct Plan {
    cands: Cands,
    /// True when the candidates are exactly the matches (no evaluation needed).
    exact: bool,
}

/// The planner stops descending below this depth and lets the evaluator work.
const MAX_PLAN_DEPTH: usize = 32;

struct Planner<'a> {
    rt: &'a ResourceDef,
    data: &'a TenantData,
    ti: &'a TypeIndex,
}

impl Planner<'_> {
    fn plan(&self, f: &Filter, depth: usize) -> Plan {
        let scan = Plan {
            cands: Cands::All,
            exact: false,
        };
        if depth > MAX_PLAN_DEPTH {
            return scan;
        }
        match f {
            Filter::Compare {
                path,
                op: op @ (CompareOp::Eq | CompareOp::Sw),
                value: CompValue::String(v),
            } => {
                if let Some(i) = self.ti.attr_for(self.rt, path) {
                    let Some(ix) = self.ti.attrs.get(i) else {
                        return scan;
                    };
                    let set = ix
                        .range(v, *op == CompareOp::Sw)
                        .map(|((_, ord), id)| (*ord, Arc::clone(id)))
                        .collect();
                    return Plan {
                        cands: Cands::Set(set),
                        exact: true,
                    };
                }
                let is_id = path.sub_attr.is_none()
                    && path.urn.is_none()
                    && path.name.eq_ignore_ascii_case("id");
                if is_id && *op == CompareOp::Eq {
                    // `id` is caseExact (RFC 7643 §3.1).
                    let set = self
                        .data
                        .records
                        .get_key_value(v.as_str())
                        .filter(|(_, r)| &*r.rt == self.rt.name())
                        .map(|(k, r)| (r.ord, Arc::clone(k)))
                        .into_iter()
                        .collect();
                    return Plan {
                        cands: Cands::Set(set),
                        exact: true,
                    };
                }
                scan
            }
            Filter::And(a, b) => {
                let (pa, pb) = (self.plan(a, depth + 1), self.plan(b, depth + 1));
                match (pa.cands, pb.cands) {
                    (Cands::All, Cands::All) => scan,
                    (Cands::Set(s), Cands::All) | (Cands::All, Cands::Set(s)) => Plan {
                        cands: Cands::Set(s),
                        exact: false,
                    },
                    (Cands::Set(mut x), Cands::Set(y)) => {
                        x.retain(|k, _| y.contains_key(k));
                        Plan {
                            cands: Cands::Set(x),
                            exact: pa.exact && pb.exact,
                        }
                    }
                }
            }
            Filter::Or(a, b) => {
                let (pa, pb) = (self.plan(a, depth + 1), self.plan(b, depth + 1));
                match (pa.cands, pb.cands) {
                    (Cands::Set(mut x), Cands::Set(y)) => {
                        x.extend(y);
                        Plan {
                            cands: Cands::Set(x),
                            exact: pa.exact && pb.exact,
                        }
                    }
                    _ => scan,
                }
            }
            _ => scan,
        }
    }
}

/// The leaf `attr eq|sw "v"` on an indexed attribute, when the whole filter is that leaf.
fn index_leaf<'f>(
    ti: &TypeIndex,
    rt: &ResourceDef,
    f: &'f Filter,
) -> Option<(usize, &'f str, bool)> {
    match f {
        Filter::Compare {
            path,
            op: op @ (CompareOp::Eq | CompareOp::Sw),
            value: CompValue::String(v),
        } => ti
            .attr_for(rt, path)
            .map(|i| (i, v.as_str(), *op == CompareOp::Sw)),
        _ => None,
    }
}

/// The document the evaluator and sorter see for a record: the stored document, plus `id`,
/// `meta` and `members` when the query reads them.
fn eval_doc(data: &TenantData, needs: &Needs, id: &Key, rec: &Record) -> Result<Value, StoreError> {
    // Only the attributes the query reads: a scan then allocates almost nothing for the
    // resources it rejects.
    let doc = compact::decode_some(&rec.doc, &|k| needs.reads(k)).map_err(StoreError::backend)?;
    if !needs.any() {
        return Ok(doc);
    }
    Ok(into_view(StoredResource {
        id: ResourceId::new(&**id),
        resource_type: rec.rt.to_string(),
        version: rec.version,
        created: rec.created,
        last_modified: rec.last_modified,
        doc,
        members: needs.members.then(|| data.member_list(rec)),
        skipped_members: Vec::new(),
    }))
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
        let t = self.tenant_or_create(tenant);
        let (out, seq) = {
            let mut guard = write(&t);
            let data = &mut *guard;
            if data.records.contains_key(req.id.as_str()) {
                return Err(StoreError::Conflict {
                    attribute: "id".into(),
                });
            }
            let unique: Vec<Key> = req
                .unique_keys
                .iter()
                .map(|k| Key::from(unique_key(k)))
                .collect();
            if let Some(ti) = data.types.get(rt.name()) {
                for (k, uk) in unique.iter().zip(&req.unique_keys) {
                    if ti.unique.contains_key(k) {
                        return Err(StoreError::Conflict {
                            attribute: uk.attribute.clone(),
                        });
                    }
                }
            }
            let ResolvedAdds {
                keys: members,
                skipped: skipped_members,
                ..
            } = data.resolve_members(req.id.as_str(), &req.members, req.unknown_members)?;
            let encoded = encode(&req.doc)?;

            let id: Key = Key::from(req.id.as_str());
            let rt_key: Key = data
                .types
                .entry(Box::from(rt.name()))
                .or_insert_with(|| TypeIndex::new(rt))
                .name
                .clone();
            let ord = data.next_ord;
            data.next_ord += 1;
            let rec = Record {
                rt: Arc::clone(&rt_key),
                ord,
                version: Version::INITIAL,
                created: req.now,
                last_modified: req.now,
                doc: encoded,
                display: super::member_display(&req.doc).map(Box::from),
                unique: unique.into_boxed_slice(),
                members: members.into_iter().collect(),
            };
            let ti = data
                .types
                .entry(Box::from(rt.name()))
                .or_insert_with(|| TypeIndex::new(rt));
            for k in rec.unique.iter() {
                ti.unique.insert(Arc::clone(k), Arc::clone(&id));
            }
            ti.order.insert(ord, Arc::clone(&id));
            ti.ids.insert(Arc::clone(&id));
            ti.index(&id, ord, &req.doc);
            for m in &rec.members {
                data.reverse
                    .entry(Arc::clone(m))
                    .or_default()
                    .insert(Arc::clone(&id));
            }
            let initial = (!rec.members.is_empty()).then(|| {
                MemberChanges::delta(
                    rec.members.iter().map(|m| ResourceId::new(&**m)).collect(),
                    Vec::new(),
                )
            });
            let seq = data.push_change(
                &rt_key,
                &id,
                ChangeKind::Created,
                rec.version,
                req.now,
                initial,
                req.actor.as_deref(),
            );
            let out = StoredResource {
                id: req.id,
                resource_type: rt.name().to_owned(),
                version: rec.version,
                created: rec.created,
                last_modified: rec.last_modified,
                doc: req.doc,
                members: (!req.members.is_empty()).then(|| data.member_list(&rec)),
                skipped_members,
            };
            data.records.insert(id, rec);
            (out, seq)
        };
        self.notify(tenant, Some(seq));
        Ok(out)
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
        let t = self
            .tenant(tenant)
            .ok_or_else(|| StoreError::not_found(rt, id))?;
        let (out, seq) = {
            let mut guard = write(&t);
            let data = &mut *guard;
            let rec = data.get(rt, id)?;
            StoreError::check_version(req.expected_version, rec.version)?;
            let key = data
                .records
                .get_key_value(id.as_str())
                .map(|(k, _)| Arc::clone(k))
                .ok_or_else(|| StoreError::not_found(rt, id))?;

            // Validate everything before changing anything.
            let old_doc = rec.doc()?;
            let encoded = match &req.document {
                Some(d) => Some((
                    encode(&d.doc)?,
                    super::member_display(&d.doc).map(Box::from),
                )),
                None => None,
            };
            let new_unique: Option<Vec<Key>> = match &req.document {
                None => None,
                Some(d) => {
                    let keys: Vec<Key> = d
                        .unique_keys
                        .iter()
                        .map(|k| Key::from(unique_key(k)))
                        .collect();
                    if let Some(ti) = data.types.get(rt.name()) {
                        for (k, uk) in keys.iter().zip(&d.unique_keys) {
                            if ti.unique.get(k).is_some_and(|owner| *owner != key) {
                                return Err(StoreError::Conflict {
                                    attribute: uk.attribute.clone(),
                                });
                            }
                        }
                    }
                    Some(keys)
                }
            };
            let (added, removed, skipped_members) = match &req.members {
                None => (Vec::new(), Vec::new(), Vec::new()),
                Some(delta) => membership_change(data, &key, rec, delta)?,
            };
            // The resulting members are returned after a full replacement, when asked for.
            let return_members = |rec: &Record| {
                req.members.as_ref().is_some_and(|d| d.clear)
                    && req
                        .return_members
                        .is_some_and(|max| rec.members.len() <= max)
            };
            let membership_changed = !added.is_empty() || !removed.is_empty();
            let member_changes = match &req.members {
                Some(d) if d.clear && membership_changed => Some(MemberChanges::Replaced),
                _ if membership_changed => Some(MemberChanges::delta(
                    added.iter().map(|m| ResourceId::new(&**m)).collect(),
                    removed.iter().map(|m| ResourceId::new(&**m)).collect(),
                )),
                _ => None,
            };
            let had_document = req.document.is_some();
            if !had_document && !membership_changed {
                return Ok(StoredResource {
                    id: id.clone(),
                    resource_type: rec.rt.to_string(),
                    version: rec.version,
                    created: rec.created,
                    last_modified: rec.last_modified,
                    doc: old_doc,
                    members: return_members(rec).then(|| data.member_list(rec)),
                    skipped_members,
                });
            }

            // Apply.
            let Some(mut rec) = data.records.remove(&key) else {
                return Err(StoreError::not_found(rt, id));
            };
            let ti = data
                .types
                .entry(Box::from(rt.name()))
                .or_insert_with(|| TypeIndex::new(rt));
            let out_doc = match (req.document, new_unique, encoded) {
                (Some(doc), Some(keys), Some((text, display))) => {
                    ti.unindex(rec.ord, &old_doc);
                    for k in rec.unique.iter() {
                        ti.unique.remove(k);
                    }
                    rec.doc = text;
                    rec.display = display;
                    for k in &keys {
                        ti.unique.insert(Arc::clone(k), Arc::clone(&key));
                    }
                    rec.unique = keys.into_boxed_slice();
                    ti.index(&key, rec.ord, &doc.doc);
                    doc.doc
                }
                _ => old_doc,
            };
            for m in removed {
                rec.members.remove(&m);
                if let Some(groups) = data.reverse.get_mut(&m) {
                    groups.remove(&key);
                    if groups.is_empty() {
                        data.reverse.remove(&m);
                    }
                }
            }
            for m in added {
                data.reverse
                    .entry(Arc::clone(&m))
                    .or_default()
                    .insert(Arc::clone(&key));
                rec.members.insert(m);
            }
            rec.version = rec.version.next();
            rec.last_modified = req.now;
            let kind = match (had_document, req.kind) {
                (false, _) => ChangeKind::MembershipChanged,
                (true, UpdateKind::Replace) => ChangeKind::Replaced,
                (true, UpdateKind::Patch) => ChangeKind::Patched,
            };
            let rt_key = Arc::clone(&rec.rt);
            let seq = data.push_change(
                &rt_key,
                &key,
                kind,
                rec.version,
                req.now,
                member_changes,
                req.actor.as_deref(),
            );
            let out = StoredResource {
                id: id.clone(),
                resource_type: rec.rt.to_string(),
                version: rec.version,
                created: rec.created,
                last_modified: rec.last_modified,
                doc: out_doc,
                members: return_members(&rec).then(|| data.member_list(&rec)),
                skipped_members,
            };
            data.records.insert(key, rec);
            (out, seq)
        };
        self.notify(tenant, Some(seq));
        Ok(out)
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
        let t = self
            .tenant(tenant)
            .ok_or_else(|| StoreError::not_found(rt, id))?;
        let seq = {
            let mut guard = write(&t);
            let data = &mut *guard;
            let rec = data.get(rt, id)?;
            StoreError::check_version(expected_version, rec.version)?;
            let old_doc = rec.doc()?;
            let Some((key, rec)) = data.records.remove_entry(id.as_str()) else {
                return Err(StoreError::not_found(rt, id));
            };
            if let Some(ti) = data.types.get_mut(rt.name()) {
                ti.unindex(rec.ord, &old_doc);
                for k in rec.unique.iter() {
                    ti.unique.remove(k);
                }
                ti.order.remove(&rec.ord);
                ti.ids.remove(&key);
            }
            for m in &rec.members {
                if let Some(groups) = data.reverse.get_mut(m) {
                    groups.remove(&key);
                    if groups.is_empty() {
                        data.reverse.remove(m);
                    }
                }
            }
            let mut seq = data.push_change(
                &rec.rt,
                &key,
                ChangeKind::Deleted,
                rec.version.next(),
                now,
                None,
                actor,
            );
            for g in data.reverse.remove(&key).unwrap_or_default() {
                let Some(group) = data.records.get_mut(&g) else {
                    continue;
                };
                group.members.remove(&key);
                group.version = group.version.next();
                group.last_modified = now;
                let (grt, gv) = (Arc::clone(&group.rt), group.version);
                let left = MemberChanges::delta(Vec::new(), vec![ResourceId::new(&*key)]);
                seq = data.push_change(
                    &grt,
                    &g,
                    ChangeKind::MembershipChanged,
                    gv,
                    now,
                    Some(left),
                    actor,
                );
            }
            seq
        };
        self.notify(tenant, Some(seq));
        Ok(())
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

/// The members a delta adds (net), removes (net), and the ids it skipped.
type MembershipChange = (Vec<Key>, Vec<Key>, Vec<ResourceId>);

/// The net members added and removed by `delta` (clear, then remove, then add), and the
/// ids to add that were skipped. Linear in the ids the delta names (plus the current members
/// for a `clear`): a full replacement compares hash sets, not one tree search per id.
fn membership_change(
    data: &TenantData,
    group: &Key,
    rec: &Record,
    delta: &MembershipDelta,
) -> Result<MembershipChange, StoreError> {
    let adds = data.resolve_members(group, &delta.add, delta.unknown)?;
    if delta.clear {
        let current: AddrSet = rec.members.iter().map(key_addr).collect();
        let removed = rec
            .members
            .iter()
            .filter(|m| !adds.set.contains(&key_addr(m)))
            .cloned()
            .collect();
        let added = adds
            .keys
            .into_iter()
            .filter(|m| !current.contains(&key_addr(m)))
            .collect();
        return Ok((added, removed, adds.skipped));
    }
    // A delta: the ids it names, each looked up in the ordered member set.
    let mut seen = AddrSet::default();
    let removed: Vec<Key> = delta
        .remove
        .iter()
        .filter_map(|r| rec.members.get(r.as_str()))
        .filter(|m| !adds.set.contains(&key_addr(m)) && seen.insert(key_addr(m)))
        .cloned()
        .collect();
    let added: Vec<Key> = adds
        .keys
        .into_iter()
        .filter(|m| !rec.members.contains(m))
        .collect();
    Ok((added, removed, adds.skipped))
}

/// Answers a list query from the indexes and the evaluator (always exactly).
/// A keyset page ([`Paging::Keyset`]): without a filter, a walk of the id set or of an
/// attribute index from the position; otherwise every match, paged by the engine.
fn keyset_in(
    data: &TenantData,
    ti: &TypeIndex,
    rt: &ResourceDef,
    query: &ListQuery,
    after: Option<&Keyset>,
) -> Result<Page, StoreError> {
    let total = ti.order.len();
    let by_id = match &query.sort {
        None => Some(false),
        Some(s) => rt
            .resolve(&s.by)
            .filter(|r| r.extension.is_none() && r.sub.is_none())
            .filter(|r| r.attr.name == "id" && r.attr.case_exact)
            .map(|_| s.order == SortOrder::Descending),
    };
    if query.filter.is_none() {
        if let Some(desc) = by_id {
            let from: Bound<&str> =
                after.map_or(Bound::Unbounded, |k| Bound::Excluded(k.id.as_str()));
            let mut resources = Vec::new();
            let ids: Box<dyn Iterator<Item = &Key>> = if desc {
                let to: Bound<&str> =
                    after.map_or(Bound::Unbounded, |k| Bound::Excluded(k.id.as_str()));
                Box::new(ti.ids.range::<str, _>((Bound::Unbounded, to)).rev())
            } else {
                Box::new(ti.ids.range::<str, _>((from, Bound::Unbounded)))
            };
            for id in ids.take(query.count) {
                if let Some(rec) = data.records.get(id) {
                    resources.push(data.stored(id, rec, query.include_members)?);
                }
            }
            return Ok(Page {
                resources,
                total_results: total,
                pushdown: Pushdown::Exact,
            });
        }
        let sort_ix = query.sort.as_ref().and_then(|s| {
            let i = ti.attr_for(rt, &s.by)?;
            let ix = ti.attrs.get(i)?;
            // Every resource has the value (none sorts last, outside the index), and the
            // index holds the sort value (folded exactly when the sorter folds).
            let fold = rt.top_level(&ix.name).is_some_and(|d| !d.case_exact);
            (ix.map.len() == total
                && ix.fold == fold
                && ix.map.keys().next().is_none_or(|(v, _)| !v.is_empty()))
            .then_some((ix, s.order))
        });
        if let Some((ix, order)) = sort_ix {
            let start: Option<(&str, &str)> = match after {
                None => None,
                Some(Keyset {
                    value: Some(SortValue::String(v)),
                    id,
                }) => Some((v.as_str(), id.as_str())),
                // A position among resources without a value: none are left.
                Some(_) => {
                    return Ok(Page {
                        resources: Vec::new(),
                        total_results: total,
                        pushdown: Pushdown::Exact,
                    })
                }
            };
            // Entries in (value, id) order from the position, one run of equal values at a
            // time (the index orders ties by creation).
            let entries: Box<dyn Iterator<Item = IndexEntry<'_>>> = match (order, start) {
                (SortOrder::Ascending, None) => Box::new(ix.map.iter()),
                (SortOrder::Ascending, Some((v, _))) => Box::new(
                    ix.map
                        .range::<(Box<str>, u64), _>((Box::<str>::from(v), 0)..),
                ),
                (SortOrder::Descending, None) => Box::new(ix.map.iter().rev()),
                (SortOrder::Descending, Some((v, _))) => Box::new(
                    ix.map
                        .range::<(Box<str>, u64), _>(..=(Box::<str>::from(v), u64::MAX))
                        .rev(),
                ),
            };
            let mut out: Vec<&Key> = Vec::new();
            let mut run: Vec<&Key> = Vec::new();
            let mut run_value: Option<&str> = None;
            /// Moves a run of equal values to `out`, ordered by id, past the position.
            fn flush<'k>(
                run: &mut Vec<&'k Key>,
                value: Option<&str>,
                out: &mut Vec<&'k Key>,
                order: SortOrder,
                start: Option<(&str, &str)>,
                count: usize,
            ) {
                run.sort_by(|a, b| a.as_ref().cmp(b.as_ref()));
                if order == SortOrder::Descending {
                    run.reverse();
                }
                for id in run.drain(..) {
                    let past = match (start, value) {
                        (Some((sv, sid)), Some(v)) if v == sv => match order {
                            SortOrder::Ascending => id.as_ref() > sid,
                            SortOrder::Descending => id.as_ref() < sid,
                        },
                        _ => true,
                    };
                    if past && out.len() < count {
                        out.push(id);
                    }
                }
            }
            for ((v, _), id) in entries {
                if run_value != Some(v.as_ref()) {
                    flush(&mut run, run_value, &mut out, order, start, query.count);
                    if out.len() >= query.count {
                        run_value = None;
                        break;
                    }
                    run_value = Some(v.as_ref());
                }
                run.push(id);
            }
            flush(&mut run, run_value, &mut out, order, start, query.count);
            let mut resources = Vec::with_capacity(out.len());
            for id in out {
                if let Some(rec) = data.records.get(id) {
                    resources.push(data.stored(id, rec, query.include_members)?);
                }
            }
            return Ok(Page {
                resources,
                total_results: total,
                pushdown: Pushdown::Exact,
            });
        }
    }
    // Every match, then the engine's keyset over them.
    let all = ListQuery {
        paging: Paging::Index,
        start_index: 1,
        count: usize::MAX,
        include_members: query.include_members || query.reads_members(),
        ..query.clone()
    };
    let page = list_in(data, ti, rt, &all)?;
    let rest = ListQuery {
        filter: None,
        ..query.clone()
    };
    super::apply_query(rt, &rest, page.resources)
}

fn list_in(
    data: &TenantData,
    ti: &TypeIndex,
    rt: &ResourceDef,
    query: &ListQuery,
) -> Result<Page, StoreError> {
    if let Paging::Keyset(after) = &query.paging {
        return keyset_in(data, ti, rt, query, after.as_ref());
    }
    let leaf = query.filter.as_ref().and_then(|f| index_leaf(ti, rt, f));
    let sort_ix = query.sort.as_ref().and_then(|s| {
        let i = ti.attr_for(rt, &s.by)?;
        let ix = ti.attrs.get(i)?;
        // Resources without the value sort last, which an index walk cannot place.
        (ix.map.len() == ti.order.len()).then_some((i, ix, s.order))
    });

    // Fast path: the filter is absent or one `eq`/`sw` on an indexed attribute, and the sort
    // (if any) is ascending on that attribute: walk the index range, counting it, and build
    // only the requested page. Without a sort, the order is the index's (stable).
    let walk: Option<Box<dyn Iterator<Item = IndexEntry<'_>>>> = match (leaf, sort_ix) {
        (Some((i, v, prefix)), None) if query.sort.is_none() => {
            ti.attrs
                .get(i)
                .map(|ix| -> Box<dyn Iterator<Item = IndexEntry<'_>>> {
                    Box::new(ix.range(v, prefix))
                })
        }
        (Some((i, v, prefix)), Some((j, ix, SortOrder::Ascending))) if i == j => {
            Some(Box::new(ix.range(v, prefix)))
        }
        (None, Some((_, ix, SortOrder::Ascending))) if query.filter.is_none() => {
            Some(Box::new(ix.map.iter()))
        }
        _ => None,
    };
    if let Some(entries) = walk {
        let w_start = query.start_index.saturating_sub(1);
        let mut total = 0usize;
        let mut resources = Vec::new();
        for (_, id) in entries {
            if total >= w_start && resources.len() < query.count {
                if let Some(rec) = data.records.get(id) {
                    resources.push(data.stored(id, rec, query.include_members)?);
                }
            }
            total += 1;
        }
        return Ok(Page {
            resources,
            total_results: total,
            pushdown: Pushdown::Exact,
        });
    }

    // Compiled only now: the fast path above needs no evaluator.
    let needs = Needs::of(query.filter.as_ref(), query.sort.as_ref());
    let compiled: Option<CompiledFilter> = match &query.filter {
        Some(f) => Some(compile(rt, f)?),
        None => None,
    };
    let compiled = compiled.as_ref();
    let plan = match &query.filter {
        None => Plan {
            cands: Cands::All,
            exact: true,
        },
        Some(f) => Planner { rt, data, ti }.plan(f, 0),
    };
    // Whether a candidate matches; with the document the evaluator saw, when it parsed one.
    let keep = |id: &Key, ord: u64| -> Result<Option<(&Record, Option<Value>)>, StoreError> {
        if let Cands::Set(s) = &plan.cands {
            if !s.contains_key(&ord) {
                return Ok(None);
            }
        }
        let Some(rec) = data.records.get(id) else {
            return Ok(None);
        };
        match compiled {
            Some(c) if !plan.exact => {
                let doc = eval_doc(data, &needs, id, rec)?;
                Ok(c.matches(&doc).then_some((rec, Some(doc))))
            }
            _ => Ok(Some((rec, None))),
        }
    };

    let ordered: Vec<(&Key, &Record)> = if let Some((_, ix, order)) = sort_ix {
        // Sorted by an indexed attribute every resource has: walk the whole index.
        let mut out: Vec<(&Key, &Record, &str)> = Vec::new();
        for ((v, ord), id) in ix.map.iter() {
            if let Some((rec, _)) = keep(id, *ord)? {
                out.push((id, rec, v));
            }
        }
        if order == SortOrder::Descending {
            out.reverse();
            // Equal values keep creation order, as a stable sort does.
            let mut i = 0;
            while i < out.len() {
                let v = out.get(i).map(|e| e.2);
                let run = out
                    .get(i..)
                    .map(|r| r.iter().take_while(|e| Some(e.2) == v).count())
                    .unwrap_or(1)
                    .max(1);
                if let Some(slice) = out.get_mut(i..i + run) {
                    slice.reverse();
                }
                i += run;
            }
        }
        out.into_iter().map(|(id, rec, _)| (id, rec)).collect()
    } else {
        let iter: Box<dyn Iterator<Item = (&u64, &Key)>> = match &plan.cands {
            Cands::Set(s) => Box::new(s.iter()),
            Cands::All => Box::new(ti.order.iter()),
        };
        let mut out: Vec<(&Key, &Record, Option<Value>)> = Vec::new();
        for (ord, id) in iter {
            if let Some((rec, doc)) = keep(id, *ord)? {
                out.push((id, rec, doc));
            }
        }
        if let Some(spec) = &query.sort {
            let mut docs = Vec::with_capacity(out.len());
            for (id, rec, doc) in out {
                let doc = match doc {
                    Some(d) => d,
                    None => eval_doc(data, &needs, id, rec)?,
                };
                docs.push((id, rec, doc));
            }
            docs.sort_by(|(_, _, a), (_, _, b)| compare_resources(rt, spec, a, b));
            docs.into_iter().map(|(id, rec, _)| (id, rec)).collect()
        } else {
            out.into_iter().map(|(id, rec, _)| (id, rec)).collect()
        }
    };
    let total = ordered.len();
    let w = page_window(query.start_index, query.count, total);
    let mut resources = Vec::with_capacity(w.len());
    for (id, rec) in ordered.into_iter().skip(w.start).take(w.len()) {
        resources.push(data.stored(id, rec, query.include_members)?);
    }
    Ok(Page {
        resources,
        total_results: total,
        pushdown: Pushdown::Exact,
    })
}

#[cfg(test)]
mod tests;
