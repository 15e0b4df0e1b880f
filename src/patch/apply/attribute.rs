//! Whole attributes and sub-attributes: reading, setting and removing them, with the mutability rules.

use serde_json::{Map, Value};

use crate::error::ScimError;
use crate::resource::normalize_value;
use crate::schema::{AttributeDef, Mutability};
use crate::settings::Tolerances;

use super::*;
use crate::patch::path::excerpt;
use crate::patch::request::PatchOpKind;

impl<'a> Engine<'a, '_> {
    // ----- document access -------------------------------------------------------------

    pub(super) fn container(&self, ext: Option<&str>) -> Option<&Map<String, Value>> {
        match ext {
            None => Some(self.doc),
            Some(u) => self.doc.get(u).and_then(Value::as_object),
        }
    }

    pub(super) fn container_mut(
        &mut self,
        ext: Option<&str>,
    ) -> Result<&mut Map<String, Value>, ScimError> {
        match ext {
            None => Ok(&mut *self.doc),
            Some(u) => {
                let slot = self
                    .doc
                    .entry(u.to_owned())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                slot.as_object_mut()
                    .ok_or_else(|| ScimError::internal_msg("extension slot is not an object"))
            }
        }
    }

    pub(super) fn current_value(&self, t: &Target<'_>) -> Option<&Value> {
        let v = self.container(t.ext)?.get(&t.attr.name)?;
        match t.sub {
            None => Some(v),
            Some(s) => v.get(&s.name),
        }
    }

    pub(super) fn normalize(
        &self,
        def: &AttributeDef,
        value: &Value,
        t: &Target<'_>,
    ) -> Result<Option<Value>, ScimError> {
        let v = normalize_named(def, value, self.tol, t)?;
        Ok(v.and_then(|v| strip_read_only_subs(def, v)))
    }

    pub(super) fn set(&mut self, t: &Target<'a>, value: Option<Value>) -> Result<(), ScimError> {
        let name = t.attr.name.as_str();
        match t.ext {
            Some(ext) => self.touch(ext, !self.doc.contains_key(ext)),
            None => self.touch(name, value.is_none() || !self.doc.contains_key(name)),
        }
        let c = self.container_mut(t.ext)?;
        match value {
            Some(v) => match c.get_mut(name) {
                Some(slot) => *slot = v,
                None => {
                    c.insert(name.to_owned(), v);
                }
            },
            None => {
                c.shift_remove(name);
            }
        }
        Ok(())
    }

    // ----- single attributes -----------------------------------------------------------

    pub(super) fn remove_attr(
        &mut self,
        t: &Target<'a>,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        let has_value = value.is_some_and(|v| !is_empty_value(v));
        if t.attr.multi_valued && has_value {
            return self.remove_listed(t, value.unwrap_or(&Value::Null));
        }
        if self.current_value(t).is_none() {
            return Ok(());
        }
        if t.attr.required {
            return Err(required_error(&t.text()));
        }
        if t.attr.mutability == Mutability::Immutable {
            return Err(ScimError::mutability(
                t.text().to_string(),
                format!(
                    "`{}` is immutable and cannot be removed",
                    excerpt(&t.text())
                ),
            ));
        }
        self.set(t, None)
    }

    /// The slot of `t.attr` in the document, recorded as touched first. With `create`, an
    /// absent attribute gets a `null` slot for the caller to fill.
    pub(super) fn slot_mut(&mut self, t: &Target<'a>, create: bool) -> Option<&mut Value> {
        let name = t.attr.name.as_str();
        let exists = self.container(t.ext).is_some_and(|c| c.contains_key(name));
        if !exists && !create {
            return None;
        }
        match t.ext {
            Some(ext) => self.touch(ext, !self.doc.contains_key(ext)),
            None => self.touch(name, !exists),
        }
        let c = self.container_mut(t.ext).ok()?;
        if !exists {
            c.insert(name.to_owned(), Value::Null);
        }
        c.get_mut(name)
    }

    /// `remove` on a multi-valued attribute with a value list: only the listed elements go.
    pub(super) fn remove_listed(&mut self, t: &Target<'a>, value: &Value) -> Result<(), ScimError> {
        if !self.tol.patch_remove_with_value {
            return Err(remove_with_value_error(&t.text()));
        }
        let Some(Value::Array(listed)) = self.normalize(t.attr, value, t)? else {
            return Ok(());
        };
        let Some(Value::Array(list)) = self.slot_mut(t, false) else {
            return Ok(());
        };
        list.retain(|e| !listed.iter().any(|l| same_element(l, e)));
        if !list.is_empty() {
            return Ok(());
        }
        if t.attr.required {
            return Err(required_error(&t.text()));
        }
        self.set(t, None)
    }

    pub(super) fn write_attr(
        &mut self,
        kind: PatchOpKind,
        t: &Target<'a>,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        let value = value.unwrap_or(&Value::Null);
        let nv = self.normalize(t.attr, value, t)?;
        let Some(nv) = nv else {
            // An explicit null (or empty list/object) unassigns (RFC 7643 §2.5).
            if kind == PatchOpKind::Add {
                if self.tol.null_as_absent {
                    return Ok(());
                }
                return Err(ScimError::InvalidValue(format!(
                    "`{}`: add needs a value",
                    excerpt(&t.text())
                )));
            }
            return self.remove_attr(t, None);
        };
        let attr = t.attr;
        let Some(slot) = self.slot_mut(t, true) else {
            return Err(ScimError::internal_msg(
                "patch: no slot for a written attribute",
            ));
        };
        match slot {
            v if v.is_null() => *v = nv,
            Value::Array(list) if attr.multi_valued && kind == PatchOpKind::Add => {
                if let Value::Array(new) = nv {
                    if attr.mutability == Mutability::Immutable
                        && new.iter().any(|e| !list.contains(e))
                    {
                        return Err(ScimError::mutability(
                            t.text().to_string(),
                            format!(
                                "`{}` is immutable and already has a value",
                                excerpt(&t.text())
                            ),
                        ));
                    }
                    if new.iter().any(is_primary) {
                        list.iter_mut().for_each(clear_primary);
                    }
                    for e in new {
                        if !list.contains(&e) {
                            list.push(e);
                        }
                    }
                }
            }
            Value::Object(obj) if !attr.multi_valued && attr.is_complex() => {
                // RFC 7644 §3.5.2.1/§3.5.2.3: the given sub-attributes replace or join the
                // existing ones; the others stay.
                if let Value::Object(new) = nv {
                    for (k, v) in new {
                        if let Some(sd) = attr.sub_attribute(&k) {
                            check_immutable_change(sd, obj.get(&k), &v, t.src)?;
                        }
                        match obj.get_mut(&k) {
                            Some(slot) => *slot = v,
                            None => {
                                obj.insert(k, v);
                            }
                        }
                    }
                }
            }
            old => {
                check_immutable_change(attr, Some(old), &nv, t.src)?;
                *old = nv;
            }
        }
        Ok(())
    }

    pub(super) fn write_sub(
        &mut self,
        kind: PatchOpKind,
        t: &Target<'a>,
        sub: &AttributeDef,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        check_sub_mutability(kind, sub, t.src)?;
        let nv = self.normalize(sub, value.unwrap_or(&Value::Null), t)?;
        let Some(nv) = nv else {
            if kind == PatchOpKind::Add {
                return Ok(());
            }
            return self.remove_sub(t, sub);
        };
        let Some(slot) = self.slot_mut(t, true) else {
            return Err(ScimError::internal_msg(
                "patch: no slot for a written attribute",
            ));
        };
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        if let Value::Object(obj) = slot {
            check_immutable_change(sub, obj.get(&sub.name), &nv, t.src)?;
            match obj.get_mut(&sub.name) {
                Some(s) => *s = nv,
                None => {
                    obj.insert(sub.name.clone(), nv);
                }
            }
        }
        Ok(())
    }

    pub(super) fn remove_sub(
        &mut self,
        t: &Target<'a>,
        sub: &AttributeDef,
    ) -> Result<(), ScimError> {
        check_sub_mutability(PatchOpKind::Remove, sub, t.src)?;
        let present = matches!(
            self.container(t.ext).and_then(|c| c.get(&t.attr.name)),
            Some(Value::Object(o)) if o.contains_key(&sub.name)
        );
        if !present {
            return Ok(());
        }
        if sub.required {
            return Err(required_error(&t.text()));
        }
        let now_empty = match self.slot_mut(t, false) {
            Some(Value::Object(obj)) => {
                obj.shift_remove(&sub.name);
                obj.is_empty()
            }
            _ => false,
        };
        if !now_empty {
            return Ok(());
        }
        if t.attr.required {
            return Err(required_error(&t.text()));
        }
        self.set(t, None)
    }
}

/// `normalize_value` with the attribute's own name as the path; only when it fails is it run
/// again with the full path, so that the common case formats nothing.
pub(super) fn normalize_named(
    def: &AttributeDef,
    value: &Value,
    tol: &Tolerances,
    t: &Target<'_>,
) -> Result<Option<Value>, ScimError> {
    match normalize_value(def, value, tol, &def.name) {
        Ok(v) => Ok(v),
        Err(first) => match normalize_value(def, value, tol, &t.text()) {
            Err(e) => Err(e),
            Ok(_) => Err(first),
        },
    }
}

pub(super) fn required_error(text: &str) -> ScimError {
    // RFC 7644 §3.5.2.2: removing (or unassigning) a required attribute is `mutability`.
    ScimError::mutability(
        text,
        format!("`{}` is required and cannot be removed", excerpt(text)),
    )
}

pub(super) fn check_attr_mutability(kind: PatchOpKind, t: &Target<'_>) -> Result<(), ScimError> {
    if t.attr.mutability == Mutability::ReadOnly {
        return Err(ScimError::mutability(
            t.text().to_string(),
            format!(
                "`{}` is readOnly and cannot be modified ({kind})",
                excerpt(&t.text())
            ),
        ));
    }
    Ok(())
}

pub(super) fn check_sub_mutability(
    kind: PatchOpKind,
    sub: &AttributeDef,
    src: Src<'_>,
) -> Result<(), ScimError> {
    match sub.mutability {
        Mutability::ReadOnly => Err(ScimError::mutability(
            src.text().to_string(),
            format!(
                "`{}` is readOnly and cannot be modified ({kind})",
                excerpt(&src.text())
            ),
        )),
        Mutability::Immutable if kind == PatchOpKind::Remove => Err(ScimError::mutability(
            src.text().to_string(),
            format!(
                "`{}` is immutable and cannot be removed",
                excerpt(&src.text())
            ),
        )),
        _ => Ok(()),
    }
}

/// RFC 7644 §3.5.2: an immutable attribute may be set when it has no value, never changed.
pub(super) fn check_immutable_change(
    def: &AttributeDef,
    old: Option<&Value>,
    new: &Value,
    src: Src<'_>,
) -> Result<(), ScimError> {
    if def.mutability == Mutability::Immutable && old.is_some_and(|o| o != new) {
        return Err(ScimError::mutability(
            src.text().to_string(),
            format!(
                "`{}` is immutable and already has a value",
                excerpt(&src.text())
            ),
        ));
    }
    Ok(())
}

/// Drops readOnly sub-attributes from a value about to be written.
pub(super) fn strip_read_only_subs(def: &AttributeDef, v: Value) -> Option<Value> {
    if !def.is_complex()
        || !def
            .sub_attributes
            .iter()
            .any(|s| s.mutability == Mutability::ReadOnly)
    {
        return Some(v);
    }
    let strip = |v: Value| -> Option<Value> {
        match v {
            Value::Object(mut o) => {
                o.retain(|k, _| {
                    def.sub_attribute(k)
                        .is_none_or(|s| s.mutability != Mutability::ReadOnly)
                });
                (!o.is_empty()).then_some(Value::Object(o))
            }
            other => Some(other),
        }
    };
    match v {
        Value::Array(items) => {
            let items: Vec<Value> = items.into_iter().filter_map(strip).collect();
            (!items.is_empty()).then_some(Value::Array(items))
        }
        other => strip(other),
    }
}

pub(super) fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}
