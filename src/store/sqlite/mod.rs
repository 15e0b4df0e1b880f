//! The SQLite backend (cargo feature `sqlite`): [`SqliteStore`].

mod dialect;
mod docs;
mod feed;
mod list;
mod log;
mod members;
mod refold;
mod schema;
mod sort_keys;
mod tenants;
mod write;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row, SqliteConnection};

use super::{
    CreateRequest, GroupRef, ListQuery, Member, MemberPage, Page, ResourceStore, StoreError,
    StoredResource, UpdateRequest,
};
use crate::auth::{TenantCache, TENANT_CACHE_CAPACITY, TENANT_CACHE_TTL};
use crate::feed::{Change, ChangeHub, ChangeNotifier, ChangeSubscription};
use crate::filter::{fold_case_owned, fold_strings};
use crate::resource::{ResourceId, Version};
use crate::schema::ResourceDef;
use crate::store::sql::pool::ReadPool;
use crate::store::to_u64;
use crate::tenant::TenantId;

// What the documentation links to.
#[cfg(doc)]
use super::Pushdown;

/// How a committed transaction reaches the disk (SQLite's `synchronous` in WAL mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// `synchronous=FULL`: the WAL is synced at every commit, so an acknowledged write
    /// survives a process kill, an OS crash and a power loss. The default.
    #[default]
    Full,
    /// `synchronous=NORMAL`: an acknowledged write survives a process kill (the WAL is
    /// written before the commit returns) but the last commits may be lost on an OS crash or
    /// power loss. Faster commits.
    Normal,
}

/// How to open a [`SqliteStore`].
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    path: PathBuf,
    readers: u32,
    durability: Durability,
    busy_timeout: Duration,
}

impl SqliteOptions {
    /// Options for the database file at `path` (created when missing): two reader
    /// connections per CPU the process may use (at least 4, at most 16),
    /// [`Durability::Full`], a 10 s busy timeout.
    ///
    /// Each connection is a thread of its own that a request hands its statement to, and
    /// part of every statement is that hand-off and the rows' way back, when the thread
    /// waits rather than works. Measured with `scripts/load.sh` on 2 cores (interleaved
    /// rounds): 4 readers serve a GET by id 15–30% faster than 2, and 1 reader half as fast;
    /// 8 and 16 were no faster than 4. A database mostly read from a cold disk may want
    /// more: see [`readers`](Self::readers).
    pub fn new(path: impl AsRef<Path>) -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        SqliteOptions {
            path: path.as_ref().to_path_buf(),
            readers: u32::try_from(cpus.saturating_mul(2).clamp(4, 16)).unwrap_or(4),
            durability: Durability::Full,
            busy_timeout: Duration::from_secs(10),
        }
    }

    /// The number of connections used for reads (at least 1). Writes always go through one
    /// connection of their own, as SQLite has one writer at a time.
    pub fn readers(mut self, n: u32) -> Self {
        self.readers = n.max(1);
        self
    }

    /// How commits reach the disk.
    pub fn durability(mut self, d: Durability) -> Self {
        self.durability = d;
        self
    }

    /// How long a statement waits for another process's write lock before failing.
    pub fn busy_timeout(mut self, t: Duration) -> Self {
        self.busy_timeout = t;
        self
    }
}

/// A [`ResourceStore`] and [`TenantStore`](crate::auth::TenantStore) in one SQLite database
/// file: the durable default for a single-process host.
///
/// - Resources are JSON documents (SQLite JSON1) with indexed columns for what identity
///   providers look up (`id`, `userName` case-folded, `externalId`, `displayName`), a version
///   column, a membership table indexed both ways, and the change feed (a sequence per tenant,
///   written in the same transaction as the change).
/// - List filters are translated whole to SQL (value paths with `json_each`, `pr`,
///   case-insensitive comparison where the schema says `caseExact` false, typed dateTime and
///   number comparison, extension attributes, `meta.location`), every value a bound
///   parameter; sorting by any attribute but `members` (indexed columns for `userName`,
///   `externalId`, `displayName`, `id` and the `meta` dates; otherwise the RFC 7644
///   §3.4.2.3 key: the primary value of a multi-valued attribute, else its first) and paging
///   run in SQL with an exact `totalResults`. The keys of every sortable attribute are
///   precomputed in the write's transaction (a `sort_keys` table, see
///   [`SqliteStore::rebuild_sort_keys`]), so a sorted page walks an index; a resource type
///   whose keys are not complete for its schema computes them per row instead. What cannot be
///   translated exactly is answered as [`Pushdown::Inexact`] (a superset the service
///   re-evaluates, at most [`ListQuery::max_candidates`] + 1 candidates), never wrongly.
/// - Uniqueness is enforced by unique indexes, versions by conditional updates inside
///   `BEGIN IMMEDIATE` transactions.
/// - The database runs in WAL mode with `synchronous=FULL` by default
///   ([`Durability`]): an acknowledged write survives a process kill.
/// - Tenants and bearer-token records live in the same file
///   ([`TenantStore`](crate::auth::TenantStore) is implemented on this type), so one
///   `Arc<SqliteStore>` serves as both stores.
///
/// Migrations are embedded and applied by [`open`](Self::open); opening the same file again
/// (or from several processes) applies nothing twice.
///
/// ```
/// use std::sync::Arc;
/// use chrono::Utc;
/// use scimkit::store::{CreateRequest, ListQuery, ResourceStore};
/// use scimkit::resource::UniqueKey;
/// use scimkit::store::sqlite::SqliteStore;
/// use scimkit::{filter::Filter, schema::SchemaRegistry, tenant::TenantId};
/// use serde_json::json;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # let dir = std::env::temp_dir().join(format!("scimkit-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// let store = Arc::new(SqliteStore::open(dir.join("scim.db")).await?);
/// let registry = SchemaRegistry::default();
/// let users = registry.user().expect("built in");
/// let tenant = TenantId::new("acme-okta")?;
/// store
///     .create(&tenant, users, CreateRequest {
///         id: "2819c223".into(),
///         doc: json!({"userName": "BJensen", "active": true}),
///         unique_keys: vec![UniqueKey::new("userName", "bjensen")],
///         members: vec![],
///         unknown_members: Default::default(),
///         now: Utc::now(),
///         actor: None,
///     })
///     .await?;
/// let query = ListQuery {
///     filter: Some(Filter::parse(r#"userName eq "bjensen""#)?),
///     ..ListQuery::default()
/// };
/// let page = store.list(&tenant, users, &query).await?;
/// assert_eq!(page.resources[0].id.as_str(), "2819c223");
/// # store.close().await;
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub struct SqliteStore {
    writer: SqlitePool,
    /// Read-only connections (see [`ReadPool`]).
    reader: ReadPool<SqliteConnection>,
    notifier: Option<Arc<dyn ChangeNotifier>>,
    hub: ChangeHub,
    schema_version: i64,
    /// Token and tenant records for authentication (see [`SqliteStore::with_tenant_cache`]).
    tenant_cache: Arc<TenantCache>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("schema_version", &self.schema_version)
            .field("notifier", &self.notifier.is_some())
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating when missing) the database at `path` with the default
    /// [`SqliteOptions`], and applies the migrations it lacks.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(SqliteOptions::new(path)).await
    }

    /// Opens the database with `options`, and applies the migrations it lacks.
    pub async fn open_with(options: SqliteOptions) -> Result<Self, StoreError> {
        let connect = SqliteConnectOptions::new()
            .filename(&options.path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match options.durability {
                Durability::Full => SqliteSynchronous::Full,
                Durability::Normal => SqliteSynchronous::Normal,
            })
            .busy_timeout(options.busy_timeout)
            .foreign_keys(false);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            // A connection to a local file does not go stale: no ping (a round trip to the
            // connection's worker thread) before each use.
            .test_before_acquire(false)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(connect.clone())
            .await
            .map_err(StoreError::backend)?;
        let schema_version = {
            let mut conn = writer.acquire().await.map_err(StoreError::backend)?;
            schema::migrate(&mut conn).await?
        };
        // No idle ping: a connection to a local file does not go stale.
        let reader = ReadPool::new(
            connect.read_only(true),
            options.readers,
            None,
            READ_ACQUIRE_TIMEOUT,
        );
        Ok(SqliteStore {
            writer,
            reader,
            notifier: None,
            hub: ChangeHub::new(),
            schema_version,
            tenant_cache: Arc::new(TenantCache::new(TENANT_CACHE_TTL, TENANT_CACHE_CAPACITY)),
        })
    }

    /// Sets how long the token and tenant records that authentication reads are kept
    /// (default [`TENANT_CACHE_TTL`], 2 s) and how many of each (default
    /// [`TENANT_CACHE_CAPACITY`]). A change made through this store is seen at once; one made
    /// by another process on the same file, within `ttl`. A zero `ttl` reads them on every
    /// request.
    pub fn with_tenant_cache(mut self, ttl: std::time::Duration, capacity: usize) -> Self {
        self.tenant_cache = Arc::new(TenantCache::new(ttl, capacity));
        self
    }

    /// Also calls `notifier` after every committed write (with the last sequence number it
    /// wrote). Readers of the feed need none: [`ResourceStore::subscribe`] works on the
    /// shared store at any time.
    pub fn with_notifier(mut self, notifier: Arc<dyn ChangeNotifier>) -> Self {
        self.notifier = Some(notifier);
        self
    }

    /// The schema version of the database (the last migration applied).
    pub fn schema_version(&self) -> i64 {
        self.schema_version
    }

    /// Recomputes the precomputed sort keys of `tenant`'s resources of type `rt` with `rt`'s
    /// schema, in batches (each its own transaction). Needed only when a tenant's resources
    /// were stored before migration 8 with a schema other than the built-in one, or when the
    /// schema of `rt` changed (an added extension, an attribute made `caseExact`): until then a
    /// sort of that type computes its keys per row, as before the keys existed.
    pub async fn rebuild_sort_keys(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
    ) -> Result<(), StoreError> {
        let mut conn = self.writer.acquire().await.map_err(be)?;
        crate::store::sql::sort_keys::rebuild(&mut *conn, tenant.as_str(), rt).await
    }

    /// Closes every connection, waiting for running statements; later calls fail.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    fn notify(&self, tenant: &TenantId, seq: u64) {
        self.hub.publish(tenant, seq);
        if let Some(n) = &self.notifier {
            n.notify(tenant, seq);
        }
    }

    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
        self.writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(StoreError::backend)
    }
}

fn be(e: sqlx::Error) -> StoreError {
    StoreError::backend(e)
}

fn ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn parse_ts(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .map_err(StoreError::backend)
}

/// The derived columns of a document.
struct Derived {
    doc: String,
    fdoc: String,
    ddoc: Option<String>,
    user_name_cf: Option<String>,
    external_id: Option<String>,
    display_name_cf: Option<String>,
    display: Option<String>,
}

fn derive(doc: &Value) -> Result<Derived, StoreError> {
    let text = |n: &str| doc.get(n).and_then(Value::as_str);
    let json = |v: &Value| serde_json::to_string(v).map_err(StoreError::backend);
    Ok(Derived {
        doc: json(doc)?,
        fdoc: json(&fold_strings(doc))?,
        ddoc: docs::dates(doc).map(|d| json(&d)).transpose()?,
        user_name_cf: text("userName").map(fold_case_owned),
        external_id: text("externalId").map(str::to_owned),
        display_name_cf: text("displayName").map(fold_case_owned),
        display: super::member_display(doc).map(str::to_owned),
    })
}

/// How long a read waits for a free reader connection before failing.
const READ_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

const SELECT_RESOURCE: &str =
    "SELECT r.id, r.rt, r.version, r.created, r.modified, r.doc FROM resources AS r";

/// A result column `groups`: the groups of the resource aliased `alias` (which has `id` and
/// `tenant` columns) as a JSON array of `[id, resource type, display]`, in group id order.
fn groups_of(alias: &str) -> String {
    format!(
        ", (SELECT json_group_array(json_array(x.group_id, x.rt, x.display)) FROM \
           (SELECT m.group_id, g.rt, g.display FROM members AS m \
            JOIN resources AS g ON g.tenant = m.tenant AND g.id = m.group_id \
            WHERE m.tenant = {alias}.tenant AND m.member_id = {alias}.id ORDER BY m.group_id) AS x) \
         AS groups"
    )
}

fn resource_from_row(row: &SqliteRow) -> Result<StoredResource, StoreError> {
    let doc: String = row.try_get("doc").map_err(be)?;
    Ok(StoredResource {
        id: ResourceId::new(row.try_get::<String, _>("id").map_err(be)?),
        resource_type: row.try_get("rt").map_err(be)?,
        version: Version::new(to_u64(row.try_get("version").map_err(be)?)),
        created: parse_ts(&row.try_get::<String, _>("created").map_err(be)?)?,
        last_modified: parse_ts(&row.try_get::<String, _>("modified").map_err(be)?)?,
        doc: serde_json::from_str(&doc).map_err(StoreError::backend)?,
        members: None,
        skipped_members: Vec::new(),
    })
}

/// The current state of a resource row, read inside a write transaction.
struct Current {
    rt: String,
    version: Version,
}

async fn current(
    conn: &mut SqliteConnection,
    tenant: &TenantId,
    id: &str,
) -> Result<Option<Current>, StoreError> {
    let row = sqlx::query("SELECT rt, version FROM resources WHERE tenant = ?1 AND id = ?2")
        .bind(tenant.as_str())
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(be)?;
    row.map(|r| -> Result<Current, StoreError> {
        Ok(Current {
            rt: r.try_get("rt").map_err(be)?,
            version: Version::new(to_u64(r.try_get("version").map_err(be)?)),
        })
    })
    .transpose()
}

/// The members of `group`, ordered by member id, from `start` (0-based), at most `count`.
async fn member_list(
    conn: &mut SqliteConnection,
    tenant: &TenantId,
    group: &str,
    start: usize,
    count: usize,
) -> Result<Vec<Member>, StoreError> {
    let rows = sqlx::query(
        "SELECT m.member_id, x.rt, x.display FROM members AS m \
         LEFT JOIN resources AS x ON x.tenant = m.tenant AND x.id = m.member_id \
         WHERE m.tenant = ?1 AND m.group_id = ?2 ORDER BY m.member_id LIMIT ?3 OFFSET ?4",
    )
    .bind(tenant.as_str())
    .bind(group)
    .bind(i64::try_from(count).unwrap_or(-1))
    .bind(i64::try_from(start).unwrap_or(i64::MAX))
    .fetch_all(&mut *conn)
    .await
    .map_err(be)?;
    rows.iter()
        .map(|r| {
            Ok(Member {
                value: ResourceId::new(r.try_get::<String, _>("member_id").map_err(be)?),
                resource_type: r
                    .try_get::<Option<String>, _>("rt")
                    .map_err(be)?
                    .unwrap_or_default(),
                display: r.try_get("display").map_err(be)?,
            })
        })
        .collect()
}

#[async_trait]
impl ResourceStore for SqliteStore {
    fn keyset_paging(&self) -> bool {
        true
    }

    async fn create(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        req: CreateRequest,
    ) -> Result<StoredResource, StoreError> {
        self.do_create(tenant, rt, req).await
    }

    /// One transaction for all (much faster than one `create` each, which syncs every
    /// commit to disk): all of them, or none.
    async fn create_many(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        requests: Vec<CreateRequest>,
    ) -> Result<Vec<StoredResource>, StoreError> {
        self.do_create_many(tenant, rt, requests).await
    }

    async fn get(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        id: &ResourceId,
        include_members: bool,
    ) -> Result<StoredResource, StoreError> {
        let mut conn = self.reader.acquire().await.map_err(be)?;
        let row = sqlx::query(AssertSqlSafe(format!(
            "{SELECT_RESOURCE} WHERE r.tenant = ?1 AND r.id = ?2 AND r.rt = ?3"
        )))
        .bind(tenant.as_str())
        .bind(id.as_str())
        .bind(rt.name())
        .fetch_optional(&mut *conn)
        .await
        .map_err(be)?;
        let members = match (&row, include_members) {
            (Some(_), true) => {
                Some(member_list(&mut conn, tenant, id.as_str(), 0, usize::MAX).await?)
            }
            _ => None,
        };
        conn.release();
        let row = row.ok_or_else(|| StoreError::not_found(rt, id))?;
        let mut res = resource_from_row(&row)?;
        res.members = members;
        Ok(res)
    }

    async fn update(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        id: &ResourceId,
        req: UpdateRequest,
    ) -> Result<StoredResource, StoreError> {
        self.do_update(tenant, rt, id, req).await
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
        self.do_delete_as(tenant, rt, id, expected_version, now, actor)
            .await
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
        self.do_members_if_at_most(tenant, rt, group, max).await
    }

    async fn members(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        group: &ResourceId,
        start_index: usize,
        count: usize,
    ) -> Result<MemberPage, StoreError> {
        self.do_members(tenant, rt, group, start_index, count).await
    }

    async fn groups_of(
        &self,
        tenant: &TenantId,
        member: &ResourceId,
    ) -> Result<Vec<GroupRef>, StoreError> {
        self.do_groups_of(tenant, member).await
    }

    async fn get_with_groups(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        id: &ResourceId,
    ) -> Result<(StoredResource, Vec<GroupRef>), StoreError> {
        self.do_get_with_groups(tenant, rt, id).await
    }

    async fn groups_of_many(
        &self,
        tenant: &TenantId,
        members: &[ResourceId],
    ) -> Result<Vec<Vec<GroupRef>>, StoreError> {
        self.do_groups_of_many(tenant, members).await
    }

    async fn changes_since(
        &self,
        tenant: &TenantId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Change>, StoreError> {
        self.do_changes_since(tenant, after, limit).await
    }

    async fn head_seq(&self, tenant: &TenantId) -> Result<u64, StoreError> {
        self.do_head_seq(tenant).await
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
        self.do_prune_changes(tenant, retention, now).await
    }
}
