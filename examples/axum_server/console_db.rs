//! What the admin console keeps of its own, next to scimkit's data: the host's access
//! policies and the times the console revoked tokens.
//!
//! - `--store sqlite:PATH`: two tables of the example's own (`console_policies`,
//!   `console_revocations`) in the same SQLite file, through a separate sqlx pool on it (the
//!   store exposes no pool; SQLite's WAL mode and busy timeout let both write the file).
//! - `--store postgres:URL`: the same two tables (`console_policies`,
//!   `console_revocations`) in the same database.
//! - `--store memory`: in memory, like everything else of a memory store: a restart loses
//!   them together with the users and groups they refer to, so nothing is written to disk.
//!
//! A policy keeps its collections' ids (stable across renames) and the name each had when
//! the admin attached it, so that a collection the IdP deleted still shows by name.
//!
//! For the SQL stores the console also reads a group's members sorted by `userName` with
//! active and inactive counts straight from the store's tables (the store's own API pages
//! members by id only): one indexed join per page, whatever the group's size.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use scimkit::{resource::ResourceId, tenant::TenantId};
use serde::{Deserialize, Serialize};

use crate::common::cli::StoreSpec;

/// A collection a policy names: the group's id and the name it had when attached (or last
/// seen).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyCollection {
    /// The group's id.
    pub id: String,
    /// Its `displayName` when it was attached.
    pub name: String,
}

/// A host access policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// The policy's id (per database).
    pub id: i64,
    /// Its name.
    pub name: String,
    /// The collections it names.
    pub collections: Vec<PolicyCollection>,
}

/// A member of a group as the console lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct SortedMember {
    /// The member's id.
    pub id: String,
    /// `User` or `Group`.
    pub resource_type: String,
    /// The user's `userName`.
    pub user_name: Option<String>,
    /// The member's `displayName`.
    pub display_name: Option<String>,
    /// `active` (`None` when not set or not a user).
    pub active: Option<bool>,
}

/// A page of members sorted by `userName`, with the group's counts.
#[derive(Debug, Clone, PartialEq)]
pub struct SortedMembers {
    /// The page.
    pub members: Vec<SortedMember>,
    /// All members of the group.
    pub total: u64,
    /// Members that are users with `active: false`.
    pub inactive: u64,
}

/// The console's own storage.
pub enum ConsoleDb {
    /// Everything in memory (the memory store).
    Memory(Mutex<MemoryDb>),
    /// Tables in the store's SQLite file.
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::SqlitePool),
    /// Tables in the store's PostgreSQL database.
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
}

/// The memory variant's data.
#[derive(Default)]
pub struct MemoryDb {
    next_id: i64,
    policies: BTreeMap<TenantId, Vec<Policy>>,
    revocations: HashMap<(TenantId, String), DateTime<Utc>>,
}

type DbResult<T> = Result<T, String>;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn db_err(e: sqlx::Error) -> String {
    format!("console database: {e}")
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn collections_from(text: &str) -> DbResult<Vec<PolicyCollection>> {
    serde_json::from_str(text).map_err(|e| format!("console database: bad collections: {e}"))
}

fn collections_text(c: &[PolicyCollection]) -> DbResult<String> {
    serde_json::to_string(c).map_err(|e| format!("console database: {e}"))
}

// Rows of either SQL database (SQLite and PostgreSQL read the same columns; they differ in
// pool type and placeholders only).

/// A policy from a `console_policies` row.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn policy_from<R>(r: &R) -> DbResult<Policy>
where
    R: sqlx::Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let text: String = r.try_get("collections").map_err(db_err)?;
    Ok(Policy {
        id: r.try_get("id").map_err(db_err)?,
        name: r.try_get("name").map_err(db_err)?,
        collections: collections_from(&text)?,
    })
}

/// The revocation times of `console_revocations` rows, by token id (a time that does not
/// parse is left out).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn revocations_from<R>(rows: &[R]) -> DbResult<HashMap<String, DateTime<Utc>>>
where
    R: sqlx::Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let mut out = HashMap::new();
    for r in rows {
        let token: String = r.try_get("token").map_err(db_err)?;
        let at: String = r.try_get("at").map_err(db_err)?;
        if let Ok(at) = DateTime::parse_from_rfc3339(&at) {
            out.insert(token, at.with_timezone(&Utc));
        }
    }
    Ok(out)
}

/// A member row of [`ConsoleDb::sorted_members`]; its resource type is in column `type_column`.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn sorted_member_from<R>(r: &R, type_column: &str) -> DbResult<SortedMember>
where
    R: sqlx::Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let active: Option<String> = r.try_get("active").map_err(db_err)?;
    Ok(SortedMember {
        id: r.try_get("id").map_err(db_err)?,
        resource_type: r.try_get(type_column).map_err(db_err)?,
        user_name: r.try_get("user_name").ok().flatten(),
        display_name: r.try_get("display_name").ok().flatten(),
        active: match active.as_deref() {
            Some("true") => Some(true),
            Some("false") => Some(false),
            _ => None,
        },
    })
}

#[cfg(feature = "sqlite")]
const SQLITE_SCHEMA: [&str; 3] = [
    "CREATE TABLE IF NOT EXISTS console_policies (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant TEXT NOT NULL,
        name TEXT NOT NULL,
        collections TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS console_policies_tenant ON console_policies (tenant, id)",
    "CREATE TABLE IF NOT EXISTS console_revocations (
        tenant TEXT NOT NULL,
        token TEXT NOT NULL,
        at TEXT NOT NULL,
        PRIMARY KEY (tenant, token))",
];

#[cfg(feature = "postgres")]
const POSTGRES_SCHEMA: [&str; 3] = [
    "CREATE TABLE IF NOT EXISTS console_policies (
        id bigserial PRIMARY KEY,
        tenant text NOT NULL,
        name text NOT NULL,
        collections text NOT NULL)",
    "CREATE INDEX IF NOT EXISTS console_policies_tenant ON console_policies (tenant, id)",
    "CREATE TABLE IF NOT EXISTS console_revocations (
        tenant text NOT NULL,
        token text NOT NULL,
        at text NOT NULL,
        PRIMARY KEY (tenant, token))",
];

impl ConsoleDb {
    /// In memory.
    pub fn memory() -> ConsoleDb {
        ConsoleDb::Memory(Mutex::new(MemoryDb::default()))
    }

    /// Opens the console's tables in the database of `spec` (creating them), or memory.
    pub async fn open(spec: &StoreSpec) -> DbResult<ConsoleDb> {
        match spec {
            StoreSpec::Memory => Ok(ConsoleDb::memory()),
            #[cfg(feature = "sqlite")]
            StoreSpec::Sqlite(path) => {
                use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(false)
                    .journal_mode(SqliteJournalMode::Wal)
                    .busy_timeout(std::time::Duration::from_secs(5));
                let pool = SqlitePoolOptions::new()
                    .max_connections(2)
                    .connect_with(options)
                    .await
                    .map_err(db_err)?;
                for statement in SQLITE_SCHEMA {
                    sqlx::query(statement)
                        .execute(&pool)
                        .await
                        .map_err(db_err)?;
                }
                Ok(ConsoleDb::Sqlite(pool))
            }
            #[cfg(feature = "postgres")]
            StoreSpec::Postgres(url) => {
                let pool = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(2)
                    .connect(url)
                    .await
                    .map_err(db_err)?;
                for statement in POSTGRES_SCHEMA {
                    sqlx::query(statement)
                        .execute(&pool)
                        .await
                        .map_err(db_err)?;
                }
                Ok(ConsoleDb::Postgres(pool))
            }
            #[allow(unreachable_patterns)]
            _ => Err("the console database needs the store's feature".to_owned()),
        }
    }

    fn mem(m: &Mutex<MemoryDb>) -> std::sync::MutexGuard<'_, MemoryDb> {
        m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The tenant's policies, oldest first.
    pub async fn policies(&self, tenant: &TenantId) -> DbResult<Vec<Policy>> {
        match self {
            ConsoleDb::Memory(m) => Ok(Self::mem(m)
                .policies
                .get(tenant)
                .cloned()
                .unwrap_or_default()),
            #[cfg(feature = "sqlite")]
            ConsoleDb::Sqlite(pool) => {
                let rows = sqlx::query(
                    "SELECT id, name, collections FROM console_policies WHERE tenant = ?1 \
                     ORDER BY id",
                )
                .bind(tenant.as_str())
                .fetch_all(pool)
                .await
                .map_err(db_err)?;
                rows.iter().map(policy_from).collect()
            }
            #[cfg(feature = "postgres")]
            ConsoleDb::Postgres(pool) => {
                let rows = sqlx::query(
                    "SELECT id, name, collections FROM console_policies WHERE tenant = $1 \
                     ORDER BY id",
                )
                .bind(tenant.as_str())
                .fetch_all(pool)
                .await
                .map_err(db_err)?;
                rows.iter().map(policy_from).collect()
            }
        }
    }

    /// Stores a new policy.
    pub async fn create_policy(
        &self,
        tenant: &TenantId,
        name: &str,
        collections: Vec<PolicyCollection>,
    ) -> DbResult<Policy> {
        let text = collections_text(&collections)?;
        let id = match self {
            ConsoleDb::Memory(m) => {
                let mut db = Self::mem(m);
                db.next_id += 1;
                let id = db.next_id;
                db.policies.entry(tenant.clone()).or_default().push(Policy {
                    id,
                    name: name.to_owned(),
                    collections: collections.clone(),
                });
                id
            }
            #[cfg(feature = "sqlite")]
            ConsoleDb::Sqlite(pool) => {
                use sqlx::Row;
                sqlx::query(
                    "INSERT INTO console_policies (tenant, name, collections) VALUES (?1, ?2, ?3) \
                     RETURNING id",
                )
                .bind(tenant.as_str())
                .bind(name)
                .bind(&text)
                .fetch_one(pool)
                .await
                .map_err(db_err)?
                .try_get("id")
                .map_err(db_err)?
            }
            #[cfg(feature = "postgres")]
            ConsoleDb::Postgres(pool) => {
                use sqlx::Row;
                sqlx::query(
                    "INSERT INTO console_policies (tenant, name, collections) VALUES ($1, $2, $3) \
                     RETURNING id",
                )
                .bind(tenant.as_str())
                .bind(name)
                .bind(&text)
                .fetch_one(pool)
                .await
                .map_err(db_err)?
                .try_get("id")
                .map_err(db_err)?
            }
        };
        let _ = text;
        Ok(Policy {
            id,
            name: name.to_owned(),
            collections,
        })
    }

    /// Replaces a policy's name and collections; `None` when the tenant has no such policy.
    pub async fn update_policy(
        &self,
        tenant: &TenantId,
        id: i64,
        name: &str,
        collections: Vec<PolicyCollection>,
    ) -> DbResult<Option<Policy>> {
        let text = collections_text(&collections)?;
        let found = match self {
            ConsoleDb::Memory(m) => {
                let mut db = Self::mem(m);
                match db
                    .policies
                    .get_mut(tenant)
                    .and_then(|l| l.iter_mut().find(|p| p.id == id))
                {
                    Some(p) => {
                        p.name = name.to_owned();
                        p.collections = collections.clone();
                        true
                    }
                    None => false,
                }
            }
            #[cfg(feature = "sqlite")]
            ConsoleDb::Sqlite(pool) => {
                sqlx::query(
                    "UPDATE console_policies SET name = ?3, collections = ?4 \
                     WHERE tenant = ?1 AND id = ?2",
                )
                .bind(tenant.as_str())
                .bind(id)
                .bind(name)
                .bind(&text)
                .execute(pool)
                .await
                .map_err(db_err)?
                .rows_affected()
                    == 1
            }
            #[cfg(feature = "postgres")]
            ConsoleDb::Postgres(pool) => {
                sqlx::query(
                    "UPDATE console_policies SET name = $3, collections = $4 \
                     WHERE tenant = $1 AND id = $2",
                )
                .bind(tenant.as_str())
                .bind(id)
                .bind(name)
                .bind(&text)
                .execute(pool)
                .await
                .map_err(db_err)?
                .rows_affected()
                    == 1
            }
        };
        let _ = text;
        Ok(found.then(|| Policy {
            id,
            name: name.to_owned(),
            collections,
        }))
    }

    /// Deletes a policy; false when the tenant has no such policy.
    pub async fn delete_policy(&self, tenant: &TenantId, id: i64) -> DbResult<bool> {
        match self {
            ConsoleDb::Memory(m) => {
                let mut db = Self::mem(m);
                let Some(list) = db.policies.get_mut(tenant) else {
                    return Ok(false);
                };
                let before = list.len();
                list.retain(|p| p.id != id);
                Ok(list.len() != before)
            }
            #[cfg(feature = "sqlite")]
            ConsoleDb::Sqlite(pool) => Ok(sqlx::query(
                "DELETE FROM console_policies WHERE tenant = ?1 AND id = ?2",
            )
            .bind(tenant.as_str())
            .bind(id)
            .execute(pool)
            .await
            .map_err(db_err)?
            .rows_affected()
                == 1),
            #[cfg(feature = "postgres")]
            ConsoleDb::Postgres(pool) => Ok(sqlx::query(
                "DELETE FROM console_policies WHERE tenant = $1 AND id = $2",
            )
            .bind(tenant.as_str())
            .bind(id)
            .execute(pool)
            .await
            .map_err(db_err)?
            .rows_affected()
                == 1),
        }
    }

    /// Records that the console revoked `token` at `at`.
    pub async fn record_revocation(
        &self,
        tenant: &TenantId,
        token: &str,
        at: DateTime<Utc>,
    ) -> DbResult<()> {
        match self {
            ConsoleDb::Memory(m) => {
                Self::mem(m)
                    .revocations
                    .entry((tenant.clone(), token.to_owned()))
                    .or_insert(at);
                Ok(())
            }
            #[cfg(feature = "sqlite")]
            ConsoleDb::Sqlite(pool) => sqlx::query(
                "INSERT INTO console_revocations (tenant, token, at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(tenant.as_str())
            .bind(token)
            .bind(at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
            .execute(pool)
            .await
            .map(|_| ())
            .map_err(db_err),
            #[cfg(feature = "postgres")]
            ConsoleDb::Postgres(pool) => sqlx::query(
                "INSERT INTO console_revocations (tenant, token, at) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(tenant.as_str())
            .bind(token)
            .bind(at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
            .execute(pool)
            .await
            .map(|_| ())
            .map_err(db_err),
        }
    }

    /// When the console revoked each of the tenant's tokens (by token id).
    pub async fn revocations(&self, tenant: &TenantId) -> DbResult<HashMap<String, DateTime<Utc>>> {
        match self {
            ConsoleDb::Memory(m) => Ok(Self::mem(m)
                .revocations
                .iter()
                .filter(|((t, _), _)| t == tenant)
                .map(|((_, token), at)| (token.clone(), *at))
                .collect()),
            #[cfg(feature = "sqlite")]
            ConsoleDb::Sqlite(pool) => {
                let rows =
                    sqlx::query("SELECT token, at FROM console_revocations WHERE tenant = ?1")
                        .bind(tenant.as_str())
                        .fetch_all(pool)
                        .await
                        .map_err(db_err)?;
                revocations_from(&rows)
            }
            #[cfg(feature = "postgres")]
            ConsoleDb::Postgres(pool) => {
                let rows =
                    sqlx::query("SELECT token, at FROM console_revocations WHERE tenant = $1")
                        .bind(tenant.as_str())
                        .fetch_all(pool)
                        .await
                        .map_err(db_err)?;
                revocations_from(&rows)
            }
        }
    }

    /// A page of the members of `group` sorted by `userName` (members without one last),
    /// with the group's total and inactive counts, read with SQL from the store's tables.
    /// `None` for the memory store: the caller reads it through the store's API.
    ///
    /// `tenant_users` (the tenant's user count) chooses the SQLite plan: for a group holding
    /// a large part of the tenant, walk the users in `userName` order (an index) and keep the
    /// members, so a page costs about its size; for a smaller group, join its members and
    /// sort them.
    pub async fn sorted_members(
        &self,
        tenant: &TenantId,
        group: &ResourceId,
        start: usize,
        count: usize,
        tenant_users: usize,
    ) -> DbResult<Option<SortedMembers>> {
        let offset = i64::try_from(start.saturating_sub(1)).unwrap_or(i64::MAX);
        let limit = i64::try_from(count).unwrap_or(i64::MAX);
        let _ = (tenant, group, offset, limit, tenant_users);
        match self {
            ConsoleDb::Memory(_) => Ok(None),
            #[cfg(feature = "sqlite")]
            ConsoleDb::Sqlite(pool) => {
                sqlite_sorted_members(pool, tenant, group, offset, limit, tenant_users)
                    .await
                    .map(Some)
            }
            #[cfg(feature = "postgres")]
            ConsoleDb::Postgres(pool) => {
                use sqlx::Row;
                let counts = sqlx::query(
                    "SELECT count(*) AS total, \
                     count(*) FILTER (WHERE r.resource_type = 'User' \
                       AND r.doc -> 'active' = 'false'::jsonb) AS inactive \
                     FROM scimkit_members m JOIN scimkit_resources r \
                       ON r.tenant = m.tenant AND r.id = m.member_id \
                     WHERE m.tenant = $1 AND m.group_id = $2",
                )
                .bind(tenant.as_str())
                .bind(group.as_str())
                .fetch_one(pool)
                .await
                .map_err(db_err)?;
                let rows = sqlx::query(
                    "SELECT r.id, r.resource_type, r.doc ->> 'userName' AS user_name, \
                     r.doc ->> 'displayName' AS display_name, \
                     CASE WHEN jsonb_typeof(r.doc -> 'active') = 'boolean' \
                       THEN (r.doc ->> 'active') ELSE NULL END AS active \
                     FROM scimkit_members m JOIN scimkit_resources r \
                       ON r.tenant = m.tenant AND r.id = m.member_id \
                     WHERE m.tenant = $1 AND m.group_id = $2 \
                     ORDER BY r.user_name_fold NULLS LAST, r.id LIMIT $3 OFFSET $4",
                )
                .bind(tenant.as_str())
                .bind(group.as_str())
                .bind(limit)
                .bind(offset)
                .fetch_all(pool)
                .await
                .map_err(db_err)?;
                let members = rows
                    .iter()
                    .map(|r| sorted_member_from(r, "resource_type"))
                    .collect::<DbResult<Vec<_>>>()?;
                let total: i64 = counts.try_get("total").map_err(db_err)?;
                let inactive: i64 = counts.try_get("inactive").map_err(db_err)?;
                Ok(Some(SortedMembers {
                    members,
                    total: u64::try_from(total).unwrap_or(0),
                    inactive: u64::try_from(inactive).unwrap_or(0),
                }))
            }
        }
    }
}

/// [`ConsoleDb::sorted_members`] on SQLite: users by `userName` first, then the members that
/// are groups (nested) by id.
#[cfg(feature = "sqlite")]
async fn sqlite_sorted_members(
    pool: &sqlx::SqlitePool,
    tenant: &TenantId,
    group: &ResourceId,
    offset: i64,
    limit: i64,
    tenant_users: usize,
) -> DbResult<SortedMembers> {
    use sqlx::Row;
    let one = |sql: &'static str| sqlx::query(sql).bind(tenant.as_str()).bind(group.as_str());
    // The member count from the primary key; the inactive users with a text pre-filter
    // before any JSON is parsed.
    let total: i64 = one("SELECT count(*) FROM members WHERE tenant = ?1 AND group_id = ?2")
        .fetch_one(pool)
        .await
        .map_err(db_err)?
        .try_get(0)
        .map_err(db_err)?;
    let inactive: i64 = one(
        "SELECT count(*) FROM members m JOIN resources r ON r.tenant = m.tenant AND r.id = m.member_id \
         WHERE m.tenant = ?1 AND m.group_id = ?2 AND r.rt = 'User' \
           AND instr(r.doc, '\"active\":false') > 0 AND json_type(r.doc, '$.active') = 'false'",
    )
    .fetch_one(pool)
    .await
    .map_err(db_err)?
    .try_get(0)
    .map_err(db_err)?;
    // The users first, by userName.
    let walk = i64::try_from(tenant_users)
        .unwrap_or(i64::MAX)
        .saturating_div(4)
        <= total;
    let sql = if walk {
        "SELECT r.id, r.rt, json_extract(r.doc, '$.userName') AS user_name, \
         json_extract(r.doc, '$.displayName') AS display_name, \
         json_type(r.doc, '$.active') AS active FROM resources r \
         WHERE r.tenant = ?1 AND r.rt = 'User' AND EXISTS (SELECT 1 FROM members m \
           WHERE m.tenant = r.tenant AND m.group_id = ?2 AND m.member_id = r.id) \
         ORDER BY r.user_name_cf, r.id LIMIT ?3 OFFSET ?4"
    } else {
        "SELECT r.id, r.rt, json_extract(r.doc, '$.userName') AS user_name, \
         json_extract(r.doc, '$.displayName') AS display_name, \
         json_type(r.doc, '$.active') AS active \
         FROM members m JOIN resources r ON r.tenant = m.tenant AND r.id = m.member_id \
         WHERE m.tenant = ?1 AND m.group_id = ?2 AND r.rt = 'User' \
         ORDER BY r.user_name_cf, r.id LIMIT ?3 OFFSET ?4"
    };
    let mut rows = one(sql)
        .bind(limit)
        .bind(offset)
        .fetch_all(pool)
        .await
        .map_err(db_err)?;
    let fetched = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    if fetched < limit && offset.saturating_add(fetched) < total {
        // Past the users: the members that are not users (nested groups, rare), by id. Where
        // they start is the number of user members, counted only now.
        let users: i64 = one("SELECT count(*) FROM members m JOIN resources r \
               ON r.tenant = m.tenant AND r.id = m.member_id \
             WHERE m.tenant = ?1 AND m.group_id = ?2 AND r.rt = 'User'")
        .fetch_one(pool)
        .await
        .map_err(db_err)?
        .try_get(0)
        .map_err(db_err)?;
        let more = one("SELECT r.id, r.rt, NULL AS user_name, \
             json_extract(r.doc, '$.displayName') AS display_name, NULL AS active \
             FROM members m JOIN resources r ON r.tenant = m.tenant AND r.id = m.member_id \
             WHERE m.tenant = ?1 AND m.group_id = ?2 AND r.rt <> 'User' \
             ORDER BY r.id LIMIT ?3 OFFSET ?4")
        .bind(limit - fetched)
        .bind(offset.saturating_add(fetched).saturating_sub(users).max(0))
        .fetch_all(pool)
        .await
        .map_err(db_err)?;
        rows.extend(more);
    }
    let members = rows
        .iter()
        .map(|r| sorted_member_from(r, "rt"))
        .collect::<DbResult<Vec<_>>>()?;
    Ok(SortedMembers {
        members,
        total: u64::try_from(total).unwrap_or(0),
        inactive: u64::try_from(inactive).unwrap_or(0),
    })
}
