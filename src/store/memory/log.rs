//! The [`ProvisioningLog`] of the [`MemoryStore`]: a bounded ring of events per tenant.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::MemoryStore;
use crate::events::{LogCursor, LogFilter, LogPage, ProvisioningEvent, TenantHealth};
use crate::store::log::{page, scan_window, MAX_LOG_PAGE};
use crate::store::ProvisioningLog;
use crate::store::{ChangeRetention, PruneReport, StoreError};
use crate::tenant::TenantId;

/// The most events the memory log keeps per tenant; appending more drops the oldest.
pub(crate) const MEMORY_LOG_CAPACITY: usize = 10_000;

/// The events of every tenant.
#[derive(Debug, Default)]
pub(crate) struct MemoryLog {
    tenants: Mutex<HashMap<TenantId, TenantLog>>,
}

#[derive(Debug, Default)]
struct TenantLog {
    /// Oldest first, with their positions (1, 2, ... per tenant).
    events: VecDeque<(u64, ProvisioningEvent)>,
    last_seq: u64,
    pruned_through: u64,
    health: TenantHealth,
}

impl TenantLog {
    fn drop_oldest(&mut self) {
        if let Some((seq, _)) = self.events.pop_front() {
            self.pruned_through = seq;
        }
    }
}

impl MemoryLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TenantId, TenantLog>> {
        self.tenants.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl ProvisioningLog for MemoryStore {
    async fn append(&self, events: &[ProvisioningEvent]) -> Result<(), StoreError> {
        let mut all = self.log.lock();
        for e in events {
            let Some(tenant) = &e.tenant else { continue };
            let log = all.entry(tenant.clone()).or_default();
            log.last_seq += 1;
            log.health.add(e);
            log.events.push_back((log.last_seq, e.clone()));
            while log.events.len() > MEMORY_LOG_CAPACITY {
                log.drop_oldest();
            }
        }
        Ok(())
    }

    async fn query(
        &self,
        tenant: &TenantId,
        filter: &LogFilter,
        before: Option<LogCursor>,
        limit: usize,
    ) -> Result<LogPage, StoreError> {
        let limit = limit.clamp(1, MAX_LOG_PAGE);
        let all = self.log.lock();
        let Some(log) = all.get(tenant) else {
            return Ok(LogPage {
                events: Vec::new(),
                next: None,
            });
        };
        let (lower, upper) = scan_window(before, log.last_seq);
        let mut events = Vec::new();
        for (seq, e) in log.events.iter().rev() {
            if *seq >= upper {
                continue;
            }
            if *seq < lower {
                break;
            }
            if filter.matches(e) {
                events.push((LogCursor(*seq), e.clone()));
                if events.len() == limit {
                    break;
                }
            }
        }
        Ok(page(events, limit, lower, log.pruned_through))
    }

    async fn prune_log(
        &self,
        tenant: &TenantId,
        retention: &ChangeRetention,
        now: DateTime<Utc>,
    ) -> Result<PruneReport, StoreError> {
        let mut all = self.log.lock();
        let Some(log) = all.get_mut(tenant) else {
            return Ok(PruneReport {
                removed: 0,
                pruned_through: 0,
                complete: true,
            });
        };
        let cutoff = retention
            .max_age
            .and_then(|a| chrono::Duration::from_std(a).ok())
            .and_then(|a| now.checked_sub_signed(a));
        let keep_from = retention
            .max_entries
            .map(|n| log.last_seq.saturating_sub(n));
        let due = |seq: u64, e: &ProvisioningEvent| {
            cutoff.is_some_and(|c| e.time < c) || keep_from.is_some_and(|k| seq <= k)
        };
        let mut removed = 0u64;
        let bound = retention.max_removed_per_call.max(1);
        let mut complete = true;
        while let Some((seq, e)) = log.events.front() {
            if !due(*seq, e) {
                break;
            }
            if removed >= bound {
                complete = false;
                break;
            }
            log.drop_oldest();
            removed += 1;
        }
        Ok(PruneReport {
            removed,
            pruned_through: log.pruned_through,
            complete,
        })
    }

    async fn health(&self, tenant: &TenantId) -> Result<TenantHealth, StoreError> {
        Ok(self
            .log
            .lock()
            .get(tenant)
            .map(|l| l.health.clone())
            .unwrap_or_default())
    }
}
