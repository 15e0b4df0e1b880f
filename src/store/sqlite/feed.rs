//! The change feed: reading it, its head, and pruning it behind a horizon.

use chrono::{DateTime, Utc};
use sqlx::{Row, SqliteConnection};

use super::{be, parse_ts, ts, SqliteStore};
use crate::feed::{Change, MemberChanges};
use crate::resource::{ResourceId, Version};
use crate::store::{to_u64, StoreError};
use crate::tenant::TenantId;

impl SqliteStore {
    pub(super) async fn do_changes_since(
        &self,
        tenant: &TenantId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Change>, StoreError> {
        let mut conn = self.reader.acquire().await.map_err(be)?;
        // The records first, the horizon second: a prune committed in between raises the
        // horizon read second, so a gap in the records is always reported.
        let rows = sqlx::query(
            "SELECT seq, rt, id, kind, version, at, members, actor FROM changes \
             WHERE tenant = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        )
        .bind(tenant.as_str())
        .bind(crate::store::to_i64(after))
        .bind(i64::try_from(limit).unwrap_or(-1))
        .fetch_all(&mut *conn)
        .await
        .map_err(be)?;
        let pruned_through = horizon(&mut conn, tenant).await?;
        conn.release();
        if after < pruned_through {
            return Err(StoreError::ChangesPruned {
                requested: after,
                pruned_through,
            });
        }
        rows.iter()
            .map(|r| {
                Ok(Change {
                    seq: to_u64(r.try_get("seq").map_err(be)?),
                    tenant: tenant.clone(),
                    resource_type: r.try_get("rt").map_err(be)?,
                    id: ResourceId::new(r.try_get::<String, _>("id").map_err(be)?),
                    kind: crate::store::stored_change_kind(
                        &r.try_get::<String, _>("kind").map_err(be)?,
                    )?,
                    version: Version::new(to_u64(r.try_get("version").map_err(be)?)),
                    at: parse_ts(&r.try_get::<String, _>("at").map_err(be)?)?,
                    members: MemberChanges::from_column(
                        r.try_get::<Option<String>, _>("members")
                            .map_err(be)?
                            .as_deref(),
                    ),
                    actor: r.try_get("actor").map_err(be)?,
                })
            })
            .collect()
    }

    pub(super) async fn do_head_seq(&self, tenant: &TenantId) -> Result<u64, StoreError> {
        let mut conn = self.reader.acquire().await.map_err(be)?;
        let head: i64 = sqlx::query_scalar(
            "SELECT MAX((SELECT COALESCE(MAX(seq), 0) FROM changes WHERE tenant = ?1), \
                        (SELECT COALESCE(MAX(pruned_through), 0) FROM change_horizons WHERE tenant = ?1))",
        )
        .bind(tenant.as_str())
        .fetch_one(&mut *conn)
        .await
        .map_err(be)?;
        conn.release();
        Ok(to_u64(head))
    }

    pub(super) async fn do_prune_changes(
        &self,
        tenant: &TenantId,
        retention: &crate::store::ChangeRetention,
        now: DateTime<Utc>,
    ) -> Result<crate::store::PruneReport, StoreError> {
        let cutoff = retention.cutoff(now).map(|c| ts(&c));
        let budget = retention.per_call();
        let mut removed = 0u64;
        loop {
            let mut tx = self.begin().await?;
            let pruned_through = horizon(&mut tx, tenant).await?;
            let last: Option<i64> =
                sqlx::query_scalar("SELECT MAX(seq) FROM changes WHERE tenant = ?1")
                    .bind(tenant.as_str())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(be)?;
            // The feed is contiguous (a new seq is one above the last, or the horizon) and
            // only loses prefixes: the records beyond the newest `max_entries` are those up
            // to `last - max_entries`.
            let over = retention.max_entries.map_or(pruned_through, |keep| {
                last.map_or(0, to_u64).saturating_sub(keep)
            });
            let room = budget.saturating_sub(removed);
            let window = if room == 0 {
                1
            } else {
                room.min(crate::store::ChangeRetention::BATCH)
            };
            let due = due_prefix(
                &mut tx,
                tenant,
                pruned_through,
                over,
                cutoff.as_deref(),
                window,
            )
            .await?;
            let Some((end, more)) = due else {
                return Ok(crate::store::PruneReport {
                    removed,
                    pruned_through,
                    complete: true,
                });
            };
            if room == 0 {
                return Ok(crate::store::PruneReport {
                    removed,
                    pruned_through,
                    complete: false,
                });
            }
            let deleted =
                sqlx::query("DELETE FROM changes WHERE tenant = ?1 AND seq > ?2 AND seq <= ?3")
                    .bind(tenant.as_str())
                    .bind(crate::store::to_i64(pruned_through))
                    .bind(crate::store::to_i64(end))
                    .execute(&mut *tx)
                    .await
                    .map_err(be)?
                    .rows_affected();
            sqlx::query(
                "INSERT INTO change_horizons (tenant, pruned_through) VALUES (?1, ?2) \
                 ON CONFLICT (tenant) DO UPDATE SET pruned_through = MAX(pruned_through, excluded.pruned_through)",
            )
            .bind(tenant.as_str())
            .bind(crate::store::to_i64(end))
            .execute(&mut *tx)
            .await
            .map_err(be)?;
            tx.commit().await.map_err(be)?;
            removed = removed.saturating_add(deleted);
            if !more {
                return Ok(crate::store::PruneReport {
                    removed,
                    pruned_through: end,
                    complete: true,
                });
            }
        }
    }
}

/// The tenant's prune horizon (0 when never pruned).
pub(super) async fn horizon(
    conn: &mut SqliteConnection,
    tenant: &TenantId,
) -> Result<u64, StoreError> {
    let h: Option<i64> =
        sqlx::query_scalar("SELECT pruned_through FROM change_horizons WHERE tenant = ?1")
            .bind(tenant.as_str())
            .fetch_optional(&mut *conn)
            .await
            .map_err(be)?;
    Ok(h.map_or(0, to_u64))
}

/// Among the first `window` records after `pruned_through` (a primary-key range read), the
/// last `seq` of the prefix that is due: up to `over`, or committed before `cutoff` (an
/// RFC 3339 string as [`ts`] writes them, which sort as the times do). `None` when nothing
/// is due; otherwise the end and whether records after the window may be due too.
pub(super) async fn due_prefix(
    conn: &mut SqliteConnection,
    tenant: &TenantId,
    pruned_through: u64,
    over: u64,
    cutoff: Option<&str>,
    window: u64,
) -> Result<Option<(u64, bool)>, StoreError> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, MAX(seq) AS last, \
                MIN(CASE WHEN seq <= ?3 OR (?4 IS NOT NULL AND at < ?4) THEN NULL ELSE seq END) AS kept \
         FROM (SELECT seq, at FROM changes WHERE tenant = ?1 AND seq > ?2 ORDER BY seq LIMIT ?5)",
    )
    .bind(tenant.as_str())
    .bind(crate::store::to_i64(pruned_through))
    .bind(crate::store::to_i64(over))
    .bind(cutoff)
    .bind(crate::store::to_i64(window))
    .fetch_one(&mut *conn)
    .await
    .map_err(be)?;
    let n: i64 = row.try_get("n").map_err(be)?;
    let last: Option<i64> = row.try_get("last").map_err(be)?;
    let kept: Option<i64> = row.try_get("kept").map_err(be)?;
    let end = match (kept, last) {
        (Some(k), _) => to_u64(k).saturating_sub(1),
        (None, Some(l)) => to_u64(l),
        (None, None) => return Ok(None),
    };
    if end <= pruned_through {
        return Ok(None);
    }
    Ok(Some((end, kept.is_none() && to_u64(n) >= window)))
}
