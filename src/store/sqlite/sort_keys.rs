//! The precomputed sort keys ([`crate::store::sql::sort_keys`]) in SQLite: written in the same
//! transaction as every write of a resource, rebuilt in batches for a `(tenant, rt)` whose
//! keys are missing or were computed with another schema, and used by a sorted list only
//! while `sort_key_sets` says they are complete for the schema the query uses. The
//! statements; the logic is shared with the PostgreSQL store.

use async_trait::async_trait;
use serde_json::Value;
use sqlx::{Row, SqliteConnection};

use crate::schema::ResourceDef;
use crate::store::sql::sort_keys::{
    self as shared, keys_of, sortable_paths, SortKeyStatements, Stored,
};
use crate::store::StoreError;

fn be(e: sqlx::Error) -> StoreError {
    StoreError::backend(e)
}

/// Replaces the keys of resource `id` (already written, with document `doc`), keeping the
/// `(tenant, rt)` marker honest ([`shared::keep_marker`]).
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
    shared::keep_marker(conn, tenant, rt, &ord).await?;
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
    shared::usable(conn, tenant, rt).await
}

#[async_trait]
impl SortKeyStatements for SqliteConnection {
    /// The row position of the resource written.
    type Written = i64;

    /// Resources re-keyed per transaction when rebuilding.
    const BATCH: i64 = 500;

    async fn marker(&mut self, tenant: &str, rt: &str) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT fingerprint FROM sort_key_sets WHERE tenant = ?1 AND rt = ?2")
            .bind(tenant)
            .bind(rt)
            .fetch_optional(&mut *self)
            .await
            .map_err(be)
    }

    async fn mark(&mut self, tenant: &str, rt: &str, fp: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT OR REPLACE INTO sort_key_sets (tenant, rt, fingerprint) VALUES (?1, ?2, ?3)",
        )
        .bind(tenant)
        .bind(rt)
        .bind(fp)
        .execute(&mut *self)
        .await
        .map_err(be)?;
        Ok(())
    }

    async fn unmark(&mut self, tenant: &str, rt: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sort_key_sets WHERE tenant = ?1 AND rt = ?2")
            .bind(tenant)
            .bind(rt)
            .execute(&mut *self)
            .await
            .map_err(be)?;
        Ok(())
    }

    async fn has_others(&mut self, tenant: &str, rt: &str, ord: &i64) -> Result<bool, StoreError> {
        let other = sqlx::query(
            "SELECT 1 FROM resources WHERE tenant = ?1 AND rt = ?2 AND ord <> ?3 LIMIT 1",
        )
        .bind(tenant)
        .bind(rt)
        .bind(*ord)
        .fetch_optional(&mut *self)
        .await
        .map_err(be)?;
        Ok(other.is_some())
    }

    async fn batch(
        &mut self,
        tenant: &str,
        rt: &str,
        after: i64,
        n: i64,
    ) -> Result<Vec<Stored>, StoreError> {
        let rows = sqlx::query(
            "SELECT ord, id, doc FROM resources WHERE tenant = ?1 AND rt = ?2 AND ord > ?3 \
             ORDER BY ord LIMIT ?4",
        )
        .bind(tenant)
        .bind(rt)
        .bind(after)
        .bind(n)
        .fetch_all(&mut *self)
        .await
        .map_err(be)?;
        rows.iter().map(Stored::from_row).collect()
    }

    async fn rekey(
        &mut self,
        tenant: &str,
        rt: &ResourceDef,
        resources: &[Stored],
    ) -> Result<(), StoreError> {
        for r in resources {
            put(self, tenant, rt, r.ord, &r.doc).await?;
        }
        Ok(())
    }

    async fn resource_types(&mut self) -> Result<Vec<(String, String)>, StoreError> {
        sqlx::query_as("SELECT DISTINCT tenant, rt FROM resources")
            .fetch_all(&mut *self)
            .await
            .map_err(be)
    }
}
