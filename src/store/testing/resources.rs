//! Resources: CRUD, custom types, versions, uniqueness, tenant isolation and the change
//! feed (paging and sorting are in `paging.rs`).

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
