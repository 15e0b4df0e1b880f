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
//!   `sql` module); the rest is reported [`Pushdown::Inexact`] with a narrowing SQL prefilter.
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
mod log;
mod migrations;
mod refold;
mod sort_keys;
mod tenants;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Postgres, Row};

use self::dialect::Pg;
use super::query::compile;
use super::{
    CreateRequest, GroupRef, Keyset, ListQuery, Member, MemberPage, MemberRef, Page, Paging,
    Pushdown, ResolvedMembers, ResourceStore, StoreError, StoredResource, UniqueKey,
    UnknownMembers, UpdateKind, UpdateRequest,
};
use crate::auth::{TenantCache, TENANT_CACHE_CAPACITY, TENANT_CACHE_TTL};
use crate::feed::{
    Change, ChangeHub, ChangeKind, ChangeNotifier, ChangeSubscription, MemberChanges,
};
use crate::filter::{fold_case_owned, fold_strings, SortOrder, SortSpec, SortValue};
use crate::resource::{ResourceId, Version};
use crate::schema::{AttributeDef, ResourceDef};
use crate::store::sql::{translate, Param as Arg, Params};
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
    notifier: Option<Arc<dyn ChangeNotifier>>,
    /// The subscriptions' hub, shared by the handle's clones (and fed by `listen`).
    hub: ChangeHub,
    /// Token and tenant records for authentication, shared by the handle's clones.
    tenant_cache: Arc<TenantCache>,
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

/// One change record to append.
struct NewChange<'a> {
    resource_type: &'a str,
    id: &'a str,
    kind: ChangeKind,
    version: Version,
    members: Option<MemberChanges>,
    actor: Option<&'a str>,
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
}

impl PostgresOptions {
    /// The defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        PostgresOptions {
            url: url.into(),
            max_connections: 16,
            min_connections: 0,
            acquire_timeout: std::time::Duration::from_secs(30),
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

    /// Sets how long a request waits for a free connection.
    pub fn acquire_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }
}

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
        Self::with_pool(pool).await
    }

    /// Uses an existing sqlx pool and applies the migrations (feature `postgres-sqlx`: this
    /// names a sqlx type, so the host must use this crate's sqlx version).
    #[cfg(feature = "postgres-sqlx")]
    pub async fn from_pool(pool: PgPool) -> Result<Self, StoreError> {
        Self::with_pool(pool).await
    }

    async fn with_pool(pool: PgPool) -> Result<Self, StoreError> {
        migrations::migrate(&pool).await?;
        Ok(PostgresStore {
            pool,
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

    /// Listens for what other instances sharing the database commit, and acts on it in this
    /// one: a tenant or token change (revocation, expiry, SCIM switched off, new settings)
    /// drops the cached records of that tenant at once, and a resource write wakes this
    /// handle's subscriptions ([`ResourceStore::subscribe`], shared by its clones) and its
    /// [`ChangeNotifier`] with the tenant and sequence number. Writers notify with
    /// PostgreSQL's `NOTIFY` in their transaction, so nothing is announced before it commits.
    ///
    /// Runs until dropped: spawn it once per process, on the runtime sqlx runs on
    /// (`tokio::spawn(store.listen())`). It holds one connection of the pool. When the
    /// connection drops it reconnects (pausing up to 5 s between failed attempts) and, since
    /// notifications may have been missed meanwhile, forgets every cached record and wakes
    /// every subscription (so that its reader reads the feed again).
    pub fn listen(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let store = self.clone();
        async move {
            let mut failures: u32 = 0;
            loop {
                let error = store.listen_session(&mut failures).await;
                store.tenant_cache.clear();
                failures = failures.saturating_add(1);
                tracing::warn!(error = %error, failures, "listening for PostgreSQL notifications failed; reconnecting");
                let pause = std::time::Duration::from_millis(100u64 << failures.min(6));
                tokio::time::sleep(pause.min(std::time::Duration::from_secs(5))).await;
            }
        }
    }

    /// One listening connection, until it fails.
    async fn listen_session(&self, failures: &mut u32) -> sqlx::Error {
        let mut listener = match sqlx::postgres::PgListener::connect_with(&self.pool).await {
            Ok(l) => l,
            Err(e) => return e,
        };
        if let Err(e) = listener
            .listen_all([TENANTS_CHANNEL, CHANGES_CHANNEL])
            .await
        {
            return e;
        }
        // Whatever changed before this point may not have been heard.
        self.tenant_cache.clear();
        self.hub.wake();
        *failures = 0;
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => self.on_notification(n.channel(), n.payload()),
                // Reconnected: notifications may have been missed.
                Ok(None) => {
                    self.tenant_cache.clear();
                    self.hub.wake();
                }
                Err(e) => return e,
            }
        }
    }

    fn on_notification(&self, channel: &str, payload: &str) {
        match channel {
            TENANTS_CHANNEL => match TenantId::new(payload) {
                Ok(tenant) => self.tenant_cache.forget_tenant(&tenant),
                Err(_) => self.tenant_cache.clear(),
            },
            CHANGES_CHANNEL => {
                let parsed = payload.split_once(' ').and_then(|(seq, tenant)| {
                    Some((seq.parse::<u64>().ok()?, TenantId::new(tenant).ok()?))
                });
                if let Some((seq, tenant)) = parsed {
                    self.notify(&tenant, Some(seq));
                }
            }
            _ => {}
        }
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

    async fn create_once(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        req: &CreateRequest,
    ) -> Result<(StoredResource, u64), StoreError> {
        let now = to_ns(req.now)?;
        let cols = Columns::of(&req.doc);
        let doc_text = serde_json::to_string(&req.doc).map_err(StoreError::backend)?;
        let fold_text =
            serde_json::to_string(&fold_strings(&req.doc)).map_err(StoreError::backend)?;
        let mut tx = self.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO scimkit_resources (tenant, id, resource_type, version, created, \
             last_modified, doc, doc_fold, user_name_fold, external_id, display_name_fold, \
             display) VALUES ($1, $2, $3, 1, $4, $4, $5::jsonb, $6::jsonb, $7, $8, $9, $10) \
             ON CONFLICT (tenant, id) DO NOTHING",
        )
        .bind(tenant.as_str())
        .bind(req.id.as_str())
        .bind(rt.name())
        .bind(now)
        .bind(doc_text)
        .bind(fold_text)
        .bind(cols.user_name_fold)
        .bind(cols.external_id)
        .bind(cols.display_name_fold)
        .bind(cols.display)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?
        .rows_affected();
        if inserted == 0 {
            return Err(StoreError::Conflict {
                attribute: "id".to_owned(),
            });
        }
        insert_keys(&mut tx, tenant, rt, req.id.as_str(), &req.unique_keys).await?;
        sort_keys::write(
            &mut tx,
            tenant.as_str(),
            rt,
            &[req.id.to_string()],
            &[&req.doc],
        )
        .await?;
        let added = add_members(
            &mut tx,
            tenant,
            req.id.as_str(),
            &req.members,
            req.unknown_members,
        )
        .await?;
        let (members, skipped_members) = added.into_sorted();
        let seq = push_changes(
            &mut tx,
            tenant,
            now,
            &[NewChange {
                resource_type: rt.name(),
                id: req.id.as_str(),
                kind: ChangeKind::Created,
                version: Version::INITIAL,
                actor: req.actor.as_deref(),
                members: (!members.is_empty()).then(|| {
                    MemberChanges::delta(
                        members.iter().map(|m| m.value.clone()).collect(),
                        Vec::new(),
                    )
                }),
            }],
        )
        .await?;
        sort_keys::count(&mut tx, tenant.as_str(), rt.name(), 1).await?;
        tx.commit().await.map_err(db_err)?;
        Ok((
            StoredResource {
                id: req.id.clone(),
                resource_type: rt.name().to_owned(),
                version: Version::INITIAL,
                created: from_ns(now),
                last_modified: from_ns(now),
                doc: req.doc.clone(),
                members: (!req.members.is_empty()).then_some(members),
                skipped_members,
            },
            seq,
        ))
    }

    /// [`ResourceStore::create_many`] in one transaction, a few statements per chunk of
    /// requests whatever their number: rows, uniqueness keys and change records go in with
    /// `unnest`; initial members per request.
    async fn create_many_once(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        reqs: &[CreateRequest],
    ) -> Result<(Vec<StoredResource>, Option<u64>), StoreError> {
        const CHUNK: usize = 5000;
        let mut tx = self.begin().await?;
        let mut out = Vec::with_capacity(reqs.len());
        let mut last_seq = None;
        for chunk in reqs.chunks(CHUNK) {
            let n = chunk.len();
            let mut ids = Vec::with_capacity(n);
            let mut times = Vec::with_capacity(n);
            let mut docs = Vec::with_capacity(n);
            let mut folds = Vec::with_capacity(n);
            let (mut un, mut ex, mut dn, mut di) = (
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
            );
            let (mut key_attrs, mut key_hashes, mut key_ids) = (Vec::new(), Vec::new(), Vec::new());
            for req in chunk {
                let cols = Columns::of(&req.doc);
                ids.push(req.id.to_string());
                times.push(to_ns(req.now)?);
                docs.push(serde_json::to_string(&req.doc).map_err(StoreError::backend)?);
                folds.push(
                    serde_json::to_string(&fold_strings(&req.doc)).map_err(StoreError::backend)?,
                );
                un.push(cols.user_name_fold);
                ex.push(cols.external_id);
                dn.push(cols.display_name_fold);
                di.push(cols.display);
                let mut seen = HashSet::new();
                for k in &req.unique_keys {
                    if seen.insert((k.attribute.as_str(), k.value.as_str())) {
                        key_attrs.push(k.attribute.clone());
                        key_hashes.push(unique_hash(k));
                        key_ids.push(req.id.to_string());
                    }
                }
            }
            let inserted = sqlx::query(
                "INSERT INTO scimkit_resources (tenant, id, resource_type, version, created, \
                 last_modified, doc, doc_fold, user_name_fold, external_id, display_name_fold, \
                 display) SELECT $1, u.id, $2, 1, u.t, u.t, u.d::jsonb, u.f::jsonb, u.un, u.ex, \
                 u.dn, u.di FROM unnest($3::text[], $4::bigint[], $5::text[], $6::text[], \
                 $7::text[], $8::text[], $9::text[], $10::text[]) AS u(id, t, d, f, un, ex, dn, di) \
                 ON CONFLICT (tenant, id) DO NOTHING",
            )
            .bind(tenant.as_str())
            .bind(rt.name())
            .bind(&ids)
            .bind(&times)
            .bind(docs)
            .bind(folds)
            .bind(un)
            .bind(ex)
            .bind(dn)
            .bind(di)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?
            .rows_affected();
            if usize::try_from(inserted).unwrap_or(0) != n {
                return Err(StoreError::Conflict {
                    attribute: "id".to_owned(),
                });
            }
            let keys = key_attrs.len();
            let stored = sqlx::query(
                "INSERT INTO scimkit_unique (tenant, resource_type, attribute, value_hash, id) \
                 SELECT $1, $2, u.a, u.h, u.id FROM unnest($3::text[], $4::bytea[], $5::text[]) \
                 AS u(a, h, id) ON CONFLICT DO NOTHING",
            )
            .bind(tenant.as_str())
            .bind(rt.name())
            .bind(&key_attrs)
            .bind(&key_hashes)
            .bind(&key_ids)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?
            .rows_affected();
            if usize::try_from(stored).unwrap_or(0) != keys {
                // Which key was taken (by an earlier resource or one of this chunk): the
                // first, in request order, held by another id.
                let rows = sqlx::query(
                    "SELECT attribute, value_hash, id FROM scimkit_unique WHERE tenant = $1 \
                     AND resource_type = $2 AND (attribute, value_hash) IN \
                     (SELECT * FROM unnest($3::text[], $4::bytea[]))",
                )
                .bind(tenant.as_str())
                .bind(rt.name())
                .bind(&key_attrs)
                .bind(&key_hashes)
                .fetch_all(&mut *tx)
                .await
                .map_err(db_err)?;
                let mut owner: HashMap<(String, Vec<u8>), String> = HashMap::new();
                for row in rows {
                    owner.insert(
                        (
                            row.try_get(0).map_err(db_err)?,
                            row.try_get(1).map_err(db_err)?,
                        ),
                        row.try_get(2).map_err(db_err)?,
                    );
                }
                let taken = key_attrs
                    .iter()
                    .zip(&key_hashes)
                    .zip(&key_ids)
                    .find(|((a, h), id)| {
                        owner
                            .get(&((*a).clone(), (*h).clone()))
                            .is_some_and(|o| o != *id)
                    });
                return Err(StoreError::Conflict {
                    attribute: taken.map_or_else(|| "id".to_owned(), |((a, _), _)| a.clone()),
                });
            }
            let docs: Vec<&Value> = chunk.iter().map(|r| &r.doc).collect();
            sort_keys::write(&mut tx, tenant.as_str(), rt, &ids, &docs).await?;
            let mut members = Vec::with_capacity(n);
            for req in chunk {
                let added = add_members(
                    &mut tx,
                    tenant,
                    req.id.as_str(),
                    &req.members,
                    req.unknown_members,
                )
                .await?;
                members.push(added.into_sorted());
            }
            let member_changes: Vec<Option<String>> = members
                .iter()
                .map(|(m, _)| {
                    (!m.is_empty()).then(|| {
                        MemberChanges::delta(
                            m.iter().map(|m| m.value.clone()).collect(),
                            Vec::new(),
                        )
                        .to_column()
                    })
                })
                .collect();
            let last: i64 = sqlx::query_scalar(
                "WITH s AS (INSERT INTO scimkit_feed_seq (tenant, last_seq) VALUES ($1, $2) \
                   ON CONFLICT (tenant) DO UPDATE SET last_seq = scimkit_feed_seq.last_seq + $2 \
                   RETURNING last_seq), \
                 c AS (INSERT INTO scimkit_changes (tenant, seq, resource_type, id, kind, version, at, members, actor) \
                   SELECT $1, s.last_seq - $2 + u.n, $3, u.id, $4, 1, u.t, u.m, u.a \
                   FROM s, unnest($5::text[], $6::bigint[], $7::text[], $8::text[]) WITH ORDINALITY AS u(id, t, m, a, n)) \
                 SELECT last_seq FROM s, \
                   LATERAL (SELECT pg_notify('scimkit_changes', s.last_seq || ' ' || $1)) AS n",
            )
            .bind(tenant.as_str())
            .bind(i64::try_from(n).unwrap_or(i64::MAX))
            .bind(rt.name())
            .bind(ChangeKind::Created.as_str())
            .bind(&ids)
            .bind(&times)
            .bind(&member_changes)
            .bind(chunk.iter().map(|r| r.actor.clone()).collect::<Vec<_>>())
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
            last_seq = Some(u64::try_from(last).unwrap_or(0));
            sort_keys::count(
                &mut tx,
                tenant.as_str(),
                rt.name(),
                i64::try_from(n).unwrap_or(0),
            )
            .await?;
            for ((req, t), (members, skipped_members)) in chunk.iter().zip(&times).zip(members) {
                out.push(StoredResource {
                    id: req.id.clone(),
                    resource_type: rt.name().to_owned(),
                    version: Version::INITIAL,
                    created: from_ns(*t),
                    last_modified: from_ns(*t),
                    doc: req.doc.clone(),
                    members: (!req.members.is_empty()).then_some(members),
                    skipped_members,
                });
            }
        }
        tx.commit().await.map_err(db_err)?;
        Ok((out, last_seq))
    }

    async fn update_once(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        id: &ResourceId,
        req: &UpdateRequest,
    ) -> Result<(StoredResource, Option<u64>), StoreError> {
        let now = to_ns(req.now)?;
        let mut tx = self.begin().await?;
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {RESOURCE_COLUMNS} FROM scimkit_resources r \
             WHERE r.tenant = $1 AND r.id = $2 AND r.resource_type = $3 FOR UPDATE"
        )))
        .bind(tenant.as_str())
        .bind(id.as_str())
        .bind(rt.name())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?
        .ok_or_else(|| StoreError::not_found(rt, id))?;
        let current = resource_from_row(rt, &row)?;
        StoreError::check_version(req.expected_version, current.version)?;

        let mut members_changed = false;
        let mut added = Added::default();
        if let Some(delta) = req.members.as_ref().filter(|d| !d.is_empty()) {
            let add = member_ids(&delta.add);
            let add_set: HashSet<&str> = add.iter().map(String::as_str).collect();
            let removed = if delta.clear {
                sqlx::query(
                    "DELETE FROM scimkit_members WHERE tenant = $1 AND group_id = $2 \
                     AND NOT (member_id = ANY($3))",
                )
                .bind(tenant.as_str())
                .bind(id.as_str())
                .bind(add.clone())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?
                .rows_affected()
            } else {
                let remove: Vec<String> = delta
                    .remove
                    .iter()
                    .map(|r| r.as_str())
                    .filter(|r| !r.contains('\0') && !add_set.contains(r))
                    .map(str::to_owned)
                    .collect();
                if remove.is_empty() {
                    0
                } else {
                    sqlx::query(
                        "DELETE FROM scimkit_members WHERE tenant = $1 AND group_id = $2 \
                         AND member_id = ANY($3)",
                    )
                    .bind(tenant.as_str())
                    .bind(id.as_str())
                    .bind(remove)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?
                    .rows_affected()
                }
            };
            added = add_members(&mut tx, tenant, id.as_str(), &delta.add, delta.unknown).await?;
            members_changed = removed + added.new > 0;
        }
        let (member_changes, members, skipped_members) = added.resolved.update_outcome(
            req.members.as_ref(),
            members_changed,
            req.return_members,
        );

        if req.document.is_none() && !members_changed {
            // Nothing to write; the transaction only read and locked.
            tx.rollback().await.map_err(db_err)?;
            return Ok((
                StoredResource {
                    members,
                    skipped_members,
                    ..current
                },
                None,
            ));
        }
        let version = current.version.next();
        let mut doc = current.doc;
        if let Some(new) = &req.document {
            sqlx::query("DELETE FROM scimkit_unique WHERE tenant = $1 AND id = $2")
                .bind(tenant.as_str())
                .bind(id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            insert_keys(&mut tx, tenant, rt, id.as_str(), &new.unique_keys).await?;
            let cols = Columns::of(&new.doc);
            let doc_text = serde_json::to_string(&new.doc).map_err(StoreError::backend)?;
            let fold_text =
                serde_json::to_string(&fold_strings(&new.doc)).map_err(StoreError::backend)?;
            sqlx::query(
                "UPDATE scimkit_resources SET version = $3, last_modified = $4, \
                 doc = $5::jsonb, doc_fold = $6::jsonb, user_name_fold = $7, external_id = $8, \
                 display_name_fold = $9, display = $10 WHERE tenant = $1 AND id = $2",
            )
            .bind(tenant.as_str())
            .bind(id.as_str())
            .bind(super::to_i64(version.get()))
            .bind(now)
            .bind(doc_text)
            .bind(fold_text)
            .bind(cols.user_name_fold)
            .bind(cols.external_id)
            .bind(cols.display_name_fold)
            .bind(cols.display)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            sort_keys::write(&mut tx, tenant.as_str(), rt, &[id.to_string()], &[&new.doc]).await?;
            doc = new.doc.clone();
        }
        let kind = match (&req.document, req.kind) {
            (None, _) => ChangeKind::MembershipChanged,
            (Some(_), UpdateKind::Replace) => ChangeKind::Replaced,
            (Some(_), UpdateKind::Patch) => ChangeKind::Patched,
        };
        // A membership-only write bumps the version with its change record.
        let bump = req
            .document
            .is_none()
            .then(|| (id.as_str(), super::to_i64(version.get())));
        let seq = push_changes_bumping(
            &mut tx,
            tenant,
            now,
            &[NewChange {
                resource_type: rt.name(),
                id: id.as_str(),
                kind,
                version,
                members: member_changes,
                actor: req.actor.as_deref(),
            }],
            bump,
        )
        .await?;
        tx.commit().await.map_err(db_err)?;
        Ok((
            StoredResource {
                id: id.clone(),
                resource_type: rt.name().to_owned(),
                version,
                created: current.created,
                last_modified: from_ns(now),
                doc,
                members,
                skipped_members,
            },
            Some(seq),
        ))
    }

    async fn delete_once(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        id: &ResourceId,
        expected: Option<Version>,
        now: i64,
        actor: Option<&str>,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        let version: i64 = sqlx::query_scalar(
            "SELECT version FROM scimkit_resources \
             WHERE tenant = $1 AND id = $2 AND resource_type = $3 FOR UPDATE",
        )
        .bind(tenant.as_str())
        .bind(id.as_str())
        .bind(rt.name())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?
        .ok_or_else(|| StoreError::not_found(rt, id))?;
        let current = Version::new(u64::try_from(version).unwrap_or(0));
        StoreError::check_version(expected, current)?;
        // The groups it leaves, locked in id order (as every writer locks them).
        let groups = sqlx::query(
            "SELECT g.id, g.resource_type, g.version FROM scimkit_resources g \
             WHERE g.tenant = $1 AND g.id IN \
             (SELECT group_id FROM scimkit_members WHERE tenant = $1 AND member_id = $2) \
             ORDER BY g.id FOR UPDATE",
        )
        .bind(tenant.as_str())
        .bind(id.as_str())
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        let mut bumped: Vec<(String, String, Version)> = Vec::with_capacity(groups.len());
        for g in &groups {
            let gid: String = g.try_get(0).map_err(db_err)?;
            let grt: String = g.try_get(1).map_err(db_err)?;
            let gv: i64 = g.try_get(2).map_err(db_err)?;
            bumped.push((
                gid,
                grt,
                Version::new(u64::try_from(gv).unwrap_or(0)).next(),
            ));
        }
        if !bumped.is_empty() {
            let ids: Vec<String> = bumped.iter().map(|b| b.0.clone()).collect();
            sqlx::query(
                "UPDATE scimkit_resources SET version = version + 1, last_modified = $3 \
                 WHERE tenant = $1 AND id = ANY($2)",
            )
            .bind(tenant.as_str())
            .bind(ids)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        sort_keys::remove(&mut tx, tenant.as_str(), id.as_str()).await?;
        // Memberships and uniqueness keys go with it (ON DELETE CASCADE).
        sqlx::query("DELETE FROM scimkit_resources WHERE tenant = $1 AND id = $2")
            .bind(tenant.as_str())
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let mut changes = vec![NewChange {
            resource_type: rt.name(),
            id: id.as_str(),
            kind: ChangeKind::Deleted,
            version: current.next(),
            members: None,
            actor,
        }];
        let left = MemberChanges::delta(Vec::new(), vec![id.clone()]);
        for (gid, grt, gv) in &bumped {
            changes.push(NewChange {
                resource_type: grt,
                id: gid,
                kind: ChangeKind::MembershipChanged,
                version: *gv,
                members: Some(left.clone()),
                actor,
            });
        }
        let seq = push_changes(&mut tx, tenant, now, &changes).await?;
        sort_keys::count(&mut tx, tenant.as_str(), rt.name(), -1).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(seq)
    }

    /// Members of the given groups, ordered by group then member id.
    /// A page sorted on precomputed keys ([`sort_keys`]): the resources with a value walking
    /// the key index, then those without in creation order; `totalResults` from the
    /// maintained count when the filter is always true.
    #[allow(clippy::too_many_arguments)]
    async fn keyed_list(
        tx: &mut Tx,
        rt: &ResourceDef,
        query: &ListQuery,
        spec: &SortSpec,
        path: &str,
        all: bool,
        where_sql: &str,
        params: &Params,
    ) -> Result<Page, StoreError> {
        let mut p = params.clone();
        let t = "$1";
        let ty = "$2";
        let count_sql = if all {
            format!(
                "SELECT COALESCE((SELECT n FROM scimkit_type_counts WHERE tenant = {t} \
                 AND resource_type = {ty}), 0) AS n"
            )
        } else {
            format!("SELECT count(*) AS n FROM scimkit_resources r WHERE {where_sql}")
        };
        let total: i64 = bind_all(sqlx::query(AssertSqlSafe(count_sql)), &params.args)
            .persistent(!params.plan_per_value)
            .fetch_one(&mut **tx)
            .await
            .map_err(db_err)?
            .try_get(0)
            .map_err(db_err)?;
        let total = usize::try_from(total).unwrap_or(0);
        let window = super::page_window(query.start_index, query.count, total);
        let dir = match spec.order {
            SortOrder::Ascending => "ASC",
            SortOrder::Descending => "DESC",
        };
        let kp = p.text(path);
        let mut resources = Vec::with_capacity(window.len());
        if !window.is_empty() {
            let rows = bind_all(
                sqlx::query(AssertSqlSafe(format!(
                    "SELECT {RESOURCE_COLUMNS} FROM scimkit_sort_keys k \
                     JOIN scimkit_resources r ON r.ord = k.ord \
                     WHERE k.tenant = {t} AND k.resource_type = {ty} AND k.path = {kp} AND {where_sql} \
                     ORDER BY k.key {dir}, k.rest {dir}, k.ord LIMIT {} OFFSET {}",
                    window.len(),
                    window.start
                ))),
                &p.args,
            )
            .persistent(!params.plan_per_value)
            .fetch_all(&mut **tx)
            .await
            .map_err(db_err)?;
            for row in &rows {
                resources.push(resource_from_row(rt, row)?);
            }
        }
        if resources.len() < window.len() {
            let got = resources.len();
            let with_value = if got == 0 {
                let n: i64 = bind_all(
                    sqlx::query(AssertSqlSafe(format!(
                        "SELECT count(*) FROM scimkit_sort_keys k JOIN scimkit_resources r ON r.ord = k.ord \
                         WHERE k.tenant = {t} AND k.resource_type = {ty} AND k.path = {kp} AND {where_sql}"
                    ))),
                    &p.args,
                )
                .persistent(!params.plan_per_value)
                .fetch_one(&mut **tx)
                .await
                .map_err(db_err)?
                .try_get(0)
                .map_err(db_err)?;
                usize::try_from(n).unwrap_or(0)
            } else {
                window.start + got
            };
            let skip = (window.start + got).saturating_sub(with_value);
            let rows = bind_all(
                sqlx::query(AssertSqlSafe(format!(
                    "SELECT {RESOURCE_COLUMNS} FROM scimkit_resources r WHERE {where_sql} \
                     AND NOT EXISTS (SELECT 1 FROM scimkit_sort_keys k WHERE k.ord = r.ord AND k.path = {kp}) \
                     ORDER BY r.ord LIMIT {} OFFSET {skip}",
                    window.len() - got
                ))),
                &p.args,
            )
            .persistent(!params.plan_per_value)
            .fetch_all(&mut **tx)
            .await
            .map_err(db_err)?;
            for row in &rows {
                resources.push(resource_from_row(rt, row)?);
            }
        }
        Ok(Page {
            resources,
            total_results: total,
            pushdown: Pushdown::Exact,
        })
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

    async fn members_of(
        tx: &mut Tx,
        tenant: &TenantId,
        groups: &[String],
    ) -> Result<HashMap<String, Vec<Member>>, StoreError> {
        let mut out: HashMap<String, Vec<Member>> = HashMap::new();
        if groups.is_empty() {
            return Ok(out);
        }
        let rows = sqlx::query(
            "SELECT m.group_id, m.member_id, x.resource_type, x.display \
             FROM scimkit_members m JOIN scimkit_resources x \
             ON x.tenant = m.tenant AND x.id = m.member_id \
             WHERE m.tenant = $1 AND m.group_id = ANY($2) ORDER BY m.group_id, m.member_id",
        )
        .bind(tenant.as_str())
        .bind(groups.to_vec())
        .fetch_all(&mut **tx)
        .await
        .map_err(db_err)?;
        for row in rows {
            let g: String = row.try_get(0).map_err(db_err)?;
            out.entry(g).or_default().push(member_from_row(&row, 1)?);
        }
        Ok(out)
    }

    async fn attach_members(
        tx: &mut Tx,
        tenant: &TenantId,
        resources: &mut [StoredResource],
    ) -> Result<(), StoreError> {
        let ids: Vec<String> = resources.iter().map(|r| r.id.to_string()).collect();
        let mut all = Self::members_of(tx, tenant, &ids).await?;
        for r in resources {
            r.members = Some(all.remove(r.id.as_str()).unwrap_or_default());
        }
        Ok(())
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

/// The precomputed key path a sort walks ([`sort_keys`]), when the sort is not on a column
/// of its own (`userName`, `displayName`, `externalId`, `id`, the meta attributes).
fn keyed_sort(rt: &ResourceDef, spec: &SortSpec) -> Option<String> {
    let r = rt.resolve(&spec.by)?;
    if r.extension.is_none() && r.sub.is_none() {
        let simple = r.attr.ty == crate::schema::AttributeType::String && !r.attr.multi_valued;
        match r.attr.name.as_str() {
            "userName" | "displayName" if simple && !r.attr.case_exact => return None,
            "externalId" if simple && r.attr.case_exact => return None,
            _ => {}
        }
    }
    crate::store::sql::sort_keys::key_path(rt, &spec.by)
}

fn member_from_row(row: &PgRow, first: usize) -> Result<Member, StoreError> {
    let value: String = row.try_get(first).map_err(db_err)?;
    let resource_type: String = row.try_get(first + 1).map_err(db_err)?;
    let display: Option<String> = row.try_get(first + 2).map_err(db_err)?;
    Ok(Member {
        value: ResourceId::new(value),
        resource_type,
        display,
    })
}

async fn insert_keys(
    tx: &mut Tx,
    tenant: &TenantId,
    rt: &ResourceDef,
    id: &str,
    keys: &[UniqueKey],
) -> Result<(), StoreError> {
    let mut seen = HashSet::new();
    for k in keys {
        if !seen.insert((k.attribute.as_str(), k.value.as_str())) {
            continue;
        }
        let n = sqlx::query(
            "INSERT INTO scimkit_unique (tenant, resource_type, attribute, value_hash, id) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(tenant.as_str())
        .bind(rt.name())
        .bind(k.attribute.as_str())
        .bind(unique_hash(k))
        .bind(id)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::Conflict {
                attribute: k.attribute.clone(),
            });
        }
    }
    Ok(())
}

/// The members a write added, as resolved, and how many were not members before.
#[derive(Default)]
struct Added {
    new: u64,
    resolved: ResolvedMembers,
}

impl Added {
    fn into_sorted(self) -> (Vec<Member>, Vec<ResourceId>) {
        self.resolved.into_sorted()
    }
}

/// Adds members to `group` in two statements whatever their number: one finds (and locks
/// against deletion until the transaction ends) every id of the request, one inserts those
/// that can be members. Each must be a resource of the tenant, of the claimed type, and not
/// the group itself; the others fail the write or are skipped, per `policy`.
async fn add_members(
    tx: &mut Tx,
    tenant: &TenantId,
    group: &str,
    add: &[MemberRef],
    policy: UnknownMembers,
) -> Result<Added, StoreError> {
    if add.is_empty() {
        return Ok(Added::default());
    }
    // PostgreSQL text cannot hold NUL: such an id is no resource of the tenant.
    let ids: Vec<String> = member_ids(add);
    let rows = sqlx::query(
        "SELECT x.id, x.resource_type, x.display FROM scimkit_resources x \
         WHERE x.tenant = $1 AND x.id = ANY($2) ORDER BY x.id FOR KEY SHARE",
    )
    .bind(tenant.as_str())
    .bind(ids)
    .fetch_all(&mut **tx)
    .await
    .map_err(db_err)?;
    let mut found: HashMap<String, (String, Option<String>)> = HashMap::with_capacity(rows.len());
    for row in rows {
        found.insert(
            row.try_get(0).map_err(db_err)?,
            (
                row.try_get(1).map_err(db_err)?,
                row.try_get(2).map_err(db_err)?,
            ),
        );
    }
    let mut out = Added {
        new: 0,
        resolved: ResolvedMembers::resolve(add, found, group, policy)?,
    };
    if out.resolved.members.is_empty() {
        return Ok(out);
    }
    let ids: Vec<String> = out
        .resolved
        .members
        .iter()
        .map(|m| m.value.to_string())
        .collect();
    let folded: Vec<String> = ids.iter().map(|i| fold_case_owned(i)).collect();
    out.new = sqlx::query(
        "INSERT INTO scimkit_members (tenant, group_id, member_id, member_fold) \
         SELECT $1, $2, u.m, u.f FROM unnest($3::text[], $4::text[]) AS u(m, f) \
         ON CONFLICT DO NOTHING",
    )
    .bind(tenant.as_str())
    .bind(group)
    .bind(ids)
    .bind(folded)
    .execute(&mut **tx)
    .await
    .map_err(db_err)?
    .rows_affected();
    Ok(out)
}

/// The ids of `add`, each once, in order (without those holding NUL, which PostgreSQL text
/// cannot hold and which are no resource's id).
fn member_ids(add: &[MemberRef]) -> Vec<String> {
    let mut seen = HashSet::new();
    add.iter()
        .filter(|m| !m.value.as_str().contains('\0') && seen.insert(m.value.as_str()))
        .map(|m| m.value.to_string())
        .collect()
}

/// Appends change records, numbering them from the tenant's counter (whose row lock orders
/// the tenant's writers until commit). Returns the last sequence number.
async fn push_changes(
    tx: &mut Tx,
    tenant: &TenantId,
    at: i64,
    changes: &[NewChange<'_>],
) -> Result<u64, StoreError> {
    push_changes_bumping(tx, tenant, at, changes, None).await
}

/// [`push_changes`], also setting resource `bump.0` to version `bump.1` (and its
/// `lastModified` to `at`) in the same statement.
async fn push_changes_bumping(
    tx: &mut Tx,
    tenant: &TenantId,
    at: i64,
    changes: &[NewChange<'_>],
    bump: Option<(&str, i64)>,
) -> Result<u64, StoreError> {
    let n = i64::try_from(changes.len()).unwrap_or(i64::MAX);
    let up = if bump.is_some() {
        "up AS (UPDATE scimkit_resources SET version = $11, last_modified = $3 \
         WHERE tenant = $1 AND id = $10), "
    } else {
        ""
    };
    let q = sqlx::query_scalar(AssertSqlSafe(format!(
        "WITH {up}s AS (INSERT INTO scimkit_feed_seq (tenant, last_seq) VALUES ($1, $2) \
           ON CONFLICT (tenant) DO UPDATE SET last_seq = scimkit_feed_seq.last_seq + $2 \
           RETURNING last_seq), \
         c AS (INSERT INTO scimkit_changes (tenant, seq, resource_type, id, kind, version, at, members, actor) \
           SELECT $1, s.last_seq - $2 + u.n, u.rt, u.id, u.kind, u.version, $3, u.members, u.actor \
           FROM s, unnest($4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[], $9::text[]) \
           WITH ORDINALITY AS u(rt, id, kind, version, members, actor, n)) \
         SELECT last_seq FROM s, \
           LATERAL (SELECT pg_notify('scimkit_changes', s.last_seq || ' ' || $1)) AS n"
    )))
    .bind(tenant.as_str())
    .bind(n)
    .bind(at)
    .bind(
        changes
            .iter()
            .map(|c| c.resource_type.to_owned())
            .collect::<Vec<_>>(),
    )
    .bind(changes.iter().map(|c| c.id.to_owned()).collect::<Vec<_>>())
    .bind(
        changes
            .iter()
            .map(|c| c.kind.as_str().to_owned())
            .collect::<Vec<_>>(),
    )
    .bind(
        changes
            .iter()
            .map(|c| super::to_i64(c.version.get()))
            .collect::<Vec<_>>(),
    )
    .bind(
        changes
            .iter()
            .map(|c| c.members.as_ref().map(MemberChanges::to_column))
            .collect::<Vec<_>>(),
    )
    .bind(
        changes
            .iter()
            .map(|c| c.actor.map(str::to_owned))
            .collect::<Vec<_>>(),
    );
    let q = match bump {
        Some((id, version)) => q.bind(id.to_owned()).bind(version),
        None => q,
    };
    let last: i64 = q.fetch_one(&mut **tx).await.map_err(db_err)?;
    Ok(u64::try_from(last).unwrap_or(0))
}

/// How a keyset page (RFC 9865 cursors, [`Paging::Keyset`]) walks an index: by id alone,
/// or by a value column and id (indexes of migration 6). Rows without a value (NULL or an
/// empty string) come after the others, by ascending id, as the cursor order puts them.
struct KeysetWalk {
    /// The value column; `None` walks by id.
    col: Option<&'static str>,
    /// The column holds the nanoseconds of `meta.created`/`lastModified`.
    time: bool,
    desc: bool,
}

/// The walk for a keyset page sorted by `sort`, when an index serves it.
fn keyset_walk(rt: &ResourceDef, sort: Option<&SortSpec>) -> Option<KeysetWalk> {
    let Some(spec) = sort else {
        return Some(KeysetWalk {
            col: None,
            time: false,
            desc: false,
        });
    };
    let desc = spec.order == SortOrder::Descending;
    let r = rt.resolve(&spec.by)?;
    if r.extension.is_some() {
        return None;
    }
    let simple = r.sub.is_none()
        && r.attr.ty == crate::schema::AttributeType::String
        && !r.attr.multi_valued;
    let (col, time) = match (r.attr.name.as_str(), r.sub.map(|s| s.name.as_str())) {
        ("id", None) if r.attr.case_exact => (None, false),
        ("meta", Some("created")) => (Some("r.created"), true),
        ("meta", Some("lastModified")) => (Some("r.last_modified"), true),
        ("userName", None) if simple && !r.attr.case_exact => (Some("r.user_name_fold"), false),
        ("displayName", None) if simple && !r.attr.case_exact => {
            (Some("r.display_name_fold"), false)
        }
        ("externalId", None) if simple && r.attr.case_exact => (Some("r.external_id"), false),
        _ => return None,
    };
    Some(KeysetWalk { col, time, desc })
}

impl PostgresStore {
    /// A keyset page: the count and the first index range in one statement, the rows
    /// without a value in a second when the first range runs out before the page is full.
    #[allow(clippy::too_many_arguments)]
    async fn keyset_list(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        query: &ListQuery,
        where_sql: &str,
        params: &Params,
        walk: &KeysetWalk,
        after: Option<&Keyset>,
    ) -> Result<Page, StoreError> {
        let (cmp, dir) = if walk.desc {
            ("<", "DESC")
        } else {
            (">", "ASC")
        };
        // (condition, order) of each range, in cursor order, with their parameters.
        let mut phases: Vec<(String, String, Params)> = Vec::with_capacity(2);
        match walk.col {
            None => {
                let mut p = params.clone();
                let cond = match after {
                    None => "TRUE".to_owned(),
                    Some(k) => format!("r.id {cmp} {}", p.text(k.id.as_str())),
                };
                phases.push((cond, format!("r.id {dir}"), p));
            }
            Some(col) => {
                let has_value = if walk.time {
                    "TRUE".to_owned()
                } else {
                    format!("{col} > ''")
                };
                let none = format!("({col} IS NULL OR {col} = '')");
                let order = format!("{col} {dir}, r.id {dir}");
                let value = |p: &mut Params, v: &SortValue| -> Result<String, StoreError> {
                    match (v, walk.time) {
                        (SortValue::String(s), false) => Ok(p.text(s.as_str())),
                        (SortValue::DateTime(d), true) => Ok(p.int(to_ns(d.with_timezone(&Utc))?)),
                        _ => Err(StoreError::InvalidValue(
                            "the cursor's position does not fit the sort".to_owned(),
                        )),
                    }
                };
                match after {
                    None => {
                        phases.push((has_value, order, params.clone()));
                        if !walk.time {
                            phases.push((none, "r.id".to_owned(), params.clone()));
                        }
                    }
                    Some(Keyset { value: Some(v), id }) => {
                        // Ascending from a non-empty value, the row comparison implies a
                        // value and must be the index range's only start (a second lower
                        // bound, `> ''`, could start the scan at the first user instead).
                        let implied =
                            !walk.desc && matches!(v, SortValue::String(s) if !s.is_empty());
                        let mut p = params.clone();
                        let v = value(&mut p, v)?;
                        let i = p.text(id.as_str());
                        let has_value = if implied {
                            "TRUE".to_owned()
                        } else {
                            has_value
                        };
                        phases.push((
                            format!("{has_value} AND ({col}, r.id) {cmp} ({v}, {i})"),
                            order,
                            p,
                        ));
                        if !walk.time {
                            phases.push((none, "r.id".to_owned(), params.clone()));
                        }
                    }
                    Some(Keyset { value: None, id }) => {
                        let mut p = params.clone();
                        let i = p.text(id.as_str());
                        phases.push((format!("{none} AND r.id > {i}"), "r.id".to_owned(), p));
                    }
                }
            }
        }
        let mut tx = if query.include_members {
            Some(self.begin_snapshot().await?)
        } else {
            None
        };
        let mut total = 0usize;
        let mut resources = Vec::new();
        for (n, (cond, order, mut p)) in phases.into_iter().enumerate() {
            let left = query.count.saturating_sub(resources.len());
            if n > 0 && left == 0 {
                break;
            }
            let limit = p.int(super::to_i64(left as u64));
            let sql = if n == 0 {
                format!(
                    "SELECT t.n, p.* FROM \
                     (SELECT count(*) AS n FROM scimkit_resources r WHERE {where_sql}) AS t \
                     LEFT JOIN LATERAL (SELECT {RESOURCE_COLUMNS} FROM scimkit_resources r \
                       WHERE {where_sql} AND {cond} ORDER BY {order} LIMIT {limit}) AS p \
                     ON true"
                )
            } else {
                format!(
                    "SELECT 0::bigint AS n, {RESOURCE_COLUMNS} FROM scimkit_resources r \
                     WHERE {where_sql} AND {cond} ORDER BY {order} LIMIT {limit}"
                )
            };
            let q = sqlx::query(AssertSqlSafe(sql));
            let q = bind_all(q, &p.args).persistent(!p.plan_per_value);
            let rows = match tx.as_mut() {
                Some(tx) => q.fetch_all(&mut **tx).await,
                None => q.fetch_all(&self.pool).await,
            }
            .map_err(db_err)?;
            for row in &rows {
                if n == 0 {
                    let t: i64 = row.try_get(0).map_err(db_err)?;
                    total = usize::try_from(t).unwrap_or(0);
                }
                let id: Option<String> = row.try_get(1).map_err(db_err)?;
                if id.is_some() {
                    resources.push(resource_from_row_at(rt, row, 1)?);
                }
            }
        }
        if let Some(mut tx) = tx {
            Self::attach_members(&mut tx, tenant, &mut resources).await?;
            tx.commit().await.map_err(db_err)?;
        }
        Ok(Page {
            resources,
            total_results: total,
            pushdown: Pushdown::Exact,
        })
    }

    /// [`ResourceStore::list`], and with `with_groups` the derived groups of every resource
    /// of an index page read by the page's own statement (`None` when the page was read
    /// another way: the caller asks [`ResourceStore::groups_of_many`]).
    async fn list_page(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        query: &ListQuery,
        with_groups: bool,
    ) -> Result<(Page, Option<Vec<Vec<GroupRef>>>), StoreError> {
        let mut params = dialect::params();
        let t = params.text(tenant.as_str());
        let ty = params.text(rt.name());
        let filter = match &query.filter {
            // The engine's compiler: the same validation, so errors do not depend on the
            // backend.
            Some(f) => translate(&Pg, rt, compile(rt, f)?.root(), &mut params),
            None => crate::store::sql::Where::all(),
        };
        let (cond, exact, all) = (
            filter.render::<Pg>(),
            filter.is_exact(),
            filter.selects_all(),
        );
        let where_sql = format!("r.tenant = {t} AND r.resource_type = {ty} AND ({cond})");
        if let (Paging::Keyset(after), true) = (&query.paging, exact) {
            if let Some(walk) = keyset_walk(rt, query.sort.as_ref()) {
                let page = self
                    .keyset_list(
                        tenant,
                        rt,
                        query,
                        &where_sql,
                        &params,
                        &walk,
                        after.as_ref(),
                    )
                    .await?;
                return Ok((page, None));
            }
        }
        if let (Paging::Index, true, Some(spec)) = (&query.paging, exact, query.sort.as_ref()) {
            if let Some(path) = keyed_sort(rt, spec) {
                let mut tx = self.begin_snapshot().await?;
                if sort_keys::usable(&mut tx, tenant.as_str(), rt).await? {
                    let mut page =
                        Self::keyed_list(&mut tx, rt, query, spec, &path, all, &where_sql, &params)
                            .await?;
                    if query.include_members {
                        Self::attach_members(&mut tx, tenant, &mut page.resources).await?;
                    }
                    tx.commit().await.map_err(db_err)?;
                    return Ok((page, None));
                }
                tx.commit().await.map_err(db_err)?;
            }
        }
        // An always-true filter (or none): the maintained count, not a count of the rows.
        let count_sql = if all {
            format!(
                "SELECT COALESCE((SELECT n FROM scimkit_type_counts WHERE tenant = {t} \
                 AND resource_type = {ty}), 0) AS n"
            )
        } else {
            format!("SELECT count(*) AS n FROM scimkit_resources r WHERE {where_sql}")
        };
        let mut page_params = params.clone();
        let order = match &query.sort {
            None => Some("r.ord".to_owned()),
            Some(spec) if exact => dialect::order_by(rt, spec, &mut page_params),
            Some(_) => None,
        };
        let needs_members =
            query.include_members || (!(exact && order.is_some()) && query.reads_members());
        // One statement is one snapshot; a second query for members needs a transaction.
        let mut tx = if needs_members {
            Some(self.begin_snapshot().await?)
        } else {
            None
        };
        let (mut resources, total, pushdown, groups) = match order {
            // A keyset query this store cannot walk: the caller pages the candidates.
            Some(order) if exact && query.paging == Paging::Index => {
                let start = query.start_index.saturating_sub(1);
                let limit = page_params.int(super::to_i64(query.count as u64));
                let offset = page_params.int(super::to_i64(start as u64));
                // The count and the page together: a row with the count and no resource when
                // the page is empty; with `with_groups`, each resource's groups in a column.
                let groups_column = if with_groups { GROUPS_COLUMN } else { "" };
                let q = sqlx::query(AssertSqlSafe(format!(
                    "SELECT t.n, p.* FROM ({count_sql}) AS t \
                     LEFT JOIN LATERAL (SELECT {RESOURCE_COLUMNS}{groups_column} \
                       FROM scimkit_resources r \
                       WHERE {where_sql} ORDER BY {order} LIMIT {limit} OFFSET {offset}) AS p \
                     ON true"
                )));
                let q = bind_all(q, &page_params.args).persistent(!params.plan_per_value);
                let rows = match tx.as_mut() {
                    Some(tx) => q.fetch_all(&mut **tx).await,
                    None => q.fetch_all(&self.pool).await,
                }
                .map_err(db_err)?;
                let mut total = 0i64;
                let mut resources = Vec::with_capacity(rows.len());
                let mut groups = Vec::with_capacity(if with_groups { rows.len() } else { 0 });
                for row in &rows {
                    total = row.try_get(0).map_err(db_err)?;
                    let id: Option<String> = row.try_get(1).map_err(db_err)?;
                    if id.is_some() {
                        resources.push(resource_from_row_at(rt, row, 1)?);
                        if with_groups {
                            let g: String = row.try_get(7).map_err(db_err)?;
                            groups.push(super::groups_from_json(&g)?);
                        }
                    }
                }
                (
                    resources,
                    usize::try_from(total).unwrap_or(0),
                    Pushdown::Exact,
                    with_groups.then_some(groups),
                )
            }
            _ => {
                let q = sqlx::query(AssertSqlSafe(format!(
                    "SELECT {RESOURCE_COLUMNS} FROM scimkit_resources r WHERE {where_sql} \
                     ORDER BY r.ord{}",
                    super::candidate_limit(query.max_candidates)
                )));
                let q = bind_all(q, &params.args).persistent(!params.plan_per_value);
                let rows = match tx.as_mut() {
                    Some(tx) => q.fetch_all(&mut **tx).await,
                    None => q.fetch_all(&self.pool).await,
                }
                .map_err(db_err)?;
                let resources = rows
                    .iter()
                    .map(|row| resource_from_row(rt, row))
                    .collect::<Result<Vec<_>, _>>()?;
                let pushdown = if !exact && all {
                    Pushdown::Unsupported
                } else {
                    Pushdown::Inexact
                };
                let n = resources.len();
                (resources, n, pushdown, None)
            }
        };
        if let Some(mut tx) = tx {
            Self::attach_members(&mut tx, tenant, &mut resources).await?;
            tx.commit().await.map_err(db_err)?;
        }
        Ok((
            Page {
                resources,
                total_results: total,
                pushdown,
            },
            groups,
        ))
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
            let row = q
                .fetch_optional(&self.pool)
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
        if group.as_str().contains('\0') {
            return Ok(None);
        }
        let limit = super::to_i64(max as u64);
        // Does the group exist, and has it a member past `max`? Index-only probes, at most
        // `max` entries read whatever the group's size.
        let probe: Option<(bool,)> = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM scimkit_members p WHERE p.tenant = $1 \
               AND p.group_id = $2 ORDER BY p.member_id OFFSET $4 LIMIT 1) \
             FROM scimkit_resources r \
             WHERE r.tenant = $1 AND r.id = $2 AND r.resource_type = $3",
        )
        .bind(tenant.as_str())
        .bind(group.as_str())
        .bind(rt.name())
        .bind(limit)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        match probe {
            Some((false,)) => {}
            // Unknown group, or more than `max` members.
            _ => return Ok(None),
        }
        let rows = sqlx::query(
            "SELECT m.member_id, x.resource_type, x.display \
             FROM scimkit_members m JOIN scimkit_resources x \
             ON x.tenant = m.tenant AND x.id = m.member_id \
             WHERE m.tenant = $1 AND m.group_id = $2 ORDER BY m.member_id LIMIT $3",
        )
        .bind(tenant.as_str())
        .bind(group.as_str())
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|row| member_from_row(row, 0))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    async fn members(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        group: &ResourceId,
        start_index: usize,
        count: usize,
    ) -> Result<MemberPage, StoreError> {
        if group.as_str().contains('\0') {
            return Err(StoreError::not_found(rt, group));
        }
        let mut tx = self.begin_snapshot().await?;
        let total: Option<i64> = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM scimkit_members m \
                     WHERE m.tenant = r.tenant AND m.group_id = r.id) \
             FROM scimkit_resources r WHERE r.tenant = $1 AND r.id = $2 AND r.resource_type = $3",
        )
        .bind(tenant.as_str())
        .bind(group.as_str())
        .bind(rt.name())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let total =
            usize::try_from(total.ok_or_else(|| StoreError::not_found(rt, group))?).unwrap_or(0);
        let window = super::page_window(start_index, count, total);
        let mut members = Vec::with_capacity(window.len());
        if !window.is_empty() {
            let rows = sqlx::query(
                "SELECT m.member_id, x.resource_type, x.display \
                 FROM scimkit_members m JOIN scimkit_resources x \
                 ON x.tenant = m.tenant AND x.id = m.member_id \
                 WHERE m.tenant = $1 AND m.group_id = $2 ORDER BY m.member_id \
                 LIMIT $3 OFFSET $4",
            )
            .bind(tenant.as_str())
            .bind(group.as_str())
            .bind(super::to_i64(window.len() as u64))
            .bind(super::to_i64(window.start as u64))
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
            for row in rows {
                members.push(member_from_row(&row, 0)?);
            }
        }
        tx.commit().await.map_err(db_err)?;
        Ok(MemberPage {
            members,
            total_results: total,
        })
    }

    async fn groups_of(
        &self,
        tenant: &TenantId,
        member: &ResourceId,
    ) -> Result<Vec<GroupRef>, StoreError> {
        if member.as_str().contains('\0') {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT g.id, g.resource_type, g.display FROM scimkit_members m \
             JOIN scimkit_resources g ON g.tenant = m.tenant AND g.id = m.group_id \
             WHERE m.tenant = $1 AND m.member_id = $2 ORDER BY m.group_id",
        )
        .bind(tenant.as_str())
        .bind(member.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|row| {
                let m = member_from_row(row, 0)?;
                Ok(GroupRef {
                    id: m.value,
                    resource_type: m.resource_type,
                    display: m.display,
                })
            })
            .collect()
    }

    async fn get_with_groups(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        id: &ResourceId,
    ) -> Result<(StoredResource, Vec<GroupRef>), StoreError> {
        if id.as_str().contains('\0') {
            return Err(StoreError::not_found(rt, id));
        }
        // One statement: the resource, and its groups as a JSON array in a subquery.
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {RESOURCE_COLUMNS}, \
               (SELECT coalesce(json_agg(json_build_array(g.id, g.resource_type, g.display) \
                                ORDER BY m.group_id), '[]'::json)::text \
                FROM scimkit_members m \
                JOIN scimkit_resources g ON g.tenant = m.tenant AND g.id = m.group_id \
                WHERE m.tenant = r.tenant AND m.member_id = r.id) \
             FROM scimkit_resources r \
             WHERE r.tenant = $1 AND r.id = $2 AND r.resource_type = $3"
        )))
        .bind(tenant.as_str())
        .bind(id.as_str())
        .bind(rt.name())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?
        .ok_or_else(|| StoreError::not_found(rt, id))?;
        let res = resource_from_row(rt, &row)?;
        let groups: String = row.try_get(6).map_err(db_err)?;
        Ok((res, super::groups_from_json(&groups)?))
    }

    async fn groups_of_many(
        &self,
        tenant: &TenantId,
        members: &[ResourceId],
    ) -> Result<Vec<Vec<GroupRef>>, StoreError> {
        let ids: Vec<&str> = members
            .iter()
            .map(ResourceId::as_str)
            .filter(|m| !m.contains('\0'))
            .collect();
        if ids.is_empty() {
            return Ok(vec![Vec::new(); members.len()]);
        }
        let rows = sqlx::query(
            "SELECT m.member_id, g.id, g.resource_type, g.display FROM scimkit_members m \
             JOIN scimkit_resources g ON g.tenant = m.tenant AND g.id = m.group_id \
             WHERE m.tenant = $1 AND m.member_id = ANY($2) ORDER BY m.group_id",
        )
        .bind(tenant.as_str())
        .bind(&ids)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        let rows = rows
            .iter()
            .map(|row| {
                let member: String = row.try_get(0).map_err(db_err)?;
                let m = member_from_row(row, 1)?;
                Ok((
                    member,
                    GroupRef {
                        id: m.value,
                        resource_type: m.resource_type,
                        display: m.display,
                    },
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(super::groups_by_member(members, rows))
    }

    async fn changes_since(
        &self,
        tenant: &TenantId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Change>, StoreError> {
        let after_u64 = after;
        let Ok(after) = i64::try_from(after) else {
            return Ok(Vec::new());
        };
        let rows = sqlx::query(
            "SELECT seq, resource_type, id, kind, version, at, members, actor FROM scimkit_changes \
             WHERE tenant = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(tenant.as_str())
        .bind(after)
        .bind(super::to_i64(limit as u64))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        // The records first, the horizon second (a later snapshot): a prune committed in
        // between raises the horizon read here, so a gap in the records is always reported.
        let pruned_through: Option<i64> =
            sqlx::query_scalar("SELECT pruned_through FROM scimkit_feed_seq WHERE tenant = $1")
                .bind(tenant.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?;
        let pruned_through = pruned_through.map_or(0, |p| u64::try_from(p).unwrap_or(0));
        if after_u64 < pruned_through {
            return Err(StoreError::ChangesPruned {
                requested: after_u64,
                pruned_through,
            });
        }
        rows.iter()
            .map(|row| {
                let seq: i64 = row.try_get(0).map_err(db_err)?;
                let kind: String = row.try_get(3).map_err(db_err)?;
                let version: i64 = row.try_get(4).map_err(db_err)?;
                let at: i64 = row.try_get(5).map_err(db_err)?;
                Ok(Change {
                    seq: u64::try_from(seq).unwrap_or(0),
                    tenant: tenant.clone(),
                    resource_type: row.try_get(1).map_err(db_err)?,
                    id: ResourceId::new(row.try_get::<String, _>(2).map_err(db_err)?),
                    kind: super::stored_change_kind(&kind)?,
                    version: Version::new(u64::try_from(version).unwrap_or(0)),
                    at: from_ns(at),
                    members: MemberChanges::from_column(
                        row.try_get::<Option<String>, _>(6)
                            .map_err(db_err)?
                            .as_deref(),
                    ),
                    actor: row.try_get(7).map_err(db_err)?,
                })
            })
            .collect()
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
        // Times beyond what the `at` column holds: before 1677 nothing is that old, after
        // 2262 everything is.
        let cutoff = retention.cutoff(now).map(|c| {
            c.timestamp_nanos_opt().unwrap_or(if c.timestamp() < 0 {
                i64::MIN
            } else {
                i64::MAX
            })
        });
        let budget = retention.per_call();
        let mut removed = 0u64;
        loop {
            let mut tx = self.begin().await?;
            // The counter row's lock serialises pruners of the tenant (and holds its writers
            // for one batch).
            let row = sqlx::query(
                "SELECT last_seq, pruned_through FROM scimkit_feed_seq WHERE tenant = $1 FOR UPDATE",
            )
            .bind(tenant.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
            let Some(row) = row else {
                return Ok(super::PruneReport {
                    removed,
                    pruned_through: 0,
                    complete: true,
                });
            };
            let last: i64 = row.try_get(0).map_err(db_err)?;
            let pruned: i64 = row.try_get(1).map_err(db_err)?;
            let pruned_through = u64::try_from(pruned).unwrap_or(0);
            // The feed is contiguous (each write takes the next numbers of the counter, in
            // its transaction) and only loses prefixes: the records beyond the newest
            // `max_entries` are those up to `last_seq - max_entries`.
            let over = retention
                .max_entries
                .map_or(pruned, |keep| last.saturating_sub(super::to_i64(keep)));
            let room = budget.saturating_sub(removed);
            let window = if room == 0 {
                1
            } else {
                room.min(super::ChangeRetention::BATCH)
            };
            // The first `window` records after the horizon (a primary-key range read), and
            // the first of them that is not due: the due prefix ends before it.
            let probe = sqlx::query(
                "SELECT count(*), max(seq), \
                        min(seq) FILTER (WHERE NOT (seq <= $3 OR at < $4)) \
                 FROM (SELECT seq, at FROM scimkit_changes WHERE tenant = $1 AND seq > $2 \
                       ORDER BY seq LIMIT $5) AS w",
            )
            .bind(tenant.as_str())
            .bind(pruned)
            .bind(over)
            .bind(cutoff.unwrap_or(i64::MIN))
            .bind(super::to_i64(window))
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
            let n: i64 = probe.try_get(0).map_err(db_err)?;
            let max: Option<i64> = probe.try_get(1).map_err(db_err)?;
            let kept: Option<i64> = probe.try_get(2).map_err(db_err)?;
            let end = match (kept, max) {
                (Some(k), _) => k.saturating_sub(1),
                (None, Some(m)) => m,
                (None, None) => pruned,
            };
            if end <= pruned || room == 0 {
                return Ok(super::PruneReport {
                    removed,
                    pruned_through,
                    complete: end <= pruned,
                });
            }
            let deleted = sqlx::query(
                "DELETE FROM scimkit_changes WHERE tenant = $1 AND seq > $2 AND seq <= $3",
            )
            .bind(tenant.as_str())
            .bind(pruned)
            .bind(end)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?
            .rows_affected();
            sqlx::query("UPDATE scimkit_feed_seq SET pruned_through = $2 WHERE tenant = $1")
                .bind(tenant.as_str())
                .bind(end)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            tx.commit().await.map_err(db_err)?;
            removed = removed.saturating_add(deleted);
            let more = kept.is_none() && n >= super::to_i64(window);
            if !more {
                return Ok(super::PruneReport {
                    removed,
                    pruned_through: u64::try_from(end).unwrap_or(0),
                    complete: true,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
