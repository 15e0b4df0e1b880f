//! The provisioning log's events, over a corpus of requests: one event per request with the
//! right fields, the real reason of each 401 while clients get byte-identical answers, no
//! secret (token, password, writeOnly value) in any serialised event with body logging on or
//! off, and tolerance notes for what the tolerance layer dropped or rewrote.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{Duration, TimeZone, Utc};
use http::{Request, Response};
use scimkit::auth::{ManualClock, MemoryTenantStore, Tenants, TokenId};
use scimkit::schema::{AttributeDef, Mutability, Returned, Schema};
use scimkit::service::{PendingWrite, ScimService, WritePolicy};
use scimkit::store::MemoryStore;
use scimkit::{error::ScimError, schema::SchemaRegistry, settings::Settings, tenant::TenantId};
use scimkit::{
    events::{AuthFailure, OutcomeKind, ProvisioningEvent, ToleranceKind},
    store::StoreEventSink,
};
use serde_json::{json, Value};

const SECRETS_URN: &str = "urn:example:params:scim:schemas:extension:secrets:2.0:User";
const PASSWORDS: [&str; 6] = [
    "S3cret-pw-one",
    "S3cret-pw-two",
    "S3cret-pw-three",
    "S3cret-pw-four",
    "S3cret-pw-five",
    "S3cret-pw-six",
];
const PIN: &str = "PIN-739104";

type Events = Arc<Mutex<Vec<ProvisioningEvent>>>;

struct Setup {
    service: ScimService,
    plain: ScimService,
    events: Events,
    good: String,
    good_id: TokenId,
    revoked: String,
    revoked_id: TokenId,
    expired: String,
    expired_id: TokenId,
    foreign: String,
    off: String,
    secrets: Vec<String>,
    policy_saw: Arc<Mutex<Vec<Vec<ToleranceKind>>>>,
}

struct RecordNotes(Arc<Mutex<Vec<Vec<ToleranceKind>>>>);

#[async_trait]
impl WritePolicy for RecordNotes {
    async fn check(&self, write: &PendingWrite<'_>) -> Result<(), ScimError> {
        self.0
            .lock()
            .unwrap()
            .push(write.tolerances.iter().map(|n| n.kind).collect());
        Ok(())
    }
}

fn registry() -> SchemaRegistry {
    let mut reg = SchemaRegistry::default();
    reg.add_extension(
        "User",
        Schema {
            id: SECRETS_URN.into(),
            name: "Secrets".into(),
            description: String::new(),
            attributes: vec![
                AttributeDef::string("pinCode")
                    .mutability(Mutability::WriteOnly)
                    .returned(Returned::Never),
                AttributeDef::string("badge"),
            ],
        },
        false,
    )
    .unwrap();
    reg
}

async fn setup(log_bodies: bool) -> Setup {
    let start = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let tenants = Tenants::new(Arc::new(MemoryTenantStore::new()), clock.clone());
    let acme = TenantId::new("acme").unwrap();
    let other = TenantId::new("other").unwrap();
    let off = TenantId::new("off").unwrap();
    for t in [&acme, &other, &off] {
        tenants
            .create_tenant(t.clone(), t.as_str(), Settings::default())
            .await
            .unwrap();
    }
    let (good_rec, good) = tenants.issue_token(&acme, "okta", None).await.unwrap();
    let (revoked_rec, revoked) = tenants.issue_token(&acme, "old", None).await.unwrap();
    tenants.revoke_token(&acme, &revoked_rec.id).await.unwrap();
    let (expired_rec, expired) = tenants
        .issue_token(&acme, "short", Some(start + Duration::hours(1)))
        .await
        .unwrap();
    let (_, foreign) = tenants.issue_token(&other, "other", None).await.unwrap();
    let (_, off_token) = tenants.issue_token(&off, "off", None).await.unwrap();
    tenants.set_scim_enabled(&off, false).await.unwrap();
    clock.advance(Duration::hours(2));

    let events: Events = Arc::new(Mutex::new(Vec::new()));
    let sink_events = Arc::clone(&events);
    let policy_saw = Arc::new(Mutex::new(Vec::new()));
    let store = Arc::new(MemoryStore::new());
    let service = ScimService::builder(
        "https://app.example.com/scim/v2",
        store.clone(),
        Arc::clone(tenants.store()),
    )
    .registry(registry())
    .clock(clock.clone())
    .write_policy(RecordNotes(Arc::clone(&policy_saw)))
    .event_sink(move |e: &ProvisioningEvent| sink_events.lock().unwrap().push(e.clone()))
    .log_request_bodies(log_bodies)
    .build()
    .unwrap();
    // The same service without a sink: its answers are the reference.
    let plain = ScimService::builder(
        "https://app.example.com/scim/v2",
        store,
        Arc::clone(tenants.store()),
    )
    .registry(registry())
    .clock(clock)
    .build()
    .unwrap();
    let secrets = vec![
        good.expose_secret().to_owned(),
        revoked.expose_secret().to_owned(),
        expired.expose_secret().to_owned(),
        foreign.expose_secret().to_owned(),
        off_token.expose_secret().to_owned(),
    ];
    Setup {
        service,
        plain,
        events,
        good: good.expose_secret().to_owned(),
        good_id: good_rec.id,
        revoked: revoked.expose_secret().to_owned(),
        revoked_id: revoked_rec.id,
        expired: expired.expose_secret().to_owned(),
        expired_id: expired_rec.id,
        foreign: foreign.expose_secret().to_owned(),
        off: off_token.expose_secret().to_owned(),
        secrets,
        policy_saw,
    }
}

fn request(method: &str, path: &str, auth: Option<&str>, body: Option<&str>) -> Request<Bytes> {
    let mut b = Request::builder().method(method).uri(path);
    if let Some(a) = auth {
        b = b.header("Authorization", a);
    }
    if body.is_some() {
        b = b.header("Content-Type", "application/scim+json");
    }
    b.body(Bytes::from(body.unwrap_or("").to_owned())).unwrap()
}

impl Setup {
    /// Sends a request; exactly one event must come of it.
    async fn send(
        &self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<Value>,
    ) -> (Response<Bytes>, ProvisioningEvent) {
        self.send_raw(method, path, auth, body.map(|b| b.to_string()).as_deref())
            .await
    }

    async fn send_raw(
        &self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<&str>,
    ) -> (Response<Bytes>, ProvisioningEvent) {
        let before = self.events.lock().unwrap().len();
        let response = self.service.handle(request(method, path, auth, body)).await;
        let events = self.events.lock().unwrap();
        assert_eq!(
            events.len(),
            before + 1,
            "one event for {method} {path} (status {})",
            response.status()
        );
        let event = events.last().cloned().unwrap();
        assert_eq!(event.method, method);
        assert!(!event.path.contains('?'), "no query string: {}", event.path);
        assert_eq!(event.outcome.status, response.status().as_u16());
        (response, event)
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.good)
    }
}

fn body_json(r: &Response<Bytes>) -> Value {
    serde_json::from_slice(r.body()).unwrap()
}

fn kinds(e: &ProvisioningEvent) -> Vec<(ToleranceKind, String, u64)> {
    e.tolerances
        .iter()
        .map(|n| (n.kind, n.path.clone(), n.count))
        .collect()
}

/// The corpus: runs every request, asserts each event, and returns them all.
async fn corpus(s: &Setup) -> Vec<ProvisioningEvent> {
    let auth = s.bearer();
    let auth = Some(auth.as_str());
    let users = "/scim/v2/acme/Users";

    // A create with an unknown attribute, a string boolean, a read-only id, a password and
    // a writeOnly extension value.
    let (r, e) = s
        .send(
            "POST",
            &format!("{users}?attributes=userName"),
            auth,
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", SECRETS_URN],
                "id": "client-chosen",
                "userName": "alice@example.com",
                "password": PASSWORDS[0],
                "active": "False",
                "costCentre": "R&D",
                SECRETS_URN: {"pinCode": PIN, "badge": "B-1"}
            })),
        )
        .await;
    assert_eq!(r.status(), 201);
    let alice = body_json(&r)["id"].as_str().unwrap().to_owned();
    assert_eq!(e.tenant.as_ref().map(TenantId::as_str), Some("acme"));
    assert_eq!(e.token_id, Some(s.good_id));
    assert_eq!(e.path, users);
    assert_eq!(e.endpoint.as_deref(), Some("Users"));
    assert_eq!(e.resource_type.as_deref(), Some("User"));
    assert_eq!(e.resource_id.as_deref(), Some(alice.as_str()));
    assert_eq!(e.name.as_deref(), Some("alice@example.com"));
    assert_eq!(e.outcome_kind(), OutcomeKind::Tolerated);
    assert_eq!(e.auth_failure, None);
    let k = kinds(&e);
    assert!(
        k.contains(&(
            ToleranceKind::UnknownAttributeDropped,
            "costCentre".into(),
            1
        )),
        "{k:?}"
    );
    assert!(
        k.contains(&(ToleranceKind::StringBoolean, "active".into(), 1)),
        "{k:?}"
    );
    assert!(
        k.contains(&(ToleranceKind::ReadOnlyIgnored, "id".into(), 1)),
        "{k:?}"
    );
    assert_eq!(k.len(), 3, "{k:?}");
    let sb = e
        .tolerances
        .iter()
        .find(|n| n.kind == ToleranceKind::StringBoolean)
        .unwrap();
    assert!(sb.detail.contains("'False'"), "{}", sb.detail);
    // The host's write policy saw the same notes before the write committed.
    assert_eq!(
        s.policy_saw
            .lock()
            .unwrap()
            .last()
            .cloned()
            .unwrap_or_default(),
        [
            ToleranceKind::ReadOnlyIgnored,
            ToleranceKind::StringBoolean,
            ToleranceKind::UnknownAttributeDropped
        ]
    );

    // A plain create: a success, nothing tolerated.
    let (r, e) = s
        .send(
            "POST",
            users,
            auth,
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "bob@example.com",
                "password": PASSWORDS[1]
            })),
        )
        .await;
    assert_eq!(r.status(), 201);
    let bob = body_json(&r)["id"].as_str().unwrap().to_owned();
    assert_eq!(e.outcome_kind(), OutcomeKind::Success);
    assert!(e.tolerances.is_empty());
    assert_eq!(e.name.as_deref(), Some("bob@example.com"));

    // A group naming three ids that are no users: dropped, and said so.
    let (r, e) = s
        .send(
            "POST",
            "/scim/v2/acme/Groups",
            auth,
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Engineering",
                "members": [{"value": alice}, {"value": "ghost-1"}, {"value": "ghost-2"}, {"value": "ghost-3"}]
            })),
        )
        .await;
    assert_eq!(r.status(), 201);
    let group = body_json(&r)["id"].as_str().unwrap().to_owned();
    assert_eq!(e.resource_type.as_deref(), Some("Group"));
    assert_eq!(e.name.as_deref(), Some("Engineering"));
    assert_eq!(
        kinds(&e),
        [(ToleranceKind::UnknownMembersDropped, "members".into(), 3)]
    );
    assert!(
        e.tolerances[0]
            .detail
            .contains("dropped 3 unknown member ids"),
        "{}",
        e.tolerances[0].detail
    );
    assert_eq!(e.outcome_kind(), OutcomeKind::Tolerated);

    // A membership PATCH with one unknown id (Entra's `Add`).
    let (r, e) = s
        .send(
            "PATCH",
            &format!("/scim/v2/acme/Groups/{group}"),
            auth,
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "Add", "path": "members",
                                "value": [{"value": bob}, {"value": "ghost-4"}]}]
            })),
        )
        .await;
    assert!(r.status().is_success(), "{:?}", r.body());
    assert_eq!(e.resource_id.as_deref(), Some(group.as_str()));
    assert_eq!(e.name.as_deref(), Some("Engineering"));
    let k = kinds(&e);
    assert!(
        k.contains(&(ToleranceKind::UnknownMembersDropped, "members".into(), 1)),
        "{k:?}"
    );
    assert!(
        k.contains(&(ToleranceKind::PatchOpCase, "op".into(), 1)),
        "{k:?}"
    );

    // A replace with a new password.
    let (r, e) = s
        .send(
            "PUT",
            &format!("{users}/{alice}"),
            auth,
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "alice@example.com",
                "password": PASSWORDS[2],
                "active": true
            })),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(e.resource_id.as_deref(), Some(alice.as_str()));
    assert_eq!(e.name.as_deref(), Some("alice@example.com"));
    assert_eq!(e.outcome_kind(), OutcomeKind::Success);

    // PATCHes setting the password by path, URN path, path-less value, and the extension.
    let (r, e) = s
        .send(
            "PATCH",
            &format!("{users}/{alice}"),
            auth,
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [
                    {"op": "replace", "path": "password", "value": PASSWORDS[3]},
                    {"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User:password", "value": PASSWORDS[4]},
                    {"op": "replace", "value": {"password": PASSWORDS[5], "active": "true"}},
                    {"op": "replace", "path": format!("{SECRETS_URN}:pinCode"), "value": PIN},
                    {"op": "replace", "value": {SECRETS_URN: {"pinCode": PIN}}},
                    // Okta's echo of the id, and an unknown attribute, in a path-less value.
                    {"op": "replace", "value": {"id": alice, "costCentre": "R&D"}}
                ]
            })),
        )
        .await;
    assert!(r.status().is_success(), "{:?}", r.body());
    let k = kinds(&e);
    assert!(
        k.contains(&(ToleranceKind::ReadOnlyIgnored, "id".into(), 1)),
        "{k:?}"
    );
    assert!(
        k.contains(&(
            ToleranceKind::UnknownAttributeDropped,
            "costCentre".into(),
            1
        )),
        "{k:?}"
    );
    assert!(
        k.iter()
            .any(|(kind, path, _)| *kind == ToleranceKind::StringBoolean && path == "active"),
        "{k:?}"
    );
    assert_eq!(e.name.as_deref(), Some("alice@example.com"));

    // A list with a filter: no resource id, no query in the path.
    let (r, e) = s
        .send(
            "GET",
            &format!("{users}?filter=userName%20eq%20%22alice%40example.com%22"),
            auth,
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(e.path, users);
    assert_eq!(e.resource_id, None);
    assert_eq!(e.resource_type.as_deref(), Some("User"));
    assert!(!serde_json::to_string(&e).unwrap().contains("alice%40"));

    // A read.
    let (r, e) = s.send("GET", &format!("{users}/{alice}"), auth, None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(e.name.as_deref(), Some("alice@example.com"));

    // A delete.
    let (r, e) = s
        .send("DELETE", &format!("{users}/{bob}"), auth, None)
        .await;
    assert_eq!(r.status(), 204);
    assert_eq!(e.resource_id.as_deref(), Some(bob.as_str()));
    assert_eq!(
        e.name.as_deref(),
        Some("bob@example.com"),
        "the deleted user's name"
    );
    assert_eq!(e.outcome_kind(), OutcomeKind::Success);

    // Bulk: one event, a summary per operation.
    let (r, e) = s
        .send(
            "POST",
            "/scim/v2/acme/Bulk",
            auth,
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                "Operations": [
                    {"method": "POST", "path": "/Users", "bulkId": "c1",
                     "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                              "userName": "carol@example.com", "password": PASSWORDS[0],
                              SECRETS_URN: {"pinCode": PIN}}},
                    {"method": "POST", "path": "/Users", "bulkId": "c2",
                     "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"]}}
                ]
            })),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(e.endpoint.as_deref(), Some("Bulk"));
    assert_eq!(e.name, None);
    assert_eq!(e.resource_type, None);
    assert_eq!(e.operations.len(), 2, "{:?}", e.operations);
    assert_eq!(e.operations[0].status, 201);
    assert_eq!(e.operations[0].bulk_id.as_deref(), Some("c1"));
    assert_eq!(e.operations[1].status, 400);
    assert!(e.operations[1].detail.is_some());
    assert_eq!(
        e.outcome_kind(),
        OutcomeKind::Tolerated,
        "a failed operation shows"
    );

    // Discovery.
    let (r, e) = s
        .send("GET", "/scim/v2/acme/ServiceProviderConfig", auth, None)
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(e.endpoint.as_deref(), Some("ServiceProviderConfig"));
    assert_eq!(e.resource_type, None);

    // Bad JSON.
    let (r, e) = s
        .send_raw("POST", users, auth, Some("{\"userName\": "))
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(e.outcome.scim_type.as_deref(), Some("invalidSyntax"));
    assert!(e.outcome.detail.as_deref().is_some_and(|d| !d.is_empty()));
    assert_eq!(e.outcome_kind(), OutcomeKind::Failure);
    assert_eq!(e.body, None, "an unparseable body is not logged");

    // A failed write still names its user (from the request body).
    let (r, e) = s
        .send(
            "POST",
            users,
            auth,
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "alice@example.com",
                "password": PASSWORDS[1]
            })),
        )
        .await;
    assert_eq!(r.status(), 409);
    assert_eq!(e.name.as_deref(), Some("alice@example.com"));
    assert_eq!(e.outcome.scim_type.as_deref(), Some("uniqueness"));

    // Entra's shapes: an unqualified extension attribute, the manager as a bare id.
    let enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    let (r, e) = s
        .send(
            "POST",
            users,
            auth,
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", enterprise],
                "userName": "erin@example.com",
                "employeeNumber": "E-7",
                enterprise: {"manager": alice}
            })),
        )
        .await;
    assert_eq!(r.status(), 201, "{:?}", r.body());
    let k = kinds(&e);
    assert!(
        k.contains(&(
            ToleranceKind::UnqualifiedExtensionAttribute,
            "employeeNumber".into(),
            1
        )),
        "{k:?}"
    );
    assert!(
        k.contains(&(
            ToleranceKind::BareStringAsValue,
            format!("{enterprise}:manager"),
            1
        )),
        "{k:?}"
    );

    // A password of the wrong type: the error names the attribute, never the value.
    let (r, e) = s
        .send(
            "POST",
            users,
            auth,
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "dave@example.com",
                "password": 987_654_321_u64
            })),
        )
        .await;
    assert_eq!(r.status(), 400);
    assert!(e
        .outcome
        .detail
        .as_deref()
        .is_some_and(|d| d.contains("password")));
    assert!(!serde_json::to_string(&e).unwrap().contains("987654321"));

    // No such endpoint.
    let (r, e) = s.send("GET", "/scim/v2/acme/Nope", auth, None).await;
    assert_eq!(r.status(), 404);
    assert_eq!(e.endpoint.as_deref(), Some("Nope"));

    s.events.lock().unwrap().clone()
}

/// The 401 corpus: each reason reported truthfully, every client answer byte-identical to
/// the others and to the service without a sink.
async fn auth_failures(s: &Setup) {
    let users = "/scim/v2/acme/Users";
    let bearer = |t: &str| format!("Bearer {t}");
    let cases: Vec<(String, Option<String>, AuthFailure, Option<TokenId>)> = vec![
        (users.into(), None, AuthFailure::MissingAuthorization, None),
        (
            users.into(),
            Some("Basic YWxhZGRpbjpvcGVuc2VzYW1l".into()),
            AuthFailure::MalformedAuthorization,
            None,
        ),
        (
            users.into(),
            Some("Bearer not-a-scimkit-token".into()),
            AuthFailure::MalformedAuthorization,
            None,
        ),
        (
            users.into(),
            Some(bearer(&s.foreign)),
            AuthFailure::UnknownToken,
            None,
        ),
        (
            users.into(),
            Some(bearer(&s.revoked)),
            AuthFailure::Revoked,
            Some(s.revoked_id),
        ),
        (
            users.into(),
            Some(bearer(&s.expired)),
            AuthFailure::Expired,
            Some(s.expired_id),
        ),
        (
            "/scim/v2/off/Users".into(),
            Some(bearer(&s.off)),
            AuthFailure::ScimDisabled,
            None,
        ),
        (
            "/scim/v2/ghost/Users".into(),
            Some(bearer(&s.good)),
            AuthFailure::UnknownTenant,
            None,
        ),
    ];
    let mut bodies = Vec::new();
    for (path, auth, reason, token) in cases {
        let (r, e) = s.send("GET", &path, auth.as_deref(), None).await;
        assert_eq!(r.status(), 401, "{reason:?}");
        assert_eq!(e.auth_failure, Some(reason), "{path} {auth:?}");
        let tenant = path.split('/').nth(3).unwrap();
        let expected_tenant = (reason != AuthFailure::UnknownTenant).then_some(tenant);
        assert_eq!(
            e.tenant.as_ref().map(TenantId::as_str),
            expected_tenant,
            "{reason:?}"
        );
        if reason != AuthFailure::ScimDisabled {
            assert_eq!(e.token_id, token, "{reason:?}");
        }
        assert_eq!(e.outcome_kind(), OutcomeKind::Failure);
        let reference = s
            .plain
            .handle(request("GET", &path, auth.as_deref(), None))
            .await;
        assert_eq!(r.status(), reference.status());
        assert_eq!(r.headers(), reference.headers(), "{reason:?}");
        assert_eq!(r.body(), reference.body(), "{reason:?}");
        bodies.push((r.headers().clone(), r.body().clone()));
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "every 401 is the same"
    );

    // Through authorize (head first): the same reason, no body read.
    let head = request("GET", users, Some(&bearer(&s.revoked)), None)
        .into_parts()
        .0;
    let before = s.events.lock().unwrap().len();
    let refused = s.service.authorize(&head).await.unwrap_err();
    assert_eq!(refused.status(), 401);
    let events = s.events.lock().unwrap();
    assert_eq!(events.len(), before + 1);
    assert_eq!(
        events.last().unwrap().auth_failure,
        Some(AuthFailure::Revoked)
    );
}

fn assert_no_secret(events: &[ProvisioningEvent], secrets: &[String]) {
    for e in events {
        let text = serde_json::to_string(e).unwrap();
        for s in secrets
            .iter()
            .map(String::as_str)
            .chain(PASSWORDS)
            .chain([PIN])
        {
            assert!(!text.contains(s), "secret {s:?} in event {text}");
        }
    }
}

#[tokio::test]
async fn one_event_per_request_without_secrets() {
    let s = setup(false).await;
    let events = corpus(&s).await;
    auth_failures(&s).await;
    assert!(
        events.iter().all(|e| e.body.is_none()),
        "no bodies unless asked"
    );
    assert_no_secret(&s.events.lock().unwrap(), &s.secrets);
}

#[tokio::test]
async fn logged_bodies_leave_out_passwords_and_write_only_values() {
    let s = setup(true).await;
    let events = corpus(&s).await;
    auth_failures(&s).await;
    let all = s.events.lock().unwrap().clone();
    assert_no_secret(&all, &s.secrets);
    // Bodies are there, with everything else kept.
    let first = &events[0];
    let body = first.body.as_ref().expect("a logged body");
    assert_eq!(body["userName"], "alice@example.com");
    assert_eq!(body["costCentre"], "R&D");
    assert_eq!(body[SECRETS_URN]["badge"], "B-1");
    assert!(body.get("password").is_none());
    assert!(body[SECRETS_URN].get("pinCode").is_none());
    let bulk = events
        .iter()
        .find(|e| e.endpoint.as_deref() == Some("Bulk"))
        .unwrap();
    let data = &bulk.body.as_ref().unwrap()["Operations"][0]["data"];
    assert_eq!(data["userName"], "carol@example.com");
    // Reads and 401s carry no body.
    assert!(all
        .iter()
        .filter(|e| e.method == "GET" || e.auth_failure.is_some())
        .all(|e| e.body.is_none()));
}

/// The ready sink queues events for a writer task that appends them to a store's log.
#[tokio::test]
async fn store_event_sink_fills_the_log() {
    use scimkit::{events::LogFilter, store::ProvisioningLog};
    let tenants = Tenants::in_memory();
    let acme = TenantId::new("acme").unwrap();
    tenants
        .create_tenant(acme.clone(), "Acme", Settings::default())
        .await
        .unwrap();
    let (_, token) = tenants.issue_token(&acme, "okta", None).await.unwrap();
    let store = Arc::new(MemoryStore::new());
    let (sink, writer) = StoreEventSink::new(store.clone(), 2);
    let service = ScimService::builder(
        "https://app.example.com/scim/v2",
        store.clone(),
        Arc::clone(tenants.store()),
    )
    .event_sink(sink.clone())
    .build()
    .unwrap();
    let auth = format!("Bearer {}", token.expose_secret());
    for path in [
        "/scim/v2/acme/Users",
        "/scim/v2/acme/Groups",
        "/scim/v2/acme/Schemas",
    ] {
        let r = service
            .handle(request("GET", path, Some(&auth), None))
            .await;
        assert_eq!(r.status(), 200);
    }
    // Capacity 2: the third was dropped and counted, never blocking the request.
    assert_eq!(sink.queued(), 2);
    assert_eq!(sink.dropped(), 1);
    writer.flush().await;
    let page = store
        .query(&acme, &LogFilter::all(), None, 10)
        .await
        .unwrap();
    let paths: Vec<&str> = page.events.iter().map(|(_, e)| e.path.as_str()).collect();
    assert_eq!(paths, ["/scim/v2/acme/Groups", "/scim/v2/acme/Users"]);
    // The writer task ends when the service (and every sink) is gone.
    let task = tokio::spawn(writer.run());
    let r = service
        .handle(request("GET", "/scim/v2/acme/Users", None, None))
        .await;
    assert_eq!(r.status(), 401);
    drop(service);
    drop(sink);
    tokio::time::timeout(std::time::Duration::from_secs(30), task)
        .await
        .expect("the writer ends")
        .unwrap();
    let health = store.health(&acme).await.unwrap();
    assert_eq!((health.successes, health.failures), (2, 1));
    assert_eq!(
        health.last_error.unwrap().auth_failure,
        Some(AuthFailure::MissingAuthorization)
    );
}

/// A body the streaming adapter refuses (413 over the limit) is recorded too, with the
/// authorised caller's token.
#[cfg(feature = "tower")]
#[tokio::test]
async fn refused_bodies_are_recorded() {
    let s = setup(false).await;
    let big = "x".repeat(2 * 1024 * 1024);
    let request = http::Request::builder()
        .method("POST")
        .uri("/scim/v2/acme/Users")
        .header("Authorization", s.bearer())
        .header("Content-Type", "application/scim+json")
        .body(http_body_util::Full::new(Bytes::from(big)))
        .unwrap();
    let before = s.events.lock().unwrap().len();
    let r = s.service.serve_streaming(request).await;
    assert_eq!(r.status(), 413);
    let events = s.events.lock().unwrap();
    assert_eq!(events.len(), before + 1);
    let e = events.last().unwrap();
    assert_eq!(e.outcome.status, 413);
    assert_eq!(e.token_id, Some(s.good_id));
    assert_eq!(e.resource_type.as_deref(), Some("User"));
}
