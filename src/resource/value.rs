//! Type checking and coercion of one attribute value against its definition (RFC 7643 §2).

use serde_json::{Map, Value};

use crate::error::ScimError;
use crate::events::ToleranceKind;
use crate::schema::{AttributeDef, AttributeType};
use crate::settings::Tolerances;

/// Checks `value` against the attribute definition `def` and returns it in canonical form.
///
/// - `null`, an empty array and a complex value with no assigned sub-attribute are
///   "unassigned" (RFC 7643 §2.5) and give `Ok(None)`.
/// - Multi-valued attributes give an array; a single value is wrapped when
///   [`Tolerances::single_value_as_array`] is on (OneLogin sends `emails` as an object).
///   At most one element may carry `primary: true` (RFC 7643 §2.4).
/// - Complex values get canonical sub-attribute names; unknown sub-attributes are dropped
///   ([`Tolerances::ignore_unknown_attributes`]) or rejected with `invalidSyntax`. A bare
///   string given for a complex attribute with a `value` sub-attribute becomes
///   `{"value": ...}` when [`Tolerances::manager_as_string`] is on (Entra's `manager`).
/// - Booleans given as strings (`"True"`, `"false"`) are converted when
///   [`Tolerances::string_booleans`] is on.
/// - `dateTime` must be an RFC 3339 timestamp, `binary` valid base64, `integer` a whole
///   number.
///
/// `path` names the attribute in error details (`emails[1].primary`).
pub fn normalize_value(
    def: &AttributeDef,
    value: &Value,
    tol: &Tolerances,
    path: &str,
) -> Result<Option<Value>, ScimError> {
    if value.is_null() {
        return Ok(None);
    }
    if !def.multi_valued {
        if value.is_array() {
            return Err(ScimError::InvalidValue(format!(
                "attribute `{path}` is single-valued but an array was given"
            )));
        }
        return normalize_single(def, value, tol, path);
    }
    // An element's path (`emails[2]`) is formatted only for an error: a 50,000-member list
    // would otherwise allocate one per element.
    let (items, indexed): (&[Value], bool) = match value {
        Value::Array(items) => (items.as_slice(), true),
        other if tol.single_value_as_array => {
            crate::events::note(ToleranceKind::SingleValueWrapped, path, || {
                format!("wrapped the single value of multi-valued {path} into a list")
            });
            (std::slice::from_ref(other), false)
        }
        other => {
            return Err(ScimError::InvalidValue(format!(
                "attribute `{path}` is multi-valued and expects an array, got {}",
                json_type_name(other)
            )))
        }
    };
    let item_path = |i: usize| {
        if indexed {
            format!("{path}[{i}]")
        } else {
            path.to_owned()
        }
    };
    let mut out = Vec::with_capacity(items.len());
    let mut primaries = 0usize;
    for (i, item) in items.iter().enumerate() {
        if item.is_null() {
            if tol.null_as_absent {
                continue;
            }
            return Err(ScimError::InvalidValue(format!(
                "`{}`: null is not allowed as an element of a multi-valued attribute",
                item_path(i)
            )));
        }
        if item.is_array() {
            return Err(ScimError::InvalidValue(format!(
                "`{}`: nested arrays are not allowed",
                item_path(i)
            )));
        }
        let normalized = match normalize_single(def, item, tol, path) {
            Ok(v) => v,
            // Pure: run again with the element's path for the error's detail.
            Err(_) => normalize_single(def, item, tol, &item_path(i))?,
        };
        if let Some(v) = normalized {
            if v.get("primary") == Some(&Value::Bool(true)) {
                primaries += 1;
            }
            out.push(v);
        }
    }
    if primaries > 1 {
        return Err(ScimError::InvalidValue(format!(
            "attribute `{path}` has {primaries} elements with `primary: true`; at most one is allowed"
        )));
    }
    if out.is_empty() {
        Ok(None)
    } else {
        Ok(Some(Value::Array(out)))
    }
}

/// At most 40 characters of client text for a note's detail.
pub(crate) fn truncated(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}...", s.get(..i).unwrap_or("")),
        None => s.to_owned(),
    }
}

fn normalize_single(
    def: &AttributeDef,
    value: &Value,
    tol: &Tolerances,
    path: &str,
) -> Result<Option<Value>, ScimError> {
    let mismatch = |expected: &str| {
        ScimError::InvalidValue(format!(
            "attribute `{path}` expects {expected}, got {}",
            json_type_name(value)
        ))
    };
    match def.ty {
        AttributeType::Complex => {
            let obj = match value {
                Value::Object(obj) => obj,
                Value::String(_)
                    if tol.manager_as_string && def.sub_attribute("value").is_some() =>
                {
                    // The bare string is the `value` sub-attribute and must pass its type
                    // check (a binary `x509Certificates.value` must still be base64).
                    let Some(sub) = def.sub_attribute("value") else {
                        return Err(mismatch("a complex value (JSON object)"));
                    };
                    let Some(v) = normalize_value(sub, value, tol, &format!("{path}.value"))?
                    else {
                        return Ok(None);
                    };
                    crate::events::note(ToleranceKind::BareStringAsValue, path, || {
                        format!("read the bare string given for {path} as its value")
                    });
                    let mut m = Map::new();
                    m.insert(sub.name.clone(), v);
                    return Ok(Some(Value::Object(m)));
                }
                _ => return Err(mismatch("a complex value (JSON object)")),
            };
            let mut out = Map::new();
            for (key, v) in obj {
                let Some(sub) = def.sub_attribute(key) else {
                    if tol.ignore_unknown_attributes {
                        crate::events::note(
                            ToleranceKind::UnknownAttributeDropped,
                            &format!("{path}.{key}"),
                            || format!("dropped unknown sub-attribute {path}.{key}"),
                        );
                        continue;
                    }
                    return Err(ScimError::InvalidSyntax(format!(
                        "`{path}.{key}` is not a sub-attribute of `{}`",
                        def.name
                    )));
                };
                let sub_path = || format!("{path}.{}", sub.name);
                let normalized = match normalize_value(sub, v, tol, &sub.name) {
                    Ok(nv) => nv,
                    // Pure: run again with the full path for the error's detail.
                    Err(_) => normalize_value(sub, v, tol, &sub_path())?,
                };
                if let Some(nv) = normalized {
                    if out.insert(sub.name.clone(), nv).is_some() {
                        return Err(ScimError::InvalidSyntax(format!(
                            "`{}` is given more than once (names are case-insensitive)",
                            sub_path()
                        )));
                    }
                }
            }
            if out.is_empty() {
                Ok(None)
            } else {
                Ok(Some(Value::Object(out)))
            }
        }
        AttributeType::String | AttributeType::Reference => match value {
            Value::String(_) => Ok(Some(value.clone())),
            _ => Err(mismatch("a string")),
        },
        AttributeType::Boolean => match value {
            Value::Bool(_) => Ok(Some(value.clone())),
            Value::String(s) if tol.string_booleans => {
                let b = if s.trim().eq_ignore_ascii_case("true") {
                    true
                } else if s.trim().eq_ignore_ascii_case("false") {
                    false
                } else {
                    return Err(mismatch("a boolean"));
                };
                crate::events::note(ToleranceKind::StringBoolean, path, || {
                    format!("accepted string boolean '{}' for {path}", truncated(s))
                });
                Ok(Some(Value::Bool(b)))
            }
            _ => Err(mismatch("a boolean")),
        },
        AttributeType::Integer => match value {
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(Some(value.clone())),
            _ => Err(mismatch("an integer")),
        },
        AttributeType::Decimal => match value {
            Value::Number(_) => Ok(Some(value.clone())),
            _ => Err(mismatch("a decimal number")),
        },
        AttributeType::DateTime => match value {
            Value::String(s) => {
                if chrono::DateTime::parse_from_rfc3339(s).is_ok() {
                    Ok(Some(value.clone()))
                } else {
                    Err(ScimError::InvalidValue(format!(
                        "attribute `{path}` expects an RFC 3339 dateTime such as 2011-05-13T04:42:34Z"
                    )))
                }
            }
            _ => Err(mismatch("a dateTime string")),
        },
        AttributeType::Binary => match value {
            Value::String(s) => {
                use base64::Engine as _;
                let std = base64::engine::general_purpose::STANDARD;
                let url = base64::engine::general_purpose::URL_SAFE;
                let compact: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
                if std.decode(&compact).is_ok() || url.decode(&compact).is_ok() {
                    Ok(Some(value.clone()))
                } else {
                    Err(ScimError::InvalidValue(format!(
                        "attribute `{path}` expects base64-encoded binary data"
                    )))
                }
            }
            _ => Err(mismatch("a base64 string")),
        },
    }
}

/// A JSON type's name for error details.
pub(crate) fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ScimType;
    use crate::schema::SchemaRegistry;
    use serde_json::json;

    fn user_attr(name: &str) -> AttributeDef {
        SchemaRegistry::default()
            .user()
            .unwrap()
            .top_level(name)
            .unwrap()
            .clone()
    }

    fn enterprise_attr(name: &str) -> AttributeDef {
        crate::schema::enterprise_user_schema()
            .attribute(name)
            .unwrap()
            .clone()
    }

    #[test]
    fn simple_types() {
        let tol = Tolerances::default();
        let strict = Tolerances::strict();
        let active = user_attr("active");
        let cases = [
            (json!(true), Some(json!(true)), true),
            (json!("True"), Some(json!(true)), true),
            (json!("false"), Some(json!(false)), true),
            (json!(" FALSE "), Some(json!(false)), true),
            (json!("yes"), None, false),
            (json!(1), None, false),
        ];
        for (input, expected, ok) in cases {
            let r = normalize_value(&active, &input, &tol, "active");
            assert_eq!(r.is_ok(), ok, "{input}");
            if let Some(e) = expected {
                assert_eq!(r.unwrap(), Some(e));
            }
        }
        let err = normalize_value(&active, &json!("False"), &strict, "active").unwrap_err();
        assert_eq!(err.scim_type(), Some(ScimType::InvalidValue));
        assert!(err.detail().contains("`active`"), "{}", err.detail());

        let user_name = user_attr("userName");
        assert!(normalize_value(&user_name, &json!(5), &tol, "userName").is_err());
        assert_eq!(
            normalize_value(&user_name, &json!(null), &tol, "userName").unwrap(),
            None
        );

        let created = user_attr("meta").sub_attribute("created").unwrap().clone();
        assert!(normalize_value(&created, &json!("2011-05-13T04:42:34Z"), &tol, "c").is_ok());
        assert!(normalize_value(&created, &json!("yesterday"), &tol, "c").is_err());

        let cert = user_attr("x509Certificates")
            .sub_attribute("value")
            .unwrap()
            .clone();
        assert!(normalize_value(&cert, &json!("TUlJRG=="), &tol, "v").is_err());
        assert!(normalize_value(&cert, &json!("TUlJRA=="), &tol, "v").is_ok());

        let int = AttributeDef::new("n", AttributeType::Integer);
        assert!(normalize_value(&int, &json!(3), &tol, "n").is_ok());
        assert!(normalize_value(&int, &json!(3.5), &tol, "n").is_err());
        let dec = AttributeDef::new("d", AttributeType::Decimal);
        assert!(normalize_value(&dec, &json!(3.5), &tol, "d").is_ok());
        assert!(normalize_value(&dec, &json!("3.5"), &tol, "d").is_err());
    }

    #[test]
    fn multi_valued_and_complex() {
        let tol = Tolerances::default();
        let emails = user_attr("emails");
        let out = normalize_value(
            &emails,
            &json!([{"VALUE": "a@x.com", "Type": "work", "primary": "true", "bogus": 1}, null]),
            &tol,
            "emails",
        )
        .unwrap();
        assert_eq!(
            out,
            Some(json!([{"value": "a@x.com", "type": "work", "primary": true}]))
        );
        // OneLogin: a single object where an array is expected.
        let out = normalize_value(&emails, &json!({"value": "a@x.com"}), &tol, "emails").unwrap();
        assert_eq!(out, Some(json!([{"value": "a@x.com"}])));
        let err = normalize_value(
            &emails,
            &json!({"value": "a@x.com"}),
            &Tolerances::strict(),
            "emails",
        )
        .unwrap_err();
        assert!(err.detail().contains("multi-valued"));
        let err = normalize_value(
            &emails,
            &json!([{"value": "a", "primary": true}, {"value": "b", "primary": true}]),
            &tol,
            "emails",
        )
        .unwrap_err();
        assert!(err.detail().contains("primary"));
        let err = normalize_value(
            &emails,
            &json!([{"value": "a", "bogus": 1}]),
            &Tolerances::strict(),
            "emails",
        )
        .unwrap_err();
        assert_eq!(err.scim_type(), Some(ScimType::InvalidSyntax));
        assert!(err.detail().contains("emails[0].bogus"), "{}", err.detail());
        assert_eq!(
            normalize_value(&emails, &json!([]), &tol, "emails").unwrap(),
            None
        );
        let err = normalize_value(&emails, &json!([{"primary": 3}]), &tol, "emails").unwrap_err();
        assert!(
            err.detail().contains("emails[0].primary"),
            "{}",
            err.detail()
        );
    }

    #[test]
    fn manager_as_bare_string() {
        let manager = enterprise_attr("manager");
        let tol = Tolerances::default();
        assert_eq!(
            normalize_value(&manager, &json!("271"), &tol, "manager").unwrap(),
            Some(json!({"value": "271"}))
        );
        assert!(
            normalize_value(&manager, &json!("271"), &Tolerances::strict(), "manager").is_err()
        );
        assert!(normalize_value(&manager, &json!(["271"]), &tol, "manager").is_err());
    }
}
