//! The `members` of a group: operations on them become a [`MembershipDelta`].

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::error::ScimError;
use crate::resource::{MemberRef, MembershipDelta, ResourceId, UnknownMembers};
use crate::schema::AttributeDef;
use crate::settings::Tolerances;

use super::*;
use crate::patch::path::excerpt;
use crate::patch::request::{member_id_of, PatchOpKind};

impl<'a> Engine<'a, '_> {
    // ----- members ---------------------------------------------------------------------

    pub(super) fn delta(&mut self) -> &mut DeltaBuilder {
        self.delta.get_or_insert_with(DeltaBuilder::default)
    }

    pub(super) fn member_refs(
        &self,
        t: &Target<'_>,
        value: &Value,
    ) -> Result<Vec<Value>, ScimError> {
        // Checked before readOnly sub-attributes are dropped, so that `{"display": "x"}`
        // is refused rather than silently ignored.
        let list = match normalize_named(t.attr, value, self.tol, t)? {
            Some(Value::Array(list)) => list,
            _ => Vec::new(),
        };
        for (i, m) in list.iter().enumerate() {
            if !m.get("value").is_some_and(Value::is_string) {
                return Err(ScimError::InvalidValue(format!(
                    "`{}[{i}]`: a member needs a `value` (the member's id)",
                    excerpt(&t.text())
                )));
            }
        }
        Ok(match strip_read_only_subs(t.attr, Value::Array(list)) {
            Some(Value::Array(list)) => list,
            _ => Vec::new(),
        })
    }

    pub(super) fn members_op(
        &mut self,
        kind: PatchOpKind,
        t: &Target<'a>,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        let attr: &'a AttributeDef = t.attr;
        let name = attr.name.as_str();
        // The outcome reports a delta whenever `members` was addressed, even an empty one.
        self.delta();
        match (kind, t.filter.is_some()) {
            (PatchOpKind::Add, false) => {
                let new = self.member_refs(t, value.unwrap_or(&Value::Null))?;
                self.add_members(name, new);
                Ok(())
            }
            (PatchOpKind::Replace, false) => {
                let new = self.member_refs(t, value.unwrap_or(&Value::Null))?;
                self.delta().clear();
                if self.members_loaded {
                    self.touch(name, !self.doc.contains_key(name));
                    self.doc.insert(name.to_owned(), Value::Array(Vec::new()));
                    self.loaded_ids = None;
                }
                self.add_members(name, new);
                Ok(())
            }
            (PatchOpKind::Remove, false) => {
                if value.is_some_and(|v| !is_empty_value(v)) {
                    if !self.tol.patch_remove_with_value {
                        return Err(remove_with_value_error(&t.text()));
                    }
                    let listed = self.member_refs(t, value.unwrap_or(&Value::Null))?;
                    let ids: Vec<String> = listed.iter().filter_map(member_id).collect();
                    self.remove_member_ids(name, &ids, false, t.src)
                } else {
                    self.delta().clear();
                    if self.members_loaded {
                        self.touch(name, !self.doc.contains_key(name));
                        self.doc.insert(name.to_owned(), Value::Array(Vec::new()));
                        self.loaded_ids = None;
                    }
                    Ok(())
                }
            }
            (kind, true) => {
                // Remove the selected members; add/replace then put the given ones in.
                let ids = self.selected_member_ids(t)?;
                let must_match = kind == PatchOpKind::Remove;
                self.remove_member_ids(name, &ids, must_match, t.src)?;
                if kind != PatchOpKind::Remove {
                    let new = self.member_refs(t, value.unwrap_or(&Value::Null))?;
                    self.add_members(name, new);
                }
                Ok(())
            }
        }
    }

    pub(super) fn selected_member_ids(&self, t: &Target<'_>) -> Result<Vec<String>, ScimError> {
        if !self.members_loaded {
            return match t.source_filter.and_then(member_id_of) {
                Some(id) => Ok(vec![id.to_owned()]),
                None => Err(members_not_loaded()),
            };
        }
        let list = self.doc.get(&t.attr.name).and_then(Value::as_array);
        Ok(list
            .into_iter()
            .flatten()
            .filter(|e| t.filter.as_ref().is_none_or(|f| f.matches(e)))
            .filter_map(member_id)
            .collect())
    }

    pub(super) fn add_members(&mut self, name: &'a str, new: Vec<Value>) {
        for m in new {
            let Some(id) = member_id(&m) else { continue };
            if self.members_loaded {
                self.touch(name, !self.doc.contains_key(name));
                let list = self
                    .doc
                    .entry(name.to_owned())
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(list) = list {
                    let present = self
                        .loaded_ids
                        .get_or_insert_with(|| list.iter().filter_map(member_id).collect());
                    // Idempotent: a member already present is not added again.
                    if !present.insert(id.clone()) {
                        continue;
                    }
                    list.push(m.clone());
                }
            }
            let resource_type = m.get("type").and_then(Value::as_str).map(str::to_owned);
            self.delta().add(MemberRef {
                value: ResourceId::new(id),
                resource_type,
            });
        }
    }

    pub(super) fn remove_member_ids(
        &mut self,
        name: &'a str,
        ids: &[String],
        must_match: bool,
        src: Src<'_>,
    ) -> Result<(), ScimError> {
        if self.members_loaded {
            self.touch(name, false);
            let list = self.doc.get_mut(name).and_then(Value::as_array_mut);
            let mut removed = 0usize;
            if let Some(list) = list {
                let gone: HashSet<&str> = ids.iter().map(String::as_str).collect();
                let before = list.len();
                list.retain(|e| {
                    !e.get("value")
                        .and_then(Value::as_str)
                        .is_some_and(|id| gone.contains(id))
                });
                removed = before - list.len();
                if removed > 0 {
                    if let Some(present) = self.loaded_ids.as_mut() {
                        present.retain(|id| !gone.contains(id.as_str()));
                    }
                }
            }
            if must_match && removed == 0 {
                if !self.tol.patch_no_target_is_noop {
                    return Err(ScimError::NoTarget(format!(
                        "`{}` selects no member",
                        excerpt(&src.text())
                    )));
                }
                let text = src.text();
                crate::events::note(
                    crate::events::ToleranceKind::PatchNoTargetIgnored,
                    &text,
                    || format!("`{}` selects no member: ignored", excerpt(&text)),
                );
            }
        }
        for id in ids {
            self.delta().remove(id);
        }
        Ok(())
    }
}

pub(super) fn member_id(m: &Value) -> Option<String> {
    m.get("value").and_then(Value::as_str).map(str::to_owned)
}

pub(super) fn members_not_loaded() -> ScimError {
    ScimError::internal_msg(
        "patch::apply: the operation selects members by a filter other than `value eq`, but the \
         document has no `members`; load them when PatchRequest::needs_members is true",
    )
}

pub(super) fn remove_with_value_error(text: &str) -> ScimError {
    ScimError::InvalidValue(format!(
        "`{}`: `remove` takes no `value` (RFC 7644 §3.5.2.2); select the elements to remove with a value filter, `{}[...]`",
        excerpt(text),
        excerpt(text)
    ))
}

/// Composes member operations into a [`MembershipDelta`] in time linear in the ids named
/// (a PUT-like `replace` with 50,000 members, or many operations in one request).
#[derive(Debug, Default)]
pub(super) struct DeltaBuilder {
    clear: bool,
    /// Adds in request order; an add cancelled by a later remove leaves a hole.
    add: Vec<Option<MemberRef>>,
    pub(super) add_at: HashMap<String, usize>,
    remove: Vec<ResourceId>,
    removed: HashSet<String>,
}

impl DeltaBuilder {
    /// "Then add `m`": an id is added once.
    pub(super) fn add(&mut self, m: MemberRef) {
        if !self.add_at.contains_key(m.value.as_str()) {
            self.add_at.insert(m.value.to_string(), self.add.len());
            self.add.push(Some(m));
        }
    }

    /// "Then remove `id`": cancels an earlier add of it and records the removal once, so
    /// that applying clear, remove, add in that order gives the result of the operations one
    /// by one.
    pub(super) fn remove(&mut self, id: &str) {
        if let Some(slot) = self.add_at.remove(id).and_then(|i| self.add.get_mut(i)) {
            *slot = None;
        }
        if self.removed.insert(id.to_owned()) {
            self.remove.push(ResourceId::new(id));
        }
    }

    /// "Then remove every member".
    pub(super) fn clear(&mut self) {
        *self = DeltaBuilder {
            clear: true,
            ..DeltaBuilder::default()
        };
    }

    pub(super) fn is_empty(&self) -> bool {
        !self.clear && self.add_at.is_empty() && self.remove.is_empty()
    }

    pub(super) fn build(self, tol: &Tolerances) -> MembershipDelta {
        MembershipDelta {
            clear: self.clear,
            add: self.add.into_iter().flatten().collect(),
            remove: self.remove,
            unknown: if tol.ignore_unknown_members {
                UnknownMembers::Skip
            } else {
                UnknownMembers::Reject
            },
        }
    }
}
