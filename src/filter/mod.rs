//! SCIM filters (RFC 7644 §3.4.2.2): parsing, evaluation and sorting.

mod ast;

pub use ast::{CompValue, CompareOp, Filter, SortOrder, SortSpec};
