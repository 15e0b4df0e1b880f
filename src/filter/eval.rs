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
    /// [`Tolerances::unqualified_extension_attributes`](crate::settings::Tolerances)).
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
    #[cfg(feature = "sqlite")]
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
    /// use scimkit::{filter::Filter, schema::SchemaRegistry};
    /// use serde_json::json;
    ///
    /// let registry = SchemaRegistry::default();
    /// let users = registry.user().expect("built in");
    /// let f = Filter::parse(r#"userName eq "BJensen""#)?.compile(users, true)?;
    /// assert!(f.matches(&json!({"userName": "bjensen"})));
    /// # Ok::<(), scimkit::error::ScimError>(())
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
mod tests;
