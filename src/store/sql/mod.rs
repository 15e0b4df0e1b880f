//! Filter to SQL for the SQL stores: one translator over the compiled filter
//! ([`crate::filter::Node`], paths resolved, values typed and folded by the engine's compiler)
//! that writes a `WHERE` condition over the resource row `r` in a [`Dialect`].
//!
//! The translator decides, once for every database, what each node means and whether its
//! SQL selects exactly the matching rows or a superset of them ([`Exactness`]):
//! - `and`/`or`/`not` combine the typed results ([`Cond`]): a superset is never negated
//!   (`not` of an inexact operand is the always-true superset), an always-true or
//!   always-false operand is folded away rather than written, and a result without SQL
//!   drops the parameters bound while building it (PostgreSQL refuses unused ones);
//! - `id`, `meta.created`, `meta.lastModified` and `meta.version` read columns,
//!   `meta.resourceType` is decided here (one type per query) and `meta.location` (derived
//!   by the service from the id) is present on every resource and equal to nothing the
//!   engine's view holds;
//! - `members`, `members.value` and `members[value ...]` read the membership table;
//!   `members.type`/`members.display` are supersets, `members.$ref` is absent (the engine's
//!   view has none);
//! - `userName`, `externalId` and `displayName` read their extracted columns (folded for
//!   the two that ignore case, see [`Column`]) when the comparison's case rule matches the
//!   column's, for tests that column can answer;
//! - everything else reads the stored document through the dialect, which keeps the
//!   evaluator's rules (see [`crate::filter`]): strings compare against a copy of the
//!   document folded by [`crate::filter::fold_case`] (never SQL `lower()`, `LIKE` rules or
//!   collations that fold differently), by code point; `ne` is "some value is there and is
//!   not equal".
//!
//! Every value is a bound parameter; the SQL text is built from fixed fragments, generated
//! aliases and placeholders only.
//!
//! Beside the translator, this folder holds everything else the two SQL stores share, each
//! over a small per-dialect trait of statements that `store/sqlite` and `store/postgres`
//! implement: the provisioning log ([`log`]), the precomputed sort keys ([`sort_keys`]),
//! the case-folding migration ([`refold`]), tenant and token reads through the cache
//! ([`tenants`]), reading a column of either driver's rows ([`rows`]) and the pool the reads
//! run on ([`pool`]).

mod dialect;
pub(super) mod log;
pub(super) mod pool;
pub(super) mod refold;
pub(super) mod rows;
mod sort;
pub(super) mod sort_keys;
pub(super) mod tenants;

use serde_json::Value;

pub(crate) use self::dialect::Dialect;
pub(crate) use self::sort::{sort_key, SortKey};
use crate::filter::{CompareOp, Node, Test};
use crate::schema::{AttributeType, ResourceDef};

/// A bound parameter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Param {
    Text(String),
    Int(i64),
    /// SQLite's numbers (PostgreSQL's are sent as text and cast to `numeric`).
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    Real(f64),
}

/// The parameters of a statement, numbered from `first` with the dialect's placeholder.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Params {
    /// The parameters, in number order.
    pub(crate) args: Vec<Param>,
    first: usize,
    mark: char,
    /// The best plan depends on the values (a substring or range test on an indexed column:
    /// `co "12"` matches most rows, `co "jensen"` few), so the statement should be planned
    /// for each execution rather than prepared once with a generic plan.
    pub(crate) plan_per_value: bool,
}

impl Params {
    /// No parameters yet; the first one bound is number `first`, written with `D`'s
    /// placeholder.
    pub(crate) fn new<D: Dialect>(first: usize) -> Params {
        Params {
            args: Vec::new(),
            first,
            mark: D::PLACEHOLDER,
            plan_per_value: false,
        }
    }

    /// Binds `p` and returns its placeholder.
    pub(crate) fn push(&mut self, p: Param) -> String {
        self.args.push(p);
        format!("{}{}", self.mark, self.first + self.args.len() - 1)
    }

    /// Binds a text parameter.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn text(&mut self, s: impl Into<String>) -> String {
        self.push(Param::Text(s.into()))
    }

    /// Binds an integer parameter.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn int(&mut self, i: i64) -> String {
        self.push(Param::Int(i))
    }
}

/// Whether a condition selects exactly the matching rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exactness {
    /// Exactly the rows the evaluator matches.
    Exact,
    /// A superset of them: the engine must evaluate the filter on the candidates.
    Inexact,
}

impl Exactness {
    /// Exact when both are.
    pub(crate) fn and(self, other: Exactness) -> Exactness {
        if self == Exactness::Exact {
            other
        } else {
            Exactness::Inexact
        }
    }
}

/// The shape of a translated condition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cond {
    /// True for every row: no condition to write.
    Always,
    /// False for every row.
    Never,
    /// A condition, two-valued (never `NULL`, so `NOT` is right).
    Sql(String),
}

/// A translated condition and whether it is exact. An inexact one always selects a superset
/// of the matches.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Where {
    pub(crate) cond: Cond,
    pub(crate) exactness: Exactness,
}

impl Where {
    /// Every row, exactly (no filter).
    pub(crate) fn all() -> Where {
        Where::constant(true)
    }

    /// Every row, as a superset of the matches.
    pub(crate) fn superset() -> Where {
        Where {
            cond: Cond::Always,
            exactness: Exactness::Inexact,
        }
    }

    /// The exact condition `sql`.
    pub(crate) fn exact(sql: String) -> Where {
        Where::sql(sql, Exactness::Exact)
    }

    /// The condition `sql`, exact or a superset.
    pub(crate) fn sql(sql: String, exactness: Exactness) -> Where {
        Where {
            cond: Cond::Sql(sql),
            exactness,
        }
    }

    /// Every row or none, exactly.
    pub(crate) fn constant(b: bool) -> Where {
        Where {
            cond: if b { Cond::Always } else { Cond::Never },
            exactness: Exactness::Exact,
        }
    }

    /// True when the condition selects exactly the matches.
    pub(crate) fn is_exact(&self) -> bool {
        self.exactness == Exactness::Exact
    }

    /// True when there is no condition: every row of the type is selected (exactly, or as
    /// a superset).
    pub(crate) fn selects_all(&self) -> bool {
        self.cond == Cond::Always
    }

    /// The condition as `D`'s SQL.
    pub(crate) fn render<D: Dialect>(&self) -> String {
        match &self.cond {
            Cond::Always => D::TRUE.to_owned(),
            Cond::Never => D::FALSE.to_owned(),
            Cond::Sql(s) => s.clone(),
        }
    }
}

/// A single-valued string attribute of the core schema copied into an indexed column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Column {
    /// `id`.
    Id,
    /// `userName`, folded.
    UserName,
    /// `externalId`, as stored (it is `caseExact`).
    ExternalId,
    /// `displayName`, folded.
    DisplayName,
    /// `meta.created`, as a chronological key.
    Created,
    /// `meta.lastModified`, as a chronological key.
    Modified,
}

/// The extracted string columns, with whether each holds the folded value.
const EXTRACTED: [(&str, bool, Column); 3] = [
    ("userName", true, Column::UserName),
    ("externalId", false, Column::ExternalId),
    ("displayName", true, Column::DisplayName),
];

/// The extracted column holding top-level `keys` of `rt` in the form a comparison that
/// ignores case (`folded`) or not needs, when the schema makes it a single-valued string.
pub(crate) fn extracted_column(
    rt: &ResourceDef,
    keys: &[Box<str>],
    folded: bool,
) -> Option<Column> {
    let [name] = keys else {
        return None;
    };
    let (attribute, _, column) = EXTRACTED
        .iter()
        .find(|(a, f, _)| *a == &**name && *f == folded)?;
    let def = rt.top_level(attribute)?;
    (def.name == *attribute && def.ty == AttributeType::String && !def.multi_valued)
        .then_some(*column)
}

/// What a translation is building: the parameters and the count of generated aliases.
pub(crate) struct Cx<'p> {
    params: &'p mut Params,
    aliases: usize,
}

impl Cx<'_> {
    /// Binds `p` and returns its placeholder.
    pub(crate) fn param(&mut self, p: Param) -> String {
        self.params.push(p)
    }

    /// A fresh alias starting with `prefix`.
    pub(crate) fn alias(&mut self, prefix: &str) -> String {
        self.aliases += 1;
        format!("{prefix}{}", self.aliases)
    }

    /// Asks for the statement to be planned with its values (see [`Params::plan_per_value`]).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn plan_per_value(&mut self) {
        self.params.plan_per_value = true;
    }
}

/// Deeper trees are answered as a superset (the parser bounds depth well below this).
const MAX_DEPTH: usize = 64;

/// Where a leaf's keys start.
enum Pos<E> {
    /// The resource document's root.
    Root,
    /// An element of the enclosing value filter.
    Elem(E),
    /// A member of the group: a row of the membership table with this alias.
    Member(String),
}

/// Translates the compiled filter `root` for resources of `rt` into `d`'s SQL, binding its
/// values in `params`.
pub(crate) fn translate<D: Dialect>(
    d: &D,
    rt: &ResourceDef,
    root: &Node,
    params: &mut Params,
) -> Where {
    let mut cx = Cx { params, aliases: 0 };
    Translator { d, rt }.node(&mut cx, root, &Pos::Root, 0)
}

struct Translator<'a, D> {
    d: &'a D,
    rt: &'a ResourceDef,
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

impl<D: Dialect> Translator<'_, D> {
    /// Translates `n`; a result without SQL drops the parameters bound while building it.
    fn node(&self, cx: &mut Cx<'_>, n: &Node, pos: &Pos<D::Elem>, depth: usize) -> Where {
        let mark = cx.params.args.len();
        let w = self.node_unbound(cx, n, pos, depth);
        if !matches!(w.cond, Cond::Sql(_)) {
            cx.params.args.truncate(mark);
        }
        w
    }

    fn node_unbound(&self, cx: &mut Cx<'_>, n: &Node, pos: &Pos<D::Elem>, depth: usize) -> Where {
        if depth > MAX_DEPTH {
            return Where::superset();
        }
        match n {
            Node::Const(b) => Where::constant(*b),
            Node::Not(inner) => {
                let w = self.node(cx, inner, pos, depth + 1);
                if !w.is_exact() {
                    return Where::superset();
                }
                match w.cond {
                    Cond::Always => Where::constant(false),
                    Cond::Never => Where::constant(true),
                    Cond::Sql(s) => Where::exact(format!("NOT ({s})")),
                }
            }
            Node::And(ns) => self.and(cx, ns, pos, depth),
            Node::Or(ns) => self.or(cx, ns, pos, depth),
            Node::Any { keys, inner } => self.any_element(cx, keys, inner, pos, depth),
            Node::Leaf(leaf) => self.leaf(cx, &leaf.keys, &leaf.test, pos),
        }
    }

    fn and(&self, cx: &mut Cx<'_>, ns: &[Node], pos: &Pos<D::Elem>, depth: usize) -> Where {
        let mut parts = Vec::with_capacity(ns.len());
        let mut exactness = Exactness::Exact;
        for c in ns {
            let w = self.node(cx, c, pos, depth + 1);
            exactness = exactness.and(w.exactness);
            match w.cond {
                // An exact `false` decides the chain; an inexact one cannot be (supersets
                // are always true), so it is only dropped.
                Cond::Never if w.exactness == Exactness::Exact => return Where::constant(false),
                Cond::Never | Cond::Always => {}
                Cond::Sql(s) => parts.push(format!("({s})")),
            }
        }
        Where {
            cond: if parts.is_empty() {
                Cond::Always
            } else {
                Cond::Sql(format!("({})", parts.join(" AND ")))
            },
            exactness,
        }
    }

    fn or(&self, cx: &mut Cx<'_>, ns: &[Node], pos: &Pos<D::Elem>, depth: usize) -> Where {
        let mut parts = Vec::with_capacity(ns.len());
        let mut exactness = Exactness::Exact;
        let mut superset = false;
        for c in ns {
            let w = self.node(cx, c, pos, depth + 1);
            exactness = exactness.and(w.exactness);
            match w.cond {
                Cond::Always if w.exactness == Exactness::Exact => return Where::constant(true),
                Cond::Always => superset = true,
                Cond::Never => {}
                Cond::Sql(s) => parts.push(format!("({s})")),
            }
        }
        if superset {
            return Where::superset();
        }
        Where {
            cond: if parts.is_empty() {
                Cond::Never
            } else {
                Cond::Sql(format!("({})", parts.join(" OR ")))
            },
            exactness,
        }
    }

    /// A value filter: some element of the attribute at `keys` matches `inner`.
    fn any_element(
        &self,
        cx: &mut Cx<'_>,
        keys: &[Box<str>],
        inner: &Node,
        pos: &Pos<D::Elem>,
        depth: usize,
    ) -> Where {
        // The compiler does not nest value filters.
        if !matches!(pos, Pos::Root) {
            return Where::superset();
        }
        match keys.first().map(|k| &**k) {
            Some("members") if keys.len() == 1 => {
                let m = cx.alias("m");
                let w = self.node(cx, inner, &Pos::Member(m.clone()), depth + 1);
                self.members(&m, w)
            }
            // `meta[...]`, `id[...]`: read from the view the store does not hold as a
            // document; rare, the engine decides.
            Some("meta" | "id") => Where::superset(),
            _ => self.d.value_filter(cx, keys, &mut |cx, elem| {
                self.node(cx, inner, &Pos::Elem(elem), depth + 1)
            }),
        }
    }

    /// Some member satisfies `w` (a condition on the member row).
    fn members(&self, m: &str, w: Where) -> Where {
        match w.cond {
            Cond::Never => w,
            Cond::Always => Where::sql(self.d.member_exists(m, None), w.exactness),
            Cond::Sql(s) => Where::sql(self.d.member_exists(m, Some(&s)), w.exactness),
        }
    }

    fn leaf(&self, cx: &mut Cx<'_>, keys: &[Box<str>], test: &Test, pos: &Pos<D::Elem>) -> Where {
        let elem = match pos {
            Pos::Member(m) => return self.member_leaf(cx, keys, test, m),
            Pos::Elem(e) => Some(e),
            Pos::Root => {
                match keys.first().map(|k| &**k) {
                    Some("id" | "meta") => return self.view_leaf(cx, keys, test),
                    Some("members") => return self.members_leaf(cx, keys, test),
                    _ => {}
                }
                if let Some(w) = self.extracted_leaf(cx, keys, test) {
                    return w;
                }
                None
            }
        };
        self.d.json_leaf(cx, elem, keys, test)
    }

    /// A leaf on an extracted column, when the column can answer it.
    fn extracted_leaf(&self, cx: &mut Cx<'_>, keys: &[Box<str>], test: &Test) -> Option<Where> {
        if let (Test::Present, true) = (test, D::EMPTY_IS_NULL) {
            let c = extracted_column(self.rt, keys, true)
                .or_else(|| extracted_column(self.rt, keys, false))?;
            let col = self.d.column(c);
            return Some(Where::exact(format!("({col} IS NOT NULL AND {col} <> '')")));
        }
        let Test::Str { case_exact, .. } = test.base() else {
            return None;
        };
        let col = self.d.column(extracted_column(self.rt, keys, !case_exact)?);
        match test {
            Test::Str { op, needle, .. } if !(D::EMPTY_IS_NULL && empty_passes(*op, needle)) => {
                let cmp = self.d.column_cmp(cx, col, *op, needle);
                Some(Where::exact(format!("({col} IS NOT NULL AND {cmp})")))
            }
            // An empty string is a value that differs: the column must hold it.
            Test::Ne(inner) if !D::EMPTY_IS_NULL => {
                let Test::Str { op, needle, .. } = &**inner else {
                    return None;
                };
                let cmp = self.d.str_cmp(cx, col, *op, needle);
                Some(Where::exact(format!("({col} IS NOT NULL AND NOT ({cmp}))")))
            }
            _ => None,
        }
    }

    /// A leaf on `id` or `meta.*`, which the engine's view derives from columns.
    fn view_leaf(&self, cx: &mut Cx<'_>, keys: &[Box<str>], test: &Test) -> Where {
        let names: Vec<&str> = keys.iter().map(|k| &**k).collect();
        if crate::filter::is_meta_location(keys) {
            // Derived by the service from the id: present on every resource (the compiler
            // already made `pr` true), equal to nothing the engine's view holds.
            return Where::constant(matches!(test, Test::Present));
        }
        // `ne` on these single-valued, always present values: the inner test fails.
        let (negate, base) = match test {
            Test::Ne(inner) => (true, &**inner),
            t => (false, t),
        };
        let not = |w: Where| -> Where {
            match (negate, w.cond) {
                (false, cond) => Where { cond, ..w },
                (true, Cond::Sql(s)) => Where {
                    cond: Cond::Sql(format!("NOT ({s})")),
                    ..w
                },
                (true, Cond::Always) => Where::constant(false),
                (true, Cond::Never) => Where::constant(true),
            }
        };
        let column = |c: Column| self.d.column(c);
        match (names.as_slice(), base) {
            (
                ["id"]
                | ["meta"]
                | ["meta", "created" | "lastModified" | "version" | "resourceType"],
                Test::Present,
            ) if !negate => Where::constant(true),
            (
                ["id"],
                Test::Str {
                    op,
                    needle,
                    case_exact: true,
                    ..
                },
            ) => {
                let col = column(Column::Id);
                let cmp = if negate {
                    format!("NOT ({})", self.d.str_cmp(cx, col, *op, needle))
                } else {
                    self.d.column_cmp(cx, col, *op, needle)
                };
                Where::exact(format!("({col} IS NOT NULL AND {cmp})"))
            }
            (["meta", which @ ("created" | "lastModified")], Test::Date { op, at }) => {
                let col = column(if *which == "created" {
                    Column::Created
                } else {
                    Column::Modified
                });
                match self.d.instant_cmp(cx, col, *op, at) {
                    Some(cmp) => not(Where::exact(format!("({col} IS NOT NULL AND {cmp})"))),
                    None => Where::superset(),
                }
            }
            (
                ["meta", "version"],
                Test::Str {
                    op,
                    needle,
                    case_exact,
                    ..
                },
            ) => {
                let prefix = if *case_exact { "'W/\"'" } else { "'w/\"'" };
                let text = self.d.version_text(prefix);
                not(Where::exact(self.d.str_cmp(cx, &text, *op, needle)))
            }
            (["meta", "resourceType"], _) => {
                Where::constant(test.test(&Value::String(self.rt.name().to_owned())))
            }
            _ => Where::superset(),
        }
    }

    /// A leaf on `members` or `members.*` at the root.
    fn members_leaf(&self, cx: &mut Cx<'_>, keys: &[Box<str>], test: &Test) -> Where {
        let m = cx.alias("m");
        let w = match (keys, test) {
            // An element is present when it has a present value: every member has an id.
            ([_], Test::Present) => Where::all(),
            ([_], _) => return Where::superset(),
            ([_, rest @ ..], _) => self.member_leaf(cx, rest, test, &m),
            ([], _) => return Where::superset(),
        };
        self.members(&m, w)
    }

    /// A leaf on a sub-attribute of the member row `m`.
    fn member_leaf(&self, cx: &mut Cx<'_>, keys: &[Box<str>], test: &Test, m: &str) -> Where {
        let [k] = keys else {
            return Where::superset();
        };
        match &**k {
            "value" => match test.base() {
                Test::Present => Where::all(),
                Test::Str {
                    op,
                    needle,
                    case_exact,
                    ..
                } => {
                    let col = format!("{m}.{}", self.d.member_column(!case_exact));
                    let cmp = self.d.str_cmp(cx, &col, *op, needle);
                    Where::exact(if matches!(test, Test::Ne(_)) {
                        format!("NOT ({cmp})")
                    } else {
                        cmp
                    })
                }
                _ => Where::constant(false),
            },
            // The engine's view of a member has no `$ref`.
            "$ref" => Where::constant(false),
            // `type`, `display`: the engine decides.
            _ => Where::superset(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactness_combines() {
        assert_eq!(Exactness::Exact.and(Exactness::Exact), Exactness::Exact);
        assert_eq!(Exactness::Exact.and(Exactness::Inexact), Exactness::Inexact);
        assert_eq!(Exactness::Inexact.and(Exactness::Exact), Exactness::Inexact);
        assert!(Where::superset().selects_all() && !Where::superset().is_exact());
        assert!(Where::all().selects_all() && Where::all().is_exact());
        assert!(!Where::constant(false).selects_all());
    }

    #[test]
    fn empty_string_tests() {
        assert!(empty_passes(CompareOp::Eq, ""));
        assert!(!empty_passes(CompareOp::Eq, "a"));
        assert!(empty_passes(CompareOp::Lt, "a"));
        assert!(!empty_passes(CompareOp::Lt, ""));
        assert!(empty_passes(CompareOp::Le, ""));
        assert!(!empty_passes(CompareOp::Gt, ""));
        assert!(empty_passes(CompareOp::Co, ""));
        assert!(!empty_passes(CompareOp::Sw, "a"));
    }
}
