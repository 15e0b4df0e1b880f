//! Filter engine benchmarks (issue targets: simple parse ≤ 250 ns, complex parse ≤ 2 µs,
//! evaluating the simple filter over 1,000 users ≤ 40 µs, the complex one ≤ 400 µs).
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use scimkit::filter::{fold_case, sort_resources, SortSpec};
use scimkit::{filter::Filter, schema::SchemaRegistry};
use serde_json::{json, Value};

const SIMPLE: &str = r#"userName eq "bjensen""#;
const COMPLEX: &str = r#"userName sw "j" and (emails[type eq "work" and value co "@example.com"] or not (title pr)) and meta.lastModified gt "2011-05-13T04:42:34Z""#;

/// 1,000 users shaped like what Okta and Entra provision.
fn users() -> Vec<Value> {
    (0..1000)
        .map(|i| {
            let name = if i == 500 {
                "bjensen".to_owned()
            } else {
                format!("user{i:04}")
            };
            let mut doc = json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "id": format!("2819c223-7f76-453a-919d-{i:012}"),
                "externalId": format!("ext-{i}"),
                "userName": name,
                "name": {"givenName": "Barbara", "familyName": format!("Jensen{i}")},
                "displayName": format!("Babs {i}"),
                "active": i % 7 != 0,
                "emails": [
                    {"value": format!("{name}@example.com"), "type": "work", "primary": true},
                    {"value": format!("{name}@home.org"), "type": "home"}
                ],
                "meta": {
                    "resourceType": "User",
                    "created": "2010-01-23T04:56:22Z",
                    "lastModified": format!("2011-05-{:02}T04:42:34Z", 1 + i % 28),
                    "version": format!("W/\"{i}\"")
                }
            });
            if i % 3 == 0 {
                doc["title"] = json!("Tour Guide");
            }
            doc
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("filter");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(30);

    g.bench_function("parse_simple", |b| {
        b.iter(|| Filter::parse(black_box(SIMPLE)).unwrap())
    });
    g.bench_function("parse_complex", |b| {
        b.iter(|| Filter::parse(black_box(COMPLEX)).unwrap())
    });

    let reg = SchemaRegistry::default();
    let rt = reg.user().unwrap();
    let docs = users();
    let simple = Filter::parse(SIMPLE).unwrap().compile(rt, true).unwrap();
    let complex = Filter::parse(COMPLEX).unwrap().compile(rt, true).unwrap();
    assert_eq!(docs.iter().filter(|d| simple.matches(d)).count(), 1);
    g.bench_function("eval_simple_1000", |b| {
        b.iter(|| {
            black_box(&docs)
                .iter()
                .filter(|d| simple.matches(d))
                .count()
        })
    });
    g.bench_function("eval_complex_1000", |b| {
        b.iter(|| {
            black_box(&docs)
                .iter()
                .filter(|d| complex.matches(d))
                .count()
        })
    });
    g.bench_function("parse_compile_eval_simple_1000", |b| {
        b.iter(|| {
            let f = Filter::parse(black_box(SIMPLE))
                .unwrap()
                .compile(rt, true)
                .unwrap();
            docs.iter().filter(|d| f.matches(d)).count()
        })
    });
    let spec = SortSpec::parse("name.familyName", Some("descending")).unwrap();
    g.bench_function("sort_1000", |b| {
        b.iter_batched_ref(
            || docs.clone(),
            |d| sort_resources(rt, &spec, d),
            criterion::BatchSize::LargeInput,
        )
    });
    g.finish();

    // The case fold alone: ASCII (folds with to_ascii_lowercase, no table), non-ASCII (a table
    // lookup per non-ASCII character), already folded (borrowed, no allocation), and the
    // lower-casing it replaced, for comparison.
    let mut g = c.benchmark_group("fold");
    g.measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(30);
    for (name, s) in [
        ("ascii", "BJensen@Example.COM"),
        ("ascii_folded", "bjensen@example.com"),
        ("non_ascii", "Ünïcode Straße ΟΔΥΣΣΕΥΣ Москва"),
        ("non_ascii_folded", "ünïcode strasse οδυσσευσ москва"),
    ] {
        g.bench_function(name, |b| b.iter(|| fold_case(black_box(s)).len()));
        g.bench_function(format!("{name}_to_lowercase"), |b| {
            b.iter(|| black_box(s).to_lowercase().len())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
