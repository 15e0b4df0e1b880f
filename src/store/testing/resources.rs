//! Resources: CRUD, custom types, versions, uniqueness, paging, sorting, tenant
//! isolation and the change feed.

#[allow(unused_imports)]
use super::*;

/// Create, get, replace, delete; timestamps and versions; wrong types are not found.
pub async fn check_crud(store: &dyn ResourceStore, fx: &Fixture) {
    let t0 = base_time();
    let t1 = t0 + Duration::seconds(10);
    let t2 = t0 + Duration::seconds(20);
    let doc = simple_user("bjensen@example.com");
    let created = store
        .create(&fx.tenant, &fx.users, user_request("u1", doc.clone(), t0))
        .await
        .expect("create");
    assert_eq!(created.id.as_str(), "u1");
    assert_eq!(created.resource_type, "User");
    assert_eq!(created.version, Version::INITIAL);
    assert_eq!((created.created, created.last_modified), (t0, t0));
    assert_eq!(created.doc, doc);

    let got = store
        .get(&fx.tenant, &fx.users, &"u1".into(), false)
        .await
        .expect("get");
    assert_eq!(got, created, "get returns what create stored");

    let wrong_type = store.get(&fx.tenant, &fx.groups, &"u1".into(), false).await;
    assert!(
        matches!(wrong_type, Err(StoreError::NotFound { .. })),
        "a User is not found as a Group: {wrong_type:?}"
    );
    let missing = store
        .get(&fx.tenant, &fx.users, &"nope".into(), false)
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound { .. })));

    let mut doc2 = simple_user("bjensen@example.com");
    doc2["title"] = json!("Tour Guide");
    let updated = store
        .update(
            &fx.tenant,
            &fx.users,
            &"u1".into(),
            replace_request(doc2.clone(), Some(Version::INITIAL), t1),
        )
        .await
        .expect("replace");
    assert_eq!(updated.version, Version::new(2));
    assert_eq!(updated.doc, doc2);
    assert_eq!((updated.created, updated.last_modified), (t0, t1));
    let got = store
        .get(&fx.tenant, &fx.users, &"u1".into(), false)
        .await
        .expect("get after replace");
    assert_eq!(got, updated);

    let wrong = store
        .delete(&fx.tenant, &fx.groups, &"u1".into(), None, t2)
        .await;
    assert!(
        matches!(wrong, Err(StoreError::NotFound { .. })),
        "deleting through the wrong type: {wrong:?}"
    );
    store
        .delete(
            &fx.tenant,
            &fx.users,
            &"u1".into(),
            Some(Version::new(2)),
            t2,
        )
        .await
        .expect("delete");
    let gone = store.get(&fx.tenant, &fx.users, &"u1".into(), false).await;
    assert!(matches!(gone, Err(StoreError::NotFound { .. })));
    let again = store
        .delete(&fx.tenant, &fx.users, &"u1".into(), None, t2)
        .await;
    assert!(matches!(again, Err(StoreError::NotFound { .. })));
    let upd = store
        .update(
            &fx.tenant,
            &fx.users,
            &"u1".into(),
            replace_request(simple_user("x"), None, t2),
        )
        .await;
    assert!(matches!(upd, Err(StoreError::NotFound { .. })));

    // A taken id is a conflict on `id`, whatever the type.
    store
        .create(
            &fx.tenant,
            &fx.users,
            user_request("u2", simple_user("a"), t0),
        )
        .await
        .expect("create u2");
    let dup = store
        .create(&fx.tenant, &fx.groups, group_request("u2", "G", &[], t0))
        .await;
    assert!(
        matches!(&dup, Err(StoreError::Conflict { attribute }) if attribute == "id"),
        "duplicate id: {dup:?}"
    );
}

/// A host-registered resource type works like the built-in ones.
pub async fn check_custom_resource_type(store: &dyn ResourceStore, fx: &Fixture) {
    let t0 = base_time();
    let req = |id: &str, serial: &str| CreateRequest {
        id: id.into(),
        doc: json!({"schemas": [DEVICE_SCHEMA], "serialNumber": serial, "displayName": id}),
        unique_keys: vec![UniqueKey::new("serialNumber", serial)],
        members: Vec::new(),
        unknown_members: UnknownMembers::Reject,
        now: t0,
        actor: None,
    };
    store
        .create(&fx.tenant, &fx.devices, req("d1", "SN-1"))
        .await
        .expect("create device");
    let dup = store
        .create(&fx.tenant, &fx.devices, req("d2", "SN-1"))
        .await;
    assert!(
        matches!(&dup, Err(StoreError::Conflict { attribute }) if attribute == "serialNumber"),
        "{dup:?}"
    );
    store
        .create(&fx.tenant, &fx.devices, req("d2", "SN-2"))
        .await
        .expect("create device 2");
    store
        .create(
            &fx.tenant,
            &fx.users,
            user_request("u1", simple_user("d1"), t0),
        )
        .await
        .expect("user");
    let page = list_exact(
        store,
        &fx.tenant,
        &fx.devices,
        &ListQuery {
            filter: Some(Filter::parse(r#"displayName eq "D2""#).unwrap()),
            ..ListQuery::default()
        },
    )
    .await;
    assert_eq!(ids(&page.resources), ["d2"]);
    let all = list_exact(store, &fx.tenant, &fx.devices, &ListQuery::default()).await;
    assert_eq!(all.total_results, 2, "only devices are listed as devices");
    let feed = store.changes_since(&fx.tenant, 0, 100).await.unwrap();
    assert!(feed
        .iter()
        .any(|c| c.resource_type == "Device" && c.id.as_str() == "d2"));
}

/// Stale versions fail with `VersionMismatch` and change nothing.
pub async fn check_versions(store: &dyn ResourceStore, fx: &Fixture) {
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
            user_request("m1", simple_user("m"), t0),
        )
        .await
        .unwrap();
    store
        .create(&fx.tenant, &fx.groups, group_request("g1", "G", &[], t0))
        .await
        .unwrap();
    let v2 = store
        .update(
            &fx.tenant,
            &fx.users,
            &"u1".into(),
            replace_request(simple_user("b"), None, t0),
        )
        .await
        .unwrap();
    assert_eq!(v2.version, Version::new(2), "an unconditional write bumps");
    let feed_len = store
        .changes_since(&fx.tenant, 0, 1000)
        .await
        .unwrap()
        .len();

    let stale = store
        .update(
            &fx.tenant,
            &fx.users,
            &"u1".into(),
            replace_request(simple_user("c"), Some(Version::INITIAL), t0),
        )
        .await;
    match stale {
        Err(StoreError::VersionMismatch { current }) => assert_eq!(current, Version::new(2)),
        other => panic!("stale replace: {other:?}"),
    }
    let mut stale_members = delta_request(add(&["m1"]), t0);
    stale_members.expected_version = Some(Version::new(7));
    let r = store
        .update(&fx.tenant, &fx.groups, &"g1".into(), stale_members)
        .await;
    assert!(
        matches!(r, Err(StoreError::VersionMismatch { .. })),
        "{r:?}"
    );
    let r = store
        .delete(
            &fx.tenant,
            &fx.users,
            &"u1".into(),
            Some(Version::INITIAL),
            t0,
        )
        .await;
    assert!(
        matches!(r, Err(StoreError::VersionMismatch { .. })),
        "{r:?}"
    );

    let now = store
        .get(&fx.tenant, &fx.users, &"u1".into(), false)
        .await
        .unwrap();
    assert_eq!(
        now.doc,
        simple_user("b"),
        "a stale write changed the document"
    );
    assert_eq!(now.version, Version::new(2));
    let g = store
        .get(&fx.tenant, &fx.groups, &"g1".into(), true)
        .await
        .unwrap();
    assert_eq!(g.members.as_deref().map(<[_]>::len), Some(0));
    assert_eq!(g.version, Version::INITIAL);
    let after = store
        .changes_since(&fx.tenant, 0, 1000)
        .await
        .unwrap()
        .len();
    assert_eq!(
        after, feed_len,
        "a failed write appended to the change feed"
    );
    // The name `c` from the failed write must not be reserved.
    store
        .create(
            &fx.tenant,
            &fx.users,
            user_request("u2", simple_user("c"), t0),
        )
        .await
        .expect("`c` is free");
}

/// Uniqueness keys are enforced per tenant and resource type.
pub async fn check_uniqueness(store: &dyn ResourceStore, fx: &Fixture) {
    let t0 = base_time();
    store
        .create(
            &fx.tenant,
            &fx.users,
            user_request("u1", simple_user("BJensen"), t0),
        )
        .await
        .unwrap();
    let dup = store
        .create(
            &fx.tenant,
            &fx.users,
            user_request("u2", simple_user("bjensen"), t0),
        )
        .await;
    assert!(
        matches!(&dup, Err(StoreError::Conflict { attribute }) if attribute == "userName"),
        "case-insensitive userName clash: {dup:?}"
    );
    assert!(matches!(
        store.get(&fx.tenant, &fx.users, &"u2".into(), false).await,
        Err(StoreError::NotFound { .. })
    ));
    store
        .create(
            &fx.tenant,
            &fx.users,
            user_request("u2", simple_user("other"), t0),
        )
        .await
        .unwrap();
    let taken = store
        .update(
            &fx.tenant,
            &fx.users,
            &"u2".into(),
            replace_request(simple_user("BJENSEN"), None, t0),
        )
        .await;
    assert!(
        matches!(taken, Err(StoreError::Conflict { .. })),
        "{taken:?}"
    );
    // Keeping one's own value is no conflict; renaming frees the old value.
    store
        .update(
            &fx.tenant,
            &fx.users,
            &"u1".into(),
            replace_request(simple_user("bjensen"), None, t0),
        )
        .await
        .expect("own value");
    store
        .update(
            &fx.tenant,
            &fx.users,
            &"u1".into(),
            replace_request(simple_user("barbara"), None, t0),
        )
        .await
        .expect("rename");
    store
        .create(
            &fx.tenant,
            &fx.users,
            user_request("u3", simple_user("bjensen"), t0),
        )
        .await
        .expect("the old name is free again");
    store
        .delete(&fx.tenant, &fx.users, &"u3".into(), None, t0)
        .await
        .unwrap();
    store
        .create(
            &fx.tenant,
            &fx.users,
            user_request("u4", simple_user("bjensen"), t0),
        )
        .await
        .expect("a deleted user's name is free");
    // Same value, other type or other tenant: no clash.
    store
        .create(
            &fx.tenant,
            &fx.groups,
            group_request("g1", "bjensen", &[], t0),
        )
        .await
        .expect("keys are per resource type");
    store
        .create(
            &fx.other,
            &fx.users,
            user_request("u1", simple_user("bjensen"), t0),
        )
        .await
        .expect("keys and ids are per tenant");
    let gdup = store
        .create(
            &fx.tenant,
            &fx.groups,
            group_request("g2", "BJensen", &[], t0),
        )
        .await;
    assert!(
        matches!(&gdup, Err(StoreError::Conflict { attribute }) if attribute == "displayName"),
        "{gdup:?}"
    );
}

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

/// Nothing of one tenant is visible, writable or deletable from another.
pub async fn check_tenant_isolation(store: &dyn ResourceStore, fx: &Fixture) {
    let t0 = base_time();
    let (a, b) = (&fx.tenant, &fx.other);
    store
        .create(a, &fx.users, user_request("ua", simple_user("alice"), t0))
        .await
        .unwrap();
    store
        .create(a, &fx.groups, group_request("ga", "Admins", &["ua"], t0))
        .await
        .unwrap();
    store
        .create(b, &fx.users, user_request("ub", simple_user("bob"), t0))
        .await
        .unwrap();
    store
        .create(b, &fx.groups, group_request("gb", "Admins", &[], t0))
        .await
        .unwrap();
    let nf = |r: &Result<_, StoreError>| matches!(r, Err(StoreError::NotFound { .. }));
    assert!(nf(&store
        .get(b, &fx.users, &"ua".into(), false)
        .await
        .map(|_| ())));
    assert!(nf(&store
        .update(
            b,
            &fx.users,
            &"ua".into(),
            replace_request(simple_user("x"), None, t0)
        )
        .await
        .map(|_| ())));
    assert!(nf(&store
        .delete(b, &fx.users, &"ua".into(), None, t0)
        .await));
    assert!(nf(&store
        .members(b, &fx.groups, &"ga".into(), 1, 10)
        .await
        .map(|_| ())));
    assert!(store.groups_of(b, &"ua".into()).await.unwrap().is_empty());
    // A member from another tenant does not exist here.
    let cross = store
        .update(b, &fx.groups, &"gb".into(), delta_request(add(&["ua"]), t0))
        .await;
    assert!(
        matches!(&cross, Err(StoreError::InvalidMember(id)) if id.as_str() == "ua"),
        "{cross:?}"
    );
    for f in [None, Some(r#"userName eq "alice""#), Some(r#"id eq "ua""#)] {
        let q = ListQuery {
            filter: f.map(|f| Filter::parse(f).unwrap()),
            ..ListQuery::default()
        };
        let p = list_exact(store, b, &fx.users, &q).await;
        assert!(
            !ids(&p.resources).contains(&"ua".to_string()),
            "tenant B sees A's user with {f:?}"
        );
    }
    let pb = list_exact(store, b, &fx.users, &ListQuery::default()).await;
    assert_eq!(ids(&pb.resources), ["ub"]);
    let feed_b = store.changes_since(b, 0, 100).await.unwrap();
    assert!(feed_b
        .iter()
        .all(|c| &c.tenant == b && c.id.as_str() != "ua"));
    assert_eq!(feed_b.len(), 2);
    // A is untouched.
    let ga = store.get(a, &fx.groups, &"ga".into(), true).await.unwrap();
    assert_eq!(ga.version, Version::INITIAL);
    assert_eq!(ga.members.unwrap().len(), 1);
}

/// Every committed write appears once, in order, with its kind and version.
pub async fn check_change_feed(store: &dyn ResourceStore, fx: &Fixture) {
    let tn = &fx.tenant;
    let t = |s: i64| base_time() + Duration::seconds(s);
    assert!(store.changes_since(tn, 0, 10).await.unwrap().is_empty());
    store
        .create(tn, &fx.users, user_request("u1", simple_user("a"), t(1)))
        .await
        .unwrap();
    store
        .create(tn, &fx.groups, group_request("g1", "G", &[], t(2)))
        .await
        .unwrap();
    store
        .update(
            tn,
            &fx.users,
            &"u1".into(),
            replace_request(simple_user("b"), None, t(3)),
        )
        .await
        .unwrap();
    let mut patch = replace_request(simple_user("c"), None, t(4));
    patch.kind = UpdateKind::Patch;
    store
        .update(tn, &fx.users, &"u1".into(), patch)
        .await
        .unwrap();
    store
        .update(
            tn,
            &fx.groups,
            &"g1".into(),
            delta_request(add(&["u1"]), t(5)),
        )
        .await
        .unwrap();
    // Failed writes record nothing.
    let _ = store
        .create(tn, &fx.users, user_request("u2", simple_user("C"), t(6)))
        .await
        .unwrap_err();
    let _ = store
        .update(
            tn,
            &fx.groups,
            &"g1".into(),
            delta_request(add(&["zz"]), t(6)),
        )
        .await
        .unwrap_err();
    store
        .delete(tn, &fx.groups, &"g1".into(), Some(Version::new(2)), t(7))
        .await
        .unwrap();

    let all = store.changes_since(tn, 0, 100).await.unwrap();
    let got: Vec<(&str, ChangeKind, u64, DateTime<Utc>, &str)> = all
        .iter()
        .map(|c| {
            (
                c.id.as_str(),
                c.kind,
                c.version.get(),
                c.at,
                c.resource_type.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("u1", ChangeKind::Created, 1, t(1), "User"),
            ("g1", ChangeKind::Created, 1, t(2), "Group"),
            ("u1", ChangeKind::Replaced, 2, t(3), "User"),
            ("u1", ChangeKind::Patched, 3, t(4), "User"),
            ("g1", ChangeKind::MembershipChanged, 2, t(5), "Group"),
            ("g1", ChangeKind::Deleted, 3, t(7), "Group"),
        ]
    );
    for w in all.windows(2) {
        assert!(w[0].seq < w[1].seq, "seq strictly increasing");
    }
    assert!(all.iter().all(|c| &c.tenant == tn));
    // Resuming from any position returns exactly the rest; `limit` caps.
    for (i, c) in all.iter().enumerate() {
        let rest = store.changes_since(tn, c.seq, 100).await.unwrap();
        assert_eq!(rest, all[i + 1..].to_vec());
    }
    let two = store.changes_since(tn, all[1].seq, 2).await.unwrap();
    assert_eq!(two, all[2..4].to_vec());
    assert!(store
        .changes_since(tn, all.last().unwrap().seq, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .changes_since(tn, u64::MAX, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store.changes_since(tn, 0, 0).await.unwrap().is_empty());
}
