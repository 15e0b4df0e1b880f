//! Sorted pages after writes that change what resources sort by: a store that keeps
//! precomputed sort keys (the SQL stores) must keep them in step with every create, replace,
//! patch and delete, and order exactly as the engine's sorter does.

#[allow(unused_imports)]
use super::*;

fn replace(doc: Value, kind: UpdateKind, now: DateTime<Utc>) -> UpdateRequest {
    let unique_keys = doc
        .get("userName")
        .and_then(Value::as_str)
        .map(user_name_key)
        .into_iter()
        .collect();
    UpdateRequest {
        expected_version: None,
        document: Some(NewDocument { doc, unique_keys }),
        members: None,
        return_members: None,
        kind,
        now,
        actor: None,
    }
}

/// Sorted pages (many paths, both orders, several windows, with and without a filter) agree
/// with the engine's sorter after creates, replaces, patches and deletes that change the
/// sort keys: non-ASCII folding, missing values, multi-valued attributes with and without a
/// primary value, extension attributes, numbers and dateTimes.
pub async fn check_sort_keys(store: &dyn ResourceStore, fx: &Fixture) {
    let tn = &fx.tenant;
    let t = base_time();
    let ent = ENTERPRISE_USER_SCHEMA;
    let users = [
        json!({"userName": "u0", "name": {"familyName": "Straße"}, "emails": [{"value": "b@x"}, {"value": "a@x", "primary": true}], "title": "Zeta"}),
        json!({"userName": "u1", "name": {"familyName": "STRASSE"}, "emails": [{"value": "B@x"}], "title": "alpha"}),
        json!({"userName": "u2", "name": {"familyName": "İstanbul"}, "emails": [{"value": "c@x", "primary": false}, {"value": "0@x"}]}),
        json!({"userName": "u3", "name": {"familyName": "istanbul"}, "title": "", ent: {"employeeNumber": "10", "manager": {"value": "m2"}}}),
        json!({"userName": "u4", "name": {"familyName": "ΟΔΟΣ"}, "emails": [], "title": "Émile", ent: {"employeeNumber": "9"}}),
        json!({"userName": "u5", "name": {"familyName": "οδος"}, "emails": [{"type": "work", "primary": true}, {"value": "z@x"}]}),
        json!({"userName": "u6", "emails": [{"value": "A@X", "primary": true}], "title": "alpha", ent: {"manager": {"value": "M1"}}}),
        json!({"userName": "u7", "name": {"familyName": "ǆ"}, "title": "zeta", "active": true}),
        json!({"userName": "u8", "name": {"familyName": "ǅ"}, "active": false, "emails": [{"value": "a@x"}]}),
        json!({"userName": "u9", "title": "Beta", "active": true, "phoneNumbers": [{"value": "+1 555"}]}),
    ];
    for (i, mut doc) in users.into_iter().enumerate() {
        doc["schemas"] = json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA]);
        store
            .create(
                tn,
                &fx.users,
                user_request(&format!("u{i}"), doc, t + Duration::seconds(i as i64)),
            )
            .await
            .unwrap();
    }
    // Writes that move resources: a replace gives u9 a primary email first in order, a patch
    // removes u0's title and changes its family name, u3 gets a value where it had none, u2
    // is deleted (its keys must go with it), and a late create ties with earlier ones.
    let later = t + Duration::minutes(5);
    let mut u9 = json!({"userName": "u9", "title": "Beta", "emails": [{"value": "Z@x"}, {"value": "0@x", "primary": true}]});
    u9["schemas"] = json!([USER_SCHEMA]);
    store
        .update(
            tn,
            &fx.users,
            &"u9".into(),
            replace(u9, UpdateKind::Replace, later),
        )
        .await
        .unwrap();
    let mut u0 =
        json!({"userName": "u0", "name": {"familyName": "Aachen"}, "emails": [{"value": "b@x"}]});
    u0["schemas"] = json!([USER_SCHEMA]);
    store
        .update(
            tn,
            &fx.users,
            &"u0".into(),
            replace(u0, UpdateKind::Patch, later),
        )
        .await
        .unwrap();
    let mut u3 = json!({"userName": "u3", "name": {"familyName": "istanbul"}, "title": "ALPHA", "emails": [{"value": "a@X"}]});
    u3["schemas"] = json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA]);
    u3[ent] = json!({"employeeNumber": "10"});
    store
        .update(
            tn,
            &fx.users,
            &"u3".into(),
            replace(u3, UpdateKind::Patch, later),
        )
        .await
        .unwrap();
    store
        .delete(tn, &fx.users, &"u2".into(), None, later)
        .await
        .unwrap();
    let mut u10 = json!({"userName": "u10", "title": "alpha", "emails": [{"value": "a@x"}], "name": {"familyName": "strasse"}});
    u10["schemas"] = json!([USER_SCHEMA]);
    store
        .create(tn, &fx.users, user_request("u10", u10, later))
        .await
        .unwrap();
    let devices = [
        json!({"serialNumber": "s0", "lastSeen": "2026-01-01T01:00:00+02:00", "ports": 3, "tags": ["b", "A"]}),
        json!({"serialNumber": "s1", "lastSeen": "2025-12-31T23:30:00Z", "ports": -2.5}),
        json!({"serialNumber": "s2", "ports": 3}),
        json!({"serialNumber": "s3", "lastSeen": "2026-01-01T00:00:00.5Z", "ports": 9007199254740993_u64, "tags": ["a"]}),
        json!({"serialNumber": "s4", "ports": 9007199254740992_u64, "tags": []}),
    ];
    for (i, mut doc) in devices.into_iter().enumerate() {
        doc["schemas"] = json!([DEVICE_SCHEMA]);
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
    let mut d1 = json!({"serialNumber": "s1", "lastSeen": "2027-01-01T00:00:00Z", "ports": 1e3});
    d1["schemas"] = json!([DEVICE_SCHEMA]);
    store
        .update(
            tn,
            &fx.devices,
            &"d1".into(),
            replace(d1, UpdateKind::Replace, later),
        )
        .await
        .unwrap();
    let user_sorts = [
        "name.familyName".to_owned(),
        "emails".to_owned(),
        "emails.value".to_owned(),
        "emails.type".to_owned(),
        "title".to_owned(),
        "active".to_owned(),
        "phoneNumbers.value".to_owned(),
        format!("{ent}:employeeNumber"),
        format!("{ent}:manager.value"),
    ];
    let device_sorts = ["lastSeen", "ports", "tags", "serialNumber"].map(str::to_owned);
    for (rt, sorts, filter) in [
        (&fx.users, user_sorts.to_vec(), "title pr or emails pr"),
        (&fx.devices, device_sorts.to_vec(), "ports pr"),
    ] {
        let everything = list_exact(store, tn, rt, &ListQuery::default()).await;
        for by in &sorts {
            for order in [SortOrder::Ascending, SortOrder::Descending] {
                for filter in [None, Some(filter)] {
                    for (start_index, count) in [(1, 100), (1, 1), (2, 3), (4, 20), (9, 2), (50, 5)]
                    {
                        let q = ListQuery {
                            filter: filter.map(|f| Filter::parse(f).unwrap()),
                            sort: Some(SortSpec {
                                by: AttrPath::parse(by).unwrap(),
                                order,
                            }),
                            start_index,
                            count,
                            ..ListQuery::default()
                        };
                        let want = apply_query(rt, &q, everything.resources.clone()).unwrap();
                        let got = store.list(tn, rt, &q).await.unwrap();
                        let what = format!(
                            "{} sortBy {by} {order:?} filter {filter:?} startIndex {start_index} count {count}",
                            rt.name()
                        );
                        assert_eq!(
                            got.pushdown,
                            Pushdown::Exact,
                            "{what}: not answered by the store"
                        );
                        assert_eq!(ids(&got.resources), ids(&want.resources), "{what}: order");
                        assert_eq!(got.total_results, want.total_results, "{what}: total");
                    }
                }
            }
        }
    }
    // The always-true filter counts every resource of the type, and only of it.
    let q = ListQuery {
        filter: Some(Filter::parse("meta.location pr").unwrap()),
        count: 1,
        ..ListQuery::default()
    };
    let page = store.list(tn, &fx.users, &q).await.unwrap();
    assert_eq!(
        page.total_results, 10,
        "meta.location pr: users after a delete"
    );
    let page = store.list(tn, &fx.devices, &q).await.unwrap();
    assert_eq!(page.total_results, 5, "meta.location pr: devices");
    let page = store.list(&fx.other, &fx.users, &q).await.unwrap();
    assert_eq!(page.total_results, 0, "meta.location pr: another tenant");
}
