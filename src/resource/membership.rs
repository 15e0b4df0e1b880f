//! Group membership as the engine and the stores speak it: the members a write adds or
//! removes ([`MembershipDelta`]), what it does with ids that cannot be members
//! ([`UnknownMembers`]), and a member as read back ([`Member`]).
//!
//! Membership is a relation, not a list in the group's document: the PATCH engine turns
//! member operations into a delta, and a store applies it as set operations, so that a
//! membership change costs what the request names, never what the group holds.

use serde_json::Value;

use super::ResourceId;

/// A member of a group, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The member's id.
    pub value: ResourceId,
    /// The member's resource type name (`User` or `Group`).
    pub resource_type: String,
    /// The member's `displayName`, or its `userName` when it has no display name.
    pub display: Option<String>,
}

/// A member to add to a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRef {
    /// The id of an existing resource of the same tenant.
    pub value: ResourceId,
    /// The resource type the client claimed (`members[].type`); when given, it must be the
    /// member's actual type (compared case-insensitively).
    pub resource_type: Option<String>,
}

impl MemberRef {
    /// A member reference without a claimed type.
    pub fn new(value: impl Into<ResourceId>) -> Self {
        MemberRef {
            value: value.into(),
            resource_type: None,
        }
    }
}

/// What a write does with a member to add that cannot be one: an id that is not a resource
/// of the tenant, a resource of another type than the claimed `members[].type`, or the group
/// itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum UnknownMembers {
    /// Fail the write with [`StoreError::InvalidMember`](crate::store::StoreError::InvalidMember) naming the first such id (in request
    /// order); nothing is changed.
    #[default]
    Reject,
    /// Skip such ids and apply the rest; the write reports them in
    /// [`StoredResource::skipped_members`](crate::store::StoredResource::skipped_members).
    Skip,
}

/// A change to a group's membership, applied atomically with the rest of a write.
///
/// Applied in order: `clear` (drop every member), then `remove`, then `add`. Adding a present
/// member and removing an absent one are no-ops, so two deltas that touch different members
/// commute. `add` and `remove` may name an id more than once; the store counts it once.
/// A store resolves all ids of a delta in one batched lookup: the cost of a delta grows with
/// the ids it names, never with the size of the group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MembershipDelta {
    /// Remove all members first (a `replace` of `members`, or a `PUT`).
    pub clear: bool,
    /// Members to add.
    pub add: Vec<MemberRef>,
    /// Member ids to remove.
    pub remove: Vec<ResourceId>,
    /// What to do with members to add that cannot be members.
    pub unknown: UnknownMembers,
}

impl MembershipDelta {
    /// True when the delta asks for nothing.
    pub fn is_empty(&self) -> bool {
        !self.clear && self.add.is_empty() && self.remove.is_empty()
    }
}

/// What a membership shows as a member's `display`: its `displayName`, else its `userName`.
pub(crate) fn member_display(doc: &Value) -> Option<&str> {
    ["displayName", "userName"]
        .iter()
        .find_map(|n| doc.get(n).and_then(Value::as_str))
}
