//! The PostgreSQL backend (cargo feature `postgres`): [`PostgresStore`].
//!
//! For hosts that run several stateless service instances behind a load balancer: every
//! instance opens its own pool on the same database, and the database enforces what must
//! hold across them.
//!
//! - **Schema.** Versioned migrations, embedded, applied by [`PostgresStore::connect`] and
//!   [`PostgresStore::connect_with`] under an advisory lock (two instances starting at once apply
//!   them once). Tables are prefixed `scimkit_`; see the `migrations` module source.
//! - **Documents** are JSONB, with extracted, indexed columns for what identity providers look
//!   up: `id`, `userName` (case-folded), `externalId`, `displayName` (case-folded). A second
//!   JSONB column holds the document with every string folded the way the filter engine
//!   folds case ([`crate::filter::fold_case`]), so that case-insensitive comparisons in SQL give exactly the engine's answer.
//!   Timestamps are stored as nanoseconds since the epoch (so they round-trip exactly), which
//!   limits them to the years 1677 to 2262.
//! - **Uniqueness** keys live in their own table with a primary key per tenant, resource type,
//!   attribute and value (hashed, so long values are fine): two instances racing to create the
//!   same `userName` give one winner and a [`StoreError::Conflict`] for the other. Versions are
//!   checked under a row lock, so a stale write fails with [`StoreError::VersionMismatch`].
//! - **Membership** is a table of (group, member) pairs with indexes both ways, so adding one
//!   member to a 100,000-member group is one insert.
//! - **Change feed**: every write appends its records in the same transaction, numbered by a
//!   per-tenant counter row, so a reader never sees a later record before an earlier one.
//! - **Filters** are translated to SQL completely where the translation is exact (see the
//!   `sql` module); the rest is reported [`Pushdown::Inexact`](super::Pushdown::Inexact) with a narrowing SQL prefilter.
//!   Sorting and paging run in SQL whenever the filter is exact, and `totalResults` is exact.
//!   `co` on `userName`/`displayName` uses a trigram index when the `pg_trgm` extension can be
//!   created, and scans otherwise.
//! - **Tenants and tokens** live in the same database: [`PostgresStore`] also implements
//!   [`TenantStore`](crate::auth::TenantStore), so one handle serves both roles.
//!
//! PostgreSQL text cannot hold the NUL character: a document containing one is refused with
//! [`StoreError::InvalidValue`] (a 400 `invalidValue`), and filter values containing one are
//! answered without reaching the database.

mod dialect;
mod feed;
mod list;
mod log;
mod members;
mod migrations;
mod refold;
mod sort_keys;
mod tenants;
mod write;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, PgConnection, Postgres, Row};

use super::{
    CreateRequest, GroupRef, ListQuery, Member, MemberPage, Page, ResourceStore, StoreError,
    StoredResource, UniqueKey, UpdateRequest,
};
use crate::auth::{TenantCache, TENANT_CACHE_CAPACITY, TENANT_CACHE_TTL};
use crate::feed::{Change, ChangeHub, ChangeNotifier, ChangeSubscription};
use crate::filter::fold_case_owned;
use crate::resource::{ResourceId, Version};
use crate::schema::{AttributeDef, ResourceDef};
use crate::store::sql::pool::ReadPool;
use crate::store::sql::Param as Arg;
use crate::tenant::TenantId;

/// How often a transaction aborted by a deadlock or serialization failure is retried.
const MAX_ATTEMPTS: usize = 8;

/// The PostgreSQL [`ResourceStore`] and [`TenantStore`](crate::auth::TenantStore).
///
/// Cloning is cheap (the pool is shared). Any number of handles, in any number of
/// processes, may use one database at once.
///
/// ```no_run
/// use std::sync::Arc;
/// use scimkit::store::postgres::PostgresStore;
/// use scimkit::store::ResourceStore;
/// use scimkit::auth::TenantStore;
///
/// # async fn run() -> Result<(), scimkit::store::StoreError> {
/// let store = PostgresStore::connect("postgres://scim@db.internal/scim").await?;
/// let resources: Arc<dyn ResourceStore> = Arc::new(store.clone());
/// let tenants: Arc<dyn TenantStore> = Arc::new(store);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// The connections the hot reads run on (see [`ReadPool`]), shared by the clones.
    reads: Arc<ReadPool<PgConnection>>,
    notifier: Option<Arc<dyn ChangeNotifier>>,
    /// The subscriptions' hub, shared by the handle's clones (and fed by `listen`).
    hub: ChangeHub,
    /// Token and tenant records for authentication, shared by the handle's clones.
    tenant_cache: Arc<TenantCache>,
}

/// A statement of this store, its parameters bound.
type PgQuery<'q> = sqlx::query::Query<'q, Postgres, PgArguments>;

impl ReadPool<PgConnection> {
    /// All rows of `q`, read on a connection of this pool.
    async fn fetch_all(&self, q: PgQuery<'_>) -> Result<Vec<PgRow>, sqlx::Error> {
        let mut conn = self.acquire().await?;
        let rows = q.fetch_all(&mut *conn).await?;
        conn.release();
        Ok(rows)
    }

    /// The first row of `q`, if any, read on a connection of this pool.
    async fn fetch_optional(&self, q: PgQuery<'_>) -> Result<Option<PgRow>, sqlx::Error> {
        let mut conn = self.acquire().await?;
        let row = q.fetch_optional(&mut *conn).await?;
        conn.release();
        Ok(row)
    }
}

/// The notification channel of tenant and token changes (payload: the tenant id).
const TENANTS_CHANNEL: &str = "scimkit_tenants";

/// The notification channel of committed writes (payload: `<seq> <tenant>`).
const CHANGES_CHANNEL: &str = "scimkit_changes";

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("pool_size", &self.pool.size())
            .field("notifier", &self.notifier.is_some())
            .finish()
    }
}

/// Maps a database error: values PostgreSQL cannot hold are the client's fault, everything
/// else is a backend failure (its text goes to logs only).
pub(crate) fn db_err(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(d) = &e {
        match d.code().as_deref() {
            // program_limit_exceeded (an index row too large), character_not_in_repertoire,
            // untranslatable_character, invalid text representation.
            Some("54000") => {
                return StoreError::InvalidValue(
                    "a value is too long to be stored and indexed".to_owned(),
                )
            }
            Some("22021") | Some("22P05") => {
                return StoreError::InvalidValue(
                    "a value holds a character that cannot be stored".to_owned(),
                )
            }
            _ => {}
        }
    }
    StoreError::backend(e)
}

fn retryable(e: &StoreError) -> bool {
    let StoreError::Backend(source) = e else {
        return false;
    };
    let source: &(dyn std::error::Error + Send + Sync + 'static) = &**source;
    match source.downcast_ref::<sqlx::Error>() {
        Some(sqlx::Error::Database(d)) => {
            matches!(d.code().as_deref(), Some("40001") | Some("40P01"))
        }
        _ => false,
    }
}

fn bind_all<'q>(
    mut q: sqlx::query::Query<'q, Postgres, PgArguments>,
    args: &[Arg],
) -> sqlx::query::Query<'q, Postgres, PgArguments> {
    for a in args {
        q = match a {
            Arg::Text(s) => q.bind(s.clone()),
            Arg::Int(i) => q.bind(*i),
            Arg::Real(f) => q.bind(*f),
        };
    }
    q
}

fn to_ns(t: DateTime<Utc>) -> Result<i64, StoreError> {
    t.timestamp_nanos_opt().ok_or_else(|| {
        StoreError::InvalidValue(format!(
            "the time {t} is outside the range this store can hold (1677 to 2262)"
        ))
    })
}

fn from_ns(ns: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(ns)
}

fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(has_nul),
        Value::Object(m) => m.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

fn check_doc(doc: &Value) -> Result<(), StoreError> {
    if has_nul(doc) {
        return Err(StoreError::InvalidValue(
            "a string holds a NUL character (U+0000), which cannot be stored".to_owned(),
        ));
    }
    Ok(())
}

/// The extracted columns of a document.
struct Columns {
    user_name_fold: Option<String>,
    external_id: Option<String>,
    display_name_fold: Option<String>,
    display: Option<String>,
}

impl Columns {
    fn of(doc: &Value) -> Columns {
        let s = |k: &str| doc.get(k).and_then(Value::as_str);
        // NULL for empty values too (see the `sql` module's `Target::Column`).
        let ne = |k: &str| s(k).filter(|v| !v.is_empty());
        Columns {
            user_name_fold: ne("userName").map(fold_case_owned),
            external_id: ne("externalId").map(str::to_owned),
            display_name_fold: ne("displayName").map(fold_case_owned),
            display: super::member_display(doc).map(str::to_owned),
        }
    }
}

/// Puts a document read back from JSONB (which orders keys by length) in the schema's
/// order, the order the service normalised it in.
fn schema_order(rt: &ResourceDef, doc: Value) -> Value {
    let Value::Object(mut m) = doc else {
        return doc;
    };
    let mut out = Map::with_capacity(m.len());
    if let Some(v) = m.shift_remove("schemas") {
        out.insert("schemas".to_owned(), v);
    }
    for def in rt.common().iter().chain(rt.core().attributes.iter()) {
        if let Some(v) = m.shift_remove(&def.name) {
            out.insert(def.name.clone(), order_value(def, v));
        }
    }
    for (schema, _) in rt.extensions() {
        match m.shift_remove(&schema.id) {
            Some(Value::Object(mut em)) => {
                let mut o = Map::with_capacity(em.len());
                for def in &schema.attributes {
                    if let Some(v) = em.shift_remove(&def.name) {
                        o.insert(def.name.clone(), order_value(def, v));
                    }
                }
                o.extend(em);
                out.insert(schema.id.clone(), Value::Object(o));
            }
            Some(other) => {
                out.insert(schema.id.clone(), other);
            }
            None => {}
        }
    }
    out.extend(m);
    Value::Object(out)
}

fn order_value(def: &AttributeDef, v: Value) -> Value {
    if !def.is_complex() {
        return v;
    }
    match v {
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|e| order_value(def, e)).collect())
        }
        Value::Object(mut m) => {
            let mut o = Map::with_capacity(m.len());
            for sub in &def.sub_attributes {
                if let Some(x) = m.shift_remove(&sub.name) {
                    o.insert(sub.name.clone(), x);
                }
            }
            o.extend(m);
            Value::Object(o)
        }
        other => other,
    }
}

fn unique_hash(k: &UniqueKey) -> Vec<u8> {
    Sha256::digest(k.value.as_bytes()).to_vec()
}

const RESOURCE_COLUMNS: &str =
    "r.id, r.resource_type, r.version, r.created, r.last_modified, r.doc::text";

/// The groups `r` is a direct member of, as a JSON array of `[id, resource type, display]`
/// (the column [`PostgresStore::get_with_groups`] reads), after [`RESOURCE_COLUMNS`].
const GROUPS_COLUMN: &str =
    ", (SELECT coalesce(json_agg(json_build_array(g.id, g.resource_type, g.display) \
     ORDER BY m.group_id), '[]'::json)::text \
     FROM scimkit_members m \
     JOIN scimkit_resources g ON g.tenant = m.tenant AND g.id = m.group_id \
     WHERE m.tenant = r.tenant AND m.member_id = r.id)";

fn resource_from_row(rt: &ResourceDef, row: &PgRow) -> Result<StoredResource, StoreError> {
    resource_from_row_at(rt, row, 0)
}

/// A resource from the [`RESOURCE_COLUMNS`] starting at column `at`.
fn resource_from_row_at(
    rt: &ResourceDef,
    row: &PgRow,
    at: usize,
) -> Result<StoredResource, StoreError> {
    let id: String = row.try_get(at).map_err(db_err)?;
    let resource_type: String = row.try_get(at + 1).map_err(db_err)?;
    let version: i64 = row.try_get(at + 2).map_err(db_err)?;
    let created: i64 = row.try_get(at + 3).map_err(db_err)?;
    let last_modified: i64 = row.try_get(at + 4).map_err(db_err)?;
    let doc: String = row.try_get(at + 5).map_err(db_err)?;
    let doc: Value = serde_json::from_str(&doc).map_err(StoreError::backend)?;
    Ok(StoredResource {
        id: ResourceId::new(id),
        resource_type,
        version: Version::new(u64::try_from(version).unwrap_or(0)),
        created: from_ns(created),
        last_modified: from_ns(last_modified),
        doc: schema_order(rt, doc),
        members: None,
        skipped_members: Vec::new(),
    })
}

type Tx = sqlx::Transaction<'static, Postgres>;

/// How [`PostgresStore::connect_with`] connects: the URL and the pool's size and patience.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PostgresOptions {
    /// `postgres://user:password@host:port/database`.
    pub url: String,
    /// The most connections the pool opens (default 16).
    pub max_connections: u32,
    /// The connections the pool keeps open when idle (default 0).
    pub min_connections: u32,
    /// How long a request waits for a free connection before failing (default 30 s).
    pub acquire_timeout: std::time::Duration,
    /// The most connections the reads of single resources, lists, memberships, tenants and
    /// tokens use (default 4), opened on first need beside the pool's `max_connections`:
    /// a read runs on one of these without sqlx's ping when the pool takes a connection
    /// back (see the type's notes).
    pub read_connections: u32,
}

impl PostgresOptions {
    /// The defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        PostgresOptions {
            url: url.into(),
            max_connections: 16,
            min_connections: 0,
            acquire_timeout: std::time::Duration::from_secs(30),
            read_connections: DEFAULT_READ_CONNECTIONS,
        }
    }

    /// Sets the most connections the pool opens.
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n;
        self
    }

    /// Sets the connections kept open when idle.
    pub fn min_connections(mut self, n: u32) -> Self {
        self.min_connections = n;
        self
    }

    /// Sets the most connections reads use (at least 1).
    pub fn read_connections(mut self, n: u32) -> Self {
        self.read_connections = n.max(1);
        self
    }

    /// Sets how long a request waits for a free connection.
    pub fn acquire_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }
}

/// [`PostgresOptions::read_connections`] by default.
const DEFAULT_READ_CONNECTIONS: u32 = 4;

/// How long a pooled connection may sit idle before it is pinged when next handed out.
const IDLE_BEFORE_PING: std::time::Duration = std::time::Duration::from_secs(10);

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/database`) with a pool of up to
    /// 16 connections and applies the migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(PostgresOptions::new(url)).await
    }

    /// Connects as `options` say and applies the migrations.
    pub async fn connect_with(options: PostgresOptions) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .min_connections(options.min_connections)
            .acquire_timeout(options.acquire_timeout)
            // sqlx pings every connection it hands out by default: one more round trip per
            // request. Ping only one that sat idle long enough for a server restart or a
            // firewall to have dropped it; a busy pool's connections are known alive.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= IDLE_BEFORE_PING {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect(&options.url)
            .await
            .map_err(db_err)?;
        Self::with_pool(pool, options.read_connections).await
    }

    /// Uses an existing sqlx pool and applies the migrations (feature `postgres-sqlx`: this
    /// names a sqlx type, so the host must use this crate's sqlx version).
    #[cfg(feature = "postgres-sqlx")]
    pub async fn from_pool(pool: PgPool) -> Result<Self, StoreError> {
        Self::with_pool(pool, DEFAULT_READ_CONNECTIONS).await
    }

    async fn with_pool(pool: PgPool, read_connections: u32) -> Result<Self, StoreError> {
        migrations::migrate(&pool).await?;
        let reads = ReadPool::new(
            (*pool.connect_options()).clone(),
            read_connections,
            Some(IDLE_BEFORE_PING),
            pool.options().get_acquire_timeout(),
        )
        // As the host's pool does (sqlx: 30 minutes unless set otherwise).
        .with_max_lifetime(pool.options().get_max_lifetime());
        Ok(PostgresStore {
            pool,
            reads: Arc::new(reads),
            notifier: None,
            hub: ChangeHub::new(),
            tenant_cache: Arc::new(TenantCache::new(TENANT_CACHE_TTL, TENANT_CACHE_CAPACITY)),
        })
    }

    /// Calls `notifier` after every write this handle commits and, while
    /// [`listen`](Self::listen) runs, after every write any instance sharing the database
    /// commits.
    pub fn with_notifier(mut self, notifier: Arc<dyn ChangeNotifier>) -> Self {
        self.notifier = Some(notifier);
        self
    }

    /// Sets how long the token and tenant records that authentication reads are kept
    /// (default [`TENANT_CACHE_TTL`], 2 s) and how many of each (default
    /// [`TENANT_CACHE_CAPACITY`]). A change made through this handle or its clones is seen at
    /// once; one made by another instance, within `ttl`, or at once while
    /// [`listen`](Self::listen) runs. A zero `ttl` reads them on every request.
    pub fn with_tenant_cache(mut self, ttl: std::time::Duration, capacity: usize) -> Self {
        self.tenant_cache = Arc::new(TenantCache::new(ttl, capacity));
        self
    }

    /// Closes the connections of this handle and its clones, waiting for the statements
    /// running on them; later calls fail.
    pub async fn close(&self) {
        self.reads.close().await;
        self.pool.close().await;
    }

    /// The sqlx connection pool (feature `postgres-sqlx`).
    #[cfg(feature = "postgres-sqlx")]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn notify(&self, tenant: &TenantId, seq: Option<u64>) {
        let Some(seq) = seq else { return };
        self.hub.publish(tenant, seq);
        if let Some(n) = &self.notifier {
            n.notify(tenant, seq);
        }
    }

    async fn begin(&self) -> Result<Tx, StoreError> {
        self.pool.begin().await.map_err(db_err)
    }

    /// A read-only transaction with one snapshot, so that a count and a page agree.
    async fn begin_snapshot(&self) -> Result<Tx, StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        Ok(tx)
    }

    /// Recomputes the precomputed sort keys of `tenant`'s resources of type `rt` with `rt`'s
    /// schema, in batches (each its own transaction). Needed only when a tenant's resources
    /// were stored before migration 10 with a schema other than the built-in one, or when the
    /// schema of `rt` changed: until then a sort of that type computes its keys per row.
    pub async fn rebuild_sort_keys(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(db_err)?;
        crate::store::sql::sort_keys::rebuild(&mut *conn, tenant.as_str(), rt).await
    }

    async fn with_retry<T, F, Fut>(&self, mut attempt: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        let mut n = 0;
        loop {
            n += 1;
            match attempt().await {
                Err(e) if n < MAX_ATTEMPTS && retryable(&e) => {
                    tracing::debug!(attempt = n, "retrying a transaction after {e}");
                }
                other => return other,
            }
        }
    }
}

#[async_trait]
impl ResourceStore for PostgresStore {
    fn keyset_paging(&self) -> bool {
        true
    }

    async fn create(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        req: CreateRequest,
    ) -> Result<StoredResource, StoreError> {
        if req.id.as_str().contains('\0') {
            return Err(StoreError::InvalidValue(
                "the id holds a NUL character".to_owned(),
            ));
        }
        check_doc(&req.doc)?;
        let (res, seq) = self
            .with_retry(|| self.create_once(tenant, rt, &req))
            .await?;
        self.notify(tenant, Some(seq));
        Ok(res)
    }

    async fn create_many(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        requests: Vec<CreateRequest>,
    ) -> Result<Vec<StoredResource>, StoreError> {
        for req in &requests {
            if req.id.as_str().contains('\0') {
                return Err(StoreError::InvalidValue(
                    "the id holds a NUL character".to_owned(),
                ));
            }
            check_doc(&req.doc)?;
        }
        let (res, seq) = self
            .with_retry(|| self.create_many_once(tenant, rt, &requests))
            .await?;
        self.notify(tenant, seq);
        Ok(res)
    }

    async fn get(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        id: &ResourceId,
        include_members: bool,
    ) -> Result<StoredResource, StoreError> {
        if id.as_str().contains('\0') {
            return Err(StoreError::not_found(rt, id));
        }
        let q = sqlx::query(AssertSqlSafe(format!(
            "SELECT {RESOURCE_COLUMNS} FROM scimkit_resources r \
             WHERE r.tenant = $1 AND r.id = $2 AND r.resource_type = $3"
        )))
        .bind(tenant.as_str())
        .bind(id.as_str())
        .bind(rt.name());
        if !include_members {
            let row = self
                .reads
                .fetch_optional(q)
                .await
                .map_err(db_err)?
                .ok_or_else(|| StoreError::not_found(rt, id))?;
            return resource_from_row(rt, &row);
        }
        let mut tx = self.begin_snapshot().await?;
        let row = q
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?
            .ok_or_else(|| StoreError::not_found(rt, id))?;
        let mut res = [resource_from_row(rt, &row)?];
        Self::attach_members(&mut tx, tenant, &mut res).await?;
        tx.commit().await.map_err(db_err)?;
        let [res] = res;
        Ok(res)
    }

    async fn update(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        id: &ResourceId,
        req: UpdateRequest,
    ) -> Result<StoredResource, StoreError> {
        if id.as_str().contains('\0') {
            return Err(StoreError::not_found(rt, id));
        }
        if let Some(d) = &req.document {
            check_doc(&d.doc)?;
        }
        let (res, seq) = self
            .with_retry(|| self.update_once(tenant, rt, id, &req))
            .await?;
        self.notify(tenant, seq);
        Ok(res)
    }

    async fn delete(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        id: &ResourceId,
        expected_version: Option<Version>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.delete_as(tenant, rt, id, expected_version, now, None)
            .await
    }

    async fn delete_as(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        id: &ResourceId,
        expected_version: Option<Version>,
        now: DateTime<Utc>,
        actor: Option<&str>,
    ) -> Result<(), StoreError> {
        if id.as_str().contains('\0') {
            return Err(StoreError::not_found(rt, id));
        }
        let now = to_ns(now)?;
        let seq = self
            .with_retry(|| self.delete_once(tenant, rt, id, expected_version, now, actor))
            .await?;
        self.notify(tenant, Some(seq));
        Ok(())
    }

    async fn list(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        query: &ListQuery,
    ) -> Result<Page, StoreError> {
        Ok(self.list_page(tenant, rt, query, false).await?.0)
    }

    async fn list_with_groups(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        query: &ListQuery,
    ) -> Result<(Page, Option<Vec<Vec<GroupRef>>>), StoreError> {
        self.list_page(tenant, rt, query, true).await
    }

    async fn members_if_at_most(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        group: &ResourceId,
        max: usize,
    ) -> Result<Option<Vec<Member>>, StoreError> {
        self.members_up_to(tenant, rt, group, max).await
    }

    async fn members(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        group: &ResourceId,
        start_index: usize,
        count: usize,
    ) -> Result<MemberPage, StoreError> {
        self.member_page(tenant, rt, group, start_index, count)
            .await
    }

    async fn groups_of(
        &self,
        tenant: &TenantId,
        member: &ResourceId,
    ) -> Result<Vec<GroupRef>, StoreError> {
        self.groups_of_one(tenant, member).await
    }

    async fn get_with_groups(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        id: &ResourceId,
    ) -> Result<(StoredResource, Vec<GroupRef>), StoreError> {
        self.get_joining_groups(tenant, rt, id).await
    }

    async fn groups_of_many(
        &self,
        tenant: &TenantId,
        members: &[ResourceId],
    ) -> Result<Vec<Vec<GroupRef>>, StoreError> {
        self.groups_of_each(tenant, members).await
    }

    async fn changes_since(
        &self,
        tenant: &TenantId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Change>, StoreError> {
        self.read_changes(tenant, after, limit).await
    }

    async fn head_seq(&self, tenant: &TenantId) -> Result<u64, StoreError> {
        // The tenant's counter: the last sequence number handed out (pruning never lowers it).
        let last: Option<i64> =
            sqlx::query_scalar("SELECT last_seq FROM scimkit_feed_seq WHERE tenant = $1")
                .bind(tenant.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?;
        Ok(last.map_or(0, |l| u64::try_from(l).unwrap_or(0)))
    }

    fn subscribe(&self) -> Option<ChangeSubscription> {
        Some(self.hub.subscribe())
    }

    async fn prune_changes(
        &self,
        tenant: &TenantId,
        retention: &super::ChangeRetention,
        now: DateTime<Utc>,
    ) -> Result<super::PruneReport, StoreError> {
        self.prune_feed(tenant, retention, now).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::fold_strings;
    use crate::schema::SchemaRegistry;
    use serde_json::json;

    #[test]
    fn folded_documents_keep_structure() {
        let doc =
            json!({"userName": "ÉMILE", "emails": [{"value": "A@B", "primary": true}], "n": 1});
        assert_eq!(
            fold_strings(&doc),
            json!({"userName": "émile", "emails": [{"value": "a@b", "primary": true}], "n": 1})
        );
        assert!(has_nul(&json!({"a": ["x\u{0}"]})));
        assert!(!has_nul(&json!({"a": ["x"]})));
    }

    #[test]
    fn documents_come_back_in_schema_order() {
        let reg = SchemaRegistry::default();
        let users = reg.user().unwrap();
        // JSONB's order: shorter keys first.
        let stored: Value = serde_json::from_str(
            r#"{"name": {"givenName": "B", "familyName": "J"}, "active": true, "emails": [{"type": "work", "value": "b@x"}], "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "bj", "x-extra": 1}"#,
        )
        .unwrap();
        let ordered = schema_order(users, stored);
        let keys: Vec<&String> = ordered.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            ["schemas", "userName", "name", "active", "emails", "x-extra"]
        );
        let name: Vec<&String> = ordered["name"].as_object().unwrap().keys().collect();
        assert_eq!(name, ["familyName", "givenName"]);
    }

    #[test]
    fn timestamps_round_trip_to_the_nanosecond() {
        let t = DateTime::from_timestamp_nanos(1_767_225_600_123_456_789);
        assert_eq!(from_ns(to_ns(t).unwrap()), t);
        let far = DateTime::parse_from_rfc3339("2300-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert!(matches!(to_ns(far), Err(StoreError::InvalidValue(_))));
    }
}
