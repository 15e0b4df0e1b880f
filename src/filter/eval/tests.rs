use super::*;
use crate::error::{FilterErrorReason, ScimError};
use crate::filter::Filter;
use crate::filter::{CompileOptions, CompiledFilter};
use crate::schema::{AttributeDef, AttributeType};
use crate::schema::{Schema, SchemaRegistry};
use serde_json::json;

#[test]
fn compile_errors_carry_a_reason() {
    let reg = SchemaRegistry::default();
    let users = reg.user().unwrap();
    let reason = |s: &str| match Filter::parse(s).unwrap().compile(users, true) {
        Err(ScimError::InvalidFilter(e)) => {
            assert_eq!(e.position, None, "{s}");
            e.reason
        }
        other => panic!("{s}: {other:?}"),
    };
    assert_eq!(
        reason("nickname2 eq \"a\""),
        FilterErrorReason::UnknownAttribute
    );
    assert_eq!(
        reason("active gt true"),
        FilterErrorReason::InvalidComparison
    );
    assert_eq!(reason("name eq \"a\""), FilterErrorReason::ComplexAttribute);
    assert_eq!(
        reason("userName[value eq \"a\"]"),
        FilterErrorReason::InvalidAttributePath
    );
}

#[test]
fn operators_that_do_not_apply_are_invalid_even_when_lenient() {
    let reg = SchemaRegistry::default();
    let users = reg.user().unwrap();
    for f in [
        "active gt true",
        "active co \"t\"",
        "x509Certificates.value lt \"AA==\"",
        "meta.created sw \"2011\"",
        "name eq \"Babs\"",
    ] {
        for strict in [false, true] {
            let err = Filter::parse(f)
                .unwrap()
                .compile(users, strict)
                .expect_err(f);
            assert_eq!(
                err.scim_type(),
                Some(crate::error::ScimType::InvalidFilter),
                "{f}"
            );
        }
    }
    // Unknown attributes only fail in strict mode.
    let f = Filter::parse("nosuch eq \"x\"").unwrap();
    assert!(!f
        .compile(users, false)
        .unwrap()
        .matches(&json!({"nosuch": "x"})));
    assert!(f.compile(users, true).is_err());
}

fn reg() -> SchemaRegistry {
    let mut r = SchemaRegistry::default();
    r.add_extension(
        "User",
        Schema {
            id: "urn:example:acme:2.0:User".into(),
            name: "Acme".into(),
            description: String::new(),
            attributes: vec![
                AttributeDef::string("badge").case_exact(),
                AttributeDef::new("level", AttributeType::Integer),
                AttributeDef::new("score", AttributeType::Decimal),
                AttributeDef::new("photo", AttributeType::Binary),
                AttributeDef::string("tags").multi(),
            ],
        },
        false,
    )
    .unwrap();
    r
}

fn user() -> Value {
    json!({
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "BJensen-Ext",
        "userName": "bjensen",
        "name": {"familyName": "Jensen", "givenName": "Barbara"},
        "title": "",
        "active": true,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "meta": {"lastModified": "2011-05-13T04:42:34Z", "resourceType": "User"},
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "employeeNumber": "701984",
            "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}
        },
        "urn:example:acme:2.0:User": {
            "badge": "AbC", "level": 7, "score": 2.5, "photo": "aGk=", "tags": ["Ä", "b"]
        }
    })
}

fn m(f: &str) -> bool {
    let r = reg();
    let rt = r.user().unwrap();
    Filter::parse(f)
        .unwrap()
        .compile(rt, true)
        .unwrap_or_else(|e| panic!("{f}: {e}"))
        .matches(&user())
}

fn strict_err(f: &str) -> String {
    let r = reg();
    let rt = r.user().unwrap();
    let parsed = Filter::parse(f).unwrap();
    assert!(
        !parsed.matches(rt, &user()),
        "non-strict `{f}` must not match"
    );
    match parsed.compile(rt, true) {
        Err(ScimError::InvalidFilter(d)) => d.detail().to_owned(),
        other => panic!("{f}: {other:?}"),
    }
}

#[test]
fn case_exactness_follows_the_schema() {
    assert!(m(r#"userName eq "BJensen""#));
    assert!(m(r#"USERNAME Eq "BJENSEN""#));
    assert!(!m(r#"id eq "2819C223-7F76-453A-919D-413861904646""#));
    assert!(m(r#"id eq "2819c223-7f76-453a-919d-413861904646""#));
    assert!(!m(r#"externalId eq "bjensen-ext""#));
    assert!(m(r#"externalId eq "BJensen-Ext""#));
    assert!(m(r#"urn:example:acme:2.0:User:badge eq "AbC""#));
    assert!(!m(r#"urn:example:acme:2.0:User:badge eq "abc""#));
}

#[test]
fn substring_operators() {
    assert!(m(r#"userName sw "BJ""#));
    assert!(m(r#"userName ew "SEN""#));
    assert!(m(r#"userName co "jEn""#));
    assert!(m(r#"userName co """#));
    assert!(!m(r#"userName sw "bjensenX""#));
    assert!(!m(r#"userName ew "xbjensen""#));
    assert!(m(r#"emails co "@JENSEN.org""#));
    assert!(!m(r#"externalId co "ext""#));
}

#[test]
fn non_ascii_case_folding() {
    assert!(m(r#"urn:example:acme:2.0:User:tags eq "ä""#));
    let r = reg();
    let rt = r.user().unwrap();
    let doc = json!({"name": {"familyName": "ÖSTERGÅRD"}, "displayName": "ΣΑΣ"});
    for (f, want) in [
        (r#"name.familyName eq "östergård""#, true),
        (r#"name.familyName sw "öst""#, true),
        (r#"name.familyName co "ergÅ""#, true),
        (r#"name.familyName ew "gård""#, true),
        (r#"name.familyName eq "ostergard""#, false),
        (r#"displayName eq "σας""#, true),
        (r#"name.familyName gt "östergå""#, true),
    ] {
        assert_eq!(Filter::parse(f).unwrap().matches(rt, &doc), want, "{f}");
    }
}

#[test]
fn typed_comparisons() {
    assert!(m(r#"meta.lastModified gt "2011-05-13T04:42:33Z""#));
    assert!(m(r#"meta.lastModified eq "2011-05-13T06:42:34+02:00""#));
    assert!(m(r#"meta.lastModified ge "2011-05-13T04:42:34.000Z""#));
    assert!(!m(r#"meta.lastModified lt "2011-05-13T04:42:34Z""#));
    assert!(m(r#"urn:example:acme:2.0:User:level gt 6"#));
    assert!(m(r#"urn:example:acme:2.0:User:level eq 7.0"#));
    assert!(m(r#"urn:example:acme:2.0:User:level lt 1e1"#));
    assert!(!m(r#"urn:example:acme:2.0:User:level lt 7"#));
    assert!(m(r#"urn:example:acme:2.0:User:score le 2.5"#));
    assert!(m(r#"active eq true"#));
    assert!(!m(r#"active eq false"#));
    assert!(m(r#"active ne false"#));
    assert!(m(r#"urn:example:acme:2.0:User:photo eq "aGk=""#));
    assert!(!m(r#"urn:example:acme:2.0:User:photo eq "AGK=""#));
}

#[test]
fn presence_and_null() {
    assert!(m("userName pr"));
    assert!(!m("title pr"));
    assert!(!m("nickName pr"));
    assert!(m("emails pr"));
    assert!(m("name pr"));
    assert!(m("title eq null"));
    assert!(m("nickName eq null"));
    assert!(!m("userName eq null"));
    assert!(m("userName ne null"));
    assert!(!m("nickName ne null"));
    let r = reg();
    let rt = r.user().unwrap();
    for doc in [
        json!({"emails": []}),
        json!({"emails": null}),
        json!({"emails": [{}]}),
        json!({"name": {}}),
        json!({"name": {"givenName": null, "familyName": ""}}),
    ] {
        assert!(
            !Filter::parse("emails pr or name pr")
                .unwrap()
                .matches(rt, &doc),
            "{doc}"
        );
    }
}

#[test]
fn ne_matches_when_some_value_differs() {
    assert!(!m(r#"userName ne "BJENSEN""#));
    assert!(m(r#"userName ne "other""#));
    // No value, so no value that differs (RFC 7644 §3.4.2.2).
    assert!(!m(r#"nickName ne "x""#));
    // An empty string is a value, and it is not "x" (`pr` is another question).
    assert!(m(r#"title ne "x""#));
    assert!(!m(r#"title ne """#));
    assert!(m(r#"not (nickName eq "x")"#));
    // One email equals it, the other does not: `ne` matches, `not eq` does not.
    assert!(m(r#"emails.value ne "babs@jensen.org""#));
    assert!(!m(r#"not (emails.value eq "babs@jensen.org")"#));
    assert!(m(r#"emails.type ne "work""#));
    assert!(m(r#"emails.type ne "home""#));
    assert!(!m(r#"not (emails.type eq "work")"#));
    assert!(m(r#"emails.value ne "nobody@example.com""#));
    assert!(m(r#"not (emails.value eq "nobody@example.com")"#));
    let r = reg();
    let rt = r.user().unwrap();
    let only_work = json!({"emails": [{"type": "work", "value": "a@x"}, {"value": "b@x"}]});
    let matches = |f: &str, doc: &Value| Filter::parse(f).unwrap().matches(rt, doc);
    // The element without a type has no type value: it is not "not work".
    assert!(!matches(r#"emails.type ne "work""#, &only_work));
    assert!(matches(r#"emails.type ne "home""#, &only_work));
    let null_type = json!({"emails": [{"type": null, "value": "a@x"}]});
    assert!(!matches(r#"emails.type ne "work""#, &null_type));
    for none in [json!({}), json!({"emails": []}), json!({"emails": null})] {
        assert!(!matches(r#"emails.type ne "work""#, &none), "{none}");
        assert!(matches(r#"not (emails.type eq "work")"#, &none), "{none}");
    }
}

#[test]
fn multi_valued_and_value_paths() {
    assert!(m(r#"emails eq "BABS@jensen.org""#));
    assert!(m(r#"emails.type eq "home""#));
    assert!(m(r#"emails[type eq "work" and value co "@example.com"]"#));
    assert!(!m(r#"emails[type eq "home" and value co "@example.com"]"#));
    assert!(m(
        r#"emails[type eq "work"].value eq "bjensen@example.com""#
    ));
    assert!(!m(r#"emails[type eq "work"].value eq "babs@jensen.org""#));
    assert!(m(r#"emails[not (type eq "work")]"#));
    assert!(m(r#"emails[primary eq true]"#));
    assert!(m(
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager[value eq "26118915-6090-4610-87e4-49d8ca9f808d"]"#
    ));
    assert!(m(
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager eq "26118915-6090-4610-87e4-49d8ca9f808d""#
    ));
    assert!(m(
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984""#
    ));
}

#[test]
fn strict_rejections_and_lenient_no_match() {
    assert!(strict_err(r#"nosuch eq "x""#).contains("`nosuch`"));
    assert!(strict_err(r#"employeeNumber eq "701984""#).contains("employeeNumber"));
    assert!(strict_err("active gt true").contains("boolean"));
    assert!(strict_err(r#"active co "t""#).contains("boolean"));
    assert!(strict_err(r#"urn:example:acme:2.0:User:photo gt "a""#).contains("binary"));
    assert!(strict_err(r#"urn:example:acme:2.0:User:level co "7""#).contains("integer"));
    assert!(strict_err(r#"meta.lastModified gt "yesterday""#).contains("RFC 3339"));
    assert!(strict_err("userName gt null").contains("null"));
    assert!(strict_err(r#"name eq "x""#).contains("complex"));
    assert!(strict_err(r#"userName[value eq "x"]"#).contains("not a complex"));
    assert!(strict_err(r#"emails[nosuch eq "x"]"#).contains("nosuch"));
    assert!(strict_err("userName eq 5").contains("string"));
    assert!(strict_err(r#"active ne "maybe""#).contains("true or false"));
    assert!(strict_err(r#"name ne "x""#).contains("complex"));
    // Unknown attributes never match, whatever the operator; `not` negates that.
    let r = reg();
    let rt = r.user().unwrap();
    assert!(!Filter::parse(r#"nosuch ne "x""#)
        .unwrap()
        .matches(rt, &user()));
    assert!(Filter::parse(r#"not (nosuch eq "x")"#)
        .unwrap()
        .matches(rt, &user()));
}

#[test]
fn lenient_value_conversion() {
    let r = reg();
    let rt = r.user().unwrap();
    let t = |f: &str| Filter::parse(f).unwrap().matches(rt, &user());
    assert!(t(r#"active eq "True""#));
    assert!(t(
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq 701984"#
    ));
    assert!(t(r#"urn:example:acme:2.0:User:level eq "7""#));
}

#[test]
fn unqualified_extension_attributes() {
    let r = reg();
    let rt = r.user().unwrap();
    let f = Filter::parse(r#"employeeNumber eq "701984" and badge eq "AbC""#).unwrap();
    let opts = CompileOptions {
        strict: true,
        unqualified_extension_attributes: true,
    };
    assert!(f.compile_with(rt, opts).unwrap().matches(&user()));
    assert!(f.compile(rt, true).is_err());
}

#[test]
fn matches_element_for_patch() {
    let r = reg();
    let rt = r.user().unwrap();
    let emails = rt.top_level("emails").unwrap();
    let f = Filter::parse(r#"type eq "WORK" and value ew "example.com""#).unwrap();
    assert!(f.matches_element(emails, &json!({"type": "work", "value": "a@example.com"})));
    assert!(!f.matches_element(emails, &json!({"type": "home", "value": "a@example.com"})));
    let members = r.group().unwrap().top_level("members").unwrap();
    let f = Filter::parse(r#"value eq "abc""#).unwrap();
    assert!(f.matches_element(members, &json!({"value": "abc"})));
    // RFC 7643 §8.7.1 leaves Group `members.value` caseExact false.
    assert!(f.matches_element(members, &json!({"value": "ABC"})));
    assert!(!f.matches_element(members, &json!({"value": "abcd"})));
    assert!(f
        .compile_element(rt.top_level("userName").unwrap(), false)
        .is_err());
}

#[test]
fn compiled_filter_is_shareable() {
    fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync::<CompiledFilter>();
}

#[test]
fn constant_folding_keeps_semantics() {
    let r = reg();
    let rt = r.user().unwrap();
    let t = |f: &str| Filter::parse(f).unwrap().matches(rt, &user());
    assert!(t(r#"nosuch eq "x" or userName eq "bjensen""#));
    assert!(!t(r#"nosuch eq "x" and userName eq "bjensen""#));
    assert!(t(r#"not (nosuch eq "x") and userName eq "bjensen""#));
    assert!(!t(r#"emails[nosuch eq "x"]"#));
    assert!(t(r#"emails[not (nosuch eq "x")]"#));
}
