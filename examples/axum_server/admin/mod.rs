//! The admin console at `/admin`: what a host product's own admin screens do with scimkit.
//!
//! - **IdP connections** (scimkit tenants): create one, switch "SCIM Provisioning" on or off,
//!   copy its SCIM base URL, generate bearer tokens (shown once), list and revoke them; the
//!   connection's health (counts, last success, last error with its real reason, warnings)
//!   and a setup checklist for Okta and Entra ticked off from the provisioning log.
//! - **Users**: searched by userName, email or externalId through the store's filter
//!   pushdown, paged; a user's collections, externalId, state and last change.
//! - **User collections**: the groups the IdP pushed, with member counts and last change,
//!   refreshed by polling the change feed; a collection's members sorted by userName with
//!   active and inactive counts.
//! - **Provisioning log**: the events scimkit emits per SCIM request (kept in the store by
//!   `common::app`), newest first, filtered by outcome, resource and text.
//! - **Policies**: a toy access-policy model of the host's own. A policy names user
//!   collections; "check login" shows which policies apply to a user now, through the
//!   user's groups (`User.groups`), as a host would evaluate them at the user's next login.
//!   With `--governance` the policies are also the tenant's `Entitlement` catalog (value
//!   `policy-<id>`, published, renamed and withdrawn with the service's catalog API), so
//!   Okta Identity Governance can grant them in `User.entitlements`; a granted policy
//!   applies like one through a collection, and the console shows which origin each has.
//!
//! Everything goes through scimkit's public API: [`scimkit::auth::Tenants`] for tenants and
//! tokens, the [`ResourceStore`] for groups, members, users and the change feed, the
//! [`scimkit::store::ProvisioningLog`] for the log. Policies are kept by `console_db.rs` in tables of
//! the example's own in the store's database (in memory with the memory store), with group
//! *ids* (stable across renames) and the name each group had when attached.
//!
//! # Security
//! - The console is opened with an admin secret (`--admin-secret`, `SCIMKIT_ADMIN_SECRET`,
//!   or a random one printed on start). The secret is compared in constant time; a correct
//!   one starts a session: a random 256-bit cookie (`HttpOnly`, `SameSite=Strict`,
//!   `Path=/admin`, and `Secure` whenever the public URL is https) of which only a SHA-256
//!   hash is kept, valid for [`SESSION_TTL`].
//! - Guessing is throttled across all clients together: after [`FREE_FAILURES`] wrong
//!   secrets in a row the login locks for [`FIRST_LOCKOUT`], doubling with each further
//!   failure up to [`MAX_LOCKOUT`]; while locked every login, right or wrong, is answered 429
//!   with `Retry-After`. A correct login after the window works and clears the count.
//! - CSRF: the cookie is `SameSite=Strict`, so no other site's page can send it; on top of
//!   that every `/admin/api` call must carry the `X-Scimkit-Admin: 1` header and JSON
//!   bodies, which a cross-site form cannot produce without a CORS preflight (and this server
//!   answers no preflight).
//! - The SCIM endpoints do not accept the session: they keep using bearer tokens only.
//! - A token's secret is in exactly one response: the one to "Generate bearer token"
//!   (`Cache-Control: no-store`). Lists carry ids, labels and times only. Nothing here logs
//!   a secret, a token or a cookie.
//! - IdP-supplied text (group and user names) is put in the page with `textContent` only,
//!   and a strict Content-Security-Policy allows no inline script.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{FromRef, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use scimkit::auth::TokenId;
use scimkit::events::ProvisioningEvent;
use scimkit::events::{LogCursor, LogFilter, OutcomeKind};
use scimkit::filter::SortSpec;
use scimkit::store::{
    apply_query, GroupRef, ListQuery, Paging, Pushdown, ResourceStore, StoreError,
};
use scimkit::{
    error::ScimError, filter::Filter, resource::ResourceId, schema::ResourceDef,
    settings::Settings, tenant::TenantId,
};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::common::app::App;
use crate::common::manage::group_members;
use crate::console_db::{ConsoleDb, Policy, PolicyCollection, SortedMember, SortedMembers};

mod activity;
mod collections;
mod policies;
mod session;
mod tenants;
mod users;

use activity::*;
use collections::*;
use policies::*;
use session::*;
use tenants::*;
use users::*;

/// How long a login lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 60 * 60);

/// The session cookie's name.
pub const COOKIE: &str = "scimkit_admin";

/// The header every `/admin/api` call must carry (see the module docs on CSRF).
pub const API_HEADER: &str = "x-scimkit-admin";

/// Wrong secrets accepted in a row (from all clients together) before the login locks.
pub const FREE_FAILURES: u32 = 5;

/// The first lock-out after [`FREE_FAILURES`] wrong secrets; each further wrong secret
/// doubles it.
pub const FIRST_LOCKOUT: Duration = Duration::from_secs(2);

/// The longest lock-out.
pub const MAX_LOCKOUT: Duration = Duration::from_secs(15 * 60);

/// Wrong secrets are forgotten after this long without one.
const FAILURE_MEMORY: Duration = Duration::from_secs(60 * 60);

/// The largest page of groups or members the API returns.
const MAX_PAGE: usize = 200;

const CONSOLE_HTML: &str = include_str!("console.html");
const LOGIN_HTML: &str = include_str!("login.html");
const ADMIN_JS: &str = include_str!("admin.js");
const ADMIN_CSS: &str = include_str!("admin.css");

/// The console's state: the app, the secret's hash, sessions, and the demo policies. Cheap
/// to clone.
#[derive(Clone)]
pub struct Admin(Arc<Inner>);

struct Inner {
    app: App,
    secret_hash: [u8; 32],
    /// Whether the session cookie gets `Secure` (the public URL is https).
    secure_cookie: bool,
    /// Wrong logins across all clients.
    throttle: Mutex<LoginThrottle>,
    /// SHA-256 of each session cookie, with its expiry.
    sessions: Mutex<HashMap<[u8; 32], Instant>>,
    /// Policies and revocation times: in the store's database (see `console_db.rs`).
    db: ConsoleDb,
    /// The setup checklist's steps seen done, per tenant.
    milestones: Mutex<HashMap<TenantId, Milestones>>,
    /// The last change-feed position seen per tenant, so finding the head is incremental.
    heads: tokio::sync::Mutex<HashMap<TenantId, u64>>,
}

/// The global login throttle: counts wrong secrets from every client together, and locks
/// the login with an exponential backoff.
#[derive(Debug, Default)]
struct LoginThrottle {
    /// Wrong secrets in a row.
    failures: u32,
    last_failure: Option<Instant>,
    locked_until: Option<Instant>,
}

impl LoginThrottle {
    /// Whether a login may be tried at `now`, or how long to wait.
    fn admit(&mut self, now: Instant) -> Result<(), Duration> {
        if let Some(until) = self.locked_until.filter(|u| now < *u) {
            return Err(until - now);
        }
        if self
            .last_failure
            .is_some_and(|t| now.saturating_duration_since(t) > FAILURE_MEMORY)
        {
            *self = LoginThrottle::default();
        }
        Ok(())
    }

    /// Counts a wrong secret at `now`, locking the login once there were too many.
    fn failed(&mut self, now: Instant) {
        self.failures = self.failures.saturating_add(1);
        self.last_failure = Some(now);
        if let Some(extra) = self.failures.checked_sub(FREE_FAILURES) {
            let lock = FIRST_LOCKOUT
                .saturating_mul(1u32 << extra.min(20))
                .min(MAX_LOCKOUT);
            self.locked_until = Some(now + lock);
        }
    }

    /// A correct secret clears the count.
    fn succeeded(&mut self) {
        *self = LoginThrottle::default();
    }
}

impl Admin {
    /// The console for `app`, opened with `secret`; `https` when the public URL is https
    /// (the session cookie is then `Secure`).
    #[cfg(test)]
    pub fn new(app: App, secret: &str, https: bool) -> Admin {
        Admin::with_db(app, secret, https, ConsoleDb::memory())
    }

    /// [`Admin::new`] keeping policies and revocation times in `db`.
    pub fn with_db(app: App, secret: &str, https: bool, db: ConsoleDb) -> Admin {
        Admin(Arc::new(Inner {
            app,
            secret_hash: sha256(secret.as_bytes()),
            secure_cookie: https,
            throttle: Mutex::new(LoginThrottle::default()),
            sessions: Mutex::new(HashMap::new()),
            db,
            milestones: Mutex::new(HashMap::new()),
            heads: tokio::sync::Mutex::new(HashMap::new()),
        }))
    }

    /// A random secret for when none is given: 32 bytes, base64url.
    pub fn random_secret() -> Result<String, String> {
        random_b64().map_err(|e| format!("cannot draw a random admin secret: {e}"))
    }

    fn app(&self) -> &App {
        &self.0.app
    }

    fn store(&self) -> &Arc<dyn ResourceStore> {
        self.0.app.store()
    }

    /// Constant-time comparison of a login attempt with the secret (both hashed first, so
    /// the lengths are equal too).
    fn secret_matches(&self, attempt: &str) -> bool {
        bool::from(sha256(attempt.as_bytes()).ct_eq(&self.0.secret_hash))
    }

    fn new_session(&self) -> Result<String, String> {
        let cookie = random_b64().map_err(|e| format!("no randomness: {e}"))?;
        let now = Instant::now();
        let mut sessions = lock(&self.0.sessions);
        sessions.retain(|_, expiry| *expiry > now);
        sessions.insert(sha256(cookie.as_bytes()), now + SESSION_TTL);
        Ok(cookie)
    }

    fn has_session(&self, headers: &HeaderMap) -> bool {
        let Some(cookie) = session_cookie(headers) else {
            return false;
        };
        // The map is keyed by a hash of the cookie: a lookup leaks nothing useful about
        // other sessions' cookies.
        let key = sha256(cookie.as_bytes());
        lock(&self.0.sessions)
            .get(&key)
            .is_some_and(|expiry| *expiry > Instant::now())
    }

    fn end_session(&self, headers: &HeaderMap) {
        if let Some(cookie) = session_cookie(headers) {
            lock(&self.0.sessions).remove(&sha256(cookie.as_bytes()));
        }
    }

    fn group_def(&self) -> Result<Arc<ResourceDef>, ApiError> {
        self.app()
            .service
            .registry()
            .group()
            .cloned()
            .ok_or_else(|| ApiError::internal("the registry serves no Group type"))
    }

    fn user_def(&self) -> Result<Arc<ResourceDef>, ApiError> {
        self.app()
            .service
            .registry()
            .user()
            .cloned()
            .ok_or_else(|| ApiError::internal("the registry serves no User type"))
    }

    /// The tenant a console API call names, once the call is authorized (see [`authorize`]).
    fn authorized_tenant(&self, headers: &HeaderMap, tenant: &str) -> Result<TenantId, ApiError> {
        authorize(self, headers)?;
        tenant_id(tenant)
    }

    /// [`Admin::authorized_tenant`], which must exist (404 otherwise).
    async fn existing_tenant(
        &self,
        headers: &HeaderMap,
        tenant: &str,
    ) -> Result<TenantId, ApiError> {
        let id = self.authorized_tenant(headers, tenant)?;
        self.app().tenants.get_tenant(&id).await?;
        Ok(id)
    }

    /// The newest change-feed position of `tenant`.
    async fn head(&self, tenant: &TenantId) -> Result<u64, ApiError> {
        const BATCH: usize = 1000;
        let mut heads = self.0.heads.lock().await;
        let mut at = heads.get(tenant).copied().unwrap_or(0);
        loop {
            let changes = match self.store().changes_since(tenant, at, BATCH).await {
                // The feed was pruned past our position: the console only wants the newest
                // position, so it skips ahead to where the feed now starts.
                Err(StoreError::ChangesPruned { pruned_through, .. }) => {
                    at = pruned_through;
                    continue;
                }
                other => other?,
            };
            if let Some(last) = changes.last() {
                at = last.seq;
            }
            if changes.len() < BATCH {
                break;
            }
        }
        heads.insert(tenant.clone(), at);
        Ok(at)
    }
}

/// The console's routes, for a router whose state yields an [`Admin`].
pub fn routes<S>() -> Router<S>
where
    Admin: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/admin", get(page))
        .route("/admin/", get(page))
        .route("/admin/admin.js", get(script))
        .route("/admin/admin.css", get(style))
        .route("/admin/login", post(login))
        .route("/admin/logout", post(logout))
        .route("/admin/api/tenants", get(list_tenants).post(create_tenant))
        .route("/admin/api/tenants/{tenant}/scim", put(set_scim))
        .route(
            "/admin/api/tenants/{tenant}/tokens",
            get(list_tokens).post(issue_token),
        )
        .route(
            "/admin/api/tenants/{tenant}/tokens/{token}/revoke",
            post(revoke_token),
        )
        .route("/admin/api/tenants/{tenant}/groups", get(list_groups))
        .route(
            "/admin/api/tenants/{tenant}/groups/{group}/members",
            get(list_members),
        )
        .route("/admin/api/tenants/{tenant}/changes", get(changes))
        .route("/admin/api/tenants/{tenant}/health", get(health))
        .route("/admin/api/tenants/{tenant}/log", get(provisioning_log))
        .route("/admin/api/tenants/{tenant}/users", get(list_users))
        .route("/admin/api/tenants/{tenant}/users/{user}", get(get_user))
        .route(
            "/admin/api/tenants/{tenant}/policies",
            get(list_policies).post(create_policy),
        )
        .route(
            "/admin/api/tenants/{tenant}/policies/{policy}",
            put(update_policy).delete(delete_policy),
        )
        .route("/admin/api/tenants/{tenant}/check-login", post(check_login))
}

// ---- helpers -----------------------------------------------------------------------------------

/// Runs a list query and finishes it with the engine when the store did not answer exactly
/// (what the service does for `GET /Groups`).
async fn list_exact(
    store: &Arc<dyn ResourceStore>,
    tenant: &TenantId,
    def: &ResourceDef,
    query: &ListQuery,
) -> Result<scimkit::store::Page, ApiError> {
    let page = store.list(tenant, def, query).await?;
    if page.pushdown == Pushdown::Exact {
        Ok(page)
    } else {
        Ok(apply_query(def, query, page.resources)?)
    }
}

/// An error answer of the admin API: `{"error": "..."}`, for a person to read.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    fn internal(message: impl Into<String>) -> ApiError {
        let message = message.into();
        tracing::error!(error = %message, "admin console");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal error (see the server log).",
        )
    }
}

impl From<ScimError> for ApiError {
    fn from(e: ScimError) -> ApiError {
        if e.status().is_server_error() {
            // The detail of a backend failure goes to the log, not to the page.
            return ApiError::internal(e.to_string());
        }
        ApiError::new(e.status(), e.detail().to_owned())
    }
}

impl From<scimkit::store::StoreError> for ApiError {
    fn from(e: scimkit::store::StoreError) -> ApiError {
        ApiError::from(ScimError::from(e))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = ok_json(json!({ "error": self.message }));
        *r.status_mut() = self.status;
        r
    }
}

fn ok_json(v: Value) -> Response {
    let mut r = Response::new(Body::from(v.to_string()));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    secure_headers(h);
    r
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|_| ApiError::bad("The request body is not the JSON expected."))
}

fn tenant_id(s: &str) -> Result<TenantId, ApiError> {
    TenantId::new(s).map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "No such connection."))
}

/// `start` (1-based) and `count` from the query string, `count` capped at [`MAX_PAGE`].
fn paging(params: &HashMap<String, String>, default: usize) -> Result<(usize, usize), ApiError> {
    let num = |key: &str, default: usize| -> Result<usize, ApiError> {
        match params.get(key) {
            Some(v) => v
                .parse()
                .map_err(|_| ApiError::bad(format!("`{key}` must be a number."))),
            None => Ok(default),
        }
    };
    Ok((
        num("start", 1)?.max(1),
        num("count", default)?.clamp(1, MAX_PAGE),
    ))
}

/// The query string's parameters, percent-decoded (`+` as space).
fn query_params(uri: &Uri) -> HashMap<String, String> {
    uri.query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((decode(k)?, decode(v)?))
        })
        .collect()
}

fn decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = (bytes.next()? as char).to_digit(16)?;
                let lo = (bytes.next()? as char).to_digit(16)?;
                out.push(u8::try_from(hi * 16 + lo).ok()?);
            }
            b => out.push(b),
        }
    }
    String::from_utf8(out).ok()
}

fn text(doc: &Value, key: &str) -> Value {
    doc.get(key).cloned().unwrap_or(Value::Null)
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn random_b64() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Locks a mutex, recovering it if a panicking thread poisoned it (the data stays valid:
/// every critical section here is a single insert, remove or push).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
