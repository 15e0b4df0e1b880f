//! Per-tenant settings: real-world tolerances and limits.
//!
//! Identity providers do not all speak RFC-literal SCIM (see the crate docs' "Real-world
//! tolerance" section). Each tolerance is a named switch, on by default;
//! [`Tolerances::strict`] turns them all off. Limits are advertised in
//! `/ServiceProviderConfig` and enforced with the matching SCIM error.

use serde::{Deserialize, Serialize};

/// Switches for accepting what real identity providers send. All on by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
#[non_exhaustive]
pub struct Tolerances {
    /// Accept `"True"`, `"false"`, ... where a boolean is expected (Entra sends
    /// `"active": "False"`).
    pub string_booleans: bool,
    /// Accept a single value where the schema expects a list, wrapping it (OneLogin sends
    /// `emails` as an object).
    pub single_value_as_array: bool,
    /// Treat an explicit `null` as "absent" instead of rejecting it.
    pub null_as_absent: bool,
    /// Ignore attributes unknown to the schema instead of rejecting them.
    pub ignore_unknown_attributes: bool,
    /// Ignore schema URNs unknown to the resource type (in `schemas` and as extension keys)
    /// instead of rejecting them (Entra lists its own URNs, sometimes misspelt).
    pub ignore_unknown_schemas: bool,
    /// Silently drop readOnly attributes on input (Okta's read-modify-write PUT echoes `id`,
    /// `meta`, `groups`) instead of answering `mutability`.
    pub ignore_read_only_input: bool,
    /// Accept PATCH `op` in any case (`Add`, `REPLACE`).
    pub case_insensitive_patch_ops: bool,
    /// Interpret the keys of a path-less PATCH value as attribute paths
    /// (`"name.givenName"`, full URN keys) as Entra does with `aadOptscim062020`.
    pub patch_pathless_dotted_keys: bool,
    /// A path-less PATCH value containing readOnly attributes equal to the current values
    /// (Okta's `{"id": ..., "displayName": ...}`) is accepted, the readOnly part ignored.
    pub patch_pathless_read_only: bool,
    /// `remove` on a multi-valued attribute with a value list removes only the listed
    /// elements (Entra's member removal) instead of being rejected.
    pub patch_remove_with_value: bool,
    /// `add`/`replace` on a filtered path that matches nothing creates the element
    /// (`emails[type eq "work"].value`).
    pub patch_filtered_add_creates: bool,
    /// A filtered `replace`/`remove` that matches nothing succeeds as a no-op instead of
    /// `noTarget`.
    pub patch_no_target_is_noop: bool,
    /// Accept the enterprise `manager` as a bare id string and store `{"value": id}`.
    pub manager_as_string: bool,
    /// Resolve unqualified names of extension attributes (`employeeNumber`) when no core
    /// attribute has that name.
    pub unqualified_extension_attributes: bool,
    /// Group members whose id is not a resource of the tenant (or not one that can be a
    /// member) are skipped instead of failing the request with `invalidValue`. RFC 7644 does
    /// not require referential integrity; ids are issued by this service, so such a member
    /// could never resolve and nothing is stored for it.
    pub ignore_unknown_members: bool,
    /// Read a request body that comes without `Content-Type` as JSON (some IdP test tools
    /// and scripts omit it) instead of answering 415. A `Content-Type` other than
    /// `application/scim+json` or `application/json` is 415 either way.
    pub missing_content_type: bool,
    /// Accept a JSON object that gives a key more than once, the **last** value winning (RFC
    /// 8259 §4 leaves duplicates to the receiver; this is what `serde_json` does), instead
    /// of answering 400 `invalidSyntax` naming the key and where it is.
    pub duplicate_json_keys: bool,
    /// A granted value (an element of `User.entitlements` or `User.roles`) that a published
    /// catalog does not hold is dropped from the write and logged (target
    /// `scimkit::provisioning`) instead of failing the request with 400 `invalidValue`
    /// naming it. See [`SchemaRegistry::add_catalog`](crate::schema::SchemaRegistry::add_catalog).
    pub ignore_unknown_grants: bool,
}

impl Default for Tolerances {
    fn default() -> Self {
        Tolerances {
            string_booleans: true,
            single_value_as_array: true,
            null_as_absent: true,
            ignore_unknown_attributes: true,
            ignore_unknown_schemas: true,
            ignore_read_only_input: true,
            case_insensitive_patch_ops: true,
            patch_pathless_dotted_keys: true,
            patch_pathless_read_only: true,
            patch_remove_with_value: true,
            patch_filtered_add_creates: true,
            patch_no_target_is_noop: true,
            manager_as_string: true,
            unqualified_extension_attributes: true,
            ignore_unknown_members: true,
            missing_content_type: true,
            duplicate_json_keys: true,
            ignore_unknown_grants: true,
        }
    }
}

impl Tolerances {
    /// RFC-literal behaviour: every tolerance off.
    pub fn strict() -> Self {
        Tolerances {
            string_booleans: false,
            single_value_as_array: false,
            null_as_absent: false,
            ignore_unknown_attributes: false,
            ignore_unknown_schemas: false,
            ignore_read_only_input: false,
            case_insensitive_patch_ops: false,
            patch_pathless_dotted_keys: false,
            patch_pathless_read_only: false,
            patch_remove_with_value: false,
            patch_filtered_add_creates: false,
            patch_no_target_is_noop: false,
            manager_as_string: false,
            unqualified_extension_attributes: false,
            ignore_unknown_members: false,
            missing_content_type: false,
            duplicate_json_keys: false,
            ignore_unknown_grants: false,
        }
    }
}

/// Limits enforced on requests, and advertised in `/ServiceProviderConfig`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
#[non_exhaustive]
pub struct Limits {
    /// Largest accepted request body, in bytes (413 above).
    pub max_payload_bytes: usize,
    /// Longest accepted filter, in bytes (`invalidFilter` above).
    pub max_filter_length: usize,
    /// Deepest accepted nesting of parentheses, `not` and value paths in a filter.
    pub max_filter_depth: usize,
    /// Largest page a list or search returns (`count` above it is lowered to it); advertised
    /// as `filter.maxResults`.
    pub max_page_size: usize,
    /// Most operations in one Bulk request (413 above).
    pub bulk_max_operations: usize,
    /// Largest Bulk request body, in bytes (413 above).
    pub bulk_max_payload_bytes: usize,
    /// Most operations in one PATCH request (`tooMany`... 400 above).
    pub max_patch_operations: usize,
    /// Largest accepted body of a POST, PUT or PATCH to a resource type with a membership
    /// relation (Groups), in bytes (413 above). Larger than `max_payload_bytes` because some
    /// identity providers send a group's full member list on every change: at about 80 bytes
    /// a member, the default admits a PUT of a 200,000-member group. Every other request
    /// stays under `max_payload_bytes`.
    pub max_membership_payload_bytes: usize,
    /// The longest member list the answer to a group PATCH or PUT carries without being
    /// asked (`attributes=members`): a group with more members answers without the list, so
    /// that the answer to a membership change is bounded whatever the group's size, and a
    /// PUT of a large group is not answered with its whole member list again.
    #[serde(alias = "maxMembersInPatchAnswer")]
    pub max_members_in_write_answer: usize,
    /// The most resources one list or search request may evaluate in the service, per
    /// resource type, when the store cannot answer the query itself
    /// ([`Pushdown::Inexact`](crate::store::Pushdown) or `Unsupported`: a filter or sort
    /// the store's translation does not cover). A query whose candidates exceed it is
    /// answered 400 `tooMany` with a detail saying what to narrow, and the store reads at
    /// most one candidate more than this. The stores of this crate answer the common
    /// queries exactly (any filter the SQL translation covers, a sort on any attribute but
    /// `members`), so this bounds the rare remainder; the in-memory store is always exact.
    pub max_resources_scanned: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_payload_bytes: 1 << 20,
            max_filter_length: 4096,
            max_filter_depth: 32,
            max_page_size: 1000,
            bulk_max_operations: 1000,
            bulk_max_payload_bytes: 1 << 20,
            max_patch_operations: 1000,
            max_membership_payload_bytes: 16 << 20,
            max_members_in_write_answer: 1000,
            max_resources_scanned: 10_000,
        }
    }
}

/// What a successful PATCH answers. RFC 7644 §3.5.2 allows either: 200 with the entire
/// resource (subject to `attributes`), or 204 No Content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PatchResponse {
    /// 200 with the resource, projected by `attributes` and `excludedAttributes`.
    Resource,
    /// 204 No Content, with the new version in `ETag`. A request that names `attributes` or
    /// `excludedAttributes` still gets 200 with the resource it asked for.
    NoContent,
}

/// How often a tenant's clients may call: a token bucket of `burst` requests, refilled at
/// `requests_per_second`. A request beyond it is answered 429 with `Retry-After` (whole
/// seconds, rounded up) and a SCIM error body; Entra ID and Okta both wait and retry. Only
/// authenticated requests count: a client without a valid token cannot use up a tenant's
/// budget.
///
/// Buckets live in the service's memory (per process), on the service's
/// [`Clock`](crate::auth::Clock), at most a bounded number of them (see
/// [`ScimServiceBuilder::rate_limit_buckets`](crate::service::ScimServiceBuilder::rate_limit_buckets)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimit {
    /// The sustained rate admitted, in requests per second (0 counts as 1).
    pub requests_per_second: u32,
    /// The most requests admitted at once after a quiet period (0 counts as 1).
    pub burst: u32,
    /// One bucket per token (per authenticated principal) instead of one for the tenant.
    #[serde(default)]
    pub per_token: bool,
}

/// Everything configurable per tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
#[non_exhaustive]
pub struct Settings {
    /// Real-world tolerances.
    pub tolerances: Tolerances,
    /// Request limits.
    pub limits: Limits,
    /// Whether Group `displayName` must be unique within the tenant (Entra requires it).
    pub unique_group_display_name: bool,
    /// What a PATCH of a resource without a membership relation (a User) answers: by default
    /// 200 with the resource, which conformance tools and identity providers read back.
    pub patch_response: PatchResponse,
    /// What a PATCH of a resource with a membership relation (a Group) answers: by default
    /// 200 with the group, which every identity provider and conformance tool accepts;
    /// [`PatchResponse::NoContent`] answers 204 (Entra's recommendation; Okta accepts it).
    /// Either way the answer to a membership change is bounded whatever the group's size: a
    /// 200 answer carries the group's `members` when it has at most
    /// [`Limits::max_members_in_write_answer`] of them (RFC 7644 §3.5.2 asks for the entire
    /// resource), or when the request names them in `attributes`; a larger group answers
    /// without the list.
    pub group_patch_response: PatchResponse,
    /// The tenant's rate limit; `None` (the default) admits every authenticated request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// Whether this tenant is served the agent resource types (`/Agents`,
    /// `/AgenticApplications`) of a registry that enabled them with
    /// [`AgentScope::OptedInTenants`](crate::schema::AgentScope::OptedInTenants). Off by
    /// default; irrelevant when the registry serves them to every tenant or not at all.
    pub agents: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            tolerances: Tolerances::default(),
            limits: Limits::default(),
            unique_group_display_name: true,
            patch_response: PatchResponse::Resource,
            group_patch_response: PatchResponse::Resource,
            rate_limit: None,
            agents: false,
        }
    }
}

impl Settings {
    /// Strict RFC mode: every tolerance off, default limits.
    pub fn strict() -> Self {
        Settings {
            tolerances: Tolerances::strict(),
            ..Settings::default()
        }
    }
}
