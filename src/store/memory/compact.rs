//! A compact binary form of JSON documents, for the in-memory store.
//!
//! A `serde_json::Value` with `preserve_order` costs about 2.5 KB for a typical provisioned
//! user (every map carries a hash table and 80-byte slots, every key its own allocation); the
//! issue's budget is 1.5 KB per user including indexes. JSON text is compact but parsing it
//! back is slow (maps grow one insert at a time). This form is as small as JSON text and
//! decodes with every map and array allocated at its final size, about as fast as cloning a
//! `Value`.
//!
//! Layout: one tag byte per value, lengths and integers as LEB128 varints. Object keys are a
//! varint `k`: odd, the attribute name `KEYS[k >> 1]` (the names every SCIM document
//! repeats, one byte instead of their text); even, `k >> 1` bytes of UTF-8 follow.

use std::fmt;

use serde_json::{Map, Number, Value};

const NULL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const UINT: u8 = 3;
const NEG_INT: u8 = 4;
const FLOAT: u8 = 5;
const STRING: u8 = 6;
const ARRAY: u8 = 7;
const OBJECT: u8 = 8;

/// Attribute names written as an index (at most 64, so that each takes one byte).
const KEYS: [&str; 50] = [
    "schemas",
    "userName",
    "name",
    "givenName",
    "familyName",
    "middleName",
    "formatted",
    "honorificPrefix",
    "honorificSuffix",
    "displayName",
    "nickName",
    "profileUrl",
    "title",
    "userType",
    "preferredLanguage",
    "locale",
    "timezone",
    "active",
    "emails",
    "phoneNumbers",
    "ims",
    "photos",
    "addresses",
    "value",
    "type",
    "primary",
    "display",
    "streetAddress",
    "locality",
    "region",
    "postalCode",
    "country",
    "externalId",
    "members",
    "groups",
    "entitlements",
    "roles",
    "x509Certificates",
    "employeeNumber",
    "costCenter",
    "organization",
    "division",
    "department",
    "manager",
    "$ref",
    "password",
    "id",
    "meta",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
    "urn:ietf:params:scim:schemas:core:2.0:User",
];

/// Documents nest far less than this; the bound keeps a hostile document from exhausting the
/// stack in either direction.
const MAX_DEPTH: usize = 128;

/// A document that cannot be encoded or a buffer that is not a valid encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CompactError(&'static str);

impl fmt::Display for CompactError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "compact document encoding: {}", self.0)
    }
}

impl std::error::Error for CompactError {}

/// Encodes a document.
pub(crate) fn encode(v: &Value) -> Result<Box<[u8]>, CompactError> {
    let mut out = Vec::with_capacity(256);
    write_value(&mut out, v, 0)?;
    Ok(out.into_boxed_slice())
}

/// Decodes what [`encode`] produced.
pub(crate) fn decode(bytes: &[u8]) -> Result<Value, CompactError> {
    let mut r = Reader { bytes, pos: 0 };
    let v = r.value(0)?;
    if r.pos != bytes.len() {
        return Err(CompactError("trailing bytes"));
    }
    Ok(v)
}

/// Decodes only the top-level members of an object document whose key satisfies `keep`,
/// skipping the others without allocating: what the filter evaluator reads of a resource is
/// usually one or two attributes.
pub(crate) fn decode_some(
    bytes: &[u8],
    keep: &dyn Fn(&str) -> bool,
) -> Result<Value, CompactError> {
    let mut r = Reader { bytes, pos: 0 };
    if r.byte()? != OBJECT {
        return decode(bytes);
    }
    let n = r.count()?;
    let mut map = Map::new();
    for _ in 0..n {
        let key = r.key()?;
        if keep(key) {
            let key = key.to_owned();
            let v = r.value(1)?;
            map.insert(key, v);
        } else {
            r.skip(1)?;
        }
    }
    if r.pos != bytes.len() {
        return Err(CompactError("trailing bytes"));
    }
    Ok(Value::Object(map))
}

fn write_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn write_key(out: &mut Vec<u8>, k: &str) {
    match KEYS.iter().position(|known| *known == k) {
        Some(i) => write_varint(out, (i as u64) << 1 | 1),
        None => {
            write_varint(out, (k.len() as u64) << 1);
            out.extend_from_slice(k.as_bytes());
        }
    }
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    write_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn write_value(out: &mut Vec<u8>, v: &Value, depth: usize) -> Result<(), CompactError> {
    if depth > MAX_DEPTH {
        return Err(CompactError("document nested too deeply"));
    }
    match v {
        Value::Null => out.push(NULL),
        Value::Bool(false) => out.push(FALSE),
        Value::Bool(true) => out.push(TRUE),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                out.push(UINT);
                write_varint(out, u);
            } else if let Some(i) = n.as_i64() {
                // Negative (non-negative ones are u64): store the magnitude minus one.
                out.push(NEG_INT);
                write_varint(out, !(i as u64));
            } else {
                let f = n.as_f64().ok_or(CompactError("number out of range"))?;
                out.push(FLOAT);
                out.extend_from_slice(&f.to_le_bytes());
            }
        }
        Value::String(s) => {
            out.push(STRING);
            write_str(out, s);
        }
        Value::Array(items) => {
            out.push(ARRAY);
            write_varint(out, items.len() as u64);
            for item in items {
                write_value(out, item, depth + 1)?;
            }
        }
        Value::Object(map) => {
            out.push(OBJECT);
            write_varint(out, map.len() as u64);
            for (k, item) in map {
                write_key(out, k);
                write_value(out, item, depth + 1)?;
            }
        }
    }
    Ok(())
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, CompactError> {
        let b = *self.bytes.get(self.pos).ok_or(CompactError("truncated"))?;
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, CompactError> {
        let mut n: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(CompactError("varint too long"))
    }

    fn take(&mut self, len: u64) -> Result<&'a [u8], CompactError> {
        let len = usize::try_from(len).map_err(|_| CompactError("length out of range"))?;
        let end = self
            .pos
            .checked_add(len)
            .ok_or(CompactError("length out of range"))?;
        let s = self
            .bytes
            .get(self.pos..end)
            .ok_or(CompactError("truncated"))?;
        self.pos = end;
        Ok(s)
    }

    /// An object key: a known attribute name or UTF-8 text.
    fn key(&mut self) -> Result<&'a str, CompactError> {
        let k = self.varint()?;
        if k & 1 == 1 {
            let i = usize::try_from(k >> 1).map_err(|_| CompactError("key out of range"))?;
            KEYS.get(i)
                .copied()
                .ok_or(CompactError("unknown key index"))
        } else {
            let raw = self.take(k >> 1)?;
            std::str::from_utf8(raw).map_err(|_| CompactError("invalid UTF-8"))
        }
    }

    fn string(&mut self) -> Result<String, CompactError> {
        let len = self.varint()?;
        let raw = self.take(len)?;
        std::str::from_utf8(raw)
            .map(str::to_owned)
            .map_err(|_| CompactError("invalid UTF-8"))
    }

    /// A declared element count, capped by the bytes left (each element takes at least one),
    /// so a corrupt count cannot reserve unbounded memory.
    fn count(&mut self) -> Result<usize, CompactError> {
        let n = usize::try_from(self.varint()?).map_err(|_| CompactError("count out of range"))?;
        if n > self.bytes.len().saturating_sub(self.pos) {
            return Err(CompactError("count exceeds the data"));
        }
        Ok(n)
    }

    fn skip(&mut self, depth: usize) -> Result<(), CompactError> {
        if depth > MAX_DEPTH {
            return Err(CompactError("document nested too deeply"));
        }
        match self.byte()? {
            NULL | FALSE | TRUE => {}
            UINT | NEG_INT => {
                self.varint()?;
            }
            FLOAT => {
                self.take(8)?;
            }
            STRING => {
                let len = self.varint()?;
                self.take(len)?;
            }
            ARRAY => {
                for _ in 0..self.count()? {
                    self.skip(depth + 1)?;
                }
            }
            OBJECT => {
                for _ in 0..self.count()? {
                    self.key()?;
                    self.skip(depth + 1)?;
                }
            }
            _ => return Err(CompactError("unknown tag")),
        }
        Ok(())
    }

    fn value(&mut self, depth: usize) -> Result<Value, CompactError> {
        if depth > MAX_DEPTH {
            return Err(CompactError("document nested too deeply"));
        }
        Ok(match self.byte()? {
            NULL => Value::Null,
            FALSE => Value::Bool(false),
            TRUE => Value::Bool(true),
            UINT => Value::Number(Number::from(self.varint()?)),
            NEG_INT => Value::Number(Number::from(!self.varint()? as i64)),
            FLOAT => {
                let raw = self.take(8)?;
                let arr: [u8; 8] = raw.try_into().map_err(|_| CompactError("truncated"))?;
                let f = f64::from_le_bytes(arr);
                Value::Number(Number::from_f64(f).ok_or(CompactError("non-finite number"))?)
            }
            STRING => Value::String(self.string()?),
            ARRAY => {
                let n = self.count()?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(depth + 1)?);
                }
                Value::Array(items)
            }
            OBJECT => {
                let n = self.count()?;
                let mut map = Map::with_capacity(n);
                for _ in 0..n {
                    let k = self.key()?.to_owned();
                    let v = self.value(depth + 1)?;
                    map.insert(k, v);
                }
                Value::Object(map)
            }
            _ => return Err(CompactError("unknown tag")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn known_attribute_names_take_one_byte() {
        let doc = json!({"userName": "a"});
        // OBJECT, count, key index, STRING, length, "a".
        assert_eq!(encode(&doc).unwrap().len(), 6);
        let odd = json!({"USERNAME": "a", "userName": "b", "x-custom": {"value": 1}});
        assert_eq!(decode(&encode(&odd).unwrap()).unwrap(), odd);
        // An index past the table is an error, not a panic.
        assert!(decode(&[OBJECT, 1, 127, NULL]).is_err());
        assert!(decode_some(&[OBJECT, 1, 127, NULL], &|_| true).is_err());
        assert!(KEYS.len() <= 64);
    }

    #[test]
    fn round_trips_every_kind_of_value() {
        let doc = json!({
            "z": null, "t": true, "f": false, "u": 0, "big": u64::MAX, "neg": -1,
            "min": i64::MIN, "pi": 3.25, "tiny": -1.5e-300, "s": "Zoë \u{1F600} \"q\"",
            "a": [1, "x", [], {}], "o": {"b": {"c": [null]}}, "": ""
        });
        let back = decode(&encode(&doc).unwrap()).unwrap();
        assert_eq!(back, doc);
        assert_eq!(back.to_string(), doc.to_string(), "key order kept");
    }

    #[test]
    fn is_smaller_than_json_text_for_a_user() {
        let user = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "user1@example.com",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [{"primary": true, "value": "user1@example.com", "type": "work"}],
            "active": true
        });
        assert!(encode(&user).unwrap().len() < user.to_string().len());
    }

    #[test]
    fn rejects_corrupt_input_without_panicking() {
        let good = encode(&json!({"a": [1, "bc"], "d": 2.5})).unwrap();
        for cut in 0..good.len() {
            assert!(decode(&good[..cut]).is_err(), "prefix {cut}");
        }
        assert!(decode(&[OBJECT, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
        assert!(decode(&[9]).is_err());
        assert!(decode(&[STRING, 1, 0xff]).is_err());
        assert!(decode(&[0x80; 20]).is_err());
        let deep = [ARRAY, 1].repeat(10_000);
        assert!(decode(&deep).is_err());
        let mut nested = json!(1);
        for _ in 0..200 {
            nested = json!([nested]);
        }
        assert!(encode(&nested).is_err());
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|i| json!(i)),
            any::<u64>().prop_map(|u| json!(u)),
            (-1e300f64..1e300).prop_map(|f| json!(f)),
            ".{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((".{0,6}", inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    #[test]
    fn decodes_selected_members() {
        let doc = json!({"userName": "a", "name": {"givenName": "b"}, "emails": [{"value": "c"}], "x": 1.5});
        let bytes = encode(&doc).unwrap();
        let some = decode_some(&bytes, &|k| k == "emails" || k == "x").unwrap();
        assert_eq!(some, json!({"emails": [{"value": "c"}], "x": 1.5}));
        assert_eq!(decode_some(&bytes, &|_| true).unwrap(), doc);
        assert_eq!(decode_some(&bytes, &|_| false).unwrap(), json!({}));
        assert!(decode_some(&bytes[..bytes.len() - 1], &|_| false).is_err());
    }

    proptest! {
        #[test]
        fn round_trips(v in arb_json()) {
            prop_assert_eq!(decode(&encode(&v).unwrap()).unwrap(), v);
        }

        #[test]
        fn never_panics_on_garbage(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&bytes);
            let _ = decode_some(&bytes, &|k| k.len() % 2 == 0);
        }
    }
}
