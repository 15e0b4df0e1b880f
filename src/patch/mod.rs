//! The PATCH engine (RFC 7644 §3.5.2): the PatchOp request model, the `path` grammar and a
//! pure, atomic [`apply`].
//!
//! A service parses the body once with [`PatchRequest::from_json`], loads the stored document
//! (with the group's `members` only when [`PatchRequest::needs_members`] says so), calls
//! [`apply`] and writes [`PatchOutcome::document`] plus the [`MembershipDelta`](crate::resource::MembershipDelta), if any.
//! A caller that owns its copy of the document (a store read) can use [`apply_in_place`]
//! instead and skip a deep copy; it is just as atomic.
//!
//! Real identity providers bend RFC 7644 in well-known ways (see IDP-QUIRKS.md); each
//! accommodation is a named switch in [`Tolerances`](crate::settings::Tolerances), on by default and off
//! in [`Settings::strict`](crate::settings::Settings::strict):
//!
//! | Tolerance | What it accepts |
//! |---|---|
//! | `case_insensitive_patch_ops` | `Add`, `Replace`, `Remove` (Entra) |
//! | `string_booleans` | `"value": "False"` for `active`, `"primary": "true"` (Entra) |
//! | `patch_pathless_dotted_keys` | path-less values keyed `"name.givenName"` or by a full URN path (Entra `aadOptscim062020`) |
//! | `patch_pathless_read_only` | readOnly attributes echoed in a path-less value, unchanged (Okta's `{"id": ..., "displayName": ...}`) |
//! | `patch_remove_with_value` | `remove` on `members` with a value list removes only those members (Entra) |
//! | `patch_filtered_add_creates` | `emails[type eq "work"].value` creates the element when none matches |
//! | `patch_no_target_is_noop` | a filter that selects nothing in `replace`/`remove` is a no-op |
//! | `manager_as_string` | `manager` given as a bare id; `remove manager[value eq "..."]` (Entra) |
//! | `single_value_as_array` | one object where an array is expected (OneLogin) |
//! | `null_as_absent`, `ignore_unknown_attributes`, `unqualified_extension_attributes` | as for resources |
//!
//! ```
//! use scimkit::patch::{apply, PatchRequest};
//! use scimkit::{schema::SchemaRegistry, settings::Settings};
//! use serde_json::json;
//!
//! let registry = SchemaRegistry::default();
//! let user = registry.user().expect("built in");
//! let settings = Settings::default();
//! let body = json!({
//!     "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
//!     "Operations": [
//!         {"op": "Replace", "path": "active", "value": "False"},
//!         {"op": "Add", "path": "emails[type eq \"work\"].value", "value": "b@example.com"}
//!     ]
//! });
//! let request = PatchRequest::from_json(&body, &settings)?;
//! let current = json!({"userName": "bjensen", "active": true});
//! let outcome = apply(user, &current, &request, &settings)?;
//! assert_eq!(
//!     outcome.document,
//!     json!({
//!         "userName": "bjensen",
//!         "active": false,
//!         "emails": [{"type": "work", "value": "b@example.com"}]
//!     })
//! );
//! assert!(outcome.changed);
//! # Ok::<(), scimkit::error::ScimError>(())
//! ```

mod apply;
mod path;
mod request;

pub use apply::{apply, apply_in_place, PatchEffect, PatchOutcome};
pub use path::{PatchPath, MAX_PATH_LEN};
pub use request::{PatchOpKind, PatchOperation, PatchRequest};
