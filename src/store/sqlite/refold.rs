//! Migration 3: the stored folded copies re-computed with Unicode full case folding.
//!
//! Before it, the folded copies (`fdoc`, `user_name_cf`, `display_name_cf`, `member_cf` and the
//! `unique_keys` values of attributes that are not `caseExact`) were lower-cased with
//! `str::to_lowercase`; [`crate::filter::fold_case`] now folds them, so they are recomputed
//! here, in Rust (SQL's `lower()` folds differently), from each row's document.
//!
//! The work is batched: each transaction re-folds at most [`BATCH`] resources (with their
//! uniqueness keys and, for a group, its member rows), so neither a large database nor a
//! concurrent writer waits on one long transaction. Re-folding is idempotent (it derives
//! everything from the unchanged documents), so a migration interrupted half-way simply
//! starts again on the next open, and the version is recorded only once every batch is done.
//!
//! Uniqueness keys: the table keeps the key value, not which attribute definition produced it
//! (the store does not know the schemas). A key that is its own lower case was folded (or is
//! a `caseExact` value that happens to be lower case: then re-folding only changes it when it
//! holds a character such as `ß` whose folding is not its lower case, the one case this
//! migration cannot tell apart); a key with upper-case letters was stored `caseExact` and is
//! kept. Two keys that become equal (a `"straße"` and a `"STRASSE"` created under the old
//! rule) cannot both hold the new key: one of them keeps its old key, with a warning in the
//! log, until that resource is next written.

use serde_json::Value;
use sqlx::{Connection, Row, SqliteConnection};

use crate::filter::fold_case;
use crate::store::StoreError;

/// Resources re-folded per transaction.
pub(super) const BATCH: i64 = 200;

fn be(e: sqlx::Error) -> StoreError {
    StoreError::backend(e)
}

/// Re-folds every stored folded copy, [`BATCH`] resources per transaction.
pub(super) async fn refold(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    let mut after = i64::MIN;
    loop {
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(be)?;
        let rows = sqlx::query(
            "SELECT ord, tenant, id, doc FROM resources WHERE ord > ?1 ORDER BY ord LIMIT ?2",
        )
        .bind(after)
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await
        .map_err(be)?;
        let Some(last) = rows.last() else {
            tx.commit().await.map_err(be)?;
            return Ok(());
        };
        after = last.try_get("ord").map_err(be)?;
        for row in &rows {
            let ord: i64 = row.try_get("ord").map_err(be)?;
            let tenant: String = row.try_get("tenant").map_err(be)?;
            let id: String = row.try_get("id").map_err(be)?;
            let doc: String = row.try_get("doc").map_err(be)?;
            let doc: Value = serde_json::from_str(&doc).map_err(StoreError::backend)?;
            let derived = super::derive(&doc)?;
            sqlx::query(
                "UPDATE resources SET fdoc = ?1, user_name_cf = ?2, display_name_cf = ?3 \
                 WHERE ord = ?4",
            )
            .bind(&derived.fdoc)
            .bind(&derived.user_name_cf)
            .bind(&derived.display_name_cf)
            .bind(ord)
            .execute(&mut *tx)
            .await
            .map_err(be)?;
            refold_keys(&mut tx, &tenant, &id).await?;
            refold_members(&mut tx, &tenant, &id).await?;
        }
        tx.commit().await.map_err(be)?;
    }
}

/// The re-folded value of a uniqueness key, `None` when it stays (see the module notes).
pub(super) fn refolded_key(value: &str) -> Option<String> {
    if value.to_lowercase() != value {
        return None;
    }
    let folded = fold_case(value);
    (folded != value).then(|| folded.into_owned())
}

async fn refold_keys(tx: &mut SqliteConnection, tenant: &str, id: &str) -> Result<(), StoreError> {
    let keys =
        sqlx::query("SELECT rt, attribute, value FROM unique_keys WHERE tenant = ?1 AND id = ?2")
            .bind(tenant)
            .bind(id)
            .fetch_all(&mut *tx)
            .await
            .map_err(be)?;
    for key in &keys {
        let rt: String = key.try_get("rt").map_err(be)?;
        let attribute: String = key.try_get("attribute").map_err(be)?;
        let value: String = key.try_get("value").map_err(be)?;
        let Some(new) = refolded_key(&value) else {
            continue;
        };
        let done = sqlx::query(
            "UPDATE OR IGNORE unique_keys SET value = ?5 \
             WHERE tenant = ?1 AND rt = ?2 AND attribute = ?3 AND value = ?4",
        )
        .bind(tenant)
        .bind(&rt)
        .bind(&attribute)
        .bind(&value)
        .bind(&new)
        .execute(&mut *tx)
        .await
        .map_err(be)?;
        if done.rows_affected() == 0 {
            tracing::warn!(
                tenant,
                id,
                attribute,
                "re-folding a uniqueness key collides with another resource's key: kept the old key"
            );
        }
    }
    Ok(())
}

async fn refold_members(
    tx: &mut SqliteConnection,
    tenant: &str,
    group: &str,
) -> Result<(), StoreError> {
    let rows =
        sqlx::query("SELECT member_id, member_cf FROM members WHERE tenant = ?1 AND group_id = ?2")
            .bind(tenant)
            .bind(group)
            .fetch_all(&mut *tx)
            .await
            .map_err(be)?;
    for row in &rows {
        let member: String = row.try_get("member_id").map_err(be)?;
        let old: String = row.try_get("member_cf").map_err(be)?;
        let folded = fold_case(&member);
        if folded != old.as_str() {
            sqlx::query(
                "UPDATE members SET member_cf = ?4 WHERE tenant = ?1 AND group_id = ?2 AND member_id = ?3",
            )
            .bind(tenant)
            .bind(group)
            .bind(&member)
            .bind(folded.as_ref())
            .execute(&mut *tx)
            .await
            .map_err(be)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_refolded_only_when_they_were_folded() {
        assert_eq!(refolded_key("straße").as_deref(), Some("strasse"));
        assert_eq!(refolded_key("οδος").as_deref(), Some("οδοσ"));
        assert_eq!(refolded_key("bjensen"), None, "already folded");
        assert_eq!(refolded_key("Straße"), None, "caseExact: it has upper case");
        assert_eq!(refolded_key("ABC"), None);
    }
}
