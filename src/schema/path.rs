//! Attribute paths (`userName`, `name.givenName`, `urn:...:User:manager.value`).

use std::fmt;

use crate::error::ScimError;

/// A path to an attribute or sub-attribute, optionally qualified by a schema URN
/// (RFC 7644 §3.10: `attrPath = [URI ":"] ATTRNAME *1subAttr`).
///
/// Names are kept as written; resolution against a [`SchemaRegistry`](super::SchemaRegistry)
/// is case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AttrPath {
    /// The schema URN, if the path was qualified (`urn:ietf:params:scim:schemas:core:2.0:User`).
    pub urn: Option<String>,
    /// The attribute name.
    pub name: String,
    /// The sub-attribute name, if any.
    pub sub_attr: Option<String>,
}

impl AttrPath {
    /// An unqualified path to a top-level attribute.
    pub fn new(name: impl Into<String>) -> Self {
        AttrPath {
            urn: None,
            name: name.into(),
            sub_attr: None,
        }
    }

    /// Builder: with a sub-attribute.
    pub fn with_sub(mut self, sub: impl Into<String>) -> Self {
        self.sub_attr = Some(sub.into());
        self
    }

    /// Builder: qualified with a schema URN.
    pub fn with_urn(mut self, urn: impl Into<String>) -> Self {
        self.urn = Some(urn.into());
        self
    }

    /// Parses a plain attribute path (no value filter). A path starting with `urn:` is split at
    /// its last `:`; what follows is `name[.sub]`. Names must match RFC 7643 `ATTRNAME`
    /// (`ALPHA *(nameChar)`, nameChar = `-` / `_` / DIGIT / ALPHA), plus `$ref`.
    pub fn parse(input: &str) -> Result<AttrPath, ScimError> {
        let qualified = input
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("urn:"));
        let (urn, rest) = if qualified {
            match input.rsplit_once(':') {
                Some((u, r)) if !r.is_empty() => (Some(u), r),
                _ => {
                    return Err(ScimError::InvalidPath(format!(
                        "`{input}` names a schema but no attribute"
                    )))
                }
            }
        } else {
            (None, input)
        };
        let (name, sub) = match rest.split_once('.') {
            Some((n, s)) => (n, Some(s)),
            None => (rest, None),
        };
        if !is_attr_name(name) {
            return Err(ScimError::InvalidPath(format!(
                "`{input}`: `{name}` is not a valid attribute name"
            )));
        }
        if let Some(s) = sub {
            if !is_attr_name(s) {
                return Err(ScimError::InvalidPath(format!(
                    "`{input}`: `{s}` is not a valid sub-attribute name"
                )));
            }
        }
        Ok(AttrPath {
            urn: urn.map(str::to_owned),
            name: name.to_owned(),
            sub_attr: sub.map(str::to_owned),
        })
    }
}

/// True when `s` is an RFC 7643 `ATTRNAME` (or the special `$ref`).
pub(crate) fn is_attr_name(s: &str) -> bool {
    if s == "$ref" {
        return true;
    }
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(urn) = &self.urn {
            write!(f, "{urn}:")?;
        }
        f.write_str(&self.name)?;
        if let Some(sub) = &self.sub_attr {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths() {
        let p = AttrPath::parse("name.givenName").unwrap();
        assert_eq!(p, AttrPath::new("name").with_sub("givenName"));
        let p = AttrPath::parse(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
        )
        .unwrap();
        assert_eq!(
            p.urn.as_deref(),
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
        );
        assert_eq!(p.name, "manager");
        assert_eq!(p.sub_attr.as_deref(), Some("value"));
        assert_eq!(
            p.to_string(),
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value"
        );
        assert_eq!(
            AttrPath::parse("members.$ref").unwrap().sub_attr.as_deref(),
            Some("$ref")
        );
    }

    #[test]
    fn rejects_bad_paths() {
        for bad in [
            "",
            "1abc",
            "name.",
            "a b",
            "urn:foo:",
            "name.given.x",
            "na{me",
        ] {
            let err = AttrPath::parse(bad).unwrap_err();
            assert_eq!(
                err.scim_type(),
                Some(crate::error::ScimType::InvalidPath),
                "{bad}"
            );
        }
    }
}
