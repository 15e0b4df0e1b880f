//! The required and read-only rules of a write: required attributes and sub-attributes,
//! read-only sub-attributes stripped, and values a replace carries over from the stored document.

use super::*;

/// Rejects an empty or whitespace-only string where the schema marks a string attribute or
/// sub-attribute `required` (RFC 7643 §2.4: a required attribute must have a value; §4.1.1:
/// a User MUST have a non-empty `userName`). `value` is the normalised value of `def` at
/// `path`. In every mode: no identity provider sends a blank required value on purpose, and
/// storing one makes the resource unreachable by the filters IdPs use to find it.
pub(crate) fn check_required_not_blank(
    def: &AttributeDef,
    value: &Value,
    path: &str,
) -> Result<(), ScimError> {
    let blank = |v: &Value| v.as_str().is_some_and(|s| s.trim().is_empty());
    let error = |at: String| {
        ScimError::InvalidValue(format!(
            "`{at}` is required and must not be empty or only whitespace"
        ))
    };
    let items: &[Value] = match value {
        Value::Array(items) => items,
        single => std::slice::from_ref(single),
    };
    let indexed = matches!(value, Value::Array(_));
    let at = |i: usize| {
        if indexed {
            format!("{path}[{i}]")
        } else {
            path.to_owned()
        }
    };
    if def.required && def.ty == AttributeType::String {
        if let Some(i) = items.iter().position(blank) {
            return Err(error(at(i)));
        }
    }
    for sub in def
        .sub_attributes
        .iter()
        .filter(|s| s.required && s.ty == AttributeType::String)
    {
        if let Some(i) = items
            .iter()
            .position(|item| item.get(&sub.name).is_some_and(blank))
        {
            return Err(error(format!("{}.{}", at(i), sub.name)));
        }
    }
    Ok(())
}

/// Removes readOnly sub-attributes (`members.display`, `manager.displayName`) from a complex
/// value before type checking, so that whatever an IdP echoes there cannot fail the request;
/// in strict mode an assigned one is a `mutability` error.
/// Notes `count` readOnly values of sub-attribute `sub` of `path` dropped (one note per
/// sub-attribute, whatever the element).
pub(crate) fn note_read_only_sub(path: &str, sub: &str, count: u64) {
    let at = format!("{path}.{sub}");
    crate::events::note_n(ToleranceKind::ReadOnlyIgnored, &at, count, || {
        format!("ignored read-only sub-attribute {at}")
    });
}

pub(super) fn strip_read_only_subs<'v>(
    def: &AttributeDef,
    value: &'v Value,
    tol: &Tolerances,
    path: &str,
) -> Result<Cow<'v, Value>, ScimError> {
    if !def.is_complex()
        || !def
            .sub_attributes
            .iter()
            .any(|s| s.mutability == Mutability::ReadOnly)
    {
        return Ok(Cow::Borrowed(value));
    }
    let read_only = |k: &str| {
        def.sub_attribute(k)
            .is_some_and(|sub| sub.mutability == Mutability::ReadOnly)
    };
    let holds_read_only = |v: &Value| {
        v.as_object()
            .is_some_and(|obj| obj.keys().any(|k| read_only(k)))
    };
    // The element's path (`members[2]`) is formatted only for an error.
    let strip =
        |obj: &Map<String, Value>, elem_path: &dyn Fn() -> String| -> Result<Value, ScimError> {
            let mut kept = Map::new();
            for (k, v) in obj {
                match def.sub_attribute(k) {
                    Some(sub) if sub.mutability == Mutability::ReadOnly => {
                        if !is_unassigned(v) {
                            if !tol.ignore_read_only_input {
                                let at = format!("{}.{}", elem_path(), sub.name);
                                return Err(ScimError::mutability(
                                    at.clone(),
                                    format!("`{at}` is readOnly and cannot be set by the client"),
                                ));
                            }
                            note_read_only_sub(path, &sub.name, 1);
                        }
                    }
                    _ => {
                        kept.insert(k.clone(), v.clone());
                    }
                }
            }
            Ok(Value::Object(kept))
        };
    Ok(match value {
        Value::Object(obj) if holds_read_only(value) => {
            Cow::Owned(strip(obj, &|| path.to_owned())?)
        }
        // Nothing to strip (the common case: `members` with only `value`): no copy.
        Value::Array(items) if items.iter().any(holds_read_only) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::Object(obj) if holds_read_only(item) => {
                        out.push(strip(obj, &|| format!("{path}[{i}]"))?)
                    }
                    other => out.push(other.clone()),
                }
            }
            Cow::Owned(Value::Array(out))
        }
        _ => Cow::Borrowed(value),
    })
}

/// Required sub-attributes (custom schemas may declare them) must be present in every
/// element of a normalised complex value.
pub(super) fn check_required_subs(
    def: &AttributeDef,
    value: &Value,
    path: &str,
) -> Result<(), ScimError> {
    let required: Vec<&AttributeDef> = def
        .sub_attributes
        .iter()
        .filter(|s| s.required && s.mutability != Mutability::ReadOnly)
        .collect();
    if required.is_empty() {
        return Ok(());
    }
    let check = |obj: &Value, elem_path: &str| -> Result<(), ScimError> {
        for sub in &required {
            if obj.get(&sub.name).is_none() {
                return Err(ScimError::InvalidValue(format!(
                    "`{elem_path}.{}` is required",
                    sub.name
                )));
            }
        }
        Ok(())
    };
    match value {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check(item, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        other => check(other, path),
    }
}

/// Looks a key up in a JSON object case-insensitively (stored documents are canonical, but a
/// host may hand in one it built itself).
pub(super) fn get_ci<'v>(obj: &'v Map<String, Value>, name: &str) -> Option<&'v Value> {
    obj.get(name).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// A value of the stored document, re-checked so that whatever the host stored cannot put
/// an invalid (or readOnly) value into the output; anything invalid counts as absent.
pub(super) fn stored_value(def: &AttributeDef, raw: &Value, path: &str) -> Option<Value> {
    let tol = Tolerances::default();
    let v = strip_read_only_subs(def, raw, &tol, path).ok()?;
    normalize_value(def, &v, &tol, path).ok().flatten()
}

/// Applies the replace rules for immutable and writeOnly attributes (RFC 7644 §3.5.1).
pub(super) fn carry_over(
    rt: &ResourceDef,
    existing: &Value,
    out: &mut Collected<'_>,
) -> Result<(), ScimError> {
    let Value::Object(existing) = existing else {
        return Ok(());
    };
    type Scope<'s> = (Option<&'s Schema>, Option<&'s Map<String, Value>>);
    let mut scopes: Vec<Scope<'_>> = vec![(None, Some(existing))];
    for (schema, _) in rt.extensions() {
        let obj = get_ci(existing, &schema.id).and_then(Value::as_object);
        scopes.push((Some(schema), obj));
    }
    for (ext, old_obj) in scopes {
        let Some(old_obj) = old_obj else { continue };
        let defs: Box<dyn Iterator<Item = &AttributeDef>> = match ext {
            Some(s) => Box::new(s.attributes.iter()),
            None => Box::new(rt.common().iter().chain(rt.core().attributes.iter())),
        };
        for def in defs {
            let path = qualified_path(ext.map(|s| s.id.as_str()), &def.name);
            let Some(old) = get_ci(old_obj, &def.name).and_then(|v| stored_value(def, v, &path))
            else {
                continue;
            };
            let old = &old;
            match def.mutability {
                Mutability::WriteOnly if out.get(ext, def).is_none() => {
                    out.insert(ext, def, old.clone(), &path)?;
                }
                Mutability::WriteOnly => {}
                Mutability::Immutable => match out.get(ext, def) {
                    None => out.insert(ext, def, old.clone(), &path)?,
                    Some(new) if !same_value(def, new, old) => {
                        let detail = format!(
                            "`{path}` is immutable and already has a value; it cannot be changed"
                        );
                        return Err(ScimError::mutability(path, detail));
                    }
                    Some(_) => {}
                },
                _ if def.is_complex() && !def.multi_valued => {
                    carry_over_subs(def, old, out, ext, &path)?;
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// The replace rules applied to the sub-attributes of a single-valued complex attribute.
pub(super) fn carry_over_subs(
    def: &AttributeDef,
    old: &Value,
    out: &mut Collected<'_>,
    ext: Option<&Schema>,
    path: &str,
) -> Result<(), ScimError> {
    let Value::Object(old_obj) = old else {
        return Ok(());
    };
    let mut merged = match out.get(ext, def) {
        Some(Value::Object(o)) => o.clone(),
        _ => Map::new(),
    };
    let mut changed = false;
    for sub in &def.sub_attributes {
        let sub_path = format!("{path}.{}", sub.name);
        let Some(old_v) = get_ci(old_obj, &sub.name).and_then(|v| stored_value(sub, v, &sub_path))
        else {
            continue;
        };
        let old_v = &old_v;
        match sub.mutability {
            Mutability::WriteOnly | Mutability::Immutable => match merged.get(&sub.name) {
                None => {
                    merged.insert(sub.name.clone(), old_v.clone());
                    changed = true;
                }
                Some(new_v)
                    if sub.mutability == Mutability::Immutable
                        && !same_value(sub, new_v, old_v) =>
                {
                    let at = format!("{path}.{}", sub.name);
                    return Err(ScimError::mutability(
                        at.clone(),
                        format!(
                            "`{at}` is immutable and already has a value; it cannot be changed"
                        ),
                    ));
                }
                Some(_) => {}
            },
            _ => {}
        }
    }
    if changed {
        out.replace(ext, def, Value::Object(merged));
    }
    Ok(())
}

/// Equality under an attribute's definition: strings compare case-insensitively unless the
/// attribute is `caseExact` (RFC 7643 §2.2), multi-valued attributes as unordered lists.
pub(super) fn same_value(def: &AttributeDef, a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => {
            if def.case_exact {
                x == y
            } else {
                crate::filter::fold_case(x) == crate::filter::fold_case(y)
            }
        }
        (Value::Array(xs), Value::Array(ys)) => {
            xs.len() == ys.len()
                && xs.iter().all(|x| ys.iter().any(|y| same_value(def, x, y)))
                && ys.iter().all(|y| xs.iter().any(|x| same_value(def, x, y)))
        }
        (Value::Object(xs), Value::Object(ys)) => {
            xs.len() == ys.len()
                && xs
                    .iter()
                    .all(|(k, x)| match (def.sub_attribute(k), ys.get(k)) {
                        (Some(sub), Some(y)) => same_value(sub, x, y),
                        (None, Some(y)) => x == y,
                        (_, None) => false,
                    })
        }
        _ => a == b,
    }
}

pub(super) fn check_required(rt: &ResourceDef, out: &Collected<'_>) -> Result<(), ScimError> {
    let core_defs = rt.common().iter().chain(rt.core().attributes.iter());
    for def in core_defs {
        if def.required && def.mutability != Mutability::ReadOnly && out.get(None, def).is_none() {
            return Err(ScimError::InvalidValue(format!(
                "`{}` is required for a {} resource",
                def.name,
                rt.name()
            )));
        }
    }
    for (schema, ext_required) in rt.extensions() {
        let present = out.has_extension(schema);
        if ext_required && !present {
            return Err(ScimError::InvalidValue(format!(
                "extension `{}` is required for a {} resource",
                schema.id,
                rt.name()
            )));
        }
        if !present {
            continue;
        }
        for def in &schema.attributes {
            if def.required
                && def.mutability != Mutability::ReadOnly
                && out.get(Some(schema), def).is_none()
            {
                return Err(ScimError::InvalidValue(format!(
                    "`{}:{}` is required",
                    schema.id, def.name
                )));
            }
        }
    }
    Ok(())
}
