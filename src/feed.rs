//! The change feed: what changed in a tenant since sequence number N.
//!
//! Every committed write appends one [`Change`] in the same atomic step as the write itself, so
//! a host that reads [`ResourceStore::changes_since`](crate::store::ResourceStore::changes_since)
//! and remembers the last `seq` it processed never misses a change (at-least-once delivery if it
//! crashes before saving the position). A [`ChangeNotifier`] lets the host wake its readers
//! instead of polling.
//!
//! The feed is kept as long as the host wants:
//! [`ResourceStore::prune_changes`](crate::store::ResourceStore::prune_changes) removes a
//! tenant's oldest records by age and/or count ([`ChangeRetention`](crate::store::ChangeRetention);
//! the example servers keep 30 days). A reader whose position was pruned gets
//! [`StoreError::ChangesPruned`](crate::store::StoreError::ChangesPruned), never a silent
//! gap: like a client holding an expired sync token, it resynchronises (reads the resources it
//! follows afresh) and continues from a current position.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::resource::{ResourceId, Version};
use crate::tenant::TenantId;

/// What a committed write did to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ChangeKind {
    /// The resource was created (`POST`).
    Created,
    /// The resource's document was replaced (`PUT`).
    Replaced,
    /// The resource's document was modified by a `PATCH` (membership changes made in the same
    /// request are part of this change).
    Patched,
    /// The resource was deleted.
    Deleted,
    /// Only the membership of a group changed: members added or removed by a `PATCH`, or a
    /// member was deleted and removed from the group.
    MembershipChanged,
}

impl ChangeKind {
    /// A stable lower-case name (`created`, `membershipChanged`, ...), for logs and storage
    /// columns.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Created => "created",
            ChangeKind::Replaced => "replaced",
            ChangeKind::Patched => "patched",
            ChangeKind::Deleted => "deleted",
            ChangeKind::MembershipChanged => "membershipChanged",
        }
    }

    /// The kind named by [`as_str`](Self::as_str), or `None`.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            ChangeKind::Created,
            ChangeKind::Replaced,
            ChangeKind::Patched,
            ChangeKind::Deleted,
            ChangeKind::MembershipChanged,
        ]
        .into_iter()
        .find(|k| k.as_str() == name)
    }
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One committed write, as recorded in the change feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// The position in the tenant's feed: strictly increasing per tenant, starting at 1.
    /// Gaps are allowed (a backend may skip numbers), reordering is not.
    pub seq: u64,
    /// The tenant the write happened in.
    pub tenant: TenantId,
    /// The resource type name (`User`, `Group`, or a host-registered one).
    pub resource_type: String,
    /// The resource written.
    pub id: ResourceId,
    /// What the write did.
    pub kind: ChangeKind,
    /// The resource's version after the write (for [`ChangeKind::Deleted`], the version it was
    /// deleted at plus one, so versions in the feed never repeat).
    pub version: Version,
    /// When the write was committed (the time the caller passed in with the write).
    pub at: DateTime<Utc>,
}

/// Wakes whoever reads the change feed after a write commits.
///
/// Called synchronously after the write is committed and every store lock is released, once
/// per write with the sequence number of the last record that write appended. It must not
/// block: a host typically calls `tokio::sync::Notify::notify_waiters` or sends on a channel
/// with `try_send`. Readers then call `changes_since` to fetch what is new, so a missed or
/// coalesced notification loses nothing.
pub trait ChangeNotifier: Send + Sync {
    /// `tenant`'s feed now holds records up to `seq`.
    fn notify(&self, tenant: &TenantId, seq: u64);
}

impl<F> ChangeNotifier for F
where
    F: Fn(&TenantId, u64) + Send + Sync,
{
    fn notify(&self, tenant: &TenantId, seq: u64) {
        self(tenant, seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_kinds_round_trip_through_their_names() {
        for k in [
            ChangeKind::Created,
            ChangeKind::Replaced,
            ChangeKind::Patched,
            ChangeKind::Deleted,
            ChangeKind::MembershipChanged,
        ] {
            assert_eq!(ChangeKind::from_name(k.as_str()), Some(k));
        }
        assert_eq!(ChangeKind::from_name("Created"), None);
        assert_eq!(ChangeKind::from_name(""), None);
    }
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    #[test]
    fn closures_are_notifiers() {
        let last = Arc::new(AtomicU64::new(0));
        let seen = Arc::clone(&last);
        let n: Arc<dyn ChangeNotifier> = Arc::new(move |_: &TenantId, seq: u64| {
            seen.store(seq, Ordering::SeqCst);
        });
        n.notify(&TenantId::new("t1").unwrap(), 42);
        assert_eq!(last.load(Ordering::SeqCst), 42);
    }

    #[test]
    fn kinds_have_stable_names() {
        assert_eq!(
            ChangeKind::MembershipChanged.to_string(),
            "membershipChanged"
        );
        assert_eq!(ChangeKind::Created.as_str(), "created");
    }
}
