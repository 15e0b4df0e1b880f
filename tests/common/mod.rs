//! Shared harness for the service tests: a service with an in-memory store and two tenants.
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
use serde_json::Value;

use scimkit::auth::Tenants;
use scimkit::service::ScimService;
use scimkit::store::{MemoryStore, ResourceStore};
use scimkit::{Settings, TenantId};

pub const PUBLIC_URL: &str = "https://app.example.com/scim/v2";

pub struct Harness {
    pub service: ScimService,
    pub tenants: Tenants,
    pub store: Arc<MemoryStore>,
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
        let store = Arc::new(MemoryStore::new());
        Harness::with_store(settings, store.clone(), store).await
    }

    pub async fn with_store(
        settings: Settings,
        store: Arc<dyn ResourceStore>,
        memory: Arc<MemoryStore>,
    ) -> Harness {
        let tenants = Tenants::in_memory();
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
        let service = ScimService::builder(PUBLIC_URL, store, Arc::clone(tenants.store()))
            .build()
            .unwrap();
        Harness {
            service,
            tenants,
            store: memory,
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

    /// Creates a user and returns its id.
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
