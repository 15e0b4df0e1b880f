//! Writes: creates, updates and deletes, with uniqueness, membership and the change record.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, Row, SqliteConnection};

use super::{
    be, current, derive, docs, resource_from_row, sort_keys, ts, SqliteStore, SELECT_RESOURCE,
};
use crate::feed::{ChangeKind, MemberChanges};
use crate::filter::fold_case_owned;
use crate::resource::{
    Member, MemberRef, MembershipDelta, ResourceId, UniqueKey, UnknownMembers, Version,
};
use crate::schema::ResourceDef;
use crate::store::ResolvedMembers as Resolved;
use crate::store::{
    to_u64, CreateRequest, ResourceStore, StoreError, StoredResource, UpdateKind, UpdateRequest,
};
use crate::tenant::TenantId;

pub(super) async fn check_unique(
    conn: &mut SqliteConnection,
    tenant: &TenantId,
    rt: &ResourceDef,
    id: &str,
    keys: &[UniqueKey],
) -> Result<(), StoreError> {
    for k in keys {
        let owner = sqlx::query(
            "SELECT id FROM unique_keys WHERE tenant = ?1 AND rt = ?2 AND attribute = ?3 AND value = ?4",
        )
        .bind(tenant.as_str())
        .bind(rt.name())
        .bind(&k.attribute)
        .bind(&k.value)
        .fetch_optional(&mut *conn)
        .await
        .map_err(be)?;
        if let Some(row) = owner {
            let owner: String = row.try_get("id").map_err(be)?;
            if owner != id {
                return Err(StoreError::Conflict {
                    attribute: k.attribute.clone(),
                });
            }
        }
    }
    Ok(())
}

pub(super) async fn insert_unique(
    conn: &mut SqliteConnection,
    tenant: &TenantId,
    rt: &ResourceDef,
    id: &str,
    keys: &[UniqueKey],
) -> Result<(), StoreError> {
    for k in keys {
        let r = sqlx::query(
            "INSERT INTO unique_keys (tenant, rt, attribute, value, id) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(tenant.as_str())
        .bind(rt.name())
        .bind(&k.attribute)
        .bind(&k.value)
        .bind(id)
        .execute(&mut *conn)
        .await;
        match r {
            Ok(_) => {}
            // The same key twice in one request: already held by this resource.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {}
            Err(e) => return Err(be(e)),
        }
    }
    Ok(())
}

/// Resolves the members to add in one statement: each must be a resource of the tenant, of
/// the claimed type, and not the group itself; the others fail the write or are skipped,
/// per `policy`.
pub(super) async fn resolve_members(
    conn: &mut SqliteConnection,
    tenant: &TenantId,
    group: &str,
    add: &[MemberRef],
    policy: UnknownMembers,
) -> Result<Resolved, StoreError> {
    if add.is_empty() {
        return Ok(Resolved::default());
    }
    let mut seen = HashSet::with_capacity(add.len());
    let ids: Vec<&str> = add
        .iter()
        .map(|m| m.value.as_str())
        .filter(|id| seen.insert(*id))
        .collect();
    let rows = sqlx::query(
        "SELECT r.id, r.rt, r.display FROM resources AS r \
         WHERE r.tenant = ?1 AND r.id IN (SELECT value FROM json_each(?2))",
    )
    .bind(tenant.as_str())
    .bind(serde_json::to_string(&ids).map_err(StoreError::backend)?)
    .fetch_all(&mut *conn)
    .await
    .map_err(be)?;
    let mut found: HashMap<String, (String, Option<String>)> = HashMap::with_capacity(rows.len());
    for row in rows {
        found.insert(
            row.try_get("id").map_err(be)?,
            (
                row.try_get("rt").map_err(be)?,
                row.try_get("display").map_err(be)?,
            ),
        );
    }
    Resolved::resolve(add, found, group, policy)
}

/// Inserts the (resolved) members in one statement; returns how many were new.
pub(super) async fn insert_members(
    conn: &mut SqliteConnection,
    tenant: &TenantId,
    group: &str,
    members: &[Member],
) -> Result<u64, StoreError> {
    if members.is_empty() {
        return Ok(0);
    }
    let folded: Vec<String> = members
        .iter()
        .map(|m| fold_case_owned(m.value.as_str()))
        .collect();
    let pairs: Vec<[&str; 2]> = members
        .iter()
        .zip(&folded)
        .map(|(m, f)| [m.value.as_str(), f.as_str()])
        .collect();
    let r = sqlx::query(
        "INSERT OR IGNORE INTO members (tenant, group_id, member_id, member_cf) \
         SELECT ?1, ?2, j.value ->> 0, j.value ->> 1 FROM json_each(?3) AS j",
    )
    .bind(tenant.as_str())
    .bind(group)
    .bind(serde_json::to_string(&pairs).map_err(StoreError::backend)?)
    .execute(&mut *conn)
    .await
    .map_err(be)?;
    Ok(r.rows_affected())
}

/// Appends one change record; returns its `seq`. (Each argument is a column of the row.)
#[allow(clippy::too_many_arguments)]
pub(super) async fn push_change(
    conn: &mut SqliteConnection,
    tenant: &TenantId,
    rt: &str,
    id: &str,
    kind: ChangeKind,
    version: Version,
    at: &DateTime<Utc>,
    members: Option<&MemberChanges>,
    actor: Option<&str>,
) -> Result<u64, StoreError> {
    let row = sqlx::query(
        "INSERT INTO changes (tenant, seq, rt, id, kind, version, at, members, actor) \
         VALUES (?1, MAX((SELECT COALESCE(MAX(seq), 0) FROM changes WHERE tenant = ?1), \
                         (SELECT COALESCE(MAX(pruned_through), 0) FROM change_horizons WHERE tenant = ?1)) + 1, \
                 ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
         RETURNING seq",
    )
    .bind(tenant.as_str())
    .bind(rt)
    .bind(id)
    .bind(kind.as_str())
    .bind(crate::store::to_i64(version.get()))
    .bind(ts(at))
    .bind(members.map(MemberChanges::to_column))
    .bind(actor)
    .fetch_one(&mut *conn)
    .await
    .map_err(be)?;
    Ok(to_u64(row.try_get("seq").map_err(be)?))
}

/// Applies a membership delta in a constant number of statements (the ids travel as one
/// JSON array each): returns whether the membership changed, and the resolved adds.
pub(super) async fn apply_delta(
    conn: &mut SqliteConnection,
    tenant: &TenantId,
    group: &str,
    delta: &MembershipDelta,
) -> Result<(bool, Resolved), StoreError> {
    let resolved = resolve_members(conn, tenant, group, &delta.add, delta.unknown).await?;
    let adding: HashSet<&str> = resolved.members.iter().map(|m| m.value.as_str()).collect();
    let removed = if delta.clear {
        let keep: Vec<&str> = adding.iter().copied().collect();
        sqlx::query(
            "DELETE FROM members WHERE tenant = ?1 AND group_id = ?2 \
             AND member_id NOT IN (SELECT value FROM json_each(?3))",
        )
        .bind(tenant.as_str())
        .bind(group)
        .bind(serde_json::to_string(&keep).map_err(StoreError::backend)?)
        .execute(&mut *conn)
        .await
        .map_err(be)?
        .rows_affected()
    } else {
        let mut seen = HashSet::new();
        let remove: Vec<&str> = delta
            .remove
            .iter()
            .map(ResourceId::as_str)
            .filter(|r| !adding.contains(r) && seen.insert(*r))
            .collect();
        if remove.is_empty() {
            0
        } else {
            sqlx::query(
                "DELETE FROM members WHERE tenant = ?1 AND group_id = ?2 \
                 AND member_id IN (SELECT value FROM json_each(?3))",
            )
            .bind(tenant.as_str())
            .bind(group)
            .bind(serde_json::to_string(&remove).map_err(StoreError::backend)?)
            .execute(&mut *conn)
            .await
            .map_err(be)?
            .rows_affected()
        }
    };
    let added = insert_members(conn, tenant, group, &resolved.members).await?;
    Ok((removed + added > 0, resolved))
}

/// A create inside the caller's transaction; returns the resource and its change's `seq`.
async fn create_in(
    tx: &mut SqliteConnection,
    tenant: &TenantId,
    rt: &ResourceDef,
    req: CreateRequest,
) -> Result<(StoredResource, u64), StoreError> {
    let d = derive(&req.doc)?;
    let id = req.id.as_str();
    if current(&mut *tx, tenant, id).await?.is_some() {
        return Err(StoreError::Conflict {
            attribute: "id".into(),
        });
    }
    check_unique(&mut *tx, tenant, rt, id, &req.unique_keys).await?;
    let resolved = resolve_members(&mut *tx, tenant, id, &req.members, req.unknown_members).await?;
    let with_members = !req.members.is_empty();
    let created = ts(&req.now);
    let key = docs::date_key(&req.now.fixed_offset());
    sqlx::query(
        "INSERT INTO resources (tenant, id, rt, version, created, created_key, modified, modified_key, \
         doc, fdoc, ddoc, user_name_cf, external_id, display_name_cf, display) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )
    .bind(tenant.as_str())
    .bind(id)
    .bind(rt.name())
    .bind(crate::store::to_i64(Version::INITIAL.get()))
    .bind(&created)
    .bind(&key)
    .bind(&d.doc)
    .bind(&d.fdoc)
    .bind(&d.ddoc)
    .bind(&d.user_name_cf)
    .bind(&d.external_id)
    .bind(&d.display_name_cf)
    .bind(&d.display)
    .execute(&mut *tx)
    .await
    .map_err(|e| match e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict {
            attribute: "id".into(),
        },
        e => be(e),
    })?;
    insert_unique(&mut *tx, tenant, rt, id, &req.unique_keys).await?;
    sort_keys::write(&mut *tx, tenant.as_str(), rt, id, &req.doc).await?;
    sort_keys::count(&mut *tx, tenant.as_str(), rt.name(), 1).await?;
    insert_members(&mut *tx, tenant, id, &resolved.members).await?;
    let (members, skipped_members) = resolved.into_sorted();
    let initial = (!members.is_empty()).then(|| {
        MemberChanges::delta(
            members.iter().map(|m| m.value.clone()).collect(),
            Vec::new(),
        )
    });
    let seq = push_change(
        &mut *tx,
        tenant,
        rt.name(),
        id,
        ChangeKind::Created,
        Version::INITIAL,
        &req.now,
        initial.as_ref(),
        req.actor.as_deref(),
    )
    .await?;
    Ok((
        StoredResource {
            id: req.id,
            resource_type: rt.name().to_owned(),
            version: Version::INITIAL,
            created: req.now,
            last_modified: req.now,
            doc: req.doc,
            members: with_members.then_some(members),
            skipped_members,
        },
        seq,
    ))
}

impl SqliteStore {
    pub(super) async fn do_create(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        req: CreateRequest,
    ) -> Result<StoredResource, StoreError> {
        let mut tx = self.begin().await?;
        let (out, seq) = create_in(&mut tx, tenant, rt, req).await?;
        tx.commit().await.map_err(be)?;
        self.notify(tenant, seq);
        Ok(out)
    }

    pub(super) async fn do_create_many(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        requests: Vec<CreateRequest>,
    ) -> Result<Vec<StoredResource>, StoreError> {
        let mut tx = self.begin().await?;
        let mut out = Vec::new();
        let mut last = None;
        for req in requests {
            let (res, seq) = create_in(&mut tx, tenant, rt, req).await?;
            out.push(res);
            last = Some(seq);
        }
        tx.commit().await.map_err(be)?;
        if let Some(seq) = last {
            self.notify(tenant, seq);
        }
        Ok(out)
    }

    pub(super) async fn do_update(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        id: &ResourceId,
        req: UpdateRequest,
    ) -> Result<StoredResource, StoreError> {
        let derived = req.document.as_ref().map(|d| derive(&d.doc)).transpose()?;
        let mut tx = self.begin().await?;
        let cur = current(&mut tx, tenant, id.as_str())
            .await?
            .filter(|c| c.rt == rt.name())
            .ok_or_else(|| StoreError::not_found(rt, id))?;
        if let Some(v) = req.expected_version {
            if v != cur.version {
                return Err(StoreError::VersionMismatch {
                    current: cur.version,
                });
            }
        }
        if let Some(doc) = &req.document {
            check_unique(&mut tx, tenant, rt, id.as_str(), &doc.unique_keys).await?;
        }
        let (membership_changed, resolved) = match &req.members {
            Some(delta) => apply_delta(&mut tx, tenant, id.as_str(), delta).await?,
            None => (false, Resolved::default()),
        };
        let (member_changes, members, skipped_members) =
            resolved.update_outcome(req.members.as_ref(), membership_changed, req.return_members);
        let (doc, derived) = match (req.document, derived) {
            (Some(doc), Some(derived)) => (Some(doc), Some(derived)),
            _ => (None, None),
        };
        if doc.is_none() && !membership_changed {
            // Nothing to write; the transaction is rolled back on drop.
            drop(tx);
            let mut out = self.get(tenant, rt, id, false).await?;
            out.members = members;
            out.skipped_members = skipped_members;
            return Ok(out);
        }
        let version = cur.version.next();
        let now = ts(&req.now);
        let now_key = docs::date_key(&req.now.fixed_offset());
        let updated = match (&doc, &derived) {
            (Some(doc), Some(d)) => {
                sqlx::query("DELETE FROM unique_keys WHERE tenant = ?1 AND id = ?2")
                    .bind(tenant.as_str())
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(be)?;
                insert_unique(&mut tx, tenant, rt, id.as_str(), &doc.unique_keys).await?;
                sqlx::query(
                    "UPDATE resources SET version = ?3, modified = ?4, modified_key = ?5, doc = ?6, fdoc = ?7, \
                     ddoc = ?8, user_name_cf = ?9, external_id = ?10, display_name_cf = ?11, display = ?12 \
                     WHERE tenant = ?1 AND id = ?2 AND version = ?13",
                )
                .bind(tenant.as_str())
                .bind(id.as_str())
                .bind(crate::store::to_i64(version.get()))
                .bind(&now)
                .bind(&now_key)
                .bind(&d.doc)
                .bind(&d.fdoc)
                .bind(&d.ddoc)
                .bind(&d.user_name_cf)
                .bind(&d.external_id)
                .bind(&d.display_name_cf)
                .bind(&d.display)
                .bind(crate::store::to_i64(cur.version.get()))
                .execute(&mut *tx)
                .await
                .map_err(be)?
            }
            _ => sqlx::query(
                "UPDATE resources SET version = ?3, modified = ?4, modified_key = ?5 \
                 WHERE tenant = ?1 AND id = ?2 AND version = ?6",
            )
            .bind(tenant.as_str())
            .bind(id.as_str())
            .bind(crate::store::to_i64(version.get()))
            .bind(&now)
            .bind(&now_key)
            .bind(crate::store::to_i64(cur.version.get()))
            .execute(&mut *tx)
            .await
            .map_err(be)?,
        };
        if updated.rows_affected() != 1 {
            // Unreachable while the transaction holds the write lock; kept as the
            // database-side guard of the version check.
            return Err(StoreError::VersionMismatch {
                current: cur.version,
            });
        }
        if let Some(doc) = &doc {
            sort_keys::write(&mut tx, tenant.as_str(), rt, id.as_str(), &doc.doc).await?;
        }
        let kind = match (doc.is_some(), req.kind) {
            (false, _) => ChangeKind::MembershipChanged,
            (true, UpdateKind::Replace) => ChangeKind::Replaced,
            (true, UpdateKind::Patch) => ChangeKind::Patched,
        };
        let seq = push_change(
            &mut tx,
            tenant,
            rt.name(),
            id.as_str(),
            kind,
            version,
            &req.now,
            member_changes.as_ref(),
            req.actor.as_deref(),
        )
        .await?;
        let row = sqlx::query(AssertSqlSafe(format!(
            "{SELECT_RESOURCE} WHERE r.tenant = ?1 AND r.id = ?2"
        )))
        .bind(tenant.as_str())
        .bind(id.as_str())
        .fetch_one(&mut *tx)
        .await
        .map_err(be)?;
        let mut out = resource_from_row(&row)?;
        if let Some(doc) = doc {
            out.doc = doc.doc;
        }
        out.members = members;
        out.skipped_members = skipped_members;
        tx.commit().await.map_err(be)?;
        self.notify(tenant, seq);
        Ok(out)
    }

    pub(super) async fn do_delete_as(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        id: &ResourceId,
        expected_version: Option<Version>,
        now: DateTime<Utc>,
        actor: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let cur = current(&mut tx, tenant, id.as_str())
            .await?
            .filter(|c| c.rt == rt.name())
            .ok_or_else(|| StoreError::not_found(rt, id))?;
        if let Some(v) = expected_version {
            if v != cur.version {
                return Err(StoreError::VersionMismatch {
                    current: cur.version,
                });
            }
        }
        sort_keys::remove(&mut tx, tenant.as_str(), id.as_str()).await?;
        sort_keys::count(&mut tx, tenant.as_str(), rt.name(), -1).await?;
        for sql in [
            "DELETE FROM resources WHERE tenant = ?1 AND id = ?2",
            "DELETE FROM unique_keys WHERE tenant = ?1 AND id = ?2",
            "DELETE FROM members WHERE tenant = ?1 AND group_id = ?2",
        ] {
            sqlx::query(sql)
                .bind(tenant.as_str())
                .bind(id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(be)?;
        }
        let mut seq = push_change(
            &mut tx,
            tenant,
            rt.name(),
            id.as_str(),
            ChangeKind::Deleted,
            cur.version.next(),
            &now,
            None,
            actor,
        )
        .await?;
        let groups = sqlx::query(
            "DELETE FROM members WHERE tenant = ?1 AND member_id = ?2 RETURNING group_id",
        )
        .bind(tenant.as_str())
        .bind(id.as_str())
        .fetch_all(&mut *tx)
        .await
        .map_err(be)?;
        let mut group_ids: Vec<String> = groups
            .iter()
            .map(|r| r.try_get::<String, _>("group_id").map_err(be))
            .collect::<Result<_, _>>()?;
        group_ids.sort();
        let (now_s, now_key) = (ts(&now), docs::date_key(&now.fixed_offset()));
        let left = MemberChanges::delta(Vec::new(), vec![id.clone()]);
        for g in group_ids {
            let row = sqlx::query(
                "UPDATE resources SET version = version + 1, modified = ?3, modified_key = ?4 \
                 WHERE tenant = ?1 AND id = ?2 RETURNING rt, version",
            )
            .bind(tenant.as_str())
            .bind(&g)
            .bind(&now_s)
            .bind(&now_key)
            .fetch_optional(&mut *tx)
            .await
            .map_err(be)?;
            let Some(row) = row else { continue };
            let grt: String = row.try_get("rt").map_err(be)?;
            let gv = Version::new(to_u64(row.try_get("version").map_err(be)?));
            seq = push_change(
                &mut tx,
                tenant,
                &grt,
                &g,
                ChangeKind::MembershipChanged,
                gv,
                &now,
                Some(&left),
                actor,
            )
            .await?;
        }
        tx.commit().await.map_err(be)?;
        self.notify(tenant, seq);
        Ok(())
    }
}
