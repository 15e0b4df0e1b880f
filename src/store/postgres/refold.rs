//! Migration 3: the stored folded copies re-computed with Unicode full case folding.
//!
//! Before it, `doc_fold`, `user_name_fold`, `display_name_fold`, `member_fold` and the hashed
//! uniqueness keys of attributes that are not `caseExact` were lower-cased with
//! `str::to_lowercase`; [`crate::filter::fold_case`] now folds them, so they are recomputed
//! here, in Rust (SQL's `lower()` folds differently), from each row's document.
//!
//! The work is batched (the loop is shared with the SQLite store, `store::sql::refold`): each transaction re-folds at most `BATCH` resources (with their
//! uniqueness keys and, for a group, its member rows). It runs under the migrations' advisory
//! lock, is idempotent (everything is derived from the unchanged documents), and is recorded
//! only when every batch is done, so an interrupted run starts again at the next start-up.
//!
//! Uniqueness keys are hashes: a key is re-computed when it is the hash of its attribute's
//! value lower-cased the old way (it was folded, or it is a `caseExact` value that happens to
//! be lower case, which the store cannot tell apart: the same rule as the SQLite store); the
//! key of a value with upper case stored `caseExact` is kept. Two keys that become equal (a
//! `"straße"` and a `"STRASSE"` created under the old rule) cannot both hold the new key: one
//! of them keeps its old key, with a warning in the log, until that resource is next written.

use async_trait::async_trait;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::{Connection, PgConnection, Postgres, Row, Transaction};

use super::{db_err, Columns};
use crate::filter::{fold_case, fold_strings};
use crate::store::sql::refold::{RefoldStatements, ToRefold};
use crate::store::{BatchConnection, StoreError};

/// The value a uniqueness key was computed from: a core attribute (`userName`) or an
/// extension's (`urn:...:employeeNumber`).
fn key_source<'d>(doc: &'d Value, attribute: &str) -> Option<&'d str> {
    if let Some(v) = doc.get(attribute).and_then(Value::as_str) {
        return Some(v);
    }
    let (urn, name) = attribute.rsplit_once(':')?;
    doc.get(urn)?.get(name)?.as_str()
}

/// Batches (here and in the sort-key rebuild) open their transactions with
/// `BEGIN`.
#[async_trait]
impl BatchConnection for PgConnection {
    async fn begin_batch(&mut self) -> Result<Transaction<'_, Postgres>, StoreError> {
        self.begin().await.map_err(db_err)
    }
}

#[async_trait]
impl RefoldStatements for PgConnection {
    async fn resources_after(&mut self, after: i64, n: i64) -> Result<Vec<ToRefold>, StoreError> {
        let rows = sqlx::query(
            "SELECT ord, tenant, id, doc::text AS doc FROM scimkit_resources WHERE ord > $1 \
             ORDER BY ord LIMIT $2",
        )
        .bind(after)
        .bind(n)
        .fetch_all(&mut *self)
        .await
        .map_err(db_err)?;
        rows.iter().map(ToRefold::from_row).collect()
    }

    async fn refold_row(&mut self, r: &ToRefold) -> Result<(), StoreError> {
        let cols = Columns::of(&r.doc);
        let fold_text =
            serde_json::to_string(&fold_strings(&r.doc)).map_err(StoreError::backend)?;
        sqlx::query(
            "UPDATE scimkit_resources SET doc_fold = $1::jsonb, user_name_fold = $2, \
             display_name_fold = $3 WHERE ord = $4",
        )
        .bind(fold_text)
        .bind(cols.user_name_fold)
        .bind(cols.display_name_fold)
        .bind(r.ord)
        .execute(&mut *self)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn refold_keys(&mut self, r: &ToRefold) -> Result<Vec<String>, StoreError> {
        let keys = sqlx::query(
            "SELECT resource_type, attribute, value_hash FROM scimkit_unique \
             WHERE tenant = $1 AND id = $2",
        )
        .bind(&r.tenant)
        .bind(&r.id)
        .fetch_all(&mut *self)
        .await
        .map_err(db_err)?;
        let mut kept = Vec::new();
        for key in &keys {
            let rt: String = key.try_get(0).map_err(db_err)?;
            let attribute: String = key.try_get(1).map_err(db_err)?;
            let hash: Vec<u8> = key.try_get(2).map_err(db_err)?;
            let Some(value) = key_source(&r.doc, &attribute) else {
                continue;
            };
            let lowered = value.to_lowercase();
            if Sha256::digest(lowered.as_bytes()).as_slice() != hash.as_slice() {
                continue;
            }
            let folded = fold_case(value);
            if *folded == *lowered {
                continue;
            }
            let new_hash = Sha256::digest(folded.as_bytes()).to_vec();
            let done = sqlx::query(
                "UPDATE scimkit_unique SET value_hash = $5 WHERE tenant = $1 AND resource_type = $2 \
                 AND attribute = $3 AND value_hash = $4 AND NOT EXISTS (SELECT 1 FROM scimkit_unique \
                 WHERE tenant = $1 AND resource_type = $2 AND attribute = $3 AND value_hash = $5)",
            )
            .bind(&r.tenant)
            .bind(&rt)
            .bind(&attribute)
            .bind(&hash)
            .bind(&new_hash)
            .execute(&mut *self)
            .await
            .map_err(db_err)?;
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
            "SELECT member_id, member_fold FROM scimkit_members WHERE tenant = $1 AND group_id = $2",
        )
        .bind(tenant)
        .bind(group)
        .fetch_all(&mut *self)
        .await
        .map_err(db_err)
    }

    async fn set_member_fold(
        &mut self,
        tenant: &str,
        group: &str,
        member: &str,
        folded: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE scimkit_members SET member_fold = $4 WHERE tenant = $1 AND group_id = $2 \
             AND member_id = $3",
        )
        .bind(tenant)
        .bind(group)
        .bind(member)
        .bind(folded)
        .execute(&mut *self)
        .await
        .map_err(db_err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_sources_are_core_or_extension_attributes() {
        let doc = json!({
            "userName": "Straße",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "ΟΔΟΣ"}
        });
        assert_eq!(key_source(&doc, "userName"), Some("Straße"));
        assert_eq!(
            key_source(
                &doc,
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber"
            ),
            Some("ΟΔΟΣ")
        );
        assert_eq!(key_source(&doc, "displayName"), None);
    }
}
