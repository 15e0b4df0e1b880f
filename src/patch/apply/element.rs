//! Elements of multi-valued (and filtered complex) attributes: selecting by value filter, writing, removing, creating from the filter, and the `primary` rule.

use serde_json::{Map, Value};

use crate::error::ScimError;
use crate::filter::{CompValue, CompareOp, Filter};
use crate::resource::json_type_name;
use crate::schema::{AttributeDef, Mutability};

use super::*;
use crate::patch::path::excerpt;
use crate::patch::request::PatchOpKind;

impl<'a> Engine<'a, '_> {
    // ----- selected elements -----------------------------------------------------------

    /// Operations on the elements a filter selects (or on every element, for
    /// `emails.value` without a filter). Single-valued complex attributes (`manager[...]`)
    /// are treated as a list of at most one element.
    pub(super) fn elements_op(
        &mut self,
        kind: PatchOpKind,
        t: &Target<'a>,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        if self.is_members(t) && !self.members_loaded {
            return Err(members_not_loaded());
        }
        if let Some(sub) = t.sub {
            check_sub_mutability(kind, sub, t.src)?;
        }
        let single = !t.attr.multi_valued;
        let selects = |e: &Value| t.filter.as_ref().is_none_or(|f| f.matches(e));
        let base = Target {
            sub: None,
            filter: None,
            source_filter: None,
            src: Src::Key(""),
            ..*t
        };
        let (len, selected): (usize, Vec<usize>) = match self.current_value(&base) {
            Some(Value::Array(l)) => (
                l.len(),
                l.iter()
                    .enumerate()
                    .filter(|(_, e)| selects(e))
                    .map(|(i, _)| i)
                    .collect(),
            ),
            Some(v @ Value::Object(_)) if single => {
                (1, if selects(v) { vec![0] } else { Vec::new() })
            }
            _ => (0, Vec::new()),
        };

        // What the written part becomes, normalised once.
        let new_value = match (kind, t.sub) {
            (PatchOpKind::Remove, _) => None,
            (_, Some(sub)) => Some(self.normalize(sub, value.unwrap_or(&Value::Null), t)?),
            (_, None) => Some(self.normalize_element(t, value.unwrap_or(&Value::Null))?),
        };

        let creating = selected.is_empty()
            && kind != PatchOpKind::Remove
            && self.tol.patch_filtered_add_creates
            && (!single || len == 0);
        if selected.is_empty() && !creating {
            if self.tol.patch_no_target_is_noop {
                let text = t.text();
                crate::events::note(
                    crate::events::ToleranceKind::PatchNoTargetIgnored,
                    &text,
                    || format!("`{}` selects no value: ignored", excerpt(&text)),
                );
                return Ok(());
            }
            return Err(ScimError::NoTarget(format!(
                "`{}` selects no value",
                excerpt(&t.text())
            )));
        }
        // Work on the list itself (taken out of the document, put back below; on error the
        // whole document is dropped or restored).
        let mut list: Vec<Value> = match self.slot_mut(t, false) {
            Some(slot) => match std::mem::take(slot) {
                Value::Array(l) => l,
                v @ Value::Object(_) if single => vec![v],
                _ => Vec::new(),
            },
            None => Vec::new(),
        };
        let mut written: Vec<usize> = Vec::new();
        if creating {
            if let Some(e) = self.build_element(t, new_value.flatten())? {
                list.push(e);
                written.push(list.len() - 1);
            }
        } else {
            match (kind, t.sub) {
                (PatchOpKind::Remove, None) => {
                    let mut i = 0usize;
                    list.retain(|_| {
                        let keep = !selected.contains(&i);
                        i += 1;
                        keep
                    });
                }
                (PatchOpKind::Remove, Some(sub)) => {
                    for &i in &selected {
                        if let Some(Value::Object(e)) = list.get_mut(i) {
                            if e.contains_key(&sub.name) && sub.required {
                                return Err(required_error(&t.text()));
                            }
                            e.shift_remove(&sub.name);
                        }
                    }
                    list.retain(|e| e.as_object().is_some_and(|o| !o.is_empty()));
                }
                (_, Some(sub)) => {
                    let nv = new_value.flatten();
                    for &i in &selected {
                        if let Some(Value::Object(e)) = list.get_mut(i) {
                            match &nv {
                                Some(v) => {
                                    check_immutable_change(sub, e.get(&sub.name), v, t.src)?;
                                    e.insert(sub.name.clone(), v.clone());
                                }
                                None => {
                                    e.shift_remove(&sub.name);
                                }
                            }
                        }
                        written.push(i);
                    }
                    list.retain(|e| e.as_object().is_some_and(|o| !o.is_empty()));
                }
                (kind, None) => {
                    let nv = new_value.flatten();
                    for &i in &selected {
                        if let Some(slot) = list.get_mut(i) {
                            match (&nv, kind, slot.as_object_mut()) {
                                (Some(Value::Object(new)), PatchOpKind::Add, Some(e)) => {
                                    for (k, v) in new {
                                        e.insert(k.clone(), v.clone());
                                    }
                                }
                                (Some(v), _, _) => *slot = v.clone(),
                                (None, _, _) => *slot = Value::Null,
                            }
                        }
                        written.push(i);
                    }
                    list.retain(|e| !e.is_null());
                }
            }
        }
        fix_primary(&mut list, &written, t.src)?;
        if list.is_empty() && (t.attr.required || t.attr.mutability == Mutability::Immutable) {
            return Err(required_error(&t.text()));
        }
        let v = if list.is_empty() {
            None
        } else if single {
            list.into_iter().next()
        } else {
            Some(Value::Array(list))
        };
        self.set(t, v)
    }

    /// Normalises a value meant to become one element of `t.attr`.
    pub(super) fn normalize_element(
        &self,
        t: &Target<'_>,
        value: &Value,
    ) -> Result<Option<Value>, ScimError> {
        if !t.attr.multi_valued {
            return self.normalize(t.attr, value, t);
        }
        let wrapped;
        let as_list = match value {
            Value::Array(items) if items.len() > 1 => {
                return Err(ScimError::InvalidValue(format!(
                    "`{}` selects elements; the value must be one element, got {} elements",
                    excerpt(&t.text()),
                    items.len()
                )))
            }
            Value::Array(_) => value,
            Value::Null => return Ok(None),
            other => {
                wrapped = Value::Array(vec![other.clone()]);
                &wrapped
            }
        };
        Ok(match self.normalize(t.attr, as_list, t)? {
            Some(Value::Array(mut items)) => items.pop(),
            _ => None,
        })
    }

    /// The element created when a filtered add/replace selects nothing: the filter's `eq`
    /// comparisons plus the written value (Entra's `emails[type eq "work"].value`).
    pub(super) fn build_element(
        &self,
        t: &Target<'_>,
        value: Option<Value>,
    ) -> Result<Option<Value>, ScimError> {
        let mut seed = Map::new();
        if let Some(f) = t.source_filter {
            if !seed_from_filter(f, t.attr, &mut seed) {
                return Err(ScimError::NoTarget(format!(
                    "`{}` selects no value, and an element can only be created from `eq` comparisons joined by `and`",
                    excerpt(&t.text())
                )));
            }
        }
        match (t.sub, value) {
            (_, None) => return Ok(None),
            (Some(sub), Some(v)) => {
                seed.insert(sub.name.clone(), v);
            }
            (None, Some(Value::Object(obj))) => {
                for (k, v) in obj {
                    seed.insert(k, v);
                }
            }
            (None, Some(other)) => {
                return Err(ScimError::InvalidValue(format!(
                    "`{}` expects an object, got {}",
                    excerpt(&t.text()),
                    json_type_name(&other)
                )))
            }
        }
        // Re-check the element as a whole (the seed values come from the filter's literals).
        let v = Value::Object(seed);
        if t.attr.multi_valued {
            self.normalize_element(t, &v)
        } else {
            self.normalize(t.attr, &v, t)
        }
    }
}

pub(super) fn is_primary(v: &Value) -> bool {
    v.get("primary") == Some(&Value::Bool(true))
}

pub(super) fn clear_primary(v: &mut Value) {
    if is_primary(v) {
        if let Some(o) = v.as_object_mut() {
            o.shift_remove("primary");
        }
    }
}

/// RFC 7643 §2.4: at most one element is primary. Elements written by this operation win.
pub(super) fn fix_primary(
    list: &mut [Value],
    written: &[usize],
    src: Src<'_>,
) -> Result<(), ScimError> {
    let written_primary = written
        .iter()
        .filter(|&&i| list.get(i).is_some_and(is_primary))
        .count();
    if written_primary > 1 {
        return Err(ScimError::InvalidValue(format!(
            "`{}`: the operation would make {written_primary} elements primary",
            excerpt(&src.text())
        )));
    }
    if written_primary == 1 {
        for (i, e) in list.iter_mut().enumerate() {
            if !written.contains(&i) {
                clear_primary(e);
            }
        }
    }
    Ok(())
}

/// An element listed in a `remove` value matches a stored one when their `value`s are equal
/// (ids, addresses), or when the listed element has no `value` and equals it entirely.
pub(super) fn same_element(listed: &Value, stored: &Value) -> bool {
    match listed.get("value") {
        Some(v) => stored.get("value") == Some(v),
        None => listed == stored,
    }
}

/// Fills `out` with the `sub eq literal` comparisons of an `and` chain; false when the filter
/// has any other shape (then there is no single element it describes).
pub(super) fn seed_from_filter(
    f: &Filter,
    attr: &AttributeDef,
    out: &mut Map<String, Value>,
) -> bool {
    match f {
        Filter::And(a, b) => seed_from_filter(a, attr, out) && seed_from_filter(b, attr, out),
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value,
        } if path.urn.is_none() && path.sub_attr.is_none() => {
            let Some(sub) = attr.sub_attribute(&path.name) else {
                return false;
            };
            let v = match value {
                CompValue::String(s) => Value::String(s.clone()),
                CompValue::Bool(b) => Value::Bool(*b),
                CompValue::Number(n) => Value::Number(n.clone()),
                CompValue::Null => return false,
            };
            out.insert(sub.name.clone(), v);
            true
        }
        _ => false,
    }
}
