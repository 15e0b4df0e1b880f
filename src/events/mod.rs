//! The provisioning log: one structured [`ProvisioningEvent`] per request, handed to a
//! host-provided [`EventSink`], and a store-backed [`ProvisioningLog`](crate::store::ProvisioningLog) to keep and read them.
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
//! To keep events, [`StoreEventSink`](crate::store::StoreEventSink) queues them (bounded, never blocking the request) for
//! an [`EventWriter`](crate::store::EventWriter) task the host spawns, which appends them in batches to a
//! [`ProvisioningLog`](crate::store::ProvisioningLog): [`MemoryStore`](crate::store::MemoryStore), the SQLite and the
//! PostgreSQL store implement it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::TokenId;
use crate::tenant::TenantId;

mod notes;

pub(crate) use notes::{collect_notes, merge_note, note, note_n};
pub use notes::{ToleranceKind, ToleranceNote};

/// One request as the provisioning log records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ProvisioningEvent {
    /// When the request arrived.
    pub time: DateTime<Utc>,
    /// The tenant named by the path, when it names an existing tenant (`None` for a path
    /// outside the mount point or naming no tenant, and with [`AuthFailure::UnknownTenant`]:
    /// such events reach the sink but no [`ProvisioningLog`](crate::store::ProvisioningLog) keeps them).
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
/// returned, so it must not block or do I/O: queue the event (as [`StoreEventSink`](crate::store::StoreEventSink) does) or
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

/// Which events a [`ProvisioningLog::query`](crate::store::ProvisioningLog::query) returns.
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

/// The most events one [`ProvisioningLog::query`](crate::store::ProvisioningLog::query) looks at.
pub const MAX_LOG_SCAN: usize = 10_000;

#[cfg(test)]
mod tests {
    use super::*;
    use notes::MAX_NOTES;

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
