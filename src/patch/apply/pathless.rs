//! Path-less `add`/`replace`: a value object whose keys are attributes (with the IdP tolerances for dotted keys, URN keys and echoed readOnly attributes).

use serde_json::{Map, Value};

use crate::error::ScimError;
use crate::schema::{AttrPath, Mutability};

use super::*;
use crate::patch::path::excerpt;
use crate::patch::request::PatchOpKind;

impl<'a> Engine<'a, '_> {
    /// Path-less add/replace: each key of `obj` is an attribute (or, with the dotted-keys
    /// tolerance, an attribute path; or an extension URN holding an object of attributes).
    pub(super) fn pathless(
        &mut self,
        kind: PatchOpKind,
        obj: &'a Map<String, Value>,
        within: Option<&'a str>,
    ) -> Result<(), ScimError> {
        for (key, value) in obj {
            if within.is_none() && key.eq_ignore_ascii_case("schemas") {
                continue;
            }
            if within.is_none() {
                if let Some(ext) = self.rt.extension(key).map(|s| s.id.as_str()) {
                    let ext: &'a str = ext;
                    match value {
                        Value::Object(inner) => self.pathless(kind, inner, Some(ext))?,
                        Value::Null => {}
                        _ => {
                            return Err(ScimError::InvalidValue(format!(
                                "`{ext}` must be an object of the extension's attributes"
                            )))
                        }
                    }
                    continue;
                }
            }
            let dotted = key.contains('.') || key.contains(':');
            let parsed = if dotted && !self.tol.patch_pathless_dotted_keys {
                None
            } else {
                AttrPath::parse(key).ok()
            };
            let parsed = match (parsed, within) {
                (Some(mut p), Some(ext)) if p.urn.is_none() => {
                    p.urn = Some(ext.to_owned());
                    Some(p)
                }
                (_, Some(_)) => None,
                (p, None) => p,
            };
            let Some(attr_path) = parsed else {
                if self.tol.ignore_unknown_attributes {
                    crate::events::note(
                        crate::events::ToleranceKind::UnknownAttributeDropped,
                        key,
                        || {
                            format!(
                                "ignored unknown attribute `{}` in a PATCH value",
                                excerpt(key)
                            )
                        },
                    );
                    continue;
                }
                return Err(ScimError::InvalidSyntax(format!(
                    "`{}` in the value is not an attribute of {}",
                    excerpt(key),
                    self.rt.name()
                )));
            };
            let sub = attr_path.sub_attr.clone();
            // A key of the value is not a `path`: an unknown one is a malformed body.
            let resolved = self
                .resolve_attr(&attr_path, sub.as_deref(), Src::Key(key))
                .map_err(|e| match e {
                    ScimError::InvalidPath(d) => {
                        ScimError::InvalidSyntax(format!("in the value, {d}"))
                    }
                    other => other,
                })?;
            let Some((ext, attr, sub_def)) = resolved else {
                continue;
            };
            let target = Target {
                ext,
                attr,
                sub: sub_def,
                filter: None,
                source_filter: None,
                src: Src::Key(key),
            };
            let def = sub_def.unwrap_or(attr);
            let read_only =
                attr.mutability == Mutability::ReadOnly || def.mutability == Mutability::ReadOnly;
            if read_only && self.tol.patch_pathless_read_only {
                // Okta echoes `id` (and whatever it read) in a path-less value. Accept it
                // when it does not try to change a stored value.
                let stored = self.current_value(&target);
                let same = match stored {
                    None => true,
                    Some(s) => self.normalize(def, value, &target)?.as_ref() == Some(s),
                };
                if same {
                    crate::events::note(crate::events::ToleranceKind::ReadOnlyIgnored, key, || {
                        format!(
                            "ignored read-only `{}` echoed unchanged in a PATCH value",
                            excerpt(key)
                        )
                    });
                    continue;
                }
            }
            self.dispatch(kind, &target, Some(value))?;
        }
        Ok(())
    }
}
