//! Writes: creating, updating and deleting resources, with their uniqueness keys.

use std::collections::{HashMap, HashSet};

use serde_json::Value;
use sqlx::{AssertSqlSafe, Row};

use super::feed::{push_changes, push_changes_bumping, NewChange};
use super::members::{add_members, member_ids, Added};
use super::sort_keys;
use super::{
    db_err, from_ns, resource_from_row, to_ns, unique_hash, Columns, PostgresStore, Tx,
    RESOURCE_COLUMNS,
};
use crate::feed::{ChangeKind, MemberChanges};
use crate::filter::fold_strings;
use crate::resource::{ResourceId, Version};
use crate::schema::ResourceDef;
use crate::store::{
    CreateRequest, StoreError, StoredResource, UniqueKey, UpdateKind, UpdateRequest,
};
use crate::tenant::TenantId;

async fn insert_keys(
    tx: &mut Tx,
    tenant: &TenantId,
    rt: &ResourceDef,
    id: &str,
    keys: &[UniqueKey],
) -> Result<(), StoreError> {
    let mut seen = HashSet::new();
    for k in keys {
        if !seen.insert((k.attribute.as_str(), k.value.as_str())) {
            continue;
        }
        let n = sqlx::query(
            "INSERT INTO scimkit_unique (tenant, resource_type, attribute, value_hash, id) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(tenant.as_str())
        .bind(rt.name())
        .bind(k.attribute.as_str())
        .bind(unique_hash(k))
        .bind(id)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::Conflict {
                attribute: k.attribute.clone(),
            });
        }
    }
    Ok(())
}

impl PostgresStore {
    pub(super) async fn create_once(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        req: &CreateRequest,
    ) -> Result<(StoredResource, u64), StoreError> {
        let now = to_ns(req.now)?;
        let cols = Columns::of(&req.doc);
        let doc_text = serde_json::to_string(&req.doc).map_err(StoreError::backend)?;
        let fold_text =
            serde_json::to_string(&fold_strings(&req.doc)).map_err(StoreError::backend)?;
        let mut tx = self.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO scimkit_resources (tenant, id, resource_type, version, created, \
             last_modified, doc, doc_fold, user_name_fold, external_id, display_name_fold, \
             display) VALUES ($1, $2, $3, 1, $4, $4, $5::jsonb, $6::jsonb, $7, $8, $9, $10) \
             ON CONFLICT (tenant, id) DO NOTHING",
        )
        .bind(tenant.as_str())
        .bind(req.id.as_str())
        .bind(rt.name())
        .bind(now)
        .bind(doc_text)
        .bind(fold_text)
        .bind(cols.user_name_fold)
        .bind(cols.external_id)
        .bind(cols.display_name_fold)
        .bind(cols.display)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?
        .rows_affected();
        if inserted == 0 {
            return Err(StoreError::Conflict {
                attribute: "id".to_owned(),
            });
        }
        insert_keys(&mut tx, tenant, rt, req.id.as_str(), &req.unique_keys).await?;
        sort_keys::write(
            &mut tx,
            tenant.as_str(),
            rt,
            &[req.id.to_string()],
            &[&req.doc],
        )
        .await?;
        let added = add_members(
            &mut tx,
            tenant,
            req.id.as_str(),
            &req.members,
            req.unknown_members,
        )
        .await?;
        let (members, skipped_members) = added.into_sorted();
        let seq = push_changes(
            &mut tx,
            tenant,
            now,
            &[NewChange {
                resource_type: rt.name(),
                id: req.id.as_str(),
                kind: ChangeKind::Created,
                version: Version::INITIAL,
                actor: req.actor.as_deref(),
                members: (!members.is_empty()).then(|| {
                    MemberChanges::delta(
                        members.iter().map(|m| m.value.clone()).collect(),
                        Vec::new(),
                    )
                }),
            }],
        )
        .await?;
        sort_keys::count(&mut tx, tenant.as_str(), rt.name(), 1).await?;
        tx.commit().await.map_err(db_err)?;
        Ok((
            StoredResource {
                id: req.id.clone(),
                resource_type: rt.name().to_owned(),
                version: Version::INITIAL,
                created: from_ns(now),
                last_modified: from_ns(now),
                doc: req.doc.clone(),
                members: (!req.members.is_empty()).then_some(members),
                skipped_members,
            },
            seq,
        ))
    }

    /// [`ResourceStore::create_many`](crate::store::ResourceStore::create_many) in one transaction, a few statements per chunk of
    /// requests whatever their number: rows, uniqueness keys and change records go in with
    /// `unnest`; initial members per request.
    pub(super) async fn create_many_once(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        reqs: &[CreateRequest],
    ) -> Result<(Vec<StoredResource>, Option<u64>), StoreError> {
        const CHUNK: usize = 5000;
        let mut tx = self.begin().await?;
        let mut out = Vec::with_capacity(reqs.len());
        let mut last_seq = None;
        for chunk in reqs.chunks(CHUNK) {
            let n = chunk.len();
            let mut ids = Vec::with_capacity(n);
            let mut times = Vec::with_capacity(n);
            let mut docs = Vec::with_capacity(n);
            let mut folds = Vec::with_capacity(n);
            let (mut un, mut ex, mut dn, mut di) = (
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
            );
            let (mut key_attrs, mut key_hashes, mut key_ids) = (Vec::new(), Vec::new(), Vec::new());
            for req in chunk {
                let cols = Columns::of(&req.doc);
                ids.push(req.id.to_string());
                times.push(to_ns(req.now)?);
                docs.push(serde_json::to_string(&req.doc).map_err(StoreError::backend)?);
                folds.push(
                    serde_json::to_string(&fold_strings(&req.doc)).map_err(StoreError::backend)?,
                );
                un.push(cols.user_name_fold);
                ex.push(cols.external_id);
                dn.push(cols.display_name_fold);
                di.push(cols.display);
                let mut seen = HashSet::new();
                for k in &req.unique_keys {
                    if seen.insert((k.attribute.as_str(), k.value.as_str())) {
                        key_attrs.push(k.attribute.clone());
                        key_hashes.push(unique_hash(k));
                        key_ids.push(req.id.to_string());
                    }
                }
            }
            let inserted = sqlx::query(
                "INSERT INTO scimkit_resources (tenant, id, resource_type, version, created, \
                 last_modified, doc, doc_fold, user_name_fold, external_id, display_name_fold, \
                 display) SELECT $1, u.id, $2, 1, u.t, u.t, u.d::jsonb, u.f::jsonb, u.un, u.ex, \
                 u.dn, u.di FROM unnest($3::text[], $4::bigint[], $5::text[], $6::text[], \
                 $7::text[], $8::text[], $9::text[], $10::text[]) AS u(id, t, d, f, un, ex, dn, di) \
                 ON CONFLICT (tenant, id) DO NOTHING",
            )
            .bind(tenant.as_str())
            .bind(rt.name())
            .bind(&ids)
            .bind(&times)
            .bind(docs)
            .bind(folds)
            .bind(un)
            .bind(ex)
            .bind(dn)
            .bind(di)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?
            .rows_affected();
            if usize::try_from(inserted).unwrap_or(0) != n {
                return Err(StoreError::Conflict {
                    attribute: "id".to_owned(),
                });
            }
            let keys = key_attrs.len();
            let stored = sqlx::query(
                "INSERT INTO scimkit_unique (tenant, resource_type, attribute, value_hash, id) \
                 SELECT $1, $2, u.a, u.h, u.id FROM unnest($3::text[], $4::bytea[], $5::text[]) \
                 AS u(a, h, id) ON CONFLICT DO NOTHING",
            )
            .bind(tenant.as_str())
            .bind(rt.name())
            .bind(&key_attrs)
            .bind(&key_hashes)
            .bind(&key_ids)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?
            .rows_affected();
            if usize::try_from(stored).unwrap_or(0) != keys {
                // Which key was taken (by an earlier resource or one of this chunk): the
                // first, in request order, held by another id.
                let rows = sqlx::query(
                    "SELECT attribute, value_hash, id FROM scimkit_unique WHERE tenant = $1 \
                     AND resource_type = $2 AND (attribute, value_hash) IN \
                     (SELECT * FROM unnest($3::text[], $4::bytea[]))",
                )
                .bind(tenant.as_str())
                .bind(rt.name())
                .bind(&key_attrs)
                .bind(&key_hashes)
                .fetch_all(&mut *tx)
                .await
                .map_err(db_err)?;
                let mut owner: HashMap<(String, Vec<u8>), String> = HashMap::new();
                for row in rows {
                    owner.insert(
                        (
                            row.try_get(0).map_err(db_err)?,
                            row.try_get(1).map_err(db_err)?,
                        ),
                        row.try_get(2).map_err(db_err)?,
                    );
                }
                let taken = key_attrs
                    .iter()
                    .zip(&key_hashes)
                    .zip(&key_ids)
                    .find(|((a, h), id)| {
                        owner
                            .get(&((*a).clone(), (*h).clone()))
                            .is_some_and(|o| o != *id)
                    });
                return Err(StoreError::Conflict {
                    attribute: taken.map_or_else(|| "id".to_owned(), |((a, _), _)| a.clone()),
                });
            }
            let docs: Vec<&Value> = chunk.iter().map(|r| &r.doc).collect();
            sort_keys::write(&mut tx, tenant.as_str(), rt, &ids, &docs).await?;
            let mut members = Vec::with_capacity(n);
            for req in chunk {
                let added = add_members(
                    &mut tx,
                    tenant,
                    req.id.as_str(),
                    &req.members,
                    req.unknown_members,
                )
                .await?;
                members.push(added.into_sorted());
            }
            let member_changes: Vec<Option<String>> = members
                .iter()
                .map(|(m, _)| {
                    (!m.is_empty()).then(|| {
                        MemberChanges::delta(
                            m.iter().map(|m| m.value.clone()).collect(),
                            Vec::new(),
                        )
                        .to_column()
                    })
                })
                .collect();
            let last: i64 = sqlx::query_scalar(
                "WITH s AS (INSERT INTO scimkit_feed_seq (tenant, last_seq) VALUES ($1, $2) \
                   ON CONFLICT (tenant) DO UPDATE SET last_seq = scimkit_feed_seq.last_seq + $2 \
                   RETURNING last_seq), \
                 c AS (INSERT INTO scimkit_changes (tenant, seq, resource_type, id, kind, version, at, members, actor) \
                   SELECT $1, s.last_seq - $2 + u.n, $3, u.id, $4, 1, u.t, u.m, u.a \
                   FROM s, unnest($5::text[], $6::bigint[], $7::text[], $8::text[]) WITH ORDINALITY AS u(id, t, m, a, n)) \
                 SELECT last_seq FROM s, \
                   LATERAL (SELECT pg_notify('scimkit_changes', s.last_seq || ' ' || $1)) AS n",
            )
            .bind(tenant.as_str())
            .bind(i64::try_from(n).unwrap_or(i64::MAX))
            .bind(rt.name())
            .bind(ChangeKind::Created.as_str())
            .bind(&ids)
            .bind(&times)
            .bind(&member_changes)
            .bind(chunk.iter().map(|r| r.actor.clone()).collect::<Vec<_>>())
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
            last_seq = Some(u64::try_from(last).unwrap_or(0));
            sort_keys::count(
                &mut tx,
                tenant.as_str(),
                rt.name(),
                i64::try_from(n).unwrap_or(0),
            )
            .await?;
            for ((req, t), (members, skipped_members)) in chunk.iter().zip(&times).zip(members) {
                out.push(StoredResource {
                    id: req.id.clone(),
                    resource_type: rt.name().to_owned(),
                    version: Version::INITIAL,
                    created: from_ns(*t),
                    last_modified: from_ns(*t),
                    doc: req.doc.clone(),
                    members: (!req.members.is_empty()).then_some(members),
                    skipped_members,
                });
            }
        }
        tx.commit().await.map_err(db_err)?;
        Ok((out, last_seq))
    }

    pub(super) async fn update_once(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        id: &ResourceId,
        req: &UpdateRequest,
    ) -> Result<(StoredResource, Option<u64>), StoreError> {
        let now = to_ns(req.now)?;
        let mut tx = self.begin().await?;
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {RESOURCE_COLUMNS} FROM scimkit_resources r \
             WHERE r.tenant = $1 AND r.id = $2 AND r.resource_type = $3 FOR UPDATE"
        )))
        .bind(tenant.as_str())
        .bind(id.as_str())
        .bind(rt.name())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?
        .ok_or_else(|| StoreError::not_found(rt, id))?;
        let current = resource_from_row(rt, &row)?;
        StoreError::check_version(req.expected_version, current.version)?;

        let mut members_changed = false;
        let mut added = Added::default();
        if let Some(delta) = req.members.as_ref().filter(|d| !d.is_empty()) {
            let add = member_ids(&delta.add);
            let add_set: HashSet<&str> = add.iter().map(String::as_str).collect();
            let removed = if delta.clear {
                sqlx::query(
                    "DELETE FROM scimkit_members WHERE tenant = $1 AND group_id = $2 \
                     AND NOT (member_id = ANY($3))",
                )
                .bind(tenant.as_str())
                .bind(id.as_str())
                .bind(add.clone())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?
                .rows_affected()
            } else {
                let remove: Vec<String> = delta
                    .remove
                    .iter()
                    .map(|r| r.as_str())
                    .filter(|r| !r.contains('\0') && !add_set.contains(r))
                    .map(str::to_owned)
                    .collect();
                if remove.is_empty() {
                    0
                } else {
                    sqlx::query(
                        "DELETE FROM scimkit_members WHERE tenant = $1 AND group_id = $2 \
                         AND member_id = ANY($3)",
                    )
                    .bind(tenant.as_str())
                    .bind(id.as_str())
                    .bind(remove)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?
                    .rows_affected()
                }
            };
            added = add_members(&mut tx, tenant, id.as_str(), &delta.add, delta.unknown).await?;
            members_changed = removed + added.new > 0;
        }
        let (member_changes, members, skipped_members) = added.resolved.update_outcome(
            req.members.as_ref(),
            members_changed,
            req.return_members,
        );

        if req.document.is_none() && !members_changed {
            // Nothing to write; the transaction only read and locked.
            tx.rollback().await.map_err(db_err)?;
            return Ok((
                StoredResource {
                    members,
                    skipped_members,
                    ..current
                },
                None,
            ));
        }
        let version = current.version.next();
        let mut doc = current.doc;
        if let Some(new) = &req.document {
            sqlx::query("DELETE FROM scimkit_unique WHERE tenant = $1 AND id = $2")
                .bind(tenant.as_str())
                .bind(id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            insert_keys(&mut tx, tenant, rt, id.as_str(), &new.unique_keys).await?;
            let cols = Columns::of(&new.doc);
            let doc_text = serde_json::to_string(&new.doc).map_err(StoreError::backend)?;
            let fold_text =
                serde_json::to_string(&fold_strings(&new.doc)).map_err(StoreError::backend)?;
            sqlx::query(
                "UPDATE scimkit_resources SET version = $3, last_modified = $4, \
                 doc = $5::jsonb, doc_fold = $6::jsonb, user_name_fold = $7, external_id = $8, \
                 display_name_fold = $9, display = $10 WHERE tenant = $1 AND id = $2",
            )
            .bind(tenant.as_str())
            .bind(id.as_str())
            .bind(crate::store::to_i64(version.get()))
            .bind(now)
            .bind(doc_text)
            .bind(fold_text)
            .bind(cols.user_name_fold)
            .bind(cols.external_id)
            .bind(cols.display_name_fold)
            .bind(cols.display)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            sort_keys::write(&mut tx, tenant.as_str(), rt, &[id.to_string()], &[&new.doc]).await?;
            doc = new.doc.clone();
        }
        let kind = match (&req.document, req.kind) {
            (None, _) => ChangeKind::MembershipChanged,
            (Some(_), UpdateKind::Replace) => ChangeKind::Replaced,
            (Some(_), UpdateKind::Patch) => ChangeKind::Patched,
        };
        // A membership-only write bumps the version with its change record.
        let bump = req
            .document
            .is_none()
            .then(|| (id.as_str(), crate::store::to_i64(version.get())));
        let seq = push_changes_bumping(
            &mut tx,
            tenant,
            now,
            &[NewChange {
                resource_type: rt.name(),
                id: id.as_str(),
                kind,
                version,
                members: member_changes,
                actor: req.actor.as_deref(),
            }],
            bump,
        )
        .await?;
        tx.commit().await.map_err(db_err)?;
        Ok((
            StoredResource {
                id: id.clone(),
                resource_type: rt.name().to_owned(),
                version,
                created: current.created,
                last_modified: from_ns(now),
                doc,
                members,
                skipped_members,
            },
            Some(seq),
        ))
    }

    pub(super) async fn delete_once(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        id: &ResourceId,
        expected: Option<Version>,
        now: i64,
        actor: Option<&str>,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        let version: i64 = sqlx::query_scalar(
            "SELECT version FROM scimkit_resources \
             WHERE tenant = $1 AND id = $2 AND resource_type = $3 FOR UPDATE",
        )
        .bind(tenant.as_str())
        .bind(id.as_str())
        .bind(rt.name())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?
        .ok_or_else(|| StoreError::not_found(rt, id))?;
        let current = Version::new(u64::try_from(version).unwrap_or(0));
        StoreError::check_version(expected, current)?;
        // The groups it leaves, locked in id order (as every writer locks them).
        let groups = sqlx::query(
            "SELECT g.id, g.resource_type, g.version FROM scimkit_resources g \
             WHERE g.tenant = $1 AND g.id IN \
             (SELECT group_id FROM scimkit_members WHERE tenant = $1 AND member_id = $2) \
             ORDER BY g.id FOR UPDATE",
        )
        .bind(tenant.as_str())
        .bind(id.as_str())
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        let mut bumped: Vec<(String, String, Version)> = Vec::with_capacity(groups.len());
        for g in &groups {
            let gid: String = g.try_get(0).map_err(db_err)?;
            let grt: String = g.try_get(1).map_err(db_err)?;
            let gv: i64 = g.try_get(2).map_err(db_err)?;
            bumped.push((
                gid,
                grt,
                Version::new(u64::try_from(gv).unwrap_or(0)).next(),
            ));
        }
        if !bumped.is_empty() {
            let ids: Vec<String> = bumped.iter().map(|b| b.0.clone()).collect();
            sqlx::query(
                "UPDATE scimkit_resources SET version = version + 1, last_modified = $3 \
                 WHERE tenant = $1 AND id = ANY($2)",
            )
            .bind(tenant.as_str())
            .bind(ids)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        sort_keys::remove(&mut tx, tenant.as_str(), id.as_str()).await?;
        // Memberships and uniqueness keys go with it (ON DELETE CASCADE).
        sqlx::query("DELETE FROM scimkit_resources WHERE tenant = $1 AND id = $2")
            .bind(tenant.as_str())
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let mut changes = vec![NewChange {
            resource_type: rt.name(),
            id: id.as_str(),
            kind: ChangeKind::Deleted,
            version: current.next(),
            members: None,
            actor,
        }];
        let left = MemberChanges::delta(Vec::new(), vec![id.clone()]);
        for (gid, grt, gv) in &bumped {
            changes.push(NewChange {
                resource_type: grt,
                id: gid,
                kind: ChangeKind::MembershipChanged,
                version: *gv,
                members: Some(left.clone()),
                actor,
            });
        }
        let seq = push_changes(&mut tx, tenant, now, &changes).await?;
        sort_keys::count(&mut tx, tenant.as_str(), rt.name(), -1).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(seq)
    }
}
