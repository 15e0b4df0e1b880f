use super::*;
use crate::filter::CompValue;

fn p(s: &str) -> Filter {
    parse(s, 4096, 32).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn err(s: &str) -> String {
    match parse(s, 4096, 32) {
        Ok(f) => panic!("{s} parsed as {f:?}"),
        Err(ScimError::InvalidFilter(d)) => d.detail().to_owned(),
        Err(e) => panic!("{s}: wrong error {e:?}"),
    }
}

fn cmp(path: AttrPath, op: CompareOp, v: CompValue) -> Filter {
    Filter::Compare { path, op, value: v }
}

fn s(v: &str) -> CompValue {
    CompValue::String(v.to_owned())
}

#[test]
fn simple_comparison() {
    assert_eq!(
        p(r#"userName eq "bjensen""#),
        cmp(AttrPath::new("userName"), CompareOp::Eq, s("bjensen"))
    );
    assert_eq!(
        p(r#"  username   EQ   "x"  "#),
        cmp(AttrPath::new("username"), CompareOp::Eq, s("x"))
    );
    assert_eq!(p("title pr"), Filter::Present(AttrPath::new("title")));
    assert_eq!(p("title PR"), Filter::Present(AttrPath::new("title")));
}

#[test]
fn precedence_and_associativity() {
    let a = || Filter::Present(AttrPath::new("a"));
    let b = || Filter::Present(AttrPath::new("b"));
    let c = || Filter::Present(AttrPath::new("c"));
    assert_eq!(p("a pr or b pr and c pr"), a().or(b().and(c())));
    assert_eq!(p("a pr and b pr or c pr"), a().and(b()).or(c()));
    assert_eq!(p("a pr and b pr and c pr"), a().and(b()).and(c()));
    assert_eq!(p("a pr and (b pr and c pr)"), a().and(b().and(c())));
    assert_eq!(p("not (a pr or b pr) and c pr"), a().or(b()).not().and(c()));
    assert_eq!(p("not(a pr)"), a().not());
    assert_eq!(p("((a pr))"), a());
}

#[test]
fn keywords_as_attribute_names() {
    assert_eq!(p("not pr"), Filter::Present(AttrPath::new("not")));
    assert_eq!(
        p(r#"and eq "x" or or pr"#),
        cmp(AttrPath::new("and"), CompareOp::Eq, s("x")).or(Filter::Present(AttrPath::new("or")))
    );
}

#[test]
fn literals_and_numbers() {
    assert_eq!(
        p("a eq true"),
        cmp(AttrPath::new("a"), CompareOp::Eq, CompValue::Bool(true))
    );
    assert_eq!(
        p("a eq FALSE"),
        cmp(AttrPath::new("a"), CompareOp::Eq, CompValue::Bool(false))
    );
    assert_eq!(
        p("a eq null"),
        cmp(AttrPath::new("a"), CompareOp::Eq, CompValue::Null)
    );
    for (text, n) in [
        ("0", serde_json::Number::from(0)),
        ("-12", serde_json::Number::from(-12)),
        ("18446744073709551615", serde_json::Number::from(u64::MAX)),
    ] {
        assert_eq!(
            p(&format!("a gt {text}")),
            cmp(AttrPath::new("a"), CompareOp::Gt, CompValue::Number(n))
        );
    }
    for text in ["1.5", "-0.25", "1e3", "2.5E-3", "1E+2"] {
        let Filter::Compare {
            value: CompValue::Number(n),
            ..
        } = p(&format!("a lt {text}"))
        else {
            panic!("{text}")
        };
        assert_eq!(n.as_f64(), text.parse::<f64>().ok(), "{text}");
    }
}

#[test]
fn strings_with_escapes() {
    let Filter::Compare { value, .. } = p(r#"a eq "q\" b\\ s\/ \b\f\n\r\t \u00e9 \ud83d\ude00 é""#)
    else {
        panic!()
    };
    assert_eq!(value, s("q\" b\\ s/ \u{8}\u{c}\n\r\t é 😀 é"));
    assert_eq!(
        p(r#"a eq """#),
        cmp(AttrPath::new("a"), CompareOp::Eq, s(""))
    );
}

#[test]
fn paths() {
    assert_eq!(
        p(r#"name.familyName co "O'Malley""#),
        cmp(
            AttrPath::new("name").with_sub("familyName"),
            CompareOp::Co,
            s("O'Malley")
        )
    );
    assert_eq!(
        p(r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "1""#),
        cmp(
            AttrPath::new("manager")
                .with_sub("value")
                .with_urn("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"),
            CompareOp::Eq,
            s("1")
        )
    );
    assert_eq!(
        p("members.$ref pr"),
        Filter::Present(AttrPath::new("members").with_sub("$ref"))
    );
}

#[test]
fn value_paths() {
    let inner = cmp(AttrPath::new("type"), CompareOp::Eq, s("work")).and(cmp(
        AttrPath::new("value"),
        CompareOp::Co,
        s("@example.com"),
    ));
    let expected = Filter::value_path(AttrPath::new("emails"), inner);
    assert_eq!(
        p(r#"emails[type eq "work" and value co "@example.com"]"#),
        expected
    );
    // Entra ID's form.
    let entra = Filter::value_path(
        AttrPath::new("emails"),
        cmp(AttrPath::new("type"), CompareOp::Eq, s("work")).and(cmp(
            AttrPath::new("value"),
            CompareOp::Eq,
            s("x"),
        )),
    );
    assert_eq!(p(r#"emails[type eq "work"].value eq "x""#), entra);
}

#[test]
fn errors_carry_position_and_reason() {
    let typed = |s: &str| match crate::filter::Filter::parse(s) {
        Err(ScimError::InvalidFilter(e)) => (e.position, e.reason),
        other => panic!("{s}: {other:?}"),
    };
    assert_eq!(
        typed("userName eq"),
        (Some(11), FilterErrorReason::UnexpectedEnd)
    );
    assert_eq!(
        typed("userName xx \"a\""),
        (Some(9), FilterErrorReason::UnknownOperator)
    );
    assert_eq!(
        typed("userName eq \"abc"),
        (Some(12), FilterErrorReason::InvalidString)
    );
    assert_eq!(
        typed("(userName pr"),
        (Some(12), FilterErrorReason::UnexpectedEnd)
    );
    assert_eq!(typed("  "), (None, FilterErrorReason::Empty));
    assert_eq!(
        typed("a.b.c pr"),
        (Some(3), FilterErrorReason::InvalidAttributePath)
    );
    // The byte offset, where the detail names the (character) column.
    match crate::filter::Filter::parse("displayName eq \"é\" x") {
        Err(ScimError::InvalidFilter(e)) => {
            assert_eq!(e.position, Some(20));
            assert!(e.detail().ends_with("at column 20"), "{}", e.detail());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn errors_name_the_column() {
    assert_eq!(
            err("userName"),
            "expected a comparison operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) after `userName`, found the end of the filter at column 9"
        );
    assert_eq!(
            err("userName xx \"a\""),
            "expected a comparison operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) after `userName`, found `xx` at column 10"
        );
    assert!(err("externalId eq jyoung").ends_with("found `jyoung` at column 15"));
    assert!(err("(a pr").contains("expected `)`"));
    assert!(err("a pr)").contains("unmatched `)`"));
    assert!(err("").contains("empty"));
    assert!(err("é eq 1").ends_with("column 1"));
    assert!(err("aé eq 1").ends_with("column 2"));
}

#[test]
fn limits() {
    let deep = format!("{}a pr{}", "(".repeat(100_000), ")".repeat(100_000));
    assert!(parse(&deep, usize::MAX, 32)
        .unwrap_err()
        .detail()
        .contains("deeper"));
    let ok = format!("{}a pr{}", "(".repeat(32), ")".repeat(32));
    assert!(parse(&ok, 4096, 32).is_ok());
    let too = format!("{}a pr{}", "(".repeat(33), ")".repeat(33));
    assert!(parse(&too, 4096, 32).is_err());
    let long = "a pr or ".repeat(200_000) + "a pr";
    assert!(parse(&long, 4096, 32)
        .unwrap_err()
        .detail()
        .contains("bytes long"));
    assert!(parse(&long, usize::MAX, 32)
        .unwrap_err()
        .detail()
        .contains("chained"));
}
