//! The re-fold migration of the SQL stores (SQLite's 3, PostgreSQL's), written once: every
//! stored folded copy recomputed with [`fold_case`] from the unchanged documents, in
//! batches, over the statements each dialect provides ([`RefoldStatements`]). What is
//! folded, and how a uniqueness key is re-keyed, is per dialect (see each store's `refold`
//! module notes).

use async_trait::async_trait;
use serde_json::Value;

use crate::filter::fold_case;
use crate::store::sql::rows::SqlRow;
use crate::store::{BatchConnection, StoreError};

/// Resources re-folded per transaction.
pub(crate) const BATCH: i64 = 200;

/// A resource to re-fold: its row position, tenant, id and document.
pub(crate) struct ToRefold {
    pub(crate) ord: i64,
    pub(crate) tenant: String,
    pub(crate) id: String,
    pub(crate) doc: Value,
}

impl ToRefold {
    /// The resource of a `SELECT ord, tenant, id, doc` (doc as JSON text).
    pub(crate) fn from_row(row: &impl SqlRow) -> Result<Self, StoreError> {
        Ok(ToRefold {
            ord: row.int("ord")?,
            tenant: row.text("tenant")?,
            id: row.text("id")?,
            doc: row.json("doc")?,
        })
    }
}

/// The statements of the re-fold, implemented by each dialect's connection type.
#[async_trait]
pub(crate) trait RefoldStatements: BatchConnection {
    /// Up to `n` resources (of every tenant) after row position `after`, in row order.
    async fn resources_after(&mut self, after: i64, n: i64) -> Result<Vec<ToRefold>, StoreError>;

    /// Rewrites the folded copies kept in the resource's own row.
    async fn refold_row(&mut self, resource: &ToRefold) -> Result<(), StoreError>;

    /// Re-keys the resource's uniqueness keys that were folded the old way; returns the
    /// attributes whose new key is another resource's (the old key is kept).
    async fn refold_keys(&mut self, resource: &ToRefold) -> Result<Vec<String>, StoreError>;

    /// The members of `group`, each with its stored folded copy.
    async fn member_folds(
        &mut self,
        tenant: &str,
        group: &str,
    ) -> Result<Vec<(String, String)>, StoreError>;

    /// Stores `folded` as the folded copy of `member` of `group`.
    async fn set_member_fold(
        &mut self,
        tenant: &str,
        group: &str,
        member: &str,
        folded: &str,
    ) -> Result<(), StoreError>;
}

/// Re-folds every stored folded copy, [`BATCH`] resources per transaction. Idempotent: an
/// interrupted run starts again from the beginning.
pub(crate) async fn refold<C: RefoldStatements>(conn: &mut C) -> Result<(), StoreError> {
    let mut after = i64::MIN;
    loop {
        let mut tx = conn.begin_batch().await?;
        let resources = tx.resources_after(after, BATCH).await?;
        let Some(last) = resources.last() else {
            return tx.commit().await.map_err(StoreError::backend);
        };
        after = last.ord;
        for r in &resources {
            tx.refold_row(r).await?;
            for attribute in tx.refold_keys(r).await? {
                tracing::warn!(
                    tenant = r.tenant.as_str(),
                    id = r.id.as_str(),
                    attribute = attribute.as_str(),
                    "re-folding a uniqueness key collides with another resource's key: kept the old key"
                );
            }
            for (member, old) in tx.member_folds(&r.tenant, &r.id).await? {
                let folded = fold_case(&member);
                if *folded != *old {
                    tx.set_member_fold(&r.tenant, &r.id, &member, &folded)
                        .await?;
                }
            }
        }
        tx.commit().await.map_err(StoreError::backend)?;
    }
}
