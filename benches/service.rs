//! End-to-end service benchmarks, in process, MemoryStore with 10,000 users loaded.
//! Issue targets: GET /Users/{id} ≤ 5 µs; GET /Users?filter=userName eq ≤ 8 µs; POST a
//! typical Okta user ≤ 25 µs; an Entra 5-op PATCH ≤ 20 µs.
//! Membership (100,000 users): a one-member PATCH of a 100,000-member group ≤ 20 µs; a PUT
//! of a 10,000-member group with 100 changes ≤ 5 ms.
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
use scimkit::resource::UniqueKey;
use scimkit::resource::UnknownMembers;
use scimkit::service::ScimService;
use scimkit::store::{CreateRequest, MemoryStore, ResourceStore};
use scimkit::{resource::ResourceId, schema::SchemaRegistry, settings::Settings, tenant::TenantId};
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

/// A service over a MemoryStore holding `users` users (`u000000`...) created directly in the
/// store, and the `Authorization` header value.
fn membership_fixture(
    users: usize,
) -> (
    tokio::runtime::Runtime,
    ScimService,
    Arc<MemoryStore>,
    String,
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let store = Arc::new(MemoryStore::new());
    let (service, auth) = rt.block_on(async {
        let tenants = Tenants::in_memory();
        let t = TenantId::new("acme").unwrap();
        tenants
            .create_tenant(t.clone(), "Acme", Settings::default())
            .await
            .unwrap();
        let (_, token) = tenants.issue_token(&t, "bench", None).await.unwrap();
        let service = ScimService::builder(
            "https://app.example.com/scim/v2",
            store.clone() as Arc<dyn ResourceStore>,
            Arc::clone(tenants.store()),
        )
        .build()
        .unwrap();
        let registry = SchemaRegistry::default();
        let user_def = registry.user().unwrap();
        let now = chrono::Utc::now();
        let reqs: Vec<CreateRequest> = (0..users)
            .map(|i| CreateRequest {
                id: ResourceId::new(format!("u{i:06}")),
                doc: okta_user(&format!("user{i:06}@example.com")),
                unique_keys: vec![UniqueKey::new(
                    "userName",
                    format!("user{i:06}@example.com"),
                )],
                members: Vec::new(),
                unknown_members: UnknownMembers::Reject,
                now,
                actor: None,
            })
            .collect();
        store.create_many(&t, user_def, reqs).await.unwrap();
        (service, format!("Bearer {}", token.expose_secret()))
    });
    (rt, service, store, auth)
}

fn members_json(range: std::ops::Range<usize>) -> Vec<serde_json::Value> {
    range
        .map(|i| json!({"value": format!("u{i:06}")}))
        .collect()
}

fn bench_membership(c: &mut Criterion) {
    let (rt, service, _store, auth) = membership_fixture(110_000);
    let mut g = c.benchmark_group("membership");
    g.measurement_time(Duration::from_secs(3)).sample_size(30);

    // A 100,000-member group, created through the service (one POST).
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "All employees",
        "members": members_json(0..100_000),
    });
    let r =
        rt.block_on(service.handle(request("POST", "/scim/v2/acme/Groups", &auth, Some(&body))));
    assert_eq!(r.status(), 201);
    let v: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
    let big = format!("/scim/v2/acme/Groups/{}", v["id"].as_str().unwrap());
    // Entra's shapes: Add with a value list, Remove with a value list; one member each.
    let add = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Add", "path": "members", "value": [{"value": "u100000"}]}]
    });
    let remove = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Remove", "path": "members", "value": [{"value": "u100000"}]}]
    });
    let flip = AtomicUsize::new(0);
    g.bench_function("PATCH one member of a 100,000-member group", |b| {
        b.iter(|| {
            let body = if flip.fetch_add(1, Ordering::Relaxed).is_multiple_of(2) {
                &add
            } else {
                &remove
            };
            let r = rt.block_on(service.handle(request("PATCH", &big, &auth, Some(body))));
            assert_eq!(r.status(), 200);
            black_box(r)
        })
    });

    // A 10,000-member group replaced by PUT with 100 members changed each time.
    let put = |range: std::ops::Range<usize>| {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Engineering",
            "members": members_json(range),
        })
    };
    let (a, b_body) = (put(0..10_000), put(100..10_100));
    let r = rt.block_on(service.handle(request("POST", "/scim/v2/acme/Groups", &auth, Some(&a))));
    assert_eq!(r.status(), 201);
    let v: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
    let eng = format!("/scim/v2/acme/Groups/{}", v["id"].as_str().unwrap());
    let a_bytes = Bytes::from(serde_json::to_vec(&a).unwrap());
    let b_bytes = Bytes::from(serde_json::to_vec(&b_body).unwrap());
    let flip = AtomicUsize::new(0);
    let variants = [
        (
            "PUT a 10,000-member group, 100 changes, excludedAttributes=members",
            format!("{eng}?excludedAttributes=members"),
        ),
        ("PUT a 10,000-member group, 100 changes", eng.clone()),
    ];
    for (name, uri) in &variants {
        g.bench_function(*name, |b| {
            b.iter(|| {
                let body = if flip.fetch_add(1, Ordering::Relaxed).is_multiple_of(2) {
                    b_bytes.clone()
                } else {
                    a_bytes.clone()
                };
                let req = Request::builder()
                    .method("PUT")
                    .uri(uri)
                    .header("Authorization", &auth)
                    .header("Content-Type", "application/scim+json")
                    .body(body)
                    .unwrap();
                let r = rt.block_on(service.handle(req));
                assert_eq!(r.status(), 200);
                black_box(r)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_service, bench_membership);
criterion_main!(benches);
