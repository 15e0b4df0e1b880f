//! The [`ProvisioningLog`](crate::store::ProvisioningLog) of the [`SqliteStore`] (tables of migration 4): the statements;
//! the logic is shared with the PostgreSQL store (`store::sql::log`).

use std::sync::OnceLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Row, Sqlite, SqliteConnection, Transaction};

use super::{be, parse_ts, ts, SqliteStore};
use crate::events::{search_text, LogCursor, LogFilter, ProvisioningEvent};
use crate::store::sql::log::{
    event_from_row, json_err, LogEntry, LogStatements, SqlLog, TenantRow,
};
use crate::store::sql::pool::ReadConn;
use crate::store::{to_i64, to_u64, StoreError};
use crate::tenant::TenantId;

/// The rows of one log INSERT, largest first: a batch is written in statements of these
/// sizes (7 parameters a row, far below SQLite's limit of 32,766); the last is 1, so every
/// batch is written whole.
const INSERT_SIZES: [usize; 3] = [32, 8, 1];

/// The INSERT of each of [`INSERT_SIZES`], built on first use.
static INSERTS: OnceLock<[String; 3]> = OnceLock::new();

/// `INSERT INTO provisioning_log ... VALUES` with `rows` rows of numbered parameters.
fn insert_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO provisioning_log (tenant, seq, time, outcome, resource_type, search, event) VALUES ",
    );
    for r in 0..rows {
        let b = r * 7;
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!(
            "(?{}, ?{}, ?{}, ?{}, ?{}, ?{}, ?{})",
            b + 1,
            b + 2,
            b + 3,
            b + 4,
            b + 5,
            b + 6,
            b + 7
        ));
    }
    sql
}

#[async_trait]
impl LogStatements for SqliteConnection {
    async fn tenant_row(&mut self, tenant: &TenantId) -> Result<Option<TenantRow>, StoreError> {
        let row = sqlx::query(
            "SELECT last_seq, pruned_through, health FROM provisioning_log_tenants WHERE tenant = ?1",
        )
        .bind(tenant.as_str())
        .fetch_optional(&mut *self)
        .await
        .map_err(be)?;
        row.as_ref().map(TenantRow::from_row).transpose()
    }

    async fn insert_events(&mut self, events: &[LogEntry<'_>]) -> Result<(), StoreError> {
        // Multi-row VALUES in a few fixed sizes, largest first, so the connection's statement
        // cache holds three statements, not one per batch length.
        let inserts = INSERTS.get_or_init(|| INSERT_SIZES.map(insert_sql));
        let mut rest = events;
        for (&size, sql) in INSERT_SIZES.iter().zip(inserts) {
            while rest.len() >= size {
                let (chunk, tail) = rest.split_at(size);
                rest = tail;
                let mut q = sqlx::query(sql.as_str());
                for LogEntry { tenant, seq, event } in chunk {
                    q = q
                        .bind(tenant.as_str())
                        .bind(to_i64(*seq))
                        .bind(ts(&event.time))
                        .bind(event.outcome_kind().as_str())
                        .bind(event.resource_type.as_deref())
                        .bind(search_text(event))
                        .bind(serde_json::to_string(event).map_err(json_err)?);
                }
                q.execute(&mut *self).await.map_err(be)?;
            }
        }
        Ok(())
    }

    async fn save_tenant(&mut self, tenant: &TenantId, row: &TenantRow) -> Result<(), StoreError> {
        let health = serde_json::to_string(&row.health).map_err(json_err)?;
        sqlx::query(
            "INSERT INTO provisioning_log_tenants (tenant, last_seq, pruned_through, health) \
             VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (tenant) DO UPDATE SET last_seq = excluded.last_seq, health = excluded.health",
        )
        .bind(tenant.as_str())
        .bind(to_i64(row.last_seq))
        .bind(to_i64(row.pruned_through))
        .bind(health)
        .execute(&mut *self)
        .await
        .map_err(be)?;
        Ok(())
    }

    async fn matching(
        &mut self,
        tenant: &TenantId,
        filter: &LogFilter,
        (lower, upper): (u64, u64),
        limit: usize,
    ) -> Result<Vec<(LogCursor, ProvisioningEvent)>, StoreError> {
        let text = filter.text.as_ref().map(|t| t.to_ascii_lowercase());
        let found = sqlx::query(
            "SELECT seq, event FROM provisioning_log \
             WHERE tenant = ?1 AND seq >= ?2 AND seq < ?3 \
               AND (?4 IS NULL OR outcome = ?4) \
               AND (?5 IS NULL OR resource_type = ?5) \
               AND (?6 IS NULL OR instr(search, ?6) > 0) \
             ORDER BY seq DESC LIMIT ?7",
        )
        .bind(tenant.as_str())
        .bind(to_i64(lower))
        .bind(to_i64(upper))
        .bind(filter.outcome.map(|o| o.as_str()))
        .bind(filter.resource_type.as_deref())
        .bind(text)
        .bind(to_i64(limit as u64))
        .fetch_all(&mut *self)
        .await
        .map_err(be)?;
        found.iter().map(event_from_row).collect()
    }

    async fn oldest(
        &mut self,
        tenant: &TenantId,
        after: u64,
        n: u64,
        cutoff: Option<DateTime<Utc>>,
    ) -> Result<Vec<(u64, bool)>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, time FROM provisioning_log WHERE tenant = ?1 AND seq > ?2 \
             ORDER BY seq LIMIT ?3",
        )
        .bind(tenant.as_str())
        .bind(to_i64(after))
        .bind(to_i64(n))
        .fetch_all(&mut *self)
        .await
        .map_err(be)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let seq = to_u64(r.try_get("seq").map_err(be)?);
            let time: String = r.try_get("time").map_err(be)?;
            let time = parse_ts(&time)?;
            out.push((seq, cutoff.is_some_and(|c| time < c)));
        }
        Ok(out)
    }

    async fn prune_through(
        &mut self,
        tenant: &TenantId,
        after: u64,
        through: u64,
    ) -> Result<u64, StoreError> {
        let deleted = sqlx::query(
            "DELETE FROM provisioning_log WHERE tenant = ?1 AND seq > ?2 AND seq <= ?3",
        )
        .bind(tenant.as_str())
        .bind(to_i64(after))
        .bind(to_i64(through))
        .execute(&mut *self)
        .await
        .map_err(be)?
        .rows_affected();
        sqlx::query("UPDATE provisioning_log_tenants SET pruned_through = ?2 WHERE tenant = ?1")
            .bind(tenant.as_str())
            .bind(to_i64(through))
            .execute(&mut *self)
            .await
            .map_err(be)?;
        Ok(deleted)
    }
}

#[async_trait]
impl SqlLog for SqliteStore {
    type Db = Sqlite;

    async fn log_tx(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.begin().await
    }

    async fn log_reader(&self) -> Result<ReadConn<'_, SqliteConnection>, StoreError> {
        self.reader.acquire().await.map_err(be)
    }
}

crate::store::sql::log::provisioning_log!(SqliteStore);
