//! PostgreSQL store with 100,000 users: a `userName eq` lookup, a page of 100 under a `co`
//! filter sorted by `userName` (with the exact `totalResults`), and adding one member to a
//! 100,000-member group. Issue 15: `count=1` sorted by `emails.value` and `count=1` under
//! `meta.location pr`, at 1,000 and 100,000 users.
//!
//! The server is the test one (`SCIMKIT_POSTGRES_URL`, or a throw-away cluster started with
//! `initdb`/`pg_ctl`; see `scimkit::store::testing::postgres`). The users are seeded with one
//! `INSERT ... SELECT` in SQL (rows as the store writes them: ASCII documents, so SQL's
//! `lower` folds them as the store does); the measured operations go through the store.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};

use scimkit::filter::Filter;
use scimkit::resource::{MemberRef, MembershipDelta};
use scimkit::store::postgres::PostgresStore;
use scimkit::store::testing::{self, Fixture};
use scimkit::store::{ListQuery, Pushdown, ResourceStore, UpdateKind, UpdateRequest};

const USERS: i64 = 100_000;
/// Users of the small tenant.
const SMALL: i64 = 1_000;

const SEED: &str = r#"
INSERT INTO scimkit_resources (tenant, id, resource_type, version, created, last_modified,
    doc, doc_fold, user_name_fold, external_id, display_name_fold, display)
SELECT $1, 'u' || lpad(i::text, 6, '0'), 'User', 1, 1767225600000000000 + i,
    1767225600000000000 + i, d.doc, d.doc, d.un, 'ext-' || i, d.dn, d.dn
FROM generate_series(0, $2 - 1) AS i,
LATERAL (SELECT
    jsonb_build_object(
        'schemas', jsonb_build_array('urn:ietf:params:scim:schemas:core:2.0:User'),
        'userName', 'user' || i || '@example.com',
        'externalId', 'ext-' || i,
        'name', jsonb_build_object('givenName', 'given' || (i % 97), 'familyName', 'family' || (i % 89)),
        'displayName', 'given' || (i % 97) || ' family' || (i % 89),
        'active', i % 5 <> 0,
        'emails', jsonb_build_array(jsonb_build_object('value', 'user' || i || '@example.com', 'type', 'work', 'primary', true))
    ) AS doc,
    'user' || i || '@example.com' AS un,
    'given' || (i % 97) || ' family' || (i % 89) AS dn) AS d;
INSERT INTO scimkit_unique (tenant, resource_type, attribute, value_hash, id)
SELECT $1, 'User', 'userName', sha256(convert_to(user_name_fold, 'UTF8')), id
FROM scimkit_resources WHERE tenant = $1;
"#;

fn bench(c: &mut Criterion) {
    // The caller's thread drives the connections, as in a single-threaded service worker.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let Some(url) = rt.block_on(testing::postgres::fresh_database()) else {
        eprintln!("no PostgreSQL server: store_postgres benchmarks skipped");
        return;
    };
    let store = rt.block_on(PostgresStore::connect(&url)).unwrap();
    let fx = Fixture::new();
    let tenant = fx.tenant.clone();
    rt.block_on(async {
        let mut tx = store.pool().begin().await.unwrap();
        for stmt in SEED.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(stmt.to_owned())).bind(tenant.as_str());
            if stmt.contains("$2") {
                q = q.bind(USERS);
            }
            q.execute(&mut *tx).await.unwrap();
        }
        // A small tenant, for the same queries at 1,000 users.
        for stmt in SEED.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(stmt.to_owned())).bind(fx.other.as_str());
            if stmt.contains("$2") {
                q = q.bind(SMALL);
            }
            q.execute(&mut *tx).await.unwrap();
        }
        tx.commit().await.unwrap();
        // The group: every seeded user but the spare ones at the end.
        store
            .create(
                &tenant,
                &fx.groups,
                testing::group_request("big", "Big", &[], testing::base_time()),
            )
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO scimkit_members (tenant, group_id, member_id, member_fold) \
             SELECT $1, 'big', id, id FROM scimkit_resources \
             WHERE tenant = $1 AND resource_type = 'User' AND id < 'u099990'",
        )
        .bind(tenant.as_str())
        .execute(store.pool())
        .await
        .unwrap();
        // Seeded in SQL, not through the store: the per-type counts and the precomputed sort
        // keys the store keeps in its writes are computed here, as migrations 9 and 10 do.
        sqlx::query(
            "INSERT INTO scimkit_type_counts (tenant, resource_type, n) \
             SELECT tenant, resource_type, count(*) FROM scimkit_resources GROUP BY 1, 2 \
             ON CONFLICT (tenant, resource_type) DO UPDATE SET n = EXCLUDED.n",
        )
        .execute(store.pool())
        .await
        .unwrap();
        let started = std::time::Instant::now();
        for t in [&tenant, &fx.other] {
            store.rebuild_sort_keys(t, &fx.users).await.unwrap();
        }
        eprintln!(
            "sort keys of 101,000 users rebuilt in {:.1?}",
            started.elapsed()
        );
        // A steady state: statistics and the visibility map (index-only scans) up to date.
        sqlx::query("VACUUM ANALYZE")
            .execute(store.pool())
            .await
            .unwrap();
    });

    // Issue 15: queries that used to load the whole tenant, now answered in SQL.
    let mut g = c.benchmark_group("postgres_bounded");
    g.sample_size(10).measurement_time(Duration::from_secs(3));
    let queries = testing::bounded_queries();
    for (t, size) in [(&fx.other, "1k"), (&tenant, "100k")] {
        for (name, q) in &queries {
            let page = rt.block_on(store.list(t, &fx.users, q)).unwrap();
            assert_eq!(page.pushdown, Pushdown::Exact, "{name}");
            assert_eq!(page.resources.len(), 1, "{name}");
            g.bench_function(format!("{name} at {size} users"), |b| {
                b.iter(|| rt.block_on(store.list(t, &fx.users, q)).unwrap())
            });
        }
    }
    g.finish();

    // Issue 16: a keyset page deep in the list costs about what the first costs.
    let mut g = c.benchmark_group("postgres_cursor");
    g.sample_size(20).measurement_time(Duration::from_secs(4));
    let cursor = rt.block_on(testing::cursor_queries(
        &store, &tenant, &fx.users, 99_900, 100,
    ));
    for (name, q) in &cursor {
        let page = rt.block_on(store.list(&tenant, &fx.users, q)).unwrap();
        assert_eq!(page.pushdown, Pushdown::Exact, "{name}");
        assert_eq!(page.resources.len(), 100, "{name}");
        g.bench_function(name.as_str(), |b| {
            b.iter(|| black_box(rt.block_on(store.list(&tenant, &fx.users, q)).unwrap()))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("store_postgres_100k");
    g.sample_size(30).measurement_time(Duration::from_secs(5));

    let eq = ListQuery {
        filter: Some(Filter::parse(r#"userName eq "User54321@example.com""#).unwrap()),
        count: 100,
        ..ListQuery::default()
    };
    let page = rt.block_on(store.list(&tenant, &fx.users, &eq)).unwrap();
    assert_eq!((page.pushdown, page.total_results), (Pushdown::Exact, 1));
    g.bench_function("userName eq", |b| {
        b.iter(|| rt.block_on(store.list(&tenant, &fx.users, &eq)).unwrap())
    });

    let co = testing::sorted_by_user_name(r#"userName co "12""#, 100);
    let page = rt.block_on(store.list(&tenant, &fx.users, &co)).unwrap();
    assert_eq!(page.pushdown, Pushdown::Exact);
    assert_eq!(page.resources.len(), 100);
    eprintln!("`userName co \"12\"`: {} matches", page.total_results);
    g.bench_function("co page of 100 sorted by userName", |b| {
        b.iter(|| rt.block_on(store.list(&tenant, &fx.users, &co)).unwrap())
    });

    let delta = |add: bool| UpdateRequest {
        expected_version: None,
        document: None,
        members: Some(if add {
            MembershipDelta {
                add: vec![MemberRef::new("u099995")],
                ..MembershipDelta::default()
            }
        } else {
            MembershipDelta {
                remove: vec!["u099995".into()],
                ..MembershipDelta::default()
            }
        }),
        return_members: Some(usize::MAX),
        kind: UpdateKind::Patch,
        now: testing::base_time(),
        actor: None,
    };
    let total = rt
        .block_on(store.members(&tenant, &fx.groups, &"big".into(), 1, 1))
        .unwrap()
        .total_results;
    assert!(total >= 99_990, "{total}");
    g.bench_function("add one member to a 100k-member group", |b| {
        b.iter_batched(
            || {
                rt.block_on(store.update(&tenant, &fx.groups, &"big".into(), delta(false)))
                    .unwrap()
            },
            |_| {
                rt.block_on(store.update(&tenant, &fx.groups, &"big".into(), delta(true)))
                    .unwrap()
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
