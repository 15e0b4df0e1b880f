use proptest::prelude::*;

use super::*;
use crate::events::{collect_notes, ToleranceKind};
use crate::resource::write::{normalize_write, split_members};
use crate::resource::{normalize_resource, WriteMode};
use crate::schema::SchemaRegistry;
use crate::settings::Settings;

type Outcome = Result<(Value, Option<Vec<MemberRef>>), String>;

/// The general path: `serde_json::Value`, then normalisation and the split.
fn general(def: &ResourceDef, settings: &Settings, text: &str) -> Option<Outcome> {
    let v: Value = serde_json::from_str(text).ok()?;
    Some(
        normalize_resource(def, &v, settings, WriteMode::Create)
            .and_then(|doc| split_members(def, doc))
            .map_err(|e| format!("{e:?}")),
    )
}

fn fast(def: &ResourceDef, settings: &Settings, body: WriteBody) -> Outcome {
    normalize_write(def, body, settings, WriteMode::Create).map_err(|e| format!("{e:?}"))
}

/// Notes in a comparable order: which lane reports a note first does not matter.
fn sorted(mut notes: Vec<crate::events::ToleranceNote>) -> Vec<crate::events::ToleranceNote> {
    notes.sort_by_key(|n| (format!("{:?}", n.kind), n.path.clone()));
    notes
}

/// Both lanes (the parse and `from_value`) agree with the general path on `text`.
fn agree(settings: &Settings, text: &str) -> Result<(), TestCaseError> {
    let registry = SchemaRegistry::default();
    let Some(def) = registry.group() else {
        return Err(TestCaseError::fail("no Group type"));
    };
    let tol = &settings.tolerances;
    let parsed = WriteBody::parse(def, tol, text.as_bytes());
    let (expected, expected_notes) = collect_notes(|| general(def, settings, text));
    prop_assert_eq!(parsed.is_ok(), expected.is_some(), "parse of {}", text);
    if let (Ok(body), Some(expected)) = (parsed, expected) {
        // The same result and, when it succeeds, the same tolerance notes.
        let (out, notes) = collect_notes(|| fast(def, settings, body));
        prop_assert_eq!(&out, &expected, "{}", text);
        if expected.is_ok() {
            prop_assert_eq!(sorted(notes), sorted(expected_notes.clone()), "{}", text);
        }
        let v: Value =
            serde_json::from_str(text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let (out, notes) =
            collect_notes(|| fast(def, settings, WriteBody::from_value(def, tol, v)));
        prop_assert_eq!(&out, &expected);
        if expected.is_ok() {
            prop_assert_eq!(sorted(notes), sorted(expected_notes.clone()), "{}", text);
        }
    }
    Ok(())
}

const HEAD: &str =
    r#""schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "G""#;

/// Echoed `display`s are counted on the fast lane, and noted as the general path notes
/// them: one note for the sub-attribute, with the count.
#[test]
fn dropped_displays_are_noted_on_both_lanes() {
    let registry = SchemaRegistry::default();
    let def = registry.group().unwrap();
    let settings = Settings::default();
    let plain = format!(
        r#"{{{HEAD}, "members": [{{"value": "a", "display": "A"}}, {{"value": "b", "display": "B"}}, {{"value": "c", "display": null}}, {{"value": "d"}}]}}"#
    );
    let body = WriteBody::parse(def, &settings.tolerances, plain.as_bytes()).unwrap();
    assert!(body.plain_members.is_some(), "the fast lane");
    let (out, notes) = collect_notes(|| fast(def, &settings, body));
    assert!(out.is_ok());
    let want = vec![(
        ToleranceKind::ReadOnlyIgnored,
        "members.display".to_owned(),
        2,
    )];
    let got: Vec<_> = notes
        .iter()
        .map(|n| (n.kind, n.path.clone(), n.count))
        .collect();
    assert_eq!(got, want);
    let (out, general_notes) = collect_notes(|| general(def, &settings, &plain));
    assert!(out.is_some_and(|o| o.is_ok()));
    assert_eq!(general_notes, notes);
    // A list that turns out not to be plain after a plain element with a display (the
    // element goes on as a reference, without it): still noted, once.
    let mixed = format!(
        r#"{{{HEAD}, "members": [{{"value": "a", "display": "A"}}, {{"value": "b", "display": "B", "costCentre": "x"}}]}}"#
    );
    let body = WriteBody::parse(def, &settings.tolerances, mixed.as_bytes()).unwrap();
    assert!(body.plain_members.is_none(), "the general path");
    let (out, notes) = collect_notes(|| fast(def, &settings, body));
    assert!(out.is_ok());
    let (_, general_notes) = collect_notes(|| general(def, &settings, &mixed));
    assert_eq!(notes, general_notes);
    let display = notes.iter().find(|n| n.path == "members.display").unwrap();
    assert_eq!(display.count, 2);
    // Outside a collector nothing is kept (and nothing leaks into the next one).
    let _ = fast(
        def,
        &settings,
        WriteBody::parse(def, &settings.tolerances, plain.as_bytes()).unwrap(),
    );
    let ((), none) = collect_notes(|| ());
    assert!(none.is_empty());
}

#[test]
fn plain_lists_take_the_fast_lane() {
    let registry = SchemaRegistry::default();
    let def = registry.group().unwrap();
    let tol = Tolerances::default();
    let text = format!(
        r#"{{{HEAD}, "members": [{{"value": "a", "display": "x"}}, {{"type": "User", "value": "b", "$ref": "https://h/Users/b"}}]}}"#
    );
    let body = WriteBody::parse(def, &tol, text.as_bytes()).unwrap();
    assert_eq!(
        body.plain_members,
        Some(vec![
            MemberRef::new("a"),
            MemberRef {
                value: "b".into(),
                resource_type: Some("User".into())
            }
        ])
    );
    assert!(body.doc.get("members").is_none());
    // Strict mode refuses an echoed display: the general path says so.
    let strict = Tolerances::strict();
    let body = WriteBody::parse(def, &strict, text.as_bytes()).unwrap();
    assert_eq!(body.plain_members, None);
    // One odd element sends the whole list down the general path, in order.
    let text = format!(
        r#"{{{HEAD}, "members": [{{"value": "a"}}, {{"value": "b", "primary": true}}, {{"value": "c"}}]}}"#
    );
    let body = WriteBody::parse(def, &tol, text.as_bytes()).unwrap();
    assert_eq!(body.plain_members, None);
    assert_eq!(
        body.doc["members"],
        serde_json::json!([{"value": "a"}, {"value": "b", "primary": true}, {"value": "c"}])
    );
}

#[test]
fn the_lanes_agree_on_edge_cases() {
    let cases = [
        r#""members": []"#,
        r#""members": null"#,
        r#""members": {"value": "a"}"#,
        r#""members": "a""#,
        r#""members": [null, {"value": "a"}]"#,
        r#""members": [[{"value": "a"}]]"#,
        r#""members": [{"value": "a"}, "b"]"#,
        r#""members": [{"value": 7}]"#,
        r#""members": [{"display": "only"}]"#,
        r#""members": [{"value": "a", "Value": "b"}]"#,
        r#""members": [{"value": "a", "value": "b"}]"#,
        r#""members": [{"val\u0075e": "a", "t\u0079pe": "Group"}]"#,
        r#""members": [{"value": "a", "type": null}]"#,
        r#""members": [{"value": "a", "display": null}]"#,
        r#""members": [{"value": "a", "display": 5}]"#,
        r#""members": [{"value": "a", "x": 1, "y": 2, "z": 3, "w": 4}]"#,
        r#""members": [{"value": "a", "$ref": "u", "type": "User", "display": "d"}]"#,
        r#""Members": [{"value": "a"}]"#,
        r#""members": [{"value": "a"}], "Members": [{"value": "b"}]"#,
        r#""members": [{"value": "a"}], "members": [{"value": "b"}]"#,
        r#""urn:ietf:params:scim:schemas:core:2.0:Group:members": [{"value": "a"}]"#,
        r#""members": [{"value": "a"}], "urn:ietf:params:scim:schemas:core:2.0:Group:members": [{"value": "b"}]"#,
        r#""members": [{"value": "a"}], "id": "x", "meta": {}"#,
    ];
    for settings in [Settings::default(), Settings::strict()] {
        for case in cases {
            agree(&settings, &format!("{{{HEAD}, {case}}}")).unwrap();
        }
        for text in ["[]", "null", "\"x\"", "{", "{} x", "", "  {\"members\": [}"] {
            agree(&settings, text).unwrap();
        }
    }
}

fn json_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("\"u1\"".to_owned()),
        Just("\"u2\"".to_owned()),
        Just("\"User\"".to_owned()),
        Just("null".to_owned()),
        Just("3".to_owned()),
        Just("true".to_owned()),
        Just("{\"value\": \"u1\"}".to_owned()),
        Just("[\"u1\"]".to_owned()),
    ]
}

fn element() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("value"),
        Just("Value"),
        Just("type"),
        Just("display"),
        Just("$ref"),
        Just("primary"),
        Just("operation"),
    ];
    prop_oneof![
        8 => prop::collection::vec((key, json_text()), 0..5).prop_map(|entries| {
            let inner: Vec<String> =
                entries.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
            format!("{{{}}}", inner.join(", "))
        }),
        1 => json_text(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn the_lanes_agree(
        lists in prop::collection::vec(
            (
                prop_oneof![
                    Just("members"),
                    Just("Members"),
                    Just("urn:ietf:params:scim:schemas:core:2.0:Group:members"),
                ],
                prop::collection::vec(element(), 0..6),
            ),
            0..3,
        ),
        strict in any::<bool>(),
    ) {
        let mut text = format!("{{{HEAD}");
        for (key, elems) in &lists {
            text.push_str(&format!(", \"{key}\": [{}]", elems.join(", ")));
        }
        text.push('}');
        let settings = if strict { Settings::strict() } else { Settings::default() };
        agree(&settings, &text)?;
    }
}
