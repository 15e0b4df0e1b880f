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
use scimkit::patch::{apply, apply_in_place, PatchOutcome, PatchPath, PatchRequest};
use scimkit::resource::normalize_value;
use scimkit::resource::MembershipDelta;
use scimkit::schema::{AttributeDef, Schema};
use scimkit::{
    error::ScimError, schema::ResourceDef, schema::SchemaRegistry, settings::Settings,
    settings::Tolerances,
};
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

/// Runs `apply`, and checks that `apply_in_place` agrees with it: the same document, delta
/// and `changed` on success; on error the same error and the document restored exactly
/// (byte for byte, key order included).
fn run(
    reg: &SchemaRegistry,
    rt: &str,
    before: &Value,
    body: &Value,
    settings: &Settings,
) -> Result<PatchOutcome, ScimError> {
    let rt = reg.resource_type(rt).unwrap();
    let req = PatchRequest::from_json(body, settings)?;
    let result = apply(rt, before, &req, settings);
    let mut doc = before.clone();
    let in_place = apply_in_place(rt, &mut doc, &req, settings);
    match (&result, in_place) {
        (Ok(out), Ok(effect)) => {
            assert_eq!(
                serde_json::to_string(&doc).unwrap(),
                serde_json::to_string(&out.document).unwrap()
            );
            assert_eq!(effect.members, out.members);
            assert_eq!(effect.changed, out.changed);
        }
        (Err(a), Err(b)) => {
            assert_eq!(a.to_string(), b.to_string());
            assert_eq!(
                serde_json::to_string(&doc).unwrap(),
                serde_json::to_string(before).unwrap(),
                "apply_in_place did not restore the document"
            );
        }
        (a, b) => panic!("apply and apply_in_place disagree: {a:?} / {b:?}"),
    }
    result
}

fn delta_json(d: &MembershipDelta) -> Value {
    json!({
        "clear": d.clear,
        "add": d.add.iter().map(|m| {
            let mut o = Map::new();
            o.insert("value".into(), json!(m.value.as_str()));
            if let Some(k) = &m.resource_type {
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

fn body(ops: Value) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": ops})
}

#[test]
fn failing_third_operation_changes_nothing() {
    let reg = registry();
    let before = json!({
        "userName": "bjensen",
        "title": "Guide",
        "emails": [{"value": "b@example.com", "type": "work", "primary": true}]
    });
    let bytes = serde_json::to_vec(&before).unwrap();
    let first_two = json!([
        {"op": "replace", "path": "title", "value": "Lead"},
        {"op": "add", "path": "emails", "value": [{"value": "h@example.com", "type": "home"}]}
    ]);
    // The first two alone succeed and change the document...
    let ok = run(
        &reg,
        "User",
        &before,
        &body(first_two.clone()),
        &Settings::default(),
    )
    .unwrap();
    assert_ne!(ok.document, before);
    // ...but with a failing third operation nothing is returned and the input is intact.
    let mut ops = first_two.as_array().unwrap().clone();
    ops.push(json!({"op": "remove", "path": "userName"}));
    let err = run(
        &reg,
        "User",
        &before,
        &body(Value::Array(ops)),
        &Settings::default(),
    )
    .unwrap_err();
    assert_eq!(err.scim_type().unwrap().as_str(), "mutability");
    assert!(
        err.detail().starts_with("Operations[2] (remove)"),
        "{}",
        err.detail()
    );
    assert_eq!(serde_json::to_vec(&before).unwrap(), bytes);
}

#[test]
fn failing_member_operation_returns_no_delta() {
    let reg = registry();
    let before = json!({"displayName": "g", "members": [{"value": "u1"}]});
    let ops = json!([
        {"op": "add", "path": "members", "value": [{"value": "u2"}]},
        {"op": "remove", "path": "members[value eq \"u1\"]"},
        {"op": "remove", "path": "members[value eq \"nobody\"]"}
    ]);
    let err = run(&reg, "Group", &before, &body(ops), &Settings::strict()).unwrap_err();
    assert_eq!(err.scim_type().unwrap().as_str(), "noTarget");
    assert!(err.detail().contains("Operations[2]"), "{}", err.detail());
}

#[test]
fn membership_delta_composes_in_request_order() {
    let reg = registry();
    let g = json!({"displayName": "g"});
    let add = |id: &str| json!({"op": "add", "path": "members", "value": [{"value": id}]});
    let remove = |id: &str| json!({"op": "remove", "path": format!("members[value eq \"{id}\"]")});
    // Added then removed: only the removal survives (clear -> remove -> add leaves it out).
    let out = run(
        &reg,
        "Group",
        &g,
        &body(json!([add("a"), remove("a")])),
        &Settings::default(),
    )
    .unwrap();
    let d = out.members.unwrap();
    assert!(d.add.is_empty());
    assert_eq!(d.remove.len(), 1);
    // Removed then added: in both lists, so the store's order makes it a member.
    let out = run(
        &reg,
        "Group",
        &g,
        &body(json!([remove("a"), add("a")])),
        &Settings::default(),
    )
    .unwrap();
    let d = out.members.unwrap();
    assert_eq!(d.add.len(), 1);
    assert_eq!(d.remove.len(), 1);
    // Replace after adds starts from a clean slate.
    let replace = json!({"op": "replace", "path": "members", "value": [{"value": "c"}]});
    let out = run(
        &reg,
        "Group",
        &g,
        &body(json!([add("a"), remove("b"), replace])),
        &Settings::default(),
    )
    .unwrap();
    let d = out.members.unwrap();
    assert!(d.clear);
    assert_eq!(d.add.len(), 1);
    assert_eq!(d.add[0].value.as_str(), "c");
    assert!(d.remove.is_empty());
}

#[test]
fn member_filter_needs_the_member_list() {
    let reg = registry();
    let group = reg.group().unwrap();
    let b = body(json!([{"op": "remove", "path": "members[type eq \"Group\"]"}]));
    let req = PatchRequest::from_json(&b, &Settings::default()).unwrap();
    assert!(req.needs_members(group));
    // Without the list the engine refuses rather than guessing (a caller bug: 500).
    let err = apply(
        group,
        &json!({"displayName": "g"}),
        &req,
        &Settings::default(),
    )
    .unwrap_err();
    assert_eq!(err.status().as_u16(), 500);
    // With it (even empty), the filter is evaluated.
    let loaded = json!({"displayName": "g", "members": [
        {"value": "u1", "type": "User"}, {"value": "g2", "type": "Group"}
    ]});
    let out = apply(group, &loaded, &req, &Settings::default()).unwrap();
    assert_eq!(
        out.document["members"],
        json!([{"value": "u1", "type": "User"}])
    );
    let d = out.members.unwrap();
    assert_eq!(d.remove.len(), 1);
    assert_eq!(d.remove[0].as_str(), "g2");
    let empty = json!({"displayName": "g", "members": []});
    let out = apply(group, &empty, &req, &Settings::default()).unwrap();
    assert_eq!(out.document, json!({"displayName": "g"}));
    assert!(!out.changed);
}

// ----- property tests -----------------------------------------------------------------

const PATHS: &[&str] = &[
    "userName",
    "title",
    "nickName",
    "active",
    "displayName",
    "name",
    "name.givenName",
    "name.familyName",
    "emails",
    "emails.value",
    "emails[type eq \"work\"]",
    "emails[type eq \"work\"].value",
    "emails[type eq \"home\"].primary",
    "emails[value ew \"example.com\"]",
    "emails[type eq \"work\" and primary eq true]",
    "phoneNumbers[type eq \"mobile\"].value",
    "addresses[type eq \"work\"].locality",
    "addresses",
    "roles",
    "groups",
    "id",
    "meta.created",
    "password",
    "x509Certificates",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
    "manager[value eq \"271\"]",
    "employeeNumber",
    "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User:badges",
    "nosuch",
    "name.nosuch",
    "emails[nosuch eq 1]",
];

fn value_strategy() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|n| json!(n)),
        prop_oneof![
            Just("work"),
            Just("home"),
            Just("True"),
            Just("false"),
            Just("271"),
            Just("a@example.com"),
            Just("2011-05-13T04:42:34Z"),
            Just("TUlJRA=="),
            Just(""),
        ]
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        Just("value"),
                        Just("type"),
                        Just("primary"),
                        Just("display"),
                        Just("givenName"),
                        Just("Active"),
                        Just("title"),
                        Just("name.givenName"),
                        Just("emails"),
                        Just("id"),
                        Just("$ref"),
                        Just("locality"),
                        Just("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"),
                    ],
                    inner
                ),
                0..4
            )
            .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}

/// Values that fit the attribute a path names, so that most random requests get past
/// validation and exercise the engine.
fn fitting_values(path: &str) -> Vec<Value> {
    let p = path.to_ascii_lowercase();
    if p.ends_with("active") || p.ends_with("primary") || p.contains("primary eq") {
        vec![
            json!(true),
            json!(false),
            json!("True"),
            json!({"value": "q@example.com", "primary": true}),
        ]
    } else if p.starts_with("members") {
        vec![
            json!([{"value": "u2"}]),
            json!([{"value": "u1", "type": "User"}, {"value": "u4"}]),
            json!({"value": "u3"}),
            json!("x"),
        ]
    } else if p.contains('[') && !p.contains("].") {
        vec![
            json!({"value": "c@example.com", "type": "work"}),
            json!({"value": "d@example.com", "primary": true}),
            json!({"locality": "Oslo"}),
        ]
    } else if p == "emails" || p == "addresses" || p == "roles" || p.ends_with("badges") {
        vec![
            json!([{"value": "c@example.com", "type": "work"}]),
            json!([{"value": "d@example.com", "type": "home", "primary": true}]),
            json!([{"locality": "Oslo", "type": "work"}]),
            json!(["b1", "b2"]),
        ]
    } else if p == "name" {
        vec![
            json!({"givenName": "X"}),
            json!({"familyName": "Y", "middleName": "Z"}),
        ]
    } else if p.ends_with(":manager") {
        vec![json!("272"), json!({"value": "273"})]
    } else if p.ends_with(":user") {
        vec![
            json!({"department": "R&D"}),
            json!({"manager": "9", "costCenter": "1"}),
        ]
    } else if p.is_empty() {
        vec![
            json!({"title": "T", "name.givenName": "G"}),
            json!({"id": "1", "displayName": "D"}),
            json!({"active": "False"}),
            json!({"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "D"}}),
            json!({"emails": [{"value": "e@example.com", "type": "work"}]}),
            json!({"members": [{"value": "u9"}]}),
        ]
    } else {
        vec![json!("x"), json!("y@example.com"), json!(""), Value::Null]
    }
}

fn op_strategy(paths: &'static [&'static str]) -> impl Strategy<Value = Value> {
    (
        prop_oneof![
            4 => Just("add"),
            4 => Just("replace"),
            4 => Just("remove"),
            1 => Just("Add"),
            1 => Just("REPLACE"),
            1 => Just("move")
        ],
        prop_oneof![1 => Just(None), 5 => prop::sample::select(paths).prop_map(Some)],
    )
        .prop_flat_map(|(op, path)| {
            let fitting = fitting_values(path.unwrap_or(""));
            let value = prop_oneof![
                1 => Just(None),
                4 => prop::sample::select(fitting).prop_map(Some),
                2 => value_strategy().prop_map(Some),
            ];
            (Just(op), Just(path), value)
        })
        .prop_map(|(op, path, value)| {
            let mut o = Map::new();
            o.insert("op".into(), json!(op));
            if let Some(p) = path {
                o.insert("path".into(), json!(p));
            }
            if let Some(v) = value {
                o.insert("value".into(), v);
            }
            Value::Object(o)
        })
}

fn user_doc_strategy() -> impl Strategy<Value = Value> {
    (
        any::<bool>(),
        prop::option::of(Just(json!({"givenName": "B", "familyName": "J"}))),
        prop::collection::vec(
            (
                prop::sample::select(vec!["work", "home", "other"]),
                prop::sample::select(vec!["a@example.com", "b@example.org"]),
                any::<bool>(),
            ),
            0..3,
        ),
        prop::option::of(Just(
            json!({"department": "Sales", "manager": {"value": "271"}}),
        )),
    )
        .prop_map(|(active, name, emails, ext)| {
            let mut d = Map::new();
            d.insert("userName".into(), json!("bjensen"));
            d.insert("active".into(), json!(active));
            if let Some(n) = name {
                d.insert("name".into(), n);
            }
            let mut seen_primary = false;
            let emails: Vec<Value> = emails
                .into_iter()
                .map(|(t, v, p)| {
                    let primary = p && !seen_primary;
                    seen_primary |= primary;
                    if primary {
                        json!({"value": v, "type": t, "primary": true})
                    } else {
                        json!({"value": v, "type": t})
                    }
                })
                .collect();
            if !emails.is_empty() {
                d.insert("emails".into(), Value::Array(emails));
            }
            if let Some(e) = ext {
                d.insert(
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User".into(),
                    e,
                );
            }
            Value::Object(d)
        })
}

const GROUP_PATHS: &[&str] = &[
    "members",
    "members[value eq \"u1\"]",
    "members[value eq \"u2\"]",
    "members[type eq \"User\"]",
    "members[value eq \"u1\"].display",
    "displayName",
    "externalId",
];

proptest! {
    // At least 600 cases; PROPTEST_CASES raises it for longer runs.
    #![proptest_config(ProptestConfig {
        cases: ProptestConfig::default().cases.max(600),
        ..ProptestConfig::default()
    })]

    /// Random operations on random users never panic; a success re-normalises unchanged
    /// (in both modes) and never touches the input.
    #[test]
    fn random_user_patches(
        doc in user_doc_strategy(),
        ops in prop::collection::vec(op_strategy(PATHS), 1..4),
        strict in any::<bool>(),
    ) {
        let reg = registry();
        let rt = reg.user().unwrap();
        let settings = if strict { Settings::strict() } else { Settings::default() };
        let before = serde_json::to_string(&doc).unwrap();
        let b = body(Value::Array(ops));
        if let Ok(req) = PatchRequest::from_json(&b, &settings) {
            if let Ok(out) = run(&reg, "User", &doc, &b, &settings) {
                prop_assert_eq!(renormalize(rt, &out.document, &settings.tolerances), out.document.clone());
                prop_assert!(out.members.is_none());
                prop_assert_eq!(out.changed, out.document != doc);
                // Applying the same request to the result once more must not fail on
                // validation grounds it did not fail on before (idempotent shapes aside).
                let _ = apply(rt, &out.document, &req, &settings);
            }
        }
        prop_assert_eq!(serde_json::to_string(&doc).unwrap(), before);
    }

    /// Random member operations: with the member list loaded, the returned list equals
    /// the old list with the delta applied in the documented order.
    #[test]
    fn random_group_patches(
        members in prop::collection::vec(prop::sample::select(vec!["u1", "u2", "u3"]), 0..3),
        ops in prop::collection::vec(op_strategy(GROUP_PATHS), 1..5),
    ) {
        let reg = registry();
        let rt = reg.group().unwrap();
        let settings = Settings::default();
        let mut ids: Vec<&str> = Vec::new();
        for m in members {
            if !ids.contains(&m) {
                ids.push(m);
            }
        }
        let list: Vec<Value> = ids.iter().map(|id| json!({"value": id, "type": "User"})).collect();
        let doc = json!({"displayName": "g", "members": list});
        let b = body(Value::Array(ops));
        if let Ok(req) = PatchRequest::from_json(&b, &settings) {
            if let Ok(out) = run(&reg, "Group", &doc, &b, &settings) {
                prop_assert_eq!(renormalize(rt, &out.document, &settings.tolerances), out.document.clone());
                let after: Vec<String> = out.document.get("members")
                    .and_then(Value::as_array)
                    .map(|l| l.iter().map(|m| m["value"].as_str().unwrap().to_owned()).collect())
                    .unwrap_or_default();
                let mut expected: Vec<String> = ids.iter().map(|s| (*s).to_owned()).collect();
                if let Some(d) = &out.members {
                    if d.clear {
                        expected.clear();
                    }
                    expected.retain(|id| !d.remove.iter().any(|r| r.as_str() == id));
                    for a in &d.add {
                        if !expected.contains(&a.value.as_str().to_owned()) {
                            expected.push(a.value.as_str().to_owned());
                        }
                    }
                }
                let mut a = after.clone();
                a.sort();
                expected.sort();
                prop_assert_eq!(a, expected);
                // Without the list loaded (when the request allows it) the delta is the same.
                if !req.needs_members(rt) {
                    let bare = apply(rt, &json!({"displayName": "g"}), &req, &settings);
                    if let Ok(bare) = bare {
                        prop_assert!(bare.document.get("members").is_none());
                    }
                }
            }
        }
    }

    /// Bounded fuzz: PatchPath::parse never panics on arbitrary text, and what it accepts
    /// prints back to a path that parses to the same value.
    #[test]
    fn fuzz_path_parse(s in "\\PC{0,40}") {
        if let Ok(p) = PatchPath::parse(&s) {
            let again = PatchPath::parse(&p.to_string()).unwrap();
            prop_assert_eq!(again, p);
        }
    }

    /// Bounded fuzz on path-shaped text.
    #[test]
    fn fuzz_path_parse_grammar(
        parts in prop::collection::vec(
            prop::sample::select(vec![
                "emails", "name", ".", "[", "]", "\"", "\\", " ", "eq", "type", "value",
                "urn:", ":", "and", "or", "not", "(", ")", "pr", "1", "true", "givenName", "$ref",
            ]),
            0..14,
        )
    ) {
        let s: String = parts.concat();
        if let Ok(p) = PatchPath::parse(&s) {
            let again = PatchPath::parse(&p.to_string()).unwrap();
            prop_assert_eq!(again, p);
        }
    }

    /// Bounded fuzz: arbitrary JSON bodies through from_json and apply never panic.
    #[test]
    fn fuzz_apply_arbitrary_body(
        ops in prop::collection::vec(value_strategy(), 0..4),
        doc in value_strategy(),
        group in any::<bool>(),
    ) {
        let reg = registry();
        let rt = if group { reg.group().unwrap() } else { reg.user().unwrap() };
        let settings = Settings::default();
        let b = body(Value::Array(ops));
        if let Ok(req) = PatchRequest::from_json(&b, &settings) {
            let _ = req.needs_members(rt);
            let _ = run(&reg, rt.name(), &doc, &b, &settings);
        }
    }
}
