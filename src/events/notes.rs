//! Tolerance notes: what the tolerance layer dropped or rewrote, collected per request while
//! it is normalised (the engine calls [`note`]; the service takes them with [`collect_notes`]).

use serde::{Deserialize, Serialize};

/// What the tolerance layer did about one thing a client sent: dropped it or rewrote it.
///
/// Notes of the same kind on the same path in one request are merged, `count` saying how
/// many times it happened (50 unknown member ids are one note with `count: 50`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ToleranceNote {
    /// What was done.
    pub kind: ToleranceKind,
    /// The attribute path it was done to (URN-qualified for extension attributes), as the
    /// client wrote it for unknown ones.
    pub path: String,
    /// How many times, in this request.
    pub count: u64,
    /// A sentence for the admin ("dropped 3 unknown member ids").
    pub detail: String,
}

impl ToleranceNote {
    /// A note of `kind` at `path` that happened once.
    pub fn new(kind: ToleranceKind, path: impl Into<String>, detail: impl Into<String>) -> Self {
        ToleranceNote {
            kind,
            path: path.into(),
            count: 1,
            detail: detail.into(),
        }
    }
}

/// The kinds of [`ToleranceNote`]: one per [`Tolerances`](crate::settings::Tolerances)
/// switch that drops or rewrites input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum ToleranceKind {
    /// An attribute unknown to the schema was dropped (`ignore_unknown_attributes`).
    UnknownAttributeDropped,
    /// A schema URN unknown to the resource type was ignored (`ignore_unknown_schemas`).
    UnknownSchemaIgnored,
    /// A readOnly attribute given with a value was ignored (`ignore_read_only_input`).
    ReadOnlyIgnored,
    /// A string was read as a boolean (`string_booleans`).
    StringBoolean,
    /// A single value was wrapped into a list (`single_value_as_array`).
    SingleValueWrapped,
    /// Member ids that are not resources of the tenant were dropped
    /// (`ignore_unknown_members`).
    UnknownMembersDropped,
    /// A PATCH `op` in another case was accepted (`case_insensitive_patch_ops`).
    PatchOpCase,
    /// A PATCH operation that matched nothing was accepted as a no-op
    /// (`patch_no_target_is_noop`).
    PatchNoTargetIgnored,
    /// Grants (`entitlements`, `roles`) naming a value no published catalog holds were
    /// dropped (`ignore_unknown_grants`).
    UnknownGrantsDropped,
    /// An extension attribute given without its schema URN was resolved to the extension
    /// (`unqualified_extension_attributes`).
    UnqualifiedExtensionAttribute,
    /// A bare string was read as the `value` of a complex attribute (`manager_as_string`).
    BareStringAsValue,
}

// ---------------------------------------------------------------------------------------------
// Tolerance notes, collected while a request is normalised

/// The most distinct notes one request collects; more are counted in the last one.
pub(crate) const MAX_NOTES: usize = 64;

/// Adds `note` to `notes`, merging it with a note of the same kind and path.
pub(crate) fn merge_note(notes: &mut Vec<ToleranceNote>, note: ToleranceNote) {
    if let Some(n) = notes
        .iter_mut()
        .find(|n| n.kind == note.kind && n.path == note.path)
    {
        n.count = n.count.saturating_add(note.count);
        return;
    }
    if notes.len() < MAX_NOTES {
        notes.push(note);
    } else if let Some(last) = notes.last_mut() {
        last.count = last.count.saturating_add(note.count);
    }
}

thread_local! {
    static COLLECTOR: std::cell::RefCell<Option<Vec<ToleranceNote>>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs the synchronous `f` (a normalisation) collecting the tolerance notes the engine
/// reports while it runs ([`note`]). The collector is scoped to this call on this thread: `f`
/// cannot await, so no other request's notes can mix in; a nested call collects its own.
pub(crate) fn collect_notes<T>(f: impl FnOnce() -> T) -> (T, Vec<ToleranceNote>) {
    struct Restore(Option<Vec<ToleranceNote>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let outer = self.0.take();
            let _ = COLLECTOR.try_with(|c| {
                if let Ok(mut c) = c.try_borrow_mut() {
                    *c = outer;
                }
            });
        }
    }
    let outer = COLLECTOR
        .try_with(|c| {
            c.try_borrow_mut()
                .ok()
                .and_then(|mut c| c.replace(Vec::new()))
        })
        .ok()
        .flatten();
    let restore = Restore(outer);
    let out = f();
    let notes = COLLECTOR
        .try_with(|c| c.try_borrow_mut().ok().and_then(|mut c| c.take()))
        .ok()
        .flatten()
        .unwrap_or_default();
    drop(restore);
    (out, notes)
}

/// Reports a tolerance to the innermost [`collect_notes`] on this thread; nothing (and no
/// allocation: `detail` is only called then) when no collector runs.
pub(crate) fn note(kind: ToleranceKind, path: &str, detail: impl FnOnce() -> String) {
    note_n(kind, path, 1, detail);
}

/// [`note`] for something that happened `count` times.
pub(crate) fn note_n(kind: ToleranceKind, path: &str, count: u64, detail: impl FnOnce() -> String) {
    let _ = COLLECTOR.try_with(|c| {
        if let Ok(mut c) = c.try_borrow_mut() {
            if let Some(notes) = c.as_mut() {
                merge_note(
                    notes,
                    ToleranceNote {
                        kind,
                        path: path.to_owned(),
                        count,
                        detail: detail(),
                    },
                );
            }
        }
    });
}
