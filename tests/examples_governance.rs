//! The axum example with `--governance` over real HTTP: the admin console's access policies
//! are the tenant's `Entitlement` catalog, Okta Identity Governance style. The console
//! creates, renames and deletes policies and the catalog follows; the IdP grants a policy
//! in `User.entitlements` and "check login" applies it with origin "IdP", next to the
//! policies that come from the user's collections; a PATCH remove with a value filter
//! revokes it. On the memory store, a SQLite file and PostgreSQL (a real server, skipped
//! without one unless `SCIMKIT_REQUIRE_POSTGRES=1`); the durable stores are restarted to
//! check that the catalog is published again from the console's tables.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::string_slice
)]

#[path = "common/examples.rs"]
mod examples;

use std::io::Read;
use std::time::Duration;

use serde_json::{json, Value};

use examples::{enc, scratch_dir, Client, Server};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ENTITLEMENT: &str = "urn:okta:scim:schemas:core:1.0:Entitlement";
const ADMIN_SECRET: &str = "governance-test-admin-secret-0123";

/// A logged-in admin console session.
struct Console {
    url: String,
    cookie: String,
    agent: ureq::Agent,
}

impl Console {
    fn log_in(server: &Server) -> Console {
        let url = server.admin_url.clone().expect("an Admin console: line");
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(30))
            .build();
        let r = agent
            .post(&format!("{url}/login"))
            .set("X-Scimkit-Admin", "1")
            .set("Content-Type", "application/json")
            .send_string(&json!({ "secret": ADMIN_SECRET }).to_string())
            .unwrap();
        assert_eq!(r.status(), 204);
        let cookie = r
            .header("set-cookie")
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        Console { url, cookie, agent }
    }

    /// A console API call for tenant `default`: status and JSON body.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let req = self
            .agent
            .request(method, &format!("{}/api/tenants/default{path}", self.url))
            .set("X-Scimkit-Admin", "1")
            .set("Cookie", &self.cookie);
        let result = match body {
            Some(b) => req
                .set("Content-Type", "application/json")
                .send_string(&b.to_string()),
            None => req.call(),
        };
        let resp = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: {e}"),
        };
        let status = resp.status();
        let mut text = String::new();
        resp.into_reader().read_to_string(&mut text).unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn ok(&self, method: &str, path: &str, body: Option<Value>, expect: u16) -> Value {
        let (status, body) = self.call(method, path, body);
        assert_eq!(status, expect, "{method} {path}: {body}");
        body
    }

    fn check_login(&self, user_name: &str) -> Value {
        self.ok(
            "POST",
            "/check-login",
            Some(json!({ "userName": user_name })),
            200,
        )
    }
}

/// The ids of the `Entitlement` catalog, read the way Okta imports it: pages of one.
fn catalog_ids(c: &Client) -> Vec<String> {
    let mut ids = Vec::new();
    let mut start = 1;
    loop {
        let page = c.get(&format!("/Entitlements?startIndex={start}&count=1"));
        let total = page["totalResults"].as_u64().unwrap();
        let resources = page["Resources"].as_array().cloned().unwrap_or_default();
        if resources.is_empty() {
            assert_eq!(ids.len() as u64, total, "the pages add up to totalResults");
            return ids;
        }
        assert_eq!(resources.len(), 1, "count=1 gives one value per page");
        for r in resources {
            assert_eq!(r["schemas"][0], ENTITLEMENT);
            ids.push(r["id"].as_str().unwrap().to_owned());
        }
        start += 1;
        assert!(start < 100, "runaway paging");
    }
}

/// The policy names applying at `user_name`'s login, each with its origins.
fn applying(console: &Console, user_name: &str) -> Vec<(String, Vec<String>)> {
    let r = console.check_login(user_name);
    r["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let origins = p["origins"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o.as_str().unwrap().to_owned())
                .collect();
            (p["name"].as_str().unwrap().to_owned(), origins)
        })
        .collect()
}

fn owned(list: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
    list.iter()
        .map(|(n, o)| ((*n).to_owned(), o.iter().map(|s| (*s).to_owned()).collect()))
        .collect()
}

fn start(dir: &std::path::Path, store: &str) -> Server {
    // A token of our own, so that a restart keeps using it.
    let token = format!("scimkit_{}", "G0v-t3st_x".repeat(5).get(..43).unwrap());
    let args = [
        "--store",
        store,
        "--governance",
        "--admin-secret",
        ADMIN_SECRET,
        "--token",
        &token,
    ];
    Server::start("axum_server", dir, &args, true)
}

/// The whole flow on `store` (`memory`, `sqlite:PATH` or `postgres:URL`).
fn policies_are_the_entitlement_catalog(test: &str, store: &str, durable: bool) {
    let dir = scratch_dir(test);
    let server = start(&dir, store);
    let c = server.client();
    let console = Console::log_in(&server);

    // Discovery: the catalog is a resource type with Okta's schema, and starts empty (the
    // demo entitlements of `--governance` are not published by this example).
    let types = c.get("/ResourceTypes");
    let entitlement = types["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "Entitlement")
        .cloned()
        .expect("an Entitlement resource type");
    assert_eq!(entitlement["endpoint"], "/Entitlements");
    assert_eq!(entitlement["schema"], ENTITLEMENT);
    assert_eq!(c.get(&format!("/Schemas/{ENTITLEMENT}"))["id"], ENTITLEMENT);
    assert!(catalog_ids(&c).is_empty());
    assert_eq!(c.get("/Roles")["totalResults"], 2, "the demo roles stay");

    // A collection and two users: jdoe in it, asmith in none.
    let jdoe = c.ok(
        "POST",
        "/Users",
        json!({"schemas": [USER], "userName": "jdoe@example.com", "active": true}),
        201,
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let group = c.ok(
        "POST",
        "/Groups",
        json!({"schemas": [GROUP], "displayName": "Engineering", "members": [{"value": jdoe}]}),
        201,
    );
    let gid = group["id"].as_str().unwrap().to_owned();

    // The console creates two policies: each becomes a catalog value.
    let vpn = console.ok(
        "POST",
        "/policies",
        Some(json!({"name": "VPN", "collections": [gid]})),
        201,
    );
    let billing = console.ok(
        "POST",
        "/policies",
        Some(json!({"name": "Billing", "collections": []})),
        201,
    );
    let vpn_value = vpn["value"].as_str().unwrap().to_owned();
    let billing_value = billing["value"].as_str().unwrap().to_owned();
    assert_eq!(vpn_value, format!("policy-{}", vpn["id"]));
    let mut ids = catalog_ids(&c);
    ids.sort();
    let mut expected = vec![vpn_value.clone(), billing_value.clone()];
    expected.sort();
    assert_eq!(ids, expected);
    let value = c.get(&format!("/Entitlements/{billing_value}"));
    assert_eq!(value["displayName"], "Billing");
    assert_eq!(value["type"], "Entitlement");
    let found = c.get(&format!(
        "/Entitlements?filter={}",
        enc(r#"displayName eq "VPN""#)
    ));
    assert_eq!(found["totalResults"], 1);
    assert_eq!(found["Resources"][0]["id"], vpn_value.as_str());
    // Still read-only for the IdP.
    let r = c.call("DELETE", &format!("/Entitlements/{vpn_value}"), None);
    assert_eq!(r.status, 405, "{}", r.body);

    // A rename reaches the catalog (same value, new displayName).
    console.ok(
        "PUT",
        &format!("/policies/{}", billing["id"]),
        Some(json!({"name": "Billing admins", "collections": []})),
        200,
    );
    assert_eq!(
        c.get(&format!("/Entitlements/{billing_value}"))["displayName"],
        "Billing admins"
    );

    // Before any grant: collections only.
    assert_eq!(
        applying(&console, "jdoe@example.com"),
        owned(&[("VPN", &["collection"])])
    );

    // Okta creates a user with an entitlement grant (and one of a value no catalog has:
    // dropped, the default tolerance).
    let asmith = c.ok(
        "POST",
        "/Users",
        json!({"schemas": [USER], "userName": "asmith@example.com", "active": true,
        "entitlements": [
            {"value": billing_value, "display": "Billing admins", "type": "Entitlement"},
            {"value": "policy-999999", "type": "Entitlement"}
        ]}),
        201,
    );
    let asmith_id = asmith["id"].as_str().unwrap().to_owned();
    let stored = c.get(&format!("/Users/{asmith_id}"));
    let granted: Vec<&str> = stored["entitlements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["value"].as_str().unwrap())
        .collect();
    assert_eq!(granted, [billing_value.as_str()]);
    let r = console.check_login("ASMITH@example.com");
    assert_eq!(r["allowed"], true, "{r}");
    assert_eq!(r["policies"][0]["grant"], billing_value.as_str());
    assert_eq!(
        applying(&console, "asmith@example.com"),
        owned(&[("Billing admins", &["IdP"])])
    );

    // A PATCH add of the VPN entitlement to jdoe: both origins.
    c.patch(
        &format!("/Users/{jdoe}"),
        json!([{"op": "add", "path": "entitlements",
                "value": [{"value": vpn_value, "display": "VPN", "type": "Entitlement"}]}]),
    );
    assert_eq!(
        applying(&console, "jdoe@example.com"),
        owned(&[("VPN", &["IdP", "collection"])])
    );
    // The console's user page and policy list say the same.
    let page = console.ok("GET", &format!("/users/{jdoe}"), None, 200);
    assert_eq!(page["policies"][0]["origins"], json!(["IdP", "collection"]));
    let policies = console.ok("GET", "/policies", None, 200);
    let grants: Vec<(String, u64)> = policies["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["idpGrants"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        grants,
        [("VPN".to_owned(), 1), ("Billing admins".to_owned(), 1)]
    );

    // Okta revokes: PATCH remove with a value filter. The next login has no policy.
    c.patch(
        &format!("/Users/{asmith_id}"),
        json!([{"op": "remove",
                "path": format!("entitlements[value eq \"{billing_value}\"]")}]),
    );
    assert!(c
        .get(&format!("/Users/{asmith_id}"))
        .get("entitlements")
        .is_none());
    let r = console.check_login("asmith@example.com");
    assert_eq!(r["allowed"], false, "{r}");
    assert_eq!(r["policies"], json!([]));

    // The console deletes VPN: withdrawn from the catalog; jdoe's grant of it no longer
    // applies (the policy is gone), and a new grant of it is dropped.
    console.ok("DELETE", &format!("/policies/{}", vpn["id"]), None, 204);
    assert_eq!(catalog_ids(&c), [billing_value.as_str()]);
    assert_eq!(
        c.call("GET", &format!("/Entitlements/{vpn_value}"), None)
            .status,
        404
    );
    assert!(applying(&console, "jdoe@example.com").is_empty());
    c.patch(
        &format!("/Users/{asmith_id}"),
        json!([{"op": "add", "path": "entitlements",
                "value": [{"value": vpn_value, "type": "Entitlement"}]}]),
    );
    assert!(c
        .get(&format!("/Users/{asmith_id}"))
        .get("entitlements")
        .is_none());

    if durable {
        // A restart publishes the catalog from the console's tables again (and the grant
        // on asmith is still honoured).
        c.patch(
            &format!("/Users/{asmith_id}"),
            json!([{"op": "add", "path": "entitlements",
                    "value": [{"value": billing_value, "type": "Entitlement"}]}]),
        );
        server.stop_gracefully();
        let server = start(&dir, store);
        let c = server.client();
        let console = Console::log_in(&server);
        assert_eq!(catalog_ids(&c), [billing_value.as_str()]);
        assert_eq!(
            applying(&console, "asmith@example.com"),
            owned(&[("Billing admins", &["IdP"])])
        );
        server.stop_gracefully();
    } else {
        server.stop_gracefully();
    }
}

#[test]
fn policies_are_the_entitlement_catalog_on_the_memory_store() {
    policies_are_the_entitlement_catalog("gov-memory", "memory", false);
}

#[cfg(feature = "sqlite")]
#[test]
fn policies_are_the_entitlement_catalog_on_sqlite() {
    let dir = scratch_dir("gov-sqlite-db");
    let store = format!("sqlite:{}", dir.join("gov.db").display());
    policies_are_the_entitlement_catalog("gov-sqlite", &store, true);
}

#[cfg(all(feature = "postgres", feature = "testing"))]
#[test]
fn policies_are_the_entitlement_catalog_on_postgres() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let Some(url) = runtime.block_on(scimkit::store::testing::postgres::fresh_database()) else {
        return;
    };
    policies_are_the_entitlement_catalog("gov-postgres", &format!("postgres:{url}"), true);
}
