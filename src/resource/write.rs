//! What a write hands to the store, computed from a normalised document by the engine's
//! rules: the uniqueness keys (RFC 7643 §2.1 `uniqueness`), and the document split from the
//! members the store keeps as a relation.

use serde_json::Value;

use super::{normalize_resource, MemberRef, ResourceId, WriteBody, WriteMode};
use crate::error::ScimError;
use crate::filter::fold_case_owned;
use crate::schema::{AttributeDef, ResourceDef, Uniqueness};
use crate::settings::Settings;

/// A value that must be unique per tenant and resource type, computed by the service from the
/// schema (`uniqueness: server`, or a host-configured rule such as Group `displayName`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UniqueKey {
    /// The attribute's canonical name (`userName`), reported in a conflict.
    pub attribute: String,
    /// The value, already case-folded when the attribute is not `caseExact`.
    pub value: String,
}

impl UniqueKey {
    /// A key for `attribute` with `value`.
    pub fn new(attribute: impl Into<String>, value: impl Into<String>) -> Self {
        UniqueKey {
            attribute: attribute.into(),
            value: value.into(),
        }
    }
}

/// The uniqueness keys of a normalised document: every single-valued attribute with
/// `uniqueness` server or global (case-folded unless caseExact), and Group `displayName` when
/// the tenant asks for it (`unique_group_display_name`).
pub(crate) fn unique_keys(
    def: &ResourceDef,
    doc: &Value,
    unique_group_display_name: bool,
) -> Vec<UniqueKey> {
    let mut keys = Vec::new();
    let key_of = |attr: &AttributeDef, v: Option<&Value>| -> Option<UniqueKey> {
        let s = v?.as_str()?;
        let value = if attr.case_exact {
            s.to_owned()
        } else {
            fold_case_owned(s)
        };
        Some(UniqueKey::new(attr.name.clone(), value))
    };
    for attr in &def.core().attributes {
        let wanted = (attr.uniqueness != Uniqueness::None && !attr.multi_valued)
            || (unique_group_display_name && def.has_members() && attr.name == "displayName");
        if wanted {
            keys.extend(key_of(attr, doc.get(&attr.name)));
        }
    }
    for (schema, _) in def.extensions() {
        for attr in &schema.attributes {
            if attr.uniqueness != Uniqueness::None && !attr.multi_valued {
                let v = doc.get(&schema.id).and_then(|e| e.get(&attr.name));
                if let Some(mut k) = key_of(attr, v) {
                    k.attribute = format!("{}:{}", schema.id, attr.name);
                    keys.push(k);
                }
            }
        }
    }
    keys
}

/// Splits a normalised document into what the store keeps as the document and the members
/// it keeps as a relation. Passwords are dropped: scimkit never stores them (IdPs send
/// random placeholders; `changePassword` is not supported).
pub(crate) fn split_members(
    def: &ResourceDef,
    mut doc: Value,
) -> Result<(Value, Option<Vec<MemberRef>>), ScimError> {
    let Some(obj) = doc.as_object_mut() else {
        return Ok((doc, None));
    };
    obj.shift_remove("password");
    if !def.has_members() {
        return Ok((doc, None));
    }
    let members = match obj.shift_remove("members") {
        None => Vec::new(),
        Some(Value::Array(items)) => member_refs(&items)?,
        Some(_) => Vec::new(),
    };
    Ok((doc, Some(members)))
}

fn member_refs(items: &[Value]) -> Result<Vec<MemberRef>, ScimError> {
    let mut out = Vec::with_capacity(items.len());
    for (i, m) in items.iter().enumerate() {
        let value = m
            .get("value")
            .and_then(Value::as_str)
            .ok_or_else(|| ScimError::InvalidValue(format!("`members[{i}].value` is required")))?;
        out.push(MemberRef {
            value: ResourceId::new(value),
            resource_type: m.get("type").and_then(Value::as_str).map(str::to_owned),
        });
    }
    Ok(out)
}

/// Normalises a create or replace body ([`normalize_resource`]) and splits it from its
/// members ([`split_members`]). A member list parsed on the fast lane
/// ([`WriteBody::parse`]) is taken as it is: the general path would give the same references.
pub(crate) fn normalize_write(
    def: &ResourceDef,
    body: WriteBody,
    settings: &Settings,
    mode: WriteMode<'_>,
) -> Result<(Value, Option<Vec<MemberRef>>), ScimError> {
    let doc = normalize_resource(def, &body.doc, settings, mode)?;
    let (doc, members) = split_members(def, doc)?;
    // What the fast lane dropped, as the general path would have noted it.
    if let Some(attr) = def.membership() {
        for (sub, count) in attr.sub_attributes.iter().zip(body.dropped_read_only) {
            if count > 0 {
                super::document::note_read_only_sub(&attr.name, &sub.name, count);
            }
        }
    }
    Ok((doc, body.plain_members.or(members)))
}
