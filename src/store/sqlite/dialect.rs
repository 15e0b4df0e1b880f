//! The SQLite [`Dialect`] of the filter translator ([`crate::store::sql`]), and the sort key
//! over the stored document.
//!
//! - Values are searched with `json_each`, one level of arrays at each step, as the
//!   evaluator searches them; JSON paths are bound parameters (`?N`), built from `."key"`
//!   steps.
//! - Strings compare in `r.doc` when `caseExact`, else in `r.fdoc`, whose strings are folded
//!   exactly as the evaluator folds them; `co`, `sw` and `ew` compare bytes
//!   (`instr`/`substr` on blobs), which for UTF-8 is the same as comparing characters, and
//!   ordering compares text by code point (SQLite's `BINARY`).
//! - dateTimes compare the chronological keys of `r.ddoc` (see [`super::docs`]) and of the
//!   `created_key`/`modified_key` columns; numbers compare as SQLite numbers, which equals
//!   the evaluator's comparison while the filter value is below 2^53 in magnitude (beyond,
//!   the leaf is a superset).
//! - The extracted columns hold `''` for an empty string, so every string test can use them.

use chrono::{DateTime, FixedOffset};
use serde_json::Number;

use super::docs::date_key;
use crate::filter::{CompareOp, SortOrder, SortSpec, Test};
use crate::schema::{AttributeType, ResourceDef};
use crate::store::sql::{
    extracted_column, sort_key, Column, Cx, Dialect, Exactness, Param, SortKey, Where,
};

/// SQLite's SQL.
pub(super) struct Sqlite;

/// The extracted column of SQLite holding top-level `keys` of `rt` for a comparison that
/// ignores case (`folded`) or not (see [`extracted_column`]).
pub(super) fn column_for(
    rt: &ResourceDef,
    keys: &[Box<str>],
    folded: bool,
) -> Option<&'static str> {
    extracted_column(rt, keys, folded).map(|c| Sqlite.column(c))
}

/// Numbers below this magnitude compare the same in SQLite and in the evaluator (which
/// compares through `f64` when either side is not an integer).
const EXACT_NUMBERS: f64 = 9_007_199_254_740_992.0;

/// A JSON path step for `key`: `."key"`. SQLite's JSON paths cannot escape a double quote,
/// so such a key (never produced by the built-in schemas) is not translated.
fn step(key: &str) -> Option<String> {
    (!key.contains('"')).then(|| format!(".\"{key}\""))
}

impl Dialect for Sqlite {
    /// The SQL expression of the element's JSON path in `r.doc`.
    type Elem = String;

    const PLACEHOLDER: char = '?';
    const TRUE: &'static str = "1";
    const FALSE: &'static str = "0";
    const EMPTY_IS_NULL: bool = false;

    fn column(&self, c: Column) -> &'static str {
        match c {
            Column::Id => "r.id",
            Column::UserName => "r.user_name_cf",
            Column::ExternalId => "r.external_id",
            Column::DisplayName => "r.display_name_cf",
            Column::Created => "r.created_key",
            Column::Modified => "r.modified_key",
        }
    }

    fn member_column(&self, folded: bool) -> &'static str {
        if folded {
            "member_cf"
        } else {
            "member_id"
        }
    }

    /// Every `EXISTS` here ends in `LIMIT 1`: without it, the bundled SQLite turns an
    /// `EXISTS` over several matching rows into a join and applies the outer `OFFSET` to the
    /// joined rows, returning a wrong page (seen with `members pr` at `startIndex=2`).
    fn member_exists(&self, m: &str, cond: Option<&str>) -> String {
        let cond = cond.map(|c| format!(" AND {c}")).unwrap_or_default();
        format!(
            "EXISTS (SELECT 1 FROM members AS {m} WHERE {m}.tenant = r.tenant AND {m}.group_id = r.id{cond} LIMIT 1)"
        )
    }

    fn version_text(&self, prefix: &str) -> String {
        format!("({prefix} || r.version || '\"')")
    }

    fn str_cmp(&self, cx: &mut Cx<'_>, val: &str, op: CompareOp, needle: &str) -> String {
        if op.is_substring() && needle.is_empty() {
            return "1".to_owned();
        }
        match op {
            CompareOp::Co => {
                let n = cx.param(Param::Text(needle.to_owned()));
                format!("instr(CAST({val} AS BLOB), CAST({n} AS BLOB)) > 0")
            }
            CompareOp::Sw | CompareOp::Ew => {
                let n = cx.param(Param::Text(needle.to_owned()));
                let len = i64::try_from(needle.len()).unwrap_or(i64::MAX);
                let start = if op == CompareOp::Sw {
                    "1".to_owned()
                } else {
                    cx.param(Param::Int(-len))
                };
                let l = cx.param(Param::Int(len));
                // `substr` of an empty blob is NULL, not an empty blob: without the COALESCE,
                // `not (displayName sw "x")` would be NULL (false) for `""`.
                format!(
                    "COALESCE(substr(CAST({val} AS BLOB), {start}, {l}) = CAST({n} AS BLOB), 0)"
                )
            }
            _ => {
                let n = cx.param(Param::Text(needle.to_owned()));
                format!("{val} {} {n}", sql_op(op))
            }
        }
    }

    /// An equality is marked `unlikely` (selective): without table statistics SQLite would
    /// otherwise walk the type index in `ord` order to skip the sort of an index page (every
    /// row of the type, for one match), since the value indexes end in `id`, not `ord`. The
    /// marking does not stop the planner from using the value index for the term.
    fn column_cmp(&self, cx: &mut Cx<'_>, col: &str, op: CompareOp, needle: &str) -> String {
        let cmp = self.str_cmp(cx, col, op, needle);
        if op == CompareOp::Eq {
            format!("unlikely({cmp})")
        } else {
            cmp
        }
    }

    fn instant_cmp(
        &self,
        cx: &mut Cx<'_>,
        col: &str,
        op: CompareOp,
        at: &DateTime<FixedOffset>,
    ) -> Option<String> {
        let k = cx.param(Param::Text(date_key(at)));
        Some(format!("{col} {} {k}", sql_op(op)))
    }

    fn json_leaf(
        &self,
        cx: &mut Cx<'_>,
        at: Option<&String>,
        keys: &[Box<str>],
        test: &Test,
    ) -> Where {
        let base = at.map_or("'$'", |p| p.as_str());
        let mut exact = true;
        match any_value(cx, base, keys, test, at.is_none(), &mut exact) {
            Some(sql) => Where::sql(
                format!("COALESCE({sql}, 0)"),
                if exact {
                    Exactness::Exact
                } else {
                    Exactness::Inexact
                },
            ),
            None => Where::superset(),
        }
    }

    fn value_filter(
        &self,
        cx: &mut Cx<'_>,
        keys: &[Box<str>],
        inner: &mut dyn FnMut(&mut Cx<'_>, String) -> Where,
    ) -> Where {
        let mut path = String::new();
        for k in keys {
            match step(k) {
                Some(s) => path.push_str(&s),
                None => return Where::superset(),
            }
        }
        let p = cx.param(Param::Text(path));
        let at = format!("('$' || {p})");
        let e = cx.alias("e");
        let elem = format!("({at} || '[' || {e}.key || ']')");
        let in_arr = inner(cx, elem);
        let in_obj = inner(cx, at.clone());
        let exactness = in_arr.exactness.and(in_obj.exactness);
        let (in_arr, in_obj) = (in_arr.render::<Sqlite>(), in_obj.render::<Sqlite>());
        Where::sql(
            format!(
                "(CASE json_type(r.doc, {at}) WHEN 'array' THEN EXISTS (SELECT 1 FROM json_each(r.doc, {at}) AS {e} WHERE {e}.type = 'object' AND {in_arr} LIMIT 1) WHEN 'object' THEN {in_obj} ELSE 0 END)"
            ),
            exactness,
        )
    }
}

/// Some value reached from the JSON path `pos` through `keys` passes `test` (the
/// evaluator's `any_value`). `object` is true when `pos` is known to be an object.
fn any_value(
    cx: &mut Cx<'_>,
    pos: &str,
    keys: &[Box<str>],
    test: &Test,
    object: bool,
    exact: &mut bool,
) -> Option<String> {
    match keys.split_first() {
        None => {
            let e = cx.alias("e");
            let elem = format!("({pos} || '[' || {e}.key || ']')");
            let in_arr = test_at(cx, &elem, Some(&e), test, exact);
            let here = test_at(cx, pos, None, test, exact);
            Some(format!(
                "(CASE json_type(r.doc, {pos}) WHEN 'array' THEN EXISTS (SELECT 1 FROM json_each(r.doc, {pos}) AS {e} WHERE {e}.type <> 'array' AND {in_arr} LIMIT 1) ELSE {here} END)"
            ))
        }
        Some((k, rest)) => {
            let s = cx.param(Param::Text(step(k)?));
            let next = format!("({pos} || {s})");
            let in_obj = any_value(cx, &next, rest, test, false, exact)?;
            if object {
                return Some(in_obj);
            }
            let e = cx.alias("e");
            let elem_next = format!("({pos} || '[' || {e}.key || ']' || {s})");
            let in_arr = any_value(cx, &elem_next, rest, test, false, exact)?;
            Some(format!(
                "(CASE json_type(r.doc, {pos}) WHEN 'object' THEN {in_obj} WHEN 'array' THEN EXISTS (SELECT 1 FROM json_each(r.doc, {pos}) AS {e} WHERE {e}.type = 'object' AND {in_arr} LIMIT 1) ELSE 0 END)"
            ))
        }
    }
}

/// `test` on the single value at JSON path `pos` (`elem`: the `json_each` row holding it,
/// when there is one).
fn test_at(
    cx: &mut Cx<'_>,
    pos: &str,
    elem: Option<&str>,
    test: &Test,
    exact: &mut bool,
) -> String {
    let src = match test.base() {
        Test::Str {
            case_exact: false, ..
        } => "r.fdoc",
        Test::Date { .. } => "r.ddoc",
        _ => "r.doc",
    };
    let (ty, val) = match elem {
        Some(e) if src == "r.doc" => (format!("{e}.type"), format!("{e}.value")),
        _ => (
            format!("json_type({src}, {pos})"),
            format!("json_extract({src}, {pos})"),
        ),
    };
    if let (Test::Ne(inner), "r.ddoc") = (test, src) {
        // `ddoc` holds `null` for a value that does not read as a dateTime, but the value
        // is there in `doc` and differs from any instant (the evaluator's `ne`).
        let there = match elem {
            Some(e) => format!("{e}.type"),
            None => format!("json_type(r.doc, {pos})"),
        };
        let eq = cond_at(cx, pos, &ty, &val, inner, exact);
        return format!("(COALESCE({there}, 'null') <> 'null' AND NOT COALESCE({eq}, 0))");
    }
    cond_at(cx, pos, &ty, &val, test, exact)
}

/// `test` on the value `val` of JSON type `ty` (both SQL expressions, `ty` `NULL` when
/// the path is missing) found at JSON path `pos`.
fn cond_at(
    cx: &mut Cx<'_>,
    pos: &str,
    ty: &str,
    val: &str,
    test: &Test,
    exact: &mut bool,
) -> String {
    match test {
        Test::Ne(inner) => {
            // A value (not missing, not JSON null) that fails the `eq` test. The negation
            // is exact only if the test is: otherwise the value's presence is a superset.
            let mut inner_exact = true;
            let eq = cond_at(cx, pos, ty, val, inner, &mut inner_exact);
            if inner_exact {
                format!("(COALESCE({ty}, 'null') <> 'null' AND NOT COALESCE({eq}, 0))")
            } else {
                *exact = false;
                format!("(COALESCE({ty}, 'null') <> 'null')")
            }
        }
        Test::Present => {
            let x = cx.alias("x");
            let shallow = format!(
                "(CASE {x}.type WHEN 'null' THEN 0 WHEN 'text' THEN {x}.value <> '' WHEN 'array' THEN json_array_length({x}.value) > 0 WHEN 'object' THEN EXISTS (SELECT 1 FROM json_each({x}.value)) ELSE 1 END)"
            );
            format!(
                "(CASE {ty} WHEN 'text' THEN {val} <> '' WHEN 'true' THEN 1 WHEN 'false' THEN 1 WHEN 'integer' THEN 1 WHEN 'real' THEN 1 WHEN 'array' THEN EXISTS (SELECT 1 FROM json_each(r.doc, {pos}) AS {x} WHERE {shallow} LIMIT 1) WHEN 'object' THEN EXISTS (SELECT 1 FROM json_each(r.doc, {pos}) AS {x} WHERE {shallow} LIMIT 1) ELSE 0 END)"
            )
        }
        Test::Str { op, needle, .. } => {
            let cmp = Sqlite.str_cmp(cx, val, *op, needle);
            format!("({ty} = 'text' AND {cmp})")
        }
        Test::Bool(b) => {
            format!("({ty} = '{}')", if *b { "true" } else { "false" })
        }
        Test::Num { op, n } => match number_param(n) {
            Some(p) => {
                let p = cx.param(p);
                format!(
                    "({ty} IN ('integer', 'real') AND {val} {} {p})",
                    sql_op(*op)
                )
            }
            None => {
                *exact = false;
                format!("({ty} IN ('integer', 'real'))")
            }
        },
        Test::Date { op, at } => {
            let k = cx.param(Param::Text(date_key(at)));
            format!("({ty} = 'text' AND {val} {} {k})", sql_op(*op))
        }
    }
}

/// The SQL `ORDER BY` for a sort the database can do exactly, with the creation order
/// breaking ties as the engine's stable sort does; `None` when it cannot.
pub(super) fn order_by(rt: &ResourceDef, spec: &SortSpec) -> Option<String> {
    let dir = match spec.order {
        SortOrder::Ascending => "ASC",
        SortOrder::Descending => "DESC",
    };
    let col = match sort_key(rt, spec)? {
        SortKey::Creation => return Some("r.ord ASC".into()),
        // The view's version is the ETag text, compared as a string.
        SortKey::Version => {
            return Some(format!(
                "{} {dir}, r.ord ASC",
                Sqlite.version_text("'W/\"'")
            ))
        }
        SortKey::Column(c) => Sqlite.column(c),
        SortKey::Document(r) => {
            let (rank, key) = json_sort_key(&r)?;
            // No value (a NULL rank) sorts last in both directions.
            let none = match spec.order {
                SortOrder::Ascending => 1000,
                SortOrder::Descending => -1,
            };
            return Some(format!(
                "COALESCE({rank}, {none}) {dir}, {key} {dir}, r.ord ASC"
            ));
        }
    };
    // `NULLIF`: an empty string and a missing value both have no value and tie, in
    // creation order (found by tests/sql_equivalence.rs).
    Some(format!(
        "({col} IS NULL OR {col} = '') ASC, NULLIF({col}, '') {dir}, r.ord ASC"
    ))
}

/// The sort key of RFC 7644 §3.4.2.3 over the stored document, for any attribute but
/// `members`, `id` and `meta` (columns): `(rank, key)` SQL expressions that order rows
/// exactly as the engine's sorter ([`crate::filter::sort_resources`]) orders documents.
///
/// - The value is found as the sorter finds it: through the attribute's keys, and at each
///   multi-valued attribute the element marked `primary`, else the first element
///   (`json_each` finds the primary one); a complex attribute without a sub-attribute sorts
///   by the element's `value`.
/// - `rank` is `NULL` for a resource without a value (missing, `null`, `""`, an empty list
///   or object), else the sorter's type rank: booleans, numbers, dateTimes, strings, then
///   lists and objects; `key` orders values of one rank: `false` before `true`, numbers as
///   SQLite numbers, dateTimes by their chronological key in `r.ddoc`, strings by code point
///   in `r.fdoc` (folded alike) unless the attribute is `caseExact` or binary.
///
/// `None` when a key cannot be written into a JSON path literal (a character other than
/// letters, digits and `:._$-`, which the built-in schemas never use).
fn json_sort_key(r: &crate::schema::ResolvedAttr<'_>) -> Option<(String, String)> {
    fn lit(key: &str) -> Option<String> {
        key.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":._$-".contains(&b))
            .then(|| format!("'.\"{key}\"'"))
    }
    // The sorter's `pick` on the value at path `p`: the primary element of a list, else
    // its first one. Only applied where the schema allows a list (documents are stored
    // normalised against it), so the expression stays small.
    fn pick(p: &str) -> String {
        format!(
            "(CASE json_type(r.doc, {p}) WHEN 'array' THEN {p} || '[' || COALESCE((SELECT pe.key FROM json_each(r.doc, {p}) AS pe WHERE pe.type = 'object' AND json_type(pe.value, '$.primary') = 'true' ORDER BY pe.key LIMIT 1), 0) || ']' ELSE {p} END)"
        )
    }
    let mut def = r.sub.unwrap_or(r.attr);
    let mut path = "'$'".to_owned();
    if let Some(ext) = r.extension {
        path = format!("({path} || {})", lit(ext)?);
    }
    path = format!("({path} || {})", lit(&r.attr.name)?);
    if r.attr.multi_valued {
        path = pick(&path);
    }
    if let Some(sub) = r.sub {
        path = format!("({path} || {})", lit(&sub.name)?);
        if sub.multi_valued {
            path = pick(&path);
        }
    }
    if def.is_complex() {
        def = def.sub_attribute("value")?;
        path = format!("({path} || {})", lit(&def.name)?);
        if def.multi_valued {
            path = pick(&path);
        }
    }
    // The path is computed once per row, in a subquery that `OFFSET 0` keeps SQLite from
    // flattening (which would copy the expression into every use of `p`).
    let p = "s.p";
    let fold = !(def.case_exact || def.ty == AttributeType::Binary);
    let text_src = if fold { "r.fdoc" } else { "r.doc" };
    let date = def.ty == AttributeType::DateTime;
    let (text_rank, text_key) = if date {
        (
            format!("CASE WHEN json_type(r.ddoc, {p}) = 'text' THEN 3 ELSE 4 END"),
            format!("COALESCE(json_extract(r.ddoc, {p}), json_extract({text_src}, {p}))"),
        )
    } else {
        ("4".to_owned(), format!("json_extract({text_src}, {p})"))
    };
    // A list or object is a value when some element is (the evaluator's `is_present`).
    let shallow = "(CASE x.type WHEN 'null' THEN 0 WHEN 'text' THEN x.value <> '' WHEN 'array' THEN json_array_length(x.value) > 0 WHEN 'object' THEN EXISTS (SELECT 1 FROM json_each(x.value)) ELSE 1 END)";
    let rank = format!(
        "(CASE json_type(r.doc, {p}) WHEN 'true' THEN 1 WHEN 'false' THEN 1 WHEN 'integer' THEN 2 WHEN 'real' THEN 2 \
         WHEN 'text' THEN (CASE WHEN json_extract(r.doc, {p}) = '' THEN NULL ELSE {text_rank} END) \
         WHEN 'array' THEN (CASE WHEN EXISTS (SELECT 1 FROM json_each(r.doc, {p}) AS x WHERE {shallow}) THEN 9 END) \
         WHEN 'object' THEN (CASE WHEN EXISTS (SELECT 1 FROM json_each(r.doc, {p}) AS x WHERE {shallow}) THEN 10 END) END)"
    );
    let key = format!(
        "(CASE json_type(r.doc, {p}) WHEN 'true' THEN 1 WHEN 'false' THEN 0 WHEN 'integer' THEN json_extract(r.doc, {p}) \
         WHEN 'real' THEN json_extract(r.doc, {p}) \
         WHEN 'text' THEN (CASE WHEN json_extract(r.doc, {p}) = '' THEN NULL ELSE {text_key} END) END)"
    );
    let once = |e: &str| format!("(SELECT {e} FROM (SELECT {path} AS p LIMIT 1 OFFSET 0) AS s)");
    Some((once(&rank), once(&key)))
}

/// The parameter for a number that compares exactly in SQLite, if it does.
fn number_param(n: &Number) -> Option<Param> {
    let f = n.as_f64()?;
    if !f.is_finite() || f.abs() >= EXACT_NUMBERS {
        return None;
    }
    Some(match n.as_i64() {
        Some(i) => Param::Int(i),
        None => Param::Real(f),
    })
}

fn sql_op(op: CompareOp) -> &'static str {
    match op {
        CompareOp::Eq => "=",
        CompareOp::Ne => "<>",
        CompareOp::Gt => ">",
        CompareOp::Ge => ">=",
        CompareOp::Lt => "<",
        CompareOp::Le => "<=",
        // Substring operators are translated by `str_cmp`; elsewhere they never match.
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => "<> 0 AND 0 =",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::Filter;
    use crate::schema::SchemaRegistry;
    use crate::store::sql::{translate, Params};

    /// A translation for the tests: the SQL, its parameters and whether it is exact.
    struct T {
        sql: String,
        params: Vec<Param>,
        exact: bool,
    }

    impl T {
        /// The SQL with the parameters listed after it.
        fn show(&self) -> String {
            format!("{} {:?}", self.sql, self.params)
        }
    }

    fn tr_on(rt: &ResourceDef, filter: &str, first: usize) -> T {
        let f = Filter::parse(filter).unwrap().compile(rt, false).unwrap();
        let mut p = Params::new::<Sqlite>(first);
        let w = translate(&Sqlite, rt, f.root(), &mut p);
        T {
            sql: w.render::<Sqlite>(),
            params: p.args,
            exact: w.is_exact(),
        }
    }

    fn tr(filter: &str) -> T {
        let reg = SchemaRegistry::default();
        tr_on(reg.user().unwrap(), filter, 3)
    }

    #[test]
    fn user_name_eq_uses_the_folded_column() {
        let w = tr(r#"userName eq "BJensen""#);
        assert_eq!(
            w.sql,
            "(r.user_name_cf IS NOT NULL AND unlikely(r.user_name_cf = ?3))"
        );
        assert_eq!(w.params, vec![Param::Text("bjensen".into())]);
        assert!(w.exact);
    }

    #[test]
    fn grant_filters_are_pushed_down_exactly() {
        // Okta Identity Governance's grants: the same value-path translation as `emails`.
        for f in [
            r#"entitlements[type eq "License" and value eq "pro"]"#,
            r#"roles[value eq "admin"] or roles.value eq "member""#,
        ] {
            let w = tr(f);
            assert!(w.exact, "{f}: {}", w.show());
            assert!(w.sql.contains("json_each"), "{f}: {}", w.show());
        }
        let w = tr(r#"entitlements[type eq "License" and value eq "pro"]"#);
        assert!(
            w.params.contains(&Param::Text("pro".into())),
            "{}",
            w.show()
        );
    }

    #[test]
    fn values_are_never_spliced() {
        let evil = serde_json::to_string(r#"x' OR 1=1; DROP TABLE resources; --\"%_"#).unwrap();
        for f in [
            format!("userName eq {evil}"),
            format!("title co {evil}"),
            format!("emails[value sw {evil}]"),
        ] {
            let w = tr(&f);
            assert!(!w.sql.contains("DROP"), "{}", w.show());
            assert!(!w.sql.contains("1=1"), "{}", w.show());
            assert!(w.exact);
        }
    }

    #[test]
    fn not_of_an_inexact_operand_is_a_superset() {
        let w = tr(r#"not (members.display eq "x")"#);
        // Users have no members: the compiler already made it constant.
        assert!(w.exact);
        let reg = SchemaRegistry::default();
        let groups = reg.group().unwrap();
        let w = tr_on(groups, r#"not (members.display eq "x")"#, 1);
        assert_eq!((w.sql.as_str(), w.exact), ("1", false));
        assert!(w.params.is_empty());
        let w = tr_on(
            groups,
            r#"displayName eq "a" and members.display eq "x""#,
            1,
        );
        assert!(!w.exact);
        assert!(w.sql.contains("r.display_name_cf"), "{}", w.show());
        // The engine's view of a member has no `$ref`: exactly nothing.
        let w = tr_on(groups, r#"members.$ref pr"#, 1);
        assert_eq!((w.sql.as_str(), w.exact), ("0", true));
    }

    #[test]
    fn large_numbers_are_inexact() {
        assert!(tr("x eq 1").exact);
        let w = tr(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq \"5\"",
        );
        assert!(w.exact);
        assert!(number_param(&Number::from(5)).is_some());
        assert!(number_param(&Number::from(9_007_199_254_740_993_u64)).is_none());
        assert!(number_param(&Number::from_f64(0.5).unwrap()).is_some());
    }

    #[test]
    fn substring_operators_compare_bytes() {
        let w = tr(r#"title ew "Ab""#);
        assert!(w.sql.contains("substr(CAST("), "{}", w.show());
        assert_eq!(w.params.last(), Some(&Param::Int(2)), "{}", w.show());
        let w = tr(r#"title co """#);
        assert!(!w.params.iter().any(|p| *p == Param::Text(String::new())));
    }

    #[test]
    fn meta_reads_columns() {
        let w = tr(r#"meta.created gt "2026-01-01T00:00:00Z""#);
        assert!(w.exact);
        assert!(
            w.sql
                .starts_with("(r.created_key IS NOT NULL AND r.created_key > ?3"),
            "{}",
            w.show()
        );
        let w = tr(r#"meta.version ne "W/\"3\"""#);
        assert!(w.exact, "{}", w.show());
        assert!(w.sql.contains("r.version"), "{}", w.show());
        assert_eq!(tr(r#"meta.resourceType eq "User""#).sql, "1");
        // `meta` is not in the stored document: a value filter on it is the engine's.
        let w = tr(r#"meta[resourceType eq "User"]"#);
        assert_eq!((w.sql.as_str(), w.exact), ("1", false));
        assert_eq!(tr(r#"meta.location eq "x""#).sql, "0");
    }
}
