//! Bearer token verification cost (issue 5 target: <= 2 us per request, hash + lookup).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use chrono::DateTime;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use http::HeaderValue;
use scimkit::auth::{
    hash_token, parse_bearer, ManualClock, MemoryTenantStore, Tenants, TokenSecret, TokenVerifier,
};
use scimkit::{settings::Settings, tenant::TenantId};

/// Polls a future that never waits on I/O (the memory store never does) to completion,
/// so the figure is the verifier's own cost, not an executor's.
fn block_on<F: Future>(fut: F) -> F::Output {
    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    let waker = Waker::from(Arc::new(Noop));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

fn verify(c: &mut Criterion) {
    let clock = Arc::new(ManualClock::new(
        DateTime::from_timestamp(1_750_000_000, 0).unwrap(),
    ));
    let tenants = Tenants::new(Arc::new(MemoryTenantStore::new()), clock);
    // A realistic store: 1,000 tenants with 3 tokens each.
    let mut probe = None;
    for i in 0..1000 {
        let id = TenantId::new(format!("tenant-{i}")).unwrap();
        block_on(tenants.create_tenant(id.clone(), "bench", Settings::default())).unwrap();
        for _ in 0..3 {
            let (_, secret) = block_on(tenants.issue_token(&id, "bench", None)).unwrap();
            if i == 500 {
                probe = Some((id.clone(), secret));
            }
        }
    }
    let (tenant, secret) = probe.unwrap();
    let header = HeaderValue::from_str(&format!("Bearer {}", secret.expose_secret())).unwrap();
    let unknown = TokenSecret::generate().unwrap();
    let bad = HeaderValue::from_str(&format!("Bearer {}", unknown.expose_secret())).unwrap();
    let verifier = tenants.verifier();
    let dyn_verifier: Arc<dyn TokenVerifier> = Arc::new(tenants.verifier());
    // The first call records last_used; the clock is frozen, so no later call writes.
    block_on(verifier.verify(&tenant, Some(&header))).unwrap();

    let mut g = c.benchmark_group("auth");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(30);
    g.bench_function("verify_valid", |b| {
        b.iter(|| block_on(verifier.verify(black_box(&tenant), Some(black_box(&header)))))
    });
    g.bench_function("verify_valid_dyn", |b| {
        b.iter(|| block_on(dyn_verifier.verify(black_box(&tenant), Some(black_box(&header)))))
    });
    g.bench_function("verify_unknown_token", |b| {
        b.iter(|| block_on(verifier.verify(black_box(&tenant), Some(black_box(&bad)))))
    });
    g.bench_function("verify_malformed", |b| {
        let h = HeaderValue::from_static("Basic YWxhZGRpbjpvcGVuc2VzYW1l");
        b.iter(|| block_on(verifier.verify(black_box(&tenant), Some(black_box(&h)))))
    });
    g.bench_function("parse_and_hash_only", |b| {
        b.iter(|| hash_token(parse_bearer(black_box(header.as_bytes())).unwrap()))
    });
    g.bench_function("verify_valid_tokio_current_thread", |b| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        b.iter(|| rt.block_on(verifier.verify(black_box(&tenant), Some(black_box(&header)))))
    });
    g.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);
