//! Catalogs and schema packs in the service: who may write catalog values, which resource
//! types a tenant is served, and grants checked against the catalogs.

use std::sync::Arc;

use http::Method;
use serde_json::{Map, Value};

use super::{Ctx, ScimService};
use crate::error::ScimError;
use crate::events::{merge_note, ToleranceKind, ToleranceNote};
use crate::resource::{
    normalize_write, unique_keys, ResourceId, UnknownMembers, WriteBody, WriteMode,
};
use crate::schema::ResourceDef;
use crate::store::{
    CreateRequest, NewDocument, StoreError, StoredResource, UpdateKind, UpdateRequest,
};
use crate::tenant::TenantId;

/// The most distinct grant values one write may have checked against the catalogs (each is
/// a store read): a write adding more new grants than this is refused with 400 `tooMany`.
pub(super) const MAX_GRANT_LOOKUPS: usize = 1000;

/// Refuses a client's write (`method`) to a catalog resource type that is read-only for
/// clients: 405 with `Allow: GET`.
pub(super) fn refuse_client_write(def: &ResourceDef, method: &Method) -> Result<(), ScimError> {
    match def.catalog() {
        Some(c) if !c.writable_by_clients() => Err(ScimError::MethodNotAllowed {
            detail: format!(
                "{method} is not allowed on {}: its values are published by the service \
                 provider, and SCIM clients may only read them",
                def.endpoint()
            ),
            allow: vec![Method::GET],
        }),
        _ => Ok(()),
    }
}

/// Whether the request's tenant is served resource type `def`.
pub(super) fn visible(ctx: &Ctx, def: &ResourceDef) -> bool {
    !def.requires_tenant_opt_in() || ctx.tenant.settings.agents
}

/// The resource types the request's tenant is served.
pub(super) fn visible_types(svc: &ScimService, ctx: &Ctx) -> Vec<Arc<ResourceDef>> {
    svc.registry()
        .resource_types()
        .filter(|d| visible(ctx, d))
        .cloned()
        .collect()
}

/// Whether schema `urn` is served to the request's tenant: not when only resource types
/// hidden from it use it.
pub(super) fn schema_visible(svc: &ScimService, ctx: &Ctx, urn: &str) -> bool {
    let mut users = svc
        .registry()
        .resource_types()
        .filter(|d| d.has_schema(urn))
        .peekable();
    if users.peek().is_none() {
        return true;
    }
    users.any(|d| visible(ctx, d))
}

/// The `agentExtension` of `/ServiceProviderConfig` (draft-abbey-scim-agent-extension-00
/// §4.1), when the registry has the agent pack.
pub(super) fn agent_extension(svc: &ScimService, ctx: &Ctx) -> Option<Value> {
    let (agent, app) = svc.registry().agent_types();
    if !svc.registry().advertises_agent_extension() || (agent.is_none() && app.is_none()) {
        return None;
    }
    let agents = agent.is_some_and(|d| visible(ctx, d));
    let apps = app.is_some_and(|d| visible(ctx, d));
    Some(serde_json::json!({
        "supported": agents || apps,
        "agentsSupported": agents,
        "agenticApplicationsSupported": apps,
    }))
}

/// Two grant elements are the same grant: same `value` (exact) and `type` (ignoring case).
fn same_grant(a: &Value, value: &str, ty: Option<&str>) -> bool {
    a.get("value").and_then(Value::as_str) == Some(value)
        && match (a.get("type").and_then(Value::as_str), ty) {
            (None, None) => true,
            (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
            _ => false,
        }
}

/// Checks the grants in `doc` (a normalised document of type `def`) against the published
/// catalogs: each element of a grant attribute (`entitlements`, `roles`) that is not in
/// `current` already, whose `type` names a catalog granted through that attribute, or that
/// has no `type` while such catalogs exist, must be a value of one of them. An unknown one
/// fails the write with 400 `invalidValue` naming it, or under
/// [`Tolerances::ignore_unknown_grants`](crate::settings::Tolerances::ignore_unknown_grants)
/// is dropped from `doc` and logged. Elements whose `type` names no catalog are the free-form
/// grants RFC 7643 §4.1.2 allows and are kept as sent. Each distinct value is looked up
/// once, at most [`MAX_GRANT_LOOKUPS`] of them per write.
pub(super) async fn check_grants(
    svc: &ScimService,
    ctx: &Ctx,
    def: &ResourceDef,
    doc: &mut Value,
    current: Option<&Value>,
    notes: &mut Vec<ToleranceNote>,
) -> Result<(), ScimError> {
    if def.catalog().is_some() {
        return Ok(());
    }
    let registry = svc.registry();
    let mut attrs: Vec<&str> = Vec::new();
    for d in registry.resource_types() {
        if let Some(c) = d.catalog() {
            let a = c.grant_attribute();
            if !attrs.iter().any(|x| x.eq_ignore_ascii_case(a)) {
                attrs.push(a);
            }
        }
    }
    let tolerant = ctx.tenant.settings.tolerances.ignore_unknown_grants;
    let mut dropped: Vec<String> = Vec::new();
    // (catalog name, value) -> held by that catalog.
    let mut looked_up: std::collections::HashMap<(String, String), bool> =
        std::collections::HashMap::new();
    for attr in attrs {
        let Some(def_attr) = def.core().attribute(attr) else {
            continue;
        };
        if !(def_attr.multi_valued && def_attr.is_complex()) {
            continue;
        }
        let catalogs: Vec<&Arc<ResourceDef>> = registry
            .catalogs_granted_through(attr)
            .filter(|d| visible(ctx, d))
            .collect();
        if catalogs.is_empty() {
            continue;
        }
        let Some(obj) = doc.as_object_mut() else {
            return Ok(());
        };
        let Some(key) = obj.keys().find(|k| k.eq_ignore_ascii_case(attr)).cloned() else {
            continue;
        };
        let existing: &[Value] = current
            .and_then(|c| c.as_object())
            .and_then(|c| c.iter().find(|(k, _)| k.eq_ignore_ascii_case(attr)))
            .and_then(|(_, v)| v.as_array())
            .map_or(&[], Vec::as_slice);
        let Some(Value::Array(items)) = obj.get_mut(&key) else {
            continue;
        };
        let mut keep: Vec<Value> = Vec::with_capacity(items.len());
        let dropped_before = dropped.len();
        for item in std::mem::take(items) {
            let value = item.get("value").and_then(Value::as_str);
            let ty = item.get("type").and_then(Value::as_str);
            let Some(value) = value else {
                keep.push(item);
                continue;
            };
            if existing.iter().any(|e| same_grant(e, value, ty)) {
                keep.push(item);
                continue;
            }
            let candidates: Vec<&Arc<ResourceDef>> = match ty {
                Some(t) => catalogs
                    .iter()
                    .copied()
                    .filter(|d| d.name().eq_ignore_ascii_case(t))
                    .collect(),
                None => catalogs.clone(),
            };
            if candidates.is_empty() {
                keep.push(item);
                continue;
            }
            let mut found = false;
            for c in &candidates {
                let key = (c.name().to_owned(), value.to_owned());
                let held = match looked_up.get(&key) {
                    Some(held) => *held,
                    None => {
                        if looked_up.len() >= MAX_GRANT_LOOKUPS {
                            return Err(ScimError::TooMany(format!(
                                "`{attr}`: the request adds more than {MAX_GRANT_LOOKUPS} \
                                 grants to check against the catalogs; send them in several \
                                 requests"
                            )));
                        }
                        let held = match svc
                            .store()
                            .get(ctx.id(), c, &ResourceId::new(value), false)
                            .await
                        {
                            Ok(_) => true,
                            Err(StoreError::NotFound { .. }) => false,
                            Err(e) => return Err(e.into()),
                        };
                        looked_up.insert(key, held);
                        held
                    }
                };
                if held {
                    found = true;
                    break;
                }
            }
            if found {
                keep.push(item);
            } else if tolerant {
                dropped.push(format!("{attr}:{value}"));
            } else {
                let names: Vec<&str> = candidates.iter().map(|d| d.name()).collect();
                return Err(ScimError::InvalidValue(format!(
                    "`{attr}` grants `{value}`, which is not a value of the {} catalog \
                     ({}); read the catalog for the values that can be granted",
                    names.join(" or "),
                    candidates
                        .iter()
                        .map(|d| d.endpoint())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        let dropped_here = dropped.len() - dropped_before;
        if dropped_here > 0 {
            let first = dropped.get(dropped_before).cloned().unwrap_or_default();
            merge_note(
                notes,
                ToleranceNote {
                    kind: ToleranceKind::UnknownGrantsDropped,
                    path: attr.to_owned(),
                    count: dropped_here as u64,
                    detail: if dropped_here == 1 {
                        format!("dropped the grant {first}, which no published catalog holds")
                    } else {
                        format!(
                            "dropped {dropped_here} grants no published catalog holds \
                             (first: {first})"
                        )
                    },
                },
            );
        }
        if keep.is_empty() && dropped.len() > dropped_before {
            // Every element was dropped: the attribute is unassigned (RFC 7643 §2.4), as if
            // they had not been sent.
            obj.remove(&key);
        } else {
            *items = keep;
        }
    }
    if !dropped.is_empty() {
        let first: Vec<&str> = dropped.iter().take(5).map(String::as_str).collect();
        tracing::info!(
            target: "scimkit::provisioning",
            tenant = %ctx.id(),
            resource_type = def.name(),
            dropped = dropped.len(),
            first = ?first,
            "dropped grants that no published catalog holds"
        );
    }
    Ok(())
}

/// What [`ScimService::sync_catalog`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CatalogSync {
    /// Values published (created, changed or already so).
    pub published: usize,
    /// Values withdrawn because the host's list no longer has them.
    pub withdrawn: usize,
}

impl ScimService {
    /// Adds or replaces value `id` of catalog resource type `resource_type` (see
    /// [`SchemaRegistry::add_catalog`](crate::schema::SchemaRegistry::add_catalog)) for
    /// `tenant`. `attributes` is the value's document without `schemas`, `id` and `meta`
    /// (for Okta's schemas: `displayName`, and optionally `type` and `description`); it is
    /// validated against the catalog's schema like a client's write. The `id` is what
    /// identity providers grant (`{"value": id}`), so it should be the host's own stable
    /// identifier of the entitlement or role. The change appears in the change feed.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use scimkit::schema::{Catalog, SchemaRegistry};
    /// # use scimkit::service::ScimService;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let tenants = scimkit::auth::Tenants::in_memory();
    /// # let acme = scimkit::tenant::TenantId::new("acme").unwrap();
    /// # tenants.create_tenant(acme.clone(), "Acme", scimkit::settings::Settings::default()).await.unwrap();
    /// let mut registry = SchemaRegistry::default();
    /// registry.add_catalog(Catalog::roles("Role", "/Roles")).unwrap();
    /// let service = ScimService::builder(
    ///     "https://app.example.com/scim/v2",
    ///     Arc::new(scimkit::store::MemoryStore::new()),
    ///     Arc::clone(tenants.store()),
    /// )
    /// .registry(registry)
    /// .build()
    /// .unwrap();
    /// service
    ///     .publish_catalog_value(
    ///         &acme,
    ///         "Role",
    ///         "billing-admin",
    ///         serde_json::json!({"displayName": "Billing administrator"}),
    ///     )
    ///     .await
    ///     .unwrap();
    /// # });
    /// ```
    pub async fn publish_catalog_value(
        &self,
        tenant: &TenantId,
        resource_type: &str,
        id: &str,
        attributes: Value,
    ) -> Result<StoredResource, ScimError> {
        let def = self.catalog_def(resource_type)?;
        if id.is_empty() || id.len() > 1024 || id.contains('/') || id.chars().any(char::is_control)
        {
            return Err(ScimError::InvalidValue(format!(
                "catalog value id `{}` must be 1 to 1024 bytes without `/` or control \
                 characters (it is a path segment of {})",
                id.escape_debug(),
                def.endpoint()
            )));
        }
        let settings = self
            .tenant_store()
            .get_tenant(tenant)
            .await?
            .ok_or_else(|| ScimError::NotFound(format!("no tenant `{tenant}`")))?
            .settings;
        let mut body = match attributes {
            Value::Object(m) => m,
            _ => {
                return Err(ScimError::InvalidValue(
                    "a catalog value's attributes must be a JSON object".to_owned(),
                ))
            }
        };
        body.insert(
            "schemas".into(),
            Value::Array(vec![Value::String(def.core().id.clone())]),
        );
        body.remove("id");
        body.remove("meta");
        let write_body = |b: &Map<String, Value>| {
            WriteBody::from_value(&def, &settings.tolerances, Value::Object(b.clone()))
        };
        let rid = ResourceId::new(id);
        let now = self.inner.clock.now();
        match self.store().get(tenant, &def, &rid, false).await {
            Ok(current) => {
                let (doc, _) = normalize_write(
                    &def,
                    write_body(&body),
                    &settings,
                    WriteMode::Replace {
                        existing: &current.doc,
                    },
                )?;
                if doc == current.doc {
                    return Ok(current);
                }
                let keys = unique_keys(&def, &doc, settings.unique_group_display_name);
                let req = UpdateRequest {
                    expected_version: None,
                    document: Some(NewDocument {
                        doc,
                        unique_keys: keys,
                    }),
                    members: None,
                    return_members: None,
                    kind: UpdateKind::Replace,
                    now,
                    actor: None,
                };
                Ok(self.store().update(tenant, &def, &rid, req).await?)
            }
            Err(StoreError::NotFound { .. }) => {
                let (doc, _) =
                    normalize_write(&def, write_body(&body), &settings, WriteMode::Create)?;
                let keys = unique_keys(&def, &doc, settings.unique_group_display_name);
                let req = CreateRequest {
                    id: rid,
                    doc,
                    unique_keys: keys,
                    members: Vec::new(),
                    unknown_members: UnknownMembers::Skip,
                    now,
                    actor: None,
                };
                Ok(self.store().create(tenant, &def, req).await?)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Removes value `id` of catalog resource type `resource_type` for `tenant`; false when
    /// it was not there. Grants of it already on users stay until the identity provider
    /// revokes them (no user document changes behind its back); new grants of it are
    /// refused or dropped.
    pub async fn withdraw_catalog_value(
        &self,
        tenant: &TenantId,
        resource_type: &str,
        id: &str,
    ) -> Result<bool, ScimError> {
        let def = self.catalog_def(resource_type)?;
        match self
            .store()
            .delete(
                tenant,
                &def,
                &ResourceId::new(id),
                None,
                self.inner.clock.now(),
            )
            .await
        {
            Ok(()) => Ok(true),
            Err(StoreError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Makes catalog `resource_type` of `tenant` hold exactly `values` (`(id, attributes)`
    /// pairs as for [`publish_catalog_value`](Self::publish_catalog_value)): each is
    /// published (an unchanged one is not written again), and every other value of the
    /// catalog is withdrawn. A host calls it with its full list (its policies, licenses)
    /// on start and whenever the list changes. Stops at the first invalid value, having
    /// published the ones before it and withdrawn nothing.
    ///
    /// Resource ids are unique within a tenant across all resource types, so two catalogs
    /// cannot both have a value `admin`: give ids a per-catalog prefix (`role-admin`) when
    /// the host's own ids could collide. A taken id is refused with 409 `uniqueness`.
    pub async fn sync_catalog(
        &self,
        tenant: &TenantId,
        resource_type: &str,
        values: impl IntoIterator<Item = (String, Value)>,
    ) -> Result<CatalogSync, ScimError> {
        let def = self.catalog_def(resource_type)?;
        let mut keep: std::collections::HashSet<String> = std::collections::HashSet::new();
        for (id, attributes) in values {
            self.publish_catalog_value(tenant, resource_type, &id, attributes)
                .await?;
            keep.insert(id);
        }
        // Every id of the catalog first (the store is not written while paging), then the
        // withdrawals.
        const PAGE: usize = 1000;
        let mut stale: Vec<ResourceId> = Vec::new();
        let mut start = 1;
        loop {
            let query = crate::store::ListQuery {
                start_index: start,
                count: PAGE,
                ..crate::store::ListQuery::default()
            };
            let page = self.store().list(tenant, &def, &query).await?;
            let n = page.resources.len();
            stale.extend(
                page.resources
                    .into_iter()
                    .map(|r| r.id)
                    .filter(|id| !keep.contains(id.as_str())),
            );
            // Without a filter every store answers exactly; an inexact answer holds them all.
            if page.pushdown != crate::store::Pushdown::Exact || n < PAGE {
                break;
            }
            start += n;
        }
        stale.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        stale.dedup();
        let mut withdrawn = 0;
        for id in &stale {
            if self
                .withdraw_catalog_value(tenant, resource_type, id.as_str())
                .await?
            {
                withdrawn += 1;
            }
        }
        Ok(CatalogSync {
            published: keep.len(),
            withdrawn,
        })
    }

    fn catalog_def(&self, resource_type: &str) -> Result<Arc<ResourceDef>, ScimError> {
        self.registry()
            .resource_type(resource_type)
            .filter(|d| d.catalog().is_some())
            .cloned()
            .ok_or_else(|| {
                ScimError::NotFound(format!("no catalog resource type `{resource_type}`"))
            })
    }
}
