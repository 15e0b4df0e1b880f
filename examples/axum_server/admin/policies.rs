//! The host's access policies, published as the `Entitlement` catalog with `--governance`,
//! and "check login".

use super::*;

impl Admin {
    /// Whether the console's policies are published as the `Entitlement` catalog: the
    /// server runs with `--governance`, so the registry has that catalog.
    pub(super) fn publishes_policies(&self) -> bool {
        self.app()
            .service
            .registry()
            .resource_type(POLICY_CATALOG)
            .is_some_and(|d| d.catalog().is_some())
    }

    /// Publishes (or renames) `policy` in `tenant`'s `Entitlement` catalog, when the console
    /// publishes its policies.
    pub(super) async fn publish_policy(
        &self,
        tenant: &TenantId,
        policy: &Policy,
    ) -> Result<(), ApiError> {
        if !self.publishes_policies() {
            return Ok(());
        }
        self.app()
            .service
            .publish_catalog_value(
                tenant,
                POLICY_CATALOG,
                &policy_value(policy.id),
                policy_catalog_attributes(policy),
            )
            .await?;
        Ok(())
    }

    /// Withdraws policy `id` from `tenant`'s `Entitlement` catalog. Users the IdP granted it
    /// keep the grant in their document until the IdP revokes it; it no longer applies,
    /// since the policy is gone.
    pub(super) async fn withdraw_policy(&self, tenant: &TenantId, id: i64) -> Result<(), ApiError> {
        if !self.publishes_policies() {
            return Ok(());
        }
        self.app()
            .service
            .withdraw_catalog_value(tenant, POLICY_CATALOG, &policy_value(id))
            .await?;
        Ok(())
    }

    /// Makes every tenant's `Entitlement` catalog hold exactly its policies (on start: the
    /// console's tables are the source of truth, and a publication that failed after a
    /// policy was saved is repaired here).
    pub async fn sync_policy_catalogs(&self) -> Result<(), String> {
        if !self.publishes_policies() {
            return Ok(());
        }
        let tenants = self
            .app()
            .tenants
            .list_tenants()
            .await
            .map_err(|e| e.detail().to_owned())?;
        for t in tenants {
            let policies = self.0.db.policies(&t.id).await?;
            let values = policies
                .iter()
                .map(|p| (policy_value(p.id), policy_catalog_attributes(p)));
            self.app()
                .service
                .sync_catalog(&t.id, POLICY_CATALOG, values)
                .await
                .map_err(|e| {
                    format!(
                        "publishing the policies of `{}` as the {POLICY_CATALOG} catalog: {}",
                        t.id,
                        e.detail()
                    )
                })?;
        }
        Ok(())
    }
}

// ---- policies (the host's own model) ----------------------------------------------------------

/// The catalog resource type the console publishes its policies as, when the server runs
/// with `--governance`: Okta Identity Governance imports it from `/Entitlements` and grants
/// policies to users in `User.entitlements`.
pub(super) const POLICY_CATALOG: &str = "Entitlement";

/// The `Entitlement` catalog value of policy `id`: what the IdP grants
/// (`{"value": "policy-7", "type": "Entitlement"}`). Stable across renames.
pub(super) fn policy_value(id: i64) -> String {
    format!("policy-{id}")
}

/// The policy a grant value names, if it is one of [`policy_value`]'s.
pub(super) fn policy_of_value(value: &str) -> Option<i64> {
    value
        .strip_prefix("policy-")
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse().ok())
}

/// A policy's catalog value document (Okta's entitlement schema).
pub(super) fn policy_catalog_attributes(p: &Policy) -> Value {
    json!({
        "displayName": p.name,
        "type": POLICY_CATALOG,
        "description": "An access policy of the host; granted through its user collections \
                        or directly by the IdP",
    })
}

/// The policies the IdP granted in a user document's `entitlements` (an element whose
/// `type` is absent or `Entitlement` and whose value is a [`policy_value`]), with the
/// `display` the IdP sent.
pub(super) fn granted_policies(doc: &Value) -> Vec<(i64, Option<String>)> {
    let Some(grants) = doc
        .as_object()
        .and_then(|o| {
            o.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("entitlements"))
        })
        .and_then(|(_, v)| v.as_array())
    else {
        return Vec::new();
    };
    grants
        .iter()
        .filter(|g| {
            g.get("type")
                .and_then(Value::as_str)
                .is_none_or(|t| t.eq_ignore_ascii_case(POLICY_CATALOG))
        })
        .filter_map(|g| {
            let id = policy_of_value(g.get("value").and_then(Value::as_str)?)?;
            let display = g.get("display").and_then(Value::as_str).map(str::to_owned);
            Some((id, display))
        })
        .collect()
}

/// The policies applying to an active user, each with where it comes from: `via` the
/// user's collections that it names, `grant` when the IdP granted it in `User.entitlements`,
/// and `origins` (`"IdP"`, `"collection"`, or both).
pub(super) fn applying_policies(
    policies: &[Policy],
    groups: &[GroupRef],
    doc: &Value,
) -> Vec<Value> {
    let granted = granted_policies(doc);
    let mut applying = Vec::new();
    for p in policies {
        let via: Vec<Value> = groups
            .iter()
            .filter(|g| p.collections.iter().any(|c| c.id == g.id.as_str()))
            .map(|g| json!({"id": g.id.as_str(), "name": g.display}))
            .collect();
        let grant = granted.iter().find(|(id, _)| *id == p.id);
        let mut origins = Vec::new();
        if grant.is_some() {
            origins.push("IdP");
        }
        if !via.is_empty() {
            origins.push("collection");
        }
        if origins.is_empty() {
            continue;
        }
        applying.push(json!({
            "id": p.id,
            "name": p.name,
            "via": via,
            "grant": grant.map(|_| policy_value(p.id)),
            "origins": origins,
        }));
    }
    applying
}

#[derive(Deserialize)]
pub(super) struct PolicyBody {
    name: String,
    #[serde(default)]
    collections: Vec<String>,
}

pub(super) async fn list_policies(
    State(admin): State<Admin>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = admin.existing_tenant(&headers, &tenant).await?;
    let policies = admin.0.db.policies(&id).await.map_err(ApiError::internal)?;
    let def = admin.group_def()?;
    let mut list = Vec::with_capacity(policies.len());
    for p in policies {
        list.push(policy_json(&admin, &id, &def, &p).await?);
    }
    Ok(ok_json(json!({ "policies": list })))
}

/// A policy with its collections' current names; a group the IdP deleted keeps the name it
/// had when attached, with `deleted: true`.
pub(super) async fn policy_json(
    admin: &Admin,
    tenant: &TenantId,
    def: &ResourceDef,
    p: &Policy,
) -> Result<Value, ApiError> {
    let mut collections = Vec::with_capacity(p.collections.len());
    for c in &p.collections {
        let gid = ResourceId::from(c.id.as_str());
        let (name, deleted) = match admin.store().get(tenant, def, &gid, false).await {
            Ok(g) => (text(&g.doc, "displayName"), false),
            Err(StoreError::NotFound { .. }) => (Value::String(c.name.clone()), true),
            Err(e) => return Err(e.into()),
        };
        collections.push(json!({"id": c.id, "name": name, "deleted": deleted}));
    }
    let mut out = json!({"id": p.id, "name": p.name, "collections": collections});
    if admin.publishes_policies() {
        // What the IdP grants, and to how many users it has (`entitlements[value eq ...]`,
        // a filter every store answers).
        let value = policy_value(p.id);
        let users = admin.user_def()?;
        let query = ListQuery {
            filter: Some(Filter::parse(&format!(
                "entitlements[value eq {}]",
                Value::String(value.clone())
            ))?),
            sort: None,
            start_index: 1,
            count: 1,
            include_members: false,
            max_candidates: MAX_USER_CANDIDATES,
            ..ListQuery::default()
        };
        // A store that cannot answer the filter itself hands back candidates to finish
        // here; past MAX_USER_CANDIDATES of them the count is left unknown (null).
        let page = admin.store().list(tenant, &users, &query).await?;
        let granted = if page.pushdown == Pushdown::Exact {
            Some(page.total_results)
        } else if page.resources.len() > MAX_USER_CANDIDATES {
            None
        } else {
            Some(apply_query(&users, &query, page.resources)?.total_results)
        };
        if let Some(o) = out.as_object_mut() {
            o.insert("value".to_owned(), Value::String(value));
            o.insert("idpGrants".to_owned(), json!(granted));
        }
    }
    Ok(out)
}

/// Validates a policy body: a name, and collections that are groups of the tenant now (or
/// were already attached to `existing`, when the IdP deleted them since: they keep their
/// stored name).
pub(super) async fn checked_policy(
    admin: &Admin,
    tenant: &TenantId,
    body: &Bytes,
    existing: Option<&Policy>,
) -> Result<(String, Vec<PolicyCollection>), ApiError> {
    let b: PolicyBody = parse(body)?;
    let name = b.name.trim().to_owned();
    if name.is_empty() {
        return Err(ApiError::bad("Give the policy a name."));
    }
    if name.chars().count() > 200 {
        return Err(ApiError::bad(
            "The policy name is too long (200 characters at most).",
        ));
    }
    if b.collections.len() > MAX_PAGE {
        return Err(ApiError::bad(format!(
            "A policy names at most {MAX_PAGE} collections."
        )));
    }
    let def = admin.group_def()?;
    let mut collections: Vec<PolicyCollection> = Vec::new();
    for c in b.collections {
        if collections.iter().any(|x| x.id == c) {
            continue;
        }
        let gid = ResourceId::from(c.as_str());
        match admin.store().get(tenant, &def, &gid, false).await {
            Ok(g) => collections.push(PolicyCollection {
                name: g
                    .doc
                    .get("displayName")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                id: c,
            }),
            Err(StoreError::NotFound { .. }) => {
                match existing.and_then(|p| p.collections.iter().find(|x| x.id == c)) {
                    Some(kept) => collections.push(kept.clone()),
                    None => {
                        return Err(ApiError::bad(format!(
                            "The user collection {c:?} does not exist (the IdP deleted it?); \
                             reload."
                        )))
                    }
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok((name, collections))
}

pub(super) fn policy_id(s: &str) -> Result<i64, ApiError> {
    s.parse()
        .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "No such policy."))
}

pub(super) async fn create_policy(
    State(admin): State<Admin>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = admin.existing_tenant(&headers, &tenant).await?;
    let (name, collections) = checked_policy(&admin, &id, &body, None).await?;
    let policy = admin
        .0
        .db
        .create_policy(&id, &name, collections)
        .await
        .map_err(ApiError::internal)?;
    admin.publish_policy(&id, &policy).await?;
    let def = admin.group_def()?;
    let body = policy_json(&admin, &id, &def, &policy).await?;
    Ok((StatusCode::CREATED, ok_json(body)).into_response())
}

pub(super) async fn update_policy(
    State(admin): State<Admin>,
    Path((tenant, policy)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = admin.authorized_tenant(&headers, &tenant)?;
    let policy = policy_id(&policy)?;
    let existing = admin
        .0
        .db
        .policies(&id)
        .await
        .map_err(ApiError::internal)?
        .into_iter()
        .find(|p| p.id == policy)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "No such policy."))?;
    let (name, collections) = checked_policy(&admin, &id, &body, Some(&existing)).await?;
    let updated = admin
        .0
        .db
        .update_policy(&id, policy, &name, collections)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "No such policy."))?;
    if updated.name != existing.name {
        admin.publish_policy(&id, &updated).await?;
    }
    let def = admin.group_def()?;
    Ok(ok_json(policy_json(&admin, &id, &def, &updated).await?))
}

pub(super) async fn delete_policy(
    State(admin): State<Admin>,
    Path((tenant, policy)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = admin.authorized_tenant(&headers, &tenant)?;
    let policy = policy_id(&policy)?;
    if admin
        .0
        .db
        .delete_policy(&id, policy)
        .await
        .map_err(ApiError::internal)?
    {
        admin.withdraw_policy(&id, policy).await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::new(StatusCode::NOT_FOUND, "No such policy."))
    }
}

#[derive(Deserialize)]
pub(super) struct LoginCheck {
    #[serde(rename = "userName")]
    user_name: String,
}

/// What the host does when a user logs in: find the user the IdP provisioned, read their
/// groups (`User.groups`, from the store's membership index) and apply the policies naming
/// one of them. A deactivated user (`active: false`) gets nothing.
pub(super) async fn check_login(
    State(admin): State<Admin>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = admin.existing_tenant(&headers, &tenant).await?;
    let check: LoginCheck = parse(&body)?;
    let user_name = check.user_name.trim();
    if user_name.is_empty() {
        return Err(ApiError::bad("Enter a userName."));
    }
    let def = admin.user_def()?;
    let query = ListQuery {
        // userName is case-insensitive (RFC 7643 §4.1.1), so is this lookup.
        filter: Some(Filter::parse(&format!(
            "userName eq {}",
            Value::String(user_name.to_owned())
        ))?),
        sort: None,
        start_index: 1,
        count: 1,
        include_members: false,
        max_candidates: usize::MAX,
        ..ListQuery::default()
    };
    let page = list_exact(admin.store(), &id, &def, &query).await?;
    let Some(user) = page.resources.into_iter().next() else {
        return Ok(ok_json(json!({
            "found": false,
            "allowed": false,
            "reason": "No user with this userName has been provisioned by the IdP.",
        })));
    };
    let groups = admin.store().groups_of(&id, &user.id).await?;
    // RFC 7643 §4.1.1: `active` absent means the host decides; this host treats it as active.
    let active = user
        .doc
        .get("active")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let policies = admin.0.db.policies(&id).await.map_err(ApiError::internal)?;
    let applying = if active {
        applying_policies(&policies, &groups, &user.doc)
    } else {
        Vec::new()
    };
    let reason = if !active {
        "The user is deactivated by the IdP (active: false): the login is refused and no policy applies."
    } else if applying.is_empty() {
        "No policy names any of the user's collections, and the IdP granted none."
    } else {
        "These policies apply at this login."
    };
    Ok(ok_json(json!({
        "found": true,
        "user": {
            "id": user.id.as_str(),
            "userName": text(&user.doc, "userName"),
            "displayName": text(&user.doc, "displayName"),
            "active": active,
        },
        "groups": groups
            .iter()
            .map(|g| json!({"id": g.id.as_str(), "name": g.display}))
            .collect::<Vec<_>>(),
        "policies": applying,
        "allowed": active && !applying.is_empty(),
        "reason": reason,
    })))
}
