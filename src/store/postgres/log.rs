//! The [`ProvisioningLog`] of the [`PostgresStore`] (tables of migration 6).

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{db_err as be, PostgresStore};
use crate::events::{search_text, LogCursor, LogFilter, LogPage, ProvisioningEvent, TenantHealth};
use crate::store::log::{json_err, next_cursor, scan_window, TenantRow, MAX_LOG_PAGE};
use crate::store::ProvisioningLog;
use crate::store::{to_i64, to_u64, ChangeRetention, PruneReport, StoreError};
use crate::tenant::TenantId;

async fn tenant_row<'c, E>(conn: E, tenant: &TenantId) -> Result<Option<TenantRow>, StoreError>
where
    E: sqlx::Executor<'c, Database = sqlx::Postgres>,
{
    let row = sqlx::query(
        "SELECT last_seq, pruned_through, health::text AS health FROM scimkit_provisioning_log_tenants WHERE tenant = $1",
    )
    .bind(tenant.as_str())
    .fetch_optional(conn)
    .await
    .map_err(be)?;
    let Some(row) = row else { return Ok(None) };
    let health: String = row.try_get("health").map_err(be)?;
    Ok(Some(TenantRow {
        last_seq: to_u64(row.try_get("last_seq").map_err(be)?),
        pruned_through: to_u64(row.try_get("pruned_through").map_err(be)?),
        health: serde_json::from_str(&health).map_err(json_err)?,
    }))
}

#[async_trait]
impl ProvisioningLog for PostgresStore {
    async fn append(&self, events: &[ProvisioningEvent]) -> Result<(), StoreError> {
        if events.iter().all(|e| e.tenant.is_none()) {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        let mut rows: HashMap<TenantId, TenantRow> = HashMap::new();
        for e in events {
            let Some(tenant) = &e.tenant else { continue };
            if !rows.contains_key(tenant) {
                let row = tenant_row(&mut *tx, tenant).await?.unwrap_or_default();
                rows.insert(tenant.clone(), row);
            }
            let Some(row) = rows.get_mut(tenant) else {
                continue;
            };
            row.last_seq += 1;
            row.health.add(e);
            // PostgreSQL text and jsonb cannot hold NUL: a log keeps a replacement character.
            let json = serde_json::to_string(e)
                .map_err(json_err)?
                .replace("\\u0000", "\\ufffd");
            sqlx::query(
                "INSERT INTO scimkit_provisioning_log \
                 (tenant, seq, time_micros, outcome, resource_type, search, event) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)",
            )
            .bind(tenant.as_str())
            .bind(to_i64(row.last_seq))
            .bind(e.time.timestamp_micros())
            .bind(e.outcome_kind().as_str())
            .bind(e.resource_type.as_deref())
            .bind(search_text(e).replace('\0', "\u{fffd}"))
            .bind(json)
            .execute(&mut *tx)
            .await
            .map_err(be)?;
        }
        for (tenant, row) in rows {
            let health = serde_json::to_string(&row.health).map_err(json_err)?;
            sqlx::query(
                "INSERT INTO scimkit_provisioning_log_tenants (tenant, last_seq, pruned_through, health) \
                 VALUES ($1, $2, $3, $4::jsonb) \
                 ON CONFLICT (tenant) DO UPDATE SET last_seq = excluded.last_seq, health = excluded.health",
            )
            .bind(tenant.as_str())
            .bind(to_i64(row.last_seq))
            .bind(to_i64(row.pruned_through))
            .bind(health)
            .execute(&mut *tx)
            .await
            .map_err(be)?;
        }
        tx.commit().await.map_err(be)
    }

    async fn query(
        &self,
        tenant: &TenantId,
        filter: &LogFilter,
        before: Option<LogCursor>,
        limit: usize,
    ) -> Result<LogPage, StoreError> {
        let limit = limit.clamp(1, MAX_LOG_PAGE);
        let Some(row) = tenant_row(&self.pool, tenant).await? else {
            return Ok(LogPage {
                events: Vec::new(),
                next: None,
            });
        };
        let (lower, upper) = scan_window(before, row.last_seq);
        let text = filter
            .text
            .as_ref()
            .map(|t| t.to_ascii_lowercase().replace('\0', "\u{fffd}"));
        let resource_type = filter
            .resource_type
            .as_ref()
            .map(|t| t.replace('\0', "\u{fffd}"));
        let found = sqlx::query(
            "SELECT seq, event::text AS event FROM scimkit_provisioning_log \
             WHERE tenant = $1 AND seq >= $2 AND seq < $3 \
               AND ($4::text IS NULL OR outcome = $4) \
               AND ($5::text IS NULL OR resource_type = $5) \
               AND ($6::text IS NULL OR strpos(search, $6) > 0) \
             ORDER BY seq DESC LIMIT $7",
        )
        .bind(tenant.as_str())
        .bind(to_i64(lower))
        .bind(to_i64(upper))
        .bind(filter.outcome.map(|o| o.as_str()))
        .bind(resource_type)
        .bind(text)
        .bind(to_i64(limit as u64))
        .fetch_all(&self.pool)
        .await
        .map_err(be)?;
        let mut events = Vec::with_capacity(found.len());
        for r in found {
            let seq: i64 = r.try_get("seq").map_err(be)?;
            let json: String = r.try_get("event").map_err(be)?;
            let event: ProvisioningEvent = serde_json::from_str(&json).map_err(json_err)?;
            events.push((LogCursor(to_u64(seq)), event));
        }
        let full_last = (events.len() == limit)
            .then(|| events.last().map(|(c, _)| c.0))
            .flatten();
        let next = next_cursor(full_last, lower, row.pruned_through);
        Ok(LogPage { events, next })
    }

    async fn prune_log(
        &self,
        tenant: &TenantId,
        retention: &ChangeRetention,
        now: DateTime<Utc>,
    ) -> Result<PruneReport, StoreError> {
        let cutoff = retention.cutoff(now);
        let budget = retention.per_call();
        let mut removed = 0u64;
        loop {
            let mut tx = self.begin().await?;
            let Some(row) = tenant_row(&mut *tx, tenant).await? else {
                return Ok(PruneReport {
                    removed,
                    pruned_through: 0,
                    complete: true,
                });
            };
            let pruned = row.pruned_through;
            let over = retention
                .max_entries
                .map_or(pruned, |keep| row.last_seq.saturating_sub(keep));
            let room = budget.saturating_sub(removed);
            let window = if room == 0 {
                1
            } else {
                room.min(ChangeRetention::BATCH)
            };
            let head = sqlx::query(
                "SELECT seq, time_micros FROM scimkit_provisioning_log \
                 WHERE tenant = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            )
            .bind(tenant.as_str())
            .bind(to_i64(pruned))
            .bind(to_i64(window))
            .fetch_all(&mut *tx)
            .await
            .map_err(be)?;
            let mut end = pruned;
            for r in head {
                let seq = to_u64(r.try_get("seq").map_err(be)?);
                let time: i64 = r.try_get("time_micros").map_err(be)?;
                if seq <= over || cutoff.is_some_and(|c| time < c.timestamp_micros()) {
                    end = seq;
                } else {
                    break;
                }
            }
            if end == pruned || room == 0 {
                return Ok(PruneReport {
                    removed,
                    pruned_through: pruned,
                    complete: end == pruned,
                });
            }
            let deleted = sqlx::query(
                "DELETE FROM scimkit_provisioning_log WHERE tenant = $1 AND seq > $2 AND seq <= $3",
            )
            .bind(tenant.as_str())
            .bind(to_i64(pruned))
            .bind(to_i64(end))
            .execute(&mut *tx)
            .await
            .map_err(be)?
            .rows_affected();
            sqlx::query(
                "UPDATE scimkit_provisioning_log_tenants SET pruned_through = $2 WHERE tenant = $1",
            )
            .bind(tenant.as_str())
            .bind(to_i64(end))
            .execute(&mut *tx)
            .await
            .map_err(be)?;
            tx.commit().await.map_err(be)?;
            removed += deleted;
        }
    }

    async fn health(&self, tenant: &TenantId) -> Result<TenantHealth, StoreError> {
        Ok(tenant_row(&self.pool, tenant)
            .await?
            .map(|r| r.health)
            .unwrap_or_default())
    }
}
