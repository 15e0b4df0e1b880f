//! The connections the SQL stores read through: a small pool that hands a connection back
//! without a round trip.
//!
//! sqlx's pool pings every connection it takes back (a spawned task, then one round trip to
//! the connection's worker thread for SQLite, to the server for PostgreSQL) before another
//! request may use it. For a read that costs about as much as the read itself: measured with
//! `scripts/load.sh`, dropping that ping raised a GET by id from 7.3k to 10.7k requests/s on
//! SQLite and from 7.1k to 10.1k on PostgreSQL. The ping is there to flush what a cancelled
//! transaction left behind; reads hold no transaction, so this pool pings only a connection
//! that has reason to be doubted:
//! - one given back without [`ReadConn::release`] (its request failed, or was cancelled
//!   mid-statement), and
//! - one idle for at least the pool's `ping_after` (a server restart or a firewall may have
//!   dropped it).
//!
//! A connection whose ping fails is dropped and a new one opened in its place, and so is one
//! older than the pool's `max_lifetime` (PostgreSQL: the sqlx pool's, 30 minutes by default),
//! so that no server session lives forever: a session keeps, for each prepared statement, the
//! server's choice between planning every execution and a generic plan, and a choice made
//! before the table's statistics existed (an import into a new database) can otherwise stay
//! for the life of the connection, planning every read anew. Connections
//! open on first need, up to the pool's size; a request waits for a free one at most the
//! acquire timeout. Writes keep sqlx's pool: they run in transactions, where the ping on
//! release is what rolls back one a cancelled request left open.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sqlx::{ConnectOptions, Connection};
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard, Semaphore, SemaphorePermit};

/// One place for a connection: empty until first needed (or after its connection broke).
struct Slot<C> {
    conn: Option<C>,
    /// When it was last lent.
    since: Instant,
    /// When its connection was opened.
    opened: Instant,
}

/// Up to `size` connections for reads, opened with `options` on first need.
pub(crate) struct ReadPool<C: Connection> {
    options: <C as Connection>::Options,
    slots: Box<[(Mutex<Slot<C>>, AtomicBool)]>,
    permits: Semaphore,
    ping_after: Option<Duration>,
    max_lifetime: Option<Duration>,
    acquire_timeout: Duration,
}

impl<C: Connection> ReadPool<C> {
    /// A pool of at most `size` connections (at least one). `ping_after`: ping a connection
    /// not lent for this long before lending it (`None`: only doubted ones, see the module
    /// notes).
    pub(crate) fn new(
        options: <C as Connection>::Options,
        size: u32,
        ping_after: Option<Duration>,
        acquire_timeout: Duration,
    ) -> Self {
        let size = usize::try_from(size.max(1)).unwrap_or(1);
        let now = Instant::now();
        ReadPool {
            options,
            // The second field: whether the slot's last user vouched for its connection.
            slots: (0..size)
                .map(|_| {
                    (
                        Mutex::new(Slot {
                            conn: None,
                            since: now,
                            opened: now,
                        }),
                        AtomicBool::new(true),
                    )
                })
                .collect(),
            permits: Semaphore::new(size),
            ping_after,
            max_lifetime: None,
            acquire_timeout,
        }
    }

    /// Replaces a connection once it is `max_lifetime` old (`None`: never), when it is next
    /// lent.
    pub(crate) fn with_max_lifetime(mut self, max_lifetime: Option<Duration>) -> Self {
        self.max_lifetime = max_lifetime;
        self
    }

    /// A connection for one request, waiting at most the acquire timeout for a free one.
    pub(crate) async fn acquire(&self) -> Result<ReadConn<'_, C>, sqlx::Error> {
        let permit = match tokio::time::timeout(self.acquire_timeout, self.permits.acquire()).await
        {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => return Err(sqlx::Error::PoolClosed),
            Err(_) => return Err(sqlx::Error::PoolTimedOut),
        };
        // Every holder of a slot holds a permit, so with one in hand a slot is free. The
        // first free one is taken: the low slots stay busy and warm, the high ones idle.
        let Some((mut slot, sound)) = self
            .slots
            .iter()
            .find_map(|(slot, sound)| slot.try_lock().ok().map(|slot| (slot, sound)))
        else {
            return Err(sqlx::Error::PoolTimedOut);
        };
        let doubted = !sound.swap(false, Ordering::AcqRel)
            || self
                .ping_after
                .is_some_and(|after| slot.since.elapsed() >= after);
        let expired = self
            .max_lifetime
            .is_some_and(|max| slot.opened.elapsed() >= max);
        let conn = match slot.conn.take() {
            Some(conn) if expired => {
                // Closed politely; a failure leaves nothing behind on this side.
                let _ = conn.close().await;
                self.connect(&mut slot).await?
            }
            Some(conn) if !doubted => conn,
            Some(mut conn) => match conn.ping().await {
                Ok(()) => conn,
                // Dropping a broken connection closes its socket or worker.
                Err(_) => self.connect(&mut slot).await?,
            },
            None => self.connect(&mut slot).await?,
        };
        slot.since = Instant::now();
        Ok(ReadConn {
            conn: MutexGuard::map(slot, |slot| slot.conn.insert(conn)),
            sound,
            _permit: permit,
        })
    }

    /// A new connection for `slot`, which records when it was opened.
    async fn connect(&self, slot: &mut Slot<C>) -> Result<C, sqlx::Error> {
        let conn = self.options.connect().await?;
        slot.opened = Instant::now();
        Ok(conn)
    }

    /// Refuses new requests, waits for the connections in use to come back, and closes all.
    pub(crate) async fn close(&self) {
        self.permits.close();
        for (slot, _) in self.slots.iter() {
            if let Some(conn) = slot.lock().await.conn.take() {
                // A failure to say goodbye changes nothing for a pool that is going away.
                let _ = conn.close().await;
            }
        }
    }
}

/// A connection lent by a [`ReadPool`]; it goes back when dropped. Call
/// [`release`](Self::release) once its reads succeeded, so that the next user need not ping it.
pub(crate) struct ReadConn<'p, C: Connection> {
    // Declared before the permit, so the slot is free before the permit is back.
    conn: MappedMutexGuard<'p, C>,
    sound: &'p AtomicBool,
    _permit: SemaphorePermit<'p>,
}

impl<C: Connection> ReadConn<'_, C> {
    /// Gives the connection back as sound: every statement run on it completed.
    pub(crate) fn release(self) {
        self.sound.store(true, Ordering::Release);
    }
}

impl<C: Connection> Deref for ReadConn<'_, C> {
    type Target = C;

    fn deref(&self) -> &C {
        &self.conn
    }
}

impl<C: Connection> DerefMut for ReadConn<'_, C> {
    fn deref_mut(&mut self) -> &mut C {
        &mut self.conn
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use std::str::FromStr;

    use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
    use sqlx::Row;

    use super::*;

    /// A pool of connections to one in-memory database. A temporary table is seen by its
    /// connection only, so it tells which connection a request got.
    fn pool(size: u32, timeout: Duration) -> ReadPool<SqliteConnection> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:").unwrap();
        ReadPool::new(options, size, None, timeout)
    }

    /// Leaves a temporary table on the connection, to know it again.
    async fn mark(conn: &mut SqliteConnection) {
        sqlx::query("CREATE TEMP TABLE marker (x)")
            .execute(conn)
            .await
            .unwrap();
    }

    async fn tables(conn: &mut SqliteConnection) -> i64 {
        sqlx::query("SELECT count(*) FROM sqlite_temp_master WHERE type = 'table'")
            .fetch_one(conn)
            .await
            .unwrap()
            .get(0)
    }

    #[tokio::test]
    async fn a_released_connection_is_lent_again_and_a_busy_pool_opens_another() {
        let pool = pool(2, Duration::from_secs(5));
        let mut first = pool.acquire().await.unwrap();
        mark(&mut first).await;
        first.release();
        // Taken back in order: the same connection, its table still there.
        let mut again = pool.acquire().await.unwrap();
        assert_eq!(tables(&mut again).await, 1);
        // While it is lent, a second request gets a second connection.
        let mut second = pool.acquire().await.unwrap();
        assert_eq!(tables(&mut second).await, 0);
        again.release();
        second.release();
    }

    #[tokio::test]
    async fn a_connection_given_back_without_release_is_kept_after_its_ping() {
        let pool = pool(1, Duration::from_secs(5));
        let mut conn = pool.acquire().await.unwrap();
        mark(&mut conn).await;
        drop(conn); // as when a request fails or is cancelled
        let mut conn = pool.acquire().await.unwrap();
        assert_eq!(
            tables(&mut conn).await,
            1,
            "the ping succeeded: the same connection"
        );
        conn.release();
    }

    #[tokio::test]
    async fn a_connection_past_its_lifetime_is_replaced() {
        let options = SqliteConnectOptions::from_str("sqlite::memory:").unwrap();
        let pool: ReadPool<SqliteConnection> =
            ReadPool::new(options, 1, None, Duration::from_secs(5))
                .with_max_lifetime(Some(Duration::from_secs(1)));
        let mut conn = pool.acquire().await.unwrap();
        mark(&mut conn).await;
        conn.release();
        let mut young = pool.acquire().await.unwrap();
        assert_eq!(tables(&mut young).await, 1, "still young: the same one");
        young.release();
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let mut old = pool.acquire().await.unwrap();
        assert_eq!(tables(&mut old).await, 0, "past its lifetime: a new one");
        mark(&mut old).await;
        old.release();
        let mut kept = pool.acquire().await.unwrap();
        assert_eq!(tables(&mut kept).await, 1, "the new one's life starts anew");
        kept.release();
    }

    #[tokio::test]
    async fn a_full_pool_makes_a_request_wait_then_time_out() {
        let pool = pool(1, Duration::from_millis(50));
        let held = pool.acquire().await.unwrap();
        assert!(matches!(
            pool.acquire().await,
            Err(sqlx::Error::PoolTimedOut)
        ));
        held.release();
        assert!(pool.acquire().await.is_ok(), "free again once given back");
    }

    #[tokio::test]
    async fn a_closed_pool_refuses_requests() {
        let pool = pool(2, Duration::from_secs(5));
        pool.acquire().await.unwrap().release();
        pool.close().await;
        assert!(matches!(pool.acquire().await, Err(sqlx::Error::PoolClosed)));
    }
}
