//! PATCH engine: RFC 7644 §3.5.2 examples and Okta/Entra bodies as JSON vectors
//! (tests/vectors/patch/*.json), atomicity, and property tests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;

use proptest::prelude::*;
use scimkit::patch::{apply, MembershipDelta, PatchOutcome, PatchPath, PatchRequest};
use scimkit::resource::normalize_value;
use scimkit::schema::{AttributeDef, Schema};
use scimkit::{ResourceDef, SchemaRegistry, ScimError, Settings, Tolerances};
use serde_json::{json, Map, Value};

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const CUSTOM_EXT: &str = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User";

/// The default registry plus a custom User extension like the ones Entra maps to.
fn registry() -> SchemaRegistry {
    let mut reg = SchemaRegistry::default();
    reg.add_extension(
        "User",
        Schema {
            id: CUSTOM_EXT.into(),
            name: "Custom".into(),
            description: String::new(),
            attributes: vec![
                AttributeDef::string("costCode"),
                AttributeDef::string("badges").multi(),
            ],
        },
        false,
    )
    .unwrap();
    reg
}

fn run(
    reg: &SchemaRegistry,
    rt: &str,
    before: &Value,
    body: &Value,
    settings: &Settings,
) -> Result<PatchOutcome, ScimError> {
    let rt = reg.resource_type(rt).unwrap();
    let req = PatchRequest::from_json(body, settings)?;
    apply(rt, before, &req, settings)
}

fn delta_json(d: &MembershipDelta) -> Value {
    json!({
        "clear": d.clear,
        "add": d.add.iter().map(|m| {
            let mut o = Map::new();
            o.insert("value".into(), json!(m.value.as_str()));
            if let Some(k) = &m.kind {
                o.insert("type".into(), json!(k));
            }
            Value::Object(o)
        }).collect::<Vec<_>>(),
        "remove": d.remove.iter().map(|r| json!(r.as_str())).collect::<Vec<_>>(),
    })
}

/// Re-normalises every attribute of a document; a PATCH result must come back unchanged.
fn renormalize(rt: &ResourceDef, doc: &Value, tol: &Tolerances) -> Value {
    let obj = doc.as_object().unwrap();
    let mut out = Map::new();
    for (k, v) in obj {
        if k == "schemas" {
            out.insert(k.clone(), v.clone());
            continue;
        }
        if let Some(ext) = rt.extension(k) {
            let mut inner = Map::new();
            for (ek, ev) in v.as_object().unwrap() {
                let def = ext
                    .attribute(ek)
                    .unwrap_or_else(|| panic!("unknown {k}:{ek}"));
                assert_eq!(&def.name, ek, "canonical case");
                if let Some(nv) = normalize_value(def, ev, tol, ek).unwrap() {
                    inner.insert(ek.clone(), nv);
                }
            }
            assert!(!inner.is_empty(), "empty extension object {k}");
            out.insert(k.clone(), Value::Object(inner));
            continue;
        }
        let def = rt
            .top_level(k)
            .unwrap_or_else(|| panic!("unknown attribute {k}"));
        assert_eq!(&def.name, k, "canonical case");
        let nv = normalize_value(def, v, tol, k)
            .unwrap()
            .unwrap_or_else(|| panic!("{k} normalises to nothing"));
        out.insert(k.clone(), nv);
    }
    Value::Object(out)
}

fn check_vector_file(path: &Path) -> usize {
    let reg = registry();
    let text = std::fs::read_to_string(path).unwrap();
    let cases: Vec<Value> = serde_json::from_str(&text).unwrap();
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let ctx = format!("{}: {name}", path.display());
        let settings = match case.get("mode").and_then(Value::as_str) {
            Some("strict") => Settings::strict(),
            None | Some("default") => Settings::default(),
            Some(other) => panic!("{ctx}: unknown mode {other}"),
        };
        let rt_name = case["resourceType"].as_str().unwrap();
        let rt = reg.resource_type(rt_name).unwrap();
        let before = &case["before"];
        let before_bytes = serde_json::to_string(before).unwrap();
        let result = run(&reg, rt_name, before, &case["request"], &settings);
        assert_eq!(
            serde_json::to_string(before).unwrap(),
            before_bytes,
            "{ctx}: input changed"
        );
        if let Some(needs) = case.get("needsMembers") {
            let req = PatchRequest::from_json(&case["request"], &settings).unwrap();
            assert_eq!(req.needs_members(rt), needs.as_bool().unwrap(), "{ctx}");
        }
        match (case.get("error"), result) {
            (Some(err), Err(e)) => {
                assert_eq!(
                    u64::from(e.status().as_u16()),
                    err["status"].as_u64().unwrap(),
                    "{ctx}: {e}"
                );
                assert_eq!(
                    e.scim_type().map(|t| t.as_str()),
                    err.get("scimType").and_then(Value::as_str),
                    "{ctx}: {e}"
                );
                if let Some(needle) = err.get("detailContains").and_then(Value::as_str) {
                    assert!(e.detail().contains(needle), "{ctx}: {}", e.detail());
                }
            }
            (Some(err), Ok(out)) => panic!("{ctx}: expected {err}, got {}", out.document),
            (None, Err(e)) => panic!("{ctx}: unexpected error {e}"),
            (None, Ok(out)) => {
                assert_eq!(out.document, case["after"], "{ctx}");
                // Exact key order, not just map equality.
                assert_eq!(
                    serde_json::to_string(&out.document).unwrap(),
                    serde_json::to_string(&case["after"]).unwrap(),
                    "{ctx}: key order"
                );
                match case.get("members") {
                    Some(expected) => {
                        let d = out
                            .members
                            .as_ref()
                            .unwrap_or_else(|| panic!("{ctx}: no delta"));
                        assert_eq!(&delta_json(d), expected, "{ctx}");
                    }
                    None => assert_eq!(out.members, None, "{ctx}"),
                }
                if let Some(changed) = case.get("changed") {
                    assert_eq!(out.changed, changed.as_bool().unwrap(), "{ctx}");
                }
                assert_eq!(
                    renormalize(rt, &out.document, &settings.tolerances),
                    out.document,
                    "{ctx}: result is not normalised"
                );
            }
        }
    }
    cases.len()
}

#[test]
fn vectors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/patch");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut total = 0;
    for f in &files {
        total += check_vector_file(f);
    }
    assert!(files.len() >= 4, "vector files missing: {files:?}");
    assert!(total >= 60, "only {total} vectors");
}
