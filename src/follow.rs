//! The feed follower: keeps a host's own data in step with the change feed.
//!
//! A [`FeedFollower`] reads every tenant's [change feed](crate::feed) from the position the
//! host saved, hands each batch of changes to the host's [`FeedHandler`] together with the
//! current state of the resources they name (one batched read per resource type and batch),
//! saves the position, and then waits for the store's
//! [subscription](crate::store::ResourceStore::subscribe) to announce new writes, without
//! losing one that commits while it is busy. Errors are retried with exponential backoff. A
//! position the store has [pruned](crate::store::ResourceStore::prune_changes) is reported
//! to the handler as a typed resynchronisation ([`FeedHandler::resync`]), never as a gap.
//!
//! It needs no particular async runtime: waiting is the subscription's (a plain
//! `std::task::Waker`), and the pauses (backoff, the periodic sweep) are the host's
//! [`Sleep`], for example `|d| tokio::time::sleep(d)`.
//!
//! # Where the position lives, and what that buys
//!
//! The host keeps each tenant's position (the `seq` of the last change it applied) in its own
//! database, behind the small [`CursorStore`] trait. Two ways to save it
//! ([`CursorSaving`]):
//!
//! - [`CursorSaving::ByHandler`] (**exactly once**): the handler writes
//!   [`ChangeBatch::cursor`] in the *same transaction* as its own update. A crash before the
//!   commit loses both, a crash after it keeps both, so every change is applied exactly once.
//!   [`CursorStore::save`] is never called; [`CursorStore::load`] reads the position back.
//! - [`CursorSaving::AfterHandler`] (**at least once**): the follower calls
//!   [`CursorStore::save`] after the handler returned. A crash between the two re-delivers
//!   that batch, so the handler must be idempotent (upserts, set-like membership writes).
//!
//! # Resynchronisation
//!
//! When a tenant's saved position is older than what the feed retains,
//! [`FeedHandler::resync`] is called with the feed's current head: re-read what the host
//! follows (for example with [`ScimService::users`](crate::service::ScimService::users)
//! and [`groups`](crate::service::ScimService::groups), paged), replace the host's copy, and
//! save `resume_at` as the position (under `ByHandler`, in the same transaction). Reading
//! continues after `resume_at`; changes committed while the handler re-read are delivered
//! again afterwards, which an upserting handler absorbs.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use async_trait::async_trait;

use crate::auth::TenantStore;
use crate::error::ScimError;
use crate::feed::{Change, ChangeSubscription};
use crate::filter::{CompValue, CompareOp, Filter};
use crate::resource::{Group, User};
use crate::schema::{AttrPath, SchemaRegistry};
use crate::service::ScimService;
use crate::store::{ListQuery, ResourceStore, StoreError, StoredResource};
use crate::tenant::TenantId;

/// An error of the host's code (its cursor store or handler).
pub type HostError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Where the host keeps each tenant's feed position (in its own database).
#[async_trait]
pub trait CursorStore: Send + Sync {
    /// The `seq` of the last change applied for `tenant`; `None` when the host has applied
    /// none (the follower then starts at the beginning of the retained feed).
    async fn load(&self, tenant: &TenantId) -> Result<Option<u64>, HostError>;

    /// Saves `seq` as `tenant`'s position. Called only under [`CursorSaving::AfterHandler`].
    async fn save(&self, tenant: &TenantId, seq: u64) -> Result<(), HostError>;
}

/// The host's side of the feed.
#[async_trait]
pub trait FeedHandler: Send + Sync {
    /// Applies a batch of changes of one tenant, in `seq` order. Under
    /// [`CursorSaving::ByHandler`], also saves [`ChangeBatch::cursor`] in the same
    /// transaction. An error leaves the position where it was: the batch is delivered again
    /// after a pause.
    async fn apply(&self, batch: &ChangeBatch) -> Result<(), HostError>;

    /// `tenant`'s position was pruned from the feed: re-read the tenant's resources, then
    /// (under [`CursorSaving::ByHandler`]) save `resume_at` as its position. The follower
    /// continues after `resume_at`. See the [module documentation](self).
    async fn resync(&self, tenant: &TenantId, resume_at: u64) -> Result<(), HostError>;
}

/// Who saves the position after a batch; see the [module documentation](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CursorSaving {
    /// The handler saves it in its own transaction (exactly once).
    #[default]
    ByHandler,
    /// The follower calls [`CursorStore::save`] after the handler returned (at least once).
    AfterHandler,
}

/// A pause, supplied by the host's runtime (`|d| tokio::time::sleep(d)`).
pub trait Sleep: Send + Sync {
    /// Resolves after `duration`.
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>>;
}

impl<F, Fut> Sleep for F
where
    F: Fn(Duration) -> Fut + Send + Sync,
    Fut: Future<Output = ()> + Send + 'static,
{
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        Box::pin(self(duration))
    }
}

/// One change with the current state of its resource.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeWithState {
    /// The change record (with the membership delta of a membership change).
    pub change: Change,
    /// The resource as it is *now* (read when the batch was assembled, so possibly newer
    /// than the change: later changes of the same resource follow in this or a later batch).
    /// `None` when it no longer exists, or its resource type is not served. Groups come
    /// without members: apply [`Change::members`], or read them when it says
    /// [`MemberChanges::Replaced`](crate::feed::MemberChanges::Replaced).
    pub current: Option<StoredResource>,
}

impl ChangeWithState {
    /// The current state as a typed [`User`] (with `id` and `meta`), when it is a User.
    pub fn user(&self) -> Option<Result<User, ScimError>> {
        let r = self
            .current
            .as_ref()
            .filter(|r| r.resource_type == "User")?;
        Some(crate::service::typed_user(r))
    }

    /// The current state as a typed [`Group`] (with `id` and `meta`, without members), when
    /// it is a Group.
    pub fn group(&self) -> Option<Result<Group, ScimError>> {
        let r = self
            .current
            .as_ref()
            .filter(|r| r.resource_type == "Group")?;
        Some(crate::service::typed_group(r))
    }
}

/// Consecutive changes of one tenant, in `seq` order.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeBatch {
    /// The tenant.
    pub tenant: TenantId,
    /// The changes (at least one).
    pub changes: Vec<ChangeWithState>,
}

impl ChangeBatch {
    /// The position to save once the batch is applied: the `seq` of its last change.
    pub fn cursor(&self) -> u64 {
        self.changes.last().map_or(0, |c| c.change.seq)
    }
}

/// Why a follower step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FollowError {
    /// The resource store (or the tenant store) failed.
    #[error("reading the change feed of `{tenant}` failed: {source}")]
    Store {
        /// The tenant read (empty when listing tenants).
        tenant: String,
        /// The failure.
        #[source]
        source: HostError,
    },
    /// The host's cursor store failed.
    #[error("the feed position of `{tenant}` could not be read or saved: {source}")]
    Cursor {
        /// The tenant.
        tenant: TenantId,
        /// The failure.
        #[source]
        source: HostError,
    },
    /// The host's handler failed.
    #[error("the handler failed on `{tenant}` after position {cursor}: {source}")]
    Handler {
        /// The tenant.
        tenant: TenantId,
        /// The position the tenant stays at.
        cursor: u64,
        /// The failure.
        #[source]
        source: HostError,
    },
}

/// What [`FeedFollower::catch_up`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CatchUpReport {
    /// Changes handed to the handler.
    pub changes: u64,
    /// Batches handed to the handler.
    pub batches: u64,
    /// Resynchronisations asked of the handler.
    pub resyncs: u64,
}

/// Follows the change feed of every tenant into the host's handler; see the
/// [module documentation](self).
///
/// ```no_run
/// # use std::sync::Arc;
/// # use scimkit::follow::{FeedFollower, CursorStore, FeedHandler};
/// # async fn run(service: scimkit::service::ScimService, cursors: Arc<dyn CursorStore>, handler: Arc<dyn FeedHandler>, shutdown: tokio::sync::oneshot::Receiver<()>) {
/// let follower = FeedFollower::new(&service, cursors, handler, |d| tokio::time::sleep(d));
/// tokio::spawn(follower.run_until(async { let _ = shutdown.await; }));
/// # }
/// ```
pub struct FeedFollower {
    store: Arc<dyn ResourceStore>,
    tenants: Arc<dyn TenantStore>,
    registry: Arc<SchemaRegistry>,
    cursors: Arc<dyn CursorStore>,
    handler: Arc<dyn FeedHandler>,
    sleep: Arc<dyn Sleep>,
    saving: CursorSaving,
    batch_size: usize,
    poll_interval: Duration,
    backoff: (Duration, Duration),
    /// The positions applied by this follower (a cache of the cursor store's).
    known: HashMap<TenantId, u64>,
}

impl fmt::Debug for FeedFollower {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FeedFollower")
            .field("saving", &self.saving)
            .field("batch_size", &self.batch_size)
            .field("poll_interval", &self.poll_interval)
            .field("tenants_known", &self.known.len())
            .finish_non_exhaustive()
    }
}

impl FeedFollower {
    /// The default number of changes per batch.
    pub const DEFAULT_BATCH_SIZE: usize = 100;
    /// The default interval of the full sweep over every tenant (a safety net for writes the
    /// subscription cannot see, such as another process writing the same SQLite file).
    pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(30);

    /// A follower of `service`'s store and tenants, saving positions as
    /// [`CursorSaving::ByHandler`] (change it with [`cursor_saving`](Self::cursor_saving)).
    pub fn new(
        service: &ScimService,
        cursors: Arc<dyn CursorStore>,
        handler: Arc<dyn FeedHandler>,
        sleep: impl Sleep + 'static,
    ) -> Self {
        FeedFollower {
            store: Arc::clone(service.store()),
            tenants: Arc::clone(service.tenants().store()),
            registry: service.registry_arc(),
            cursors,
            handler,
            sleep: Arc::new(sleep),
            saving: CursorSaving::default(),
            batch_size: Self::DEFAULT_BATCH_SIZE,
            poll_interval: Self::DEFAULT_POLL_INTERVAL,
            backoff: (Duration::from_millis(100), Duration::from_secs(30)),
            known: HashMap::new(),
        }
    }

    /// Who saves the position (default [`CursorSaving::ByHandler`]).
    pub fn cursor_saving(mut self, saving: CursorSaving) -> Self {
        self.saving = saving;
        self
    }

    /// At most this many changes per batch (at least 1; default
    /// [`DEFAULT_BATCH_SIZE`](Self::DEFAULT_BATCH_SIZE)).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n.clamp(1, 10_000);
        self
    }

    /// The interval of the full sweep (default
    /// [`DEFAULT_POLL_INTERVAL`](Self::DEFAULT_POLL_INTERVAL)); also how often a store
    /// without a subscription is polled.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// The first and the longest pause after a failure (default 100 ms and 30 s; doubled
    /// after each consecutive failure).
    pub fn backoff(mut self, first: Duration, max: Duration) -> Self {
        self.backoff = (first, max.max(first));
        self
    }

    /// Applies everything every tenant's feed holds now, once, and returns; the first failure
    /// stops it (the failed tenant stays at its last saved position). What
    /// [`run_until`](Self::run_until) does between waits, without retrying.
    pub async fn catch_up(&mut self) -> Result<CatchUpReport, FollowError> {
        let mut report = CatchUpReport::default();
        for tenant in self.all_tenants(None).await? {
            self.catch_up_tenant(&tenant, &mut report).await?;
        }
        Ok(report)
    }

    /// Follows until `shutdown` resolves: catches up every tenant, then waits for the
    /// store's subscription (or the poll interval) and catches up the tenants that moved.
    /// Failures are logged and retried with backoff; nothing is skipped. When `shutdown`
    /// resolves the follower stops at its next await point: a batch in flight is abandoned
    /// before its position is saved, so it is delivered again by the next run.
    pub async fn run_until(mut self, shutdown: impl Future<Output = ()> + Send) {
        let run = self.run();
        first(Box::pin(run), Box::pin(shutdown)).await;
    }

    async fn run(&mut self) {
        // Subscribed before the first read: a write committed during the catch-up wakes us.
        let mut subscription = self.store.subscribe();
        let mut failures: u32 = 0;
        let mut sweep = true;
        loop {
            let result = if sweep {
                self.catch_up().await.map(|_| ())
            } else {
                self.catch_up_moved(subscription.as_ref()).await
            };
            match result {
                Ok(()) => failures = 0,
                Err(error) => {
                    failures = failures.saturating_add(1);
                    let pause = self.pause_after(failures);
                    tracing::warn!(error = %error, failures, pause_ms = pause.as_millis() as u64, "feed follower step failed; retrying");
                    // A failed step may have left the host's saved position behind ours.
                    self.known.clear();
                    self.sleep.sleep(pause).await;
                    sweep = true;
                    continue;
                }
            }
            let tick = self.sleep.sleep(self.poll_interval);
            sweep = match subscription.as_mut() {
                Some(sub) => matches!(
                    first(Box::pin(sub.changed()), tick).await,
                    Either::Right(())
                ),
                None => {
                    tick.await;
                    true
                }
            };
        }
    }

    /// The pause after `failures` consecutive failures.
    fn pause_after(&self, failures: u32) -> Duration {
        let (first, max) = self.backoff;
        first
            .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
            .min(max)
    }

    /// Catches up the tenants whose published head is past the position applied.
    async fn catch_up_moved(
        &mut self,
        subscription: Option<&ChangeSubscription>,
    ) -> Result<(), FollowError> {
        let Some(sub) = subscription else {
            return self.catch_up().await.map(|_| ());
        };
        let mut report = CatchUpReport::default();
        let mut heads = sub.heads();
        heads.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        for (tenant, head) in heads {
            if self.known.get(&tenant).is_none_or(|&at| at < head) {
                self.catch_up_tenant(&tenant, &mut report).await?;
            }
        }
        Ok(())
    }

    /// Every tenant of the tenant store, and every tenant the subscription has seen.
    async fn all_tenants(
        &self,
        sub: Option<&ChangeSubscription>,
    ) -> Result<BTreeSet<TenantId>, FollowError> {
        let listed = self
            .tenants
            .list_tenants()
            .await
            .map_err(|e| FollowError::Store {
                tenant: String::new(),
                source: Box::new(e),
            })?;
        let mut out: BTreeSet<TenantId> = listed.into_iter().map(|t| t.id).collect();
        if let Some(sub) = sub {
            out.extend(sub.heads().into_iter().map(|(t, _)| t));
        }
        out.extend(self.known.keys().cloned());
        Ok(out)
    }

    async fn position(&mut self, tenant: &TenantId) -> Result<u64, FollowError> {
        if let Some(&at) = self.known.get(tenant) {
            return Ok(at);
        }
        let at = self
            .cursors
            .load(tenant)
            .await
            .map_err(|source| FollowError::Cursor {
                tenant: tenant.clone(),
                source,
            })?
            .unwrap_or(0);
        self.known.insert(tenant.clone(), at);
        Ok(at)
    }

    async fn saved(&mut self, tenant: &TenantId, at: u64) -> Result<(), FollowError> {
        if self.saving == CursorSaving::AfterHandler {
            self.cursors
                .save(tenant, at)
                .await
                .map_err(|source| FollowError::Cursor {
                    tenant: tenant.clone(),
                    source,
                })?;
        }
        self.known.insert(tenant.clone(), at);
        Ok(())
    }

    async fn catch_up_tenant(
        &mut self,
        tenant: &TenantId,
        report: &mut CatchUpReport,
    ) -> Result<(), FollowError> {
        let store_err = |e: StoreError| FollowError::Store {
            tenant: tenant.to_string(),
            source: Box::new(e),
        };
        let result = async {
            let mut at = self.position(tenant).await?;
            loop {
                let changes = match self.store.changes_since(tenant, at, self.batch_size).await {
                    Ok(c) => c,
                    Err(StoreError::ChangesPruned { .. }) => {
                        let head = self.store.head_seq(tenant).await.map_err(store_err)?;
                        self.handler.resync(tenant, head).await.map_err(|source| {
                            FollowError::Handler {
                                tenant: tenant.clone(),
                                cursor: at,
                                source,
                            }
                        })?;
                        report.resyncs += 1;
                        self.saved(tenant, head).await?;
                        at = head;
                        continue;
                    }
                    Err(e) => return Err(store_err(e)),
                };
                if changes.is_empty() {
                    return Ok(());
                }
                let batch = ChangeBatch {
                    tenant: tenant.clone(),
                    changes: self.with_state(tenant, changes).await.map_err(store_err)?,
                };
                self.handler
                    .apply(&batch)
                    .await
                    .map_err(|source| FollowError::Handler {
                        tenant: tenant.clone(),
                        cursor: at,
                        source,
                    })?;
                report.batches += 1;
                report.changes += batch.changes.len() as u64;
                at = batch.cursor();
                self.saved(tenant, at).await?;
            }
        }
        .await;
        if result.is_err() {
            // Read the position back from the host next time: its transaction may or may not
            // have committed.
            self.known.remove(tenant);
        }
        result
    }

    /// The changes with the current state of their resources: one list read per resource
    /// type (an `id eq ... or ...` filter), whatever the batch size.
    async fn with_state(
        &self,
        tenant: &TenantId,
        changes: Vec<Change>,
    ) -> Result<Vec<ChangeWithState>, StoreError> {
        let mut by_type: HashMap<&str, BTreeSet<&str>> = HashMap::new();
        for c in &changes {
            by_type
                .entry(c.resource_type.as_str())
                .or_default()
                .insert(c.id.as_str());
        }
        let mut found: HashMap<String, StoredResource> = HashMap::new();
        for (rt_name, ids) in by_type {
            let Some(rt) = self.registry.resource_type(rt_name) else {
                continue;
            };
            let filter = ids
                .iter()
                .map(|id| {
                    Filter::compare(
                        AttrPath::new("id"),
                        CompareOp::Eq,
                        CompValue::String((*id).to_owned()),
                    )
                })
                .reduce(Filter::or);
            let query = ListQuery {
                filter,
                max_candidates: MAX_CANDIDATES,
                ..ListQuery::default()
            };
            let page = self.store.list(tenant, rt, &query).await?;
            let resources = if page.pushdown == crate::store::Pushdown::Exact {
                page.resources
            } else if page.resources.len() <= MAX_CANDIDATES {
                crate::store::apply_query(rt, &query, page.resources)?.resources
            } else {
                // A store that cannot narrow by id: one read per resource instead of
                // evaluating the whole type.
                let mut out = Vec::with_capacity(ids.len());
                for id in &ids {
                    match self.store.get(tenant, rt, &(*id).into(), false).await {
                        Ok(r) => out.push(r),
                        Err(StoreError::NotFound { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
                out
            };
            for r in resources {
                found.insert(r.id.as_str().to_owned(), r);
            }
        }
        Ok(changes
            .into_iter()
            .map(|change| {
                let current = found
                    .get(change.id.as_str())
                    .filter(|r| r.resource_type == change.resource_type)
                    .cloned();
                ChangeWithState { change, current }
            })
            .collect())
    }
}

/// The most candidates the state read evaluates itself for a store that cannot answer an
/// `id` filter exactly; beyond, it reads the batch's resources one by one.
const MAX_CANDIDATES: usize = 10_000;

enum Either<A, B> {
    Left(A),
    Right(B),
}

/// Whichever of two futures resolves first (the other is dropped).
async fn first<A, B>(mut a: Pin<Box<A>>, mut b: Pin<Box<B>>) -> Either<A::Output, B::Output>
where
    A: Future + ?Sized,
    B: Future + ?Sized,
{
    std::future::poll_fn(move |cx| {
        if let Poll::Ready(x) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(x));
        }
        if let Poll::Ready(y) = b.as_mut().poll(cx) {
            return Poll::Ready(Either::Right(y));
        }
        Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests;
