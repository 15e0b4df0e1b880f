//! Fuzzes the PATCH engine: path parsing and whole requests applied to a user and a group.
//! No input may panic or overflow the stack; a parsed path must print and reparse to the same
//! value; a successful apply must leave the input untouched and be re-applicable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scimkit::patch::{apply, PatchPath, PatchRequest};
use scimkit::{schema::SchemaRegistry, settings::Settings};
use serde_json::{json, Value};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);

    // 1. The input as a path.
    if let Ok(path) = PatchPath::parse(&text) {
        let again = PatchPath::parse(&path.to_string());
        assert_eq!(again.as_ref().ok(), Some(&path), "{path}");
    }

    // 2. The input as a request body, or as the value of one operation per path shape.
    let registry = SchemaRegistry::default();
    let (Some(user), Some(group)) = (registry.user(), registry.group()) else {
        return;
    };
    let user_doc = json!({
        "userName": "bjensen",
        "active": true,
        "name": {"givenName": "Barbara"},
        "emails": [{"type": "work", "value": "b@example.com", "primary": true}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "271"}}
    });
    let group_doc = json!({"displayName": "g", "members": [{"value": "u1", "type": "User"}]});
    let mut bodies: Vec<Value> = Vec::new();
    if let Ok(v) = serde_json::from_slice::<Value>(data) {
        bodies.push(v.clone());
        for (op, path) in [
            ("add", Some("emails[type eq \"work\"].value")),
            ("replace", None),
            ("remove", Some("members")),
            ("Add", Some("members")),
        ] {
            let mut o = serde_json::Map::new();
            o.insert("op".into(), json!(op));
            if let Some(p) = path {
                o.insert("path".into(), json!(p));
            }
            o.insert("value".into(), v.clone());
            bodies.push(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [Value::Object(o)]
            }));
        }
    }
    bodies.push(json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "remove", "path": text.as_ref()}]
    }));
    for settings in [Settings::default(), Settings::strict()] {
        for body in &bodies {
            let Ok(request) = PatchRequest::from_json(body, &settings) else {
                continue;
            };
            for (rt, doc) in [(user, &user_doc), (group, &group_doc)] {
                let _ = request.needs_members(rt);
                let before = doc.to_string();
                if let Ok(out) = apply(rt, doc, &request, &settings) {
                    let _ = apply(rt, &out.document, &request, &settings);
                }
                assert_eq!(doc.to_string(), before);
            }
        }
    }
});
