//! Discovery documents: `/ServiceProviderConfig`, `/ResourceTypes`, `/Schemas`
//! (RFC 7644 §4, RFC 7643 §5-§7), generated from the registry and the tenant's settings.

use serde_json::{json, Map, Value};

use crate::schema::{
    ResourceDef, Schema, RESOURCE_TYPE_SCHEMA, SCHEMA_SCHEMA, SERVICE_PROVIDER_CONFIG_SCHEMA,
};
use crate::settings::Settings;

/// The `/ServiceProviderConfig` document: exactly what this service supports, with the
/// tenant's limits.
pub(crate) fn service_provider_config(
    base_url: &str,
    settings: &Settings,
    documentation_uri: Option<&str>,
    cursor_timeout: std::time::Duration,
) -> Value {
    let limits = &settings.limits;
    let mut doc = json!({
        "schemas": [SERVICE_PROVIDER_CONFIG_SCHEMA],
        "patch": {"supported": true},
        "bulk": {
            "supported": true,
            "maxOperations": limits.bulk_max_operations,
            "maxPayloadSize": limits.bulk_max_payload_bytes,
        },
        "filter": {"supported": true, "maxResults": limits.max_page_size},
        // Passwords sent by IdPs (Okta always sends a random placeholder) are accepted and
        // discarded, never stored: there is no password to change.
        "changePassword": {"supported": false},
        "sort": {"supported": true},
        // RFC 9865 §4: both paging methods; index paging unless the client sends `cursor`.
        "pagination": {
            "cursor": true,
            "index": true,
            "defaultPaginationMethod": "index",
            "defaultPageSize": limits.max_page_size,
            "maxPageSize": limits.max_page_size,
            "cursorTimeout": cursor_timeout.as_secs(),
        },
        "etag": {"supported": true},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "Authentication with a bearer token issued for this tenant (RFC 6750).",
            "specUri": "https://www.rfc-editor.org/info/rfc6750",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{base_url}/ServiceProviderConfig"),
        },
    });
    if let (Some(uri), Some(obj)) = (documentation_uri, doc.as_object_mut()) {
        obj.insert("documentationUri".into(), Value::String(uri.to_owned()));
    }
    doc
}

/// One `/ResourceTypes/{id}` document.
pub(crate) fn resource_type_doc(base_url: &str, def: &ResourceDef) -> Value {
    let rt = def.resource_type();
    let mut obj = Map::new();
    obj.insert("schemas".into(), json!([RESOURCE_TYPE_SCHEMA]));
    obj.insert("id".into(), Value::String(rt.id.clone()));
    obj.insert("name".into(), Value::String(rt.name.clone()));
    if !rt.description.is_empty() {
        obj.insert("description".into(), Value::String(rt.description.clone()));
    }
    obj.insert("endpoint".into(), Value::String(rt.endpoint.clone()));
    obj.insert("schema".into(), Value::String(rt.schema.clone()));
    obj.insert(
        "schemaExtensions".into(),
        Value::Array(
            rt.schema_extensions
                .iter()
                .map(|e| json!({"schema": e.schema, "required": e.required}))
                .collect(),
        ),
    );
    obj.insert(
        "meta".into(),
        json!({
            "resourceType": "ResourceType",
            "location": format!("{base_url}/ResourceTypes/{}", rt.id),
        }),
    );
    Value::Object(obj)
}

/// One `/Schemas/{id}` document.
pub(crate) fn schema_doc(base_url: &str, schema: &Schema) -> Value {
    let mut obj = Map::new();
    obj.insert("schemas".into(), json!([SCHEMA_SCHEMA]));
    obj.insert("id".into(), Value::String(schema.id.clone()));
    obj.insert("name".into(), Value::String(schema.name.clone()));
    obj.insert(
        "description".into(),
        Value::String(schema.description.clone()),
    );
    obj.insert(
        "attributes".into(),
        serde_json::to_value(&schema.attributes).unwrap_or(Value::Array(Vec::new())),
    );
    obj.insert(
        "meta".into(),
        json!({
            "resourceType": "Schema",
            "location": format!("{base_url}/Schemas/{}", schema.id),
        }),
    );
    Value::Object(obj)
}
