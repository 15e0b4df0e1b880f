//! Tenants and bearer-token records in the SQLite file ([`TenantStore`] for [`SqliteStore`]).
//!
//! A tenant is kept as its JSON form (id in its own primary-key column); token records as
//! columns, with a unique index on the hash that every authenticated request looks up.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use super::{parse_ts, ts, SqliteStore};
use crate::auth::{TenantStore, TokenId, TokenRecord};
use crate::error::{ScimError, ScimResult};
use crate::settings::Settings;
use crate::store::sql::tenants::{
    cached_tenant, cached_token, is_unique_violation, tenant_inserted, TokenColumns,
};
use crate::tenant::{Tenant, TenantId};

fn internal(e: sqlx::Error) -> ScimError {
    ScimError::internal(e)
}

fn from_store(e: crate::store::StoreError) -> ScimError {
    ScimError::from(e)
}

fn tenant_from_row(row: &SqliteRow) -> ScimResult<Tenant> {
    let body: String = row.try_get("body").map_err(internal)?;
    serde_json::from_str(&body).map_err(ScimError::internal)
}

fn token_from_row(row: &SqliteRow) -> ScimResult<TokenRecord> {
    let time = |col: &str| -> ScimResult<Option<DateTime<Utc>>> {
        row.try_get::<Option<String>, _>(col)
            .map_err(internal)?
            .map(|s| parse_ts(&s).map_err(from_store))
            .transpose()
    };
    TokenColumns {
        id: row.try_get("id").map_err(internal)?,
        tenant: row.try_get("tenant").map_err(internal)?,
        label: row.try_get("label").map_err(internal)?,
        hash: row.try_get("hash").map_err(internal)?,
        created: parse_ts(&row.try_get::<String, _>("created").map_err(internal)?)
            .map_err(from_store)?,
        expires: time("expires")?,
        revoked: row.try_get::<i64, _>("revoked").map_err(internal)? != 0,
        last_used: time("last_used")?,
    }
    .into_record()
}

const TOKEN_COLUMNS: &str = "id, tenant, hash, label, created, expires, revoked, last_used";

async fn load_tenant(conn: &mut SqliteConnection, id: &TenantId) -> ScimResult<Option<Tenant>> {
    sqlx::query("SELECT body FROM tenants WHERE id = ?1")
        .bind(id.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(internal)?
        .map(|r| tenant_from_row(&r))
        .transpose()
}

impl SqliteStore {
    /// Reads a tenant, changes it with `f` and writes it back, in one transaction.
    async fn modify_tenant(
        &self,
        id: &TenantId,
        f: impl FnOnce(&mut Tenant) + Send,
    ) -> ScimResult<Tenant> {
        let mut tx = self.begin().await.map_err(from_store)?;
        let mut t = load_tenant(&mut tx, id)
            .await?
            .ok_or_else(|| ScimError::NotFound(format!("tenant '{id}' does not exist")))?;
        f(&mut t);
        let body = serde_json::to_string(&t).map_err(ScimError::internal)?;
        sqlx::query("UPDATE tenants SET body = ?2 WHERE id = ?1")
            .bind(id.as_str())
            .bind(body)
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        self.tenant_cache.forget_tenant(id);
        Ok(t)
    }
}

#[async_trait]
impl TenantStore for SqliteStore {
    async fn create_tenant(&self, tenant: Tenant) -> ScimResult<()> {
        let body = serde_json::to_string(&tenant).map_err(ScimError::internal)?;
        let r = sqlx::query("INSERT INTO tenants (id, body) VALUES (?1, ?2)")
            .bind(tenant.id.as_str())
            .bind(body)
            .execute(&self.writer)
            .await;
        tenant_inserted(r, &tenant.id)
    }

    async fn get_tenant(&self, id: &TenantId) -> ScimResult<Option<Tenant>> {
        let load = async {
            let mut conn = self.reader.acquire().await.map_err(internal)?;
            let tenant = load_tenant(&mut conn, id).await?;
            conn.release();
            Ok(tenant)
        };
        cached_tenant(&self.tenant_cache, id, load).await
    }

    async fn list_tenants(&self) -> ScimResult<Vec<Tenant>> {
        let mut conn = self.reader.acquire().await.map_err(internal)?;
        let rows = sqlx::query("SELECT body FROM tenants ORDER BY id")
            .fetch_all(&mut *conn)
            .await
            .map_err(internal)?;
        conn.release();
        rows.iter().map(tenant_from_row).collect()
    }

    async fn update_tenant_settings(
        &self,
        id: &TenantId,
        settings: Settings,
    ) -> ScimResult<Tenant> {
        self.modify_tenant(id, |t| t.settings = settings).await
    }

    async fn set_scim_enabled(&self, id: &TenantId, enabled: bool) -> ScimResult<Tenant> {
        self.modify_tenant(id, |t| t.scim_enabled = enabled).await
    }

    async fn set_display_name(&self, id: &TenantId, display_name: String) -> ScimResult<Tenant> {
        self.modify_tenant(id, |t| t.display_name = display_name)
            .await
    }

    async fn delete_tenant(&self, id: &TenantId) -> ScimResult<bool> {
        let mut tx = self.begin().await.map_err(from_store)?;
        let r = sqlx::query("DELETE FROM tenants WHERE id = ?1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        if r.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM tokens WHERE tenant = ?1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        self.tenant_cache.forget_tenant(id);
        Ok(true)
    }

    async fn insert_token(&self, record: TokenRecord) -> ScimResult<()> {
        let mut tx = self.begin().await.map_err(from_store)?;
        if load_tenant(&mut tx, &record.tenant).await?.is_none() {
            return Err(ScimError::NotFound(format!(
                "tenant '{}' does not exist",
                record.tenant
            )));
        }
        let r = sqlx::query(
            "INSERT INTO tokens (id, tenant, hash, label, created, expires, revoked, last_used) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .bind(record.id.to_string())
        .bind(record.tenant.as_str())
        .bind(record.hash.to_vec())
        .bind(&record.label)
        .bind(ts(&record.created))
        .bind(record.expires.as_ref().map(ts))
        .bind(i64::from(record.revoked))
        .bind(record.last_used.as_ref().map(ts))
        .execute(&mut *tx)
        .await;
        match r {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(ScimError::Conflict(
                    "a token with this id or hash already exists".into(),
                ))
            }
            Err(e) => return Err(internal(e)),
        }
        tx.commit().await.map_err(internal)?;
        Ok(())
    }

    async fn find_token_by_hash(&self, hash: &[u8; 32]) -> ScimResult<Option<TokenRecord>> {
        let load = async {
            let mut conn = self.reader.acquire().await.map_err(internal)?;
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {TOKEN_COLUMNS} FROM tokens WHERE hash = ?1"
            )))
            .bind(hash.to_vec())
            .fetch_optional(&mut *conn)
            .await
            .map_err(internal)?;
            conn.release();
            row.map(|r| token_from_row(&r)).transpose()
        };
        cached_token(&self.tenant_cache, hash, load).await
    }

    async fn get_token(&self, tenant: &TenantId, id: &TokenId) -> ScimResult<Option<TokenRecord>> {
        let mut conn = self.reader.acquire().await.map_err(internal)?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE id = ?1 AND tenant = ?2"
        )))
        .bind(id.to_string())
        .bind(tenant.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(internal)?;
        conn.release();
        row.map(|r| token_from_row(&r)).transpose()
    }

    async fn list_tokens(&self, tenant: &TenantId) -> ScimResult<Vec<TokenRecord>> {
        let mut conn = self.reader.acquire().await.map_err(internal)?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE tenant = ?1 ORDER BY created, rowid"
        )))
        .bind(tenant.as_str())
        .fetch_all(&mut *conn)
        .await
        .map_err(internal)?;
        conn.release();
        rows.iter().map(token_from_row).collect()
    }

    async fn set_token_expiry(
        &self,
        tenant: &TenantId,
        id: &TokenId,
        expires: Option<DateTime<Utc>>,
    ) -> ScimResult<bool> {
        let r = sqlx::query("UPDATE tokens SET expires = ?3 WHERE id = ?1 AND tenant = ?2")
            .bind(id.to_string())
            .bind(tenant.as_str())
            .bind(expires.as_ref().map(ts))
            .execute(&self.writer)
            .await
            .map_err(internal)?;
        self.tenant_cache.forget_tenant(tenant);
        Ok(r.rows_affected() > 0)
    }

    async fn revoke_token(&self, tenant: &TenantId, id: &TokenId) -> ScimResult<bool> {
        let r = sqlx::query("UPDATE tokens SET revoked = 1 WHERE id = ?1 AND tenant = ?2")
            .bind(id.to_string())
            .bind(tenant.as_str())
            .execute(&self.writer)
            .await
            .map_err(internal)?;
        self.tenant_cache.forget_tenant(tenant);
        Ok(r.rows_affected() > 0)
    }

    async fn revoke_all_tokens(&self, tenant: &TenantId) -> ScimResult<usize> {
        let r = sqlx::query("UPDATE tokens SET revoked = 1 WHERE tenant = ?1 AND revoked = 0")
            .bind(tenant.as_str())
            .execute(&self.writer)
            .await
            .map_err(internal)?;
        self.tenant_cache.forget_tenant(tenant);
        Ok(usize::try_from(r.rows_affected()).unwrap_or(usize::MAX))
    }

    async fn record_token_use(&self, id: &TokenId, at: DateTime<Utc>) -> ScimResult<()> {
        sqlx::query(
            "UPDATE tokens SET last_used = ?2 WHERE id = ?1 AND (last_used IS NULL OR last_used < ?2)",
        )
        .bind(id.to_string())
        .bind(ts(&at))
        .execute(&self.writer)
        .await
        .map_err(internal)?;
        self.tenant_cache.touch_token(id, at);
        Ok(())
    }
}
