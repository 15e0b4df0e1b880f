//! Typed views of User, Group and EnterpriseUser documents, for host code.
//!
//! The engine works on schema-driven JSON documents; these structs are a convenience for a
//! host that wants `user.user_name` rather than `doc["userName"]`. Convert a canonical document
//! (the output of [`normalize_resource`](super::normalize_resource) or a stored/returned
//! resource) with `User::try_from(&doc)` and back with [`User::to_value`]. Names are matched
//! exactly (camelCase), so normalise client input first. Attributes of custom extensions, and
//! anything else the structs do not name, are kept in `extra` so a round trip loses nothing.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Meta;
use crate::error::ScimError;
use crate::schema::{ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA};

/// The components of a user's name (RFC 7643 §4.1.1).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Name {
    /// The full name, formatted for display.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formatted: Option<String>,
    /// Family name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    /// Given name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    /// Middle name(s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub middle_name: Option<String>,
    /// Honorific prefix (`Ms.`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub honorific_prefix: Option<String>,
    /// Honorific suffix (`III`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub honorific_suffix: Option<String>,
}

/// An element of a multi-valued attribute with the RFC 7643 §2.4 sub-attributes `value`,
/// `display`, `type` and `primary` (emails, phone numbers, ims, photos, entitlements, roles,
/// x509Certificates).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MultiValued {
    /// The value (an address, a number, a URL...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// A human readable form of the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    /// The value's function (`work`, `home`, `mobile`...).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Whether this is the preferred value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<bool>,
}

/// An email address (`User.emails`).
pub type Email = MultiValued;
/// A phone number (`User.phoneNumbers`).
pub type PhoneNumber = MultiValued;

/// A physical mailing address (RFC 7643 §4.1.2 `addresses`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    /// The full address, formatted for display.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formatted: Option<String>,
    /// Street address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street_address: Option<String>,
    /// City or locality.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locality: Option<String>,
    /// State or region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Postal code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    /// Country (ISO 3166-1 alpha-2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// The address's function (`work`, `home`, `other`).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Whether this is the preferred address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<bool>,
}

/// A member of a group (`Group.members`), or a group of a user (`User.groups`, see
/// [`GroupRef`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupMember {
    /// The member's (or group's) `id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The URI of the resource.
    #[serde(default, rename = "$ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Its display name (readOnly; filled in by the service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    /// `User` or `Group` for members; `direct` or `indirect` for a user's groups.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// A group a user belongs to (`User.groups`, readOnly): same shape as [`GroupMember`].
pub type GroupRef = GroupMember;

/// A user's manager (Enterprise User extension, RFC 7643 §4.3).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manager {
    /// The manager's `id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The URI of the manager.
    #[serde(default, rename = "$ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// The manager's display name (readOnly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// The Enterprise User extension (RFC 7643 §4.3), found under its URN in a User document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnterpriseUser {
    /// Identifier assigned by the organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employee_number: Option<String>,
    /// Cost center.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_center: Option<String>,
    /// Organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    /// Division.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub division: Option<String>,
    /// Department.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// The user's manager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager: Option<Manager>,
}

/// A User resource (RFC 7643 §4.1) with the optional Enterprise User extension.
///
/// `password` is present only in documents the host stores (it is writeOnly and never
/// returned); keep the struct out of logs if it may hold one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// Schema URNs of the resource.
    #[serde(default)]
    pub schemas: Vec<String>,
    /// The service provider's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The provisioning client's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Resource metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    /// The unique sign-in name (required).
    pub user_name: String,
    /// The user's name components.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Name>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Casual name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nick_name: Option<String>,
    /// Profile URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_url: Option<String>,
    /// Title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Relationship to the organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_type: Option<String>,
    /// Preferred language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_language: Option<String>,
    /// Locale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// Time zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Administrative status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    /// Cleartext password (writeOnly; only in stored documents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Email addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<Email>,
    /// Phone numbers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phone_numbers: Vec<PhoneNumber>,
    /// Instant messaging addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ims: Vec<MultiValued>,
    /// Photo URLs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub photos: Vec<MultiValued>,
    /// Mailing addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<Address>,
    /// Groups the user belongs to (readOnly, derived from memberships).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupRef>,
    /// Entitlements.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entitlements: Vec<MultiValued>,
    /// Roles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<MultiValued>,
    /// X.509 certificates (base64 DER values).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub x509_certificates: Vec<MultiValued>,
    /// The Enterprise User extension.
    #[serde(
        default,
        rename = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        skip_serializing_if = "Option::is_none"
    )]
    pub enterprise: Option<EnterpriseUser>,
    /// Every other member of the document (custom extensions), unchanged.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A Group resource (RFC 7643 §4.2).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    /// Schema URNs of the resource.
    #[serde(default)]
    pub schemas: Vec<String>,
    /// The service provider's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The provisioning client's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Resource metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    /// The group's name (required).
    pub display_name: String,
    /// The members.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<GroupMember>,
    /// Every other member of the document (custom extensions), unchanged.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn from_doc<T: serde::de::DeserializeOwned>(kind: &str, doc: &Value) -> Result<T, ScimError> {
    serde_json::from_value(doc.clone())
        .map_err(|e| ScimError::InvalidValue(format!("not a valid {kind} document: {e}")))
}

fn to_doc<T: Serialize>(v: &T) -> Value {
    // These structs only have string keys, so serialisation cannot fail.
    serde_json::to_value(v).unwrap_or_default()
}

/// Adds `urn` to `schemas` unless an entry matches it case-insensitively.
fn ensure_schema(schemas: &mut Vec<String>, urn: &str) {
    if !schemas.iter().any(|s| s.eq_ignore_ascii_case(urn)) {
        schemas.push(urn.to_owned());
    }
}

impl User {
    /// A user with the given `userName` and the core schema.
    pub fn new(user_name: impl Into<String>) -> Self {
        User {
            schemas: vec![USER_SCHEMA.to_owned()],
            user_name: user_name.into(),
            ..User::default()
        }
    }

    /// The JSON document. `schemas` is completed with the core schema and, when
    /// [`enterprise`](Self::enterprise) is set, the Enterprise User URN.
    pub fn to_value(&self) -> Value {
        let mut u = self.clone();
        ensure_schema(&mut u.schemas, USER_SCHEMA);
        if u.enterprise.is_some() {
            ensure_schema(&mut u.schemas, ENTERPRISE_USER_SCHEMA);
        }
        to_doc(&u)
    }
}

impl TryFrom<&Value> for User {
    type Error = ScimError;

    /// Reads a canonical User document; a missing `userName` or a mistyped member is
    /// `invalidValue`.
    fn try_from(doc: &Value) -> Result<Self, ScimError> {
        from_doc("User", doc)
    }
}

impl Group {
    /// A group with the given `displayName` and the core schema.
    pub fn new(display_name: impl Into<String>) -> Self {
        Group {
            schemas: vec![GROUP_SCHEMA.to_owned()],
            display_name: display_name.into(),
            ..Group::default()
        }
    }

    /// The JSON document. `schemas` is completed with the core schema.
    pub fn to_value(&self) -> Value {
        let mut g = self.clone();
        ensure_schema(&mut g.schemas, GROUP_SCHEMA);
        to_doc(&g)
    }
}

impl TryFrom<&Value> for Group {
    type Error = ScimError;

    /// Reads a canonical Group document; a missing `displayName` or a mistyped member is
    /// `invalidValue`.
    fn try_from(doc: &Value) -> Result<Self, ScimError> {
        from_doc("Group", doc)
    }
}

/// A schema extension a host reads as its own type (see [`User::extension`]).
///
/// ```
/// use scimkit::resource::{Extension, User};
///
/// #[derive(serde::Deserialize)]
/// #[serde(rename_all = "camelCase")]
/// struct CostCenter {
///     cost_center: String,
/// }
///
/// impl Extension for CostCenter {
///     const URN: &'static str = "urn:example:params:scim:schemas:extension:finance:2.0:User";
/// }
///
/// let user = User::try_from(&serde_json::json!({
///     "userName": "bjensen",
///     "urn:example:params:scim:schemas:extension:finance:2.0:User": {"costCenter": "CC-7"}
/// }))?;
/// let cc: CostCenter = user.extension()?.expect("set");
/// assert_eq!(cc.cost_center, "CC-7");
/// # Ok::<(), scimkit::error::ScimError>(())
/// ```
pub trait Extension: serde::de::DeserializeOwned {
    /// The extension's schema URN: the key of its object in a resource.
    const URN: &'static str;
}

impl Extension for EnterpriseUser {
    const URN: &'static str = ENTERPRISE_USER_SCHEMA;
}

/// The object under `urn` (matched case-insensitively) among `extra`, read as `T`.
fn extension_in<T: serde::de::DeserializeOwned>(
    extra: &Map<String, Value>,
    urn: &str,
) -> Result<Option<T>, ScimError> {
    let Some(value) = extra
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(urn))
        .map(|(_, v)| v)
    else {
        return Ok(None);
    };
    serde_json::from_value(value.clone())
        .map(Some)
        .map_err(|e| {
            ScimError::InvalidValue(format!("the extension `{urn}` is not as expected: {e}"))
        })
}

impl User {
    /// The custom extension `E` of this user (the object under [`E::URN`](Extension::URN)),
    /// `None` when the user has none. A value that does not deserialise as `E` is
    /// `invalidValue` naming the URN. (The Enterprise User extension is also in
    /// [`enterprise`](Self::enterprise).)
    pub fn extension<E: Extension>(&self) -> Result<Option<E>, ScimError> {
        if E::URN.eq_ignore_ascii_case(ENTERPRISE_USER_SCHEMA) {
            return match &self.enterprise {
                Some(e) => serde_json::from_value(to_doc(e)).map(Some).map_err(|e| {
                    ScimError::InvalidValue(format!(
                        "the enterprise extension is not as expected: {e}"
                    ))
                }),
                None => Ok(None),
            };
        }
        extension_in(&self.extra, E::URN)
    }

    /// The object under the extension schema `urn`, read as any `T`.
    pub fn extension_at<T: serde::de::DeserializeOwned>(
        &self,
        urn: &str,
    ) -> Result<Option<T>, ScimError> {
        extension_in(&self.extra, urn)
    }
}

impl Group {
    /// The custom extension `E` of this group, `None` when it has none (see
    /// [`User::extension`]).
    pub fn extension<E: Extension>(&self) -> Result<Option<E>, ScimError> {
        extension_in(&self.extra, E::URN)
    }

    /// The object under the extension schema `urn`, read as any `T`.
    pub fn extension_at<T: serde::de::DeserializeOwned>(
        &self,
        urn: &str,
    ) -> Result<Option<T>, ScimError> {
        extension_in(&self.extra, urn)
    }
}

impl EnterpriseUser {
    /// The extension object as JSON (without its URN key).
    pub fn to_value(&self) -> Value {
        to_doc(self)
    }
}

impl TryFrom<&Value> for EnterpriseUser {
    type Error = ScimError;

    /// Reads the extension object itself (the value under its URN key).
    fn try_from(doc: &Value) -> Result<Self, ScimError> {
        from_doc("EnterpriseUser", doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn user_round_trip_keeps_custom_extensions() {
        let doc = json!({
            "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA, "urn:acme:User"],
            "userName": "bjensen",
            "emails": [{"value": "b@x.com", "type": "work", "primary": true}],
            ENTERPRISE_USER_SCHEMA: {"manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}},
            "urn:acme:User": {"badge": "7"},
        });
        let user = User::try_from(&doc).unwrap();
        assert_eq!(user.emails[0].kind.as_deref(), Some("work"));
        assert_eq!(
            user.enterprise
                .as_ref()
                .unwrap()
                .manager
                .as_ref()
                .unwrap()
                .value
                .as_deref(),
            Some("26118915-6090-4610-87e4-49d8ca9f808d")
        );
        assert_eq!(user.extra["urn:acme:User"]["badge"], "7");
        assert_eq!(user.to_value(), doc);
    }

    #[test]
    fn missing_required_and_schemas_completed() {
        let err = User::try_from(&json!({"schemas": [USER_SCHEMA]})).unwrap_err();
        assert_eq!(err.scim_type(), Some(crate::error::ScimType::InvalidValue));
        assert!(err.detail().contains("userName"), "{}", err.detail());
        let mut u = User::new("a");
        u.enterprise = Some(EnterpriseUser {
            department: Some("R&D".into()),
            ..EnterpriseUser::default()
        });
        let v = u.to_value();
        assert_eq!(v["schemas"], json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA]));
        assert!(v.get("emails").is_none());
        assert_eq!(
            Group::new("g").to_value(),
            json!({"schemas": [GROUP_SCHEMA], "displayName": "g"})
        );
    }
}
