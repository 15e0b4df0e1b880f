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
//! [`scimkit::ProvisioningLog`] for the log. Policies are kept by `console_db.rs` in tables of
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
use scimkit::events::{LogCursor, LogFilter, OutcomeKind};
use scimkit::filter::SortSpec;
use scimkit::store::{
    apply_query, GroupRef, ListQuery, Paging, Pushdown, ResourceStore, StoreError,
};
use scimkit::ProvisioningEvent;
use scimkit::{Filter, ResourceDef, ResourceId, ScimError, Settings, TenantId};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::common::app::App;
use crate::common::manage::group_members;
use crate::console_db::{ConsoleDb, Policy, PolicyCollection, SortedMember, SortedMembers};

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

const CONSOLE_HTML: &str = include_str!("admin/console.html");
const LOGIN_HTML: &str = include_str!("admin/login.html");
const ADMIN_JS: &str = include_str!("admin/admin.js");
const ADMIN_CSS: &str = include_str!("admin/admin.css");

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

    /// Whether the console's policies are published as the `Entitlement` catalog: the
    /// server runs with `--governance`, so the registry has that catalog.
    fn publishes_policies(&self) -> bool {
        self.app()
            .service
            .registry()
            .resource_type(POLICY_CATALOG)
            .is_some_and(|d| d.catalog().is_some())
    }

    /// Publishes (or renames) `policy` in `tenant`'s `Entitlement` catalog, when the console
    /// publishes its policies.
    async fn publish_policy(&self, tenant: &TenantId, policy: &Policy) -> Result<(), ApiError> {
        if !self.publishes_policies() {
            return Ok(());
        }
        self.app()
            .service
            .publish_catalog_value(
                tenant,
                POLICY_CATALOG,
                &policy_value(policy.id),
                policy_catalog_attributes(policy),
            )
            .await?;
        Ok(())
    }

    /// Withdraws policy `id` from `tenant`'s `Entitlement` catalog. Users the IdP granted it
    /// keep the grant in their document until the IdP revokes it; it no longer applies,
    /// since the policy is gone.
    async fn withdraw_policy(&self, tenant: &TenantId, id: i64) -> Result<(), ApiError> {
        if !self.publishes_policies() {
            return Ok(());
        }
        self.app()
            .service
            .withdraw_catalog_value(tenant, POLICY_CATALOG, &policy_value(id))
            .await?;
        Ok(())
    }

    /// Makes every tenant's `Entitlement` catalog hold exactly its policies (on start: the
    /// console's tables are the source of truth, and a publication that failed after a
    /// policy was saved is repaired here).
    pub async fn sync_policy_catalogs(&self) -> Result<(), String> {
        if !self.publishes_policies() {
            return Ok(());
        }
        let tenants = self
            .app()
            .tenants
            .list_tenants()
            .await
            .map_err(|e| e.detail().to_owned())?;
        for t in tenants {
            let policies = self.0.db.policies(&t.id).await?;
            let values = policies
                .iter()
                .map(|p| (policy_value(p.id), policy_catalog_attributes(p)));
            self.app()
                .service
                .sync_catalog(&t.id, POLICY_CATALOG, values)
                .await
                .map_err(|e| {
                    format!(
                        "publishing the policies of `{}` as the {POLICY_CATALOG} catalog: {}",
                        t.id,
                        e.detail()
                    )
                })?;
        }
        Ok(())
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

// ---- pages and assets ----------------------------------------------------------------------

/// The console for a logged-in admin; the login form (with 401) for anyone else.
async fn page(State(admin): State<Admin>, headers: HeaderMap) -> Response {
    if admin.has_session(&headers) {
        html(StatusCode::OK, CONSOLE_HTML)
    } else {
        html(StatusCode::UNAUTHORIZED, LOGIN_HTML)
    }
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", ADMIN_JS)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", ADMIN_CSS)
}

fn html(status: StatusCode, body: &'static str) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
             img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    secure_headers(h);
    r
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut r = body.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

fn secure_headers(h: &mut HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

// ---- login -----------------------------------------------------------------------------------

#[derive(Deserialize)]
struct LoginBody {
    secret: String,
}

async fn login(State(admin): State<Admin>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(e) = require_api_header(&headers) {
        return e.into_response();
    }
    let attempt: LoginBody = match parse(&body) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    // One critical section for the check and the count, so that parallel guesses cannot
    // all pass before the first failure is counted.
    let matches = {
        let mut throttle = lock(&admin.0.throttle);
        let now = Instant::now();
        if let Err(wait) = throttle.admit(now) {
            drop(throttle);
            tracing::warn!("admin console: refused a login while locked after wrong secrets");
            return locked(wait);
        }
        let matches = admin.secret_matches(&attempt.secret);
        if matches {
            throttle.succeeded();
        } else {
            throttle.failed(now);
        }
        matches
    };
    if !matches {
        // Slows down each guess a little more; the lock-out above bounds how many there are.
        tokio::time::sleep(Duration::from_millis(300)).await;
        tracing::warn!("admin console: refused a login with a wrong secret");
        return ApiError::new(StatusCode::UNAUTHORIZED, "Wrong admin secret.").into_response();
    }
    let cookie = match admin.new_session() {
        Ok(c) => c,
        Err(e) => return ApiError::internal(e).into_response(),
    };
    let mut r = StatusCode::NO_CONTENT.into_response();
    let value = format!(
        "{COOKIE}={cookie}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_TTL.as_secs(),
        if admin.0.secure_cookie {
            "; Secure"
        } else {
            ""
        }
    );
    match HeaderValue::from_str(&value) {
        Ok(v) => {
            r.headers_mut().insert(header::SET_COOKIE, v);
        }
        Err(_) => return ApiError::internal("cannot set the session cookie").into_response(),
    }
    secure_headers(r.headers_mut());
    tracing::info!("admin console: login");
    r
}

async fn logout(State(admin): State<Admin>, headers: HeaderMap) -> Response {
    if let Err(e) = require_api_header(&headers) {
        return e.into_response();
    }
    admin.end_session(&headers);
    let mut r = StatusCode::NO_CONTENT.into_response();
    let clear = if admin.0.secure_cookie {
        "scimkit_admin=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0; Secure"
    } else {
        "scimkit_admin=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0"
    };
    r.headers_mut()
        .insert(header::SET_COOKIE, HeaderValue::from_static(clear));
    r
}

/// 429 while the login is locked, with `Retry-After` in whole seconds (rounded up).
fn locked(wait: Duration) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let seconds = seconds.max(1);
    let mut r = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!("Too many wrong secrets: the login is locked; try again in {seconds} s."),
    )
    .into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    r
}

/// Refuses an API call without a live session or without the custom header.
fn authorize(admin: &Admin, headers: &HeaderMap) -> Result<(), ApiError> {
    require_api_header(headers)?;
    if admin.has_session(headers) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Not logged in (or the session expired): log in with the admin secret.",
        ))
    }
}

fn require_api_header(headers: &HeaderMap) -> Result<(), ApiError> {
    if headers
        .get(API_HEADER)
        .is_some_and(|v| v.as_bytes() == b"1")
    {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "Admin API calls must carry the X-Scimkit-Admin: 1 header.",
        ))
    }
}

fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE && !value.is_empty()).then_some(value)
        })
}

// ---- connections and tokens --------------------------------------------------------------------

async fn list_tenants(
    State(admin): State<Admin>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&admin, &headers)?;
    let mut tenants = admin.app().tenants.list_tenants().await?;
    tenants.sort_by(|a, b| {
        a.display_name
            .to_lowercase()
            .cmp(&b.display_name.to_lowercase())
            .then_with(|| a.id.cmp(&b.id))
    });
    let list: Vec<Value> = tenants
        .iter()
        .map(|t| tenant_json(&admin, &t.id, &t.display_name, t.scim_enabled, t.created))
        .collect();
    Ok(ok_json(json!({ "tenants": list })))
}

fn tenant_json(
    admin: &Admin,
    id: &TenantId,
    name: &str,
    enabled: bool,
    created: DateTime<Utc>,
) -> Value {
    json!({
        "id": id.as_str(),
        "name": name,
        "scimEnabled": enabled,
        "baseUrl": admin.app().service.base_url(id),
        "created": time(created),
    })
}

#[derive(Deserialize)]
struct NewTenant {
    id: String,
    name: String,
}

/// Creates a connection with SCIM switched off: the admin switches it on when the IdP side
/// is ready (scimkit creates tenants switched on; no token exists in between, so nothing can
/// get in).
async fn create_tenant(
    State(admin): State<Admin>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    authorize(&admin, &headers)?;
    let new: NewTenant = parse(&body)?;
    let id = TenantId::new(new.id.trim()).map_err(|_| {
        ApiError::bad(
            "The connection id must be 1-64 letters, digits or '-', starting with a letter or \
             digit (it becomes the last segment of the SCIM base URL).",
        )
    })?;
    let name = new.name.trim();
    if name.is_empty() {
        return Err(ApiError::bad("Give the connection a name."));
    }
    let t = admin
        .app()
        .tenants
        .create_tenant(id.clone(), name, Settings::default())
        .await?;
    let t = admin.app().tenants.set_scim_enabled(&t.id, false).await?;
    tracing::info!(tenant = %t.id, "admin console: created connection");
    Ok((
        StatusCode::CREATED,
        ok_json(tenant_json(
            &admin,
            &t.id,
            &t.display_name,
            t.scim_enabled,
            t.created,
        )),
    )
        .into_response())
}

#[derive(Deserialize)]
struct Switch {
    enabled: bool,
}

async fn set_scim(
    State(admin): State<Admin>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    authorize(&admin, &headers)?;
    let id = tenant_id(&tenant)?;
    let switch: Switch = parse(&body)?;
    let t = admin
        .app()
        .tenants
        .set_scim_enabled(&id, switch.enabled)
        .await?;
    tracing::info!(tenant = %id, enabled = switch.enabled, "admin console: SCIM switch");
    Ok(ok_json(tenant_json(
        &admin,
        &t.id,
        &t.display_name,
        t.scim_enabled,
        t.created,
    )))
}

async fn list_tokens(
    State(admin): State<Admin>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&admin, &headers)?;
    let id = tenant_id(&tenant)?;
    let now = Utc::now();
    let mut tokens = admin.app().tenants.list_tokens(&id).await?;
    let revoked_at = admin
        .0
        .db
        .revocations(&id)
        .await
        .map_err(ApiError::internal)?;
    tokens.reverse(); // newest first
    let list: Vec<Value> = tokens
        .iter()
        .map(|t| {
            let status = if t.revoked {
                "revoked"
            } else if t.is_expired(now) {
                "expired"
            } else {
                "active"
            };
            let token_id = t.id.to_string();
            json!({
                "prefix": token_prefix(&token_id),
                "revokedAt": revoked_at.get(&token_id).copied().map(time),
                "id": token_id,
                "label": t.label,
                "created": time(t.created),
                "lastUsed": t.last_used.map(time),
                "expires": t.expires.map(time),
                "status": status,
            })
        })
        .collect();
    Ok(ok_json(json!({ "tokens": list })))
}

/// What the console shows to tell tokens apart: the first 8 characters of the token's
/// public id (never anything of the secret).
fn token_prefix(id: &str) -> String {
    id.chars().take(8).collect()
}

#[derive(Deserialize)]
struct NewToken {
    #[serde(default)]
    label: String,
}

/// Issues a token and returns its secret: the only response that ever carries it.
async fn issue_token(
    State(admin): State<Admin>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    authorize(&admin, &headers)?;
    let id = tenant_id(&tenant)?;
    let new: NewToken = parse(&body)?;
    let label = match new.label.trim() {
        "" => format!("generated in the admin console {}", time(Utc::now())),
        l => l.to_owned(),
    };
    let (record, secret) = admin.app().tenants.issue_token(&id, label, None).await?;
    tracing::info!(tenant = %id, token = %record.id, "admin console: issued a token");
    let mut r = ok_json(json!({
        "id": record.id.to_string(),
        "prefix": token_prefix(&record.id.to_string()),
        "label": record.label,
        "token": secret.expose_secret(),
        "baseUrl": admin.app().service.base_url(&id),
    }));
    *r.status_mut() = StatusCode::CREATED;
    Ok(r)
}

async fn revoke_token(
    State(admin): State<Admin>,
    Path((tenant, token)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&admin, &headers)?;
    let id = tenant_id(&tenant)?;
    let token: TokenId = token
        .parse()
        .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "No such token."))?;
    admin.app().tenants.revoke_token(&id, &token).await?;
    admin
        .0
        .db
        .record_revocation(&id, &token.to_string(), Utc::now())
        .await
        .map_err(ApiError::internal)?;
    tracing::info!(tenant = %id, %token, "admin console: revoked a token");
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- user collections -----------------------------------------------------------------------

/// A page of the tenant's groups, by display name, with member counts; `q` narrows to names
/// containing it. Carries the change-feed head the page reflects.
async fn list_groups(
    State(admin): State<Admin>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    authorize(&admin, &headers)?;
    let id = tenant_id(&tenant)?;
    admin.app().tenants.get_tenant(&id).await?;
    let params = query_params(&uri);
    let (start, count) = paging(&params, 25)?;
    // Read the head first: a change landing during the read shows up at the next poll.
    let head = admin.head(&id).await?;
    let def = admin.group_def()?;
    let filter = match params.get("q").map(|q| q.trim()).filter(|q| !q.is_empty()) {
        Some(q) => Some(Filter::parse(&format!(
            "displayName co {}",
            Value::String(q.to_owned())
        ))?),
        None => None,
    };
    let query = ListQuery {
        filter,
        sort: Some(SortSpec::parse("displayName", None)?),
        start_index: start,
        count,
        include_members: false,
        max_candidates: usize::MAX,
        ..ListQuery::default()
    };
    let page = list_exact(admin.store(), &id, &def, &query).await?;
    let mut groups = Vec::with_capacity(page.resources.len());
    for g in page.resources {
        let members = admin.store().members(&id, &def, &g.id, 1, 0).await?;
        groups.push(json!({
            "id": g.id.as_str(),
            "name": text(&g.doc, "displayName"),
            "members": members.total_results,
            "lastModified": time(g.last_modified),
        }));
    }
    Ok(ok_json(json!({
        "total": page.total_results,
        "start": start,
        "groups": groups,
        "head": head,
    })))
}

/// A page of a collection's members sorted by `userName`, with the collection's active and
/// inactive counts (a deactivated member is never counted silently).
async fn list_members(
    State(admin): State<Admin>,
    Path((tenant, group)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    authorize(&admin, &headers)?;
    let id = tenant_id(&tenant)?;
    let params = query_params(&uri);
    let (start, count) = paging(&params, 50)?;
    let def = admin.group_def()?;
    let gid = ResourceId::from(group.as_str());
    let g = admin.store().get(&id, &def, &gid, false).await?;
    let users = count_resources(&admin, &id, &*admin.user_def()?).await?;
    let sorted = match admin
        .0
        .db
        .sorted_members(&id, &gid, start, count, users)
        .await
        .map_err(ApiError::internal)?
    {
        Some(s) => s,
        None => memory_sorted_members(&admin, &id, &gid, start, count).await?,
    };
    let list: Vec<Value> = sorted
        .members
        .iter()
        .map(|m| {
            json!({
                "id": m.id,
                "type": m.resource_type,
                "userName": m.user_name,
                "displayName": m.display_name,
                "active": m.active,
            })
        })
        .collect();
    Ok(ok_json(json!({
        "group": {"id": g.id.as_str(), "name": text(&g.doc, "displayName")},
        "total": sorted.total,
        "inactive": sorted.inactive,
        "active": sorted.total.saturating_sub(sorted.inactive),
        "start": start,
        "members": list,
    })))
}

/// [`list_members`] over the memory store: every member is read (in pages) and sorted here.
/// The memory store holds everything in this process anyway; the SQL stores answer with one
/// indexed query instead (`ConsoleDb::sorted_members`).
async fn memory_sorted_members(
    admin: &Admin,
    tenant: &TenantId,
    group: &ResourceId,
    start: usize,
    count: usize,
) -> Result<SortedMembers, ApiError> {
    const BATCH: usize = 1000;
    let mut all: Vec<SortedMember> = Vec::new();
    let mut at = 1;
    loop {
        let (page, total) = group_members(admin.app(), tenant, group, at, BATCH).await?;
        let fetched = page.len();
        all.extend(page.into_iter().map(|m| SortedMember {
            id: m.member.value.as_str().to_owned(),
            resource_type: m.member.resource_type.clone(),
            user_name: m.user_name,
            display_name: m.member.display,
            active: m.active,
        }));
        at += fetched;
        if fetched == 0 || at > total {
            break;
        }
    }
    let inactive = all.iter().filter(|m| m.active == Some(false)).count();
    all.sort_by(|a, b| {
        let key = |m: &SortedMember| m.user_name.as_ref().map(|n| n.to_lowercase());
        (key(a).is_none(), key(a), &a.id).cmp(&(key(b).is_none(), key(b), &b.id))
    });
    let total = all.len();
    let members = all
        .into_iter()
        .skip(start.saturating_sub(1))
        .take(count)
        .collect();
    Ok(SortedMembers {
        members,
        total: total as u64,
        inactive: inactive as u64,
    })
}

/// How many resources of a type the tenant has: a list query with `count=0` (the SQL stores
/// answer it with a `count(*)` over an index, never reading the resources).
async fn count_resources(
    admin: &Admin,
    tenant: &TenantId,
    def: &ResourceDef,
) -> Result<usize, ApiError> {
    let query = ListQuery {
        filter: None,
        sort: None,
        start_index: 1,
        count: 0,
        include_members: false,
        max_candidates: usize::MAX,
        paging: Paging::Index,
    };
    Ok(admin.store().list(tenant, def, &query).await?.total_results)
}

/// The connection's health: SCIM on or off, counts of users, groups and active tokens, when
/// a token was last used, and warnings for what keeps the IdP from provisioning.
async fn health(
    State(admin): State<Admin>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&admin, &headers)?;
    let id = tenant_id(&tenant)?;
    let t = admin.app().tenants.get_tenant(&id).await?;
    let users = count_resources(&admin, &id, &*admin.user_def()?).await?;
    let groups = count_resources(&admin, &id, &*admin.group_def()?).await?;
    let now = Utc::now();
    let tokens = admin.app().tenants.list_tokens(&id).await?;
    let active_tokens = tokens.iter().filter(|k| k.is_active(now)).count();
    let last_used = tokens.iter().filter_map(|k| k.last_used).max();
    let log = admin.app().log.health(&id).await?;
    let requests = log.successes + log.failures + log.tolerated;
    let mut warnings = Vec::new();
    if t.scim_enabled && active_tokens == 0 {
        warnings.push(json!({
            "code": "noActiveToken",
            "text": "SCIM provisioning is on, but the connection has no active token: no request \
                     of the IdP can authenticate. Generate a token and paste it into the IdP.",
        }));
    }
    if requests == 0 && last_used.is_none() {
        warnings.push(json!({
            "code": "noRequestYet",
            "text": "No request from the IdP yet. Test the connection in the IdP (Okta: Test \
                     Connector Configuration; Entra: Test Connection).",
        }));
    }
    let m = find_milestones(&admin, &id, requests).await?;
    // The setup checklist: each step with the time it was seen done (`true` when done but
    // the time is not known, for example after the log was pruned).
    let seen = |t: Option<DateTime<Utc>>, done: bool| match t {
        Some(t) => json!(time(t)),
        None => json!(done),
    };
    let checklist = json!({
        "scimOn": t.scim_enabled,
        "token": active_tokens > 0 || last_used.is_some(),
        "tested": seen(m.tested, false),
        "userCreated": seen(m.user_created, users > 0),
        "groupPushed": seen(m.group_pushed, groups > 0),
        "membership": seen(m.membership, false),
    });
    let last_error = log.last_error.as_ref().map(|e| {
        json!({
            "time": time(e.time),
            "status": e.status,
            "detail": e.detail,
            "reason": e.auth_failure.map(|a| a.describe()),
        })
    });
    Ok(ok_json(json!({
        "checklist": checklist,
        "scimEnabled": t.scim_enabled,
        "users": users,
        "groups": groups,
        "activeTokens": active_tokens,
        "tokens": tokens.len(),
        "lastTokenUse": last_used.map(time),
        "lastSuccess": log.last_success.map(time),
        "lastError": last_error,
        "requests": {"success": log.successes, "failure": log.failures, "tolerated": log.tolerated},
        "warnings": warnings,
    })))
}

/// A page of the tenant's provisioning log, newest first: `outcome` (`success`, `failure`,
/// `tolerated`), `resource` (`User`, `Group`) and `q` (text in the path, name, id, reason)
/// narrow it; `before` (a cursor from `next`) pages to older events.
async fn provisioning_log(
    State(admin): State<Admin>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    authorize(&admin, &headers)?;
    let id = tenant_id(&tenant)?;
    admin.app().tenants.get_tenant(&id).await?;
    let params = query_params(&uri);
    let (_, count) = paging(&params, 50)?;
    let mut filter = LogFilter::all();
    match params.get("outcome").map(String::as_str) {
        None | Some("") => {}
        Some("success") => filter = filter.outcome(OutcomeKind::Success),
        Some("failure") => filter = filter.outcome(OutcomeKind::Failure),
        Some("tolerated") => filter = filter.outcome(OutcomeKind::Tolerated),
        Some(_) => {
            return Err(ApiError::bad(
                "`outcome` must be success, failure or tolerated.",
            ))
        }
    }
    match params.get("resource").map(String::as_str) {
        None | Some("") => {}
        Some(rt @ ("User" | "Group")) => filter = filter.resource_type(rt),
        Some(_) => return Err(ApiError::bad("`resource` must be User or Group.")),
    }
    if let Some(q) = params.get("q").map(|q| q.trim()).filter(|q| !q.is_empty()) {
        if q.chars().count() > 256 {
            return Err(ApiError::bad(
                "The search text is too long (256 characters at most).",
            ));
        }
        filter = filter.text(q);
    }
    let before = match params.get("before").filter(|b| !b.is_empty()) {
        Some(b) => Some(LogCursor(b.parse().map_err(|_| {
            ApiError::bad("`before` must be a log position (from `next`).")
        })?)),
        None => None,
    };
    let page = admin.app().log.query(&id, &filter, before, count).await?;
    let events: Vec<Value> = page
        .events
        .iter()
        .map(|(cursor, e)| event_json(*cursor, e))
        .collect();
    Ok(ok_json(json!({
        "enabled": true,
        "events": events,
        "next": page.next.map(|c| c.0),
    })))
}

/// An event for the console: its fields (the secret is never in one), its position, its
/// class, the readable auth-failure reason and the token id's prefix.
fn event_json(cursor: LogCursor, e: &ProvisioningEvent) -> Value {
    let mut v = serde_json::to_value(e).unwrap_or(Value::Null);
    if let Some(obj) = v.as_object_mut() {
        obj.remove("body");
        obj.insert("cursor".to_owned(), json!(cursor.0));
        obj.insert("kind".to_owned(), json!(e.outcome_kind().as_str()));
        obj.insert("status".to_owned(), json!(e.outcome.status));
        obj.insert("scimType".to_owned(), json!(e.outcome.scim_type));
        obj.insert("detail".to_owned(), json!(e.outcome.detail));
        obj.insert(
            "authFailureText".to_owned(),
            json!(e.auth_failure.map(|a| a.describe())),
        );
        obj.insert(
            "tokenPrefix".to_owned(),
            json!(e.token_id.map(|t| token_prefix(&t.to_string()))),
        );
    }
    v
}

/// The setup checklist's steps seen done, with when (kept once found: a step never
/// becomes undone, and the log may be pruned later).
#[derive(Debug, Clone, Default)]
struct Milestones {
    tested: Option<DateTime<Utc>>,
    user_created: Option<DateTime<Utc>>,
    group_pushed: Option<DateTime<Utc>>,
    membership: Option<DateTime<Utc>>,
    /// How many events the tenant's log had counted when it was last searched for the steps
    /// still missing: it is searched again only when events were added since.
    searched_at: Option<u64>,
}

/// Fills in the steps not yet seen from the tenant's log (`events`: how many it counted so
/// far): the oldest matching event among the newest ones a bounded query returns.
async fn find_milestones(
    admin: &Admin,
    tenant: &TenantId,
    events: u64,
) -> Result<Milestones, ApiError> {
    let mut m = lock(&admin.0.milestones)
        .get(tenant)
        .cloned()
        .unwrap_or_default();
    if m.searched_at == Some(events) {
        return Ok(m);
    }
    let log = &admin.app().log;
    let ok = |e: &ProvisioningEvent| e.outcome.status < 400;
    // Each step: a filter that narrows the query, and the test of an event.
    type Step = (
        fn(&mut Milestones) -> &mut Option<DateTime<Utc>>,
        LogFilter,
        fn(&ProvisioningEvent) -> bool,
    );
    let steps: [Step; 4] = [
        (
            |m| &mut m.tested,
            LogFilter::all().text("get"),
            |e| {
                e.method == "GET"
                    && matches!(
                        e.endpoint.as_deref(),
                        Some("Users" | "ServiceProviderConfig" | "Schemas" | "ResourceTypes")
                    )
            },
        ),
        (
            |m| &mut m.user_created,
            LogFilter::all().resource_type("User").text("post"),
            |e| e.method == "POST" && e.endpoint.as_deref() == Some("Users"),
        ),
        (
            |m| &mut m.group_pushed,
            LogFilter::all().resource_type("Group").text("post"),
            |e| e.method == "POST" && e.endpoint.as_deref() == Some("Groups"),
        ),
        (
            |m| &mut m.membership,
            LogFilter::all().resource_type("Group").text("patch"),
            |e| e.method == "PATCH" && e.endpoint.as_deref() == Some("Groups"),
        ),
    ];
    for (field, filter, test) in steps {
        if field(&mut m).is_some() {
            continue;
        }
        let page = log.query(tenant, &filter, None, MAX_PAGE).await?;
        if let Some(t) = page
            .events
            .iter()
            .filter(|(_, e)| ok(e) && test(e))
            .map(|(_, e)| e.time)
            .min()
        {
            *field(&mut m) = Some(t);
        }
    }
    m.searched_at = Some(events);
    lock(&admin.0.milestones).insert(tenant.clone(), m.clone());
    Ok(m)
}

/// The largest number of candidates the users view evaluates itself when a store cannot
/// answer a search exactly (the SQL stores answer these searches exactly).
const MAX_USER_CANDIDATES: usize = 10_000;

/// A page of the tenant's users by `userName`: `q` searched in `by` (`userName`: starts with;
/// `email`: contains; `externalId`: equals), `status` one of `all`, `active`, `inactive`.
/// Every search is a filter the store answers from its indexes (`userName sw`,
/// `emails.value co`, `externalId eq`), paged by the store.
async fn list_users(
    State(admin): State<Admin>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    authorize(&admin, &headers)?;
    let id = tenant_id(&tenant)?;
    admin.app().tenants.get_tenant(&id).await?;
    let params = query_params(&uri);
    let (start, count) = paging(&params, 25)?;
    let mut parts = Vec::new();
    if let Some(q) = params.get("q").map(|q| q.trim()).filter(|q| !q.is_empty()) {
        if q.chars().count() > 256 {
            return Err(ApiError::bad(
                "The search text is too long (256 characters at most).",
            ));
        }
        let value = Value::String(q.to_owned());
        parts.push(match params.get("by").map(String::as_str) {
            None | Some("userName") => format!("userName sw {value}"),
            Some("email") => format!("emails.value co {value}"),
            Some("externalId") => format!("externalId eq {value}"),
            Some(_) => return Err(ApiError::bad("`by` must be userName, email or externalId.")),
        });
    }
    match params.get("status").map(String::as_str) {
        None | Some("all") => {}
        Some("active") => parts.push("not (active eq false)".to_owned()),
        Some("inactive") => parts.push("active eq false".to_owned()),
        Some(_) => return Err(ApiError::bad("`status` must be all, active or inactive.")),
    }
    let filter = if parts.is_empty() {
        None
    } else {
        Some(Filter::parse(&parts.join(" and "))?)
    };
    let def = admin.user_def()?;
    let query = ListQuery {
        filter,
        sort: Some(SortSpec::parse("userName", None)?),
        start_index: start,
        count,
        include_members: false,
        max_candidates: MAX_USER_CANDIDATES,
        paging: Paging::Index,
    };
    let page = admin.store().list(&id, &def, &query).await?;
    let page = if page.pushdown == Pushdown::Exact {
        page
    } else if page.resources.len() > MAX_USER_CANDIDATES {
        return Err(ApiError::bad(
            "This search matches too many users to list: narrow it.",
        ));
    } else {
        apply_query(&def, &query, page.resources)?
    };
    let users: Vec<Value> = page.resources.iter().map(user_row).collect();
    Ok(ok_json(json!({
        "total": page.total_results,
        "start": start,
        "users": users,
    })))
}

/// A user as the users view lists it.
fn user_row(u: &scimkit::store::StoredResource) -> Value {
    json!({
        "id": u.id.as_str(),
        "userName": text(&u.doc, "userName"),
        "displayName": text(&u.doc, "displayName"),
        "externalId": text(&u.doc, "externalId"),
        "email": primary_email(&u.doc),
        "active": u.doc.get("active").and_then(Value::as_bool).unwrap_or(true),
        "lastModified": time(u.last_modified),
    })
}

/// The primary email of a user document, or its first.
fn primary_email(doc: &Value) -> Value {
    let emails = doc.get("emails").and_then(Value::as_array);
    let pick = emails.and_then(|list| {
        list.iter()
            .find(|e| e.get("primary").and_then(Value::as_bool) == Some(true))
            .or_else(|| list.first())
    });
    pick.and_then(|e| e.get("value"))
        .cloned()
        .unwrap_or(Value::Null)
}

/// One user: its attributes, its collections (`User.groups`) and the policies applying.
async fn get_user(
    State(admin): State<Admin>,
    Path((tenant, user)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&admin, &headers)?;
    let id = tenant_id(&tenant)?;
    let def = admin.user_def()?;
    let uid = ResourceId::from(user.as_str());
    let (u, groups) = admin.store().get_with_groups(&id, &def, &uid).await?;
    let mut row = user_row(&u);
    let policies = admin.0.db.policies(&id).await.map_err(ApiError::internal)?;
    let applying = if u.doc.get("active").and_then(Value::as_bool) == Some(false) {
        Vec::new()
    } else {
        applying_policies(&policies, &groups, &u.doc)
    };
    if let Some(obj) = row.as_object_mut() {
        obj.insert("policies".to_owned(), Value::Array(applying));
        obj.insert(
            "entitlements".to_owned(),
            u.doc.get("entitlements").cloned().unwrap_or(Value::Null),
        );
        obj.insert("created".to_owned(), Value::String(time(u.created)));
        obj.insert(
            "emails".to_owned(),
            u.doc.get("emails").cloned().unwrap_or(Value::Null),
        );
        obj.insert(
            "groups".to_owned(),
            Value::Array(
                groups
                    .iter()
                    .map(|g| json!({"id": g.id.as_str(), "name": g.display}))
                    .collect(),
            ),
        );
    }
    Ok(ok_json(row))
}

/// Whether anything changed after `after`, and the newest position: what the page polls.
async fn changes(
    State(admin): State<Admin>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    authorize(&admin, &headers)?;
    let id = tenant_id(&tenant)?;
    let params = query_params(&uri);
    let after: u64 = match params.get("after") {
        Some(a) => a
            .parse()
            .map_err(|_| ApiError::bad("`after` must be a change-feed position."))?,
        None => 0,
    };
    let head = admin.head(&id).await?;
    Ok(ok_json(json!({ "head": head, "changed": head > after })))
}

// ---- policies (the host's own model) ----------------------------------------------------------

/// The catalog resource type the console publishes its policies as, when the server runs
/// with `--governance`: Okta Identity Governance imports it from `/Entitlements` and grants
/// policies to users in `User.entitlements`.
const POLICY_CATALOG: &str = "Entitlement";

/// The `Entitlement` catalog value of policy `id`: what the IdP grants
/// (`{"value": "policy-7", "type": "Entitlement"}`). Stable across renames.
fn policy_value(id: i64) -> String {
    format!("policy-{id}")
}

/// The policy a grant value names, if it is one of [`policy_value`]'s.
fn policy_of_value(value: &str) -> Option<i64> {
    value
        .strip_prefix("policy-")
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse().ok())
}

/// A policy's catalog value document (Okta's entitlement schema).
fn policy_catalog_attributes(p: &Policy) -> Value {
    json!({
        "displayName": p.name,
        "type": POLICY_CATALOG,
        "description": "An access policy of the host; granted through its user collections \
                        or directly by the IdP",
    })
}

/// The policies the IdP granted in a user document's `entitlements` (an element whose
/// `type` is absent or `Entitlement` and whose value is a [`policy_value`]), with the
/// `display` the IdP sent.
fn granted_policies(doc: &Value) -> Vec<(i64, Option<String>)> {
    let Some(grants) = doc
        .as_object()
        .and_then(|o| {
            o.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("entitlements"))
        })
        .and_then(|(_, v)| v.as_array())
    else {
        return Vec::new();
    };
    grants
        .iter()
        .filter(|g| {
            g.get("type")
                .and_then(Value::as_str)
                .is_none_or(|t| t.eq_ignore_ascii_case(POLICY_CATALOG))
        })
        .filter_map(|g| {
            let id = policy_of_value(g.get("value").and_then(Value::as_str)?)?;
            let display = g.get("display").and_then(Value::as_str).map(str::to_owned);
            Some((id, display))
        })
        .collect()
}

/// The policies applying to an active user, each with where it comes from: `via` the
/// user's collections that it names, `grant` when the IdP granted it in `User.entitlements`,
/// and `origins` (`"IdP"`, `"collection"`, or both).
fn applying_policies(policies: &[Policy], groups: &[GroupRef], doc: &Value) -> Vec<Value> {
    let granted = granted_policies(doc);
    let mut applying = Vec::new();
    for p in policies {
        let via: Vec<Value> = groups
            .iter()
            .filter(|g| p.collections.iter().any(|c| c.id == g.id.as_str()))
            .map(|g| json!({"id": g.id.as_str(), "name": g.display}))
            .collect();
        let grant = granted.iter().find(|(id, _)| *id == p.id);
        let mut origins = Vec::new();
        if grant.is_some() {
            origins.push("IdP");
        }
        if !via.is_empty() {
            origins.push("collection");
        }
        if origins.is_empty() {
            continue;
        }
        applying.push(json!({
            "id": p.id,
            "name": p.name,
            "via": via,
            "grant": grant.map(|_| policy_value(p.id)),
            "origins": origins,
        }));
    }
    applying
}

#[derive(Deserialize)]
struct PolicyBody {
    name: String,
    #[serde(default)]
    collections: Vec<String>,
}

async fn list_policies(
    State(admin): State<Admin>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&admin, &headers)?;
    let id = tenant_id(&tenant)?;
    admin.app().tenants.get_tenant(&id).await?;
    let policies = admin.0.db.policies(&id).await.map_err(ApiError::internal)?;
    let def = admin.group_def()?;
    let mut list = Vec::with_capacity(policies.len());
    for p in policies {
        list.push(policy_json(&admin, &id, &def, &p).await?);
    }
    Ok(ok_json(json!({ "policies": list })))
}

/// A policy with its collections' current names; a group the IdP deleted keeps the name it
/// had when attached, with `deleted: true`.
async fn policy_json(
    admin: &Admin,
    tenant: &TenantId,
    def: &ResourceDef,
    p: &Policy,
) -> Result<Value, ApiError> {
    let mut collections = Vec::with_capacity(p.collections.len());
    for c in &p.collections {
        let gid = ResourceId::from(c.id.as_str());
        let (name, deleted) = match admin.store().get(tenant, def, &gid, false).await {
            Ok(g) => (text(&g.doc, "displayName"), false),
            Err(StoreError::NotFound { .. }) => (Value::String(c.name.clone()), true),
            Err(e) => return Err(e.into()),
        };
        collections.push(json!({"id": c.id, "name": name, "deleted": deleted}));
    }
    let mut out = json!({"id": p.id, "name": p.name, "collections": collections});
    if admin.publishes_policies() {
        // What the IdP grants, and to how many users it has (`entitlements[value eq ...]`,
        // a filter every store answers).
        let value = policy_value(p.id);
        let users = admin.user_def()?;
        let query = ListQuery {
            filter: Some(Filter::parse(&format!(
                "entitlements[value eq {}]",
                Value::String(value.clone())
            ))?),
            sort: None,
            start_index: 1,
            count: 1,
            include_members: false,
            max_candidates: MAX_USER_CANDIDATES,
            ..ListQuery::default()
        };
        let granted = list_exact(admin.store(), tenant, &users, &query)
            .await?
            .total_results;
        if let Some(o) = out.as_object_mut() {
            o.insert("value".to_owned(), Value::String(value));
            o.insert("idpGrants".to_owned(), json!(granted));
        }
    }
    Ok(out)
}

/// Validates a policy body: a name, and collections that are groups of the tenant now (or
/// were already attached to `existing`, when the IdP deleted them since: they keep their
/// stored name).
async fn checked_policy(
    admin: &Admin,
    tenant: &TenantId,
    body: &Bytes,
    existing: Option<&Policy>,
) -> Result<(String, Vec<PolicyCollection>), ApiError> {
    let b: PolicyBody = parse(body)?;
    let name = b.name.trim().to_owned();
    if name.is_empty() {
        return Err(ApiError::bad("Give the policy a name."));
    }
    if name.chars().count() > 200 {
        return Err(ApiError::bad(
            "The policy name is too long (200 characters at most).",
        ));
    }
    if b.collections.len() > MAX_PAGE {
        return Err(ApiError::bad(format!(
            "A policy names at most {MAX_PAGE} collections."
        )));
    }
    let def = admin.group_def()?;
    let mut collections: Vec<PolicyCollection> = Vec::new();
    for c in b.collections {
        if collections.iter().any(|x| x.id == c) {
            continue;
        }
        let gid = ResourceId::from(c.as_str());
        match admin.store().get(tenant, &def, &gid, false).await {
            Ok(g) => collections.push(PolicyCollection {
                name: g
                    .doc
                    .get("displayName")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                id: c,
            }),
            Err(StoreError::NotFound { .. }) => {
                match existing.and_then(|p| p.collections.iter().find(|x| x.id == c)) {
                    Some(kept) => collections.push(kept.clone()),
                    None => {
                        return Err(ApiError::bad(format!(
                            "The user collection {c:?} does not exist (the IdP deleted it?); \
                             reload."
                        )))
                    }
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok((name, collections))
}

fn policy_id(s: &str) -> Result<i64, ApiError> {
    s.parse()
        .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "No such policy."))
}

async fn create_policy(
    State(admin): State<Admin>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    authorize(&admin, &headers)?;
    let id = tenant_id(&tenant)?;
    admin.app().tenants.get_tenant(&id).await?;
    let (name, collections) = checked_policy(&admin, &id, &body, None).await?;
    let policy = admin
        .0
        .db
        .create_policy(&id, &name, collections)
        .await
        .map_err(ApiError::internal)?;
    admin.publish_policy(&id, &policy).await?;
    let def = admin.group_def()?;
    let body = policy_json(&admin, &id, &def, &policy).await?;
    Ok((StatusCode::CREATED, ok_json(body)).into_response())
}

async fn update_policy(
    State(admin): State<Admin>,
    Path((tenant, policy)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    authorize(&admin, &headers)?;
    let id = tenant_id(&tenant)?;
    let policy = policy_id(&policy)?;
    let existing = admin
        .0
        .db
        .policies(&id)
        .await
        .map_err(ApiError::internal)?
        .into_iter()
        .find(|p| p.id == policy)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "No such policy."))?;
    let (name, collections) = checked_policy(&admin, &id, &body, Some(&existing)).await?;
    let updated = admin
        .0
        .db
        .update_policy(&id, policy, &name, collections)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "No such policy."))?;
    if updated.name != existing.name {
        admin.publish_policy(&id, &updated).await?;
    }
    let def = admin.group_def()?;
    Ok(ok_json(policy_json(&admin, &id, &def, &updated).await?))
}

async fn delete_policy(
    State(admin): State<Admin>,
    Path((tenant, policy)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&admin, &headers)?;
    let id = tenant_id(&tenant)?;
    let policy = policy_id(&policy)?;
    if admin
        .0
        .db
        .delete_policy(&id, policy)
        .await
        .map_err(ApiError::internal)?
    {
        admin.withdraw_policy(&id, policy).await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::new(StatusCode::NOT_FOUND, "No such policy."))
    }
}

#[derive(Deserialize)]
struct LoginCheck {
    #[serde(rename = "userName")]
    user_name: String,
}

/// What the host does when a user logs in: find the user the IdP provisioned, read their
/// groups (`User.groups`, from the store's membership index) and apply the policies naming
/// one of them. A deactivated user (`active: false`) gets nothing.
async fn check_login(
    State(admin): State<Admin>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    authorize(&admin, &headers)?;
    let id = tenant_id(&tenant)?;
    admin.app().tenants.get_tenant(&id).await?;
    let check: LoginCheck = parse(&body)?;
    let user_name = check.user_name.trim();
    if user_name.is_empty() {
        return Err(ApiError::bad("Enter a userName."));
    }
    let def = admin.user_def()?;
    let query = ListQuery {
        // userName is case-insensitive (RFC 7643 §4.1.1), so is this lookup.
        filter: Some(Filter::parse(&format!(
            "userName eq {}",
            Value::String(user_name.to_owned())
        ))?),
        sort: None,
        start_index: 1,
        count: 1,
        include_members: false,
        max_candidates: usize::MAX,
        ..ListQuery::default()
    };
    let page = list_exact(admin.store(), &id, &def, &query).await?;
    let Some(user) = page.resources.into_iter().next() else {
        return Ok(ok_json(json!({
            "found": false,
            "allowed": false,
            "reason": "No user with this userName has been provisioned by the IdP.",
        })));
    };
    let groups = admin.store().groups_of(&id, &user.id).await?;
    // RFC 7643 §4.1.1: `active` absent means the host decides; this host treats it as active.
    let active = user
        .doc
        .get("active")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let policies = admin.0.db.policies(&id).await.map_err(ApiError::internal)?;
    let applying = if active {
        applying_policies(&policies, &groups, &user.doc)
    } else {
        Vec::new()
    };
    let reason = if !active {
        "The user is deactivated by the IdP (active: false): the login is refused and no policy applies."
    } else if applying.is_empty() {
        "No policy names any of the user's collections, and the IdP granted none."
    } else {
        "These policies apply at this login."
    };
    Ok(ok_json(json!({
        "found": true,
        "user": {
            "id": user.id.as_str(),
            "userName": text(&user.doc, "userName"),
            "displayName": text(&user.doc, "displayName"),
            "active": active,
        },
        "groups": groups
            .iter()
            .map(|g| json!({"id": g.id.as_str(), "name": g.display}))
            .collect::<Vec<_>>(),
        "policies": applying,
        "allowed": active && !applying.is_empty(),
        "reason": reason,
    })))
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
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;
    use crate::common::cli::StoreSpec;
    use axum::http::Request;
    use scimkit::auth::TokenVerifier;
    use tower::ServiceExt as _;

    const SECRET: &str = "correct horse battery staple";

    async fn console() -> (Admin, Router) {
        let app = App::open(&StoreSpec::Memory, "http://127.0.0.1:8080/scim/v2")
            .await
            .unwrap();
        let admin = Admin::new(app, SECRET, false);
        let router = routes::<Admin>().with_state(admin.clone());
        (admin, router)
    }

    struct Reply {
        status: StatusCode,
        headers: HeaderMap,
        body: String,
    }

    impl Reply {
        fn json(&self) -> Value {
            serde_json::from_str(&self.body).unwrap()
        }
    }

    async fn call(
        router: &Router,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        let resp = router
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        Reply {
            status,
            headers,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    /// Logs in and returns the `Cookie` header value.
    async fn log_in(router: &Router) -> String {
        let r = call(
            router,
            "POST",
            "/admin/login",
            &[(API_HEADER, "1")],
            Some(json!({ "secret": SECRET })),
        )
        .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
        let set = r.headers[header::SET_COOKIE].to_str().unwrap().to_owned();
        assert!(set.contains("HttpOnly"), "{set}");
        assert!(set.contains("SameSite=Strict"), "{set}");
        assert!(set.contains("Path=/admin"), "{set}");
        set.split(';').next().unwrap().to_owned()
    }

    #[tokio::test]
    async fn the_console_is_refused_without_the_secret() {
        let (_, router) = console().await;
        let r = call(&router, "GET", "/admin", &[], None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert!(r.body.contains("login-form"));
        assert!(
            !r.body.contains("tenant-select"),
            "no console without a session"
        );

        // Wrong secret, missing header, forged cookie: refused.
        let wrong = call(
            &router,
            "POST",
            "/admin/login",
            &[(API_HEADER, "1")],
            Some(json!({"secret": "correct horse battery stapler"})),
        )
        .await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
        assert!(wrong.headers.get(header::SET_COOKIE).is_none());
        let no_header = call(
            &router,
            "POST",
            "/admin/login",
            &[],
            Some(json!({ "secret": SECRET })),
        )
        .await;
        assert_eq!(no_header.status, StatusCode::FORBIDDEN);
        let forged = [(API_HEADER, "1"), ("cookie", "scimkit_admin=AAAA")];
        let r = call(&router, "GET", "/admin/api/tenants", &forged, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert!(r.json()["error"].as_str().unwrap().contains("log in"));

        // With a session: the console, and the API (only with the custom header).
        let cookie = log_in(&router).await;
        let r = call(&router, "GET", "/admin", &[("cookie", &cookie)], None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body.contains("tenant-select"));
        assert!(r.headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("script-src 'self'"));
        let r = call(
            &router,
            "GET",
            "/admin/api/tenants",
            &[("cookie", &cookie)],
            None,
        )
        .await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "the CSRF header is required"
        );
        let auth = [(API_HEADER, "1"), ("cookie", cookie.as_str())];
        let r = call(&router, "GET", "/admin/api/tenants", &auth, None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json()["tenants"], json!([]));

        // Logging out ends the session on the server, not only in the browser.
        let r = call(&router, "POST", "/admin/logout", &auth, None).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = call(&router, "GET", "/admin/api/tenants", &auth, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }

    async fn try_login(router: &Router, secret: &str) -> Reply {
        call(
            router,
            "POST",
            "/admin/login",
            &[(API_HEADER, "1")],
            Some(json!({ "secret": secret })),
        )
        .await
    }

    /// Parallel wrong secrets from any number of clients are counted together: after
    /// `FREE_FAILURES` of them every login is 429 with `Retry-After`, the right secret too,
    /// until the window passes; then the right secret works and clears the count.
    #[tokio::test]
    async fn wrong_logins_lock_the_login_for_everyone() {
        let (admin, router) = console().await;
        let guesses = (0..40).map(|i| {
            let router = router.clone();
            tokio::spawn(async move { try_login(&router, &format!("guess number {i:02}")).await })
        });
        let mut unauthorized = 0;
        let mut locked = 0;
        for g in guesses {
            let r = g.await.unwrap();
            match r.status {
                StatusCode::UNAUTHORIZED => unauthorized += 1,
                StatusCode::TOO_MANY_REQUESTS => {
                    locked += 1;
                    let wait: u64 = r.headers[header::RETRY_AFTER]
                        .to_str()
                        .unwrap()
                        .parse()
                        .unwrap();
                    assert!((1..=FIRST_LOCKOUT.as_secs()).contains(&wait), "{wait}");
                    assert!(r.json()["error"].as_str().unwrap().contains("locked"));
                }
                other => panic!("unexpected {other}: {}", r.body),
            }
        }
        assert_eq!(
            unauthorized, FREE_FAILURES,
            "only the free attempts were checked"
        );
        assert_eq!(locked, 40 - FREE_FAILURES);
        let r = try_login(&router, SECRET).await;
        assert_eq!(
            r.status,
            StatusCode::TOO_MANY_REQUESTS,
            "locked for everyone"
        );
        assert!(r.headers.get(header::SET_COOKIE).is_none());

        // The window passes: the right secret works and clears the count.
        lock(&admin.0.throttle).locked_until = Some(Instant::now());
        log_in(&router).await;
        assert_eq!(lock(&admin.0.throttle).failures, 0);
    }

    /// The backoff doubles with each wrong secret past the free ones, up to the maximum, and
    /// failures are forgotten after a quiet hour.
    #[test]
    fn the_lockout_doubles_up_to_its_maximum() {
        let start = Instant::now();
        let mut t = LoginThrottle::default();
        for _ in 0..FREE_FAILURES - 1 {
            assert!(t.admit(start).is_ok());
            t.failed(start);
        }
        assert!(t.admit(start).is_ok(), "not locked before the limit");
        t.failed(start);
        assert_eq!(t.admit(start), Err(FIRST_LOCKOUT));
        let mut now = start + FIRST_LOCKOUT;
        assert!(t.admit(now).is_ok(), "the window passed");
        t.failed(now);
        assert_eq!(t.admit(now), Err(FIRST_LOCKOUT * 2));
        for _ in 0..30 {
            now += MAX_LOCKOUT;
            assert!(t.admit(now).is_ok());
            t.failed(now);
        }
        assert_eq!(t.admit(now), Err(MAX_LOCKOUT));
        // A right secret after the window clears everything.
        now += MAX_LOCKOUT;
        assert!(t.admit(now).is_ok());
        t.succeeded();
        t.failed(now);
        assert!(
            t.admit(now).is_ok(),
            "one failure after a success is free again"
        );
        // An hour without failures forgets them.
        for _ in 0..FREE_FAILURES - 2 {
            t.failed(now);
        }
        now += FAILURE_MEMORY + Duration::from_secs(1);
        assert!(t.admit(now).is_ok());
        assert_eq!(t.failures, 0);
    }

    /// Behind an https public URL the session cookie (and its removal) is `Secure`; on
    /// plain http it cannot be.
    #[tokio::test]
    async fn the_cookie_is_secure_behind_https() {
        for (https, url) in [
            (true, "https://scim.example.com/scim/v2"),
            (false, "http://127.0.0.1:8080/scim/v2"),
        ] {
            let app = App::open(&StoreSpec::Memory, url).await.unwrap();
            let router = routes::<Admin>().with_state(Admin::new(app, SECRET, https));
            let r = try_login(&router, SECRET).await;
            assert_eq!(r.status, StatusCode::NO_CONTENT);
            let set = r.headers[header::SET_COOKIE].to_str().unwrap().to_owned();
            assert_eq!(set.contains("; Secure"), https, "{set}");
            let cookie = set.split(';').next().unwrap().to_owned();
            let r = call(
                &router,
                "POST",
                "/admin/logout",
                &[(API_HEADER, "1"), ("cookie", &cookie)],
                None,
            )
            .await;
            let cleared = r.headers[header::SET_COOKIE].to_str().unwrap();
            assert_eq!(cleared.contains("; Secure"), https, "{cleared}");
        }
    }

    #[tokio::test]
    async fn a_token_is_shown_once_and_never_listed() {
        let (admin, router) = console().await;
        let cookie = log_in(&router).await;
        let auth = [(API_HEADER, "1"), ("cookie", cookie.as_str())];

        let r = call(
            &router,
            "POST",
            "/admin/api/tenants",
            &auth,
            Some(json!({"id": "okta-prod", "name": "Okta production"})),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert_eq!(r.json()["scimEnabled"], false, "created switched off");
        assert_eq!(
            r.json()["baseUrl"],
            "http://127.0.0.1:8080/scim/v2/okta-prod"
        );
        let bad = call(
            &router,
            "POST",
            "/admin/api/tenants",
            &auth,
            Some(json!({"id": "okta_prod", "name": "x"})),
        )
        .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);

        let r = call(
            &router,
            "POST",
            "/admin/api/tenants/okta-prod/tokens",
            &auth,
            Some(json!({"label": "Okta"})),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED);
        assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
        let token = r.json()["token"].as_str().unwrap().to_owned();
        let tid = r.json()["id"].as_str().unwrap().to_owned();

        // The token opens the tenant once SCIM is on...
        let tenant = TenantId::new("okta-prod").unwrap();
        let bearer = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
        let verifier = admin.app().tenants.verifier();
        let r = call(
            &router,
            "PUT",
            "/admin/api/tenants/okta-prod/scim",
            &auth,
            Some(json!({"enabled": true})),
        )
        .await;
        assert_eq!(r.json()["scimEnabled"], true);
        assert!(verifier.verify(&tenant, Some(&bearer)).await.is_ok());

        // ...and no later answer carries it.
        let list = call(
            &router,
            "GET",
            "/admin/api/tenants/okta-prod/tokens",
            &auth,
            None,
        )
        .await;
        assert_eq!(list.status, StatusCode::OK);
        assert!(!list.body.contains(&token), "{}", list.body);
        assert_eq!(list.json()["tokens"][0]["label"], "Okta");
        assert_eq!(list.json()["tokens"][0]["status"], "active");
        let page = call(&router, "GET", "/admin", &[("cookie", &cookie)], None).await;
        assert!(!page.body.contains(&token));

        // Revoked: refused at once.
        let r = call(
            &router,
            "POST",
            &format!("/admin/api/tenants/okta-prod/tokens/{tid}/revoke"),
            &auth,
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert!(verifier.verify(&tenant, Some(&bearer)).await.is_err());
        let list = call(
            &router,
            "GET",
            "/admin/api/tenants/okta-prod/tokens",
            &auth,
            None,
        )
        .await;
        assert_eq!(list.json()["tokens"][0]["status"], "revoked");
    }

    #[tokio::test]
    async fn policies_need_existing_collections_and_unknown_things_are_404() {
        let (_, router) = console().await;
        let cookie = log_in(&router).await;
        let auth = [(API_HEADER, "1"), ("cookie", cookie.as_str())];
        call(
            &router,
            "POST",
            "/admin/api/tenants",
            &auth,
            Some(json!({"id": "entra", "name": "Entra"})),
        )
        .await;
        let policies = "/admin/api/tenants/entra/policies";
        for (method, path, body, want) in [
            (
                "POST",
                policies,
                Some(json!({"name": "VPN", "collections": ["no-such-group"]})),
                StatusCode::BAD_REQUEST,
            ),
            (
                "POST",
                policies,
                Some(json!({"name": "  ", "collections": []})),
                StatusCode::BAD_REQUEST,
            ),
            (
                "GET",
                "/admin/api/tenants/nope/policies",
                None,
                StatusCode::NOT_FOUND,
            ),
            (
                "GET",
                "/admin/api/tenants/entra/groups?count=x",
                None,
                StatusCode::BAD_REQUEST,
            ),
        ] {
            let r = call(&router, method, path, &auth, body).await;
            assert_eq!(r.status, want, "{method} {path}");
        }
        let r = call(
            &router,
            "GET",
            "/admin/api/tenants/entra/groups",
            &auth,
            None,
        )
        .await;
        assert_eq!(r.json()["total"], 0);
        let r = call(
            &router,
            "POST",
            "/admin/api/tenants/entra/check-login",
            &auth,
            Some(json!({"userName": "ghost@example.com"})),
        )
        .await;
        assert_eq!(r.json()["found"], false);
        assert_eq!(r.json()["allowed"], false);
    }

    /// A console on `spec` (with its own console database there).
    async fn console_on(spec: &StoreSpec) -> (Admin, Router) {
        let app = App::open(spec, "http://127.0.0.1:8080/scim/v2")
            .await
            .unwrap();
        let db = ConsoleDb::open(spec).await.unwrap();
        let admin = Admin::with_db(app, SECRET, false, db);
        let router = routes::<Admin>().with_state(admin.clone());
        (admin, router)
    }

    /// A SCIM request to the console's service, as an IdP sends it.
    async fn scim(admin: &Admin, token: &str, method: &str, path: &str, body: Value) -> Value {
        let req = http::Request::builder()
            .method(method)
            .uri(format!("/scim/v2/acme{path}"))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/scim+json")
            .body(axum::body::Bytes::from(body.to_string()))
            .unwrap();
        let resp = admin.app().service.handle(req).await;
        assert!(
            resp.status().is_success(),
            "{method} {path}: {} {}",
            resp.status(),
            String::from_utf8_lossy(resp.body())
        );
        serde_json::from_slice(resp.body()).unwrap_or(Value::Null)
    }

    fn user(name: &str, ext: &str, email: &str, active: bool) -> Value {
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name,
               "externalId": ext, "emails": [{"value": email}], "active": active})
    }

    /// Health, the users view, sorted members with counts, policies that outlive their
    /// collections, and revocation times, on `spec`.
    async fn console_views_work_on(spec: &StoreSpec) {
        let (admin, router) = console_on(spec).await;
        let cookie = log_in(&router).await;
        let auth = [(API_HEADER, "1"), ("cookie", cookie.as_str())];
        let api = |p: &str| format!("/admin/api/tenants/acme{p}");
        let r = call(
            &router,
            "POST",
            "/admin/api/tenants",
            &auth,
            Some(json!({"id": "acme", "name": "Acme"})),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        call(
            &router,
            "PUT",
            &api("/scim"),
            &auth,
            Some(json!({"enabled": true})),
        )
        .await;

        // SCIM on, no token, no request: both warnings.
        let h = call(&router, "GET", &api("/health"), &auth, None)
            .await
            .json();
        let codes: Vec<&str> = h["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["code"].as_str().unwrap())
            .collect();
        assert_eq!(codes, ["noActiveToken", "noRequestYet"], "{h}");
        assert_eq!(h["checklist"]["scimOn"], true);
        assert_eq!(h["checklist"]["tested"], false);

        let r = call(
            &router,
            "POST",
            &api("/tokens"),
            &auth,
            Some(json!({"label": "idp"})),
        )
        .await;
        let token = r.json()["token"].as_str().unwrap().to_owned();
        let token_id = r.json()["id"].as_str().unwrap().to_owned();
        assert_eq!(r.json()["prefix"], token_id.get(..8).unwrap());

        let mut ids = HashMap::new();
        for (name, ext, email, active) in [
            ("zed@example.com", "e-3", "zed@corp.example", true),
            ("amy@example.com", "e-1", "amy@corp.example", false),
            ("bob@example.com", "e-2", "bob@other.example", true),
        ] {
            let u = scim(
                &admin,
                &token,
                "POST",
                "/Users",
                user(name, ext, email, active),
            )
            .await;
            ids.insert(name, u["id"].as_str().unwrap().to_owned());
        }
        let members: Vec<Value> = ids.values().map(|id| json!({"value": id})).collect();
        let g = scim(
            &admin,
            &token,
            "POST",
            "/Groups",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                   "displayName": "Staff", "members": members}),
        )
        .await;
        let gid = g["id"].as_str().unwrap().to_owned();
        // The IdP's connection test.
        scim(
            &admin,
            &token,
            "GET",
            "/Users?startIndex=1&count=2",
            Value::Null,
        )
        .await;
        // The log is appended by a task of its own: wait for the test to show up.
        let mut h = Value::Null;
        for _ in 0..100 {
            h = call(&router, "GET", &api("/health"), &auth, None)
                .await
                .json();
            if h["checklist"]["tested"].is_string() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            (&h["users"], &h["groups"], &h["activeTokens"]),
            (&json!(3), &json!(1), &json!(1))
        );
        assert_eq!(h["warnings"], json!([]), "a token is active and was used");
        assert!(h["checklist"]["tested"].is_string());
        assert!(h["checklist"]["userCreated"].is_string(), "seen in the log");
        assert!(h["checklist"]["groupPushed"].is_string(), "seen in the log");

        // Users: by userName, paged; searched three ways; filtered by state.
        let names = |r: &Reply| -> Vec<String> {
            r.json()["users"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["userName"].as_str().unwrap().to_owned())
                .collect()
        };
        let r = call(&router, "GET", &api("/users?count=2"), &auth, None).await;
        assert_eq!(r.json()["total"], 3);
        assert_eq!(names(&r), ["amy@example.com", "bob@example.com"]);
        let r = call(&router, "GET", &api("/users?start=3&count=2"), &auth, None).await;
        assert_eq!(names(&r), ["zed@example.com"]);
        for (query, want) in [
            ("q=ZE", vec!["zed@example.com"]),
            (
                "q=corp.example&by=email",
                vec!["amy@example.com", "zed@example.com"],
            ),
            ("q=e-2&by=externalId", vec!["bob@example.com"]),
            ("q=e-&by=externalId", vec![]),
            ("status=inactive", vec!["amy@example.com"]),
            ("status=active", vec!["bob@example.com", "zed@example.com"]),
            ("q=corp&by=email&status=active", vec!["zed@example.com"]),
        ] {
            let r = call(
                &router,
                "GET",
                &api(&format!("/users?{query}")),
                &auth,
                None,
            )
            .await;
            assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.body);
            assert_eq!(names(&r), want, "{query}");
        }
        for bad in ["by=displayName&q=x", "status=maybe", "count=x"] {
            let r = call(&router, "GET", &api(&format!("/users?{bad}")), &auth, None).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
            assert!(r.json()["error"].is_string());
        }
        let long = "x".repeat(300);
        let r = call(
            &router,
            "GET",
            &api(&format!("/users?q={long}")),
            &auth,
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);

        // A user's page: its collection, externalId, state.
        let amy = &ids["amy@example.com"];
        let r = call(&router, "GET", &api(&format!("/users/{amy}")), &auth, None).await;
        assert_eq!(r.json()["externalId"], "e-1");
        assert_eq!(r.json()["active"], false);
        assert_eq!(r.json()["groups"][0]["name"], "Staff");
        let r = call(&router, "GET", &api("/users/no-such-user"), &auth, None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);

        // Members by userName, with the inactive one counted as such; paged.
        let r = call(
            &router,
            "GET",
            &api(&format!("/groups/{gid}/members?count=2")),
            &auth,
            None,
        )
        .await;
        let m = r.json();
        assert_eq!(
            (&m["total"], &m["active"], &m["inactive"]),
            (&json!(3), &json!(2), &json!(1))
        );
        let page: Vec<&str> = m["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["userName"].as_str().unwrap())
            .collect();
        assert_eq!(page, ["amy@example.com", "bob@example.com"]);
        assert_eq!(m["members"][0]["active"], false);
        let r = call(
            &router,
            "GET",
            &api(&format!("/groups/{gid}/members?start=3&count=2")),
            &auth,
            None,
        )
        .await;
        assert_eq!(r.json()["members"][0]["userName"], "zed@example.com");

        // A policy keeps the name of a collection the IdP deleted, and can still be saved.
        let r = call(
            &router,
            "POST",
            &api("/policies"),
            &auth,
            Some(json!({"name": "VPN", "collections": [gid]})),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let pid = r.json()["id"].as_i64().unwrap();
        let req = http::Request::builder()
            .method("DELETE")
            .uri(format!("/scim/v2/acme/Groups/{gid}"))
            .header("authorization", format!("Bearer {token}"))
            .body(axum::body::Bytes::new())
            .unwrap();
        assert_eq!(
            admin.app().service.handle(req).await.status(),
            StatusCode::NO_CONTENT
        );
        let r = call(&router, "GET", &api("/policies"), &auth, None).await;
        assert_eq!(
            r.json()["policies"][0]["collections"][0],
            json!({"id": gid, "name": "Staff", "deleted": true})
        );
        let r = call(
            &router,
            "PUT",
            &api(&format!("/policies/{pid}")),
            &auth,
            Some(json!({"name": "VPN 2", "collections": [gid]})),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.json()["collections"][0]["name"], "Staff");
        let r = call(
            &router,
            "PUT",
            &api(&format!("/policies/{pid}")),
            &auth,
            Some(json!({"name": "VPN", "collections": ["nope"]})),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let r = call(&router, "GET", &api("/policies"), &auth, None).await;
        assert_eq!(
            r.json()["policies"][0]["name"],
            "VPN 2",
            "a refused update changed nothing"
        );
        for path in ["/policies/abc", "/policies/999"] {
            let r = call(&router, "DELETE", &api(path), &auth, None).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        }

        // The provisioning log: a refused request with its real reason, newest first,
        // filtered, never carrying the token.
        let req = http::Request::builder()
            .method("GET")
            .uri("/scim/v2/acme/Users")
            .header(
                "authorization",
                "Bearer scimkit_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            )
            .body(axum::body::Bytes::new())
            .unwrap();
        assert_eq!(
            admin.app().service.handle(req).await.status(),
            StatusCode::UNAUTHORIZED
        );
        // Events are appended by a task of their own: wait for the last one.
        let mut log = Value::Null;
        for _ in 0..100 {
            log = call(&router, "GET", &api("/log?count=200"), &auth, None)
                .await
                .json();
            if log["events"][0]["status"] == 401 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let first = &log["events"][0];
        assert_eq!(first["kind"], "failure", "{log}");
        assert_eq!(
            first["authFailureText"],
            "unknown token (never issued for this tenant)"
        );
        let events = log["events"].as_array().unwrap();
        // 3 user creates, a group create, the test GET, a group delete, the refused GET.
        assert_eq!(events.len(), 7, "{log}");
        assert!(!log.to_string().contains(&token), "no secret in the log");
        let cursors: Vec<u64> = events
            .iter()
            .map(|e| e["cursor"].as_u64().unwrap())
            .collect();
        assert!(
            cursors.windows(2).all(|w| w[0] > w[1]),
            "newest first: {cursors:?}"
        );
        let r = call(
            &router,
            "GET",
            &api("/log?outcome=success&resource=Group"),
            &auth,
            None,
        )
        .await;
        let groups_log = r.json();
        let methods: Vec<&str> = groups_log["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["method"].as_str().unwrap())
            .collect();
        assert_eq!(methods, ["DELETE", "POST"], "{}", r.body);
        let r = call(&router, "GET", &api("/log?q=amy@example"), &auth, None).await;
        assert_eq!(r.json()["events"][0]["name"], "amy@example.com");
        assert_eq!(r.json()["events"].as_array().unwrap().len(), 1);
        let r = call(&router, "GET", &api("/log?count=2"), &auth, None).await;
        let next = r.json()["next"].as_u64().unwrap();
        let r = call(
            &router,
            "GET",
            &api(&format!("/log?count=10&before={next}")),
            &auth,
            None,
        )
        .await;
        assert_eq!(
            r.json()["events"].as_array().unwrap().len(),
            5,
            "the older page"
        );
        for bad in ["outcome=broken", "resource=Device", "before=x", "count=-1"] {
            let r = call(&router, "GET", &api(&format!("/log?{bad}")), &auth, None).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
        }
        let h = call(&router, "GET", &api("/health"), &auth, None)
            .await
            .json();
        assert_eq!(h["lastError"]["status"], 401);
        assert_eq!(
            h["lastError"]["reason"],
            "unknown token (never issued for this tenant)"
        );
        assert!(h["lastSuccess"].is_string());
        assert!(
            h["checklist"]["userCreated"].is_string(),
            "seen in the log: {h}"
        );

        // A small collection in a larger tenant (SQLite joins and sorts instead of walking
        // the users), with a nested group listed after the users.
        for i in 0..6 {
            let name = format!("more{i}@example.com");
            scim(
                &admin,
                &token,
                "POST",
                "/Users",
                user(&name, &format!("m-{i}"), &name, true),
            )
            .await;
        }
        let inner = scim(
            &admin,
            &token,
            "POST",
            "/Groups",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Inner"}),
        )
        .await;
        let inner_id = inner["id"].as_str().unwrap().to_owned();
        let small = scim(
            &admin,
            &token,
            "POST",
            "/Groups",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Small",
                   "members": [{"value": inner_id}, {"value": ids["bob@example.com"]}]}),
        )
        .await;
        let small_id = small["id"].as_str().unwrap().to_owned();
        let r = call(
            &router,
            "GET",
            &api(&format!("/groups/{small_id}/members")),
            &auth,
            None,
        )
        .await;
        let m = r.json();
        assert_eq!((&m["total"], &m["inactive"]), (&json!(2), &json!(0)), "{m}");
        assert_eq!(m["members"][0]["userName"], "bob@example.com");
        assert_eq!(m["members"][1]["id"], inner_id.as_str());
        assert_eq!(m["members"][1]["type"], "Group");
        let r = call(
            &router,
            "GET",
            &api(&format!("/groups/{small_id}/members?start=2&count=1")),
            &auth,
            None,
        )
        .await;
        assert_eq!(r.json()["members"][0]["id"], inner_id.as_str());
        assert_eq!(r.json()["members"].as_array().unwrap().len(), 1);

        // Revoking the last token: its time is listed, and the health warns.
        let r = call(
            &router,
            "POST",
            &api(&format!("/tokens/{token_id}/revoke")),
            &auth,
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = call(&router, "GET", &api("/tokens"), &auth, None).await;
        assert_eq!(r.json()["tokens"][0]["status"], "revoked");
        assert!(r.json()["tokens"][0]["revokedAt"].is_string());
        let h = call(&router, "GET", &api("/health"), &auth, None)
            .await
            .json();
        assert_eq!(h["warnings"][0]["code"], "noActiveToken");
    }

    #[tokio::test]
    async fn console_views_work_on_the_memory_store() {
        console_views_work_on(&StoreSpec::Memory).await;
    }

    /// After [`console_views_work_on`]: a second console on the same database (a restart)
    /// sees the policy and the revocation time.
    async fn a_second_console_keeps_policies(spec: &StoreSpec) {
        let (_, router) = console_on(spec).await;
        let cookie = log_in(&router).await;
        let auth = [(API_HEADER, "1"), ("cookie", cookie.as_str())];
        let r = call(
            &router,
            "GET",
            "/admin/api/tenants/acme/policies",
            &auth,
            None,
        )
        .await;
        assert_eq!(r.json()["policies"][0]["name"], "VPN 2");
        assert_eq!(r.json()["policies"][0]["collections"][0]["name"], "Staff");
        assert_eq!(r.json()["policies"][0]["collections"][0]["deleted"], true);
        let r = call(
            &router,
            "GET",
            "/admin/api/tenants/acme/tokens",
            &auth,
            None,
        )
        .await;
        let revoked = r.json()["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["revokedAt"].is_string())
            .count();
        assert_eq!(revoked, 1);
    }

    /// The same on SQLite, where members are sorted and counted with SQL and the policies
    /// are in the store's file.
    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn console_views_work_on_sqlite_and_policies_survive_a_restart() {
        let path = std::env::temp_dir().join(format!(
            "scimkit-console-{}-{}.db",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        let spec = StoreSpec::Sqlite(path.clone());
        console_views_work_on(&spec).await;
        a_second_console_keeps_policies(&spec).await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }

    /// The same on PostgreSQL (the test server of `scimkit::store::testing::postgres`,
    /// skipped without one unless `SCIMKIT_REQUIRE_POSTGRES=1`).
    #[cfg(all(feature = "postgres", feature = "testing"))]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn console_views_work_on_postgres_and_policies_survive_a_restart() {
        let Some(url) = scimkit::store::testing::postgres::fresh_database().await else {
            return;
        };
        let spec = StoreSpec::Postgres(url);
        console_views_work_on(&spec).await;
        a_second_console_keeps_policies(&spec).await;
    }

    #[test]
    fn query_strings_are_decoded() {
        let uri: Uri = "/x?q=Eng%C3%A9+team&start=2&bad=%G1".parse().unwrap();
        let p = query_params(&uri);
        assert_eq!(p.get("q").map(String::as_str), Some("Engé team"));
        assert_eq!(p.get("start").map(String::as_str), Some("2"));
        assert!(!p.contains_key("bad"), "an invalid escape is dropped");
        assert_eq!(paging(&p, 25).unwrap(), (2, 25));
    }
}
