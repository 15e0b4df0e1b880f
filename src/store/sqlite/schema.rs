//! The database schema, as embedded, versioned migrations applied on open.
//!
//! Each SQL migration runs in its own `BEGIN IMMEDIATE` transaction together with the row that
//! records it in `scimkit_migrations`, so a migration is applied once, completely or not at
//! all, even when several processes open the same file at once. A migration done in Rust
//! (migration 3, [`super::refold`]) runs in bounded batches, each its own transaction; it is
//! idempotent, and recorded once all its batches are done.

use sqlx::{Connection, Row, SqliteConnection};

use crate::store::StoreError;

/// One migration: SQL, or work done in Rust.
pub(super) enum Step {
    /// Statements run in one transaction.
    Sql(&'static str),
    /// The folded copies re-computed with Unicode full case folding ([`super::refold`]).
    Refold,
    /// The precomputed sort keys of the existing resources ([`super::sort_keys`]).
    SortKeys,
}

/// The migrations, in order. Never edit a released one: add another.
pub(super) const MIGRATIONS: &[(i64, Step)] = &[
    (1, Step::Sql(V1)),
    (2, Step::Sql(V2)),
    (3, Step::Refold),
    (4, Step::Sql(V4)),
    (5, Step::Sql(V5)),
    (6, Step::Sql(V6)),
    (7, Step::Sql(V7)),
    (8, Step::SortKeys),
];

const V1: &str = r#"
CREATE TABLE resources (
    ord             INTEGER PRIMARY KEY,
    tenant          TEXT NOT NULL,
    id              TEXT NOT NULL,
    rt              TEXT NOT NULL,
    version         INTEGER NOT NULL,
    created         TEXT NOT NULL,
    created_key     TEXT NOT NULL,
    modified        TEXT NOT NULL,
    modified_key    TEXT NOT NULL,
    doc             TEXT NOT NULL,
    fdoc            TEXT NOT NULL,
    ddoc            TEXT,
    user_name_cf    TEXT,
    external_id     TEXT,
    display_name_cf TEXT,
    display         TEXT
);
CREATE UNIQUE INDEX resources_id ON resources (tenant, id);
CREATE INDEX resources_type ON resources (tenant, rt, ord);
CREATE INDEX resources_user_name ON resources (tenant, rt, user_name_cf);
CREATE INDEX resources_external_id ON resources (tenant, rt, external_id);
CREATE INDEX resources_display_name ON resources (tenant, rt, display_name_cf);

CREATE TABLE unique_keys (
    tenant    TEXT NOT NULL,
    rt        TEXT NOT NULL,
    attribute TEXT NOT NULL,
    value     TEXT NOT NULL,
    id        TEXT NOT NULL,
    PRIMARY KEY (tenant, rt, attribute, value)
) WITHOUT ROWID;
CREATE INDEX unique_keys_owner ON unique_keys (tenant, id);

CREATE TABLE members (
    tenant    TEXT NOT NULL,
    group_id  TEXT NOT NULL,
    member_id TEXT NOT NULL,
    member_cf TEXT NOT NULL,
    PRIMARY KEY (tenant, group_id, member_id)
) WITHOUT ROWID;
CREATE INDEX members_reverse ON members (tenant, member_id, group_id);

CREATE TABLE changes (
    tenant  TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    rt      TEXT NOT NULL,
    id      TEXT NOT NULL,
    kind    TEXT NOT NULL,
    version INTEGER NOT NULL,
    at      TEXT NOT NULL,
    PRIMARY KEY (tenant, seq)
) WITHOUT ROWID;

CREATE TABLE tenants (
    id      TEXT PRIMARY KEY,
    body    TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE tokens (
    id        TEXT PRIMARY KEY,
    tenant    TEXT NOT NULL,
    hash      BLOB NOT NULL UNIQUE,
    label     TEXT NOT NULL,
    created   TEXT NOT NULL,
    expires   TEXT,
    revoked   INTEGER NOT NULL,
    last_used TEXT
);
CREATE INDEX tokens_tenant ON tokens (tenant, created);
"#;

/// The provisioning log ([`crate::store::ProvisioningLog`]): events per tenant by position
/// (1, 2, ... per tenant), with the columns its filters read, and one row per tenant with
/// the last position, the prune horizon and the health counters, updated on append.
const V4: &str = r#"
CREATE TABLE provisioning_log (
    tenant        TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    time          TEXT NOT NULL,
    outcome       TEXT NOT NULL,
    resource_type TEXT,
    search        TEXT NOT NULL,
    event         TEXT NOT NULL,
    PRIMARY KEY (tenant, seq)
) WITHOUT ROWID;
CREATE TABLE provisioning_log_tenants (
    tenant         TEXT PRIMARY KEY,
    last_seq       INTEGER NOT NULL,
    pruned_through INTEGER NOT NULL,
    health         TEXT NOT NULL
) WITHOUT ROWID;
"#;

/// The change feed's prune horizon per tenant: every change up to `pruned_through` was
/// removed. A tenant without a row has never been pruned.
const V2: &str = r#"
CREATE TABLE change_horizons (
    tenant         TEXT PRIMARY KEY,
    pruned_through INTEGER NOT NULL
) WITHOUT ROWID;
"#;

/// The membership delta of a change record ([`crate::feed::MemberChanges`], as JSON text;
/// NULL when the write did not touch a membership) and its actor (the token id; NULL when
/// unknown). Existing rows keep NULL.
const V5: &str = r#"
ALTER TABLE changes ADD COLUMN members TEXT;
ALTER TABLE changes ADD COLUMN actor TEXT;
"#;

/// Keyset paging (RFC 9865 cursors): each sort a cursor walks by index has an index ending
/// in `id`, so that `WHERE (key, id) > (?, ?) ORDER BY key, id LIMIT n` is a range walk at
/// any depth. The value indexes replace those of version 1, which they extend (every lookup
/// those served, these serve). Idempotent.
const V6: &str = r#"
CREATE INDEX IF NOT EXISTS resources_type_id ON resources (tenant, rt, id);
CREATE INDEX IF NOT EXISTS resources_user_name_id ON resources (tenant, rt, user_name_cf, id);
CREATE INDEX IF NOT EXISTS resources_external_id_id ON resources (tenant, rt, external_id, id);
CREATE INDEX IF NOT EXISTS resources_display_name_id ON resources (tenant, rt, display_name_cf, id);
CREATE INDEX IF NOT EXISTS resources_created_id ON resources (tenant, rt, created_key, id);
CREATE INDEX IF NOT EXISTS resources_modified_id ON resources (tenant, rt, modified_key, id);
DROP INDEX IF EXISTS resources_user_name;
DROP INDEX IF EXISTS resources_external_id;
DROP INDEX IF EXISTS resources_display_name;
"#;

/// The precomputed sort keys ([`crate::store::sql::sort_keys`]): one row per sortable path present
/// in a resource, walked in `(tenant, rt, path, key, ord)` order by a sorted list; `ord` is the
/// resource's row. `sort_key_sets` records, per `(tenant, rt)`, the schema fingerprint all of
/// its keys were computed with (no row: the keys are incomplete and not used). `type_counts`
/// holds the number of resources per `(tenant, rt)`, for the `totalResults` of an unfiltered
/// (or always true) list without counting rows.
const V7: &str = r#"
CREATE TABLE IF NOT EXISTS sort_keys (
    tenant TEXT NOT NULL,
    rt     TEXT NOT NULL,
    path   TEXT NOT NULL,
    key    TEXT NOT NULL,
    ord    INTEGER NOT NULL,
    PRIMARY KEY (tenant, rt, path, key, ord)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sort_keys_ord ON sort_keys (ord, path);
CREATE TABLE IF NOT EXISTS type_counts (
    tenant TEXT NOT NULL,
    rt     TEXT NOT NULL,
    n      INTEGER NOT NULL,
    PRIMARY KEY (tenant, rt)
);
INSERT OR REPLACE INTO type_counts (tenant, rt, n)
    SELECT tenant, rt, count(*) FROM resources GROUP BY tenant, rt;
CREATE TABLE IF NOT EXISTS sort_key_sets (
    tenant      TEXT NOT NULL,
    rt          TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    PRIMARY KEY (tenant, rt)
);
"#;

/// Applies the migrations not yet applied; returns the schema version.
pub(super) async fn migrate(conn: &mut SqliteConnection) -> Result<i64, StoreError> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS scimkit_migrations (version INTEGER PRIMARY KEY, applied TEXT NOT NULL)",
    )
    .execute(&mut *conn)
    .await
    .map_err(StoreError::backend)?;
    let mut current = 0;
    for (version, step) in MIGRATIONS {
        match step {
            Step::Sql(sql) => apply_sql(conn, *version, sql).await?,
            Step::Refold => {
                if !applied(&mut *conn, *version).await? {
                    crate::store::sql::refold::refold(conn).await?;
                    record(&mut *conn, *version).await?;
                }
            }
            Step::SortKeys => {
                if !applied(&mut *conn, *version).await? {
                    crate::store::sql::sort_keys::backfill(conn).await?;
                    record(&mut *conn, *version).await?;
                }
            }
        }
        current = *version;
    }
    let row = sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM scimkit_migrations")
        .fetch_one(&mut *conn)
        .await
        .map_err(StoreError::backend)?;
    let recorded: i64 = row.try_get("v").map_err(StoreError::backend)?;
    Ok(recorded.max(current))
}

async fn applied(conn: &mut SqliteConnection, version: i64) -> Result<bool, StoreError> {
    Ok(
        sqlx::query("SELECT 1 FROM scimkit_migrations WHERE version = ?1")
            .bind(version)
            .fetch_optional(&mut *conn)
            .await
            .map_err(StoreError::backend)?
            .is_some(),
    )
}

/// Records `version` as applied (once: a concurrent opener may have recorded it first).
async fn record(conn: &mut SqliteConnection, version: i64) -> Result<(), StoreError> {
    sqlx::query("INSERT OR IGNORE INTO scimkit_migrations (version, applied) VALUES (?1, ?2)")
        .bind(version)
        .bind(chrono::Utc::now().to_rfc3339())
        .execute(&mut *conn)
        .await
        .map_err(StoreError::backend)?;
    Ok(())
}

/// Applies one SQL migration and records it, in one `BEGIN IMMEDIATE` transaction.
async fn apply_sql(
    conn: &mut SqliteConnection,
    version: i64,
    sql: &'static str,
) -> Result<(), StoreError> {
    let mut tx = conn
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(StoreError::backend)?;
    if !applied(&mut tx, version).await? {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await
            .map_err(StoreError::backend)?;
        record(&mut tx, version).await?;
    }
    tx.commit().await.map_err(StoreError::backend)
}
