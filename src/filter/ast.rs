//! The public filter AST (RFC 7644 §3.4.2.2).
//!
//! Storage backends pattern-match this tree to translate it (to SQL, to an index lookup).
//! Its `Display` prints a canonical filter string that parses back to the same tree.

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
