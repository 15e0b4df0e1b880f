//! SCIM resources: identifiers, versions, metadata, list responses, documents (validation,
//! projection) and membership deltas.

mod document;
mod ids;
mod list;
mod membership;
mod projection;
mod typed;
mod value;
mod write;
mod write_body;

pub(crate) use document::check_required_not_blank;
pub use document::{normalize_resource, WriteMode};
pub(crate) use ids::{shorten, truncate_for_detail};
pub use ids::{ResourceId, Version};
pub use list::ListResponse;
pub(crate) use membership::member_display;
pub use membership::{Member, MemberRef, MembershipDelta, UnknownMembers};
pub use projection::Projection;
pub use typed::{
    Address, Email, EnterpriseUser, Extension, Group, GroupMember, GroupRef, Manager, MultiValued,
    Name, PhoneNumber, User,
};
pub(crate) use value::json_type_name;
pub use value::normalize_value;
pub use write::UniqueKey;
pub(crate) use write::{normalize_write, split_members, unique_keys};
pub use write_body::WriteBody;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Resource metadata (RFC 7643 §3.1 `meta`), maintained by the service provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    /// The resource type name (`User`).
    pub resource_type: String,
    /// When the resource was created.
    pub created: DateTime<Utc>,
    /// When the resource was last modified.
    pub last_modified: DateTime<Utc>,
    /// The resource's URI, when the base URL is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// The weak ETag of the current version (`W/"3"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}
