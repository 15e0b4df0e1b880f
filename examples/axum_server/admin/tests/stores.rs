//! The console's views and policies on every store (memory, SQLite file, PostgreSQL).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::*;

/// A console on `spec` (with its own console database there).
async fn console_on(spec: &StoreSpec) -> (Admin, Router) {
    let app = App::open(spec, "http://127.0.0.1:8080/scim/v2")
        .await
        .unwrap();
    let db = ConsoleDb::open(spec).await.unwrap();
    let admin = Admin::with_db(app, SECRET, false, db);
    let router = routes::<Admin>().with_state(admin.clone());
    (admin, router)
}

/// A SCIM request to the console's service, as an IdP sends it.
async fn scim(admin: &Admin, token: &str, method: &str, path: &str, body: Value) -> Value {
    let req = http::Request::builder()
        .method(method)
        .uri(format!("/scim/v2/acme{path}"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/scim+json")
        .body(axum::body::Bytes::from(body.to_string()))
        .unwrap();
    let resp = admin.app().service.handle(req).await;
    assert!(
        resp.status().is_success(),
        "{method} {path}: {} {}",
        resp.status(),
        String::from_utf8_lossy(resp.body())
    );
    serde_json::from_slice(resp.body()).unwrap_or(Value::Null)
}

fn user(name: &str, ext: &str, email: &str, active: bool) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name,
           "externalId": ext, "emails": [{"value": email}], "active": active})
}

/// Health, the users view, sorted members with counts, policies that outlive their
/// collections, and revocation times, on `spec`.
async fn console_views_work_on(spec: &StoreSpec) {
    let (admin, router) = console_on(spec).await;
    let cookie = log_in(&router).await;
    let auth = [(API_HEADER, "1"), ("cookie", cookie.as_str())];
    let api = |p: &str| format!("/admin/api/tenants/acme{p}");
    let r = call(
        &router,
        "POST",
        "/admin/api/tenants",
        &auth,
        Some(json!({"id": "acme", "name": "Acme"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    call(
        &router,
        "PUT",
        &api("/scim"),
        &auth,
        Some(json!({"enabled": true})),
    )
    .await;

    // SCIM on, no token, no request: both warnings.
    let h = call(&router, "GET", &api("/health"), &auth, None)
        .await
        .json();
    let codes: Vec<&str> = h["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["noActiveToken", "noRequestYet"], "{h}");
    assert_eq!(h["checklist"]["scimOn"], true);
    assert_eq!(h["checklist"]["tested"], false);

    let r = call(
        &router,
        "POST",
        &api("/tokens"),
        &auth,
        Some(json!({"label": "idp"})),
    )
    .await;
    let token = r.json()["token"].as_str().unwrap().to_owned();
    let token_id = r.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(r.json()["prefix"], token_id.get(..8).unwrap());

    let mut ids = HashMap::new();
    for (name, ext, email, active) in [
        ("zed@example.com", "e-3", "zed@corp.example", true),
        ("amy@example.com", "e-1", "amy@corp.example", false),
        ("bob@example.com", "e-2", "bob@other.example", true),
    ] {
        let u = scim(
            &admin,
            &token,
            "POST",
            "/Users",
            user(name, ext, email, active),
        )
        .await;
        ids.insert(name, u["id"].as_str().unwrap().to_owned());
    }
    let members: Vec<Value> = ids.values().map(|id| json!({"value": id})).collect();
    let g = scim(
        &admin,
        &token,
        "POST",
        "/Groups",
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
               "displayName": "Staff", "members": members}),
    )
    .await;
    let gid = g["id"].as_str().unwrap().to_owned();
    // The IdP's connection test.
    scim(
        &admin,
        &token,
        "GET",
        "/Users?startIndex=1&count=2",
        Value::Null,
    )
    .await;
    // The log is appended by a task of its own: wait for the test to show up.
    let mut h = Value::Null;
    for _ in 0..100 {
        h = call(&router, "GET", &api("/health"), &auth, None)
            .await
            .json();
        if h["checklist"]["tested"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        (&h["users"], &h["groups"], &h["activeTokens"]),
        (&json!(3), &json!(1), &json!(1))
    );
    assert_eq!(h["warnings"], json!([]), "a token is active and was used");
    assert!(h["checklist"]["tested"].is_string());
    assert!(h["checklist"]["userCreated"].is_string(), "seen in the log");
    assert!(h["checklist"]["groupPushed"].is_string(), "seen in the log");

    // Users: by userName, paged; searched three ways; filtered by state.
    let names = |r: &Reply| -> Vec<String> {
        r.json()["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["userName"].as_str().unwrap().to_owned())
            .collect()
    };
    let r = call(&router, "GET", &api("/users?count=2"), &auth, None).await;
    assert_eq!(r.json()["total"], 3);
    assert_eq!(names(&r), ["amy@example.com", "bob@example.com"]);
    let r = call(&router, "GET", &api("/users?start=3&count=2"), &auth, None).await;
    assert_eq!(names(&r), ["zed@example.com"]);
    for (query, want) in [
        ("q=ZE", vec!["zed@example.com"]),
        (
            "q=corp.example&by=email",
            vec!["amy@example.com", "zed@example.com"],
        ),
        ("q=e-2&by=externalId", vec!["bob@example.com"]),
        ("q=e-&by=externalId", vec![]),
        ("status=inactive", vec!["amy@example.com"]),
        ("status=active", vec!["bob@example.com", "zed@example.com"]),
        ("q=corp&by=email&status=active", vec!["zed@example.com"]),
    ] {
        let r = call(
            &router,
            "GET",
            &api(&format!("/users?{query}")),
            &auth,
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.body);
        assert_eq!(names(&r), want, "{query}");
    }
    for bad in ["by=displayName&q=x", "status=maybe", "count=x"] {
        let r = call(&router, "GET", &api(&format!("/users?{bad}")), &auth, None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(r.json()["error"].is_string());
    }
    let long = "x".repeat(300);
    let r = call(
        &router,
        "GET",
        &api(&format!("/users?q={long}")),
        &auth,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // A user's page: its collection, externalId, state.
    let amy = &ids["amy@example.com"];
    let r = call(&router, "GET", &api(&format!("/users/{amy}")), &auth, None).await;
    assert_eq!(r.json()["externalId"], "e-1");
    assert_eq!(r.json()["active"], false);
    assert_eq!(r.json()["groups"][0]["name"], "Staff");
    let r = call(&router, "GET", &api("/users/no-such-user"), &auth, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Members by userName, with the inactive one counted as such; paged.
    let r = call(
        &router,
        "GET",
        &api(&format!("/groups/{gid}/members?count=2")),
        &auth,
        None,
    )
    .await;
    let m = r.json();
    assert_eq!(
        (&m["total"], &m["active"], &m["inactive"]),
        (&json!(3), &json!(2), &json!(1))
    );
    let page: Vec<&str> = m["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["userName"].as_str().unwrap())
        .collect();
    assert_eq!(page, ["amy@example.com", "bob@example.com"]);
    assert_eq!(m["members"][0]["active"], false);
    let r = call(
        &router,
        "GET",
        &api(&format!("/groups/{gid}/members?start=3&count=2")),
        &auth,
        None,
    )
    .await;
    assert_eq!(r.json()["members"][0]["userName"], "zed@example.com");

    // A policy keeps the name of a collection the IdP deleted, and can still be saved.
    let r = call(
        &router,
        "POST",
        &api("/policies"),
        &auth,
        Some(json!({"name": "VPN", "collections": [gid]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let pid = r.json()["id"].as_i64().unwrap();
    let req = http::Request::builder()
        .method("DELETE")
        .uri(format!("/scim/v2/acme/Groups/{gid}"))
        .header("authorization", format!("Bearer {token}"))
        .body(axum::body::Bytes::new())
        .unwrap();
    assert_eq!(
        admin.app().service.handle(req).await.status(),
        StatusCode::NO_CONTENT
    );
    let r = call(&router, "GET", &api("/policies"), &auth, None).await;
    assert_eq!(
        r.json()["policies"][0]["collections"][0],
        json!({"id": gid, "name": "Staff", "deleted": true})
    );
    let r = call(
        &router,
        "PUT",
        &api(&format!("/policies/{pid}")),
        &auth,
        Some(json!({"name": "VPN 2", "collections": [gid]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["collections"][0]["name"], "Staff");
    let r = call(
        &router,
        "PUT",
        &api(&format!("/policies/{pid}")),
        &auth,
        Some(json!({"name": "VPN", "collections": ["nope"]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = call(&router, "GET", &api("/policies"), &auth, None).await;
    assert_eq!(
        r.json()["policies"][0]["name"],
        "VPN 2",
        "a refused update changed nothing"
    );
    for path in ["/policies/abc", "/policies/999"] {
        let r = call(&router, "DELETE", &api(path), &auth, None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
    }

    // The provisioning log: a refused request with its real reason, newest first,
    // filtered, never carrying the token.
    let req = http::Request::builder()
        .method("GET")
        .uri("/scim/v2/acme/Users")
        .header(
            "authorization",
            "Bearer scimkit_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        )
        .body(axum::body::Bytes::new())
        .unwrap();
    assert_eq!(
        admin.app().service.handle(req).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // Events are appended by a task of their own: wait for the last one.
    let mut log = Value::Null;
    for _ in 0..100 {
        log = call(&router, "GET", &api("/log?count=200"), &auth, None)
            .await
            .json();
        if log["events"][0]["status"] == 401 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let first = &log["events"][0];
    assert_eq!(first["kind"], "failure", "{log}");
    assert_eq!(
        first["authFailureText"],
        "unknown token (never issued for this tenant)"
    );
    let events = log["events"].as_array().unwrap();
    // 3 user creates, a group create, the test GET, a group delete, the refused GET.
    assert_eq!(events.len(), 7, "{log}");
    assert!(!log.to_string().contains(&token), "no secret in the log");
    let cursors: Vec<u64> = events
        .iter()
        .map(|e| e["cursor"].as_u64().unwrap())
        .collect();
    assert!(
        cursors.windows(2).all(|w| w[0] > w[1]),
        "newest first: {cursors:?}"
    );
    let r = call(
        &router,
        "GET",
        &api("/log?outcome=success&resource=Group"),
        &auth,
        None,
    )
    .await;
    let groups_log = r.json();
    let methods: Vec<&str> = groups_log["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["method"].as_str().unwrap())
        .collect();
    assert_eq!(methods, ["DELETE", "POST"], "{}", r.body);
    let r = call(&router, "GET", &api("/log?q=amy@example"), &auth, None).await;
    assert_eq!(r.json()["events"][0]["name"], "amy@example.com");
    assert_eq!(r.json()["events"].as_array().unwrap().len(), 1);
    let r = call(&router, "GET", &api("/log?count=2"), &auth, None).await;
    let next = r.json()["next"].as_u64().unwrap();
    let r = call(
        &router,
        "GET",
        &api(&format!("/log?count=10&before={next}")),
        &auth,
        None,
    )
    .await;
    assert_eq!(
        r.json()["events"].as_array().unwrap().len(),
        5,
        "the older page"
    );
    for bad in ["outcome=broken", "resource=Device", "before=x", "count=-1"] {
        let r = call(&router, "GET", &api(&format!("/log?{bad}")), &auth, None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
    }
    let h = call(&router, "GET", &api("/health"), &auth, None)
        .await
        .json();
    assert_eq!(h["lastError"]["status"], 401);
    assert_eq!(
        h["lastError"]["reason"],
        "unknown token (never issued for this tenant)"
    );
    assert!(h["lastSuccess"].is_string());
    assert!(
        h["checklist"]["userCreated"].is_string(),
        "seen in the log: {h}"
    );

    // A small collection in a larger tenant (SQLite joins and sorts instead of walking
    // the users), with a nested group listed after the users.
    for i in 0..6 {
        let name = format!("more{i}@example.com");
        scim(
            &admin,
            &token,
            "POST",
            "/Users",
            user(&name, &format!("m-{i}"), &name, true),
        )
        .await;
    }
    let inner = scim(
        &admin,
        &token,
        "POST",
        "/Groups",
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Inner"}),
    )
    .await;
    let inner_id = inner["id"].as_str().unwrap().to_owned();
    let small = scim(
        &admin,
        &token,
        "POST",
        "/Groups",
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Small",
               "members": [{"value": inner_id}, {"value": ids["bob@example.com"]}]}),
    )
    .await;
    let small_id = small["id"].as_str().unwrap().to_owned();
    let r = call(
        &router,
        "GET",
        &api(&format!("/groups/{small_id}/members")),
        &auth,
        None,
    )
    .await;
    let m = r.json();
    assert_eq!((&m["total"], &m["inactive"]), (&json!(2), &json!(0)), "{m}");
    assert_eq!(m["members"][0]["userName"], "bob@example.com");
    assert_eq!(m["members"][1]["id"], inner_id.as_str());
    assert_eq!(m["members"][1]["type"], "Group");
    let r = call(
        &router,
        "GET",
        &api(&format!("/groups/{small_id}/members?start=2&count=1")),
        &auth,
        None,
    )
    .await;
    assert_eq!(r.json()["members"][0]["id"], inner_id.as_str());
    assert_eq!(r.json()["members"].as_array().unwrap().len(), 1);

    // Revoking the last token: its time is listed, and the health warns.
    let r = call(
        &router,
        "POST",
        &api(&format!("/tokens/{token_id}/revoke")),
        &auth,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = call(&router, "GET", &api("/tokens"), &auth, None).await;
    assert_eq!(r.json()["tokens"][0]["status"], "revoked");
    assert!(r.json()["tokens"][0]["revokedAt"].is_string());
    let h = call(&router, "GET", &api("/health"), &auth, None)
        .await
        .json();
    assert_eq!(h["warnings"][0]["code"], "noActiveToken");
}

#[tokio::test]
async fn console_views_work_on_the_memory_store() {
    console_views_work_on(&StoreSpec::Memory).await;
}

/// After [`console_views_work_on`]: a second console on the same database (a restart)
/// sees the policy and the revocation time.
async fn a_second_console_keeps_policies(spec: &StoreSpec) {
    let (_, router) = console_on(spec).await;
    let cookie = log_in(&router).await;
    let auth = [(API_HEADER, "1"), ("cookie", cookie.as_str())];
    let r = call(
        &router,
        "GET",
        "/admin/api/tenants/acme/policies",
        &auth,
        None,
    )
    .await;
    assert_eq!(r.json()["policies"][0]["name"], "VPN 2");
    assert_eq!(r.json()["policies"][0]["collections"][0]["name"], "Staff");
    assert_eq!(r.json()["policies"][0]["collections"][0]["deleted"], true);
    let r = call(
        &router,
        "GET",
        "/admin/api/tenants/acme/tokens",
        &auth,
        None,
    )
    .await;
    let revoked = r.json()["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["revokedAt"].is_string())
        .count();
    assert_eq!(revoked, 1);
}

/// The same on SQLite, where members are sorted and counted with SQL and the policies
/// are in the store's file.
#[cfg(feature = "sqlite")]
#[tokio::test]
async fn console_views_work_on_sqlite_and_policies_survive_a_restart() {
    let path = std::env::temp_dir().join(format!(
        "scimkit-console-{}-{}.db",
        std::process::id(),
        uuid::Uuid::new_v4()
    ));
    let spec = StoreSpec::Sqlite(path.clone());
    console_views_work_on(&spec).await;
    a_second_console_keeps_policies(&spec).await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// The same on PostgreSQL (the test server of `scimkit::store::testing::postgres`,
/// skipped without one unless `SCIMKIT_REQUIRE_POSTGRES=1`).
#[cfg(all(feature = "postgres", feature = "testing"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_views_work_on_postgres_and_policies_survive_a_restart() {
    let Some(url) = scimkit::store::testing::postgres::fresh_database().await else {
        return;
    };
    let spec = StoreSpec::Postgres(url);
    console_views_work_on(&spec).await;
    a_second_console_keeps_policies(&spec).await;
}
