//! Keyset paging ([`Paging::Keyset`], RFC 9865 cursors): the store's pages follow the
//! cursor order exactly, and a walk neither skips nor repeats a resource that exists
//! throughout while others are created and deleted between pages.

use super::*;
use crate::store::{keyset_cmp, keyset_of, Keyset, Paging};

/// A page as the service gets it: the store's exact answer, or the engine's over its
/// candidates.
async fn keyset_page(
    store: &dyn ResourceStore,
    fx: &Fixture,
    query: &ListQuery,
    after: Option<Keyset>,
) -> Page {
    let q = ListQuery {
        paging: Paging::Keyset(after),
        ..query.clone()
    };
    list_exact(store, &fx.tenant, &fx.users, &q).await
}

/// Walks every page of `query` (pages of `count`), calling `between` after each page with the
/// page number. Returns the ids in walk order.
async fn walk(
    store: &dyn ResourceStore,
    fx: &Fixture,
    query: &ListQuery,
    count: usize,
    mut between: impl FnMut(usize) -> Option<TaskFuture>,
) -> Vec<String> {
    let sort = query.sort.clone();
    let q = ListQuery {
        count,
        ..query.clone()
    };
    let mut seen = Vec::new();
    let mut after: Option<Keyset> = None;
    for n in 0..300 {
        let page = keyset_page(store, fx, &q, after.clone()).await;
        assert!(page.resources.len() <= count, "a page holds at most count");
        let Some(last) = page.resources.last() else {
            return seen;
        };
        let next = keyset_of(&fx.users, sort.as_ref(), last);
        if let Some(prev) = &after {
            assert_eq!(
                keyset_cmp(sort.as_ref(), prev, &next),
                std::cmp::Ordering::Less,
                "pages advance in cursor order"
            );
        }
        seen.extend(ids(&page.resources));
        after = Some(next);
        if let Some(task) = between(n) {
            task.await;
        }
    }
    let tail: Vec<&String> = seen.iter().rev().take(12).collect();
    panic!(
        "the walk sorted by {sort:?} did not end after 300 pages; {} ids, the last {tail:?}, after {after:?}",
        seen.len()
    );
}

/// The ids of every match of `query`, in the engine's cursor order.
async fn expected_order(store: &dyn ResourceStore, fx: &Fixture, query: &ListQuery) -> Vec<String> {
    let all = list_exact(
        store,
        &fx.tenant,
        &fx.users,
        &ListQuery {
            paging: Paging::Index,
            ..query.clone()
        },
    )
    .await;
    let sort = query.sort.as_ref();
    let mut keyed: Vec<Keyset> = all
        .resources
        .iter()
        .map(|r| keyset_of(&fx.users, sort, r))
        .collect();
    keyed.sort_by(|a, b| keyset_cmp(sort, a, b));
    keyed.into_iter().map(|k| k.id.to_string()).collect()
}

/// Ids whose order differs from creation order.
fn scrambled_id(i: usize) -> String {
    format!("k{:05}", (i * 7919) % 10007)
}

/// Keyset pages on every store: the cursor order of [`Paging::Keyset`] for no sort, indexed
/// and non-indexed sorts in both directions (with ties and resources without a value), with
/// and without a filter; every page's total; and walks with creates and deletes between
/// pages that neither skip nor repeat a survivor.
pub async fn check_keyset_paging(store: Arc<dyn ResourceStore>, fx: &Fixture) {
    assert!(
        store.keyset_paging(),
        "the stores of this crate page by keyset"
    );
    let n = 45;
    for i in 0..n {
        store
            .create(
                &fx.tenant,
                &fx.users,
                user_request(
                    &scrambled_id(i),
                    generated_user(i),
                    base_time() + Duration::seconds(i as i64),
                ),
            )
            .await
            .unwrap();
    }
    let sorts: Vec<Option<SortSpec>> = [
        None,
        Some(("userName", None)),
        Some(("userName", Some("descending"))),
        Some(("externalId", None)),
        Some(("externalId", Some("descending"))),
        Some(("displayName", None)),
        Some(("displayName", Some("descending"))),
        Some(("id", Some("descending"))),
        Some(("meta.created", Some("descending"))),
        Some(("meta.lastModified", None)),
        Some(("title", None)),
        Some(("emails.value", Some("descending"))),
    ]
    .into_iter()
    .map(|s| s.map(|(by, order)| SortSpec::parse(by, order).unwrap()))
    .collect();
    let filters = [None, Some(r#"userName sw "user""#), Some("title pr")];
    for sort in &sorts {
        for filter in filters {
            let query = ListQuery {
                filter: filter.map(|f| Filter::parse(f).unwrap()),
                sort: sort.clone(),
                ..ListQuery::default()
            };
            let what = format!("sort {sort:?}, filter {filter:?}");
            let expected = expected_order(&*store, fx, &query).await;
            assert!(!expected.is_empty(), "{what}");
            // The first page's total counts every match.
            let first = keyset_page(
                &*store,
                fx,
                &ListQuery {
                    count: 3,
                    ..query.clone()
                },
                None,
            )
            .await;
            assert_eq!(first.total_results, expected.len(), "{what}");
            for count in [1, 4, 100] {
                let got = walk(&*store, fx, &query, count, |_| None).await;
                assert_eq!(got, expected, "{what}, pages of {count}");
            }
        }
    }

    // Creates and deletes between pages: every resource that exists throughout is seen
    // exactly once, nothing is seen twice.
    for sort in &sorts {
        let query = ListQuery {
            sort: sort.clone(),
            ..ListQuery::default()
        };
        let before: BTreeSet<String> = expected_order(&*store, fx, &query)
            .await
            .into_iter()
            .collect();
        let created = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let deleted = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let victims: Vec<String> = before.iter().step_by(7).cloned().collect();
        let mut victims = victims.into_iter();
        let mut next_new = 1000 + 100 * sorts.iter().position(|s| s == sort).unwrap_or(0);
        let got = walk(&*store, fx, &query, 5, |page| {
            // Writes between the first pages only: a resource created after the position
            // of every page (a sort by `meta.lastModified`) would be read by the next one,
            // one page per write, for ever.
            if page >= 8 {
                return None;
            }
            let store = Arc::clone(&store);
            let tenant = fx.tenant.clone();
            let users = Arc::clone(&fx.users);
            let victim = victims.next();
            let i = next_new;
            next_new += 1;
            let (created, deleted) = (Arc::clone(&created), Arc::clone(&deleted));
            Some(Box::pin(async move {
                // A new resource on either side of the position, and a deletion.
                let id = scrambled_id(i);
                store
                    .create(
                        &tenant,
                        &users,
                        user_request(
                            &id,
                            generated_user(i),
                            base_time() + Duration::seconds(100 + page as i64),
                        ),
                    )
                    .await
                    .unwrap();
                created.lock().unwrap().push(id);
                if let Some(v) = victim {
                    store
                        .delete(&tenant, &users, &v.as_str().into(), None, base_time())
                        .await
                        .unwrap();
                    deleted.lock().unwrap().push(v);
                }
            }) as TaskFuture)
        })
        .await;
        let mut uniq = BTreeSet::new();
        for id in &got {
            assert!(uniq.insert(id.clone()), "{sort:?}: `{id}` seen twice");
        }
        let deleted: BTreeSet<String> = deleted.lock().unwrap().iter().cloned().collect();
        assert!(!deleted.is_empty());
        for id in before.difference(&deleted) {
            assert!(
                uniq.contains(id),
                "{sort:?}: `{id}` existed throughout but was skipped"
            );
        }
        // Clean up for the next sort: remove what this walk created.
        let created: Vec<String> = created.lock().unwrap().clone();
        for id in &created {
            store
                .delete(
                    &fx.tenant,
                    &fx.users,
                    &id.as_str().into(),
                    None,
                    base_time(),
                )
                .await
                .unwrap();
        }
        // Put the deleted ones back (same id, same document).
        for id in &deleted {
            let i = (0..n).find(|i| &scrambled_id(*i) == id).unwrap();
            store
                .create(
                    &fx.tenant,
                    &fx.users,
                    user_request(
                        id,
                        generated_user(i),
                        base_time() + Duration::seconds(i as i64),
                    ),
                )
                .await
                .unwrap();
        }
    }

    // Another tenant's resources never appear.
    store
        .create(
            &fx.other,
            &fx.users,
            user_request("zz-other", generated_user(3), base_time()),
        )
        .await
        .unwrap();
    let all = walk(&*store, fx, &ListQuery::default(), 10, |_| None).await;
    assert_eq!(all.len(), n);
    assert!(!all.contains(&"zz-other".to_owned()));
}
