//! Sorting (RFC 7644 §3.4.2.3).
//!
//! - A multi-valued attribute sorts by its primary value, else its first value; a complex one
//!   without a sub-attribute sorts by that element's `value`.
//! - Strings collate case-insensitively unless the attribute is `caseExact`; numbers sort
//!   numerically, dateTimes chronologically, `false` before `true`.
//! - Resources without a value (absent, `null`, `""`, `[]`) sort last in both orders, so a
//!   descending sort reverses only the resources that have a value.
//! - Sorting is stable: equal keys keep their input order, so paging stays deterministic when
//!   the input order is.

use super::fold::fold_case;
use std::borrow::Cow;
use std::cmp::Ordering;

use chrono::{DateTime, FixedOffset};

use serde_json::{Number, Value};

use crate::error::ScimError;
use crate::schema::{AttrPath, AttributeDef, AttributeType, ResourceDef};

use super::ast::{SortOrder, SortSpec};
use super::eval::{cmp_numbers, is_present, parse_date_time};

impl SortOrder {
    /// Parses a `sortOrder` parameter: `ascending` or `descending`, in any case.
    pub fn parse(s: &str) -> Result<SortOrder, ScimError> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("ascending") {
            Ok(SortOrder::Ascending)
        } else if t.eq_ignore_ascii_case("descending") {
            Ok(SortOrder::Descending)
        } else {
            Err(ScimError::InvalidValue(format!(
                "sortOrder must be \"ascending\" or \"descending\", not \"{s}\""
            )))
        }
    }

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SortOrder::Ascending => "ascending",
            SortOrder::Descending => "descending",
        }
    }
}

impl SortSpec {
    /// Parses the `sortBy` and `sortOrder` parameters (RFC 7644 §3.4.2.3). `sortOrder`
    /// defaults to ascending.
    ///
    /// A malformed `sortBy` is `invalidPath` (it is an attribute path, RFC 7644 §3.10); a
    /// `sortOrder` other than `ascending`/`descending` (any case) is `invalidValue`.
    ///
    /// ```
    /// use scimkit::filter::{SortOrder, SortSpec};
    /// let s = SortSpec::parse("name.familyName", Some("Descending"))?;
    /// assert_eq!(s.order, SortOrder::Descending);
    /// # Ok::<(), scimkit::error::ScimError>(())
    /// ```
    pub fn parse(sort_by: &str, sort_order: Option<&str>) -> Result<SortSpec, ScimError> {
        let by = AttrPath::parse(sort_by.trim())
            .map_err(|e| ScimError::InvalidPath(format!("sortBy `{sort_by}`: {}", e.detail())))?;
        let order = match sort_order {
            None => SortOrder::Ascending,
            Some(o) => SortOrder::parse(o)?,
        };
        Ok(SortSpec { by, order })
    }

    /// Checks that `sortBy` names an attribute of `rt`. Sorting by an unknown attribute
    /// otherwise leaves the input order unchanged.
    pub fn validate(&self, rt: &ResourceDef) -> Result<(), ScimError> {
        if SortKey::new(rt, self).is_some() {
            return Ok(());
        }
        Err(ScimError::InvalidPath(if rt.resolve(&self.by).is_some() {
            format!(
                "sortBy: `{}` is a complex attribute without a `value`; sort by one of its sub-attributes",
                self.by
            )
        } else {
            format!(
                "sortBy: the attribute `{}` is not defined for resource type {}",
                self.by,
                rt.name()
            )
        }))
    }
}

/// `sortBy` resolved against a resource type.
struct SortKey<'a> {
    keys: Vec<&'a str>,
    def: &'a AttributeDef,
    /// A complex attribute without a sub-attribute: sort by the element's `value`.
    implicit_value: bool,
    order: SortOrder,
}

impl<'a> SortKey<'a> {
    fn new(rt: &'a ResourceDef, spec: &SortSpec) -> Option<SortKey<'a>> {
        let r = rt.resolve(&spec.by)?;
        let mut keys = Vec::with_capacity(3);
        if let Some(ext) = r.extension {
            keys.push(ext);
        }
        keys.push(r.attr.name.as_str());
        if let Some(sub) = r.sub {
            keys.push(sub.name.as_str());
        }
        let mut def = r.sub.unwrap_or(r.attr);
        let mut implicit_value = false;
        if def.is_complex() {
            def = def.sub_attribute("value")?;
            implicit_value = true;
        }
        Some(SortKey {
            keys,
            def,
            implicit_value,
            order: spec.order,
        })
    }

    /// The value a document sorts by, `None` when it has none.
    fn value<'v>(&self, doc: &'v Value) -> Option<&'v Value> {
        let mut cur = doc;
        for k in &self.keys {
            cur = pick(cur)?.as_object()?.get(*k)?;
        }
        let mut v = pick(cur)?;
        if self.implicit_value {
            v = v.as_object()?.get("value")?;
        }
        let v = pick(v)?;
        is_present(v).then_some(v)
    }

    /// The collation key of a document: computed once per document when sorting, so that
    /// case folding and date parsing are not repeated for every comparison.
    fn key<'v>(&self, doc: &'v Value) -> Option<SortVal<'v>> {
        Some(match self.value(doc)? {
            Value::String(s) => {
                if self.def.ty == AttributeType::DateTime {
                    if let Some(d) = parse_date_time(s) {
                        return Some(SortVal::Date(d));
                    }
                }
                if self.def.case_exact || self.def.ty == AttributeType::Binary {
                    SortVal::Str(Cow::Borrowed(s))
                } else {
                    SortVal::Str(fold_case(s))
                }
            }
            Value::Number(n) => SortVal::Num(n),
            Value::Bool(b) => SortVal::Bool(*b),
            v => SortVal::Other(type_rank(v)),
        })
    }

    fn compare_keys(&self, a: Option<&SortVal<'_>>, b: Option<&SortVal<'_>>) -> Ordering {
        match (a, b) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(x), Some(y)) => {
                let o = x.cmp_val(y);
                match self.order {
                    SortOrder::Ascending => o,
                    SortOrder::Descending => o.reverse(),
                }
            }
        }
    }

    fn compare(&self, a: &Value, b: &Value) -> Ordering {
        self.compare_keys(self.key(a).as_ref(), self.key(b).as_ref())
    }
}

/// A value ready for collation.
enum SortVal<'v> {
    Bool(bool),
    Num(&'v Number),
    Date(DateTime<FixedOffset>),
    /// Case-folded unless the attribute is caseExact.
    Str(Cow<'v, str>),
    Other(u8),
}

impl SortVal<'_> {
    fn rank(&self) -> u8 {
        match self {
            SortVal::Bool(_) => 1,
            SortVal::Num(_) => 2,
            SortVal::Date(_) => 3,
            SortVal::Str(_) => 4,
            SortVal::Other(r) => 5 + r,
        }
    }

    fn cmp_val(&self, other: &SortVal<'_>) -> Ordering {
        match (self, other) {
            (SortVal::Bool(x), SortVal::Bool(y)) => x.cmp(y),
            (SortVal::Num(x), SortVal::Num(y)) => cmp_numbers(x, y).unwrap_or(Ordering::Equal),
            (SortVal::Date(x), SortVal::Date(y)) => x.cmp(y),
            (SortVal::Str(x), SortVal::Str(y)) => x.cmp(y),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

/// For a multi-valued attribute: the element marked `primary`, else the first element.
fn pick(v: &Value) -> Option<&Value> {
    match v {
        Value::Array(items) => items
            .iter()
            .find(|e| e.get("primary").and_then(Value::as_bool) == Some(true))
            .or_else(|| items.first()),
        _ => Some(v),
    }
}

fn type_rank(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    }
}

/// The value a resource sorts by for a `sortBy` (RFC 7644 §3.4.2.3), owned: the position of
/// a resource in a sorted list, as a cursor (RFC 9865) records it. Strings are case-folded
/// unless the attribute is `caseExact` (or binary); a string that reads as a dateTime of a
/// dateTime attribute is a [`SortValue::DateTime`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SortValue {
    /// A boolean (`false` before `true`).
    Bool(bool),
    /// A number, compared numerically.
    Number(Number),
    /// A dateTime, compared chronologically.
    DateTime(DateTime<FixedOffset>),
    /// A string, compared by code point (folded unless caseExact).
    String(String),
    /// A list or object value, ranked by its JSON type (`null` 0 ... object 5).
    Other(u8),
}

impl SortValue {
    fn as_val(&self) -> SortVal<'_> {
        match self {
            SortValue::Bool(b) => SortVal::Bool(*b),
            SortValue::Number(n) => SortVal::Num(n),
            SortValue::DateTime(d) => SortVal::Date(*d),
            SortValue::String(s) => SortVal::Str(Cow::Borrowed(s)),
            SortValue::Other(r) => SortVal::Other(*r),
        }
    }

    /// Compares two values in ascending order, as the sorter does (values of different
    /// kinds order booleans, numbers, dateTimes, strings, then the others).
    pub fn compare(&self, other: &SortValue) -> Ordering {
        self.as_val().cmp_val(&other.as_val())
    }
}

/// The value `doc` sorts by for `spec` in `rt`, `None` when it has none (it then sorts last
/// in both orders) or when `spec.by` is not an attribute of `rt` (everything ties).
pub fn sort_value(rt: &ResourceDef, spec: &SortSpec, doc: &Value) -> Option<SortValue> {
    let k = SortKey::new(rt, spec)?;
    Some(match k.key(doc)? {
        SortVal::Bool(b) => SortValue::Bool(b),
        SortVal::Num(n) => SortValue::Number(n.clone()),
        SortVal::Date(d) => SortValue::DateTime(d),
        SortVal::Str(s) => SortValue::String(s.into_owned()),
        SortVal::Other(r) => SortValue::Other(r),
    })
}

/// Compares two resources for `sortBy`/`sortOrder` (RFC 7644 §3.4.2.3). Resources without a
/// value sort last in both orders. If `spec.by` is unknown to `rt`, everything compares equal
/// (use [`SortSpec::validate`] to reject it).
pub fn compare_resources(rt: &ResourceDef, spec: &SortSpec, a: &Value, b: &Value) -> Ordering {
    match SortKey::new(rt, spec) {
        Some(k) => k.compare(a, b),
        None => Ordering::Equal,
    }
}

/// Sorts resources in place for `sortBy`/`sortOrder` (RFC 7644 §3.4.2.3). The sort is stable.
///
/// ```
/// use scimkit::filter::{sort_resources, SortSpec};
/// use scimkit::schema::SchemaRegistry;
/// use serde_json::json;
///
/// let registry = SchemaRegistry::default();
/// let users = registry.user().expect("built in");
/// let mut docs = vec![json!({"userName": "b"}), json!({}), json!({"userName": "A"})];
/// sort_resources(users, &SortSpec::parse("userName", None)?, &mut docs);
/// assert_eq!(docs, vec![json!({"userName": "A"}), json!({"userName": "b"}), json!({})]);
/// # Ok::<(), scimkit::error::ScimError>(())
/// ```
pub fn sort_resources(rt: &ResourceDef, spec: &SortSpec, docs: &mut [Value]) {
    let Some(k) = SortKey::new(rt, spec) else {
        return;
    };
    let mut order: Vec<usize> = (0..docs.len()).collect();
    {
        let keys: Vec<Option<SortVal<'_>>> = docs.iter().map(|d| k.key(d)).collect();
        // `sort_by` is stable, so equal keys keep their input order.
        order.sort_by(|&a, &b| {
            k.compare_keys(
                keys.get(a).and_then(Option::as_ref),
                keys.get(b).and_then(Option::as_ref),
            )
        });
    }
    let mut taken: Vec<Value> = docs.iter_mut().map(std::mem::take).collect();
    for (slot, i) in docs.iter_mut().zip(order) {
        if let Some(v) = taken.get_mut(i) {
            *slot = std::mem::take(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::SchemaRegistry;
    use serde_json::json;

    fn sorted(by: &str, order: Option<&str>, docs: &[Value]) -> Vec<Value> {
        let reg = SchemaRegistry::default();
        let rt = reg.user().unwrap();
        let mut v = docs.to_vec();
        sort_resources(rt, &SortSpec::parse(by, order).unwrap(), &mut v);
        v
    }

    fn names(docs: &[Value]) -> Vec<&str> {
        docs.iter().map(|d| d["id"].as_str().unwrap()).collect()
    }

    #[test]
    fn parses_sort_parameters() {
        let s = SortSpec::parse("userName", None).unwrap();
        assert_eq!(s.order, SortOrder::Ascending);
        assert_eq!(
            SortSpec::parse("userName", Some("DESCENDING"))
                .unwrap()
                .order,
            SortOrder::Descending
        );
        assert_eq!(
            SortSpec::parse("userName", Some("Ascending"))
                .unwrap()
                .order,
            SortOrder::Ascending
        );
        let e = SortSpec::parse("userName", Some("up")).unwrap_err();
        assert_eq!(e.scim_type(), Some(crate::error::ScimType::InvalidValue));
        assert!(e.detail().contains("\"up\""));
        for bad in ["", "a b", "emails[type eq \"work\"]", "1x"] {
            let e = SortSpec::parse(bad, None).unwrap_err();
            assert_eq!(
                e.scim_type(),
                Some(crate::error::ScimType::InvalidPath),
                "{bad}"
            );
        }
        let reg = SchemaRegistry::default();
        let rt = reg.user().unwrap();
        assert!(SortSpec::parse("name.familyName", None)
            .unwrap()
            .validate(rt)
            .is_ok());
        let e = SortSpec::parse("nosuch", None)
            .unwrap()
            .validate(rt)
            .unwrap_err();
        assert!(
            e.detail().contains("`nosuch` is not defined"),
            "{}",
            e.detail()
        );
        let e = SortSpec::parse("name", None)
            .unwrap()
            .validate(rt)
            .unwrap_err();
        assert!(e.detail().contains("sub-attributes"), "{}", e.detail());
        assert!(SortSpec::parse("emails", None)
            .unwrap()
            .validate(rt)
            .is_ok());
    }

    #[test]
    fn case_insensitive_stable_missing_last() {
        let docs = [
            json!({"id": "1", "userName": "bob"}),
            json!({"id": "2"}),
            json!({"id": "3", "userName": "Alice"}),
            json!({"id": "4", "userName": "BOB"}),
            json!({"id": "5", "userName": ""}),
            json!({"id": "6", "userName": "Émile"}),
            json!({"id": "7", "userName": "carol"}),
        ];
        assert_eq!(
            names(&sorted("userName", None, &docs)),
            ["3", "1", "4", "7", "6", "2", "5"]
        );
        assert_eq!(
            names(&sorted("userName", Some("descending"), &docs)),
            ["6", "7", "1", "4", "3", "2", "5"]
        );
    }

    #[test]
    fn case_exact_numbers_dates() {
        let docs = [
            json!({"id": "a", "externalId": "b", "meta": {"lastModified": "2020-01-01T00:00:00+02:00"}}),
            json!({"id": "B", "externalId": "B", "meta": {"lastModified": "2019-12-31T23:00:00Z"}}),
            json!({"id": "c", "externalId": "a", "meta": {"lastModified": "2019-12-31T21:30:00Z"}}),
        ];
        assert_eq!(names(&sorted("externalId", None, &docs)), ["B", "c", "a"]);
        assert_eq!(
            names(&sorted("meta.lastModified", None, &docs)),
            ["c", "a", "B"]
        );
        assert_eq!(names(&sorted("id", None, &docs)), ["B", "a", "c"]);
    }

    #[test]
    fn multi_valued_uses_primary_or_first() {
        let docs = [
            json!({"id": "1", "emails": [{"value": "z@x"}, {"value": "a@x", "primary": true}]}),
            json!({"id": "2", "emails": [{"value": "m@x"}, {"value": "b@x"}]}),
            json!({"id": "3", "emails": []}),
        ];
        assert_eq!(names(&sorted("emails", None, &docs)), ["1", "2", "3"]);
        assert_eq!(
            names(&sorted("emails.value", Some("descending"), &docs)),
            ["2", "1", "3"]
        );
    }

    #[test]
    fn compare_resources_matches_sort() {
        let reg = SchemaRegistry::default();
        let rt = reg.user().unwrap();
        let spec = SortSpec::parse("userName", Some("descending")).unwrap();
        let a = json!({"userName": "a"});
        let b = json!({"userName": "B"});
        let none = json!({});
        assert_eq!(compare_resources(rt, &spec, &a, &b), Ordering::Greater);
        assert_eq!(compare_resources(rt, &spec, &none, &a), Ordering::Greater);
        assert_eq!(compare_resources(rt, &spec, &a, &none), Ordering::Less);
        let unknown = SortSpec::parse("nosuch", None).unwrap();
        assert_eq!(compare_resources(rt, &unknown, &a, &b), Ordering::Equal);
    }
}
