use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::ScimError;

/// The service-provider-issued `id` of a resource: stable, case-sensitive, never reassigned.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ResourceId(String);

impl ResourceId {
    /// A fresh random id (a UUID v4 in its hyphenated lower-case form).
    pub fn generate() -> Self {
        ResourceId(uuid::Uuid::new_v4().to_string())
    }

    /// Wraps an existing id (from storage or a request path).
    pub fn new(id: impl Into<String>) -> Self {
        ResourceId(id.into())
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as an owned string, without copying it.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ResourceId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for ResourceId {
    fn from(s: &str) -> Self {
        ResourceId(s.to_owned())
    }
}

impl From<String> for ResourceId {
    fn from(s: String) -> Self {
        ResourceId(s)
    }
}

/// A resource version: a counter bumped by every write, exposed as the weak ETag `W/"n"`
/// in `meta.version` and the `ETag` header (RFC 7644 §3.14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Version(u64);

impl Version {
    /// The version of a newly created resource.
    pub const INITIAL: Version = Version(1);

    /// Wraps a raw counter.
    pub fn new(n: u64) -> Self {
        Version(n)
    }

    /// The raw counter.
    pub fn get(self) -> u64 {
        self.0
    }

    /// The version after one more write.
    pub fn next(self) -> Version {
        Version(self.0.saturating_add(1))
    }

    /// The weak ETag, `W/"n"`.
    pub fn etag(self) -> String {
        let mut tag = String::with_capacity(24);
        tag.push_str("W/\"");
        push_decimal(&mut tag, self.0);
        tag.push('"');
        tag
    }

    /// Parses an entity tag as a client sends it in `If-Match`/`If-None-Match` or
    /// `meta.version`: `W/"n"` or `"n"`. Surrounding whitespace is ignored.
    pub fn from_etag(tag: &str) -> Result<Version, ScimError> {
        let t = tag.trim();
        let t = t.strip_prefix("W/").unwrap_or(t);
        let inner = t
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .ok_or_else(|| {
                ScimError::InvalidValue(format!(
                    "entity tag `{}` is not of the form W/\"n\"",
                    truncate_for_detail(tag)
                ))
            })?;
        inner.parse::<u64>().map(Version).map_err(|_| {
            ScimError::InvalidValue(format!(
                "entity tag `{}` is not a version issued by this service",
                truncate_for_detail(tag)
            ))
        })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.etag())
    }
}

impl FromStr for Version {
    type Err = ScimError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Version::from_etag(s)
    }
}

/// Shortens untrusted input quoted in an error detail to at most 64 characters.
pub(crate) fn truncate_for_detail(s: &str) -> String {
    shorten(s, 64)
}

/// Untrusted input quoted in an error detail, cut to `max` characters with an ellipsis.
pub(crate) fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max).collect();
        out.push('…');
        out
    }
}

/// Appends the decimal digits of `n` (without going through `fmt`, which is measurably slower
/// on the response path).
pub(crate) fn push_decimal(out: &mut String, n: u64) {
    if n >= 10 {
        push_decimal(out, n / 10);
    }
    // `n % 10` is below 10, so the digit is always ASCII.
    out.push(char::from(b'0' + (n % 10) as u8));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_round_trip() {
        let v = Version::new(7);
        assert_eq!(v.etag(), "W/\"7\"");
        assert_eq!(Version::from_etag("W/\"7\"").unwrap(), v);
        assert_eq!(Version::from_etag(" \"7\" ").unwrap(), v);
        assert_eq!(v.next().get(), 8);
        for bad in ["7", "W/7", "\"x\"", "W/\"\"", "\"-1\"", ""] {
            assert!(Version::from_etag(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn generated_ids_are_unique() {
        assert_ne!(ResourceId::generate(), ResourceId::generate());
    }
}
