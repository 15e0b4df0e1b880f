//! The lexemes of a filter: comparison values (strings with their escapes, numbers,
//! keywords) and attribute names and paths.

use crate::error::{FilterErrorReason, ScimError};
use crate::schema::AttrPath;

use super::super::ast::{CompValue, CompareOp};
use super::{is_name_byte, is_ws, op_str, Parser};

impl Parser<'_> {
    /// `false / null / true / number / string`.
    pub(super) fn parse_comp_value(&mut self, op: CompareOp) -> Result<CompValue, ScimError> {
        let at = self.pos;
        match self.peek() {
            None => Err(self.error_at(
                at,
                FilterErrorReason::UnexpectedEnd,
                &format!(
                    "expected a value after `{}`, found the end of the filter",
                    op_str(op)
                ),
            )),
            Some(b'"') => self.parse_string().map(CompValue::String),
            Some(b'-' | b'0'..=b'9') => self.parse_number().map(CompValue::Number),
            Some(_) => {
                let w = self.word_at(at);
                let lit = if w.eq_ignore_ascii_case(b"true") {
                    Some(CompValue::Bool(true))
                } else if w.eq_ignore_ascii_case(b"false") {
                    Some(CompValue::Bool(false))
                } else if w.eq_ignore_ascii_case(b"null") {
                    Some(CompValue::Null)
                } else {
                    None
                };
                match lit {
                    Some(v) if self.peek_at(at + w.len()).is_none_or(|b| b != b'.') => {
                        self.pos += w.len();
                        Ok(v)
                    }
                    _ => Err(self.error_at(
                        at, self.end_or(FilterErrorReason::UnexpectedToken),
                        &format!(
                            "expected a value (a double-quoted string, a number, true, false or null) after `{}`, found {}",
                            op_str(op),
                            self.found()
                        ),
                    )),
                }
            }
        }
    }

    /// A JSON string (RFC 8259 §7), the opening quote at the current position.
    pub(super) fn parse_string(&mut self) -> Result<String, ScimError> {
        let open = self.pos;
        self.pos += 1;
        let start = self.pos;
        // Fast path: no escapes, copy the slice once.
        while let Some(b) = self.peek() {
            match b {
                b'"' => {
                    let s = self.src.get(start..self.pos).unwrap_or("").to_owned();
                    self.pos += 1;
                    return Ok(s);
                }
                b'\\' => break,
                0x00..=0x1f => return Err(self.control_char_error()),
                _ => self.pos += 1,
            }
        }
        let mut out = String::from(self.src.get(start..self.pos).unwrap_or(""));
        loop {
            let run = self.pos;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            out.push_str(self.src.get(run..self.pos).unwrap_or(""));
            match self.peek() {
                None => {
                    return Err(self.error_at(
                        open,
                        FilterErrorReason::InvalidString,
                        "the string starting here has no closing `\"`",
                    ))
                }
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    let esc_at = self.pos;
                    self.pos += 1;
                    let c = match self.peek() {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            self.pos += 1;
                            let c = self.parse_unicode_escape(esc_at)?;
                            out.push(c);
                            continue;
                        }
                        _ => {
                            return Err(self.error_at(
                                esc_at, FilterErrorReason::InvalidString,
                                "invalid escape in string (expected one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)",
                            ))
                        }
                    };
                    self.pos += 1;
                    out.push(c);
                }
                Some(_) => return Err(self.control_char_error()),
            }
        }
    }

    pub(super) fn control_char_error(&self) -> ScimError {
        self.error_at(
            self.pos,
            FilterErrorReason::InvalidString,
            "control characters must be escaped inside a string",
        )
    }

    pub(super) fn hex4(&mut self, esc_at: usize) -> Result<u16, ScimError> {
        let mut v: u16 = 0;
        for _ in 0..4 {
            let d = match self.peek() {
                Some(b @ b'0'..=b'9') => b - b'0',
                Some(b @ b'a'..=b'f') => b - b'a' + 10,
                Some(b @ b'A'..=b'F') => b - b'A' + 10,
                _ => {
                    return Err(self.error_at(
                        esc_at,
                        FilterErrorReason::InvalidString,
                        "`\\u` must be followed by 4 hex digits",
                    ))
                }
            };
            v = (v << 4) | u16::from(d);
            self.pos += 1;
        }
        Ok(v)
    }

    /// The `XXXX` of `\uXXXX` (the `\u` consumed), with UTF-16 surrogate pairs.
    pub(super) fn parse_unicode_escape(&mut self, esc_at: usize) -> Result<char, ScimError> {
        let hi = self.hex4(esc_at)?;
        if (0xD800..0xDC00).contains(&hi) {
            if self.peek() == Some(b'\\') && self.peek_at(self.pos + 1) == Some(b'u') {
                self.pos += 2;
                let lo = self.hex4(esc_at)?;
                if (0xDC00..0xE000).contains(&lo) {
                    let c = 0x10000 + ((u32::from(hi) - 0xD800) << 10) + (u32::from(lo) - 0xDC00);
                    if let Some(ch) = char::from_u32(c) {
                        return Ok(ch);
                    }
                }
            }
            return Err(self.error_at(
                esc_at,
                FilterErrorReason::InvalidString,
                "a `\\u` high surrogate must be followed by a `\\u` low surrogate",
            ));
        }
        char::from_u32(u32::from(hi)).ok_or_else(|| {
            self.error_at(
                esc_at,
                FilterErrorReason::InvalidString,
                "a `\\u` escape names a lone low surrogate",
            )
        })
    }

    /// A JSON number: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    pub(super) fn parse_number(&mut self) -> Result<serde_json::Number, ScimError> {
        let start = self.pos;
        let bad = |p: &Self| {
            p.error_at(
                start,
                FilterErrorReason::InvalidNumber,
                &format!("`{}` is not a valid number", p.snippet(start)),
            )
        };
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                while self.peek().is_some_and(|b| b.is_ascii_digit()) {
                    self.pos += 1;
                }
            }
            _ => return Err(bad(self)),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
                return Err(bad(self));
            }
            while self.peek().is_some_and(|b| b.is_ascii_digit()) {
                self.pos += 1;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
                return Err(bad(self));
            }
            while self.peek().is_some_and(|b| b.is_ascii_digit()) {
                self.pos += 1;
            }
        }
        if self.peek().is_some_and(|b| is_name_byte(b) || b == b'.') {
            return Err(bad(self));
        }
        let text = self.src.get(start..self.pos).unwrap_or("");
        if !text.contains(['.', 'e', 'E']) {
            if let Ok(u) = text.parse::<u64>() {
                return Ok(u.into());
            }
            if let Ok(i) = text.parse::<i64>() {
                return Ok(i.into());
            }
        }
        // Rust's float parsing rounds correctly, so printed numbers parse back unchanged.
        text.parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .ok_or_else(|| {
                self.error_at(
                    start,
                    FilterErrorReason::InvalidNumber,
                    &format!("the number `{text}` is out of range"),
                )
            })
    }

    /// An RFC 7643 `ATTRNAME` (or `$ref`) at the current position. `expected` describes what was expected; it is only called on error.
    pub(super) fn parse_name(
        &mut self,
        expected: &dyn Fn() -> String,
    ) -> Result<String, ScimError> {
        let at = self.pos;
        let w = self.word_at(at);
        let valid =
            w == b"$ref" || (w.first().is_some_and(u8::is_ascii_alphabetic) && !w.contains(&b'$'));
        if !valid {
            return Err(self.error_at(
                at,
                self.end_or(FilterErrorReason::UnexpectedToken),
                &format!("expected {}, found {}", expected(), self.found()),
            ));
        }
        self.pos += w.len();
        Ok(self.src.get(at..self.pos).unwrap_or("").to_owned())
    }

    /// `[URI ":"] ATTRNAME *1subAttr` (RFC 7644 §3.10).
    pub(super) fn parse_attr_path(&mut self) -> Result<AttrPath, ScimError> {
        let start = self.pos;
        let is_urn = self
            .bytes
            .get(start..start + 4)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"urn:"));
        let urn = if is_urn {
            // The URN runs up to the last `:` of the path token.
            let mut end = start;
            let mut last_colon = None;
            while let Some(b) = self.peek_at(end) {
                if is_ws(b) || matches!(b, b'[' | b']' | b'(' | b')' | b'"') {
                    break;
                }
                if b == b':' {
                    last_colon = Some(end);
                }
                end += 1;
            }
            match last_colon {
                Some(c) if c + 1 < end && c > start + 3 => {
                    self.pos = c + 1;
                    Some(self.src.get(start..c).unwrap_or("").to_owned())
                }
                _ => {
                    return Err(self.error_at(
                        start,
                        FilterErrorReason::InvalidAttributePath,
                        &format!(
                            "`{}` names a schema but no attribute (expected `urn:...:attribute`)",
                            self.src.get(start..end).unwrap_or("")
                        ),
                    ))
                }
            }
        } else {
            None
        };
        let name = self.parse_name(&|| "an attribute path".to_owned())?;
        let sub_attr = if self.peek() == Some(b'.') {
            self.pos += 1;
            Some(self.parse_name(&|| format!("a sub-attribute name after `{name}.`"))?)
        } else {
            None
        };
        if self.peek() == Some(b'.') {
            return Err(self.error_at(
                self.pos,
                FilterErrorReason::InvalidAttributePath,
                "an attribute path has at most one sub-attribute (`attribute.subAttribute`)",
            ));
        }
        Ok(AttrPath {
            urn,
            name,
            sub_attr,
        })
    }
}
