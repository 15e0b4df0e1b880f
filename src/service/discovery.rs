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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::service_provider_config_schema;
    use crate::schema::AttributeDef;

    /// Every attribute of `doc` (and of its complex values) is declared in `attrs`.
    fn undeclared(
        doc: &Map<String, Value>,
        attrs: &[AttributeDef],
        at: &str,
        out: &mut Vec<String>,
    ) {
        for (key, value) in doc {
            if at.is_empty() && (key == "schemas" || key == "meta") {
                continue;
            }
            let Some(def) = attrs.iter().find(|a| a.name.eq_ignore_ascii_case(key)) else {
                out.push(format!("{at}{key}"));
                continue;
            };
            let objects: Vec<&Map<String, Value>> = match value {
                Value::Object(o) => vec![o],
                Value::Array(a) => a.iter().filter_map(Value::as_object).collect(),
                _ => Vec::new(),
            };
            for o in objects {
                undeclared(o, &def.sub_attributes, &format!("{at}{key}."), out);
            }
        }
    }

    #[test]
    fn the_configuration_is_described_by_its_schema() {
        let doc = service_provider_config(
            "https://example.com/scim",
            &Settings::default(),
            Some("https://example.com/help"),
            std::time::Duration::from_secs(600),
        );
        let pagination = &doc["pagination"];
        for key in [
            "cursor",
            "index",
            "defaultPaginationMethod",
            "defaultPageSize",
            "maxPageSize",
            "cursorTimeout",
        ] {
            assert!(pagination.get(key).is_some(), "pagination.{key}: {doc}");
        }
        assert_eq!(pagination["cursorTimeout"], 600);
        let schema = service_provider_config_schema();
        let mut out = Vec::new();
        undeclared(doc.as_object().unwrap(), &schema.attributes, "", &mut out);
        assert!(out.is_empty(), "not in the schema: {out:?}");
        let def = schema
            .attributes
            .iter()
            .find(|a| a.name == "pagination")
            .unwrap();
        assert_eq!(
            def.sub_attribute("defaultPaginationMethod")
                .unwrap()
                .canonical_values,
            ["cursor", "index"]
        );
    }
}
