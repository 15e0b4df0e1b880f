//! The filter compiler: resolves every attribute path of a [`Filter`] against a resource type
//! once, types and case-folds the comparison values, and checks operators (strictly or not).

use std::sync::{Arc, OnceLock};

use serde_json::Value;

use crate::error::{FilterError, FilterErrorReason, ScimError};
use crate::schema::{AttrPath, AttributeDef, AttributeType, ResourceDef};

use super::ast::{CompValue, CompareOp, Filter};
use super::parse::MAX_TREE_DEPTH;

use super::compiled::{CompileOptions, CompiledFilter, Leaf, Node, Test};
use super::eval::parse_date_time;

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
