//! The precomputed sort keys ([`crate::store::sort_keys`]) in SQLite: written in the same
//! transaction as every write of a resource, rebuilt in batches for a `(tenant, rt)` whose
//! keys are missing or were computed with another schema, and used by a sorted list only
//! while `sort_key_sets` says they are complete for the schema the query uses.

use serde_json::Value;
use sqlx::{Connection, Row, SqliteConnection};

use crate::schema::{ResourceDef, SchemaRegistry};
use crate::store::sort_keys::{fingerprint, keys_of, sortable_paths};
use crate::store::StoreError;

/// Resources re-keyed per transaction when rebuilding.
const BATCH: i64 = 500;

fn be(e: sqlx::Error) -> StoreError {
    StoreError::backend(e)
}

/// Replaces the keys of resource `id` (already written, with document `doc`), and keeps the
/// `(tenant, rt)` marker honest: a marker for another schema is dropped (the keys are now
/// mixed); a first resource of its `(tenant, rt)` starts a complete set.
pub(super) async fn write(
    conn: &mut SqliteConnection,
    tenant: &str,
    rt: &ResourceDef,
    id: &str,
    doc: &Value,
) -> Result<(), StoreError> {
    let row = sqlx::query("SELECT ord FROM resources WHERE tenant = ?1 AND id = ?2")
        .bind(tenant)
        .bind(id)
        .fetch_one(&mut *conn)
        .await
        .map_err(be)?;
    let ord: i64 = row.try_get("ord").map_err(be)?;
    let fp = fingerprint(rt);
    match marker(conn, tenant, rt.name()).await? {
        Some(f) if f == fp => {}
        Some(_) => {
            unmark(conn, tenant, rt.name()).await?;
        }
        None => {
            let other = sqlx::query(
                "SELECT 1 FROM resources WHERE tenant = ?1 AND rt = ?2 AND ord <> ?3 LIMIT 1",
            )
            .bind(tenant)
            .bind(rt.name())
            .bind(ord)
            .fetch_optional(&mut *conn)
            .await
            .map_err(be)?;
            if other.is_none() {
                mark(conn, tenant, rt.name(), &fp).await?;
            }
        }
    }
    put(conn, tenant, rt, ord, doc).await
}

/// Replaces the keys of the resource at row `ord`.
async fn put(
    conn: &mut SqliteConnection,
    tenant: &str,
    rt: &ResourceDef,
    ord: i64,
    doc: &Value,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM sort_keys WHERE ord = ?1")
        .bind(ord)
        .execute(&mut *conn)
        .await
        .map_err(be)?;
    let paths = sortable_paths(rt);
    for (path, key) in keys_of(&paths, rt, doc) {
        sqlx::query(
            "INSERT INTO sort_keys (tenant, rt, path, key, ord) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(tenant)
        .bind(rt.name())
        .bind(&path)
        .bind(&key)
        .bind(ord)
        .execute(&mut *conn)
        .await
        .map_err(be)?;
    }
    Ok(())
}

/// Adds `delta` to the resource count of `(tenant, rt)`.
pub(super) async fn count(
    conn: &mut SqliteConnection,
    tenant: &str,
    rt: &str,
    delta: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO type_counts (tenant, rt, n) VALUES (?1, ?2, ?3) \
         ON CONFLICT (tenant, rt) DO UPDATE SET n = n + ?3",
    )
    .bind(tenant)
    .bind(rt)
    .bind(delta)
    .execute(&mut *conn)
    .await
    .map_err(be)?;
    Ok(())
}

/// Removes the keys of resource `id` (before its row is deleted).
pub(super) async fn remove(
    conn: &mut SqliteConnection,
    tenant: &str,
    id: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "DELETE FROM sort_keys WHERE ord = (SELECT ord FROM resources WHERE tenant = ?1 AND id = ?2)",
    )
    .bind(tenant)
    .bind(id)
    .execute(&mut *conn)
    .await
    .map_err(be)?;
    Ok(())
}

/// True when the keys of `(tenant, rt)` are complete for `rt`'s schema.
pub(super) async fn usable(
    conn: &mut SqliteConnection,
    tenant: &str,
    rt: &ResourceDef,
) -> Result<bool, StoreError> {
    Ok(marker(conn, tenant, rt.name())
        .await?
        .is_some_and(|f| f == fingerprint(rt)))
}

/// Recomputes every key of `(tenant, rt)` for `rt`'s schema, [`BATCH`] resources per
/// transaction, then marks the set complete. Idempotent; writes running meanwhile write
/// their own keys with the same schema.
pub(super) async fn rebuild(
    conn: &mut SqliteConnection,
    tenant: &str,
    rt: &ResourceDef,
) -> Result<(), StoreError> {
    let fp = fingerprint(rt);
    let mut after = i64::MIN;
    loop {
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(be)?;
        if after == i64::MIN {
            unmark(&mut tx, tenant, rt.name()).await?;
        }
        let rows = sqlx::query(
            "SELECT ord, doc FROM resources WHERE tenant = ?1 AND rt = ?2 AND ord > ?3 ORDER BY ord LIMIT ?4",
        )
        .bind(tenant)
        .bind(rt.name())
        .bind(after)
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await
        .map_err(be)?;
        let Some(last) = rows.last() else {
            mark(&mut tx, tenant, rt.name(), &fp).await?;
            tx.commit().await.map_err(be)?;
            return Ok(());
        };
        after = last.try_get("ord").map_err(be)?;
        for row in &rows {
            let ord: i64 = row.try_get("ord").map_err(be)?;
            let doc: String = row.try_get("doc").map_err(be)?;
            let doc: Value = serde_json::from_str(&doc).map_err(StoreError::backend)?;
            put(&mut tx, tenant, rt, ord, &doc).await?;
        }
        tx.commit().await.map_err(be)?;
    }
}

/// Migration 8: keys for the resources stored before it, computed with the built-in schemas
/// (a `(tenant, rt)` whose registry differs keeps sorting as before until
/// [`super::SqliteStore::rebuild_sort_keys`] runs for it, or it is emptied and refilled).
pub(super) async fn backfill(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    let pairs = sqlx::query("SELECT DISTINCT tenant, rt FROM resources")
        .fetch_all(&mut *conn)
        .await
        .map_err(be)?;
    let registry = SchemaRegistry::default();
    for p in &pairs {
        let tenant: String = p.try_get("tenant").map_err(be)?;
        let rt: String = p.try_get("rt").map_err(be)?;
        if let Some(def) = registry.resource_type(&rt) {
            rebuild(conn, &tenant, def).await?;
        }
    }
    Ok(())
}

/// The schema fingerprint the keys of `(tenant, rt)` are complete for, if any.
async fn marker(
    conn: &mut SqliteConnection,
    tenant: &str,
    rt: &str,
) -> Result<Option<String>, StoreError> {
    sqlx::query_scalar("SELECT fingerprint FROM sort_key_sets WHERE tenant = ?1 AND rt = ?2")
        .bind(tenant)
        .bind(rt)
        .fetch_optional(&mut *conn)
        .await
        .map_err(be)
}

/// Marks the keys of `(tenant, rt)` complete for the schema with fingerprint `fp`.
async fn mark(
    conn: &mut SqliteConnection,
    tenant: &str,
    rt: &str,
    fp: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT OR REPLACE INTO sort_key_sets (tenant, rt, fingerprint) VALUES (?1, ?2, ?3)",
    )
    .bind(tenant)
    .bind(rt)
    .bind(fp)
    .execute(&mut *conn)
    .await
    .map_err(be)?;
    Ok(())
}

/// Drops the completeness mark of `(tenant, rt)`: queries fall back to the computed sort.
async fn unmark(conn: &mut SqliteConnection, tenant: &str, rt: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM sort_key_sets WHERE tenant = ?1 AND rt = ?2")
        .bind(tenant)
        .bind(rt)
        .execute(&mut *conn)
        .await
        .map_err(be)?;
    Ok(())
}
