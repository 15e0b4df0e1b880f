//! Resolving an operation's target: the attribute, sub-attribute, extension and value filter a `path` names.

use serde_json::Value;

use crate::error::ScimError;
use crate::schema::{AttrPath, ResourceDef};

use super::*;
use crate::patch::path::{excerpt, PatchPath};
use crate::patch::request::PatchOpKind;

impl<'a> Engine<'a, '_> {
    /// The extension URN when `path` names a whole extension
    /// (`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`).
    pub(super) fn extension_path(&self, path: &PatchPath) -> Option<&'a str> {
        let urn = path.attr.urn.as_deref()?;
        if path.filter.is_some() || path.sub().is_some() {
            return None;
        }
        let (prefix, last) = (urn, path.attr.name.as_str());
        self.rt
            .extensions()
            .find(|(s, _)| {
                s.id.len() == prefix.len() + 1 + last.len()
                    && s.id
                        .get(..prefix.len())
                        .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
                    && s.id
                        .get(prefix.len() + 1..)
                        .is_some_and(|n| n.eq_ignore_ascii_case(last))
            })
            .map(|(s, _)| s.id.as_str())
    }

    pub(super) fn whole_extension(
        &mut self,
        kind: PatchOpKind,
        ext: &'a str,
        value: Option<&'a Value>,
    ) -> Result<(), ScimError> {
        match kind {
            PatchOpKind::Remove => {
                if let Some(schema) = self.rt.extension(ext) {
                    if let Some(req) = schema.attributes.iter().find(|a| {
                        a.required && self.doc.get(ext).and_then(|o| o.get(&a.name)).is_some()
                    }) {
                        let at = format!("{ext}:{}", req.name);
                        return Err(ScimError::mutability(
                            at.clone(),
                            format!("`{at}` is required and cannot be removed"),
                        ));
                    }
                }
                if self.doc.contains_key(ext) {
                    self.touch(ext, true);
                    self.doc.shift_remove(ext);
                }
                Ok(())
            }
            PatchOpKind::Add | PatchOpKind::Replace => match value {
                Some(Value::Object(obj)) => self.pathless(kind, obj, Some(ext)),
                _ => Err(ScimError::InvalidValue(format!(
                    "the value for the extension `{ext}` must be an object of its attributes"
                ))),
            },
        }
    }

    /// Finds the definition of `attr` (with `sub` overriding its sub-attribute). Unknown
    /// attributes are `Ok(None)` when they are to be ignored.
    pub(super) fn resolve_attr(
        &self,
        attr: &AttrPath,
        sub: Option<&str>,
        src: Src<'a>,
    ) -> Result<Option<Resolved<'a>>, ScimError> {
        let rt: &'a ResourceDef = self.rt;
        let mut found = rt
            .resolve_parts(attr.urn.as_deref(), &attr.name, None)
            .map(|r| (r.extension, r.attr));
        if found.is_none() && attr.urn.is_none() && self.tol.unqualified_extension_attributes {
            found = rt
                .extensions()
                .find_map(|(s, _)| s.attribute(&attr.name).map(|a| (Some(s.id.as_str()), a)));
        }
        let Some((ext, def)) = found else {
            if self.tol.ignore_unknown_attributes {
                let text = src.text();
                crate::events::note(
                    crate::events::ToleranceKind::UnknownAttributeDropped,
                    &text,
                    || format!("ignored unknown attribute `{}` in a PATCH", excerpt(&text)),
                );
                return Ok(None);
            }
            return Err(ScimError::InvalidPath(format!(
                "`{}` is not an attribute of {}",
                excerpt(&src.text()),
                rt.name()
            )));
        };
        let sub_def = match sub {
            None => None,
            Some(s) => match def.sub_attribute(s) {
                Some(d) => Some(d),
                None if def.is_complex() && self.tol.ignore_unknown_attributes => {
                    let text = src.text();
                    crate::events::note(
                        crate::events::ToleranceKind::UnknownAttributeDropped,
                        &text,
                        || {
                            format!(
                                "ignored unknown sub-attribute `{}` in a PATCH",
                                excerpt(&text)
                            )
                        },
                    );
                    return Ok(None);
                }
                None => {
                    return Err(ScimError::InvalidPath(format!(
                        "`{}`: `{}` has no sub-attribute `{}`",
                        excerpt(&src.text()),
                        def.name,
                        excerpt(s)
                    )))
                }
            },
        };
        Ok(Some((ext, def, sub_def)))
    }

    pub(super) fn resolve(&self, path: &'a PatchPath) -> Result<Option<Target<'a>>, ScimError> {
        let src = Src::Path(path);
        let Some((ext, attr, sub)) = self.resolve_attr(&path.attr, path.sub(), src)? else {
            return Ok(None);
        };
        let filter = match &path.filter {
            None => None,
            Some(f) => {
                if !attr.is_complex() {
                    return Err(ScimError::InvalidPath(format!(
                        "`{}`: a value filter needs a complex attribute; `{}` is not one",
                        excerpt(&src.text()),
                        attr.name
                    )));
                }
                // A filter on a single-valued complex attribute is Entra's manager removal
                // (`manager[value eq "..."]`), accepted with the manager tolerance.
                if !attr.multi_valued && !self.tol.manager_as_string {
                    return Err(ScimError::InvalidPath(format!(
                        "`{}`: value filters select elements of multi-valued attributes; `{}` is single-valued",
                        excerpt(&src.text()),
                        attr.name
                    )));
                }
                let strict = !self.tol.ignore_unknown_attributes;
                Some(f.compile_element(attr, strict).map_err(|e| {
                    ScimError::InvalidPath(format!("`{}`: {}", excerpt(&src.text()), e.detail()))
                })?)
            }
        };
        Ok(Some(Target {
            ext,
            attr,
            sub,
            filter,
            source_filter: path.filter.as_ref(),
            src,
        }))
    }

    pub(super) fn is_members(&self, t: &Target<'_>) -> bool {
        t.ext.is_none() && self.members_def.is_some_and(|m| std::ptr::eq(m, t.attr))
    }
}
