//! Whole-document validation and normalisation for create (POST) and replace (PUT).
//!
//! [`normalize_resource`] turns whatever a client sent into the canonical document the store
//! keeps: attribute names in canonical case, extension attributes nested under their canonical
//! schema URN, values type-checked and coerced by [`normalize_value`], and the RFC 7643 §7
//! `mutability` and `required` rules applied. The real-world tolerances of
//! [`Tolerances`](crate::settings::Tolerances) decide between accepting and rejecting what IdPs really
//! send.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::value::{json_type_name, normalize_value};
use crate::error::ScimError;
use crate::events::{note, ToleranceKind};
use crate::schema::{AttrPath, AttributeDef, AttributeType, Mutability, ResourceDef, Schema};
use crate::settings::{Settings, Tolerances};
use rules::*;
pub(crate) use rules::{check_required_not_blank, note_read_only_sub};

/// What kind of write a document is normalised for.
#[derive(Debug, Clone, Copy)]
pub enum WriteMode<'a> {
    /// A new resource (POST, RFC 7644 §3.3).
    Create,
    /// A full replacement of an existing resource (PUT, RFC 7644 §3.5.1).
    Replace {
        /// The stored document being replaced, as [`normalize_resource`] produced it (canonical
        /// names; `id`/`meta` may be present and are ignored).
        existing: &'a Value,
    },
}

/// Validates and normalises a client-supplied resource of type `rt` for a create or replace.
///
/// The output is a JSON object holding:
/// - `schemas`: the core schema URN followed by the URN of every extension that has data in
///   the output, canonically spelt, in the resource type's order;
/// - every common (`externalId`) and core attribute the client set, canonically named and in
///   schema order; multi-valued attributes are arrays, unassigned ones are absent;
/// - one object per extension with data, under its canonical URN;
/// - writeOnly attributes (`password`): kept so the host can store them, never returned
///   (projection drops them, `returned: never`).
///
/// It never contains readOnly attributes or sub-attributes (`id`, `meta`, `groups`,
/// `members.display`, `manager.displayName`): the store and service set or derive those.
///
/// Rules (RFC 7643 §2, §3, §7; RFC 7644 §3.3, §3.5.1):
/// - attribute names are matched case-insensitively; an extension's attributes sit in an object
///   under its URN (matched case-insensitively), or at the top level qualified with it
///   (`urn:...:User:employeeNumber`); with
///   [`unqualified_extension_attributes`](Tolerances::unqualified_extension_attributes) an
///   extension attribute no core attribute shadows may also appear unqualified;
/// - `schemas` must be an array naming the core schema; unknown URNs in it, and objects under
///   unknown URN keys, are ignored or rejected per
///   [`ignore_unknown_schemas`](Tolerances::ignore_unknown_schemas). An extension URN listed
///   without data is accepted (Entra does this) and left out of the output;
/// - required attributes must have a value (`invalidValue`), and a required string
///   attribute or sub-attribute (`userName`, Group `displayName`) must not be empty or only
///   whitespace, in every mode (`invalidValue` naming it); a required extension must be
///   present;
/// - readOnly attributes and sub-attributes given with a value are dropped
///   ([`ignore_read_only_input`](Tolerances::ignore_read_only_input), Okta's PUT echo) or
///   rejected with `mutability`;
/// - on [`WriteMode::Replace`], an immutable attribute that has a value must keep it
///   (`mutability` otherwise) and is carried over when omitted; a writeOnly attribute omitted
///   by the client is carried over (clients cannot read it back to echo it). Immutable
///   sub-attributes of multi-valued attributes (`members.value`) are not compared: elements
///   have no identity across a replace, a changed one is a different element;
/// - unknown attributes are ignored or rejected with `invalidSyntax` per
///   [`ignore_unknown_attributes`](Tolerances::ignore_unknown_attributes);
/// - explicit `null`s mean "absent" per [`null_as_absent`](Tolerances::null_as_absent), else
///   they are rejected with `invalidValue`.
///
/// Every error names the attribute it is about. The input is never modified.
pub fn normalize_resource(
    rt: &ResourceDef,
    input: &Value,
    settings: &Settings,
    mode: WriteMode<'_>,
) -> Result<Value, ScimError> {
    let tol = &settings.tolerances;
    let Value::Object(obj) = input else {
        return Err(ScimError::InvalidSyntax(format!(
            "a {} resource must be a JSON object, got {}",
            rt.name(),
            json_type_name(input)
        )));
    };
    let mut out = Collected::new(rt);
    let mut schemas_seen = false;
    for (key, value) in obj {
        if key.eq_ignore_ascii_case("schemas") {
            if schemas_seen {
                return Err(ScimError::InvalidSyntax(
                    "`schemas` is given more than once (names are case-insensitive)".to_owned(),
                ));
            }
            schemas_seen = true;
            check_schemas(rt, value, tol)?;
            continue;
        }
        match classify(rt, key, tol) {
            Key::Attribute { ext, def } => {
                let path = qualified_path(ext.map(|s| s.id.as_str()), &def.name);
                if ext.is_some() && !key.contains(':') {
                    note(ToleranceKind::UnqualifiedExtensionAttribute, key, || {
                        format!("read unqualified `{key}` as {path}")
                    });
                }
                if let Some(v) = normalize_attribute(def, value, tol, &path)? {
                    out.insert(ext, def, v, &path)?;
                }
            }
            Key::Extension(schema) => {
                normalize_extension(schema, value, tol, &mut out)?;
            }
            Key::UnknownSchema(urn) => {
                if !tol.ignore_unknown_schemas {
                    return Err(ScimError::InvalidValue(format!(
                        "`{key}`: schema `{urn}` is not a schema of the {} resource type",
                        rt.name()
                    )));
                }
                note(ToleranceKind::UnknownSchemaIgnored, key, || {
                    format!(
                        "ignored `{key}`: `{urn}` is not a schema of the {} resource type",
                        rt.name()
                    )
                });
            }
            Key::Unknown => {
                if !tol.ignore_unknown_attributes {
                    return Err(ScimError::InvalidSyntax(format!(
                        "`{key}` is not an attribute of the {} resource type",
                        rt.name()
                    )));
                }
                note(ToleranceKind::UnknownAttributeDropped, key, || {
                    format!("dropped unknown attribute {key}")
                });
            }
        }
    }
    if !schemas_seen {
        return Err(ScimError::InvalidValue(format!(
            "`schemas` is required and must contain `{}`",
            rt.core().id
        )));
    }
    if let WriteMode::Replace { existing } = mode {
        carry_over(rt, existing, &mut out)?;
    }
    check_required(rt, &out)?;
    Ok(out.into_document(rt))
}

/// The canonical path of an attribute for error details: URN-qualified for extensions.
fn qualified_path(urn: Option<&str>, name: &str) -> String {
    match urn {
        Some(u) => format!("{u}:{name}"),
        None => name.to_owned(),
    }
}

/// What a top-level key of the input is.
pub(super) enum Key<'a> {
    /// A common, core or (qualified or tolerated unqualified) extension attribute.
    Attribute {
        ext: Option<&'a Schema>,
        def: &'a AttributeDef,
    },
    /// The object of one of the resource type's extensions.
    Extension(&'a Schema),
    /// A schema URN (or URN-qualified name) the resource type does not have.
    UnknownSchema(String),
    /// Anything else.
    Unknown,
}

pub(super) fn classify<'a>(rt: &'a ResourceDef, key: &str, tol: &Tolerances) -> Key<'a> {
    if let Some(def) = rt.top_level(key) {
        return Key::Attribute { ext: None, def };
    }
    if let Some(schema) = rt.extension(key) {
        return Key::Extension(schema);
    }
    let looks_like_uri = key.contains(':');
    if looks_like_uri {
        // A URN-qualified attribute name (RFC 7644 §3.10 `attrPath`) used as a key.
        if let Ok(path) = AttrPath::parse(key) {
            if path.sub_attr.is_none() {
                if let Some(urn) = path.urn.as_deref() {
                    if rt.core().id.eq_ignore_ascii_case(urn) {
                        return match rt.top_level(&path.name) {
                            Some(def) => Key::Attribute { ext: None, def },
                            None => Key::Unknown,
                        };
                    }
                    if let Some(schema) = rt.extension(urn) {
                        return match schema.attribute(&path.name) {
                            Some(def) => Key::Attribute {
                                ext: Some(schema),
                                def,
                            },
                            None => Key::Unknown,
                        };
                    }
                }
            }
        }
        return Key::UnknownSchema(key.to_owned());
    }
    if tol.unqualified_extension_attributes {
        let mut found = rt
            .extensions()
            .filter_map(|(s, _)| s.attribute(key).map(|d| (s, d)));
        if let (Some((schema, def)), None) = (found.next(), found.next()) {
            return Key::Attribute {
                ext: Some(schema),
                def,
            };
        }
    }
    Key::Unknown
}

/// Checks the `schemas` attribute (RFC 7643 §3): an array of URNs naming the core schema.
fn check_schemas(rt: &ResourceDef, value: &Value, tol: &Tolerances) -> Result<(), ScimError> {
    let items: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        Value::String(_) if tol.single_value_as_array => vec![value],
        other => {
            return Err(ScimError::InvalidValue(format!(
                "`schemas` must be an array of schema URNs, got {}",
                json_type_name(other)
            )))
        }
    };
    let mut has_core = false;
    for (i, item) in items.iter().enumerate() {
        let Value::String(urn) = item else {
            return Err(ScimError::InvalidValue(format!(
                "`schemas[{i}]` must be a schema URN string, got {}",
                json_type_name(item)
            )));
        };
        if rt.core().id.eq_ignore_ascii_case(urn) {
            has_core = true;
        } else if rt.extension(urn).is_none() {
            if !tol.ignore_unknown_schemas {
                return Err(ScimError::InvalidValue(format!(
                    "`schemas[{i}]`: `{urn}` is not a schema of the {} resource type",
                    rt.name()
                )));
            }
            note(ToleranceKind::UnknownSchemaIgnored, "schemas", || {
                format!("ignored unknown schema URN `{urn}` in schemas")
            });
        }
    }
    if has_core {
        Ok(())
    } else {
        Err(ScimError::InvalidValue(format!(
            "`schemas` must contain the core schema `{}`",
            rt.core().id
        )))
    }
}

/// True for the values RFC 7643 §2.5 treats as unassigned.
pub(super) fn is_unassigned(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Rejects explicit `null`s inside `value` (strict mode). Only the depth a SCIM value can
/// have (attribute, element, sub-attribute) is searched; deeper structure is a type error
/// [`normalize_value`] reports.
fn reject_nulls(value: &Value, path: &str, depth: usize) -> Result<(), ScimError> {
    match value {
        Value::Null => Err(ScimError::InvalidValue(format!(
            "`{path}` is null; explicit nulls are not accepted (tolerance `nullAsAbsent` is off)"
        ))),
        Value::Array(items) if depth > 0 => {
            for (i, v) in items.iter().enumerate() {
                reject_nulls(v, &format!("{path}[{i}]"), depth - 1)?;
            }
            Ok(())
        }
        Value::Object(map) if depth > 0 => {
            for (k, v) in map {
                reject_nulls(v, &format!("{path}.{k}"), depth - 1)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Applies the mutability and null rules to one attribute's raw value, then type-checks it.
fn normalize_attribute(
    def: &AttributeDef,
    value: &Value,
    tol: &Tolerances,
    path: &str,
) -> Result<Option<Value>, ScimError> {
    if def.mutability == Mutability::ReadOnly {
        // RFC 7644 §3.5.1 lets a replace carry readOnly values, which are ignored; Okta's
        // read-modify-write PUT relies on that. Strict mode refuses them unless unassigned.
        if is_unassigned(value) {
            return Ok(None);
        }
        if tol.ignore_read_only_input {
            note(ToleranceKind::ReadOnlyIgnored, path, || {
                format!("ignored read-only attribute {path}")
            });
            return Ok(None);
        }
        return Err(ScimError::mutability(
            path,
            format!("`{path}` is readOnly and cannot be set by the client"),
        ));
    }
    if !tol.null_as_absent {
        reject_nulls(value, path, 3)?;
    }
    let value = strip_read_only_subs(def, value, tol, path)?;
    let Some(v) = normalize_value(def, &value, tol, path)? else {
        return Ok(None);
    };
    check_required_subs(def, &v, path)?;
    check_required_not_blank(def, &v, path)?;
    Ok(Some(v))
}

fn normalize_extension<'a>(
    schema: &'a Schema,
    value: &Value,
    tol: &Tolerances,
    out: &mut Collected<'a>,
) -> Result<(), ScimError> {
    let obj = match value {
        Value::Object(obj) => obj,
        Value::Null if tol.null_as_absent => return Ok(()),
        other => {
            return Err(ScimError::InvalidValue(format!(
                "`{}` must be an object holding the extension's attributes, got {}",
                schema.id,
                json_type_name(other)
            )))
        }
    };
    for (key, v) in obj {
        let Some(def) = schema.attribute(key) else {
            if tol.ignore_unknown_attributes {
                note(
                    ToleranceKind::UnknownAttributeDropped,
                    &format!("{}:{key}", schema.id),
                    || format!("dropped unknown attribute {key} of extension {}", schema.id),
                );
                continue;
            }
            return Err(ScimError::InvalidSyntax(format!(
                "`{}:{key}` is not an attribute of schema `{}`",
                schema.id, schema.id
            )));
        };
        let path = qualified_path(Some(&schema.id), &def.name);
        if let Some(nv) = normalize_attribute(def, v, tol, &path)? {
            out.insert(Some(schema), def, nv, &path)?;
        }
    }
    Ok(())
}

/// Normalised attributes collected so far, keyed by canonical name.
struct Collected<'a> {
    top: Map<String, Value>,
    /// One map per extension of the resource type, in its order.
    ext: Vec<(&'a Schema, Map<String, Value>)>,
}

impl<'a> Collected<'a> {
    fn new(rt: &'a ResourceDef) -> Self {
        Collected {
            top: Map::new(),
            ext: rt.extensions().map(|(s, _)| (s, Map::new())).collect(),
        }
    }

    fn scope(&self, ext: Option<&Schema>) -> Option<&Map<String, Value>> {
        match ext {
            None => Some(&self.top),
            Some(s) => self.ext.iter().find(|(e, _)| e.id == s.id).map(|(_, m)| m),
        }
    }

    fn scope_mut(&mut self, ext: Option<&Schema>) -> Option<&mut Map<String, Value>> {
        match ext {
            None => Some(&mut self.top),
            Some(s) => self
                .ext
                .iter_mut()
                .find(|(e, _)| e.id == s.id)
                .map(|(_, m)| m),
        }
    }

    fn get(&self, ext: Option<&Schema>, def: &AttributeDef) -> Option<&Value> {
        self.scope(ext).and_then(|m| m.get(&def.name))
    }

    fn has_extension(&self, schema: &Schema) -> bool {
        self.scope(Some(schema)).is_some_and(|m| !m.is_empty())
    }

    /// Adds an attribute; the same attribute twice (in two spellings, or both qualified and
    /// inside its extension object) is ambiguous and refused.
    fn insert(
        &mut self,
        ext: Option<&Schema>,
        def: &AttributeDef,
        value: Value,
        path: &str,
    ) -> Result<(), ScimError> {
        let Some(map) = self.scope_mut(ext) else {
            return Ok(());
        };
        if map.insert(def.name.clone(), value).is_some() {
            return Err(ScimError::InvalidSyntax(format!(
                "`{path}` is given more than once (names are case-insensitive)"
            )));
        }
        Ok(())
    }

    fn replace(&mut self, ext: Option<&Schema>, def: &AttributeDef, value: Value) {
        if let Some(map) = self.scope_mut(ext) {
            map.insert(def.name.clone(), value);
        }
    }

    /// Builds the output document in schema order.
    fn into_document(mut self, rt: &ResourceDef) -> Value {
        let mut doc = Map::new();
        let mut schemas = vec![Value::String(rt.core().id.clone())];
        for (schema, map) in &self.ext {
            if !map.is_empty() {
                schemas.push(Value::String(schema.id.clone()));
            }
        }
        doc.insert("schemas".to_owned(), Value::Array(schemas));
        for def in rt.common().iter().chain(rt.core().attributes.iter()) {
            if let Some(v) = self.top.remove(&def.name) {
                doc.insert(def.name.clone(), v);
            }
        }
        for (schema, mut map) in self.ext {
            if map.is_empty() {
                continue;
            }
            let mut ordered = Map::new();
            for def in &schema.attributes {
                if let Some(v) = map.remove(&def.name) {
                    ordered.insert(def.name.clone(), v);
                }
            }
            doc.insert(schema.id.clone(), Value::Object(ordered));
        }
        Value::Object(doc)
    }
}

mod rules;
#[cfg(test)]
mod tests;
