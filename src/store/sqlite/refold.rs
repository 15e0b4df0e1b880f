//! Migration 3: the stored folded copies re-computed with Unicode full case folding.
//!
//! Before it, the folded copies (`fdoc`, `user_name_cf`, `display_name_cf`, `member_cf` and the
//! `unique_keys` values of attributes that are not `caseExact`) were lower-cased with
//! `str::to_lowercase`; [`crate::filter::fold_case`] now folds them, so they are recomputed
//! here, in Rust (SQL's `lower()` folds differently), from each row's document.
//!
//! The work is batched (the loop is shared with the PostgreSQL store, `store::sql::refold`): each transaction re-folds at most `BATCH` resources (with their
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

use async_trait::async_trait;
use sqlx::{Connection, Row, Sqlite, SqliteConnection, Transaction};

use crate::filter::fold_case;
use crate::store::sql::refold::{RefoldStatements, ToRefold};
use crate::store::{BatchConnection, StoreError};

fn be(e: sqlx::Error) -> StoreError {
    StoreError::backend(e)
}

/// The re-folded value of a uniqueness key, `None` when it stays (see the module notes).
pub(super) fn refolded_key(value: &str) -> Option<String> {
    if value.to_lowercase() != value {
        return None;
    }
    let folded = fold_case(value);
    (folded != value).then(|| folded.into_owned())
}

/// Batches (here and in the sort-key rebuild) open their transactions with
/// `BEGIN IMMEDIATE`.
#[async_trait]
impl BatchConnection for SqliteConnection {
    async fn begin_batch(&mut self) -> Result<Transaction<'_, Sqlite>, StoreError> {
        self.begin_with("BEGIN IMMEDIATE").await.map_err(be)
    }
}

#[async_trait]
impl RefoldStatements for SqliteConnection {
    async fn resources_after(&mut self, after: i64, n: i64) -> Result<Vec<ToRefold>, StoreError> {
        let rows = sqlx::query(
            "SELECT ord, tenant, id, doc FROM resources WHERE ord > ?1 ORDER BY ord LIMIT ?2",
        )
        .bind(after)
        .bind(n)
        .fetch_all(&mut *self)
        .await
        .map_err(be)?;
        rows.iter().map(ToRefold::from_row).collect()
    }

    async fn refold_row(&mut self, r: &ToRefold) -> Result<(), StoreError> {
        let derived = super::derive(&r.doc)?;
        sqlx::query(
            "UPDATE resources SET fdoc = ?1, user_name_cf = ?2, display_name_cf = ?3 \
             WHERE ord = ?4",
        )
        .bind(&derived.fdoc)
        .bind(&derived.user_name_cf)
        .bind(&derived.display_name_cf)
        .bind(r.ord)
        .execute(&mut *self)
        .await
        .map_err(be)?;
        Ok(())
    }

    async fn refold_keys(&mut self, r: &ToRefold) -> Result<Vec<String>, StoreError> {
        let keys = sqlx::query(
            "SELECT rt, attribute, value FROM unique_keys WHERE tenant = ?1 AND id = ?2",
        )
        .bind(&r.tenant)
        .bind(&r.id)
        .fetch_all(&mut *self)
        .await
        .map_err(be)?;
        let mut kept = Vec::new();
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
            .bind(&r.tenant)
            .bind(&rt)
            .bind(&attribute)
            .bind(&value)
            .bind(&new)
            .execute(&mut *self)
            .await
            .map_err(be)?;
            if done.rows_affected() == 0 {
                kept.push(attribute);
            }
        }
        Ok(kept)
    }

    async fn member_folds(
        &mut self,
        tenant: &str,
        group: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        sqlx::query_as(
            "SELECT member_id, member_cf FROM members WHERE tenant = ?1 AND group_id = ?2",
        )
        .bind(tenant)
        .bind(group)
        .fetch_all(&mut *self)
        .await
        .map_err(be)
    }

    async fn set_member_fold(
        &mut self,
        tenant: &str,
        group: &str,
        member: &str,
        folded: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE members SET member_cf = ?4 WHERE tenant = ?1 AND group_id = ?2 AND member_id = ?3",
        )
        .bind(tenant)
        .bind(group)
        .bind(member)
        .bind(folded)
        .execute(&mut *self)
        .await
        .map_err(be)?;
        Ok(())
    }
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
