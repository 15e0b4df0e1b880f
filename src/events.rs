//! The provisioning log: one structured [`ProvisioningEvent`] per request, handed to a
//! host-provided [`EventSink`], and a store-backed [`ProvisioningLog`] to keep and read them.
//!
//! The admin's question, when provisioning goes wrong, is "what did the identity provider
//! send, and what became of it?". [`ScimService`](crate::service::ScimService) answers it
//! with one event per request (a Bulk request is one event, with a summary per operation):
//! who called (tenant and token id, never the secret), what (method, path without the query
//! string, resource type and id, the `userName`/`displayName` involved), the outcome (status,
//! `scimType`, detail), how long it took, what the tolerance layer dropped or rewrote
//! ([`ToleranceNote`]), and for a 401 the real reason ([`AuthFailure`]), which the client
//! never sees (it gets the same uniform 401 whatever the reason).
//!
//! Set a sink with
//! [`ScimServiceBuilder::event_sink`](crate::service::ScimServiceBuilder::event_sink); without
//! one, no event is built. Request bodies are not in events unless
//! [`log_request_bodies`](crate::service::ScimServiceBuilder::log_request_bodies) is on, and
//! then without `password` and every attribute the schema marks `writeOnly` or
//! `returned: never`, at any depth.
//!
//! To keep events, [`StoreEventSink`] queues them (bounded, never blocking the request) for
//! an [`EventWriter`] task the host spawns, which appends them in batches to a
//! [`ProvisioningLog`]: [`MemoryStore`](crate::store::MemoryStore), the SQLite and the
//! PostgreSQL store implement it.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::TokenId;
use crate::store::{ChangeRetention, PruneReport, StoreError};
use crate::tenant::TenantId;

/// One request as the provisioning log records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ProvisioningEvent {
    /// When the request arrived.
    pub time: DateTime<Utc>,
    /// The tenant named by the path, when it names an existing tenant (`None` for a path
    /// outside the mount point or naming no tenant, and with [`AuthFailure::UnknownTenant`]:
    /// such events reach the sink but no [`ProvisioningLog`] keeps them).
    pub tenant: Option<TenantId>,
    /// The id of the scimkit token that authenticated the request (or was presented, for a
    /// 401 whose token was found). Never the secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<TokenId>,
    /// The subject a host's own [`TokenVerifier`](crate::auth::TokenVerifier) established,
    /// when it was not a scimkit token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The HTTP method.
    pub method: String,
    /// The request path, without the query string (filters carry e-mail addresses).
    pub path: String,
    /// The endpoint after the tenant (`Users`, `Groups`, `Bulk`, `ServiceProviderConfig`,
    /// ...), when the path has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The resource type acted on (`User`, `Group`), when the endpoint is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    /// The id of the resource acted on: from the path, or the id a create gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    /// The `userName` (Users) or `displayName` (Groups) involved: of the resource written,
    /// patched or deleted (as stored), else of the resource answered (a read), else from the
    /// request body (a failed create or replace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What the client got.
    pub outcome: Outcome,
    /// Time spent in the service, in microseconds.
    pub duration_micros: u64,
    /// What the tolerance layer dropped or rewrote, in the order it happened.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerances: Vec<ToleranceNote>,
    /// For a 401: why, truthfully (the client got the uniform answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_failure: Option<AuthFailure>,
    /// For a Bulk request: one summary per operation, in request order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operations: Vec<BulkOperationSummary>,
    /// The request body, when
    /// [`log_request_bodies`](crate::service::ScimServiceBuilder::log_request_bodies) is on
    /// and the body is JSON: without `password` and every `writeOnly` or `returned: never`
    /// attribute, at any depth (extensions, PATCH values, bulk data). A body over 64 KiB
    /// is replaced by `{"omitted": "<size>"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
}

impl ProvisioningEvent {
    /// An event for a request with `method` to `path` at `time`, with the given outcome and
    /// nothing else known; for hosts and tests that build events themselves (a host logging
    /// its own admin actions next to the IdP's, or a test filling a log).
    pub fn new(
        time: DateTime<Utc>,
        tenant: Option<TenantId>,
        method: impl Into<String>,
        path: impl Into<String>,
        outcome: Outcome,
    ) -> Self {
        ProvisioningEvent {
            time,
            tenant,
            token_id: None,
            subject: None,
            method: method.into(),
            path: path.into(),
            endpoint: None,
            resource_type: None,
            resource_id: None,
            name: None,
            outcome,
            duration_micros: 0,
            tolerances: Vec::new(),
            auth_failure: None,
            operations: Vec::new(),
            body: None,
        }
    }

    /// The event's class for filtering: a failure (status 400 or more), else tolerated when
    /// the tolerance layer did something, else a success.
    pub fn outcome_kind(&self) -> OutcomeKind {
        if self.outcome.status >= 400 {
            OutcomeKind::Failure
        } else if !self.tolerances.is_empty() || self.operations.iter().any(|o| o.status >= 400) {
            OutcomeKind::Tolerated
        } else {
            OutcomeKind::Success
        }
    }
}

/// What the client got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Outcome {
    /// The HTTP status.
    pub status: u16,
    /// The error's `scimType`, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scim_type: Option<String>,
    /// The error's `detail` (for a 401, the uniform detail the client got), if an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Outcome {
    /// A success with `status`.
    pub fn success(status: u16) -> Self {
        Outcome {
            status,
            scim_type: None,
            detail: None,
        }
    }

    /// An error answer.
    pub fn error(status: u16, scim_type: Option<String>, detail: impl Into<String>) -> Self {
        Outcome {
            status,
            scim_type,
            detail: Some(detail.into()),
        }
    }
}

/// The class of an event, for filtering the log (see [`ProvisioningEvent::outcome_kind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OutcomeKind {
    /// Answered below 400, nothing tolerated.
    Success,
    /// Answered 400 or above.
    Failure,
    /// Answered below 400, but the tolerance layer dropped or rewrote something (or a Bulk
    /// operation failed).
    Tolerated,
}

impl OutcomeKind {
    /// The name stored in the SQL logs: `success`, `failure`, `tolerated`.
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Success => "success",
            OutcomeKind::Failure => "failure",
            OutcomeKind::Tolerated => "tolerated",
        }
    }
}

/// Why a request was answered 401. Only the event carries it; every client gets
/// [`UNAUTHORIZED_DETAIL`](crate::auth::UNAUTHORIZED_DETAIL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum AuthFailure {
    /// No `Authorization` header.
    MissingAuthorization,
    /// An `Authorization` header that is not one `Bearer` token in scimkit's token format
    /// (or more than one such header).
    MalformedAuthorization,
    /// A well-formed token that no tenant has (never issued, or issued to another tenant).
    UnknownToken,
    /// A revoked token of this tenant.
    Revoked,
    /// An expired token of this tenant.
    Expired,
    /// A valid token, but SCIM is switched off for the tenant.
    ScimDisabled,
    /// The path names a tenant that does not exist.
    UnknownTenant,
    /// The host's own [`TokenVerifier`](crate::auth::TokenVerifier) refused the
    /// credentials (the service cannot tell why).
    RejectedByVerifier,
}

impl AuthFailure {
    /// A short human description for the admin.
    pub fn describe(self) -> &'static str {
        match self {
            AuthFailure::MissingAuthorization => "no Authorization header",
            AuthFailure::MalformedAuthorization => {
                "the Authorization header is not a single scimkit bearer token"
            }
            AuthFailure::UnknownToken => "unknown token (never issued for this tenant)",
            AuthFailure::Revoked => "the token was revoked",
            AuthFailure::Expired => "the token has expired",
            AuthFailure::ScimDisabled => "SCIM provisioning is switched off for the tenant",
            AuthFailure::UnknownTenant => "no such tenant",
            AuthFailure::RejectedByVerifier => "the host's verifier refused the credentials",
        }
    }
}

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

/// One operation of a Bulk request, as its event summarises it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct BulkOperationSummary {
    /// The operation's method.
    pub method: String,
    /// The operation's path (`/Users`, `/Groups/{id}`), as sent.
    pub path: String,
    /// The operation's `bulkId`, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bulk_id: Option<String>,
    /// The operation's status.
    pub status: u16,
    /// The operation's error `scimType`, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scim_type: Option<String>,
    /// The operation's error detail, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl BulkOperationSummary {
    /// A summary of an operation with `method` to `path` answered `status`.
    pub fn new(method: impl Into<String>, path: impl Into<String>, status: u16) -> Self {
        BulkOperationSummary {
            method: method.into(),
            path: path.into(),
            bulk_id: None,
            status,
            scim_type: None,
            detail: None,
        }
    }
}

/// Where the service hands its events: implemented by the host.
///
/// `record` is called on the request path, after the answer is ready and before it is
/// returned, so it must not block or do I/O: queue the event (as [`StoreEventSink`] does) or
/// hand it to a logger. It is a plain (not async) method for that reason, like
/// [`ChangeNotifier`](crate::feed::ChangeNotifier): an async sink would invite awaiting a
/// database on every SCIM request.
pub trait EventSink: Send + Sync {
    /// Takes one event.
    fn record(&self, event: &ProvisioningEvent);
}

impl<F> EventSink for F
where
    F: Fn(&ProvisioningEvent) + Send + Sync,
{
    fn record(&self, event: &ProvisioningEvent) {
        self(event)
    }
}

// ---------------------------------------------------------------------------------------------
// The log

/// A position in a tenant's log: events before it are older. Opaque; taken from
/// [`LogPage::next`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LogCursor(pub u64);

/// Which events a [`ProvisioningLog::query`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogFilter {
    /// Only events of this class.
    pub outcome: Option<OutcomeKind>,
    /// Only events about this resource type (`User`, `Group`).
    pub resource_type: Option<String>,
    /// Only events whose path, name, resource id, detail or tolerance notes contain this
    /// text (ASCII case-insensitive).
    pub text: Option<String>,
}

impl LogFilter {
    /// Every event.
    pub fn all() -> Self {
        LogFilter::default()
    }

    /// Only events of class `outcome`.
    pub fn outcome(mut self, outcome: OutcomeKind) -> Self {
        self.outcome = Some(outcome);
        self
    }

    /// Only events about `resource_type`.
    pub fn resource_type(mut self, resource_type: impl Into<String>) -> Self {
        self.resource_type = Some(resource_type.into());
        self
    }

    /// Only events containing `text`.
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    /// Whether `event` passes (what the SQL logs compute in the database).
    pub fn matches(&self, event: &ProvisioningEvent) -> bool {
        if self.outcome.is_some_and(|o| o != event.outcome_kind()) {
            return false;
        }
        if let Some(rt) = &self.resource_type {
            if event.resource_type.as_deref() != Some(rt.as_str()) {
                return false;
            }
        }
        match &self.text {
            Some(t) => search_text(event).contains(&t.to_ascii_lowercase()),
            None => true,
        }
    }
}

/// The text a [`LogFilter::text`] searches in, lowercased: path, name, resource id,
/// detail, auth failure and tolerance notes.
pub fn search_text(event: &ProvisioningEvent) -> String {
    let mut s = String::new();
    let mut add = |part: &str| {
        s.push_str(part);
        s.push('\n');
    };
    add(&event.method);
    add(&event.path);
    if let Some(n) = &event.name {
        add(n);
    }
    if let Some(id) = &event.resource_id {
        add(id);
    }
    if let Some(d) = &event.outcome.detail {
        add(d);
    }
    if let Some(a) = event.auth_failure {
        add(a.describe());
    }
    for n in &event.tolerances {
        add(&n.path);
        add(&n.detail);
    }
    for o in &event.operations {
        add(&o.path);
        if let Some(d) = &o.detail {
            add(d);
        }
    }
    s.to_ascii_lowercase()
}

/// A page of a tenant's log, newest first.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LogPage {
    /// The events, newest first, each with its position.
    pub events: Vec<(LogCursor, ProvisioningEvent)>,
    /// Where the next (older) page starts, when there may be one.
    pub next: Option<LogCursor>,
}

/// A tenant's connection health, kept up to date as events are appended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct TenantHealth {
    /// When the last request answered below 400 arrived.
    pub last_success: Option<DateTime<Utc>>,
    /// The last request answered 400 or above.
    pub last_error: Option<LastError>,
    /// Events recorded as successes (counted at append, not reduced by pruning).
    pub successes: u64,
    /// Events recorded as failures.
    pub failures: u64,
    /// Events recorded as tolerated.
    pub tolerated: u64,
}

impl TenantHealth {
    /// Counts `event` in.
    pub fn add(&mut self, event: &ProvisioningEvent) {
        match event.outcome_kind() {
            OutcomeKind::Success => self.successes += 1,
            OutcomeKind::Failure => self.failures += 1,
            OutcomeKind::Tolerated => self.tolerated += 1,
        }
        if event.outcome.status < 400 {
            if self.last_success.is_none_or(|t| t <= event.time) {
                self.last_success = Some(event.time);
            }
        } else if self
            .last_error
            .as_ref()
            .is_none_or(|e| e.time <= event.time)
        {
            self.last_error = Some(LastError {
                time: event.time,
                status: event.outcome.status,
                detail: event.outcome.detail.clone().unwrap_or_default(),
                auth_failure: event.auth_failure,
            });
        }
    }
}

/// The last failed request of a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct LastError {
    /// When it arrived.
    pub time: DateTime<Utc>,
    /// Its status.
    pub status: u16,
    /// Its detail.
    pub detail: String,
    /// For a 401, the real reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_failure: Option<AuthFailure>,
}

/// A store of provisioning events, per tenant: what [`EventWriter`] appends to and what an
/// admin console reads.
///
/// Implemented by [`MemoryStore`](crate::store::MemoryStore) (a bounded ring per tenant),
/// the SQLite and the PostgreSQL store (a table indexed by tenant and position, with a
/// per-tenant health row updated on append). Events without a tenant (a path naming no
/// valid tenant id) are not kept.
#[async_trait]
pub trait ProvisioningLog: Send + Sync {
    /// Appends `events` (in order: a later one is newer), in one transaction on the SQL
    /// stores.
    async fn append(&self, events: &[ProvisioningEvent]) -> Result<(), StoreError>;

    /// Up to `limit` (1 to 1,000) events of `tenant` passing `filter`, newest first,
    /// starting right before `before` (from the newest when `None`). Bounded work: at most
    /// [`MAX_LOG_SCAN`] positions are looked at per call, so a rare filter may answer a short
    /// (even empty) page with a `next` cursor to continue from; `next` is `None` when no
    /// older event remains.
    async fn query(
        &self,
        tenant: &TenantId,
        filter: &LogFilter,
        before: Option<LogCursor>,
        limit: usize,
    ) -> Result<LogPage, StoreError>;

    /// Removes the tenant's oldest events as `retention` says (older than `max_age` before
    /// `now`, beyond the `max_entries` newest), at most `max_removed_per_call`, in batches.
    /// `pruned_through` in the report is the position of the last event removed (0 if none
    /// ever was).
    async fn prune_log(
        &self,
        tenant: &TenantId,
        retention: &ChangeRetention,
        now: DateTime<Utc>,
    ) -> Result<PruneReport, StoreError>;

    /// The tenant's health: last success, last error and counts, as appended so far.
    async fn health(&self, tenant: &TenantId) -> Result<TenantHealth, StoreError>;
}

/// The most events one [`ProvisioningLog::query`] looks at.
pub const MAX_LOG_SCAN: usize = 10_000;

// ---------------------------------------------------------------------------------------------
// The ready sink

/// A ready [`EventSink`] that keeps events in a [`ProvisioningLog`] without slowing requests:
/// `record` puts the event in a bounded queue (dropping it, and counting, when the queue is
/// full: it never blocks), and an [`EventWriter`] that the host runs on its executor appends
/// them in batches.
///
/// ```
/// # async fn setup(store: std::sync::Arc<scimkit::store::MemoryStore>) {
/// use scimkit::events::StoreEventSink;
/// let (sink, writer) = StoreEventSink::new(store, 10_000);
/// tokio::spawn(writer.run());
/// // ScimService::builder(...).event_sink(sink.clone())
/// # let _ = sink;
/// # }
/// ```
#[derive(Clone)]
pub struct StoreEventSink {
    queue: Arc<Queue>,
    // Dropping the last sink closes the queue, ending the writer.
    _handle: Arc<CloseOnDrop>,
}

struct CloseOnDrop(Arc<Queue>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

impl fmt::Debug for StoreEventSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreEventSink")
            .field("capacity", &self.queue.capacity)
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

struct Queue {
    capacity: usize,
    state: Mutex<QueueState>,
    dropped: AtomicU64,
}

struct QueueState {
    events: VecDeque<ProvisioningEvent>,
    waker: Option<Waker>,
    closed: bool,
}

impl Queue {
    fn close(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.closed = true;
            if let Some(w) = s.waker.take() {
                w.wake();
            }
        }
    }
}

impl StoreEventSink {
    /// The events appended in one batch at most.
    pub const BATCH: usize = 500;

    /// A sink queueing up to `capacity` events for the writer to append to `log`.
    pub fn new(log: Arc<dyn ProvisioningLog>, capacity: usize) -> (StoreEventSink, EventWriter) {
        let queue = Arc::new(Queue {
            capacity: capacity.max(1),
            state: Mutex::new(QueueState {
                events: VecDeque::new(),
                waker: None,
                closed: false,
            }),
            dropped: AtomicU64::new(0),
        });
        let sink = StoreEventSink {
            queue: Arc::clone(&queue),
            _handle: Arc::new(CloseOnDrop(Arc::clone(&queue))),
        };
        (sink, EventWriter { queue, log })
    }

    /// How many events were dropped because the queue was full (or the writer failed to
    /// append them).
    pub fn dropped(&self) -> u64 {
        self.queue.dropped.load(Ordering::Relaxed)
    }

    /// How many events wait in the queue.
    pub fn queued(&self) -> usize {
        self.queue.state.lock().map_or(0, |s| s.events.len())
    }
}

impl EventSink for StoreEventSink {
    fn record(&self, event: &ProvisioningEvent) {
        let Ok(mut s) = self.queue.state.lock() else {
            self.queue.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if s.events.len() >= self.queue.capacity {
            drop(s);
            self.queue.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        s.events.push_back(event.clone());
        if let Some(w) = s.waker.take() {
            w.wake();
        }
    }
}

/// The task side of a [`StoreEventSink`]: run [`run`](Self::run) on the host's executor.
pub struct EventWriter {
    queue: Arc<Queue>,
    log: Arc<dyn ProvisioningLog>,
}

impl fmt::Debug for EventWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventWriter").finish_non_exhaustive()
    }
}

impl EventWriter {
    /// Appends queued events in batches of up to [`StoreEventSink::BATCH`] until every sink
    /// is dropped and the queue is empty. A batch the log fails to append is dropped (and
    /// counted in [`StoreEventSink::dropped`]) after logging the error: the log is
    /// best-effort, it must not grow without bound while its store is down.
    pub async fn run(self) {
        // One buffer for every batch: a batch is often a single event under load, and a
        // fresh vector per batch was a large allocation (an event is several hundred bytes)
        // freed right after, per request.
        let mut batch = Vec::new();
        while self.next_batch(&mut batch).await {
            self.write_slice(&batch).await;
            batch.clear();
        }
    }

    /// Appends what is queued now (in batches), without waiting for more; for tests and
    /// for hosts that flush on their own schedule.
    pub async fn flush(&self) {
        loop {
            let batch = self.take(StoreEventSink::BATCH);
            if batch.is_empty() {
                return;
            }
            self.write(batch).await;
        }
    }

    async fn write(&self, batch: Vec<ProvisioningEvent>) {
        self.write_slice(&batch).await;
    }

    async fn write_slice(&self, batch: &[ProvisioningEvent]) {
        if let Err(e) = self.log.append(batch).await {
            tracing::warn!(error = %e, events = batch.len(), "could not append provisioning events");
            let n = u64::try_from(batch.len()).unwrap_or(u64::MAX);
            self.queue.dropped.fetch_add(n, Ordering::Relaxed);
        }
    }

    fn take(&self, max: usize) -> Vec<ProvisioningEvent> {
        match self.queue.state.lock() {
            Ok(mut s) => {
                let n = s.events.len().min(max);
                s.events.drain(..n).collect()
            }
            Err(_) => Vec::new(),
        }
    }

    /// Waits for queued events and moves up to [`StoreEventSink::BATCH`] of them into the
    /// empty `out`: `false` once the queue is closed and empty (or poisoned).
    fn next_batch<'a>(&'a self, out: &'a mut Vec<ProvisioningEvent>) -> NextBatch<'a> {
        NextBatch {
            queue: &self.queue,
            out,
        }
    }
}

struct NextBatch<'a> {
    queue: &'a Queue,
    out: &'a mut Vec<ProvisioningEvent>,
}

impl Future for NextBatch<'_> {
    type Output = bool;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let Ok(mut s) = this.queue.state.lock() else {
            return Poll::Ready(false);
        };
        if !s.events.is_empty() {
            let n = s.events.len().min(StoreEventSink::BATCH);
            this.out.extend(s.events.drain(..n));
            return Poll::Ready(true);
        }
        if s.closed {
            return Poll::Ready(false);
        }
        s.waker = Some(cx.waker().clone());
        Poll::Pending
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_scoped_merged_and_bounded() {
        // Outside a collector: nothing happens, and the detail is never built.
        note(ToleranceKind::StringBoolean, "active", || unreachable!());
        let ((), outer) = collect_notes(|| {
            note(ToleranceKind::StringBoolean, "active", || "a".into());
            // A nested collection keeps its own notes, and the outer one resumes after it.
            let ((), inner) = collect_notes(|| {
                note(ToleranceKind::ReadOnlyIgnored, "id", || "i".into());
            });
            assert_eq!(inner.len(), 1);
            note(ToleranceKind::StringBoolean, "active", || "b".into());
            note_n(ToleranceKind::UnknownMembersDropped, "members", 3, || {
                "m".into()
            });
        });
        let got: Vec<_> = outer
            .iter()
            .map(|n| (n.kind, n.path.as_str(), n.count))
            .collect();
        assert_eq!(
            got,
            [
                (ToleranceKind::StringBoolean, "active", 2),
                (ToleranceKind::UnknownMembersDropped, "members", 3)
            ]
        );
        // Distinct notes stop at MAX_NOTES; the rest are counted in the last.
        let ((), many) = collect_notes(|| {
            for i in 0..(MAX_NOTES + 10) {
                note(
                    ToleranceKind::UnknownAttributeDropped,
                    &format!("a{i}"),
                    String::new,
                );
            }
        });
        assert_eq!(many.len(), MAX_NOTES);
        assert_eq!(many.last().map(|n| n.count), Some(11));
    }

    #[test]
    fn outcome_kinds() {
        let t = TenantId::new("t").ok();
        let mut e = ProvisioningEvent::new(Utc::now(), t, "GET", "/t/Users", Outcome::success(200));
        assert_eq!(e.outcome_kind(), OutcomeKind::Success);
        e.tolerances.push(ToleranceNote::new(
            ToleranceKind::ReadOnlyIgnored,
            "id",
            "x",
        ));
        assert_eq!(e.outcome_kind(), OutcomeKind::Tolerated);
        e.outcome = Outcome::error(400, None, "bad");
        assert_eq!(e.outcome_kind(), OutcomeKind::Failure);
        // The JSON form round-trips (the SQL logs store it).
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(serde_json::from_str::<ProvisioningEvent>(&json).unwrap(), e);
    }
}
