//! Membership: deltas, large groups, unknown members, deletes, and a 100,000-member group.

#[allow(unused_imports)]
use super::*;

/// Membership deltas: add, idempotent add, remove by value list, clear, invalid members,
/// `display`, paging of members, groups of a member.
pub async fn check_membership(store: &dyn ResourceStore, fx: &Fixture) {
    let t0 = base_time();
    let tn = &fx.tenant;
    for (id, name) in [("u1", "alice"), ("u2", "bob"), ("u3", "carol")] {
        store
            .create(tn, &fx.users, user_request(id, simple_user(name), t0))
            .await
            .unwrap();
    }
    let mut doc = simple_user("dave");
    doc["displayName"] = json!("Dave D.");
    store
        .create(tn, &fx.users, user_request("u4", doc, t0))
        .await
        .unwrap();
    store
        .create(
            tn,
            &fx.groups,
            group_request("g1", "Engineering", &["u1"], t0),
        )
        .await
        .unwrap();
    store
        .create(tn, &fx.groups, group_request("g2", "Everyone", &[], t0))
        .await
        .unwrap();

    let g = store
        .update(
            tn,
            &fx.groups,
            &"g1".into(),
            delta_request(add(&["u2", "u4"]), t0),
        )
        .await
        .unwrap();
    assert_eq!(g.version, Version::new(2), "one delta, one bump");
    let page = store
        .members(tn, &fx.groups, &"g1".into(), 1, 10)
        .await
        .unwrap();
    assert_eq!(page.total_results, 3);
    let got: Vec<(String, String, Option<String>)> = page
        .members
        .iter()
        .map(|m| {
            (
                m.value.to_string(),
                m.resource_type.clone(),
                m.display.clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("u1".into(), "User".into(), Some("alice".into())),
            ("u2".into(), "User".into(), Some("bob".into())),
            ("u4".into(), "User".into(), Some("Dave D.".into())),
        ],
        "members ordered by id; display is displayName, else userName"
    );
    let p2 = store
        .members(tn, &fx.groups, &"g1".into(), 2, 1)
        .await
        .unwrap();
    assert_eq!(p2.members.len(), 1);
    assert_eq!(p2.members[0].value.as_str(), "u2");
    let p3 = store
        .members(tn, &fx.groups, &"g1".into(), 9, 5)
        .await
        .unwrap();
    assert!(p3.members.is_empty());
    assert_eq!(p3.total_results, 3);

    // `display` follows the member's current name.
    let mut renamed = simple_user("dave");
    renamed["displayName"] = json!("David Dee");
    store
        .update(
            tn,
            &fx.users,
            &"u4".into(),
            replace_request(renamed, None, t0),
        )
        .await
        .unwrap();
    let p4 = store
        .members(tn, &fx.groups, &"g1".into(), 3, 1)
        .await
        .unwrap();
    assert_eq!(p4.members[0].display.as_deref(), Some("David Dee"));
    let g1 = store.get(tn, &fx.groups, &"g1".into(), true).await.unwrap();
    assert_eq!(
        g1.version,
        Version::new(2),
        "renaming a member does not bump the group"
    );
    assert_eq!(g1.members.unwrap()[2].display.as_deref(), Some("David Dee"));

    // Idempotent add: nothing changes.
    let same = store
        .update(
            tn,
            &fx.groups,
            &"g1".into(),
            delta_request(add(&["u2"]), t0),
        )
        .await
        .unwrap();
    assert_eq!(
        same.version,
        Version::new(2),
        "re-adding a member is a no-op"
    );

    // Invalid member: nothing changes, not even the valid part.
    let bad = store
        .update(
            tn,
            &fx.groups,
            &"g1".into(),
            delta_request(add(&["u3", "ghost"]), t0),
        )
        .await;
    assert!(
        matches!(&bad, Err(StoreError::InvalidMember(id)) if id.as_str() == "ghost"),
        "{bad:?}"
    );
    let wrong_type = MembershipDelta {
        add: vec![MemberRef {
            value: "u3".into(),
            resource_type: Some("Group".into()),
        }],
        ..MembershipDelta::default()
    };
    let bad = store
        .update(tn, &fx.groups, &"g1".into(), delta_request(wrong_type, t0))
        .await;
    assert!(matches!(bad, Err(StoreError::InvalidMember(_))), "{bad:?}");
    let after = store.get(tn, &fx.groups, &"g1".into(), true).await.unwrap();
    assert_eq!(after.version, Version::new(2));
    assert_eq!(after.members.unwrap().len(), 3);

    // Nested group member with its type.
    let nested = MembershipDelta {
        add: vec![MemberRef {
            value: "g1".into(),
            resource_type: Some("group".into()),
        }],
        ..MembershipDelta::default()
    };
    store
        .update(tn, &fx.groups, &"g2".into(), delta_request(nested, t0))
        .await
        .expect("a group can be a member");
    let m = store
        .members(tn, &fx.groups, &"g2".into(), 1, 10)
        .await
        .unwrap();
    assert_eq!(m.members[0].resource_type, "Group");
    assert_eq!(m.members[0].display.as_deref(), Some("Engineering"));

    // groups_of
    store
        .update(
            tn,
            &fx.groups,
            &"g2".into(),
            delta_request(add(&["u1"]), t0),
        )
        .await
        .unwrap();
    let gs = store.groups_of(tn, &"u1".into()).await.unwrap();
    let gs: Vec<(String, Option<String>)> = gs
        .iter()
        .map(|g| (g.id.to_string(), g.display.clone()))
        .collect();
    assert_eq!(
        gs,
        vec![
            ("g1".into(), Some("Engineering".into())),
            ("g2".into(), Some("Everyone".into()))
        ]
    );
    assert!(store.groups_of(tn, &"u3".into()).await.unwrap().is_empty());

    // The one-read forms agree with groups_of: a User with its groups, and a page of ids
    // (with an unknown one, one without groups and a repeat) in request order.
    let (u1, groups) = store
        .get_with_groups(tn, &fx.users, &"u1".into())
        .await
        .unwrap();
    assert_eq!(u1.id.as_str(), "u1");
    assert_eq!(groups, store.groups_of(tn, &"u1".into()).await.unwrap());
    let (_, none) = store
        .get_with_groups(tn, &fx.users, &"u3".into())
        .await
        .unwrap();
    assert!(none.is_empty());
    assert!(matches!(
        store.get_with_groups(tn, &fx.users, &"nobody".into()).await,
        Err(StoreError::NotFound { .. })
    ));
    let ids: Vec<ResourceId> = ["u3", "u1", "nobody", "g2", "u1"]
        .into_iter()
        .map(ResourceId::from)
        .collect();
    let many = store.groups_of_many(tn, &ids).await.unwrap();
    let mut one_by_one = Vec::new();
    for id in &ids {
        one_by_one.push(store.groups_of(tn, id).await.unwrap());
    }
    assert_eq!(many, one_by_one);
    assert_eq!(many[1].len(), 2, "{many:?}");
    assert!(store.groups_of_many(tn, &[]).await.unwrap().is_empty());

    // Entra's removal with a value list, combined with a document change: one bump.
    let v = store
        .get(tn, &fx.groups, &"g1".into(), false)
        .await
        .unwrap()
        .version;
    let both = UpdateRequest {
        expected_version: Some(v),
        document: Some(NewDocument {
            doc: json!({"schemas": [GROUP_SCHEMA], "displayName": "Eng"}),
            unique_keys: vec![UniqueKey::new("displayName", "eng")],
        }),
        members: Some(MembershipDelta {
            remove: vec!["u1".into(), "u4".into(), "never-a-member".into()],
            ..MembershipDelta::default()
        }),
        return_members: Some(usize::MAX),
        kind: UpdateKind::Patch,
        now: t0,
        actor: None,
    };
    let g = store
        .update(tn, &fx.groups, &"g1".into(), both)
        .await
        .unwrap();
    assert_eq!(g.version, v.next());
    let m = store.get(tn, &fx.groups, &"g1".into(), true).await.unwrap();
    assert_eq!(ids_of_members(&m), ["u2"]);
    assert_eq!(m.doc["displayName"], "Eng");
    assert_eq!(store.groups_of(tn, &"u1".into()).await.unwrap().len(), 1);
    let gs = store.groups_of(tn, &"u1".into()).await.unwrap();
    assert_eq!(gs[0].id.as_str(), "g2");

    // Replace all members (clear + add); a member both kept and re-added stays once.
    let replace_all = MembershipDelta {
        clear: true,
        add: vec![
            MemberRef::new("u3"),
            MemberRef::new("u2"),
            MemberRef::new("u3"),
        ],
        remove: Vec::new(),
        unknown: UnknownMembers::Reject,
    };
    store
        .update(tn, &fx.groups, &"g1".into(), delta_request(replace_all, t0))
        .await
        .unwrap();
    let m = store.get(tn, &fx.groups, &"g1".into(), true).await.unwrap();
    assert_eq!(ids_of_members(&m), ["u2", "u3"]);
    let clear = MembershipDelta {
        clear: true,
        ..MembershipDelta::default()
    };
    store
        .update(tn, &fx.groups, &"g1".into(), delta_request(clear, t0))
        .await
        .unwrap();
    let m = store.get(tn, &fx.groups, &"g1".into(), true).await.unwrap();
    assert!(ids_of_members(&m).is_empty());
    assert!(store.groups_of(tn, &"u3".into()).await.unwrap().is_empty());
    // A group cannot contain itself.
    let selfish = store
        .update(
            tn,
            &fx.groups,
            &"g1".into(),
            delta_request(add(&["g1"]), t0),
        )
        .await;
    assert!(matches!(selfish, Err(StoreError::InvalidMember(_))));
    // Get without members leaves them out.
    assert!(store
        .get(tn, &fx.groups, &"g2".into(), false)
        .await
        .unwrap()
        .members
        .is_none());
}

pub(crate) fn ids_of_members(r: &StoredResource) -> Vec<String> {
    r.members
        .as_ref()
        .map(|m| m.iter().map(|m| m.value.to_string()).collect())
        .unwrap_or_default()
}

/// Adding one member to a 10,000-member group, then removing it.
pub async fn check_large_group(store: &dyn ResourceStore, fx: &Fixture) {
    let t0 = base_time();
    let tn = &fx.tenant;
    let n = 10_000;
    for i in 0..=n {
        store
            .create(
                tn,
                &fx.users,
                user_request(&format!("m{i:05}"), simple_user(&format!("m{i}")), t0),
            )
            .await
            .unwrap();
    }
    let ids: Vec<String> = (0..n).map(|i| format!("m{i:05}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    store
        .create(tn, &fx.groups, group_request("big", "Big", &refs, t0))
        .await
        .unwrap();
    let seq_before = store.changes_since(tn, 0, usize::MAX).await.unwrap().len();
    let extra = format!("m{n:05}");
    let g = store
        .update(
            tn,
            &fx.groups,
            &"big".into(),
            delta_request(add(&[&extra]), t0),
        )
        .await
        .unwrap();
    assert_eq!(g.version, Version::new(2));
    let page = store
        .members(tn, &fx.groups, &"big".into(), 10_001, 10)
        .await
        .unwrap();
    assert_eq!(page.total_results, 10_001);
    assert_eq!(page.members.len(), 1);
    assert_eq!(page.members[0].value.as_str(), extra);
    let feed = store.changes_since(tn, 0, usize::MAX).await.unwrap();
    assert_eq!(feed.len(), seq_before + 1);
    let last = feed.last().unwrap();
    assert_eq!(
        (last.id.as_str(), last.kind),
        ("big", ChangeKind::MembershipChanged)
    );
    let remove = MembershipDelta {
        remove: vec![extra.as_str().into(), "m00000".into()],
        ..MembershipDelta::default()
    };
    store
        .update(tn, &fx.groups, &"big".into(), delta_request(remove, t0))
        .await
        .unwrap();
    let page = store
        .members(tn, &fx.groups, &"big".into(), 1, 1)
        .await
        .unwrap();
    assert_eq!(page.total_results, 9_999);
    assert_eq!(page.members[0].value.as_str(), "m00001");
}

/// Deleting a user removes it from every group (bumping and recording each); deleting a group
/// removes its memberships.
pub async fn check_delete_cleans_memberships(store: &dyn ResourceStore, fx: &Fixture) {
    let t0 = base_time();
    let t1 = t0 + Duration::seconds(5);
    let tn = &fx.tenant;
    for id in ["u1", "u2"] {
        store
            .create(tn, &fx.users, user_request(id, simple_user(id), t0))
            .await
            .unwrap();
    }
    store
        .create(
            tn,
            &fx.groups,
            group_request("g1", "One", &["u1", "u2"], t0),
        )
        .await
        .unwrap();
    store
        .create(
            tn,
            &fx.groups,
            group_request("g2", "Two", &["u1", "g1"], t0),
        )
        .await
        .unwrap();
    let seq = store
        .changes_since(tn, 0, 100)
        .await
        .unwrap()
        .last()
        .unwrap()
        .seq;
    store
        .delete(tn, &fx.users, &"u1".into(), None, t1)
        .await
        .unwrap();
    for (g, left) in [("g1", vec!["u2"]), ("g2", vec!["g1"])] {
        let r = store.get(tn, &fx.groups, &g.into(), true).await.unwrap();
        assert_eq!(ids_of_members(&r), left, "{g} after deleting u1");
        assert_eq!(r.version, Version::new(2), "{g} was bumped");
        assert_eq!(r.last_modified, t1);
    }
    let changes = store.changes_since(tn, seq, 100).await.unwrap();
    let got: HashSet<(String, ChangeKind)> =
        changes.iter().map(|c| (c.id.to_string(), c.kind)).collect();
    let want: HashSet<(String, ChangeKind)> = [
        ("u1".to_string(), ChangeKind::Deleted),
        ("g1".to_string(), ChangeKind::MembershipChanged),
        ("g2".to_string(), ChangeKind::MembershipChanged),
    ]
    .into_iter()
    .collect();
    assert_eq!(got, want);
    assert_eq!(changes.len(), 3);
    // Deleting a group: it leaves g2, and its members have no groups left.
    store
        .delete(tn, &fx.groups, &"g1".into(), None, t1)
        .await
        .unwrap();
    assert!(store.groups_of(tn, &"u2".into()).await.unwrap().is_empty());
    let g2 = store.get(tn, &fx.groups, &"g2".into(), true).await.unwrap();
    assert!(ids_of_members(&g2).is_empty());
    assert_eq!(g2.version, Version::new(3));
    // A deleted member id can't be added back.
    let r = store
        .update(
            tn,
            &fx.groups,
            &"g2".into(),
            delta_request(add(&["u1"]), t1),
        )
        .await;
    assert!(matches!(r, Err(StoreError::InvalidMember(_))));
}

/// Members to add that cannot be members (5,000 unknown ids, an id of another type than
/// claimed, the group itself): under [`UnknownMembers::Reject`] the first fails the write
/// and nothing changes; under `Skip` the rest is applied and the skipped ids are reported,
/// each once, in request order. The same for initial members of a create.
pub async fn check_unknown_members(store: &dyn ResourceStore, fx: &Fixture) {
    let t0 = base_time();
    let tn = &fx.tenant;
    for id in ["k1", "k2", "k3", "k4"] {
        store
            .create(tn, &fx.users, user_request(id, simple_user(id), t0))
            .await
            .unwrap();
    }
    store
        .create(tn, &fx.groups, group_request("g", "G", &["k1"], t0))
        .await
        .unwrap();
    let unknown: Vec<String> = (0..5000).map(|i| format!("missing-{i:04}")).collect();
    let mut add = vec![MemberRef::new("k2")];
    add.extend(unknown.iter().map(|id| MemberRef::new(id.as_str())));
    add.push(MemberRef::new("missing-0000")); // a repeat
    add.push(MemberRef {
        value: "k3".into(),
        resource_type: Some("Group".into()),
    });
    add.push(MemberRef::new("g")); // the group itself
    add.push(MemberRef {
        value: "k4".into(),
        resource_type: Some("user".into()), // the claimed type is compared case-insensitively
    });
    let feed_before = store.changes_since(tn, 0, usize::MAX).await.unwrap().len();
    let delta = |unknown| MembershipDelta {
        add: add.clone(),
        remove: vec!["k1".into()],
        unknown,
        ..MembershipDelta::default()
    };
    let rejected = store
        .update(
            tn,
            &fx.groups,
            &"g".into(),
            delta_request(delta(UnknownMembers::Reject), t0),
        )
        .await;
    assert!(
        matches!(&rejected, Err(StoreError::InvalidMember(id)) if id.as_str() == "missing-0000"),
        "the first unknown id in request order: {rejected:?}"
    );
    let g = store.get(tn, &fx.groups, &"g".into(), true).await.unwrap();
    assert_eq!(
        ids_of_members(&g),
        ["k1"],
        "a rejected delta changed nothing"
    );
    assert_eq!(g.version, Version::INITIAL);
    let feed = store.changes_since(tn, 0, usize::MAX).await.unwrap();
    assert_eq!(feed.len(), feed_before, "a rejected delta records nothing");

    let applied = store
        .update(
            tn,
            &fx.groups,
            &"g".into(),
            delta_request(delta(UnknownMembers::Skip), t0),
        )
        .await
        .expect("unknown ids are skipped");
    let mut expected_skipped: Vec<ResourceId> = unknown
        .iter()
        .map(|id| ResourceId::new(id.as_str()))
        .collect();
    expected_skipped.push("k3".into());
    expected_skipped.push("g".into());
    assert_eq!(applied.skipped_members, expected_skipped);
    assert_eq!(applied.version, Version::new(2));
    assert!(
        applied.members.is_none(),
        "a delta does not read the members back"
    );
    let g = store.get(tn, &fx.groups, &"g".into(), true).await.unwrap();
    assert_eq!(ids_of_members(&g), ["k2", "k4"]);

    // A delta naming only unknown ids changes nothing, and says so.
    let only_unknown = MembershipDelta {
        add: vec![MemberRef::new("nobody")],
        unknown: UnknownMembers::Skip,
        ..MembershipDelta::default()
    };
    let same = store
        .update(tn, &fx.groups, &"g".into(), delta_request(only_unknown, t0))
        .await
        .unwrap();
    assert_eq!(same.version, Version::new(2));
    assert_eq!(same.skipped_members, vec![ResourceId::new("nobody")]);

    // Initial members of a create.
    let mut req = group_request("h", "H", &["k1", "ghost", "k2"], t0);
    let refused = store.create(tn, &fx.groups, req.clone()).await;
    assert!(
        matches!(&refused, Err(StoreError::InvalidMember(id)) if id.as_str() == "ghost"),
        "{refused:?}"
    );
    assert!(store.get(tn, &fx.groups, &"h".into(), false).await.is_err());
    req.unknown_members = UnknownMembers::Skip;
    let h = store.create(tn, &fx.groups, req).await.unwrap();
    assert_eq!(h.skipped_members, vec![ResourceId::new("ghost")]);
    assert_eq!(
        ids_of_members(&h),
        ["k1", "k2"],
        "a create returns its members"
    );
    let h = store.get(tn, &fx.groups, &"h".into(), true).await.unwrap();
    assert_eq!(ids_of_members(&h), ["k1", "k2"]);
}

/// A group of 100,000 members: created in one write, grown and shrunk by one member, read
/// by page and by filter, and replaced by an overlapping set of 100,000 (a full-list PUT).
pub async fn check_membership_at_scale(store: &dyn ResourceStore, fx: &Fixture) {
    const N: usize = 100_000;
    const SHIFT: usize = 10_000;
    let t0 = base_time();
    let tn = &fx.tenant;
    let id = |i: usize| format!("s{i:06}");
    let reqs: Vec<CreateRequest> = (0..N + SHIFT)
        .map(|i| user_request(&id(i), simple_user(&format!("scale{i}")), t0))
        .collect();
    store.create_many(tn, &fx.users, reqs).await.unwrap();
    let first: Vec<String> = (0..N).map(id).collect();
    let refs: Vec<&str> = first.iter().map(String::as_str).collect();
    let created = store
        .create(tn, &fx.groups, group_request("huge", "Huge", &refs, t0))
        .await
        .unwrap();
    assert_eq!(created.members.as_ref().map(Vec::len), Some(N));
    let huge: ResourceId = "huge".into();

    let extra = id(N);
    let g = store
        .update(tn, &fx.groups, &huge, delta_request(add(&[&extra]), t0))
        .await
        .unwrap();
    assert_eq!(g.version, Version::new(2));
    assert!(
        g.members.is_none(),
        "a one-member delta does not return the members"
    );
    let page = store
        .members(tn, &fx.groups, &huge, N + 1, 10)
        .await
        .unwrap();
    assert_eq!(page.total_results, N + 1);
    assert_eq!(ids_of_page(&page.members), std::slice::from_ref(&extra));
    let remove = MembershipDelta {
        remove: vec![extra.as_str().into()],
        ..MembershipDelta::default()
    };
    store
        .update(tn, &fx.groups, &huge, delta_request(remove, t0))
        .await
        .unwrap();

    // A short list is read, a long one is not.
    assert!(store
        .members_if_at_most(tn, &fx.groups, &huge, 1000)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .members_if_at_most(tn, &fx.groups, &"no-such-group".into(), 3)
        .await
        .unwrap()
        .is_none());
    store
        .create(
            tn,
            &fx.groups,
            group_request("pair", "Pair", &[&id(1), &id(0)], t0),
        )
        .await
        .unwrap();
    let pair = store
        .members_if_at_most(tn, &fx.groups, &"pair".into(), 2)
        .await
        .unwrap()
        .expect("two members are at most two");
    assert_eq!(ids_of_page(&pair), [id(0), id(1)]);
    assert!(store
        .members_if_at_most(tn, &fx.groups, &"pair".into(), 1)
        .await
        .unwrap()
        .is_none());
    store
        .create(tn, &fx.groups, group_request("none", "None", &[], t0))
        .await
        .unwrap();
    assert_eq!(
        store
            .members_if_at_most(tn, &fx.groups, &"none".into(), 1)
            .await
            .unwrap(),
        Some(Vec::new())
    );
    for g in ["pair", "none"] {
        store
            .delete(tn, &fx.groups, &g.into(), None, t0)
            .await
            .unwrap();
    }

    // Reads: one member's groups, and the groups holding a member, by an exact filter.
    let gs = store.groups_of(tn, &id(N / 2).into()).await.unwrap();
    assert_eq!(gs.len(), 1);
    assert_eq!(gs[0].id, huge);
    let query = ListQuery {
        filter: Some(Filter::parse(&format!("members.value eq \"{}\"", id(N / 2))).unwrap()),
        count: 10,
        ..ListQuery::default()
    };
    let found = list_exact(store, tn, &fx.groups, &query).await;
    assert_eq!(ids(&found.resources), ["huge"]);
    assert_eq!(found.total_results, 1);

    // A full-list replacement overlapping by 90%: 10,000 leave, 10,000 join.
    let second: Vec<MemberRef> = (SHIFT..N + SHIFT)
        .rev()
        .map(|i| MemberRef::new(id(i)))
        .collect();
    let replaced = store
        .update(
            tn,
            &fx.groups,
            &huge,
            delta_request(
                MembershipDelta {
                    clear: true,
                    add: second,
                    ..MembershipDelta::default()
                },
                t0,
            ),
        )
        .await
        .unwrap();
    assert_eq!(replaced.version, Version::new(4));
    let returned = replaced
        .members
        .expect("a full replacement returns the members");
    assert_eq!(returned.len(), N);
    assert_eq!(
        returned[0].value.as_str(),
        id(SHIFT),
        "ordered by member id"
    );
    assert_eq!(returned[0].resource_type, "User");
    let page = store.members(tn, &fx.groups, &huge, 1, 2).await.unwrap();
    assert_eq!(page.total_results, N);
    assert_eq!(ids_of_page(&page.members), [id(SHIFT), id(SHIFT + 1)]);
    let page = store.members(tn, &fx.groups, &huge, N, 5).await.unwrap();
    assert_eq!(ids_of_page(&page.members), [id(N + SHIFT - 1)]);
    assert!(store.groups_of(tn, &id(0).into()).await.unwrap().is_empty());
    let feed = store.changes_since(tn, 0, usize::MAX).await.unwrap();
    let last = feed.last().unwrap();
    assert_eq!(
        (last.id.as_str(), last.kind, last.version),
        ("huge", ChangeKind::MembershipChanged, Version::new(4))
    );
}

pub(crate) fn ids_of_page(members: &[crate::resource::Member]) -> Vec<String> {
    members.iter().map(|m| m.value.to_string()).collect()
}
