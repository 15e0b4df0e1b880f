//! A connection's health, its setup checklist and the provisioning log.

use super::*;

/// How many resources of a type the tenant has: a list query with `count=0` (the SQL stores
/// answer it with a `count(*)` over an index, never reading the resources).
pub(super) async fn count_resources(
    admin: &Admin,
    tenant: &TenantId,
    def: &ResourceDef,
) -> Result<usize, ApiError> {
    let query = ListQuery {
        filter: None,
        sort: None,
        start_index: 1,
        count: 0,
        include_members: false,
        max_candidates: usize::MAX,
        paging: Paging::Index,
    };
    Ok(admin.store().list(tenant, def, &query).await?.total_results)
}

/// The connection's health: SCIM on or off, counts of users, groups and active tokens, when
/// a token was last used, and warnings for what keeps the IdP from provisioning.
pub(super) async fn health(
    State(admin): State<Admin>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = admin.authorized_tenant(&headers, &tenant)?;
    let t = admin.app().tenants.get_tenant(&id).await?;
    let users = count_resources(&admin, &id, &*admin.user_def()?).await?;
    let groups = count_resources(&admin, &id, &*admin.group_def()?).await?;
    let now = Utc::now();
    let tokens = admin.app().tenants.list_tokens(&id).await?;
    let active_tokens = tokens.iter().filter(|k| k.is_active(now)).count();
    let last_used = tokens.iter().filter_map(|k| k.last_used).max();
    let log = admin.app().log.health(&id).await?;
    let requests = log.successes + log.failures + log.tolerated;
    let mut warnings = Vec::new();
    if t.scim_enabled && active_tokens == 0 {
        warnings.push(json!({
            "code": "noActiveToken",
            "text": "SCIM provisioning is on, but the connection has no active token: no request \
                     of the IdP can authenticate. Generate a token and paste it into the IdP.",
        }));
    }
    if requests == 0 && last_used.is_none() {
        warnings.push(json!({
            "code": "noRequestYet",
            "text": "No request from the IdP yet. Test the connection in the IdP (Okta: Test \
                     Connector Configuration; Entra: Test Connection).",
        }));
    }
    let m = find_milestones(&admin, &id, requests).await?;
    // The setup checklist: each step with the time it was seen done (`true` when done but
    // the time is not known, for example after the log was pruned).
    let seen = |t: Option<DateTime<Utc>>, done: bool| match t {
        Some(t) => json!(time(t)),
        None => json!(done),
    };
    let checklist = json!({
        "scimOn": t.scim_enabled,
        "token": active_tokens > 0 || last_used.is_some(),
        "tested": seen(m.tested, false),
        "userCreated": seen(m.user_created, users > 0),
        "groupPushed": seen(m.group_pushed, groups > 0),
        "membership": seen(m.membership, false),
    });
    let last_error = log.last_error.as_ref().map(|e| {
        json!({
            "time": time(e.time),
            "status": e.status,
            "detail": e.detail,
            "reason": e.auth_failure.map(|a| a.describe()),
        })
    });
    Ok(ok_json(json!({
        "checklist": checklist,
        "scimEnabled": t.scim_enabled,
        "users": users,
        "groups": groups,
        "activeTokens": active_tokens,
        "tokens": tokens.len(),
        "lastTokenUse": last_used.map(time),
        "lastSuccess": log.last_success.map(time),
        "lastError": last_error,
        "requests": {"success": log.successes, "failure": log.failures, "tolerated": log.tolerated},
        "warnings": warnings,
    })))
}

/// A page of the tenant's provisioning log, newest first: `outcome` (`success`, `failure`,
/// `tolerated`), `resource` (`User`, `Group`) and `q` (text in the path, name, id, reason)
/// narrow it; `before` (a cursor from `next`) pages to older events.
pub(super) async fn provisioning_log(
    State(admin): State<Admin>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let id = admin.existing_tenant(&headers, &tenant).await?;
    let params = query_params(&uri);
    let (_, count) = paging(&params, 50)?;
    let mut filter = LogFilter::all();
    match params.get("outcome").map(String::as_str) {
        None | Some("") => {}
        Some("success") => filter = filter.outcome(OutcomeKind::Success),
        Some("failure") => filter = filter.outcome(OutcomeKind::Failure),
        Some("tolerated") => filter = filter.outcome(OutcomeKind::Tolerated),
        Some(_) => {
            return Err(ApiError::bad(
                "`outcome` must be success, failure or tolerated.",
            ))
        }
    }
    match params.get("resource").map(String::as_str) {
        None | Some("") => {}
        Some(rt @ ("User" | "Group")) => filter = filter.resource_type(rt),
        Some(_) => return Err(ApiError::bad("`resource` must be User or Group.")),
    }
    if let Some(q) = params.get("q").map(|q| q.trim()).filter(|q| !q.is_empty()) {
        if q.chars().count() > 256 {
            return Err(ApiError::bad(
                "The search text is too long (256 characters at most).",
            ));
        }
        filter = filter.text(q);
    }
    let before = match params.get("before").filter(|b| !b.is_empty()) {
        Some(b) => Some(LogCursor(b.parse().map_err(|_| {
            ApiError::bad("`before` must be a log position (from `next`).")
        })?)),
        None => None,
    };
    let page = admin.app().log.query(&id, &filter, before, count).await?;
    let events: Vec<Value> = page
        .events
        .iter()
        .map(|(cursor, e)| event_json(*cursor, e))
        .collect();
    Ok(ok_json(json!({
        "enabled": true,
        "events": events,
        "next": page.next.map(|c| c.0),
    })))
}

/// An event for the console: its fields (the secret is never in one), its position, its
/// class, the readable auth-failure reason and the token id's prefix.
pub(super) fn event_json(cursor: LogCursor, e: &ProvisioningEvent) -> Value {
    let mut v = serde_json::to_value(e).unwrap_or(Value::Null);
    if let Some(obj) = v.as_object_mut() {
        obj.remove("body");
        obj.insert("cursor".to_owned(), json!(cursor.0));
        obj.insert("kind".to_owned(), json!(e.outcome_kind().as_str()));
        obj.insert("status".to_owned(), json!(e.outcome.status));
        obj.insert("scimType".to_owned(), json!(e.outcome.scim_type));
        obj.insert("detail".to_owned(), json!(e.outcome.detail));
        obj.insert(
            "authFailureText".to_owned(),
            json!(e.auth_failure.map(|a| a.describe())),
        );
        obj.insert(
            "tokenPrefix".to_owned(),
            json!(e.token_id.map(|t| token_prefix(&t.to_string()))),
        );
    }
    v
}

/// The setup checklist's steps seen done, with when (kept once found: a step never
/// becomes undone, and the log may be pruned later).
#[derive(Debug, Clone, Default)]
pub(super) struct Milestones {
    tested: Option<DateTime<Utc>>,
    user_created: Option<DateTime<Utc>>,
    group_pushed: Option<DateTime<Utc>>,
    membership: Option<DateTime<Utc>>,
    /// How many events the tenant's log had counted when it was last searched for the steps
    /// still missing: it is searched again only when events were added since.
    searched_at: Option<u64>,
}

/// Fills in the steps not yet seen from the tenant's log (`events`: how many it counted so
/// far): the oldest matching event among the newest ones a bounded query returns.
pub(super) async fn find_milestones(
    admin: &Admin,
    tenant: &TenantId,
    events: u64,
) -> Result<Milestones, ApiError> {
    let mut m = lock(&admin.0.milestones)
        .get(tenant)
        .cloned()
        .unwrap_or_default();
    if m.searched_at == Some(events) {
        return Ok(m);
    }
    let log = &admin.app().log;
    let ok = |e: &ProvisioningEvent| e.outcome.status < 400;
    // Each step: a filter that narrows the query, and the test of an event.
    type Step = (
        fn(&mut Milestones) -> &mut Option<DateTime<Utc>>,
        LogFilter,
        fn(&ProvisioningEvent) -> bool,
    );
    let steps: [Step; 4] = [
        (
            |m| &mut m.tested,
            LogFilter::all().text("get"),
            |e| {
                e.method == "GET"
                    && matches!(
                        e.endpoint.as_deref(),
                        Some("Users" | "ServiceProviderConfig" | "Schemas" | "ResourceTypes")
                    )
            },
        ),
        (
            |m| &mut m.user_created,
            LogFilter::all().resource_type("User").text("post"),
            |e| e.method == "POST" && e.endpoint.as_deref() == Some("Users"),
        ),
        (
            |m| &mut m.group_pushed,
            LogFilter::all().resource_type("Group").text("post"),
            |e| e.method == "POST" && e.endpoint.as_deref() == Some("Groups"),
        ),
        (
            |m| &mut m.membership,
            LogFilter::all().resource_type("Group").text("patch"),
            |e| e.method == "PATCH" && e.endpoint.as_deref() == Some("Groups"),
        ),
    ];
    for (field, filter, test) in steps {
        if field(&mut m).is_some() {
            continue;
        }
        let page = log.query(tenant, &filter, None, MAX_PAGE).await?;
        if let Some(t) = page
            .events
            .iter()
            .filter(|(_, e)| ok(e) && test(e))
            .map(|(_, e)| e.time)
            .min()
        {
            *field(&mut m) = Some(t);
        }
    }
    m.searched_at = Some(events);
    lock(&admin.0.milestones).insert(tenant.clone(), m.clone());
    Ok(m)
}
