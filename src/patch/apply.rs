//! Applying a PATCH request to a document (RFC 7644 §3.5.2.1-3).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use crate::error::ScimError;
use crate::filter::{CompValue, CompareOp, CompiledFilter, Filter};
use crate::resource::check_required_not_blank;
use crate::resource::{
    json_type_name, normalize_value, MemberRef, MembershipDelta, ResourceId, UnknownMembers,
};
use crate::schema::{AttrPath, AttributeDef, Mutability, ResourceDef};
use crate::settings::{Settings, Tolerances};

use super::path::{excerpt, PatchPath};
use super::request::{member_id_of, PatchOpKind, PatchOperation, PatchRequest};

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
/// use scimkit::{SchemaRegistry, Settings};
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
/// # Ok::<(), scimkit::ScimError>(())
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
            return Err(with_prefix(e, &format!("Operations[{i}] ({})", op.op)));
        }
    }
    Ok(engine.finish())
}

/// Prefixes an error's detail with where it happened.
fn with_prefix(e: ScimError, prefix: &str) -> ScimError {
    let detail = format!("{prefix}: {}", e.detail());
    match e {
        ScimError::InvalidFilter(_) => ScimError::InvalidFilter(detail),
        ScimError::Mutability(_) => ScimError::Mutability(detail),
        ScimError::InvalidSyntax(_) => ScimError::InvalidSyntax(detail),
        ScimError::InvalidPath(_) => ScimError::InvalidPath(detail),
        ScimError::NoTarget(_) => ScimError::NoTarget(detail),
        ScimError::InvalidValue(_) => ScimError::InvalidValue(detail),
        ScimError::TooMany(_) => ScimError::TooMany(detail),
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

/// Composes member operations into a [`MembershipDelta`] in time linear in the ids named
/// (a PUT-like `replace` with 50,000 members, or many operations in one request).
#[derive(Debug, Default)]
struct DeltaBuilder {
    clear: bool,
    /// Adds in request order; an add cancelled by a later remove leaves a hole.
    add: Vec<Option<MemberRef>>,
    add_at: HashMap<String, usize>,
    remove: Vec<ResourceId>,
    removed: HashSet<String>,
}

impl DeltaBuilder {
    /// "Then add `m`": an id is added once.
    fn add(&mut self, m: MemberRef) {
        if !self.add_at.contains_key(m.value.as_str()) {
            self.add_at.insert(m.value.to_string(), self.add.len());
            self.add.push(Some(m));
        }
    }

    /// "Then remove `id`": cancels an earlier add of it and records the removal once, so
    /// that applying clear, remove, add in that order gives the result of the operations one
    /// by one.
    fn remove(&mut self, id: &str) {
        if let Some(slot) = self.add_at.remove(id).and_then(|i| self.add.get_mut(i)) {
            *slot = None;
        }
        if self.removed.insert(id.to_owned()) {
            self.remove.push(ResourceId::new(id));
        }
    }

    /// "Then remove every member".
    fn clear(&mut self) {
        *self = DeltaBuilder {
            clear: true,
            ..DeltaBuilder::default()
        };
    }

    fn is_empty(&self) -> bool {
        !self.clear && self.add_at.is_empty() && self.remove.is_empty()
    }

    fn build(self, tol: &Tolerances) -> MembershipDelta {
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

    /// The extension URN when `path` names a whole extension
    /// (`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`).
    fn extension_path(&self, path: &PatchPath) -> Option<&'a str> {
        let urn = path.attr.urn.as_deref()?;
        if path.filter.is_some() || path.sub().is_some() {
            return None;
        }
        let (prefix, last) = (urn, path.attr.name.as_str());
        self.rt
            .extensions()
            .find(|(s, _)| {
                s.id.len() == prefix.len() + 1 + last.len()
                    && s.id
                        .get(..prefix.len())
                        .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
                    && s.id
                        .get(prefix.len() + 1..)
                        .is_some_and(|n| n.eq_ignore_ascii_case(last))
            })
            .map(|(s, _)| s.id.as_str())
    }

    fn whole_extension(
        &mut self,
        kind: PatchOpKind,
        ext: &'a str,
        value: Option<&'a Value>,
    ) -> Result<(), ScimError> {
        match kind {
            PatchOpKind::Remove => {
                if let Some(schema) = self.rt.extension(ext) {
                    if let Some(req) = schema.attributes.iter().find(|a| {
                        a.required && self.doc.get(ext).and_then(|o| o.get(&a.name)).is_some()
                    }) {
                        return Err(ScimError::Mutability(format!(
                            "`{ext}:{}` is required and cannot be removed",
                            req.name
                        )));
                    }
                }
                if self.doc.contains_key(ext) {
                    self.touch(ext, true);
                    self.doc.shift_remove(ext);
                }
                Ok(())
            }
            PatchOpKind::Add | PatchOpKind::Replace => match value {
                Some(Value::Object(obj)) => self.pathless(kind, obj, Some(ext)),
                _ => Err(ScimError::InvalidValue(format!(
                    "the value for the extension `{ext}` must be an object of its attributes"
                ))),
            },
        }
    }

    /// Finds the definition of `attr` (with `sub` overriding its sub-attribute). Unknown
    /// attributes are `Ok(None)` when they are to be ignored.
    fn resolve_attr(
        &self,
        attr: &AttrPath,
        sub: Option<&str>,
        src: Src<'a>,
    ) -> Result<Option<Resolved<'a>>, ScimError> {
        let rt: &'a ResourceDef = self.rt;
        let mut found = rt
            .resolve_parts(attr.urn.as_deref(), &attr.name, None)
            .map(|r| (r.extension, r.attr));
        if found.is_none() && attr.urn.is_none() && self.tol.unqualified_extension_attributes {
            found = rt
                .extensions()
                .find_map(|(s, _)| s.attribute(&attr.name).map(|a| (Some(s.id.as_str()), a)));
        }
        let Some((ext, def)) = found else {
            if self.tol.ignore_unknown_attributes {
                let text = src.text();
                crate::events::note(
                    crate::events::ToleranceKind::UnknownAttributeDropped,
                    &text,
                    || format!("ignored unknown attribute `{}` in a PATCH", excerpt(&text)),
                );
                return Ok(None);
            }
            return Err(ScimError::InvalidPath(format!(
                "`{}` is not an attribute of {}",
                excerpt(&src.text()),
                rt.name()
            )));
        };
        let sub_def = match sub {
            None => None,
            Some(s) => match def.sub_attribute(s) {
                Some(d) => Some(d),
                None if def.is_complex() && self.tol.ignore_unknown_attributes => {
                    let text = src.text();
                    crate::events::note(
                        crate::events::ToleranceKind::UnknownAttributeDropped,
                        &text,
                        || {
                            format!(
                                "ignored unknown sub-attribute `{}` in a PATCH",
                                excerpt(&text)
                            )
                        },
                    );
                    return Ok(None);
                }
                None => {
                    return Err(ScimError::InvalidPath(format!(
                        "`{}`: `{}` has no sub-attribute `{}`",
                        excerpt(&src.text()),
                        def.name,
                        excerpt(s)
                    )))
                }
            },
        };
        Ok(Some((ext, def, sub_def)))
    }

    fn resolve(&self, path: &'a PatchPath) -> Result<Option<Target<'a>>, ScimError> {
        let src = Src::Path(path);
        let Some((ext, attr, sub)) = self.resolve_attr(&path.attr, path.sub(), src)? else {
            return Ok(None);
        };
        let filter = match &path.filter {
            None => None,
            Some(f) => {
                if !attr.is_complex() {
                    return Err(ScimError::InvalidPath(format!(
                        "`{}`: a value filter needs a complex attribute; `{}` is not one",
                        excerpt(&src.text()),
                        attr.name
                    )));
                }
                // A filter on a single-valued complex attribute is Entra's manager removal
                // (`manager[value eq "..."]`), accepted with the manager tolerance.
                if !attr.multi_valued && !self.tol.manager_as_string {
                    return Err(ScimError::InvalidPath(format!(
                        "`{}`: value filters select elements of multi-valued attributes; `{}` is single-valued",
                        excerpt(&src.text()),
                        attr.name
                    )));
                }
                let strict = !self.tol.ignore_unknown_attributes;
                Some(f.compile_element(attr, strict).map_err(|e| {
                    ScimError::InvalidPath(format!("`{}`: {}", excerpt(&src.text()), e.detail()))
                })?)
            }
        };
        Ok(Some(Target {
            ext,
            attr,
            sub,
            filter,
            source_filter: path.filter.as_ref(),
            src,
        }))
    }

    /// Path-less add/replace: each key of `obj` is an attribute (or, with the dotted-keys
    /// tolerance, an attribute path; or an extension URN holding an object of attributes).
    fn pathless(
        &mut self,
        kind: PatchOpKind,
        obj: &'a Map<String, Value>,
        within: Option<&'a str>,
    ) -> Result<(), ScimError> {
        for (key, value) in obj {
            if within.is_none() && key.eq_ignore_ascii_case("schemas") {
                continue;
            }
            if within.is_none() {
                if let Some(ext) = self.rt.extension(key).map(|s| s.id.as_str()) {
                    let ext: &'a str = ext;
                    match value {
                        Value::Object(inner) => self.pathless(kind, inner, Some(ext))?,
                        Value::Null => {}
                        _ => {
                            return Err(ScimError::InvalidValue(format!(
                                "`{ext}` must be an object of the extension's attributes"
                            )))
                        }
                    }
                    continue;
                }
            }
            let dotted = key.contains('.') || key.contains(':');
            let parsed = if dotted && !self.tol.patch_pathless_dotted_keys {
                None
            } else {
                AttrPath::parse(key).ok()
            };
            let parsed = match (parsed, within) {
                (Some(mut p), Some(ext)) if p.urn.is_none() => {
                    p.urn = Some(ext.to_owned());
                    Some(p)
                }
                (_, Some(_)) => None,
                (p, None) => p,
            };
            let Some(attr_path) = parsed else {
                if self.tol.ignore_unknown_attributes {
                    crate::events::note(
                        crate::events::ToleranceKind::UnknownAttributeDropped,
                        key,
                        || {
                            format!(
                                "ignored unknown attribute `{}` in a PATCH value",
                                excerpt(key)
                            )
                        },
                    );
                    continue;
                }
                return Err(ScimError::InvalidSyntax(format!(
                    "`{}` in the value is not an attribute of {}",
                    excerpt(key),
                    self.rt.name()
                )));
            };
            let sub = attr_path.sub_attr.clone();
            // A key of the value is not a `path`: an unknown one is a malformed body.
            let resolved = self
                .resolve_attr(&attr_path, sub.as_deref(), Src::Key(key))
                .map_err(|e| match e {
                    ScimError::InvalidPath(d) => {
                        ScimError::InvalidSyntax(format!("in the value, {d}"))
                    }
                    other => other,
                })?;
            let Some((ext, attr, sub_def)) = resolved else {
                continue;
            };
            let target = Target {
                ext,
                attr,
                sub: sub_def,
                filter: None,
                source_filter: None,
                src: Src::Key(key),
            };
            let def = sub_def.unwrap_or(attr);
            let read_only =
                attr.mutability == Mutability::ReadOnly || def.mutability == Mutability::ReadOnly;
            if read_only && self.tol.patch_pathless_read_only {
                // Okta echoes `id` (and whatever it read) in a path-less value. Accept it
                // when it does not try to change a stored value.
                let stored = self.current_value(&target);
                let same = match stored {
                    None => true,
                    Some(s) => self.normalize(def, value, &target)?.as_ref() == Some(s),
                };
                if same {
                    crate::events::note(crate::events::ToleranceKind::ReadOnlyIgnored, key, || {
                        format!(
                            "ignored read-only `{}` echoed unchanged in a PATCH value",
                            excerpt(key)
                        )
                    });
                    continue;
                }
            }
            self.dispatch(kind, &target, Some(value))?;
        }
        Ok(())
    }

    fn is_members(&self, t: &Target<'_>) -> bool {
        t.ext.is_none() && self.members_def.is_some_and(|m| std::ptr::eq(m, t.attr))
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

    // ----- document access -------------------------------------------------------------

    fn container(&self, ext: Option<&str>) -> Option<&Map<String, Value>> {
        match ext {
            None => Some(self.doc),
            Some(u) => self.doc.get(u).and_then(Value::as_object),
        }
    }

    fn container_mut(&mut self, ext: Option<&str>) -> Result<&mut Map<String, Value>, ScimError> {
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

    fn current_value(&self, t: &Target<'_>) -> Option<&Value> {
        let v = self.container(t.ext)?.get(&t.attr.name)?;
        match t.sub {
            None => Some(v),
            Some(s) => v.get(&s.name),
        }
    }

    fn normalize(
        &self,
        def: &AttributeDef,
        value: &Value,
        t: &Target<'_>,
    ) -> Result<Option<Value>, ScimError> {
        let v = normalize_named(def, value, self.tol, t)?;
        Ok(v.and_then(|v| strip_read_only_subs(def, v)))
    }

    fn set(&mut self, t: &Target<'a>, value: Option<Value>) -> Result<(), ScimError> {
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

    fn remove_attr(&mut self, t: &Target<'a>, value: Option<&Value>) -> Result<(), ScimError> {
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
            return Err(ScimError::Mutability(format!(
                "`{}` is immutable and cannot be removed",
                excerpt(&t.text())
            )));
        }
        self.set(t, None)
    }

    /// The slot of `t.attr` in the document, recorded as touched first. With `create`, an
    /// absent attribute gets a `null` slot for the caller to fill.
    fn slot_mut(&mut self, t: &Target<'a>, create: bool) -> Option<&mut Value> {
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
    fn remove_listed(&mut self, t: &Target<'a>, value: &Value) -> Result<(), ScimError> {
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

    fn write_attr(
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
                        return Err(ScimError::Mutability(format!(
                            "`{}` is immutable and already has a value",
                            excerpt(&t.text())
                        )));
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

    fn write_sub(
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

    fn remove_sub(&mut self, t: &Target<'a>, sub: &AttributeDef) -> Result<(), ScimError> {
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

    // ----- selected elements -----------------------------------------------------------

    /// Operations on the elements a filter selects (or on every element, for
    /// `emails.value` without a filter). Single-valued complex attributes (`manager[...]`)
    /// are treated as a list of at most one element.
    fn elements_op(
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
    fn normalize_element(&self, t: &Target<'_>, value: &Value) -> Result<Option<Value>, ScimError> {
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
    fn build_element(
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

    // ----- members ---------------------------------------------------------------------

    fn delta(&mut self) -> &mut DeltaBuilder {
        self.delta.get_or_insert_with(DeltaBuilder::default)
    }

    fn member_refs(&self, t: &Target<'_>, value: &Value) -> Result<Vec<Value>, ScimError> {
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

    fn members_op(
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

    fn selected_member_ids(&self, t: &Target<'_>) -> Result<Vec<String>, ScimError> {
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

    fn add_members(&mut self, name: &'a str, new: Vec<Value>) {
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

    fn remove_member_ids(
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

    // ----- result ----------------------------------------------------------------------

    fn finish(mut self) -> PatchEffect {
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
fn same_slot(a: Option<&Value>, b: Option<&Value>) -> bool {
    let empty = |v: Option<&Value>| v.is_none_or(|v| v.as_array().is_some_and(Vec::is_empty));
    a == b || (empty(a) && empty(b))
}

/// `normalize_value` with the attribute's own name as the path; only when it fails is it run
/// again with the full path, so that the common case formats nothing.
fn normalize_named(
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

fn member_id(m: &Value) -> Option<String> {
    m.get("value").and_then(Value::as_str).map(str::to_owned)
}

fn members_not_loaded() -> ScimError {
    ScimError::internal_msg(
        "patch::apply: the operation selects members by a filter other than `value eq`, but the \
         document has no `members`; load them when PatchRequest::needs_members is true",
    )
}

fn required_error(text: &str) -> ScimError {
    // RFC 7644 §3.5.2.2: removing (or unassigning) a required attribute is `mutability`.
    ScimError::Mutability(format!(
        "`{}` is required and cannot be removed",
        excerpt(text)
    ))
}

fn remove_with_value_error(text: &str) -> ScimError {
    ScimError::InvalidValue(format!(
        "`{}`: `remove` takes no `value` (RFC 7644 §3.5.2.2); select the elements to remove with a value filter, `{}[...]`",
        excerpt(text),
        excerpt(text)
    ))
}

fn check_attr_mutability(kind: PatchOpKind, t: &Target<'_>) -> Result<(), ScimError> {
    if t.attr.mutability == Mutability::ReadOnly {
        return Err(ScimError::Mutability(format!(
            "`{}` is readOnly and cannot be modified ({kind})",
            excerpt(&t.text())
        )));
    }
    Ok(())
}

fn check_sub_mutability(
    kind: PatchOpKind,
    sub: &AttributeDef,
    src: Src<'_>,
) -> Result<(), ScimError> {
    match sub.mutability {
        Mutability::ReadOnly => Err(ScimError::Mutability(format!(
            "`{}` is readOnly and cannot be modified ({kind})",
            excerpt(&src.text())
        ))),
        Mutability::Immutable if kind == PatchOpKind::Remove => {
            Err(ScimError::Mutability(format!(
                "`{}` is immutable and cannot be removed",
                excerpt(&src.text())
            )))
        }
        _ => Ok(()),
    }
}

/// RFC 7644 §3.5.2: an immutable attribute may be set when it has no value, never changed.
fn check_immutable_change(
    def: &AttributeDef,
    old: Option<&Value>,
    new: &Value,
    src: Src<'_>,
) -> Result<(), ScimError> {
    if def.mutability == Mutability::Immutable && old.is_some_and(|o| o != new) {
        return Err(ScimError::Mutability(format!(
            "`{}` is immutable and already has a value",
            excerpt(&src.text())
        )));
    }
    Ok(())
}

/// Drops readOnly sub-attributes from a value about to be written.
fn strip_read_only_subs(def: &AttributeDef, v: Value) -> Option<Value> {
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

fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

fn is_primary(v: &Value) -> bool {
    v.get("primary") == Some(&Value::Bool(true))
}

fn clear_primary(v: &mut Value) {
    if is_primary(v) {
        if let Some(o) = v.as_object_mut() {
            o.shift_remove("primary");
        }
    }
}

/// RFC 7643 §2.4: at most one element is primary. Elements written by this operation win.
fn fix_primary(list: &mut [Value], written: &[usize], src: Src<'_>) -> Result<(), ScimError> {
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
fn same_element(listed: &Value, stored: &Value) -> bool {
    match listed.get("value") {
        Some(v) => stored.get("value") == Some(v),
        None => listed == stored,
    }
}

/// Fills `out` with the `sub eq literal` comparisons of an `and` chain; false when the filter
/// has any other shape (then there is no single element it describes).
fn seed_from_filter(f: &Filter, attr: &AttributeDef, out: &mut Map<String, Value>) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ScimType;
    use crate::SchemaRegistry;
    use serde_json::json;

    fn request(ops: Value) -> PatchRequest {
        let body = json!({"schemas": [crate::schema::PATCH_OP_SCHEMA], "Operations": ops});
        PatchRequest::from_json(&body, &Settings::default()).unwrap()
    }

    #[test]
    fn delta_keeps_each_id_once_and_composes() {
        let mut d = DeltaBuilder::default();
        assert!(d.is_empty());
        d.add(MemberRef {
            value: ResourceId::new("a"),
            resource_type: None,
        });
        d.add(MemberRef {
            value: ResourceId::new("a"),
            resource_type: Some("User".into()),
        });
        d.add(MemberRef::new("b"));
        assert_eq!(d.add_at.len(), 2);
        d.remove("a");
        d.remove("a");
        assert!(!d.is_empty());
        let built = std::mem::take(&mut d).build(&Tolerances::strict());
        assert_eq!(built.add, vec![MemberRef::new("b")]);
        assert_eq!(built.remove, vec![ResourceId::new("a")]);
        assert_eq!(built.unknown, UnknownMembers::Reject);
        // Added again after its removal: removed first, then added (it ends up present).
        d.remove("c");
        d.add(MemberRef::new("c"));
        let built = std::mem::take(&mut d).build(&Tolerances::default());
        assert_eq!(built.add, vec![MemberRef::new("c")]);
        assert_eq!(built.remove, vec![ResourceId::new("c")]);
        assert_eq!(built.unknown, UnknownMembers::Skip);
        d.add(MemberRef::new("x"));
        d.clear();
        let built = d.build(&Tolerances::default());
        assert!(built.clear && built.add.is_empty() && built.remove.is_empty());
        assert!(!built.is_empty());
    }

    #[test]
    fn in_place_error_restores_values_and_key_order() {
        let reg = SchemaRegistry::default();
        let user = reg.user().unwrap();
        let original = json!({
            "title": "Guide",
            "userName": "bjensen",
            "name": {"givenName": "B"},
            "nickName": "Babs",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "S"}
        });
        let req = request(json!([
            {"op": "remove", "path": "title"},
            {"op": "add", "path": "displayName", "value": "B J"},
            {"op": "replace", "path": "name.givenName", "value": "Barbara"},
            {"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"},
            {"op": "remove", "path": "nickName"},
            {"op": "replace", "path": "active", "value": "perhaps"}
        ]));
        let mut doc = original.clone();
        let err = apply_in_place(user, &mut doc, &req, &Settings::default()).unwrap_err();
        assert_eq!(err.scim_type(), Some(ScimType::InvalidValue));
        assert!(err.detail().starts_with("Operations[5] (replace)"));
        assert_eq!(doc.to_string(), original.to_string());
    }

    #[test]
    fn changed_is_false_for_a_rewrite_of_the_same_values() {
        let reg = SchemaRegistry::default();
        let user = reg.user().unwrap();
        let doc = json!({"userName": "b", "active": true, "emails": [{"value": "a@x.org"}]});
        let req = request(json!([
            {"op": "replace", "path": "active", "value": "True"},
            {"op": "add", "path": "emails", "value": [{"value": "a@x.org"}]},
            {"op": "remove", "path": "title"}
        ]));
        let out = apply(user, &doc, &req, &Settings::default()).unwrap();
        assert!(!out.changed);
        assert_eq!(out.document, doc);
        let mut d = doc.clone();
        let effect = apply_in_place(user, &mut d, &req, &Settings::default()).unwrap();
        assert!(!effect.changed);
    }

    #[test]
    fn element_seeds_come_only_from_eq_conjunctions() {
        let reg = SchemaRegistry::default();
        let emails = reg.user().unwrap().top_level("emails").unwrap();
        let mut out = Map::new();
        let f = Filter::parse(r#"type eq "work" and primary eq true"#).unwrap();
        assert!(seed_from_filter(&f, emails, &mut out));
        assert_eq!(Value::Object(out), json!({"type": "work", "primary": true}));
        for bad in [
            r#"type ne "work""#,
            "value eq null",
            r#"type eq "a" or type eq "b""#,
            "nosuch eq 1",
        ] {
            let f = Filter::parse(bad).unwrap();
            assert!(!seed_from_filter(&f, emails, &mut Map::new()), "{bad}");
        }
    }

    #[test]
    fn written_primary_wins_and_two_are_refused() {
        let path = PatchPath::parse("emails").unwrap();
        let src = Src::Path(&path);
        let mut list = vec![
            json!({"value": "a", "primary": true}),
            json!({"value": "b", "primary": true}),
        ];
        fix_primary(&mut list, &[1], src).unwrap();
        assert_eq!(list[0], json!({"value": "a"}));
        assert_eq!(list[1], json!({"value": "b", "primary": true}));
        let mut list = vec![json!({"primary": true}), json!({"primary": true})];
        assert!(fix_primary(&mut list, &[0, 1], src).is_err());
    }

    #[test]
    fn read_only_sub_attributes_are_dropped_from_written_values() {
        let reg = SchemaRegistry::default();
        let members = reg.group().unwrap().top_level("members").unwrap();
        let v = json!([{"value": "u1", "display": "U"}, {"display": "only"}]);
        assert_eq!(
            strip_read_only_subs(members, v),
            Some(json!([{"value": "u1"}]))
        );
        assert_eq!(
            strip_read_only_subs(members, json!([{"display": "x"}])),
            None
        );
    }

    #[test]
    fn listed_elements_match_by_value() {
        assert!(same_element(
            &json!({"value": "a"}),
            &json!({"value": "a", "type": "User"})
        ));
        assert!(!same_element(
            &json!({"value": "a"}),
            &json!({"value": "b"})
        ));
        assert!(same_element(&json!({"type": "x"}), &json!({"type": "x"})));
    }
}
