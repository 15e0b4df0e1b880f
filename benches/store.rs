//! MemoryStore benchmarks (issue targets, with 100,000 users loaded: `userName eq` lookup
//! ≤ 2 µs; adding one member to a 100,000-member group ≤ 20 µs; a page of 100 users under
//! `userName sw "user1"` sorted by userName ≤ 5 ms; resident memory ≤ 1.5 KB per user).
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use chrono::Utc;
use criterion::{criterion_group, criterion_main, Criterion};
use scimkit::resource::{MemberRef, MembershipDelta};
use scimkit::store::testing::{self, group_request, user_request, Fixture};
use scimkit::store::{ListQuery, MemoryStore, ResourceStore, UpdateKind, UpdateRequest};
use scimkit::{filter::Filter, resource::ResourceId};
use serde_json::{json, Value};

const USERS: usize = 100_000;
/// Users outside the big group, added to it one at a time.
const EXTRA: usize = 1_000;

struct NoopWake;
impl Wake for NoopWake {
    fn wake(self: Arc<Self>) {}
}

/// MemoryStore futures never wait: poll until ready without a runtime.
fn run<F: Future>(f: F) -> F::Output {
    let waker = Waker::from(Arc::new(NoopWake));
    let mut cx = Context::from_waker(&waker);
    let mut f = pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}

/// A user as Okta creates it (IDP-QUIRKS.md, Okta §4), after normalisation: `password` and
/// the read-only `groups` dropped, `id`/`meta` kept outside the document.
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

fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn load(store: &MemoryStore, fx: &Fixture, n: usize) {
    let now = Utc::now();
    for i in 0..n {
        run(store.create(
            &fx.tenant,
            &fx.users,
            user_request(&user_id(i), okta_user(i), now),
        ))
        .unwrap();
    }
}

fn memory_per_user(fx: &Fixture) {
    let before = rss_bytes();
    let store = MemoryStore::new();
    load(&store, fx, USERS);
    let after = rss_bytes();
    if let (Some(b), Some(a)) = (before, after) {
        let per_user = a.saturating_sub(b) as f64 / USERS as f64;
        println!(
            "resident memory for {USERS} Okta-shaped users: {:.1} MiB, {per_user:.0} bytes/user \
             (target ≤ 1536; includes indexes and the change feed)",
            a.saturating_sub(b) as f64 / (1024.0 * 1024.0)
        );
    }
    drop(store);
}

fn bench(c: &mut Criterion) {
    let fx = Fixture::new();
    memory_per_user(&fx);

    let store = MemoryStore::new();
    load(&store, &fx, USERS + EXTRA);
    let members: Vec<String> = (0..USERS).map(user_id).collect();
    let refs: Vec<&str> = members.iter().map(String::as_str).collect();
    run(store.create(
        &fx.tenant,
        &fx.groups,
        group_request("big", "Everyone", &refs, Utc::now()),
    ))
    .unwrap();

    let mut g = c.benchmark_group("store");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(30);

    let eq = ListQuery {
        filter: Some(Filter::parse(r#"userName eq "USER77777@example.com""#).unwrap()),
        start_index: 1,
        count: 100,
        ..ListQuery::default()
    };
    g.bench_function("userName eq lookup (100k users)", |b| {
        b.iter(|| {
            let p = run(store.list(&fx.tenant, &fx.users, black_box(&eq))).unwrap();
            assert_eq!(p.total_results, 1);
            p
        })
    });

    let big: ResourceId = "big".into();
    g.bench_function("add 1 member to a 100k-member group", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for k in 0..iters {
                let m = ResourceId::new(user_id(USERS + (k as usize % EXTRA)));
                let add = UpdateRequest {
                    expected_version: None,
                    document: None,
                    members: Some(MembershipDelta {
                        add: vec![MemberRef::new(m.clone())],
                        ..MembershipDelta::default()
                    }),
                    return_members: Some(usize::MAX),
                    kind: UpdateKind::Patch,
                    now: Utc::now(),
                    actor: None,
                };
                let start = Instant::now();
                black_box(run(store.update(&fx.tenant, &fx.groups, &big, add)).unwrap());
                spent += start.elapsed();
                let remove = UpdateRequest {
                    expected_version: None,
                    document: None,
                    members: Some(MembershipDelta {
                        remove: vec![m],
                        ..MembershipDelta::default()
                    }),
                    return_members: Some(usize::MAX),
                    kind: UpdateKind::Patch,
                    now: Utc::now(),
                    actor: None,
                };
                run(store.update(&fx.tenant, &fx.groups, &big, remove)).unwrap();
            }
            spent
        })
    });

    let page = testing::sorted_by_user_name(r#"userName sw "user1""#, 100);
    g.bench_function("page of 100 under userName sw \"user1\" sorted", |b| {
        b.iter(|| {
            let p = run(store.list(&fx.tenant, &fx.users, black_box(&page))).unwrap();
            assert_eq!(p.resources.len(), 100);
            p
        })
    });

    let scan = ListQuery {
        filter: Some(Filter::parse(r#"name.familyName eq "Jensen77777""#).unwrap()),
        start_index: 1,
        count: 100,
        ..ListQuery::default()
    };
    g.bench_function("unindexed eq (full scan of 101k users)", |b| {
        b.iter(|| run(store.list(&fx.tenant, &fx.users, black_box(&scan))).unwrap())
    });
    let eq0 = ListQuery {
        count: 0,
        ..eq.clone()
    };
    g.bench_function("micro: eq lookup, count 0", |b| {
        b.iter(|| run(store.list(&fx.tenant, &fx.users, black_box(&eq0))).unwrap())
    });
    let id = ResourceId::new(user_id(77_777));
    g.bench_function("micro: get by id", |b| {
        b.iter(|| run(store.get(&fx.tenant, &fx.users, black_box(&id), false)).unwrap())
    });
    let doc = okta_user(77_777);
    g.bench_function("micro: clone one user Value", |b| {
        b.iter(|| black_box(&doc).clone())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
