//! The store side of the provisioning log: the [`ProvisioningLog`] trait every store
//! implements, and the ready [`StoreEventSink`] with its [`EventWriter`] that feed it.
//! Re-exported under [`crate::events`].

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::events::{EventSink, LogCursor, LogFilter, LogPage, ProvisioningEvent, TenantHealth};
use crate::store::{ChangeRetention, PruneReport, StoreError};
use crate::tenant::TenantId;

/// A store of provisioning events, per tenant: what [`EventWriter`] appends to and what an
/// admin console reads.
///
/// Implemented by [`MemoryStore`](crate::store::MemoryStore) (a bounded ring per tenant),
/// the SQLite and the PostgreSQL store (a table indexed by tenant and position, with a
/// per-tenant health row updated on append). Events without a tenant (a path naming no
/// valid tenant id) are not kept.
#[async_trait]
pub trait ProvisioningLog: Send + Sync {
    /// Appends `events` (in order: a later one is newer), in one transaction on the SQL
    /// stores.
    async fn append(&self, events: &[ProvisioningEvent]) -> Result<(), StoreError>;

    /// Up to `limit` (1 to 1,000) events of `tenant` passing `filter`, newest first,
    /// starting right before `before` (from the newest when `None`). Bounded work: at most
    /// [`MAX_LOG_SCAN`](crate::events::MAX_LOG_SCAN) positions are looked at per call, so a rare filter may answer a short
    /// (even empty) page with a `next` cursor to continue from; `next` is `None` when no
    /// older event remains.
    async fn query(
        &self,
        tenant: &TenantId,
        filter: &LogFilter,
        before: Option<LogCursor>,
        limit: usize,
    ) -> Result<LogPage, StoreError>;

    /// Removes the tenant's oldest events as `retention` says (older than `max_age` before
    /// `now`, beyond the `max_entries` newest), at most `max_removed_per_call`, in batches.
    /// `pruned_through` in the report is the position of the last event removed (0 if none
    /// ever was).
    async fn prune_log(
        &self,
        tenant: &TenantId,
        retention: &ChangeRetention,
        now: DateTime<Utc>,
    ) -> Result<PruneReport, StoreError>;

    /// The tenant's health: last success, last error and counts, as appended so far.
    async fn health(&self, tenant: &TenantId) -> Result<TenantHealth, StoreError>;
}

// ---------------------------------------------------------------------------------------------
// The ready sink

/// A ready [`EventSink`] that keeps events in a [`ProvisioningLog`] without slowing requests:
/// `record` puts the event in a bounded queue (dropping it, and counting, when the queue is
/// full: it never blocks), and an [`EventWriter`] that the host runs on its executor appends
/// them in batches.
///
/// ```
/// # async fn setup(store: std::sync::Arc<scimkit::store::MemoryStore>) {
/// use scimkit::store::StoreEventSink;
/// let (sink, writer) = StoreEventSink::new(store, 10_000);
/// tokio::spawn(writer.run());
/// // ScimService::builder(...).event_sink(sink.clone())
/// # let _ = sink;
/// # }
/// ```
#[derive(Clone)]
pub struct StoreEventSink {
    queue: Arc<Queue>,
    // Dropping the last sink closes the queue, ending the writer.
    _handle: Arc<CloseOnDrop>,
}

struct CloseOnDrop(Arc<Queue>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

impl fmt::Debug for StoreEventSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreEventSink")
            .field("capacity", &self.queue.capacity)
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

struct Queue {
    capacity: usize,
    state: Mutex<QueueState>,
    dropped: AtomicU64,
}

struct QueueState {
    events: VecDeque<ProvisioningEvent>,
    waker: Option<Waker>,
    closed: bool,
}

impl Queue {
    fn close(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.closed = true;
            if let Some(w) = s.waker.take() {
                w.wake();
            }
        }
    }
}

impl StoreEventSink {
    /// The events appended in one batch at most.
    pub const BATCH: usize = 500;

    /// A sink queueing up to `capacity` events for the writer to append to `log`.
    pub fn new(log: Arc<dyn ProvisioningLog>, capacity: usize) -> (StoreEventSink, EventWriter) {
        let queue = Arc::new(Queue {
            capacity: capacity.max(1),
            state: Mutex::new(QueueState {
                events: VecDeque::new(),
                waker: None,
                closed: false,
            }),
            dropped: AtomicU64::new(0),
        });
        let sink = StoreEventSink {
            queue: Arc::clone(&queue),
            _handle: Arc::new(CloseOnDrop(Arc::clone(&queue))),
        };
        (sink, EventWriter { queue, log })
    }

    /// How many events were dropped because the queue was full (or the writer failed to
    /// append them).
    pub fn dropped(&self) -> u64 {
        self.queue.dropped.load(Ordering::Relaxed)
    }

    /// How many events wait in the queue.
    pub fn queued(&self) -> usize {
        self.queue.state.lock().map_or(0, |s| s.events.len())
    }
}

impl EventSink for StoreEventSink {
    fn record(&self, event: &ProvisioningEvent) {
        let Ok(mut s) = self.queue.state.lock() else {
            self.queue.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if s.events.len() >= self.queue.capacity {
            drop(s);
            self.queue.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        s.events.push_back(event.clone());
        if let Some(w) = s.waker.take() {
            w.wake();
        }
    }
}

/// The task side of a [`StoreEventSink`]: run [`run`](Self::run) on the host's executor.
pub struct EventWriter {
    queue: Arc<Queue>,
    log: Arc<dyn ProvisioningLog>,
}

impl fmt::Debug for EventWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventWriter").finish_non_exhaustive()
    }
}

impl EventWriter {
    /// Appends queued events in batches of up to [`StoreEventSink::BATCH`] until every sink
    /// is dropped and the queue is empty. A batch the log fails to append is dropped (and
    /// counted in [`StoreEventSink::dropped`]) after logging the error: the log is
    /// best-effort, it must not grow without bound while its store is down.
    pub async fn run(self) {
        // One buffer for every batch: a batch is often a single event under load, and a
        // fresh vector per batch was a large allocation (an event is several hundred bytes)
        // freed right after, per request.
        let mut batch = Vec::new();
        while self.next_batch(&mut batch).await {
            self.write_slice(&batch).await;
            batch.clear();
        }
    }

    /// Appends what is queued now (in batches), without waiting for more; for tests and
    /// for hosts that flush on their own schedule.
    pub async fn flush(&self) {
        loop {
            let batch = self.take(StoreEventSink::BATCH);
            if batch.is_empty() {
                return;
            }
            self.write(batch).await;
        }
    }

    async fn write(&self, batch: Vec<ProvisioningEvent>) {
        self.write_slice(&batch).await;
    }

    async fn write_slice(&self, batch: &[ProvisioningEvent]) {
        if let Err(e) = self.log.append(batch).await {
            tracing::warn!(error = %e, events = batch.len(), "could not append provisioning events");
            let n = u64::try_from(batch.len()).unwrap_or(u64::MAX);
            self.queue.dropped.fetch_add(n, Ordering::Relaxed);
        }
    }

    fn take(&self, max: usize) -> Vec<ProvisioningEvent> {
        match self.queue.state.lock() {
            Ok(mut s) => {
                let n = s.events.len().min(max);
                s.events.drain(..n).collect()
            }
            Err(_) => Vec::new(),
        }
    }

    /// Waits for queued events and moves up to [`StoreEventSink::BATCH`] of them into the
    /// empty `out`: `false` once the queue is closed and empty (or poisoned).
    fn next_batch<'a>(&'a self, out: &'a mut Vec<ProvisioningEvent>) -> NextBatch<'a> {
        NextBatch {
            queue: &self.queue,
            out,
        }
    }
}

struct NextBatch<'a> {
    queue: &'a Queue,
    out: &'a mut Vec<ProvisioningEvent>,
}

impl Future for NextBatch<'_> {
    type Output = bool;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let Ok(mut s) = this.queue.state.lock() else {
            return Poll::Ready(false);
        };
        if !s.events.is_empty() {
            let n = s.events.len().min(StoreEventSink::BATCH);
            this.out.extend(s.events.drain(..n));
            return Poll::Ready(true);
        }
        if s.closed {
            return Poll::Ready(false);
        }
        s.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}
