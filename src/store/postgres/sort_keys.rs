//! The precomputed sort keys ([`crate::store::sql::sort_keys`]) in PostgreSQL, and the per-type
//! resource counts that answer `totalResults` of an unfiltered (or always true) list.
//!
//! Keys are `bytea`: the first [`PREFIX`] bytes of the encoded key are indexed (`key`), the
//! remainder (`rest`, empty for most keys) is not, so that no index row exceeds PostgreSQL's
//! limit. Cutting at a fixed byte count keeps the order exact: ordering by `(key, rest)` is
//! ordering by the whole key, since two keys of at least [`PREFIX`] bytes have prefixes of
//! equal length.
//!
//! Both are written in the transaction of every write; the counts row of a `(tenant, type)`
//! is updated after the tenant's change-feed row is locked (every write of a tenant already
//! serialises there), so it adds no contention.

use async_trait::async_trait;
use serde_json::Value;
use sqlx::PgConnection;

use super::db_err;
use crate::schema::ResourceDef;
use crate::store::sql::sort_keys::{
    self as shared, keys_of, sortable_paths, SortKeyStatements, Stored,
};
use crate::store::StoreError;

/// Indexed bytes of a key.
pub(super) const PREFIX: usize = 240;

/// Replaces the keys of the resources `ids` (already written, documents `docs`) and keeps
/// the `(tenant, type)` marker honest (see the SQLite store's `sort_keys::write`).
pub(super) async fn write(
    conn: &mut PgConnection,
    tenant: &str,
    rt: &ResourceDef,
    ids: &[String],
    docs: &[&Value],
) -> Result<(), StoreError> {
    shared::keep_marker(conn, tenant, rt, ids).await?;
    put(conn, tenant, rt, ids, docs).await
}

/// Replaces the keys of the resources `ids`.
async fn put(
    conn: &mut PgConnection,
    tenant: &str,
    rt: &ResourceDef,
    ids: &[String],
    docs: &[&Value],
) -> Result<(), StoreError> {
    sqlx::query(
        "DELETE FROM scimkit_sort_keys WHERE ord IN \
         (SELECT ord FROM scimkit_resources WHERE tenant = $1 AND id = ANY($2))",
    )
    .bind(tenant)
    .bind(ids)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    let paths = sortable_paths(rt);
    let (mut kid, mut kpath, mut kkey, mut krest) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (id, doc) in ids.iter().zip(docs) {
        for (path, key) in keys_of(&paths, rt, doc) {
            let bytes = key.into_bytes();
            let (head, tail) = bytes.split_at(bytes.len().min(PREFIX));
            kid.push(id.clone());
            kpath.push(path);
            kkey.push(head.to_vec());
            krest.push(tail.to_vec());
        }
    }
    if kid.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO scimkit_sort_keys (tenant, resource_type, path, key, rest, ord) \
         SELECT $1, $2, u.p, u.k, u.x, r.ord \
         FROM unnest($3::text[], $4::text[], $5::bytea[], $6::bytea[]) AS u(id, p, k, x) \
         JOIN scimkit_resources r ON r.tenant = $1 AND r.id = u.id",
    )
    .bind(tenant)
    .bind(rt.name())
    .bind(&kid)
    .bind(&kpath)
    .bind(&kkey)
    .bind(&krest)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// Removes the keys of resource `id` (before its row is deleted).
pub(super) async fn remove(
    conn: &mut PgConnection,
    tenant: &str,
    id: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "DELETE FROM scimkit_sort_keys WHERE ord = \
         (SELECT ord FROM scimkit_resources WHERE tenant = $1 AND id = $2)",
    )
    .bind(tenant)
    .bind(id)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// Adds `delta` to the resource count of `(tenant, type)`.
pub(super) async fn count(
    conn: &mut PgConnection,
    tenant: &str,
    rt: &str,
    delta: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO scimkit_type_counts (tenant, resource_type, n) VALUES ($1, $2, $3) \
         ON CONFLICT (tenant, resource_type) DO UPDATE SET n = scimkit_type_counts.n + $3",
    )
    .bind(tenant)
    .bind(rt)
    .bind(delta)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// True when the keys of `(tenant, rt)` are complete for `rt`'s schema.
pub(super) async fn usable(
    conn: &mut PgConnection,
    tenant: &str,
    rt: &ResourceDef,
) -> Result<bool, StoreError> {
    shared::usable(conn, tenant, rt).await
}

#[async_trait]
impl SortKeyStatements for PgConnection {
    /// The ids of the resources written.
    type Written = [String];

    /// Resources re-keyed per transaction when rebuilding.
    const BATCH: i64 = 1000;

    async fn marker(&mut self, tenant: &str, rt: &str) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT fingerprint FROM scimkit_sort_key_sets WHERE tenant = $1 AND resource_type = $2",
        )
        .bind(tenant)
        .bind(rt)
        .fetch_optional(&mut *self)
        .await
        .map_err(db_err)
    }

    async fn mark(&mut self, tenant: &str, rt: &str, fp: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO scimkit_sort_key_sets (tenant, resource_type, fingerprint) \
             VALUES ($1, $2, $3) ON CONFLICT (tenant, resource_type) \
             DO UPDATE SET fingerprint = EXCLUDED.fingerprint",
        )
        .bind(tenant)
        .bind(rt)
        .bind(fp)
        .execute(&mut *self)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn unmark(&mut self, tenant: &str, rt: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM scimkit_sort_key_sets WHERE tenant = $1 AND resource_type = $2")
            .bind(tenant)
            .bind(rt)
            .execute(&mut *self)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn has_others(
        &mut self,
        tenant: &str,
        rt: &str,
        ids: &[String],
    ) -> Result<bool, StoreError> {
        let other = sqlx::query(
            "SELECT 1 FROM scimkit_resources WHERE tenant = $1 AND resource_type = $2 \
             AND NOT (id = ANY($3)) LIMIT 1",
        )
        .bind(tenant)
        .bind(rt)
        .bind(ids)
        .fetch_optional(&mut *self)
        .await
        .map_err(db_err)?;
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
            "SELECT ord, id, doc::text AS doc FROM scimkit_resources \
             WHERE tenant = $1 AND resource_type = $2 AND ord > $3 ORDER BY ord LIMIT $4",
        )
        .bind(tenant)
        .bind(rt)
        .bind(after)
        .bind(n)
        .fetch_all(&mut *self)
        .await
        .map_err(db_err)?;
        rows.iter().map(Stored::from_row).collect()
    }

    async fn rekey(
        &mut self,
        tenant: &str,
        rt: &ResourceDef,
        resources: &[Stored],
    ) -> Result<(), StoreError> {
        let ids: Vec<String> = resources.iter().map(|r| r.id.clone()).collect();
        let docs: Vec<&Value> = resources.iter().map(|r| &r.doc).collect();
        put(self, tenant, rt, &ids, &docs).await
    }

    async fn resource_types(&mut self) -> Result<Vec<(String, String)>, StoreError> {
        sqlx::query_as("SELECT DISTINCT tenant, resource_type FROM scimkit_resources")
            .fetch_all(&mut *self)
            .await
            .map_err(db_err)
    }
}
