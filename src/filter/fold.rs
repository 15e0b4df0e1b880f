//! The one case fold (RFC 7643 §2.2: attributes that are not `caseExact` compare without
//! regard to case).
//!
//! Every place that compares or stores text case-insensitively uses these functions: the
//! filter evaluator and sorter, the uniqueness keys the service computes, and the folded
//! columns and documents of the SQLite and PostgreSQL stores. SQL answers are exact only
//! because all of them fold alike, so the rule lives here once.

use std::borrow::Cow;

use serde_json::Value;

/// `s` folded for a case-insensitive comparison: Unicode lower case, borrowed when there is
/// nothing to fold.
///
/// ```
/// use scimkit::filter::fold_case;
/// assert_eq!(fold_case("BJensen@Example.COM"), "bjensen@example.com");
/// assert_eq!(fold_case("Ünïcode"), "ünïcode");
/// assert!(matches!(fold_case("already"), std::borrow::Cow::Borrowed(_)));
/// ```
pub fn fold_case(s: &str) -> Cow<'_, str> {
    if s.is_ascii() {
        if s.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(s.to_ascii_lowercase())
        } else {
            Cow::Borrowed(s)
        }
    } else {
        Cow::Owned(s.to_lowercase())
    }
}

/// `s` folded, as an owned string (for a stored column or a key).
pub fn fold_case_owned(s: &str) -> String {
    fold_case(s).into_owned()
}

/// `doc` with every string value folded by [`fold_case`]; keys and other values are kept.
/// The SQL stores keep this copy of each document so that case-insensitive comparisons in
/// SQL give exactly the evaluator's answer.
pub fn fold_strings(doc: &Value) -> Value {
    match doc {
        Value::String(s) => Value::String(fold_case_owned(s)),
        Value::Array(items) => Value::Array(items.iter().map(fold_strings).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), fold_strings(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn folds_strings_and_keeps_shape() {
        let doc =
            json!({"userName": "BJ", "emails": [{"value": "A@B.C", "primary": true}], "n": 3});
        assert_eq!(
            fold_strings(&doc),
            json!({"userName": "bj", "emails": [{"value": "a@b.c", "primary": true}], "n": 3})
        );
    }

    #[test]
    fn ascii_and_unicode_agree_with_to_lowercase() {
        for s in ["", "abc", "ABC", "Straße", "ÀÉÎ", "Istanbul", "ΣΑΣ"] {
            assert_eq!(fold_case(s), s.to_lowercase(), "{s}");
        }
    }
}
