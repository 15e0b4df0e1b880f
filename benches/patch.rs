//! PATCH engine benchmarks (issue 4 targets: Entra-style 5-op user PATCH ≤ 3 µs, one
//! `replace active` ≤ 400 ns). `apply` is measured on a pre-parsed request, as the service
//! parses once and may re-apply on a version race; parse + apply is measured too.
//! `apply` copies the document (its result is a new one); `apply_in_place` patches the
//! caller's copy, and its figures exclude making that copy (criterion's batched setup).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use scimkit::patch::{apply, apply_in_place, PatchRequest};
use scimkit::{schema::SchemaRegistry, settings::Settings};
use serde_json::{json, Value};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn entra_user() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "userName": "Test_User_ab6490ee@contoso.com",
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "active": true,
        "name": {"givenName": "Test", "familyName": "User", "formatted": "Test User"},
        "displayName": "Test User",
        "emails": [{"value": "Test_User_ab6490ee@contoso.com", "type": "work", "primary": true}],
        ENTERPRISE: {"department": "Sales"}
    })
}

fn entra_five_ops() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            {"op": "Replace", "path": "displayName", "value": "Test User2"},
            {"op": "Replace", "path": "name.givenName", "value": "Test2"},
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "Test_User_2@contoso.com"},
            {"op": "Add", "path": format!("{ENTERPRISE}:employeeNumber"), "value": "1234"},
            {"op": "Replace", "path": "active", "value": "False"}
        ]
    })
}

fn replace_active() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": false}]
    })
}

fn okta_membership() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            {"op": "remove", "path": "members[value eq \"00u1abcd\"]"},
            {"op": "add", "path": "members", "value": [{"value": "00u2efgh", "display": "jane@example.com"}]}
        ]
    })
}

fn bench(c: &mut Criterion) {
    let registry = SchemaRegistry::default();
    let user = registry.user().expect("built in");
    let group = registry.group().expect("built in");
    let settings = Settings::default();
    let doc = entra_user();

    let five = entra_five_ops();
    let five_req = PatchRequest::from_json(&five, &settings).unwrap();
    assert!(apply(user, &doc, &five_req, &settings).unwrap().changed);
    c.bench_function("patch/apply entra 5-op user", |b| {
        b.iter(|| apply(user, black_box(&doc), black_box(&five_req), &settings).unwrap())
    });
    c.bench_function("patch/parse+apply entra 5-op user", |b| {
        b.iter(|| {
            let req = PatchRequest::from_json(black_box(&five), &settings).unwrap();
            apply(user, black_box(&doc), &req, &settings).unwrap()
        })
    });

    c.bench_function("patch/apply_in_place entra 5-op user", |b| {
        b.iter_batched_ref(
            || doc.clone(),
            |d| apply_in_place(user, d, black_box(&five_req), &settings).unwrap(),
            criterion::BatchSize::SmallInput,
        )
    });

    let active = replace_active();
    let active_req = PatchRequest::from_json(&active, &settings).unwrap();
    c.bench_function("patch/apply replace active", |b| {
        b.iter(|| apply(user, black_box(&doc), black_box(&active_req), &settings).unwrap())
    });
    c.bench_function("patch/parse+apply replace active", |b| {
        b.iter(|| {
            let req = PatchRequest::from_json(black_box(&active), &settings).unwrap();
            apply(user, black_box(&doc), &req, &settings).unwrap()
        })
    });

    c.bench_function("patch/apply_in_place replace active", |b| {
        b.iter_batched_ref(
            || doc.clone(),
            |d| apply_in_place(user, d, black_box(&active_req), &settings).unwrap(),
            criterion::BatchSize::SmallInput,
        )
    });

    let group_doc = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Engineering"});
    let members = okta_membership();
    let members_req = PatchRequest::from_json(&members, &settings).unwrap();
    c.bench_function("patch/apply okta membership (delta)", |b| {
        b.iter(|| {
            apply(
                group,
                black_box(&group_doc),
                black_box(&members_req),
                &settings,
            )
            .unwrap()
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(30);
    targets = bench
}
criterion_main!(benches);
