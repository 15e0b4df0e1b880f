//! Filter evaluation over schema-aware documents (RFC 7644 §3.4.2.2).
//!
//! A [`Filter`] is compiled once against a resource type: every attribute path is resolved to
//! the document keys that hold it and to its definition, so the comparison knows its type
//! (string, number, dateTime, boolean, binary) and `caseExact` (RFC 7643 §2.2, §7). The
//! compiled tree then walks each document without resolving, allocating (except to fold the
//! case of non-ASCII strings) or recursing deeper than the filter's own nesting.
//!
//! Semantics fixed here, where RFC 7644 leaves room:
//! - A comparison on a multi-valued attribute is true when any value satisfies it; a complex
//!   attribute compared without a sub-attribute compares its `value` sub-attribute.
//! - `ne` follows the same any-value rule (RFC 7644 §3.4.2.2): `emails.type ne "work"` is
//!   true when **some** email has a `type` other than `"work"`, so a user with a work and a
//!   home email matches. An attribute without a value has no value that is "not equal":
//!   `title ne "x"` is false when `title` is absent (or `null`; an empty string is a value). `not (a eq v)` keeps its
//!   logical meaning, "no value of `a` equals `v`" (true when `a` is absent): on a
//!   single-valued attribute that has a value the two agree, elsewhere they differ.
//! - `eq null` means "not present" and `ne null` means "present" (RFC 7643 §2.5 makes null
//!   and absence equivalent). `pr` is false for an absent attribute, `null`, `""`, `[]` and an
//!   object whose values are all absent in that sense.
//! - A comparison on an attribute unknown to the resource type, or one that does not apply
//!   to the attribute's type, is false whatever the operator, `ne` included (in strict
//!   compilation it is `invalidFilter` instead); `not` still negates it.
//! - In non-strict compilation a value of the wrong JSON type is converted when that is
//!   unambiguous (`employeeNumber eq 42` compares with `"42"`, `active eq "true"` with `true`)
//!   and otherwise never matches; strict compilation rejects it.

use std::cmp::Ordering;

use chrono::{DateTime, FixedOffset, NaiveDateTime};
use serde_json::{Map, Number, Value};

use super::ast::CompareOp;

use super::compiled::{Node, Test};

impl Node {
    pub(super) fn eval(&self, root: &Value) -> bool {
        match self {
            Node::Const(b) => *b,
            Node::Leaf(leaf) => any_value(root, &leaf.keys, &|v| leaf.test.test(v)),
            Node::Not(n) => !n.eval(root),
            Node::And(ns) => ns.iter().all(|n| n.eval(root)),
            Node::Or(ns) => ns.iter().any(|n| n.eval(root)),
            Node::Any { keys, inner } => {
                let Some(v) = lookup(root, keys) else {
                    return false;
                };
                match v {
                    Value::Array(items) => items
                        .iter()
                        .any(|e| matches!(e, Value::Object(_)) && inner.eval(e)),
                    Value::Object(_) => inner.eval(v),
                    _ => false,
                }
            }
        }
    }
}

/// Looks a key up in a document object. Documents are small; a linear scan that compares
/// lengths first beats hashing the key for the usual dozen attributes.
#[inline]
fn get<'v>(map: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    if map.len() <= 24 {
        map.iter()
            .find(|(k, _)| k.len() == key.len() && k.as_str() == key)
            .map(|(_, v)| v)
    } else {
        map.get(key)
    }
}

/// Follows `keys` through objects only (no array flattening): where a value path starts.
fn lookup<'v>(root: &'v Value, keys: &[Box<str>]) -> Option<&'v Value> {
    let mut cur = root;
    for k in keys {
        match cur {
            Value::Object(m) => cur = get(m, k)?,
            _ => return None,
        }
    }
    Some(cur)
}

/// True when some value reached from `v` through `keys` satisfies `test`. Arrays met on the way
/// (multi-valued attributes) are searched element by element, one level deep.
fn any_value(v: &Value, keys: &[Box<str>], test: &dyn Fn(&Value) -> bool) -> bool {
    match keys.split_first() {
        None => match v {
            Value::Array(items) => items.iter().any(|x| !x.is_array() && test(x)),
            _ => test(v),
        },
        Some((k, rest)) => match v {
            Value::Object(m) => get(m, k).is_some_and(|x| any_value(x, rest, test)),
            Value::Array(items) => items.iter().any(|e| match e {
                Value::Object(m) => get(m, k).is_some_and(|x| any_value(x, rest, test)),
                _ => false,
            }),
            _ => false,
        },
    }
}

/// RFC 7644 §3.4.2.2 `pr`: absent, `null`, `""`, `[]` and empty objects are not present.
pub(crate) fn is_present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => a.iter().any(is_present_shallow),
        Value::Object(m) => m.values().any(is_present_shallow),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

fn is_present_shallow(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

impl Test {
    /// True when the value `v` passes the test.
    pub(crate) fn test(&self, v: &Value) -> bool {
        match self {
            Test::Present => is_present(v),
            Test::Str {
                op,
                needle,
                case_exact,
                ascii,
            } => match v {
                Value::String(s) => str_test(*op, s, needle, *case_exact, *ascii),
                _ => false,
            },
            Test::Num { op, n } => match v {
                Value::Number(x) => cmp_numbers(x, n).is_some_and(|o| op_holds(*op, o)),
                _ => false,
            },
            Test::Bool(b) => matches!(v, Value::Bool(x) if x == b),
            Test::Date { op, at } => match v {
                Value::String(s) => parse_date_time(s).is_some_and(|d| op_holds(*op, d.cmp(at))),
                _ => false,
            },
            Test::Ne(eq) => !v.is_null() && !eq.test(v),
        }
    }
}

/// Whether ordering `o` (document value compared with the filter value) satisfies `op`.
fn op_holds(op: CompareOp, o: Ordering) -> bool {
    match op {
        CompareOp::Eq => o == Ordering::Equal,
        CompareOp::Ne => o != Ordering::Equal,
        CompareOp::Gt => o == Ordering::Greater,
        CompareOp::Ge => o != Ordering::Less,
        CompareOp::Lt => o == Ordering::Less,
        CompareOp::Le => o != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

fn str_test(op: CompareOp, s: &str, needle: &str, case_exact: bool, ascii: bool) -> bool {
    if case_exact {
        return match op {
            CompareOp::Eq => s == needle,
            CompareOp::Co => s.contains(needle),
            CompareOp::Sw => s.starts_with(needle),
            CompareOp::Ew => s.ends_with(needle),
            _ => op_holds(op, s.cmp(needle)),
        };
    }
    if ascii && s.is_ascii() {
        let (h, n) = (s.as_bytes(), needle.as_bytes());
        return match op {
            CompareOp::Eq => h.eq_ignore_ascii_case(n),
            CompareOp::Sw => h.get(..n.len()).is_some_and(|p| p.eq_ignore_ascii_case(n)),
            CompareOp::Ew => h
                .len()
                .checked_sub(n.len())
                .and_then(|start| h.get(start..))
                .is_some_and(|p| p.eq_ignore_ascii_case(n)),
            CompareOp::Co => n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n)),
            _ => op_holds(
                op,
                h.iter().map(u8::to_ascii_lowercase).cmp(n.iter().copied()),
            ),
        };
    }
    // Unicode case folding: both sides folded (the needle was at compile time).
    let folded_text = super::fold::fold_case(s);
    let folded: &str = &folded_text;
    match op {
        CompareOp::Eq => folded == needle,
        CompareOp::Co => folded.contains(needle),
        CompareOp::Sw => folded.starts_with(needle),
        CompareOp::Ew => folded.ends_with(needle),
        _ => op_holds(op, folded.cmp(needle)),
    }
}

/// Compares two JSON numbers numerically: exactly when both are integers, as `f64` otherwise.
pub(crate) fn cmp_numbers(a: &Number, b: &Number) -> Option<Ordering> {
    let int = |n: &Number| {
        n.as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
    };
    if let (Some(x), Some(y)) = (int(a), int(b)) {
        return Some(x.cmp(&y));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

/// Parses an `xsd:dateTime` (RFC 7643 §2.3.5): RFC 3339, or without an offset (taken as UTC).
pub(crate) fn parse_date_time(s: &str) -> Option<DateTime<FixedOffset>> {
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d);
    }
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|n| n.and_utc().fixed_offset())
}

#[cfg(test)]
mod tests;
