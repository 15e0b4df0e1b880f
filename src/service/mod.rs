//! The SCIM HTTP service: `http::Request<Bytes>` in, `http::Response<Bytes>` out.
//!
//! [`ScimService`] serves every tenant under one mount path: a request for
//! `{mount}/{tenant}/Users/{id}` is authenticated with the tenant's bearer tokens (or the
//! host's own [`TokenVerifier`]), then routed to the resource handlers, discovery, `/.search`,
//! `/Bulk` or `/Me`. It knows `http` types, never a web framework: an adapter converts the
//! framework's request, awaits [`ScimService::handle`] and converts the response back.

mod builder;
mod bulk;
mod catalog;
mod cursor;
mod discovery;
mod duplicates;
mod emit;
mod host;
mod policy;
mod query;
mod rate;
mod read;
mod render;
mod request;
mod response;
mod routes;
#[cfg(feature = "tower")]
mod tower;
mod write;

#[cfg(feature = "tower")]
pub use self::tower::TowerBody;
use builder::YieldOnce;
pub use builder::{ConfigError, MeResolver, RetryPause, ScimServiceBuilder};
pub use catalog::CatalogSync;
pub(crate) use host::{typed_group, typed_user};
pub use host::{Groups, TypedPage, Users, MAX_TYPED_PAGE};
pub use policy::{PendingWrite, WriteOperation, WritePolicy};
pub use response::SCIM_CONTENT_TYPE;

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response};

use crate::auth::{Clock, Principal, SystemClock, TenantStore, TokenVerifier};
use crate::error::ScimError;
use crate::events::{EventSink, ToleranceNote};
use crate::schema::SchemaRegistry;
use crate::store::ResourceStore;
use crate::tenant::{BaseUrl, Tenant, TenantId};

struct Inner {
    base: BaseUrl,
    mount: String,
    store: Arc<dyn ResourceStore>,
    tenants: Arc<dyn TenantStore>,
    registry: Arc<SchemaRegistry>,
    verifier: Arc<dyn TokenVerifier>,
    clock: Arc<dyn Clock>,
    me: Option<Arc<dyn MeResolver>>,
    documentation_uri: Option<String>,
    retry_pause: Arc<dyn RetryPause>,
    limiter: rate::RateLimiter,
    write_policy: Option<Arc<dyn WritePolicy>>,
    event_sink: Option<Arc<dyn EventSink>>,
    log_request_bodies: bool,
    /// Whether the built-in verifier is used (then a 401's reason can be diagnosed).
    builtin_verifier: bool,
    /// What a logged request body never shows (see [`emit::redact`]).
    secret_names: Vec<String>,
    cursor_key: cursor::CursorKey,
    cursor_timeout: std::time::Duration,
}

/// How long a pagination cursor stays valid by default (see
/// [`ScimServiceBuilder::cursor_timeout`]): one hour, enough for an identity provider's
/// import of a large tenant page by page.
pub const DEFAULT_CURSOR_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3600);

/// A SCIM 2.0 service provider for any number of tenants. Cheap to clone.
///
/// ```
/// use std::sync::Arc;
/// use bytes::Bytes;
/// use scimkit::auth::Tenants;
/// use scimkit::service::ScimService;
/// use scimkit::store::MemoryStore;
/// use scimkit::tenant::TenantId;
///
/// # tokio_test_block_on(async {
/// let tenants = Tenants::in_memory();
/// let acme = TenantId::new("acme").unwrap();
/// tenants
///     .create_tenant(acme.clone(), "Acme Okta", scimkit::settings::Settings::default())
///     .await?;
/// let (_record, token) = tenants.issue_token(&acme, "okta", None).await?;
///
/// let service = ScimService::builder(
///     "https://app.example.com/scim/v2",
///     Arc::new(MemoryStore::new()),
///     Arc::clone(tenants.store()),
/// )
/// .build()
/// .unwrap();
///
/// let request = http::Request::get("/scim/v2/acme/Users?filter=userName%20eq%20%22bjensen%22")
///     .header("Authorization", format!("Bearer {}", token.expose_secret()))
///     .body(Bytes::new())
///     .unwrap();
/// let response = service.handle(request).await;
/// assert_eq!(response.status(), 200);
/// # Ok::<(), scimkit::error::ScimError>(())
/// # }).unwrap();
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Clone)]
pub struct ScimService {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ScimService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScimService")
            .field("public_url", &self.inner.base.as_str())
            .field("mount", &self.inner.mount)
            .finish_non_exhaustive()
    }
}

impl ScimService {
    /// Starts building a service whose tenants live under `public_url` (for example
    /// `https://app.example.com/scim/v2`; a tenant's base URL is `{public_url}/{tenant}`),
    /// keeping resources in `store` and tenants and tokens in `tenants`.
    pub fn builder(
        public_url: impl Into<String>,
        store: Arc<dyn ResourceStore>,
        tenants: Arc<dyn TenantStore>,
    ) -> ScimServiceBuilder {
        ScimServiceBuilder {
            public_url: public_url.into(),
            mount_path: None,
            store,
            tenants,
            registry: SchemaRegistry::default(),
            verifier: None,
            clock: Arc::new(SystemClock),
            me: None,
            documentation_uri: None,
            retry_pause: Arc::new(YieldOnce),
            rate_limit_buckets: rate::DEFAULT_BUCKETS,
            write_policy: None,
            event_sink: None,
            log_request_bodies: false,
            cursor_key: None,
            cursor_timeout: DEFAULT_CURSOR_TIMEOUT,
        }
    }

    /// The SCIM base URL of `tenant`, as the admin pastes it into the identity provider.
    pub fn base_url(&self, tenant: &TenantId) -> String {
        self.inner.base.for_tenant(tenant)
    }

    /// The schema registry served.
    pub fn registry(&self) -> &SchemaRegistry {
        &self.inner.registry
    }

    /// The resource store (for the host's queries and the change feed).
    pub fn store(&self) -> &Arc<dyn ResourceStore> {
        &self.inner.store
    }

    /// The tenant and token admin API over the service's tenant store and clock: create
    /// tenants, issue and revoke tokens ([`Tenants`](crate::auth::Tenants)).
    pub fn tenants(&self) -> crate::auth::Tenants {
        crate::auth::Tenants::new(
            Arc::clone(&self.inner.tenants),
            Arc::clone(&self.inner.clock),
        )
    }

    /// The tenant and token store itself.
    pub fn tenant_store(&self) -> &Arc<dyn TenantStore> {
        &self.inner.tenants
    }

    /// The schema registry, shared.
    pub(crate) fn registry_arc(&self) -> Arc<SchemaRegistry> {
        Arc::clone(&self.inner.registry)
    }

    /// The largest body a request with this method and path may carry, so that an adapter
    /// buffers no more than that: the tenant's `max_membership_payload_bytes` for a write
    /// (`POST`, `PUT`, `PATCH`) to a resource type with members, `bulk_max_payload_bytes` for
    /// `/Bulk`, and `max_payload_bytes` for everything else (see
    /// [`Limits`](crate::settings::Limits); default limits for an unknown tenant). One tenant
    /// read. The service checks the limit again when it handles the request (413).
    ///
    /// The method is a string so that adapters on any version of the `http` crate can pass
    /// theirs (`request.method().as_str()`).
    ///
    /// An adapter that can read the request head before the body should prefer
    /// [`authorize`](Self::authorize): it authenticates first and carries the same limit in
    /// [`Authorized::body_limit`], so that nothing is read for an unauthenticated caller.
    pub async fn body_limit(&self, method: &str, path: &str) -> usize {
        let rest = self.endpoint_path(path);
        // The segments as `authorize` reads them, percent-decoded (`/scim/v2/%61cme/Users`
        // is tenant `acme`'s); a path with an undecodable segment is refused there, so the
        // default limit does for it.
        let Ok(decoded) = rest
            .split('/')
            .filter(|s| !s.is_empty())
            .map(query::path_decode)
            .collect::<Result<Vec<String>, _>>()
        else {
            return crate::settings::Limits::default().max_payload_bytes;
        };
        let mut segments = decoded.iter().map(String::as_str);
        let tenant = match segments.next().and_then(|t| TenantId::new(t).ok()) {
            Some(id) => self.inner.tenants.get_tenant(&id).await.ok().flatten(),
            None => None,
        };
        // No tenant, no larger limit: the request will be refused anyway.
        let Some(tenant) = tenant else {
            return crate::settings::Limits::default().max_payload_bytes;
        };
        let rest: Vec<&str> = segments.collect();
        self.limit_for(&tenant.settings.limits, method, &rest)
    }

    /// The part of a request path after the mount path. A router that strips the prefix it
    /// routes on (axum's `nest_service`, actix's `scope`) hands over `/{tenant}/{endpoint}`:
    /// a path that does not start with the mount path is served as such, so the service
    /// works mounted either way. (Any request the host routes here is meant for it; a path
    /// naming no tenant is a 404, bad credentials the usual 401.)
    fn endpoint_path<'p>(&self, path: &'p str) -> &'p str {
        path.strip_prefix(self.inner.mount.as_str())
            .filter(|r| r.is_empty() || r.starts_with('/'))
            .unwrap_or(path)
    }

    /// The 404 for a path that names no endpoint, saying which paths do.
    fn not_found_here(&self) -> ScimError {
        let mount = &self.inner.mount;
        ScimError::NotFound(if mount.is_empty() {
            "no SCIM endpoint at this path; SCIM requests go to /{tenant}/{endpoint}".to_owned()
        } else {
            format!(
                "no SCIM endpoint at this path; SCIM requests go to {mount}/{{tenant}}/{{endpoint}} \
                 (or /{{tenant}}/{{endpoint}} from a router that strips {mount})"
            )
        })
    }

    /// The body limit of a request with `method` to the endpoint path `rest` (the segments
    /// after the tenant) under `limits`.
    fn limit_for(&self, limits: &crate::settings::Limits, method: &str, rest: &[&str]) -> usize {
        let mut segments = rest.iter().copied();
        let endpoint = segments.next().unwrap_or("");
        let id = segments.next();
        let writes = match (method, id) {
            ("POST", None) => true,
            ("PUT" | "PATCH", Some(id)) => id != ".search" && segments.next().is_none(),
            _ => false,
        };
        if endpoint == "Bulk" {
            return limits.bulk_max_payload_bytes;
        }
        let members = self
            .inner
            .registry
            .resource_type_by_endpoint(&format!("/{endpoint}"))
            .is_some_and(|d| d.has_members());
        if writes && members {
            limits
                .max_membership_payload_bytes
                .max(limits.max_payload_bytes)
        } else {
            limits.max_payload_bytes
        }
    }

    /// Serves one request. Never fails: every error becomes an RFC 7644 §3.12 error response.
    ///
    /// For hosts that buffer the body before calling the service. A host that can see the
    /// request head first calls [`authorize`](Self::authorize), reads the body only when it
    /// succeeds (up to [`Authorized::body_limit`]), then
    /// [`handle_authorized`](Self::handle_authorized); the answers are the same.
    pub async fn handle(&self, request: Request<Bytes>) -> Response<Bytes> {
        let Some(rec) = self.recording(request.method(), request.uri()) else {
            return match self.dispatch(request).await {
                Ok(r) => r,
                Err(e) => error_response(&e),
            };
        };
        let admitted = self
            .admit(request.method(), request.uri(), request.headers())
            .await;
        let authorized = match admitted {
            Ok(a) => a,
            Err(e) => {
                let response = error_response(&e);
                self.emit(
                    rec,
                    None,
                    Some(request.headers()),
                    request.body(),
                    &response,
                    Some(&e),
                )
                .await;
                return response;
            }
        };
        self.route_recorded(rec, &authorized, request).await
    }

    /// Routes an admitted request and records its event.
    async fn route_recorded(
        &self,
        rec: emit::Recording,
        authorized: &Authorized,
        request: Request<Bytes>,
    ) -> Response<Bytes> {
        let body = request.body().clone();
        let (response, error) =
            match routes::route(self, &authorized.ctx, request, &authorized.rest).await {
                Ok(r) => (r, None),
                Err(e) => (error_response(&e), Some(e)),
            };
        self.emit(
            rec,
            Some(&authorized.ctx),
            None,
            &body,
            &response,
            error.as_ref(),
        )
        .await;
        response
    }

    /// Checks a request's head (method, path, `Authorization`) before its body is read: the
    /// path names an endpoint under the mount path and a tenant, the credentials open that
    /// tenant, and SCIM is enabled for it. On success, the proof to pass to
    /// [`handle_authorized`](Self::handle_authorized) with the request, and the largest body
    /// the request may carry ([`Authorized::body_limit`]); read no more than that (answer
    /// 413 beyond it).
    ///
    /// On failure, the complete SCIM error response to send as is, the one
    /// [`handle`](Self::handle) would give for the same request: 404 for a path outside the
    /// mount point or without a tenant, 401 with `WWW-Authenticate` for missing or wrong
    /// credentials, 429 with `Retry-After` over the tenant's
    /// [`RateLimit`](crate::settings::RateLimit). The body need not (and should not) be read
    /// then. A successful call counts as the request for the rate limit:
    /// `handle_authorized` does not count it again.
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use scimkit::service::ScimService;
    /// # async fn serve(service: &ScimService, head: http::request::Parts, body: Bytes)
    /// #     -> http::Response<Bytes> {
    /// let authorized = match service.authorize(&head).await {
    ///     Ok(a) => a,
    ///     Err(refusal) => return refusal, // 401 or 404: the body is never read
    /// };
    /// // Read the body here, at most `authorized.body_limit()` bytes (413 beyond).
    /// service
    ///     .handle_authorized(authorized, http::Request::from_parts(head, body))
    ///     .await
    /// # }
    /// ```
    pub async fn authorize(
        &self,
        head: &http::request::Parts,
    ) -> Result<Authorized, Response<Bytes>> {
        let rec = self.recording(&head.method, &head.uri);
        match self.admit(&head.method, &head.uri, &head.headers).await {
            Ok(mut a) => {
                a.recording = rec;
                Ok(a)
            }
            Err(e) => {
                let response = error_response(&e);
                if let Some(rec) = rec {
                    self.emit(
                        rec,
                        None,
                        Some(&head.headers),
                        &Bytes::new(),
                        &response,
                        Some(&e),
                    )
                    .await;
                }
                Err(response)
            }
        }
    }

    /// Serves a request whose head [`authorize`](Self::authorize) accepted, without
    /// authenticating it again. Never fails: every error becomes an RFC 7644 §3.12 error
    /// response.
    ///
    /// `request` must be the request that was authorised: if its method or path differ from
    /// the head's, or `authorized` came from another service, the proof is ignored and the
    /// request is served as by [`handle`](Self::handle), with full authentication.
    pub async fn handle_authorized(
        &self,
        mut authorized: Authorized,
        request: Request<Bytes>,
    ) -> Response<Bytes> {
        let same = Arc::ptr_eq(&authorized.issuer, &self.inner)
            && authorized.method == *request.method()
            && authorized.path == request.uri().path();
        if !same {
            return self.handle(request).await;
        }
        if let Some(rec) = authorized
            .recording
            .take()
            .or_else(|| self.recording(request.method(), request.uri()))
        {
            return self.route_recorded(rec, &authorized, request).await;
        }
        match routes::route(self, &authorized.ctx, request, &authorized.rest).await {
            Ok(r) => r,
            Err(e) => error_response(&e),
        }
    }

    /// Answers a request whose head [`authorize`](Self::authorize) accepted but whose body
    /// the adapter could not take (413 over [`Authorized::body_limit`], 400 for a body that
    /// cannot be read) with `error`, recording it in the provisioning log like any other
    /// request (see [`crate::events`]).
    pub async fn refuse_authorized(
        &self,
        mut authorized: Authorized,
        error: ScimError,
    ) -> Response<Bytes> {
        let response = error_response(&error);
        if let Some(rec) = authorized.recording.take() {
            self.emit(
                rec,
                Some(&authorized.ctx),
                None,
                &Bytes::new(),
                &response,
                Some(&error),
            )
            .await;
        }
        response
    }

    async fn dispatch(&self, request: Request<Bytes>) -> Result<Response<Bytes>, ScimError> {
        let authorized = self
            .admit(request.method(), request.uri(), request.headers())
            .await?;
        routes::route(self, &authorized.ctx, request, &authorized.rest).await
    }

    /// Everything checked before routing: the path, the tenant, authentication.
    async fn admit(
        &self,
        method: &Method,
        uri: &http::Uri,
        headers: &http::HeaderMap,
    ) -> Result<Authorized, ScimError> {
        let path = uri.path();
        let rest = self.endpoint_path(path);
        let outside = || self.not_found_here();
        let mut segments: Vec<String> = Vec::new();
        for s in rest.split('/').filter(|s| !s.is_empty()) {
            segments.push(query::path_decode(s)?);
        }
        let mut segments = segments.into_iter();
        let tenant_id = segments
            .next()
            .and_then(|t| TenantId::new(t).ok())
            .ok_or_else(outside)?;
        // Authentication comes before anything else: an unauthenticated client learns nothing,
        // not even whether an endpoint exists.
        let authenticated = async {
            let (principal, loaded) = crate::auth::authenticate_loading_tenant(
                self.inner.verifier.as_ref(),
                &tenant_id,
                headers,
            )
            .await?;
            let tenant = match loaded {
                Some(t) => Some(t),
                None => self.inner.tenants.get_tenant(&tenant_id).await?,
            };
            match tenant {
                Some(t) if t.scim_enabled => Ok((principal, t)),
                _ => Err(crate::auth::unauthorized()),
            }
        }
        .await;
        let (principal, tenant) = authenticated?;
        // Right after authentication: only a caller with valid credentials uses up its
        // tenant's budget.
        if let Some(limit) = &tenant.settings.rate_limit {
            self.inner
                .limiter
                .check(limit, &principal, self.inner.clock.now())?;
        }
        let rest: Vec<String> = segments.collect();
        let body_limit = {
            let segs: Vec<&str> = rest.iter().map(String::as_str).collect();
            self.limit_for(&tenant.settings.limits, method.as_str(), &segs)
        };
        Ok(Authorized {
            issuer: Arc::clone(&self.inner),
            ctx: Ctx {
                base_url: self.base_url(&tenant_id),
                tenant,
                principal,
                notes: std::sync::Mutex::new(Vec::new()),
                resource_name: std::sync::Mutex::new(None),
            },
            recording: None,
            method: method.clone(),
            path: path.to_owned(),
            rest,
            body_limit,
        })
    }
}

/// The error response for `e`, logging an internal error's cause (never sent).
fn error_response(e: &ScimError) -> Response<Bytes> {
    if let ScimError::Internal(source) = e {
        tracing::error!(error = %source, "scim request failed with an internal error");
    }
    response::error(e)
}

/// Proof that a request's head passed [`ScimService::authorize`]: the tenant it opens, who
/// the caller is, and how large a body the request may carry. Handed to
/// [`ScimService::handle_authorized`] with the request once its body is read.
///
/// Only the service makes one; it holds no credential.
pub struct Authorized {
    issuer: Arc<Inner>,
    ctx: Ctx,
    method: Method,
    path: String,
    rest: Vec<String>,
    body_limit: usize,
    /// The event being recorded, with an event sink.
    recording: Option<emit::Recording>,
}

impl Authorized {
    /// The largest body this request may carry, in bytes: the tenant's limit for this method
    /// and endpoint (as [`ScimService::body_limit`] computes it). An adapter reads no more
    /// and answers 413 beyond it.
    pub fn body_limit(&self) -> usize {
        self.body_limit
    }

    /// Who the caller is.
    pub fn principal(&self) -> &Principal {
        &self.ctx.principal
    }

    /// The tenant the request acts on.
    pub fn tenant(&self) -> &TenantId {
        self.ctx.id()
    }
}

impl std::fmt::Debug for Authorized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorized")
            .field("tenant", self.ctx.id())
            .field("principal", &self.ctx.principal)
            .field("method", &self.method)
            .field("path", &self.path)
            .field("body_limit", &self.body_limit)
            .finish_non_exhaustive()
    }
}

/// What every handler needs to know about the request's tenant.
pub(crate) struct Ctx {
    pub(crate) tenant: Tenant,
    pub(crate) principal: Principal,
    pub(crate) base_url: String,
    /// What the tolerance layer did in this request (for its event).
    pub(crate) notes: std::sync::Mutex<Vec<ToleranceNote>>,
    /// The `userName`/`displayName` of the resource a write acted on (for its event).
    pub(crate) resource_name: std::sync::Mutex<Option<String>>,
}

impl Ctx {
    pub(crate) fn id(&self) -> &TenantId {
        &self.tenant.id
    }

    /// Adds notes of the request (merged with notes of the same kind and path).
    pub(crate) fn add_notes(&self, notes: Vec<ToleranceNote>) {
        if notes.is_empty() {
            return;
        }
        if let Ok(mut mine) = self.notes.lock() {
            for n in notes {
                crate::events::merge_note(&mut mine, n);
            }
        }
    }

    /// Remembers the name of the resource a write acted on (its `userName`, else its
    /// `displayName`), from its stored document; only with an event sink.
    pub(crate) fn remember_name(&self, svc: &ScimService, doc: &serde_json::Value) {
        if svc.inner.event_sink.is_none() {
            return;
        }
        let name = ["userName", "displayName"]
            .iter()
            .find_map(|k| doc.get(*k).and_then(serde_json::Value::as_str));
        if let (Some(name), Ok(mut slot)) = (name, self.resource_name.lock()) {
            *slot = Some(name.to_owned());
        }
    }

    /// The request's notes, taken out.
    pub(crate) fn take_notes(&self) -> Vec<ToleranceNote> {
        self.notes
            .lock()
            .map(|mut n| std::mem::take(&mut *n))
            .unwrap_or_default()
    }
}

pub(crate) fn not_found_endpoint() -> ScimError {
    ScimError::NotFound("no SCIM endpoint at this path".to_owned())
}

pub(crate) fn method_not_allowed(method: &Method, allow: &[Method]) -> ScimError {
    ScimError::MethodNotAllowed {
        detail: format!("{method} is not supported on this endpoint"),
        allow: allow.to_vec(),
    }
}
