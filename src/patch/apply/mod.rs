//! Applying a PATCH request to a document (RFC 7644 §3.5.2.1-3).

use std::borrow::Cow;
use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::error::{PatchError, ScimError};
use crate::filter::{CompiledFilter, Filter};
use crate::resource::check_required_not_blank;
use crate::resource::MembershipDelta;
use crate::schema::{AttributeDef, ResourceDef};
use crate::settings::{Settings, Tolerances};

use super::path::PatchPath;
use super::request::{PatchOpKind, PatchOperation, PatchRequest};

mod attribute;
mod element;
mod finish;
mod members;
mod pathless;
mod target;
#[cfg(test)]
mod tests;

use attribute::{
    check_attr_mutability, check_immutable_change, check_sub_mutability, is_empty_value,
    normalize_named, required_error, strip_read_only_subs,
};
use element::{clear_primary, is_primary, same_element};
use members::{members_not_loaded, remove_with_value_error, DeltaBuilder};

/// The result of [`apply`].
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOutcome {
    /// The document after every operation, normalised. For a group whose `members` were not
    /// loaded into the input document, it still has no `members`: the member changes are in
    /// [`members`](Self::members) only.
    pub document: Value,
    /// The membership change, when any operation addressed the resource type's `members`.
    pub members: Option<MembershipDelta>,
    /// False when the request left the document and the membership as they were (an
    /// idempotent re-send), so the caller may skip the write.
    pub changed: bool,
}

/// Applies `request` to `current`, a stored document of resource type `rt` (canonical
/// attribute case, extension attributes under their URN, no `id` or `meta`).
///
/// The function is pure and atomic: it works on a copy and returns either the whole result or
/// the first error, naming the operation (`Operations[2]`) and the attribute.
///
/// Rules (RFC 7644 §3.5.2, with the [`Tolerances`] in `settings`):
/// - `add` appends to multi-valued attributes (skipping values already present), merges the
///   given sub-attributes into complex ones and sets simple ones; `replace` replaces the whole
///   value of a multi-valued attribute, merges into complex ones (RFC 7644 §3.5.2.3) and sets
///   simple ones (`null` unassigns); `remove` unassigns.
/// - A value filter selects elements; `replace`/`remove` with a filter that selects nothing is
///   `noTarget` unless a tolerance applies (`patch_filtered_add_creates` builds the element
///   from the filter's `eq` comparisons, so several operations on `emails[type eq "work"]`
///   land in one element; `patch_no_target_is_noop` makes it a no-op).
/// - `readOnly` targets, and `immutable` targets that already hold a different value, are
///   `mutability`. Removing (or nulling) a `required` attribute is `mutability` too, as
///   RFC 7644 §3.5.2.2 prescribes. readOnly sub-attributes inside a written value (a member's
///   `display`, the manager's `displayName`) are dropped: they are the service's to fill.
/// - Setting `primary: true` on one element removes it from the others (RFC 7643 §2.4).
/// - Operations on the `members` of a group become a [`MembershipDelta`]; the member list
///   itself is needed only when [`PatchRequest::needs_members`] says so. Without it,
///   `remove members[value eq "id"]` cannot know whether `id` is a member and is idempotent
///   (never `noTarget`); with it, the strict `noTarget` rule applies. `add`/`replace` with a
///   member filter replace the selected members with the given ones.
/// - A sub-attribute of a multi-valued attribute without a filter (`emails.type`) addresses
///   that sub-attribute in every element. A filter on a single-valued complex attribute
///   (`manager[value eq "271"]`) is accepted with `manager_as_string` (Entra's manager
///   removal), and `invalidPath` in strict mode.
/// - A path that names a whole extension (`urn:...:enterprise:2.0:User`) takes an object of
///   its attributes (`add`/`replace`) or removes the extension (`remove`). When the document
///   has a `schemas` list, extension URNs join or leave it as their objects appear or go.
pub fn apply(
    rt: &ResourceDef,
    current: &Value,
    request: &PatchRequest,
    settings: &Settings,
) -> Result<PatchOutcome, ScimError> {
    let original = current.as_object().ok_or_else(not_an_object)?;
    let mut doc = original.clone();
    let effect = run(rt, &mut doc, Some(original), request, settings)?;
    Ok(PatchOutcome {
        document: Value::Object(doc),
        members: effect.members,
        changed: effect.changed,
    })
}

/// What [`apply_in_place`] did besides changing the document.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchEffect {
    /// The membership change, as in [`PatchOutcome::members`].
    pub members: Option<MembershipDelta>,
    /// As in [`PatchOutcome::changed`].
    pub changed: bool,
}

/// [`apply`] on a document the caller owns, without copying it: the cheapest way to patch
/// when the caller has its own copy anyway (a store read). Same rules and the same
/// atomicity: on error the document is restored exactly (values and key order), because
/// every top-level attribute is saved before its first change.
///
/// ```
/// use scimkit::patch::{apply_in_place, PatchRequest};
/// use scimkit::{schema::SchemaRegistry, settings::Settings};
/// use serde_json::json;
///
/// let registry = SchemaRegistry::default();
/// let user = registry.user().expect("built in");
/// let settings = Settings::default();
/// let body = json!({
///     "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
///     "Operations": [
///         {"op": "replace", "path": "title", "value": "Lead"},
///         {"op": "remove", "path": "userName"}
///     ]
/// });
/// let request = PatchRequest::from_json(&body, &settings)?;
/// let mut doc = json!({"userName": "bjensen", "title": "Guide"});
/// assert!(apply_in_place(user, &mut doc, &request, &settings).is_err());
/// assert_eq!(doc, json!({"userName": "bjensen", "title": "Guide"}));
/// # Ok::<(), scimkit::error::ScimError>(())
/// ```
pub fn apply_in_place(
    rt: &ResourceDef,
    doc: &mut Value,
    request: &PatchRequest,
    settings: &Settings,
) -> Result<PatchEffect, ScimError> {
    let doc = doc.as_object_mut().ok_or_else(not_an_object)?;
    run(rt, doc, None, request, settings)
}

fn not_an_object() -> ScimError {
    ScimError::internal_msg("patch::apply: the stored document is not a JSON object")
}

/// Applies every operation to `doc`. With `original` (a pristine copy) nothing needs undoing
/// on error, the caller drops `doc`; without it the touched attributes are saved and put
/// back on error.
fn run(
    rt: &ResourceDef,
    doc: &mut Map<String, Value>,
    original: Option<&Map<String, Value>>,
    request: &PatchRequest,
    settings: &Settings,
) -> Result<PatchEffect, ScimError> {
    let members_def = rt.membership();
    let members_loaded = members_def.is_some_and(|m| doc.contains_key(&m.name));
    let mut engine = Engine {
        rt,
        tol: &settings.tolerances,
        doc,
        original,
        touched: Vec::new(),
        order: None,
        members_def,
        members_loaded,
        delta: None,
        loaded_ids: None,
    };
    for (i, op) in request.operations.iter().enumerate() {
        if let Err(e) = engine
            .operation(op)
            .and_then(|()| engine.check_required_not_blank())
        {
            engine.restore();
            return Err(in_operation(e, i, op));
        }
    }
    Ok(engine.finish())
}

/// Wraps a client error in the operation it happened in ([`ScimError::Patch`]: the index, the
/// `op` and the `path`; the detail reads `Operations[i] (op): ...`). Internal errors pass.
fn in_operation(e: ScimError, i: usize, op: &PatchOperation) -> ScimError {
    match e {
        ScimError::InvalidFilter(_)
        | ScimError::Mutability(_)
        | ScimError::InvalidSyntax(_)
        | ScimError::InvalidPath(_)
        | ScimError::NoTarget(_)
        | ScimError::InvalidValue(_)
        | ScimError::TooMany(_)
        | ScimError::Patch(_) => ScimError::Patch(Box::new(PatchError::new(
            i,
            op.op.to_string(),
            op.path.as_ref().map(ToString::to_string),
            e,
        ))),
        other => other,
    }
}

/// The extension URN (if any), the attribute and the sub-attribute a path names.
type Resolved<'a> = (Option<&'a str>, &'a AttributeDef, Option<&'a AttributeDef>);

/// A resolved operation target.
struct Target<'a> {
    /// The extension URN holding the attribute, `None` for the top level.
    ext: Option<&'a str>,
    attr: &'a AttributeDef,
    sub: Option<&'a AttributeDef>,
    /// The compiled value filter, if the path has one.
    filter: Option<CompiledFilter>,
    /// The source filter (for member ids and for building a missing element).
    source_filter: Option<&'a Filter>,
    /// Where the target came from, for error details.
    src: Src<'a>,
}

/// The text naming a target in error details.
#[derive(Clone, Copy)]
enum Src<'a> {
    /// An operation's `path`.
    Path(&'a PatchPath),
    /// A key of a path-less value.
    Key(&'a str),
}

impl<'a> Src<'a> {
    /// Formatted only when needed: most operations never report an error.
    fn text(self) -> Cow<'a, str> {
        match self {
            Src::Path(p) if p.filter.is_none() && p.attr.urn.is_none() && p.sub().is_none() => {
                Cow::Borrowed(&p.attr.name)
            }
            Src::Path(p) => Cow::Owned(p.to_string()),
            Src::Key(k) => Cow::Borrowed(k),
        }
    }
}

impl<'a> Target<'a> {
    fn text(&self) -> Cow<'a, str> {
        self.src.text()
    }
}

/// A top-level key of the document changed by the request.
struct Touched<'a> {
    key: &'a str,
    /// Its value before the first change (`None`: absent), kept only when undo is needed.
    before: Option<Value>,
}

struct Engine<'a, 'd> {
    rt: &'a ResourceDef,
    tol: &'a Tolerances,
    doc: &'d mut Map<String, Value>,
    /// A pristine copy of the input, when the caller has one (then no undo log is kept).
    original: Option<&'d Map<String, Value>>,
    touched: Vec<Touched<'a>>,
    /// The input's key order, saved before the first key is added or removed (undo only).
    order: Option<Vec<String>>,
    members_def: Option<&'a AttributeDef>,
    members_loaded: bool,
    delta: Option<DeltaBuilder>,
    /// The ids in the loaded member list, built on first use so that adding k members to a
    /// loaded list of n costs O(n + k), not O(n * k).
    loaded_ids: Option<HashSet<String>>,
}

impl<'a> Engine<'a, '_> {
    /// Records `key` as changed before its first change. `structural` says the change adds or
    /// removes the key (which moves the others when undone).
    fn touch(&mut self, key: &'a str, structural: bool) {
        let undo = self.original.is_none();
        if structural && undo && self.order.is_none() {
            self.order = Some(self.doc.keys().cloned().collect());
        }
        if self.touched.iter().any(|t| t.key == key) {
            return;
        }
        let before = if undo {
            self.doc.get(key).cloned()
        } else {
            None
        };
        self.touched.push(Touched { key, before });
    }

    /// Rejects a blank value of a required string attribute or sub-attribute among the
    /// touched ones (as for create and replace, in every mode). Cheap: only the touched
    /// top-level keys, and within them only the defs that are required strings.
    fn check_required_not_blank(&self) -> Result<(), ScimError> {
        for t in &self.touched {
            let Some(value) = self.doc.get(t.key) else {
                continue;
            };
            if let Some(def) = self.rt.top_level(t.key) {
                check_required_not_blank(def, value, &def.name)?;
                continue;
            }
            let Some((schema, _)) = self.rt.extensions().find(|(s, _)| s.id == t.key) else {
                continue;
            };
            for def in &schema.attributes {
                if let Some(v) = value.get(&def.name) {
                    check_required_not_blank(def, v, &format!("{}:{}", schema.id, def.name))?;
                }
            }
        }
        Ok(())
    }

    /// Puts every touched key back as it was (undo mode only).
    fn restore(&mut self) {
        if self.original.is_some() {
            return;
        }
        for t in std::mem::take(&mut self.touched).into_iter().rev() {
            match t.before {
                Some(v) => {
                    if let Some(slot) = self.doc.get_mut(t.key) {
                        *slot = v;
                    } else {
                        self.doc.insert(t.key.to_owned(), v);
                    }
                }
                None => {
                    self.doc.shift_remove(t.key);
                }
            }
        }
        if let Some(order) = self.order.take() {
            let mut rest = std::mem::take(&mut *self.doc);
            for k in order {
                if let Some(v) = rest.remove(&k) {
                    self.doc.insert(k, v);
                }
            }
            self.doc.extend(rest);
        }
    }

    fn operation(&mut self, op: &'a PatchOperation) -> Result<(), ScimError> {
        let value = op.value.as_ref();
        match &op.path {
            None => match value {
                Some(Value::Object(obj)) => self.pathless(op.op, obj, None),
                _ => Err(ScimError::InvalidValue(
                    "without a `path` the `value` must be an object of attributes".to_owned(),
                )),
            },
            Some(path) => {
                if let Some(ext) = self.extension_path(path) {
                    return self.whole_extension(op.op, ext, value);
                }
                let Some(target) = self.resolve(path)? else {
                    return Ok(());
                };
                self.dispatch(op.op, &target, value)
            }
        }
    }

    fn dispatch(
        &mut self,
        kind: PatchOpKind,
        t: &Target<'a>,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        check_attr_mutability(kind, t)?;
        if self.is_members(t) {
            if t.sub.is_none() {
                return self.members_op(kind, t, value);
            }
            // An element operation may rewrite ids in the loaded list.
            self.loaded_ids = None;
        }
        if t.filter.is_some() || (t.attr.multi_valued && t.sub.is_some()) {
            return self.elements_op(kind, t, value);
        }
        match (kind, t.sub) {
            (PatchOpKind::Remove, None) => self.remove_attr(t, value),
            (PatchOpKind::Remove, Some(sub)) => self.remove_sub(t, sub),
            (_, None) => self.write_attr(kind, t, value),
            (_, Some(sub)) => self.write_sub(kind, t, sub, value),
        }
    }
}
