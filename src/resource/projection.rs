//! `attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5, §3.9) and the `returned` rules of
//! RFC 7643 §7.

use serde_json::{Map, Value};

use crate::error::ScimError;
use crate::schema::{AttrPath, AttributeDef, ResourceDef, Returned};

/// Which attributes a response carries.
///
/// Built from the `attributes` and `excludedAttributes` query parameters (or the same members of
/// a SearchRequest) with [`Projection::parse`], then applied to each stored document with
/// [`Projection::apply`]. The `returned` characteristic of each attribute always wins:
/// `always` attributes (`id`, `schemas`, `meta`) are returned even when excluded or not listed,
/// `never` attributes (`password`) are never returned, `request` attributes only when listed in
/// `attributes`, and `default` ones unless `attributes` lists others or `excludedAttributes`
/// names them.
///
/// Names are case-insensitive and may be URN-qualified (`urn:...:enterprise:2.0:User:manager`)
/// or name a sub-attribute (`emails.value`, `name.givenName`); a bare extension URN selects
/// or excludes the whole extension. Names the resource type does not know select nothing.
/// When both parameters are given, `attributes` selects and `excludedAttributes` then removes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Projection {
    attributes: Vec<Selector>,
    excluded: Vec<Selector>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Selector {
    /// As written, to recognise a bare extension URN.
    raw: String,
    /// The parsed path, when `raw` is one (a bare URN such as `urn:a:b:2.0:User` also parses,
    /// as `User` qualified by `urn:a:b:2.0`; resolution sorts that out).
    path: AttrPath,
}

/// A selector resolved against a resource type, in canonical spelling.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target<'a> {
    /// A whole extension.
    Extension(&'a str),
    /// An attribute (`ext` is the extension URN for extension attributes) or one of its
    /// sub-attributes.
    Attr {
        ext: Option<&'a str>,
        name: &'a str,
        sub: Option<&'a str>,
    },
}

fn parse_list(param: &str, value: Option<&str>) -> Result<Vec<Selector>, ScimError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for part in value.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let path = AttrPath::parse(part)
            .map_err(|e| ScimError::InvalidPath(format!("`{param}` parameter: {}", e.detail())))?;
        out.push(Selector {
            raw: part.to_owned(),
            path,
        });
    }
    Ok(out)
}

fn resolve<'a>(rt: &'a ResourceDef, sel: &Selector) -> Option<Target<'a>> {
    if let Some(ext) = rt.extension(&sel.raw) {
        return Some(Target::Extension(ext.id.as_str()));
    }
    if let Some(r) = rt.resolve(&sel.path) {
        return Some(Target::Attr {
            ext: r.extension,
            name: r.attr.name.as_str(),
            sub: r.sub.map(|s| s.name.as_str()),
        });
    }
    if sel.path.urn.is_some() {
        return None;
    }
    // An unqualified extension attribute name: accepted when exactly one extension has it
    // and no core attribute shadows it (resolution above already tried the core).
    let mut found = rt.extensions().filter_map(|(s, _)| {
        let attr = s.attribute(&sel.path.name)?;
        let sub = match sel.path.sub_attr.as_deref() {
            None => None,
            Some(name) => Some(attr.sub_attribute(name)?.name.as_str()),
        };
        Some(Target::Attr {
            ext: Some(s.id.as_str()),
            name: attr.name.as_str(),
            sub,
        })
    });
    match (found.next(), found.next()) {
        (Some(t), None) => Some(t),
        _ => None,
    }
}

/// How much of one attribute goes into the response.
enum Pick<'s> {
    /// All of it (`requested`: the client named it, so `request` sub-attributes come too).
    Whole { requested: bool },
    /// Only these sub-attributes.
    Subs(Vec<&'s str>),
}

struct Resolved<'a> {
    has_attributes: bool,
    include: Vec<Target<'a>>,
    exclude: Vec<Target<'a>>,
}

impl<'a> Resolved<'a> {
    fn names_whole(list: &[Target<'a>], ext: Option<&str>, name: &str) -> bool {
        list.iter().any(|t| match t {
            Target::Extension(e) => ext == Some(*e),
            Target::Attr {
                ext: e,
                name: n,
                sub: None,
            } => *e == ext && *n == name,
            Target::Attr { .. } => false,
        })
    }

    fn named_subs(list: &[Target<'a>], ext: Option<&str>, name: &str) -> Vec<&'a str> {
        list.iter()
            .filter_map(|t| match t {
                Target::Attr {
                    ext: e,
                    name: n,
                    sub: Some(s),
                } if *e == ext && *n == name => Some(*s),
                _ => None,
            })
            .collect()
    }

    /// What to return of attribute `def`, or `None` for nothing.
    fn pick(&self, ext: Option<&str>, def: &AttributeDef) -> Option<Pick<'a>> {
        match def.returned {
            Returned::Never => return None,
            Returned::Always => return Some(Pick::Whole { requested: true }),
            Returned::Default | Returned::Request => {}
        }
        if Self::names_whole(&self.exclude, ext, &def.name) {
            return None;
        }
        if self.has_attributes {
            if Self::names_whole(&self.include, ext, &def.name) {
                return Some(Pick::Whole { requested: true });
            }
            let subs = Self::named_subs(&self.include, ext, &def.name);
            if subs.is_empty() {
                None
            } else {
                Some(Pick::Subs(subs))
            }
        } else if def.returned == Returned::Request {
            None
        } else {
            Some(Pick::Whole { requested: false })
        }
    }

    fn project(&self, ext: Option<&str>, def: &AttributeDef, value: Value) -> Option<Value> {
        let pick = self.pick(ext, def)?;
        if !def.is_complex() {
            return Some(value);
        }
        let excluded_subs = if def.returned == Returned::Always {
            Vec::new()
        } else {
            Self::named_subs(&self.exclude, ext, &def.name)
        };
        // The common case (no `attributes`/`excludedAttributes` touching this attribute, no
        // sub-attribute that is `never` or only on request): the value goes out as it is,
        // unless it holds empty objects, which are dropped below.
        if excluded_subs.is_empty()
            && matches!(pick, Pick::Whole { .. })
            && def.sub_attributes.iter().all(|sub| {
                sub.returned == Returned::Always
                    || sub.returned == Returned::Default
                    || (sub.returned == Returned::Request
                        && matches!(pick, Pick::Whole { requested: true }))
            })
            && !holds_empty_object(&value)
        {
            return Some(value);
        }
        let keep = |key: &str| -> bool {
            let Some(sub) = def.sub_attribute(key) else {
                // Not in the schema (a host-built document): treat as `returned: default`.
                return matches!(pick, Pick::Whole { .. });
            };
            if sub.returned == Returned::Never {
                return false;
            }
            if sub.returned == Returned::Always {
                return true;
            }
            if excluded_subs.iter().any(|s| *s == sub.name) {
                return false;
            }
            match &pick {
                Pick::Whole { requested } => sub.returned != Returned::Request || *requested,
                Pick::Subs(list) => list.iter().any(|s| *s == sub.name),
            }
        };
        let filter_obj = |mut obj: Map<String, Value>| -> Option<Value> {
            obj.retain(|k, _| keep(k));
            (!obj.is_empty()).then_some(Value::Object(obj))
        };
        match value {
            Value::Object(obj) => filter_obj(obj),
            Value::Array(mut items) => {
                // Filtered in place: no new vector.
                items.retain_mut(|item| match item {
                    Value::Object(_) => replace_with(item, |v| match v {
                        Value::Object(obj) => filter_obj(obj),
                        other => Some(other),
                    }),
                    _ => true,
                });
                (!items.is_empty()).then_some(Value::Array(items))
            }
            other => Some(other),
        }
    }
}

/// Whether a complex value is an empty object, an empty array or an array holding an empty
/// object: the shapes projection drops.
fn holds_empty_object(value: &Value) -> bool {
    match value {
        Value::Object(obj) => obj.is_empty(),
        Value::Array(items) => {
            items.is_empty()
                || items
                    .iter()
                    .any(|i| matches!(i, Value::Object(o) if o.is_empty()))
        }
        _ => false,
    }
}

/// Replaces `slot` by `f(slot)`, or reports `false` (drop it) when `f` gives nothing.
fn replace_with(slot: &mut Value, f: impl FnOnce(Value) -> Option<Value>) -> bool {
    match f(std::mem::take(slot)) {
        Some(v) => {
            *slot = v;
            true
        }
        None => false,
    }
}

impl Projection {
    /// Parses the `attributes` and `excludedAttributes` parameters: comma-separated attribute
    /// paths (RFC 7644 §3.4.2.5). Blank entries are skipped; an entry that is not an attribute
    /// path is an `invalidPath` error naming the parameter.
    ///
    /// ```
    /// use scimkit::resource::Projection;
    /// let p = Projection::parse(Some("userName, emails.value"), None)?;
    /// assert!(Projection::parse(None, Some("members")).is_ok());
    /// assert!(Projection::parse(Some("bad name"), None).is_err());
    /// # let _ = p;
    /// # Ok::<(), scimkit::error::ScimError>(())
    /// ```
    pub fn parse(attributes: Option<&str>, excluded: Option<&str>) -> Result<Self, ScimError> {
        Ok(Projection {
            attributes: parse_list("attributes", attributes)?,
            excluded: parse_list("excludedAttributes", excluded)?,
        })
    }

    /// True when neither parameter selects anything (only the `returned` rules apply).
    pub fn is_default(&self) -> bool {
        self.attributes.is_empty() && self.excluded.is_empty()
    }

    fn resolved<'a>(&self, rt: &'a ResourceDef) -> Resolved<'a> {
        Resolved {
            has_attributes: !self.attributes.is_empty(),
            include: self
                .attributes
                .iter()
                .filter_map(|s| resolve(rt, s))
                .collect(),
            exclude: self
                .excluded
                .iter()
                .filter_map(|s| resolve(rt, s))
                .collect(),
        }
    }

    /// Returns the part of `doc` (a canonical document of type `rt`, with `id`/`meta`) the
    /// response carries. `schemas` is always kept; extension objects and complex values left
    /// empty are removed. Keys the schema does not know are kept only when no `attributes`
    /// list was given.
    pub fn apply(&self, rt: &ResourceDef, doc: &Value) -> Value {
        self.apply_owned(rt, doc.clone())
    }

    /// [`apply`](Self::apply) taking the document by value, so that nothing is copied.
    pub fn apply_owned(&self, rt: &ResourceDef, doc: Value) -> Value {
        let Value::Object(mut obj) = doc else {
            return doc;
        };
        // The common case: the default projection over a document holding nothing it would
        // change (no `never`/`request` attributes, no extension objects, no empty values)
        // returns it as it is.
        if self.is_default()
            && obj.iter().all(|(key, value)| {
                !rt.default_projection_may_alter(key) && !holds_empty_object(value)
            })
        {
            return Value::Object(obj);
        }
        let r = self.resolved(rt);
        // Filtered in place: the document keeps its key order and no key is re-hashed.
        obj.retain(|key, value| {
            if key.eq_ignore_ascii_case("schemas") {
                true
            } else if let Some(def) = rt.top_level(key) {
                replace_with(value, |v| r.project(None, def, v))
            } else if let Some(schema) = rt.extension(key) {
                let Value::Object(ext_obj) = value else {
                    return false;
                };
                ext_obj.retain(|name, v| match schema.attribute(name) {
                    Some(def) => replace_with(v, |v| r.project(Some(schema.id.as_str()), def, v)),
                    None => !r.has_attributes,
                });
                !ext_obj.is_empty()
            } else {
                !r.has_attributes
            }
        });
        Value::Object(obj)
    }

    /// Whether the `attributes` parameter asks for the attribute at `path` (or a part of
    /// it) by name. A service uses it for what it returns only on request, such as a large
    /// group's `members` in the answer to a write.
    ///
    /// ```
    /// use scimkit::resource::Projection;
    /// use scimkit::schema::SchemaRegistry;
    /// let registry = SchemaRegistry::default();
    /// let group = registry.group().unwrap();
    /// assert!(Projection::parse(Some("members"), None)?.requests(group, "members"));
    /// assert!(Projection::parse(Some("members.value"), None)?.requests(group, "members"));
    /// assert!(!Projection::parse(None, None)?.requests(group, "members"));
    /// assert!(!Projection::parse(Some("displayName"), None)?.requests(group, "members"));
    /// # Ok::<(), scimkit::error::ScimError>(())
    /// ```
    pub fn requests(&self, rt: &ResourceDef, path: &str) -> bool {
        !self.attributes.is_empty() && self.includes(rt, path)
    }

    /// Whether any part of the attribute at `path` (`members`, `groups`, `emails.value`,
    /// `urn:...:User:manager`) would be in a response, so that a service can skip loading
    /// what is not returned (Entra reads groups with `excludedAttributes=members`). Unknown or
    /// malformed paths give `false`.
    pub fn includes(&self, rt: &ResourceDef, path: &str) -> bool {
        // A plain top-level name (what the service asks about: `members`, `groups`) needs no
        // path parsing.
        if !path.contains(['.', ':', '[', ']', ' ']) {
            if let Some(attr) = rt.top_level(path) {
                return self.resolved(rt).pick(None, attr).is_some();
            }
        }
        let Ok(parsed) = AttrPath::parse(path) else {
            return false;
        };
        let Some(resolved) = rt.resolve(&parsed) else {
            return false;
        };
        let r = self.resolved(rt);
        let Some(pick) = r.pick(resolved.extension, resolved.attr) else {
            return false;
        };
        let Some(sub) = resolved.sub else {
            return true;
        };
        match sub.returned {
            Returned::Never => return false,
            Returned::Always => return true,
            Returned::Default | Returned::Request => {}
        }
        if resolved.attr.returned != Returned::Always
            && Resolved::named_subs(&r.exclude, resolved.extension, &resolved.attr.name)
                .contains(&sub.name.as_str())
        {
            return false;
        }
        match pick {
            Pick::Whole { requested } => sub.returned != Returned::Request || requested,
            Pick::Subs(list) => list.contains(&sub.name.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::SchemaRegistry;
    use serde_json::json;

    #[test]
    fn parse_errors_name_the_parameter() {
        let err = Projection::parse(None, Some("members, 1bad")).unwrap_err();
        assert_eq!(err.scim_type(), Some(crate::error::ScimType::InvalidPath));
        assert!(
            err.detail().contains("excludedAttributes"),
            "{}",
            err.detail()
        );
        assert!(err.detail().contains("1bad"), "{}", err.detail());
        assert!(Projection::parse(Some(" , "), None).unwrap().is_default());
    }

    /// The default projection keeps plain documents as they are and still drops what it
    /// must: `returned: never` attributes, empty values, and such attributes inside extension
    /// objects whatever the URN's case.
    #[test]
    fn default_projection_fast_path_agrees_with_the_rules() {
        let reg = SchemaRegistry::default();
        let user = reg.user().unwrap();
        let p = Projection::default();
        let plain = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "b",
            "name": {"givenName": "B"},
            "emails": [{"value": "b@x", "type": "work"}],
            "hostKey": 1
        });
        assert_eq!(p.apply(user, &plain), plain);
        let mut with_secret = plain.clone();
        with_secret["PASSWORD"] = json!("s3cret");
        with_secret["addresses"] = json!([{}]);
        with_secret["name"] = json!({});
        let got = p.apply(user, &with_secret);
        let mut want = plain.clone();
        want.as_object_mut().unwrap().remove("name");
        assert_eq!(got, want);
        let ext = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "b",
            "URN:ietf:params:scim:schemas:extension:enterprise:2.0:User": {}
        });
        let got = p.apply(user, &ext);
        assert!(got.as_object().unwrap().len() == 2, "{got}");
    }

    #[test]
    fn sub_attribute_selection_on_single_valued_complex() {
        let reg = SchemaRegistry::default();
        let user = reg.user().unwrap();
        let doc = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": "1",
            "userName": "b",
            "name": {"givenName": "B", "familyName": "J"},
        });
        let p = Projection::parse(Some("NAME.givenname"), None).unwrap();
        assert_eq!(
            p.apply(user, &doc),
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "id": "1",
                "name": {"givenName": "B"},
            })
        );
        assert!(p.includes(user, "name.givenName"));
        assert!(!p.includes(user, "name.familyName"));
        assert!(!p.includes(user, "userName"));
        assert!(p.includes(user, "id"));
    }
}
