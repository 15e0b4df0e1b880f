//! The schemas RFC 7643 defines: User and Group (§4), EnterpriseUser (§4.3), and the discovery
//! schemas ServiceProviderConfig (§5), ResourceType (§6) and Schema (§7). Definitions follow
//! RFC 7643 §8.7 attribute by attribute; descriptions are our own words.

use super::attribute::{AttributeDef as A, AttributeType, Mutability, Returned, Uniqueness};
use super::{
    Schema, ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, RESOURCE_TYPE_SCHEMA, SCHEMA_SCHEMA,
    SERVICE_PROVIDER_CONFIG_SCHEMA, USER_SCHEMA,
};

/// `value`, `display`, `type`, `primary`: the sub-attributes shared by most multi-valued
/// attributes of the User schema.
fn multi_valued_subs(value: A, types: &[&str]) -> Vec<A> {
    vec![
        value,
        A::string("display").describe("A human readable name, primarily for display."),
        A::string("type")
            .canonical(types)
            .describe("A label indicating the value's function."),
        A::boolean("primary").describe("Marks the preferred value; at most one may be true."),
    ]
}

/// The attributes every resource has (RFC 7643 §3.1): `id`, `externalId` and `meta`.
pub fn common_attributes() -> Vec<A> {
    vec![
        A::string("id")
            .case_exact()
            .read_only()
            .returned(Returned::Always)
            .uniqueness(Uniqueness::Server)
            .describe("Unique, stable identifier of the resource, issued by the service provider."),
        A::string("externalId")
            .case_exact()
            .describe("Identifier of the resource as defined by the provisioning client."),
        A::complex(
            "meta",
            vec![
                A::string("resourceType")
                    .case_exact()
                    .read_only()
                    .describe("Name of the resource type."),
                A::date_time("created")
                    .read_only()
                    .describe("When the resource was added."),
                A::date_time("lastModified")
                    .read_only()
                    .describe("When the resource was last changed."),
                A::reference("location", &["uri"])
                    .case_exact()
                    .read_only()
                    .describe("URI of the resource."),
                A::string("version")
                    .case_exact()
                    .read_only()
                    .describe("Weak entity tag of the resource's current version."),
            ],
        )
        .read_only()
        .returned(Returned::Always)
        .describe("Resource metadata maintained by the service provider."),
    ]
}

/// The core User schema (RFC 7643 §4.1, §8.7.1).
pub fn user_schema() -> Schema {
    let attributes = vec![
        A::string("userName")
            .required()
            .uniqueness(Uniqueness::Server)
            .describe("Unique identifier of the user, typically used to sign in."),
        A::complex(
            "name",
            vec![
                A::string("formatted").describe("The full name, formatted for display."),
                A::string("familyName").describe("Family name (last name in Western languages)."),
                A::string("givenName").describe("Given name (first name in Western languages)."),
                A::string("middleName").describe("Middle name(s)."),
                A::string("honorificPrefix").describe("Honorific prefix, such as 'Ms.'."),
                A::string("honorificSuffix").describe("Honorific suffix, such as 'III'."),
            ],
        )
        .describe("The components of the user's real name."),
        A::string("displayName").describe("The name of the user, suitable for display."),
        A::string("nickName").describe("The casual way to address the user."),
        A::reference("profileUrl", &["external"]).describe("URL of the user's online profile."),
        A::string("title").describe("The user's title, such as 'Vice President'."),
        A::string("userType").describe("The relationship between organisation and user."),
        A::string("preferredLanguage")
            .describe("Preferred written or spoken language (RFC 7231 Accept-Language form)."),
        A::string("locale").describe("Default location for localising values (e.g. en-US)."),
        A::string("timezone").describe("Time zone in IANA database format (e.g. Europe/Berlin)."),
        A::boolean("active").describe("The user's administrative status."),
        A::string("password")
            .mutability(Mutability::WriteOnly)
            .returned(Returned::Never)
            .describe("Cleartext password, for setting only; never returned."),
        A::complex(
            "emails",
            multi_valued_subs(
                A::string("value").describe("Email address, canonicalised per RFC 5321."),
                &["work", "home", "other"],
            ),
        )
        .multi()
        .describe("Email addresses of the user."),
        A::complex(
            "phoneNumbers",
            multi_valued_subs(
                A::string("value").describe("Phone number, preferably in RFC 3966 form."),
                &["work", "home", "mobile", "fax", "pager", "other"],
            ),
        )
        .multi()
        .describe("Phone numbers of the user."),
        A::complex(
            "ims",
            multi_valued_subs(
                A::string("value").describe("Instant messaging address."),
                &["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"],
            ),
        )
        .multi()
        .describe("Instant messaging addresses of the user."),
        A::complex(
            "photos",
            multi_valued_subs(
                A::reference("value", &["external"]).describe("URL of a photo of the user."),
                &["photo", "thumbnail"],
            ),
        )
        .multi()
        .describe("URLs of photos of the user."),
        A::complex(
            "addresses",
            vec![
                A::string("formatted").describe("The full mailing address, formatted for display."),
                A::string("streetAddress").describe("Street address component."),
                A::string("locality").describe("City or locality."),
                A::string("region").describe("State or region."),
                A::string("postalCode").describe("Zip or postal code."),
                A::string("country").describe("Country, as an ISO 3166-1 alpha-2 code."),
                A::string("type")
                    .canonical(&["work", "home", "other"])
                    .describe("A label indicating the address's function."),
                A::boolean("primary").describe("Marks the preferred address."),
            ],
        )
        .multi()
        .describe("Physical mailing addresses of the user."),
        A::complex(
            "groups",
            vec![
                A::string("value")
                    .read_only()
                    .describe("The id of the group."),
                A::reference("$ref", &["User", "Group"])
                    .read_only()
                    .describe("The URI of the group."),
                A::string("display")
                    .read_only()
                    .describe("The group's display name."),
                A::string("type")
                    .canonical(&["direct", "indirect"])
                    .read_only()
                    .describe("Direct or indirect (nested) membership."),
            ],
        )
        .multi()
        .read_only()
        .describe("Groups the user belongs to; derived from group membership."),
        A::complex(
            "entitlements",
            multi_valued_subs(A::string("value").describe("The entitlement."), &[]),
        )
        .multi()
        .describe("Entitlements of the user."),
        A::complex(
            "roles",
            multi_valued_subs(A::string("value").describe("The role."), &[]),
        )
        .multi()
        .describe("Roles of the user."),
        A::complex(
            "x509Certificates",
            multi_valued_subs(
                A::new("value", AttributeType::Binary).describe("DER certificate, base64."),
                &[],
            ),
        )
        .multi()
        .describe("X.509 certificates issued to the user."),
    ];
    Schema {
        id: USER_SCHEMA.to_owned(),
        name: "User".to_owned(),
        description: "User Account".to_owned(),
        attributes,
    }
}

/// The core Group schema (RFC 7643 §4.2, §8.7.1).
pub fn group_schema() -> Schema {
    Schema {
        id: GROUP_SCHEMA.to_owned(),
        name: "Group".to_owned(),
        description: "Group".to_owned(),
        attributes: vec![
            A::string("displayName")
                .required()
                .describe("A human readable name for the group."),
            A::complex(
                "members",
                vec![
                    A::string("value")
                        .mutability(Mutability::Immutable)
                        .describe("The id of the member resource."),
                    A::reference("$ref", &["User", "Group"])
                        .mutability(Mutability::Immutable)
                        .describe("The URI of the member resource."),
                    // Derived from the member's displayName/userName, so it is returned only
                    // when asked for (`attributes=members.display`): a client that PATCHes
                    // `members` gets back exactly the member objects it sent.
                    A::string("display")
                        .read_only()
                        .returned(Returned::Request)
                        .describe("The member's display name, filled in by the service."),
                    A::string("type")
                        .canonical(&["User", "Group"])
                        .mutability(Mutability::Immutable)
                        .describe("The member's resource type."),
                ],
            )
            .multi()
            .describe("The members of the group."),
        ],
    }
}

/// The Enterprise User extension (RFC 7643 §4.3, §8.7.1).
pub fn enterprise_user_schema() -> Schema {
    Schema {
        id: ENTERPRISE_USER_SCHEMA.to_owned(),
        name: "EnterpriseUser".to_owned(),
        description: "Enterprise User".to_owned(),
        attributes: vec![
            A::string("employeeNumber").describe("Identifier assigned by the organisation."),
            A::string("costCenter").describe("Name of a cost center."),
            A::string("organization").describe("Name of an organisation."),
            A::string("division").describe("Name of a division."),
            A::string("department").describe("Name of a department."),
            A::complex(
                "manager",
                vec![
                    A::string("value").describe("The id of the user's manager."),
                    A::reference("$ref", &["User"]).describe("The URI of the manager."),
                    A::string("displayName")
                        .read_only()
                        .describe("The manager's display name."),
                ],
            )
            .describe("The user's manager."),
        ],
    }
}

fn supported(name: &str, description: &str, extra: Vec<A>) -> A {
    let mut subs = vec![A::boolean("supported").required().read_only()];
    subs.extend(extra);
    A::complex(name, subs)
        .required()
        .read_only()
        .describe(description)
}

fn integer(name: &str) -> A {
    A::new(name, AttributeType::Integer).read_only()
}

/// The ServiceProviderConfig schema (RFC 7643 §5, §8.7.2).
pub fn service_provider_config_schema() -> Schema {
    Schema {
        id: SERVICE_PROVIDER_CONFIG_SCHEMA.to_owned(),
        name: "Service Provider Configuration".to_owned(),
        description: "Schema for representing the service provider's configuration".to_owned(),
        attributes: vec![
            A::reference("documentationUri", &["external"])
                .read_only()
                .describe("Help documentation for the service provider."),
            supported("patch", "PATCH support.", vec![]),
            supported(
                "bulk",
                "Bulk support.",
                vec![
                    integer("maxOperations").required(),
                    integer("maxPayloadSize").required(),
                ],
            ),
            supported(
                "filter",
                "Filter support.",
                vec![integer("maxResults").required()],
            ),
            supported("changePassword", "Password change support.", vec![]),
            supported("sort", "Sorting support.", vec![]),
            supported("etag", "ETag support.", vec![]),
            // RFC 9865 §4.
            A::complex(
                "pagination",
                vec![
                    A::boolean("cursor")
                        .required()
                        .read_only()
                        .describe("Whether cursor-based pagination is supported."),
                    A::boolean("index")
                        .required()
                        .read_only()
                        .describe("Whether index-based pagination is supported."),
                    A::string("defaultPaginationMethod")
                        .read_only()
                        .canonical(&["cursor", "index"])
                        .describe("The method used when the client asks for neither."),
                    integer("defaultPageSize")
                        .describe("The page size used when the client gives no count."),
                    integer("maxPageSize").describe("The largest page size returned."),
                    integer("cursorTimeout")
                        .describe("How many seconds a cursor stays valid after it was issued."),
                ],
            )
            .read_only()
            .describe("Pagination support (RFC 9865)."),
            A::complex(
                "authenticationSchemes",
                vec![
                    A::string("type").required().read_only().canonical(&[
                        "oauth",
                        "oauth2",
                        "oauthbearertoken",
                        "httpbasic",
                        "httpdigest",
                    ]),
                    A::string("name").required().read_only(),
                    A::string("description").required().read_only(),
                    A::reference("specUri", &["external"]).read_only(),
                    A::reference("documentationUri", &["external"]).read_only(),
                    A::boolean("primary").read_only(),
                ],
            )
            .multi()
            .required()
            .read_only()
            .describe("Supported authentication schemes."),
        ],
    }
}

/// The ResourceType schema (RFC 7643 §6, §8.7.2).
pub fn resource_type_schema() -> Schema {
    Schema {
        id: RESOURCE_TYPE_SCHEMA.to_owned(),
        name: "ResourceType".to_owned(),
        description: "Specifies the schema that describes a SCIM resource type".to_owned(),
        attributes: vec![
            A::string("id")
                .read_only()
                .describe("The resource type's server unique id."),
            A::string("name")
                .required()
                .read_only()
                .describe("The resource type name."),
            A::string("description")
                .read_only()
                .describe("The resource type's human readable description."),
            A::reference("endpoint", &["uri"])
                .required()
                .read_only()
                .describe("The resource type's endpoint, relative to the base URL."),
            A::reference("schema", &["uri"])
                .required()
                .case_exact()
                .read_only()
                .describe("The resource type's primary schema URI."),
            A::complex(
                "schemaExtensions",
                vec![
                    A::reference("schema", &["uri"])
                        .required()
                        .case_exact()
                        .read_only()
                        .describe("The URI of an extension schema."),
                    A::boolean("required")
                        .required()
                        .read_only()
                        .describe("Whether resources must include the extension."),
                ],
            )
            .multi()
            .read_only()
            .describe("Extension schemas of the resource type."),
        ],
    }
}

fn attribute_definition_subs(with_sub_attributes: bool) -> Vec<A> {
    let mut subs = vec![
        A::string("name").required().case_exact().read_only(),
        A::string("type").required().read_only().canonical(&[
            "string",
            "complex",
            "boolean",
            "decimal",
            "integer",
            "dateTime",
            "reference",
            "binary",
        ]),
        A::boolean("multiValued").required().read_only(),
        A::string("description").read_only(),
        A::boolean("required").read_only(),
        A::string("canonicalValues")
            .multi()
            .case_exact()
            .read_only(),
        A::boolean("caseExact").read_only(),
        A::string("mutability")
            .case_exact()
            .read_only()
            .canonical(&["readOnly", "readWrite", "immutable", "writeOnly"]),
        A::string("returned")
            .case_exact()
            .read_only()
            .canonical(&["always", "never", "default", "request"]),
        A::string("uniqueness")
            .case_exact()
            .read_only()
            .canonical(&["none", "server", "global"]),
        A::string("referenceTypes").multi().case_exact().read_only(),
    ];
    if with_sub_attributes {
        subs.push(
            A::complex("subAttributes", attribute_definition_subs(false))
                .multi()
                .read_only(),
        );
    }
    subs
}

/// The Schema schema (RFC 7643 §7, §8.7.2).
pub fn schema_schema() -> Schema {
    Schema {
        id: SCHEMA_SCHEMA.to_owned(),
        name: "Schema".to_owned(),
        description: "Specifies the schema attribute definitions of a resource".to_owned(),
        attributes: vec![
            A::string("id")
                .required()
                .read_only()
                .describe("The unique URI of the schema."),
            A::string("name")
                .read_only()
                .describe("The schema's human readable name."),
            A::string("description")
                .read_only()
                .describe("The schema's human readable description."),
            A::complex("attributes", attribute_definition_subs(true))
                .multi()
                .required()
                .read_only()
                .describe("The schema's attribute definitions."),
        ],
    }
}
