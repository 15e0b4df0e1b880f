//! Optional schema packs: host-fed catalogs of entitlements and roles (Okta Identity
//! Governance's "SCIM 2.0 with Entitlements Management") and the agent resource types of
//! draft-abbey-scim-agent-extension-00.
//!
//! Neither is served by [`SchemaRegistry::default`](super::SchemaRegistry::default): a host
//! adds catalogs with [`SchemaRegistry::add_catalog`](super::SchemaRegistry::add_catalog) and
//! the agent pack with [`SchemaRegistry::enable_agents`](super::SchemaRegistry::enable_agents).

use super::attribute::{AttributeDef as A, AttributeType, Mutability, Uniqueness};
use super::Schema;

/// Core schema URN of Okta's entitlement catalog resources (Okta Identity Governance).
pub const OKTA_ENTITLEMENT_SCHEMA: &str = "urn:okta:scim:schemas:core:1.0:Entitlement";
/// Core schema URN of Okta's role catalog resources (Okta Identity Governance).
pub const OKTA_ROLE_SCHEMA: &str = "urn:okta:scim:schemas:core:1.0:Role";
/// Core schema URN of the Agent resource (draft-abbey-scim-agent-extension-00).
pub const AGENT_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Agent";
/// Core schema URN of the AgenticApplication resource (draft-abbey-scim-agent-extension-00).
pub const AGENTIC_APPLICATION_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:core:2.0:AgenticApplication";

/// The attributes of a catalog value: `displayName` (required), `type` and `description`.
fn catalog_attributes(what: &str) -> Vec<A> {
    vec![
        A::string("displayName").required().describe(format!(
            "The {what}'s name, as the identity provider shows it."
        )),
        A::string("type").describe(format!(
            "The kind of {what} (the name of its resource type, such as `License`)."
        )),
        A::string("description").describe(format!("What the {what} grants.")),
    ]
}

/// Okta's entitlement schema (`urn:okta:scim:schemas:core:1.0:Entitlement`): one value of
/// an entitlement catalog, granted to users through `User.entitlements`.
pub fn okta_entitlement_schema() -> Schema {
    Schema {
        id: OKTA_ENTITLEMENT_SCHEMA.to_owned(),
        name: "Entitlement".to_owned(),
        description: "An entitlement users can be granted".to_owned(),
        attributes: catalog_attributes("entitlement"),
    }
}

/// Okta's role schema (`urn:okta:scim:schemas:core:1.0:Role`): one value of a role catalog,
/// granted to users through `User.roles`.
pub fn okta_role_schema() -> Schema {
    Schema {
        id: OKTA_ROLE_SCHEMA.to_owned(),
        name: "Role".to_owned(),
        description: "A role users can be granted".to_owned(),
        attributes: catalog_attributes("role"),
    }
}

/// A multi-valued `{value, display, type, primary}` attribute (RFC 7643 §4.1.2).
fn grants(name: &str, what: &str) -> A {
    A::complex(
        name,
        vec![
            A::string("value").describe(format!("The {what}.")),
            A::string("display").describe("A human readable name, primarily for display."),
            A::string("type").describe("A label indicating the value's function."),
            A::boolean("primary").describe("Marks the preferred value; at most one may be true."),
        ],
    )
    .multi()
    .describe(format!("The {what}s of the agent."))
}

/// A read-only multi-valued `{value, $ref, display}` reference to other resources.
fn references(name: &str, types: &[&str], description: &str) -> A {
    A::complex(
        name,
        vec![
            A::string("value")
                .read_only()
                .describe("The id of the resource."),
            A::reference("$ref", types)
                .read_only()
                .describe("The URI of the resource."),
            A::string("display")
                .read_only()
                .describe("The resource's display name."),
        ],
    )
    .multi()
    .read_only()
    .describe(description)
}

/// The Agent schema of draft-abbey-scim-agent-extension-00 §5.1. The draft's read-only
/// `groups` is left out: group membership here is a relation of Users and Groups. Where the
/// draft's prose and its JSON representation differ, the prose wins: `subject`,
/// `protocols` and `parent` are what the client provisions (the JSON marks them readOnly),
/// and `protocols.specificationUrl` is spelt as in the prose.
pub fn agent_schema() -> Schema {
    let attributes = vec![
        A::string("name")
            .required()
            .uniqueness(Uniqueness::Server)
            .describe("Unique name of the agent, which it may use to authenticate."),
        A::string("displayName").describe("The agent's name, suitable for display."),
        A::string("agentType").describe("Classifies like agents (such as `Assistant`)."),
        A::boolean("active").describe("The agent's administrative status."),
        A::string("description").describe("What the agent does."),
        A::string("subject")
            .describe("The `sub` claim of the agent's tokens from a federated issuer."),
        grants("entitlements", "entitlement"),
        grants("roles", "role"),
        A::complex(
            "x509Certificates",
            vec![
                A::new("value", AttributeType::Binary).describe("DER certificate, base64."),
                A::string("display").describe("A human readable name, primarily for display."),
                A::string("type").describe("A label indicating the value's function."),
                A::boolean("primary").describe("Marks the preferred value."),
            ],
        )
        .multi()
        .describe("X.509 certificates issued to the agent."),
        references(
            "applications",
            &["AgenticApplication"],
            "Agentic applications the agent shares a trust boundary with.",
        ),
        A::complex(
            "protocols",
            vec![
                A::string("type")
                    .canonical(&["A2A", "OpenAPI", "MCP-Server"])
                    .describe("The protocol."),
                A::reference("specificationUrl", &["external"])
                    .describe("Where the agent's description for that protocol is."),
            ],
        )
        .multi()
        .describe("Protocols through which the agent can be reached."),
        A::complex(
            "parent",
            vec![
                A::string("value").describe("The id of the parent agent."),
                A::reference("$ref", &["Agent"]).describe("The URI of the parent agent."),
                A::string("display")
                    .read_only()
                    .describe("The parent agent's display name."),
            ],
        )
        .describe("The agent's parent in a hierarchy of agents."),
        references(
            "owners",
            &["User", "Group"],
            "Users or groups accountable for the agent.",
        ),
    ];
    Schema {
        id: AGENT_SCHEMA.to_owned(),
        name: "Agent".to_owned(),
        description: "An AI agent".to_owned(),
        attributes,
    }
}

/// The AgenticApplication schema of draft-abbey-scim-agent-extension-00 §5.2, with the
/// mutability of its JSON representation (`lastAccessed` is the host's, readOnly).
pub fn agentic_application_schema() -> Schema {
    let attributes = vec![
        A::string("name")
            .required()
            .uniqueness(Uniqueness::Server)
            .describe("Unique name of the application."),
        A::string("displayName").describe("The application's name, suitable for display."),
        A::string("description").describe("What the application does."),
        A::boolean("active").describe("The application's administrative status."),
        A::complex(
            "applicationUrls",
            vec![
                A::string("type")
                    .canonical(&["ssoEndpoint", "loginPage", "api", "homepage"])
                    .describe("The kind of URL."),
                A::boolean("primary").describe("The primary URL of its type."),
                A::reference("value", &["external"]).describe("The URL."),
                A::string("description").describe("What the URL is for."),
            ],
        )
        .multi()
        .describe("URLs of the application."),
        A::date_time("lastAccessed")
            .read_only()
            .describe("When an agent or user last accessed the application (set by the host)."),
        A::complex(
            "oAuthConfiguration",
            vec![
                A::string("clientId")
                    .case_exact()
                    .describe("OAuth client identifier (RFC 6749 §2.2)."),
                A::string("description").describe("What the client is for."),
                A::reference("audienceUri", &["uri"]).describe("The `aud` of its tokens."),
                A::reference("issuerUri", &["uri"]).describe("The `iss` of its tokens."),
                A::reference("redirectUri", &["uri"])
                    .multi()
                    .describe("Authorised redirect URIs."),
            ],
        )
        .multi()
        .describe("The OAuth clients of the application."),
        A::complex(
            "agents",
            vec![
                A::string("value").describe("The id of the agent."),
                A::reference("$ref", &["Agent"])
                    .read_only()
                    .describe("The URI of the agent."),
                A::string("display")
                    .mutability(Mutability::ReadOnly)
                    .describe("The agent's display name."),
                A::string("type")
                    .canonical(&["owned", "authorized", "guest"])
                    .describe("How the agent relates to the application."),
            ],
        )
        .multi()
        .describe("Agents associated with the application."),
        A::complex(
            "externalIdentifiers",
            vec![
                A::string("type").describe("The kind of identifier."),
                A::string("value").describe("The identifier."),
                A::string("system").describe("Where the identifier is valid."),
            ],
        )
        .multi()
        .describe("Identifiers of the application in other systems."),
    ];
    Schema {
        id: AGENTIC_APPLICATION_SCHEMA.to_owned(),
        name: "AgenticApplication".to_owned(),
        description: "An application that hosts or provides access to agents".to_owned(),
        attributes,
    }
}

/// A catalog resource type: values the host supplies (its entitlements, roles, licenses,
/// profiles...), which identity providers read and grant to users through a multi-valued
/// attribute of theirs (`User.entitlements` or `User.roles`).
///
/// The values are resources of the catalog's type in the service's
/// [`ResourceStore`](crate::store::ResourceStore), so they page, filter and sort like any
/// resource on every store. The host writes them with
/// [`ScimService::publish_catalog_value`](crate::service::ScimService::publish_catalog_value)
/// and [`ScimService::withdraw_catalog_value`](crate::service::ScimService::withdraw_catalog_value);
/// identity providers only read them: their `POST`, `PUT`, `PATCH` and `DELETE` are answered
/// 405 unless the catalog is [`writable_by_clients`](Self::writable_by_clients).
#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    pub(crate) name: String,
    pub(crate) endpoint: String,
    pub(crate) description: String,
    pub(crate) schema: Schema,
    pub(crate) grant_attribute: String,
    pub(crate) writable: bool,
}

impl Catalog {
    /// An entitlement catalog with Okta's entitlement schema, granted through
    /// `User.entitlements`: `Catalog::entitlements("Entitlement", "/Entitlements")`, or a
    /// more specific kind such as `Catalog::entitlements("License", "/Licenses")`.
    pub fn entitlements(name: &str, endpoint: &str) -> Catalog {
        Catalog {
            name: name.to_owned(),
            endpoint: endpoint.to_owned(),
            description: format!("{name} values users can be granted"),
            schema: okta_entitlement_schema(),
            grant_attribute: "entitlements".to_owned(),
            writable: false,
        }
    }

    /// A role catalog with Okta's role schema, granted through `User.roles`:
    /// `Catalog::roles("Role", "/Roles")`.
    pub fn roles(name: &str, endpoint: &str) -> Catalog {
        Catalog {
            name: name.to_owned(),
            endpoint: endpoint.to_owned(),
            description: format!("{name} values users can be granted"),
            schema: okta_role_schema(),
            grant_attribute: "roles".to_owned(),
            writable: false,
        }
    }

    /// A catalog with a schema of the host's own, granted through `grant_attribute` (a
    /// multi-valued complex attribute with a `value` sub-attribute, such as `entitlements`).
    /// The schema is registered with the catalog unless a schema with its id is already.
    pub fn custom(name: &str, endpoint: &str, schema: Schema, grant_attribute: &str) -> Catalog {
        Catalog {
            name: name.to_owned(),
            endpoint: endpoint.to_owned(),
            description: format!("{name} values users can be granted"),
            schema,
            grant_attribute: grant_attribute.to_owned(),
            writable: false,
        }
    }

    /// The description shown in `/ResourceTypes`.
    pub fn describe(mut self, description: impl Into<String>) -> Catalog {
        self.description = description.into();
        self
    }

    /// Lets SCIM clients create, replace, patch and delete values of this catalog (by
    /// default they may only read it).
    pub fn writable_by_clients(mut self) -> Catalog {
        self.writable = true;
        self
    }
}

/// What the registry knows of a catalog resource type (see [`Catalog`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogInfo {
    pub(crate) grant_attribute: String,
    pub(crate) writable: bool,
}

impl CatalogInfo {
    /// The attribute of other resources through which values of the catalog are granted
    /// (`entitlements`, `roles`).
    pub fn grant_attribute(&self) -> &str {
        &self.grant_attribute
    }

    /// Whether SCIM clients may write values of the catalog.
    pub fn writable_by_clients(&self) -> bool {
        self.writable
    }
}

/// Who is served the agent resource types of
/// [`SchemaRegistry::enable_agents`](super::SchemaRegistry::enable_agents).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AgentScope {
    /// Every tenant.
    AllTenants,
    /// Only tenants whose [`Settings::agents`](crate::settings::Settings::agents) is true;
    /// for the others `/Agents` and `/AgenticApplications` do not exist.
    OptedInTenants,
}
