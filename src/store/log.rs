//! What the three provisioning logs ([`ProvisioningLog`](crate::store::ProvisioningLog)
//! implementations) share, so that they page alike: the scan window, the next cursor, the
//! page bound, and the SQL stores' per-tenant row.

#[cfg(any(feature = "sqlite", feature = "postgres"))]
use crate::events::TenantHealth;
use crate::events::{LogCursor, MAX_LOG_SCAN};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
use crate::store::StoreError;

/// The window of positions a query looks at, below `before` (from the newest when `None`):
/// at most [`MAX_LOG_SCAN`] positions, so that a rare filter costs bounded work. Shared by
/// the three stores so that they page alike.
pub(crate) fn scan_window(before: Option<LogCursor>, last_seq: u64) -> (u64, u64) {
    let upper = match before {
        Some(c) => c.0.min(last_seq.saturating_add(1)),
        None => last_seq.saturating_add(1),
    };
    let lower = upper.saturating_sub(MAX_LOG_SCAN as u64).max(1);
    (lower, upper)
}

/// The cursor of the next page: after a full page, the last event returned; after a page cut
/// by the scan window, the window's lower end (when positions remain below it).
pub(crate) fn next_cursor(
    full_page_last: Option<u64>,
    lower: u64,
    pruned_through: u64,
) -> Option<LogCursor> {
    match full_page_last {
        Some(seq) if seq > pruned_through.saturating_add(1) => Some(LogCursor(seq)),
        Some(_) => None,
        None if lower > pruned_through.saturating_add(1) => Some(LogCursor(lower)),
        None => None,
    }
}

/// The largest page a query returns.
pub(crate) const MAX_LOG_PAGE: usize = 1_000;

/// A tenant's row in a SQL log: last position, prune horizon, health.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[derive(Default)]
pub(crate) struct TenantRow {
    pub(crate) last_seq: u64,
    pub(crate) pruned_through: u64,
    pub(crate) health: TenantHealth,
}

/// A log record that does not (de)serialise, as a store error.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::backend(e)
}
