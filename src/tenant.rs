//! Tenants: one per identity-provider connection.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The id of a tenant (one identity-provider connection).
///
/// It appears in the tenant's SCIM base URL, so it is restricted to 1-64 characters of
/// ASCII letters, digits and `-` (no `_`: Okta refuses base URLs containing one), starting
/// with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

/// A tenant id that breaks the rules of [`TenantId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid tenant id: must be 1-64 ASCII letters, digits or '-', starting with a letter or digit"
)]
pub struct InvalidTenantId;

impl TenantId {
    /// Validates and wraps a tenant id.
    pub fn new(id: impl Into<String>) -> Result<Self, InvalidTenantId> {
        let id = id.into();
        let ok = !id.is_empty()
            && id.len() <= 64
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && id.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric());
        if ok {
            Ok(TenantId(id))
        } else {
            Err(InvalidTenantId)
        }
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TenantId {
    type Error = InvalidTenantId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        TenantId::new(s)
    }
}

impl From<TenantId> for String {
    fn from(t: TenantId) -> String {
        t.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_ids() {
        for ok in ["default", "acme-okta", "A1", "0", &"a".repeat(64)] {
            assert!(TenantId::new(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a_b", "-a", "a/b", "a b", "é", &"a".repeat(65), "a.b"] {
            assert!(TenantId::new(bad).is_err(), "{bad}");
        }
    }
}
