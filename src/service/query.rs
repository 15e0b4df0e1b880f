//! Query-string and request-body helpers.

use crate::error::ScimError;

/// Decodes one `application/x-www-form-urlencoded` component: `+` is a space, `%XX` a byte
/// (RFC 7644 §3.4.2 query parameters; Entra encodes spaces as `+`). Invalid escapes are kept
/// literally; the result must be UTF-8.
pub(crate) fn form_decode(input: &str) -> Result<String, ScimError> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|c| hex_val(*c));
                let lo = bytes.get(i + 2).and_then(|c| hex_val(*c));
                match (hi, lo) {
                    (Some(h), Some(l)) => {
                        out.push(h * 16 + l);
                        i += 3;
                    }
                    _ => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| {
        ScimError::BadRequest("a query parameter is not valid UTF-8 once decoded".to_owned())
    })
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Splits and decodes a query string into `(name, value)` pairs, in order.
pub(crate) fn parse_query(query: &str) -> Result<Vec<(String, String)>, ScimError> {
    let mut out = Vec::new();
    for part in query.split('&') {
        if part.is_empty() {
            continue;
        }
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        out.push((form_decode(k)?, form_decode(v)?));
    }
    Ok(out)
}

/// Percent-decodes one URL path segment (no `+` handling: in paths `+` is literal).
pub(crate) fn path_decode(segment: &str) -> Result<String, ScimError> {
    if !segment.contains('%') {
        return Ok(segment.to_owned());
    }
    form_decode(&segment.replace('+', "%2B"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_entra_and_okta_queries() {
        let q = parse_query("filter=userName+eq+%22a%40b.com%22&startIndex=1&count=100").unwrap();
        assert_eq!(q[0], ("filter".into(), "userName eq \"a@b.com\"".into()));
        assert_eq!(q[1], ("startIndex".into(), "1".into()));
        let q = parse_query("filter=userName%20eq%20%22x%22&&excludedAttributes=members").unwrap();
        assert_eq!(q[0].1, "userName eq \"x\"");
        assert_eq!(q[1], ("excludedAttributes".into(), "members".into()));
        assert_eq!(form_decode("100%").unwrap(), "100%");
        assert_eq!(form_decode("%zz").unwrap(), "%zz");
        assert!(form_decode("%ff%fe").is_err());
        assert_eq!(path_decode("a+b%20c").unwrap(), "a+b c");
    }
}
