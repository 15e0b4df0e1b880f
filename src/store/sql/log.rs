//! The provisioning log of the SQL stores, written once: positions, health, paging and
//! pruning in batches, over the statements each dialect provides ([`LogStatements`],
//! implemented by its connection type) and its transactions ([`SqlLog`]).

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::events::{LogCursor, LogFilter, LogPage, ProvisioningEvent, TenantHealth};
use crate::store::log::{page, scan_window, MAX_LOG_PAGE};
use crate::store::sql::pool::ReadConn;
use crate::store::sql::rows::SqlRow;
use crate::store::{to_u64, ChangeRetention, PruneReport, StoreError};
use crate::tenant::TenantId;

/// A tenant's row in a SQL log: last position, prune horizon, health.
#[derive(Default)]
pub(crate) struct TenantRow {
    pub(crate) last_seq: u64,
    pub(crate) pruned_through: u64,
    pub(crate) health: TenantHealth,
}

impl TenantRow {
    /// The row of a `SELECT last_seq, pruned_through, health` (health as JSON text).
    pub(crate) fn from_row(row: &impl SqlRow) -> Result<Self, StoreError> {
        Ok(TenantRow {
            last_seq: to_u64(row.int("last_seq")?),
            pruned_through: to_u64(row.int("pruned_through")?),
            health: row.json("health")?,
        })
    }
}

/// An event and where it goes: its tenant's log, at position `seq`.
pub(crate) struct LogEntry<'a> {
    pub(crate) tenant: &'a TenantId,
    pub(crate) seq: u64,
    pub(crate) event: &'a ProvisioningEvent,
}

/// The most events [`LogStatements::insert_events`] writes in one statement: a batch of the
/// host's event writer is written in statements of this many, not one per event (a round
/// trip each, to the server or to SQLite's connection thread).
pub(crate) const INSERT_BATCH: usize = 256;

/// The event of a `SELECT seq, event` (event as JSON text).
pub(crate) fn event_from_row(
    row: &impl SqlRow,
) -> Result<(LogCursor, ProvisioningEvent), StoreError> {
    Ok((LogCursor(to_u64(row.int("seq")?)), row.json("event")?))
}

/// A log record that does not (de)serialise, as a store error.
pub(crate) fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::backend(e)
}

/// The statements of a SQL provisioning log, one method each, implemented by each SQL
/// dialect's connection type. What the log does with them (positions, health, paging,
/// pruning in batches) is written once, in [`append`], [`query`], [`prune`] and [`health`].
#[async_trait]
pub(crate) trait LogStatements: Send {
    /// The tenant's row, `None` before its first event.
    async fn tenant_row(&mut self, tenant: &TenantId) -> Result<Option<TenantRow>, StoreError>;

    /// Stores each event at its position of its tenant's log (at most [`INSERT_BATCH`]
    /// events), in as few statements as the dialect allows: one on PostgreSQL, a few
    /// fixed-size ones on SQLite.
    async fn insert_events(&mut self, events: &[LogEntry<'_>]) -> Result<(), StoreError>;

    /// Stores the tenant's last position and health (and its prune horizon, when the row
    /// is new).
    async fn save_tenant(&mut self, tenant: &TenantId, row: &TenantRow) -> Result<(), StoreError>;

    /// The events of positions `lower..upper` passing `filter`, newest first, at most `limit`.
    async fn matching(
        &mut self,
        tenant: &TenantId,
        filter: &LogFilter,
        (lower, upper): (u64, u64),
        limit: usize,
    ) -> Result<Vec<(LogCursor, ProvisioningEvent)>, StoreError>;

    /// The positions of the `n` oldest events after position `after`, in order, each with
    /// whether the event is older than `cutoff`.
    async fn oldest(
        &mut self,
        tenant: &TenantId,
        after: u64,
        n: u64,
        cutoff: Option<DateTime<Utc>>,
    ) -> Result<Vec<(u64, bool)>, StoreError>;

    /// Deletes the events of positions `after + 1 ..= through` and records `through` as the
    /// prune horizon; returns how many were deleted.
    async fn prune_through(
        &mut self,
        tenant: &TenantId,
        after: u64,
        through: u64,
    ) -> Result<u64, StoreError>;
}

/// How a SQL store reaches its log: a write transaction, a read connection.
#[async_trait]
pub(crate) trait SqlLog: Sync {
    /// The dialect.
    type Db: sqlx::Database<Connection: LogStatements>;

    /// A transaction for writing the log.
    async fn log_tx(&self) -> Result<sqlx::Transaction<'static, Self::Db>, StoreError>;

    /// A connection for reading it.
    async fn log_reader(
        &self,
    ) -> Result<ReadConn<'_, <Self::Db as sqlx::Database>::Connection>, StoreError>;
}

/// [`ProvisioningLog::append`](crate::store::ProvisioningLog::append) of a SQL store: one
/// transaction; each event takes the next position of its tenant and counts in its health.
pub(crate) async fn append<S: SqlLog>(
    store: &S,
    events: &[ProvisioningEvent],
) -> Result<(), StoreError> {
    if events.iter().all(|e| e.tenant.is_none()) {
        return Ok(());
    }
    let mut tx = store.log_tx().await?;
    let mut rows: HashMap<TenantId, TenantRow> = HashMap::new();
    let mut batch = Vec::with_capacity(events.len().min(INSERT_BATCH));
    for e in events {
        let Some(tenant) = &e.tenant else { continue };
        if !rows.contains_key(tenant) {
            let row = tx.tenant_row(tenant).await?.unwrap_or_default();
            rows.insert(tenant.clone(), row);
        }
        let Some(row) = rows.get_mut(tenant) else {
            continue;
        };
        row.last_seq += 1;
        row.health.add(e);
        batch.push(LogEntry {
            tenant,
            seq: row.last_seq,
            event: e,
        });
        if batch.len() == INSERT_BATCH {
            tx.insert_events(&batch).await?;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        tx.insert_events(&batch).await?;
    }
    for (tenant, row) in &rows {
        tx.save_tenant(tenant, row).await?;
    }
    tx.commit().await.map_err(StoreError::backend)
}

/// [`ProvisioningLog::query`](crate::store::ProvisioningLog::query) of a SQL store.
pub(crate) async fn query<S: SqlLog>(
    store: &S,
    tenant: &TenantId,
    filter: &LogFilter,
    before: Option<LogCursor>,
    limit: usize,
) -> Result<LogPage, StoreError> {
    let limit = limit.clamp(1, MAX_LOG_PAGE);
    let mut conn = store.log_reader().await?;
    let Some(row) = conn.tenant_row(tenant).await? else {
        conn.release();
        return Ok(LogPage {
            events: Vec::new(),
            next: None,
        });
    };
    let (lower, upper) = scan_window(before, row.last_seq);
    let events = conn.matching(tenant, filter, (lower, upper), limit).await?;
    conn.release();
    Ok(page(events, limit, lower, row.pruned_through))
}

/// [`ProvisioningLog::prune_log`](crate::store::ProvisioningLog::prune_log) of a SQL store:
/// batches of at most [`ChangeRetention::BATCH`] events, one transaction each.
pub(crate) async fn prune<S: SqlLog>(
    store: &S,
    tenant: &TenantId,
    retention: &ChangeRetention,
    now: DateTime<Utc>,
) -> Result<PruneReport, StoreError> {
    let cutoff = retention.cutoff(now);
    let budget = retention.per_call();
    let mut removed = 0u64;
    loop {
        let mut tx = store.log_tx().await?;
        let Some(row) = tx.tenant_row(tenant).await? else {
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
        let mut end = pruned;
        for (seq, old) in tx.oldest(tenant, pruned, window, cutoff).await? {
            if seq <= over || old {
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
        let deleted = tx.prune_through(tenant, pruned, end).await?;
        tx.commit().await.map_err(StoreError::backend)?;
        removed += deleted;
    }
}

/// [`ProvisioningLog::health`](crate::store::ProvisioningLog::health) of a SQL store.
pub(crate) async fn health<S: SqlLog>(
    store: &S,
    tenant: &TenantId,
) -> Result<TenantHealth, StoreError> {
    let mut conn = store.log_reader().await?;
    let row = conn.tenant_row(tenant).await?;
    conn.release();
    Ok(row.map(|r| r.health).unwrap_or_default())
}

/// `impl ProvisioningLog for $store`, each method one of the functions above: the same for
/// both SQL stores, written once.
macro_rules! provisioning_log {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl crate::store::ProvisioningLog for $store {
            async fn append(
                &self,
                events: &[crate::events::ProvisioningEvent],
            ) -> Result<(), crate::store::StoreError> {
                crate::store::sql::log::append(self, events).await
            }

            async fn query(
                &self,
                tenant: &crate::tenant::TenantId,
                filter: &crate::events::LogFilter,
                before: Option<crate::events::LogCursor>,
                limit: usize,
            ) -> Result<crate::events::LogPage, crate::store::StoreError> {
                crate::store::sql::log::query(self, tenant, filter, before, limit).await
            }

            async fn prune_log(
                &self,
                tenant: &crate::tenant::TenantId,
                retention: &crate::store::ChangeRetention,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<crate::store::PruneReport, crate::store::StoreError> {
                crate::store::sql::log::prune(self, tenant, retention, now).await
            }

            async fn health(
                &self,
                tenant: &crate::tenant::TenantId,
            ) -> Result<crate::events::TenantHealth, crate::store::StoreError> {
                crate::store::sql::log::health(self, tenant).await
            }
        }
    };
}
pub(crate) use provisioning_log;
