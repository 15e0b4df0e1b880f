//! End-to-end service benchmarks, in process, MemoryStore with 10,000 users loaded.
//! Issue targets: GET /Users/{id} ≤ 5 µs; GET /Users?filter=userName eq ≤ 8 µs; POST a
//! typical Okta user ≤ 25 µs; an Entra 5-op PATCH ≤ 20 µs.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use http::Request;
use scimkit::auth::Tenants;
use scimkit::service::ScimService;
use scimkit::store::MemoryStore;
use scimkit::{Settings, TenantId};
use serde_json::json;

struct Fixture {
    rt: tokio::runtime::Runtime,
    service: ScimService,
    auth: String,
    some_id: String,
    some_user_name: String,
}

fn okta_user(user_name: &str) -> serde_json::Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name,
        "name": {"givenName": "Isaac", "familyName": "Brock"},
        "emails": [{"primary": true, "value": user_name, "type": "work"}],
        "displayName": "Isaac Brock",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "password": "1mz050nq",
        "active": true
    })
}

fn request(
    method: &str,
    uri: &str,
    auth: &str,
    body: Option<&serde_json::Value>,
) -> Request<Bytes> {
    let mut b = Request::builder()
        .method(method)
        .uri(uri)
        .header("Authorization", auth);
    let bytes = match body {
        Some(v) => {
            b = b.header("Content-Type", "application/scim+json; charset=utf-8");
            Bytes::from(serde_json::to_vec(v).unwrap())
        }
        None => Bytes::new(),
    };
    b.body(bytes).unwrap()
}

fn fixture() -> Fixture {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (service, auth, some_id, some_user_name) = rt.block_on(async {
        let tenants = Tenants::in_memory();
        let t = TenantId::new("acme").unwrap();
        tenants
            .create_tenant(t.clone(), "Acme", Settings::default())
            .await
            .unwrap();
        let (_, token) = tenants.issue_token(&t, "bench", None).await.unwrap();
        let service = ScimService::builder(
            "https://app.example.com/scim/v2",
            Arc::new(MemoryStore::new()),
            Arc::clone(tenants.store()),
        )
        .build()
        .unwrap();
        let auth = format!("Bearer {}", token.expose_secret());
        let mut some_id = String::new();
        for i in 0..10_000 {
            let body = okta_user(&format!("user{i:05}@example.com"));
            let r = service
                .handle(request("POST", "/scim/v2/acme/Users", &auth, Some(&body)))
                .await;
            assert_eq!(r.status(), 201);
            if i == 5_000 {
                let v: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
                some_id = v["id"].as_str().unwrap().to_owned();
            }
        }
        (service, auth, some_id, "user05000@example.com".to_owned())
    });
    Fixture {
        rt,
        service,
        auth,
        some_id,
        some_user_name,
    }
}

fn bench_service(c: &mut Criterion) {
    let f = fixture();
    let mut g = c.benchmark_group("service");
    g.measurement_time(Duration::from_secs(3)).sample_size(30);

    let get_uri = format!("/scim/v2/acme/Users/{}", f.some_id);
    g.bench_function("GET /Users/{id}", |b| {
        b.iter(|| {
            let r =
                f.rt.block_on(f.service.handle(request("GET", &get_uri, &f.auth, None)));
            assert_eq!(r.status(), 200);
            black_box(r)
        })
    });

    let filter_uri = format!(
        "/scim/v2/acme/Users?filter=userName%20eq%20%22{}%22",
        f.some_user_name
    );
    g.bench_function("GET /Users?filter=userName eq", |b| {
        b.iter(|| {
            let r =
                f.rt.block_on(f.service.handle(request("GET", &filter_uri, &f.auth, None)));
            assert_eq!(r.status(), 200);
            black_box(r)
        })
    });

    let counter = AtomicUsize::new(0);
    g.bench_function("POST /Users (Okta)", |b| {
        b.iter(|| {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            let body = okta_user(&format!("new{n}@example.com"));
            let r = f.rt.block_on(f.service.handle(request(
                "POST",
                "/scim/v2/acme/Users",
                &f.auth,
                Some(&body),
            )));
            assert_eq!(r.status(), 201);
            black_box(r)
        })
    });

    let entra_patch = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "Replace", "path": "displayName", "value": "Isaac B."},
            {"op": "Replace", "path": "name.givenName", "value": "Isaac"},
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "isaac@example.com"},
            {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Sales"}
        ]
    });
    g.bench_function("PATCH /Users/{id} (Entra, 5 ops)", |b| {
        b.iter(|| {
            let r = f.rt.block_on(f.service.handle(request(
                "PATCH",
                &get_uri,
                &f.auth,
                Some(&entra_patch),
            )));
            assert_eq!(r.status(), 200);
            black_box(r)
        })
    });
    g.finish();
}

criterion_group!(benches, bench_service);
criterion_main!(benches);
