//! Filter evaluation over schema-aware documents (RFC 7644 §3.4.2.2).
//!
//! A [`Filter`] is compiled once against a resource type: every attribute path is resolved to
//! the document keys that hold it and to its definition, so the comparison knows its type
//! (string, number, dateTime, boolean, binary) and `caseExact` (RFC 7643 §2.2, §7). The
//! compiled tree then walks each document without resolving, allocating (except to fold the
//! case of non-ASCII strings) or recursing deeper than the filter's own nesting.
//!
//! Semantics fixed here, where RFC 7644 leaves room:
//! - A comparison on a multi-valued attribute is true when any value satisfies it; a complex
//!   attribute compared without a sub-attribute compares its `value` sub-attribute.
//! - `ne` follows the same any-value rule (RFC 7644 §3.4.2.2): `emails.type ne "work"` is
//!   true when **some** email has a `type` other than `"work"`, so a user with a work and a
//!   home email matches. An attribute without a value has no value that is "not equal":
//!   `title ne "x"` is false when `title` is absent (or `null`; an empty string is a value). `not (a eq v)` keeps its
//!   logical meaning, "no value of `a` equals `v`" (true when `a` is absent): on a
//!   single-valued attribute that has a value the two agree, elsewhere they differ.
//! - `eq null` means "not present" and `ne null` means "present" (RFC 7643 §2.5 makes null
//!   and absence equivalent). `pr` is false for an absent attribute, `null`, `""`, `[]` and an
//!   object whose values are all absent in that sense.
//! - A comparison on an attribute unknown to the resource type, or one that does not apply
//!   to the attribute's type, is false whatever the operator, `ne` included (in strict
//!   compilation it is `invalidFilter` instead); `not` still negates it.
//! - In non-strict compilation a value of the wrong JSON type is converted when that is
//!   unambiguous (`employeeNumber eq 42` compares with `"42"`, `active eq "true"` with `true`)
//!   and otherwise never matches; strict compilation rejects it.

use std::cmp::Ordering;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, FixedOffset, NaiveDateTime};
use serde_json::{Map, Number, Value};

use crate::error::{FilterError, FilterErrorReason, ScimError};
use crate::schema::{AttrPath, AttributeDef, AttributeType, ResourceDef};

use super::ast::{CompValue, CompareOp, Filter};
use super::parse::MAX_TREE_DEPTH;

/// How [`Filter::compile_with`] resolves and checks attribute paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CompileOptions {
    /// Reject unknown attributes, operators that do not apply to the attribute's type
    /// (ordering on boolean or binary, substring operators on non-strings) and values of the
    /// wrong type with `invalidFilter`. When false, such comparisons never match.
    pub strict: bool,
    /// Resolve an unqualified attribute name against the resource type's extensions when no
    /// common or core attribute has that name (see
    /// [`Tolerances::unqualified_extension_attributes`](crate::Tolerances)).
    pub unqualified_extension_attributes: bool,
}

/// A filter resolved against a resource type, ready to evaluate many documents.
///
/// Build it with [`Filter::compile`]. It owns everything it needs, so it can be cached and
/// shared between threads.
#[derive(Debug, Clone)]
pub struct CompiledFilter {
    root: Arc<Node>,
}

impl CompiledFilter {
    /// True when `doc` (a resource in canonical attribute case, extension attributes under
    /// their schema URN key) matches the filter.
    pub fn matches(&self, doc: &Value) -> bool {
        self.root.eval(doc)
    }

    /// The resolved tree, for stores that translate it (to SQL).
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) fn root(&self) -> &Node {
        &self.root
    }
}

/// A node of a compiled filter. Paths are resolved to document keys; the tests carry the
/// typed, folded comparison values.
#[derive(Debug)]
pub(crate) enum Node {
    Const(bool),
    Leaf(Leaf),
    Not(Box<Node>),
    And(Box<[Node]>),
    Or(Box<[Node]>),
    /// A value path: some element of the attribute at `keys` satisfies `inner`, whose paths
    /// are relative to the element.
    Any {
        keys: Box<[Box<str>]>,
        inner: Box<Node>,
    },
}

/// A comparison of the values found at `keys` (any of them, arrays searched).
#[derive(Debug)]
pub(crate) struct Leaf {
    pub(crate) keys: Box<[Box<str>]>,
    pub(crate) test: Test,
}

/// The test a [`Leaf`] applies to each value.
#[derive(Debug)]
pub(crate) enum Test {
    Present,
    Str {
        op: CompareOp,
        /// Lower-cased (Unicode) when the comparison ignores case.
        needle: Box<str>,
        case_exact: bool,
        ascii: bool,
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
    /// `ne`: a value that is not `null` and fails the `eq` test inside.
    Ne(Box<Test>),
}

impl Test {
    /// The test `ne` negates, or the test itself: what decides how a store reads the value.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn base(&self) -> &Test {
        match self {
            Test::Ne(inner) => inner,
            other => other,
        }
    }
}

impl Node {
    fn eval(&self, root: &Value) -> bool {
        match self {
            Node::Const(b) => *b,
            Node::Leaf(leaf) => any_value(root, &leaf.keys, &|v| leaf.test.test(v)),
            Node::Not(n) => !n.eval(root),
            Node::And(ns) => ns.iter().all(|n| n.eval(root)),
            Node::Or(ns) => ns.iter().any(|n| n.eval(root)),
            Node::Any { keys, inner } => {
                let Some(v) = lookup(root, keys) else {
                    return false;
                };
                match v {
                    Value::Array(items) => items
                        .iter()
                        .any(|e| matches!(e, Value::Object(_)) && inner.eval(e)),
                    Value::Object(_) => inner.eval(v),
                    _ => false,
                }
            }
        }
    }
}

/// Looks a key up in a document object. Documents are small; a linear scan that compares
/// lengths first beats hashing the key for the usual dozen attributes.
#[inline]
fn get<'v>(map: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    if map.len() <= 24 {
        map.iter()
            .find(|(k, _)| k.len() == key.len() && k.as_str() == key)
            .map(|(_, v)| v)
    } else {
        map.get(key)
    }
}

/// Follows `keys` through objects only (no array flattening): where a value path starts.
fn lookup<'v>(root: &'v Value, keys: &[Box<str>]) -> Option<&'v Value> {
    let mut cur = root;
    for k in keys {
        match cur {
            Value::Object(m) => cur = get(m, k)?,
            _ => return None,
        }
    }
    Some(cur)
}

/// True when some value reached from `v` through `keys` satisfies `test`. Arrays met on the way
/// (multi-valued attributes) are searched element by element, one level deep.
fn any_value(v: &Value, keys: &[Box<str>], test: &dyn Fn(&Value) -> bool) -> bool {
    match keys.split_first() {
        None => match v {
            Value::Array(items) => items.iter().any(|x| !x.is_array() && test(x)),
            _ => test(v),
        },
        Some((k, rest)) => match v {
            Value::Object(m) => get(m, k).is_some_and(|x| any_value(x, rest, test)),
            Value::Array(items) => items.iter().any(|e| match e {
                Value::Object(m) => get(m, k).is_some_and(|x| any_value(x, rest, test)),
                _ => false,
            }),
            _ => false,
        },
    }
}

/// RFC 7644 §3.4.2.2 `pr`: absent, `null`, `""`, `[]` and empty objects are not present.
pub(crate) fn is_present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => a.iter().any(is_present_shallow),
        Value::Object(m) => m.values().any(is_present_shallow),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

fn is_present_shallow(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

impl Test {
    /// True when the value `v` passes the test.
    pub(crate) fn test(&self, v: &Value) -> bool {
        match self {
            Test::Present => is_present(v),
            Test::Str {
                op,
                needle,
                case_exact,
                ascii,
            } => match v {
                Value::String(s) => str_test(*op, s, needle, *case_exact, *ascii),
                _ => false,
            },
            Test::Num { op, n } => match v {
                Value::Number(x) => cmp_numbers(x, n).is_some_and(|o| op_holds(*op, o)),
                _ => false,
            },
            Test::Bool(b) => matches!(v, Value::Bool(x) if x == b),
            Test::Date { op, at } => match v {
                Value::String(s) => parse_date_time(s).is_some_and(|d| op_holds(*op, d.cmp(at))),
                _ => false,
            },
            Test::Ne(eq) => !v.is_null() && !eq.test(v),
        }
    }
}

/// Whether ordering `o` (document value compared with the filter value) satisfies `op`.
fn op_holds(op: CompareOp, o: Ordering) -> bool {
    match op {
        CompareOp::Eq => o == Ordering::Equal,
        CompareOp::Ne => o != Ordering::Equal,
        CompareOp::Gt => o == Ordering::Greater,
        CompareOp::Ge => o != Ordering::Less,
        CompareOp::Lt => o == Ordering::Less,
        CompareOp::Le => o != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

fn str_test(op: CompareOp, s: &str, needle: &str, case_exact: bool, ascii: bool) -> bool {
    if case_exact {
        return match op {
            CompareOp::Eq => s == needle,
            CompareOp::Co => s.contains(needle),
            CompareOp::Sw => s.starts_with(needle),
            CompareOp::Ew => s.ends_with(needle),
            _ => op_holds(op, s.cmp(needle)),
        };
    }
    if ascii && s.is_ascii() {
        let (h, n) = (s.as_bytes(), needle.as_bytes());
        return match op {
            CompareOp::Eq => h.eq_ignore_ascii_case(n),
            CompareOp::Sw => h.get(..n.len()).is_some_and(|p| p.eq_ignore_ascii_case(n)),
            CompareOp::Ew => h
                .len()
                .checked_sub(n.len())
                .and_then(|start| h.get(start..))
                .is_some_and(|p| p.eq_ignore_ascii_case(n)),
            CompareOp::Co => n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n)),
            _ => op_holds(
                op,
                h.iter().map(u8::to_ascii_lowercase).cmp(n.iter().copied()),
            ),
        };
    }
    // Unicode case folding: both sides folded (the needle was at compile time).
    let folded_text = super::fold::fold_case(s);
    let folded: &str = &folded_text;
    match op {
        CompareOp::Eq => folded == needle,
        CompareOp::Co => folded.contains(needle),
        CompareOp::Sw => folded.starts_with(needle),
        CompareOp::Ew => folded.ends_with(needle),
        _ => op_holds(op, folded.cmp(needle)),
    }
}

/// Compares two JSON numbers numerically: exactly when both are integers, as `f64` otherwise.
pub(crate) fn cmp_numbers(a: &Number, b: &Number) -> Option<Ordering> {
    let int = |n: &Number| {
        n.as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
    };
    if let (Some(x), Some(y)) = (int(a), int(b)) {
        return Some(x.cmp(&y));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

/// Parses an `xsd:dateTime` (RFC 7643 §2.3.5): RFC 3339, or without an offset (taken as UTC).
pub(crate) fn parse_date_time(s: &str) -> Option<DateTime<FixedOffset>> {
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d);
    }
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|n| n.and_utc().fixed_offset())
}

/// Where the paths of the filter being compiled are resolved.
#[derive(Clone, Copy)]
enum Scope<'a> {
    /// Against the resource type, from the document root.
    Resource(&'a ResourceDef),
    /// Relative to an element of the complex attribute (inside `[ ]`).
    Element(&'a AttributeDef),
}

struct Compiler {
    opts: CompileOptions,
}

/// The outcome of resolving a path: document keys and the definition they end at.
struct Target<'a> {
    keys: Vec<Box<str>>,
    def: &'a AttributeDef,
}

/// An `invalidFilter` found while compiling against the schema (no position: the compiled
/// form does not keep the text's offsets).
fn filter_error(reason: FilterErrorReason, detail: String) -> ScimError {
    ScimError::from(FilterError::new(reason, None, detail))
}

impl Compiler {
    fn reject_or_false(
        &self,
        reason: FilterErrorReason,
        detail: String,
    ) -> Result<Node, ScimError> {
        if self.opts.strict {
            Err(ScimError::from(FilterError::new(reason, None, detail)))
        } else {
            Ok(Node::Const(false))
        }
    }

    fn resolve<'a>(&self, scope: Scope<'a>, path: &AttrPath) -> Option<Target<'a>> {
        match scope {
            Scope::Element(parent) => {
                if path.urn.is_some() {
                    return None;
                }
                let def = parent.sub_attribute(&path.name)?;
                let mut keys = vec![Box::from(def.name.as_str())];
                let def = match &path.sub_attr {
                    None => def,
                    Some(s) => {
                        let sub = def.sub_attribute(s)?;
                        keys.push(Box::from(sub.name.as_str()));
                        sub
                    }
                };
                Some(Target { keys, def })
            }
            Scope::Resource(rt) => {
                if path.urn.is_none()
                    && path.sub_attr.is_none()
                    && path.name.eq_ignore_ascii_case("schemas")
                {
                    // RFC 7643 §3: every resource carries `schemas`, though no schema defines
                    // it; RFC 7644 §3.4.2.2 filters on it.
                    let def = schemas_attribute();
                    return Some(Target {
                        keys: vec![Box::from(def.name.as_str())],
                        def,
                    });
                }
                let r = rt.resolve(path).or_else(|| {
                    if !self.opts.unqualified_extension_attributes || path.urn.is_some() {
                        return None;
                    }
                    rt.extensions().find_map(|(schema, _)| {
                        schema.attribute(&path.name)?;
                        rt.resolve_parts(
                            Some(schema.id.as_str()),
                            &path.name,
                            path.sub_attr.as_deref(),
                        )
                    })
                })?;
                let mut keys = Vec::with_capacity(3);
                if let Some(ext) = r.extension {
                    keys.push(Box::from(ext));
                }
                keys.push(Box::from(r.attr.name.as_str()));
                if let Some(sub) = r.sub {
                    keys.push(Box::from(sub.name.as_str()));
                }
                Some(Target {
                    keys,
                    def: r.sub.unwrap_or(r.attr),
                })
            }
        }
    }

    fn compile(&self, scope: Scope<'_>, f: &Filter, depth: usize) -> Result<Node, ScimError> {
        if depth > MAX_TREE_DEPTH {
            return Err(filter_error(
                FilterErrorReason::TooDeep,
                format!("the filter nests deeper than {MAX_TREE_DEPTH} levels"),
            ));
        }
        match f {
            Filter::And(..) | Filter::Or(..) => self.compile_chain(scope, f, depth),
            Filter::Not(inner) => Ok(match self.compile(scope, inner, depth + 1)? {
                Node::Const(b) => Node::Const(!b),
                Node::Not(n) => *n,
                n => Node::Not(Box::new(n)),
            }),
            Filter::Present(path) => match self.resolve(scope, path) {
                Some(t) => leaf(t.keys.into_boxed_slice(), Test::Present),
                None => self.reject_or_false(FilterErrorReason::UnknownAttribute, unknown(path)),
            },
            Filter::Compare { path, op, value } => self.compile_compare(scope, path, *op, value),
            Filter::ValuePath { path, filter } => {
                if let Scope::Element(parent) = scope {
                    return self.reject_or_false(
                        FilterErrorReason::InvalidAttributePath,
                        format!(
                            "value filters cannot nest: `{path}[...]` inside `{}[...]`",
                            parent.name
                        ),
                    );
                }
                let Some(t) = self.resolve(scope, path) else {
                    return self
                        .reject_or_false(FilterErrorReason::UnknownAttribute, unknown(path));
                };
                if !t.def.is_complex() {
                    return self.reject_or_false(FilterErrorReason::InvalidAttributePath, format!(
                        "`{path}` is not a complex attribute; `[...]` filters the elements of a complex attribute"
                    ));
                }
                let inner = self.compile(Scope::Element(t.def), filter, depth + 1)?;
                Ok(match inner {
                    Node::Const(false) => Node::Const(false),
                    inner => Node::Any {
                        keys: t.keys.into_boxed_slice(),
                        inner: Box::new(inner),
                    },
                })
            }
        }
    }

    /// Flattens an `and`/`or` chain (the parser builds them leaning left) into one n-ary
    /// node, without recursing along the chain.
    fn compile_chain(&self, scope: Scope<'_>, f: &Filter, depth: usize) -> Result<Node, ScimError> {
        let is_and = matches!(f, Filter::And(..));
        let operands = f.chain_operands();
        let mut nodes = Vec::with_capacity(operands.len());
        for g in operands {
            match self.compile(scope, g, depth + 1)? {
                // Neutral elements disappear; absorbing ones decide the whole chain.
                Node::Const(b) if b == is_and => {}
                Node::Const(b) => return Ok(Node::Const(b)),
                n => nodes.push(n),
            }
        }
        Ok(match nodes.len() {
            0 => Node::Const(is_and),
            1 => nodes.pop().unwrap_or(Node::Const(is_and)),
            _ if is_and => Node::And(nodes.into_boxed_slice()),
            _ => Node::Or(nodes.into_boxed_slice()),
        })
    }

    fn compile_compare(
        &self,
        scope: Scope<'_>,
        path: &AttrPath,
        op: CompareOp,
        value: &CompValue,
    ) -> Result<Node, ScimError> {
        let Some(Target { mut keys, mut def }) = self.resolve(scope, path) else {
            return self.reject_or_false(FilterErrorReason::UnknownAttribute, unknown(path));
        };
        if def.is_complex() {
            // RFC 7644 §3.4.2.2: a complex attribute compared without a sub-attribute
            // compares its `value`.
            match def.sub_attribute("value") {
                Some(v) if !v.is_complex() => {
                    keys.push(Box::from(v.name.as_str()));
                    def = v;
                }
                _ => {
                    return Err(filter_error(FilterErrorReason::ComplexAttribute, format!(
                        "`{path}` is a complex attribute without a `value` sub-attribute; compare one of its sub-attributes instead"
                    )))
                }
            }
        }
        let keys = keys.into_boxed_slice();
        if op == CompareOp::Ne {
            if let CompValue::Null = value {
                // RFC 7643 §2.5: `ne null` is "has a value".
                return leaf(keys, Test::Present);
            }
            // RFC 7644 §3.4.2.2: some value is not equal (not "no value is equal").
            let eq = self.compile_typed(path, def, CompareOp::Eq, value, keys)?;
            return Ok(match eq {
                Node::Leaf(Leaf { keys, test }) => Node::Leaf(Leaf {
                    keys,
                    test: Test::Ne(Box::new(test)),
                }),
                // A comparison that does not apply never matches, `ne` included.
                _ => Node::Const(false),
            });
        }
        self.compile_typed(path, def, op, value, keys)
    }

    fn compile_typed(
        &self,
        path: &AttrPath,
        def: &AttributeDef,
        op: CompareOp,
        value: &CompValue,
        keys: Box<[Box<str>]>,
    ) -> Result<Node, ScimError> {
        if let CompValue::Null = value {
            // RFC 7643 §2.5: null is equivalent to "absent".
            return match op {
                CompareOp::Eq => Ok(match leaf(keys, Test::Present)? {
                    Node::Const(b) => Node::Const(!b),
                    n => Node::Not(Box::new(n)),
                }),
                _ => self.reject_or_false(
                    FilterErrorReason::InvalidComparison,
                    format!("`{path} {op} null`: null can only be compared with eq or ne"),
                ),
            };
        }
        let ty = def.ty;
        let type_name = ty.as_str();
        let wrong_op = |allowed: &str| {
            format!("`{path}` is a {type_name} attribute: `{op}` does not apply to it ({allowed})")
        };
        let wrong_value = |expected: &str| {
            format!(
                "`{path} {op} {value}`: `{path}` is a {type_name} attribute and needs {expected}"
            )
        };
        match ty {
            AttributeType::String | AttributeType::Reference | AttributeType::Binary => {
                let binary = ty == AttributeType::Binary;
                if binary && op != CompareOp::Eq {
                    return Err(filter_error(
                        FilterErrorReason::InvalidComparison,
                        wrong_op("only eq, ne and pr apply"),
                    ));
                }
                let text = match value {
                    CompValue::String(s) => s.clone(),
                    CompValue::Number(n) if !self.opts.strict => n.to_string(),
                    CompValue::Bool(b) if !self.opts.strict => b.to_string(),
                    _ => {
                        return self.reject_or_false(
                            FilterErrorReason::InvalidComparison,
                            wrong_value("a double-quoted string"),
                        )
                    }
                };
                let case_exact = def.case_exact || binary;
                let needle: Box<str> = if case_exact {
                    text.into()
                } else {
                    super::fold::fold_case(&text).into()
                };
                leaf(
                    keys,
                    Test::Str {
                        op,
                        ascii: needle.is_ascii(),
                        needle,
                        case_exact,
                    },
                )
            }
            AttributeType::Boolean => {
                if op != CompareOp::Eq {
                    return Err(filter_error(
                        FilterErrorReason::InvalidComparison,
                        wrong_op("only eq, ne and pr apply"),
                    ));
                }
                let b = match value {
                    CompValue::Bool(b) => *b,
                    CompValue::String(s) if !self.opts.strict && s.eq_ignore_ascii_case("true") => {
                        true
                    }
                    CompValue::String(s)
                        if !self.opts.strict && s.eq_ignore_ascii_case("false") =>
                    {
                        false
                    }
                    _ => {
                        return self.reject_or_false(
                            FilterErrorReason::InvalidComparison,
                            wrong_value("true or false"),
                        )
                    }
                };
                leaf(keys, Test::Bool(b))
            }
            AttributeType::Integer | AttributeType::Decimal => {
                if op.is_substring() {
                    return Err(filter_error(
                        FilterErrorReason::InvalidComparison,
                        wrong_op("eq, ne, gt, ge, lt, le and pr apply"),
                    ));
                }
                let n = match value {
                    CompValue::Number(n) => n.clone(),
                    CompValue::String(s) if !self.opts.strict => match s.trim().parse() {
                        Ok(n) => n,
                        Err(_) => {
                            return self.reject_or_false(
                                FilterErrorReason::InvalidComparison,
                                wrong_value("a number"),
                            )
                        }
                    },
                    _ => {
                        return self.reject_or_false(
                            FilterErrorReason::InvalidComparison,
                            wrong_value("a number"),
                        )
                    }
                };
                leaf(keys, Test::Num { op, n })
            }
            AttributeType::DateTime => {
                if op.is_substring() {
                    return Err(filter_error(
                        FilterErrorReason::InvalidComparison,
                        wrong_op("eq, ne, gt, ge, lt, le and pr apply"),
                    ));
                }
                match value {
                    CompValue::String(s) => match parse_date_time(s) {
                        Some(at) => leaf(keys, Test::Date { op, at }),
                        None => self.reject_or_false(
                            FilterErrorReason::InvalidComparison,
                            wrong_value(
                                "an RFC 3339 date-time string such as \"2011-05-13T04:42:34Z\"",
                            ),
                        ),
                    },
                    _ => self.reject_or_false(
                        FilterErrorReason::InvalidComparison,
                        wrong_value(
                            "an RFC 3339 date-time string such as \"2011-05-13T04:42:34Z\"",
                        ),
                    ),
                }
            }
            AttributeType::Complex => Err(filter_error(
                FilterErrorReason::ComplexAttribute,
                format!(
                    "`{path}` is a complex attribute; compare one of its sub-attributes instead"
                ),
            )),
        }
    }
}

/// `schemas` (RFC 7643 §3): multi-valued URIs, compared case-insensitively like schema URNs.
fn schemas_attribute() -> &'static AttributeDef {
    static DEF: OnceLock<AttributeDef> = OnceLock::new();
    DEF.get_or_init(|| AttributeDef::new("schemas", AttributeType::Reference).multi())
}

fn leaf(keys: Box<[Box<str>]>, test: Test) -> Result<Node, ScimError> {
    if matches!(test, Test::Present) && is_meta_location(&keys) {
        // `meta.location` is derived from the id by the service (it is not in the stored
        // document): every resource has one, so `pr` (and `ne null`) is always true.
        return Ok(Node::Const(true));
    }
    Ok(Node::Leaf(Leaf { keys, test }))
}

/// True for the keys of `meta.location`.
pub(crate) fn is_meta_location(keys: &[Box<str>]) -> bool {
    matches!(keys, [m, l] if &**m == "meta" && &**l == "location")
}

fn unknown(path: &AttrPath) -> String {
    format!("the attribute `{path}` is not defined for this resource type")
}

impl Filter {
    /// Resolves every attribute path against `rt` once, for fast repeated evaluation.
    ///
    /// With `strict`, an unknown attribute, an operator that does not apply to the attribute's
    /// type (`gt` on a boolean or binary attribute, `co` on a number) or a value of the wrong
    /// type is `invalidFilter`; without it such a comparison never matches. See the module
    /// documentation for the evaluation rules.
    ///
    /// ```
    /// use scimkit::{Filter, SchemaRegistry};
    /// use serde_json::json;
    ///
    /// let registry = SchemaRegistry::default();
    /// let users = registry.user().expect("built in");
    /// let f = Filter::parse(r#"userName eq "BJensen""#)?.compile(users, true)?;
    /// assert!(f.matches(&json!({"userName": "bjensen"})));
    /// # Ok::<(), scimkit::ScimError>(())
    /// ```
    pub fn compile(&self, rt: &ResourceDef, strict: bool) -> Result<CompiledFilter, ScimError> {
        self.compile_with(
            rt,
            CompileOptions {
                strict,
                unqualified_extension_attributes: false,
            },
        )
    }

    /// [`compile`](Self::compile) with all options.
    pub fn compile_with(
        &self,
        rt: &ResourceDef,
        opts: CompileOptions,
    ) -> Result<CompiledFilter, ScimError> {
        let c = Compiler { opts };
        let root = c.compile(Scope::Resource(rt), self, 0)?;
        Ok(CompiledFilter {
            root: Arc::new(root),
        })
    }

    /// Compiles a value filter (the part inside `[ ]`, paths relative to the element) for the
    /// elements of the complex attribute `attr`. See [`matches_element`](Self::matches_element).
    pub fn compile_element(
        &self,
        attr: &AttributeDef,
        strict: bool,
    ) -> Result<CompiledFilter, ScimError> {
        let opts = CompileOptions {
            strict,
            unqualified_extension_attributes: false,
        };
        let c = Compiler { opts };
        if !attr.is_complex() {
            return Err(filter_error(FilterErrorReason::InvalidAttributePath, format!(
                "`{}` is not a complex attribute; `[...]` filters the elements of a complex attribute",
                attr.name
            )));
        }
        let root = c.compile(Scope::Element(attr), self, 0)?;
        Ok(CompiledFilter {
            root: Arc::new(root),
        })
    }

    /// Compiles (non-strict) and evaluates the filter against one document. To evaluate many
    /// documents, [`compile`](Self::compile) once instead.
    pub fn matches(&self, rt: &ResourceDef, doc: &Value) -> bool {
        self.compile(rt, false).is_ok_and(|c| c.matches(doc))
    }

    /// Evaluates a value filter (the part inside `[ ]`, paths relative to the element) against
    /// one element of the multi-valued complex attribute `attr`, as the PATCH engine needs for
    /// `emails[type eq "work"]` or `members[value eq "2819c223"]`. Non-strict.
    pub fn matches_element(&self, attr: &AttributeDef, element: &Value) -> bool {
        self.compile_element(attr, false)
            .is_ok_and(|c| c.matches(element))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
                assert_eq!(err.scim_type(), Some(crate::ScimType::InvalidFilter), "{f}");
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
}
