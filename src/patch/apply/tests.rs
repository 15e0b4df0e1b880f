use super::element::{fix_primary, seed_from_filter};
use super::*;
use crate::error::ScimType;
use crate::resource::{MemberRef, ResourceId, UnknownMembers};
use crate::schema::SchemaRegistry;
use serde_json::json;

fn request(ops: Value) -> PatchRequest {
    let body = json!({"schemas": [crate::schema::PATCH_OP_SCHEMA], "Operations": ops});
    PatchRequest::from_json(&body, &Settings::default()).unwrap()
}

#[test]
fn errors_name_the_operation_and_its_path() {
    let registry = SchemaRegistry::default();
    let user = registry.user().unwrap();
    let req = request(json!([
        {"op": "replace", "path": "title", "value": "Lead"},
        {"op": "remove", "path": "userName"}
    ]));
    let err = apply(
        user,
        &json!({"userName": "bjensen"}),
        &req,
        &Settings::default(),
    )
    .unwrap_err();
    let ScimError::Patch(p) = &err else {
        panic!("{err:?}");
    };
    assert_eq!(p.operation, 1);
    assert_eq!(p.op, "remove");
    assert_eq!(p.path.as_deref(), Some("userName"));
    assert!(matches!(&p.error, ScimError::Mutability(a) if a.attribute == "userName"));
    // The wire form is that of the operation's error, its detail prefixed.
    assert_eq!(err.scim_type(), Some(ScimType::Mutability));
    assert_eq!(err.status().as_u16(), 400);
    assert_eq!(
        err.detail(),
        "Operations[1] (remove): `userName` is required and cannot be removed"
    );
}

#[test]
fn delta_keeps_each_id_once_and_composes() {
    let mut d = DeltaBuilder::default();
    assert!(d.is_empty());
    d.add(MemberRef {
        value: ResourceId::new("a"),
        resource_type: None,
    });
    d.add(MemberRef {
        value: ResourceId::new("a"),
        resource_type: Some("User".into()),
    });
    d.add(MemberRef::new("b"));
    assert_eq!(d.add_at.len(), 2);
    d.remove("a");
    d.remove("a");
    assert!(!d.is_empty());
    let built = std::mem::take(&mut d).build(&Tolerances::strict());
    assert_eq!(built.add, vec![MemberRef::new("b")]);
    assert_eq!(built.remove, vec![ResourceId::new("a")]);
    assert_eq!(built.unknown, UnknownMembers::Reject);
    // Added again after its removal: removed first, then added (it ends up present).
    d.remove("c");
    d.add(MemberRef::new("c"));
    let built = std::mem::take(&mut d).build(&Tolerances::default());
    assert_eq!(built.add, vec![MemberRef::new("c")]);
    assert_eq!(built.remove, vec![ResourceId::new("c")]);
    assert_eq!(built.unknown, UnknownMembers::Skip);
    d.add(MemberRef::new("x"));
    d.clear();
    let built = d.build(&Tolerances::default());
    assert!(built.clear && built.add.is_empty() && built.remove.is_empty());
    assert!(!built.is_empty());
}

#[test]
fn in_place_error_restores_values_and_key_order() {
    let reg = SchemaRegistry::default();
    let user = reg.user().unwrap();
    let original = json!({
        "title": "Guide",
        "userName": "bjensen",
        "name": {"givenName": "B"},
        "nickName": "Babs",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "S"}
    });
    let req = request(json!([
        {"op": "remove", "path": "title"},
        {"op": "add", "path": "displayName", "value": "B J"},
        {"op": "replace", "path": "name.givenName", "value": "Barbara"},
        {"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"},
        {"op": "remove", "path": "nickName"},
        {"op": "replace", "path": "active", "value": "perhaps"}
    ]));
    let mut doc = original.clone();
    let err = apply_in_place(user, &mut doc, &req, &Settings::default()).unwrap_err();
    assert_eq!(err.scim_type(), Some(ScimType::InvalidValue));
    assert!(err.detail().starts_with("Operations[5] (replace)"));
    assert_eq!(doc.to_string(), original.to_string());
}

#[test]
fn changed_is_false_for_a_rewrite_of_the_same_values() {
    let reg = SchemaRegistry::default();
    let user = reg.user().unwrap();
    let doc = json!({"userName": "b", "active": true, "emails": [{"value": "a@x.org"}]});
    let req = request(json!([
        {"op": "replace", "path": "active", "value": "True"},
        {"op": "add", "path": "emails", "value": [{"value": "a@x.org"}]},
        {"op": "remove", "path": "title"}
    ]));
    let out = apply(user, &doc, &req, &Settings::default()).unwrap();
    assert!(!out.changed);
    assert_eq!(out.document, doc);
    let mut d = doc.clone();
    let effect = apply_in_place(user, &mut d, &req, &Settings::default()).unwrap();
    assert!(!effect.changed);
}

#[test]
fn element_seeds_come_only_from_eq_conjunctions() {
    let reg = SchemaRegistry::default();
    let emails = reg.user().unwrap().top_level("emails").unwrap();
    let mut out = Map::new();
    let f = Filter::parse(r#"type eq "work" and primary eq true"#).unwrap();
    assert!(seed_from_filter(&f, emails, &mut out));
    assert_eq!(Value::Object(out), json!({"type": "work", "primary": true}));
    for bad in [
        r#"type ne "work""#,
        "value eq null",
        r#"type eq "a" or type eq "b""#,
        "nosuch eq 1",
    ] {
        let f = Filter::parse(bad).unwrap();
        assert!(!seed_from_filter(&f, emails, &mut Map::new()), "{bad}");
    }
}

#[test]
fn written_primary_wins_and_two_are_refused() {
    let path = PatchPath::parse("emails").unwrap();
    let src = Src::Path(&path);
    let mut list = vec![
        json!({"value": "a", "primary": true}),
        json!({"value": "b", "primary": true}),
    ];
    fix_primary(&mut list, &[1], src).unwrap();
    assert_eq!(list[0], json!({"value": "a"}));
    assert_eq!(list[1], json!({"value": "b", "primary": true}));
    let mut list = vec![json!({"primary": true}), json!({"primary": true})];
    assert!(fix_primary(&mut list, &[0, 1], src).is_err());
}

#[test]
fn read_only_sub_attributes_are_dropped_from_written_values() {
    let reg = SchemaRegistry::default();
    let members = reg.group().unwrap().top_level("members").unwrap();
    let v = json!([{"value": "u1", "display": "U"}, {"display": "only"}]);
    assert_eq!(
        strip_read_only_subs(members, v),
        Some(json!([{"value": "u1"}]))
    );
    assert_eq!(
        strip_read_only_subs(members, json!([{"display": "x"}])),
        None
    );
}

#[test]
fn listed_elements_match_by_value() {
    assert!(same_element(
        &json!({"value": "a"}),
        &json!({"value": "a", "type": "User"})
    ));
    assert!(!same_element(
        &json!({"value": "a"}),
        &json!({"value": "b"})
    ));
    assert!(same_element(&json!({"type": "x"}), &json!({"type": "x"})));
}
