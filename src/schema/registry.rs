//! The schema registry: schemas, resource types and attribute path resolution.

use std::sync::Arc;

use super::attribute::AttributeDef;
use super::packs::{self, AgentScope, Catalog, CatalogInfo};
use super::path::AttrPath;
use super::{builtin, ResourceType, Schema, ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA};

/// An error in how the host set up the registry (caller misuse, not untrusted input).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// A schema with the same URN is registered already.
    #[error("schema `{0}` is already registered")]
    DuplicateSchema(String),
    /// A resource type with the same name or endpoint is registered already.
    #[error("resource type `{0}` is already registered (same name or endpoint)")]
    DuplicateResourceType(String),
    /// A resource type names a schema that was not registered first.
    #[error("resource type `{resource_type}` uses schema `{schema}`, which is not registered")]
    UnknownSchema {
        /// The resource type being registered.
        resource_type: String,
        /// The missing schema URN.
        schema: String,
    },
    /// The named resource type does not exist.
    #[error("no resource type named `{0}`")]
    UnknownResourceType(String),
    /// A schema URN or endpoint is malformed.
    #[error("invalid definition: {0}")]
    Invalid(String),
}

/// A resource type with its schemas resolved: what documents of that type look like.
#[derive(Debug, Clone)]
pub struct ResourceDef {
    resource_type: ResourceType,
    core: Arc<Schema>,
    extensions: Vec<(Arc<Schema>, bool)>,
    common: Arc<Vec<AttributeDef>>,
    /// The top-level (common and core) attributes whose value the default projection can
    /// change: `returned` never or request, or with such a sub-attribute.
    default_projection_alters: Vec<String>,
    /// Set for a catalog resource type (see [`Catalog`]).
    catalog: Option<CatalogInfo>,
    /// Served only to tenants that opted in ([`AgentScope::OptedInTenants`]).
    tenant_opt_in: bool,
}

/// An attribute path resolved against a resource type.
#[derive(Debug, Clone, Copy)]
pub struct ResolvedAttr<'a> {
    /// The extension schema URN that holds the attribute in a document (documents keep
    /// extension attributes in an object under that key), or `None` for common and core
    /// attributes, which sit at the top level.
    pub extension: Option<&'a str>,
    /// The top-level attribute.
    pub attr: &'a AttributeDef,
    /// The sub-attribute, when the path names one.
    pub sub: Option<&'a AttributeDef>,
}

impl ResolvedAttr<'_> {
    /// The definition the path ends at: the sub-attribute if any, else the attribute.
    pub fn target(&self) -> &AttributeDef {
        self.sub.unwrap_or(self.attr)
    }
}

impl ResourceDef {
    /// The wire resource type (for `/ResourceTypes`).
    pub fn resource_type(&self) -> &ResourceType {
        &self.resource_type
    }

    /// The resource type's name (`User`).
    pub fn name(&self) -> &str {
        &self.resource_type.name
    }

    /// The endpoint (`/Users`).
    pub fn endpoint(&self) -> &str {
        &self.resource_type.endpoint
    }

    /// The core schema.
    pub fn core(&self) -> &Schema {
        &self.core
    }

    /// The extension schemas with their `required` flag.
    pub fn extensions(&self) -> impl Iterator<Item = (&Schema, bool)> {
        self.extensions.iter().map(|(s, r)| (s.as_ref(), *r))
    }

    /// Looks an extension up by URN, case-insensitively.
    pub fn extension(&self, urn: &str) -> Option<&Schema> {
        self.extensions
            .iter()
            .find(|(s, _)| s.id.eq_ignore_ascii_case(urn))
            .map(|(s, _)| s.as_ref())
    }

    /// True when `urn` is the core schema or one of the extensions (case-insensitive).
    pub fn has_schema(&self, urn: &str) -> bool {
        self.core.id.eq_ignore_ascii_case(urn) || self.extension(urn).is_some()
    }

    /// The common attributes (`id`, `externalId`, `meta`).
    pub fn common(&self) -> &[AttributeDef] {
        &self.common
    }

    /// Whether the default projection (no `attributes`, no `excludedAttributes`) may change
    /// the value of top-level key `name`: false for a common or core attribute returned whole
    /// by default and for unknown keys (kept by default); true for extension URNs (not looked
    /// at here) and attributes `returned` never or request or with such sub-attributes.
    pub(crate) fn default_projection_may_alter(&self, name: &str) -> bool {
        name.get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
            || self
                .default_projection_alters
                .iter()
                .any(|a| a.eq_ignore_ascii_case(name))
    }

    /// Set when this resource type is a catalog of values the host supplies (see
    /// [`SchemaRegistry::add_catalog`]).
    pub fn catalog(&self) -> Option<&CatalogInfo> {
        self.catalog.as_ref()
    }

    /// True when this resource type is served only to tenants whose
    /// [`Settings::agents`](crate::settings::Settings::agents) is true.
    pub fn requires_tenant_opt_in(&self) -> bool {
        self.tenant_opt_in
    }

    /// The membership attribute of this resource type: a multi-valued complex `members` of
    /// the core schema with a `value` sub-attribute (Group, or a custom type built the same
    /// way). Resources of such a type keep their members as a relation, not in their
    /// document. This is the one rule for "this resource type has members".
    pub fn membership(&self) -> Option<&AttributeDef> {
        self.core()
            .attribute("members")
            .filter(|a| a.multi_valued && a.is_complex() && a.sub_attribute("value").is_some())
    }

    /// True when resources of this type have members (see [`membership`](Self::membership)).
    pub fn has_members(&self) -> bool {
        self.membership().is_some()
    }

    /// Looks a top-level attribute of the common or core schema up, case-insensitively.
    pub fn top_level(&self, name: &str) -> Option<&AttributeDef> {
        self.common
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
            .or_else(|| self.core.attribute(name))
    }

    /// Resolves an attribute path. Unqualified names resolve against the common attributes
    /// and the core schema; extension attributes must be qualified with their URN
    /// (RFC 7644 §3.10). Returns `None` for anything unknown, including a sub-attribute of a
    /// simple attribute.
    pub fn resolve(&self, path: &AttrPath) -> Option<ResolvedAttr<'_>> {
        self.resolve_parts(path.urn.as_deref(), &path.name, path.sub_attr.as_deref())
    }

    /// [`resolve`](Self::resolve) on borrowed parts.
    pub fn resolve_parts(
        &self,
        urn: Option<&str>,
        name: &str,
        sub: Option<&str>,
    ) -> Option<ResolvedAttr<'_>> {
        let (extension, attr) = match urn {
            None => (None, self.top_level(name)?),
            Some(u) if self.core.id.eq_ignore_ascii_case(u) => (None, self.top_level(name)?),
            Some(u) => {
                let (schema, _) = self
                    .extensions
                    .iter()
                    .find(|(s, _)| s.id.eq_ignore_ascii_case(u))?;
                (Some(schema.id.as_str()), schema.attribute(name)?)
            }
        };
        let sub = match sub {
            None => None,
            Some(s) => Some(attr.sub_attribute(s)?),
        };
        Some(ResolvedAttr {
            extension,
            attr,
            sub,
        })
    }
}

/// The set of schemas and resource types a tenant serves.
///
/// [`SchemaRegistry::default`] serves the RFC 7643 User (with the Enterprise User extension,
/// optional) and Group resource types. Hosts add their own with
/// [`register_schema`](Self::register_schema), [`register_resource_type`](Self::register_resource_type)
/// and [`add_extension`](Self::add_extension).
#[derive(Debug, Clone)]
pub struct SchemaRegistry {
    schemas: Vec<Arc<Schema>>,
    resource_types: Vec<Arc<ResourceDef>>,
    common: Arc<Vec<AttributeDef>>,
    advertise_agent_extension: bool,
}

impl Default for SchemaRegistry {
    fn default() -> Self {
        let mut r = SchemaRegistry::empty();
        for s in [
            builtin::user_schema(),
            builtin::group_schema(),
            builtin::enterprise_user_schema(),
        ] {
            r.schemas.push(Arc::new(s));
        }
        let user = ResourceType {
            description: "User Account".to_owned(),
            ..ResourceType::new("User", "/Users", USER_SCHEMA)
                .with_extension(ENTERPRISE_USER_SCHEMA, false)
        };
        let group = ResourceType {
            description: "Group".to_owned(),
            ..ResourceType::new("Group", "/Groups", GROUP_SCHEMA)
        };
        // Both definitions only use schemas registered just above.
        let _ = r.register_resource_type(user);
        let _ = r.register_resource_type(group);
        r
    }
}

impl SchemaRegistry {
    /// A registry with no resource types and no schemas but the discovery ones.
    pub fn empty() -> Self {
        SchemaRegistry {
            schemas: Vec::new(),
            resource_types: Vec::new(),
            common: Arc::new(builtin::common_attributes()),
            advertise_agent_extension: false,
        }
    }

    /// The discovery schemas (ServiceProviderConfig, ResourceType, Schema), which describe
    /// the discovery endpoints rather than provisioned resources.
    pub fn discovery_schemas() -> [Schema; 3] {
        [
            builtin::service_provider_config_schema(),
            builtin::resource_type_schema(),
            builtin::schema_schema(),
        ]
    }

    /// Registers a schema (core or extension). Its id must be a URN not yet registered.
    pub fn register_schema(&mut self, schema: Schema) -> Result<(), RegistryError> {
        if !schema
            .id
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
        {
            return Err(RegistryError::Invalid(format!(
                "schema id `{}` is not a URN",
                schema.id
            )));
        }
        if self.schema(&schema.id).is_some() {
            return Err(RegistryError::DuplicateSchema(schema.id));
        }
        self.schemas.push(Arc::new(schema));
        Ok(())
    }

    /// Registers a resource type whose schemas are registered already.
    pub fn register_resource_type(&mut self, rt: ResourceType) -> Result<(), RegistryError> {
        let segment = rt.endpoint.strip_prefix('/').unwrap_or("");
        if segment.is_empty() || segment.contains('/') {
            return Err(RegistryError::Invalid(format!(
                "endpoint `{}` must be one path segment starting with `/`",
                rt.endpoint
            )));
        }
        if self.resource_types.iter().any(|d| {
            d.resource_type.name.eq_ignore_ascii_case(&rt.name)
                || d.resource_type.endpoint.eq_ignore_ascii_case(&rt.endpoint)
        }) {
            return Err(RegistryError::DuplicateResourceType(rt.name));
        }
        let core =
            self.schema(&rt.schema)
                .cloned()
                .ok_or_else(|| RegistryError::UnknownSchema {
                    resource_type: rt.name.clone(),
                    schema: rt.schema.clone(),
                })?;
        let mut extensions = Vec::new();
        for ext in &rt.schema_extensions {
            let s =
                self.schema(&ext.schema)
                    .cloned()
                    .ok_or_else(|| RegistryError::UnknownSchema {
                        resource_type: rt.name.clone(),
                        schema: ext.schema.clone(),
                    })?;
            extensions.push((s, ext.required));
        }
        let default_projection_alters = self
            .common
            .iter()
            .chain(core.attributes.iter())
            .filter(|a| !returned_whole_by_default(a))
            .map(|a| a.name.clone())
            .collect();
        self.resource_types.push(Arc::new(ResourceDef {
            resource_type: rt,
            core,
            extensions,
            common: Arc::clone(&self.common),
            default_projection_alters,
            catalog: None,
            tenant_opt_in: false,
        }));
        Ok(())
    }

    /// Publishes a catalog resource type whose values the host supplies (Okta Identity
    /// Governance imports every resource type whose schema is Okta's entitlement or role
    /// schema, then grants the values to users). The catalog's schema is registered unless a
    /// schema with its id is already (several catalogs may share Okta's entitlement schema).
    ///
    /// Values granted through the catalog's attribute (`User.entitlements`, `User.roles`, and
    /// the same attribute of any other resource type, such as `Agent`) are checked against
    /// it when their `type` names the catalog or is absent (see
    /// [`Tolerances::ignore_unknown_grants`](crate::settings::Tolerances::ignore_unknown_grants)).
    ///
    /// ```
    /// use scimkit::schema::{Catalog, SchemaRegistry};
    ///
    /// let mut registry = SchemaRegistry::default();
    /// registry.add_catalog(Catalog::entitlements("Entitlement", "/Entitlements"))?;
    /// registry.add_catalog(Catalog::entitlements("License", "/Licenses"))?;
    /// registry.add_catalog(Catalog::roles("Role", "/Roles"))?;
    /// assert!(registry.resource_type("License").unwrap().catalog().is_some());
    /// // Then: ScimService::builder(..).registry(registry).build(), and the host's values
    /// // through ScimService::publish_catalog_value.
    /// # Ok::<(), scimkit::schema::RegistryError>(())
    /// ```
    pub fn add_catalog(&mut self, catalog: Catalog) -> Result<(), RegistryError> {
        let Catalog {
            name,
            endpoint,
            description,
            schema,
            grant_attribute,
            writable,
        } = catalog;
        let urn = schema.id.clone();
        if self.schema(&urn).is_none() {
            self.register_schema(schema)?;
        }
        let rt = ResourceType {
            description,
            ..ResourceType::new(&name, &endpoint, &urn)
        };
        self.register_resource_type(rt)?;
        if let Some(def) = self.resource_types.last_mut() {
            Arc::make_mut(def).catalog = Some(CatalogInfo {
                grant_attribute,
                writable,
            });
        }
        Ok(())
    }

    /// The catalog resource types whose values are granted through `attribute`
    /// (`entitlements`, `roles`), in registration order.
    pub fn catalogs_granted_through<'a>(
        &'a self,
        attribute: &'a str,
    ) -> impl Iterator<Item = &'a Arc<ResourceDef>> + 'a {
        self.resource_types.iter().filter(move |d| {
            d.catalog
                .as_ref()
                .is_some_and(|c| c.grant_attribute.eq_ignore_ascii_case(attribute))
        })
    }

    /// Adds the agent schema pack of draft-abbey-scim-agent-extension-00: the `Agent`
    /// (`/Agents`) and `AgenticApplication` (`/AgenticApplications`) resource types with
    /// their schemas, advertised as `agentExtension` in `/ServiceProviderConfig` (see
    /// [`advertise_agent_extension`](Self::advertise_agent_extension)). Off by default;
    /// `scope` says whether every tenant is served them or only those whose
    /// [`Settings::agents`](crate::settings::Settings::agents) is true.
    ///
    /// ```
    /// use scimkit::schema::{AgentScope, SchemaRegistry};
    ///
    /// let mut registry = SchemaRegistry::default();
    /// registry.enable_agents(AgentScope::AllTenants)?;
    /// assert!(registry.resource_type_by_endpoint("/Agents").is_some());
    /// # Ok::<(), scimkit::schema::RegistryError>(())
    /// ```
    pub fn enable_agents(&mut self, scope: AgentScope) -> Result<(), RegistryError> {
        self.register_schema(packs::agent_schema())?;
        self.register_schema(packs::agentic_application_schema())?;
        let agent = ResourceType {
            description: "Agent identities".to_owned(),
            ..ResourceType::new("Agent", "/Agents", packs::AGENT_SCHEMA)
        };
        let app = ResourceType {
            description: "Applications that host or provide access to agents".to_owned(),
            ..ResourceType::new(
                "AgenticApplication",
                "/AgenticApplications",
                packs::AGENTIC_APPLICATION_SCHEMA,
            )
        };
        for rt in [agent, app] {
            self.register_resource_type(rt)?;
            if let Some(def) = self.resource_types.last_mut() {
                Arc::make_mut(def).tenant_opt_in = scope == AgentScope::OptedInTenants;
            }
        }
        self.advertise_agent_extension = true;
        Ok(())
    }

    /// Whether `/ServiceProviderConfig` carries the draft's `agentExtension` attribute
    /// (`supported`, `agentsSupported`, `agenticApplicationsSupported`) when the agent pack
    /// is enabled; on by [`enable_agents`](Self::enable_agents), as the draft requires.
    ///
    /// The attribute is not part of RFC 7643's ServiceProviderConfig schema, and clients
    /// that validate that document strictly reject it: the Python `scim2-models` (under
    /// `scim2-client` and the `scim2-tester` conformance tool) refuses the whole document
    /// ("extra inputs are not permitted"). A host whose clients include such tools turns it
    /// off; clients still find the agent resource types through `/ResourceTypes` (as
    /// `scim-sanity` does).
    pub fn advertise_agent_extension(&mut self, advertise: bool) {
        self.advertise_agent_extension = advertise;
    }

    /// Whether `/ServiceProviderConfig` advertises the agent pack (see
    /// [`advertise_agent_extension`](Self::advertise_agent_extension)).
    pub fn advertises_agent_extension(&self) -> bool {
        self.advertise_agent_extension
    }

    /// The agent resource types registered by [`enable_agents`](Self::enable_agents), if
    /// any: `(Agent, AgenticApplication)` presence.
    pub fn agent_types(&self) -> (Option<&Arc<ResourceDef>>, Option<&Arc<ResourceDef>>) {
        let by_schema = |urn: &str| {
            self.resource_types
                .iter()
                .find(|d| d.resource_type.schema.eq_ignore_ascii_case(urn))
        };
        (
            by_schema(packs::AGENT_SCHEMA),
            by_schema(packs::AGENTIC_APPLICATION_SCHEMA),
        )
    }

    /// Registers `schema` and adds it as an extension of the resource type named
    /// `resource_type` (for example a custom `urn:...:extension:acme:2.0:User`).
    pub fn add_extension(
        &mut self,
        resource_type: &str,
        schema: Schema,
        required: bool,
    ) -> Result<(), RegistryError> {
        let idx = self
            .resource_types
            .iter()
            .position(|d| d.resource_type.name.eq_ignore_ascii_case(resource_type))
            .ok_or_else(|| RegistryError::UnknownResourceType(resource_type.to_owned()))?;
        let urn = schema.id.clone();
        self.register_schema(schema)?;
        let s = self
            .schema(&urn)
            .cloned()
            .ok_or_else(|| RegistryError::UnknownSchema {
                resource_type: resource_type.to_owned(),
                schema: urn.clone(),
            })?;
        if let Some(def) = self.resource_types.get_mut(idx) {
            let def = Arc::make_mut(def);
            def.resource_type
                .schema_extensions
                .push(super::SchemaExtension {
                    schema: urn,
                    required,
                });
            def.extensions.push((s, required));
        }
        Ok(())
    }

    /// Looks a schema up by URN, case-insensitively.
    pub fn schema(&self, urn: &str) -> Option<&Arc<Schema>> {
        self.schemas.iter().find(|s| s.id.eq_ignore_ascii_case(urn))
    }

    /// All registered resource schemas, in registration order.
    pub fn schemas(&self) -> impl Iterator<Item = &Arc<Schema>> {
        self.schemas.iter()
    }

    /// Looks a resource type up by name (`User`), case-insensitively.
    pub fn resource_type(&self, name: &str) -> Option<&Arc<ResourceDef>> {
        self.resource_types
            .iter()
            .find(|d| d.resource_type.name.eq_ignore_ascii_case(name))
    }

    /// Looks a resource type up by endpoint; `/Users` and `Users` both work, matching is
    /// case-sensitive on the segment as URLs are.
    pub fn resource_type_by_endpoint(&self, endpoint: &str) -> Option<&Arc<ResourceDef>> {
        let seg = endpoint.strip_prefix('/').unwrap_or(endpoint);
        self.resource_types
            .iter()
            .find(|d| d.resource_type.endpoint.get(1..) == Some(seg))
    }

    /// All resource types, in registration order.
    pub fn resource_types(&self) -> impl Iterator<Item = &Arc<ResourceDef>> {
        self.resource_types.iter()
    }

    /// The `User` resource type. Present in the default registry.
    pub fn user(&self) -> Option<&Arc<ResourceDef>> {
        self.resource_type("User")
    }

    /// The `Group` resource type. Present in the default registry.
    pub fn group(&self) -> Option<&Arc<ResourceDef>> {
        self.resource_type("Group")
    }
}

/// Whether the default projection returns attribute `a` whole: `returned` default or
/// always, and every sub-attribute too.
fn returned_whole_by_default(a: &AttributeDef) -> bool {
    use super::Returned;
    let whole = |r: Returned| matches!(r, Returned::Default | Returned::Always);
    whole(a.returned) && a.sub_attributes.iter().all(|sub| whole(sub.returned))
}

#[cfg(test)]
mod tests {
    use super::super::{AttributeDef, AttributeType};
    use super::*;

    #[test]
    fn resolves_core_common_and_extension_paths() {
        let reg = SchemaRegistry::default();
        let user = reg.user().unwrap();
        let r = user.resolve(&AttrPath::parse("USERNAME").unwrap()).unwrap();
        assert_eq!(r.attr.name, "userName");
        assert!(r.extension.is_none());
        let r = user
            .resolve(&AttrPath::parse("name.GIVENNAME").unwrap())
            .unwrap();
        assert_eq!(r.target().name, "givenName");
        let r = user
            .resolve(&AttrPath::parse("meta.lastModified").unwrap())
            .unwrap();
        assert_eq!(r.target().ty, AttributeType::DateTime);
        let r = user
            .resolve(
                &AttrPath::parse(
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
                )
                .unwrap(),
            )
            .unwrap();
        assert_eq!(r.extension, Some(ENTERPRISE_USER_SCHEMA));
        assert_eq!(r.attr.name, "manager");
        let r = user
            .resolve(
                &AttrPath::parse("urn:ietf:params:scim:schemas:core:2.0:User:userName").unwrap(),
            )
            .unwrap();
        assert_eq!(r.attr.name, "userName");
        assert!(user.resolve(&AttrPath::parse("nosuch").unwrap()).is_none());
        assert!(user
            .resolve(&AttrPath::parse("userName.x").unwrap())
            .is_none());
        // Extension attributes are not visible unqualified.
        assert!(user
            .resolve(&AttrPath::parse("employeeNumber").unwrap())
            .is_none());
    }

    #[test]
    fn custom_extension_and_resource_type() {
        let mut reg = SchemaRegistry::default();
        let acme = Schema {
            id: "urn:ietf:params:scim:schemas:extension:acme:2.0:User".into(),
            name: "Acme".into(),
            description: String::new(),
            attributes: vec![AttributeDef::string("badge").case_exact()],
        };
        reg.add_extension("User", acme.clone(), false).unwrap();
        assert_eq!(
            reg.add_extension("User", acme, false),
            Err(RegistryError::DuplicateSchema(
                "urn:ietf:params:scim:schemas:extension:acme:2.0:User".into()
            ))
        );
        let user = reg.user().unwrap();
        let r = user
            .resolve(
                &AttrPath::parse("urn:ietf:params:scim:schemas:extension:acme:2.0:User:BADGE")
                    .unwrap(),
            )
            .unwrap();
        assert!(r.attr.case_exact);

        let device = Schema {
            id: "urn:example:schemas:Device".into(),
            name: "Device".into(),
            description: String::new(),
            attributes: vec![AttributeDef::string("serial").required()],
        };
        reg.register_schema(device).unwrap();
        reg.register_resource_type(ResourceType::new(
            "Device",
            "/Devices",
            "urn:example:schemas:Device",
        ))
        .unwrap();
        assert!(reg.resource_type_by_endpoint("Devices").is_some());
        assert!(reg.resource_type_by_endpoint("/Devices").is_some());
        assert!(matches!(
            reg.register_resource_type(ResourceType::new("X", "/X", "urn:none")),
            Err(RegistryError::UnknownSchema { .. })
        ));
        assert!(matches!(
            reg.register_resource_type(ResourceType::new("Y", "bad", "urn:example:schemas:Device")),
            Err(RegistryError::Invalid(_))
        ));
    }
}
