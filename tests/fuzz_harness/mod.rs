//! The whole-request fuzz harness, shared by the bounded proptest run in
//! `tests/fuzz_requests.rs` and the libFuzzer target `fuzz/fuzz_targets/handle.rs` (which
//! includes this file with `#[path]`).
//!
//! A [`Case`] is a tenant profile and a few requests. Each case runs against a fresh
//! [`ScimService`] on a [`MemoryStore`] with two tenants (`acme`, whose settings the profile
//! picks, and `other`), a bearer token for each, four users and two groups in `acme` and one
//! user in `other`. Requests are built from a vocabulary of real endpoints, headers and SCIM
//! bodies (the vectors of `tests/vectors/`, the store suite's filters, Okta/Entra PATCH and
//! Bulk shapes), mutated structurally, with raw bytes mixed in. Placeholders (`$TOKEN`, `$U0`,
//! `$G1`, `$NEW0`, `$ETAG_U0`...) stand for the tokens, ids and versions of the run, so that a
//! printed failing case can be pasted into a regression test as is.
//!
//! Invariants checked on every request (see [`check_response`] and [`run_case`]):
//! - no panic and no 5xx;
//! - every non-2xx answer but 304 is an RFC 7644 §3.12 error: `schemas` holds the Error URN,
//!   `status` is the HTTP status as a string, `scimType` (when present) is one of RFC 7644
//!   Table 9's, `detail` is a non-empty string; 401 carries `WWW-Authenticate`, 405 `Allow`;
//!   a 304 answers a GET with `If-None-Match` and has no body; every other body is JSON;
//! - a request that failed (non-2xx), a GET, and any 2xx `ListResponse` (a `.search`) changed
//!   nothing: every resource of both tenants (id, version, document, members) and the head of
//!   both change feeds are the same before and after;
//! - when [`ScimService::authorize`] refuses a request head, [`ScimService::handle`] gives
//!   the same answer for the whole request.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Wake, Waker};

use arbitrary::Unstructured;
use async_trait::async_trait;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use serde_json::{json, Map, Value};

use scimkit::auth::{Principal, Tenants};
use scimkit::service::{MeResolver, ScimService};
use scimkit::store::{ListQuery, MemoryStore, ResourceStore};
use scimkit::{
    error::ScimError, resource::ResourceId, settings::PatchResponse, settings::Settings,
    tenant::TenantId,
};

/// The public URL the service is built with; requests arrive under its path.
pub const PUBLIC_URL: &str = "https://app.example.com/scim/v2";

const ERROR_URN: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const LIST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// RFC 7644 §3.12, Table 9, and the cursor errors of RFC 9865 §3.
const SCIM_TYPES: &[&str] = &[
    "invalidFilter",
    "tooMany",
    "uniqueness",
    "mutability",
    "invalidSyntax",
    "invalidPath",
    "noTarget",
    "invalidValue",
    "invalidVersion",
    "sensitive",
    "invalidCursor",
    "expiredCursor",
    "invalidCount",
];

// ---------------------------------------------------------------------------------------
// Cases

/// The settings of tenant `acme` for one case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// `Settings::default()`: every IdP tolerance on.
    Default,
    /// `Settings::strict()`: every tolerance off.
    Strict,
    /// Default tolerances, tiny limits (payload, page, filter, Bulk, PATCH, member answers)
    /// and 204 answers to PATCH, so that the limits are reached.
    Tight,
}

impl Profile {
    fn settings(self) -> Settings {
        match self {
            Profile::Default => Settings::default(),
            Profile::Strict => Settings::strict(),
            Profile::Tight => {
                let mut s = Settings::default();
                s.limits.max_payload_bytes = 600;
                s.limits.max_membership_payload_bytes = 700;
                s.limits.bulk_max_payload_bytes = 900;
                s.limits.bulk_max_operations = 2;
                s.limits.max_patch_operations = 2;
                s.limits.max_page_size = 2;
                s.limits.max_filter_length = 40;
                s.limits.max_filter_depth = 2;
                s.limits.max_members_in_write_answer = 1;
                s.patch_response = PatchResponse::NoContent;
                s.group_patch_response = PatchResponse::NoContent;
                s.unique_group_display_name = false;
                s
            }
        }
    }
}

/// One request, with placeholders (see the module docs) resolved when it is sent.
#[derive(Clone, PartialEq, Eq)]
pub struct Spec {
    /// The method, as sent.
    pub method: String,
    /// Path and query, as sent (before placeholders are resolved).
    pub target: String,
    /// Header names and values.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body.
    pub body: Vec<u8>,
    /// Sent through `authorize` + `handle_authorized` instead of `handle`.
    pub two_step: bool,
}

impl fmt::Debug for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(String, String)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
            .collect();
        f.debug_struct("Spec")
            .field("method", &self.method)
            .field("target", &self.target)
            .field("headers", &headers)
            .field("body", &String::from_utf8_lossy(&self.body))
            .field("two_step", &self.two_step)
            .finish()
    }
}

impl Spec {
    /// A request with the `acme` token and, when `body` is not empty, the SCIM media type.
    pub fn new(method: &str, target: &str, body: &str) -> Spec {
        let mut headers = vec![("Authorization".to_owned(), b"Bearer $TOKEN".to_vec())];
        if !body.is_empty() {
            headers.push(("Content-Type".to_owned(), b"application/scim+json".to_vec()));
        }
        Spec {
            method: method.to_owned(),
            target: target.to_owned(),
            headers,
            body: body.as_bytes().to_vec(),
            two_step: false,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Spec {
        self.headers
            .push((name.to_owned(), value.as_bytes().to_vec()));
        self
    }

    /// Removes every header called `name`.
    pub fn without(mut self, name: &str) -> Spec {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self
    }
}

/// A profile and the requests to send, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// Tenant `acme`'s settings.
    pub profile: Profile,
    /// The requests.
    pub requests: Vec<Spec>,
}

impl Case {
    /// A case of one request.
    pub fn one(profile: Profile, spec: Spec) -> Case {
        Case {
            profile,
            requests: vec![spec],
        }
    }
}

// ---------------------------------------------------------------------------------------
// Running

/// Decodes `data` into a [`Case`] and runs it: the fuzz target's body.
pub fn run_bytes(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let case = Case::generate(&mut u);
    run_case(&case);
}

/// Runs `case` on a fresh world, checking every invariant; panics with the case, the step
/// and the answer on a violation. Returns the last answer's status and JSON body (`Null`
/// when it has none), for regression tests that look at it.
pub fn run_case(case: &Case) -> (StatusCode, Value) {
    run_case_answers(case)
        .pop()
        .unwrap_or((StatusCode::OK, Value::Null))
}

/// As [`run_case`], returning every answer.
pub fn run_case_answers(case: &Case) -> Vec<(StatusCode, Value)> {
    block_on(async {
        let mut world = World::new(case.profile).await;
        let mut answers = Vec::new();
        for (step, spec) in case.requests.iter().enumerate() {
            answers.push(world.send_checked(spec).await.unwrap_or_else(|violation| {
                panic!("invariant broken at request {step}: {violation}\ncase: {case:#?}")
            }));
        }
        answers
    })
}

struct FirstUser(Arc<Mutex<Option<ResourceId>>>);

#[async_trait]
impl MeResolver for FirstUser {
    async fn resolve(&self, _: &Principal) -> Result<Option<ResourceId>, ScimError> {
        Ok(self.0.lock().ok().and_then(|g| g.clone()))
    }
}

/// A fresh service with its two tenants and their resources.
pub struct World {
    service: ScimService,
    store: Arc<dyn ResourceStore>,
    acme: TenantId,
    other: TenantId,
    names: BTreeMap<String, String>,
    created: Vec<String>,
    page_limit: usize,
}

impl World {
    async fn new(profile: Profile) -> World {
        let tenants = Tenants::in_memory();
        let acme = TenantId::new("acme").unwrap();
        let other = TenantId::new("other").unwrap();
        // Seeded under the default settings (the tight profile's limits would refuse the
        // seeds), then switched to the profile's.
        tenants
            .create_tenant(acme.clone(), "Acme Okta", Settings::default())
            .await
            .unwrap();
        tenants
            .create_tenant(other.clone(), "Other Entra", Settings::default())
            .await
            .unwrap();
        let (_, token) = tenants.issue_token(&acme, "okta", None).await.unwrap();
        let (_, other_token) = tenants.issue_token(&other, "entra", None).await.unwrap();
        let me = Arc::new(Mutex::new(None));
        let store: Arc<dyn ResourceStore> = Arc::new(MemoryStore::new());
        let service = ScimService::builder(PUBLIC_URL, store.clone(), tenants.store().clone())
            .me_resolver(Arc::new(FirstUser(me.clone())))
            .build()
            .unwrap();
        let mut names = BTreeMap::new();
        names.insert("TOKEN".to_owned(), token.expose_secret().to_owned());
        names.insert(
            "OTHER_TOKEN".to_owned(),
            other_token.expose_secret().to_owned(),
        );
        let mut world = World {
            service,
            store,
            acme,
            other,
            names,
            created: Vec::new(),
            page_limit: profile.settings().limits.max_page_size,
        };
        for i in 0..4 {
            let id = world
                .seed("acme", "Users", &scimkit::store::testing::generated_user(i))
                .await;
            world.names.insert(format!("U{i}"), id);
        }
        let (u0, u1) = (world.names["U0"].clone(), world.names["U1"].clone());
        let g0 = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Sales", "externalId": "g-ext-0",
            "members": [{"value": u0}, {"value": u1}]});
        let id = world.seed("acme", "Groups", &g0).await;
        world.names.insert("G0".to_owned(), id);
        let g1 = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Empty"});
        let id = world.seed("acme", "Groups", &g1).await;
        world.names.insert("G1".to_owned(), id);
        let o0 = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "user0@example.com"});
        let id = world.seed("other", "Users", &o0).await;
        world.names.insert("O0".to_owned(), id);
        if let Ok(mut g) = me.lock() {
            *g = Some(ResourceId::new(world.names["U0"].clone()));
        }
        tenants
            .update_settings(&world.acme, profile.settings())
            .await
            .unwrap();
        world
    }

    async fn seed(&self, tenant: &str, endpoint: &str, doc: &Value) -> String {
        let token = if tenant == "acme" {
            &self.names["TOKEN"]
        } else {
            &self.names["OTHER_TOKEN"]
        };
        let request = Request::post(format!("/scim/v2/{tenant}/{endpoint}"))
            .header("Authorization", format!("Bearer {token}"))
            .header("Content-Type", "application/scim+json")
            .body(Bytes::from(serde_json::to_vec(doc).unwrap()))
            .unwrap();
        let response = self.service.handle(request).await;
        let body: Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(response.status(), StatusCode::CREATED, "seeding: {body}");
        body["id"].as_str().unwrap().to_owned()
    }

    /// Resolves the placeholders of `text`.
    async fn resolve(&self, text: &str) -> String {
        if !text.contains('$') {
            return text.to_owned();
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            let len = after
                .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(after.len());
            let name = &after[..len];
            match self.lookup(name).await {
                Some(v) => out.push_str(&v),
                None => {
                    out.push('$');
                    out.push_str(name);
                }
            }
            rest = &after[len..];
        }
        out.push_str(rest);
        out
    }

    async fn lookup(&self, name: &str) -> Option<String> {
        if let Some(v) = self.names.get(name) {
            return Some(v.clone());
        }
        if let Some(n) = name.strip_prefix("NEW") {
            let n: usize = n.parse().ok()?;
            return Some(
                self.created
                    .get(n)
                    .cloned()
                    .unwrap_or_else(|| format!("never-created-{n}")),
            );
        }
        if let Some(r) = name.strip_prefix("ETAG_") {
            let id = Box::pin(self.lookup(r)).await?;
            let id = ResourceId::new(id);
            let registry = self.service.registry();
            for def in [registry.user(), registry.group()].into_iter().flatten() {
                if let Ok(res) = self.store.get(&self.acme, def, &id, false).await {
                    return Some(res.version.etag());
                }
            }
            return Some("W/\"1\"".to_owned());
        }
        None
    }

    /// The request `spec` stands for in this world, or `None` when `http` cannot carry it
    /// (an invalid URI, method or header), so no server would ever see it.
    async fn build(&self, spec: &Spec) -> Option<Request<Bytes>> {
        let method = Method::from_bytes(spec.method.as_bytes()).ok()?;
        let target = self.resolve(&spec.target).await;
        let mut b = Request::builder().method(method).uri(target);
        for (name, value) in &spec.headers {
            let value = match std::str::from_utf8(value) {
                Ok(s) => self.resolve(s).await.into_bytes(),
                Err(_) => value.clone(),
            };
            let name = http::HeaderName::from_bytes(name.as_bytes()).ok()?;
            let value = http::HeaderValue::from_bytes(&value).ok()?;
            b = b.header(name, value);
        }
        let body = match std::str::from_utf8(&spec.body) {
            Ok(s) => self.resolve(s).await.into_bytes(),
            Err(_) => spec.body.clone(),
        };
        b.body(Bytes::from(body)).ok()
    }

    /// Sends `request` (through `authorize` first), checking that a refused head gets the
    /// same answer from `handle`, and that an authorised one is given the body limit
    /// `ScimService::body_limit` announces for its method and path.
    async fn send(
        &self,
        request: Request<Bytes>,
        two_step: bool,
    ) -> Result<Response<Bytes>, String> {
        let (parts, body) = request.into_parts();
        match self.service.authorize(&parts).await {
            Err(refusal) => {
                let whole = self.service.handle(Request::from_parts(parts, body)).await;
                if (refusal.status(), refusal.body()) != (whole.status(), whole.body()) {
                    return Err(format!(
                        "authorize refused with {} {:?}, handle answered {} {:?}",
                        refusal.status(),
                        refusal.body(),
                        whole.status(),
                        whole.body()
                    ));
                }
                Ok(refusal)
            }
            Ok(authorized) => {
                let announced = self
                    .service
                    .body_limit(parts.method.as_str(), parts.uri.path())
                    .await;
                if authorized.body_limit() != announced {
                    return Err(format!(
                        "authorize gives a body limit of {}, body_limit({}, {}) {announced}",
                        authorized.body_limit(),
                        parts.method,
                        parts.uri.path()
                    ));
                }
                let request = Request::from_parts(parts, body);
                Ok(if two_step {
                    self.service.handle_authorized(authorized, request).await
                } else {
                    self.service.handle(request).await
                })
            }
        }
    }

    /// Sends `spec` and checks every invariant; the answer, or what broke. A request `http`
    /// cannot carry is skipped (answered `(200, Null)`).
    async fn send_checked(&mut self, spec: &Spec) -> Result<(StatusCode, Value), String> {
        let Some(request) = self.build(spec).await else {
            return Ok((StatusCode::OK, Value::Null));
        };
        let path = request.uri().path().to_owned();
        let before = self.snapshot().await;
        let response = self.send(request, spec.two_step).await?;
        let after = self.snapshot().await;
        check_response(spec, &response, &before, &after, self.page_limit)?;
        self.check_target(spec, &path, &response, &after)?;
        self.learn(&response);
        let body = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
        self.check_read_back(spec, response.status(), &body).await?;
        Ok((response.status(), body))
    }

    /// After a 2xx DELETE of `{tenant}/{endpoint}/{id}` the resource is gone; after a 2xx
    /// PUT or PATCH answered with an `ETag`, the resource has that version.
    fn check_target(
        &self,
        spec: &Spec,
        path: &str,
        response: &Response<Bytes>,
        after: &Snapshot,
    ) -> Result<(), String> {
        if !response.status().is_success() {
            return Ok(());
        }
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let id = match segments.as_slice() {
            ["scim", "v2", "acme", "Me"] => self.names["U0"].as_str(),
            ["scim", "v2", "acme" | "other", "Users" | "Groups", id] if !id.contains('%') => id,
            _ => return Ok(()),
        };
        let stored = after.resources.iter().find(|r| r.2 == id);
        match spec.method.as_str() {
            "DELETE" if stored.is_some() => Err(format!("{id} is still there after a 2xx DELETE")),
            "PUT" | "PATCH" => {
                let etag = response.headers().get("ETag").and_then(|v| v.to_str().ok());
                let stored = stored.map(|r| format!("W/\"{}\"", r.3));
                match etag {
                    Some(e) if stored.as_deref() != Some(e) => Err(format!(
                        "a 2xx {} of {id} answered ETag {e}, the store has {stored:?}",
                        spec.method
                    )),
                    _ => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    /// A 2xx write answered with the whole resource (no `attributes` or
    /// `excludedAttributes`): a GET of its `meta.location` answers the same representation
    /// (but for a group's `members`, which a write answer may leave out).
    async fn check_read_back(
        &self,
        spec: &Spec,
        status: StatusCode,
        body: &Value,
    ) -> Result<(), String> {
        let write = matches!(spec.method.as_str(), "POST" | "PUT" | "PATCH");
        let projected = spec.target.to_ascii_lowercase().contains("attributes");
        let location = body
            .get("meta")
            .and_then(|m| m.get("location"))
            .and_then(Value::as_str);
        let (true, false, true, Some(location)) = (write, projected, status.is_success(), location)
        else {
            return Ok(());
        };
        let Some(path) = location.strip_prefix("https://app.example.com") else {
            return Err(format!(
                "meta.location {location} is not under the public URL"
            ));
        };
        let token = if path.starts_with("/scim/v2/acme/") {
            &self.names["TOKEN"]
        } else {
            &self.names["OTHER_TOKEN"]
        };
        let Ok(request) = Request::get(path)
            .header("Authorization", format!("Bearer {token}"))
            .body(Bytes::new())
        else {
            return Err(format!("meta.location {location} is not a valid URI"));
        };
        let read = self.service.handle(request).await;
        let mut read_body: Value = serde_json::from_slice(read.body()).unwrap_or(Value::Null);
        if read.status() != StatusCode::OK {
            return Err(format!(
                "GET of the written resource answers {}: {read_body}",
                read.status()
            ));
        }
        if body.get("members").is_none() {
            if let Some(m) = read_body.as_object_mut() {
                m.remove("members");
            }
        }
        if &read_body != body {
            return Err(format!(
                "the write answered\n{body}\nbut a GET of it answers\n{read_body}"
            ));
        }
        Ok(())
    }

    /// Remembers the ids a successful create or Bulk made, for `$NEWn`.
    fn learn(&mut self, response: &Response<Bytes>) {
        if !response.status().is_success() {
            return;
        }
        let Ok(body) = serde_json::from_slice::<Value>(response.body()) else {
            return;
        };
        if response.status() == StatusCode::CREATED {
            if let Some(id) = body.get("id").and_then(Value::as_str) {
                self.created.push(id.to_owned());
            }
        }
        if let Some(ops) = body.get("Operations").and_then(Value::as_array) {
            for op in ops {
                let created = op.get("status").and_then(Value::as_str) == Some("201");
                if let (true, Some(loc)) = (created, op.get("location").and_then(Value::as_str)) {
                    if let Some(id) = loc.rsplit('/').next() {
                        self.created.push(id.to_owned());
                    }
                }
            }
        }
    }

    /// Every resource of both tenants and the head of both change feeds.
    async fn snapshot(&self) -> Snapshot {
        let mut resources = Vec::new();
        let mut feeds = Vec::new();
        for tenant in [&self.acme, &self.other] {
            for def in self.service.registry().resource_types() {
                let query = ListQuery {
                    include_members: true,
                    ..ListQuery::default()
                };
                let page = self
                    .store
                    .list(tenant, def, &query)
                    .await
                    .expect("listing a tenant");
                for r in page.resources {
                    let members: Vec<String> = r
                        .members
                        .unwrap_or_default()
                        .into_iter()
                        .map(|m| m.value.as_str().to_owned())
                        .collect();
                    resources.push((
                        tenant.as_str().to_owned(),
                        r.resource_type,
                        r.id.as_str().to_owned(),
                        r.version.get(),
                        r.doc.to_string(),
                        members,
                    ));
                }
            }
            let changes = self
                .store
                .changes_since(tenant, 0, usize::MAX)
                .await
                .expect("reading the change feed");
            feeds.push((changes.len(), changes.last().map(|c| c.seq)));
        }
        resources.sort();
        Snapshot { resources, feeds }
    }
}

/// What a request may not change.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    resources: Vec<(String, String, String, u64, String, Vec<String>)>,
    feeds: Vec<(usize, Option<u64>)>,
}

/// The invariants of one answer (see the module docs).
pub fn check_response(
    spec: &Spec,
    response: &Response<Bytes>,
    before: &Snapshot,
    after: &Snapshot,
    page_limit: usize,
) -> Result<(), String> {
    let status = response.status();
    let raw = response.body();
    let text = String::from_utf8_lossy(raw);
    if status.is_server_error() {
        return Err(format!("{status}: {text}"));
    }
    let is_get = spec.method == "GET" || spec.method == "HEAD";
    if status == StatusCode::NOT_MODIFIED {
        let asked = spec
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("If-None-Match"));
        if !(is_get && asked && raw.is_empty()) {
            return Err(format!("304 to a request that did not ask for it: {text}"));
        }
    } else if !status.is_success() {
        check_error_body(status, raw)?;
        let header = |name: &str| response.headers().contains_key(name);
        if status == StatusCode::UNAUTHORIZED && !header("WWW-Authenticate") {
            return Err("401 without WWW-Authenticate".to_owned());
        }
        if status == StatusCode::METHOD_NOT_ALLOWED && !header("Allow") {
            return Err("405 without Allow".to_owned());
        }
    } else if !raw.is_empty() && serde_json::from_slice::<Value>(raw).is_err() {
        return Err(format!("{status} with a body that is not JSON: {text}"));
    }
    let body: Option<Value> = serde_json::from_slice(raw).ok();
    if !raw.is_empty() {
        let media = response
            .headers()
            .get("Content-Type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !media.starts_with("application/scim+json") {
            return Err(format!("{status} body with Content-Type `{media}`: {text}"));
        }
    }
    let listed = status.is_success()
        && body
            .as_ref()
            .and_then(|b| b.get("schemas"))
            .and_then(Value::as_array)
            .is_some_and(|s| s.iter().any(|u| u == LIST_URN));
    if (!status.is_success() || is_get || listed) && before != after {
        return Err(format!(
            "a {} answer to a {} changed the tenant data\nbefore: {before:?}\nafter: {after:?}\nanswer: {text}",
            status,
            if listed { "list or search" } else { spec.method.as_str() }
        ));
    }
    if let (true, Some(b)) = (listed, &body) {
        // Discovery lists (schemas, resource types) are not pages of resources.
        let discovery = spec.target.contains("/Schemas") || spec.target.contains("/ResourceTypes");
        check_list(b, if discovery { usize::MAX } else { page_limit })?;
    }
    if let (true, Some(b)) = (status.is_success() && !listed, &body) {
        check_resource_answer(spec, response, b, after)?;
    }
    Ok(())
}

/// A 2xx `ListResponse` is consistent and no longer than the tenant's page size.
fn check_list(body: &Value, page_limit: usize) -> Result<(), String> {
    let n = body
        .get("Resources")
        .map_or(Some(0), |r| r.as_array().map(Vec::len))
        .ok_or_else(|| format!("Resources is not an array: {body}"))?;
    let total = body.get("totalResults").and_then(Value::as_u64);
    let per_page = body.get("itemsPerPage").and_then(Value::as_u64);
    match (total, per_page) {
        (Some(t), Some(p)) if p == n as u64 && t >= p && n <= page_limit => Ok(()),
        _ => Err(format!(
            "inconsistent ListResponse ({n} resources, page size {page_limit}): {body}"
        )),
    }
}

/// A 2xx answer carrying a resource of the tenant: its `ETag` is its `meta.version`, and
/// both are the version the store now holds (unless it was just deleted).
fn check_resource_answer(
    spec: &Spec,
    response: &Response<Bytes>,
    body: &Value,
    after: &Snapshot,
) -> Result<(), String> {
    let Some(id) = body.get("id").and_then(Value::as_str) else {
        return Ok(());
    };
    let etag = response.headers().get("ETag").and_then(|v| v.to_str().ok());
    let meta_version = body
        .get("meta")
        .and_then(|m| m.get("version"))
        .and_then(Value::as_str);
    if let (Some(e), Some(m)) = (etag, meta_version) {
        if e != m {
            return Err(format!("ETag {e} but meta.version {m}: {body}"));
        }
    }
    let Some(shown) = etag.or(meta_version) else {
        return Ok(());
    };
    if spec.method == "DELETE" {
        return Ok(());
    }
    let stored = after
        .resources
        .iter()
        .find(|r| r.2 == id)
        .map(|r| format!("W/\"{}\"", r.3));
    if stored.as_deref() != Some(shown) {
        return Err(format!(
            "the answer shows version {shown} of {id}, the store has {stored:?}: {body}"
        ));
    }
    Ok(())
}

/// RFC 7644 §3.12: the body of a non-2xx answer.
pub fn check_error_body(status: StatusCode, raw: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(raw);
    let body: Value = serde_json::from_slice(raw)
        .map_err(|e| format!("{status} body is not JSON ({e}): {text}"))?;
    let schemas_ok = body
        .get("schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| s.iter().any(|u| u == ERROR_URN));
    if !schemas_ok {
        return Err(format!("{status} body lacks the Error schema: {text}"));
    }
    if body.get("status").and_then(Value::as_str) != Some(status.as_str()) {
        return Err(format!("{status} body has another status: {text}"));
    }
    match body.get("scimType") {
        None => {}
        Some(Value::String(t)) if SCIM_TYPES.contains(&t.as_str()) => {}
        Some(other) => {
            return Err(format!(
                "{status} with scimType {other} not in RFC 7644 or RFC 9865: {text}"
            ))
        }
    }
    match body.get("detail").and_then(Value::as_str) {
        Some(d) if !d.trim().is_empty() => Ok(()),
        _ => Err(format!("{status} without a detail: {text}")),
    }
}

/// Runs a future to completion on this thread (the service needs no executor: the
/// MemoryStore never waits, and the default retry pause yields once).
pub fn block_on<F: Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return v,
            Poll::Pending => std::thread::park(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Generation. Choice 0 is always the ordinary, valid option, so that short inputs (and an
// exhausted `Unstructured`, which answers 0) make meaningful requests.

fn index(u: &mut Unstructured, len: usize) -> usize {
    if len <= 1 {
        return 0;
    }
    u.int_in_range(0..=len - 1).unwrap_or(0)
}

fn pick<'a, T>(u: &mut Unstructured, items: &'a [T]) -> &'a T {
    &items[index(u, items.len())]
}

/// The first item seven times in eight, else any: for choices where the first is the valid
/// one and the others are there to probe the error paths.
fn mostly_first<'a, T>(u: &mut Unstructured, items: &'a [T]) -> &'a T {
    if one_in(u, 8) {
        pick(u, items)
    } else {
        &items[0]
    }
}

fn flag(u: &mut Unstructured) -> bool {
    u.arbitrary::<bool>().unwrap_or(false)
}

/// True about once in `n` times (never on exhausted input).
fn one_in(u: &mut Unstructured, n: u8) -> bool {
    u.int_in_range(0..=n.saturating_sub(1)).unwrap_or(1) == 0 && !u.is_empty()
}

fn raw_string(u: &mut Unstructured, max: usize) -> String {
    let len = u.int_in_range(0..=max).unwrap_or(0);
    let bytes = u.bytes(len.min(u.len())).unwrap_or(&[]);
    String::from_utf8_lossy(bytes).into_owned()
}

fn raw_bytes(u: &mut Unstructured, max: usize) -> Vec<u8> {
    let len = u.int_in_range(0..=max).unwrap_or(0);
    u.bytes(len.min(u.len())).unwrap_or(&[]).to_vec()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    None,
    User,
    Group,
    Patch,
    Bulk,
    Search,
}

/// What a request means to do: its method, the path after the tenant, its body.
const INTENTS: &[(&str, &str, BodyKind)] = &[
    ("GET", "Users", BodyKind::None),
    ("GET", "Users/$U0", BodyKind::None),
    ("POST", "Users", BodyKind::User),
    ("PUT", "Users/$U1", BodyKind::User),
    ("PATCH", "Users/$U0", BodyKind::Patch),
    ("DELETE", "Users/$U3", BodyKind::None),
    ("GET", "Groups", BodyKind::None),
    ("GET", "Groups/$G0", BodyKind::None),
    ("POST", "Groups", BodyKind::Group),
    ("PUT", "Groups/$G0", BodyKind::Group),
    ("PATCH", "Groups/$G0", BodyKind::Patch),
    ("DELETE", "Groups/$G1", BodyKind::None),
    ("POST", ".search", BodyKind::Search),
    ("POST", "Users/.search", BodyKind::Search),
    ("POST", "Groups/.search", BodyKind::Search),
    ("POST", "Bulk", BodyKind::Bulk),
    ("GET", "Me", BodyKind::None),
    ("PATCH", "Me", BodyKind::Patch),
    ("PUT", "Me", BodyKind::User),
    ("DELETE", "Me", BodyKind::None),
    ("PATCH", "Groups/$G1", BodyKind::Patch),
    ("PATCH", "Users/$NEW0", BodyKind::Patch),
    ("GET", "Users/$NEW0", BodyKind::None),
    ("GET", "ServiceProviderConfig", BodyKind::None),
    ("GET", "ResourceTypes", BodyKind::None),
    ("GET", "ResourceTypes/User", BodyKind::None),
    ("GET", "Schemas", BodyKind::None),
    (
        "GET",
        "Schemas/urn:ietf:params:scim:schemas:core:2.0:Group",
        BodyKind::None,
    ),
];

const METHODS: &[&str] = &[
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT", "get",
    "PROPFIND",
];

const MOUNTS: &[&str] = &[
    "/scim/v2",
    "/scim/v2/",
    "/scim",
    "",
    "/SCIM/v2",
    "/scim/v2x",
    "/scim/v2/.",
    "/scim/v2/..",
    "/scim//v2",
];

const TENANTS: &[&str] = &[
    "acme", "other", "nobody", "", "ACME", "%61cme", "acme%2Fx", "%", "%ff", ".", "..", "acme%00",
];

const TAILS: &[&str] = &[
    "Users",
    "Groups",
    "Users/$U0",
    "Users/$U2",
    "Groups/$G0",
    "Groups/$G1",
    "Users/$G0",
    "Groups/$U0",
    "Users/$O0",
    "Users/$NEW0",
    "Groups/$NEW0",
    "Users/$NEW1",
    "Users/no-such-id",
    "Users/",
    "Users//$U0",
    "Users/$U0/",
    "Users/$U0/extra",
    "users",
    "Users/%24U0",
    "Users/%2e%2e",
    "Users/..",
    "Users/%00",
    "Users/%C3%A9",
    "Users/%ff%fe",
    ".search",
    "Users/.search",
    "Groups/.search",
    "Users/.search/x",
    "Bulk",
    "Bulk/x",
    "Me",
    "Me/x",
    "ServiceProviderConfig",
    "ServiceProviderConfig/x",
    "ResourceTypes",
    "ResourceTypes/User",
    "ResourceTypes/Group",
    "ResourceTypes/Nope",
    "Schemas",
    "Schemas/urn:ietf:params:scim:schemas:core:2.0:User",
    "Schemas/urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
    "Schemas/nope",
    "",
    "Nope",
    "Nope/.search",
];

const ID_REFS: &[&str] = &[
    "$U0", "$U1", "$U2", "$U3", "$G0", "$G1", "$O0", "$NEW0", "$NEW1", "missing", "", "%20",
];

/// Attribute paths (sortBy, attributes, PATCH paths, keys).
const ATTRS: &[&str] = &[
    "userName",
    "name.givenName",
    "name.familyName",
    "name",
    "displayName",
    "emails",
    "emails.value",
    "emails.type",
    "emails.primary",
    "emails[type eq \"work\"].value",
    "emails[type eq \"work\"]",
    "phoneNumbers",
    "addresses.locality",
    "members",
    "members.value",
    "members.display",
    "members[value eq \"$U0\"]",
    "groups",
    "groups.value",
    "active",
    "externalId",
    "id",
    "meta",
    "meta.lastModified",
    "meta.created",
    "meta.location",
    "meta.resourceType",
    "meta.version",
    "title",
    "nickName",
    "password",
    "schemas",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
    "urn:ietf:params:scim:schemas:core:2.0:User:userName",
    "urn:ietf:params:scim:schemas:core:2.0:Group:displayName",
    "nope",
    "nope.deeper",
    "",
    ",",
    "userName,emails",
    "emails[",
    "[",
    "\"",
    "emails.value.x",
];

const QUERY_KEYS: &[&str] = &[
    "filter",
    "sortBy",
    "sortOrder",
    "attributes",
    "excludedAttributes",
    "startIndex",
    "count",
    "FILTER",
    "Count",
    "cursor",
    "",
    "x",
];

const NUMBERS: &[&str] = &[
    "1",
    "2",
    "0",
    "-1",
    "3",
    "1000",
    "1001",
    "-9223372036854775808",
    "9223372036854775807",
    "18446744073709551616",
    "1.5",
    "1e3",
    "",
    "abc",
    " 2",
    "+2",
    "0x10",
];

const SORT_ORDERS: &[&str] = &["ascending", "descending", "", "DESCENDING", "up"];

fn filters() -> &'static [String] {
    static FILTERS: OnceLock<Vec<String>> = OnceLock::new();
    FILTERS.get_or_init(|| {
        let mut f = scimkit::store::testing::user_filters();
        f.extend(scimkit::store::testing::group_filters(&[
            "$U0".to_owned(),
            "$U1".to_owned(),
            "$G1".to_owned(),
        ]));
        f.extend(
            [
                "userName eq \"user0@example.com\"",
                "emails[type eq \"work\" and value co \"@\"]",
                "members.value eq \"$U0\"",
                "meta.lastModified gt \"2011-05-13T04:42:34Z\"",
                "meta.location pr",
                "not (active eq true)",
                "displayName eq \"Sales\"",
                "emails.type ne \"work\"",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq \"1\"",
                "userName eq",
                "((((((userName pr))))))",
                "userName gt 5",
                "active eq \"true\"",
                "userName eq \"a\" and",
                "(userName eq \"a\"",
                "name[givenName eq \"x\"].familyName pr",
                "emails[value eq \"a\"].value eq \"a\"",
                "id eq \"$NEW0\"",
                "meta.created ge \"not a date\"",
                "x eq 1e999",
                "userName eq \"\\u0000\"",
                "userName sw \"\\\"\"",
            ]
            .iter()
            .map(|s| (*s).to_owned()),
        );
        f
    })
}

/// A filter from the vocabulary, sometimes cut, spliced or raw.
fn gen_filter(u: &mut Unstructured) -> String {
    let base = pick(u, filters()).clone();
    match index(u, 6) {
        0 | 1 => base,
        2 => {
            let cut = index(u, base.len() + 1);
            base.char_indices()
                .map(|(i, _)| i)
                .chain([base.len()])
                .find(|&i| i >= cut)
                .map_or(base.clone(), |i| base[..i].to_owned())
        }
        3 => {
            let other = pick(u, filters()).clone();
            let join = pick(u, &[" and ", " or ", " ", "", " and not "]);
            format!("{base}{join}({other})")
        }
        4 => {
            let mut s = base;
            let at = index(u, s.len() + 1);
            if s.is_char_boundary(at) {
                s.insert_str(at, &raw_string(u, 8));
            }
            s
        }
        _ => raw_string(u, 60),
    }
}

/// Percent-encodes what a URI cannot carry, leaving everything else (including `%`) as is
/// when `raw`, else encoding `%`, `&`, `=`, `+` and `#` too.
fn encode(s: &str, raw: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let keep = b.is_ascii_alphanumeric()
            || b"-._~!$'()*,;:@/".contains(&b)
            || (raw && b"%&=+".contains(&b));
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn gen_query(u: &mut Unstructured) -> String {
    let n = index(u, 5);
    let mut parts = Vec::new();
    for _ in 0..n {
        let key = *pick(u, QUERY_KEYS);
        let value = match key.to_ascii_lowercase().as_str() {
            "filter" => gen_filter(u),
            "sortby" | "attributes" | "excludedattributes" => {
                if one_in(u, 3) {
                    format!("{},{}", pick(u, ATTRS), pick(u, ATTRS))
                } else {
                    (*pick(u, ATTRS)).to_owned()
                }
            }
            "sortorder" => (*pick(u, SORT_ORDERS)).to_owned(),
            "startindex" | "count" => {
                if one_in(u, 4) {
                    u.arbitrary::<i64>().unwrap_or(0).to_string()
                } else {
                    (*pick(u, NUMBERS)).to_owned()
                }
            }
            _ => raw_string(u, 12),
        };
        let raw = one_in(u, 4);
        let value = if one_in(u, 3) {
            encode(&value, raw).replace("%20", "+")
        } else {
            encode(&value, raw)
        };
        parts.push(format!("{}={value}", encode(key, false)));
    }
    parts.join("&")
}

fn gen_path(u: &mut Unstructured, intent_tail: &str) -> String {
    let mount = *mostly_first(u, MOUNTS);
    let tenant = *mostly_first(u, TENANTS);
    let tail = match index(u, 8) {
        0..=4 => intent_tail.to_owned(),
        5 => (*pick(u, TAILS)).to_owned(),
        6 => {
            // The intent's endpoint with another id.
            let endpoint = intent_tail.split('/').next().unwrap_or("Users");
            format!("{endpoint}/{}", pick(u, ID_REFS))
        }
        _ => {
            let n = 1 + index(u, 3);
            (0..n)
                .map(|_| encode(&raw_string(u, 10), one_in(u, 2)).replace('/', "%2F"))
                .collect::<Vec<_>>()
                .join("/")
        }
    };
    format!("{mount}/{tenant}/{tail}")
}

const AUTHS: &[&str] = &[
    "Bearer $TOKEN",
    "Bearer $OTHER_TOKEN",
    "",
    "Bearer wrong",
    "Basic YWxhZGRpbjpvcGVuc2VzYW1l",
    "bearer $TOKEN",
    "Bearer  $TOKEN",
    "Bearer $TOKENx",
    "Bearer",
    "Bearer ",
    "$TOKEN",
    "Bearer scimkit_",
];

const CONTENT_TYPES: &[&str] = &[
    "application/scim+json",
    "application/json; charset=utf-8",
    "application/scim+json;charset=utf-8",
    "text/plain",
    "application/x-www-form-urlencoded",
    "APPLICATION/SCIM+JSON",
    "application/scim+json;;;",
    "",
    "application/json-patch+json",
];

const ETAGS: &[&str] = &[
    "$ETAG_U0",
    "*",
    "$ETAG_G0",
    "W/\"1\"",
    "W/\"999\"",
    "\"1\"",
    "W/\"1\", $ETAG_U0",
    "garbage",
    "",
    "W/\"-1\"",
    "W/\"18446744073709551616\"",
    "$ETAG_NEW0",
];

fn gen_headers(u: &mut Unstructured, has_body: bool) -> Vec<(String, Vec<u8>)> {
    let mut h = Vec::new();
    match index(u, 10) {
        0..=6 => h.push(("Authorization".to_owned(), b"Bearer $TOKEN".to_vec())),
        7 => {}
        8 => h.push((
            "Authorization".to_owned(),
            pick(u, AUTHS).as_bytes().to_vec(),
        )),
        _ => h.push(("Authorization".to_owned(), raw_bytes(u, 40))),
    }
    match index(u, 8) {
        0..=4 if has_body => h.push(("Content-Type".to_owned(), b"application/scim+json".to_vec())),
        0..=4 => {}
        5 => {}
        6 => h.push((
            "Content-Type".to_owned(),
            pick(u, CONTENT_TYPES).as_bytes().to_vec(),
        )),
        _ => h.push(("Content-Type".to_owned(), raw_bytes(u, 30))),
    }
    for name in ["If-Match", "If-None-Match"] {
        match index(u, 6) {
            0..=3 => {}
            4 => h.push((name.to_owned(), pick(u, ETAGS).as_bytes().to_vec())),
            _ => h.push((name.to_owned(), raw_bytes(u, 20))),
        }
    }
    if one_in(u, 8) {
        // A second Authorization, or any other header.
        let name = (*pick(u, &["Authorization", "Content-Type", "Accept", "X-Other"])).to_owned();
        h.push((name, pick(u, AUTHS).as_bytes().to_vec()));
    }
    h
}

fn corpus(kind: BodyKind) -> &'static [Value] {
    static CORPUS: OnceLock<BTreeMap<&'static str, Vec<Value>>> = OnceLock::new();
    let all = CORPUS.get_or_init(build_corpus);
    let key = match kind {
        BodyKind::None | BodyKind::User => "user",
        BodyKind::Group => "group",
        BodyKind::Patch => "patch",
        BodyKind::Bulk => "bulk",
        BodyKind::Search => "search",
    };
    all.get(key).map_or(&[], Vec::as_slice)
}

fn build_corpus() -> BTreeMap<&'static str, Vec<Value>> {
    let parse = |s: &str| serde_json::from_str::<Value>(s).expect("corpus JSON");
    let mut users: Vec<Value> = [
        include_str!("../vectors/rfc7643_8_1_minimal_user.json"),
        include_str!("../vectors/rfc7643_8_2_full_user.json"),
        include_str!("../vectors/rfc7643_8_3_enterprise_user.json"),
        include_str!("../vectors/entra_post_user.json"),
        include_str!("../vectors/okta_put_user_echo.json"),
        include_str!("../vectors/onelogin_user_single_email.json"),
    ]
    .iter()
    .map(|s| parse(s))
    .collect();
    users.insert(
        0,
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "fuzz@example.com", "active": true,
            "name": {"givenName": "Fuzz", "familyName": "Tester"},
            "emails": [{"value": "fuzz@example.com", "type": "work", "primary": true}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":
                {"employeeNumber": "7", "manager": {"value": "$U0"}}}),
    );
    // A userName taken by a seeded user, in other case (409 `uniqueness`).
    users.push(
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "USER1@example.com"}),
    );
    if let Value::Array(list) = parse(include_str!("../vectors/filter-users.json")) {
        users.extend(list);
    }
    let groups = vec![
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Fuzzers", "members": [{"value": "$U2"}, {"value": "$G1", "type": "Group"}]}),
        parse(include_str!("../vectors/rfc7643_8_4_group.json")),
        parse(include_str!("../vectors/entra_post_group.json")),
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Sales", "members": [{"value": "$U0", "type": "User"}, {"value": "$G0"}]}),
        json!({"displayName": "Self", "members": [{"value": "$G0"}, {"value": "$O0"}, {"value": "$NEW0"}]}),
    ];
    let mut patches = vec![
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": "$U2", "display": "u2"}]}]}),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "Add", "path": "members", "value": [{"value": "$U3"}, {"value": "$G1"}]}]}),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "Remove", "path": "members", "value": [{"value": "$U0"}]}]}),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "remove", "path": "members[value eq \"$U1\"]"}]}),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "members", "value": [{"value": "$U3"}]},
                           {"op": "replace", "value": {"displayName": "Renamed", "id": "$G0"}}]}),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "value": {"active": false}}]}),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "Replace", "path": "active", "value": "False"},
                           {"op": "Add", "path": "emails[type eq \"work\"].value", "value": "w@example.com"},
                           {"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "$U1"}]}),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "remove", "path": "emails[type eq \"work\"]"},
                           {"op": "add", "path": "userName", "value": "user1@example.com"}]}),
    ];
    for set in [
        include_str!("../vectors/patch/okta.json"),
        include_str!("../vectors/patch/entra.json"),
        include_str!("../vectors/patch/rfc7644.json"),
        include_str!("../vectors/patch/errors.json"),
        include_str!("../vectors/patch/strict.json"),
        include_str!("../vectors/patch/tolerances.json"),
    ] {
        if let Value::Array(list) = parse(set) {
            patches.extend(list.into_iter().filter_map(|v| v.get("request").cloned()));
        }
    }
    let bulk = vec![
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
            "Operations": [
                {"method": "POST", "path": "/Users", "bulkId": "u",
                 "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "bulk@example.com"}},
                {"method": "POST", "path": "/Groups", "bulkId": "g",
                 "data": {"displayName": "Bulk", "members": [{"value": "bulkId:u"}, {"value": "$U1"}]}},
                {"method": "PATCH", "path": "/Groups/$G0",
                 "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                          "Operations": [{"op": "add", "path": "members", "value": [{"value": "bulkId:u"}]}]}},
                {"method": "DELETE", "path": "/Users/$U3", "version": "W/\"1\""},
                {"method": "PUT", "path": "/Users/$U2",
                 "data": {"userName": "user2@example.com", "active": false}}]}),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "failOnErrors": 1,
            "Operations": [
                {"method": "POST", "path": "/Users", "bulkId": "a",
                 "data": {"userName": "user0@example.com"}},
                {"method": "POST", "path": "/Users", "bulkId": "b",
                 "data": {"userName": "b@example.com"}}]}),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
            "Operations": [
                {"method": "POST", "path": "/Groups", "bulkId": "x",
                 "data": {"displayName": "X", "members": [{"value": "bulkId:y"}]}},
                {"method": "POST", "path": "/Groups", "bulkId": "y",
                 "data": {"displayName": "Y", "members": [{"value": "bulkId:x"}]}}]}),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
            "Operations": [
                {"method": "GET", "path": "/Users/$U0"},
                {"method": "DELETE", "path": "/Groups/$G1"},
                {"method": "PATCH", "path": "/Users/$U1", "version": "$ETAG_U1",
                 "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                          "Operations": [{"op": "replace", "path": "active", "value": false}]}}]}),
    ];
    let search = vec![
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": "userName sw \"user\"", "startIndex": 1, "count": 2,
            "sortBy": "userName", "sortOrder": "descending", "attributes": ["userName", "emails"]}),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "excludedAttributes": ["members"], "count": 0}),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": "members.value eq \"$U0\"", "sortBy": "emails.value"}),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": "meta.location pr", "startIndex": -5, "count": 1000000}),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}),
    ];
    let mut m = BTreeMap::new();
    m.insert("user", users);
    m.insert("group", groups);
    m.insert("patch", patches);
    m.insert("bulk", bulk);
    m.insert("search", search);
    m
}

const KEYS: &[&str] = &[
    "schemas",
    "userName",
    "displayName",
    "members",
    "value",
    "op",
    "path",
    "Operations",
    "method",
    "bulkId",
    "data",
    "version",
    "failOnErrors",
    "filter",
    "startIndex",
    "count",
    "sortBy",
    "attributes",
    "id",
    "meta",
    "emails",
    "active",
    "name",
    "externalId",
    "type",
    "primary",
    "$ref",
    "display",
    "password",
    "groups",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
    "USERNAME",
    "",
];

const STRINGS: &[&str] = &[
    "$U0",
    "$G0",
    "$NEW0",
    "$O0",
    "bulkId:u",
    "bulkId:nope",
    "user1@example.com",
    "",
    "   ",
    "True",
    "False",
    "add",
    "remove",
    "replace",
    "Add",
    "urn:ietf:params:scim:schemas:core:2.0:User",
    "urn:ietf:params:scim:schemas:core:2.0:Group",
    "urn:ietf:params:scim:api:messages:2.0:PatchOp",
    "urn:ietf:params:scim:api:messages:2.0:BulkRequest",
    "urn:ietf:params:scim:api:messages:2.0:SearchRequest",
    "/Users",
    "/Groups/$G0",
    "/Users/$U0",
    "W/\"1\"",
    "2011-05-13T04:42:34Z",
    "User",
    "Group",
    "\u{0}",
    "İstanbul",
    "ß",
];

fn gen_scalar(u: &mut Unstructured) -> Value {
    match index(u, 10) {
        0 | 1 => {
            let s = *pick(u, STRINGS);
            Value::String(s.to_owned())
        }
        2 => Value::String((*pick(u, ATTRS)).to_owned()),
        3 => Value::String(raw_string(u, 20)),
        4 => Value::Null,
        5 => Value::Bool(flag(u)),
        6 => json!(u.arbitrary::<i64>().unwrap_or(0)),
        7 => json!(*pick(u, &[0i64, 1, -1, 2, 1000, i64::MAX, i64::MIN])),
        8 => json!(*pick(u, &[1.5f64, -0.0, 1e300, 0.1])),
        _ => json!(u64::MAX),
    }
}

fn gen_value(u: &mut Unstructured, depth: usize) -> Value {
    if depth == 0 {
        return gen_scalar(u);
    }
    match index(u, 6) {
        0..=3 => gen_scalar(u),
        4 => Value::Array((0..index(u, 4)).map(|_| gen_value(u, depth - 1)).collect()),
        _ => {
            let mut m = Map::new();
            for _ in 0..index(u, 4) {
                let k = (*pick(u, KEYS)).to_owned();
                m.insert(k, gen_value(u, depth - 1));
            }
            Value::Object(m)
        }
    }
}

/// One structural mutation somewhere in `v`.
fn mutate(u: &mut Unstructured, v: &mut Value, depth: usize) {
    let descend = depth < 6 && index(u, 3) != 0;
    match v {
        Value::Object(m) if descend && !m.is_empty() => {
            let i = index(u, m.len());
            if let Some((_, child)) = m.iter_mut().nth(i) {
                return mutate(u, child, depth + 1);
            }
        }
        Value::Array(a) if descend && !a.is_empty() => {
            let i = index(u, a.len());
            if let Some(child) = a.get_mut(i) {
                return mutate(u, child, depth + 1);
            }
        }
        _ => {}
    }
    match (index(u, 6), &mut *v) {
        (0, Value::Object(m)) if !m.is_empty() => {
            let i = index(u, m.len());
            if let Some(k) = m.keys().nth(i).cloned() {
                m.remove(&k);
            }
        }
        (1, Value::Object(m)) => {
            let k = (*pick(u, KEYS)).to_owned();
            let val = gen_value(u, 2);
            m.insert(k, val);
        }
        (0, Value::Array(a)) if !a.is_empty() => {
            let i = index(u, a.len());
            a.remove(i);
        }
        (1, Value::Array(a)) if !a.is_empty() => {
            let i = index(u, a.len());
            let dup = a[i].clone();
            a.push(dup);
        }
        (2, _) => *v = Value::Array(vec![v.take()]),
        (3, Value::Array(a)) if !a.is_empty() => *v = a.remove(0),
        _ => *v = gen_value(u, 2),
    }
}

fn gen_body(u: &mut Unstructured, kind: BodyKind) -> Vec<u8> {
    let kind = match index(u, 8) {
        0..=5 => kind,
        6 => *pick(
            u,
            &[
                BodyKind::User,
                BodyKind::Group,
                BodyKind::Patch,
                BodyKind::Bulk,
                BodyKind::Search,
            ],
        ),
        _ => {
            return match index(u, 4) {
                0 => Vec::new(),
                1 => raw_bytes(u, 200),
                2 => {
                    let depth = 1 + index(u, 3000);
                    let open = pick(u, &["[", "{\"a\":"]);
                    open.repeat(depth).into_bytes()
                }
                _ => b" \n ".to_vec(),
            }
        }
    };
    if kind == BodyKind::None {
        return if one_in(u, 4) {
            serde_json::to_vec(pick(u, corpus(BodyKind::User))).unwrap_or_default()
        } else {
            Vec::new()
        };
    }
    let mut value = pick(u, corpus(kind)).clone();
    for _ in 0..index(u, 4) {
        mutate(u, &mut value, 0);
    }
    let mut text = serde_json::to_string(&value).unwrap_or_default();
    match index(u, 10) {
        0..=6 => {}
        7 => {
            // A repeated key (strict mode refuses it, tolerant mode keeps the last).
            if let Some(at) = text.find('{') {
                let key = pick(u, KEYS);
                text.insert_str(at + 1, &format!("\"{key}\":\"dup\","));
            }
        }
        8 => {
            let cut = index(u, text.len() + 1);
            text.truncate(
                (0..=cut)
                    .rev()
                    .find(|&i| text.is_char_boundary(i))
                    .unwrap_or(0),
            );
        }
        _ => {
            let mut bytes = text.into_bytes();
            let at = index(u, bytes.len() + 1);
            let extra = raw_bytes(u, 8);
            let tail = bytes.split_off(at.min(bytes.len()));
            bytes.extend(extra);
            bytes.extend(tail);
            return bytes;
        }
    }
    text.into_bytes()
}

impl Spec {
    /// One request from `u`.
    pub fn generate(u: &mut Unstructured) -> Spec {
        let &(intent_method, tail, kind) = pick(u, INTENTS);
        let method = match index(u, 10) {
            0..=7 => intent_method.to_owned(),
            8 => (*pick(u, METHODS)).to_owned(),
            _ => raw_string(u, 8),
        };
        let mut target = gen_path(u, tail);
        if kind == BodyKind::None || one_in(u, 3) {
            let query = gen_query(u);
            if !query.is_empty() {
                target.push('?');
                target.push_str(&query);
            }
        }
        let body = gen_body(u, kind);
        let headers = gen_headers(u, !body.is_empty());
        let two_step = flag(u);
        Spec {
            method,
            target,
            headers,
            body,
            two_step,
        }
    }
}

impl Case {
    /// A case from `u`: a profile and one to four requests.
    pub fn generate(u: &mut Unstructured) -> Case {
        let profile = *pick(u, &[Profile::Default, Profile::Strict, Profile::Tight]);
        let n = 1 + index(u, 4);
        let requests = (0..n).map(|_| Spec::generate(u)).collect();
        Case { profile, requests }
    }
}

#[cfg(test)]
mod checks {
    use super::*;

    fn answer(status: u16, body: &str, headers: &[(&str, &str)]) -> Response<Bytes> {
        let mut b = Response::builder().status(status);
        if !body.is_empty() {
            b = b.header("Content-Type", "application/scim+json; charset=utf-8");
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Bytes::from(body.to_owned())).unwrap()
    }

    fn snapshot(version: u64) -> Snapshot {
        Snapshot {
            resources: vec![(
                "acme".into(),
                "User".into(),
                "u1".into(),
                version,
                "{}".into(),
                vec![],
            )],
            feeds: vec![(version as usize, Some(version))],
        }
    }

    const ERROR_400: &str = r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"400","scimType":"invalidValue","detail":"bad"}"#;

    /// Each invariant rejects the answer that breaks it, and accepts the one that keeps it.
    #[test]
    fn each_invariant_can_fail() {
        let get = Spec::new("GET", "/scim/v2/acme/Users/u1", "");
        let post = Spec::new("POST", "/scim/v2/acme/Users", "{}");
        let (v1, v2) = (snapshot(1), snapshot(2));
        let check = |spec: &Spec, r: &Response<Bytes>, after: &Snapshot| {
            check_response(spec, r, &v1, after, 2)
        };
        // 5xx, and errors that change data.
        assert!(check(&get, &answer(500, ERROR_400, &[]), &v1).is_err());
        assert!(check(&post, &answer(400, ERROR_400, &[]), &v1).is_ok());
        assert!(check(&post, &answer(400, ERROR_400, &[]), &v2).is_err());
        // A GET changes nothing; a write may.
        let user = r#"{"id":"u1","meta":{"version":"W/\"2\""}}"#;
        let etag = [("ETag", "W/\"2\"")];
        assert!(check(&get, &answer(200, user, &etag), &v2).is_err());
        assert!(check(&post, &answer(201, user, &etag), &v2).is_ok());
        // The version shown is the stored one, in the header and the body alike.
        assert!(check(&post, &answer(201, user, &etag), &v1).is_err());
        assert!(check(&post, &answer(201, user, &[("ETag", "W/\"3\"")]), &v2).is_err());
        // 304 only for If-None-Match, without a body.
        assert!(check(&get, &answer(304, "", &[]), &v1).is_err());
        let conditional = get.clone().header("If-None-Match", "W/\"1\"");
        assert!(check(&conditional, &answer(304, "", &[]), &v1).is_ok());
        // 401 and 405 carry their headers.
        let e401 = ERROR_400
            .replace("400", "401")
            .replace(r#""scimType":"invalidValue","#, "");
        assert!(check(&get, &answer(401, &e401, &[]), &v1).is_err());
        assert!(check(
            &get,
            &answer(401, &e401, &[("WWW-Authenticate", "Bearer")]),
            &v1
        )
        .is_ok());
        // A list is consistent and within the page size; a search changes nothing.
        let list = |n: usize, per_page: usize| {
            let resources: Vec<Value> = (0..n).map(|i| json!({"id": i.to_string()})).collect();
            json!({"schemas": [LIST_URN], "totalResults": 5, "itemsPerPage": per_page,
                   "startIndex": 1, "Resources": resources})
            .to_string()
        };
        assert!(check(&get, &answer(200, &list(2, 2), &[]), &v1).is_ok());
        assert!(check(&get, &answer(200, &list(2, 1), &[]), &v1).is_err());
        assert!(check(&get, &answer(200, &list(3, 3), &[]), &v1).is_err());
        let search = Spec::new("POST", "/scim/v2/acme/.search", "{}");
        assert!(check(&search, &answer(200, &list(1, 1), &[]), &v2).is_err());
        // Bodies are SCIM JSON.
        let plain = Response::builder()
            .status(200)
            .header("Content-Type", "text/plain")
            .body(Bytes::from_static(b"{}"))
            .unwrap();
        assert!(check(&get, &plain, &v1).is_err());
    }
}
