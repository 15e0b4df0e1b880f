//! After the last operation: empty extensions removed, `schemas` in step, the delta built and `changed` decided.

use serde_json::{Map, Value};

use crate::schema::ResourceDef;

use super::*;

impl<'a> Engine<'a, '_> {
    // ----- result ----------------------------------------------------------------------

    pub(super) fn finish(mut self) -> PatchEffect {
        // Extension objects emptied by the request disappear, and `schemas` follows the
        // extensions the document holds (RFC 7643 §3: it lists the schemas in use). Only
        // touched extensions can have changed.
        let rt: &'a ResourceDef = self.rt;
        for (schema, _) in rt.extensions() {
            let id = schema.id.as_str();
            if !self.touched.iter().any(|t| t.key == id) {
                continue;
            }
            let empty = self
                .doc
                .get(id)
                .is_some_and(|v| v.as_object().is_some_and(Map::is_empty));
            if empty {
                self.touch(id, true);
                self.doc.shift_remove(id);
            }
            let here = self.doc.contains_key(id);
            let Some(Value::Array(schemas)) = self.doc.get("schemas") else {
                continue;
            };
            let listed = schemas
                .iter()
                .position(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(id)));
            if here == listed.is_some() {
                continue;
            }
            self.touch("schemas", false);
            if let Some(Value::Array(schemas)) = self.doc.get_mut("schemas") {
                match listed {
                    None => schemas.push(Value::String(id.to_owned())),
                    Some(i) => {
                        schemas.remove(i);
                    }
                }
            }
        }
        if let (true, Some(m)) = (self.members_loaded, self.members_def) {
            // The loaded list is an input convention; an empty one is not stored.
            if self
                .doc
                .get(&m.name)
                .is_some_and(|v| v.as_array().is_some_and(Vec::is_empty))
            {
                self.touch(&m.name, true);
                self.doc.shift_remove(&m.name);
            }
        }
        let doc_changed = self.touched.iter().any(|t| {
            let before = match self.original {
                Some(o) => o.get(t.key),
                None => t.before.as_ref(),
            };
            !same_slot(self.doc.get(t.key), before)
        });
        let members_changed = self.delta.as_ref().is_some_and(|d| !d.is_empty());
        let tol = self.tol;
        PatchEffect {
            members: self.delta.take().map(|d| d.build(tol)),
            changed: doc_changed || members_changed,
        }
    }
}

/// Equality of a top-level slot, where an empty list equals absence (a loaded, empty
/// member list is not stored).
pub(super) fn same_slot(a: Option<&Value>, b: Option<&Value>) -> bool {
    let empty = |v: Option<&Value>| v.is_none_or(|v| v.as_array().is_some_and(Vec::is_empty));
    a == b || (empty(a) && empty(b))
}
