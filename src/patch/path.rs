//! The PATCH `path` grammar (RFC 7644 §3.5.2):
//! `PATH = attrPath / valuePath [subAttr]`, `valuePath = attrPath "[" valFilter "]"`.

use std::fmt;

use crate::error::ScimError;
use crate::filter::Filter;
use crate::schema::AttrPath;

/// The longest `path` accepted, in bytes. Far above anything an IdP sends; it bounds the work
/// and the size of error details.
pub const MAX_PATH_LEN: usize = 4096;

/// A parsed PATCH `path` (RFC 7644 §3.5.2).
///
/// - `name.givenName`: `attr` carries the sub-attribute, `filter` and `sub_attr` are `None`.
/// - `emails[type eq "work"]`: `attr` is `emails`, `filter` is `type eq "work"` (paths inside
///   are relative to the element).
/// - `addresses[type eq "work"].formatted`: as above, with `sub_attr` `formatted`.
/// - `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager`: `attr.urn` is set.
///
/// ```
/// use scimkit::patch::PatchPath;
///
/// let p = PatchPath::parse(r#"addresses[type eq "work"].streetAddress"#)?;
/// assert_eq!(p.attr.name, "addresses");
/// assert_eq!(p.sub_attr.as_deref(), Some("streetAddress"));
/// assert_eq!(p.to_string(), r#"addresses[type eq "work"].streetAddress"#);
/// # Ok::<(), scimkit::error::ScimError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    /// The attribute (with its sub-attribute when there is no filter).
    pub attr: AttrPath,
    /// The value selection filter, relative to the elements of `attr`.
    pub filter: Option<Filter>,
    /// The sub-attribute after a value filter (`].value`).
    pub sub_attr: Option<String>,
}

impl PatchPath {
    /// A path to a plain attribute (no filter).
    pub fn attribute(attr: AttrPath) -> Self {
        PatchPath {
            attr,
            filter: None,
            sub_attr: None,
        }
    }

    /// Parses a PATCH path. Errors are `invalidPath` and name the 1-based column of the
    /// problem; a malformed filter inside `[ ]` is reported as `invalidPath` too, with the
    /// filter parser's own explanation.
    pub fn parse(input: &str) -> Result<PatchPath, ScimError> {
        if input.len() > MAX_PATH_LEN {
            return Err(ScimError::InvalidPath(format!(
                "the path is {} bytes long; the limit is {MAX_PATH_LEN}",
                input.len()
            )));
        }
        if input.trim().is_empty() {
            return Err(ScimError::InvalidPath("the path is empty".to_owned()));
        }
        // Attribute paths never contain `[`, quotes or spaces, so the first `[` starts the
        // value filter.
        let Some(open) = input.find('[') else {
            let attr = parse_attr(input, 0)?;
            return Ok(PatchPath::attribute(attr));
        };
        let head = input.get(..open).unwrap_or("");
        if head.is_empty() {
            return Err(invalid(input, 0, "expected an attribute name before `[`"));
        }
        let attr = parse_attr(head, 0)?;
        if attr.sub_attr.is_some() {
            return Err(invalid(
                input,
                open,
                "a value filter must follow the attribute itself, not a sub-attribute",
            ));
        }
        let close = matching_bracket(input, open)?;
        let inner = input.get(open + 1..close).unwrap_or("");
        if inner.trim().is_empty() {
            return Err(invalid(input, open + 1, "the value filter is empty"));
        }
        let spaced = space_before_quotes(inner);
        let filter = Filter::parse(&spaced).map_err(|e| {
            ScimError::InvalidPath(format!(
                "`{}`: the value filter starting at column {} is invalid: {} (counting columns within the filter)",
                excerpt(input),
                column(input, open + 1),
                e.detail()
            ))
        })?;
        if contains_value_path(&filter) {
            return Err(invalid(
                input,
                open + 1,
                "value filters cannot be nested inside a PATCH path",
            ));
        }
        let rest = input.get(close + 1..).unwrap_or("");
        let sub_attr = if rest.is_empty() {
            None
        } else if let Some(sub) = rest.strip_prefix('.') {
            if !is_attr_name(sub) {
                return Err(invalid(
                    input,
                    close + 2,
                    "expected a sub-attribute name after `].`",
                ));
            }
            Some(sub.to_owned())
        } else {
            return Err(invalid(
                input,
                close + 1,
                "expected `.subAttribute` or the end of the path after `]`",
            ));
        };
        Ok(PatchPath {
            attr,
            filter: Some(filter),
            sub_attr,
        })
    }

    /// The sub-attribute the path ends at, wherever it was written.
    pub fn sub(&self) -> Option<&str> {
        self.sub_attr.as_deref().or(self.attr.sub_attr.as_deref())
    }
}

impl fmt::Display for PatchPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.attr)?;
        if let Some(filter) = &self.filter {
            write!(f, "[{filter}]")?;
        }
        if let Some(sub) = &self.sub_attr {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for PatchPath {
    type Err = ScimError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PatchPath::parse(s)
    }
}

fn parse_attr(text: &str, offset: usize) -> Result<AttrPath, ScimError> {
    if let Some((i, c)) = text
        .char_indices()
        .find(|(_, c)| c.is_whitespace() || matches!(c, ']' | '"' | '(' | ')'))
    {
        return Err(invalid(
            text,
            offset + i,
            &format!("unexpected `{}` in an attribute path", c.escape_default()),
        ));
    }
    AttrPath::parse(text)
        .map_err(|e| ScimError::InvalidPath(format!("{} (at column {})", e.detail(), offset + 1)))
}

/// The byte offset of the `]` closing the `[` at `open`, skipping quoted strings.
fn matching_bracket(input: &str, open: usize) -> Result<usize, ScimError> {
    let bytes = input.as_bytes();
    let mut i = open + 1;
    let mut depth = 1usize;
    let mut in_string = false;
    while let Some(&b) = bytes.get(i) {
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b'[' => depth += 1,
                b']' => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(i);
                    }
                }
                _ => {}
            }
        }
        i += 1;
    }
    let what = if in_string {
        "unterminated string in the value filter"
    } else {
        "`[` is never closed"
    };
    Err(invalid(input, open, what))
}

/// RFC 7644's own PATCH example writes `members[value eq\"2819c223...\"]`, with no space
/// between the operator and the string, which the filter grammar (`compareOp SP compValue`)
/// requires. A quote never follows a name character in a valid filter, so inserting the
/// space there is unambiguous.
fn space_before_quotes(inner: &str) -> std::borrow::Cow<'_, str> {
    let bytes = inner.as_bytes();
    let mut needs = false;
    let mut in_string = false;
    let mut prev = b' ';
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if in_string {
            if b == b'\\' {
                i += 1;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
            needs |= prev.is_ascii_alphabetic();
        }
        prev = b;
        i += 1;
    }
    if !needs {
        return std::borrow::Cow::Borrowed(inner);
    }
    let mut out = String::with_capacity(inner.len() + 4);
    let mut in_string = false;
    let mut escaped = false;
    let mut prev = ' ';
    for c in inner.chars() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            if prev.is_ascii_alphabetic() {
                out.push(' ');
            }
        }
        out.push(c);
        prev = c;
    }
    std::borrow::Cow::Owned(out)
}

fn contains_value_path(f: &Filter) -> bool {
    // The parser bounds the tree depth, so this walk is bounded too.
    match f {
        Filter::ValuePath { .. } => true,
        Filter::And(a, b) | Filter::Or(a, b) => contains_value_path(a) || contains_value_path(b),
        Filter::Not(a) => contains_value_path(a),
        Filter::Compare { .. } | Filter::Present(_) => false,
    }
}

/// The 1-based column (in characters) of byte offset `at` of `s`.
fn column(s: &str, at: usize) -> usize {
    let mut i = at.min(s.len());
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    s.get(..i).map_or(i, |p| p.chars().count()) + 1
}

/// Untrusted input quoted in a detail, shortened to 160 characters (room for a URN path).
pub(crate) fn excerpt(s: &str) -> String {
    crate::resource::shorten(s, 160)
}

/// RFC 7643 `ATTRNAME` (`ALPHA *(nameChar)`), or `$ref`.
fn is_attr_name(s: &str) -> bool {
    let mut chars = s.chars();
    s == "$ref"
        || (chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
}

fn invalid(input: &str, at: usize, what: &str) -> ScimError {
    ScimError::InvalidPath(format!(
        "`{}`: {what} at column {}",
        excerpt(input),
        column(input, at)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ScimType;

    #[test]
    fn parses_every_rfc_shape() {
        let p = PatchPath::parse("userName").unwrap();
        assert_eq!(p, PatchPath::attribute(AttrPath::new("userName")));
        let p = PatchPath::parse("name.givenName").unwrap();
        assert_eq!(p.attr, AttrPath::new("name").with_sub("givenName"));
        assert_eq!(p.sub(), Some("givenName"));
        let p = PatchPath::parse(r#"emails[type eq "work"]"#).unwrap();
        assert_eq!(p.attr, AttrPath::new("emails"));
        assert!(p.filter.is_some());
        assert_eq!(p.sub_attr, None);
        let p = PatchPath::parse(r#"addresses[type eq "work"].formatted"#).unwrap();
        assert_eq!(p.sub(), Some("formatted"));
        let p =
            PatchPath::parse("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager")
                .unwrap();
        assert_eq!(
            p.attr.urn.as_deref(),
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
        );
        assert_eq!(p.attr.name, "manager");
        // A `]` inside a quoted comparison value does not close the filter.
        let p = PatchPath::parse(r#"emails[value eq "a]b"].display"#).unwrap();
        assert_eq!(p.sub(), Some("display"));
        // RFC 7644 §3.5.2.2 example spelling: no space before the string.
        let p = PatchPath::parse(r#"members[value eq"2819c223"]"#).unwrap();
        assert_eq!(p.to_string(), r#"members[value eq "2819c223"]"#);
        let p = PatchPath::parse(r#"emails[value eq "x\"y" and type eq"work"]"#).unwrap();
        assert_eq!(
            p.to_string(),
            r#"emails[value eq "x\"y" and type eq "work"]"#
        );
    }

    #[test]
    fn round_trips_through_display() {
        for s in [
            "userName",
            "name.givenName",
            r#"emails[type eq "work"]"#,
            r#"addresses[type eq "work"].streetAddress"#,
            r#"members[value eq "2819c223-7f76-453a-919d-413861904646"]"#,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
        ] {
            let p = PatchPath::parse(s).unwrap();
            assert_eq!(p.to_string(), s);
            assert_eq!(PatchPath::parse(&p.to_string()).unwrap(), p);
        }
    }

    #[test]
    fn rejects_bad_paths_with_a_column() {
        let cases = [
            ("", "empty"),
            ("   ", "empty"),
            ("[type eq \"work\"]", "column 1"),
            ("emails[type eq \"work\"", "column 7"),
            ("emails[type eq \"work]", "column 7"),
            ("emails[]", "column 8"),
            ("emails[type eq \"work\"]x", "column 23"),
            ("emails[type eq \"work\"].", "column 24"),
            ("emails[type eq \"work\"].1a", "column 24"),
            ("name.givenName[type eq \"x\"]", "column 15"),
            ("emails[type eq]", "value filter"),
            ("emails[type eq \"a\"][type eq \"b\"]", "column 20"),
            ("user name", "column 5"),
            ("1abc", "not a valid attribute name"),
            ("urn:foo:", "no attribute"),
        ];
        for (input, needle) in cases {
            let err = PatchPath::parse(input).unwrap_err();
            assert_eq!(err.scim_type(), Some(ScimType::InvalidPath), "{input}");
            assert!(
                err.detail().contains(needle),
                "{input}: {} lacks {needle}",
                err.detail()
            );
        }
        let long = "a".repeat(MAX_PATH_LEN + 1);
        assert!(PatchPath::parse(&long).is_err());
    }
}
