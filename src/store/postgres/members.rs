//! Group membership: adding members, reading a group's members and a resource's groups.

use std::collections::{HashMap, HashSet};

use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, Row};

use super::{db_err, resource_from_row, PostgresStore, Tx, RESOURCE_COLUMNS};
use crate::filter::fold_case_owned;
use crate::resource::ResourceId;
use crate::schema::ResourceDef;
use crate::store::{
    GroupRef, Member, MemberPage, MemberRef, ResolvedMembers, StoreError, StoredResource,
    UnknownMembers,
};
use crate::tenant::TenantId;

fn member_from_row(row: &PgRow, first: usize) -> Result<Member, StoreError> {
    let value: String = row.try_get(first).map_err(db_err)?;
    let resource_type: String = row.try_get(first + 1).map_err(db_err)?;
    let display: Option<String> = row.try_get(first + 2).map_err(db_err)?;
    Ok(Member {
        value: ResourceId::new(value),
        resource_type,
        display,
    })
}

/// The members a write added, as resolved, and how many were not members before.
#[derive(Default)]
pub(super) struct Added {
    pub(super) new: u64,
    pub(super) resolved: ResolvedMembers,
}

impl Added {
    pub(super) fn into_sorted(self) -> (Vec<Member>, Vec<ResourceId>) {
        self.resolved.into_sorted()
    }
}

/// Adds members to `group` in two statements whatever their number: one finds (and locks
/// against deletion until the transaction ends) every id of the request, one inserts those
/// that can be members. Each must be a resource of the tenant, of the claimed type, and not
/// the group itself; the others fail the write or are skipped, per `policy`.
pub(super) async fn add_members(
    tx: &mut Tx,
    tenant: &TenantId,
    group: &str,
    add: &[MemberRef],
    policy: UnknownMembers,
) -> Result<Added, StoreError> {
    if add.is_empty() {
        return Ok(Added::default());
    }
    // PostgreSQL text cannot hold NUL: such an id is no resource of the tenant.
    let ids: Vec<String> = member_ids(add);
    let rows = sqlx::query(
        "SELECT x.id, x.resource_type, x.display FROM scimkit_resources x \
         WHERE x.tenant = $1 AND x.id = ANY($2) ORDER BY x.id FOR KEY SHARE",
    )
    .bind(tenant.as_str())
    .bind(ids)
    .fetch_all(&mut **tx)
    .await
    .map_err(db_err)?;
    let mut found: HashMap<String, (String, Option<String>)> = HashMap::with_capacity(rows.len());
    for row in rows {
        found.insert(
            row.try_get(0).map_err(db_err)?,
            (
                row.try_get(1).map_err(db_err)?,
                row.try_get(2).map_err(db_err)?,
            ),
        );
    }
    let mut out = Added {
        new: 0,
        resolved: ResolvedMembers::resolve(add, found, group, policy)?,
    };
    if out.resolved.members.is_empty() {
        return Ok(out);
    }
    let ids: Vec<String> = out
        .resolved
        .members
        .iter()
        .map(|m| m.value.to_string())
        .collect();
    let folded: Vec<String> = ids.iter().map(|i| fold_case_owned(i)).collect();
    out.new = sqlx::query(
        "INSERT INTO scimkit_members (tenant, group_id, member_id, member_fold) \
         SELECT $1, $2, u.m, u.f FROM unnest($3::text[], $4::text[]) AS u(m, f) \
         ON CONFLICT DO NOTHING",
    )
    .bind(tenant.as_str())
    .bind(group)
    .bind(ids)
    .bind(folded)
    .execute(&mut **tx)
    .await
    .map_err(db_err)?
    .rows_affected();
    Ok(out)
}

/// The ids of `add`, each once, in order (without those holding NUL, which PostgreSQL text
/// cannot hold and which are no resource's id).
pub(super) fn member_ids(add: &[MemberRef]) -> Vec<String> {
    let mut seen = HashSet::new();
    add.iter()
        .filter(|m| !m.value.as_str().contains('\0') && seen.insert(m.value.as_str()))
        .map(|m| m.value.to_string())
        .collect()
}

impl PostgresStore {
    /// Members of the given groups, ordered by group then member id.
    async fn members_of(
        tx: &mut Tx,
        tenant: &TenantId,
        groups: &[String],
    ) -> Result<HashMap<String, Vec<Member>>, StoreError> {
        let mut out: HashMap<String, Vec<Member>> = HashMap::new();
        if groups.is_empty() {
            return Ok(out);
        }
        let rows = sqlx::query(
            "SELECT m.group_id, m.member_id, x.resource_type, x.display \
             FROM scimkit_members m JOIN scimkit_resources x \
             ON x.tenant = m.tenant AND x.id = m.member_id \
             WHERE m.tenant = $1 AND m.group_id = ANY($2) ORDER BY m.group_id, m.member_id",
        )
        .bind(tenant.as_str())
        .bind(groups.to_vec())
        .fetch_all(&mut **tx)
        .await
        .map_err(db_err)?;
        for row in rows {
            let g: String = row.try_get(0).map_err(db_err)?;
            out.entry(g).or_default().push(member_from_row(&row, 1)?);
        }
        Ok(out)
    }

    pub(super) async fn attach_members(
        tx: &mut Tx,
        tenant: &TenantId,
        resources: &mut [StoredResource],
    ) -> Result<(), StoreError> {
        let ids: Vec<String> = resources.iter().map(|r| r.id.to_string()).collect();
        let mut all = Self::members_of(tx, tenant, &ids).await?;
        for r in resources {
            r.members = Some(all.remove(r.id.as_str()).unwrap_or_default());
        }
        Ok(())
    }

    /// [`crate::store::ResourceStore::members_if_at_most`]: the group's members when it has at most `max`.
    pub(super) async fn members_up_to(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        group: &ResourceId,
        max: usize,
    ) -> Result<Option<Vec<Member>>, StoreError> {
        if group.as_str().contains('\0') {
            return Ok(None);
        }
        let limit = crate::store::to_i64(max as u64);
        // Does the group exist, and has it a member past `max`? Index-only probes, at most
        // `max` entries read whatever the group's size.
        let probe: Option<(bool,)> = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM scimkit_members p WHERE p.tenant = $1 \
               AND p.group_id = $2 ORDER BY p.member_id OFFSET $4 LIMIT 1) \
             FROM scimkit_resources r \
             WHERE r.tenant = $1 AND r.id = $2 AND r.resource_type = $3",
        )
        .bind(tenant.as_str())
        .bind(group.as_str())
        .bind(rt.name())
        .bind(limit)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        match probe {
            Some((false,)) => {}
            // Unknown group, or more than `max` members.
            _ => return Ok(None),
        }
        let q = sqlx::query(
            "SELECT m.member_id, x.resource_type, x.display \
             FROM scimkit_members m JOIN scimkit_resources x \
             ON x.tenant = m.tenant AND x.id = m.member_id \
             WHERE m.tenant = $1 AND m.group_id = $2 ORDER BY m.member_id LIMIT $3",
        )
        .bind(tenant.as_str())
        .bind(group.as_str())
        .bind(limit);
        let rows = self.reads.fetch_all(q).await.map_err(db_err)?;
        rows.iter()
            .map(|row| member_from_row(row, 0))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// [`crate::store::ResourceStore::members`]: one page of a group's members.
    pub(super) async fn member_page(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        group: &ResourceId,
        start_index: usize,
        count: usize,
    ) -> Result<MemberPage, StoreError> {
        if group.as_str().contains('\0') {
            return Err(StoreError::not_found(rt, group));
        }
        let mut tx = self.begin_snapshot().await?;
        let total: Option<i64> = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM scimkit_members m \
                     WHERE m.tenant = r.tenant AND m.group_id = r.id) \
             FROM scimkit_resources r WHERE r.tenant = $1 AND r.id = $2 AND r.resource_type = $3",
        )
        .bind(tenant.as_str())
        .bind(group.as_str())
        .bind(rt.name())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let total =
            usize::try_from(total.ok_or_else(|| StoreError::not_found(rt, group))?).unwrap_or(0);
        let window = crate::store::page_window(start_index, count, total);
        let mut members = Vec::with_capacity(window.len());
        if !window.is_empty() {
            let rows = sqlx::query(
                "SELECT m.member_id, x.resource_type, x.display \
                 FROM scimkit_members m JOIN scimkit_resources x \
                 ON x.tenant = m.tenant AND x.id = m.member_id \
                 WHERE m.tenant = $1 AND m.group_id = $2 ORDER BY m.member_id \
                 LIMIT $3 OFFSET $4",
            )
            .bind(tenant.as_str())
            .bind(group.as_str())
            .bind(crate::store::to_i64(window.len() as u64))
            .bind(crate::store::to_i64(window.start as u64))
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
            for row in rows {
                members.push(member_from_row(&row, 0)?);
            }
        }
        tx.commit().await.map_err(db_err)?;
        Ok(MemberPage {
            members,
            total_results: total,
        })
    }

    /// [`crate::store::ResourceStore::groups_of`]: the groups `member` belongs to directly.
    pub(super) async fn groups_of_one(
        &self,
        tenant: &TenantId,
        member: &ResourceId,
    ) -> Result<Vec<GroupRef>, StoreError> {
        if member.as_str().contains('\0') {
            return Ok(Vec::new());
        }
        let q = sqlx::query(
            "SELECT g.id, g.resource_type, g.display FROM scimkit_members m \
             JOIN scimkit_resources g ON g.tenant = m.tenant AND g.id = m.group_id \
             WHERE m.tenant = $1 AND m.member_id = $2 ORDER BY m.group_id",
        )
        .bind(tenant.as_str())
        .bind(member.as_str());
        let rows = self.reads.fetch_all(q).await.map_err(db_err)?;
        rows.iter()
            .map(|row| {
                let m = member_from_row(row, 0)?;
                Ok(GroupRef {
                    id: m.value,
                    resource_type: m.resource_type,
                    display: m.display,
                })
            })
            .collect()
    }

    /// [`crate::store::ResourceStore::get_with_groups`]: a resource and its groups, read together.
    pub(super) async fn get_joining_groups(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        id: &ResourceId,
    ) -> Result<(StoredResource, Vec<GroupRef>), StoreError> {
        if id.as_str().contains('\0') {
            return Err(StoreError::not_found(rt, id));
        }
        // One statement: the resource, and its groups as a JSON array in a subquery.
        let q = sqlx::query(AssertSqlSafe(format!(
            "SELECT {RESOURCE_COLUMNS}, \
               (SELECT coalesce(json_agg(json_build_array(g.id, g.resource_type, g.display) \
                                ORDER BY m.group_id), '[]'::json)::text \
                FROM scimkit_members m \
                JOIN scimkit_resources g ON g.tenant = m.tenant AND g.id = m.group_id \
                WHERE m.tenant = r.tenant AND m.member_id = r.id) \
             FROM scimkit_resources r \
             WHERE r.tenant = $1 AND r.id = $2 AND r.resource_type = $3"
        )))
        .bind(tenant.as_str())
        .bind(id.as_str())
        .bind(rt.name());
        let row = self
            .reads
            .fetch_optional(q)
            .await
            .map_err(db_err)?
            .ok_or_else(|| StoreError::not_found(rt, id))?;
        let res = resource_from_row(rt, &row)?;
        let groups: String = row.try_get(6).map_err(db_err)?;
        Ok((res, crate::store::groups_from_json(&groups)?))
    }

    /// [`crate::store::ResourceStore::groups_of_many`]: the groups of each of `members`.
    pub(super) async fn groups_of_each(
        &self,
        tenant: &TenantId,
        members: &[ResourceId],
    ) -> Result<Vec<Vec<GroupRef>>, StoreError> {
        let ids: Vec<&str> = members
            .iter()
            .map(ResourceId::as_str)
            .filter(|m| !m.contains('\0'))
            .collect();
        if ids.is_empty() {
            return Ok(vec![Vec::new(); members.len()]);
        }
        let q = sqlx::query(
            "SELECT m.member_id, g.id, g.resource_type, g.display FROM scimkit_members m \
             JOIN scimkit_resources g ON g.tenant = m.tenant AND g.id = m.group_id \
             WHERE m.tenant = $1 AND m.member_id = ANY($2) ORDER BY m.group_id",
        )
        .bind(tenant.as_str())
        .bind(&ids);
        let rows = self.reads.fetch_all(q).await.map_err(db_err)?;
        let rows = rows
            .iter()
            .map(|row| {
                let member: String = row.try_get(0).map_err(db_err)?;
                let m = member_from_row(row, 1)?;
                Ok((
                    member,
                    GroupRef {
                        id: m.value,
                        resource_type: m.resource_type,
                        display: m.display,
                    },
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(crate::store::groups_by_member(members, rows))
    }
}
