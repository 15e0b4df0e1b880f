//! The whole-request fuzz harness (`tests/fuzz_harness/`, also the libFuzzer target
//! `fuzz/fuzz_targets/handle.rs`) run as a bounded proptest, so that CI checks its
//! invariants on every build: no panic, no 5xx, every non-2xx answer a SCIM error, and a
//! failed request, a GET or a search changes nothing. Below it, one regression test per
//! fuzzer finding, each the minimal case that broke.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod fuzz_harness;

use fuzz_harness::{run_bytes, run_case, Case, Profile, Spec};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Random bytes decoded into one to four requests against a seeded tenant.
    #[test]
    fn arbitrary_requests_keep_the_invariants(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        run_bytes(&data);
    }
}

/// The seed corpus of the fuzz target (fuzz/corpus/handle/) runs here too.
#[test]
fn the_seed_corpus_keeps_the_invariants() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/handle");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz/corpus/handle exists") {
        let path = entry.unwrap().path();
        run_bytes(&std::fs::read(&path).unwrap());
        n += 1;
    }
    assert!(n >= 5, "only {n} seeds in {}", dir.display());
}

/// The harness's own checks fire: a case whose answer is an error and one that writes.
#[test]
fn the_harness_sees_errors_and_writes() {
    let (status, body) = run_case(&Case::one(
        Profile::Strict,
        Spec::new("GET", "/scim/v2/acme/Users?filter=userName%20eq", ""),
    ));
    assert_eq!(status, 400);
    assert_eq!(body["scimType"], "invalidFilter");
    let (status, body) = run_case(&Case::one(
        Profile::Default,
        Spec::new(
            "POST",
            "/scim/v2/acme/Users",
            r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"new@example.com"}"#,
        ),
    ));
    assert_eq!(status, 201, "{body}");
}

/// The error-body check refuses what RFC 7644 §3.12 does not allow.
#[test]
fn the_error_check_refuses_non_scim_errors() {
    use fuzz_harness::check_error_body;
    use http::StatusCode;
    let bad = StatusCode::BAD_REQUEST;
    let ok = br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"400","scimType":"invalidValue","detail":"userName is empty"}"#;
    assert!(check_error_body(bad, ok).is_ok());
    for body in [
        &b""[..],
        b"not json",
        b"{}",
        br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":400,"detail":"x"}"#,
        br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"404","detail":"x"}"#,
        br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"400","scimType":"nope","detail":"x"}"#,
        br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"400","detail":"  "}"#,
        br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"400"}"#,
        br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"status":"400","detail":"x"}"#,
    ] {
        assert!(
            check_error_body(bad, body).is_err(),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

/// Regenerates fuzz/corpus/handle/: for each kind of request below, the shortest input (of
/// many pseudo-random ones) that decodes to one such request with that answer. Run with
/// `cargo test --all-features --test fuzz_requests -- --ignored write_seed_corpus`.
#[test]
#[ignore = "writes fuzz/corpus/handle/; run by hand"]
fn write_seed_corpus() {
    use std::collections::BTreeMap;
    let wanted = [
        "GET-Users-200",
        "GET-Users-id-200",
        "GET-Users-id-304",
        "POST-Users-201",
        "PUT-Users-id-200",
        "PATCH-Users-id-200",
        "PATCH-Groups-id-200",
        "PUT-Groups-id-200",
        "DELETE-Users-id-204",
        "POST-Groups-201",
        "POST-.search-200",
        "POST-Users-.search-200",
        "POST-Bulk-200",
        "GET-Me-200",
        "GET-Users-400",
        "PATCH-Users-id-400",
        "PATCH-Users-id-412",
        "POST-Users-415",
        "POST-Bulk-413",
        "GET-Users-401",
    ];
    let mut best: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..200_000 {
        if best.len() == wanted.len() {
            break;
        }
        let len = 8 + (next() % 120) as usize;
        let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let case = Case::generate(&mut arbitrary::Unstructured::new(&data));
        let [spec] = case.requests.as_slice() else {
            continue;
        };
        let path = spec.target.split('?').next().unwrap_or("");
        let Some(tail) = path.strip_prefix("/scim/v2/acme/") else {
            continue;
        };
        let endpoint = match tail.split('/').collect::<Vec<_>>().as_slice() {
            [e] => (*e).to_owned(),
            [e, ".search"] => format!("{e}-.search"),
            [e, _] => format!("{e}-id"),
            _ => continue,
        };
        let (status, _) = run_case(&case);
        let class = format!("{}-{endpoint}-{}", spec.method, status.as_u16());
        if wanted.contains(&class.as_str()) && best.get(&class).is_none_or(|b| b.len() > data.len())
        {
            best.insert(class, data);
        }
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/handle");
    std::fs::create_dir_all(&dir).unwrap();
    for (class, data) in &best {
        std::fs::write(
            dir.join(class.to_lowercase().replace(".search", "search")),
            data,
        )
        .unwrap();
    }
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|w| !best.contains_key(**w))
        .copied()
        .collect();
    println!("wrote {} seeds; not found: {missing:?}", best.len());
}

/// Prints how often each (method, endpoint, status) occurs over the inputs in the directory
/// `SCIMKIT_FUZZ_CORPUS` (a fuzzer's working corpus), to see what the decoder reaches.
#[test]
#[ignore = "diagnostics; run by hand with SCIMKIT_FUZZ_CORPUS set"]
fn corpus_status_mix() {
    use std::collections::BTreeMap;
    let Ok(dir) = std::env::var("SCIMKIT_FUZZ_CORPUS") else {
        return;
    };
    let mut mix: BTreeMap<String, usize> = BTreeMap::new();
    let mut details: BTreeMap<String, String> = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        let case = Case::generate(&mut arbitrary::Unstructured::new(&data));
        let answers = fuzz_harness::run_case_answers(&case);
        for (spec, (status, body)) in case.requests.iter().zip(answers) {
            let path = spec.target.split('?').next().unwrap_or("");
            let endpoint: Vec<&str> = path.split('/').skip(4).take(2).collect();
            let scim_type = body["scimType"].as_str().unwrap_or("");
            if let Some(d) = body["detail"].as_str() {
                let key = format!(
                    "{} {scim_type} {}",
                    status.as_u16(),
                    d.chars().take(50).collect::<String>()
                );
                details.entry(key).or_insert_with(|| d.to_owned());
            }
            *mix.entry(format!(
                "{} {} {} {scim_type}",
                spec.method,
                endpoint.join("/"),
                status.as_u16()
            ))
            .or_default() += 1;
        }
    }
    for (k, n) in mix {
        println!("{n:6} {k}");
    }
    for (k, d) in details {
        println!("detail {k}: {d}");
    }
}

/// Finding 1: `ScimService::body_limit` read the path's segments without percent-decoding
/// them, while `authorize` decodes them: for `/scim/v2/%61cme/Users` it announced the
/// default 1 MiB of an unknown tenant instead of tenant `acme`'s limit (600 bytes here), and
/// for `/scim/v2/acme/%47roups` the limit of a request without members instead of the
/// Groups write limit. An adapter sizing its read by `body_limit` then read more (or less)
/// than the service admits. The harness compares the two on every authorised request.
#[test]
fn body_limit_decodes_the_path_as_authorize_does() {
    for target in [
        "/scim/v2/%61cme/Users",
        "/scim/v2/acme/%47roups",
        "/scim/v2/%61%63%6D%65/Group%73/$G0",
    ] {
        for method in ["POST", "PUT", "PATCH", "GET"] {
            for profile in [Profile::Tight, Profile::Default] {
                let body = r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"x"}"#;
                run_case(&Case::one(profile, Spec::new(method, target, body)));
            }
        }
    }
}
