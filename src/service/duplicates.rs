//! Finding a key given twice in one JSON object of a request body, for strict mode
//! ([`Tolerances::duplicate_json_keys`](crate::settings::Tolerances::duplicate_json_keys) off).
//!
//! RFC 8259 §4 says the names within an object SHOULD be unique and leaves the meaning of a
//! duplicate to the receiver; `serde_json` keeps the last value. A strict service refuses the
//! ambiguity instead. The check is one pass of `serde_json`'s own deserializer over the bytes
//! with a visitor that builds no values: it keeps only the keys of the objects on the current
//! path (borrowed from the input unless they hold escapes) and the path itself, and it is
//! bounded in depth by the deserializer's recursion limit (128 levels), like the real parse.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// A segment of the path to the object holding the duplicate.
enum Segment<'de> {
    Key(Cow<'de, str>),
    Index(usize),
}

#[derive(Default)]
struct State<'de> {
    path: Vec<Segment<'de>>,
    /// The duplicate found: the path of its object and the key.
    found: Option<(String, String)>,
}

/// The first key given twice in one object of `body`, with the path of that object
/// (`emails[0]`, or empty for the top level). `None` when there is none, or when `body` is
/// not valid JSON (the real parse then reports that).
pub(super) fn find_duplicate_key(body: &[u8]) -> Option<(String, String)> {
    let state = RefCell::new(State::default());
    let mut de = serde_json::Deserializer::from_slice(body);
    let walked = Walk { state: &state }.deserialize(&mut de);
    drop(walked);
    state.into_inner().found
}

struct Walk<'s, 'de> {
    state: &'s RefCell<State<'de>>,
}

impl<'s, 'de> Walk<'s, 'de> {
    fn child(&self) -> Walk<'s, 'de> {
        Walk { state: self.state }
    }

    /// Walks the next value under `segment`.
    fn under<T, E>(
        &self,
        segment: Segment<'de>,
        f: impl FnOnce(Walk<'s, 'de>) -> Result<T, E>,
    ) -> Result<T, E> {
        self.state.borrow_mut().path.push(segment);
        let r = f(self.child());
        self.state.borrow_mut().path.pop();
        r
    }

    fn path_text(&self) -> String {
        let state = self.state.borrow();
        let mut out = String::new();
        for s in &state.path {
            match s {
                Segment::Key(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                Segment::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }
}

impl<'de> DeserializeSeed<'de> for Walk<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        loop {
            let next = self.under(Segment::Index(i), |w| seq.next_element_seed(w))?;
            if next.is_none() {
                return Ok(());
            }
            i = i.saturating_add(1);
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut keys: HashSet<Cow<'de, str>> = HashSet::new();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            if keys.contains(&key) {
                let path = self.path_text();
                self.state.borrow_mut().found = Some((path, key.into_owned()));
                return Err(de::Error::custom("duplicate key"));
            }
            keys.insert(key.clone());
            self.under(Segment::Key(key), |w| map.next_value_seed(w))?;
        }
        Ok(())
    }
}

/// Reads an object key, borrowed from the input when it has no escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dup(s: &str) -> Option<(String, String)> {
        find_duplicate_key(s.as_bytes())
    }

    #[test]
    fn finds_the_first_duplicate_with_its_path() {
        assert_eq!(
            dup(r#"{"userName": "a", "userName": "b"}"#),
            Some((String::new(), "userName".to_owned()))
        );
        assert_eq!(
            dup(r#"{"userName": "a", "emails": [{"value": "x"}, {"type": "w", "type": "h"}]}"#),
            Some(("emails[1]".to_owned(), "type".to_owned()))
        );
        assert_eq!(
            dup(r#"{"name": {"givenName": "a", "familyName": "b", "givenName": "c"}}"#),
            Some(("name".to_owned(), "givenName".to_owned()))
        );
        // An escaped spelling of the same key is the same key.
        assert_eq!(
            dup(r#"{"a\u0062": 1, "ab": 2}"#),
            Some((String::new(), "ab".to_owned()))
        );
    }

    #[test]
    fn accepts_what_has_no_duplicates() {
        assert_eq!(
            dup(r#"{"a": 1, "A": 2, "b": {"a": 1}, "c": [{"a": 1}, {"a": 2}]}"#),
            None
        );
        assert_eq!(dup(r#"[1, "x", null, true, 1.5, -3]"#), None);
        // Keys of sibling objects do not collide, nor do keys at different depths.
        assert_eq!(dup(r#"{"x": {"k": 1}, "y": {"k": 2}, "k": 3}"#), None);
    }

    #[test]
    fn invalid_or_too_deep_json_is_left_to_the_parser() {
        assert_eq!(dup(r#"{"a": 1, "b""#), None);
        assert_eq!(dup("not json"), None);
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(dup(&deep), None);
        // A duplicate before the point where the JSON breaks is still found.
        assert_eq!(
            dup(r#"{"a": 1, "a": 2, "#),
            Some((String::new(), "a".to_owned()))
        );
    }
}
