//! [`TenantStore`] for [`PostgresStore`]: tenants and token records in the same database
//! (tables `scimkit_tenants` and `scimkit_tokens`; the token hash is unique and indexed, so
//! verifying a request is one index lookup).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::Row;

use super::{from_ns, PostgresStore, TENANTS_CHANNEL};
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

fn ns(t: DateTime<Utc>, what: &str) -> ScimResult<i64> {
    t.timestamp_nanos_opt().ok_or_else(|| {
        ScimError::InvalidValue(format!(
            "{what} {t} is outside the range this store can hold (1677 to 2262)"
        ))
    })
}

fn opt_ns(t: Option<DateTime<Utc>>, what: &str) -> ScimResult<Option<i64>> {
    t.map(|t| ns(t, what)).transpose()
}

const TENANT_COLUMNS: &str = "id, display_name, scim_enabled, settings, created";
const TOKEN_COLUMNS: &str = "id, tenant, label, hash, created, expires, revoked, last_used";

fn tenant_from_row(row: &PgRow) -> ScimResult<Tenant> {
    let id: String = row.try_get(0).map_err(internal)?;
    let settings: String = row.try_get(3).map_err(internal)?;
    Ok(Tenant {
        id: TenantId::new(id).map_err(ScimError::internal)?,
        display_name: row.try_get(1).map_err(internal)?,
        scim_enabled: row.try_get(2).map_err(internal)?,
        settings: serde_json::from_str(&settings).map_err(ScimError::internal)?,
        created: from_ns(row.try_get(4).map_err(internal)?),
    })
}

fn token_from_row(row: &PgRow) -> ScimResult<TokenRecord> {
    let time = |i: usize| -> ScimResult<Option<DateTime<Utc>>> {
        Ok(row
            .try_get::<Option<i64>, _>(i)
            .map_err(internal)?
            .map(from_ns))
    };
    TokenColumns {
        id: row.try_get(0).map_err(internal)?,
        tenant: row.try_get(1).map_err(internal)?,
        label: row.try_get(2).map_err(internal)?,
        hash: row.try_get(3).map_err(internal)?,
        created: from_ns(row.try_get(4).map_err(internal)?),
        expires: time(5)?,
        revoked: row.try_get(6).map_err(internal)?,
        last_used: time(7)?,
    }
    .into_record()
}

/// Token ids are stored in their hyphenated lower-case form, whose text order is the UUIDs'
/// byte order.
fn uuid_of(id: &TokenId) -> String {
    id.as_uuid().hyphenated().to_string()
}

fn no_nul(s: &str, what: &str) -> ScimResult<()> {
    if s.contains('\0') {
        return Err(ScimError::InvalidValue(format!(
            "{what} holds a NUL character, which cannot be stored"
        )));
    }
    Ok(())
}

impl PostgresStore {
    async fn update_tenant(
        &self,
        id: &TenantId,
        set: &str,
        bind: impl FnOnce(
            sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
        )
            -> sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> ScimResult<Tenant> {
        let q = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE scimkit_tenants SET {set} WHERE id = $1 RETURNING {TENANT_COLUMNS}"
        )))
        .bind(id.as_str());
        let row = bind(q)
            .fetch_optional(&self.pool)
            .await
            .map_err(internal)?
            .ok_or_else(|| ScimError::NotFound(format!("tenant '{id}' does not exist")))?;
        self.tenant_changed(id).await;
        tenant_from_row(&row)
    }

    /// After a committed change to tenant `id` or its tokens: this handle (and its clones)
    /// forgets what it cached of them at once, and every instance listening on the database
    /// ([`PostgresStore::listen`]) is told to do the same.
    async fn tenant_changed(&self, id: &TenantId) {
        self.tenant_cache.forget_tenant(id);
        let sent = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(TENANTS_CHANNEL)
            .bind(id.as_str())
            .execute(&self.pool)
            .await;
        if let Err(e) = sent {
            // The change is committed; other instances see it when their cache expires.
            tracing::warn!(error = %e, tenant = %id, "could not notify other instances of a tenant change");
        }
    }
}

#[async_trait]
impl TenantStore for PostgresStore {
    async fn create_tenant(&self, tenant: Tenant) -> ScimResult<()> {
        no_nul(&tenant.display_name, "the display name")?;
        let settings = serde_json::to_string(&tenant.settings).map_err(ScimError::internal)?;
        let r = sqlx::query(
            "INSERT INTO scimkit_tenants (id, display_name, scim_enabled, settings, created) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(tenant.id.as_str())
        .bind(&tenant.display_name)
        .bind(tenant.scim_enabled)
        .bind(settings)
        .bind(ns(tenant.created, "the creation time")?)
        .execute(&self.pool)
        .await;
        tenant_inserted(r, &tenant.id)
    }

    async fn get_tenant(&self, id: &TenantId) -> ScimResult<Option<Tenant>> {
        let load = async {
            let q = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {TENANT_COLUMNS} FROM scimkit_tenants WHERE id = $1"
            )))
            .bind(id.as_str());
            let row = self.reads.fetch_optional(q).await.map_err(internal)?;
            row.as_ref().map(tenant_from_row).transpose()
        };
        cached_tenant(&self.tenant_cache, id, load).await
    }

    async fn list_tenants(&self) -> ScimResult<Vec<Tenant>> {
        let q = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TENANT_COLUMNS} FROM scimkit_tenants ORDER BY id"
        )));
        let rows = self.reads.fetch_all(q).await.map_err(internal)?;
        rows.iter().map(tenant_from_row).collect()
    }

    async fn update_tenant_settings(
        &self,
        id: &TenantId,
        settings: Settings,
    ) -> ScimResult<Tenant> {
        let text = serde_json::to_string(&settings).map_err(ScimError::internal)?;
        self.update_tenant(id, "settings = $2", |q| q.bind(text))
            .await
    }

    async fn set_scim_enabled(&self, id: &TenantId, enabled: bool) -> ScimResult<Tenant> {
        self.update_tenant(id, "scim_enabled = $2", |q| q.bind(enabled))
            .await
    }

    async fn set_display_name(&self, id: &TenantId, display_name: String) -> ScimResult<Tenant> {
        no_nul(&display_name, "the display name")?;
        self.update_tenant(id, "display_name = $2", |q| q.bind(display_name))
            .await
    }

    async fn delete_tenant(&self, id: &TenantId) -> ScimResult<bool> {
        // Token records go with it (ON DELETE CASCADE).
        let n = sqlx::query("DELETE FROM scimkit_tenants WHERE id = $1")
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(internal)?
            .rows_affected();
        self.tenant_changed(id).await;
        Ok(n > 0)
    }

    async fn insert_token(&self, record: TokenRecord) -> ScimResult<()> {
        no_nul(&record.label, "the token label")?;
        let r = sqlx::query(
            "INSERT INTO scimkit_tokens (id, tenant, label, hash, created, expires, revoked, \
             last_used) SELECT $1, t.id, $3, $4, $5, $6, $7, $8 FROM scimkit_tenants t \
             WHERE t.id = $2",
        )
        .bind(uuid_of(&record.id))
        .bind(record.tenant.as_str())
        .bind(&record.label)
        .bind(record.hash.to_vec())
        .bind(ns(record.created, "the creation time")?)
        .bind(opt_ns(record.expires, "the expiry")?)
        .bind(record.revoked)
        .bind(opt_ns(record.last_used, "the last use")?)
        .execute(&self.pool)
        .await;
        match r {
            Ok(done) if done.rows_affected() == 0 => Err(ScimError::NotFound(format!(
                "tenant '{}' does not exist",
                record.tenant
            ))),
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(ScimError::Conflict(format!(
                "token '{}' is already stored",
                record.id
            ))),
            // The tenant was deleted between the check and the insert.
            Err(sqlx::Error::Database(d)) if d.code().as_deref() == Some("23503") => Err(
                ScimError::NotFound(format!("tenant '{}' does not exist", record.tenant)),
            ),
            Err(e) => Err(internal(e)),
        }
    }

    async fn find_token_by_hash(&self, hash: &[u8; 32]) -> ScimResult<Option<TokenRecord>> {
        let load = async {
            let q = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {TOKEN_COLUMNS} FROM scimkit_tokens WHERE hash = $1"
            )))
            .bind(hash.to_vec());
            let row = self.reads.fetch_optional(q).await.map_err(internal)?;
            row.as_ref().map(token_from_row).transpose()
        };
        cached_token(&self.tenant_cache, hash, load).await
    }

    async fn get_token(&self, tenant: &TenantId, id: &TokenId) -> ScimResult<Option<TokenRecord>> {
        let q = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM scimkit_tokens WHERE id = $1 AND tenant = $2"
        )))
        .bind(uuid_of(id))
        .bind(tenant.as_str());
        let row = self.reads.fetch_optional(q).await.map_err(internal)?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn list_tokens(&self, tenant: &TenantId) -> ScimResult<Vec<TokenRecord>> {
        let q = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM scimkit_tokens WHERE tenant = $1 ORDER BY created, id"
        )))
        .bind(tenant.as_str());
        let rows = self.reads.fetch_all(q).await.map_err(internal)?;
        rows.iter().map(token_from_row).collect()
    }

    async fn set_token_expiry(
        &self,
        tenant: &TenantId,
        id: &TokenId,
        expires: Option<DateTime<Utc>>,
    ) -> ScimResult<bool> {
        let n = sqlx::query("UPDATE scimkit_tokens SET expires = $3 WHERE id = $1 AND tenant = $2")
            .bind(uuid_of(id))
            .bind(tenant.as_str())
            .bind(opt_ns(expires, "the expiry")?)
            .execute(&self.pool)
            .await
            .map_err(internal)?
            .rows_affected();
        self.tenant_changed(tenant).await;
        Ok(n > 0)
    }

    async fn revoke_token(&self, tenant: &TenantId, id: &TokenId) -> ScimResult<bool> {
        let n =
            sqlx::query("UPDATE scimkit_tokens SET revoked = true WHERE id = $1 AND tenant = $2")
                .bind(uuid_of(id))
                .bind(tenant.as_str())
                .execute(&self.pool)
                .await
                .map_err(internal)?
                .rows_affected();
        self.tenant_changed(tenant).await;
        Ok(n > 0)
    }

    async fn revoke_all_tokens(&self, tenant: &TenantId) -> ScimResult<usize> {
        let n = sqlx::query(
            "UPDATE scimkit_tokens SET revoked = true WHERE tenant = $1 AND NOT revoked",
        )
        .bind(tenant.as_str())
        .execute(&self.pool)
        .await
        .map_err(internal)?
        .rows_affected();
        self.tenant_changed(tenant).await;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    async fn record_token_use(&self, id: &TokenId, at: DateTime<Utc>) -> ScimResult<()> {
        // Only forward: concurrent writers cannot move it back.
        sqlx::query(
            "UPDATE scimkit_tokens SET last_used = $2 \
             WHERE id = $1 AND (last_used IS NULL OR last_used < $2)",
        )
        .bind(uuid_of(id))
        .bind(ns(at, "the use time")?)
        .execute(&self.pool)
        .await
        .map_err(internal)?;
        self.tenant_cache.touch_token(id, at);
        Ok(())
    }
}
