//! Catalogs (entitlements, roles, licenses) published by the host, grants on users checked
//! against them, an Okta Identity Governance request sequence replayed with the state
//! asserted, and the agent schema pack (draft-abbey-scim-agent-extension-00). Every test runs
//! on the MemoryStore, then again on SQLite and PostgreSQL (`rerun_on_sql_backends`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::Harness;
use http::Method;
use serde_json::{json, Value};

use scimkit::feed::ChangeKind;
use scimkit::schema::{AgentScope, Catalog, SchemaRegistry};
use scimkit::{settings::Settings, tenant::TenantId};

#[test]
fn the_governance_tests_pass_on_the_sql_stores() {
    common::rerun_on_sql_backends();
}

const OKTA_ENTITLEMENT: &str = "urn:okta:scim:schemas:core:1.0:Entitlement";
const OKTA_ROLE: &str = "urn:okta:scim:schemas:core:1.0:Role";

fn acme() -> TenantId {
    TenantId::new("acme").unwrap()
}

fn patch_op(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

/// Percent-encodes a filter for a query string.
fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Entitlement, License (both Okta's entitlement schema) and Role catalogs.
fn governance_registry() -> SchemaRegistry {
    let mut r = SchemaRegistry::default();
    r.add_catalog(Catalog::entitlements("Entitlement", "/Entitlements"))
        .unwrap();
    r.add_catalog(Catalog::entitlements("License", "/Licenses"))
        .unwrap();
    r.add_catalog(Catalog::roles("Role", "/Roles")).unwrap();
    r
}

async fn harness(settings: Settings) -> Harness {
    let h = Harness::with_registry(settings, governance_registry()).await;
    let svc = &h.service;
    for (id, name) in [
        ("reports-read", "Read reports"),
        ("reports-export", "Export reports"),
        ("billing-view", "View billing"),
        ("audit-read", "Read the audit log"),
        ("api-keys", "Manage API keys"),
    ] {
        svc.publish_catalog_value(
            &acme(),
            "Entitlement",
            id,
            json!({"displayName": name, "type": "Entitlement"}),
        )
        .await
        .unwrap();
    }
    for (id, name) in [("pro", "Pro seat"), ("enterprise", "Enterprise seat")] {
        svc.publish_catalog_value(
            &acme(),
            "License",
            id,
            json!({"displayName": name, "type": "License"}),
        )
        .await
        .unwrap();
    }
    for (id, name) in [("admin", "Administrator"), ("member", "Member")] {
        svc.publish_catalog_value(&acme(), "Role", id, json!({"displayName": name}))
            .await
            .unwrap();
    }
    h
}

fn values(user: &Value, attr: &str) -> Vec<String> {
    let mut v: Vec<String> = user[attr]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["value"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

async fn user_ids_matching(h: &Harness, filter: &str) -> Vec<String> {
    let r = h
        .call(Method::GET, &format!("/Users?filter={}", enc(filter)), None)
        .await;
    assert_eq!(r.status, 200, "{filter}: {}", r.body);
    let mut ids: Vec<String> = r.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

/// The Okta Identity Governance sequence ("SCIM 2.0 with Entitlements Management"):
/// discovery, the import of every catalog page by page, then grants and revocations on a
/// user in the shapes Okta sends, each checked through a GET and a filter.
#[tokio::test]
async fn okta_governance_sequence() {
    let h = harness(Settings::default()).await;
    // 1. /ResourceTypes: Okta keeps the types whose schema is its entitlement or role schema.
    let r = h.call(Method::GET, "/ResourceTypes", None).await;
    assert_eq!(r.status, 200);
    let catalogs: Vec<(String, String)> = r.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["schema"] == OKTA_ENTITLEMENT || t["schema"] == OKTA_ROLE)
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_owned(),
                t["endpoint"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        catalogs,
        [
            ("Entitlement".to_owned(), "/Entitlements".to_owned()),
            ("License".to_owned(), "/Licenses".to_owned()),
            ("Role".to_owned(), "/Roles".to_owned()),
        ]
    );
    // 2. /Schemas: both Okta schemas are served (Okta knows them; extensions it would read).
    let r = h.call(Method::GET, "/Schemas", None).await;
    let ids: Vec<&str> = r.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&OKTA_ENTITLEMENT) && ids.contains(&OKTA_ROLE),
        "{ids:?}"
    );
    let r = h
        .call(Method::GET, &format!("/Schemas/{OKTA_ENTITLEMENT}"), None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["attributes"][0]["name"], "displayName");
    // 3. Import each catalog with paging (count=2), as Okta's import job pages.
    let mut imported: Vec<(String, String, String)> = Vec::new();
    for (name, endpoint) in &catalogs {
        let mut start = 1;
        loop {
            let r = h
                .call(
                    Method::GET,
                    &format!("{endpoint}?startIndex={start}&count=2"),
                    None,
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.body);
            let page = r.body["Resources"].as_array().cloned().unwrap_or_default();
            assert!(page.len() <= 2);
            assert_eq!(r.body["itemsPerPage"], page.len());
            for v in &page {
                assert_eq!(v["meta"]["resourceType"], name.as_str());
                imported.push((
                    name.clone(),
                    v["id"].as_str().unwrap().to_owned(),
                    v["displayName"].as_str().unwrap().to_owned(),
                ));
            }
            let total = r.body["totalResults"].as_u64().unwrap() as usize;
            start += page.len();
            if page.is_empty() || start > total {
                break;
            }
        }
    }
    let count = |n: &str| imported.iter().filter(|(t, _, _)| t == n).count();
    assert_eq!(
        (count("Entitlement"), count("License"), count("Role")),
        (5, 2, 2)
    );
    let mut distinct: Vec<&(String, String, String)> = imported.iter().collect();
    distinct.dedup();
    assert_eq!(distinct.len(), 9, "no value twice across pages");

    // 4. Provision a user, then grant entitlements (an add with a value array).
    let uid = h.create_user("ada@example.com").await;
    let before = h.store.changes_since(&acme(), 0, 1000).await.unwrap();
    let last_seq = before.last().map_or(0, |c| c.seq);
    let r = h
        .call(
            Method::PATCH,
            &format!("/Users/{uid}"),
            Some(patch_op(json!([{
                "op": "add",
                "path": "entitlements",
                "value": [
                    {"value": "reports-read", "display": "Read reports", "type": "Entitlement"},
                    {"value": "pro", "display": "Pro seat", "type": "License"}
                ]
            }]))),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(values(&r.body, "entitlements"), ["pro", "reports-read"]);
    // The grant is a change of the user's document: the host sees it in the change feed.
    let changes = h
        .store
        .changes_since(&acme(), last_seq, 1000)
        .await
        .unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].resource_type, "User");
    assert_eq!(changes[0].id.as_str(), uid);
    assert_eq!(changes[0].kind, ChangeKind::Patched);
    // Roles: the add Okta sends for one role.
    let r = h
        .call(
            Method::PATCH,
            &format!("/Users/{uid}"),
            Some(patch_op(json!([{
                "op": "add",
                "path": "roles",
                "value": [{"value": "admin", "display": "Administrator", "type": "Role"}]
            }]))),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let got = h
        .call(Method::GET, &format!("/Users/{uid}"), None)
        .await
        .body;
    assert_eq!(values(&got, "roles"), ["admin"]);
    assert_eq!(got["roles"][0]["type"], "Role");
    assert_eq!(got["entitlements"][1]["display"], "Pro seat");

    // The grants are filterable like any multi-valued complex attribute.
    let other = h.create_user("bob@example.com").await;
    let r = h
        .call(
            Method::PATCH,
            &format!("/Users/{other}"),
            Some(patch_op(json!([{
                "op": "add",
                "path": "entitlements",
                "value": [{"value": "enterprise", "type": "License"},
                          {"value": "reports-read", "type": "Entitlement"}]
            }]))),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        user_ids_matching(&h, r#"entitlements[type eq "License" and value eq "pro"]"#).await,
        [uid.as_str()]
    );
    assert_eq!(
        user_ids_matching(
            &h,
            r#"entitlements[type eq "Entitlement" and value eq "pro"]"#
        )
        .await,
        Vec::<String>::new()
    );
    let mut both = vec![uid.clone(), other.clone()];
    both.sort();
    assert_eq!(
        user_ids_matching(&h, r#"entitlements[value eq "reports-read"]"#).await,
        both
    );
    assert_eq!(
        user_ids_matching(&h, r#"roles[value eq "admin"] and userName sw "ada""#).await,
        [uid.as_str()]
    );
    assert_eq!(
        user_ids_matching(&h, r#"entitlements.value eq "enterprise""#).await,
        [other.as_str()]
    );

    // 5. Revoke one entitlement: a remove with a value filter.
    let r = h
        .call(
            Method::PATCH,
            &format!("/Users/{uid}"),
            Some(patch_op(json!([{
                "op": "remove",
                "path": "entitlements[value eq \"reports-read\"]"
            }]))),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let got = h
        .call(Method::GET, &format!("/Users/{uid}"), None)
        .await
        .body;
    assert_eq!(values(&got, "entitlements"), ["pro"]);
    assert_eq!(
        user_ids_matching(&h, r#"entitlements[value eq "reports-read"]"#).await,
        [other.as_str()]
    );
    // A replace of the whole role list, then a remove of all roles.
    let r = h
        .call(
            Method::PATCH,
            &format!("/Users/{uid}"),
            Some(patch_op(json!([{
                "op": "replace",
                "path": "roles",
                "value": [{"value": "member", "display": "Member", "type": "Role"}]
            }]))),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(values(&r.body, "roles"), ["member"]);
    let r = h
        .call(
            Method::PATCH,
            &format!("/Users/{uid}"),
            Some(patch_op(json!([{"op": "remove", "path": "roles"}]))),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let got = h
        .call(Method::GET, &format!("/Users/{uid}"), None)
        .await
        .body;
    assert!(got.get("roles").is_none(), "{got}");
    assert_eq!(values(&got, "entitlements"), ["pro"]);
    assert_eq!(
        user_ids_matching(&h, r#"roles[value eq "admin"]"#).await,
        Vec::<String>::new()
    );
    // Every grant and revocation was a Patched change of the user.
    let changes = h
        .store
        .changes_since(&acme(), last_seq, 1000)
        .await
        .unwrap();
    let ada: Vec<ChangeKind> = changes
        .iter()
        .filter(|c| c.id.as_str() == uid)
        .map(|c| c.kind)
        .collect();
    assert_eq!(ada, [ChangeKind::Patched; 5]);
}

/// The IdP may only read a catalog: its writes answer 405 with `Allow: GET` and change
/// nothing; a catalog the host opened for writing takes them.
#[tokio::test]
async fn catalogs_are_read_only_for_clients_unless_opened() {
    let mut registry = governance_registry();
    registry
        .add_catalog(Catalog::entitlements("Profile", "/Profiles").writable_by_clients())
        .unwrap();
    let h = Harness::with_registry(Settings::default(), registry).await;
    h.service
        .publish_catalog_value(
            &acme(),
            "Entitlement",
            "reports-read",
            json!({"displayName": "Read reports"}),
        )
        .await
        .unwrap();
    let r = h
        .call(
            Method::POST,
            "/Entitlements",
            Some(json!({"schemas": [OKTA_ENTITLEMENT], "displayName": "Mine"})),
        )
        .await;
    r.assert_error(405, None);
    assert_eq!(r.headers["allow"], "GET");
    assert!(r.detail().contains("/Entitlements"), "{}", r.detail());
    for (method, body) in [
        (
            Method::PUT,
            Some(json!({"schemas": [OKTA_ENTITLEMENT], "displayName": "Changed"})),
        ),
        (
            Method::PATCH,
            Some(patch_op(
                json!([{"op": "replace", "path": "displayName", "value": "Changed"}]),
            )),
        ),
        (Method::DELETE, None),
    ] {
        let r = h
            .call(method.clone(), "/Entitlements/reports-read", body)
            .await;
        r.assert_error(405, None);
    }
    // Nor through /Bulk.
    let r = h
        .call(
            Method::POST,
            "/Bulk",
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                "Operations": [{"method": "DELETE", "path": "/Entitlements/reports-read"}]
            })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["Operations"][0]["status"], "405", "{}", r.body);
    // Nothing changed.
    let r = h.call(Method::GET, "/Entitlements", None).await;
    assert_eq!(r.body["totalResults"], 1);
    assert_eq!(r.body["Resources"][0]["displayName"], "Read reports");
    // The opened catalog takes writes.
    let r = h
        .call(
            Method::POST,
            "/Profiles",
            Some(json!({"schemas": [OKTA_ENTITLEMENT], "displayName": "Sales"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
}

/// Catalog values page, filter and sort like any resource; the host replaces and withdraws
/// them.
#[tokio::test]
async fn catalogs_page_filter_sort_and_change() {
    let h = harness(Settings::default()).await;
    let r = h
        .call(
            Method::GET,
            &format!(
                "/Entitlements?filter={}&sortBy=displayName&sortOrder=descending",
                enc(r#"displayName sw "read" or id eq "api-keys""#)
            ),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let names: Vec<&str> = r.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["displayName"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["Read the audit log", "Read reports", "Manage API keys"]
    );
    let r = h
        .call(Method::GET, "/Entitlements?startIndex=5&count=10", None)
        .await;
    assert_eq!(r.body["totalResults"], 5);
    assert_eq!(r.body["Resources"].as_array().unwrap().len(), 1);
    // POST /.search on one catalog.
    let r = h
        .call(
            Method::POST,
            "/Roles/.search",
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                "filter": "displayName eq \"member\""
            })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["Resources"][0]["id"], "member");
    // The host renames one value and withdraws another.
    h.service
        .publish_catalog_value(
            &acme(),
            "Role",
            "member",
            json!({"displayName": "Workspace member"}),
        )
        .await
        .unwrap();
    let r = h.call(Method::GET, "/Roles/member", None).await;
    assert_eq!(r.body["displayName"], "Workspace member");
    assert!(h
        .service
        .withdraw_catalog_value(&acme(), "Role", "admin")
        .await
        .unwrap());
    assert!(!h
        .service
        .withdraw_catalog_value(&acme(), "Role", "admin")
        .await
        .unwrap());
    h.call(Method::GET, "/Roles/admin", None)
        .await
        .assert_error(404, None);
    // The host's full list: published, the rest withdrawn.
    let sync = h
        .service
        .sync_catalog(
            &acme(),
            "Entitlement",
            [
                (
                    "reports-read".to_owned(),
                    json!({"displayName": "Read all reports"}),
                ),
                (
                    "sso-admin".to_owned(),
                    json!({"displayName": "Administer SSO"}),
                ),
            ],
        )
        .await
        .unwrap();
    assert_eq!((sync.published, sync.withdrawn), (2, 4));
    let r = h.call(Method::GET, "/Entitlements?sortBy=id", None).await;
    let ids: Vec<&str> = r.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["reports-read", "sso-admin"]);
    assert_eq!(r.body["Resources"][0]["displayName"], "Read all reports");
    // Ids are unique in the tenant across types: a Role may not reuse an entitlement's.
    let e = h
        .service
        .publish_catalog_value(&acme(), "Role", "sso-admin", json!({"displayName": "x"}))
        .await
        .unwrap_err();
    assert_eq!(e.status(), 409, "{e}");
    // A catalog value is invalid like a client's write would be; not a catalog type either.
    let e = h
        .service
        .publish_catalog_value(&acme(), "Role", "x", json!({"description": "no name"}))
        .await
        .unwrap_err();
    assert_eq!(e.status(), 400, "{e}");
    assert!(h
        .service
        .publish_catalog_value(&acme(), "User", "x", json!({"userName": "x"}))
        .await
        .is_err());
    for bad in ["", "a/b", "tab\there"] {
        let e = h
            .service
            .publish_catalog_value(&acme(), "Role", bad, json!({"displayName": "x"}))
            .await
            .unwrap_err();
        assert_eq!(e.status(), 400, "{bad:?}: {e}");
    }
    // Catalogs are per tenant: the other tenant has none of acme's values.
    let r = h
        .call_as(
            "other",
            &h.other_token.clone(),
            Method::GET,
            "/Entitlements",
            None,
            &[],
        )
        .await;
    assert_eq!(r.body["totalResults"], 0);
}

/// With `ignore_unknown_grants` off, a grant of a value no catalog holds is 400
/// `invalidValue` naming it and changes nothing; grants whose type names no catalog are
/// free-form and kept.
#[tokio::test]
async fn unknown_grants_are_refused_when_strict() {
    let mut settings = Settings::default();
    settings.tolerances.ignore_unknown_grants = false;
    let h = harness(settings).await;
    let r = h
        .call(
            Method::POST,
            "/Users",
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "eve@example.com",
                "entitlements": [{"value": "pro", "type": "License"},
                                 {"value": "platinum", "type": "License"}]
            })),
        )
        .await;
    r.assert_error(400, Some("invalidValue"));
    assert!(r.detail().contains("platinum") && r.detail().contains("License"));
    assert_eq!(h.count_user_name("eve@example.com").await, 0);

    let uid = h.create_user("eve@example.com").await;
    // A user's id is no entitlement.
    let r = h
        .call(
            Method::PATCH,
            &format!("/Users/{uid}"),
            Some(patch_op(
                json!([{"op": "add", "path": "entitlements", "value": [{"value": uid}]}]),
            )),
        )
        .await;
    r.assert_error(400, Some("invalidValue"));
    let add =
        |value: Value| patch_op(json!([{"op": "add", "path": "entitlements", "value": value}]));
    let r = h
        .call(
            Method::PATCH,
            &format!("/Users/{uid}"),
            Some(add(json!([{"value": "reports-read"}, {"value": "nope"}]))),
        )
        .await;
    r.assert_error(400, Some("invalidValue"));
    assert!(r.detail().contains("`nope`"), "{}", r.detail());
    let got = h
        .call(Method::GET, &format!("/Users/{uid}"), None)
        .await
        .body;
    assert!(got.get("entitlements").is_none(), "{got}");
    // A role is checked against the Role catalog, not the entitlement ones.
    let r = h
        .call(
            Method::PATCH,
            &format!("/Users/{uid}"),
            Some(patch_op(
                json!([{"op": "add", "path": "roles", "value": [{"value": "pro"}]}]),
            )),
        )
        .await;
    r.assert_error(400, Some("invalidValue"));
    // Known values (with or without type), and a free-form type, are accepted.
    let r = h
        .call(
            Method::PATCH,
            &format!("/Users/{uid}"),
            Some(add(json!([
                {"value": "reports-read"},
                {"value": "enterprise", "type": "license"},
                {"value": "cc-4711", "type": "costCenter"}
            ]))),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        values(&r.body, "entitlements"),
        ["cc-4711", "enterprise", "reports-read"]
    );
    // A PUT keeps existing grants even after their value was withdrawn, but adds no unknown.
    h.service
        .withdraw_catalog_value(&acme(), "License", "enterprise")
        .await
        .unwrap();
    let mut echo = r.body.clone();
    echo["displayName"] = json!("Eve");
    let r = h
        .call(Method::PUT, &format!("/Users/{uid}"), Some(echo.clone()))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    echo["entitlements"]
        .as_array_mut()
        .unwrap()
        .push(json!({"value": "pro", "type": "Entitlement"}));
    h.call(Method::PUT, &format!("/Users/{uid}"), Some(echo))
        .await
        .assert_error(400, Some("invalidValue"));
}

/// Under the default tolerance an unknown grant is dropped and the rest of the write lands.
#[tokio::test]
async fn unknown_grants_are_dropped_when_tolerant() {
    let h = harness(Settings::default()).await;
    let uid = h.create_user("finn@example.com").await;
    let r = h
        .call(
            Method::PATCH,
            &format!("/Users/{uid}"),
            Some(patch_op(json!([
                {"op": "add", "path": "entitlements",
                 "value": [{"value": "billing-view", "type": "Entitlement"},
                           {"value": "nope", "type": "Entitlement"}]},
                {"op": "add", "path": "roles", "value": [{"value": "ghost"}]},
                {"op": "replace", "path": "displayName", "value": "Finn"}
            ]))),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(values(&r.body, "entitlements"), ["billing-view"]);
    assert!(r.body.get("roles").is_none(), "{}", r.body);
    let got = h
        .call(Method::GET, &format!("/Users/{uid}"), None)
        .await
        .body;
    assert_eq!(got["displayName"], "Finn");
    assert_eq!(values(&got, "entitlements"), ["billing-view"]);
    // Only unknown grants: the PATCH changes nothing at all.
    let version = got["meta"]["version"].clone();
    let r = h
        .call(
            Method::PATCH,
            &format!("/Users/{uid}"),
            Some(patch_op(
                json!([{"op": "add", "path": "roles", "value": [{"value": "ghost"}]}]),
            )),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["meta"]["version"], version);
}

/// One write checks at most 1000 distinct new grant values: beyond, 400 `tooMany` and nothing
/// is written; the same value sent twice is looked up once.
#[tokio::test]
async fn grant_checks_are_bounded() {
    let h = harness(Settings::default()).await;
    let uid = h.create_user("many@example.com").await;
    let many: Vec<Value> = (0..1001)
        .map(|i| json!({"value": format!("v{i}"), "type": "Entitlement"}))
        .collect();
    let r = h
        .call(
            Method::PATCH,
            &format!("/Users/{uid}"),
            Some(patch_op(
                json!([{"op": "add", "path": "entitlements", "value": many}]),
            )),
        )
        .await;
    r.assert_error(400, Some("tooMany"));
    let repeated: Vec<Value> = (0..1500)
        .map(|i| json!({"value": "reports-read", "type": "Entitlement", "display": format!("{i}")}))
        .collect();
    let r = h
        .call(
            Method::PATCH,
            &format!("/Users/{uid}"),
            Some(patch_op(
                json!([{"op": "add", "path": "entitlements", "value": repeated}]),
            )),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Without catalogs nothing is checked: `entitlements` and `roles` are free-form, as before.
#[tokio::test]
async fn without_catalogs_grants_are_free_form() {
    let mut settings = Settings::strict();
    settings.tolerances.ignore_unknown_grants = false;
    let h = Harness::with_settings(settings).await;
    let r = h
        .call(
            Method::POST,
            "/Users",
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "gus@example.com",
                "entitlements": [{"value": "anything", "type": "Entitlement"}],
                "roles": [{"value": "whatever"}]
            })),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    h.call(Method::GET, "/Entitlements", None)
        .await
        .assert_error(404, None);
}

fn agent(name: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Agent"],
        "name": name,
        "displayName": format!("Agent {name}"),
        "agentType": "Assistant",
        "active": true,
        "protocols": [{"type": "MCP-Server", "specificationUrl": "https://agents.example.com/mcp"}]
    })
}

/// The agent pack: discovery, the ServiceProviderConfig advertisement, and the CRUD cycle
/// scim-sanity runs.
#[tokio::test]
async fn agents_for_all_tenants() {
    let mut registry = SchemaRegistry::default();
    registry.enable_agents(AgentScope::AllTenants).unwrap();
    let h = Harness::with_registry(Settings::default(), registry).await;
    let r = h.call(Method::GET, "/ServiceProviderConfig", None).await;
    assert_eq!(
        r.body["agentExtension"],
        json!({"supported": true, "agentsSupported": true, "agenticApplicationsSupported": true})
    );
    // A host whose clients reject the attribute (scim2-models) leaves it out.
    let mut quiet = SchemaRegistry::default();
    quiet.enable_agents(AgentScope::AllTenants).unwrap();
    quiet.advertise_agent_extension(false);
    let q = Harness::with_registry(Settings::default(), quiet).await;
    let r = q.call(Method::GET, "/ServiceProviderConfig", None).await;
    assert!(r.body.get("agentExtension").is_none(), "{}", r.body);
    assert_eq!(
        q.call(Method::POST, "/Agents", Some(agent("quiet")))
            .await
            .status,
        201
    );
    let r = h.call(Method::GET, "/ResourceTypes/Agent", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["endpoint"], "/Agents");
    assert_eq!(
        r.body["schema"],
        "urn:ietf:params:scim:schemas:core:2.0:Agent"
    );
    let r = h
        .call(
            Method::GET,
            "/Schemas/urn:ietf:params:scim:schemas:core:2.0:AgenticApplication",
            None,
        )
        .await;
    assert_eq!(r.status, 200);

    let r = h
        .call(Method::POST, "/Agents", Some(agent("helpdesk")))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(r.body["meta"]["resourceType"], "Agent");
    assert_eq!(r.body["protocols"][0]["type"], "MCP-Server");
    // `name` is unique across agents (case-insensitively, caseExact false).
    h.call(Method::POST, "/Agents", Some(agent("HELPDESK")))
        .await
        .assert_error(409, Some("uniqueness"));
    // `name` is required.
    let mut nameless = agent("x");
    nameless.as_object_mut().unwrap().remove("name");
    h.call(Method::POST, "/Agents", Some(nameless))
        .await
        .assert_error(400, Some("invalidValue"));
    // Filter by name, as the draft recommends.
    let r = h
        .call(
            Method::GET,
            &format!("/Agents?filter={}", enc(r#"name eq "helpdesk""#)),
            None,
        )
        .await;
    assert_eq!(r.body["totalResults"], 1);
    // PUT, PATCH active=false, DELETE.
    let mut put = r.body["Resources"][0].clone();
    put["displayName"] = json!("Helpdesk bot");
    let r = h
        .call(Method::PUT, &format!("/Agents/{id}"), Some(put))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["displayName"], "Helpdesk bot");
    let r = h
        .call(
            Method::PATCH,
            &format!("/Agents/{id}"),
            Some(patch_op(
                json!([{"op": "replace", "path": "active", "value": false}]),
            )),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["active"], false);
    let r = h
        .call(
            Method::POST,
            "/AgenticApplications",
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:AgenticApplication"],
                "name": "assistant-platform",
                "applicationUrls": [{"type": "homepage", "value": "https://assistant.example.com"}],
                "agents": [{"value": id, "type": "owned"}]
            })),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["agents"][0]["value"], id.as_str());
    let r = h.call(Method::DELETE, &format!("/Agents/{id}"), None).await;
    assert_eq!(r.status, 204);
    h.call(Method::GET, &format!("/Agents/{id}"), None)
        .await
        .assert_error(404, None);
}

/// Off by default; with `OptedInTenants`, only tenants whose settings say `agents` see them.
#[tokio::test]
async fn agents_are_off_by_default_and_per_tenant() {
    let h = Harness::new().await;
    let r = h.call(Method::GET, "/ServiceProviderConfig", None).await;
    assert!(r.body.get("agentExtension").is_none(), "{}", r.body);
    h.call(Method::POST, "/Agents", Some(agent("a")))
        .await
        .assert_error(404, None);

    let mut registry = SchemaRegistry::default();
    registry.enable_agents(AgentScope::OptedInTenants).unwrap();
    let h = Harness::with_registry(Settings::default(), registry).await;
    let mut opted = Settings::default();
    opted.agents = true;
    h.tenants.update_settings(&acme(), opted).await.unwrap();
    let r = h.call(Method::POST, "/Agents", Some(agent("a"))).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = h.call(Method::GET, "/ServiceProviderConfig", None).await;
    assert_eq!(r.body["agentExtension"]["agentsSupported"], true);
    // The other tenant did not opt in: no endpoint, no resource type, no schema.
    let other = |method: Method, path: &'static str, body: Option<Value>| {
        let token = h.other_token.clone();
        let h = &h;
        async move { h.call_as("other", &token, method, path, body, &[]).await }
    };
    other(Method::POST, "/Agents", Some(agent("b")))
        .await
        .assert_error(404, None);
    other(Method::GET, "/ResourceTypes/Agent", None)
        .await
        .assert_error(404, None);
    other(
        Method::GET,
        "/Schemas/urn:ietf:params:scim:schemas:core:2.0:Agent",
        None,
    )
    .await
    .assert_error(404, None);
    let r = other(Method::GET, "/ResourceTypes", None).await;
    let names: Vec<&str> = r.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["User", "Group"]);
    let r = other(Method::GET, "/Schemas", None).await;
    assert!(!r.raw.windows(5).any(|w| w == b"Agent"));
    let r = other(Method::GET, "/ServiceProviderConfig", None).await;
    assert_eq!(
        r.body["agentExtension"],
        json!({"supported": false, "agentsSupported": false, "agenticApplicationsSupported": false})
    );
    // A server-wide search leaves the hidden types out for that tenant.
    let r = other(
        Method::POST,
        "/.search",
        Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["totalResults"], 0);
}
