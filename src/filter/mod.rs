//! SCIM filters (RFC 7644 §3.4.2.2): parsing, evaluation and sorting.
//!
//! - [`Filter::parse`] turns a filter string into the public AST ([`Filter`]), which storage
//!   backends pattern-match to translate; its `Display` prints a canonical string that parses
//!   back to the same tree.
//! - [`Filter::compile`] resolves the filter against a resource type into a
//!   [`CompiledFilter`] that evaluates documents quickly; the evaluation rules are listed in
//!   [`CompiledFilter`]'s module notes below.
//! - [`sort_resources`] and [`compare_resources`] implement `sortBy`/`sortOrder`
//!   (RFC 7644 §3.4.2.3).
//!
//! ```
//! use scimkit::{filter::Filter, schema::SchemaRegistry};
//! use serde_json::json;
//!
//! let f = Filter::parse(r#"emails[type eq "work"].value Eq "B@Example.com""#)?;
//! assert_eq!(f.to_string(), r#"emails[type eq "work" and value eq "B@Example.com"]"#);
//! let registry = SchemaRegistry::default();
//! let user = json!({"emails": [{"type": "work", "value": "b@example.com"}]});
//! assert!(f.matches(registry.user().expect("built in"), &user));
//! # Ok::<(), scimkit::error::ScimError>(())
//! ```
//!
//! # Evaluation rules
//!
//! Where RFC 7644 leaves room, the evaluator decides as follows (storage backends that
//! translate filters must do the same):
//! - A comparison on a multi-valued attribute is true when any value satisfies it; a complex
//!   attribute compared without a sub-attribute compares its `value` sub-attribute.
//! - `ne` follows the same any-value rule (RFC 7644 §3.4.2.2): `emails.type ne "work"` is
//!   true when some email's `type` is not `"work"`, so a user with a work and a home email
//!   matches. An attribute with no value (absent or `null`) has no value that is "not
//!   equal", so `title ne "x"` is false for a user without a `title`. `not (emails.type eq
//!   "work")` keeps its logical meaning: no email's type is `"work"` (true without emails).
//! - `eq null` means "not present", `ne null` means "present" (RFC 7643 §2.5). `pr` is false
//!   for an absent attribute, `null`, `""`, `[]` and an object with no present value.
//! - Strings compare case-insensitively unless the attribute is `caseExact`, by Unicode full
//!   case folding ([`fold_case`]; the rule and its choices, such as `ß` = `ss`, final sigma
//!   and the dotted `İ`, are documented on [`fold_case`]); `co`, `sw` and `ew` look for
//!   the folded filter value in the folded text. `gt`/`ge`/`lt`/`le` on strings compare
//!   lexicographically (by code point, after folding when not `caseExact`). Numbers compare numerically, dateTimes
//!   chronologically, booleans only with `eq`/`ne`.
//! - An operator that does not apply to the attribute's type (`active gt true`, `co` on a
//!   dateTime, any comparison of a complex attribute without a `value`) is always
//!   `invalidFilter` (RFC 7644 §3.4.2.2: booleans and binaries only take `eq`/`ne`).
//! - A comparison on an attribute unknown to the resource type, or with a value of the wrong
//!   type that cannot be read leniently (`userName eq 5` compares as text; `active eq "x"`
//!   cannot), is false whatever the operator, `ne` included, or `invalidFilter` with strict
//!   compilation.

mod ast;
mod casefold_table;
mod compile;
mod compiled;
mod eval;
mod fold;
mod parse;
mod sort;

pub use ast::{CompValue, CompareOp, Filter, SortOrder, SortSpec};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) use compile::is_meta_location;
pub use compiled::{CompileOptions, CompiledFilter};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) use compiled::{Node, Test};
#[cfg(feature = "sqlite")]
pub(crate) use eval::parse_date_time;
pub use fold::{fold_case, fold_case_owned, fold_strings, CASE_FOLDING_UNICODE_VERSION};
pub use parse::{MAX_NESTING, MAX_TREE_DEPTH};
pub use sort::{compare_resources, sort_resources, sort_value, SortValue};

use crate::error::ScimError;
use crate::settings::Limits;

impl Filter {
    /// Parses a filter (RFC 7644 §3.4.2.2) with the default [`Limits`] on length and nesting.
    ///
    /// Operators, keywords and attribute names are case-insensitive (`userName Eq "x"`).
    /// Entra ID's `emails[type eq "work"].value eq "x"` parses as
    /// `emails[type eq "work" and value eq "x"]`. Errors are `invalidFilter` with a detail
    /// naming the column and what was expected.
    ///
    /// ```
    /// use scimkit::filter::Filter;
    /// let err = Filter::parse("userName").unwrap_err();
    /// assert_eq!(
    ///     err.detail(),
    ///     "expected a comparison operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) after `userName`, found the end of the filter at column 9"
    /// );
    /// ```
    pub fn parse(input: &str) -> Result<Filter, ScimError> {
        let limits = Limits::default();
        parse::parse(input, limits.max_filter_length, limits.max_filter_depth)
    }

    /// Parses a filter with the tenant's configured [`Limits`] (`max_filter_length`,
    /// `max_filter_depth`).
    pub fn parse_with(input: &str, limits: &Limits) -> Result<Filter, ScimError> {
        parse::parse(input, limits.max_filter_length, limits.max_filter_depth)
    }

    /// Parses a filter with explicit limits: at most `max_len` bytes and `max_depth` levels of
    /// nesting (parentheses, `not`, value paths; never more than [`MAX_NESTING`]). Exceeding
    /// either is `invalidFilter`.
    pub fn parse_with_limits(
        input: &str,
        max_len: usize,
        max_depth: usize,
    ) -> Result<Filter, ScimError> {
        parse::parse(input, max_len, max_depth)
    }
}

impl std::str::FromStr for Filter {
    type Err = ScimError;

    /// [`Filter::parse`] with the default limits.
    fn from_str(s: &str) -> Result<Filter, ScimError> {
        Filter::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::AttrPath;

    #[test]
    fn from_str_and_limits_helpers() {
        let f: Filter = "title pr".parse().unwrap();
        assert_eq!(f, Filter::Present(AttrPath::new("title")));
        let limits = Limits {
            max_filter_length: 8,
            max_filter_depth: 1,
            ..Limits::default()
        };
        assert!(Filter::parse_with("title pr", &limits).is_ok());
        assert!(Filter::parse_with("title pr ", &limits).is_err());
        let deep = Limits {
            max_filter_depth: 1,
            ..Limits::default()
        };
        assert!(Filter::parse_with("(title pr)", &deep).is_ok());
        assert!(Filter::parse_with("((title pr))", &deep).is_err());
    }
}
