//! Change-feed retention: pruning by count and by age, the prune horizon, and the typed
//! answer for a position that was pruned.

use super::*;
use crate::store::{ChangeRetention, PruneReport};

fn seqs(feed: &[crate::feed::Change]) -> Vec<u64> {
    feed.iter().map(|c| c.seq).collect()
}

async fn feed(store: &dyn ResourceStore, tn: &TenantId, after: u64) -> Vec<u64> {
    seqs(
        &store
            .changes_since(tn, after, usize::MAX)
            .await
            .unwrap_or_else(|e| panic!("changes_since({after}) failed: {e:?}")),
    )
}

async fn assert_pruned(store: &dyn ResourceStore, tn: &TenantId, after: u64, horizon: u64) {
    match store.changes_since(tn, after, 10).await {
        Err(StoreError::ChangesPruned {
            requested,
            pruned_through,
        }) => {
            assert_eq!(requested, after, "the error names the position asked for");
            assert_eq!(pruned_through, horizon, "the error names the horizon");
        }
        other => panic!("changes_since({after}) below horizon {horizon} gave {other:?}"),
    }
}

async fn prune(
    store: &dyn ResourceStore,
    tn: &TenantId,
    retention: ChangeRetention,
    now: DateTime<Utc>,
) -> PruneReport {
    store
        .prune_changes(tn, &retention, now)
        .await
        .unwrap_or_else(|e| panic!("prune_changes({retention:?}) failed: {e:?}"))
}

fn keep(max_age: Option<i64>, max_entries: Option<u64>, per_call: u64) -> ChangeRetention {
    ChangeRetention {
        max_age: max_age.map(|s| std::time::Duration::from_secs(s.unsigned_abs())),
        max_entries,
        max_removed_per_call: per_call,
    }
}

/// Pruning by count and by age removes exactly the oldest entries due, raises the horizon,
/// leaves other tenants alone, is idempotent, bounded per call, and never reuses a `seq`;
/// reading from a pruned position fails with [`StoreError::ChangesPruned`], reading from the
/// horizon or later works.
pub async fn check_change_retention(store: &dyn ResourceStore, fx: &Fixture) {
    let (a, b) = (&fx.tenant, &fx.other);
    let t = |s: i64| base_time() + Duration::seconds(s);
    let never = TenantId::new("tenant-never-written").unwrap();

    // A tenant without a feed: nothing to do, and reading it is fine.
    let r = prune(store, &never, keep(Some(0), Some(0), 10), t(1000)).await;
    assert_eq!(
        r,
        PruneReport {
            removed: 0,
            pruned_through: 0,
            complete: true
        }
    );
    assert!(feed(store, &never, 0).await.is_empty());

    // Tenant A: seqs 1..=10 committed at t(1)..t(10); tenant B: 1..=3.
    for i in 1..=10 {
        let id = format!("u{i}");
        store
            .create(a, &fx.users, user_request(&id, simple_user(&id), t(i)))
            .await
            .unwrap();
    }
    for i in 1..=3 {
        let id = format!("b{i}");
        store
            .create(b, &fx.users, user_request(&id, simple_user(&id), t(i)))
            .await
            .unwrap();
    }
    assert_eq!(feed(store, a, 0).await, (1..=10).collect::<Vec<_>>());

    // Nothing due: nothing removed, and position 0 still reads everything.
    let r = prune(store, a, keep(None, Some(10), 100), t(11)).await;
    assert_eq!((r.removed, r.pruned_through, r.complete), (0, 0, true));
    let r = prune(store, a, keep(None, None, 100), t(11)).await;
    assert_eq!((r.removed, r.pruned_through, r.complete), (0, 0, true));
    assert_eq!(feed(store, a, 0).await.len(), 10);

    // By count: keep the newest 7.
    let r = prune(store, a, keep(None, Some(7), 100), t(11)).await;
    assert_eq!(
        (r.removed, r.pruned_through, r.complete),
        (3, 3, true),
        "{r:?}"
    );
    assert_pruned(store, a, 0, 3).await;
    assert_pruned(store, a, 2, 3).await;
    assert_eq!(
        feed(store, a, 3).await,
        (4..=10).collect::<Vec<_>>(),
        "reading from the horizon works"
    );
    assert_eq!(feed(store, a, 5).await, (6..=10).collect::<Vec<_>>());
    assert!(feed(store, a, 10).await.is_empty());
    let limited = store.changes_since(a, 3, 2).await.unwrap();
    assert_eq!(seqs(&limited), [4, 5]);
    assert_eq!(
        limited[0].id.as_str(),
        "u4",
        "the records kept are the right ones"
    );
    // Idempotent.
    let r = prune(store, a, keep(None, Some(7), 100), t(11)).await;
    assert_eq!((r.removed, r.pruned_through, r.complete), (0, 3, true));
    // Tenant B is untouched.
    assert_eq!(feed(store, b, 0).await, [1, 2, 3]);

    // By age: the cutoff is t(6) (now - 104 s); an entry committed exactly at the cutoff is
    // kept, those before it go.
    let now = t(110);
    let r = prune(store, a, keep(Some(104), None, 100), now).await;
    assert_eq!(
        (r.removed, r.pruned_through, r.complete),
        (2, 5, true),
        "{r:?}"
    );
    assert_pruned(store, a, 4, 5).await;
    assert_eq!(feed(store, a, 5).await, (6..=10).collect::<Vec<_>>());
    let r = prune(store, a, keep(Some(104), None, 100), now).await;
    assert_eq!((r.removed, r.pruned_through, r.complete), (0, 5, true));
    assert_eq!(feed(store, b, 0).await, [1, 2, 3]);

    // Bounded per call: 4 entries due (6..=9, keeping the newest 1), 2 per call.
    let r = prune(store, a, keep(None, Some(1), 2), now).await;
    assert_eq!(
        (r.removed, r.pruned_through, r.complete),
        (2, 7, false),
        "{r:?}"
    );
    assert_eq!(feed(store, a, 7).await, [8, 9, 10]);
    let r = prune(store, a, keep(None, Some(1), 2), now).await;
    assert_eq!(
        (r.removed, r.pruned_through, r.complete),
        (2, 9, true),
        "{r:?}"
    );
    let r = prune(store, a, keep(None, Some(1), 2), now).await;
    assert_eq!((r.removed, r.pruned_through, r.complete), (0, 9, true));
    assert_eq!(feed(store, a, 9).await, [10]);

    // Age and count together: an entry goes when either says so.
    store
        .create(
            a,
            &fx.users,
            user_request("u11", simple_user("u11"), t(200)),
        )
        .await
        .unwrap();
    store
        .create(
            a,
            &fx.users,
            user_request("u12", simple_user("u12"), t(300)),
        )
        .await
        .unwrap();
    assert_eq!(feed(store, a, 9).await, [10, 11, 12]);
    // Age alone (cutoff t(150)) removes seq 10; count alone (2) would too; both with count
    // 1 remove 10 and 11.
    let r = prune(store, a, keep(Some(150), Some(1), 100), t(300)).await;
    assert_eq!(
        (r.removed, r.pruned_through, r.complete),
        (2, 11, true),
        "{r:?}"
    );
    assert_eq!(feed(store, a, 11).await, [12]);

    // Pruning everything keeps the numbering: the next write gets the next seq.
    let r = prune(store, a, keep(None, Some(0), 100), t(300)).await;
    assert_eq!((r.removed, r.pruned_through, r.complete), (1, 12, true));
    assert!(feed(store, a, 12).await.is_empty());
    assert_pruned(store, a, 11, 12).await;
    store
        .create(
            a,
            &fx.users,
            user_request("u13", simple_user("u13"), t(400)),
        )
        .await
        .unwrap();
    let after = store.changes_since(a, 12, 10).await.unwrap();
    assert_eq!(seqs(&after), [13], "a seq is never reused after pruning");
    assert_eq!(after[0].id.as_str(), "u13");

    // Only a prefix goes: an entry committed with an older time after a newer one is kept
    // while the newer one is (commit times out of order).
    store
        .create(
            a,
            &fx.users,
            user_request("u14", simple_user("u14"), t(100)),
        )
        .await
        .unwrap();
    assert_eq!(feed(store, a, 12).await, [13, 14]);
    let r = prune(store, a, keep(Some(100), None, 100), t(300)).await;
    assert_eq!(
        (r.removed, r.pruned_through, r.complete),
        (0, 12, true),
        "seq 13 (t(400)) is young, so seq 14 (t(100)) stays: {r:?}"
    );
    assert_eq!(feed(store, a, 12).await, [13, 14]);

    // Tenant B, finally pruned on its own, is unaffected by all of A's pruning.
    assert_eq!(feed(store, b, 0).await, [1, 2, 3]);
    let r = prune(store, b, keep(None, Some(2), 100), t(400)).await;
    assert_eq!((r.removed, r.pruned_through, r.complete), (1, 1, true));
    assert_eq!(feed(store, b, 1).await, [2, 3]);
    assert_eq!(feed(store, a, 12).await, [13, 14]);
}
