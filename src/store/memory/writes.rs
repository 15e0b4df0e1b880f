//! Writes: create, replace and delete of one record, with its unique keys, members and change record.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::feed::{ChangeKind, MemberChanges};
use crate::resource::{ResourceId, Version};
use crate::schema::ResourceDef;
use crate::store::{
    CreateRequest, MembershipDelta, StoreError, StoredResource, UpdateKind, UpdateRequest,
};
use crate::tenant::TenantId;

use super::state::*;
use super::{write, MemoryStore};

impl MemoryStore {
    pub(super) fn create_in(
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
                display: crate::store::member_display(&req.doc).map(Box::from),
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

    pub(super) fn update_in(
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
                    crate::store::member_display(&d.doc).map(Box::from),
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

    pub(super) fn delete_in(
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
}

/// The members a delta adds (net), removes (net), and the ids it skipped.
pub(super) type MembershipChange = (Vec<Key>, Vec<Key>, Vec<ResourceId>);

/// The net members added and removed by `delta` (clear, then remove, then add), and the
/// ids to add that were skipped. Linear in the ids the delta names (plus the current members
/// for a `clear`): a full replacement compares hash sets, not one tree search per id.
pub(super) fn membership_change(
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
