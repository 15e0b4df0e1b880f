//! RFC 9865 cursors: opaque, authenticated positions in a list's cursor order.
//!
//! A cursor is `base64url(payload) "." base64url(tag)`, where the payload is a small JSON
//! document (format version, issue time, for a root search the resource type the position
//! is in, and the [`Keyset`] of the last resource of the page) and the tag is
//! HMAC-SHA256 under the service's [`CursorKey`] over a hash of what the cursor is bound to
//! (tenant, resource type or root search, canonical filter, canonical sort) followed by the
//! payload. A cursor altered in any byte, or presented for another tenant, resource type,
//! filter or sort, fails the tag check and is `invalidCursor`; a genuine cursor older than
//! the service's cursor timeout is `expiredCursor`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::error::ScimError;
use crate::filter::{Filter, SortSpec, SortValue};
use crate::resource::ResourceId;
use crate::store::Keyset;
use crate::tenant::TenantId;

/// The longest cursor accepted (a cursor holds one sort value and one id, both bounded by
/// the request limits; anything longer is not one of ours).
const MAX_CURSOR_LEN: usize = 8192;

/// The payload format version.
const FORMAT: u64 = 1;

/// The secret that authenticates cursors (HMAC-SHA256 key).
///
/// Every instance of a service that shares a database must use the same key (see
/// [`ScimServiceBuilder::cursor_key`](super::ScimServiceBuilder::cursor_key)): a cursor
/// issued by one instance is then accepted by the others. The default is a random key per
/// process, so cursors do not survive a restart and are refused by other instances.
#[derive(Clone)]
pub(crate) struct CursorKey([u8; 32]);

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey(..)")
    }
}

impl CursorKey {
    /// A key derived from a host secret (any length).
    pub(crate) fn from_secret(secret: &[u8]) -> CursorKey {
        let mut h = Sha256::new();
        h.update(b"scimkit cursor key v1\0");
        h.update(secret);
        CursorKey(h.finalize().into())
    }

    /// A random key for this process. Falls back to a key derived from the process's
    /// start time and address-space layout only if the system has no randomness source,
    /// which `getrandom` reports rather than panicking on.
    pub(crate) fn random() -> CursorKey {
        let mut bytes = [0u8; 32];
        if getrandom::fill(&mut bytes).is_err() {
            let fallback = format!(
                "{:?}{:p}",
                std::time::SystemTime::now(),
                &bytes as *const [u8; 32]
            );
            return CursorKey::from_secret(fallback.as_bytes());
        }
        CursorKey(bytes)
    }

    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut ipad = [0x36u8; 64];
        let mut opad = [0x5cu8; 64];
        for (i, k) in self.0.iter().enumerate() {
            if let (Some(a), Some(b)) = (ipad.get_mut(i), opad.get_mut(i)) {
                *a ^= k;
                *b ^= k;
            }
        }
        let mut inner = Sha256::new();
        inner.update(ipad);
        for p in parts {
            inner.update(p);
        }
        let inner = inner.finalize();
        let mut outer = Sha256::new();
        outer.update(opad);
        outer.update(inner);
        outer.finalize().into()
    }
}

/// What a cursor is bound to: the hash of the canonical forms of the tenant, the scope (a
/// resource type, or a root search over a list of types), the filter and the sort.
pub(crate) struct Binding([u8; 32]);

impl Binding {
    pub(crate) fn new(
        tenant: &TenantId,
        scope: &[&str],
        filter: Option<&Filter>,
        sort: Option<&SortSpec>,
    ) -> Binding {
        let mut h = Sha256::new();
        let mut field = |s: &str| {
            h.update((s.len() as u64).to_be_bytes());
            h.update(s.as_bytes());
        };
        field(tenant.as_str());
        field(&scope.len().to_string());
        for s in scope {
            field(s);
        }
        field(&filter.map(|f| f.to_string()).unwrap_or_default());
        match sort {
            Some(s) => {
                field(&s.by.to_string().to_ascii_lowercase());
                field(s.order.as_str());
            }
            None => {
                field("");
                field("");
            }
        }
        Binding(h.finalize().into())
    }
}

/// A decoded cursor: where the next page starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Position {
    /// For a root search: the index (in the searched types) of the type `after` is in.
    pub(crate) scope_index: usize,
    /// The last resource returned (`None`: the start of the type at `scope_index`).
    pub(crate) after: Option<Keyset>,
}

/// Issues the cursor for `position`.
pub(crate) fn encode(
    key: &CursorKey,
    binding: &Binding,
    now: DateTime<Utc>,
    position: &Position,
) -> String {
    let payload = json!({
        "v": FORMAT,
        "t": now.timestamp(),
        "x": position.scope_index,
        "a": position.after.as_ref().map(keyset_json),
    })
    .to_string();
    let tag = key.mac(&[&binding.0, payload.as_bytes()]);
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(payload.as_bytes()),
        URL_SAFE_NO_PAD.encode(tag)
    )
}

/// Checks and decodes a cursor presented with a request whose binding is `binding`.
pub(crate) fn decode(
    key: &CursorKey,
    binding: &Binding,
    now: DateTime<Utc>,
    timeout: std::time::Duration,
    cursor: &str,
) -> Result<Position, ScimError> {
    let invalid = || {
        ScimError::InvalidCursor(format!(
            "the `cursor` `{}` is not one this service issued for this tenant, resource type, filter and sort (it was altered, or belongs to another query); ask again with an empty cursor for the first page",
            crate::resource::truncate_for_detail(cursor)
        ))
    };
    if cursor.len() > MAX_CURSOR_LEN {
        return Err(invalid());
    }
    let (p, t) = cursor.trim().split_once('.').ok_or_else(invalid)?;
    let payload = URL_SAFE_NO_PAD.decode(p).map_err(|_| invalid())?;
    let tag = URL_SAFE_NO_PAD.decode(t).map_err(|_| invalid())?;
    let expected = key.mac(&[&binding.0, &payload]);
    // Constant-time comparison of the tags.
    if tag.len() != expected.len()
        || tag
            .iter()
            .zip(expected.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            != 0
    {
        return Err(invalid());
    }
    let doc: Value = serde_json::from_slice(&payload).map_err(|_| invalid())?;
    if doc.get("v").and_then(Value::as_u64) != Some(FORMAT) {
        return Err(invalid());
    }
    let issued = doc.get("t").and_then(Value::as_i64).ok_or_else(invalid)?;
    let age = now.timestamp().saturating_sub(issued);
    let limit = i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX);
    if age > limit {
        return Err(ScimError::ExpiredCursor(format!(
            "the `cursor` was issued {age} s ago and expired after {limit} s; start again with an empty cursor"
        )));
    }
    let scope_index = doc
        .get("x")
        .and_then(Value::as_u64)
        .and_then(|x| usize::try_from(x).ok())
        .ok_or_else(invalid)?;
    let after = match doc.get("a") {
        None | Some(Value::Null) => None,
        Some(a) => Some(keyset_from_json(a).ok_or_else(invalid)?),
    };
    Ok(Position { scope_index, after })
}

fn keyset_json(k: &Keyset) -> Value {
    let value = match &k.value {
        None => Value::Null,
        Some(SortValue::Bool(b)) => json!(["b", b]),
        Some(SortValue::Number(n)) => json!(["n", n]),
        Some(SortValue::DateTime(d)) => json!(["d", d.to_rfc3339()]),
        Some(SortValue::String(s)) => json!(["s", s]),
        Some(SortValue::Other(r)) => json!(["o", r]),
    };
    json!([k.id.as_str(), value])
}

fn keyset_from_json(v: &Value) -> Option<Keyset> {
    let [id, value] = v.as_array()?.as_slice() else {
        return None;
    };
    let id = ResourceId::new(id.as_str()?.to_owned());
    let value = match value {
        Value::Null => None,
        Value::Array(pair) => {
            let [kind, v] = pair.as_slice() else {
                return None;
            };
            Some(match kind.as_str()? {
                "b" => SortValue::Bool(v.as_bool()?),
                "n" => match v {
                    Value::Number(n) => SortValue::Number(n.clone()),
                    _ => return None,
                },
                "d" => SortValue::DateTime(DateTime::parse_from_rfc3339(v.as_str()?).ok()?),
                "s" => SortValue::String(v.as_str()?.to_owned()),
                "o" => SortValue::Other(u8::try_from(v.as_u64()?).ok()?),
                _ => return None,
            })
        }
        _ => return None,
    };
    Some(Keyset { value, id })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(filter: Option<&str>) -> Binding {
        let f = filter.map(|f| Filter::parse(f).unwrap());
        Binding::new(&TenantId::new("acme").unwrap(), &["User"], f.as_ref(), None)
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        let k = CursorKey([0x0b; 32]);
        let a = k.mac(&[b"Hi ", b"There"]);
        let b = k.mac(&[b"Hi There"]);
        assert_eq!(a, b, "the tag is over the concatenation");
        assert_ne!(a, CursorKey([0x0c; 32]).mac(&[b"Hi There"]));
        // RFC 4231 §4.3 (test case 2, key "Jefe") through a 32-byte zero-padded key.
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        let tag = CursorKey(key).mac(&[b"what do ya want for nothing?"]);
        let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn round_trip_and_rejections() {
        let key = CursorKey::from_secret(b"s");
        let now = Utc::now();
        let pos = Position {
            scope_index: 1,
            after: Some(Keyset {
                value: Some(SortValue::String("bjensen".into())),
                id: "u-1".into(),
            }),
        };
        let b = binding(None);
        let c = encode(&key, &b, now, &pos);
        let hour = std::time::Duration::from_secs(3600);
        assert_eq!(decode(&key, &b, now, hour, &c).unwrap(), pos);
        // Another filter, another key, a flipped byte, garbage: invalid.
        for (k, bd, cur) in [
            (&key, binding(Some("userName eq \"x\"")), c.clone()),
            (&CursorKey::from_secret(b"t"), binding(None), c.clone()),
            (&key, binding(None), format!("A{c}")),
            (&key, binding(None), "nonsense".to_owned()),
            (&key, binding(None), String::new()),
        ] {
            let e = decode(k, &bd, now, hour, &cur).unwrap_err();
            assert_eq!(e.scim_type().map(|t| t.as_str()), Some("invalidCursor"));
        }
        let later = now + chrono::Duration::seconds(3601);
        let e = decode(&key, &b, later, hour, &c).unwrap_err();
        assert_eq!(e.scim_type().map(|t| t.as_str()), Some("expiredCursor"));
    }
}
