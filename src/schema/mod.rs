//! Schemas, resource types and the registry that resolves attribute paths (RFC 7643 §2, §6, §7).
//!
//! Every document, filter and PATCH operation is interpreted against a [`SchemaRegistry`]. The
//! registry holds the built-in RFC 7643 schemas (User, Group, EnterpriseUser and the discovery
//! schemas) and whatever custom schemas and resource types the host registers; custom ones work
//! everywhere the built-in ones do.

mod attribute;
mod builtin;
mod packs;
mod path;
mod registry;

pub use attribute::{AttributeDef, AttributeType, Mutability, Returned, Uniqueness};
pub use builtin::{
    common_attributes, enterprise_user_schema, group_schema, resource_type_schema, schema_schema,
    service_provider_config_schema, user_schema,
};
pub use packs::{
    agent_schema, agentic_application_schema, okta_entitlement_schema, okta_role_schema,
    AgentScope, Catalog, CatalogInfo, AGENTIC_APPLICATION_SCHEMA, AGENT_SCHEMA,
    OKTA_ENTITLEMENT_SCHEMA, OKTA_ROLE_SCHEMA,
};
pub use path::AttrPath;
pub use registry::{RegistryError, ResolvedAttr, ResourceDef, SchemaRegistry};

use serde::{Deserialize, Serialize};

/// Schema URN of the core User schema.
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// Schema URN of the core Group schema.
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// Schema URN of the Enterprise User extension.
pub const ENTERPRISE_USER_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// Schema URN of the ServiceProviderConfig resource.
pub const SERVICE_PROVIDER_CONFIG_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
/// Schema URN of the ResourceType resource.
pub const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
/// Schema URN of the Schema resource.
pub const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";
/// Message URN of a ListResponse.
pub const LIST_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// Message URN of a PatchOp request.
pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// Message URN of a SearchRequest.
pub const SEARCH_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
/// Message URN of a BulkRequest.
pub const BULK_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
/// Message URN of a BulkResponse.
pub const BULK_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";

/// A schema: a named set of attribute definitions (RFC 7643 §7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Schema {
    /// The schema URN.
    pub id: String,
    /// Human readable name.
    #[serde(default)]
    pub name: String,
    /// Human readable description.
    #[serde(default)]
    pub description: String,
    /// Top-level attributes.
    #[serde(default)]
    pub attributes: Vec<AttributeDef>,
}

impl Schema {
    /// Looks a top-level attribute up by name, case-insensitively.
    pub fn attribute(&self, name: &str) -> Option<&AttributeDef> {
        self.attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }
}

/// A schema extension of a resource type (RFC 7643 §6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaExtension {
    /// The extension schema URN.
    pub schema: String,
    /// Whether resources of the type must carry the extension.
    #[serde(default)]
    pub required: bool,
}

/// A resource type (RFC 7643 §6): an endpoint, its core schema and its extensions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceType {
    /// The resource type's id (`User`).
    pub id: String,
    /// The resource type's name (`User`), used in `meta.resourceType`.
    pub name: String,
    /// The endpoint relative to the base URL (`/Users`).
    pub endpoint: String,
    /// Human readable description.
    #[serde(default)]
    pub description: String,
    /// The core schema URN.
    pub schema: String,
    /// Extension schemas.
    #[serde(default)]
    pub schema_extensions: Vec<SchemaExtension>,
}

impl ResourceType {
    /// A resource type named `name` served at `endpoint` with core schema `schema`.
    pub fn new(name: &str, endpoint: &str, schema: &str) -> Self {
        ResourceType {
            id: name.to_owned(),
            name: name.to_owned(),
            endpoint: endpoint.to_owned(),
            description: String::new(),
            schema: schema.to_owned(),
            schema_extensions: Vec::new(),
        }
    }

    /// Builder: add an extension.
    pub fn with_extension(mut self, schema: &str, required: bool) -> Self {
        self.schema_extensions.push(SchemaExtension {
            schema: schema.to_owned(),
            required,
        });
        self
    }
}
