//! Concurrency: writers racing on one resource lose nothing.

#[allow(unused_imports)]
use super::*;

/// 16 tasks each add a different member to the same group at once: every member is present,
/// with one version bump and one change record each.
pub async fn check_concurrent_member_adds(
    store: Arc<dyn ResourceStore>,
    fx: &Fixture,
    spawner: &impl Spawner,
) {
    let t0 = base_time();
    let tn = fx.tenant.clone();
    for i in 0..16 {
        store
            .create(
                &tn,
                &fx.users,
                user_request(&format!("c{i:02}"), simple_user(&format!("c{i}")), t0),
            )
            .await
            .unwrap();
    }
    store
        .create(&tn, &fx.groups, group_request("g", "G", &[], t0))
        .await
        .unwrap();
    let seq = store
        .changes_since(&tn, 0, 1000)
        .await
        .unwrap()
        .last()
        .unwrap()
        .seq;
    let mut joins = Vec::new();
    for i in 0..16 {
        let (store, tn, groups) = (Arc::clone(&store), tn.clone(), Arc::clone(&fx.groups));
        joins.push(spawner.spawn(Box::pin(async move {
            let id = format!("c{i:02}");
            store
                .update(&tn, &groups, &"g".into(), delta_request(add(&[&id]), t0))
                .await
                .expect("concurrent add");
        })));
    }
    for j in joins {
        j.await;
    }
    let g = store.get(&tn, &fx.groups, &"g".into(), true).await.unwrap();
    assert_eq!(ids_of_members(&g).len(), 16, "a concurrent add was lost");
    assert_eq!(g.version, Version::new(17));
    let changes = store.changes_since(&tn, seq, 1000).await.unwrap();
    assert_eq!(changes.len(), 16);
    let versions: BTreeSet<u64> = changes.iter().map(|c| c.version.get()).collect();
    assert_eq!(versions, (2..=17).collect(), "each add has its own version");
}

/// 16 tasks at once, each adding 20 members and removing 10 others of one group, one
/// delta per call without an expected version (as identity providers send them): no call
/// fails, nothing is lost, and each effective delta has its own version and change record.
pub async fn check_concurrent_distinct_adds_and_removes(
    store: Arc<dyn ResourceStore>,
    fx: &Fixture,
    spawner: &impl Spawner,
) {
    let t0 = base_time();
    let tn = fx.tenant.clone();
    let reqs: Vec<CreateRequest> = (0..16 * 30)
        .map(|i| user_request(&format!("d{i:03}"), simple_user(&format!("d{i}")), t0))
        .collect();
    store.create_many(&tn, &fx.users, reqs).await.unwrap();
    // Task t adds d{t*30 .. t*30+20} and removes d{t*30+20 .. t*30+30}, initially members.
    let initial: Vec<String> = (0..16)
        .flat_map(|t| (20..30).map(move |k| format!("d{:03}", t * 30 + k)))
        .collect();
    let refs: Vec<&str> = initial.iter().map(String::as_str).collect();
    store
        .create(&tn, &fx.groups, group_request("cg", "CG", &refs, t0))
        .await
        .unwrap();
    let seq = store.changes_since(&tn, 0, usize::MAX).await.unwrap().len() as u64;
    let mut joins = Vec::new();
    for t in 0..16usize {
        let (store, tn, groups) = (Arc::clone(&store), tn.clone(), Arc::clone(&fx.groups));
        joins.push(spawner.spawn(Box::pin(async move {
            for k in 0..30 {
                let id = format!("d{:03}", t * 30 + k);
                let delta = if k < 20 {
                    add(&[&id])
                } else {
                    MembershipDelta {
                        remove: vec![id.as_str().into()],
                        ..MembershipDelta::default()
                    }
                };
                store
                    .update(&tn, &groups, &"cg".into(), delta_request(delta, t0))
                    .await
                    .expect("a membership delta without expected version never fails");
            }
        })));
    }
    for j in joins {
        j.await;
    }
    let g = store
        .get(&tn, &fx.groups, &"cg".into(), true)
        .await
        .unwrap();
    let expected: Vec<String> = (0..16)
        .flat_map(|t| (0..20).map(move |k| format!("d{:03}", t * 30 + k)))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(
        ids_of_members(&g),
        expected,
        "a concurrent add or remove was lost"
    );
    assert_eq!(g.version, Version::new(1 + 16 * 30));
    let changes = store.changes_since(&tn, seq, usize::MAX).await.unwrap();
    assert_eq!(changes.len(), 16 * 30);
    let versions: BTreeSet<u64> = changes.iter().map(|c| c.version.get()).collect();
    assert_eq!(versions.len(), 16 * 30, "each delta has its own version");
}

/// 16 concurrent read-modify-write cycles (a PATCH without If-Match) on one user through the
/// versioned API, retrying on `VersionMismatch`: no update is lost.
pub async fn check_concurrent_read_modify_write(
    store: Arc<dyn ResourceStore>,
    fx: &Fixture,
    spawner: &impl Spawner,
) {
    let t0 = base_time();
    let tn = fx.tenant.clone();
    store
        .create(&tn, &fx.users, user_request("u", simple_user("rmw"), t0))
        .await
        .unwrap();
    let mut joins = Vec::new();
    for i in 0..16 {
        let (store, tn, users) = (Arc::clone(&store), tn.clone(), Arc::clone(&fx.users));
        joins.push(spawner.spawn(Box::pin(async move {
            for _attempt in 0..1000 {
                let cur = store.get(&tn, &users, &"u".into(), false).await.unwrap();
                let mut doc = cur.doc.clone();
                let list = doc
                    .as_object_mut()
                    .unwrap()
                    .entry("entitlements")
                    .or_insert_with(|| json!([]));
                list.as_array_mut()
                    .unwrap()
                    .push(json!({"value": format!("e{i}")}));
                let mut req = replace_request(doc, Some(cur.version), t0);
                req.kind = UpdateKind::Patch;
                match store.update(&tn, &users, &"u".into(), req).await {
                    Ok(_) => return,
                    Err(StoreError::VersionMismatch { .. }) => {
                        std::thread::yield_now();
                        continue;
                    }
                    Err(e) => panic!("rmw: {e}"),
                }
            }
            panic!("task {i} never won the race");
        })));
    }
    for j in joins {
        j.await;
    }
    let u = store.get(&tn, &fx.users, &"u".into(), false).await.unwrap();
    let got: BTreeSet<String> = u.doc["entitlements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["value"].as_str().unwrap().to_owned())
        .collect();
    let want: BTreeSet<String> = (0..16).map(|i| format!("e{i}")).collect();
    assert_eq!(got, want, "an update was lost");
    assert_eq!(u.doc["entitlements"].as_array().unwrap().len(), 16);
    assert_eq!(u.version, Version::new(17));
}
