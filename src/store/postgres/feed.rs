//! The change feed: appending change records, reading and pruning them, and the
//! cross-instance notification (PostgreSQL `LISTEN`/`NOTIFY`).

use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, Row};

use super::{db_err, from_ns, PostgresStore, Tx, CHANGES_CHANNEL, TENANTS_CHANNEL};
use crate::feed::{Change, ChangeKind, MemberChanges};
use crate::resource::{ResourceId, Version};
use crate::store::StoreError;
use crate::tenant::TenantId;

/// One change record to append.
pub(super) struct NewChange<'a> {
    pub(super) resource_type: &'a str,
    pub(super) id: &'a str,
    pub(super) kind: ChangeKind,
    pub(super) version: Version,
    pub(super) members: Option<MemberChanges>,
    pub(super) actor: Option<&'a str>,
}

/// Appends change records, numbering them from the tenant's counter (whose row lock orders
/// the tenant's writers until commit). Returns the last sequence number.
pub(super) async fn push_changes(
    tx: &mut Tx,
    tenant: &TenantId,
    at: i64,
    changes: &[NewChange<'_>],
) -> Result<u64, StoreError> {
    push_changes_bumping(tx, tenant, at, changes, None).await
}

/// [`push_changes`], also setting resource `bump.0` to version `bump.1` (and its
/// `lastModified` to `at`) in the same statement.
pub(super) async fn push_changes_bumping(
    tx: &mut Tx,
    tenant: &TenantId,
    at: i64,
    changes: &[NewChange<'_>],
    bump: Option<(&str, i64)>,
) -> Result<u64, StoreError> {
    let n = i64::try_from(changes.len()).unwrap_or(i64::MAX);
    let up = if bump.is_some() {
        "up AS (UPDATE scimkit_resources SET version = $11, last_modified = $3 \
         WHERE tenant = $1 AND id = $10), "
    } else {
        ""
    };
    let q = sqlx::query_scalar(AssertSqlSafe(format!(
        "WITH {up}s AS (INSERT INTO scimkit_feed_seq (tenant, last_seq) VALUES ($1, $2) \
           ON CONFLICT (tenant) DO UPDATE SET last_seq = scimkit_feed_seq.last_seq + $2 \
           RETURNING last_seq), \
         c AS (INSERT INTO scimkit_changes (tenant, seq, resource_type, id, kind, version, at, members, actor) \
           SELECT $1, s.last_seq - $2 + u.n, u.rt, u.id, u.kind, u.version, $3, u.members, u.actor \
           FROM s, unnest($4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[], $9::text[]) \
           WITH ORDINALITY AS u(rt, id, kind, version, members, actor, n)) \
         SELECT last_seq FROM s, \
           LATERAL (SELECT pg_notify('scimkit_changes', s.last_seq || ' ' || $1)) AS n"
    )))
    .bind(tenant.as_str())
    .bind(n)
    .bind(at)
    .bind(
        changes
            .iter()
            .map(|c| c.resource_type.to_owned())
            .collect::<Vec<_>>(),
    )
    .bind(changes.iter().map(|c| c.id.to_owned()).collect::<Vec<_>>())
    .bind(
        changes
            .iter()
            .map(|c| c.kind.as_str().to_owned())
            .collect::<Vec<_>>(),
    )
    .bind(
        changes
            .iter()
            .map(|c| crate::store::to_i64(c.version.get()))
            .collect::<Vec<_>>(),
    )
    .bind(
        changes
            .iter()
            .map(|c| c.members.as_ref().map(MemberChanges::to_column))
            .collect::<Vec<_>>(),
    )
    .bind(
        changes
            .iter()
            .map(|c| c.actor.map(str::to_owned))
            .collect::<Vec<_>>(),
    );
    let q = match bump {
        Some((id, version)) => q.bind(id.to_owned()).bind(version),
        None => q,
    };
    let last: i64 = q.fetch_one(&mut **tx).await.map_err(db_err)?;
    Ok(u64::try_from(last).unwrap_or(0))
}

impl PostgresStore {
    /// Listens for what other instances sharing the database commit, and acts on it in this
    /// one: a tenant or token change (revocation, expiry, SCIM switched off, new settings)
    /// drops the cached records of that tenant at once, and a resource write wakes this
    /// handle's subscriptions ([`ResourceStore::subscribe`](crate::store::ResourceStore::subscribe), shared by its clones) and its
    /// [`ChangeNotifier`](crate::feed::ChangeNotifier) with the tenant and sequence number. Writers notify with
    /// PostgreSQL's `NOTIFY` in their transaction, so nothing is announced before it commits.
    ///
    /// Runs until dropped: spawn it once per process, on the runtime sqlx runs on
    /// (`tokio::spawn(store.listen())`). It holds one connection of the pool. When the
    /// connection drops it reconnects (pausing up to 5 s between failed attempts) and, since
    /// notifications may have been missed meanwhile, forgets every cached record and wakes
    /// every subscription (so that its reader reads the feed again).
    pub fn listen(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let store = self.clone();
        async move {
            let mut failures: u32 = 0;
            loop {
                let error = store.listen_session(&mut failures).await;
                store.tenant_cache.clear();
                failures = failures.saturating_add(1);
                tracing::warn!(error = %error, failures, "listening for PostgreSQL notifications failed; reconnecting");
                let pause = std::time::Duration::from_millis(100u64 << failures.min(6));
                tokio::time::sleep(pause.min(std::time::Duration::from_secs(5))).await;
            }
        }
    }

    /// One listening connection, until it fails.
    async fn listen_session(&self, failures: &mut u32) -> sqlx::Error {
        let mut listener = match sqlx::postgres::PgListener::connect_with(&self.pool).await {
            Ok(l) => l,
            Err(e) => return e,
        };
        if let Err(e) = listener
            .listen_all([TENANTS_CHANNEL, CHANGES_CHANNEL])
            .await
        {
            return e;
        }
        // Whatever changed before this point may not have been heard.
        self.tenant_cache.clear();
        self.hub.wake();
        *failures = 0;
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => self.on_notification(n.channel(), n.payload()),
                // Reconnected: notifications may have been missed.
                Ok(None) => {
                    self.tenant_cache.clear();
                    self.hub.wake();
                }
                Err(e) => return e,
            }
        }
    }

    fn on_notification(&self, channel: &str, payload: &str) {
        match channel {
            TENANTS_CHANNEL => match TenantId::new(payload) {
                Ok(tenant) => self.tenant_cache.forget_tenant(&tenant),
                Err(_) => self.tenant_cache.clear(),
            },
            CHANGES_CHANNEL => {
                let parsed = payload.split_once(' ').and_then(|(seq, tenant)| {
                    Some((seq.parse::<u64>().ok()?, TenantId::new(tenant).ok()?))
                });
                if let Some((seq, tenant)) = parsed {
                    self.notify(&tenant, Some(seq));
                }
            }
            _ => {}
        }
    }

    /// [`crate::store::ResourceStore::changes_since`]: up to `limit` change records after `after`.
    pub(super) async fn read_changes(
        &self,
        tenant: &TenantId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Change>, StoreError> {
        let after_u64 = after;
        let Ok(after) = i64::try_from(after) else {
            return Ok(Vec::new());
        };
        let rows = sqlx::query(
            "SELECT seq, resource_type, id, kind, version, at, members, actor FROM scimkit_changes \
             WHERE tenant = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(tenant.as_str())
        .bind(after)
        .bind(crate::store::to_i64(limit as u64))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        // The records first, the horizon second (a later snapshot): a prune committed in
        // between raises the horizon read here, so a gap in the records is always reported.
        let pruned_through: Option<i64> =
            sqlx::query_scalar("SELECT pruned_through FROM scimkit_feed_seq WHERE tenant = $1")
                .bind(tenant.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?;
        let pruned_through = pruned_through.map_or(0, |p| u64::try_from(p).unwrap_or(0));
        if after_u64 < pruned_through {
            return Err(StoreError::ChangesPruned {
                requested: after_u64,
                pruned_through,
            });
        }
        rows.iter()
            .map(|row| {
                let seq: i64 = row.try_get(0).map_err(db_err)?;
                let kind: String = row.try_get(3).map_err(db_err)?;
                let version: i64 = row.try_get(4).map_err(db_err)?;
                let at: i64 = row.try_get(5).map_err(db_err)?;
                Ok(Change {
                    seq: u64::try_from(seq).unwrap_or(0),
                    tenant: tenant.clone(),
                    resource_type: row.try_get(1).map_err(db_err)?,
                    id: ResourceId::new(row.try_get::<String, _>(2).map_err(db_err)?),
                    kind: crate::store::stored_change_kind(&kind)?,
                    version: Version::new(u64::try_from(version).unwrap_or(0)),
                    at: from_ns(at),
                    members: MemberChanges::from_column(
                        row.try_get::<Option<String>, _>(6)
                            .map_err(db_err)?
                            .as_deref(),
                    ),
                    actor: row.try_get(7).map_err(db_err)?,
                })
            })
            .collect()
    }

    /// [`crate::store::ResourceStore::prune_changes`]: drops change records past `retention`, in bounded batches.
    pub(super) async fn prune_feed(
        &self,
        tenant: &TenantId,
        retention: &crate::store::ChangeRetention,
        now: DateTime<Utc>,
    ) -> Result<crate::store::PruneReport, StoreError> {
        // Times beyond what the `at` column holds: before 1677 nothing is that old, after
        // 2262 everything is.
        let cutoff = retention.cutoff(now).map(|c| {
            c.timestamp_nanos_opt().unwrap_or(if c.timestamp() < 0 {
                i64::MIN
            } else {
                i64::MAX
            })
        });
        let budget = retention.per_call();
        let mut removed = 0u64;
        loop {
            let mut tx = self.begin().await?;
            // The counter row's lock serialises pruners of the tenant (and holds its writers
            // for one batch).
            let row = sqlx::query(
                "SELECT last_seq, pruned_through FROM scimkit_feed_seq WHERE tenant = $1 FOR UPDATE",
            )
            .bind(tenant.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
            let Some(row) = row else {
                return Ok(crate::store::PruneReport {
                    removed,
                    pruned_through: 0,
                    complete: true,
                });
            };
            let last: i64 = row.try_get(0).map_err(db_err)?;
            let pruned: i64 = row.try_get(1).map_err(db_err)?;
            let pruned_through = u64::try_from(pruned).unwrap_or(0);
            // The feed is contiguous (each write takes the next numbers of the counter, in
            // its transaction) and only loses prefixes: the records beyond the newest
            // `max_entries` are those up to `last_seq - max_entries`.
            let over = retention.max_entries.map_or(pruned, |keep| {
                last.saturating_sub(crate::store::to_i64(keep))
            });
            let room = budget.saturating_sub(removed);
            let window = if room == 0 {
                1
            } else {
                room.min(crate::store::ChangeRetention::BATCH)
            };
            // The first `window` records after the horizon (a primary-key range read), and
            // the first of them that is not due: the due prefix ends before it.
            let probe = sqlx::query(
                "SELECT count(*), max(seq), \
                        min(seq) FILTER (WHERE NOT (seq <= $3 OR at < $4)) \
                 FROM (SELECT seq, at FROM scimkit_changes WHERE tenant = $1 AND seq > $2 \
                       ORDER BY seq LIMIT $5) AS w",
            )
            .bind(tenant.as_str())
            .bind(pruned)
            .bind(over)
            .bind(cutoff.unwrap_or(i64::MIN))
            .bind(crate::store::to_i64(window))
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
            let n: i64 = probe.try_get(0).map_err(db_err)?;
            let max: Option<i64> = probe.try_get(1).map_err(db_err)?;
            let kept: Option<i64> = probe.try_get(2).map_err(db_err)?;
            let end = match (kept, max) {
                (Some(k), _) => k.saturating_sub(1),
                (None, Some(m)) => m,
                (None, None) => pruned,
            };
            if end <= pruned || room == 0 {
                return Ok(crate::store::PruneReport {
                    removed,
                    pruned_through,
                    complete: end <= pruned,
                });
            }
            let deleted = sqlx::query(
                "DELETE FROM scimkit_changes WHERE tenant = $1 AND seq > $2 AND seq <= $3",
            )
            .bind(tenant.as_str())
            .bind(pruned)
            .bind(end)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?
            .rows_affected();
            sqlx::query("UPDATE scimkit_feed_seq SET pruned_through = $2 WHERE tenant = $1")
                .bind(tenant.as_str())
                .bind(end)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            tx.commit().await.map_err(db_err)?;
            removed = removed.saturating_add(deleted);
            let more = kept.is_none() && n >= crate::store::to_i64(window);
            if !more {
                return Ok(crate::store::PruneReport {
                    removed,
                    pruned_through: u64::try_from(end).unwrap_or(0),
                    complete: true,
                });
            }
        }
    }
}
