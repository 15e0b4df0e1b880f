//! The [`ProvisioningLog`](crate::store::ProvisioningLog) of the [`PostgresStore`] (tables of migration 6): the statements;
//! the logic is shared with the SQLite store (`store::sql::log`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Postgres, Row, Transaction};

use super::{db_err as be, PostgresStore};
use crate::events::{search_text, LogCursor, LogFilter, ProvisioningEvent};
use crate::store::sql::log::{
    event_from_row, json_err, LogEntry, LogStatements, SqlLog, TenantRow,
};
use crate::store::sql::pool::ReadConn;
use crate::store::{to_i64, to_u64, StoreError};
use crate::tenant::TenantId;

/// PostgreSQL text and jsonb cannot hold NUL: a log keeps a replacement character.
fn no_nul(s: &str) -> String {
    s.replace('\0', "\u{fffd}")
}

#[async_trait]
impl LogStatements for PgConnection {
    async fn tenant_row(&mut self, tenant: &TenantId) -> Result<Option<TenantRow>, StoreError> {
        let row = sqlx::query(
            "SELECT last_seq, pruned_through, health::text AS health FROM scimkit_provisioning_log_tenants WHERE tenant = $1",
        )
        .bind(tenant.as_str())
        .fetch_optional(&mut *self)
        .await
        .map_err(be)?;
        row.as_ref().map(TenantRow::from_row).transpose()
    }

    async fn insert_events(&mut self, events: &[LogEntry<'_>]) -> Result<(), StoreError> {
        // One array per column, unnested into rows.
        let n = events.len();
        let (mut tenants, mut seqs, mut times) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut outcomes, mut types, mut searches, mut docs) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for LogEntry { tenant, seq, event } in events {
            tenants.push(tenant.as_str());
            seqs.push(to_i64(*seq));
            times.push(event.time.timestamp_micros());
            outcomes.push(event.outcome_kind().as_str());
            types.push(event.resource_type.as_deref());
            searches.push(no_nul(&search_text(event)));
            docs.push(
                serde_json::to_string(event)
                    .map_err(json_err)?
                    .replace("\\u0000", "\\ufffd"),
            );
        }
        sqlx::query(
            "INSERT INTO scimkit_provisioning_log \
             (tenant, seq, time_micros, outcome, resource_type, search, event) \
             SELECT u.tenant, u.seq, u.time_micros, u.outcome, u.resource_type, u.search, \
                    u.event::jsonb \
             FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], \
                         $6::text[], $7::text[]) \
               AS u(tenant, seq, time_micros, outcome, resource_type, search, event)",
        )
        .bind(tenants)
        .bind(seqs)
        .bind(times)
        .bind(outcomes)
        .bind(types)
        .bind(searches)
        .bind(docs)
        .execute(&mut *self)
        .await
        .map_err(be)?;
        Ok(())
    }

    async fn save_tenant(&mut self, tenant: &TenantId, row: &TenantRow) -> Result<(), StoreError> {
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
        let text = filter
            .text
            .as_ref()
            .map(|t| no_nul(&t.to_ascii_lowercase()));
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
        .bind(filter.resource_type.as_deref().map(no_nul))
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
            "SELECT seq, time_micros FROM scimkit_provisioning_log \
             WHERE tenant = $1 AND seq > $2 ORDER BY seq LIMIT $3",
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
            let time: i64 = r.try_get("time_micros").map_err(be)?;
            out.push((seq, cutoff.is_some_and(|c| time < c.timestamp_micros())));
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
            "DELETE FROM scimkit_provisioning_log WHERE tenant = $1 AND seq > $2 AND seq <= $3",
        )
        .bind(tenant.as_str())
        .bind(to_i64(after))
        .bind(to_i64(through))
        .execute(&mut *self)
        .await
        .map_err(be)?
        .rows_affected();
        sqlx::query(
            "UPDATE scimkit_provisioning_log_tenants SET pruned_through = $2 WHERE tenant = $1",
        )
        .bind(tenant.as_str())
        .bind(to_i64(through))
        .execute(&mut *self)
        .await
        .map_err(be)?;
        Ok(deleted)
    }
}

#[async_trait]
impl SqlLog for PostgresStore {
    type Db = Postgres;

    async fn log_tx(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        self.begin().await
    }

    async fn log_reader(&self) -> Result<ReadConn<'_, PgConnection>, StoreError> {
        self.reads.acquire().await.map_err(be)
    }
}

crate::store::sql::log::provisioning_log!(PostgresStore);
