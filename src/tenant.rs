//! Tenants: one per identity-provider connection.
//!
//! A [`Tenant`] is what an admin creates when switching on SCIM provisioning for one IdP
//! connection. It owns its bearer tokens (see [`crate::auth`]), its settings, and a SCIM base
//! URL derived from a host-wide public prefix by [`BaseUrl`].

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::settings::Settings;

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

/// One identity-provider connection provisioning into the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    /// The tenant's id, the last segment of its SCIM base URL.
    pub id: TenantId,
    /// A name for admins ("Okta production").
    pub display_name: String,
    /// Whether SCIM requests are served. When `false` every request is refused with 401,
    /// whatever token it carries, but tokens and data are kept.
    pub scim_enabled: bool,
    /// Tolerances and limits applied to this tenant's requests.
    pub settings: Settings,
    /// When the tenant was created.
    pub created: DateTime<Utc>,
}

/// The public URL prefix under which the host serves SCIM, such as
/// `https://app.example.com/scim/v2`. A tenant's base URL is the prefix followed by
/// `/{tenant id}`.
///
/// The prefix is validated once, so that every base URL derived from it is one an IdP
/// accepts: an absolute `http`/`https` URL with a host, no query or fragment, no whitespace or
/// control characters, no user information, and no `_` anywhere (Okta refuses connector base URLs containing one).
/// A trailing `/` is dropped.
///
/// ```
/// use scimkit::tenant::{BaseUrl, TenantId};
///
/// let prefix = BaseUrl::new("https://app.example.com/scim/v2/").unwrap();
/// let tenant = TenantId::new("acme-okta").unwrap();
/// assert_eq!(prefix.for_tenant(&tenant), "https://app.example.com/scim/v2/acme-okta");
/// assert!(BaseUrl::new("https://my_app.example.com/scim").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BaseUrl(String);

/// A public prefix that [`BaseUrl::new`] refuses, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid SCIM base URL prefix: {0}")]
pub struct InvalidBaseUrl(&'static str);

impl BaseUrl {
    /// Validates a public prefix (see the type docs for the rules).
    pub fn new(prefix: impl Into<String>) -> Result<Self, InvalidBaseUrl> {
        let mut prefix = prefix.into();
        while prefix.ends_with('/') {
            prefix.pop();
        }
        let rest = prefix
            .strip_prefix("https://")
            .or_else(|| prefix.strip_prefix("http://"))
            .ok_or(InvalidBaseUrl("must start with https:// or http://"))?;
        if prefix.contains('_') {
            return Err(InvalidBaseUrl("must not contain '_' (Okta refuses it)"));
        }
        if !prefix.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(InvalidBaseUrl(
                "must be printable ASCII without whitespace (percent-encode anything else)",
            ));
        }
        if prefix.contains(['?', '#']) {
            return Err(InvalidBaseUrl("must not contain a query or fragment"));
        }
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.contains('@') {
            // Credentials in a URL end up in IdP screens and logs.
            return Err(InvalidBaseUrl("must not contain user information"));
        }
        // A port follows the last ':' unless that ':' is inside an IPv6 literal `[...]`.
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !p.contains(']') => (h, Some(p)),
            _ => (authority, None),
        };
        if host.is_empty() {
            return Err(InvalidBaseUrl("must name a host"));
        }
        if port.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
            return Err(InvalidBaseUrl("port must be decimal digits"));
        }
        if rest.contains("//") {
            return Err(InvalidBaseUrl("must not contain an empty path segment"));
        }
        Ok(BaseUrl(prefix))
    }

    /// The prefix, without a trailing `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The SCIM base URL of `tenant`: the prefix, `/`, the tenant id. Tenant ids are
    /// URL-safe by construction, so no encoding is needed.
    pub fn for_tenant(&self, tenant: &TenantId) -> String {
        let mut url = String::with_capacity(self.0.len() + 1 + tenant.as_str().len());
        url.push_str(&self.0);
        url.push('/');
        url.push_str(tenant.as_str());
        url
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for BaseUrl {
    type Err = InvalidBaseUrl;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BaseUrl::new(s)
    }
}

/// The SCIM base URL of `tenant` under the public `prefix`: a shortcut for
/// [`BaseUrl::new`] followed by [`BaseUrl::for_tenant`].
pub fn base_url(prefix: &str, tenant: &TenantId) -> Result<String, InvalidBaseUrl> {
    Ok(BaseUrl::new(prefix)?.for_tenant(tenant))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        let t = TenantId::new("acme-okta").unwrap();
        for (prefix, want) in [
            (
                "https://app.example.com/scim/v2",
                "https://app.example.com/scim/v2/acme-okta",
            ),
            (
                "https://app.example.com/scim/v2//",
                "https://app.example.com/scim/v2/acme-okta",
            ),
            ("http://localhost:8080", "http://localhost:8080/acme-okta"),
            ("http://[::1]:8080/scim", "http://[::1]:8080/scim/acme-okta"),
            ("https://[::1]/scim", "https://[::1]/scim/acme-okta"),
            (
                "https://app.example.com:8443/a/b",
                "https://app.example.com:8443/a/b/acme-okta",
            ),
        ] {
            assert_eq!(base_url(prefix, &t).unwrap(), want, "{prefix}");
        }
        for bad in [
            "",
            "app.example.com/scim",
            "ftp://app.example.com",
            "https://",
            "https:///scim",
            "https://:443/scim",
            "https://my_app.example.com/scim",
            "https://app.example.com/scim_v2",
            "https://app.example.com/scim v2",
            "https://app.example.com/scim\tv2",
            "https://app.example.com/sc\u{e9}im",
            "https://app.example.com/scim?x=1",
            "https://app.example.com/scim#top",
            "https://app.example.com//scim",
            "https://user:pw@app.example.com/scim",
            "https://app.example.com:/scim",
            "https://app.example.com:https/scim",
        ] {
            assert!(BaseUrl::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tenant_serde_round_trip() {
        let t = Tenant {
            id: TenantId::new("acme").unwrap(),
            display_name: "Acme Okta".into(),
            scim_enabled: true,
            settings: Settings::strict(),
            created: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        };
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(json["displayName"], "Acme Okta");
        assert_eq!(json["scimEnabled"], true);
        let back: Tenant = serde_json::from_value(json).unwrap();
        assert_eq!(back, t);
        let bad = serde_json::json!({
            "id": "a_b", "displayName": "x", "scimEnabled": true,
            "settings": {}, "created": "2024-01-01T00:00:00Z"
        });
        assert!(serde_json::from_value::<Tenant>(bad).is_err());
    }

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
