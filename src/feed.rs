//! The change feed: what changed in a tenant since sequence number N.
//!
//! Every committed write appends one [`Change`] in the same atomic step as the write itself, so
//! a host that reads [`ResourceStore::changes_since`](crate::store::ResourceStore::changes_since)
//! and remembers the last `seq` it processed never misses a change (at-least-once delivery if it
//! crashes before saving the position). A subscription (below) wakes readers instead of
//! polling; a [`ChangeNotifier`] is a callback for other uses (metrics, a host's own queue).
//!
//! The feed is kept as long as the host wants:
//! [`ResourceStore::prune_changes`](crate::store::ResourceStore::prune_changes) removes a
//! tenant's oldest records by age and/or count ([`ChangeRetention`](crate::store::ChangeRetention);
//! the example servers keep 30 days). A reader whose position was pruned gets
//! [`StoreError::ChangesPruned`](crate::store::StoreError::ChangesPruned), never a silent
//! gap: like a client holding an expired sync token, it resynchronises (reads the resources it
//! follows afresh) and continues from a current position.
//!
//! To wait for writes, a reader takes a [`ChangeSubscription`] from
//! [`ResourceStore::subscribe`](crate::store::ResourceStore::subscribe) (every store of this
//! crate offers one; a custom store publishes to a [`ChangeHub`]). A subscription counts
//! publications, so a write committed while its reader is busy is seen at the reader's next
//! [`changed`](ChangeSubscription::changed): no wake-up is lost, and several are coalesced.
//! [`crate::follow::FeedFollower`] is the ready-made reader: catch-up, wake-ups, cursor,
//! retries and resynchronisation.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

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
    /// For a write that changed a group's membership (a create with initial members, a
    /// replace or patch that changed members, [`ChangeKind::MembershipChanged`]): which
    /// members changed. `None` when the write did not touch the membership.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<MemberChanges>,
    /// Who wrote: the id of the bearer token that authenticated the SCIM request; `None` for
    /// a write without one (the host writing through the store itself) or a store that does
    /// not record actors. The records of the groups a deleted member leaves carry the
    /// delete's actor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// The membership part of a [`Change`].
///
/// A delta is kept in the change record while it is small (at most
/// [`MemberChanges::MAX_IDS`] ids in all); a larger one, and a whole replacement of the
/// membership (a `PUT` of a group, a `replace` of `members`), is recorded as
/// [`Replaced`](MemberChanges::Replaced) so that a 50,000-member replace does not write
/// 50,000 ids into the feed: the reader then reads the group's members afresh
/// ([`ResourceStore::members`](crate::store::ResourceStore::members), paged).
///
/// Apply a delta as set operations (insert if absent, delete if present): the SQL stores
/// record the ids the write named and resolved, and an id named to be added may already have
/// been a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
#[non_exhaustive]
pub enum MemberChanges {
    /// These members were added and removed.
    Delta {
        /// Member ids added.
        added: Vec<ResourceId>,
        /// Member ids removed.
        removed: Vec<ResourceId>,
    },
    /// The membership was replaced as a whole, or the delta was too large to record: read
    /// the group's members.
    Replaced,
}

impl MemberChanges {
    /// The most ids a recorded delta holds; a larger delta is recorded as
    /// [`Replaced`](Self::Replaced).
    pub const MAX_IDS: usize = 1_000;

    /// The record of a delta: the ids themselves when `added` and `removed` hold at most
    /// [`MAX_IDS`](Self::MAX_IDS) in all, [`Replaced`](Self::Replaced) otherwise.
    pub fn delta(added: Vec<ResourceId>, removed: Vec<ResourceId>) -> Self {
        if added.len().saturating_add(removed.len()) > Self::MAX_IDS {
            MemberChanges::Replaced
        } else {
            MemberChanges::Delta { added, removed }
        }
    }

    /// The storage form (a JSON text), for the SQL stores' change column.
    #[cfg(any(test, feature = "sqlite", feature = "postgres"))]
    pub(crate) fn to_column(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| r#"{"type":"replaced"}"#.to_owned())
    }

    #[cfg(any(test, feature = "sqlite", feature = "postgres"))]
    /// Reads the storage form back; an unreadable value is taken as
    /// [`Replaced`](Self::Replaced), which makes the reader re-read (never a wrong delta).
    pub(crate) fn from_column(text: Option<&str>) -> Option<Self> {
        text.map(|t| serde_json::from_str(t).unwrap_or(MemberChanges::Replaced))
    }
}

/// Wakes whoever reads the change feed after a write commits.
///
/// Called synchronously after the write is committed and every store lock is released, once
/// per write with the sequence number of the last record that write appended. It must not
/// block. Readers then call `changes_since` to fetch what is new, so a coalesced
/// notification loses nothing, but a *missed* one leaves a reader asleep: a plain
/// `tokio::sync::Notify::notify_waiters` wakes only readers that are waiting at that moment,
/// and a write committed while the reader is busy reading is lost. Use
/// [`ResourceStore::subscribe`](crate::store::ResourceStore::subscribe) (or a [`ChangeHub`],
/// which is a notifier) instead, or `Notify::notify_one`, which keeps a permit for a reader
/// that is not waiting yet.
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

/// The publishing side of change subscriptions: a store holds one, publishes every commit
/// to it ([`publish`](Self::publish)), and hands out [`ChangeSubscription`]s.
///
/// It keeps the newest head sequence of each tenant it was told of and a publication
/// counter; waking a subscriber costs one waker per waiting subscription. Clones share the
/// same hub. Runtime-agnostic: it needs no async runtime, only `std`.
#[derive(Clone, Default)]
pub struct ChangeHub {
    inner: Arc<HubInner>,
}

#[derive(Default)]
struct HubInner {
    state: Mutex<HubState>,
    next_subscriber: AtomicU64,
}

#[derive(Default)]
struct HubState {
    /// Publications so far.
    generation: u64,
    heads: HashMap<TenantId, u64>,
    /// At most one waker per waiting subscription.
    wakers: HashMap<u64, Waker>,
}

impl ChangeHub {
    /// A hub without subscribers.
    pub fn new() -> Self {
        ChangeHub::default()
    }

    /// `tenant`'s feed now holds records up to `seq`: wakes every subscription. A `seq`
    /// below the head already known (a late notification from another instance) still
    /// wakes, and leaves the head as it is.
    pub fn publish(&self, tenant: &TenantId, seq: u64) {
        let wakers: Vec<Waker> = {
            let mut state = self.lock();
            state.generation = state.generation.wrapping_add(1);
            match state.heads.get_mut(tenant) {
                Some(head) => *head = (*head).max(seq),
                None => {
                    state.heads.insert(tenant.clone(), seq);
                }
            }
            state.wakers.drain().map(|(_, w)| w).collect()
        };
        // Woken outside the lock: a waker may run code that subscribes or polls.
        for w in wakers {
            w.wake();
        }
    }

    /// Wakes every subscription without a new head: for a store that may have missed
    /// publications (a notification connection that dropped), so that readers look again.
    pub fn wake(&self) {
        let wakers: Vec<Waker> = {
            let mut state = self.lock();
            state.generation = state.generation.wrapping_add(1);
            state.wakers.drain().map(|(_, w)| w).collect()
        };
        for w in wakers {
            w.wake();
        }
    }

    /// A subscription that sees every publication from now on.
    pub fn subscribe(&self) -> ChangeSubscription {
        let seen = self.lock().generation;
        ChangeSubscription {
            hub: self.clone(),
            id: self.inner.next_subscriber.fetch_add(1, Ordering::Relaxed),
            seen,
        }
    }

    /// The newest sequence published for `tenant` since the hub was made, if any.
    pub fn head(&self, tenant: &TenantId) -> Option<u64> {
        self.lock().heads.get(tenant).copied()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HubState> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for ChangeHub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("ChangeHub")
            .field("publications", &state.generation)
            .field("tenants", &state.heads.len())
            .finish()
    }
}

impl ChangeNotifier for ChangeHub {
    fn notify(&self, tenant: &TenantId, seq: u64) {
        self.publish(tenant, seq);
    }
}

/// A reader's subscription to a store's commits (watch-channel semantics).
///
/// [`changed`](Self::changed) resolves as soon as anything was published after the last
/// time it resolved (or after the subscription was taken), however many publications that
/// was. A reader that takes the subscription *before* reading the feed therefore never
/// sleeps through a write: the publication of a write it did not see yet is still counted.
pub struct ChangeSubscription {
    hub: ChangeHub,
    id: u64,
    seen: u64,
}

impl ChangeSubscription {
    /// Waits until something was published since the last call resolved (or since the
    /// subscription was taken). Cancel-safe: dropping the future loses nothing.
    pub fn changed(&mut self) -> Changed<'_> {
        Changed { sub: self }
    }

    /// True when something was published that [`changed`](Self::changed) has not reported
    /// yet. Does not consume it.
    pub fn has_changed(&self) -> bool {
        self.hub.lock().generation != self.seen
    }

    /// The newest sequence published for `tenant`, if any (see [`ChangeHub::head`]).
    pub fn head(&self, tenant: &TenantId) -> Option<u64> {
        self.hub.head(tenant)
    }

    /// The tenants published so far, with their newest sequence.
    pub fn heads(&self) -> Vec<(TenantId, u64)> {
        let state = self.hub.lock();
        state.heads.iter().map(|(t, s)| (t.clone(), *s)).collect()
    }
}

impl fmt::Debug for ChangeSubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChangeSubscription")
            .field("seen", &self.seen)
            .finish_non_exhaustive()
    }
}

impl Drop for ChangeSubscription {
    fn drop(&mut self) {
        self.hub.lock().wakers.remove(&self.id);
    }
}

/// The future of [`ChangeSubscription::changed`].
#[must_use = "futures do nothing unless awaited"]
pub struct Changed<'a> {
    sub: &'a mut ChangeSubscription,
}

impl Future for Changed<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let mut state = this.sub.hub.lock();
        if state.generation != this.sub.seen {
            this.sub.seen = state.generation;
            state.wakers.remove(&this.sub.id);
            Poll::Ready(())
        } else {
            state.wakers.insert(this.sub.id, cx.waker().clone());
            Poll::Pending
        }
    }
}

impl fmt::Debug for Changed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Changed")
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

    fn tenant(id: &str) -> TenantId {
        TenantId::new(id).unwrap()
    }

    /// Polls `f` once with a waker that counts its wake-ups.
    fn poll_once<F: Future + Unpin>(f: &mut F, wakes: &Arc<AtomicU64>) -> Poll<F::Output> {
        struct Count(Arc<AtomicU64>);
        impl std::task::Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let waker = Waker::from(Arc::new(Count(Arc::clone(wakes))));
        Pin::new(f).poll(&mut Context::from_waker(&waker))
    }

    #[test]
    fn a_publication_while_the_reader_is_busy_is_not_lost() {
        let hub = ChangeHub::new();
        let mut sub = hub.subscribe();
        let wakes = Arc::new(AtomicU64::new(0));
        assert!(poll_once(&mut sub.changed(), &wakes).is_pending());
        // The reader is busy (not polling) while two writes commit.
        hub.publish(&tenant("t1"), 3);
        hub.publish(&tenant("t1"), 4);
        assert_eq!(
            wakes.load(Ordering::SeqCst),
            1,
            "the waiting reader is woken once"
        );
        assert!(sub.has_changed());
        assert!(poll_once(&mut sub.changed(), &wakes).is_ready());
        // Both were coalesced into that one wake-up; nothing new since.
        assert!(!sub.has_changed());
        assert!(poll_once(&mut sub.changed(), &wakes).is_pending());
        // A write committed while nobody polls is seen at the next poll.
        hub.publish(&tenant("t2"), 1);
        assert!(poll_once(&mut sub.changed(), &wakes).is_ready());
        assert_eq!(sub.head(&tenant("t1")), Some(4));
        let mut heads = sub.heads();
        heads.sort();
        assert_eq!(heads, vec![(tenant("t1"), 4), (tenant("t2"), 1)]);
    }

    #[test]
    fn heads_never_go_back_and_subscriptions_start_now() {
        let hub = ChangeHub::new();
        hub.publish(&tenant("t1"), 9);
        let mut sub = hub.subscribe();
        let wakes = Arc::new(AtomicU64::new(0));
        assert!(
            poll_once(&mut sub.changed(), &wakes).is_pending(),
            "a publication before the subscription is not reported"
        );
        hub.publish(&tenant("t1"), 7);
        assert_eq!(hub.head(&tenant("t1")), Some(9));
        assert!(poll_once(&mut sub.changed(), &wakes).is_ready());
        drop(sub);
        assert!(
            hub.lock().wakers.is_empty(),
            "a dropped subscription leaves no waker"
        );
    }

    #[test]
    fn member_changes_are_bounded_and_round_trip() {
        let ids = |n: usize| (0..n).map(|i| ResourceId::new(format!("m{i}"))).collect();
        let small = MemberChanges::delta(ids(2), ids(1));
        assert_eq!(
            MemberChanges::from_column(Some(&small.to_column())),
            Some(small)
        );
        assert_eq!(
            MemberChanges::delta(ids(MemberChanges::MAX_IDS), ids(1)),
            MemberChanges::Replaced
        );
        assert_eq!(MemberChanges::from_column(None), None);
        assert_eq!(
            MemberChanges::from_column(Some("not json")),
            Some(MemberChanges::Replaced)
        );
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
