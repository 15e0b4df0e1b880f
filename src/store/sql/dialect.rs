//! What differs between the SQL databases the stores run on: the [`Dialect`] a
//! [`translate`](super::translate) call writes its SQL in.

use chrono::{DateTime, FixedOffset};

use super::{Column, Cx, Where};
use crate::filter::{CompareOp, Test};

/// The SQL one database needs for the parts of a filter translation that are not the same
/// everywhere. The translator ([`super::translate`]) decides what a node means (which
/// column, which table, whether the answer is exact, how `and`/`or`/`not` combine); the
/// dialect only writes the database's spelling of it.
///
/// Every method that returns SQL binds the values it uses through the [`Cx`] it is given
/// (never splices them into the text).
pub(crate) trait Dialect {
    /// How an element of a multi-valued attribute is addressed inside a value filter
    /// (`emails[...]`): a JSON path expression (SQLite), or nothing because the element is
    /// a row of a fixed alias (PostgreSQL).
    type Elem: Clone;

    /// The first character of a parameter placeholder (`?N` or `$N`).
    const PLACEHOLDER: char;
    /// The always-true condition.
    const TRUE: &'static str;
    /// The always-false condition.
    const FALSE: &'static str;
    /// True when the extracted string columns ([`Column::UserName`], ...) hold `NULL` for
    /// an empty string as well as for a missing value, so that only tests the empty string
    /// fails can use them (and `pr` can read them).
    const EMPTY_IS_NULL: bool;

    /// The column (qualified with the row alias `r.`) holding `c`.
    fn column(&self, c: Column) -> &'static str;

    /// The column of the membership table holding a member's id, as stored or folded.
    fn member_column(&self, folded: bool) -> &'static str;

    /// "Some member `m` of the group `r` satisfies `cond`" (`None`: any member).
    fn member_exists(&self, m: &str, cond: Option<&str>) -> String;

    /// The view's `meta.version` (`W/"<n>"`) as SQL text, with `prefix` (an SQL string
    /// literal: `'W/"'`, or `'w/"'` for a folded comparison) before the number.
    fn version_text(&self, prefix: &str) -> String;

    /// A string comparison of the SQL text expression `val` with `needle` (already folded
    /// when the comparison ignores case), comparing code points.
    fn str_cmp(&self, cx: &mut Cx<'_>, val: &str, op: CompareOp, needle: &str) -> String;

    /// [`Dialect::str_cmp`] on an indexed text column, written so that the database can use
    /// its index.
    fn column_cmp(&self, cx: &mut Cx<'_>, col: &str, op: CompareOp, needle: &str) -> String;

    /// A chronological comparison of the timestamp column `col` with `at`, or `None` when
    /// the column cannot represent `at` (the translator then answers a superset).
    fn instant_cmp(
        &self,
        cx: &mut Cx<'_>,
        col: &str,
        op: CompareOp,
        at: &DateTime<FixedOffset>,
    ) -> Option<String>;

    /// `test` on the values found through `keys` in the stored document (the root when
    /// `at` is `None`, else the element of the enclosing value filter), arrays searched one
    /// level deep at each step, as the evaluator searches them.
    fn json_leaf(
        &self,
        cx: &mut Cx<'_>,
        at: Option<&Self::Elem>,
        keys: &[Box<str>],
        test: &Test,
    ) -> Where;

    /// A value filter at the document root: some object element of the attribute at `keys`
    /// satisfies the condition `inner` translates for the element it is given (it may be
    /// called once per way the dialect reaches elements).
    fn value_filter(
        &self,
        cx: &mut Cx<'_>,
        keys: &[Box<str>],
        inner: &mut dyn FnMut(&mut Cx<'_>, Self::Elem) -> Where,
    ) -> Where;
}
