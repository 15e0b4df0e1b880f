use super::*;
use crate::error::ScimType;
use crate::schema::SchemaRegistry;
use serde_json::json;

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn user() -> ResourceDef {
    SchemaRegistry::default().user().unwrap().as_ref().clone()
}

#[test]
fn canonical_names_and_extension_urn() {
    let input = json!({
        "SCHEMAS": ["urn:ietf:params:scim:schemas:core:2.0:user", ENT.to_uppercase()],
        "USERNAME": "bjensen",
        "name": {"GivenName": "Barbara"},
        "urn:ietf:params:scim:schemas:extension:ENTERPRISE:2.0:User": {"EmployeeNumber": "7"},
    });
    let out = normalize_resource(&user(), &input, &Settings::default(), WriteMode::Create).unwrap();
    assert_eq!(
        out,
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT],
            "userName": "bjensen",
            "name": {"givenName": "Barbara"},
            ENT: {"employeeNumber": "7"},
        })
    );
}

#[test]
fn qualified_key_and_duplicate() {
    let input = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "b",
        format!("{ENT}:department"): "R&D",
    });
    let out = normalize_resource(&user(), &input, &Settings::default(), WriteMode::Create).unwrap();
    assert_eq!(out[ENT]["department"], "R&D");
    let input = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "b",
        "USERNAME": "c",
    });
    let err =
        normalize_resource(&user(), &input, &Settings::default(), WriteMode::Create).unwrap_err();
    assert_eq!(err.scim_type(), Some(ScimType::InvalidSyntax));
    assert!(err.detail().contains("userName"));
}

#[test]
fn immutable_compare_respects_case_exact() {
    let a = AttributeDef::string("x");
    assert!(same_value(&a, &json!("AbC"), &json!("abc")));
    let a = AttributeDef::string("x").case_exact();
    assert!(!same_value(&a, &json!("AbC"), &json!("abc")));
    let a = AttributeDef::string("x").multi();
    assert!(same_value(&a, &json!(["a", "B"]), &json!(["b", "A"])));
    assert!(!same_value(&a, &json!(["a", "a"]), &json!(["a", "b"])));
}
