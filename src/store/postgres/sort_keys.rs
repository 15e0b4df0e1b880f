//! The precomputed sort keys ([`crate::store::sort_keys`]) in PostgreSQL, and the per-type
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

use serde_json::Value;
use sqlx::{Connection, PgConnection, Row};

use super::db_err;
use crate::schema::{ResourceDef, SchemaRegistry};
use crate::store::sort_keys::{fingerprint, keys_of, sortable_paths};
use crate::store::StoreError;

/// Indexed bytes of a key.
pub(super) const PREFIX: usize = 240;

/// Resources re-keyed per transaction when rebuilding.
const BATCH: i64 = 1000;

/// Replaces the keys of the resources `ids` (already written, documents `docs`) and keeps
/// the `(tenant, type)` marker honest (see the SQLite store's `sort_keys::write`).
pub(super) async fn write(
    conn: &mut PgConnection,
    tenant: &str,
    rt: &ResourceDef,
    ids: &[String],
    docs: &[&Value],
) -> Result<(), StoreError> {
    let fp = fingerprint(rt);
    match marker(conn, tenant, rt.name()).await? {
        Some(f) if f == fp => {}
        Some(_) => {
            unmark(conn, tenant, rt.name()).await?;
        }
        None => {
            let other = sqlx::query(
                "SELECT 1 FROM scimkit_resources WHERE tenant = $1 AND resource_type = $2 \
                 AND NOT (id = ANY($3)) LIMIT 1",
            )
            .bind(tenant)
            .bind(rt.name())
            .bind(ids)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_err)?;
            if other.is_none() {
                mark(conn, tenant, rt.name(), &fp).await?;
            }
        }
    }
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
    Ok(marker(conn, tenant, rt.name())
        .await?
        .is_some_and(|f| f == fingerprint(rt)))
}

/// Recomputes every key of `(tenant, rt)` for `rt`'s schema, [`BATCH`] resources per
/// transaction, then marks the set complete.
pub(super) async fn rebuild(
    conn: &mut PgConnection,
    tenant: &str,
    rt: &ResourceDef,
) -> Result<(), StoreError> {
    let fp = fingerprint(rt);
    let mut after = i64::MIN;
    loop {
        let mut tx = conn.begin().await.map_err(db_err)?;
        if after == i64::MIN {
            unmark(&mut tx, tenant, rt.name()).await?;
        }
        let rows = sqlx::query(
            "SELECT ord, id, doc::text AS doc FROM scimkit_resources \
             WHERE tenant = $1 AND resource_type = $2 AND ord > $3 ORDER BY ord LIMIT $4",
        )
        .bind(tenant)
        .bind(rt.name())
        .bind(after)
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        let Some(last) = rows.last() else {
            mark(&mut tx, tenant, rt.name(), &fp).await?;
            tx.commit().await.map_err(db_err)?;
            return Ok(());
        };
        after = last.try_get("ord").map_err(db_err)?;
        let mut ids = Vec::with_capacity(rows.len());
        let mut docs = Vec::with_capacity(rows.len());
        for row in &rows {
            ids.push(row.try_get::<String, _>("id").map_err(db_err)?);
            let doc: String = row.try_get("doc").map_err(db_err)?;
            docs.push(serde_json::from_str::<Value>(&doc).map_err(StoreError::backend)?);
        }
        let refs: Vec<&Value> = docs.iter().collect();
        put(&mut tx, tenant, rt, &ids, &refs).await?;
        tx.commit().await.map_err(db_err)?;
    }
}

/// Migration 10: keys for the resources stored before it, computed with the built-in
/// schemas (another registry's types keep sorting as before until
/// [`super::PostgresStore::rebuild_sort_keys`] runs for them).
pub(super) async fn backfill(conn: &mut PgConnection) -> Result<(), StoreError> {
    let pairs = sqlx::query("SELECT DISTINCT tenant, resource_type FROM scimkit_resources")
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
    let registry = SchemaRegistry::default();
    for p in &pairs {
        let tenant: String = p.try_get(0).map_err(db_err)?;
        let rt: String = p.try_get(1).map_err(db_err)?;
        if let Some(def) = registry.resource_type(&rt) {
            rebuild(conn, &tenant, def).await?;
        }
    }
    Ok(())
}

/// The schema fingerprint the keys of `(tenant, rt)` are complete for, if any.
async fn marker(
    conn: &mut PgConnection,
    tenant: &str,
    rt: &str,
) -> Result<Option<String>, StoreError> {
    sqlx::query_scalar(
        "SELECT fingerprint FROM scimkit_sort_key_sets WHERE tenant = $1 AND resource_type = $2",
    )
    .bind(tenant)
    .bind(rt)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_err)
}

/// Marks the keys of `(tenant, rt)` complete for the schema with fingerprint `fp`.
async fn mark(conn: &mut PgConnection, tenant: &str, rt: &str, fp: &str) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO scimkit_sort_key_sets (tenant, resource_type, fingerprint) \
         VALUES ($1, $2, $3) ON CONFLICT (tenant, resource_type) \
         DO UPDATE SET fingerprint = EXCLUDED.fingerprint",
    )
    .bind(tenant)
    .bind(rt)
    .bind(fp)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// Drops the completeness mark of `(tenant, rt)`: queries fall back to the computed sort.
async fn unmark(conn: &mut PgConnection, tenant: &str, rt: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM scimkit_sort_key_sets WHERE tenant = $1 AND resource_type = $2")
        .bind(tenant)
        .bind(rt)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    Ok(())
}
