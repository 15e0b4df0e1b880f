//! The database schema, as embedded, versioned migrations applied on open.
//!
//! Each migration runs in its own `BEGIN IMMEDIATE` transaction together with the row that
//! records it in `scimkit_migrations`, so a migration is applied once, completely or not at
//! all, even when several processes open the same file at once.

use sqlx::{Connection, Row, SqliteConnection};

use crate::store::StoreError;

/// The migrations, in order. Never edit a released one: add another.
pub(super) const MIGRATIONS: &[(i64, &str)] = &[(1, V1), (2, V2)];

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

/// The change feed's prune horizon per tenant: every change up to `pruned_through` was
/// removed. A tenant without a row has never been pruned.
const V2: &str = r#"
CREATE TABLE change_horizons (
    tenant         TEXT PRIMARY KEY,
    pruned_through INTEGER NOT NULL
) WITHOUT ROWID;
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
    for (version, sql) in MIGRATIONS {
        let mut tx = conn
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(StoreError::backend)?;
        let done = sqlx::query("SELECT 1 FROM scimkit_migrations WHERE version = ?1")
            .bind(version)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::backend)?
            .is_some();
        if !done {
            sqlx::raw_sql(sqlx::AssertSqlSafe(*sql))
                .execute(&mut *tx)
                .await
                .map_err(StoreError::backend)?;
            sqlx::query("INSERT INTO scimkit_migrations (version, applied) VALUES (?1, ?2)")
                .bind(version)
                .bind(chrono::Utc::now().to_rfc3339())
                .execute(&mut *tx)
                .await
                .map_err(StoreError::backend)?;
        }
        tx.commit().await.map_err(StoreError::backend)?;
        current = *version;
    }
    let row = sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM scimkit_migrations")
        .fetch_one(&mut *conn)
        .await
        .map_err(StoreError::backend)?;
    let recorded: i64 = row.try_get("v").map_err(StoreError::backend)?;
    Ok(recorded.max(current))
}
