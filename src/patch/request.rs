//! The PatchOp request message (RFC 7644 §3.5.2).

use std::fmt;

use serde_json::{Map, Value};

use crate::error::{PatchError, ScimError};
use crate::filter::{CompValue, CompareOp, Filter};
use crate::schema::{AttributeDef, ResourceDef, PATCH_OP_SCHEMA};
use crate::settings::Settings;

use super::path::{excerpt, PatchPath};

/// A PATCH operation's `op` (RFC 7644 §3.5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatchOpKind {
    /// `add`.
    Add,
    /// `replace`.
    Replace,
    /// `remove`.
    Remove,
}

impl PatchOpKind {
    /// The RFC spelling (`add`, `replace`, `remove`).
    pub fn as_str(self) -> &'static str {
        match self {
            PatchOpKind::Add => "add",
            PatchOpKind::Replace => "replace",
            PatchOpKind::Remove => "remove",
        }
    }

    /// Parses an `op`. RFC 7644 §3.5.2 spells them in lower case; with `case_insensitive`
    /// (Entra sends `Add`, `Replace`, `Remove`) any case is accepted.
    pub fn parse(s: &str, case_insensitive: bool) -> Result<PatchOpKind, ScimError> {
        for kind in [PatchOpKind::Add, PatchOpKind::Replace, PatchOpKind::Remove] {
            let name = kind.as_str();
            if s == name {
                return Ok(kind);
            }
            if case_insensitive && s.eq_ignore_ascii_case(name) {
                crate::events::note(crate::events::ToleranceKind::PatchOpCase, "op", || {
                    format!("accepted PATCH op `{s}` as `{name}`")
                });
                return Ok(kind);
            }
        }
        let hint = if [PatchOpKind::Add, PatchOpKind::Replace, PatchOpKind::Remove]
            .iter()
            .any(|k| s.eq_ignore_ascii_case(k.as_str()))
        {
            " (operation names are lower case in strict mode)"
        } else {
            ""
        };
        Err(ScimError::InvalidSyntax(format!(
            "`{}` is not a PATCH operation; expected `add`, `replace` or `remove`{hint}",
            excerpt(s)
        )))
    }
}

impl fmt::Display for PatchOpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One operation of a PATCH request.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOperation {
    /// What to do.
    pub op: PatchOpKind,
    /// Where; `None` means the resource itself (the `value` is an object of attributes).
    pub path: Option<PatchPath>,
    /// The value, as sent; it is checked and coerced against the target attribute by
    /// [`apply`](super::apply), which knows the schema.
    pub value: Option<Value>,
}

/// A parsed PatchOp request (RFC 7644 §3.5.2).
#[derive(Debug, Clone, PartialEq)]
pub struct PatchRequest {
    /// The operations, applied in order.
    pub operations: Vec<PatchOperation>,
}

fn get_ci<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

impl PatchRequest {
    /// Parses and checks a PatchOp body: `schemas` must list
    /// `urn:ietf:params:scim:api:messages:2.0:PatchOp`, `Operations` must be a non-empty
    /// array of at most [`Limits::max_patch_operations`](crate::settings::Limits) operations, each with
    /// an `op` (any case when [`Tolerances::case_insensitive_patch_ops`](crate::settings::Tolerances)),
    /// an optional `path` (parsed here) and a `value` where the operation needs one.
    ///
    /// Member names of the message are matched case-insensitively (RFC 7643 §2.1).
    ///
    /// ```
    /// use scimkit::patch::{PatchOpKind, PatchRequest};
    /// use scimkit::settings::Settings;
    /// use serde_json::json;
    ///
    /// let body = json!({
    ///     "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    ///     "Operations": [{"op": "Replace", "path": "active", "value": "False"}]
    /// });
    /// let req = PatchRequest::from_json(&body, &Settings::default())?;
    /// assert_eq!(req.operations[0].op, PatchOpKind::Replace);
    /// assert!(PatchRequest::from_json(&body, &Settings::strict()).is_err());
    /// # Ok::<(), scimkit::error::ScimError>(())
    /// ```
    pub fn from_json(body: &Value, settings: &Settings) -> Result<PatchRequest, ScimError> {
        let obj = body.as_object().ok_or_else(|| {
            ScimError::InvalidSyntax("a PATCH request body must be a JSON object".to_owned())
        })?;
        let schemas = get_ci(obj, "schemas").and_then(Value::as_array);
        let has_schema = schemas.is_some_and(|list| {
            list.iter().any(|s| {
                s.as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case(PATCH_OP_SCHEMA))
            })
        });
        if !has_schema {
            return Err(ScimError::InvalidSyntax(format!(
                "`schemas` must contain `{PATCH_OP_SCHEMA}`"
            )));
        }
        let ops = match get_ci(obj, "Operations") {
            Some(Value::Array(ops)) => ops,
            Some(_) => {
                return Err(ScimError::InvalidSyntax(
                    "`Operations` must be an array".to_owned(),
                ))
            }
            None => {
                return Err(ScimError::InvalidSyntax(
                    "`Operations` is missing".to_owned(),
                ))
            }
        };
        if ops.is_empty() {
            return Err(ScimError::InvalidValue(
                "`Operations` must contain at least one operation".to_owned(),
            ));
        }
        let max = settings.limits.max_patch_operations;
        if ops.len() > max {
            return Err(ScimError::TooMany(format!(
                "the request has {} operations; at most {max} are accepted",
                ops.len()
            )));
        }
        let mut operations = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            operations.push(parse_operation(op, settings).map_err(|e| in_operation(i, op, e))?);
        }
        Ok(PatchRequest { operations })
    }

    /// True when applying this request needs the group's current member list in the
    /// document: an operation on `members` selects members by something other than
    /// `value eq "id"` (or addresses a member sub-attribute). Then the caller loads
    /// `members` into the document (an empty array for a group without members) before
    /// calling [`apply`](super::apply).
    pub fn needs_members(&self, rt: &ResourceDef) -> bool {
        let Some(members) = rt.membership() else {
            return false;
        };
        self.operations.iter().any(|op| {
            op.path.as_ref().is_some_and(|p| {
                targets_attr(rt, p, members)
                    && (p.sub().is_some()
                        || p.filter.as_ref().is_some_and(|f| member_id_of(f).is_none()))
            })
        })
    }
}

fn targets_attr(rt: &ResourceDef, p: &PatchPath, attr: &AttributeDef) -> bool {
    rt.resolve_parts(p.attr.urn.as_deref(), &p.attr.name, None)
        .is_some_and(|r| r.extension.is_none() && std::ptr::eq(r.attr, attr))
}

/// The member id of a `value eq "id"` filter, the only member selection that does not need
/// the member list.
pub(crate) fn member_id_of(f: &Filter) -> Option<&str> {
    match f {
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value: CompValue::String(id),
        } if path.urn.is_none()
            && path.sub_attr.is_none()
            && path.name.eq_ignore_ascii_case("value") =>
        {
            Some(id)
        }
        _ => None,
    }
}

/// An error of operation `i` of the message, typed as the failures of applying it are: a
/// [`ScimError::Patch`] with the operation's index, its `op` and `path` as sent.
fn in_operation(i: usize, op: &Value, error: ScimError) -> ScimError {
    let text = |key: &str| {
        op.as_object()
            .and_then(|o| get_ci(o, key))
            .and_then(Value::as_str)
    };
    ScimError::Patch(Box::new(PatchError::new(
        i,
        text("op").unwrap_or_default(),
        text("path").map(str::to_owned),
        error,
    )))
}

/// One operation of the message; errors name the member, [`in_operation`] the operation.
fn parse_operation(op: &Value, settings: &Settings) -> Result<PatchOperation, ScimError> {
    let obj = op
        .as_object()
        .ok_or_else(|| ScimError::InvalidSyntax("an operation must be a JSON object".to_owned()))?;
    let kind = match get_ci(obj, "op") {
        Some(Value::String(s)) => {
            PatchOpKind::parse(s, settings.tolerances.case_insensitive_patch_ops)
                .map_err(|e| ScimError::InvalidSyntax(format!("`op`: {}", e.detail())))?
        }
        Some(_) => return Err(ScimError::InvalidSyntax("`op` must be a string".to_owned())),
        None => return Err(ScimError::InvalidSyntax("`op` is missing".to_owned())),
    };
    let path = match get_ci(obj, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            let limit = settings.limits.max_filter_length.max(256);
            if s.len() > limit {
                return Err(ScimError::InvalidPath(format!(
                    "`path` is {} bytes long; the limit is {limit}",
                    s.len()
                )));
            }
            Some(
                PatchPath::parse(s)
                    .map_err(|e| ScimError::InvalidPath(format!("`path`: {}", e.detail())))?,
            )
        }
        Some(_) => return Err(ScimError::InvalidPath("`path` must be a string".to_owned())),
    };
    let value = get_ci(obj, "value").cloned();
    match kind {
        // RFC 7644 §3.5.2.1 and §3.5.2.3: add and replace carry a value.
        PatchOpKind::Add | PatchOpKind::Replace if value.is_none() => {
            return Err(ScimError::InvalidValue(format!(
                "no `value`: an {kind} operation needs one"
            )));
        }
        // RFC 7644 §3.5.2.2: a remove without a path has no target.
        PatchOpKind::Remove if path.is_none() => {
            return Err(ScimError::NoTarget(
                "no `path`: a remove operation needs one".to_owned(),
            ));
        }
        _ => {}
    }
    if path.is_none() && !value.as_ref().is_some_and(Value::is_object) {
        return Err(ScimError::InvalidValue(
            "no `path`, so `value` must be an object of attributes".to_owned(),
        ));
    }
    Ok(PatchOperation {
        op: kind,
        path,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ScimType;
    use crate::schema::SchemaRegistry;
    use serde_json::json;

    fn body(ops: Value) -> Value {
        json!({"schemas": [PATCH_OP_SCHEMA], "Operations": ops})
    }

    #[test]
    fn op_case_follows_the_tolerance() {
        let b = body(json!([{"op": "ADD", "path": "title", "value": "x"}]));
        let r = PatchRequest::from_json(&b, &Settings::default()).unwrap();
        assert_eq!(r.operations[0].op, PatchOpKind::Add);
        let err = PatchRequest::from_json(&b, &Settings::strict()).unwrap_err();
        assert_eq!(err.scim_type(), Some(ScimType::InvalidSyntax));
        assert!(
            err.detail().contains("Operations[0] (ADD): `op`"),
            "{}",
            err.detail()
        );
        assert!(err.detail().contains("lower case"), "{}", err.detail());
    }

    #[test]
    fn message_shape_errors() {
        let s = Settings::default();
        let cases: Vec<(Value, ScimType, &str)> = vec![
            (json!([]), ScimType::InvalidSyntax, "JSON object"),
            (
                json!({"Operations": [{"op": "add", "path": "title", "value": "x"}]}),
                ScimType::InvalidSyntax,
                "schemas",
            ),
            (
                json!({"schemas": ["urn:x"], "Operations": []}),
                ScimType::InvalidSyntax,
                "schemas",
            ),
            (
                json!({"schemas": [PATCH_OP_SCHEMA]}),
                ScimType::InvalidSyntax,
                "missing",
            ),
            (body(json!({})), ScimType::InvalidSyntax, "array"),
            (body(json!([])), ScimType::InvalidValue, "at least one"),
            (body(json!([1])), ScimType::InvalidSyntax, "Operations[0]"),
            (
                body(json!([{"path": "x"}])),
                ScimType::InvalidSyntax,
                "op` is missing",
            ),
            (
                body(json!([{"op": "move"}])),
                ScimType::InvalidSyntax,
                "move",
            ),
            (body(json!([{"op": 1}])), ScimType::InvalidSyntax, "string"),
            (
                body(json!([{"op": "add", "path": "title"}])),
                ScimType::InvalidValue,
                "no `value`",
            ),
            (
                body(json!([{"op": "remove"}])),
                ScimType::NoTarget,
                "no `path`",
            ),
            (
                body(json!([{"op": "replace", "value": "x"}])),
                ScimType::InvalidValue,
                "object",
            ),
            (
                body(json!([{"op": "add", "path": 3, "value": "x"}])),
                ScimType::InvalidPath,
                "string",
            ),
            (
                body(json!([{"op": "add", "path": "emails[", "value": "x"}])),
                ScimType::InvalidPath,
                "Operations[0] (add): `path`",
            ),
        ];
        for (b, ty, needle) in cases {
            let err = PatchRequest::from_json(&b, &s).unwrap_err();
            assert_eq!(err.scim_type(), Some(ty), "{b}");
            assert!(err.detail().contains(needle), "{b}: {}", err.detail());
        }
    }

    #[test]
    fn an_operation_error_is_typed_with_its_index_op_and_path() {
        let b = body(json!([
            {"op": "add", "path": "title", "value": "x"},
            {"op": "Replace", "path": "emails[type eq", "value": "x"},
        ]));
        match PatchRequest::from_json(&b, &Settings::default()) {
            Err(ScimError::Patch(p)) => {
                assert_eq!(p.operation, 1);
                assert_eq!(p.op, "Replace");
                assert_eq!(p.path.as_deref(), Some("emails[type eq"));
                assert_eq!(p.error.scim_type(), Some(ScimType::InvalidPath));
                assert!(p.detail().starts_with("Operations[1] (Replace): `path`"));
            }
            other => panic!("{other:?}"),
        }
        // No string `op`: the index alone.
        let err = PatchRequest::from_json(&body(json!([{"path": "x"}])), &Settings::default())
            .unwrap_err();
        assert_eq!(err.detail(), "Operations[0]: `op` is missing");
        assert!(
            matches!(err, ScimError::Patch(ref p) if p.op.is_empty() && p.path.as_deref() == Some("x"))
        );
    }

    #[test]
    fn too_many_operations() {
        let mut s = Settings::default();
        s.limits.max_patch_operations = 2;
        let op = json!({"op": "add", "path": "title", "value": "x"});
        let b = body(json!([op.clone(), op.clone(), op]));
        let err = PatchRequest::from_json(&b, &s).unwrap_err();
        assert_eq!(err.scim_type(), Some(ScimType::TooMany));
    }

    #[test]
    fn member_keys_are_case_insensitive() {
        let b = json!({"SCHEMAS": [PATCH_OP_SCHEMA], "operations": [{"OP": "remove", "Path": "title"}]});
        let r = PatchRequest::from_json(&b, &Settings::strict()).unwrap();
        assert_eq!(r.operations.len(), 1);
        assert!(r.operations[0].path.is_some());
    }

    #[test]
    fn needs_members_only_for_non_id_selections() {
        let reg = SchemaRegistry::default();
        let group = reg.group().unwrap();
        let user = reg.user().unwrap();
        let check = |ops: Value| {
            PatchRequest::from_json(&body(ops), &Settings::default())
                .unwrap()
                .needs_members(group)
        };
        assert!(!check(
            json!([{"op": "remove", "path": "members[value eq \"a\"]"}])
        ));
        assert!(!check(
            json!([{"op": "add", "path": "members", "value": [{"value": "a"}]}])
        ));
        assert!(!check(json!([{"op": "remove", "path": "members"}])));
        assert!(check(
            json!([{"op": "remove", "path": "members[type eq \"User\"]"}])
        ));
        assert!(check(
            json!([{"op": "remove", "path": "members[value eq \"a\" or value eq \"b\"]"}])
        ));
        assert!(check(
            json!([{"op": "replace", "path": "MEMBERS[value eq \"a\"].display", "value": "x"}])
        ));
        let r = PatchRequest::from_json(
            &body(json!([{"op": "remove", "path": "emails[type eq \"work\"]"}])),
            &Settings::default(),
        )
        .unwrap();
        assert!(!r.needs_members(user));
    }
}
