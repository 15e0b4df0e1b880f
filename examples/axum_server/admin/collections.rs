//! User collections (the groups the IdP pushed) and their members.

use super::*;

// ---- user collections -----------------------------------------------------------------------

/// A page of the tenant's groups, by display name, with member counts; `q` narrows to names
/// containing it. Carries the change-feed head the page reflects.
pub(super) async fn list_groups(
    State(admin): State<Admin>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let id = admin.existing_tenant(&headers, &tenant).await?;
    let params = query_params(&uri);
    let (start, count) = paging(&params, 25)?;
    // Read the head first: a change landing during the read shows up at the next poll.
    let head = admin.head(&id).await?;
    let def = admin.group_def()?;
    let filter = match params.get("q").map(|q| q.trim()).filter(|q| !q.is_empty()) {
        Some(q) => Some(Filter::parse(&format!(
            "displayName co {}",
            Value::String(q.to_owned())
        ))?),
        None => None,
    };
    let query = ListQuery {
        filter,
        sort: Some(SortSpec::parse("displayName", None)?),
        start_index: start,
        count,
        include_members: false,
        max_candidates: usize::MAX,
        ..ListQuery::default()
    };
    let page = list_exact(admin.store(), &id, &def, &query).await?;
    let mut groups = Vec::with_capacity(page.resources.len());
    for g in page.resources {
        let members = admin.store().members(&id, &def, &g.id, 1, 0).await?;
        groups.push(json!({
            "id": g.id.as_str(),
            "name": text(&g.doc, "displayName"),
            "members": members.total_results,
            "lastModified": time(g.last_modified),
        }));
    }
    Ok(ok_json(json!({
        "total": page.total_results,
        "start": start,
        "groups": groups,
        "head": head,
    })))
}

/// A page of a collection's members sorted by `userName`, with the collection's active and
/// inactive counts (a deactivated member is never counted silently).
pub(super) async fn list_members(
    State(admin): State<Admin>,
    Path((tenant, group)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let id = admin.authorized_tenant(&headers, &tenant)?;
    let params = query_params(&uri);
    let (start, count) = paging(&params, 50)?;
    let def = admin.group_def()?;
    let gid = ResourceId::from(group.as_str());
    let g = admin.store().get(&id, &def, &gid, false).await?;
    let users = count_resources(&admin, &id, &*admin.user_def()?).await?;
    let sorted = match admin
        .0
        .db
        .sorted_members(&id, &gid, start, count, users)
        .await
        .map_err(ApiError::internal)?
    {
        Some(s) => s,
        None => memory_sorted_members(&admin, &id, &gid, start, count).await?,
    };
    let list: Vec<Value> = sorted
        .members
        .iter()
        .map(|m| {
            json!({
                "id": m.id,
                "type": m.resource_type,
                "userName": m.user_name,
                "displayName": m.display_name,
                "active": m.active,
            })
        })
        .collect();
    Ok(ok_json(json!({
        "group": {"id": g.id.as_str(), "name": text(&g.doc, "displayName")},
        "total": sorted.total,
        "inactive": sorted.inactive,
        "active": sorted.total.saturating_sub(sorted.inactive),
        "start": start,
        "members": list,
    })))
}

/// [`list_members`] over the memory store: every member is read (in pages) and sorted here.
/// The memory store holds everything in this process anyway; the SQL stores answer with one
/// indexed query instead (`ConsoleDb::sorted_members`).
pub(super) async fn memory_sorted_members(
    admin: &Admin,
    tenant: &TenantId,
    group: &ResourceId,
    start: usize,
    count: usize,
) -> Result<SortedMembers, ApiError> {
    const BATCH: usize = 1000;
    let mut all: Vec<SortedMember> = Vec::new();
    let mut at = 1;
    loop {
        let (page, total) = group_members(admin.app(), tenant, group, at, BATCH).await?;
        let fetched = page.len();
        all.extend(page.into_iter().map(|m| SortedMember {
            id: m.member.value.as_str().to_owned(),
            resource_type: m.member.resource_type.clone(),
            user_name: m.user_name,
            display_name: m.member.display,
            active: m.active,
        }));
        at += fetched;
        if fetched == 0 || at > total {
            break;
        }
    }
    let inactive = all.iter().filter(|m| m.active == Some(false)).count();
    all.sort_by(|a, b| {
        let key = |m: &SortedMember| m.user_name.as_ref().map(|n| n.to_lowercase());
        (key(a).is_none(), key(a), &a.id).cmp(&(key(b).is_none(), key(b), &b.id))
    });
    let total = all.len();
    let members = all
        .into_iter()
        .skip(start.saturating_sub(1))
        .take(count)
        .collect();
    Ok(SortedMembers {
        members,
        total: total as u64,
        inactive: inactive as u64,
    })
}
