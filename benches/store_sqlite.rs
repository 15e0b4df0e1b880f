//! SqliteStore benchmarks on a real file (issue 7 targets, with 100,000 users loaded:
//! `userName eq` lookup ≤ 0.5 ms; a page of 100 users under a `co` filter sorted by userName
//! ≤ 150 ms; adding one member to a 100,000-member group ≤ 2 ms). Default durability
//! (`synchronous=FULL`: every commit is synced to disk). Issue 15: `count=1` sorted by
//! `emails.value` and `count=1` under `meta.location pr`, at 1,000 and 100,000 users.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::Utc;
use criterion::{criterion_group, criterion_main, Criterion};
use scimkit::resource::{MemberRef, MembershipDelta};
use scimkit::store::sqlite::SqliteStore;
use scimkit::store::testing::{self, group_request, user_request, Fixture};
use scimkit::store::{ListQuery, Pushdown, ResourceStore, UpdateKind, UpdateRequest};
use scimkit::{filter::Filter, resource::ResourceId};
use serde_json::{json, Value};

const USERS: usize = 100_000;
/// Users outside the big group, added to it one at a time.
const EXTRA: usize = 1_000;
/// Users of the small tenant.
const SMALL: usize = 1_000;

/// A user as Okta creates it, after normalisation.
fn okta_user(i: usize) -> Value {
    let given = ["Barbara", "James", "Olga", "Li", "Mary"][i % 5];
    let family = format!("Jensen{i}");
    let email = format!("user{i}@example.com");
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": email,
        "name": {"givenName": given, "familyName": family},
        "emails": [{"primary": true, "value": email, "type": "work"}],
        "displayName": format!("{given} {family}"),
        "locale": "en-US",
        "externalId": format!("00u{i:017}"),
        "active": true,
    })
}

fn user_id(i: usize) -> String {
    format!("2819c223-7f76-453a-919d-{i:012}")
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir: PathBuf = std::env::temp_dir().join(format!("scimkit-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fx = Fixture::new();
    let tn = fx.tenant.clone();
    let store = rt.block_on(async {
        let store = SqliteStore::open(dir.join("bench.db")).await.unwrap();
        let started = Instant::now();
        let now = Utc::now();
        for chunk in (0..USERS + EXTRA).collect::<Vec<_>>().chunks(10_000) {
            let reqs = chunk
                .iter()
                .map(|&i| user_request(&user_id(i), okta_user(i), now))
                .collect();
            store.create_many(&tn, &fx.users, reqs).await.unwrap();
        }
        let members: Vec<String> = (0..USERS).map(user_id).collect();
        let refs: Vec<&str> = members.iter().map(String::as_str).collect();
        store
            .create(
                &tn,
                &fx.groups,
                group_request("big", "Everyone", &refs, now),
            )
            .await
            .unwrap();
        eprintln!(
            "seeded {} users and a {USERS}-member group in {:.1?}",
            USERS + EXTRA,
            started.elapsed()
        );
        // A small tenant, for the same queries at 1,000 users.
        let reqs = (0..SMALL)
            .map(|i| user_request(&user_id(i), okta_user(i), now))
            .collect();
        store.create_many(&fx.other, &fx.users, reqs).await.unwrap();
        store
    });

    // Issue 15: queries that used to load the whole tenant, now answered in SQL.
    let mut g = c.benchmark_group("sqlite_bounded");
    g.sample_size(10).measurement_time(Duration::from_secs(3));
    let queries = testing::bounded_queries();
    for (tenant, size) in [(&fx.other, "1k"), (&tn, "100k")] {
        for (name, q) in &queries {
            let page = rt.block_on(store.list(tenant, &fx.users, q)).unwrap();
            assert_eq!(page.pushdown, Pushdown::Exact, "{name}");
            assert_eq!(page.resources.len(), 1, "{name}");
            g.bench_function(format!("{name} at {size} users"), |b| {
                b.iter(|| black_box(rt.block_on(store.list(tenant, &fx.users, q)).unwrap()))
            });
        }
    }
    g.finish();

    // Issue 16: a keyset page deep in the list costs about what the first costs.
    let mut g = c.benchmark_group("sqlite_cursor");
    g.sample_size(20).measurement_time(Duration::from_secs(4));
    let cursor = rt.block_on(testing::cursor_queries(&store, &tn, &fx.users, 99_900, 100));
    for (name, q) in &cursor {
        let page = rt.block_on(store.list(&tn, &fx.users, q)).unwrap();
        assert_eq!(page.pushdown, Pushdown::Exact, "{name}");
        assert_eq!(page.resources.len(), 100, "{name}");
        g.bench_function(name.as_str(), |b| {
            b.iter(|| black_box(rt.block_on(store.list(&tn, &fx.users, q)).unwrap()))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("sqlite_100k");
    g.sample_size(50).measurement_time(Duration::from_secs(10));

    let mut i = 0usize;
    g.bench_function("userName eq", |b| {
        b.iter(|| {
            i = (i + 7919) % USERS;
            let q = ListQuery {
                filter: Some(
                    Filter::parse(&format!(r#"userName eq "USER{i}@example.com""#)).unwrap(),
                ),
                ..ListQuery::default()
            };
            let page = rt.block_on(store.list(&tn, &fx.users, &q)).unwrap();
            assert_eq!(page.total_results, 1);
            black_box(page);
        })
    });

    let co = testing::sorted_by_user_name(r#"userName co "ser99""#, 100);
    g.bench_function("co page of 100 sorted by userName", |b| {
        b.iter(|| {
            let page = rt.block_on(store.list(&tn, &fx.users, &co)).unwrap();
            assert_eq!(page.pushdown, Pushdown::Exact);
            assert_eq!(page.resources.len(), 100);
            black_box(page);
        })
    });

    let group = ResourceId::new("big");
    let mut next = 0usize;
    g.bench_function("add one member to a 100k group", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                if next == EXTRA {
                    // Take the extra users out again (not timed).
                    let delta = MembershipDelta {
                        remove: (USERS..USERS + EXTRA).map(|k| user_id(k).into()).collect(),
                        ..MembershipDelta::default()
                    };
                    rt.block_on(store.update(&tn, &fx.groups, &group, members_only(delta)))
                        .unwrap();
                    next = 0;
                }
                let delta = MembershipDelta {
                    add: vec![MemberRef::new(user_id(USERS + next))],
                    ..MembershipDelta::default()
                };
                next += 1;
                let started = Instant::now();
                let r = rt.block_on(store.update(&tn, &fx.groups, &group, members_only(delta)));
                total += started.elapsed();
                black_box(r.unwrap());
            }
            total
        })
    });
    g.finish();
    rt.block_on(store.close());
    let _ = std::fs::remove_dir_all(&dir);
}

fn members_only(delta: MembershipDelta) -> UpdateRequest {
    UpdateRequest {
        expected_version: None,
        document: None,
        members: Some(delta),
        return_members: Some(usize::MAX),
        kind: UpdateKind::Patch,
        now: Utc::now(),
        actor: None,
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
