use super::lists::{Cands, Planner};
use super::*;
use crate::filter::{Filter, SortOrder};
use crate::schema::AttrPath;
use crate::store::testing::{base_time, group_request, simple_user, user_request, Fixture};
use serde_json::json;
use std::sync::Mutex;

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn notifier_sees_every_commit_but_no_failure() {
    let seen: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let sink = Arc::clone(&seen);
    let store = MemoryStore::new().with_notifier(Arc::new(move |t: &TenantId, seq: u64| {
        sink.lock().unwrap().push((t.to_string(), seq));
    }));
    let fx = Fixture::new();
    block_on(async {
        let t0 = base_time();
        store
            .create(
                &fx.tenant,
                &fx.users,
                user_request("u1", simple_user("a"), t0),
            )
            .await
            .unwrap();
        store
            .create(
                &fx.tenant,
                &fx.users,
                user_request("u2", simple_user("A"), t0),
            )
            .await
            .unwrap_err();
        store
            .create(&fx.tenant, &fx.groups, group_request("g", "G", &["u1"], t0))
            .await
            .unwrap();
        store
            .create(
                &fx.other,
                &fx.users,
                user_request("u1", simple_user("a"), t0),
            )
            .await
            .unwrap();
        // Deleting u1 appends two records (the user, the group); one notification.
        store
            .delete(&fx.tenant, &fx.users, &"u1".into(), None, t0)
            .await
            .unwrap();
    });
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            ("tenant-a".to_string(), 1),
            ("tenant-a".to_string(), 2),
            ("tenant-b".to_string(), 1),
            ("tenant-a".to_string(), 4),
        ]
    );
}

fn plan_of(store: &MemoryStore, fx: &Fixture, filter: &str) -> (Option<Vec<u64>>, bool) {
    let t = store.tenant(&fx.tenant).unwrap();
    let data = read(&t);
    let ti = data.types.get("User").unwrap();
    let f = Filter::parse(filter).unwrap();
    let p = Planner {
        rt: &fx.users,
        data: &data,
        ti,
    }
    .plan(&f, 0);
    let set = match p.cands {
        Cands::All => None,
        Cands::Set(s) => Some(s.keys().copied().collect()),
    };
    (set, p.exact)
}

#[test]
fn idp_lookups_are_answered_by_indexes() {
    let store = MemoryStore::new();
    let fx = Fixture::new();
    block_on(async {
        for (i, name) in ["BJensen", "jsmith", "bjorn"].iter().enumerate() {
            let mut doc = simple_user(name);
            doc["externalId"] = json!(format!("00u{i}"));
            store
                .create(
                    &fx.tenant,
                    &fx.users,
                    user_request(&format!("u{i}"), doc, base_time()),
                )
                .await
                .unwrap();
        }
    });
    let cases: Vec<(&str, Option<Vec<u64>>, bool)> = vec![
        (r#"userName eq "bjensen""#, Some(vec![0]), true),
        (r#"USERNAME eq "JSMITH""#, Some(vec![1]), true),
        (
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "jsmith""#,
            Some(vec![1]),
            true,
        ),
        (r#"userName sw "bj""#, Some(vec![0, 2]), true),
        (r#"externalId eq "00u2""#, Some(vec![2]), true),
        // externalId is caseExact.
        (r#"externalId eq "00U2""#, Some(vec![]), true),
        (r#"id eq "u1""#, Some(vec![1]), true),
        (
            r#"userName eq "bjensen" and externalId eq "00u0""#,
            Some(vec![0]),
            true,
        ),
        (
            r#"userName eq "bjensen" or externalId eq "00u1""#,
            Some(vec![0, 1]),
            true,
        ),
        // Partly indexed: candidates narrowed, evaluator decides.
        (
            r#"userName eq "bjensen" and active eq true"#,
            Some(vec![0]),
            false,
        ),
        // Not indexable.
        (r#"userName eq "bjensen" or active eq true"#, None, false),
        (r#"userName co "j""#, None, false),
        (r#"displayName eq "x""#, None, false),
        (r#"not (userName eq "bjensen")"#, None, false),
    ];
    for (f, set, exact) in cases {
        assert_eq!(plan_of(&store, &fx, f), (set, exact), "{f}");
    }
}

#[test]
fn index_order_ties_match_a_stable_sort() {
    // Without uniqueness keys, userNames may repeat (differing in case): the index walk
    // must order ties as the engine's stable sort over creation order does.
    let store = MemoryStore::new();
    let fx = Fixture::new();
    block_on(async {
        for (i, name) in ["b", "A", "a", "B", "c", "a", "ab"].iter().enumerate() {
            let mut req = user_request(&format!("u{i}"), simple_user(name), base_time());
            req.unique_keys.clear();
            store.create(&fx.tenant, &fx.users, req).await.unwrap();
        }
        let all = store
            .list(&fx.tenant, &fx.users, &ListQuery::default())
            .await
            .unwrap()
            .resources;
        for filter in [None, Some(r#"userName sw "a""#), Some(r#"active eq true"#)] {
            for order in [SortOrder::Ascending, SortOrder::Descending] {
                let q = ListQuery {
                    filter: filter.map(|f| Filter::parse(f).unwrap()),
                    sort: Some(crate::filter::SortSpec {
                        by: AttrPath::new("userName"),
                        order,
                    }),
                    ..ListQuery::default()
                };
                let got = store.list(&fx.tenant, &fx.users, &q).await.unwrap();
                let want = crate::store::apply_query(&fx.users, &q, all.clone()).unwrap();
                let ids = |p: &Page| -> Vec<String> {
                    p.resources.iter().map(|r| r.id.to_string()).collect()
                };
                assert_eq!(ids(&got), ids(&want), "{filter:?} {order:?}");
            }
        }
    });
}

#[test]
fn documents_are_stored_compactly_and_round_trip() {
    let store = MemoryStore::new();
    let fx = Fixture::new();
    let doc = json!({"userName": "a", "name": {"givenName": "Ä", "familyName": "b"}, "x": [1, 2.5, null, true]});
    block_on(async {
        store
            .create(
                &fx.tenant,
                &fx.users,
                user_request("u", doc.clone(), base_time()),
            )
            .await
            .unwrap();
        let got = store
            .get(&fx.tenant, &fx.users, &"u".into(), false)
            .await
            .unwrap();
        assert_eq!(got.doc, doc);
        // Attribute order is kept.
        assert_eq!(got.doc.to_string(), doc.to_string());
    });
}
