//! The PostgreSQL [`Dialect`] of the filter translator ([`crate::store::sql`]) over the
//! schema of [`migrations`](super::migrations), and the translation of `sortBy`.
//!
//! - Multi-valued attributes are searched with SQL/JSON paths in lax mode, which unwraps one
//!   level of arrays at each step, as the evaluator does; value filters are `EXISTS` over
//!   the elements (rows `e(v, f)`: as stored, folded).
//! - Strings compared case-insensitively are compared in `doc_fold`, a copy of the document
//!   whose strings were folded by [`crate::filter::fold_case`]; ordering uses the `C`
//!   collation (code points).
//! - `meta.created`/`meta.lastModified` are nanosecond integer columns, so dateTime
//!   comparisons on them are exact; dateTime comparisons inside documents and numbers
//!   beyond 2^53 are passed as supersets.
//! - The extracted columns hold `NULL` for an empty string, so tests the empty string passes
//!   read the document.
//! - PostgreSQL text cannot hold NUL, and no stored string contains one, so a needle with a
//!   NUL is resolved without sending it.

use chrono::{DateTime, FixedOffset};
use serde_json::Number;

use crate::filter::{CompareOp, SortOrder, SortSpec, Test};
use crate::schema::{AttributeType, ResourceDef};
use crate::store::sql::{sort_key, Column, Cond, Cx, Dialect, Param, Params, SortKey, Where};

/// PostgreSQL's SQL.
pub(super) struct Pg;

/// Empty parameters for a statement of this store, numbered from `$1`.
pub(super) fn params() -> Params {
    Params::new::<Pg>(1)
}

fn text(cx: &mut Cx<'_>, s: impl Into<String>) -> String {
    cx.param(Param::Text(s.into()))
}

impl Dialect for Pg {
    /// The element is the row `e(v, f)` of the enclosing `EXISTS`: nothing to carry.
    type Elem = ();

    const PLACEHOLDER: char = '$';
    const TRUE: &'static str = "TRUE";
    const FALSE: &'static str = "FALSE";
    const EMPTY_IS_NULL: bool = true;

    fn column(&self, c: Column) -> &'static str {
        match c {
            Column::Id => "r.id",
            Column::UserName => "r.user_name_fold",
            Column::ExternalId => "r.external_id",
            Column::DisplayName => "r.display_name_fold",
            Column::Created => "r.created",
            Column::Modified => "r.last_modified",
        }
    }

    fn member_column(&self, folded: bool) -> &'static str {
        if folded {
            "member_fold"
        } else {
            "member_id"
        }
    }

    fn member_exists(&self, m: &str, cond: Option<&str>) -> String {
        let cond = cond.map(|c| format!(" AND ({c})")).unwrap_or_default();
        format!(
            "EXISTS (SELECT 1 FROM scimkit_members {m} WHERE {m}.tenant = r.tenant \
             AND {m}.group_id = r.id{cond})"
        )
    }

    fn version_text(&self, prefix: &str) -> String {
        format!("({prefix} || r.version::text || '\"')")
    }

    fn str_cmp(&self, cx: &mut Cx<'_>, val: &str, op: CompareOp, needle: &str) -> String {
        str_op(cx, val, op, needle, false)
    }

    /// Substring tests become `LIKE` patterns (which the trigram indexes serve), and the
    /// statement is planned per value for anything but an equality.
    fn column_cmp(&self, cx: &mut Cx<'_>, col: &str, op: CompareOp, needle: &str) -> String {
        if op != CompareOp::Eq {
            cx.plan_per_value();
        }
        str_op(cx, col, op, needle, true)
    }

    fn instant_cmp(
        &self,
        cx: &mut Cx<'_>,
        col: &str,
        op: CompareOp,
        at: &DateTime<FixedOffset>,
    ) -> Option<String> {
        let p = cx.param(Param::Int(at.timestamp_nanos_opt()?));
        Some(format!("{col} {} {p}", cmp_sql(op)))
    }

    fn json_leaf(&self, cx: &mut Cx<'_>, at: Option<&()>, keys: &[Box<str>], test: &Test) -> Where {
        let (raw, fold) = match at {
            Some(()) => ("e.v", "e.f"),
            None => ("r.doc", "r.doc_fold"),
        };
        let p = text(cx, json_path(keys, true));
        let values = |base: &str| format!("jsonb_path_query({base}, {p}::jsonpath) AS x(v)");
        match test {
            Test::Ne(inner) => json_ne(cx, raw, fold, &p, inner),
            Test::Present => Where::exact(format!(
                "EXISTS (SELECT 1 FROM {} WHERE {})",
                values(raw),
                present_sql("x.v")
            )),
            Test::Str {
                op,
                needle,
                case_exact,
                ..
            } => {
                let from = values(if *case_exact { raw } else { fold });
                let cmp = str_op(cx, "(x.v #>> '{}')", *op, needle, false);
                Where::exact(format!(
                    "EXISTS (SELECT 1 FROM {from} WHERE jsonb_typeof(x.v) = 'string' AND {cmp})"
                ))
            }
            Test::Bool(b) => Where::exact(format!(
                "EXISTS (SELECT 1 FROM {} WHERE x.v = '{}'::jsonb)",
                values(raw),
                if *b { "true" } else { "false" }
            )),
            Test::Num { op, n } => {
                if !exact_number(n) {
                    return Where::superset();
                }
                let from = values(raw);
                let np = text(cx, n.to_string());
                Where::exact(format!(
                    "EXISTS (SELECT 1 FROM {from} WHERE CASE WHEN jsonb_typeof(x.v) = 'number' \
                     THEN (x.v)::numeric {} {np}::numeric ELSE false END)",
                    cmp_sql(*op)
                ))
            }
            // Documents hold dateTimes as text in many RFC 3339 spellings; the evaluator
            // compares them chronologically to the nanosecond.
            Test::Date { .. } => Where::superset(),
        }
    }

    fn value_filter(
        &self,
        cx: &mut Cx<'_>,
        keys: &[Box<str>],
        inner: &mut dyn FnMut(&mut Cx<'_>, ()) -> Where,
    ) -> Where {
        let w = inner(cx, ());
        if w.cond == Cond::Never {
            return w;
        }
        let inner_sql = w.render::<Pg>();
        let p = text(cx, json_path(keys, true));
        Where::sql(
            format!(
                "EXISTS (SELECT 1 FROM ROWS FROM (jsonb_path_query(r.doc, {p}::jsonpath), \
                 jsonb_path_query(r.doc_fold, {p}::jsonpath)) AS e(v, f) \
                 WHERE jsonb_typeof(e.v) = 'object' AND ({inner_sql}))"
            ),
            w.exactness,
        )
    }
}

/// `ne` over the values the SQL/JSON path bound as `p` finds in a document: some value is
/// there (not JSON `null`) and fails the `eq` test `test`.
fn json_ne(cx: &mut Cx<'_>, raw: &str, fold: &str, p: &str, test: &Test) -> Where {
    let (base, pred) = match test {
        Test::Str {
            op,
            needle,
            case_exact,
            ..
        } => {
            let base = if *case_exact { raw } else { fold };
            let cmp = str_op(cx, "(x.v #>> '{}')", *op, needle, false);
            (base, format!("jsonb_typeof(x.v) = 'string' AND {cmp}"))
        }
        Test::Bool(b) => (
            raw,
            format!("x.v = '{}'::jsonb", if *b { "true" } else { "false" }),
        ),
        Test::Num { op, n } => {
            if !exact_number(n) {
                return Where::superset();
            }
            let np = text(cx, n.to_string());
            (
                raw,
                format!(
                    "CASE WHEN jsonb_typeof(x.v) = 'number' \
                     THEN (x.v)::numeric {} {np}::numeric ELSE false END",
                    cmp_sql(*op)
                ),
            )
        }
        _ => return Where::superset(),
    };
    Where::exact(format!(
        "EXISTS (SELECT 1 FROM jsonb_path_query({base}, {p}::jsonpath) AS x(v) \
         WHERE jsonb_typeof(x.v) <> 'null' AND NOT COALESCE(({pred}), false))"
    ))
}

/// A string comparison of the SQL text expression `t` with `needle`; substring tests as
/// `LIKE` patterns when `like`.
fn str_op(cx: &mut Cx<'_>, t: &str, op: CompareOp, needle: &str, like: bool) -> String {
    if let Some(nul) = needle.find('\0') {
        // No stored string contains NUL: equality and substring tests cannot hold, and
        // for orderings `s > p\0...` is `s > p`, `s < p\0...` is `s <= p`.
        let prefix = needle.get(..nul).unwrap_or("");
        return match op {
            CompareOp::Gt | CompareOp::Ge => {
                let p = text(cx, prefix);
                format!("{t} COLLATE \"C\" > {p}")
            }
            CompareOp::Lt | CompareOp::Le => {
                let p = text(cx, prefix);
                format!("{t} COLLATE \"C\" <= {p}")
            }
            _ => "FALSE".to_owned(),
        };
    }
    match op {
        CompareOp::Eq | CompareOp::Ne => {
            let p = text(cx, needle);
            format!("{t} = {p}")
        }
        CompareOp::Sw | CompareOp::Ew | CompareOp::Co if like => {
            let esc = like_escape(needle);
            let pattern = match op {
                CompareOp::Sw => format!("{esc}%"),
                CompareOp::Ew => format!("%{esc}"),
                _ => format!("%{esc}%"),
            };
            let p = text(cx, pattern);
            format!("{t} LIKE {p}")
        }
        CompareOp::Sw => {
            let p = text(cx, needle);
            format!("starts_with({t}, {p})")
        }
        CompareOp::Ew => {
            let p = text(cx, needle);
            format!("right({t}, length({p})) = {p}")
        }
        CompareOp::Co => {
            let p = text(cx, needle);
            format!("strpos({t}, {p}) > 0")
        }
        CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le => {
            let p = text(cx, needle);
            format!("{t} COLLATE \"C\" {} {p}", cmp_sql(op))
        }
    }
}

pub(crate) fn json_path(keys: &[Box<str>], unwrap_last: bool) -> String {
    let mut p = String::from("lax $");
    for k in keys {
        p.push_str(".\"");
        for c in k.chars() {
            match c {
                '"' => p.push_str("\\\""),
                '\\' => p.push_str("\\\\"),
                c => p.push(c),
            }
        }
        p.push('"');
    }
    if unwrap_last {
        p.push_str("[*]");
    }
    p
}

/// `pr` over a JSON value `v` (RFC 7644 §3.4.2.2, the evaluator's `is_present`; arrays met at
/// the end of a path are skipped as the evaluator skips nested arrays).
fn present_sql(v: &str) -> String {
    format!(
        "CASE jsonb_typeof({v}) WHEN 'null' THEN false WHEN 'array' THEN false \
         WHEN 'string' THEN {v} <> '\"\"'::jsonb \
         WHEN 'object' THEN EXISTS (SELECT 1 FROM jsonb_each({v}) AS o(k, w) WHERE \
           CASE jsonb_typeof(o.w) WHEN 'null' THEN false \
           WHEN 'string' THEN o.w <> '\"\"'::jsonb WHEN 'array' THEN o.w <> '[]'::jsonb \
           WHEN 'object' THEN o.w <> '{{}}'::jsonb ELSE true END) \
         ELSE true END"
    )
}

fn cmp_sql(op: CompareOp) -> &'static str {
    match op {
        CompareOp::Gt => ">",
        CompareOp::Ge => ">=",
        CompareOp::Lt => "<",
        CompareOp::Le => "<=",
        _ => "=",
    }
}

/// Escapes `s` for a `LIKE` pattern (the default escape character is `\`).
fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Integers up to 2^53 convert to `f64` exactly, so the evaluator's mixed comparisons agree
/// with PostgreSQL's exact `numeric` ones.
fn exact_number(n: &Number) -> bool {
    const LIMIT: u64 = 1 << 53;
    n.as_u64().is_some_and(|v| v <= LIMIT) || n.as_i64().is_some_and(|v| v.unsigned_abs() <= LIMIT)
}

/// The `ORDER BY` list for `spec` over rows `r`, or `None` when the order cannot be
/// expressed exactly (the store then leaves sorting to the engine). Ties keep creation order
/// (`r.ord`), as the engine's stable sort over a creation-ordered list does, and resources
/// without a value sort last in both directions.
pub(crate) fn order_by(rt: &ResourceDef, spec: &SortSpec, params: &mut Params) -> Option<String> {
    let dir = match spec.order {
        SortOrder::Ascending => "ASC",
        SortOrder::Descending => "DESC",
    };
    let key = match sort_key(rt, spec)? {
        SortKey::Creation => return Some("r.ord".into()),
        // The engine's view holds the version as its ETag text, compared as a string.
        SortKey::Version => {
            return Some(format!(
                "{} COLLATE \"C\" {dir}, r.ord",
                Pg.version_text("'W/\"'")
            ))
        }
        // Extracted columns hold NULL for missing values: `NULLS LAST` in ascending order
        // is the order of their indexes, so a sorted page walks the index.
        SortKey::Column(c @ (Column::UserName | Column::DisplayName | Column::ExternalId)) => {
            return Some(format!("{} {dir} NULLS LAST, r.ord", Pg.column(c)))
        }
        SortKey::Column(c) => Pg.column(c),
        SortKey::Document(r) => return json_order(json_sort_key(&r, params)?, dir),
    };
    Some(format!("({key}) IS NULL, {key} {dir}, r.ord"))
}

fn json_order(key: JsonKey, dir: &str) -> Option<String> {
    Some(match key {
        // One evaluation of the key per row: no value (NULL) last in both directions.
        JsonKey::Single(key) => format!("{key} {dir} NULLS LAST, r.ord"),
        JsonKey::Tie => "r.ord".to_owned(),
        // Values that read as a dateTime (the engine's rank 3) come before other strings
        // (rank 4) ascending, after them descending; chronological among themselves.
        JsonKey::Date { text, at, other } => {
            format!("({text}) IS NULL, ({at}) IS NULL {dir}, {at} {dir}, {other} {dir}, r.ord")
        }
    })
}

/// The sort key expressions of an attribute in the stored document.
enum JsonKey {
    /// Nothing to sort by: every resource ties (creation order).
    Tie,
    /// One key, `NULL` when the resource has no value.
    Single(String),
    /// A dateTime: the value's text (`NULL`: no value), its instant (`NULL` when it does not
    /// read as a dateTime) and, for the other strings, the text to compare.
    Date {
        text: String,
        at: String,
        other: String,
    },
}

fn json_sort_key(r: &crate::schema::ResolvedAttr<'_>, params: &mut Params) -> Option<JsonKey> {
    let mut def = r.sub.unwrap_or(r.attr);
    let mut implicit_value = false;
    if def.is_complex() {
        match def.sub_attribute("value") {
            Some(v) => def = v,
            // Nothing to sort by: the engine ties every resource.
            None => return Some(JsonKey::Tie),
        }
        implicit_value = true;
    }
    let fold = !(def.case_exact || def.ty == AttributeType::Binary);
    let mut expr = if fold { "r.doc_fold" } else { "r.doc" }.to_owned();
    let mut keys: Vec<&str> = Vec::new();
    if let Some(ext) = r.extension {
        keys.push(ext);
    }
    keys.push(r.attr.name.as_str());
    if let Some(sub) = r.sub {
        keys.push(sub.name.as_str());
    }
    for k in keys {
        let p = params.text(k);
        expr = format!("scimkit_pick({expr}) -> {p}");
    }
    expr = format!("scimkit_pick({expr})");
    if implicit_value {
        expr = format!("scimkit_pick({expr} -> 'value')");
    }
    if def.ty == AttributeType::DateTime {
        // The value's text when it is a non-empty string; its instant when it reads as a
        // dateTime (`scimkit_date_key`, NULL otherwise); else the text itself, folded unless
        // the attribute is caseExact.
        let text_of = |e: &str| {
            format!(
                "(CASE WHEN jsonb_typeof({e}) = 'string' AND {e} <> '\"\"'::jsonb THEN {e} #>> '{{}}' END)"
            )
        };
        let raw_expr = if fold {
            expr.replacen("r.doc_fold", "r.doc", 1)
        } else {
            expr.clone()
        };
        let raw = text_of(&raw_expr);
        let d = format!("scimkit_date_key({raw})");
        let s = format!(
            "(CASE WHEN {d} IS NULL THEN {} END) COLLATE \"C\"",
            text_of(&expr)
        );
        return Some(JsonKey::Date {
            text: raw,
            at: d,
            other: s,
        });
    }
    // The value is computed once per row, in a subquery that `OFFSET 0` keeps PostgreSQL
    // from pulling up (which would repeat `scimkit_pick` for every use of it).
    let v = "s.v";
    let key = match def.ty {
        AttributeType::String | AttributeType::Reference | AttributeType::Binary => format!(
            "CASE WHEN jsonb_typeof({v}) = 'string' AND {v} <> '\"\"'::jsonb \
             THEN {v} #>> '{{}}' END"
        ),
        AttributeType::Boolean => {
            format!("CASE WHEN jsonb_typeof({v}) = 'boolean' THEN ({v})::boolean END")
        }
        AttributeType::Integer | AttributeType::Decimal => {
            format!("CASE WHEN jsonb_typeof({v}) = 'number' THEN ({v})::numeric END")
        }
        AttributeType::DateTime | AttributeType::Complex => return None,
    };
    let collate = if key.contains("#>>") {
        " COLLATE \"C\""
    } else {
        ""
    };
    Some(JsonKey::Single(format!(
        "(SELECT {key} FROM (SELECT {expr} AS v OFFSET 0) AS s){collate}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::Filter;
    use crate::schema::{AttrPath, SchemaRegistry};
    use crate::store::sql::translate;

    fn tr_on(rt: &ResourceDef, f: &str) -> (String, bool, Vec<Param>) {
        let compiled = Filter::parse(f).unwrap().compile(rt, false).unwrap();
        let mut p = params();
        let w = translate(&Pg, rt, compiled.root(), &mut p);
        (w.render::<Pg>(), w.is_exact(), p.args)
    }

    fn tr(f: &str) -> (String, bool, Vec<Param>) {
        let reg = SchemaRegistry::default();
        tr_on(reg.user().unwrap(), f)
    }

    fn text(s: &str) -> Param {
        Param::Text(s.to_owned())
    }

    #[test]
    fn user_name_uses_the_folded_column() {
        let (sql, exact, args) = tr(r#"userName eq "BJensen""#);
        assert_eq!(
            sql,
            "(r.user_name_fold IS NOT NULL AND r.user_name_fold = $1)"
        );
        assert!(exact);
        assert_eq!(args, vec![text("bjensen")]);
        let (sql, _, args) = tr(r#"userName co "a%b_c\\""#);
        assert_eq!(
            sql,
            "(r.user_name_fold IS NOT NULL AND r.user_name_fold LIKE $1)"
        );
        assert_eq!(args, vec![text("%a\\%b\\_c\\\\%")]);
    }

    #[test]
    fn values_are_bound_never_spliced() {
        for f in [
            r#"title eq "x'; DROP TABLE scimkit_resources; --""#,
            r#"emails[value co "'\"$1"]"#,
            r#"name.givenName gt "O'Brien""#,
        ] {
            let (sql, _, args) = tr(f);
            assert!(!sql.contains("DROP"), "{sql}");
            assert!(!sql.contains("O'Brien") && !sql.contains("'\"$1"), "{sql}");
            assert!(!args.is_empty());
        }
    }

    #[test]
    fn ne_and_not_negate_only_exact_conditions() {
        // `ne`: some value there and not equal, not the negation of `eq`.
        let (sql, exact, _) = tr(r#"title ne "x""#);
        assert!(exact);
        assert!(sql.starts_with("EXISTS"), "{sql}");
        assert!(sql.contains("<> 'null' AND NOT COALESCE"), "{sql}");
        let (sql, exact, _) = tr(r#"not (title eq "x")"#);
        assert!(exact);
        assert!(sql.starts_with("NOT (EXISTS"), "{sql}");
        // Members' display names are supersets: their negation is not narrowed.
        let reg = SchemaRegistry::default();
        let groups = reg.group().unwrap();
        let (sql, exact, args) = tr_on(groups, r#"not (members.display eq "x")"#);
        assert_eq!((sql.as_str(), exact), ("TRUE", false));
        assert!(args.is_empty());
        // Unknown attributes never match, `ne` included, as in the evaluator.
        assert_eq!(tr(r#"nosuch ne "x""#).0, "FALSE");
        assert_eq!(tr(r#"not (nosuch eq "x")"#).0, "TRUE");
    }

    /// Found by tests/sql_equivalence.rs: SQL discarded for a superset or a constant left
    /// its parameters behind, and PostgreSQL refused the statement ("bind message supplies
    /// 5 parameters, but prepared statement requires 3").
    #[test]
    fn discarded_sql_binds_no_parameters() {
        for f in [
            r#"userName eq "a" or meta.created gt "2026-01-01T00:00:00Z""#,
            r#"not (userName eq "a" and x509Certificates.value eq "x")"#,
            r#"title eq "a" and nosuch eq "x""#,
            r#"(title eq "a" or meta.location eq "x") and emails[value co "b"]"#,
            r#"title eq "a" or urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "x" or emails[display eq "x" and value eq "y"]"#,
            r#"not (title eq "a" and emails[value eq "b" and display eq "c"])"#,
        ] {
            let (sql, _, args) = tr(f);
            for n in 1..=args.len() {
                assert!(
                    sql.contains(&format!("${n}")),
                    "`{f}`: ${n} unused in {sql}"
                );
            }
            assert!(
                !sql.contains(&format!("${}", args.len() + 1)),
                "`{f}`: {sql}"
            );
        }
        // `meta.version` compares as the view's ETag text, exactly, whatever the operator.
        let (sql, exact, args) = tr(r#"userName eq "a" or meta.version gt "x" or title eq "b""#);
        assert!(exact, "{sql}");
        assert_eq!(args.len(), 4, "{sql}");
        // A superset operand of `or` makes the whole `or` a superset, without parameters.
        let reg = SchemaRegistry::default();
        let groups = reg.group().unwrap();
        let (sql, exact, args) = tr_on(
            groups,
            r#"not (displayName eq "a" or members.display eq "x")"#,
        );
        assert_eq!((sql.as_str(), exact, args.len()), ("TRUE", false, 0));
    }

    #[test]
    fn nul_needles_are_not_sent() {
        let (sql, exact, args) = tr("userName eq \"a\\u0000b\"");
        assert_eq!(
            (sql.as_str(), exact),
            ("(r.user_name_fold IS NOT NULL AND FALSE)", true)
        );
        assert!(args.is_empty());
        let (sql, _, args) = tr("title lt \"ab\\u0000\"");
        assert!(sql.contains("<= $2"), "{sql}");
        assert_eq!(args[1], text("ab"));
    }

    #[test]
    fn grant_filters_are_pushed_down_exactly() {
        // Okta Identity Governance's grants: the same value-path translation as `emails`.
        let (sql, exact, args) = tr(r#"entitlements[type eq "License" and value eq "pro"]"#);
        assert!(exact, "{sql}");
        assert!(sql.contains("ROWS FROM"), "{sql}");
        assert!(
            args.contains(&text("lax $.\"entitlements\"[*]")),
            "{args:?}"
        );
        let (sql, exact, args) = tr(r#"roles[value eq "admin"] or roles.value eq "member""#);
        assert!(exact, "{sql}");
        assert!(args.contains(&text("lax $.\"roles\"[*]")), "{args:?}");
    }

    #[test]
    fn value_paths_and_meta() {
        let (sql, exact, args) = tr(r#"emails[type eq "work" and primary eq true]"#);
        assert!(exact);
        assert!(sql.contains("ROWS FROM"), "{sql}");
        assert!(args.contains(&text("lax $.\"emails\"[*]")), "{args:?}");
        let (sql, exact, args) = tr(r#"meta.created gt "2026-01-01T00:00:00.5Z""#);
        assert_eq!(
            (sql.as_str(), exact),
            ("(r.created IS NOT NULL AND r.created > $1)", true)
        );
        assert_eq!(args, vec![Param::Int(1_767_225_600_500_000_000)]);
        let (sql, exact, args) = tr(r#"meta.version eq "W/\"3\"""#);
        assert_eq!(
            (sql.as_str(), exact),
            ("('W/\"' || r.version::text || '\"') = $1", true)
        );
        assert_eq!(args, vec![text("W/\"3\"")]);
        // Derived from the id: always there, equal to nothing the engine's view holds.
        assert_eq!(tr("meta.location pr").0, "TRUE");
        assert_eq!(tr(r#"meta.location eq "x""#).0, "FALSE");
        assert_eq!(tr(r#"meta.resourceType eq "User""#).0, "TRUE");
        assert_eq!(tr(r#"meta.resourceType ne "User""#).0, "FALSE");
        // Tests the empty string passes read the document, not the NULL-for-empty column.
        assert!(tr(r#"userName lt "b""#).0.starts_with("EXISTS"));
        assert!(tr(r#"userName eq """#).0.starts_with("EXISTS"));
        assert!(tr(r#"userName ne "b""#).0.starts_with("EXISTS"));
        assert!(tr(r#"userName gt "b""#).0.starts_with("(r.user_name_fold"));
    }

    #[test]
    fn json_paths_quote_names() {
        assert_eq!(
            json_path(&["urn:a:b".into(), "x\"y".into()], true),
            "lax $.\"urn:a:b\".\"x\\\"y\"[*]"
        );
    }

    #[test]
    fn sort_keys() {
        let reg = SchemaRegistry::default();
        let users = reg.user().unwrap();
        let mut p = params();
        let by = |s: &str, o| SortSpec {
            by: AttrPath::parse(s).unwrap(),
            order: o,
        };
        assert_eq!(
            order_by(users, &by("userName", SortOrder::Descending), &mut p).unwrap(),
            "r.user_name_fold DESC NULLS LAST, r.ord"
        );
        assert!(order_by(users, &by("emails", SortOrder::Ascending), &mut p).is_some());
        assert!(
            order_by(users, &by("meta.version", SortOrder::Ascending), &mut p)
                .unwrap()
                .starts_with("('W/\"' || r.version::text")
        );
        let groups = reg.group().unwrap();
        assert!(order_by(groups, &by("members.display", SortOrder::Ascending), &mut p).is_none());
        let key = order_by(users, &by("emails.value", SortOrder::Descending), &mut p).unwrap();
        assert!(key.contains("OFFSET 0"), "{key}");
        assert!(key.ends_with("DESC NULLS LAST, r.ord"), "{key}");
    }
}
