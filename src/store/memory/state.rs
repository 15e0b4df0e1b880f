//! The state of one tenant: records, per-type indexes, the change feed, and record identity.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::ops::Bound;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::feed::{ChangeKind, MemberChanges};
use crate::filter::fold_case_owned;
use crate::resource::{ResourceId, Version};
use crate::schema::{AttrPath, AttributeType, ResourceDef};
use crate::store::{Member, MemberRef, StoreError, StoredResource, UniqueKey, UnknownMembers};

use super::compact;

pub(super) type Key = Arc<str>;

/// An entry of an [`AttrIndex`]: ((value, ord), id).
pub(super) type IndexEntry<'a> = (&'a (Box<str>, u64), &'a Key);

#[derive(Default)]
pub(super) struct TenantData {
    pub(super) records: HashMap<Key, Record>,
    pub(super) types: HashMap<Box<str>, TypeIndex>,
    /// member id -> the groups it is a direct member of.
    pub(super) reverse: HashMap<Key, BTreeSet<Key>>,
    /// Record `i` has `seq == pruned_through + i + 1`: the feed is contiguous, and pruning
    /// only pops from the front.
    pub(super) feed: VecDeque<FeedEntry>,
    /// The prune horizon: every record up to this `seq` was removed.
    pub(super) pruned_through: u64,
    pub(super) next_ord: u64,
}

pub(super) struct Record {
    pub(super) rt: Key,
    /// Creation order within the tenant: the order of unsorted lists.
    pub(super) ord: u64,
    pub(super) version: Version,
    pub(super) created: DateTime<Utc>,
    pub(super) last_modified: DateTime<Utc>,
    /// The document in the compact form of [`compact`]: a `serde_json::Value` takes about
    /// three times the memory. Indexed lookups and pages decode only what they return.
    pub(super) doc: Box<[u8]>,
    /// `displayName`, else `userName`: the `display` of this resource as a member.
    pub(super) display: Option<Box<str>>,
    /// Keys into `TypeIndex::unique`.
    pub(super) unique: Box<[Key]>,
    /// The direct members, ordered by id; each the member record's own key (see
    /// [`key_addr`]).
    pub(super) members: BTreeSet<Key>,
}

pub(super) struct FeedEntry {
    pub(super) rt: Key,
    pub(super) id: Key,
    pub(super) kind: ChangeKind,
    pub(super) version: Version,
    pub(super) at: DateTime<Utc>,
    pub(super) members: Option<Box<MemberChanges>>,
    pub(super) actor: Option<Box<str>>,
}

pub(super) struct TypeIndex {
    /// The type's name, shared by its records and change records.
    pub(super) name: Key,
    /// ord -> id, every resource of the type.
    pub(super) order: BTreeMap<u64, Key>,
    /// Every id of the type, in id order: the cursor order of an unsorted keyset page.
    pub(super) ids: BTreeSet<Key>,
    /// `attribute \0 value` -> id.
    pub(super) unique: HashMap<Key, Key>,
    pub(super) attrs: Vec<AttrIndex>,
}

pub(super) struct AttrIndex {
    /// The canonical attribute name, as it appears in documents.
    pub(super) name: String,
    pub(super) fold: bool,
    /// (value, folded when not caseExact; ord) -> id. The ord breaks ties in creation order,
    /// as a stable sort of a creation-ordered list does.
    pub(super) map: BTreeMap<(Box<str>, u64), Key>,
}

/// Attributes indexed when the resource type has them as single-valued strings.
/// `displayName` only for types without `userName` (groups), where IdPs look it up; on users
/// it would cost memory for a lookup nobody sends.
pub(super) fn index_attrs(rt: &ResourceDef) -> Vec<AttrIndex> {
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
    pub(super) fn new(rt: &ResourceDef) -> Self {
        TypeIndex {
            name: Key::from(rt.name()),
            order: BTreeMap::new(),
            ids: BTreeSet::new(),
            unique: HashMap::new(),
            attrs: index_attrs(rt),
        }
    }

    pub(super) fn attr_for(&self, rt: &ResourceDef, path: &AttrPath) -> Option<usize> {
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

    pub(super) fn index(&mut self, id: &Key, ord: u64, doc: &Value) {
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

    pub(super) fn unindex(&mut self, ord: u64, doc: &Value) {
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
    pub(super) fn key(&self, v: &str) -> String {
        if self.fold {
            fold_case_owned(v)
        } else {
            v.to_owned()
        }
    }

    /// Entries whose value equals (`prefix == false`) or starts with (`prefix == true`) `v`,
    /// in index order.
    pub(super) fn range<'a>(
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

pub(super) fn unique_key(k: &UniqueKey) -> String {
    format!("{}\u{0}{}", k.attribute, k.value)
}

pub(super) fn encode(doc: &Value) -> Result<Box<[u8]>, StoreError> {
    compact::encode(doc).map_err(StoreError::backend)
}

impl Record {
    pub(super) fn doc(&self) -> Result<Value, StoreError> {
        compact::decode(&self.doc).map_err(StoreError::backend)
    }
}

impl TenantData {
    pub(super) fn get<'a>(
        &'a self,
        rt: &ResourceDef,
        id: &ResourceId,
    ) -> Result<&'a Record, StoreError> {
        self.records
            .get_key_value(id.as_str())
            .map(|(_, r)| r)
            .filter(|r| &*r.rt == rt.name())
            .ok_or_else(|| StoreError::not_found(rt, id))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn push_change(
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
    pub(super) fn last_seq(&self) -> u64 {
        self.pruned_through
            .saturating_add(u64::try_from(self.feed.len()).unwrap_or(u64::MAX))
    }

    /// Pops the records `retention` says are due, at most its per-call bound.
    pub(super) fn prune(
        &mut self,
        retention: &crate::store::ChangeRetention,
        now: DateTime<Utc>,
    ) -> crate::store::PruneReport {
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
        crate::store::PruneReport {
            removed,
            pruned_through: self.pruned_through,
            complete,
        }
    }

    pub(super) fn member_list(&self, rec: &Record) -> Vec<Member> {
        rec.members.iter().map(|m| self.member(m)).collect()
    }

    pub(super) fn member(&self, id: &Key) -> Member {
        let rec = self.records.get(id);
        Member {
            value: ResourceId::new(&**id),
            resource_type: rec.map(|r| r.rt.to_string()).unwrap_or_default(),
            display: rec.and_then(|r| r.display.as_deref()).map(str::to_owned),
        }
    }

    pub(super) fn stored(
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
    pub(super) fn resolve_members(
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
pub(super) fn key_addr(key: &Key) -> usize {
    Arc::as_ptr(key).cast::<u8>() as usize
}

/// A hasher for [`key_addr`]s: one multiplication (Fibonacci hashing). Addresses are not
/// chosen by clients, so the set needs no protection against crafted collisions.
#[derive(Default)]
pub(super) struct AddrHasher(u64);

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
pub(super) type AddrSet = HashSet<usize, std::hash::BuildHasherDefault<AddrHasher>>;

/// The members to add of a write, resolved against the tenant's records.
pub(super) struct ResolvedAdds {
    /// Each once, in request order.
    pub(super) keys: Vec<Key>,
    /// The same, as [`key_addr`]s.
    pub(super) set: AddrSet,
    /// The ids skipped under [`UnknownMembers::Skip`], each once, in request order.
    pub(super) skipped: Vec<ResourceId>,
}
