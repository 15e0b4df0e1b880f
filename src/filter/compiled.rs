//! The compiled form of a filter: a tree whose paths are resolved to document keys and whose
//! tests carry typed, case-folded comparison values. Built by the compiler (`compile.rs`),
//! walked by the evaluator (`eval.rs`) and by the SQL stores' translator (`store::sql`).

use std::sync::Arc;

use chrono::{DateTime, FixedOffset};
use serde_json::{Number, Value};

use super::ast::CompareOp;

/// How [`Filter::compile_with`](crate::filter::Filter::compile_with) resolves and checks attribute paths.
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
/// Build it with [`Filter::compile`](crate::filter::Filter::compile). It owns everything it needs, so it can be cached and
/// shared between threads.
#[derive(Debug, Clone)]
pub struct CompiledFilter {
    pub(super) root: Arc<Node>,
}

impl CompiledFilter {
    /// True when `doc` (a resource in canonical attribute case, extension attributes under
    /// their schema URN key) matches the filter.
    pub fn matches(&self, doc: &Value) -> bool {
        self.root.eval(doc)
    }

    /// The resolved tree, for stores that translate it (to SQL).
    #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
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
