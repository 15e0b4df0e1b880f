//! What the three provisioning logs ([`ProvisioningLog`](crate::store::ProvisioningLog)
//! implementations) share, so that they page alike: the scan window, the next cursor, the
//! page bound and the page itself. The two SQL logs share the rest too (`sql::log`).

use crate::events::{LogCursor, LogPage, ProvisioningEvent, MAX_LOG_SCAN};

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
fn next_cursor(full_page_last: Option<u64>, lower: u64, pruned_through: u64) -> Option<LogCursor> {
    match full_page_last {
        Some(seq) if seq > pruned_through.saturating_add(1) => Some(LogCursor(seq)),
        Some(_) => None,
        None if lower > pruned_through.saturating_add(1) => Some(LogCursor(lower)),
        None => None,
    }
}

/// The largest page a query returns.
pub(crate) const MAX_LOG_PAGE: usize = 1_000;

/// The page of a query: `events` (newest first, at most `limit`) and the cursor after them
/// (see [`next_cursor`]).
pub(crate) fn page(
    events: Vec<(LogCursor, ProvisioningEvent)>,
    limit: usize,
    lower: u64,
    pruned_through: u64,
) -> LogPage {
    let full_last = (events.len() == limit)
        .then(|| events.last().map(|(c, _)| c.0))
        .flatten();
    let next = next_cursor(full_last, lower, pruned_through);
    LogPage { events, next }
}
