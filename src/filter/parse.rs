//! The filter parser: a hand-written recursive-descent parser over the bytes of the input
//! (RFC 7644 §3.4.2.2, Figure 1).
//!
//! Precedence follows RFC 7644 §3.4.2.2 ("Filter Operator Precedence"): parentheses and value
//! paths bind tightest, then `not`, then `and`, then `or`; `and` and `or` chains associate to
//! the left. Recursion only happens on `(`, `not (` and `[`, and each level is counted against
//! the configured maximum depth (itself capped at [`MAX_NESTING`]), so no input can exhaust the
//! stack. Operator chains are built in a loop; the height of the tree they make is capped by
//! [`MAX_TREE_DEPTH`] because dropping, printing and compiling a tree recurse along it.

use crate::error::{FilterError, FilterErrorReason, ScimError};
use crate::schema::AttrPath;

use super::ast::{CompareOp, Filter};

/// The deepest tree (counting `and`/`or` chains as well as nesting) the parser builds. With the
/// default 4096-byte length limit no filter comes close; it guards hosts that raise the length
/// limit a lot, since every tree walk (drop, `Display`, compile) recurses along this depth.
pub const MAX_TREE_DEPTH: usize = 1024;

/// The deepest nesting (parentheses, `not`, value paths) the parser accepts whatever limit the
/// caller passes: each level costs a few stack frames of the recursive descent.
pub const MAX_NESTING: usize = 256;

/// Parses `input` with the given limits.
pub(crate) fn parse(input: &str, max_len: usize, max_depth: usize) -> Result<Filter, ScimError> {
    if input.len() > max_len {
        return Err(ScimError::from(FilterError::new(
            FilterErrorReason::TooLong,
            None,
            format!(
                "the filter is {} bytes long; the limit is {max_len}",
                input.len()
            ),
        )));
    }
    let mut p = Parser {
        src: input,
        bytes: input.as_bytes(),
        pos: 0,
        depth: 0,
        max_depth: max_depth.min(MAX_NESTING),
    };
    p.skip_ws();
    if p.at_end() {
        return Err(ScimError::from(FilterError::new(
            FilterErrorReason::Empty,
            None,
            "the filter is empty",
        )));
    }
    let (filter, _) = p.parse_or(false)?;
    p.skip_ws();
    if !p.at_end() {
        let what = if p.peek() == Some(b')') {
            "an unmatched `)`".to_owned()
        } else {
            format!("`{}`", p.snippet(p.pos))
        };
        return Err(p.error_at(
            p.pos,
            FilterErrorReason::UnexpectedToken,
            &format!("expected `and`, `or` or the end of the filter, found {what}"),
        ));
    }
    Ok(filter)
}

struct Parser<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
    max_depth: usize,
}

/// True for bytes that may continue an attribute name or keyword.
fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'$'
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

impl<'a> Parser<'a> {
    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn peek_at(&self, i: usize) -> Option<u8> {
        self.bytes.get(i).copied()
    }

    fn skip_ws(&mut self) -> usize {
        let start = self.pos;
        while self.peek().is_some_and(is_ws) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// The 1-based column (in characters) of byte offset `at`.
    fn column(&self, at: usize) -> usize {
        let at = at.min(self.src.len());
        let mut i = at;
        while i > 0 && !self.src.is_char_boundary(i) {
            i -= 1;
        }
        self.src.get(..i).map_or(i, |s| s.chars().count()) + 1
    }

    /// A short excerpt of the input starting at `at`, for error details.
    fn snippet(&self, at: usize) -> String {
        let mut start = at.min(self.src.len());
        while start > 0 && !self.src.is_char_boundary(start) {
            start -= 1;
        }
        let rest = self.src.get(start..).unwrap_or("");
        let word: String = rest
            .chars()
            .take_while(|c| !c.is_whitespace())
            .take(24)
            .collect();
        if word.is_empty() {
            rest.chars().take(1).collect()
        } else {
            word
        }
    }

    fn error_at(&self, at: usize, reason: FilterErrorReason, what: &str) -> ScimError {
        ScimError::from(FilterError::new(
            reason,
            Some(at),
            format!("{what} at column {}", self.column(at)),
        ))
    }

    /// [`FilterErrorReason::UnexpectedEnd`] at the end of the input, else `otherwise`.
    fn end_or(&self, otherwise: FilterErrorReason) -> FilterErrorReason {
        if self.at_end() {
            FilterErrorReason::UnexpectedEnd
        } else {
            otherwise
        }
    }

    fn found(&self) -> String {
        if self.at_end() {
            "the end of the filter".to_owned()
        } else {
            format!("`{}`", self.snippet(self.pos))
        }
    }

    fn enter(&mut self, at: usize) -> Result<(), ScimError> {
        self.depth += 1;
        if self.depth > self.max_depth {
            return Err(self.error_at(
                at,
                FilterErrorReason::TooDeep,
                &format!(
                    "the filter nests deeper than the limit of {} levels",
                    self.max_depth
                ),
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// The word (name bytes) starting at the current position, without consuming it.
    fn word_at(&self, at: usize) -> &'a [u8] {
        let mut end = at;
        while self.bytes.get(end).copied().is_some_and(is_name_byte) {
            end += 1;
        }
        self.bytes.get(at..end).unwrap_or(&[])
    }

    /// Consumes the keyword `kw` (case-insensitive) if it is the next word after whitespace.
    /// The position is left unchanged otherwise.
    fn eat_keyword(&mut self, kw: &[u8]) -> bool {
        let save = self.pos;
        self.skip_ws();
        let w = self.word_at(self.pos);
        if w.eq_ignore_ascii_case(kw) {
            self.pos += w.len();
            true
        } else {
            self.pos = save;
            false
        }
    }

    fn check_height(&self, h: usize, at: usize) -> Result<(), ScimError> {
        if h > MAX_TREE_DEPTH {
            return Err(self.error_at(
                at,
                FilterErrorReason::TooDeep,
                &format!("the filter has more than {MAX_TREE_DEPTH} chained or nested terms"),
            ));
        }
        Ok(())
    }

    /// `or` chain. Returns the filter and the height of its tree.
    fn parse_or(&mut self, in_value_path: bool) -> Result<(Filter, usize), ScimError> {
        let (mut left, mut h) = self.parse_and(in_value_path)?;
        loop {
            let at = self.pos;
            if !self.eat_keyword(b"or") {
                return Ok((left, h));
            }
            self.expect_ws_after_keyword("or")?;
            let (right, rh) = self.parse_and(in_value_path)?;
            h = h.max(rh) + 1;
            self.check_height(h, at)?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
    }

    fn parse_and(&mut self, in_value_path: bool) -> Result<(Filter, usize), ScimError> {
        let (mut left, mut h) = self.parse_unary(in_value_path)?;
        loop {
            let at = self.pos;
            if !self.eat_keyword(b"and") {
                return Ok((left, h));
            }
            self.expect_ws_after_keyword("and")?;
            let (right, rh) = self.parse_unary(in_value_path)?;
            h = h.max(rh) + 1;
            self.check_height(h, at)?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
    }

    /// After `and`/`or` the next term must follow (a `(` may follow directly).
    fn expect_ws_after_keyword(&mut self, kw: &str) -> Result<(), ScimError> {
        let spaces = self.skip_ws();
        if self.at_end() {
            return Err(self.error_at(
                self.pos,
                FilterErrorReason::UnexpectedEnd,
                &format!("expected a filter after `{kw}`, found the end of the filter"),
            ));
        }
        if spaces == 0 && self.peek() != Some(b'(') {
            return Err(self.error_at(
                self.pos,
                self.end_or(FilterErrorReason::UnexpectedToken),
                &format!("expected a space after `{kw}`, found {}", self.found()),
            ));
        }
        Ok(())
    }

    /// A parenthesised filter, `not (...)`, or an attribute expression / value path.
    fn parse_unary(&mut self, in_value_path: bool) -> Result<(Filter, usize), ScimError> {
        self.skip_ws();
        let start = self.pos;
        match self.peek() {
            None => Err(self.error_at(
                start,
                FilterErrorReason::UnexpectedEnd,
                "expected a filter, found the end of the filter",
            )),
            Some(b'(') => {
                self.pos += 1;
                self.enter(start)?;
                let inner = self.parse_group(in_value_path, start)?;
                self.leave();
                Ok(inner)
            }
            Some(b) if b.eq_ignore_ascii_case(&b'n') && self.is_not_operator() => {
                // `not` followed by `(`: the negation (an attribute may also be called `not`).
                self.pos += 3;
                self.skip_ws();
                let open = self.pos;
                self.pos += 1;
                self.enter(start)?;
                let (inner, h) = self.parse_group(in_value_path, open)?;
                self.leave();
                Ok((Filter::Not(Box::new(inner)), h + 1))
            }
            Some(_) => self.parse_attr_exp(in_value_path),
        }
    }

    /// True when the input at the current position is `not` followed by optional
    /// whitespace and `(`.
    fn is_not_operator(&self) -> bool {
        if !self.word_at(self.pos).eq_ignore_ascii_case(b"not") {
            return false;
        }
        let mut i = self.pos + 3;
        while self.peek_at(i).is_some_and(is_ws) {
            i += 1;
        }
        self.peek_at(i) == Some(b'(')
    }

    /// The inside of `( ... )`, the `(` consumed already.
    fn parse_group(
        &mut self,
        in_value_path: bool,
        open: usize,
    ) -> Result<(Filter, usize), ScimError> {
        self.skip_ws();
        if self.peek() == Some(b')') {
            return Err(self.error_at(
                self.pos,
                FilterErrorReason::UnexpectedToken,
                "expected a filter inside `( )`, found `)`",
            ));
        }
        let (inner, h) = self.parse_or(in_value_path)?;
        self.skip_ws();
        match self.peek() {
            Some(b')') => {
                self.pos += 1;
                Ok((inner, h))
            }
            None => Err(self.error_at(
                self.pos,
                FilterErrorReason::UnexpectedEnd,
                &format!(
                    "expected `)` to close the `(` at column {}, found the end of the filter",
                    self.column(open)
                ),
            )),
            Some(_) => Err(self.error_at(
                self.pos,
                FilterErrorReason::UnexpectedToken,
                &format!("expected `and`, `or` or `)`, found {}", self.found()),
            )),
        }
    }

    /// `attrPath pr`, `attrPath op value`, `attrPath[valFilter]`, or Entra's
    /// `attrPath[valFilter].subAttr op value`.
    fn parse_attr_exp(&mut self, in_value_path: bool) -> Result<(Filter, usize), ScimError> {
        let start = self.pos;
        let path = self.parse_attr_path()?;
        if self.peek() == Some(b'[') {
            if in_value_path {
                return Err(self.error_at(
                    self.pos,
                    FilterErrorReason::InvalidAttributePath,
                    "value filters cannot nest: unexpected `[` inside `[ ]`",
                ));
            }
            if path.sub_attr.is_some() {
                return Err(self.error_at(
                    self.pos, FilterErrorReason::InvalidAttributePath,
                    &format!(
                        "a value filter `[` must follow an attribute, not the sub-attribute `{path}`"
                    ),
                ));
            }
            let open = self.pos;
            self.pos += 1;
            self.enter(open)?;
            self.skip_ws();
            if self.peek() == Some(b']') {
                return Err(self.error_at(
                    self.pos,
                    FilterErrorReason::UnexpectedToken,
                    "expected a filter inside `[ ]`, found `]`",
                ));
            }
            let (inner, h) = self.parse_or(true)?;
            self.skip_ws();
            match self.peek() {
                Some(b']') => self.pos += 1,
                None => {
                    return Err(self.error_at(
                        self.pos,
                        FilterErrorReason::UnexpectedEnd,
                        &format!(
                        "expected `]` to close the `[` at column {}, found the end of the filter",
                        self.column(open)
                    ),
                    ))
                }
                Some(_) => {
                    return Err(self.error_at(
                        self.pos,
                        FilterErrorReason::UnexpectedToken,
                        &format!("expected `and`, `or` or `]`, found {}", self.found()),
                    ))
                }
            }
            self.leave();
            // Entra ID: `emails[type eq "work"].value eq "x"` means
            // `emails[type eq "work" and value eq "x"]`.
            if self.peek() == Some(b'.') {
                self.pos += 1;
                let sub_at = self.pos;
                let sub = self.parse_name(&|| "a sub-attribute name after `].`".to_owned())?;
                let (leaf, _) = self.parse_after_path(AttrPath::new(sub), sub_at)?;
                let filter = Filter::ValuePath {
                    path,
                    filter: Box::new(Filter::And(Box::new(inner), Box::new(leaf))),
                };
                self.check_height(h + 2, start)?;
                return Ok((filter, h + 2));
            }
            return Ok((
                Filter::ValuePath {
                    path,
                    filter: Box::new(inner),
                },
                h + 1,
            ));
        }
        self.parse_after_path(path, start)
    }

    /// What follows an attribute path: ` pr` or ` op value`.
    fn parse_after_path(
        &mut self,
        path: AttrPath,
        path_at: usize,
    ) -> Result<(Filter, usize), ScimError> {
        let path_end = self.pos;
        let ws = self.skip_ws();
        let op_at = self.pos;
        let word = self.word_at(op_at);
        if ws == 0 || word.is_empty() {
            let what = if ws == 0 && !self.at_end() {
                format!(
                    "expected a space and a comparison operator after `{}`, found {}",
                    self.src.get(path_at..path_end).unwrap_or(""),
                    self.found()
                )
            } else {
                format!(
                    "expected a comparison operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) after `{}`, found {}",
                    self.src.get(path_at..path_end).unwrap_or(""),
                    self.found()
                )
            };
            return Err(self.error_at(
                op_at,
                self.end_or(FilterErrorReason::UnknownOperator),
                &what,
            ));
        }
        let op = match word {
            [a, b] => match [a.to_ascii_lowercase(), b.to_ascii_lowercase()] {
                [b'e', b'q'] => Some(CompareOp::Eq),
                [b'n', b'e'] => Some(CompareOp::Ne),
                [b'c', b'o'] => Some(CompareOp::Co),
                [b's', b'w'] => Some(CompareOp::Sw),
                [b'e', b'w'] => Some(CompareOp::Ew),
                [b'g', b't'] => Some(CompareOp::Gt),
                [b'g', b'e'] => Some(CompareOp::Ge),
                [b'l', b't'] => Some(CompareOp::Lt),
                [b'l', b'e'] => Some(CompareOp::Le),
                [b'p', b'r'] => {
                    self.pos += 2;
                    return Ok((Filter::Present(path), 1));
                }
                _ => None,
            },
            _ => None,
        };
        let Some(op) = op else {
            if path.urn.is_none()
                && path.sub_attr.is_none()
                && path.name.eq_ignore_ascii_case("not")
            {
                return Err(self.error_at(
                    op_at,
                    FilterErrorReason::UnexpectedToken,
                    "expected `(` after `not` (RFC 7644 writes negation as `not (filter)`)",
                ));
            }
            return Err(self.error_at(
                op_at, FilterErrorReason::UnknownOperator,
                &format!(
                    "expected a comparison operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) after `{}`, found `{}`",
                    self.src.get(path_at..path_end).unwrap_or(""),
                    String::from_utf8_lossy(word)
                ),
            ));
        };
        self.pos += 2;
        if self.skip_ws() == 0 && !self.at_end() {
            return Err(self.error_at(
                self.pos,
                self.end_or(FilterErrorReason::UnexpectedToken),
                &format!(
                    "expected a space after `{}`, found {}",
                    op_str(op),
                    self.found()
                ),
            ));
        }
        let value = self.parse_comp_value(op)?;
        Ok((Filter::Compare { path, op, value }, 1))
    }
}

fn op_str(op: CompareOp) -> &'static str {
    op.as_str()
}

mod literals;
#[cfg(test)]
mod tests;
