//! The host side of the change feed: the membership delta of each change, the head
//! sequence, and the subscription that wakes readers after every commit.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use super::*;
use crate::feed::MemberChanges;
use crate::resource::{MemberRef, MembershipDelta};

struct CountWakes(AtomicUsize);

impl Wake for CountWakes {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Polls the subscription once: true when it reports a publication.
fn fired(sub: &mut crate::feed::ChangeSubscription) -> bool {
    let waker = Waker::from(Arc::new(CountWakes(AtomicUsize::new(0))));
    let mut changed = sub.changed();
    matches!(
        Pin::new(&mut changed).poll(&mut Context::from_waker(&waker)),
        Poll::Ready(())
    )
}

fn delta(added: &[&str], removed: &[&str]) -> Option<MemberChanges> {
    Some(MemberChanges::Delta {
        added: added.iter().map(|s| ResourceId::new(*s)).collect(),
        removed: removed.iter().map(|s| ResourceId::new(*s)).collect(),
    })
}

/// Each change carries the membership delta of the write (`None` when the membership was
/// not touched, `Replaced` for a whole replacement) and its actor; `head_seq` is the last
/// `seq`, also after pruning; the subscription fires after each commit (also one the reader
/// did not wait for), never after a failed write, and publishes the tenant's head.
pub async fn check_change_subscription(store: &dyn ResourceStore, fx: &Fixture) {
    let tn = &fx.tenant;
    let t = |s: i64| base_time() + Duration::seconds(s);
    let mut sub = store
        .subscribe()
        .expect("every store of this crate offers a subscription");
    assert_eq!(store.head_seq(tn).await.unwrap(), 0, "empty feed");
    assert!(!fired(&mut sub), "nothing committed yet");

    for (id, name) in [("u1", "a"), ("u2", "b"), ("u3", "c")] {
        store
            .create(tn, &fx.users, user_request(id, simple_user(name), t(1)))
            .await
            .unwrap();
    }
    // Three commits while the reader was not waiting: one wake-up reports them all.
    assert!(
        fired(&mut sub),
        "a commit made while not waiting is not lost"
    );
    assert!(!fired(&mut sub), "coalesced");
    assert_eq!(store.head_seq(tn).await.unwrap(), 3);
    assert_eq!(sub.head(tn), Some(3), "the subscription publishes the head");

    store
        .create(tn, &fx.groups, group_request("g1", "G", &["u1"], t(2)))
        .await
        .unwrap();
    store
        .update(
            tn,
            &fx.groups,
            &"g1".into(),
            delta_request(
                MembershipDelta {
                    add: vec![MemberRef::new("u2"), MemberRef::new("u3")],
                    remove: vec!["u1".into()],
                    ..MembershipDelta::default()
                },
                t(3),
            ),
        )
        .await
        .unwrap();
    assert!(fired(&mut sub));
    // A failed write publishes nothing.
    store
        .update(
            tn,
            &fx.groups,
            &"g1".into(),
            delta_request(add(&["nobody"]), t(4)),
        )
        .await
        .unwrap_err();
    assert!(!fired(&mut sub), "a failed write wakes nobody");
    // A document-only change, then a full replacement of the membership.
    store
        .update(
            tn,
            &fx.users,
            &"u1".into(),
            replace_request(simple_user("a2"), None, t(5)),
        )
        .await
        .unwrap();
    let mut replace = delta_request(
        MembershipDelta {
            clear: true,
            add: vec![MemberRef::new("u1")],
            ..MembershipDelta::default()
        },
        t(6),
    );
    replace.kind = UpdateKind::Replace;
    store
        .update(tn, &fx.groups, &"g1".into(), replace)
        .await
        .unwrap();
    // Deleting a member records the group it left with that member removed.
    store
        .delete(tn, &fx.users, &"u1".into(), None, t(7))
        .await
        .unwrap();
    assert!(fired(&mut sub));

    let feed = store.changes_since(tn, 3, 100).await.unwrap();
    let got: Vec<(&str, ChangeKind, Option<MemberChanges>)> = feed
        .iter()
        .map(|c| (c.id.as_str(), c.kind, c.members.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("g1", ChangeKind::Created, delta(&["u1"], &[])),
            (
                "g1",
                ChangeKind::MembershipChanged,
                delta(&["u2", "u3"], &["u1"])
            ),
            ("u1", ChangeKind::Replaced, None),
            (
                "g1",
                ChangeKind::MembershipChanged,
                Some(MemberChanges::Replaced)
            ),
            ("u1", ChangeKind::Deleted, None),
            ("g1", ChangeKind::MembershipChanged, delta(&[], &["u1"])),
        ]
    );
    let last = feed.last().map(|c| c.seq).unwrap();
    assert_eq!(store.head_seq(tn).await.unwrap(), last);
    assert_eq!(sub.head(tn), Some(last));
    assert_eq!(
        store.head_seq(&fx.other).await.unwrap(),
        0,
        "other tenant untouched"
    );

    // After pruning everything, the head stays (sequence numbers are never reused).
    let report = store
        .prune_changes(tn, &crate::store::ChangeRetention::max_entries(0), t(8))
        .await
        .unwrap();
    if report.pruned_through > 0 {
        assert_eq!(store.head_seq(tn).await.unwrap(), last);
    }

    // A subscription taken from a second handle of the same store is independent.
    let mut late = store.subscribe().unwrap();
    assert!(!fired(&mut late), "a new subscription starts now");
    let mut by_token = user_request("u9", simple_user("z"), t(9));
    by_token.actor = Some("token-a".into());
    let from = store.head_seq(tn).await.unwrap();
    store.create(tn, &fx.users, by_token).await.unwrap();
    assert!(
        fired(&mut late) && fired(&mut sub),
        "every subscription is woken"
    );

    // The actor of each write is recorded; a delete's actor also on the groups it touches.
    store
        .create(tn, &fx.groups, group_request("g9", "G9", &["u9"], t(10)))
        .await
        .unwrap();
    let mut patch = replace_request(simple_user("z2"), None, t(11));
    patch.actor = Some("token-b".into());
    store
        .update(tn, &fx.users, &"u9".into(), patch)
        .await
        .unwrap();
    store
        .delete_as(tn, &fx.users, &"u9".into(), None, t(12), Some("token-c"))
        .await
        .unwrap();
    let actors: Vec<(String, Option<String>)> = store
        .changes_since(tn, from, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.id.as_str().to_owned(), c.actor))
        .collect();
    let some = |s: &str| Some(s.to_owned());
    assert_eq!(
        actors,
        vec![
            ("u9".to_owned(), some("token-a")),
            ("g9".to_owned(), None),
            ("u9".to_owned(), some("token-b")),
            ("u9".to_owned(), some("token-c")),
            ("g9".to_owned(), some("token-c")),
        ]
    );
}
