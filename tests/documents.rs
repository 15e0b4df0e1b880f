//! Documents: validation and normalisation (create/replace), projection, typed views, against
//! the RFC 7643 §8 examples and the IdP payload shapes of IDP-QUIRKS.md.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;

use proptest::prelude::*;
use scimkit::resource::{normalize_resource, Group, Projection, User, WriteMode};
use scimkit::schema::{
    AttributeDef, AttributeType, Mutability, ResourceType, Returned, Schema,
    ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA,
};
use scimkit::{
    error::ScimError, schema::ResourceDef, schema::SchemaRegistry, settings::Settings,
    settings::Tolerances,
};
use serde_json::{json, Map, Value};

const ENT: &str = ENTERPRISE_USER_SCHEMA;
const ACME: &str = "urn:ietf:params:scim:schemas:extension:acme:2.0:User";

fn vector(name: &str) -> Value {
    let path = format!("{}/tests/vectors/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The default registry plus a custom `acme` User extension with one attribute of every type
/// and every mutability / returned rule, to cover what the built-in schemas lack.
fn registry() -> SchemaRegistry {
    let mut reg = SchemaRegistry::default();
    let acme = Schema {
        id: ACME.into(),
        name: "Acme".into(),
        description: String::new(),
        attributes: vec![
            AttributeDef::new("level", AttributeType::Integer),
            AttributeDef::new("score", AttributeType::Decimal),
            AttributeDef::date_time("hired"),
            AttributeDef::new("photo", AttributeType::Binary),
            AttributeDef::reference("homepage", &["external"]),
            AttributeDef::string("badgeId").mutability(Mutability::Immutable),
            AttributeDef::string("clearance").read_only(),
            AttributeDef::string("pin")
                .mutability(Mutability::WriteOnly)
                .returned(Returned::Never),
            AttributeDef::string("secretCode").returned(Returned::Request),
            AttributeDef::complex(
                "badge",
                vec![
                    AttributeDef::string("number").required(),
                    AttributeDef::string("issuer").mutability(Mutability::Immutable),
                    AttributeDef::string("color"),
                ],
            ),
            // Shares its name with a core attribute: must never resolve unqualified.
            AttributeDef::string("title"),
        ],
    };
    reg.add_extension("User", acme, false).unwrap();
    reg
}

fn user_rt() -> Arc<ResourceDef> {
    registry().user().unwrap().clone()
}

fn group_rt() -> Arc<ResourceDef> {
    registry().group().unwrap().clone()
}

fn create(input: &Value) -> Result<Value, ScimError> {
    normalize_resource(&user_rt(), input, &Settings::default(), WriteMode::Create)
}

fn create_with(input: &Value, tol: Tolerances) -> Result<Value, ScimError> {
    let mut settings = Settings::default();
    settings.tolerances = tol;
    normalize_resource(&user_rt(), input, &settings, WriteMode::Create)
}

fn strict() -> Settings {
    Settings::strict()
}

/// A user body with the given extra members.
fn user_with(extra: Value) -> Value {
    let mut doc = json!({"schemas": [USER_SCHEMA, ENT, ACME], "userName": "bjensen"});
    for (k, v) in extra.as_object().unwrap() {
        doc.as_object_mut().unwrap().insert(k.clone(), v.clone());
    }
    doc
}

fn assert_err(r: Result<Value, ScimError>, status: u16, scim_type: &str, names: &str, ctx: &str) {
    let err = match r {
        Ok(v) => panic!("{ctx}: expected {scim_type}, got Ok({v})"),
        Err(e) => e,
    };
    assert_eq!(err.status().as_u16(), status, "{ctx}: {err}");
    assert_eq!(
        err.scim_type().map(|t| t.as_str()),
        Some(scim_type),
        "{ctx}: {err}"
    );
    assert!(
        err.detail().contains(names),
        "{ctx}: detail `{}` does not name `{names}`",
        err.detail()
    );
    let body = err.to_body();
    assert_eq!(body["scimType"], scim_type);
    assert_eq!(body["status"], status.to_string());
}

/// What a client-side write of a returned resource keeps: the vector without the readOnly
/// parts (`id`, `meta`, `groups`, `members[].display`, `manager.displayName`).
fn without_read_only(v: &Value) -> Value {
    let mut v = v.clone();
    let obj = v.as_object_mut().unwrap();
    obj.remove("id");
    obj.remove("meta");
    obj.remove("groups");
    if let Some(Value::Array(members)) = obj.get_mut("members") {
        for m in members {
            m.as_object_mut().unwrap().remove("display");
        }
    }
    if let Some(manager) = obj.get_mut(ENT).and_then(|e| e.get_mut("manager")) {
        manager.as_object_mut().unwrap().remove("displayName");
    }
    v
}

/// Upper-cases every object key (URN keys included), recursively.
fn upper_keys(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.to_uppercase(), upper_keys(v)))
                .collect::<Map<_, _>>(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(upper_keys).collect()),
        other => other.clone(),
    }
}

fn rt_for(v: &Value) -> Arc<ResourceDef> {
    if v["schemas"][0] == GROUP_SCHEMA {
        group_rt()
    } else {
        user_rt()
    }
}

// ---------------------------------------------------------------------------------------------
// RFC 7643 §8 vectors
// ---------------------------------------------------------------------------------------------

const RFC_VECTORS: [&str; 4] = [
    "rfc7643_8_1_minimal_user",
    "rfc7643_8_2_full_user",
    "rfc7643_8_3_enterprise_user",
    "rfc7643_8_4_group",
];

#[test]
fn rfc_vectors_normalise_to_their_writable_part() {
    for name in RFC_VECTORS {
        let v = vector(name);
        let rt = rt_for(&v);
        let out = normalize_resource(&rt, &v, &Settings::default(), WriteMode::Create)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(out, without_read_only(&v), "{name}");
        // The writable part is valid RFC-literal input too, and a fixed point.
        let strict_out =
            normalize_resource(&rt, &without_read_only(&v), &strict(), WriteMode::Create)
                .unwrap_or_else(|e| panic!("{name} (strict): {e}"));
        assert_eq!(strict_out, out, "{name}");
        // Names are case-insensitive, URN keys included.
        let shouted = normalize_resource(
            &rt,
            &upper_keys(&v),
            &Settings::default(),
            WriteMode::Create,
        )
        .unwrap_or_else(|e| panic!("{name} (upper-cased keys): {e}"));
        assert_eq!(shouted, out, "{name}");
    }
}

#[test]
fn rfc_vectors_round_trip_through_typed_views() {
    for name in RFC_VECTORS {
        let v = vector(name);
        if v["schemas"][0] == GROUP_SCHEMA {
            let g = Group::try_from(&v).unwrap();
            assert_eq!(g.display_name, "Tour Guides");
            assert_eq!(g.members.len(), 2);
            assert_eq!(g.members[1].display.as_deref(), Some("Mandy Pepperidge"));
            assert_eq!(g.to_value(), v, "{name}");
        } else {
            let u = User::try_from(&v).unwrap();
            assert!(
                u.user_name.eq_ignore_ascii_case("bjensen@example.com") || name.contains("8_1")
            );
            assert_eq!(u.meta.as_ref().unwrap().resource_type, "User");
            assert_eq!(u.to_value(), v, "{name}");
        }
    }
    let ent = User::try_from(&vector("rfc7643_8_3_enterprise_user")).unwrap();
    let e = ent.enterprise.unwrap();
    assert_eq!(e.employee_number.as_deref(), Some("701984"));
    assert_eq!(
        e.manager.unwrap().display_name.as_deref(),
        Some("John Smith")
    );
    let full = User::try_from(&vector("rfc7643_8_2_full_user")).unwrap();
    assert_eq!(full.addresses[0].postal_code.as_deref(), Some("91608"));
    assert_eq!(full.phone_numbers[1].kind.as_deref(), Some("mobile"));
    assert_eq!(full.groups.len(), 3);
    assert_eq!(full.name.unwrap().middle_name.as_deref(), Some("Jane"));
}

#[test]
fn rfc_vectors_returned_form_hides_password_and_keeps_always_attributes() {
    for name in RFC_VECTORS {
        let v = vector(name);
        let rt = rt_for(&v);
        let returned = Projection::default().apply(&rt, &v);
        let mut expected = v.clone();
        expected.as_object_mut().unwrap().remove("password");
        // Group `members.display` is derived by the service and `returned: request`.
        if let Some(members) = expected.get_mut("members").and_then(Value::as_array_mut) {
            for m in members {
                m.as_object_mut().unwrap().remove("display");
            }
        }
        assert_eq!(returned, expected, "{name}");
        for p in [
            Projection::parse(Some("password"), None).unwrap(),
            Projection::parse(None, Some("id,meta,schemas")).unwrap(),
        ] {
            let out = p.apply(&rt, &v);
            assert!(out.get("password").is_none(), "{name}");
            assert_eq!(out["id"], v["id"], "{name}");
            assert_eq!(out["meta"], v["meta"], "{name}");
            assert_eq!(out["schemas"], v["schemas"], "{name}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Attribute types
// ---------------------------------------------------------------------------------------------

#[test]
fn every_attribute_type_valid_and_invalid() {
    let acme = |name: &str, v: Value| user_with(json!({ACME: {name: v}}));
    // (input, expected value at (scope, name) or error (scimType, name in detail))
    let valid: Vec<(Value, Option<&str>, &str, Value)> = vec![
        (json!({"userName": "b"}), None, "userName", json!("b")),
        (json!({"active": true}), None, "active", json!(true)),
        (json!({"active": "False"}), None, "active", json!(false)),
        (acme("level", json!(3)), Some(ACME), "level", json!(3)),
        (acme("level", json!(-3)), Some(ACME), "level", json!(-3)),
        (acme("score", json!(2.5)), Some(ACME), "score", json!(2.5)),
        (acme("score", json!(2)), Some(ACME), "score", json!(2)),
        (
            acme("hired", json!("2011-05-13T04:42:34Z")),
            Some(ACME),
            "hired",
            json!("2011-05-13T04:42:34Z"),
        ),
        (
            acme("hired", json!("2011-05-13T04:42:34.123+02:00")),
            Some(ACME),
            "hired",
            json!("2011-05-13T04:42:34.123+02:00"),
        ),
        (
            acme("photo", json!("aGVsbG8=")),
            Some(ACME),
            "photo",
            json!("aGVsbG8="),
        ),
        (
            acme("homepage", json!("https://x.example/")),
            Some(ACME),
            "homepage",
            json!("https://x.example/"),
        ),
        (
            json!({"name": {"givenName": "B"}}),
            None,
            "name",
            json!({"givenName": "B"}),
        ),
        (
            json!({"emails": [{"value": "a@x.com"}]}),
            None,
            "emails",
            json!([{"value": "a@x.com"}]),
        ),
        // A bare string for a complex attribute with a `value` sub-attribute becomes
        // `{"value": ...}` (normalize_value's `manager_as_string` tolerance).
        (
            json!({"emails": "a@x.com"}),
            None,
            "emails",
            json!([{"value": "a@x.com"}]),
        ),
        (
            json!({"x509Certificates": [{"value": "TUlJRA=="}]}),
            None,
            "x509Certificates",
            json!([{"value": "TUlJRA=="}]),
        ),
    ];
    for (extra, scope, name, expected) in valid {
        let input = user_with(extra.clone());
        let out = create(&input).unwrap_or_else(|e| panic!("{extra}: {e}"));
        let got = match scope {
            None => &out[name],
            Some(urn) => &out[urn][name],
        };
        assert_eq!(got, &expected, "{extra}");
    }

    let invalid: Vec<(Value, &str, &str)> = vec![
        (json!({"userName": 5}), "invalidValue", "userName"),
        (json!({"userName": ["a"]}), "invalidValue", "userName"),
        (json!({"userName": {"a": 1}}), "invalidValue", "userName"),
        (json!({"active": "yes"}), "invalidValue", "active"),
        (json!({"active": 1}), "invalidValue", "active"),
        (acme("level", json!(2.5)), "invalidValue", "level"),
        (acme("level", json!("3")), "invalidValue", "level"),
        (acme("score", json!("2.5")), "invalidValue", "score"),
        (acme("hired", json!("yesterday")), "invalidValue", "hired"),
        (acme("hired", json!(1305261754)), "invalidValue", "hired"),
        (acme("photo", json!("not base64!")), "invalidValue", "photo"),
        (acme("photo", json!(7)), "invalidValue", "photo"),
        (acme("homepage", json!(true)), "invalidValue", "homepage"),
        (json!({"name": "Barbara"}), "invalidValue", "name"),
        (
            json!({"name": [{"givenName": "B"}]}),
            "invalidValue",
            "name",
        ),
        (
            json!({"name": {"givenName": 3}}),
            "invalidValue",
            "name.givenName",
        ),
        (json!({"emails": 5}), "invalidValue", "emails"),
        (
            json!({"emails": [[{"value": "a"}]]}),
            "invalidValue",
            "emails[0]",
        ),
        (
            json!({"emails": [{"value": "a", "primary": true}, {"value": "b", "primary": "True"}]}),
            "invalidValue",
            "emails",
        ),
        (
            json!({"emails": [{"value": 3}]}),
            "invalidValue",
            "emails[0].value",
        ),
        (
            json!({"x509Certificates": [{"value": "%%%"}]}),
            "invalidValue",
            "x509Certificates[0].value",
        ),
    ];
    for (extra, scim_type, name) in invalid {
        let input = user_with(extra.clone());
        assert_err(create(&input), 400, scim_type, name, &extra.to_string());
    }
}

// ---------------------------------------------------------------------------------------------
// Document rules and bad inputs
// ---------------------------------------------------------------------------------------------

#[test]
fn bad_documents_give_status_type_and_a_detail_naming_the_attribute() {
    let required_ext_rt = {
        let mut reg = SchemaRegistry::default();
        reg.register_schema(Schema {
            id: "urn:example:Device".into(),
            name: "Device".into(),
            description: String::new(),
            attributes: vec![AttributeDef::string("serial").required()],
        })
        .unwrap();
        reg.register_resource_type(
            ResourceType::new("Device", "/Devices", "urn:example:Device")
                .with_extension(ACME, true),
        )
        .unwrap_err(); // acme is not registered in this registry
        reg.register_schema(Schema {
            id: "urn:example:DeviceExt".into(),
            name: "DeviceExt".into(),
            description: String::new(),
            attributes: vec![AttributeDef::string("owner").required()],
        })
        .unwrap();
        reg.register_resource_type(
            ResourceType::new("Device", "/Devices", "urn:example:Device")
                .with_extension("urn:example:DeviceExt", true),
        )
        .unwrap();
        reg.resource_type("Device").unwrap().clone()
    };
    let user = user_rt();
    let group = group_rt();
    let dflt = Settings::default();
    let cases: Vec<(&ResourceDef, Value, &Settings, &str, &str)> = vec![
        (&user, json!([1]), &dflt, "invalidSyntax", "JSON object"),
        (&user, json!("x"), &dflt, "invalidSyntax", "JSON object"),
        (
            &user,
            json!({"userName": "b"}),
            &dflt,
            "invalidValue",
            "schemas",
        ),
        (
            &user,
            json!({"schemas": [GROUP_SCHEMA], "userName": "b"}),
            &dflt,
            "invalidValue",
            USER_SCHEMA,
        ),
        (
            &user,
            json!({"schemas": 5, "userName": "b"}),
            &dflt,
            "invalidValue",
            "schemas",
        ),
        (
            &user,
            json!({"schemas": [USER_SCHEMA, 7], "userName": "b"}),
            &dflt,
            "invalidValue",
            "schemas[1]",
        ),
        (
            &user,
            json!({"schemas": [USER_SCHEMA], "Schemas": [USER_SCHEMA], "userName": "b"}),
            &dflt,
            "invalidSyntax",
            "schemas",
        ),
        (
            &user,
            json!({"schemas": [USER_SCHEMA]}),
            &dflt,
            "invalidValue",
            "userName",
        ),
        (
            &user,
            json!({"schemas": [USER_SCHEMA], "userName": null}),
            &dflt,
            "invalidValue",
            "userName",
        ),
        (
            &user,
            json!({"schemas": [USER_SCHEMA], "userName": "a", "USERNAME": "b"}),
            &dflt,
            "invalidSyntax",
            "userName",
        ),
        (
            &user,
            json!({"schemas": [USER_SCHEMA], "userName": "a",
                   ENT: {"department": "x"}, format!("{ENT}:department"): "y"}),
            &dflt,
            "invalidSyntax",
            "department",
        ),
        (
            &user,
            json!({"schemas": [USER_SCHEMA], "userName": "a", ENT: "R&D"}),
            &dflt,
            "invalidValue",
            ENT,
        ),
        (
            &group,
            json!({"schemas": [GROUP_SCHEMA], "members": []}),
            &dflt,
            "invalidValue",
            "displayName",
        ),
        (
            &group,
            json!({"schemas": [GROUP_SCHEMA], "displayName": "g", "members": [{"value": 5}]}),
            &dflt,
            "invalidValue",
            "members[0].value",
        ),
        (
            &user,
            user_with(json!({ACME: {"badge": {"color": "red"}}})),
            &dflt,
            "invalidValue",
            "badge.number",
        ),
        (
            &required_ext_rt,
            json!({"schemas": ["urn:example:Device"], "serial": "1"}),
            &dflt,
            "invalidValue",
            "urn:example:DeviceExt",
        ),
        (
            &required_ext_rt,
            json!({"schemas": ["urn:example:Device"], "serial": "1",
                   "urn:example:DeviceExt": {"color": "x"}}),
            &dflt,
            "invalidValue",
            "urn:example:DeviceExt",
        ),
        (
            &required_ext_rt,
            json!({"schemas": ["urn:example:Device"], "serial": "1",
                   "urn:example:DeviceExt": {"owner": 1}}),
            &dflt,
            "invalidValue",
            "urn:example:DeviceExt:owner",
        ),
    ];
    for (rt, input, settings, scim_type, names) in cases {
        let r = normalize_resource(rt, &input, settings, WriteMode::Create);
        assert_err(r, 400, scim_type, names, &input.to_string());
    }
    let ok = normalize_resource(
        &required_ext_rt,
        &json!({"schemas": ["urn:example:Device"], "serial": "1",
                "URN:EXAMPLE:DEVICEEXT": {"OWNER": "me"}}),
        &dflt,
        WriteMode::Create,
    )
    .unwrap();
    assert_eq!(
        ok,
        json!({"schemas": ["urn:example:Device", "urn:example:DeviceExt"], "serial": "1",
               "urn:example:DeviceExt": {"owner": "me"}})
    );
}

#[test]
fn output_is_canonical_and_describes_its_extensions() {
    let input = json!({
        "schemas": [USER_SCHEMA.to_uppercase(), ENT, "urn:unknown:ext"],
        "urn:ietf:params:scim:schemas:extension:acme:2.0:USER": {"Level": 2},
        "UserName": "b",
        "emails": {"VALUE": "a@x.com"},
        "employeeNumber": "7",
    });
    let out = create(&input).unwrap();
    assert_eq!(
        out,
        json!({
            "schemas": [USER_SCHEMA, ENT, ACME],
            "userName": "b",
            "emails": [{"value": "a@x.com"}],
            ENT: {"employeeNumber": "7"},
            ACME: {"level": 2},
        })
    );
    // Key order follows the schema, whatever the input order.
    let keys: Vec<&String> = out.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["schemas", "userName", "emails", ENT, ACME]);
    // An extension listed in `schemas` without data is accepted and left out (Entra).
    let out = create(&json!({"schemas": [USER_SCHEMA, ENT], "userName": "b"})).unwrap();
    assert_eq!(out, json!({"schemas": [USER_SCHEMA], "userName": "b"}));
    // `title` exists in core and acme: unqualified it is the core one.
    let out = create(&user_with(json!({"title": "Boss"}))).unwrap();
    assert_eq!(out["title"], "Boss");
    assert!(out.get(ACME).is_none());
}

#[test]
fn read_only_echo_is_ignored_okta_put() {
    let rt = user_rt();
    let settings = Settings::default();
    // The stored user, created from Okta's POST (password and empty groups included).
    let stored = normalize_resource(
        &rt,
        &json!({"schemas": [USER_SCHEMA], "userName": "bjensen@example.com",
                "password": "first", "groups": [], "active": true,
                "name": {"givenName": "Barbara", "familyName": "Jensen"}}),
        &settings,
        WriteMode::Create,
    )
    .unwrap();
    assert_eq!(stored["password"], "first");
    assert!(stored.get("groups").is_none());
    // Okta GETs the user and PUTs the response back with its changes.
    let echo = vector("okta_put_user_echo");
    let out = normalize_resource(
        &rt,
        &echo,
        &settings,
        WriteMode::Replace { existing: &stored },
    )
    .unwrap();
    for ro in ["id", "meta", "groups"] {
        assert!(out.get(ro).is_none(), "{ro} must not be stored");
    }
    assert_eq!(out["active"], false);
    assert_eq!(out["password"], "uIbjT2ks");
    assert_eq!(out["externalId"], "00u1esetvtRGcjSZ80h8");
    // In strict mode the same echo is refused, naming the readOnly attribute.
    let r = normalize_resource(
        &rt,
        &echo,
        &strict(),
        WriteMode::Replace { existing: &stored },
    );
    assert_err(r, 400, "mutability", "id", "strict echo");
    // A PUT of the returned form (no password: never returned) keeps the stored password.
    let returned = Projection::default().apply(&rt, &stored);
    assert!(returned.get("password").is_none());
    let out = normalize_resource(
        &rt,
        &returned,
        &settings,
        WriteMode::Replace { existing: &stored },
    )
    .unwrap();
    assert_eq!(out["password"], "first");
}

#[test]
fn okta_group_put_with_member_display_echo() {
    let rt = group_rt();
    let stored = normalize_resource(
        &rt,
        &json!({"schemas": [GROUP_SCHEMA], "displayName": "Tour Guides", "members": []}),
        &Settings::default(),
        WriteMode::Create,
    )
    .unwrap();
    let put = json!({
        "schemas": [GROUP_SCHEMA],
        "id": "e9e30dba",
        "displayName": "Tour Guides",
        "members": [{"value": "u1", "display": null}, {"value": "u2", "display": "Mandy"}],
    });
    let out = normalize_resource(
        &rt,
        &put,
        &Settings::default(),
        WriteMode::Replace { existing: &stored },
    )
    .unwrap();
    assert_eq!(out["members"], json!([{"value": "u1"}, {"value": "u2"}]));
    let put_without_id = json!({
        "schemas": [GROUP_SCHEMA],
        "displayName": "Tour Guides",
        "members": [{"value": "u1"}, {"value": "u2", "display": "Mandy"}],
    });
    let r = normalize_resource(
        &rt,
        &put_without_id,
        &strict(),
        WriteMode::Replace { existing: &stored },
    );
    assert_err(
        r,
        400,
        "mutability",
        "members[1].display",
        "strict group put",
    );
    let r = normalize_resource(
        &rt,
        &put,
        &strict(),
        WriteMode::Replace { existing: &stored },
    );
    assert_err(r, 400, "mutability", "id", "strict group put with id");
    // `display: null` alone is unassigned, so strict mode accepts it if nulls are tolerated.
    let mut settings = Settings::default();
    settings.tolerances = Tolerances::strict();
    settings.tolerances.null_as_absent = true;
    let only_null = json!({"schemas": [GROUP_SCHEMA], "displayName": "g",
                           "members": [{"value": "u1", "display": null}]});
    assert!(normalize_resource(&rt, &only_null, &settings, WriteMode::Create).is_ok());
}

#[test]
fn immutable_attributes_on_replace() {
    let rt = user_rt();
    let s = Settings::default();
    let stored = create(&user_with(
        json!({ACME: {"badgeId": "B-1", "badge": {"number": "7", "issuer": "HQ"}}}),
    ))
    .unwrap();
    let put = |acme: Value| {
        normalize_resource(
            &rt,
            &user_with(json!({ ACME: acme })),
            &s,
            WriteMode::Replace { existing: &stored },
        )
    };
    // Same value (case-insensitive: not caseExact) is fine.
    let out = put(json!({"badgeId": "b-1", "badge": {"number": "8", "issuer": "HQ"}})).unwrap();
    assert_eq!(out[ACME]["badge"], json!({"number": "8", "issuer": "HQ"}));
    // Omitted: kept.
    let out = put(json!({"badge": {"number": "8"}})).unwrap();
    assert_eq!(out[ACME]["badgeId"], "B-1");
    assert_eq!(out[ACME]["badge"]["issuer"], "HQ");
    // Changed: mutability.
    assert_err(
        put(json!({"badgeId": "B-2", "badge": {"number": "7"}})),
        400,
        "mutability",
        &format!("{ACME}:badgeId"),
        "badgeId",
    );
    assert_err(
        put(json!({"badge": {"number": "7", "issuer": "Branch"}})),
        400,
        "mutability",
        "badge.issuer",
        "badge.issuer",
    );
    // On create, and when the stored resource has no value, it may be set.
    let empty = create(&user_with(json!({}))).unwrap();
    let out = normalize_resource(
        &rt,
        &user_with(json!({ACME: {"badgeId": "B-9"}})),
        &s,
        WriteMode::Replace { existing: &empty },
    )
    .unwrap();
    assert_eq!(out[ACME]["badgeId"], "B-9");
    // Members are compared as elements: replacing the list is allowed although
    // `members.value` is immutable.
    let g = group_rt();
    let stored = normalize_resource(
        &g,
        &json!({"schemas": [GROUP_SCHEMA], "displayName": "g", "members": [{"value": "u1"}]}),
        &s,
        WriteMode::Create,
    )
    .unwrap();
    let out = normalize_resource(
        &g,
        &json!({"schemas": [GROUP_SCHEMA], "displayName": "g", "members": [{"value": "u2"}]}),
        &s,
        WriteMode::Replace { existing: &stored },
    )
    .unwrap();
    assert_eq!(out["members"], json!([{"value": "u2"}]));
}

#[test]
fn write_only_is_stored_but_never_returned() {
    let rt = user_rt();
    let stored = create(&user_with(
        json!({"password": "s3cret", ACME: {"pin": "1234"}}),
    ))
    .unwrap();
    assert_eq!(stored["password"], "s3cret");
    assert_eq!(stored[ACME]["pin"], "1234");
    let mut with_meta = stored.clone();
    with_meta
        .as_object_mut()
        .unwrap()
        .insert("id".into(), json!("1"));
    for (attrs, excluded) in [
        (None::<String>, None),
        (Some("password".to_owned()), None),
        (Some(format!("{ACME}:pin")), None),
        (Some(ACME.to_owned()), None),
        (None, Some("userName")),
    ] {
        let p = Projection::parse(attrs.as_deref(), excluded).unwrap();
        let out = p.apply(&rt, &with_meta);
        assert!(out.get("password").is_none(), "{attrs:?}");
        assert!(
            out.get(ACME).and_then(|a| a.get("pin")).is_none(),
            "{attrs:?}"
        );
        assert!(!p.includes(&rt, "password"));
        let text = out.to_string();
        assert!(!text.contains("s3cret") && !text.contains("1234"), "{text}");
    }
}

// ---------------------------------------------------------------------------------------------
// Tolerances: each one on (default) accepts, and switched off alone rejects.
// ---------------------------------------------------------------------------------------------

#[test]
fn every_document_tolerance_strict_and_tolerant() {
    type Switch = fn(&mut Tolerances);
    let cases: Vec<(&str, Switch, Value, Value, &str, &str)> = vec![
        (
            "string_booleans",
            |t| t.string_booleans = false,
            json!({"active": "True", "emails": [{"value": "a", "primary": "false"}]}),
            json!({"active": true, "emails": [{"value": "a", "primary": false}]}),
            "invalidValue",
            "active",
        ),
        (
            "single_value_as_array",
            |t| t.single_value_as_array = false,
            json!({"emails": {"value": "a@x.com", "type": "work"}}),
            json!({"emails": [{"value": "a@x.com", "type": "work"}]}),
            "invalidValue",
            "emails",
        ),
        (
            "null_as_absent",
            |t| t.null_as_absent = false,
            json!({"addresses": null, "nickName": null}),
            json!({}),
            "invalidValue",
            "addresses",
        ),
        (
            "null_as_absent (sub-attribute)",
            |t| t.null_as_absent = false,
            json!({"name": {"givenName": "B", "middleName": null}}),
            json!({"name": {"givenName": "B"}}),
            "invalidValue",
            "name.middleName",
        ),
        (
            "ignore_unknown_attributes",
            |t| t.ignore_unknown_attributes = false,
            json!({"favouriteColour": "blue"}),
            json!({}),
            "invalidSyntax",
            "favouriteColour",
        ),
        (
            "ignore_unknown_attributes (sub-attribute)",
            |t| t.ignore_unknown_attributes = false,
            json!({"emails": [{"value": "a", "verified": true}]}),
            json!({"emails": [{"value": "a"}]}),
            "invalidSyntax",
            "emails[0].verified",
        ),
        (
            "ignore_unknown_attributes (extension)",
            |t| t.ignore_unknown_attributes = false,
            json!({ENT: {"department": "R&D", "floor": 3}}),
            json!({ENT: {"department": "R&D"}}),
            "invalidSyntax",
            "floor",
        ),
        (
            "ignore_unknown_schemas (in schemas)",
            |t| t.ignore_unknown_schemas = false,
            json!({"schemas": [USER_SCHEMA, "urn:ietf:params:scim:schemas:extension:enterprise:2.0User"]}),
            json!({}),
            "invalidValue",
            "enterprise:2.0User",
        ),
        (
            "ignore_unknown_schemas (extension object)",
            |t| t.ignore_unknown_schemas = false,
            json!({"urn:example:other:2.0:User": {"x": 1}}),
            json!({}),
            "invalidValue",
            "urn:example:other:2.0:User",
        ),
        (
            "ignore_read_only_input",
            |t| t.ignore_read_only_input = false,
            json!({"id": "abc", "meta": {"resourceType": "User"}}),
            json!({}),
            "mutability",
            "id",
        ),
        (
            "ignore_read_only_input (groups)",
            |t| t.ignore_read_only_input = false,
            json!({"groups": [{"value": "g1"}]}),
            json!({}),
            "mutability",
            "groups",
        ),
        (
            "ignore_read_only_input (sub-attribute)",
            |t| t.ignore_read_only_input = false,
            json!({ENT: {"manager": {"value": "m1", "displayName": "Boss"}}}),
            json!({ENT: {"manager": {"value": "m1"}}}),
            "mutability",
            "manager.displayName",
        ),
        (
            "manager_as_string",
            |t| t.manager_as_string = false,
            json!({ENT: {"manager": "271"}}),
            json!({ENT: {"manager": {"value": "271"}}}),
            "invalidValue",
            "manager",
        ),
        (
            // Switched off, the name is an unknown attribute: rejected only when unknown
            // attributes are (with them ignored it is dropped, checked below).
            "unqualified_extension_attributes",
            |t| {
                t.unqualified_extension_attributes = false;
                t.ignore_unknown_attributes = false;
            },
            json!({"department": "R&D"}),
            json!({ENT: {"department": "R&D"}}),
            "invalidSyntax",
            "department",
        ),
    ];
    for (name, switch_off, extra, expected_extra, scim_type, names) in cases {
        let input = user_with(extra.clone());
        let out = create(&input).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut expected = json!({"schemas": [USER_SCHEMA], "userName": "bjensen"});
        let exp = expected.as_object_mut().unwrap();
        for (k, v) in expected_extra.as_object().unwrap() {
            exp.insert(k.clone(), v.clone());
        }
        if exp.contains_key(ENT) {
            exp.insert("schemas".into(), json!([USER_SCHEMA, ENT]));
        }
        // Compare without key order.
        assert_eq!(out, expected, "{name}");

        let mut tol = Tolerances::default();
        switch_off(&mut tol);
        let r = create_with(&input, tol);
        // With `ignore_unknown_attributes` off, an unqualified extension name is unknown.
        assert_err(r, 400, scim_type, names, name);
        // Fully strict rejects too.
        assert!(create_with(&input, Tolerances::strict()).is_err(), "{name}");
    }
    // In strict mode `ignore_unknown_attributes` still on: the unqualified name is dropped.
    let mut tol = Tolerances::default();
    tol.unqualified_extension_attributes = false;
    let out = create_with(&user_with(json!({"department": "R&D"})), tol).unwrap();
    assert!(out.get(ENT).is_none());
}

#[test]
fn idp_request_vectors() {
    let out = create(&vector("entra_post_user")).unwrap();
    assert_eq!(out["active"], true);
    assert_eq!(
        out["emails"],
        json!([{"value": "Test_User@contoso.com", "type": "work", "primary": true}])
    );
    assert_eq!(out[ENT], json!({"department": "Tour Operations"}));
    assert_eq!(out["schemas"], json!([USER_SCHEMA, ENT]));
    for gone in ["meta", "roles", "addresses", "phoneNumbers"] {
        assert!(out.get(gone).is_none(), "{gone}");
    }
    assert!(normalize_resource(
        &user_rt(),
        &vector("entra_post_user"),
        &strict(),
        WriteMode::Create
    )
    .is_err());

    let g = normalize_resource(
        &group_rt(),
        &vector("entra_post_group"),
        &Settings::default(),
        WriteMode::Create,
    )
    .unwrap();
    assert_eq!(
        g,
        json!({"schemas": [GROUP_SCHEMA], "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
               "displayName": "Group1"})
    );
    let r = normalize_resource(
        &group_rt(),
        &vector("entra_post_group"),
        &strict(),
        WriteMode::Create,
    );
    assert_err(
        r,
        400,
        "invalidValue",
        "schemas.microsoft.com",
        "entra group strict",
    );

    let out = create(&vector("onelogin_user_single_email")).unwrap();
    assert_eq!(out["emails"][0]["value"], "jdoe@example.com");
}

// ---------------------------------------------------------------------------------------------
// Projection
// ---------------------------------------------------------------------------------------------

fn stored_enterprise_user() -> Value {
    let mut v = vector("rfc7643_8_3_enterprise_user");
    v.as_object_mut()
        .unwrap()
        .insert(ACME.into(), json!({"secretCode": "X", "level": 3}));
    v
}

#[test]
fn projection_cases() {
    let user = user_rt();
    let doc = stored_enterprise_user();
    let secret = format!("{ACME}:secretCode");
    let always = |mut extra: Value| {
        let obj = extra.as_object_mut().unwrap();
        obj.insert("schemas".into(), doc["schemas"].clone());
        obj.insert("id".into(), doc["id"].clone());
        obj.insert("meta".into(), doc["meta"].clone());
        extra
    };
    let cases: Vec<(Option<&str>, Option<&str>, Value)> = vec![
        (
            Some("emails.value"),
            None,
            always(
                json!({"emails": [{"value": "bjensen@example.com"}, {"value": "babs@jensen.org"}]}),
            ),
        ),
        (
            Some("EMAILS.VALUE,UserName"),
            None,
            always(json!({"userName": "bjensen@example.com",
                          "emails": [{"value": "bjensen@example.com"}, {"value": "babs@jensen.org"}]})),
        ),
        (
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"),
            None,
            always(json!({ENT: {"manager": doc[ENT]["manager"].clone()}})),
        ),
        (
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value"),
            None,
            always(json!({ENT: {"manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}}})),
        ),
        (
            Some("urn:ietf:params:scim:schemas:core:2.0:User:name.givenName"),
            None,
            always(json!({"name": {"givenName": "Barbara"}})),
        ),
        (
            Some("employeeNumber"),
            None,
            always(json!({ENT: {"employeeNumber": "701984"}})),
        ),
        (Some("nosuch"), None, always(json!({}))),
        (Some("id"), None, always(json!({}))),
        (
            Some(secret.as_str()),
            None,
            always(json!({ACME: {"secretCode": "X"}})),
        ),
    ];
    for (attrs, excluded, expected) in cases {
        let p = Projection::parse(attrs, excluded).unwrap();
        assert_eq!(p.apply(&user, &doc), expected, "{attrs:?} / {excluded:?}");
    }

    // excludedAttributes: default set minus the named, never the `always` ones.
    let p = Projection::parse(
        None,
        Some("emails, name.familyName, urn:ietf:params:scim:schemas:extension:enterprise:2.0:User, id, meta"),
    )
    .unwrap();
    let out = p.apply(&user, &doc);
    assert!(out.get("emails").is_none());
    assert!(out["name"].get("familyName").is_none());
    assert_eq!(out["name"]["givenName"], "Barbara");
    assert!(out.get(ENT).is_none());
    assert_eq!(out["id"], doc["id"]);
    assert_eq!(out["meta"], doc["meta"]);
    assert_eq!(out["userName"], doc["userName"]);
    // `request` attributes only when asked; `never` ones never.
    assert_eq!(out[ACME], json!({"level": 3}));
    let out = Projection::default().apply(&user, &doc);
    assert_eq!(out[ACME], json!({"level": 3}));
    assert!(out.get("password").is_none());
    assert!(!Projection::default().includes(&user, &format!("{ACME}:secretCode")));
    let p = Projection::parse(Some(&format!("{ACME}:secretCode")), None).unwrap();
    assert!(p.includes(&user, &format!("{ACME}:secretcode")));
    assert!(!p.includes(&user, "userName"));
    assert!(p.includes(&user, "meta.created"));
}

#[test]
fn projection_group_members() {
    let group = group_rt();
    let doc = vector("rfc7643_8_4_group");
    let p = Projection::parse(None, Some("members")).unwrap();
    let out = p.apply(&group, &doc);
    let mut expected = doc.clone();
    expected.as_object_mut().unwrap().remove("members");
    assert_eq!(out, expected);
    assert!(!p.includes(&group, "members"));
    assert!(!p.includes(&group, "MEMBERS.value"));
    assert!(p.includes(&group, "displayName"));
    assert!(Projection::default().includes(&group, "members"));
    let p = Projection::parse(Some("members.value"), None).unwrap();
    assert!(p.includes(&group, "members"));
    assert!(p.includes(&group, "members.value"));
    assert!(!p.includes(&group, "members.display"));
    assert_eq!(
        p.apply(&group, &doc)["members"],
        json!([{"value": "2819c223-7f76-453a-919d-413861904646"},
               {"value": "902c246b-6245-4190-8e05-00816be7344a"}])
    );
    let p = Projection::parse(Some("displayName"), Some("displayName")).unwrap();
    assert!(p.apply(&group, &doc).get("displayName").is_none());
    assert!(!p.includes(&group, "nosuch"));
    assert!(!p.includes(&group, "bad name"));
}

#[test]
fn projection_parse_errors() {
    for (a, e, param) in [
        (Some("userName,,bad name"), None, "attributes"),
        (None, Some("urn:foo:"), "excludedAttributes"),
        (Some("name.given.x"), None, "attributes"),
    ] {
        let err = Projection::parse(a, e).unwrap_err();
        assert_eq!(err.status().as_u16(), 400);
        assert_eq!(err.scim_type().map(|t| t.as_str()), Some("invalidPath"));
        assert!(err.detail().contains(param), "{}", err.detail());
    }
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

fn key_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "schemas", "userName", "USERNAME", "name", "givenName", "emails", "value", "primary",
            "type", "active", "id", "meta", "groups", "members", "display", "displayName",
            "password", "externalId", "manager", "employeeNumber", "department", "badge",
            "number", "issuer", "badgeId", "level", "hired", "photo", "x509Certificates",
            "$ref", "addresses", "title",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
            "urn:ietf:params:scim:schemas:extension:acme:2.0:User",
            "urn:ietf:params:scim:schemas:core:2.0:User:userName",
            "urn:x:",
        ])
        .prop_map(str::to_owned),
        1 => "[a-zA-Z:$._ ]{0,12}",
    ]
}

fn scalar_strategy() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop::sample::select(vec![
            USER_SCHEMA,
            GROUP_SCHEMA,
            ENT,
            ACME,
            "True",
            "false",
            "2011-05-13T04:42:34Z",
            "aGVsbG8=",
            "",
            "x",
        ])
        .prop_map(Value::from),
        ".{0,8}".prop_map(Value::from),
    ]
}

fn json_strategy() -> impl Strategy<Value = Value> {
    scalar_strategy().prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key_strategy(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// A body that at least names the core schema, so generation reaches the attribute rules.
fn body_strategy() -> impl Strategy<Value = Value> {
    (json_strategy(), any::<bool>()).prop_map(|(v, add_schemas)| match v {
        Value::Object(mut m) if add_schemas => {
            m.insert(
                "schemas".into(),
                json!([USER_SCHEMA, GROUP_SCHEMA, ENT, ACME]),
            );
            m.insert("userName".into(), json!("u"));
            m.insert("displayName".into(), json!("d"));
            Value::Object(m)
        }
        other => other,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Any JSON value gives Ok or a 4xx ScimError, never a panic; what is accepted is a fixed
    /// point, is valid in strict mode, and projects without panicking.
    #[test]
    fn normalize_never_panics(input in body_strategy(), existing in body_strategy()) {
        let user = user_rt();
        let group = group_rt();
        for rt in [&user, &group] {
            for settings in [Settings::default(), Settings::strict()] {
                for mode in [WriteMode::Create, WriteMode::Replace { existing: &existing }] {
                    match normalize_resource(rt, &input, &settings, mode) {
                        Ok(out) => {
                            let again = normalize_resource(rt, &out, &settings, WriteMode::Create);
                            prop_assert_eq!(again.as_ref().ok(), Some(&out));
                            let strict_again =
                                normalize_resource(rt, &out, &Settings::strict(), WriteMode::Create);
                            prop_assert_eq!(strict_again.as_ref().ok(), Some(&out));
                            let _ = Projection::default().apply(rt, &out);
                        }
                        Err(e) => {
                            prop_assert!(e.status().is_client_error(), "{e}");
                            prop_assert!(!e.detail().is_empty());
                        }
                    }
                }
            }
            let p = Projection::parse(Some("emails.value,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"), Some("members")).unwrap();
            let _ = p.apply(rt, &input);
            let _ = User::try_from(&input);
            let _ = Group::try_from(&input);
        }
    }

    /// Arbitrary parameter strings parse or give invalidPath, and apply never panics.
    #[test]
    fn projection_parse_never_panics(a in ".{0,40}", e in "[a-zA-Z:.,$ ]{0,40}", doc in json_strategy()) {
        match Projection::parse(Some(&a), Some(&e)) {
            Ok(p) => {
                let user = user_rt();
                let _ = p.apply(&user, &doc);
                let _ = p.includes(&user, &a);
            }
            Err(err) => prop_assert_eq!(err.scim_type().map(|t| t.as_str()), Some("invalidPath")),
        }
    }
}
