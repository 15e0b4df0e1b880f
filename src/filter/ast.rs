//! The public filter AST (RFC 7644 §3.4.2.2).
//!
//! Storage backends pattern-match this tree to translate it (to SQL, to an index lookup).
//! Its `Display` prints a canonical filter string that parses back to the same tree.

use std::fmt::{self, Write as _};

use crate::schema::AttrPath;

/// A comparison operator (RFC 7644 §3.4.2.2, Table 3), matched case-insensitively on input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    /// `eq`: equal.
    Eq,
    /// `ne`: not equal.
    Ne,
    /// `co`: contains (strings).
    Co,
    /// `sw`: starts with (strings).
    Sw,
    /// `ew`: ends with (strings).
    Ew,
    /// `gt`: greater than.
    Gt,
    /// `ge`: greater than or equal.
    Ge,
    /// `lt`: less than.
    Lt,
    /// `le`: less than or equal.
    Le,
}

/// A comparison value (RFC 7644 `compValue`).
#[derive(Debug, Clone, PartialEq)]
pub enum CompValue {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A JSON number (integer, decimal or with exponent).
    Number(serde_json::Number),
    /// A JSON string (escapes already decoded).
    String(String),
}

/// A parsed filter.
///
/// Inside the `filter` of a [`Filter::ValuePath`], attribute paths are relative to the
/// elements of the multi-valued attribute (`emails[type eq "work"]`: `type` is
/// `emails.type`), and value paths do not nest.
///
/// The non-RFC form Entra ID sends, `emails[type eq "work"].value eq "x"`, is parsed into the
/// equivalent `emails[type eq "work" and value eq "x"]`.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `attrPath compareOp compValue`.
    Compare {
        /// The attribute compared.
        path: AttrPath,
        /// The operator.
        op: CompareOp,
        /// The value compared with.
        value: CompValue,
    },
    /// `attrPath pr`: the attribute has a non-empty value.
    Present(AttrPath),
    /// `a and b`.
    And(Box<Filter>, Box<Filter>),
    /// `a or b`.
    Or(Box<Filter>, Box<Filter>),
    /// `not (a)`.
    Not(Box<Filter>),
    /// `attrPath[valFilter]`: some element of the multi-valued attribute matches `filter`.
    ValuePath {
        /// The multi-valued (or complex) attribute, without a sub-attribute.
        path: AttrPath,
        /// The filter applied to each element.
        filter: Box<Filter>,
    },
}

/// Sort direction (RFC 7644 §3.4.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SortOrder {
    /// Ascending (the default).
    #[default]
    Ascending,
    /// Descending.
    Descending,
}

/// What to sort by (RFC 7644 §3.4.2.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SortSpec {
    /// The attribute to sort by.
    pub by: AttrPath,
    /// The direction.
    pub order: SortOrder,
}

impl CompareOp {
    /// The canonical (lower-case) spelling: `eq`, `ne`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }

    /// True for `gt`, `ge`, `lt` and `le`.
    pub fn is_ordering(self) -> bool {
        matches!(
            self,
            CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le
        )
    }

    /// True for `co`, `sw` and `ew`.
    pub fn is_substring(self) -> bool {
        matches!(self, CompareOp::Co | CompareOp::Sw | CompareOp::Ew)
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for CompValue {
    /// JSON form: `null`, `true`, `12.5`, `"text"` (escaped as RFC 8259 §7 requires).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompValue::Null => f.write_str("null"),
            CompValue::Bool(b) => write!(f, "{b}"),
            CompValue::Number(n) => write!(f, "{n}"),
            CompValue::String(s) => write_json_string(f, s),
        }
    }
}

fn write_json_string(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_char('"')?;
    let mut run_start = 0;
    for (i, c) in s.char_indices() {
        let esc: Option<&str> = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            '\u{8}' => Some("\\b"),
            '\u{c}' => Some("\\f"),
            c if u32::from(c) < 0x20 => None,
            _ => continue,
        };
        f.write_str(s.get(run_start..i).unwrap_or(""))?;
        match esc {
            Some(e) => f.write_str(e)?,
            None => write!(f, "\\u{:04x}", u32::from(c))?,
        }
        run_start = i + c.len_utf8();
    }
    f.write_str(s.get(run_start..).unwrap_or(""))?;
    f.write_char('"')
}

impl Filter {
    /// The operands of an `and` (or `or`) chain rooted here, left to right, without recursing
    /// along the chain (the parser builds them leaning left, as deep as the filter is long).
    /// Anything else is its own single operand.
    pub(crate) fn chain_operands(&self) -> Vec<&Filter> {
        let is_and = matches!(self, Filter::And(..));
        let mut operands = Vec::new();
        let mut stack = vec![self];
        while let Some(g) = stack.pop() {
            match (g, is_and) {
                (Filter::And(l, r), true) | (Filter::Or(l, r), false) => {
                    stack.push(r);
                    stack.push(l);
                }
                _ => operands.push(g),
            }
        }
        operands
    }

    /// `path op value`.
    pub fn compare(path: AttrPath, op: CompareOp, value: CompValue) -> Filter {
        Filter::Compare { path, op, value }
    }

    /// `self and other`.
    pub fn and(self, other: Filter) -> Filter {
        Filter::And(Box::new(self), Box::new(other))
    }

    /// `self or other`.
    pub fn or(self, other: Filter) -> Filter {
        Filter::Or(Box::new(self), Box::new(other))
    }

    /// `not (self)`.
    #[allow(clippy::should_implement_trait)]
    pub fn not(self) -> Filter {
        Filter::Not(Box::new(self))
    }

    /// `path[filter]`.
    pub fn value_path(path: AttrPath, filter: Filter) -> Filter {
        Filter::ValuePath {
            path,
            filter: Box::new(filter),
        }
    }

    fn fmt_child(&self, f: &mut fmt::Formatter<'_>, parens: bool) -> fmt::Result {
        if parens {
            write!(f, "({self})")
        } else {
            fmt::Display::fmt(self, f)
        }
    }
}

impl fmt::Display for Filter {
    /// The canonical filter string: lower-case operators, single spaces, parentheses only
    /// where precedence needs them (`and` binds tighter than `or`, chains associate to the
    /// left), so that [`Filter::parse`] gives back the same tree. That holds for every tree
    /// the parser can produce: attribute names valid RFC 7643 `ATTRNAME`s (or `$ref`), no
    /// value path inside a value path, no sub-attribute on a value path's attribute.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::Compare { path, op, value } => write!(f, "{path} {op} {value}"),
            Filter::Present(path) => write!(f, "{path} pr"),
            Filter::Or(l, r) => {
                l.fmt_child(f, false)?;
                f.write_str(" or ")?;
                r.fmt_child(f, matches!(**r, Filter::Or(..)))
            }
            Filter::And(l, r) => {
                l.fmt_child(f, matches!(**l, Filter::Or(..)))?;
                f.write_str(" and ")?;
                r.fmt_child(f, matches!(**r, Filter::Or(..) | Filter::And(..)))
            }
            Filter::Not(inner) => write!(f, "not ({inner})"),
            Filter::ValuePath { path, filter } => write!(f, "{path}[{filter}]"),
        }
    }
}
