//! Filter to SQL: the compiled filter tree (paths resolved, values typed and folded by the
//! engine's compiler) becomes a `WHERE` condition over the `resources` row `r`.
//!
//! Every value, JSON path included, is a bound parameter (`?N`); the SQL text is built only
//! from fixed fragments and generated aliases. Each condition is 0 or 1, never `NULL`, so
//! `NOT` is exact. The translation follows the evaluator's rules (see [`crate::filter`]):
//! - a leaf searches every value reached through its keys, arrays one level deep at each step
//!   (`json_each`), as the evaluator does;
//! - strings compare in `r.doc` when `caseExact`, else in `r.fdoc`, whose strings are
//!   folded exactly as the evaluator folds them ([`crate::filter::fold_case`], never SQL
//!   `lower()`, `LIKE` or `NOCASE`, whose rules differ); `co`, `sw` and `ew` compare bytes
//!   (`instr`/`substr` on blobs), which for UTF-8 is the same as comparing characters, and
//!   ordering compares text by code point (SQLite's `BINARY`);
//! - `ne` is true for a value that is there (not missing, not JSON `null`) and is not equal,
//!   searched like any other test, so on a multi-valued attribute it matches when some value
//!   differs (RFC 7644 §3.4.2.2), and an absent attribute never matches it;
//! - dateTimes compare the chronological keys of `r.ddoc` (see [`super::docs`]); numbers
//!   compare as SQLite numbers, which equals the evaluator's comparison while the filter
//!   value is below 2^53 in magnitude (beyond, the leaf is a superset: [`Where::exact`] false);
//! - `id`, `meta.created`, `meta.lastModified`, `meta.version`, `meta.resourceType`,
//!   `members.value` and `members pr` read columns and the membership table.
//!
//! `meta.location` (derived by the service from the id) is present on every resource and
//! equal to nothing the engine's view holds, exactly as the evaluator sees it.
//!
//! What is not translated exactly (`members.type`, `members.display`) becomes a superset (true) and the whole answer is then inexact; under `not`,
//! an inexact operand makes the negation true as well.

use serde_json::{Number, Value};

use super::docs::date_key;
use crate::filter::{CompareOp, Node, Test};
use crate::schema::{AttributeType, ResourceDef};

/// A bound parameter.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Param {
    Text(String),
    Int(i64),
    Real(f64),
}

/// A translated condition.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Where {
    /// SQL over the row alias `r`, with `?N` parameters numbered from the `first` given.
    pub(super) sql: String,
    /// The parameters, in number order.
    pub(super) params: Vec<Param>,
    /// True when the condition holds for exactly the matching rows; otherwise for a superset.
    pub(super) exact: bool,
}

/// A single-valued string attribute copied into an indexed column of `resources`.
pub(super) struct Column {
    /// The attribute name in the core schema.
    pub(super) attribute: &'static str,
    /// The column, qualified with `r.`.
    pub(super) column: &'static str,
    /// True when the column holds the folded value (for comparisons ignoring case).
    pub(super) folded: bool,
}

/// The extracted columns: what identity providers look resources up by.
pub(super) const COLUMNS: [Column; 3] = [
    Column {
        attribute: "userName",
        column: "r.user_name_cf",
        folded: true,
    },
    Column {
        attribute: "externalId",
        column: "r.external_id",
        folded: false,
    },
    Column {
        attribute: "displayName",
        column: "r.display_name_cf",
        folded: true,
    },
];

/// The column holding top-level `attribute` of `rt` in the form a comparison that ignores
/// case (`folded`) or not needs, when the schema makes it a single-valued string.
pub(super) fn column_for(
    rt: &ResourceDef,
    keys: &[Box<str>],
    folded: bool,
) -> Option<&'static str> {
    let [name] = keys else {
        return None;
    };
    let c = COLUMNS
        .iter()
        .find(|c| c.attribute == &**name && c.folded == folded)?;
    let def = rt.top_level(c.attribute)?;
    (def.name == c.attribute && def.ty == AttributeType::String && !def.multi_valued)
        .then_some(c.column)
}

/// Numbers below this magnitude compare the same in SQLite and in the evaluator (which
/// compares through `f64` when either side is not an integer).
const EXACT_NUMBERS: f64 = 9_007_199_254_740_992.0;

/// Where a leaf's keys start.
#[derive(Clone)]
enum Pos {
    /// The resource document's root.
    Root,
    /// An element of a multi-valued attribute: a SQL expression for its JSON path.
    Elem(String),
    /// A member of the group (a row `m` of `members` joined in the enclosing `EXISTS`).
    Member(String),
}

/// Translates a compiled filter. `first` is the number of the first parameter.
pub(super) fn translate(rt: &ResourceDef, root: &Node, first: usize) -> Where {
    let mut t = Translator {
        rt,
        params: Vec::new(),
        first,
        aliases: 0,
    };
    let (sql, exact) = t.node(root, &Pos::Root, 0);
    Where {
        sql,
        params: t.params,
        exact,
    }
}

struct Translator<'a> {
    rt: &'a ResourceDef,
    params: Vec<Param>,
    first: usize,
    aliases: usize,
}

/// Deeper trees are answered as a superset (the parser bounds depth well below this).
const MAX_DEPTH: usize = 64;

const SUPERSET: (&str, bool) = ("1", false);

fn superset() -> (String, bool) {
    (SUPERSET.0.to_owned(), SUPERSET.1)
}

/// A JSON path step for `key`: `."key"`. SQLite's JSON paths cannot escape a double quote,
/// so such a key (never produced by the built-in schemas) is not translated.
fn step(key: &str) -> Option<String> {
    (!key.contains('"')).then(|| format!(".\"{key}\""))
}

impl Translator<'_> {
    fn param(&mut self, p: Param) -> String {
        self.params.push(p);
        format!("?{}", self.first + self.params.len() - 1)
    }

    fn alias(&mut self, prefix: &str) -> String {
        self.aliases += 1;
        format!("{prefix}{}", self.aliases)
    }

    fn node(&mut self, n: &Node, pos: &Pos, depth: usize) -> (String, bool) {
        if depth > MAX_DEPTH {
            return superset();
        }
        match n {
            Node::Const(b) => ((if *b { "1" } else { "0" }).to_owned(), true),
            Node::Not(inner) => match self.node(inner, pos, depth + 1) {
                (sql, true) => (format!("(NOT {sql})"), true),
                (_, false) => superset(),
            },
            Node::And(ns) | Node::Or(ns) => {
                let join = if matches!(n, Node::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                let mut parts = Vec::with_capacity(ns.len());
                let mut exact = true;
                for c in ns.iter() {
                    let (sql, e) = self.node(c, pos, depth + 1);
                    exact &= e;
                    parts.push(sql);
                }
                (format!("({})", parts.join(join)), exact)
            }
            Node::Any { keys, inner } => self.any_element(keys, inner, pos, depth),
            Node::Leaf(leaf) => self.leaf(&leaf.keys, &leaf.test, pos),
        }
    }

    /// A value path: some object element of the attribute at `keys` matches `inner`.
    fn any_element(
        &mut self,
        keys: &[Box<str>],
        inner: &Node,
        pos: &Pos,
        depth: usize,
    ) -> (String, bool) {
        if let (Pos::Root, [k]) = (pos, keys) {
            if &**k == "members" {
                let m = self.alias("m");
                let (cond, exact) = self.node(inner, &Pos::Member(m.clone()), depth + 1);
                return (member_exists(&m, &cond), exact);
            }
        }
        let base = match pos {
            Pos::Root => "'$'".to_owned(),
            Pos::Elem(p) => p.clone(),
            Pos::Member(_) => return superset(),
        };
        let mut path = String::new();
        for k in keys {
            match step(k) {
                Some(s) => path.push_str(&s),
                None => return superset(),
            }
        }
        let p = self.param(Param::Text(path));
        let at = format!("({base} || {p})");
        let e = self.alias("e");
        let elem = format!("({at} || '[' || {e}.key || ']')");
        let (in_arr, ex1) = self.node(inner, &Pos::Elem(elem), depth + 1);
        let (in_obj, ex2) = self.node(inner, &Pos::Elem(at.clone()), depth + 1);
        (
            format!(
                "(CASE json_type(r.doc, {at}) WHEN 'array' THEN EXISTS (SELECT 1 FROM json_each(r.doc, {at}) AS {e} WHERE {e}.type = 'object' AND {in_arr} LIMIT 1) WHEN 'object' THEN {in_obj} ELSE 0 END)"
            ),
            ex1 && ex2,
        )
    }

    fn leaf(&mut self, keys: &[Box<str>], test: &Test, pos: &Pos) -> (String, bool) {
        match pos {
            Pos::Member(m) => return self.member_leaf(keys, test, m),
            Pos::Root => {
                if let Some(first) = keys.first() {
                    match &**first {
                        "id" | "meta" => return self.view_leaf(keys, test),
                        "members" => return self.members_leaf(keys, test),
                        _ => {}
                    }
                }
                if let Test::Str {
                    case_exact: false, ..
                } = test.base()
                {
                    if let Some(col) = column_for(self.rt, keys, true) {
                        return self.column_test(col, test);
                    }
                }
                if let Test::Str {
                    case_exact: true, ..
                } = test.base()
                {
                    if let Some(col) = column_for(self.rt, keys, false) {
                        return self.column_test(col, test);
                    }
                }
            }
            Pos::Elem(_) => {}
        }
        let base = match pos {
            Pos::Elem(p) => p.clone(),
            _ => "'$'".to_owned(),
        };
        let mut exact = true;
        match self.any_value(&base, keys, test, matches!(pos, Pos::Root), &mut exact) {
            Some(sql) => (format!("COALESCE({sql}, 0)"), exact),
            None => superset(),
        }
    }

    /// A leaf on `id` or `meta.*` (columns).
    fn view_leaf(&mut self, keys: &[Box<str>], test: &Test) -> (String, bool) {
        let names: Vec<&str> = keys.iter().map(|k| &**k).collect();
        if crate::filter::is_meta_location(keys) {
            // Derived by the service from the id: present on every resource (the compiler
            // already made `pr` true), equal to nothing the engine's view holds.
            let yes = matches!(test, Test::Present);
            return ((if yes { "1" } else { "0" }).to_owned(), true);
        }
        // `ne` on these single-valued columns: a value that fails the inner test.
        if let Test::Ne(inner) = test {
            return match (names.as_slice(), &**inner) {
                (["id"], Test::Str { case_exact, .. }) if *case_exact => {
                    self.column_test("r.id", test)
                }
                (["meta", "created"], Test::Date { .. }) => self.column_test("r.created_key", test),
                (["meta", "lastModified"], Test::Date { .. }) => {
                    self.column_test("r.modified_key", test)
                }
                (["meta", "resourceType"], _) => {
                    let v = Value::String(self.rt.name().to_owned());
                    ((if test.test(&v) { "1" } else { "0" }).to_owned(), true)
                }
                _ => superset(),
            };
        }
        match (names.as_slice(), test) {
            (["id"], Test::Present) => ("1".into(), true),
            (["id"], Test::Str { case_exact, .. }) if *case_exact => self.column_test("r.id", test),
            (
                ["meta"] | ["meta", "created" | "lastModified" | "version" | "resourceType"],
                Test::Present,
            ) => ("1".into(), true),
            (["meta", "created"], Test::Date { .. }) => self.column_test("r.created_key", test),
            (["meta", "lastModified"], Test::Date { .. }) => {
                self.column_test("r.modified_key", test)
            }
            (["meta", "version"], Test::Str { case_exact, .. }) => {
                let w = if *case_exact { "'W/\"'" } else { "'w/\"'" };
                let expr = format!("({w} || r.version || '\"')");
                self.value_test(&expr, test)
            }
            (["meta", "resourceType"], _) => {
                let v = Value::String(self.rt.name().to_owned());
                ((if test.test(&v) { "1" } else { "0" }).to_owned(), true)
            }
            _ => superset(),
        }
    }

    /// A leaf on `members` or `members.value` at the root.
    fn members_leaf(&mut self, keys: &[Box<str>], test: &Test) -> (String, bool) {
        let m = self.alias("m");
        let rest: Vec<Box<str>> = keys.iter().skip(1).cloned().collect();
        let (cond, exact) = if rest.is_empty() {
            match test {
                // An element is present when it has a present value: every member has an id.
                Test::Present => ("1".to_owned(), true),
                _ => return superset(),
            }
        } else {
            self.member_leaf(&rest, test, &m)
        };
        (member_exists(&m, &cond), exact)
    }

    /// A leaf on a sub-attribute of a member.
    fn member_leaf(&mut self, keys: &[Box<str>], test: &Test, m: &str) -> (String, bool) {
        match (keys, test.base()) {
            ([k], Test::Present) if &**k == "value" => ("1".to_owned(), true),
            ([k], Test::Str { case_exact, .. }) if &**k == "value" => {
                let col = if *case_exact {
                    format!("{m}.member_id")
                } else {
                    format!("{m}.member_cf")
                };
                self.column_test(&col, test)
            }
            _ => superset(),
        }
    }

    /// A string or dateTime test on a column that is `NULL` when the value is absent.
    ///
    /// An equality is marked `unlikely` (selective): without table statistics SQLite would
    /// otherwise walk the type index in `ord` order to skip the sort of an index page (every
    /// row of the type, for one match), since the value indexes end in `id`, not `ord`. The
    /// marking does not stop the planner from using the value index for the term.
    fn column_test(&mut self, col: &str, test: &Test) -> (String, bool) {
        let (cmp, exact) = self.value_test(col, test);
        let cmp = match test {
            Test::Str {
                op: CompareOp::Eq, ..
            } => format!("unlikely({cmp})"),
            _ => cmp,
        };
        (format!("({col} IS NOT NULL AND {cmp})"), exact)
    }

    /// A test on a SQL text value known to be a string.
    fn value_test(&mut self, val: &str, test: &Test) -> (String, bool) {
        match test {
            Test::Str { op, needle, .. } => (self.str_cmp(val, *op, needle), true),
            Test::Date { op, at } => {
                let k = self.param(Param::Text(date_key(at)));
                (format!("{val} {} {k}", sql_op(*op)), true)
            }
            Test::Present => (format!("{val} <> ''"), true),
            // The caller makes sure the value is there (not NULL).
            Test::Ne(inner) => {
                let (cond, exact) = self.value_test(val, inner);
                (format!("(NOT {cond})"), exact)
            }
            _ => ("0".to_owned(), true),
        }
    }

    fn str_cmp(&mut self, val: &str, op: CompareOp, needle: &str) -> String {
        if op.is_substring() && needle.is_empty() {
            return "1".to_owned();
        }
        match op {
            CompareOp::Co => {
                let n = self.param(Param::Text(needle.to_owned()));
                format!("instr(CAST({val} AS BLOB), CAST({n} AS BLOB)) > 0")
            }
            CompareOp::Sw | CompareOp::Ew => {
                let n = self.param(Param::Text(needle.to_owned()));
                let len = i64::try_from(needle.len()).unwrap_or(i64::MAX);
                let start = if op == CompareOp::Sw {
                    "1".to_owned()
                } else {
                    self.param(Param::Int(-len))
                };
                let l = self.param(Param::Int(len));
                // `substr` of an empty blob is NULL, not an empty blob: without the COALESCE,
                // `not (displayName sw "x")` would be NULL (false) for `""`.
                format!(
                    "COALESCE(substr(CAST({val} AS BLOB), {start}, {l}) = CAST({n} AS BLOB), 0)"
                )
            }
            _ => {
                let n = self.param(Param::Text(needle.to_owned()));
                format!("{val} {} {n}", sql_op(op))
            }
        }
    }

    /// Some value reached from the JSON path `pos` through `keys` passes `test` (the
    /// evaluator's `any_value`). `object` is true when `pos` is known to be an object.
    fn any_value(
        &mut self,
        pos: &str,
        keys: &[Box<str>],
        test: &Test,
        object: bool,
        exact: &mut bool,
    ) -> Option<String> {
        match keys.split_first() {
            None => {
                let e = self.alias("e");
                let elem = format!("({pos} || '[' || {e}.key || ']')");
                let in_arr = self.test_at(&elem, Some(&e), test, exact);
                let here = self.test_at(pos, None, test, exact);
                Some(format!(
                    "(CASE json_type(r.doc, {pos}) WHEN 'array' THEN EXISTS (SELECT 1 FROM json_each(r.doc, {pos}) AS {e} WHERE {e}.type <> 'array' AND {in_arr} LIMIT 1) ELSE {here} END)"
                ))
            }
            Some((k, rest)) => {
                let s = self.param(Param::Text(step(k)?));
                let next = format!("({pos} || {s})");
                let in_obj = self.any_value(&next, rest, test, false, exact)?;
                if object {
                    return Some(in_obj);
                }
                let e = self.alias("e");
                let elem_next = format!("({pos} || '[' || {e}.key || ']' || {s})");
                let in_arr = self.any_value(&elem_next, rest, test, false, exact)?;
                Some(format!(
                    "(CASE json_type(r.doc, {pos}) WHEN 'object' THEN {in_obj} WHEN 'array' THEN EXISTS (SELECT 1 FROM json_each(r.doc, {pos}) AS {e} WHERE {e}.type = 'object' AND {in_arr} LIMIT 1) ELSE 0 END)"
                ))
            }
        }
    }

    /// `test` on the single value at JSON path `pos` (`elem`: the `json_each` row holding it,
    /// when there is one).
    fn test_at(&mut self, pos: &str, elem: Option<&str>, test: &Test, exact: &mut bool) -> String {
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
            let eq = self.cond_at(pos, &ty, &val, inner, exact);
            return format!("(COALESCE({there}, 'null') <> 'null' AND NOT COALESCE({eq}, 0))");
        }
        self.cond_at(pos, &ty, &val, test, exact)
    }

    /// `test` on the value `val` of JSON type `ty` (both SQL expressions, `ty` `NULL` when
    /// the path is missing) found at JSON path `pos`.
    fn cond_at(&mut self, pos: &str, ty: &str, val: &str, test: &Test, exact: &mut bool) -> String {
        match test {
            Test::Ne(inner) => {
                // A value (not missing, not JSON null) that fails the `eq` test. The negation
                // is exact only if the test is: otherwise the value's presence is a superset.
                let mut inner_exact = true;
                let eq = self.cond_at(pos, ty, val, inner, &mut inner_exact);
                if inner_exact {
                    format!("(COALESCE({ty}, 'null') <> 'null' AND NOT COALESCE({eq}, 0))")
                } else {
                    *exact = false;
                    format!("(COALESCE({ty}, 'null') <> 'null')")
                }
            }
            Test::Present => {
                let x = self.alias("x");
                let shallow = format!(
                    "(CASE {x}.type WHEN 'null' THEN 0 WHEN 'text' THEN {x}.value <> '' WHEN 'array' THEN json_array_length({x}.value) > 0 WHEN 'object' THEN EXISTS (SELECT 1 FROM json_each({x}.value)) ELSE 1 END)"
                );
                format!(
                    "(CASE {ty} WHEN 'text' THEN {val} <> '' WHEN 'true' THEN 1 WHEN 'false' THEN 1 WHEN 'integer' THEN 1 WHEN 'real' THEN 1 WHEN 'array' THEN EXISTS (SELECT 1 FROM json_each(r.doc, {pos}) AS {x} WHERE {shallow} LIMIT 1) WHEN 'object' THEN EXISTS (SELECT 1 FROM json_each(r.doc, {pos}) AS {x} WHERE {shallow} LIMIT 1) ELSE 0 END)"
                )
            }
            Test::Str { op, needle, .. } => {
                let cmp = self.str_cmp(val, *op, needle);
                format!("({ty} = 'text' AND {cmp})")
            }
            Test::Bool(b) => {
                format!("({ty} = '{}')", if *b { "true" } else { "false" })
            }
            Test::Num { op, n } => match number_param(n) {
                Some(p) => {
                    let p = self.param(p);
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
                let k = self.param(Param::Text(date_key(at)));
                format!("({ty} = 'text' AND {val} {} {k})", sql_op(*op))
            }
        }
    }
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
pub(super) fn json_sort_key(r: &crate::schema::ResolvedAttr<'_>) -> Option<(String, String)> {
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

/// Some member `m` of the group satisfies `cond`.
///
/// Every `EXISTS` here ends in `LIMIT 1`: without it, the bundled SQLite turns an `EXISTS`
/// over several matching rows into a join and applies the outer `OFFSET` to the joined rows,
/// returning a wrong page (seen with `members pr` at `startIndex=2`).
fn member_exists(m: &str, cond: &str) -> String {
    let cond = if cond == "1" {
        String::new()
    } else {
        format!(" AND {cond}")
    };
    format!(
        "EXISTS (SELECT 1 FROM members AS {m} WHERE {m}.tenant = r.tenant AND {m}.group_id = r.id{cond} LIMIT 1)"
    )
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

/// A readable rendering for tests and logs: the SQL with parameters listed after it.
#[cfg(test)]
pub(super) fn render(w: &Where) -> String {
    use std::fmt::Write as _;
    let mut s = w.sql.clone();
    for (i, p) in w.params.iter().enumerate() {
        let _ = write!(s, " [{}={p:?}]", i + 1);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::Filter;
    use crate::schema::SchemaRegistry;

    fn tr(filter: &str) -> Where {
        let reg = SchemaRegistry::default();
        let users = reg.user().unwrap();
        let f = Filter::parse(filter)
            .unwrap()
            .compile(users, false)
            .unwrap();
        translate(users, f.root(), 3)
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
            assert!(w.exact, "{f}: {}", render(&w));
            assert!(w.sql.contains("json_each"), "{f}: {}", render(&w));
        }
        let w = tr(r#"entitlements[type eq "License" and value eq "pro"]"#);
        assert!(
            w.params.contains(&Param::Text("pro".into())),
            "{}",
            render(&w)
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
            assert!(!w.sql.contains("DROP"), "{}", render(&w));
            assert!(!w.sql.contains("1=1"), "{}", render(&w));
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
        let f = Filter::parse(r#"not (members.display eq "x")"#)
            .unwrap()
            .compile(groups, false)
            .unwrap();
        let w = translate(groups, f.root(), 1);
        assert_eq!((w.sql.as_str(), w.exact), ("1", false));
        let f = Filter::parse(r#"displayName eq "a" and members.display eq "x""#)
            .unwrap()
            .compile(groups, false)
            .unwrap();
        let w = translate(groups, f.root(), 1);
        assert!(!w.exact);
        assert!(w.sql.contains("r.display_name_cf"), "{}", render(&w));
    }

    #[test]
    fn large_numbers_are_inexact() {
        assert!(tr("x eq 1").exact);
        let reg = SchemaRegistry::default();
        let ent = reg.user().unwrap();
        let f = Filter::parse(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq \"5\"",
        )
        .unwrap()
        .compile(ent, false)
        .unwrap();
        assert!(translate(ent, f.root(), 1).exact);
        assert!(number_param(&Number::from(5)).is_some());
        assert!(number_param(&Number::from(9_007_199_254_740_993_u64)).is_none());
        assert!(number_param(&Number::from_f64(0.5).unwrap()).is_some());
    }

    #[test]
    fn substring_operators_compare_bytes() {
        let w = tr(r#"title ew "Ab""#);
        assert!(w.sql.contains("substr(CAST("), "{}", render(&w));
        assert_eq!(w.params.last(), Some(&Param::Int(2)), "{}", render(&w));
        let w = tr(r#"title co """#);
        assert!(!w.params.iter().any(|p| *p == Param::Text(String::new())));
    }
}
