//! Lists of resources: paging (`totalResults`, startIndex/count edge cases) and sorting.

#[allow(unused_imports)]
use super::*;

/// `totalResults` is exact; startIndex/count edge cases.
pub async fn check_paging(store: &dyn ResourceStore, fx: &Fixture) {
    load_users(store, fx, &fx.tenant, 25).await;
    let q = |start: usize, count: usize| ListQuery {
        start_index: start,
        count,
        ..ListQuery::default()
    };
    let all = list_exact(store, &fx.tenant, &fx.users, &q(1, 1000)).await;
    assert_eq!(all.total_results, 25);
    assert_eq!(all.resources.len(), 25);
    let all_ids = ids(&all.resources);
    assert_eq!(
        all_ids.iter().collect::<BTreeSet<_>>().len(),
        25,
        "no duplicates"
    );
    for (start, count, want) in [
        (1, 10, 0..10),
        (11, 10, 10..20),
        (21, 10, 20..25),
        (0, 5, 0..5), // below 1 counts as 1 (RFC 7644 §3.4.2.4)
        (25, 5, 24..25),
        (26, 5, 25..25), // past the end: empty, total still exact
        (1000, 5, 25..25),
        (3, 0, 2..2), // count 0: only totalResults
    ] {
        let p = list_exact(store, &fx.tenant, &fx.users, &q(start, count)).await;
        assert_eq!(p.total_results, 25, "total for start {start} count {count}");
        assert_eq!(
            ids(&p.resources),
            all_ids[want.clone()].to_vec(),
            "page start {start} count {count} (unsorted lists have a stable order)"
        );
    }
    let filtered = list_exact(
        store,
        &fx.tenant,
        &fx.users,
        &ListQuery {
            filter: Some(Filter::parse(r#"userName sw "USER1""#).unwrap()),
            start_index: 2,
            count: 3,
            ..ListQuery::default()
        },
    )
    .await;
    // user1, user10..user19 → 11 matches
    assert_eq!(filtered.total_results, 11);
    assert_eq!(filtered.resources.len(), 3);
}

/// sortBy/sortOrder: the engine's order, missing values last in both orders.
pub async fn check_sorting(store: &dyn ResourceStore, fx: &Fixture) {
    load_users(store, fx, &fx.tenant, 40).await;
    for by in [
        "userName",
        "title",
        "name.familyName",
        "meta.created",
        "emails",
    ] {
        for order in [SortOrder::Ascending, SortOrder::Descending] {
            let spec = SortSpec {
                by: AttrPath::parse(by).unwrap(),
                order,
            };
            let q = ListQuery {
                sort: Some(spec.clone()),
                ..ListQuery::default()
            };
            let p = list_exact(store, &fx.tenant, &fx.users, &q).await;
            assert_eq!(p.resources.len(), 40);
            assert_sorted(&fx.users, &spec, &p.resources, by);
        }
    }
    // userName is unique, so its order is total: pages must be slices of the whole.
    let spec = SortSpec {
        by: AttrPath::new("userName"),
        order: SortOrder::Descending,
    };
    let whole = list_exact(
        store,
        &fx.tenant,
        &fx.users,
        &ListQuery {
            sort: Some(spec.clone()),
            ..ListQuery::default()
        },
    )
    .await;
    let page = list_exact(
        store,
        &fx.tenant,
        &fx.users,
        &ListQuery {
            sort: Some(spec),
            start_index: 5,
            count: 7,
            ..ListQuery::default()
        },
    )
    .await;
    assert_eq!(ids(&page.resources), ids(&whole.resources)[4..11].to_vec());
}

/// RFC 7644 §3.4.2.3 on any attribute the schema allows, answered by the store itself
/// ([`Pushdown::Exact`]) in exactly the engine's order, ties included (equal keys keep the
/// creation order, as the engine's stable sort over the unsorted listing does): sub-attributes
/// (`name.familyName`), multi-valued ones (`emails.value`: the primary value, else the first;
/// a primary element without a value is no value), extension attributes, booleans, numbers,
/// dateTimes with different offsets, multi-valued strings, `meta` attributes, and sorts
/// together with a filter and a page. Also: `meta.location pr` (derived, always true) and
/// other tests on `meta.location` are answered exactly.
pub async fn check_sorting_any_attribute(store: &dyn ResourceStore, fx: &Fixture) {
    let tn = &fx.tenant;
    load_users(store, fx, tn, 60).await;
    let t = base_time() + Duration::hours(1);
    let extras = [
        // No primary: the first value, whatever its case.
        json!({"userName": "x1", "emails": [{"value": "B@x.test"}, {"value": "a@x.test"}]}),
        // The primary element has no value: no value, though another element has one.
        json!({"userName": "x2", "emails": [{"value": "0@x.test"}, {"type": "work", "primary": true}]}),
        json!({"userName": "x3", "emails": [], "title": ""}),
        json!({"userName": "x4", "emails": [{"value": ""}], "active": true}),
        json!({"userName": "x5", "emails": [{"value": "A@X.TEST", "primary": false}, {"value": "c@x.test", "primary": true}]}),
        json!({"userName": "x6", "name": {"givenName": "Émile"}, ENTERPRISE_USER_SCHEMA: {"manager": {"displayName": "m"}}}),
    ];
    for (i, mut doc) in extras.into_iter().enumerate() {
        doc["schemas"] = json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA]);
        let id = format!("x{}", i + 1);
        store
            .create(
                tn,
                &fx.users,
                user_request(&id, doc, t + Duration::seconds(i as i64)),
            )
            .await
            .unwrap();
    }
    let devices = [
        json!({"lastSeen": "2026-01-01T01:00:00+02:00", "ports": 3, "tags": ["b", "A"]}),
        json!({"lastSeen": "2025-12-31T23:30:00Z", "ports": -2, "tags": ["a"]}),
        json!({"ports": 3, "tags": []}),
        json!({"lastSeen": "2026-01-01T00:00:00.5Z", "ports": 40, "tags": ["B"]}),
        json!({"lastSeen": "2025-12-31T22:59:59-01:00"}),
        json!({"lastSeen": "2026-01-01T00:00:00Z", "ports": 0, "tags": ["", "c"]}),
    ];
    for (i, mut doc) in devices.into_iter().enumerate() {
        doc["schemas"] = json!([DEVICE_SCHEMA]);
        doc["serialNumber"] = json!(format!("SN-{}", 9 - i));
        if i % 2 == 0 {
            doc["displayName"] = json!(if i == 0 { "Beta" } else { "alpha" });
        }
        let req = CreateRequest {
            id: format!("d{i}").as_str().into(),
            doc,
            unique_keys: Vec::new(),
            members: Vec::new(),
            unknown_members: UnknownMembers::Reject,
            now: t + Duration::seconds(i as i64),
            actor: None,
        };
        store.create(tn, &fx.devices, req).await.unwrap();
    }
    // Some updates, so that versions and lastModified differ from the creation order.
    for (k, id) in ["u00003", "u00001", "u00003"].iter().enumerate() {
        let mut doc = generated_user(if *id == "u00003" { 3 } else { 1 });
        doc["title"] = json!(format!("Updated {k}"));
        let unique_keys = vec![user_name_key(doc["userName"].as_str().unwrap())];
        store
            .update(
                tn,
                &fx.users,
                &(*id).into(),
                UpdateRequest {
                    expected_version: None,
                    document: Some(NewDocument { doc, unique_keys }),
                    members: None,
                    return_members: None,
                    kind: UpdateKind::Replace,
                    now: t + Duration::minutes(10 + k as i64),
                    actor: None,
                },
            )
            .await
            .unwrap();
    }
    let ent = |a: &str| format!("{ENTERPRISE_USER_SCHEMA}:{a}");
    let user_sorts: Vec<String> = [
        "name.familyName",
        "name.givenName",
        "emails.value",
        "emails",
        "emails.type",
        "emails.primary",
        "phoneNumbers.value",
        "active",
        "title",
        "nickName",
        "locale",
        "userName",
        "externalId",
        "displayName",
        "id",
        "meta.created",
        "meta.lastModified",
        "meta.version",
        "meta.resourceType",
        "meta.location",
        "x509Certificates.value",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        ent("employeeNumber"),
        ent("department"),
        ent("manager.value"),
        ent("manager"),
        ent("manager.displayName"),
    ])
    .collect();
    let device_sorts: Vec<String> = ["lastSeen", "ports", "tags", "serialNumber", "displayName"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for (rt, sorts) in [(&fx.users, user_sorts), (&fx.devices, device_sorts)] {
        let everything = list_exact(store, tn, rt, &ListQuery::default()).await;
        for by in &sorts {
            for order in [SortOrder::Ascending, SortOrder::Descending] {
                for filter in [None, Some("title pr or lastSeen pr")] {
                    let q = ListQuery {
                        filter: filter.map(|f| Filter::parse(f).unwrap()),
                        sort: Some(SortSpec {
                            by: AttrPath::parse(by).unwrap(),
                            order,
                        }),
                        ..ListQuery::default()
                    };
                    let want = apply_query(rt, &q, everything.resources.clone()).unwrap();
                    let got = store.list(tn, rt, &q).await.unwrap();
                    let what = format!("{} sortBy {by} {order:?} filter {filter:?}", rt.name());
                    assert_eq!(
                        got.pushdown,
                        Pushdown::Exact,
                        "{what}: not answered by the store"
                    );
                    assert_eq!(ids(&got.resources), ids(&want.resources), "{what}: order");
                    assert_eq!(got.total_results, want.total_results, "{what}: total");
                    let paged = ListQuery {
                        start_index: 4,
                        count: 5,
                        ..q.clone()
                    };
                    let page = store.list(tn, rt, &paged).await.unwrap();
                    assert_eq!(page.pushdown, Pushdown::Exact, "{what}: page");
                    let slice: Vec<String> =
                        ids(&want.resources).into_iter().skip(3).take(5).collect();
                    assert_eq!(ids(&page.resources), slice, "{what}: page 4..9");
                }
            }
        }
    }
    // `meta.location` is derived from the id: present on every resource, equal to nothing.
    let n_users = 66;
    for (f, want) in [
        ("meta.location pr", n_users),
        ("meta.location ne null", n_users),
        ("meta.location eq null", 0),
        ("not (meta.location pr)", 0),
        ("meta.location eq \"x\"", 0),
        ("meta.location co \"Users\"", 0),
        ("meta.location pr and userName sw \"x\"", 6),
    ] {
        let q = ListQuery {
            filter: Some(Filter::parse(f).unwrap()),
            count: 2,
            ..ListQuery::default()
        };
        let p = store.list(tn, &fx.users, &q).await.unwrap();
        assert_eq!(p.pushdown, Pushdown::Exact, "`{f}`");
        assert_eq!(p.total_results, want, "`{f}`");
        assert_eq!(p.resources.len(), want.min(2), "`{f}`");
    }
}

pub(crate) fn assert_sorted(
    rt: &ResourceDef,
    spec: &SortSpec,
    resources: &[StoredResource],
    what: &str,
) {
    let views: Vec<Value> = resources.iter().map(view_document).collect();
    for w in views.windows(2) {
        assert_ne!(
            compare_resources(rt, spec, &w[0], &w[1]),
            std::cmp::Ordering::Greater,
            "not sorted by {what} {:?}: {} before {}",
            spec.order,
            w[0]["id"],
            w[1]["id"]
        );
    }
}
