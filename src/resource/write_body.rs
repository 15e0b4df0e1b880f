//! The body of a create or replace, parsed with its member list on a fast lane.
//!
//! Identity providers send a group's whole member list on every PUT (Okta's app-wizard
//! integrations do, on every change), so a 50,000-member group arrives as 50,000 small JSON
//! objects. Parsed as [`serde_json::Value`]s and then normalised, each costs a map, its keys
//! and a normalised copy. [`WriteBody::parse`] instead turns each *plain* element (a `value`
//! string, with optional string `type` and `$ref`, and a `display` the tolerances drop) into a
//! [`MemberRef`] as it is read, with one allocation for the id. A list with any other element
//! is kept as JSON and takes the general path, so the result and every error are exactly
//! those of [`normalize_resource`](super::normalize_resource).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::document::{classify, is_unassigned, Key};
use super::{MemberRef, ResourceId};
use crate::schema::{AttributeDef, AttributeType, Mutability, ResourceDef};
use crate::settings::Tolerances;

/// A create or replace body: the document, and its member list when that is plain.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteBody {
    /// The body; without the member list when [`plain_members`](Self::plain_members) holds it.
    pub(crate) doc: Value,
    /// The member list, when every element is a plain reference.
    pub(crate) plain_members: Option<Vec<MemberRef>>,
    /// How many readOnly sub-attribute values (`display`) the plain member list dropped,
    /// by sub-attribute index: counted, not collected, so the lane stays allocation-free.
    pub(crate) dropped_read_only: [u64; MAX_PLAIN_SUBS],
}

/// The most sub-attributes a membership attribute may have for its list to take the fast
/// lane.
pub(crate) const MAX_PLAIN_SUBS: usize = 8;

/// Adds the readOnly sub-attributes an element dropped (bit `i` for sub-attribute `i`).
fn count_dropped(counts: &mut [u64; MAX_PLAIN_SUBS], mask: u8) {
    for (i, c) in counts.iter_mut().enumerate() {
        if mask & (1 << i) != 0 {
            *c += 1;
        }
    }
}

impl WriteBody {
    /// A body already parsed as JSON (a bulk operation's `data`): its member list takes the
    /// fast lane when plain.
    pub fn from_value(def: &ResourceDef, tol: &Tolerances, mut doc: Value) -> WriteBody {
        let taken = plain_list_key(def, tol, &doc).and_then(|key| {
            let attr = fast_lane_attr(def)?;
            let items = doc.get(&key)?.as_array()?;
            let mut dropped = [0u64; MAX_PLAIN_SUBS];
            let refs = items
                .iter()
                .map(|item| {
                    let (r, mask) = plain_ref(attr, tol, item)?;
                    count_dropped(&mut dropped, mask);
                    Some(r)
                })
                .collect::<Option<Vec<MemberRef>>>()?;
            Some((key, refs, dropped))
        });
        let (plain_members, dropped_read_only) = match (taken, doc.as_object_mut()) {
            (Some((key, refs, dropped)), Some(obj)) => {
                obj.shift_remove(&key);
                (Some(refs), dropped)
            }
            _ => (None, [0; MAX_PLAIN_SUBS]),
        };
        WriteBody {
            doc,
            plain_members,
            dropped_read_only,
        }
    }

    /// Parses a JSON body for a write to resources of type `def`, its member list on the
    /// fast lane (see the module docs). Fails exactly where `serde_json::from_slice` does.
    pub fn parse(
        def: &ResourceDef,
        tol: &Tolerances,
        bytes: &[u8],
    ) -> Result<WriteBody, serde_json::Error> {
        let starts_object = bytes
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b == b'{');
        let Some(attr) = fast_lane_attr(def).filter(|_| starts_object) else {
            return serde_json::from_slice(bytes).map(|doc| WriteBody {
                doc,
                plain_members: None,
                dropped_read_only: [0; MAX_PLAIN_SUBS],
            });
        };
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let body = de.deserialize_map(TopVisitor { def, attr, tol })?;
        de.end()?;
        Ok(body)
    }
}

/// The membership attribute when its list may take the fast lane: the general path would
/// check nothing of it beyond its elements (not required, not readOnly).
fn fast_lane_attr(def: &ResourceDef) -> Option<&AttributeDef> {
    def.membership()
        .filter(|a| !a.required && a.mutability != Mutability::ReadOnly)
}

/// The one top-level key of `doc` naming the membership attribute, when its list may take the
/// fast lane.
fn plain_list_key(def: &ResourceDef, tol: &Tolerances, doc: &Value) -> Option<String> {
    let attr = fast_lane_attr(def)?;
    let mut found = None;
    for key in doc.as_object()?.keys() {
        if names_attr(def, tol, attr, key) {
            if found.is_some() {
                return None;
            }
            found = Some(key.clone());
        }
    }
    found
}

fn names_attr(def: &ResourceDef, tol: &Tolerances, attr: &AttributeDef, key: &str) -> bool {
    matches!(classify(def, key, tol), Key::Attribute { ext: None, def: a } if a.name == attr.name)
}

/// Where the `value` and `type` of an element with these entries are, when the general path
/// would accept the element unchanged and keep nothing else of it: a string `value`,
/// otherwise only single-valued string or reference sub-attributes, each once, with the
/// required ones present, and readOnly ones (`display`) only where the tolerances drop them.
///
/// The third value has bit `i` set when readOnly sub-attribute `i` was given a value (not
/// null or empty) and is dropped.
fn plain_fields<'v>(
    attr: &AttributeDef,
    tol: &Tolerances,
    entries: impl Iterator<Item = (&'v str, &'v Value)>,
) -> Option<(usize, Option<usize>, u8)> {
    let required = attr
        .sub_attributes
        .iter()
        .filter(|s| s.required && s.mutability != Mutability::ReadOnly)
        .count();
    let (mut value, mut resource_type) = (None, None);
    let mut seen = [false; MAX_PLAIN_SUBS];
    let mut dropped = 0u8;
    let mut present_required = 0;
    for (at, (k, v)) in entries.enumerate() {
        let (i, sub) = attr
            .sub_attributes
            .iter()
            .enumerate()
            .find(|(_, s)| s.name.eq_ignore_ascii_case(k))?;
        // Each sub-attribute once: the general path refuses one repeated in another case.
        if std::mem::replace(seen.get_mut(i)?, true) {
            return None;
        }
        if sub.mutability == Mutability::ReadOnly {
            if tol.ignore_read_only_input {
                if !is_unassigned(v) {
                    dropped |= 1 << i;
                }
                continue;
            }
            return None;
        }
        if !v.is_string()
            || sub.multi_valued
            || !matches!(sub.ty, AttributeType::String | AttributeType::Reference)
        {
            return None;
        }
        if sub.required {
            // A blank required string is an error the general path reports.
            if v.as_str().is_some_and(|t| t.trim().is_empty()) {
                return None;
            }
            present_required += 1;
        }
        match sub.name.as_str() {
            "value" => value = Some(at),
            "type" => resource_type = Some(at),
            _ => {}
        }
    }
    (present_required == required).then_some(())?;
    Some((value?, resource_type, dropped))
}

/// The member reference a JSON element stands for, when it is plain (see [`plain_fields`]).
fn plain_ref(attr: &AttributeDef, tol: &Tolerances, item: &Value) -> Option<(MemberRef, u8)> {
    let obj = item.as_object()?;
    let (value, resource_type, dropped) =
        plain_fields(attr, tol, obj.iter().map(|(k, v)| (&**k, v)))?;
    let text = |i: usize| obj.values().nth(i).and_then(Value::as_str);
    Some((
        MemberRef {
            value: ResourceId::new(text(value)?),
            resource_type: match resource_type {
                Some(i) => Some(text(i)?.to_owned()),
                None => None,
            },
        },
        dropped,
    ))
}

/// A plain member list as JSON again: `{"value", "type"}` objects, which the general path
/// turns into the same references.
fn refs_to_value(refs: Vec<MemberRef>) -> Value {
    Value::Array(refs.into_iter().map(ref_to_value).collect())
}

fn ref_to_value(r: MemberRef) -> Value {
    let mut m = Map::new();
    m.insert("value".to_owned(), Value::String(r.value.into_string()));
    if let Some(t) = r.resource_type {
        m.insert("type".to_owned(), Value::String(t));
    }
    Value::Object(m)
}

// ---------------------------------------------------------------------------------------------
// The parse

/// A top-level entry: JSON, or the member list as parsed.
enum Entry {
    Json(Value),
    Members(Members),
}

/// A member list as parsed: every element plain, or JSON.
///
/// Both carry the counts of readOnly sub-attribute values dropped from elements that were
/// read as plain references (a list that turns out not to be plain keeps those elements as
/// references, without their `display`).
enum Members {
    Plain(Vec<MemberRef>, [u64; MAX_PLAIN_SUBS]),
    Json(Value, [u64; MAX_PLAIN_SUBS]),
}

impl Members {
    fn json(v: Value) -> Members {
        Members::Json(v, [0; MAX_PLAIN_SUBS])
    }

    fn dropped(&self) -> [u64; MAX_PLAIN_SUBS] {
        match self {
            Members::Plain(_, d) | Members::Json(_, d) => *d,
        }
    }

    fn into_value(self) -> Value {
        match self {
            Members::Plain(refs, _) => refs_to_value(refs),
            Members::Json(v, _) => v,
        }
    }
}

struct TopVisitor<'a> {
    def: &'a ResourceDef,
    attr: &'a AttributeDef,
    tol: &'a Tolerances,
}

impl<'de> Visitor<'de> for TopVisitor<'_> {
    type Value = WriteBody;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WriteBody, A::Error> {
        let mut entries: Vec<(String, Entry)> = Vec::new();
        let mut member_keys = 0usize;
        while let Some(key) = map.next_key::<String>()? {
            let entry = if names_attr(self.def, self.tol, self.attr, &key) {
                member_keys += 1;
                Entry::Members(map.next_value_seed(ListSeed {
                    attr: self.attr,
                    tol: self.tol,
                })?)
            } else {
                Entry::Json(map.next_value()?)
            };
            entries.push((key, entry));
        }
        // The fast lane only for a single member list (the general path reports a repeat).
        let mut doc = Map::new();
        let mut plain_members = None;
        // The dropped counts per member key as written: a key given twice keeps its last
        // list (as serde_json does), keys in different cases are all read.
        let mut dropped_by_key: Vec<(String, [u64; MAX_PLAIN_SUBS])> = Vec::new();
        let mut keep_dropped = |key: &str, dropped: [u64; MAX_PLAIN_SUBS]| match dropped_by_key
            .iter_mut()
            .find(|(k, _)| k == key)
        {
            Some(slot) => slot.1 = dropped,
            None => dropped_by_key.push((key.to_owned(), dropped)),
        };
        for (key, entry) in entries {
            let value = match entry {
                Entry::Json(v) => v,
                Entry::Members(Members::Plain(refs, dropped)) if member_keys == 1 => {
                    plain_members = Some(refs);
                    keep_dropped(&key, dropped);
                    continue;
                }
                Entry::Members(m) => {
                    keep_dropped(&key, m.dropped());
                    m.into_value()
                }
            };
            // As serde_json does: a repeated key keeps its first place and its last value.
            doc.insert(key, value);
        }
        let mut dropped_read_only = [0; MAX_PLAIN_SUBS];
        for (_, dropped) in dropped_by_key {
            for (total, d) in dropped_read_only.iter_mut().zip(dropped) {
                *total += d;
            }
        }
        Ok(WriteBody {
            doc: Value::Object(doc),
            plain_members,
            dropped_read_only,
        })
    }
}

/// The value of the membership attribute.
struct ListSeed<'a> {
    attr: &'a AttributeDef,
    tol: &'a Tolerances,
}

impl<'de> DeserializeSeed<'de> for ListSeed<'_> {
    type Value = Members;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Members, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ListSeed<'_> {
    type Value = Members;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Members, A::Error> {
        let mut plain: Vec<MemberRef> = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        let mut json: Option<Vec<Value>> = None;
        let mut dropped = [0u64; MAX_PLAIN_SUBS];
        while let Some(elem) = seq.next_element_seed(ElementSeed {
            attr: self.attr,
            tol: self.tol,
        })? {
            match (elem, &mut json) {
                (Element::Plain(r, mask), None) => {
                    count_dropped(&mut dropped, mask);
                    plain.push(r);
                }
                (Element::Plain(r, mask), Some(items)) => {
                    count_dropped(&mut dropped, mask);
                    items.push(ref_to_value(r));
                }
                (elem, Some(items)) => items.push(elem.into_value()),
                (Element::Json(v), json) => {
                    let mut items: Vec<Value> = std::mem::take(&mut plain)
                        .into_iter()
                        .map(ref_to_value)
                        .collect();
                    items.push(v);
                    *json = Some(items);
                }
            }
        }
        Ok(match json {
            None => Members::Plain(plain, dropped),
            Some(items) => Members::Json(Value::Array(items), dropped),
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Members, A::Error> {
        <Value as serde::Deserialize>::deserialize(de::value::MapAccessDeserializer::new(map))
            .map(Members::json)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Members, E> {
        Ok(Members::json(Value::Null))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Members, E> {
        Ok(Members::json(Value::Bool(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Members, E> {
        Ok(Members::json(Value::from(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Members, E> {
        Ok(Members::json(Value::from(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Members, E> {
        Ok(Members::json(Value::from(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Members, E> {
        Ok(Members::json(Value::String(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Members, E> {
        Ok(Members::json(Value::String(v)))
    }
}

/// One element of a member list: plain, or JSON.
enum Element {
    /// A plain reference, and the readOnly sub-attributes it dropped (see [`plain_fields`]).
    Plain(MemberRef, u8),
    Json(Value),
}

impl Element {
    fn into_value(self) -> Value {
        match self {
            Element::Plain(r, _) => ref_to_value(r),
            Element::Json(v) => v,
        }
    }
}

struct ElementSeed<'a> {
    attr: &'a AttributeDef,
    tol: &'a Tolerances,
}

impl<'de> DeserializeSeed<'de> for ElementSeed<'_> {
    type Value = Element;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Element, D::Error> {
        d.deserialize_any(self)
    }
}

/// The largest plain element kept without allocating: `value`, `type`, `display`, `$ref`.
const INLINE_ENTRIES: usize = 4;

impl<'de> Visitor<'de> for ElementSeed<'_> {
    type Value = Element;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Element, A::Error> {
        // Keys are borrowed from the body where they need no unescaping; the entries of a
        // plain element fit inline.
        let mut inline: [(Cow<'de, str>, Value); INLINE_ENTRIES] = Default::default();
        let mut len = 0usize;
        let mut spill: Vec<(Cow<'de, str>, Value)> = Vec::new();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let value: Value = map.next_value()?;
            match inline.get_mut(len) {
                Some(slot) if spill.is_empty() => {
                    *slot = (key, value);
                    len += 1;
                }
                _ => spill.push((key, value)),
            }
        }
        let entries = || {
            inline
                .iter()
                .take(len)
                .chain(spill.iter())
                .map(|(k, v)| (&**k, v))
        };
        if spill.is_empty() {
            if let Some((value, resource_type, dropped)) =
                plain_fields(self.attr, self.tol, entries())
            {
                // Moved out of the entries: the id's one allocation is the parse's.
                let mut take = |i: usize| match inline.get_mut(i).map(|(_, v)| v.take()) {
                    Some(Value::String(s)) => Some(s),
                    _ => None,
                };
                if let Some(value) = take(value) {
                    return Ok(Element::Plain(
                        MemberRef {
                            value: ResourceId::new(value),
                            resource_type: resource_type.and_then(&mut take),
                        },
                        dropped,
                    ));
                }
            }
        }
        let mut obj = Map::new();
        for (k, v) in inline.into_iter().take(len).chain(spill) {
            obj.insert(k.into_owned(), v);
        }
        Ok(Element::Json(Value::Object(obj)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Element, A::Error> {
        <Value as serde::Deserialize>::deserialize(de::value::SeqAccessDeserializer::new(seq))
            .map(Element::Json)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Element, E> {
        Ok(Element::Json(Value::Null))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Element, E> {
        Ok(Element::Json(Value::Bool(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Element, E> {
        Ok(Element::Json(Value::from(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Element, E> {
        Ok(Element::Json(Value::from(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Element, E> {
        Ok(Element::Json(Value::from(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Element, E> {
        Ok(Element::Json(Value::String(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Element, E> {
        Ok(Element::Json(Value::String(v)))
    }
}

/// An object key, borrowed from the body when it needs no unescaping.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v))
    }
}

#[cfg(test)]
mod tests;
