//! The PostgreSQL store against a real server: the storage contract suite (with the
//! filter-equivalence corpus), the tenant store contract, an SQL-injection corpus, two
//! instances racing on one database, and migrations applied concurrently.
//!
//! The server: `SCIMKIT_POSTGRES_URL`, else a throw-away cluster (see
//! `scimkit::store::testing::postgres`); without either the tests say so and skip, unless
//! `SCIMKIT_REQUIRE_POSTGRES=1`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::json;

use scimkit::resource::{MemberRef, MembershipDelta};
use scimkit::store::postgres::PostgresStore;
use scimkit::store::testing::{
    self, base_time, generated_user, group_request, list_exact, simple_user, user_request, Fixture,
    TaskFuture,
};
use scimkit::store::{
    apply_query, ListQuery, Pushdown, ResourceStore, StoreError, UpdateKind, UpdateRequest,
};
use scimkit::{
    auth::TenantStore, auth::Tenants, error::ScimError, filter::Filter, tenant::TenantId,
};

fn spawner(task: TaskFuture) -> TaskFuture {
    let handle = tokio::spawn(task);
    Box::pin(async move { handle.await.expect("task panicked") })
}

async fn store() -> Option<PostgresStore> {
    testing::postgres::fresh_store().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn contract_suite() {
    let Some(first) = store().await else { return };
    drop(first);
    testing::run_contract_suite(
        || async { Arc::new(store().await.expect("server available")) as Arc<dyn ResourceStore> },
        spawner,
    )
    .await;
}

#[tokio::test]
async fn tenant_store_contract() {
    let Some(s) = store().await else { return };
    testing::check_tenant_store(&s).await;
}

#[tokio::test]
async fn idp_lookups_are_pushed_down_exactly() {
    let Some(s) = store().await else { return };
    let fx = Fixture::new();
    for i in 0..30 {
        s.create(
            &fx.tenant,
            &fx.users,
            user_request(&format!("u{i:05}"), generated_user(i), base_time()),
        )
        .await
        .unwrap();
    }
    s.create(
        &fx.tenant,
        &fx.groups,
        group_request("g", "G", &["u00001"], base_time()),
    )
    .await
    .unwrap();
    let exact = [
        r#"userName eq "USER7@example.com""#,
        r#"externalId eq "ext-4""#,
        r#"id eq "u00003""#,
        r#"userName co "1" and active eq true"#,
        r#"emails[type eq "work" and value co "smith"]"#,
        r#"not (title pr) or name.givenName sw "b""#,
        r#"meta.created gt "2026-01-01T00:00:05Z""#,
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "sales""#,
    ];
    for f in exact {
        let q = ListQuery {
            filter: Some(Filter::parse(f).unwrap()),
            ..ListQuery::default()
        };
        let page = s.list(&fx.tenant, &fx.users, &q).await.unwrap();
        assert_eq!(page.pushdown, Pushdown::Exact, "{f}");
    }
    let q = |f: &str| ListQuery {
        filter: Some(Filter::parse(f).unwrap()),
        ..ListQuery::default()
    };
    let p = s
        .list(&fx.tenant, &fx.groups, &q(r#"members[value eq "U00001"]"#))
        .await
        .unwrap();
    assert_eq!((p.pushdown, p.total_results), (Pushdown::Exact, 1));
    // Not translated exactly: a narrowing superset, with members for the evaluator.
    let p = s
        .list(&fx.tenant, &fx.groups, &q(r#"members.display sw "user""#))
        .await
        .unwrap();
    assert_ne!(p.pushdown, Pushdown::Exact);
    assert!(p.resources.iter().all(|r| r.members.is_some()));
}

/// Filter values and attribute names that try to break out of the SQL: every one gives a
/// clean answer, exactly the evaluator's, and changes nothing.
#[tokio::test]
async fn injection_corpus_changes_nothing_and_answers_exactly() {
    let Some(s) = store().await else { return };
    let fx = Fixture::new();
    let names = [
        "o'brien",
        "back\\slash",
        "per%cent",
        "under_score",
        "quote\"d",
        "ünïcödé",
        "semi;colon",
        "dollar$1",
        "💥emoji",
        "tab\there",
    ];
    for (i, n) in names.iter().enumerate() {
        let mut doc = simple_user(n);
        doc["title"] = json!(format!("{n} title"));
        s.create(
            &fx.tenant,
            &fx.users,
            user_request(&format!("u{i}"), doc, base_time()),
        )
        .await
        .unwrap();
    }
    let before = s.changes_since(&fx.tenant, 0, 1000).await.unwrap();
    let all = list_exact(&s, &fx.tenant, &fx.users, &ListQuery::default()).await;
    let values = [
        "'",
        "''",
        "o'brien",
        "' OR '1'='1",
        "'; DROP TABLE scimkit_resources; --",
        "\\",
        "back\\slash",
        "%",
        "_",
        "per%",
        "under_",
        "%'; --",
        "\"",
        "quote\"d",
        "\u{0}",
        "a\u{0}b",
        "o'brien\u{0}",
        "ÜNÏ",
        "💥",
        "$1",
        "\\x00",
        "\t",
        "E'\\047'",
    ];
    let mut filters: Vec<String> = Vec::new();
    for v in values {
        let lit = serde_json::to_string(v).unwrap();
        for op in ["eq", "ne", "co", "sw", "ew", "gt", "le"] {
            filters.push(format!("userName {op} {lit}"));
            filters.push(format!("title {op} {lit}"));
        }
        filters.push(format!("emails[value eq {lit}]"));
        filters.push(format!("externalId eq {lit}"));
        filters.push(format!("id eq {lit}"));
        filters.push(format!(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department co {lit}"
        ));
    }
    // Attribute names are validated by the parser; the unknown ones that parse never match.
    for name in [
        "nosuch",
        "x-y_z",
        "urn:evil:';--:userName",
        "name.given_Name'",
    ] {
        if let Ok(f) = Filter::parse(&format!("{name} eq \"x\"")) {
            filters.push(f.to_string());
        }
    }
    let mut checked = 0;
    for text in &filters {
        let filter = Filter::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let q = ListQuery {
            filter: Some(filter.clone()),
            ..ListQuery::default()
        };
        let got = s.list(&fx.tenant, &fx.users, &q).await;
        let got = match got {
            Ok(p) if p.pushdown == Pushdown::Exact => p,
            Ok(p) => apply_query(&fx.users, &q, p.resources).unwrap(),
            Err(e) => {
                let e = ScimError::from(e);
                assert_eq!(e.status().as_u16(), 400, "{text}: {e:?}");
                continue;
            }
        };
        let want = apply_query(&fx.users, &q, all.resources.clone()).unwrap();
        let ids = |p: &scimkit::store::Page| -> BTreeSet<String> {
            p.resources.iter().map(|r| r.id.to_string()).collect()
        };
        assert_eq!(ids(&got), ids(&want), "`{text}`");
        assert_eq!(got.total_results, want.total_results, "`{text}`");
        checked += 1;
    }
    assert!(checked > 300, "{checked}");
    let after = list_exact(&s, &fx.tenant, &fx.users, &ListQuery::default()).await;
    assert_eq!(after, all, "a filter changed the data");
    assert_eq!(s.changes_since(&fx.tenant, 0, 1000).await.unwrap(), before);
}

#[tokio::test]
async fn nul_characters_are_refused_cleanly() {
    let Some(s) = store().await else { return };
    let fx = Fixture::new();
    let mut doc = simple_user("nul");
    doc["title"] = json!("a\u{0}b");
    let err = s
        .create(&fx.tenant, &fx.users, user_request("u1", doc, base_time()))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidValue(_)), "{err:?}");
    let scim = ScimError::from(err);
    assert_eq!(scim.status().as_u16(), 400);
    assert!(!scim.detail().to_lowercase().contains("postgres"));
    assert!(s.changes_since(&fx.tenant, 0, 10).await.unwrap().is_empty());
    s.create(
        &fx.tenant,
        &fx.users,
        user_request("u1", simple_user("ok"), base_time()),
    )
    .await
    .unwrap();
    let nul_id = "u\u{0}1".into();
    assert!(matches!(
        s.get(&fx.tenant, &fx.users, &nul_id, false).await,
        Err(StoreError::NotFound { .. })
    ));
    s.create(
        &fx.tenant,
        &fx.groups,
        group_request("g", "G", &[], base_time()),
    )
    .await
    .unwrap();
    let bad = UpdateRequest {
        expected_version: None,
        document: None,
        members: Some(MembershipDelta {
            add: vec![MemberRef::new("u\u{0}1")],
            ..MembershipDelta::default()
        }),
        return_members: Some(usize::MAX),
        kind: UpdateKind::Patch,
        now: base_time(),
        actor: None,
    };
    assert!(matches!(
        s.update(&fx.tenant, &fx.groups, &"g".into(), bad).await,
        Err(StoreError::InvalidMember(_))
    ));
}

/// Two store handles with separate pools on one database, as two service instances.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_race() {
    let Some(url) = testing::postgres::fresh_database().await else {
        return;
    };
    let a = Arc::new(PostgresStore::connect(&url).await.unwrap());
    let b = Arc::new(PostgresStore::connect(&url).await.unwrap());
    let fx = Fixture::new();

    // The same userName, created at once through both: one winner.
    for round in 0..20 {
        let name = format!("race{round}@example.com");
        let mut joins = Vec::new();
        for (i, s) in [Arc::clone(&a), Arc::clone(&b)].into_iter().enumerate() {
            let (tn, users, name) = (fx.tenant.clone(), Arc::clone(&fx.users), name.clone());
            joins.push(tokio::spawn(async move {
                s.create(
                    &tn,
                    &users,
                    user_request(&format!("r{round}-{i}"), simple_user(&name), base_time()),
                )
                .await
            }));
        }
        let mut ok = 0;
        for j in joins {
            match j.await.unwrap() {
                Ok(_) => ok += 1,
                Err(StoreError::Conflict { attribute }) => assert_eq!(attribute, "userName"),
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        assert_eq!(ok, 1, "round {round}: exactly one create wins");
    }

    // 50 members each, added concurrently through both instances to one group.
    for i in 0..100 {
        a.create(
            &fx.tenant,
            &fx.users,
            user_request(
                &format!("m{i:03}"),
                simple_user(&format!("m{i}")),
                base_time(),
            ),
        )
        .await
        .unwrap();
    }
    a.create(
        &fx.tenant,
        &fx.groups,
        group_request("g", "G", &[], base_time()),
    )
    .await
    .unwrap();
    let mut joins = Vec::new();
    for i in 0..100 {
        let s = if i % 2 == 0 {
            Arc::clone(&a)
        } else {
            Arc::clone(&b)
        };
        let (tn, groups) = (fx.tenant.clone(), Arc::clone(&fx.groups));
        joins.push(tokio::spawn(async move {
            let req = UpdateRequest {
                expected_version: None,
                document: None,
                members: Some(MembershipDelta {
                    add: vec![MemberRef::new(format!("m{i:03}"))],
                    ..MembershipDelta::default()
                }),
                return_members: Some(usize::MAX),
                kind: UpdateKind::Patch,
                now: base_time(),
                actor: None,
            };
            s.update(&tn, &groups, &"g".into(), req).await.unwrap();
        }));
    }
    for j in joins {
        j.await.unwrap();
    }
    let g = b
        .get(&fx.tenant, &fx.groups, &"g".into(), true)
        .await
        .unwrap();
    assert_eq!(g.members.unwrap().len(), 100);
    assert_eq!(g.version.get(), 101);

    // A stale version through the other instance: a clean mismatch.
    let v = a
        .get(&fx.tenant, &fx.groups, &"g".into(), false)
        .await
        .unwrap()
        .version;
    let stale = UpdateRequest {
        expected_version: Some(scimkit::resource::Version::new(v.get() - 1)),
        document: None,
        members: Some(MembershipDelta {
            clear: true,
            ..MembershipDelta::default()
        }),
        return_members: Some(usize::MAX),
        kind: UpdateKind::Patch,
        now: base_time(),
        actor: None,
    };
    assert!(matches!(
        b.update(&fx.tenant, &fx.groups, &"g".into(), stale).await,
        Err(StoreError::VersionMismatch { current }) if current == v
    ));
    // The feed has no gaps and no duplicates across the instances.
    let feed = a.changes_since(&fx.tenant, 0, 10_000).await.unwrap();
    let seqs: Vec<u64> = feed.iter().map(|c| c.seq).collect();
    assert_eq!(seqs, (1..=feed.len() as u64).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrations_are_idempotent_under_concurrent_starts() {
    let Some(url) = testing::postgres::fresh_database().await else {
        return;
    };
    let mut joins = Vec::new();
    for _ in 0..4 {
        let url = url.clone();
        joins.push(tokio::spawn(
            async move { PostgresStore::connect(&url).await },
        ));
    }
    let mut stores = Vec::new();
    for j in joins {
        stores.push(j.await.unwrap().expect("concurrent connect"));
    }
    let again = PostgresStore::connect(&url).await.expect("reconnect");
    let versions: Vec<i32> =
        sqlx::query_scalar("SELECT version FROM scimkit_migrations ORDER BY version")
            .fetch_all(again.pool())
            .await
            .unwrap();
    assert_eq!(
        versions,
        vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        "each migration applied once"
    );
    // Migration 5: statistics refreshed after a fixed number of changed rows, so that a
    // tenant loaded into a large shared table is planned with its real size.
    let options: Vec<String> = sqlx::query_scalar(
        "SELECT unnest(reloptions) FROM pg_class WHERE relname = 'scimkit_resources'",
    )
    .fetch_all(again.pool())
    .await
    .unwrap();
    assert!(
        options.contains(&"autovacuum_analyze_scale_factor=0.0".to_owned())
            && options.contains(&"autovacuum_analyze_threshold=10000".to_owned()),
        "{options:?}"
    );
    let fx = Fixture::new();
    stores[0]
        .create(
            &fx.tenant,
            &fx.users,
            user_request("u", simple_user("a"), base_time()),
        )
        .await
        .unwrap();
    assert!(again
        .get(&fx.tenant, &fx.users, &"u".into(), false)
        .await
        .is_ok());
}

/// Verifies `secret` for `tenant` through `verifier`.
async fn accepts(
    verifier: &scimkit::auth::BearerTokenVerifier,
    tenant: &TenantId,
    secret: &str,
) -> bool {
    use scimkit::auth::TokenVerifier as _;
    let header = http::HeaderValue::from_str(&format!("Bearer {secret}")).unwrap();
    verifier.verify(tenant, Some(&header)).await.is_ok()
}

/// Polls `cond` every 20 ms until it holds, for at most `bound`.
async fn within<F, Fut>(bound: std::time::Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + bound;
    loop {
        if cond().await {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Creates users through `store` until `heard` receives a notification (at most 30 s):
/// the listener of the other instance may still be connecting.
async fn write_until_heard(
    store: &PostgresStore,
    fx: &Fixture,
    heard: &mut tokio::sync::mpsc::UnboundedReceiver<(TenantId, u64)>,
) -> Option<(TenantId, u64)> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        let id = format!("w{}", uuid::Uuid::new_v4().simple());
        store
            .create(
                &fx.tenant,
                &fx.users,
                user_request(&id, simple_user(&format!("{id}@x")), base_time()),
            )
            .await
            .unwrap();
        let got = tokio::time::timeout(std::time::Duration::from_millis(200), heard.recv()).await;
        if let Ok(Some(n)) = got {
            return Some(n);
        }
    }
    None
}

/// Two instances on one database. Authentication reads come from each instance's cache; a
/// revocation, an expiry and "SCIM off" made through one take effect at once in it, and in
/// the other as soon as its `listen` hears the notification (its cache would otherwise keep
/// the records for ten minutes here); an instance that does not listen sees them when its
/// cache expires. A resource write through one wakes the other's change notifier and
/// subscriptions, also after the other's listening connection was cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_hear_each_others_changes() {
    let Some(url) = testing::postgres::fresh_database().await else {
        return;
    };
    let long = std::time::Duration::from_secs(600);
    let bound = std::time::Duration::from_secs(10);
    let (tx, mut heard) = tokio::sync::mpsc::unbounded_channel::<(TenantId, u64)>();
    let a = PostgresStore::connect(&url).await.unwrap();
    let b = PostgresStore::connect(&url)
        .await
        .unwrap()
        .with_tenant_cache(long, 100)
        .with_notifier(Arc::new(move |t: &TenantId, seq: u64| {
            let _ = tx.send((t.clone(), seq));
        }));
    let c = PostgresStore::connect(&url)
        .await
        .unwrap()
        .with_tenant_cache(std::time::Duration::from_millis(500), 100);
    let listener = tokio::spawn(b.listen());
    let clock: Arc<dyn scimkit::auth::Clock> = Arc::new(scimkit::auth::SystemClock);
    let admin = Tenants::new(Arc::new(a.clone()), Arc::clone(&clock));
    let verifier_a = admin.verifier();
    let verifier_b =
        scimkit::auth::BearerTokenVerifier::new(Arc::new(b.clone()), Arc::clone(&clock));
    let verifier_c =
        scimkit::auth::BearerTokenVerifier::new(Arc::new(c.clone()), Arc::clone(&clock));
    let fx = Fixture::new();
    let tn = fx.tenant.clone();
    admin
        .create_tenant(tn.clone(), "Okta", scimkit::settings::Settings::default())
        .await
        .unwrap();

    // A write through `a` wakes `b` (once its listener is up: writes until one is heard):
    // its notifier, and its subscriptions (taken from a clone, before the writes).
    let mut subscription = b.clone().subscribe().expect("a subscription");
    let first = write_until_heard(&a, &fx, &mut heard).await;
    let (who, seq) = first.expect("b hears a's writes");
    assert_eq!(who, tn);
    tokio::time::timeout(bound, subscription.changed())
        .await
        .expect("b's subscription is woken by a's write");
    assert!(
        subscription.head(&tn).is_some_and(|h| h >= seq),
        "the subscription publishes the head b heard"
    );
    assert_eq!(
        a.head_seq(&tn).await.unwrap(),
        b.head_seq(&tn).await.unwrap()
    );
    let changes = b.changes_since(&tn, seq - 1, 10).await.unwrap();
    assert_eq!(changes.first().map(|c| c.seq), Some(seq));
    while heard.try_recv().is_ok() {}

    // Revocation: at once through `a`, at the notification in `b`, at expiry in `c`.
    let (rec, secret) = admin.issue_token(&tn, "okta", None).await.unwrap();
    let secret = secret.expose_secret().to_owned();
    for v in [&verifier_a, &verifier_b, &verifier_c] {
        assert!(accepts(v, &tn, &secret).await);
    }
    admin.revoke_token(&tn, &rec.id).await.unwrap();
    assert!(
        !accepts(&verifier_a, &tn, &secret).await,
        "at once where revoked"
    );
    assert!(
        within(bound, || async {
            !accepts(&verifier_b, &tn, &secret).await
        })
        .await,
        "b drops its cached record when notified"
    );
    assert!(
        within(bound, || async {
            !accepts(&verifier_c, &tn, &secret).await
        })
        .await,
        "c, which does not listen, reads the record again after its 500 ms"
    );

    // Expiry set in the past, and SCIM switched off, reach `b` the same way.
    let (rec, secret) = admin.issue_token(&tn, "entra", None).await.unwrap();
    let secret = secret.expose_secret().to_owned();
    assert!(accepts(&verifier_b, &tn, &secret).await);
    a.set_token_expiry(
        &tn,
        &rec.id,
        Some(chrono::Utc::now() - chrono::Duration::seconds(1)),
    )
    .await
    .unwrap();
    assert!(
        within(bound, || async {
            !accepts(&verifier_b, &tn, &secret).await
        })
        .await
    );
    let (_, secret) = admin.issue_token(&tn, "onelogin", None).await.unwrap();
    let secret = secret.expose_secret().to_owned();
    assert!(accepts(&verifier_b, &tn, &secret).await);
    admin.set_scim_enabled(&tn, false).await.unwrap();
    assert!(!accepts(&verifier_a, &tn, &secret).await);
    assert!(
        within(bound, || async {
            !accepts(&verifier_b, &tn, &secret).await
        })
        .await
    );
    admin.set_scim_enabled(&tn, true).await.unwrap();
    assert!(within(bound, || accepts(&verifier_b, &tn, &secret)).await);

    // Cut b's listening connection: it reconnects and hears writes again.
    let cut: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_one(a.pool())
    .await
    .unwrap();
    assert_eq!(cut, 1, "one listening connection");
    let again = write_until_heard(&a, &fx, &mut heard).await;
    assert_eq!(
        again.map(|(t, _)| t),
        Some(tn.clone()),
        "heard after reconnecting"
    );
    listener.abort();
}

/// The fold the store used before migration 3: `str::to_lowercase`.
fn old_fold(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::String(s) => Value::String(s.to_lowercase()),
        Value::Array(items) => Value::Array(items.iter().map(old_fold).collect()),
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, x)| (k.clone(), old_fold(x))).collect())
        }
        other => other.clone(),
    }
}

/// Migration 3: a database whose folded copies were written with the old fold is re-folded
/// at start-up (in batches, from the documents), and then answers by Unicode full case
/// folding, exactly in SQL, with uniqueness to match.
#[tokio::test]
async fn migration_3_refolds_values_written_with_the_old_fold() {
    use sha2::{Digest, Sha256};
    let Some(url) = testing::postgres::fresh_database().await else {
        return;
    };
    let fx = Fixture::new();
    let tn = &fx.tenant;
    let users = 230; // more than one batch (200)
    {
        let s = PostgresStore::connect(&url).await.unwrap();
        let doc = json!({"schemas": [scimkit::schema::USER_SCHEMA], "userName": "Straße@x.test",
                         "displayName": "Οδυσσευς", "emails": [{"value": "ΟΔΟΣ@x.test"}]});
        s.create(tn, &fx.users, user_request("strasse", doc, base_time()))
            .await
            .unwrap();
        s.create(
            tn,
            &fx.users,
            user_request("Ωmega", simple_user("omega"), base_time()),
        )
        .await
        .unwrap();
        for i in 0..users {
            s.create(
                tn,
                &fx.users,
                user_request(
                    &format!("u{i}"),
                    simple_user(&format!("ßuser{i}")),
                    base_time(),
                ),
            )
            .await
            .unwrap();
        }
        s.create(
            tn,
            &fx.groups,
            group_request("g1", "Größe", &["Ωmega"], base_time()),
        )
        .await
        .unwrap();
        // Write every folded copy the old way and forget migration 3.
        let pool = s.pool();
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT id, doc::text FROM scimkit_resources")
                .fetch_all(pool)
                .await
                .unwrap();
        for (id, doc) in rows {
            let doc: serde_json::Value = serde_json::from_str(&doc).unwrap();
            let low = |k: &str| doc.get(k).and_then(|v| v.as_str()).map(str::to_lowercase);
            sqlx::query(
                "UPDATE scimkit_resources SET doc_fold = $1::jsonb, user_name_fold = $2, \
                 display_name_fold = $3 WHERE id = $4",
            )
            .bind(old_fold(&doc).to_string())
            .bind(low("userName"))
            .bind(low("displayName"))
            .bind(&id)
            .execute(pool)
            .await
            .unwrap();
            let key = low("userName").or_else(|| low("displayName")).unwrap();
            sqlx::query("UPDATE scimkit_unique SET value_hash = $1 WHERE id = $2")
                .bind(Sha256::digest(key.as_bytes()).to_vec())
                .bind(&id)
                .execute(pool)
                .await
                .unwrap();
        }
        sqlx::query("UPDATE scimkit_members SET member_fold = $1")
            .bind("Ωmega".to_lowercase())
            .execute(pool)
            .await
            .unwrap();
        sqlx::query("DELETE FROM scimkit_migrations WHERE version = 3")
            .execute(pool)
            .await
            .unwrap();
        // With the old copies, the new fold misses: the database really is the old one.
        let q = ListQuery {
            filter: Some(Filter::parse(r#"userName eq "STRASSE@X.TEST""#).unwrap()),
            ..ListQuery::default()
        };
        assert!(s
            .list(tn, &fx.users, &q)
            .await
            .unwrap()
            .resources
            .is_empty());
    }

    let s = PostgresStore::connect(&url).await.unwrap();
    let (user_name, display_name, email): (String, String, String) = sqlx::query_as(
        "SELECT user_name_fold, display_name_fold, doc_fold #>> '{emails,0,value}' \
         FROM scimkit_resources WHERE id = 'strasse'",
    )
    .fetch_one(s.pool())
    .await
    .unwrap();
    assert_eq!(
        (user_name.as_str(), display_name.as_str(), email.as_str()),
        ("strasse@x.test", "οδυσσευσ", "οδοσ@x.test")
    );
    let refolded: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM scimkit_resources WHERE user_name_fold LIKE 'ssuser%' \
         AND doc_fold ->> 'userName' LIKE 'ssuser%'",
    )
    .fetch_one(s.pool())
    .await
    .unwrap();
    assert_eq!(refolded, users, "every batch was re-folded");
    let member: String = sqlx::query_scalar("SELECT member_fold FROM scimkit_members")
        .fetch_one(s.pool())
        .await
        .unwrap();
    assert_eq!(member, "ωmega");
    for (text, want) in [
        (r#"userName eq "STRASSE@X.TEST""#, &["strasse"][..]),
        (r#"displayName ew "ΕΥΣ""#, &["strasse"][..]),
        (r#"emails.value eq "ΟΔΟΣ@X.TEST""#, &["strasse"][..]),
        (r#"userName eq "SSUSER7""#, &["u7"][..]),
    ] {
        let q = ListQuery {
            filter: Some(Filter::parse(text).unwrap()),
            ..ListQuery::default()
        };
        let page = s.list(tn, &fx.users, &q).await.unwrap();
        assert_eq!(page.pushdown, Pushdown::Exact, "`{text}`");
        let got: Vec<&str> = page.resources.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(got, want, "`{text}`");
    }
    // The uniqueness keys were re-keyed: the new fold's duplicates clash.
    for (id, rt, doc) in [
        ("dup1", &fx.users, simple_user("STRASSE@x.test")),
        ("dup2", &fx.users, simple_user("SSUSER3")),
    ] {
        let dup = s.create(tn, rt, user_request(id, doc, base_time())).await;
        assert!(
            matches!(&dup, Err(StoreError::Conflict { attribute }) if attribute == "userName"),
            "{dup:?}"
        );
    }
    let dup = s
        .create(
            tn,
            &fx.groups,
            group_request("g2", "GRÖSSE", &[], base_time()),
        )
        .await;
    assert!(
        matches!(&dup, Err(StoreError::Conflict { attribute }) if attribute == "displayName"),
        "{dup:?}"
    );
    let versions: Vec<i32> =
        sqlx::query_scalar("SELECT version FROM scimkit_migrations ORDER BY version")
            .fetch_all(s.pool())
            .await
            .unwrap();
    assert_eq!(versions, vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
}

#[tokio::test]
async fn provisioning_log() {
    let Some(s) = store().await else { return };
    testing::check_provisioning_log(&s).await;
    // Text PostgreSQL cannot hold (NUL) is kept as a replacement character, not an error.
    use scimkit::{
        events::{LogFilter, Outcome, ProvisioningEvent},
        store::ProvisioningLog,
    };
    let t = scimkit::tenant::TenantId::new("log-nul").unwrap();
    let mut e = ProvisioningEvent::new(
        chrono::Utc::now(),
        Some(t.clone()),
        "POST",
        "/scim/v2/log-nul/Users",
        Outcome::success(201),
    );
    e.name = Some("a\0b".into());
    s.append(&[e]).await.unwrap();
    let page = s
        .query(&t, &LogFilter::all().text("a\0b"), None, 10)
        .await
        .unwrap();
    assert_eq!(page.events.len(), 1);
    assert_eq!(page.events[0].1.name.as_deref(), Some("a\u{fffd}b"));
}

/// The precomputed sort keys follow every write, and sorted pages agree with the engine.
#[tokio::test]
async fn sort_keys_follow_writes() {
    let Some(s) = store().await else { return };
    testing::check_sort_keys(&s, &Fixture::new()).await;
}

/// Migration 10 computes the keys of resources stored before it (here: a database whose keys
/// and markers are removed and the migration forgotten); a sorted page then reads them, and
/// the per-type count (migration 9) answers `totalResults` of an always-true filter.
#[tokio::test]
async fn migration_10_backfills_sort_keys() {
    use scimkit::filter::SortSpec;
    let Some(url) = testing::postgres::fresh_database().await else {
        return;
    };
    let fx = Fixture::new();
    let tn = &fx.tenant;
    let n = 1030; // more than one batch (1000)
    {
        let s = PostgresStore::connect(&url).await.unwrap();
        let reqs = (0..n)
            .map(|i| {
                testing::user_request(
                    &format!("u{i:04}"),
                    serde_json::json!({"schemas": [scimkit::schema::USER_SCHEMA],
                        "userName": format!("user{i}"),
                        "emails": [{"value": format!("{}@x", (i * 7919) % n)}]}),
                    testing::base_time(),
                )
            })
            .collect();
        s.create_many(tn, &fx.users, reqs).await.unwrap();
        for sql in [
            "DELETE FROM scimkit_sort_keys",
            "DELETE FROM scimkit_sort_key_sets",
            "DELETE FROM scimkit_migrations WHERE version = 10",
        ] {
            sqlx::query(sql).execute(s.pool()).await.unwrap();
        }
    }
    let s = PostgresStore::connect(&url).await.unwrap();
    let keys: i64 =
        sqlx::query_scalar("SELECT count(*) FROM scimkit_sort_keys WHERE path = '|emails|value'")
            .fetch_one(s.pool())
            .await
            .unwrap();
    assert_eq!(keys, n as i64, "every resource got its key back");
    let q = ListQuery {
        sort: Some(SortSpec::parse("emails.value", Some("descending")).unwrap()),
        start_index: 3,
        count: 4,
        ..ListQuery::default()
    };
    let all = s
        .list(
            tn,
            &fx.users,
            &ListQuery {
                count: n,
                ..ListQuery::default()
            },
        )
        .await
        .unwrap();
    let want = apply_query(&fx.users, &q, all.resources).unwrap();
    let got = s.list(tn, &fx.users, &q).await.unwrap();
    let ids = |p: &scimkit::store::Page| {
        p.resources
            .iter()
            .map(|r| r.id.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&got), ids(&want));
    assert_eq!(got.total_results, n);
    let q = ListQuery {
        filter: Some(Filter::parse("meta.location pr").unwrap()),
        count: 1,
        ..ListQuery::default()
    };
    assert_eq!(s.list(tn, &fx.users, &q).await.unwrap().total_results, n);
}

/// Reads run on the store's own read connections, which are handed back without a ping. When
/// the server drops them (a restart, an administrator, a proxy), a read may fail once per
/// connection; the connection it failed on is pinged before its next use, found dead and
/// replaced, so reads recover without a restart of the host.
#[tokio::test]
async fn reads_recover_after_the_server_drops_their_connections() {
    use scimkit::store::postgres::PostgresOptions;
    let Some(url) = testing::postgres::fresh_database().await else {
        return;
    };
    let readers = 2;
    let s = PostgresStore::connect_with(PostgresOptions::new(&url).read_connections(readers))
        .await
        .unwrap();
    let fx = Fixture::new();
    let tn = &fx.tenant;
    let created = s
        .create(
            tn,
            &fx.users,
            user_request("ada", simple_user("ada"), base_time()),
        )
        .await
        .unwrap();
    // Both read connections open: two reads at once.
    let (a, b) = tokio::join!(
        s.get(tn, &fx.users, &created.id, false),
        s.get(tn, &fx.users, &created.id, false)
    );
    a.unwrap();
    b.unwrap();

    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let cut: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(
        cut >= i64::from(readers),
        "the read connections were cut ({cut})"
    );

    // At most one failure per read connection, then every read succeeds.
    let mut failures = 0;
    let mut successes = 0;
    for _ in 0..50 {
        match s.get(tn, &fx.users, &created.id, false).await {
            Ok(r) => {
                assert_eq!(r.id, created.id);
                successes += 1;
            }
            Err(e) => {
                assert!(successes == 0, "a failure after reads recovered: {e}");
                failures += 1;
            }
        }
    }
    assert!(
        failures <= readers,
        "{failures} failed reads for {readers} connections"
    );
    assert_eq!(successes, 50 - failures);
    let listed = s.list(tn, &fx.users, &ListQuery::default()).await.unwrap();
    assert_eq!(listed.total_results, 1);
    s.close().await;
}
