//! The searchable copies of a document that the SQL translation reads.
//!
//! Each resource row keeps, next to the document (`doc`), a copy with every string value
//! folded as the filter engine folds them ([`crate::filter::fold_case`]) (`fdoc`, for comparisons that ignore case) and,
//! when the document holds any string that reads as a dateTime, a copy where such strings are
//! replaced by a key that sorts chronologically and every other scalar by `null` (`ddoc`).
//! The copies have the document's exact shape, so one JSON path reaches the same value in
//! each; both are derived without the schema, so they never go stale when a schema changes.

use chrono::{DateTime, FixedOffset};
use serde_json::{Map, Value};

use crate::filter::parse_date_time;

/// `doc` with dateTime strings replaced by [`date_key`]s and other scalars by `null`; `None`
/// when no string reads as a dateTime (no dateTime comparison can then match).
pub(super) fn dates(doc: &Value) -> Option<Value> {
    fn walk(v: &Value, found: &mut bool) -> Value {
        match v {
            Value::String(s) => match parse_date_time(s) {
                Some(d) => {
                    *found = true;
                    Value::String(date_key(&d))
                }
                None => Value::Null,
            },
            Value::Array(items) => Value::Array(items.iter().map(|x| walk(x, found)).collect()),
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, x)| (k.clone(), walk(x, found)))
                    .collect::<Map<String, Value>>(),
            ),
            _ => Value::Null,
        }
    }
    let mut found = false;
    let out = walk(doc, &mut found);
    found.then_some(out)
}

/// A string whose byte order is the chronological order of instants: seconds since the epoch
/// shifted to be positive (13 digits cover years -1 to 10000, every offset applied), then the
/// nanoseconds (10 digits, as a leap second's nanoseconds exceed 10^9).
pub(super) fn date_key(d: &DateTime<FixedOffset>) -> String {
    const SHIFT: i64 = 100_000_000_000;
    format!(
        "{:013}.{:010}",
        d.timestamp().saturating_add(SHIFT),
        d.timestamp_subsec_nanos()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn date_keys_sort_chronologically() {
        let parse = |s: &str| parse_date_time(s).unwrap();
        let list = [
            "0000-01-01T00:00:00+01:00",
            "1969-12-31T23:59:59.999999999Z",
            "1970-01-01T00:00:00Z",
            "2026-01-01T01:00:00+02:00",
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:00:00.5Z",
            "9999-12-31T23:59:59-10:00",
        ];
        let mut by_key: Vec<&str> = list.to_vec();
        by_key.sort_by_key(|s| date_key(&parse(s)));
        let mut by_time: Vec<&str> = list.to_vec();
        by_time.sort_by_key(|s| parse(s));
        assert_eq!(by_key, by_time);
        assert_eq!(
            date_key(&parse("2026-01-01T01:00:00+01:00")),
            date_key(&parse("2026-01-01T00:00:00Z"))
        );
    }

    #[test]
    fn dates_only_when_present() {
        assert_eq!(dates(&json!({"a": "x", "n": 1})), None);
        let d = dates(&json!({"a": ["x", "2026-01-01T00:00:00Z"], "n": 1})).unwrap();
        assert_eq!(d["n"], Value::Null);
        assert_eq!(d["a"][0], Value::Null);
        assert!(d["a"][1].is_string());
    }
}
