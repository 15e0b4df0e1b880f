#![doc = include_str!("../README.md")]
//!
//! ## What a host names
//!
//! - Serving: [`ScimService`](service::ScimService) (built with [`service::ScimServiceBuilder`]; a `tower::Service`
//!   with the `tower` feature), [`service::Authorized`] for adapters that read the head first,
//!   [`ScimError`](error::ScimError) and its [`ScimError::to_response`](error::ScimError::to_response).
//! - Tenants and tokens: [`Tenants`](auth::Tenants) ([`ScimService::tenants`](service::ScimService::tenants), or
//!   [`Tenants::from_store`](auth::Tenants::from_store) over any [`TenantStore`](auth::TenantStore)), [`TenantId`](tenant::TenantId), [`Settings`](settings::Settings).
//! - Storage: [`ResourceStore`](store::ResourceStore), [`MemoryStore`](store::MemoryStore), `store::sqlite::SqliteStore` (feature
//!   `sqlite`), `store::postgres::PostgresStore` (feature `postgres`),
//!   [`store::ChangeRetention`].
//! - Typed reads: [`ScimService::users`](service::ScimService::users) and [`ScimService::groups`](service::ScimService::groups) ([`service::Users`],
//!   [`service::Groups`], [`service::TypedPage`]) giving [`resource::User`] and
//!   [`resource::Group`], custom extensions through [`resource::Extension`].
//! - Following the feed: [`follow::FeedFollower`] with the host's [`follow::FeedHandler`] and
//!   [`follow::CursorStore`] ([`follow::CursorSaving`], [`follow::ChangeBatch`],
//!   [`follow::ChangeWithState`]); the records themselves: [`feed::Change`],
//!   [`feed::MemberChanges`]; waking: [`ResourceStore::subscribe`](store::ResourceStore::subscribe),
//!   [`feed::ChangeSubscription`], [`feed::ChangeHub`] (for a custom store).
//! - Vetoing writes: [`service::WritePolicy`] seeing a [`service::PendingWrite`].
//! - Schemas: [`SchemaRegistry`](schema::SchemaRegistry) (custom extensions with [`SchemaRegistry::add_extension`](schema::SchemaRegistry::add_extension)).
//!
//! ## Architecture
//!
//! Four layers, and the feed follower on top; a module imports only from its own layer or
//! the ones below it.
//!
//! | layer | modules | owns |
//! | --- | --- | --- |
//! | host | [`follow`] | the feed follower: catch-up, subscription wake-ups, cursor, retries, resynchronisation |
//! | service (HTTP) | [`service`] | admission (path, tenant, authentication, the per-tenant rate limit in `rate.rs`: [`ScimService::authorize`](service::ScimService::authorize) for adapters that read the head first), routes (`service/routes.rs`), request reading and preconditions (`request.rs`), reads and lists (`read.rs`), writes with their retry and membership rules (`write.rs`), rendering (`render.rs`), Bulk, discovery, catalogs and schema packs (`catalog.rs`: read-only catalog types, which types a tenant is served, grants checked against catalogs), the one error-to-wire mapping (`response.rs`) |
//! | engine | [`filter`], [`patch`], [`resource`] | filter parsing, compilation, evaluation, sorting and the one case fold ([`filter::fold_case`]); PATCH parsing and application (`patch/apply/`: target resolution, path-less forms, attributes, elements, members, finish); documents (validation, projection), membership deltas ([`resource::MembershipDelta`]) and the uniqueness keys of a write ([`resource::UniqueKey`]) |
//! | store, beside the engine | [`store`] | the async [`ResourceStore`](store::ResourceStore) trait and the provisioning log's [`ProvisioningLog`](store::ProvisioningLog) trait with its ready sink (`store/provisioning.rs`), the [`MemoryStore`](store::MemoryStore), SQLite and PostgreSQL backends (`store/sql/` holds all they share: the one filter translator over the compiled filter, with a `Dialect` trait per database, the provisioning log, sort-key upkeep, the case-folding migration and tenant reads, each over a per-dialect trait of statements), and the contract suite every backend runs; it takes the compiled filter, documents and deltas, and never imports the service or the PATCH engine |
//! | model | [`schema`], [`tenant`], [`settings`], [`error`], [`feed`], [`events`], [`auth`] | schemas and resource types (including the one "has members" rule, [`ResourceDef::membership`](schema::ResourceDef::membership)), tenants, tokens and their verifier, per-tenant settings, the error type with its typed details ([`error::FilterError`], [`error::AttributeError`], [`error::PatchError`]), change records, the provisioning log's events ([`ProvisioningEvent`](events::ProvisioningEvent)), tolerance notes ([`ToleranceNote`](events::ToleranceNote), `events/notes.rs`) and sink ([`EventSink`](events::EventSink)) |
//!
//! Model and engine are pure: no I/O, no clock, no randomness except through arguments.
//! `grep -rn "use crate::" src/<module>` shows a module's arrows: no model or engine module
//! names `store`, `service` or `follow`.
//!
//! ## One path per name
//!
//! Every public item has exactly one path: its module (`scimkit::service::ScimService`,
//! `scimkit::store::MemoryStore`, `scimkit::settings::Settings`, ...). The crate root
//! re-exports nothing, so a name is never reachable two ways and moving an item between
//! rooms is visible in the API.
//!
//! Where to add:
//! - **a filter operator**: the AST and parser in `filter/ast.rs` and `filter/parse.rs`, the
//!   compiled test and its evaluation in `filter/eval.rs` (a refusal is a
//!   [`error::FilterError`] with a [`error::FilterErrorReason`]), then its SQL meaning in the one translator,
//!   `store/sql/mod.rs`, and what differs per database in the `Dialect` impls
//!   (`store/sqlite/dialect.rs`, `store/postgres/dialect.rs`), or nothing (an untranslated
//!   test is an inexact superset the service finishes). The contract suite's equivalence
//!   corpus (`store::testing::user_filters`) and the property test
//!   `tests/sql_equivalence.rs` check each store against the evaluator;
//! - **an IdP tolerance**: a named switch in [`Tolerances`](settings::Tolerances) (on by default, off in
//!   [`Tolerances::strict`](settings::Tolerances::strict)), applied in `resource/value.rs` and `resource/document.rs` for
//!   documents or `patch/` for PATCH shapes (`patch/request.rs` for the message,
//!   `patch/apply/pathless.rs` for path-less values, `patch/apply/target.rs` for paths), with a vector in `tests/vectors/`; whatever it
//!   drops or rewrites is reported with `events::note` (a [`ToleranceNote`](events::ToleranceNote) in the request's
//!   [`ProvisioningEvent`](events::ProvisioningEvent) and in [`service::PendingWrite::tolerances`]);
//! - **a schema pack or catalog kind** (like the agent pack or Okta's entitlement and role
//!   catalogs): its schemas and builder in `schema/packs.rs`, its registration in
//!   `schema/registry.rs` (`add_catalog`, `enable_agents`), its service rules in
//!   `service/catalog.rs`;
//! - **an endpoint**: a row in `service/routes.rs`, its handler in `service/read.rs` or
//!   `service/write.rs`, its discovery entry in `service/discovery.rs`;
//! - **a store**: implement [`ResourceStore`](store::ResourceStore) (start with [`store::Pushdown::Unsupported`]
//!   answers; the service completes them, up to `Limits::max_resources_scanned` candidates
//!   per request) and run `store::testing::run_contract_suite`
//!   (cargo feature `testing`) against it. Keyset paging
//!   ([`store::Paging::Keyset`], for cursors) is optional: a store that does not override
//!   [`ResourceStore::keyset_paging`](store::ResourceStore::keyset_paging) gets index queries and the service pages by keyset.
//!
//! ## Paging
//!
//! Lists and searches page by index (RFC 7644 §3.4.2.4, `startIndex`/`count`) unless the
//! client sends `cursor` (RFC 9865; empty for the first page). A cursor page holds the
//! `count` resources after the cursor's position in the *cursor order* (the sort value, then
//! the id: see [`store::Paging::Keyset`]), and `nextCursor` when more follow; the stores walk
//! an index from the position, so a page deep in the list costs what the first costs, and a
//! walk neither skips nor repeats a resource that exists throughout, whatever is created or
//! deleted between pages. Cursors are opaque and authenticated (HMAC-SHA256 over the
//! position and a hash of the tenant, the resource type, the filter and the sort, with the
//! key of [`service::ScimServiceBuilder::cursor_key`]: give every instance sharing a
//! database the same key); a cursor altered or presented for another query is 400
//! `invalidCursor`, one older than the cursor timeout 400 `expiredCursor`. `startIndex`
//! together with `cursor` is 400 `invalidValue`; with a cursor, a `count` outside
//! 0..=`maxPageSize` is 400 `invalidCount` (index paging keeps capping it). No
//! `previousCursor` is issued.
#![forbid(unsafe_code)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod auth;
pub mod error;
pub mod events;
pub mod feed;
pub mod filter;
pub mod follow;
pub mod patch;
pub mod resource;
pub mod schema;
pub mod service;
pub mod settings;
pub mod store;
pub mod tenant;
