//! The SQLite backend (cargo feature `sqlite`): [`SqliteStore`].

mod dialect;
mod docs;
mod log;
mod refold;
mod schema;
mod sort_keys;
mod tenants;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{Arguments, AssertSqlSafe, Row, SqliteConnection};

use super::query::{compile, Needs};
use super::ResolvedMembers as Resolved;
use super::{
    CreateRequest, GroupRef, Keyset, ListQuery, Member, MemberPage, MemberRef, MembershipDelta,
    Page, Paging, Pushdown, ResourceStore, StoreError, StoredResource, UniqueKey, UnknownMembers,
    UpdateKind, UpdateRequest,
};
use crate::auth::{TenantCache, TENANT_CACHE_CAPACITY, TENANT_CACHE_TTL};
use crate::feed::{
    Change, ChangeHub, ChangeKind, ChangeNotifier, ChangeSubscription, MemberChanges,
};
use crate::filter::{fold_case_owned, fold_strings, SortOrder, SortSpec, SortValue};
use crate::resource::{ResourceId, Version};
use crate::schema::ResourceDef;
use crate::store::to_u64;
use crate::tenant::TenantId;

use crate::store::sql::{translate, Param, Params, Where};
use dialect::{column_for, order_by, Sqlite};

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
    /// Options for the database file at `path` (created when missing): one reader
    /// connection per CPU the process may use (at least 2, at most 16),
    /// [`Durability::Full`], a 10 s busy timeout.
    ///
    /// Each connection is a thread of its own that a request hands its statement to; with a
    /// warm page cache a read is CPU work, so readers beyond the cores only add thread
    /// switches (measured with `scripts/load.sh` on 2 cores: 2 readers serve a `userName eq`
    /// filter about 10% faster than 4). A database mostly read from a cold disk may want
    /// more: see [`readers`](Self::readers).
    pub fn new(path: impl AsRef<Path>) -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        SqliteOptions {
            path: path.as_ref().to_path_buf(),
            readers: u32::try_from(cpus.clamp(2, 16)).unwrap_or(2),
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
    reader: SqlitePool,
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
        let reader = SqlitePoolOptions::new()
            .max_connections(options.readers)
            .test_before_acquire(false)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(connect.read_only(true))
            .await
            .map_err(StoreError::backend)?;
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

    /// [`ResourceStore::list`], with the groups of each resource of the page when
    /// `with_groups` and the store read them in the page's statement (an index page in its
    /// default order); `None` otherwise, and the caller asks `groups_of_many`.
    async fn list_page(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        query: &ListQuery,
        with_groups: bool,
    ) -> Result<(Page, Option<Vec<Vec<GroupRef>>>), StoreError> {
        let mut params = Params::new::<Sqlite>(3);
        let filter = match &query.filter {
            Some(f) => {
                let compiled = compile(rt, f)?;
                translate(&Sqlite, rt, compiled.root(), &mut params)
            }
            None => Where::all(),
        };
        let cond = filter.render::<Sqlite>();
        let exact = filter.is_exact();
        let order = match &query.sort {
            None => Some("r.ord ASC".to_owned()),
            Some(spec) => order_by(rt, spec),
        };
        let mut conn = self.reader.acquire().await.map_err(be)?;
        let where_sql = format!("r.tenant = ?1 AND r.rt = ?2 AND {cond}");
        // An always-true filter (or none): the maintained count, not a count of the rows.
        let count_sql = if filter.selects_all() {
            "SELECT COALESCE((SELECT n FROM type_counts WHERE tenant = ?1 AND rt = ?2), 0) AS n"
                .to_owned()
        } else {
            format!("SELECT count(*) AS n FROM resources AS r WHERE {where_sql}")
        };
        let args = || -> Result<SqliteArguments, StoreError> {
            let mut a = SqliteArguments::default();
            bind_all(
                &mut a,
                &[
                    Param::Text(tenant.as_str().to_owned()),
                    Param::Text(rt.name().to_owned()),
                ],
            )?;
            bind_all(&mut a, &params.args)?;
            Ok(a)
        };

        let walk = match &query.paging {
            Paging::Keyset(after) if exact => {
                keyset_walk(rt, query.sort.as_ref()).map(|w| (w, after.as_ref()))
            }
            _ => None,
        };
        if let Some((walk, after)) = walk {
            let count_row = sqlx::query_with(AssertSqlSafe(count_sql.clone()), args()?)
                .fetch_one(&mut *conn)
                .await
                .map_err(be)?;
            let total = usize::try_from(count_row.try_get::<i64, _>("n").map_err(be)?).unwrap_or(0);
            let mut resources = Vec::new();
            let first = 3 + params.args.len();
            for phase in walk.phases(after)? {
                let left = query.count.saturating_sub(resources.len());
                if left == 0 {
                    break;
                }
                let mut a = args()?;
                bind_all(&mut a, &phase.params)?;
                let rows = sqlx::query_with(
                    AssertSqlSafe(format!(
                        "{SELECT_RESOURCE} WHERE {where_sql} AND {} ORDER BY {} LIMIT {left}",
                        phase.cond(first),
                        phase.order
                    )),
                    a,
                )
                .fetch_all(&mut *conn)
                .await
                .map_err(be)?;
                for row in &rows {
                    resources.push(resource_from_row(row)?);
                }
            }
            if query.include_members {
                for r in &mut resources {
                    r.members =
                        Some(member_list(&mut conn, tenant, r.id.as_str(), 0, usize::MAX).await?);
                }
            }
            return Ok((
                Page {
                    resources,
                    total_results: total,
                    pushdown: Pushdown::Exact,
                },
                None,
            ));
        }
        if let (Paging::Index, true, Some(spec)) = (&query.paging, exact, query.sort.as_ref()) {
            if let Some(path) = keyed_sort(rt, spec) {
                if sort_keys::usable(&mut conn, tenant.as_str(), rt).await? {
                    let count_row = sqlx::query_with(AssertSqlSafe(count_sql.clone()), args()?)
                        .fetch_one(&mut *conn)
                        .await
                        .map_err(be)?;
                    let total =
                        usize::try_from(count_row.try_get::<i64, _>("n").map_err(be)?).unwrap_or(0);
                    let window = super::page_window(query.start_index, query.count, total);
                    let p = 3 + params.args.len();
                    let dir = match spec.order {
                        SortOrder::Ascending => "ASC",
                        SortOrder::Descending => "DESC",
                    };
                    let keyed = |a: &mut SqliteArguments| bind_all(a, &[Param::Text(path.clone())]);
                    // Without a filter, walk the key index and look each resource up
                    // (`CROSS JOIN` keeps SQLite from driving the join from `resources`
                    // and sorting the whole type); with one, the planner chooses.
                    let join = if filter.selects_all() {
                        "CROSS JOIN"
                    } else {
                        "JOIN"
                    };
                    let mut rows = Vec::new();
                    if !window.is_empty() {
                        // The resources with a value, walking the key index.
                        let mut a = args()?;
                        keyed(&mut a)?;
                        rows = sqlx::query_with(
                            AssertSqlSafe(format!(
                                "SELECT r.id, r.rt, r.version, r.created, r.modified, r.doc \
                                 FROM sort_keys AS k {join} resources AS r ON r.ord = k.ord \
                                 WHERE k.tenant = ?1 AND k.rt = ?2 AND k.path = ?{p} AND {where_sql} \
                                 ORDER BY k.key {dir}, k.ord ASC LIMIT {} OFFSET {}",
                                window.len(),
                                window.start
                            )),
                            a,
                        )
                        .fetch_all(&mut *conn)
                        .await
                        .map_err(be)?;
                    }
                    if rows.len() < window.len() {
                        // Then those without, in creation order: the page starts `skip` rows
                        // into them.
                        let with_value = if rows.is_empty() {
                            let mut a = args()?;
                            keyed(&mut a)?;
                            let n = sqlx::query_with(
                                AssertSqlSafe(format!(
                                    "SELECT count(*) AS n FROM sort_keys AS k JOIN resources AS r ON r.ord = k.ord \
                                     WHERE k.tenant = ?1 AND k.rt = ?2 AND k.path = ?{p} AND {where_sql}"
                                )),
                                a,
                            )
                            .fetch_one(&mut *conn)
                            .await
                            .map_err(be)?;
                            usize::try_from(n.try_get::<i64, _>("n").map_err(be)?).unwrap_or(0)
                        } else {
                            window.start + rows.len()
                        };
                        let skip = (window.start + rows.len()).saturating_sub(with_value);
                        let mut a = args()?;
                        keyed(&mut a)?;
                        let more = sqlx::query_with(
                            AssertSqlSafe(format!(
                                "{SELECT_RESOURCE} WHERE {where_sql} AND NOT EXISTS (SELECT 1 FROM sort_keys AS k \
                                 WHERE k.ord = r.ord AND k.path = ?{p}) ORDER BY r.ord ASC LIMIT {} OFFSET {skip}",
                                window.len() - rows.len()
                            )),
                            a,
                        )
                        .fetch_all(&mut *conn)
                        .await
                        .map_err(be)?;
                        rows.extend(more);
                    }
                    let mut resources = Vec::with_capacity(rows.len());
                    for row in &rows {
                        let mut r = resource_from_row(row)?;
                        if query.include_members {
                            r.members = Some(
                                member_list(&mut conn, tenant, r.id.as_str(), 0, usize::MAX)
                                    .await?,
                            );
                        }
                        resources.push(r);
                    }
                    return Ok((
                        Page {
                            resources,
                            total_results: total,
                            pushdown: Pushdown::Exact,
                        },
                        None,
                    ));
                }
            }
        }
        let order = match &query.paging {
            // A keyset query this store cannot walk: the caller pages the candidates.
            Paging::Keyset(_) => None,
            Paging::Index => order,
        };
        match (exact, order) {
            (true, Some(order)) => {
                // One statement: the total (an uncorrelated subquery, computed once), the
                // page, and with `with_groups` each resource's groups, computed outside the
                // page's subquery so only the returned rows pay for them.
                let groups_column = if with_groups {
                    groups_of("p")
                } else {
                    String::new()
                };
                let start = query.start_index.saturating_sub(1);
                // SQLite refuses a LIMIT or OFFSET past i64 ("datatype mismatch").
                let (limit, offset) = (
                    super::to_i64(query.count as u64),
                    super::to_i64(start as u64),
                );
                let rows = sqlx::query_with(
                    AssertSqlSafe(format!(
                        "SELECT ({count_sql}) AS total, p.*{groups_column} FROM \
                         (SELECT r.id, r.rt, r.version, r.created, r.modified, r.doc, r.tenant \
                          FROM resources AS r WHERE {where_sql} ORDER BY {order} \
                          LIMIT {limit} OFFSET {offset}) AS p"
                    )),
                    args()?,
                )
                .fetch_all(&mut *conn)
                .await
                .map_err(be)?;
                let mut total = None;
                let mut resources = Vec::with_capacity(rows.len());
                let mut groups = Vec::with_capacity(if with_groups { rows.len() } else { 0 });
                for row in &rows {
                    total = Some(row.try_get::<i64, _>("total").map_err(be)?);
                    resources.push(resource_from_row(row)?);
                    if with_groups {
                        let g: String = row.try_get("groups").map_err(be)?;
                        groups.push(super::groups_from_json(&g)?);
                    }
                }
                let total = match total {
                    Some(n) => n,
                    // No row in the window: with a window from the first match and room
                    // for one, no match at all; otherwise the total needs its own count.
                    None if start == 0 && query.count > 0 => 0,
                    None => sqlx::query_with(AssertSqlSafe(count_sql.clone()), args()?)
                        .fetch_one(&mut *conn)
                        .await
                        .map_err(be)?
                        .try_get::<i64, _>("n")
                        .map_err(be)?,
                };
                if query.include_members {
                    for r in &mut resources {
                        r.members = Some(
                            member_list(&mut conn, tenant, r.id.as_str(), 0, usize::MAX).await?,
                        );
                    }
                }
                Ok((
                    Page {
                        resources,
                        total_results: usize::try_from(total).unwrap_or(0),
                        pushdown: Pushdown::Exact,
                    },
                    with_groups.then_some(groups),
                ))
            }
            (exact, _) => {
                // A superset (or an order SQL cannot give): the service evaluates, sorts and
                // pages the candidates.
                // At most one candidate past what the caller evaluates (it refuses more).
                let limit = super::candidate_limit(query.max_candidates);
                let rows = sqlx::query_with(
                    AssertSqlSafe(format!(
                        "{SELECT_RESOURCE} WHERE {where_sql} ORDER BY r.ord ASC{limit}"
                    )),
                    args()?,
                )
                .fetch_all(&mut *conn)
                .await
                .map_err(be)?;
                let with_members = query.include_members
                    || Needs::of(query.filter.as_ref(), query.sort.as_ref()).members;
                let mut resources = Vec::with_capacity(rows.len());
                for row in &rows {
                    let mut r = resource_from_row(row)?;
                    if with_members {
                        r.members = Some(
                            member_list(&mut conn, tenant, r.id.as_str(), 0, usize::MAX).await?,
                        );
                    }
                    resources.push(r);
                }
                let pushdown = if !exact && filter.selects_all() {
                    Pushdown::Unsupported
                } else {
                    Pushdown::Inexact
                };
                Ok((
                    Page {
                        total_results: resources.len(),
                        resources,
                        pushdown,
                    },
                    None,
                ))
            }
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

async fn check_unique(
    conn: &mut SqliteConnection,
    tenant: &TenantId,
    rt: &ResourceDef,
    id: &str,
    keys: &[UniqueKey],
) -> Result<(), StoreError> {
    for k in keys {
        let owner = sqlx::query(
            "SELECT id FROM unique_keys WHERE tenant = ?1 AND rt = ?2 AND attribute = ?3 AND value = ?4",
        )
        .bind(tenant.as_str())
        .bind(rt.name())
        .bind(&k.attribute)
        .bind(&k.value)
        .fetch_optional(&mut *conn)
        .await
        .map_err(be)?;
        if let Some(row) = owner {
            let owner: String = row.try_get("id").map_err(be)?;
            if owner != id {
                return Err(StoreError::Conflict {
                    attribute: k.attribute.clone(),
                });
            }
        }
    }
    Ok(())
}

async fn insert_unique(
    conn: &mut SqliteConnection,
    tenant: &TenantId,
    rt: &ResourceDef,
    id: &str,
    keys: &[UniqueKey],
) -> Result<(), StoreError> {
    for k in keys {
        let r = sqlx::query(
            "INSERT INTO unique_keys (tenant, rt, attribute, value, id) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(tenant.as_str())
        .bind(rt.name())
        .bind(&k.attribute)
        .bind(&k.value)
        .bind(id)
        .execute(&mut *conn)
        .await;
        match r {
            Ok(_) => {}
            // The same key twice in one request: already held by this resource.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {}
            Err(e) => return Err(be(e)),
        }
    }
    Ok(())
}

/// Resolves the members to add in one statement: each must be a resource of the tenant, of
/// the claimed type, and not the group itself; the others fail the write or are skipped,
/// per `policy`.
async fn resolve_members(
    conn: &mut SqliteConnection,
    tenant: &TenantId,
    group: &str,
    add: &[MemberRef],
    policy: UnknownMembers,
) -> Result<Resolved, StoreError> {
    if add.is_empty() {
        return Ok(Resolved::default());
    }
    let mut seen = HashSet::with_capacity(add.len());
    let ids: Vec<&str> = add
        .iter()
        .map(|m| m.value.as_str())
        .filter(|id| seen.insert(*id))
        .collect();
    let rows = sqlx::query(
        "SELECT r.id, r.rt, r.display FROM resources AS r \
         WHERE r.tenant = ?1 AND r.id IN (SELECT value FROM json_each(?2))",
    )
    .bind(tenant.as_str())
    .bind(serde_json::to_string(&ids).map_err(StoreError::backend)?)
    .fetch_all(&mut *conn)
    .await
    .map_err(be)?;
    let mut found: HashMap<String, (String, Option<String>)> = HashMap::with_capacity(rows.len());
    for row in rows {
        found.insert(
            row.try_get("id").map_err(be)?,
            (
                row.try_get("rt").map_err(be)?,
                row.try_get("display").map_err(be)?,
            ),
        );
    }
    Resolved::resolve(add, found, group, policy)
}

/// Inserts the (resolved) members in one statement; returns how many were new.
async fn insert_members(
    conn: &mut SqliteConnection,
    tenant: &TenantId,
    group: &str,
    members: &[Member],
) -> Result<u64, StoreError> {
    if members.is_empty() {
        return Ok(0);
    }
    let folded: Vec<String> = members
        .iter()
        .map(|m| fold_case_owned(m.value.as_str()))
        .collect();
    let pairs: Vec<[&str; 2]> = members
        .iter()
        .zip(&folded)
        .map(|(m, f)| [m.value.as_str(), f.as_str()])
        .collect();
    let r = sqlx::query(
        "INSERT OR IGNORE INTO members (tenant, group_id, member_id, member_cf) \
         SELECT ?1, ?2, j.value ->> 0, j.value ->> 1 FROM json_each(?3) AS j",
    )
    .bind(tenant.as_str())
    .bind(group)
    .bind(serde_json::to_string(&pairs).map_err(StoreError::backend)?)
    .execute(&mut *conn)
    .await
    .map_err(be)?;
    Ok(r.rows_affected())
}

/// Appends one change record; returns its `seq`. (Each argument is a column of the row.)
#[allow(clippy::too_many_arguments)]
async fn push_change(
    conn: &mut SqliteConnection,
    tenant: &TenantId,
    rt: &str,
    id: &str,
    kind: ChangeKind,
    version: Version,
    at: &DateTime<Utc>,
    members: Option<&MemberChanges>,
    actor: Option<&str>,
) -> Result<u64, StoreError> {
    let row = sqlx::query(
        "INSERT INTO changes (tenant, seq, rt, id, kind, version, at, members, actor) \
         VALUES (?1, MAX((SELECT COALESCE(MAX(seq), 0) FROM changes WHERE tenant = ?1), \
                         (SELECT COALESCE(MAX(pruned_through), 0) FROM change_horizons WHERE tenant = ?1)) + 1, \
                 ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
         RETURNING seq",
    )
    .bind(tenant.as_str())
    .bind(rt)
    .bind(id)
    .bind(kind.as_str())
    .bind(super::to_i64(version.get()))
    .bind(ts(at))
    .bind(members.map(MemberChanges::to_column))
    .bind(actor)
    .fetch_one(&mut *conn)
    .await
    .map_err(be)?;
    Ok(to_u64(row.try_get("seq").map_err(be)?))
}

/// Applies a membership delta in a constant number of statements (the ids travel as one
/// JSON array each): returns whether the membership changed, and the resolved adds.
async fn apply_delta(
    conn: &mut SqliteConnection,
    tenant: &TenantId,
    group: &str,
    delta: &MembershipDelta,
) -> Result<(bool, Resolved), StoreError> {
    let resolved = resolve_members(conn, tenant, group, &delta.add, delta.unknown).await?;
    let adding: HashSet<&str> = resolved.members.iter().map(|m| m.value.as_str()).collect();
    let removed = if delta.clear {
        let keep: Vec<&str> = adding.iter().copied().collect();
        sqlx::query(
            "DELETE FROM members WHERE tenant = ?1 AND group_id = ?2 \
             AND member_id NOT IN (SELECT value FROM json_each(?3))",
        )
        .bind(tenant.as_str())
        .bind(group)
        .bind(serde_json::to_string(&keep).map_err(StoreError::backend)?)
        .execute(&mut *conn)
        .await
        .map_err(be)?
        .rows_affected()
    } else {
        let mut seen = HashSet::new();
        let remove: Vec<&str> = delta
            .remove
            .iter()
            .map(ResourceId::as_str)
            .filter(|r| !adding.contains(r) && seen.insert(*r))
            .collect();
        if remove.is_empty() {
            0
        } else {
            sqlx::query(
                "DELETE FROM members WHERE tenant = ?1 AND group_id = ?2 \
                 AND member_id IN (SELECT value FROM json_each(?3))",
            )
            .bind(tenant.as_str())
            .bind(group)
            .bind(serde_json::to_string(&remove).map_err(StoreError::backend)?)
            .execute(&mut *conn)
            .await
            .map_err(be)?
            .rows_affected()
        }
    };
    let added = insert_members(conn, tenant, group, &resolved.members).await?;
    Ok((removed + added > 0, resolved))
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

/// Binds translated parameters.
fn bind_all(args: &mut SqliteArguments, params: &[Param]) -> Result<(), StoreError> {
    for p in params {
        let r = match p {
            Param::Text(s) => args.add(s.clone()),
            Param::Int(i) => args.add(*i),
            Param::Real(f) => args.add(*f),
        };
        r.map_err(|e| StoreError::Backend(Arc::from(e)))?;
    }
    Ok(())
}

/// How a keyset page (RFC 9865 cursors, [`Paging::Keyset`]) walks an index: by id alone, or
/// by a value column and id. Rows without a value (a NULL or empty text column) come after
/// the others, by ascending id, as the cursor order puts them.
struct KeysetWalk {
    /// The value column; `None` walks by id.
    col: Option<&'static str>,
    /// The column holds the chronological key of a dateTime (never without a value).
    date: bool,
    desc: bool,
}

/// One index range of a keyset walk: a condition with `?N` placeholders numbered from 0
/// (renumbered by [`KeysetPhase::cond`]), its parameters and its order.
struct KeysetPhase {
    cond: String,
    params: Vec<Param>,
    order: String,
}

impl KeysetPhase {
    fn cond(&self, first: usize) -> String {
        let mut out = self.cond.clone();
        // Highest first, so that `?1` is not a prefix of `?10` being replaced.
        for i in (0..self.params.len()).rev() {
            out = out.replace(&format!("?{{{i}}}"), &format!("?{}", first + i));
        }
        out
    }
}

/// The walk for a keyset page sorted by `sort`, when an index serves it; `None` when the
/// caller must page the candidates itself.
fn keyset_walk(rt: &ResourceDef, sort: Option<&SortSpec>) -> Option<KeysetWalk> {
    let Some(spec) = sort else {
        return Some(KeysetWalk {
            col: None,
            date: false,
            desc: false,
        });
    };
    let desc = spec.order == SortOrder::Descending;
    let by = &spec.by;
    let r = rt.resolve(by)?;
    if r.extension.is_some() {
        return None;
    }
    if r.attr.name == "meta" {
        let col = match r.sub.map(|s| s.name.as_str()) {
            Some("created") => "r.created_key",
            Some("lastModified") => "r.modified_key",
            _ => return None,
        };
        return Some(KeysetWalk {
            col: Some(col),
            date: true,
            desc,
        });
    }
    if r.sub.is_some() {
        return None;
    }
    if r.attr.name == "id" && r.attr.case_exact {
        return Some(KeysetWalk {
            col: None,
            date: false,
            desc,
        });
    }
    let keys = [Box::<str>::from(r.attr.name.as_str())];
    let col = column_for(rt, &keys, !r.attr.case_exact)?;
    Some(KeysetWalk {
        col: Some(col),
        date: false,
        desc,
    })
}

impl KeysetWalk {
    /// The index ranges after `after`, in cursor order.
    fn phases(&self, after: Option<&Keyset>) -> Result<Vec<KeysetPhase>, StoreError> {
        let (cmp, dir) = if self.desc {
            ("<", "DESC")
        } else {
            (">", "ASC")
        };
        let Some(col) = self.col else {
            return Ok(vec![match after {
                None => KeysetPhase {
                    cond: "1".into(),
                    params: Vec::new(),
                    order: format!("r.id {dir}"),
                },
                Some(k) => KeysetPhase {
                    cond: format!("r.id {cmp} ?{{0}}"),
                    params: vec![Param::Text(k.id.as_str().to_owned())],
                    order: format!("r.id {dir}"),
                },
            }]);
        };
        let value_text = |k: &Keyset| -> Result<Option<String>, StoreError> {
            match (&k.value, self.date) {
                (None, _) => Ok(None),
                (Some(SortValue::String(s)), false) => Ok(Some(s.clone())),
                (Some(SortValue::DateTime(d)), true) => Ok(Some(docs::date_key(d))),
                _ => Err(StoreError::InvalidValue(
                    "the cursor's position does not fit the sort".to_owned(),
                )),
            }
        };
        let has_value = if self.date {
            "1".to_owned()
        } else {
            format!("{col} > ''")
        };
        let order = format!("{col} {dir}, r.id {dir}");
        let none_order = "r.id ASC".to_owned();
        let none_cond = format!("({col} IS NULL OR {col} = '')");
        let mut out = Vec::with_capacity(2);
        match after {
            None => {
                out.push(KeysetPhase {
                    cond: has_value,
                    params: Vec::new(),
                    order,
                });
                if !self.date {
                    out.push(KeysetPhase {
                        cond: none_cond,
                        params: Vec::new(),
                        order: none_order,
                    });
                }
            }
            Some(k) => match value_text(k)? {
                Some(v) => {
                    // Ascending, the position is the range's start: `{col} > ''` must not be
                    // (SQLite takes one lower bound, and from '' it would filter every row
                    // before the position), so the unary `+` keeps it off the index.
                    let has_value = if self.date || self.desc {
                        has_value
                    } else {
                        format!("+{col} > ''")
                    };
                    out.push(KeysetPhase {
                        cond: format!("{has_value} AND ({col}, r.id) {cmp} (?{{0}}, ?{{1}})"),
                        params: vec![Param::Text(v), Param::Text(k.id.as_str().to_owned())],
                        order,
                    });
                    if !self.date {
                        out.push(KeysetPhase {
                            cond: none_cond,
                            params: Vec::new(),
                            order: none_order,
                        });
                    }
                }
                None => out.push(KeysetPhase {
                    cond: format!("{none_cond} AND r.id > ?{{0}}"),
                    params: vec![Param::Text(k.id.as_str().to_owned())],
                    order: none_order,
                }),
            },
        }
        Ok(out)
    }
}

/// The precomputed key path a sort walks ([`sort_keys`]), when the sort is on an attribute
/// without an indexed column of its own (`userName`, `externalId`, `displayName`, `id` and
/// the meta dates sort on their columns).
fn keyed_sort(rt: &ResourceDef, spec: &SortSpec) -> Option<String> {
    let r = rt.resolve(&spec.by)?;
    if r.extension.is_none() && r.sub.is_none() {
        let keys = [Box::<str>::from(r.attr.name.as_str())];
        if column_for(rt, &keys, !r.attr.case_exact).is_some() {
            return None;
        }
    }
    crate::store::sql::sort_keys::key_path(rt, &spec.by)
}

/// A create inside the caller's transaction; returns the resource and its change's `seq`.
async fn create_in(
    tx: &mut SqliteConnection,
    tenant: &TenantId,
    rt: &ResourceDef,
    req: CreateRequest,
) -> Result<(StoredResource, u64), StoreError> {
    let d = derive(&req.doc)?;
    let id = req.id.as_str();
    if current(&mut *tx, tenant, id).await?.is_some() {
        return Err(StoreError::Conflict {
            attribute: "id".into(),
        });
    }
    check_unique(&mut *tx, tenant, rt, id, &req.unique_keys).await?;
    let resolved = resolve_members(&mut *tx, tenant, id, &req.members, req.unknown_members).await?;
    let with_members = !req.members.is_empty();
    let created = ts(&req.now);
    let key = docs::date_key(&req.now.fixed_offset());
    sqlx::query(
        "INSERT INTO resources (tenant, id, rt, version, created, created_key, modified, modified_key, \
         doc, fdoc, ddoc, user_name_cf, external_id, display_name_cf, display) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )
    .bind(tenant.as_str())
    .bind(id)
    .bind(rt.name())
    .bind(super::to_i64(Version::INITIAL.get()))
    .bind(&created)
    .bind(&key)
    .bind(&d.doc)
    .bind(&d.fdoc)
    .bind(&d.ddoc)
    .bind(&d.user_name_cf)
    .bind(&d.external_id)
    .bind(&d.display_name_cf)
    .bind(&d.display)
    .execute(&mut *tx)
    .await
    .map_err(|e| match e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict {
            attribute: "id".into(),
        },
        e => be(e),
    })?;
    insert_unique(&mut *tx, tenant, rt, id, &req.unique_keys).await?;
    sort_keys::write(&mut *tx, tenant.as_str(), rt, id, &req.doc).await?;
    sort_keys::count(&mut *tx, tenant.as_str(), rt.name(), 1).await?;
    insert_members(&mut *tx, tenant, id, &resolved.members).await?;
    let (members, skipped_members) = resolved.into_sorted();
    let initial = (!members.is_empty()).then(|| {
        MemberChanges::delta(
            members.iter().map(|m| m.value.clone()).collect(),
            Vec::new(),
        )
    });
    let seq = push_change(
        &mut *tx,
        tenant,
        rt.name(),
        id,
        ChangeKind::Created,
        Version::INITIAL,
        &req.now,
        initial.as_ref(),
        req.actor.as_deref(),
    )
    .await?;
    Ok((
        StoredResource {
            id: req.id,
            resource_type: rt.name().to_owned(),
            version: Version::INITIAL,
            created: req.now,
            last_modified: req.now,
            doc: req.doc,
            members: with_members.then_some(members),
            skipped_members,
        },
        seq,
    ))
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
        let mut tx = self.begin().await?;
        let (out, seq) = create_in(&mut tx, tenant, rt, req).await?;
        tx.commit().await.map_err(be)?;
        self.notify(tenant, seq);
        Ok(out)
    }

    /// One transaction for all (much faster than one `create` each, which syncs every
    /// commit to disk): all of them, or none.
    async fn create_many(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        requests: Vec<CreateRequest>,
    ) -> Result<Vec<StoredResource>, StoreError> {
        let mut tx = self.begin().await?;
        let mut out = Vec::new();
        let mut last = None;
        for req in requests {
            let (res, seq) = create_in(&mut tx, tenant, rt, req).await?;
            out.push(res);
            last = Some(seq);
        }
        tx.commit().await.map_err(be)?;
        if let Some(seq) = last {
            self.notify(tenant, seq);
        }
        Ok(out)
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
        .map_err(be)?
        .ok_or_else(|| StoreError::not_found(rt, id))?;
        let mut res = resource_from_row(&row)?;
        if include_members {
            res.members = Some(member_list(&mut conn, tenant, id.as_str(), 0, usize::MAX).await?);
        }
        Ok(res)
    }

    async fn update(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        id: &ResourceId,
        req: UpdateRequest,
    ) -> Result<StoredResource, StoreError> {
        let derived = req.document.as_ref().map(|d| derive(&d.doc)).transpose()?;
        let mut tx = self.begin().await?;
        let cur = current(&mut tx, tenant, id.as_str())
            .await?
            .filter(|c| c.rt == rt.name())
            .ok_or_else(|| StoreError::not_found(rt, id))?;
        if let Some(v) = req.expected_version {
            if v != cur.version {
                return Err(StoreError::VersionMismatch {
                    current: cur.version,
                });
            }
        }
        if let Some(doc) = &req.document {
            check_unique(&mut tx, tenant, rt, id.as_str(), &doc.unique_keys).await?;
        }
        let (membership_changed, resolved) = match &req.members {
            Some(delta) => apply_delta(&mut tx, tenant, id.as_str(), delta).await?,
            None => (false, Resolved::default()),
        };
        let (member_changes, members, skipped_members) =
            resolved.update_outcome(req.members.as_ref(), membership_changed, req.return_members);
        let (doc, derived) = match (req.document, derived) {
            (Some(doc), Some(derived)) => (Some(doc), Some(derived)),
            _ => (None, None),
        };
        if doc.is_none() && !membership_changed {
            // Nothing to write; the transaction is rolled back on drop.
            drop(tx);
            let mut out = self.get(tenant, rt, id, false).await?;
            out.members = members;
            out.skipped_members = skipped_members;
            return Ok(out);
        }
        let version = cur.version.next();
        let now = ts(&req.now);
        let now_key = docs::date_key(&req.now.fixed_offset());
        let updated = match (&doc, &derived) {
            (Some(doc), Some(d)) => {
                sqlx::query("DELETE FROM unique_keys WHERE tenant = ?1 AND id = ?2")
                    .bind(tenant.as_str())
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(be)?;
                insert_unique(&mut tx, tenant, rt, id.as_str(), &doc.unique_keys).await?;
                sqlx::query(
                    "UPDATE resources SET version = ?3, modified = ?4, modified_key = ?5, doc = ?6, fdoc = ?7, \
                     ddoc = ?8, user_name_cf = ?9, external_id = ?10, display_name_cf = ?11, display = ?12 \
                     WHERE tenant = ?1 AND id = ?2 AND version = ?13",
                )
                .bind(tenant.as_str())
                .bind(id.as_str())
                .bind(super::to_i64(version.get()))
                .bind(&now)
                .bind(&now_key)
                .bind(&d.doc)
                .bind(&d.fdoc)
                .bind(&d.ddoc)
                .bind(&d.user_name_cf)
                .bind(&d.external_id)
                .bind(&d.display_name_cf)
                .bind(&d.display)
                .bind(super::to_i64(cur.version.get()))
                .execute(&mut *tx)
                .await
                .map_err(be)?
            }
            _ => sqlx::query(
                "UPDATE resources SET version = ?3, modified = ?4, modified_key = ?5 \
                 WHERE tenant = ?1 AND id = ?2 AND version = ?6",
            )
            .bind(tenant.as_str())
            .bind(id.as_str())
            .bind(super::to_i64(version.get()))
            .bind(&now)
            .bind(&now_key)
            .bind(super::to_i64(cur.version.get()))
            .execute(&mut *tx)
            .await
            .map_err(be)?,
        };
        if updated.rows_affected() != 1 {
            // Unreachable while the transaction holds the write lock; kept as the
            // database-side guard of the version check.
            return Err(StoreError::VersionMismatch {
                current: cur.version,
            });
        }
        if let Some(doc) = &doc {
            sort_keys::write(&mut tx, tenant.as_str(), rt, id.as_str(), &doc.doc).await?;
        }
        let kind = match (doc.is_some(), req.kind) {
            (false, _) => ChangeKind::MembershipChanged,
            (true, UpdateKind::Replace) => ChangeKind::Replaced,
            (true, UpdateKind::Patch) => ChangeKind::Patched,
        };
        let seq = push_change(
            &mut tx,
            tenant,
            rt.name(),
            id.as_str(),
            kind,
            version,
            &req.now,
            member_changes.as_ref(),
            req.actor.as_deref(),
        )
        .await?;
        let row = sqlx::query(AssertSqlSafe(format!(
            "{SELECT_RESOURCE} WHERE r.tenant = ?1 AND r.id = ?2"
        )))
        .bind(tenant.as_str())
        .bind(id.as_str())
        .fetch_one(&mut *tx)
        .await
        .map_err(be)?;
        let mut out = resource_from_row(&row)?;
        if let Some(doc) = doc {
            out.doc = doc.doc;
        }
        out.members = members;
        out.skipped_members = skipped_members;
        tx.commit().await.map_err(be)?;
        self.notify(tenant, seq);
        Ok(out)
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
        let mut tx = self.begin().await?;
        let cur = current(&mut tx, tenant, id.as_str())
            .await?
            .filter(|c| c.rt == rt.name())
            .ok_or_else(|| StoreError::not_found(rt, id))?;
        if let Some(v) = expected_version {
            if v != cur.version {
                return Err(StoreError::VersionMismatch {
                    current: cur.version,
                });
            }
        }
        sort_keys::remove(&mut tx, tenant.as_str(), id.as_str()).await?;
        sort_keys::count(&mut tx, tenant.as_str(), rt.name(), -1).await?;
        for sql in [
            "DELETE FROM resources WHERE tenant = ?1 AND id = ?2",
            "DELETE FROM unique_keys WHERE tenant = ?1 AND id = ?2",
            "DELETE FROM members WHERE tenant = ?1 AND group_id = ?2",
        ] {
            sqlx::query(sql)
                .bind(tenant.as_str())
                .bind(id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(be)?;
        }
        let mut seq = push_change(
            &mut tx,
            tenant,
            rt.name(),
            id.as_str(),
            ChangeKind::Deleted,
            cur.version.next(),
            &now,
            None,
            actor,
        )
        .await?;
        let groups = sqlx::query(
            "DELETE FROM members WHERE tenant = ?1 AND member_id = ?2 RETURNING group_id",
        )
        .bind(tenant.as_str())
        .bind(id.as_str())
        .fetch_all(&mut *tx)
        .await
        .map_err(be)?;
        let mut group_ids: Vec<String> = groups
            .iter()
            .map(|r| r.try_get::<String, _>("group_id").map_err(be))
            .collect::<Result<_, _>>()?;
        group_ids.sort();
        let (now_s, now_key) = (ts(&now), docs::date_key(&now.fixed_offset()));
        let left = MemberChanges::delta(Vec::new(), vec![id.clone()]);
        for g in group_ids {
            let row = sqlx::query(
                "UPDATE resources SET version = version + 1, modified = ?3, modified_key = ?4 \
                 WHERE tenant = ?1 AND id = ?2 RETURNING rt, version",
            )
            .bind(tenant.as_str())
            .bind(&g)
            .bind(&now_s)
            .bind(&now_key)
            .fetch_optional(&mut *tx)
            .await
            .map_err(be)?;
            let Some(row) = row else { continue };
            let grt: String = row.try_get("rt").map_err(be)?;
            let gv = Version::new(to_u64(row.try_get("version").map_err(be)?));
            seq = push_change(
                &mut tx,
                tenant,
                &grt,
                &g,
                ChangeKind::MembershipChanged,
                gv,
                &now,
                Some(&left),
                actor,
            )
            .await?;
        }
        tx.commit().await.map_err(be)?;
        self.notify(tenant, seq);
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
        let mut conn = self.reader.acquire().await.map_err(be)?;
        let found = current(&mut conn, tenant, group.as_str())
            .await?
            .filter(|c| c.rt == rt.name());
        if found.is_none() {
            return Ok(None);
        }
        // Is there a member past `max`? An index-only probe of at most `max` entries.
        let more = sqlx::query(
            "SELECT 1 FROM members WHERE tenant = ?1 AND group_id = ?2 \
             ORDER BY member_id LIMIT 1 OFFSET ?3",
        )
        .bind(tenant.as_str())
        .bind(group.as_str())
        .bind(i64::try_from(max).unwrap_or(i64::MAX))
        .fetch_optional(&mut *conn)
        .await
        .map_err(be)?;
        if more.is_some() {
            return Ok(None);
        }
        Ok(Some(
            member_list(&mut conn, tenant, group.as_str(), 0, max).await?,
        ))
    }

    async fn members(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        group: &ResourceId,
        start_index: usize,
        count: usize,
    ) -> Result<MemberPage, StoreError> {
        let mut conn = self.reader.acquire().await.map_err(be)?;
        let found = current(&mut conn, tenant, group.as_str())
            .await?
            .filter(|c| c.rt == rt.name());
        if found.is_none() {
            return Err(StoreError::not_found(rt, group));
        }
        let row =
            sqlx::query("SELECT count(*) AS n FROM members WHERE tenant = ?1 AND group_id = ?2")
                .bind(tenant.as_str())
                .bind(group.as_str())
                .fetch_one(&mut *conn)
                .await
                .map_err(be)?;
        let total = usize::try_from(row.try_get::<i64, _>("n").map_err(be)?).unwrap_or(0);
        let w = super::page_window(start_index, count, total);
        let members = if w.is_empty() {
            Vec::new()
        } else {
            member_list(&mut conn, tenant, group.as_str(), w.start, w.len()).await?
        };
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
        let mut conn = self.reader.acquire().await.map_err(be)?;
        let rows = sqlx::query(
            "SELECT m.group_id, g.rt, g.display FROM members AS m \
             JOIN resources AS g ON g.tenant = m.tenant AND g.id = m.group_id \
             WHERE m.tenant = ?1 AND m.member_id = ?2 ORDER BY m.group_id",
        )
        .bind(tenant.as_str())
        .bind(member.as_str())
        .fetch_all(&mut *conn)
        .await
        .map_err(be)?;
        rows.iter()
            .map(|r| {
                Ok(GroupRef {
                    id: ResourceId::new(r.try_get::<String, _>("group_id").map_err(be)?),
                    resource_type: r.try_get("rt").map_err(be)?,
                    display: r.try_get("display").map_err(be)?,
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
        let mut conn = self.reader.acquire().await.map_err(be)?;
        // One statement: the resource, and its groups as a JSON array in a subquery.
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT r.id, r.rt, r.version, r.created, r.modified, r.doc{} \
                 FROM resources AS r WHERE r.tenant = ?1 AND r.id = ?2 AND r.rt = ?3",
            groups_of("r")
        )))
        .bind(tenant.as_str())
        .bind(id.as_str())
        .bind(rt.name())
        .fetch_optional(&mut *conn)
        .await
        .map_err(be)?
        .ok_or_else(|| StoreError::not_found(rt, id))?;
        let res = resource_from_row(&row)?;
        let groups: String = row.try_get("groups").map_err(be)?;
        Ok((res, super::groups_from_json(&groups)?))
    }

    async fn groups_of_many(
        &self,
        tenant: &TenantId,
        members: &[ResourceId],
    ) -> Result<Vec<Vec<GroupRef>>, StoreError> {
        if members.is_empty() {
            return Ok(Vec::new());
        }
        let ids =
            serde_json::to_string(&members.iter().map(ResourceId::as_str).collect::<Vec<_>>())
                .map_err(StoreError::backend)?;
        let mut conn = self.reader.acquire().await.map_err(be)?;
        let rows = sqlx::query(
            "SELECT m.member_id, m.group_id, g.rt, g.display FROM members AS m \
             JOIN resources AS g ON g.tenant = m.tenant AND g.id = m.group_id \
             WHERE m.tenant = ?1 AND m.member_id IN (SELECT value FROM json_each(?2)) \
             ORDER BY m.group_id",
        )
        .bind(tenant.as_str())
        .bind(ids)
        .fetch_all(&mut *conn)
        .await
        .map_err(be)?;
        let rows = rows
            .iter()
            .map(|r| {
                Ok((
                    r.try_get::<String, _>("member_id").map_err(be)?,
                    GroupRef {
                        id: ResourceId::new(r.try_get::<String, _>("group_id").map_err(be)?),
                        resource_type: r.try_get("rt").map_err(be)?,
                        display: r.try_get("display").map_err(be)?,
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
        let mut conn = self.reader.acquire().await.map_err(be)?;
        // The records first, the horizon second: a prune committed in between raises the
        // horizon read second, so a gap in the records is always reported.
        let rows = sqlx::query(
            "SELECT seq, rt, id, kind, version, at, members, actor FROM changes \
             WHERE tenant = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        )
        .bind(tenant.as_str())
        .bind(super::to_i64(after))
        .bind(i64::try_from(limit).unwrap_or(-1))
        .fetch_all(&mut *conn)
        .await
        .map_err(be)?;
        let pruned_through = horizon(&mut conn, tenant).await?;
        if after < pruned_through {
            return Err(StoreError::ChangesPruned {
                requested: after,
                pruned_through,
            });
        }
        rows.iter()
            .map(|r| {
                Ok(Change {
                    seq: to_u64(r.try_get("seq").map_err(be)?),
                    tenant: tenant.clone(),
                    resource_type: r.try_get("rt").map_err(be)?,
                    id: ResourceId::new(r.try_get::<String, _>("id").map_err(be)?),
                    kind: super::stored_change_kind(&r.try_get::<String, _>("kind").map_err(be)?)?,
                    version: Version::new(to_u64(r.try_get("version").map_err(be)?)),
                    at: parse_ts(&r.try_get::<String, _>("at").map_err(be)?)?,
                    members: MemberChanges::from_column(
                        r.try_get::<Option<String>, _>("members")
                            .map_err(be)?
                            .as_deref(),
                    ),
                    actor: r.try_get("actor").map_err(be)?,
                })
            })
            .collect()
    }

    async fn head_seq(&self, tenant: &TenantId) -> Result<u64, StoreError> {
        let mut conn = self.reader.acquire().await.map_err(be)?;
        let head: i64 = sqlx::query_scalar(
            "SELECT MAX((SELECT COALESCE(MAX(seq), 0) FROM changes WHERE tenant = ?1), \
                        (SELECT COALESCE(MAX(pruned_through), 0) FROM change_horizons WHERE tenant = ?1))",
        )
        .bind(tenant.as_str())
        .fetch_one(&mut *conn)
        .await
        .map_err(be)?;
        Ok(to_u64(head))
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
        let cutoff = retention.cutoff(now).map(|c| ts(&c));
        let budget = retention.per_call();
        let mut removed = 0u64;
        loop {
            let mut tx = self.begin().await?;
            let pruned_through = horizon(&mut tx, tenant).await?;
            let last: Option<i64> =
                sqlx::query_scalar("SELECT MAX(seq) FROM changes WHERE tenant = ?1")
                    .bind(tenant.as_str())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(be)?;
            // The feed is contiguous (a new seq is one above the last, or the horizon) and
            // only loses prefixes: the records beyond the newest `max_entries` are those up
            // to `last - max_entries`.
            let over = retention.max_entries.map_or(pruned_through, |keep| {
                last.map_or(0, to_u64).saturating_sub(keep)
            });
            let room = budget.saturating_sub(removed);
            let window = if room == 0 {
                1
            } else {
                room.min(super::ChangeRetention::BATCH)
            };
            let due = due_prefix(
                &mut tx,
                tenant,
                pruned_through,
                over,
                cutoff.as_deref(),
                window,
            )
            .await?;
            let Some((end, more)) = due else {
                return Ok(super::PruneReport {
                    removed,
                    pruned_through,
                    complete: true,
                });
            };
            if room == 0 {
                return Ok(super::PruneReport {
                    removed,
                    pruned_through,
                    complete: false,
                });
            }
            let deleted =
                sqlx::query("DELETE FROM changes WHERE tenant = ?1 AND seq > ?2 AND seq <= ?3")
                    .bind(tenant.as_str())
                    .bind(super::to_i64(pruned_through))
                    .bind(super::to_i64(end))
                    .execute(&mut *tx)
                    .await
                    .map_err(be)?
                    .rows_affected();
            sqlx::query(
                "INSERT INTO change_horizons (tenant, pruned_through) VALUES (?1, ?2) \
                 ON CONFLICT (tenant) DO UPDATE SET pruned_through = MAX(pruned_through, excluded.pruned_through)",
            )
            .bind(tenant.as_str())
            .bind(super::to_i64(end))
            .execute(&mut *tx)
            .await
            .map_err(be)?;
            tx.commit().await.map_err(be)?;
            removed = removed.saturating_add(deleted);
            if !more {
                return Ok(super::PruneReport {
                    removed,
                    pruned_through: end,
                    complete: true,
                });
            }
        }
    }
}

/// The tenant's prune horizon (0 when never pruned).
async fn horizon(conn: &mut SqliteConnection, tenant: &TenantId) -> Result<u64, StoreError> {
    let h: Option<i64> =
        sqlx::query_scalar("SELECT pruned_through FROM change_horizons WHERE tenant = ?1")
            .bind(tenant.as_str())
            .fetch_optional(&mut *conn)
            .await
            .map_err(be)?;
    Ok(h.map_or(0, to_u64))
}

/// Among the first `window` records after `pruned_through` (a primary-key range read), the
/// last `seq` of the prefix that is due: up to `over`, or committed before `cutoff` (an
/// RFC 3339 string as [`ts`] writes them, which sort as the times do). `None` when nothing
/// is due; otherwise the end and whether records after the window may be due too.
async fn due_prefix(
    conn: &mut SqliteConnection,
    tenant: &TenantId,
    pruned_through: u64,
    over: u64,
    cutoff: Option<&str>,
    window: u64,
) -> Result<Option<(u64, bool)>, StoreError> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, MAX(seq) AS last, \
                MIN(CASE WHEN seq <= ?3 OR (?4 IS NOT NULL AND at < ?4) THEN NULL ELSE seq END) AS kept \
         FROM (SELECT seq, at FROM changes WHERE tenant = ?1 AND seq > ?2 ORDER BY seq LIMIT ?5)",
    )
    .bind(tenant.as_str())
    .bind(super::to_i64(pruned_through))
    .bind(super::to_i64(over))
    .bind(cutoff)
    .bind(super::to_i64(window))
    .fetch_one(&mut *conn)
    .await
    .map_err(be)?;
    let n: i64 = row.try_get("n").map_err(be)?;
    let last: Option<i64> = row.try_get("last").map_err(be)?;
    let kept: Option<i64> = row.try_get("kept").map_err(be)?;
    let end = match (kept, last) {
        (Some(k), _) => to_u64(k).saturating_sub(1),
        (None, Some(l)) => to_u64(l),
        (None, None) => return Ok(None),
    };
    if end <= pruned_through {
        return Ok(None);
    }
    Ok(Some((end, kept.is_none() && to_u64(n) >= window)))
}
