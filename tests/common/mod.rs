//! Shared harness for the service tests: a service with a store and two tenants.
//!
//! The store is the MemoryStore unless `SCIMKIT_SERVICE_BACKEND` names another backend:
//! `sqlite` (a fresh file under the target directory's temp dir, tenants and tokens in it
//! too) or `postgres` (a fresh database on the test PostgreSQL server). The service tests
//! re-run themselves with each SQL backend the build has (see `sql_backends` in
//! tests/service.rs).
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use serde_json::{json, Value};

use scimkit::auth::{MemoryTenantStore, SystemClock, TenantStore, Tenants};
use scimkit::schema::SchemaRegistry;
use scimkit::service::ScimService;
use scimkit::store::testing::CountingStore;
use scimkit::store::{MemoryStore, ResourceStore};
use scimkit::{settings::Settings, tenant::TenantId};

pub const PUBLIC_URL: &str = "https://app.example.com/scim/v2";

pub struct Harness {
    pub service: ScimService,
    pub tenants: Tenants,
    pub store: Arc<dyn ResourceStore>,
    pub token: String,
    pub other_token: String,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub raw: Bytes,
}

impl Harness {
    pub async fn new() -> Harness {
        Harness::with_settings(Settings::default()).await
    }

    pub async fn with_settings(settings: Settings) -> Harness {
        let backend = std::env::var("SCIMKIT_SERVICE_BACKEND").unwrap_or_default();
        let (store, tenant_store) = backend_stores(&backend).await;
        Harness::build(settings, store, tenant_store).await
    }

    /// A harness on the backend of this run, its store wrapped in a call counter.
    pub async fn counting(settings: Settings) -> (Harness, Arc<CountingStore>) {
        let backend = std::env::var("SCIMKIT_SERVICE_BACKEND").unwrap_or_default();
        let (store, tenant_store) = backend_stores(&backend).await;
        let counting = Arc::new(CountingStore::new(store));
        let h = Harness::build(settings, counting.clone(), tenant_store).await;
        (h, counting)
    }

    pub async fn with_store(settings: Settings, store: Arc<dyn ResourceStore>) -> Harness {
        Harness::build(settings, store, Arc::new(MemoryTenantStore::new())).await
    }

    /// A harness on the backend of this run serving `registry`.
    pub async fn with_registry(settings: Settings, registry: SchemaRegistry) -> Harness {
        let backend = std::env::var("SCIMKIT_SERVICE_BACKEND").unwrap_or_default();
        let (store, tenant_store) = backend_stores(&backend).await;
        Harness::build_with(settings, store, tenant_store, registry).await
    }

    async fn build(
        settings: Settings,
        store: Arc<dyn ResourceStore>,
        tenant_store: Arc<dyn TenantStore>,
    ) -> Harness {
        Harness::build_with(settings, store, tenant_store, SchemaRegistry::default()).await
    }

    async fn build_with(
        settings: Settings,
        store: Arc<dyn ResourceStore>,
        tenant_store: Arc<dyn TenantStore>,
        registry: SchemaRegistry,
    ) -> Harness {
        let tenants = Tenants::new(tenant_store, Arc::new(SystemClock));
        let acme = TenantId::new("acme").unwrap();
        let other = TenantId::new("other").unwrap();
        tenants
            .create_tenant(acme.clone(), "Acme Okta", settings.clone())
            .await
            .unwrap();
        tenants
            .create_tenant(other.clone(), "Other Entra", settings)
            .await
            .unwrap();
        let (_, token) = tenants.issue_token(&acme, "okta", None).await.unwrap();
        let (_, other_token) = tenants.issue_token(&other, "entra", None).await.unwrap();
        let service = ScimService::builder(PUBLIC_URL, store.clone(), Arc::clone(tenants.store()))
            .registry(registry)
            .build()
            .unwrap();
        Harness {
            service,
            tenants,
            store,
            token: token.expose_secret().to_owned(),
            other_token: other_token.expose_secret().to_owned(),
        }
    }

    /// A request to tenant `acme` with its token; `path` is relative to the base URL.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.call_as("acme", &self.token.clone(), method, path, body, &[])
            .await
    }

    pub async fn call_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        self.call_as("acme", &self.token.clone(), method, path, body, headers)
            .await
    }

    pub async fn call_as(
        &self,
        tenant: &str,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut b = Request::builder()
            .method(method)
            .uri(format!("/scim/v2/{tenant}{path}"))
            .header("Authorization", format!("Bearer {token}"));
        let bytes = match &body {
            Some(v) => {
                b = b.header("Content-Type", "application/scim+json; charset=utf-8");
                Bytes::from(serde_json::to_vec(v).unwrap())
            }
            None => Bytes::new(),
        };
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        self.send(b.body(bytes).unwrap()).await
    }

    pub async fn send(&self, request: Request<Bytes>) -> Reply {
        let response = self.service.handle(request).await;
        let (parts, raw) = response.into_parts();
        let body = if raw.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&raw).expect("every response body is JSON")
        };
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
            raw,
        }
    }

    /// PATCHes group `gid` with `ops`, checks the default answer for resources with
    /// members (200 with the group; a short member list is in it), and returns the group as a
    /// GET reads it afterwards, which must be what the answer said.
    pub async fn patch_group(&self, gid: &str, ops: Value) -> Reply {
        let body = serde_json::json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": ops,
        });
        let r = self
            .call(Method::PATCH, &format!("/Groups/{gid}"), Some(body))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["id"], gid);
        let etag = r
            .headers
            .get("etag")
            .expect("a PATCH answer carries the ETag")
            .clone();
        assert_eq!(r.body["meta"]["version"], etag.to_str().unwrap());
        let g = self
            .call(Method::GET, &format!("/Groups/{gid}"), None)
            .await;
        assert_eq!(g.status, StatusCode::OK, "{}", g.body);
        assert_eq!(
            g.headers.get("etag"),
            Some(&etag),
            "the ETag of the answer is current"
        );
        assert_eq!(r.body, g.body, "the answer is the group as it now is");
        g
    }

    /// Creates a user and returns its id.
    /// How many users of `acme` have this `userName` (an exact `eq` filter over HTTP).
    pub async fn count_user_name(&self, user_name: &str) -> Value {
        let path = format!("/Users?filter=userName%20eq%20%22{user_name}%22&count=0");
        self.call(Method::GET, &path, None).await.body["totalResults"].clone()
    }

    pub async fn create_user(&self, user_name: &str) -> String {
        let r = self
            .call(
                Method::POST,
                "/Users",
                Some(serde_json::json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": user_name,
                    "name": {"givenName": "Given", "familyName": "Family"},
                    "emails": [{"value": user_name, "type": "work", "primary": true}],
                    "active": true
                })),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["id"].as_str().unwrap().to_owned()
    }

    /// Creates a group with the given member ids and returns its id.
    pub async fn create_group(&self, name: &str, members: &[&str]) -> String {
        let members: Vec<Value> = members
            .iter()
            .map(|m| serde_json::json!({"value": m}))
            .collect();
        let r = self
            .call(
                Method::POST,
                "/Groups",
                Some(serde_json::json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                    "displayName": name,
                    "members": members
                })),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["id"].as_str().unwrap().to_owned()
    }
}

impl Reply {
    /// Asserts a SCIM error response with this status and scimType.
    pub fn assert_error(&self, status: u16, scim_type: Option<&str>) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(
            self.body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error",
            "{}",
            self.body
        );
        assert_eq!(self.body["status"], status.to_string());
        match scim_type {
            Some(t) => assert_eq!(self.body["scimType"], t, "{}", self.body),
            None => assert!(self.body.get("scimType").is_none(), "{}", self.body),
        }
        assert!(
            self.body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{}",
            self.body
        );
        assert!(self.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/scim+json"));
    }

    pub fn detail(&self) -> &str {
        self.body["detail"].as_str().unwrap_or("")
    }
}

/// The stores for backend `name` (see the module docs); the MemoryStore for `""`.
pub async fn backend_stores(name: &str) -> (Arc<dyn ResourceStore>, Arc<dyn TenantStore>) {
    match name {
        "" | "memory" => (
            Arc::new(MemoryStore::new()),
            Arc::new(MemoryTenantStore::new()),
        ),
        #[cfg(feature = "sqlite")]
        "sqlite" => {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static N: AtomicUsize = AtomicUsize::new(0);
            // In the directory the parent run made for this run (removed after it passes).
            let dir = std::env::var_os("SCIMKIT_SERVICE_SQLITE_DIR")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
            let path = dir.join(format!(
                "service-{}-{}.db",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let store = Arc::new(
                scimkit::store::sqlite::SqliteStore::open(&path)
                    .await
                    .expect("open the SQLite store"),
            );
            (store.clone(), store)
        }
        #[cfg(all(feature = "postgres", feature = "testing"))]
        "postgres" => {
            let store = Arc::new(
                scimkit::store::testing::postgres::fresh_store()
                    .await
                    .expect("the PostgreSQL test server (its URL is passed by the parent run)"),
            );
            (store.clone(), store)
        }
        other => panic!("SCIMKIT_SERVICE_BACKEND={other}: not a backend of this build"),
    }
}

/// The SQL backends this build has.
pub fn sql_backends() -> Vec<&'static str> {
    let mut b = Vec::new();
    if cfg!(feature = "sqlite") {
        b.push("sqlite");
    }
    if cfg!(all(feature = "postgres", feature = "testing")) {
        b.push("postgres");
    }
    b
}

/// Runs this whole test binary again once per SQL backend of the build, with
/// `SCIMKIT_SERVICE_BACKEND` set, and fails when any of its tests fails there. Inside such a
/// run it does nothing (so it does not recurse).
pub fn rerun_on_sql_backends() {
    if std::env::var_os("SCIMKIT_SERVICE_BACKEND").is_some() {
        return;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    for backend in sql_backends() {
        let mut cmd = std::process::Command::new(&exe);
        cmd.env("SCIMKIT_SERVICE_BACKEND", backend);
        let sqlite_dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "service-sqlite-{}-{}",
            exe.file_name().and_then(|n| n.to_str()).unwrap_or("tests"),
            std::process::id()
        ));
        if backend == "sqlite" {
            std::fs::create_dir_all(&sqlite_dir).expect("a directory for the SQLite files");
            cmd.env("SCIMKIT_SERVICE_SQLITE_DIR", &sqlite_dir);
        }
        #[cfg(all(feature = "postgres", feature = "testing"))]
        if backend == "postgres" {
            // One server for both runs: this process's (started here, stopped when it exits),
            // which the re-run reaches through its URL.
            use scimkit::store::testing::postgres;
            match postgres::server() {
                Ok(server) => {
                    cmd.env(postgres::URL_VAR, &server.admin_url);
                }
                Err(why) => {
                    assert!(
                        std::env::var(postgres::REQUIRE_VAR).is_err(),
                        "PostgreSQL required but unavailable: {why}"
                    );
                    eprintln!("\n!!!!! service tests on PostgreSQL SKIPPED: {why}\n");
                    continue;
                }
            }
        }
        let out = cmd
            .args(["--test-threads", "2"])
            .output()
            .expect("re-run the test binary");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "the tests failed on the {backend} backend (files kept in {}):\n{text}",
            sqlite_dir.display()
        );
        let _ = std::fs::remove_dir_all(&sqlite_dir);
        // The run must have run the tests, not filtered them all away.
        assert!(
            text.contains("test result: ok") && !text.contains(" 0 passed"),
            "no tests ran on the {backend} backend:\n{text}"
        );
        eprintln!(
            "{backend}: {}",
            text.lines()
                .filter(|l| l.starts_with("test result"))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
}

/// A PATCH request body (RFC 7644 §3.5.2) carrying `ops` as its `Operations`.
pub fn patch_op(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

/// The `value`s of a multi-valued attribute such as `members` (`[{"value": ...}]`), sorted;
/// empty when it is not a list.
pub fn sorted_values(list: &Value) -> Vec<String> {
    let mut out: Vec<String> = list
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| m["value"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}
