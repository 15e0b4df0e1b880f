//! Membership reads: the members of a group, and the groups of a resource.

use sqlx::{AssertSqlSafe, Row};

use super::{be, current, groups_of, member_list, resource_from_row, SqliteStore};
use crate::resource::{Member, ResourceId};
use crate::schema::ResourceDef;
use crate::store::{GroupRef, MemberPage, StoreError, StoredResource};
use crate::tenant::TenantId;

impl SqliteStore {
    pub(super) async fn do_members_if_at_most(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        group: &ResourceId,
        max: usize,
    ) -> Result<Option<Vec<Member>>, StoreError> {
        let mut conn = self.reader.acquire().await.map_err(be)?;
        let found = current(&mut conn, tenant, group.as_str())
            .await?
            .filter(|c| c.rt == rt.name());
        if found.is_none() {
            conn.release();
            return Ok(None);
        }
        // Is there a member past `max`? An index-only probe of at most `max` entries.
        let more = sqlx::query(
            "SELECT 1 FROM members WHERE tenant = ?1 AND group_id = ?2 \
             ORDER BY member_id LIMIT 1 OFFSET ?3",
        )
        .bind(tenant.as_str())
        .bind(group.as_str())
        .bind(i64::try_from(max).unwrap_or(i64::MAX))
        .fetch_optional(&mut *conn)
        .await
        .map_err(be)?;
        if more.is_some() {
            conn.release();
            return Ok(None);
        }
        let members = member_list(&mut conn, tenant, group.as_str(), 0, max).await?;
        conn.release();
        Ok(Some(members))
    }

    pub(super) async fn do_members(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        group: &ResourceId,
        start_index: usize,
        count: usize,
    ) -> Result<MemberPage, StoreError> {
        let mut conn = self.reader.acquire().await.map_err(be)?;
        let found = current(&mut conn, tenant, group.as_str())
            .await?
            .filter(|c| c.rt == rt.name());
        if found.is_none() {
            conn.release();
            return Err(StoreError::not_found(rt, group));
        }
        let row =
            sqlx::query("SELECT count(*) AS n FROM members WHERE tenant = ?1 AND group_id = ?2")
                .bind(tenant.as_str())
                .bind(group.as_str())
                .fetch_one(&mut *conn)
                .await
                .map_err(be)?;
        let total = usize::try_from(row.try_get::<i64, _>("n").map_err(be)?).unwrap_or(0);
        let w = crate::store::page_window(start_index, count, total);
        let members = if w.is_empty() {
            Vec::new()
        } else {
            member_list(&mut conn, tenant, group.as_str(), w.start, w.len()).await?
        };
        conn.release();
        Ok(MemberPage {
            members,
            total_results: total,
        })
    }

    pub(super) async fn do_groups_of(
        &self,
        tenant: &TenantId,
        member: &ResourceId,
    ) -> Result<Vec<GroupRef>, StoreError> {
        let mut conn = self.reader.acquire().await.map_err(be)?;
        let rows = sqlx::query(
            "SELECT m.group_id, g.rt, g.display FROM members AS m \
             JOIN resources AS g ON g.tenant = m.tenant AND g.id = m.group_id \
             WHERE m.tenant = ?1 AND m.member_id = ?2 ORDER BY m.group_id",
        )
        .bind(tenant.as_str())
        .bind(member.as_str())
        .fetch_all(&mut *conn)
        .await
        .map_err(be)?;
        conn.release();
        rows.iter()
            .map(|r| {
                Ok(GroupRef {
                    id: ResourceId::new(r.try_get::<String, _>("group_id").map_err(be)?),
                    resource_type: r.try_get("rt").map_err(be)?,
                    display: r.try_get("display").map_err(be)?,
                })
            })
            .collect()
    }

    pub(super) async fn do_get_with_groups(
        &self,
        tenant: &TenantId,
        rt: &ResourceDef,
        id: &ResourceId,
    ) -> Result<(StoredResource, Vec<GroupRef>), StoreError> {
        let mut conn = self.reader.acquire().await.map_err(be)?;
        // One statement: the resource, and its groups as a JSON array in a subquery.
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT r.id, r.rt, r.version, r.created, r.modified, r.doc{} \
                 FROM resources AS r WHERE r.tenant = ?1 AND r.id = ?2 AND r.rt = ?3",
            groups_of("r")
        )))
        .bind(tenant.as_str())
        .bind(id.as_str())
        .bind(rt.name())
        .fetch_optional(&mut *conn)
        .await
        .map_err(be)?;
        conn.release();
        let row = row.ok_or_else(|| StoreError::not_found(rt, id))?;
        let res = resource_from_row(&row)?;
        let groups: String = row.try_get("groups").map_err(be)?;
        Ok((res, crate::store::groups_from_json(&groups)?))
    }

    pub(super) async fn do_groups_of_many(
        &self,
        tenant: &TenantId,
        members: &[ResourceId],
    ) -> Result<Vec<Vec<GroupRef>>, StoreError> {
        if members.is_empty() {
            return Ok(Vec::new());
        }
        let ids =
            serde_json::to_string(&members.iter().map(ResourceId::as_str).collect::<Vec<_>>())
                .map_err(StoreError::backend)?;
        let mut conn = self.reader.acquire().await.map_err(be)?;
        let rows = sqlx::query(
            "SELECT m.member_id, m.group_id, g.rt, g.display FROM members AS m \
             JOIN resources AS g ON g.tenant = m.tenant AND g.id = m.group_id \
             WHERE m.tenant = ?1 AND m.member_id IN (SELECT value FROM json_each(?2)) \
             ORDER BY m.group_id",
        )
        .bind(tenant.as_str())
        .bind(ids)
        .fetch_all(&mut *conn)
        .await
        .map_err(be)?;
        conn.release();
        let rows = rows
            .iter()
            .map(|r| {
                Ok((
                    r.try_get::<String, _>("member_id").map_err(be)?,
                    GroupRef {
                        id: ResourceId::new(r.try_get::<String, _>("group_id").map_err(be)?),
                        resource_type: r.try_get("rt").map_err(be)?,
                        display: r.try_get("display").map_err(be)?,
                    },
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(crate::store::groups_by_member(members, rows))
    }
}
