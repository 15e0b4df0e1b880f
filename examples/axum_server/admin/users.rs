//! The users view, one user's page, and the change-feed poll.

use super::*;

/// The largest number of candidates the users view evaluates itself when a store cannot
/// answer a search exactly (the SQL stores answer these searches exactly).
pub(super) const MAX_USER_CANDIDATES: usize = 10_000;

/// A page of the tenant's users by `userName`: `q` searched in `by` (`userName`: starts with;
/// `email`: contains; `externalId`: equals), `status` one of `all`, `active`, `inactive`.
/// Every search is a filter the store answers from its indexes (`userName sw`,
/// `emails.value co`, `externalId eq`), paged by the store.
pub(super) async fn list_users(
    State(admin): State<Admin>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let id = admin.existing_tenant(&headers, &tenant).await?;
    let params = query_params(&uri);
    let (start, count) = paging(&params, 25)?;
    let mut parts = Vec::new();
    if let Some(q) = params.get("q").map(|q| q.trim()).filter(|q| !q.is_empty()) {
        if q.chars().count() > 256 {
            return Err(ApiError::bad(
                "The search text is too long (256 characters at most).",
            ));
        }
        let value = Value::String(q.to_owned());
        parts.push(match params.get("by").map(String::as_str) {
            None | Some("userName") => format!("userName sw {value}"),
            Some("email") => format!("emails.value co {value}"),
            Some("externalId") => format!("externalId eq {value}"),
            Some(_) => return Err(ApiError::bad("`by` must be userName, email or externalId.")),
        });
    }
    match params.get("status").map(String::as_str) {
        None | Some("all") => {}
        Some("active") => parts.push("not (active eq false)".to_owned()),
        Some("inactive") => parts.push("active eq false".to_owned()),
        Some(_) => return Err(ApiError::bad("`status` must be all, active or inactive.")),
    }
    let filter = if parts.is_empty() {
        None
    } else {
        Some(Filter::parse(&parts.join(" and "))?)
    };
    let def = admin.user_def()?;
    let query = ListQuery {
        filter,
        sort: Some(SortSpec::parse("userName", None)?),
        start_index: start,
        count,
        include_members: false,
        max_candidates: MAX_USER_CANDIDATES,
        paging: Paging::Index,
    };
    let page = admin.store().list(&id, &def, &query).await?;
    let page = if page.pushdown == Pushdown::Exact {
        page
    } else if page.resources.len() > MAX_USER_CANDIDATES {
        return Err(ApiError::bad(
            "This search matches too many users to list: narrow it.",
        ));
    } else {
        apply_query(&def, &query, page.resources)?
    };
    let users: Vec<Value> = page.resources.iter().map(user_row).collect();
    Ok(ok_json(json!({
        "total": page.total_results,
        "start": start,
        "users": users,
    })))
}

/// A user as the users view lists it.
pub(super) fn user_row(u: &scimkit::store::StoredResource) -> Value {
    json!({
        "id": u.id.as_str(),
        "userName": text(&u.doc, "userName"),
        "displayName": text(&u.doc, "displayName"),
        "externalId": text(&u.doc, "externalId"),
        "email": primary_email(&u.doc),
        "active": u.doc.get("active").and_then(Value::as_bool).unwrap_or(true),
        "lastModified": time(u.last_modified),
    })
}

/// The primary email of a user document, or its first.
pub(super) fn primary_email(doc: &Value) -> Value {
    let emails = doc.get("emails").and_then(Value::as_array);
    let pick = emails.and_then(|list| {
        list.iter()
            .find(|e| e.get("primary").and_then(Value::as_bool) == Some(true))
            .or_else(|| list.first())
    });
    pick.and_then(|e| e.get("value"))
        .cloned()
        .unwrap_or(Value::Null)
}

/// One user: its attributes, its collections (`User.groups`) and the policies applying.
pub(super) async fn get_user(
    State(admin): State<Admin>,
    Path((tenant, user)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = admin.authorized_tenant(&headers, &tenant)?;
    let def = admin.user_def()?;
    let uid = ResourceId::from(user.as_str());
    let (u, groups) = admin.store().get_with_groups(&id, &def, &uid).await?;
    let mut row = user_row(&u);
    let policies = admin.0.db.policies(&id).await.map_err(ApiError::internal)?;
    let applying = if u.doc.get("active").and_then(Value::as_bool) == Some(false) {
        Vec::new()
    } else {
        applying_policies(&policies, &groups, &u.doc)
    };
    if let Some(obj) = row.as_object_mut() {
        obj.insert("policies".to_owned(), Value::Array(applying));
        obj.insert(
            "entitlements".to_owned(),
            u.doc.get("entitlements").cloned().unwrap_or(Value::Null),
        );
        obj.insert("created".to_owned(), Value::String(time(u.created)));
        obj.insert(
            "emails".to_owned(),
            u.doc.get("emails").cloned().unwrap_or(Value::Null),
        );
        obj.insert(
            "groups".to_owned(),
            Value::Array(
                groups
                    .iter()
                    .map(|g| json!({"id": g.id.as_str(), "name": g.display}))
                    .collect(),
            ),
        );
    }
    Ok(ok_json(row))
}

/// Whether anything changed after `after`, and the newest position: what the page polls.
pub(super) async fn changes(
    State(admin): State<Admin>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let id = admin.authorized_tenant(&headers, &tenant)?;
    let params = query_params(&uri);
    let after: u64 = match params.get("after") {
        Some(a) => a
            .parse()
            .map_err(|_| ApiError::bad("`after` must be a change-feed position."))?,
        None => 0,
    };
    let head = admin.head(&id).await?;
    Ok(ok_json(json!({ "head": head, "changed": head > after })))
}
