//! Filter engine: RFC 7644 §3.4.2.2 examples, precedence, IdP filters, invalid filters,
//! limits, and property tests (round trip, evaluator vs a naive reference, parser fuzz).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use proptest::prelude::*;
use scimkit::filter::{CompValue, CompareOp, CompileOptions, Filter};
use scimkit::schema::{AttributeDef, AttributeType, Schema};
use scimkit::{error::ScimError, error::ScimType, schema::AttrPath, schema::SchemaRegistry};
use serde_json::{json, Value};

fn users() -> Vec<Value> {
    serde_json::from_str(include_str!("vectors/filter-users.json")).unwrap()
}

fn matching_ids(filter: &Filter, strict: bool) -> Vec<String> {
    let reg = SchemaRegistry::default();
    let rt = reg.user().unwrap();
    let compiled = filter
        .compile(rt, strict)
        .unwrap_or_else(|e| panic!("{filter}: {e}"));
    users()
        .iter()
        .filter(|u| compiled.matches(u))
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect()
}

/// (filter, canonical form, ids of the users in tests/vectors/filter-users.json it matches)
const VALID: &[(&str, &str, &[&str])] = &[
    // RFC 7644 §3.4.2.2, every example filter.
    (
        r#"userName eq "bjensen""#,
        r#"userName eq "bjensen""#,
        &["u1"],
    ),
    (
        r#"name.familyName co "O'Malley""#,
        r#"name.familyName co "O'Malley""#,
        &["u2"],
    ),
    (r#"userName sw "J""#, r#"userName sw "J""#, &["u2", "u4"]),
    (
        r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
        r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
        &["u2", "u4"],
    ),
    ("title pr", "title pr", &["u1", "u5"]),
    (
        r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
        r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
        &["u2", "u5"],
    ),
    (
        r#"meta.lastModified ge "2011-05-13T04:42:34Z""#,
        r#"meta.lastModified ge "2011-05-13T04:42:34Z""#,
        &["u1", "u2", "u5"],
    ),
    (
        r#"meta.lastModified lt "2011-05-13T04:42:34Z""#,
        r#"meta.lastModified lt "2011-05-13T04:42:34Z""#,
        &["u3"],
    ),
    (
        r#"meta.lastModified le "2011-05-13T04:42:34Z""#,
        r#"meta.lastModified le "2011-05-13T04:42:34Z""#,
        &["u1", "u3"],
    ),
    (
        r#"title pr and userType eq "Employee""#,
        r#"title pr and userType eq "Employee""#,
        &["u1", "u5"],
    ),
    (
        r#"title pr or userType eq "Intern""#,
        r#"title pr or userType eq "Intern""#,
        &["u1", "u2", "u5"],
    ),
    (
        r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
        r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
        &["u1", "u3"],
    ),
    (
        r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
        r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
        &["u1"],
    ),
    (
        r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
        r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
        // u6 has no userType: no value that is not "Employee" (RFC 7644 §3.4.2.2).
        &[],
    ),
    (
        r#"userType eq "Employee" and (emails.type eq "work")"#,
        r#"userType eq "Employee" and emails.type eq "work""#,
        &["u1"],
    ),
    (
        r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
        r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
        &["u1"],
    ),
    (
        r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
        r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
        &["u1", "u2"],
    ),
    // Precedence: `and` binds tighter than `or`, `not` applies to its group only.
    (
        r#"userName eq "alice" or userType eq "Employee" and title pr"#,
        r#"userName eq "alice" or userType eq "Employee" and title pr"#,
        &["u1", "u3", "u5"],
    ),
    (
        r#"(userName eq "alice" or userType eq "Employee") and title pr"#,
        r#"(userName eq "alice" or userType eq "Employee") and title pr"#,
        &["u1", "u5"],
    ),
    (
        r#"not (userType eq "Employee" or userType eq "Intern") and emails pr"#,
        r#"not (userType eq "Employee" or userType eq "Intern") and emails pr"#,
        &["u4", "u6"],
    ),
    (
        r#"userType eq "Employee" and (title pr or externalId pr) and emails pr"#,
        r#"userType eq "Employee" and (title pr or externalId pr) and emails pr"#,
        &["u1", "u3"],
    ),
    (
        r#"userType eq "Intern" and active eq false or userName eq "jyoung" and active eq true"#,
        r#"userType eq "Intern" and active eq false or userName eq "jyoung" and active eq true"#,
        &["u2", "u4"],
    ),
    (
        r#"not (title pr) or userName eq "bjensen""#,
        r#"not (title pr) or userName eq "bjensen""#,
        &["u1", "u2", "u3", "u4", "u6"],
    ),
    (
        r#"userName eq "x" or (userName eq "alice" or userName eq "nobody")"#,
        r#"userName eq "x" or (userName eq "alice" or userName eq "nobody")"#,
        &["u3", "u6"],
    ),
    (
        r#"((((userName eq "alice"))))"#,
        r#"userName eq "alice""#,
        &["u3"],
    ),
    // IdP filters (shared/IDP-QUIRKS.md).
    (
        r#"userName eq "BJENSEN""#,
        r#"userName eq "BJENSEN""#,
        &["u1"],
    ),
    (
        r#"userName eq "7d6b1c9e-3c0c-4f1e-9d4e-2a1b0c9d8e7f""#,
        r#"userName eq "7d6b1c9e-3c0c-4f1e-9d4e-2a1b0c9d8e7f""#,
        &[],
    ),
    (
        r#"displayName eq "Jay Young""#,
        r#"displayName eq "Jay Young""#,
        &["u4"],
    ),
    (
        r#"externalId eq "ALICE-1""#,
        r#"externalId eq "ALICE-1""#,
        &["u3"],
    ),
    (
        r#"externalId eq "alice-1""#,
        r#"externalId eq "alice-1""#,
        &[],
    ),
    (
        r#"emails[type eq "work"].value eq "bjensen@example.com""#,
        r#"emails[type eq "work" and value eq "bjensen@example.com"]"#,
        &["u1"],
    ),
    (
        r#"emails[type eq "work"].value eq "babs@jensen.org""#,
        r#"emails[type eq "work" and value eq "babs@jensen.org"]"#,
        &[],
    ),
    (
        r#"displayName eq "émile zola""#,
        r#"displayName eq "émile zola""#,
        &["u5"],
    ),
    (
        r#"emails[type eq "work"].value co "EXAMPLE" and active eq true"#,
        r#"emails[type eq "work" and value co "EXAMPLE"] and active eq true"#,
        &["u1"],
    ),
    (
        r#"username Eq "jyoung""#,
        r#"username eq "jyoung""#,
        &["u4"],
    ),
    (
        r#"USERNAME SW "J" AND ACTIVE EQ TRUE"#,
        r#"USERNAME sw "J" and ACTIVE eq true"#,
        &["u4"],
    ),
    (
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984""#,
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984""#,
        &["u1"],
    ),
    (
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "u3""#,
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "u3""#,
        &["u1"],
    ),
    (
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager[value eq "u3"]"#,
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager[value eq "u3"]"#,
        &["u1"],
    ),
    (
        r#"id eq "u1" and urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager eq "u3""#,
        r#"id eq "u1" and urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager eq "u3""#,
        &["u1"],
    ),
    // null, ne and presence rules.
    ("title eq null", "title eq null", &["u2", "u3", "u4", "u6"]),
    ("title ne null", "title ne null", &["u1", "u5"]),
    (
        r#"userType ne "employee""#,
        r#"userType ne "employee""#,
        &["u2", "u4"],
    ),
    (
        r#"not (userType eq "employee")"#,
        r#"not (userType eq "employee")"#,
        &["u2", "u4", "u6"],
    ),
    // Any value: u1 has a home email besides the work one; u6's email has no type.
    (
        r#"emails.type ne "work""#,
        r#"emails.type ne "work""#,
        &["u1", "u3", "u4"],
    ),
    (
        r#"not (emails.type eq "work")"#,
        r#"not (emails.type eq "work")"#,
        &["u3", "u4", "u5", "u6"],
    ),
    ("emails pr", "emails pr", &["u1", "u2", "u3", "u4", "u6"]),
    (
        r#"emails[not (type pr)]"#,
        r#"emails[not (type pr)]"#,
        &["u6"],
    ),
];

#[test]
fn rfc_precedence_and_idp_filters() {
    for (input, canonical, ids) in VALID {
        let f = Filter::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(f.to_string(), *canonical, "display of {input}");
        assert_eq!(
            Filter::parse(canonical).unwrap(),
            f,
            "reparse of {canonical}"
        );
        assert_eq!(matching_ids(&f, true), *ids, "matches of {input}");
    }
}

#[test]
fn unknown_attributes_strict_and_lenient() {
    // PingOne's documented `email Co "%s"` names no attribute of the core User schema.
    let f = Filter::parse(r#"email Co "example""#).unwrap();
    let reg = SchemaRegistry::default();
    let rt = reg.user().unwrap();
    let e = f.compile(rt, true).unwrap_err();
    assert_eq!(e.scim_type(), Some(ScimType::InvalidFilter));
    assert!(e.detail().contains("`email`"), "{}", e.detail());
    assert!(matching_ids(&f, false).is_empty());
    // Entra's legacy unqualified `manager` with the unqualified-extension tolerance.
    let f = Filter::parse(r#"id eq "u1" and manager eq "u3""#).unwrap();
    assert!(f.compile(rt, true).is_err());
    let opts = CompileOptions {
        strict: true,
        unqualified_extension_attributes: true,
    };
    let c = f.compile_with(rt, opts).unwrap();
    let hits: Vec<_> = users().into_iter().filter(|u| c.matches(u)).collect();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0]["id"], "u1");
}

#[test]
fn group_filters() {
    let reg = SchemaRegistry::default();
    let groups = reg.group().unwrap();
    let g =
        json!({"id": "g1", "displayName": "TEST", "members": [{"value": "u1"}, {"value": "u2"}]});
    for (f, want) in [
        (r#"displayName eq "test""#, true),
        (r#"members[value eq "u2"]"#, true),
        (r#"members eq "u1""#, true),
        (r#"members.value eq "u3""#, false),
    ] {
        assert_eq!(Filter::parse(f).unwrap().matches(groups, &g), want, "{f}");
    }
}

/// (filter, 1-based column of the error, or 0 when the detail has no column, text the detail
/// contains)
const INVALID: &[(&str, usize, &str)] = &[
    ("", 0, "empty"),
    ("   ", 0, "empty"),
    ("userName", 9, "expected a comparison operator"),
    ("userName eq", 12, "expected a value after `eq`"),
    ("userName eq ", 13, "expected a value after `eq`"),
    (r#"userName xx "a""#, 10, "found `xx`"),
    ("userName eq bjensen", 13, "double-quoted"),
    ("externalId eq jyoung", 15, "found `jyoung`"),
    (r#"userName eq "bjensen"#, 13, "no closing"),
    (r#"userName eq "a\qb""#, 15, "invalid escape"),
    (r#"userName eq "\u12""#, 14, "4 hex digits"),
    (r#"userName eq "\ud800""#, 14, "low surrogate"),
    (r#"userName eq "\udc00""#, 14, "lone low surrogate"),
    ("userName eq \"a\tb\"", 15, "control characters"),
    ("title pr pr", 10, "expected `and`, `or` or the end"),
    ("title pr and", 13, "expected a filter after `and`"),
    ("title pr or", 12, "expected a filter after `or`"),
    ("and title pr", 5, "found `title`"),
    ("(title pr", 10, "expected `)`"),
    ("title pr)", 9, "unmatched `)`"),
    ("()", 2, "inside `( )`"),
    ("not title pr", 5, "expected `(` after `not`"),
    ("not ()", 6, "inside `( )`"),
    ("not (title pr", 14, "expected `)`"),
    (r#"emails[type eq "work""#, 22, "expected `]`"),
    ("emails[]", 8, "inside `[ ]`"),
    (
        r#"emails[type eq "work"]]"#,
        23,
        "expected `and`, `or` or the end",
    ),
    (r#"emails[type[value eq "x"]]"#, 12, "cannot nest"),
    (
        r#"emails.type[value eq "x"]"#,
        12,
        "must follow an attribute",
    ),
    (r#"emails[type eq "work"]."#, 24, "sub-attribute name"),
    (r#"emails[type eq "work"].value"#, 29, "comparison operator"),
    (
        r#"emails[type eq "work"]x"#,
        23,
        "expected `and`, `or` or the end",
    ),
    ("name.", 6, "sub-attribute name after `name.`"),
    (
        r#"name.givenName.x eq "a""#,
        15,
        "at most one sub-attribute",
    ),
    (r#"1abc eq "a""#, 1, "expected an attribute path"),
    (r#"_abc eq "a""#, 1, "expected an attribute path"),
    (r#""userName" eq "a""#, 1, "expected an attribute path"),
    (r#"urn: eq "a""#, 1, "names a schema but no attribute"),
    (
        r#"urn:ietf:params:scim:schemas:core:2.0:User: eq "a""#,
        1,
        "names a schema but no attribute",
    ),
    ("userName eq 01", 13, "not a valid number"),
    ("userName eq 1.", 13, "not a valid number"),
    ("userName eq .5", 13, "expected a value"),
    ("userName eq 1e", 13, "not a valid number"),
    ("userName eq -", 13, "not a valid number"),
    ("userName eq 1e999", 13, "out of range"),
    ("userName eq truex", 13, "expected a value"),
    ("userName eq True.", 13, "expected a value"),
    (
        r#"userName eq "a" and"#,
        20,
        "expected a filter after `and`",
    ),
    (
        r#"userName eq "a" andtitle pr"#,
        17,
        "expected `and`, `or` or the end",
    ),
    (r#"userName eq"a""#, 12, "expected a space after `eq`"),
    (
        r#"userName  eq  "a"  or  "#,
        24,
        "expected a filter after `or`",
    ),
    ("title pr and (", 15, "expected a filter, found the end"),
    ("title pr and )", 14, "expected an attribute path"),
    (r#"[type eq "work"]"#, 1, "expected an attribute path"),
    (
        r#"userName eq "a" or (title pr and (userType eq "b")"#,
        51,
        "expected `)`",
    ),
    (
        r#"emails[type eq "work" or ]"#,
        26,
        "expected an attribute path",
    ),
    ("userName eq @", 13, "expected a value"),
    ("userName ge [", 13, "expected a value"),
    ("userName Eq", 12, "expected a value after `eq`"),
    ("userName eq 'bjensen'", 13, "expected a value"),
    (
        r#"userName eq "a" not (title pr)"#,
        17,
        "expected `and`, `or` or the end",
    ),
    ("meta.lastModified gt 2011-05-13", 22, "not a valid number"),
    (
        r#"emails[type eq "work"].value.x eq "a""#,
        29,
        "expected a space and a comparison operator after `value`",
    ),
    ("title pr or or", 15, "comparison operator"),
    (r#"userName eq "\""#, 13, "no closing"),
    ("é eq 1", 1, "expected an attribute path"),
    (r#"userName eq "x" )"#, 17, "unmatched `)`"),
    ("not(", 5, "expected a filter, found the end"),
    ("a eq 1 and b eq 2 and c", 24, "comparison operator"),
    (
        "userName eq \"é\" or é pr",
        20,
        "expected an attribute path",
    ),
    (
        r#"emails[type eq "work"] and emails[value pr"#,
        43,
        "expected `]`",
    ),
    ("title pr or\t", 13, "expected a filter after `or`"),
];

#[test]
fn invalid_filters_report_column_and_reason() {
    assert!(INVALID.len() >= 60, "{} cases", INVALID.len());
    for (input, column, text) in INVALID {
        let err = Filter::parse(input).expect_err(input);
        assert_eq!(err.scim_type(), Some(ScimType::InvalidFilter), "{input}");
        assert_eq!(err.status().as_u16(), 400);
        let detail = err.detail();
        assert!(detail.contains(text), "{input}: `{detail}` lacks `{text}`");
        if *column == 0 {
            assert!(!detail.contains("column"), "{input}: {detail}");
        } else {
            assert!(
                detail.ends_with(&format!(" at column {column}")),
                "{input}: `{detail}` is not at column {column}"
            );
        }
    }
}

#[test]
fn limits_never_overflow_the_stack() {
    let deep = format!("{}title pr{}", "(".repeat(100_000), ")".repeat(100_000));
    let e = Filter::parse(&deep).unwrap_err();
    assert_eq!(e.scim_type(), Some(ScimType::InvalidFilter));
    assert!(e.detail().contains("bytes long"), "{}", e.detail());
    let e = Filter::parse_with_limits(&deep, usize::MAX, 32).unwrap_err();
    assert!(
        e.detail().contains("deeper than the limit of 32"),
        "{}",
        e.detail()
    );
    let e = Filter::parse_with_limits(&deep, usize::MAX, usize::MAX).unwrap_err();
    assert_eq!(e.scim_type(), Some(ScimType::InvalidFilter));

    let nots = "not (".repeat(50_000) + "title pr" + &")".repeat(50_000);
    assert!(Filter::parse_with_limits(&nots, usize::MAX, usize::MAX).is_err());
    let brackets = "emails[".repeat(50_000);
    assert!(Filter::parse_with_limits(&brackets, usize::MAX, usize::MAX).is_err());

    // 1 MB filters: rejected by the default length limit, and by the tree depth cap when a
    // host lifts the length limit.
    let mut big = String::from(r#"userName eq "a""#);
    while big.len() < (1 << 20) {
        big.push_str(r#" or userName eq "a""#);
    }
    let e = Filter::parse(&big).unwrap_err();
    assert!(e.detail().contains("the limit is 4096"), "{}", e.detail());
    let e = Filter::parse_with_limits(&big, usize::MAX, 32).unwrap_err();
    assert!(e.detail().contains("chained"), "{}", e.detail());
    let huge_string = format!("userName eq \"{}\"", "x".repeat(1 << 20));
    assert!(Filter::parse(&huge_string).is_err());
    assert!(Filter::parse_with_limits(&huge_string, usize::MAX, 32).is_ok());

    // The deepest trees the parser builds can be printed, compiled, evaluated and dropped.
    let reg = SchemaRegistry::default();
    let rt = reg.user().unwrap();
    let chain = vec![r#"userName eq "a""#; 1000].join(" and ");
    let nested = format!("{}{chain}{}", "not (".repeat(24), ")".repeat(24));
    for text in [chain, nested] {
        let f = Filter::parse_with_limits(&text, usize::MAX, 32).unwrap();
        assert_eq!(
            Filter::parse_with_limits(&f.to_string(), usize::MAX, 32).unwrap(),
            f
        );
        let c = f.compile(rt, true).unwrap();
        assert!(c.matches(&json!({"userName": "A"})));
    }
    let parens = format!("{}title pr{}", "(".repeat(256), ")".repeat(256));
    assert!(Filter::parse_with_limits(&parens, usize::MAX, usize::MAX).is_ok());
    let e = Filter::parse_with_limits(&format!("({parens})"), usize::MAX, usize::MAX).unwrap_err();
    assert!(e.detail().contains("limit of 256"), "{}", e.detail());

    // Exactly at the limits is accepted.
    let at = format!("{}title pr{}", "(".repeat(32), ")".repeat(32));
    assert!(Filter::parse(&at).is_ok());
    let f = format!("{}title pr{}", "(".repeat(33), ")".repeat(33));
    assert!(Filter::parse(&f).is_err());
    let exact = "a".repeat(4093) + " pr";
    assert!(Filter::parse(&exact).is_ok());
    assert!(Filter::parse(&(exact + " ")).is_err());
}

// ---------------------------------------------------------------------------------------
// Property tests.

const URNS: &[&str] = &[
    "urn:ietf:params:scim:schemas:core:2.0:User",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
    "urn:example:x",
];

fn arb_name() -> impl Strategy<Value = String> {
    prop_oneof![
        9 => "[a-zA-Z][a-zA-Z0-9_-]{0,8}",
        1 => Just("$ref".to_owned()),
        1 => prop::sample::select(vec!["not", "and", "or", "pr", "eq", "true", "null", "urn"])
            .prop_map(str::to_owned),
    ]
}

fn arb_path(allow_urn: bool) -> impl Strategy<Value = AttrPath> {
    let urn = if allow_urn {
        prop::option::weighted(0.2, prop::sample::select(URNS.to_vec())).boxed()
    } else {
        Just(None).boxed()
    };
    (urn, arb_name(), prop::option::of(arb_name())).prop_map(|(urn, name, sub)| AttrPath {
        urn: urn.map(str::to_owned),
        name,
        sub_attr: sub,
    })
}

fn arb_number() -> impl Strategy<Value = serde_json::Number> {
    prop_oneof![
        any::<i64>().prop_map(serde_json::Number::from),
        any::<u64>().prop_map(serde_json::Number::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| serde_json::Number::from_f64(f).unwrap()),
    ]
}

fn arb_value() -> impl Strategy<Value = CompValue> {
    prop_oneof![
        Just(CompValue::Null),
        any::<bool>().prop_map(CompValue::Bool),
        arb_number().prop_map(CompValue::Number),
        any::<String>().prop_map(CompValue::String),
        "[\"\\\\/\u{0}-\u{1f} a-z]{0,6}".prop_map(CompValue::String),
    ]
}

fn arb_op() -> impl Strategy<Value = CompareOp> {
    prop::sample::select(vec![
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Co,
        CompareOp::Sw,
        CompareOp::Ew,
        CompareOp::Gt,
        CompareOp::Ge,
        CompareOp::Lt,
        CompareOp::Le,
    ])
}

fn arb_leaf(allow_urn: bool) -> impl Strategy<Value = Filter> {
    prop_oneof![
        (arb_path(allow_urn), arb_op(), arb_value())
            .prop_map(|(path, op, value)| Filter::Compare { path, op, value }),
        arb_path(allow_urn).prop_map(Filter::Present),
    ]
}

fn arb_tree(leaf: BoxedStrategy<Filter>) -> impl Strategy<Value = Filter> {
    leaf.prop_recursive(5, 32, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| a.and(b)),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| a.or(b)),
            inner.prop_map(Filter::not),
        ]
    })
}

fn arb_filter() -> impl Strategy<Value = Filter> {
    let element = arb_tree(arb_leaf(false).boxed()).boxed();
    let value_path = (arb_path(true), element).prop_map(|(mut p, f)| {
        p.sub_attr = None;
        Filter::value_path(p, f)
    });
    let leaf = prop_oneof![4 => arb_leaf(true), 1 => value_path].boxed();
    arb_tree(leaf)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn display_parse_round_trip(f in arb_filter()) {
        let text = f.to_string();
        let back = Filter::parse_with_limits(&text, usize::MAX, 64);
        prop_assert_eq!(back.as_ref().ok(), Some(&f), "{} -> {:?}", text, back);
    }

    #[test]
    fn parser_fuzz_arbitrary_strings(s in any::<String>()) {
        check_parser(&s);
    }

    #[test]
    fn parser_fuzz_arbitrary_bytes(b in prop::collection::vec(any::<u8>(), 0..256)) {
        check_parser(&String::from_utf8_lossy(&b));
    }

    #[test]
    fn parser_fuzz_token_soup(tokens in prop::collection::vec(prop::sample::select(vec![
        "(", ")", "[", "]", " ", "not", "and", "or", "pr", "eq", "Gt", "co", "\"", "\"x\"",
        "\\", "\\u", "12", "-1.5e3", "true", "null", "emails", ".", "value", "urn:a:b:",
        "userName", "\u{e9}", "\t", "type", "$ref",
    ]), 0..40)) {
        check_parser(&tokens.concat());
    }
}

/// The parser never panics; what it accepts prints canonically and compiles.
fn check_parser(s: &str) {
    let reg = SchemaRegistry::default();
    let rt = reg.user().unwrap();
    if let Ok(f) = Filter::parse(s) {
        let text = f.to_string();
        assert_eq!(
            Filter::parse_with_limits(&text, usize::MAX, 64).ok(),
            Some(f.clone()),
            "{s:?}"
        );
        if let Ok(c) = f.compile(rt, false) {
            c.matches(&users()[0]);
        }
        let _ = f.compile(rt, true);
    }
}

// ---- Evaluator against a naive reference evaluator ------------------------------------

const ACME: &str = "urn:example:acme:2.0:User";

fn eval_registry() -> SchemaRegistry {
    let mut r = SchemaRegistry::default();
    r.add_extension(
        "User",
        Schema {
            id: ACME.into(),
            name: "Acme".into(),
            description: String::new(),
            attributes: vec![
                AttributeDef::new("level", AttributeType::Integer),
                AttributeDef::string("badge").case_exact(),
            ],
        },
        false,
    )
    .unwrap();
    r
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Str { case_exact: bool },
    Bool,
    Int,
    Date,
}

/// The attributes random filters and documents use: (urn, name, sub, kind, in emails).
const ATTRS: &[(Option<&str>, &str, Option<&str>, Kind)] = &[
    (None, "userName", None, Kind::Str { case_exact: false }),
    (None, "externalId", None, Kind::Str { case_exact: true }),
    (None, "title", None, Kind::Str { case_exact: false }),
    (None, "active", None, Kind::Bool),
    (
        None,
        "name",
        Some("givenName"),
        Kind::Str { case_exact: false },
    ),
    (None, "meta", Some("lastModified"), Kind::Date),
    (
        None,
        "emails",
        Some("value"),
        Kind::Str { case_exact: false },
    ),
    (
        None,
        "emails",
        Some("type"),
        Kind::Str { case_exact: false },
    ),
    (None, "emails", Some("primary"), Kind::Bool),
    (Some(ACME), "level", None, Kind::Int),
    (Some(ACME), "badge", None, Kind::Str { case_exact: true }),
];

const STRINGS: &[&str] = &[
    "bob", "BOB", "bo", "Bobby", "émile", "ÉMILE", "", "work", "x@ex.com",
];
const DATES: &[&str] = &[
    "2011-05-13T04:42:34Z",
    "2011-05-13T06:42:34+02:00",
    "2011-05-13T04:42:35Z",
    "2010-01-01T00:00:00Z",
];

fn arb_str() -> impl Strategy<Value = String> {
    prop::sample::select(STRINGS.to_vec()).prop_map(str::to_owned)
}

fn arb_scalar(kind: Kind) -> BoxedStrategy<Value> {
    match kind {
        Kind::Str { .. } => arb_str().prop_map(Value::String).boxed(),
        Kind::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
        Kind::Int => (-3i64..4).prop_map(|n| json!(n)).boxed(),
        Kind::Date => prop::sample::select(DATES.to_vec())
            .prop_map(|d| json!(d))
            .boxed(),
    }
}

fn arb_doc() -> impl Strategy<Value = Value> {
    let opt = |k| prop::option::weighted(0.7, arb_scalar(k));
    let email = (
        prop::option::of(arb_str()),
        prop::option::of(prop::sample::select(vec!["work", "home", "WORK"])),
        prop::option::of(any::<bool>()),
    )
        .prop_map(|(v, t, p)| {
            let mut e = serde_json::Map::new();
            if let Some(v) = v {
                e.insert("value".into(), json!(v));
            }
            if let Some(t) = t {
                e.insert("type".into(), json!(t));
            }
            if let Some(p) = p {
                e.insert("primary".into(), json!(p));
            }
            Value::Object(e)
        });
    (
        (
            opt(Kind::Str { case_exact: false }),
            opt(Kind::Str { case_exact: true }),
            opt(Kind::Str { case_exact: false }),
            opt(Kind::Bool),
            opt(Kind::Str { case_exact: false }),
        ),
        (
            opt(Kind::Date),
            prop::option::weighted(0.8, prop::collection::vec(email, 0..3)),
            opt(Kind::Int),
            opt(Kind::Str { case_exact: true }),
        ),
    )
        .prop_map(
            |((un, ext, title, active, given), (date, emails, level, badge))| {
                let mut d = serde_json::Map::new();
                let mut put = |k: &str, v: Option<Value>| {
                    if let Some(v) = v {
                        d.insert(k.into(), v);
                    }
                };
                put("userName", un);
                put("externalId", ext);
                put("title", title);
                put("active", active);
                put("name", given.map(|g| json!({ "givenName": g })));
                put("meta", date.map(|t| json!({ "lastModified": t })));
                put("emails", emails.map(Value::Array));
                let mut acme = serde_json::Map::new();
                if let Some(l) = level {
                    acme.insert("level".into(), l);
                }
                if let Some(b) = badge {
                    acme.insert("badge".into(), b);
                }
                if !acme.is_empty() {
                    d.insert(ACME.into(), Value::Object(acme));
                }
                Value::Object(d)
            },
        )
}

fn ops_for(kind: Kind) -> Vec<CompareOp> {
    use CompareOp::*;
    match kind {
        Kind::Str { .. } => vec![Eq, Ne, Co, Sw, Ew, Gt, Ge, Lt, Le],
        Kind::Bool => vec![Eq, Ne],
        Kind::Int | Kind::Date => vec![Eq, Ne, Gt, Ge, Lt, Le],
    }
}

fn to_comp(v: Value) -> CompValue {
    match v {
        Value::String(s) => CompValue::String(s),
        Value::Bool(b) => CompValue::Bool(b),
        Value::Number(n) => CompValue::Number(n),
        _ => CompValue::Null,
    }
}

/// A well-typed comparison or presence test on one of [`ATTRS`]; `in_emails` makes paths
/// relative to an `emails` element.
fn arb_typed_leaf(in_emails: bool) -> BoxedStrategy<Filter> {
    let attrs: Vec<usize> = (0..ATTRS.len())
        .filter(|i| !in_emails || ATTRS[*i].1 == "emails")
        .collect();
    prop::sample::select(attrs)
        .prop_flat_map(move |i| {
            let (urn, name, sub, kind) = ATTRS[i];
            let path = if in_emails {
                AttrPath::new(sub.unwrap_or(name))
            } else {
                AttrPath {
                    urn: urn.map(str::to_owned),
                    name: name.to_owned(),
                    sub_attr: sub.map(str::to_owned),
                }
            };
            let value = prop_oneof![9 => arb_scalar(kind).prop_map(to_comp), 1 => Just(CompValue::Null)];
            prop_oneof![
                1 => Just(Filter::Present(path.clone())),
                6 => (prop::sample::select(ops_for(kind)), value).prop_map(move |(op, value)| {
                    let op = if value == CompValue::Null && !matches!(op, CompareOp::Eq | CompareOp::Ne) {
                        CompareOp::Eq
                    } else {
                        op
                    };
                    Filter::Compare { path: path.clone(), op, value }
                }),
            ]
        })
        .boxed()
}

fn arb_typed_filter() -> impl Strategy<Value = Filter> {
    let element = arb_tree(arb_typed_leaf(true)).boxed();
    let leaf = prop_oneof![
        5 => arb_typed_leaf(false),
        1 => element.prop_map(|f| Filter::value_path(AttrPath::new("emails"), f)),
        1 => Just(Filter::Compare {
            path: AttrPath::new("nosuch"),
            op: CompareOp::Ne,
            value: CompValue::String("x".into()),
        }),
    ]
    .boxed();
    arb_tree(leaf)
}

/// Everything below is the reference: plain, unoptimised, written from the documented rules.
fn kind_of(urn: Option<&str>, name: &str, sub: Option<&str>) -> Option<Kind> {
    ATTRS
        .iter()
        .find(|(u, n, s, _)| {
            u.map(str::to_lowercase) == urn.map(str::to_lowercase)
                && n.eq_ignore_ascii_case(name)
                && s.map(str::to_lowercase) == sub.map(str::to_lowercase)
        })
        .map(|a| a.3)
}

fn ref_values<'a>(root: &'a Value, keys: &[&str]) -> Vec<&'a Value> {
    let mut cur = vec![root];
    for k in keys {
        let mut next = Vec::new();
        for v in cur {
            match v {
                Value::Object(m) => next.extend(m.get(*k)),
                Value::Array(a) => {
                    for e in a {
                        if let Value::Object(m) = e {
                            next.extend(m.get(*k));
                        }
                    }
                }
                _ => {}
            }
        }
        cur = next;
    }
    let mut out = Vec::new();
    for v in cur {
        match v {
            Value::Array(a) => out.extend(a.iter()),
            v => out.push(v),
        }
    }
    out
}

fn ref_present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => a.iter().any(|x| match x {
            Value::Object(m) => !m.is_empty(),
            x => ref_present(x),
        }),
        Value::Object(m) => m.values().any(|x| match x {
            Value::Array(a) => !a.is_empty(),
            x => ref_present(x),
        }),
        _ => true,
    }
}

fn ref_cmp(kind: Kind, op: CompareOp, doc: &Value, want: &CompValue) -> bool {
    use std::cmp::Ordering;
    let ord = |o: Ordering| match op {
        CompareOp::Eq => o == Ordering::Equal,
        CompareOp::Gt => o == Ordering::Greater,
        CompareOp::Ge => o != Ordering::Less,
        CompareOp::Lt => o == Ordering::Less,
        CompareOp::Le => o != Ordering::Greater,
        _ => unreachable!(),
    };
    match (kind, doc, want) {
        (Kind::Str { case_exact }, Value::String(s), CompValue::String(w)) => {
            let (s, w) = if case_exact {
                (s.clone(), w.clone())
            } else {
                (s.to_lowercase(), w.to_lowercase())
            };
            match op {
                CompareOp::Co => s.contains(&w),
                CompareOp::Sw => s.starts_with(&w),
                CompareOp::Ew => s.ends_with(&w),
                _ => ord(s.cmp(&w)),
            }
        }
        (Kind::Bool, Value::Bool(b), CompValue::Bool(w)) => b == w,
        (Kind::Int, Value::Number(n), CompValue::Number(w)) => {
            ord(n.as_i64().unwrap().cmp(&w.as_i64().unwrap()))
        }
        (Kind::Date, Value::String(s), CompValue::String(w)) => {
            let p = chrono::DateTime::parse_from_rfc3339(s).unwrap();
            let q = chrono::DateTime::parse_from_rfc3339(w).unwrap();
            ord(p.cmp(&q))
        }
        _ => false,
    }
}

fn ref_eval(f: &Filter, root: &Value, in_emails: bool) -> bool {
    match f {
        Filter::And(a, b) => ref_eval(a, root, in_emails) && ref_eval(b, root, in_emails),
        Filter::Or(a, b) => ref_eval(a, root, in_emails) || ref_eval(b, root, in_emails),
        Filter::Not(a) => !ref_eval(a, root, in_emails),
        Filter::ValuePath { path, filter } => ref_values(root, &[path.name.as_str()])
            .into_iter()
            .any(|e| e.is_object() && ref_eval(filter, e, true)),
        Filter::Present(p) | Filter::Compare { path: p, .. } => {
            let (kind, keys): (Option<Kind>, Vec<&str>) = if in_emails {
                (
                    kind_of(None, "emails", Some(&p.name)),
                    vec![p.name.as_str()],
                )
            } else {
                let k = kind_of(p.urn.as_deref(), &p.name, p.sub_attr.as_deref());
                let mut keys: Vec<&str> = p.urn.iter().map(String::as_str).collect();
                keys.push(&p.name);
                keys.extend(p.sub_attr.as_deref());
                (k, keys)
            };
            let Some(kind) = kind else { return false };
            let values = ref_values(root, &keys);
            match f {
                Filter::Present(_) => values.iter().any(|v| ref_present(v)),
                Filter::Compare { op, value, .. } => match (op, value) {
                    (CompareOp::Eq, CompValue::Null) => !values.iter().any(|v| ref_present(v)),
                    (CompareOp::Ne, CompValue::Null) => values.iter().any(|v| ref_present(v)),
                    // RFC 7644 §3.4.2.2: some value (not null, not a nested array) differs.
                    (CompareOp::Ne, w) => values.iter().any(|v| {
                        !v.is_null() && !v.is_array() && !ref_cmp(kind, CompareOp::Eq, v, w)
                    }),
                    (op, w) => values.iter().any(|v| ref_cmp(kind, *op, v, w)),
                },
                _ => unreachable!(),
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn evaluator_agrees_with_reference(
        f in arb_typed_filter(),
        docs in prop::collection::vec(arb_doc(), 1..6),
    ) {
        let reg = eval_registry();
        let rt = reg.user().unwrap();
        let compiled = f.compile(rt, false).unwrap();
        for d in &docs {
            prop_assert_eq!(compiled.matches(d), ref_eval(&f, d, false), "{} on {}", f, d);
        }
        // Strict compilation accepts well-typed filters (and only the unknown attribute fails).
        let strict = f.compile(rt, true);
        if !f.to_string().contains("nosuch") {
            prop_assert!(strict.is_ok(), "{}: {:?}", f, strict.err());
        }
    }
}

#[test]
fn errors_are_scim_errors() {
    let e: ScimError = Filter::parse("x").unwrap_err();
    let body = e.to_body();
    assert_eq!(body["scimType"], "invalidFilter");
    assert_eq!(body["status"], "400");
}

// ---- Sorting ---------------------------------------------------------------------------

#[test]
fn sort_users_vector() {
    use scimkit::filter::{sort_resources, SortSpec};
    let reg = SchemaRegistry::default();
    let rt = reg.user().unwrap();
    let ids = |docs: &[Value]| -> Vec<String> {
        docs.iter()
            .map(|d| d["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let mut docs = users();
    sort_resources(rt, &SortSpec::parse("userName", None).unwrap(), &mut docs);
    assert_eq!(ids(&docs), ["u3", "u1", "u2", "u4", "u6", "u5"]);
    sort_resources(
        rt,
        &SortSpec::parse("meta.lastModified", Some("descending")).unwrap(),
        &mut docs,
    );
    assert_eq!(ids(&docs), ["u5", "u2", "u1", "u3", "u4", "u6"]);
    sort_resources(
        rt,
        &SortSpec::parse(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
            None,
        )
        .unwrap(),
        &mut docs,
    );
    assert_eq!(&ids(&docs)[..2], ["u3", "u1"]);
    sort_resources(rt, &SortSpec::parse("emails", None).unwrap(), &mut docs);
    assert_eq!(ids(&docs), ["u3", "u1", "u2", "u4", "u6", "u5"]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Present values come first in order (case-insensitively), missing ones last, and equal
    /// keys keep their input order, in both directions.
    #[test]
    fn sort_is_ordered_stable_missing_last(
        names in prop::collection::vec(prop::option::of(arb_str()), 0..20),
        descending in any::<bool>(),
    ) {
        use scimkit::filter::{sort_resources, SortSpec};
        let reg = SchemaRegistry::default();
        let rt = reg.user().unwrap();
        let mut docs: Vec<Value> = names
            .iter()
            .enumerate()
            .map(|(i, n)| match n {
                Some(n) => json!({"i": i, "userName": n}),
                None => json!({"i": i}),
            })
            .collect();
        let order = if descending { "descending" } else { "ascending" };
        sort_resources(rt, &SortSpec::parse("userName", Some(order)).unwrap(), &mut docs);
        let key = |d: &Value| {
            d.get("userName")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_lowercase)
        };
        for w in docs.windows(2) {
            let (a, b) = (key(&w[0]), key(&w[1]));
            let (ia, ib) = (w[0]["i"].as_u64().unwrap(), w[1]["i"].as_u64().unwrap());
            match (&a, &b) {
                (None, Some(_)) => prop_assert!(false, "missing before present"),
                (Some(x), Some(y)) if x == y => prop_assert!(ia < ib, "unstable"),
                (Some(x), Some(y)) => prop_assert!((x < y) != descending, "{} vs {}", x, y),
                (None, None) => prop_assert!(ia < ib, "unstable"),
                (Some(_), None) => {}
            }
        }
    }
}
