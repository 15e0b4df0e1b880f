//! Translation of the filter AST and of `sortBy` to SQL over the schema of
//! [`migrations`](super::migrations).
//!
//! The translation follows the evaluator's rules (see [`crate::filter`]) node by node, and says
//! of each node whether its SQL is exact or only a superset of the matches. A superset is
//! never negated: `not` over an inexact condition becomes `TRUE` (inexact), so the SQL always
//! selects a superset, and the store reports [`Pushdown::Inexact`](crate::store::Pushdown)
//! unless every node was exact. Every value coming from the request is bound as a parameter;
//! the SQL text holds only fixed fragments and parameter numbers.
//!
//! How exactness is kept:
//! - Strings compared case-insensitively are compared with `doc_fold`, a copy of the document
//!   whose strings were folded by [`crate::filter::fold_case`] (the evaluator's folding:
//!   Unicode full case folding), against a needle folded the same way (never SQL `lower()`
//!   or `ILIKE`, whose rules differ); ordering uses the `C` collation (code points).
//! - `ne` is "some value is there and is not equal" (RFC 7644 §3.4.2.2), like every other
//!   comparison on a multi-valued attribute; an absent attribute never matches it.
//! - Multi-valued attributes are searched with SQL/JSON paths in lax mode, which unwraps one
//!   level of arrays at each step, as the evaluator does; value filters are `EXISTS` over the
//!   elements.
//! - `meta.created`/`meta.lastModified` are nanosecond integer columns, so dateTime
//!   comparisons on them are exact; dateTime comparisons inside documents, decimal needles
//!   and members' `type`/`display` are passed as supersets.
//! - PostgreSQL text cannot hold NUL, and no stored string contains one, so a needle with a
//!   NUL is resolved without sending it.

use std::sync::OnceLock;

use chrono::{DateTime, FixedOffset};
use serde_json::Number;

use crate::filter::{CompValue, CompareOp, Filter, SortOrder, SortSpec, MAX_TREE_DEPTH};
use crate::resource::Version;
use crate::schema::{AttrPath, AttributeDef, AttributeType, ResourceDef};

/// A bound parameter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg {
    Text(String),
    Int(i64),
}

/// Parameters collected while building a statement; `$n` placeholders refer to them.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Params {
    pub(crate) args: Vec<Arg>,
    /// The best plan depends on the values (a substring or range test on an indexed column:
    /// `co "12"` matches most rows, `co "jensen"` few), so the statement should be planned
    /// for each execution rather than prepared once with a generic plan.
    pub(crate) plan_per_value: bool,
}

impl Params {
    pub(crate) fn text(&mut self, s: impl Into<String>) -> String {
        self.args.push(Arg::Text(s.into()));
        format!("${}", self.args.len())
    }

    pub(crate) fn int(&mut self, i: i64) -> String {
        self.args.push(Arg::Int(i));
        format!("${}", self.args.len())
    }
}

/// A translated filter node.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cond {
    /// What the evaluator compiles to a constant (unknown attributes, values of the wrong
    /// type): `ne` and chains treat these specially, so they are kept apart.
    Const(bool),
    /// SQL; `exact` when it selects exactly the matches, otherwise a superset.
    Sql { sql: String, exact: bool },
}

impl Cond {
    fn exact(sql: impl Into<String>) -> Cond {
        Cond::Sql {
            sql: sql.into(),
            exact: true,
        }
    }

    fn superset() -> Cond {
        Cond::Sql {
            sql: "TRUE".into(),
            exact: false,
        }
    }

    /// The SQL and whether it is exact.
    pub(crate) fn into_sql(self) -> (String, bool) {
        match self {
            Cond::Const(b) => (if b { "TRUE" } else { "FALSE" }.to_owned(), true),
            Cond::Sql { sql, exact } => (sql, exact),
        }
    }

    fn not(self) -> Cond {
        match self {
            Cond::Const(b) => Cond::Const(!b),
            Cond::Sql { sql, exact: true } => Cond::exact(format!("NOT ({sql})")),
            Cond::Sql { exact: false, .. } => Cond::superset(),
        }
    }
}

/// Translates `filter` for resources of `rt` (rows aliased `r`).
pub(crate) fn translate(rt: &ResourceDef, filter: &Filter, params: &mut Params) -> Cond {
    Translator { params }.node(Scope::Resource(rt), filter, 0)
}

#[derive(Clone, Copy)]
enum Scope<'a> {
    Resource(&'a ResourceDef),
    /// Inside `attr[...]` over JSON elements: `e.v` (as stored) and `e.f` (folded).
    Element(&'a AttributeDef),
    /// Inside `members[...]`: rows `m` of `scimkit_members`.
    Member(&'a AttributeDef),
}

/// Where a path's values are.
enum Target<'a> {
    /// Values found by an SQL/JSON path in a document.
    Json {
        raw: &'static str,
        fold: &'static str,
        keys: Vec<String>,
        def: &'a AttributeDef,
    },
    /// A text column, compared as stored. Columns extracted from the document hold NULL for
    /// an absent or empty value (so that their index order puts missing values last); for
    /// them `json` names the document key, used for the tests an empty string passes.
    Column {
        col: &'static str,
        def: &'a AttributeDef,
        json: Option<&'a str>,
    },
    /// A nanosecond timestamp column (`meta.created`, `meta.lastModified`).
    Time(&'static str),
    /// `meta.version`.
    Version,
    /// `meta` itself: always present.
    Meta,
    /// Something the evaluator never sees (`members.$ref`): absent.
    Absent,
    /// `meta.location`, derived from the id by the service: always present, and never
    /// equal to anything the store could compare (the engine's view has no value for it).
    Location,
    /// `members` or `members.value` at the resource level.
    MembersValue(&'a AttributeDef),
    /// `members.type`/`members.display`: translated as a superset.
    MembersOther,
    /// Inside `members[...]`: the member id column.
    MemberValue(&'a AttributeDef),
}

/// The comparison a leaf makes, as the evaluator compiles it.
enum Test {
    Present,
    Str {
        op: CompareOp,
        needle: String,
        case_exact: bool,
    },
    Num {
        op: CompareOp,
        n: Number,
    },
    Bool(bool),
    Date {
        op: CompareOp,
        at: DateTime<FixedOffset>,
    },
}

struct Translator<'p> {
    params: &'p mut Params,
}

fn schemas_attribute() -> &'static AttributeDef {
    static DEF: OnceLock<AttributeDef> = OnceLock::new();
    DEF.get_or_init(|| AttributeDef::new("schemas", AttributeType::Reference).multi())
}

/// An SQL/JSON path (lax mode) to the values at `keys`, with arrays at the end unwrapped.
pub(crate) fn json_path(keys: &[String], unwrap_last: bool) -> String {
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

/// Whether the empty string satisfies `"" op needle`.
fn empty_passes(op: CompareOp, needle: &str) -> bool {
    match op {
        CompareOp::Gt => false,
        CompareOp::Lt => !needle.is_empty(),
        CompareOp::Le => true,
        _ => needle.is_empty(),
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

impl Translator<'_> {
    /// Translates `f`. A result without SQL (a constant, or the superset `TRUE`) drops the
    /// parameters bound while building it: the SQL that used them was discarded (an `or`
    /// with a superset operand, `not` of an inexact operand, a date leaf left to the
    /// engine), and PostgreSQL refuses parameters that the statement does not use.
    fn node(&mut self, scope: Scope<'_>, f: &Filter, depth: usize) -> Cond {
        let mark = self.params.args.len();
        let cond = self.node_unbound(scope, f, depth);
        let binds_nothing = match &cond {
            Cond::Const(_) => true,
            Cond::Sql { sql, .. } => sql == "TRUE" || sql == "FALSE",
        };
        if binds_nothing {
            self.params.args.truncate(mark);
        }
        cond
    }

    fn node_unbound(&mut self, scope: Scope<'_>, f: &Filter, depth: usize) -> Cond {
        if depth > MAX_TREE_DEPTH {
            return Cond::superset();
        }
        match f {
            Filter::And(..) | Filter::Or(..) => self.chain(scope, f, depth),
            Filter::Not(inner) => self.node(scope, inner, depth + 1).not(),
            Filter::Present(path) => match self.resolve(scope, path) {
                Some(t) => self.leaf(t, Test::Present),
                None => Cond::Const(false),
            },
            Filter::Compare { path, op, value } => self.compare(scope, path, *op, value),
            Filter::ValuePath { path, filter } => self.value_path(scope, path, filter, depth),
        }
    }

    fn chain(&mut self, scope: Scope<'_>, f: &Filter, depth: usize) -> Cond {
        let is_and = matches!(f, Filter::And(..));
        let operands = f.chain_operands();
        let mut parts: Vec<String> = Vec::new();
        let mut exact = true;
        let mut any_superset_true = false;
        for g in operands {
            match self.node(scope, g, depth + 1) {
                Cond::Const(b) if b == is_and => {}
                Cond::Const(b) => return Cond::Const(b),
                Cond::Sql { sql, exact: e } => {
                    exact &= e;
                    if !e && sql == "TRUE" {
                        any_superset_true = true;
                        if is_and {
                            continue;
                        }
                    }
                    parts.push(format!("({sql})"));
                }
            }
        }
        if !is_and && any_superset_true {
            return Cond::superset();
        }
        if parts.is_empty() {
            // Every operand was neutral (or an `and` of supersets).
            return if exact {
                Cond::Const(is_and)
            } else {
                Cond::superset()
            };
        }
        Cond::Sql {
            sql: parts.join(if is_and { " AND " } else { " OR " }),
            exact,
        }
    }

    fn resolve<'a>(&self, scope: Scope<'a>, path: &AttrPath) -> Option<Target<'a>> {
        match scope {
            Scope::Element(parent) => {
                if path.urn.is_some() {
                    return None;
                }
                let def = parent.sub_attribute(&path.name)?;
                let mut keys = vec![def.name.clone()];
                let def = match &path.sub_attr {
                    None => def,
                    Some(s) => {
                        let sub = def.sub_attribute(s)?;
                        keys.push(sub.name.clone());
                        sub
                    }
                };
                Some(Target::Json {
                    raw: "e.v",
                    fold: "e.f",
                    keys,
                    def,
                })
            }
            Scope::Member(parent) => {
                if path.urn.is_some() {
                    return None;
                }
                let def = parent.sub_attribute(&path.name)?;
                if path.sub_attr.is_some() {
                    // Members' sub-attributes are simple: nothing below them.
                    def.sub_attribute(path.sub_attr.as_deref().unwrap_or(""))?;
                }
                Some(match def.name.as_str() {
                    "value" => Target::MemberValue(def),
                    "$ref" => Target::Absent,
                    _ => Target::MembersOther,
                })
            }
            Scope::Resource(rt) => {
                if path.urn.is_none()
                    && path.sub_attr.is_none()
                    && path.name.eq_ignore_ascii_case("schemas")
                {
                    return Some(Target::Json {
                        raw: "r.doc",
                        fold: "r.doc_fold",
                        keys: vec!["schemas".into()],
                        def: schemas_attribute(),
                    });
                }
                let r = rt.resolve(path)?;
                if r.extension.is_none() {
                    let name = r.attr.name.as_str();
                    let simple = r.sub.is_none()
                        && r.attr.ty == AttributeType::String
                        && !r.attr.multi_valued;
                    match name {
                        "id" if r.sub.is_none() => {
                            return Some(Target::Column {
                                col: "r.id",
                                def: r.attr,
                                json: None,
                            })
                        }
                        "externalId" if simple && r.attr.case_exact => {
                            return Some(Target::Column {
                                col: "r.external_id",
                                def: r.attr,
                                json: Some(r.attr.name.as_str()),
                            })
                        }
                        "userName" if simple && !r.attr.case_exact => {
                            return Some(Target::Column {
                                col: "r.user_name_fold",
                                def: r.attr,
                                json: Some(r.attr.name.as_str()),
                            })
                        }
                        "displayName" if simple && !r.attr.case_exact => {
                            return Some(Target::Column {
                                col: "r.display_name_fold",
                                def: r.attr,
                                json: Some(r.attr.name.as_str()),
                            })
                        }
                        "meta" => {
                            return Some(match r.sub.map(|s| s.name.as_str()) {
                                None => Target::Meta,
                                Some("created") => Target::Time("r.created"),
                                Some("lastModified") => Target::Time("r.last_modified"),
                                Some("resourceType") => Target::Column {
                                    col: "r.resource_type",
                                    def: r.sub.unwrap_or(r.attr),
                                    json: None,
                                },
                                Some("version") => Target::Version,
                                Some("location") => Target::Location,
                                Some(_) => Target::Absent,
                            })
                        }
                        "members" => {
                            return Some(match r.sub {
                                None => Target::MembersValue(r.attr),
                                Some(s) if s.name == "value" => Target::MembersValue(r.attr),
                                Some(s) if s.name == "$ref" => Target::Absent,
                                Some(_) => Target::MembersOther,
                            })
                        }
                        _ => {}
                    }
                }
                let mut keys = Vec::with_capacity(3);
                if let Some(ext) = r.extension {
                    keys.push(ext.to_owned());
                }
                keys.push(r.attr.name.clone());
                if let Some(sub) = r.sub {
                    keys.push(sub.name.clone());
                }
                Some(Target::Json {
                    raw: "r.doc",
                    fold: "r.doc_fold",
                    keys,
                    def: r.sub.unwrap_or(r.attr),
                })
            }
        }
    }

    fn value_path(
        &mut self,
        scope: Scope<'_>,
        path: &AttrPath,
        filter: &Filter,
        depth: usize,
    ) -> Cond {
        if !matches!(scope, Scope::Resource(_)) {
            return Cond::Const(false);
        }
        let Some(t) = self.resolve(scope, path) else {
            return Cond::Const(false);
        };
        match t {
            Target::Json {
                raw,
                fold,
                keys,
                def,
            } => {
                if !def.is_complex() {
                    return Cond::Const(false);
                }
                let inner = self.node(Scope::Element(def), filter, depth + 1);
                let (inner_sql, exact) = match inner {
                    Cond::Const(false) => return Cond::Const(false),
                    other => other.into_sql(),
                };
                let p = self.params.text(json_path(&keys, true));
                Cond::Sql {
                    sql: format!(
                        "EXISTS (SELECT 1 FROM ROWS FROM (jsonb_path_query({raw}, {p}::jsonpath), \
                         jsonb_path_query({fold}, {p}::jsonpath)) AS e(v, f) \
                         WHERE jsonb_typeof(e.v) = 'object' AND ({inner_sql}))"
                    ),
                    exact,
                }
            }
            Target::MembersValue(def) => {
                let inner = self.node(Scope::Member(def), filter, depth + 1);
                let (inner_sql, exact) = match inner {
                    Cond::Const(false) => return Cond::Const(false),
                    other => other.into_sql(),
                };
                Cond::Sql {
                    sql: format!(
                        "EXISTS (SELECT 1 FROM scimkit_members m WHERE m.tenant = r.tenant \
                         AND m.group_id = r.id AND ({inner_sql}))"
                    ),
                    exact,
                }
            }
            // `meta[...]` and the like: rare; the evaluator decides.
            Target::Meta => Cond::superset(),
            _ => Cond::Const(false),
        }
    }

    fn compare(
        &mut self,
        scope: Scope<'_>,
        path: &AttrPath,
        op: CompareOp,
        value: &CompValue,
    ) -> Cond {
        let Some(mut target) = self.resolve(scope, path) else {
            return Cond::Const(false);
        };
        // A complex attribute compared without a sub-attribute compares its `value`.
        if let Target::Json { keys, def, .. } = &mut target {
            if def.is_complex() {
                match def.sub_attribute("value") {
                    Some(v) if !v.is_complex() => {
                        keys.push(v.name.clone());
                        *def = v;
                    }
                    _ => return Cond::Const(false),
                }
            }
        }
        let def = match &target {
            Target::Json { def, .. } | Target::Column { def, .. } | Target::MemberValue(def) => {
                Some(*def)
            }
            Target::MembersValue(def) => def.sub_attribute("value"),
            _ => None,
        };
        if op == CompareOp::Ne {
            if let CompValue::Null = value {
                // RFC 7643 §2.5: `ne null` is "has a value".
                return self.leaf(target, Test::Present);
            }
            // RFC 7644 §3.4.2.2: some value is there and is not equal.
            return self.typed(target, def, CompareOp::Eq, value, true);
        }
        self.typed(target, def, op, value, false)
    }

    /// Builds the test as the evaluator's `compile_typed` does, then translates it; with
    /// `ne`, as "some value fails it" (a comparison that does not apply stays false).
    fn typed(
        &mut self,
        target: Target<'_>,
        def: Option<&AttributeDef>,
        op: CompareOp,
        value: &CompValue,
        ne: bool,
    ) -> Cond {
        if let CompValue::Null = value {
            return match op {
                CompareOp::Eq => self.leaf(target, Test::Present).not(),
                _ => Cond::Const(false),
            };
        }
        let (ty, case_exact) = match (&target, def) {
            (Target::Time(_), _) => (AttributeType::DateTime, true),
            (Target::Version, _) | (Target::Absent, _) | (Target::Location, _) => {
                (AttributeType::String, true)
            }
            (Target::Meta, _) => return Cond::Const(false),
            (Target::MembersOther, _) => (AttributeType::String, false),
            (_, Some(d)) => (d.ty, d.case_exact),
            (_, None) => return Cond::Const(false),
        };
        let test = match ty {
            AttributeType::String | AttributeType::Reference | AttributeType::Binary => {
                let binary = ty == AttributeType::Binary;
                if binary && op != CompareOp::Eq {
                    return Cond::Const(false);
                }
                let text = match value {
                    CompValue::String(s) => s.clone(),
                    CompValue::Number(n) => n.to_string(),
                    CompValue::Bool(b) => b.to_string(),
                    CompValue::Null => return Cond::Const(false),
                };
                let case_exact = case_exact || binary;
                let needle = if case_exact {
                    text
                } else {
                    crate::filter::fold_case_owned(&text)
                };
                Test::Str {
                    op,
                    needle,
                    case_exact,
                }
            }
            AttributeType::Boolean => {
                if op != CompareOp::Eq {
                    return Cond::Const(false);
                }
                match value {
                    CompValue::Bool(b) => Test::Bool(*b),
                    CompValue::String(s) if s.eq_ignore_ascii_case("true") => Test::Bool(true),
                    CompValue::String(s) if s.eq_ignore_ascii_case("false") => Test::Bool(false),
                    _ => return Cond::Const(false),
                }
            }
            AttributeType::Integer | AttributeType::Decimal => {
                if op.is_substring() {
                    return Cond::Const(false);
                }
                let n = match value {
                    CompValue::Number(n) => n.clone(),
                    CompValue::String(s) => match s.trim().parse() {
                        Ok(n) => n,
                        Err(_) => return Cond::Const(false),
                    },
                    _ => return Cond::Const(false),
                };
                Test::Num { op, n }
            }
            AttributeType::DateTime => {
                if op.is_substring() {
                    return Cond::Const(false);
                }
                match value {
                    CompValue::String(s) => match crate::filter::parse_date_time(s) {
                        Some(at) => Test::Date { op, at },
                        None => return Cond::Const(false),
                    },
                    _ => return Cond::Const(false),
                }
            }
            AttributeType::Complex => return Cond::Const(false),
        };
        if ne {
            self.ne_leaf(target, test)
        } else {
            self.leaf(target, test)
        }
    }

    /// `ne`: some value of the target is there (not absent, not JSON `null`) and fails
    /// `test` (an `eq` test). A single-valued column holds one value or none, so there it is
    /// the negation guarded by presence; documents are searched value by value.
    fn ne_leaf(&mut self, target: Target<'_>, test: Test) -> Cond {
        match target {
            Target::Json {
                raw, fold, keys, ..
            } => self.json_ne(raw, fold, &keys, test),
            // The column holds NULL for an empty string too, which is a value that differs:
            // read the document instead (no index serves `ne` anyway).
            Target::Column {
                json: Some(key), ..
            } => self.json_ne("r.doc", "r.doc_fold", &[key.to_owned()], test),
            Target::Column {
                col, json: None, ..
            } => match self.leaf_of_column(col, test) {
                Some(eq) => Cond::exact(format!("{col} IS NOT NULL AND NOT ({eq})")),
                None => Cond::superset(),
            },
            Target::Time(col) => match test {
                Test::Date { op, at } => match at.timestamp_nanos_opt() {
                    Some(ns) => {
                        let p = self.params.int(ns);
                        Cond::exact(format!("NOT ({col} {} {p})", cmp_sql(op)))
                    }
                    None => Cond::superset(),
                },
                _ => Cond::Const(false),
            },
            Target::MemberValue(def) | Target::MembersValue(def) => {
                let member = matches!(target, Target::MemberValue(_));
                let case_exact = if member {
                    def.case_exact
                } else {
                    def.sub_attribute("value").is_some_and(|v| v.case_exact)
                };
                let col = if case_exact {
                    "m.member_id"
                } else {
                    "m.member_fold"
                };
                let inner = match test {
                    Test::Str { op, needle, .. } => {
                        format!("NOT ({})", self.str_op(col, op, &needle, false))
                    }
                    _ => "FALSE".to_owned(),
                };
                if member {
                    Cond::exact(inner)
                } else {
                    Cond::exact(format!(
                        "EXISTS (SELECT 1 FROM scimkit_members m WHERE m.tenant = r.tenant \
                         AND m.group_id = r.id AND {inner})"
                    ))
                }
            }
            Target::MembersOther => Cond::superset(),
            // `meta` and what the evaluator never sees have no value to compare; a version
            // is always there (superset: the engine compares it).
            Target::Meta | Target::Absent | Target::Location => Cond::Const(false),
            Target::Version => Cond::superset(),
        }
    }

    /// An `eq` test on a text column that always holds a value (`r.id`).
    fn leaf_of_column(&mut self, col: &str, test: Test) -> Option<String> {
        match test {
            Test::Str { op, needle, .. } => Some(self.str_op(col, op, &needle, false)),
            _ => None,
        }
    }

    /// `ne` over the values an SQL/JSON path finds in a document.
    fn json_ne(&mut self, raw: &str, fold: &str, keys: &[String], test: Test) -> Cond {
        let p = self.params.text(json_path(keys, true));
        let (base, pred) = match test {
            Test::Str {
                op,
                needle,
                case_exact,
            } => {
                let base = if case_exact { raw } else { fold };
                let cmp = self.str_op("(x.v #>> '{}')", op, &needle, false);
                (base, format!("jsonb_typeof(x.v) = 'string' AND {cmp}"))
            }
            Test::Bool(b) => (
                raw,
                format!("x.v = '{}'::jsonb", if b { "true" } else { "false" }),
            ),
            Test::Num { op, n } => {
                if !exact_number(&n) {
                    return Cond::superset();
                }
                let np = self.params.text(n.to_string());
                (
                    raw,
                    format!(
                        "CASE WHEN jsonb_typeof(x.v) = 'number' \
                         THEN (x.v)::numeric {} {np}::numeric ELSE false END",
                        cmp_sql(op)
                    ),
                )
            }
            Test::Present | Test::Date { .. } => return Cond::superset(),
        };
        Cond::exact(format!(
            "EXISTS (SELECT 1 FROM jsonb_path_query({base}, {p}::jsonpath) AS x(v) \
             WHERE jsonb_typeof(x.v) <> 'null' AND NOT COALESCE(({pred}), false))"
        ))
    }

    /// A string comparison of the SQL text expression `t` with `needle`.
    fn str_op(&mut self, t: &str, op: CompareOp, needle: &str, like: bool) -> String {
        if let Some(nul) = needle.find('\0') {
            // No stored string contains NUL: equality and substring tests cannot hold, and
            // for orderings `s > p\0...` is `s > p`, `s < p\0...` is `s <= p`.
            let prefix = needle.get(..nul).unwrap_or("");
            return match op {
                CompareOp::Gt | CompareOp::Ge => {
                    let p = self.params.text(prefix);
                    format!("{t} COLLATE \"C\" > {p}")
                }
                CompareOp::Lt | CompareOp::Le => {
                    let p = self.params.text(prefix);
                    format!("{t} COLLATE \"C\" <= {p}")
                }
                _ => "FALSE".to_owned(),
            };
        }
        match op {
            CompareOp::Eq | CompareOp::Ne => {
                let p = self.params.text(needle);
                format!("{t} = {p}")
            }
            CompareOp::Sw | CompareOp::Ew | CompareOp::Co if like => {
                let esc = like_escape(needle);
                let pattern = match op {
                    CompareOp::Sw => format!("{esc}%"),
                    CompareOp::Ew => format!("%{esc}"),
                    _ => format!("%{esc}%"),
                };
                let p = self.params.text(pattern);
                format!("{t} LIKE {p}")
            }
            CompareOp::Sw => {
                let p = self.params.text(needle);
                format!("starts_with({t}, {p})")
            }
            CompareOp::Ew => {
                let p = self.params.text(needle);
                format!("right({t}, length({p})) = {p}")
            }
            CompareOp::Co => {
                let p = self.params.text(needle);
                format!("strpos({t}, {p}) > 0")
            }
            CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le => {
                let p = self.params.text(needle);
                format!("{t} COLLATE \"C\" {} {p}", cmp_sql(op))
            }
        }
    }

    fn leaf(&mut self, target: Target<'_>, test: Test) -> Cond {
        match target {
            Target::Json {
                raw, fold, keys, ..
            } => self.json_leaf(raw, fold, &keys, test),
            // `col IS NOT NULL AND ...` keeps the condition two-valued (so that `NOT` is
            // right for absent values) while leaving the comparison indexable.
            Target::Column { col, json, .. } => match test {
                Test::Present => Cond::exact(format!("{col} IS NOT NULL AND {col} <> ''")),
                Test::Str { op, needle, .. } => {
                    if let Some(key) = json.filter(|_| empty_passes(op, &needle)) {
                        let case_exact = col == "r.external_id";
                        return self.json_leaf(
                            "r.doc",
                            "r.doc_fold",
                            &[key.to_owned()],
                            Test::Str {
                                op,
                                needle,
                                case_exact,
                            },
                        );
                    }
                    if op != CompareOp::Eq {
                        self.params.plan_per_value = true;
                    }
                    let s = self.str_op(col, op, &needle, true);
                    Cond::exact(format!("{col} IS NOT NULL AND {s}"))
                }
                _ => Cond::exact("FALSE"),
            },
            Target::MemberValue(def) | Target::MembersValue(def) => {
                let member = matches!(target, Target::MemberValue(_));
                let case_exact = if member {
                    def.case_exact
                } else {
                    def.sub_attribute("value").is_some_and(|v| v.case_exact)
                };
                let col = if case_exact {
                    "m.member_id"
                } else {
                    "m.member_fold"
                };
                let inner = match test {
                    Test::Present => format!("{col} <> ''"),
                    Test::Str { op, needle, .. } => self.str_op(col, op, &needle, false),
                    _ => "FALSE".to_owned(),
                };
                if member {
                    Cond::exact(inner)
                } else {
                    Cond::exact(format!(
                        "EXISTS (SELECT 1 FROM scimkit_members m WHERE m.tenant = r.tenant \
                         AND m.group_id = r.id AND {inner})"
                    ))
                }
            }
            Target::MembersOther => Cond::superset(),
            Target::Meta => match test {
                Test::Present => Cond::exact("TRUE"),
                _ => Cond::exact("FALSE"),
            },
            Target::Absent => Cond::exact("FALSE"),
            Target::Location => match test {
                Test::Present => Cond::exact("TRUE"),
                _ => Cond::exact("FALSE"),
            },
            Target::Version => match test {
                Test::Present => Cond::exact("TRUE"),
                Test::Str {
                    op: CompareOp::Eq,
                    needle,
                    ..
                } => match Version::from_etag(&needle) {
                    Ok(v) if v.etag() == needle => match i64::try_from(v.get()) {
                        Ok(n) => {
                            let p = self.params.int(n);
                            Cond::exact(format!("r.version = {p}"))
                        }
                        Err(_) => Cond::exact("FALSE"),
                    },
                    _ => Cond::exact("FALSE"),
                },
                _ => Cond::superset(),
            },
            Target::Time(col) => match test {
                Test::Present => Cond::exact("TRUE"),
                Test::Date { op, at } => match at.timestamp_nanos_opt() {
                    Some(ns) => {
                        let p = self.params.int(ns);
                        Cond::exact(format!("{col} {} {p}", cmp_sql(op)))
                    }
                    None => Cond::superset(),
                },
                _ => Cond::exact("FALSE"),
            },
        }
    }

    fn json_leaf(&mut self, raw: &str, fold: &str, keys: &[String], test: Test) -> Cond {
        let p = self.params.text(json_path(keys, true));
        let values = |base: &str| format!("jsonb_path_query({base}, {p}::jsonpath) AS x(v)");
        match test {
            Test::Present => Cond::exact(format!(
                "EXISTS (SELECT 1 FROM {} WHERE {})",
                values(raw),
                present_sql("x.v")
            )),
            Test::Str {
                op,
                needle,
                case_exact,
            } => {
                let base = if case_exact { raw } else { fold };
                let from = values(base);
                let cmp = self.str_op("(x.v #>> '{}')", op, &needle, false);
                Cond::exact(format!(
                    "EXISTS (SELECT 1 FROM {from} WHERE jsonb_typeof(x.v) = 'string' AND {cmp})"
                ))
            }
            Test::Bool(b) => Cond::exact(format!(
                "EXISTS (SELECT 1 FROM {} WHERE x.v = '{}'::jsonb)",
                values(raw),
                if b { "true" } else { "false" }
            )),
            Test::Num { op, n } => {
                if !exact_number(&n) {
                    return Cond::superset();
                }
                let from = values(raw);
                let np = self.params.text(n.to_string());
                Cond::exact(format!(
                    "EXISTS (SELECT 1 FROM {from} WHERE CASE WHEN jsonb_typeof(x.v) = 'number' \
                     THEN (x.v)::numeric {} {np}::numeric ELSE false END)",
                    cmp_sql(op)
                ))
            }
            // Documents hold dateTimes as text in many RFC 3339 spellings; the evaluator
            // compares them chronologically to the nanosecond.
            Test::Date { .. } => Cond::superset(),
        }
    }
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
    let Some(r) = rt.resolve(&spec.by) else {
        // The engine leaves the order unchanged for an unknown attribute.
        return Some("r.ord".into());
    };
    let key: String = if r.extension.is_none() {
        let simple = r.sub.is_none() && r.attr.ty == AttributeType::String && !r.attr.multi_valued;
        match (r.attr.name.as_str(), r.sub.map(|s| s.name.as_str())) {
            ("id", None) => "r.id".into(),
            ("meta", Some("created")) => "r.created".into(),
            ("meta", Some("lastModified")) => "r.last_modified".into(),
            ("meta", Some("resourceType")) | ("meta", Some("location")) => {
                return Some("r.ord".into())
            }
            // The engine's view holds the version as its ETag text, compared as a string.
            ("meta", Some("version")) => {
                return Some(format!(
                    "('W/\"' || r.version::text || '\"') COLLATE \"C\" {dir}, r.ord"
                ))
            }
            ("meta", _) | ("members", _) => return None,
            // Extracted columns hold NULL for missing values: `NULLS LAST` in ascending order
            // is the order of their indexes, so a sorted page walks the index.
            ("userName", None) if simple && !r.attr.case_exact => {
                return Some(format!("r.user_name_fold {dir} NULLS LAST, r.ord"))
            }
            ("displayName", None) if simple && !r.attr.case_exact => {
                return Some(format!("r.display_name_fold {dir} NULLS LAST, r.ord"))
            }
            ("externalId", None) if simple && r.attr.case_exact => {
                return Some(format!("r.external_id {dir} NULLS LAST, r.ord"))
            }
            _ => return json_order(json_sort_key(&r, params)?, dir),
        }
    } else {
        return json_order(json_sort_key(&r, params)?, dir);
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
    use crate::schema::SchemaRegistry;

    fn tr(f: &str) -> (String, bool, Vec<Arg>) {
        let reg = SchemaRegistry::default();
        let users = reg.user().unwrap();
        let mut p = Params::default();
        let (sql, exact) = translate(users, &Filter::parse(f).unwrap(), &mut p).into_sql();
        (sql, exact, p.args)
    }

    fn text(s: &str) -> Arg {
        Arg::Text(s.to_owned())
    }

    #[test]
    fn user_name_uses_the_folded_column() {
        let (sql, exact, args) = tr(r#"userName eq "BJensen""#);
        assert_eq!(
            sql,
            "r.user_name_fold IS NOT NULL AND r.user_name_fold = $1"
        );
        assert!(exact);
        assert_eq!(args, vec![text("bjensen")]);
        let (sql, _, args) = tr(r#"userName co "a%b_c\\""#);
        assert_eq!(
            sql,
            "r.user_name_fold IS NOT NULL AND r.user_name_fold LIKE $1"
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
        // dateTimes inside documents are supersets: their negation is not narrowed.
        let reg = SchemaRegistry::default();
        let groups = reg.group().unwrap();
        let mut p = Params::default();
        let f = Filter::parse(r#"not (members.display eq "x")"#).unwrap();
        assert_eq!(
            translate(groups, &f, &mut p),
            Cond::Sql {
                sql: "TRUE".into(),
                exact: false
            }
        );
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
            r#"userName eq "a" or meta.version ne "x""#,
            r#"not (userName eq "a" and meta.version ne "x")"#,
            r#"title eq "a" and nosuch eq "x""#,
            r#"(title eq "a" or meta.version ne "x") and emails[value co "b"]"#,
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
    }

    #[test]
    fn nul_needles_are_not_sent() {
        let (sql, exact, args) = tr("userName eq \"a\\u0000b\"");
        assert_eq!(
            (sql.as_str(), exact),
            ("r.user_name_fold IS NOT NULL AND FALSE", true)
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
        assert_eq!((sql.as_str(), exact), ("r.created > $1", true));
        assert_eq!(args, vec![Arg::Int(1_767_225_600_500_000_000)]);
        assert_eq!(tr(r#"meta.version eq "W/\"3\"""#).0, "r.version = $1");
        assert_eq!(tr(r#"meta.version eq "3""#).0, "FALSE");
        // Derived from the id: always there, equal to nothing the engine's view holds.
        assert_eq!(tr("meta.location pr").0, "TRUE");
        assert_eq!(tr(r#"meta.location eq "x""#).0, "FALSE");
        // Tests the empty string passes read the document, not the NULL-for-empty column.
        assert!(tr(r#"userName lt "b""#).0.starts_with("EXISTS"));
        assert!(tr(r#"userName eq """#).0.starts_with("EXISTS"));
        assert!(tr(r#"userName gt "b""#).0.starts_with("r.user_name_fold"));
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
        let mut p = Params::default();
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
