//! The HTTP surface of ScimService, driven through `handle`, endpoint by endpoint.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use bytes::Bytes;
use common::{patch_op, Harness};
use http::{Method, Request, StatusCode};
use serde_json::{json, Value};

fn user(user_name: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name,
        "active": true
    })
}

// ---- the same tests on the SQL stores ------------------------------------------------------

/// Every test of this file again on each SQL store the build has (`--features sqlite`,
/// `postgres`): the service must behave the same whatever the backend.
#[test]
fn the_service_tests_pass_on_the_sql_stores() {
    common::rerun_on_sql_backends();
}

// ---- authentication and routing ------------------------------------------------------------

#[tokio::test]
async fn unauthenticated_requests_get_401_with_challenge() {
    let h = Harness::new().await;
    let cases = [
        None,
        Some("Basic YWxhZGRpbjpvcGVuc2VzYW1l".to_owned()),
        Some("Bearer".to_owned()),
        Some(format!("Bearer {}x", h.token)),
        Some(format!("Bearer {}", h.other_token)),
    ];
    for auth in cases {
        let mut b = Request::get("/scim/v2/acme/Users");
        if let Some(a) = &auth {
            b = b.header("Authorization", a.as_str());
        }
        let r = h.send(b.body(Bytes::new()).unwrap()).await;
        r.assert_error(401, None);
        assert_eq!(r.headers["www-authenticate"], "Bearer realm=\"scim\"");
    }
    // Authentication comes first, even for paths that do not exist.
    let r = h
        .send(
            Request::get("/scim/v2/acme/Nope")
                .body(Bytes::new())
                .unwrap(),
        )
        .await;
    r.assert_error(401, None);
}

/// A request head without its body: what an adapter has before reading the body.
fn head(method: &str, path: &str, auth: Option<&str>) -> http::request::Parts {
    let mut b = Request::builder().method(method).uri(path);
    if let Some(a) = auth {
        b = b.header("Authorization", a);
    }
    b.body(()).unwrap().into_parts().0
}

/// `authorize` checks the head before any body exists: its refusals are exactly the answers
/// `handle` gives to the same requests, and an accepted head carries the tenant's body limit
/// for the endpoint.
#[tokio::test]
async fn authorize_checks_the_head_before_the_body() {
    let h = Harness::new().await;
    let bearer = format!("Bearer {}", h.token);
    let refused = [
        ("GET", "/scim/v2/acme/Users", None),
        ("POST", "/scim/v2/acme/Users", Some("Bearer scimkit_nope")),
        ("GET", "/scim/v2/acme/Nope", None),
        ("GET", "/elsewhere/Users", Some(bearer.as_str())),
        ("GET", "/scim/v2", Some(bearer.as_str())),
        ("GET", "/scim/v2/other/Users", Some(bearer.as_str())),
        (
            "GET",
            "/scim/v2/no%20such%20tenant/Users",
            Some(bearer.as_str()),
        ),
    ];
    for (method, path, auth) in refused {
        let refusal = h
            .service
            .authorize(&head(method, path, auth))
            .await
            .unwrap_err();
        let full = h
            .send(Request::from_parts(head(method, path, auth), Bytes::new()))
            .await;
        assert_eq!(refusal.status(), full.status, "{method} {path}");
        assert_eq!(refusal.headers(), &full.headers, "{method} {path}");
        assert_eq!(refusal.body(), &full.raw, "{method} {path}");
        assert!(!full.status.is_success(), "{method} {path}");
    }
    let r = h
        .service
        .authorize(&head("GET", "/scim/v2/acme/Users", None))
        .await
        .unwrap_err();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"scim\"");

    // Accepted heads carry the limit of their endpoint.
    let limits = scimkit::settings::Limits::default();
    for (method, path, limit) in [
        ("POST", "/scim/v2/acme/Users", limits.max_payload_bytes),
        ("GET", "/scim/v2/acme/Users", limits.max_payload_bytes),
        (
            "PATCH",
            "/scim/v2/acme/Groups/g1",
            limits.max_membership_payload_bytes,
        ),
        ("POST", "/scim/v2/acme/Bulk", limits.bulk_max_payload_bytes),
    ] {
        let a = h
            .service
            .authorize(&head(method, path, Some(&bearer)))
            .await
            .unwrap();
        assert_eq!(a.body_limit(), limit, "{method} {path}");
        assert_eq!(a.tenant().as_str(), "acme");
        assert!(a.principal().token_id().is_some());
    }
}

/// `handle_authorized` serves the authorised request without a second check, answers like
/// `handle` (413 over the limit), and does not let a proof open another request.
#[tokio::test]
async fn handle_authorized_serves_only_the_authorised_request() {
    let h = Harness::new().await;
    let bearer = format!("Bearer {}", h.token);
    let with_body = |mut parts: http::request::Parts, body: &Value| {
        parts.headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/scim+json"),
        );
        Request::from_parts(parts, Bytes::from(body.to_string()))
    };
    let parts = head("POST", "/scim/v2/acme/Users", Some(&bearer));
    let a = h.service.authorize(&parts).await.unwrap();
    let r = h
        .service
        .handle_authorized(a, with_body(parts, &user("head@example.com")))
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(h.count_user_name("head@example.com").await, 1);

    // Over the authorised limit: the service's own 413, nothing created.
    let parts = head("POST", "/scim/v2/acme/Users", Some(&bearer));
    let a = h.service.authorize(&parts).await.unwrap();
    let mut big = user("big@example.com");
    big["title"] = json!("x".repeat(a.body_limit()));
    let r = h.service.handle_authorized(a, with_body(parts, &big)).await;
    assert_eq!(r.status(), 413);
    assert_eq!(h.count_user_name("big@example.com").await, 0);

    // A proof for acme's /Users presented with another tenant's request is not taken: the
    // request is authenticated again, and acme's token does not open `other`.
    let a = h
        .service
        .authorize(&head("POST", "/scim/v2/acme/Users", Some(&bearer)))
        .await
        .unwrap();
    let elsewhere = head("POST", "/scim/v2/other/Users", Some(&bearer));
    let r = h
        .service
        .handle_authorized(a, with_body(elsewhere, &user("sneak@example.com")))
        .await;
    assert_eq!(r.status(), 401);
    // Nor with no credentials at all on a different method.
    let a = h
        .service
        .authorize(&head("GET", "/scim/v2/acme/Users", Some(&bearer)))
        .await
        .unwrap();
    let r = h
        .service
        .handle_authorized(
            a,
            with_body(
                head("POST", "/scim/v2/acme/Users", None),
                &user("x@example.com"),
            ),
        )
        .await;
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn token_of_one_tenant_is_refused_on_another() {
    let h = Harness::new().await;
    let id = h.create_user("alice@example.com").await;
    let r = h
        .call_as(
            "other",
            &h.token,
            Method::GET,
            &format!("/Users/{id}"),
            None,
            &[],
        )
        .await;
    r.assert_error(401, None);
    // The other tenant's own token sees nothing of acme.
    let r = h
        .call_as(
            "other",
            &h.other_token,
            Method::GET,
            &format!("/Users/{id}"),
            None,
            &[],
        )
        .await;
    r.assert_error(404, None);
    let r = h
        .call_as("other", &h.other_token, Method::GET, "/Users", None, &[])
        .await;
    assert_eq!(r.body["totalResults"], 0);
    let r = h
        .call_as(
            "other",
            &h.other_token,
            Method::DELETE,
            &format!("/Users/{id}"),
            None,
            &[],
        )
        .await;
    r.assert_error(404, None);
    let r = h.call(Method::GET, &format!("/Users/{id}"), None).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn disabled_tenant_is_refused() {
    let h = Harness::new().await;
    h.tenants
        .set_scim_enabled(&scimkit::tenant::TenantId::new("acme").unwrap(), false)
        .await
        .unwrap();
    h.call(Method::GET, "/Users", None)
        .await
        .assert_error(401, None);
}

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_405() {
    let h = Harness::new().await;
    h.call(Method::GET, "/Nope", None)
        .await
        .assert_error(404, None);
    h.call(Method::GET, "/Users/a/b", None)
        .await
        .assert_error(404, None);
    h.call(Method::GET, "", None).await.assert_error(404, None);
    // A path without the mount path is read as `/{tenant}/...` (a router stripped the
    // prefix): here the tenant `elsewhere`, which these (absent) credentials do not open.
    let r = h
        .send(
            Request::get("/elsewhere/acme/Users")
                .body(Bytes::new())
                .unwrap(),
        )
        .await;
    r.assert_error(401, None);
    let r = h
        .call(Method::POST, "/ServiceProviderConfig", Some(json!({})))
        .await;
    r.assert_error(405, None);
    assert_eq!(r.headers["allow"], "GET");
    for p in ["/ResourceTypes", "/Schemas"] {
        let r = h.call(Method::POST, p, Some(json!({}))).await;
        r.assert_error(405, None);
    }
    let r = h.call(Method::DELETE, "/Users", None).await;
    r.assert_error(405, None);
    assert_eq!(r.headers["allow"], "GET, POST");
    let r = h.call(Method::POST, "/Users/abc", Some(user("x"))).await;
    r.assert_error(405, None);
    let r = h.call(Method::GET, "/Bulk", None).await;
    r.assert_error(405, None);
    h.call(Method::GET, "/Me", None)
        .await
        .assert_error(501, None);
}

// ---- discovery -------------------------------------------------------------------------------

#[tokio::test]
async fn service_provider_config_advertises_what_is_supported() {
    let h = Harness::new().await;
    let r = h.call(Method::GET, "/ServiceProviderConfig", None).await;
    assert_eq!(r.status, 200);
    let b = &r.body;
    assert_eq!(
        b["schemas"][0],
        "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
    );
    assert_eq!(b["patch"]["supported"], true);
    assert_eq!(b["bulk"]["supported"], true);
    assert_eq!(b["bulk"]["maxOperations"], 1000);
    assert_eq!(b["filter"]["maxResults"], 1000);
    assert_eq!(b["sort"]["supported"], true);
    assert_eq!(b["etag"]["supported"], true);
    assert_eq!(b["authenticationSchemes"][0]["type"], "oauthbearertoken");
    assert_eq!(
        b["meta"]["location"],
        "https://app.example.com/scim/v2/acme/ServiceProviderConfig"
    );
    h.call(Method::GET, "/ServiceProviderConfig?filter=x+pr", None)
        .await
        .assert_error(403, None);
}

#[tokio::test]
async fn resource_types_and_schemas() {
    let h = Harness::new().await;
    let r = h.call(Method::GET, "/ResourceTypes", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["totalResults"], 2);
    let names: Vec<&str> = r.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["User", "Group"]);
    let r = h.call(Method::GET, "/ResourceTypes/User", None).await;
    assert_eq!(r.body["endpoint"], "/Users");
    assert_eq!(
        r.body["schemaExtensions"][0]["schema"],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    );
    h.call(Method::GET, "/ResourceTypes/Nope", None)
        .await
        .assert_error(404, None);
    let r = h.call(Method::GET, "/Schemas", None).await;
    assert_eq!(r.body["totalResults"], 3);
    let r = h
        .call(
            Method::GET,
            "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User",
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    let attrs = r.body["attributes"].as_array().unwrap();
    let user_name = attrs.iter().find(|a| a["name"] == "userName").unwrap();
    assert_eq!(user_name["uniqueness"], "server");
    assert_eq!(user_name["required"], true);
    h.call(Method::GET, "/Schemas/urn:nope", None)
        .await
        .assert_error(404, None);
}

// ---- create / read -------------------------------------------------------------------------

#[tokio::test]
async fn create_returns_201_with_location_and_etag() {
    let h = Harness::new().await;
    let r = h
        .call(
            Method::POST,
            "/Users",
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "bjensen@example.com",
                "password": "t1meMa$heen",
                "groups": [],
                "externalId": "00u1",
                "active": true
            })),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap();
    assert_eq!(
        r.headers["location"],
        r.body["meta"]["location"].as_str().unwrap()
    );
    assert_eq!(
        r.headers["etag"],
        r.body["meta"]["version"].as_str().unwrap()
    );
    assert_eq!(
        r.body["meta"]["location"],
        format!("https://app.example.com/scim/v2/acme/Users/{id}")
    );
    assert_eq!(r.body["meta"]["resourceType"], "User");
    assert!(
        r.body.get("password").is_none(),
        "password is never returned"
    );
    assert!(r.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/scim+json"));
    let g = h.call(Method::GET, &format!("/Users/{id}"), None).await;
    assert_eq!(g.status, 200);
    assert_eq!(g.body["userName"], "bjensen@example.com");
    assert!(g.body.get("password").is_none());
    assert_eq!(g.headers["etag"], r.headers["etag"]);
}

#[tokio::test]
async fn create_accepts_plain_json_and_rejects_other_media_types() {
    let h = Harness::new().await;
    let body = serde_json::to_vec(&user("json@example.com")).unwrap();
    let req = Request::post("/scim/v2/acme/Users")
        .header("Authorization", format!("Bearer {}", h.token))
        .header("Content-Type", "application/json")
        .body(Bytes::from(body.clone()))
        .unwrap();
    assert_eq!(h.send(req).await.status, 201);
    let req = Request::post("/scim/v2/acme/Users")
        .header("Authorization", format!("Bearer {}", h.token))
        .header("Content-Type", "text/plain")
        .body(Bytes::from(body))
        .unwrap();
    h.send(req).await.assert_error(415, None);
}

#[tokio::test]
async fn bad_bodies_get_precise_errors_and_change_nothing() {
    let h = Harness::new().await;
    let raw = |s: &'static str| {
        Request::post("/scim/v2/acme/Users")
            .header("Authorization", format!("Bearer {}", h.token))
            .header("Content-Type", "application/scim+json")
            .body(Bytes::from_static(s.as_bytes()))
            .unwrap()
    };
    h.send(raw("{\"userName\": "))
        .await
        .assert_error(400, Some("invalidSyntax"));
    h.send(raw(""))
        .await
        .assert_error(400, Some("invalidSyntax"));
    h.send(raw("[1,2]"))
        .await
        .assert_error(400, Some("invalidSyntax"));
    let r = h
        .call(
            Method::POST,
            "/Users",
            Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"]})),
        )
        .await;
    r.assert_error(400, Some("invalidValue"));
    assert!(r.detail().contains("userName"), "{}", r.detail());
    let r = h
        .call(
            Method::POST,
            "/Users",
            Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a", "active": "maybe"})),
        )
        .await;
    r.assert_error(400, Some("invalidValue"));
    assert!(r.detail().contains("active"), "{}", r.detail());
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let req = Request::post("/scim/v2/acme/Users")
        .header("Authorization", format!("Bearer {}", h.token))
        .header("Content-Type", "application/scim+json")
        .body(Bytes::from(deep))
        .unwrap();
    h.send(req).await.assert_error(400, Some("invalidSyntax"));
    let list = h.call(Method::GET, "/Users", None).await;
    assert_eq!(list.body["totalResults"], 0);
}

#[tokio::test]
async fn oversized_payload_is_413() {
    let mut settings = scimkit::settings::Settings::default();
    settings.limits.max_payload_bytes = 200;
    let h = Harness::with_settings(settings).await;
    let mut u = user("big@example.com");
    u["displayName"] = json!("x".repeat(500));
    h.call(Method::POST, "/Users", Some(u))
        .await
        .assert_error(413, None);
}

#[tokio::test]
async fn duplicate_user_name_is_409_case_insensitively() {
    let h = Harness::new().await;
    h.create_user("dup@example.com").await;
    let r = h
        .call(Method::POST, "/Users", Some(user("DUP@Example.com")))
        .await;
    r.assert_error(409, Some("uniqueness"));
    assert!(r.detail().contains("userName"), "{}", r.detail());
}

#[tokio::test]
async fn unknown_id_is_404_with_detail() {
    let h = Harness::new().await;
    let r = h
        .call(Method::GET, "/Users/010101001010101011001010101011", None)
        .await;
    r.assert_error(404, None);
    assert!(r.detail().contains("010101001010101011001010101011"));
}

#[tokio::test]
async fn if_none_match_gives_304() {
    let h = Harness::new().await;
    let id = h.create_user("etag@example.com").await;
    let r = h.call(Method::GET, &format!("/Users/{id}"), None).await;
    let etag = r.headers["etag"].to_str().unwrap().to_owned();
    let r = h
        .call_with(
            Method::GET,
            &format!("/Users/{id}"),
            None,
            &[("If-None-Match", &etag)],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    assert!(r.raw.is_empty());
    let r = h
        .call_with(
            Method::GET,
            &format!("/Users/{id}"),
            None,
            &[("If-None-Match", "W/\"999\"")],
        )
        .await;
    assert_eq!(r.status, 200);
}

// ---- list, filter, paging ----------------------------------------------------------------

/// Percent-encodes a query value (every byte but ASCII letters and digits).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn user_names_compare_by_unicode_full_case_folding() {
    let h = Harness::new().await;
    h.create_user("straße@example.com").await;
    h.create_user("Οδυσσευς@example.com").await;
    // ß is ss and final sigma is sigma, for uniqueness ...
    for taken in [
        "STRASSE@EXAMPLE.COM",
        "STRAẞE@example.com",
        "ΟΔΥΣΣΕΥΣ@EXAMPLE.COM",
    ] {
        let r = h.call(Method::POST, "/Users", Some(user(taken))).await;
        r.assert_error(409, Some("uniqueness"));
        assert!(r.detail().contains("userName"), "{taken}: {}", r.detail());
    }
    // ... and for filters.
    for (filter, want) in [
        (r#"userName eq "STRASSE@example.com""#, 1),
        (r#"userName sw "STRASS""#, 1),
        (r#"userName sw "ΟΔΥΣΣΕΥΣ@""#, 1),
        (r#"userName co "ΣΕΥΣ""#, 1),
        (r#"userName ew "@EXAMPLE.COM""#, 2),
        (r#"userName eq "strase@example.com""#, 0),
    ] {
        let r = h
            .call(
                Method::GET,
                &format!("/Users?filter={}", encode(filter)),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{filter}: {}", r.body);
        assert_eq!(r.body["totalResults"], want, "{filter}");
    }
    let r = h
        .call(
            Method::GET,
            "/Users?sortBy=userName&sortOrder=descending",
            None,
        )
        .await;
    assert_eq!(r.body["Resources"][0]["userName"], "Οδυσσευς@example.com");
    assert_eq!(r.body["Resources"][1]["userName"], "straße@example.com");
}

#[tokio::test]
async fn filters_return_list_responses_never_404() {
    let h = Harness::new().await;
    h.create_user("bjensen@example.com").await;
    // Okta's upper-cased userName check, Entra's `+`-encoded query.
    for q in [
        "/Users?filter=userName%20eq%20%22BJENSEN@EXAMPLE.COM%22&startIndex=1&count=100",
        "/Users?filter=userName+eq+%22bjensen%40example.com%22",
        "/Users?filter=username%20Eq%20%22bjensen@example.com%22",
    ] {
        let r = h.call(Method::GET, q, None).await;
        assert_eq!(r.status, 200, "{q}: {}", r.body);
        assert_eq!(r.body["totalResults"], 1, "{q}");
        assert_eq!(r.body["itemsPerPage"], 1);
        assert_eq!(r.body["startIndex"], 1);
        assert_eq!(
            r.body["schemas"][0],
            "urn:ietf:params:scim:api:messages:2.0:ListResponse"
        );
    }
    let r = h
        .call(
            Method::GET,
            "/Users?filter=userName+eq+%2219f6a0c4-2e0b-4f3e-9a8a-000000000000%22",
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["totalResults"], 0);
    assert_eq!(r.body["Resources"], json!([]));
    assert!(r.body["totalResults"].is_u64());
}

#[tokio::test]
async fn invalid_filters_are_400_invalid_filter() {
    let h = Harness::new().await;
    for f in [
        "userName%20eq",
        "userName%20zz%20%22x%22",
        "(userName%20eq%20%22x%22",
        "active%20gt%20true",
    ] {
        let r = h
            .call(Method::GET, &format!("/Users?filter={f}"), None)
            .await;
        r.assert_error(400, Some("invalidFilter"));
    }
    let long = "a".repeat(5000);
    let r = h
        .call(Method::GET, &format!("/Users?filter={long}%20pr"), None)
        .await;
    r.assert_error(400, Some("invalidFilter"));
}

#[tokio::test]
async fn paging_follows_rfc_7644_3_4_2_4() {
    let h = Harness::new().await;
    for i in 0..7 {
        h.create_user(&format!("user{i}@example.com")).await;
    }
    let r = h
        .call(
            Method::GET,
            "/Users?sortBy=userName&startIndex=3&count=2",
            None,
        )
        .await;
    assert_eq!(r.body["totalResults"], 7);
    assert_eq!(r.body["startIndex"], 3);
    assert_eq!(r.body["itemsPerPage"], 2);
    assert_eq!(r.body["Resources"][0]["userName"], "user2@example.com");
    let r = h.call(Method::GET, "/Users?count=0", None).await;
    assert_eq!(r.body["totalResults"], 7);
    assert_eq!(r.body["itemsPerPage"], 0);
    let r = h.call(Method::GET, "/Users?count=-5", None).await;
    assert_eq!(r.body["itemsPerPage"], 0);
    let r = h
        .call(Method::GET, "/Users?startIndex=0&count=1", None)
        .await;
    assert_eq!(r.body["startIndex"], 1);
    assert_eq!(r.body["itemsPerPage"], 1);
    let r = h.call(Method::GET, "/Users?startIndex=100", None).await;
    assert_eq!(r.body["itemsPerPage"], 0);
    assert_eq!(r.body["totalResults"], 7);
    let r = h
        .call(Method::GET, "/Users?count=99999999999999999999999", None)
        .await;
    assert_eq!(r.body["itemsPerPage"], 7);
    h.call(Method::GET, "/Users?count=ten", None)
        .await
        .assert_error(400, Some("invalidValue"));
    let r = h
        .call(
            Method::GET,
            "/Users?sortBy=userName&sortOrder=descending&count=1",
            None,
        )
        .await;
    assert_eq!(r.body["Resources"][0]["userName"], "user6@example.com");
    let r = h
        .call(
            Method::GET,
            "/Users?attributes=userName&count=1&unknownParam=1",
            None,
        )
        .await;
    let keys: Vec<&String> = r.body["Resources"][0].as_object().unwrap().keys().collect();
    assert!(keys.iter().any(|k| *k == "userName"));
    assert!(keys.iter().any(|k| *k == "id"));
    assert!(!keys.iter().any(|k| *k == "emails"));
}

#[tokio::test]
async fn search_endpoints() {
    let h = Harness::new().await;
    h.create_user("s1@example.com").await;
    h.create_group("Searchers", &[]).await;
    let body = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": "userName sw \"s1\"",
        "attributes": ["userName"],
        "startIndex": 1,
        "count": 10
    });
    let r = h
        .call(Method::POST, "/Users/.search", Some(body.clone()))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["totalResults"], 1);
    let r = h
        .call(
            Method::POST,
            "/.search",
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                "filter": "meta.resourceType eq \"Group\" or userName pr"
            })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["totalResults"], 2);
    let r = h
        .call(
            Method::POST,
            "/Users/.search",
            Some(json!({"filter": "userName pr"})),
        )
        .await;
    r.assert_error(400, Some("invalidSyntax"));
    let r = h.call(Method::GET, "/Users/.search", None).await;
    r.assert_error(405, None);
}

/// A query the store cannot answer itself is evaluated by the service over at most
/// `max_resources_scanned` candidates: beyond that it is 400 `tooMany` with a detail naming
/// the query and what to narrow, the store having read at most one candidate more. Queries
/// the store answers (`Pushdown::Exact`) are not limited, whatever they match.
#[tokio::test]
async fn queries_the_store_cannot_answer_are_capped_with_too_many() {
    let mut settings = scimkit::settings::Settings::default();
    settings.limits.max_resources_scanned = 5;
    let (h, store) = Harness::counting(settings).await;
    for i in 0..8 {
        h.create_user(&format!("cap{i}@example.com")).await;
    }
    h.create_group("Cap group 1", &[]).await;
    h.create_group("Cap group 2", &[]).await;
    let sorted = "/Users?filter=userName%20sw%20%22cap%22&sortBy=emails.value&count=2";
    let r = h.call(Method::GET, sorted, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["totalResults"], 8);
    assert_eq!(r.body["Resources"].as_array().unwrap().len(), 2);

    store.without_pushdown(true);
    store.reset();
    let r = h.call(Method::GET, sorted, None).await;
    r.assert_error(400, Some("tooMany"));
    let detail = r.detail();
    assert!(detail.contains("userName sw \"cap\""), "{detail}");
    assert!(detail.contains("emails.value"), "{detail}");
    assert!(detail.contains("more than 5 resources"), "{detail}");
    assert!(detail.contains("narrow"), "{detail}");
    assert_eq!(
        store.calls().most_listed,
        6,
        "the store read one candidate past the cap"
    );
    // Without a filter or sort too, and on POST .search.
    let r = h.call(Method::GET, "/Users?count=1", None).await;
    r.assert_error(400, Some("tooMany"));
    let r = h
        .call(
            Method::POST,
            "/Users/.search",
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                "filter": "title pr",
                "count": 1
            })),
        )
        .await;
    r.assert_error(400, Some("tooMany"));
    assert!(r.detail().contains("`title pr`"), "{}", r.detail());
    // Within the cap the service evaluates the candidates itself.
    let r = h
        .call(
            Method::GET,
            "/Groups?filter=displayName%20sw%20%22cap%20group%22&sortBy=displayName&sortOrder=descending",
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["totalResults"], 2);
    assert_eq!(r.body["Resources"][0]["displayName"], "Cap group 2");
    store.without_pushdown(false);
    // The refused requests changed nothing.
    let r = h.call(Method::GET, "/Users?count=0", None).await;
    assert_eq!(r.body["totalResults"], 8);
}

/// A search across resource types asks each type for its number of matches, then only the
/// types the page overlaps for their part of it: `count=1` reads one resource, not every
/// resource of every type, and a page across the boundary of two types is the slice of the
/// whole answer (types in registry order).
#[tokio::test]
async fn root_search_reads_only_the_page() {
    let (h, store) = Harness::counting(scimkit::settings::Settings::default()).await;
    for i in 0..12 {
        h.create_user(&format!("root{i:02}@example.com")).await;
    }
    for i in 0..4 {
        h.create_group(&format!("Root group {i}"), &[]).await;
    }
    let search = |start: usize, count: usize| {
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "startIndex": start,
            "count": count,
            "attributes": ["id"]
        })
    };
    let ids = |body: &Value| -> Vec<String> {
        body["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let whole = h.call(Method::POST, "/.search", Some(search(1, 100))).await;
    assert_eq!(whole.status, 200, "{}", whole.body);
    assert_eq!(whole.body["totalResults"], 16);
    let all = ids(&whole.body);
    assert_eq!(all.len(), 16);

    store.reset();
    let r = h.call(Method::POST, "/.search", Some(search(1, 1))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["totalResults"], 16);
    assert_eq!(ids(&r.body), all[..1].to_vec());
    assert_eq!(store.calls().listed, 1, "{:?}", store.calls());

    for (start, count) in [(11, 4), (12, 1), (13, 2), (16, 5), (17, 3)] {
        store.reset();
        let r = h
            .call(Method::POST, "/.search", Some(search(start, count)))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["totalResults"], 16);
        let want: Vec<String> = all.iter().skip(start - 1).take(count).cloned().collect();
        assert_eq!(ids(&r.body), want, "startIndex {start} count {count}");
        assert_eq!(store.calls().listed, want.len(), "startIndex {start}");
    }
}

// ---- replace, patch, delete -----------------------------------------------------------

#[tokio::test]
async fn okta_put_echo_is_accepted() {
    let h = Harness::new().await;
    let id = h.create_user("okta@example.com").await;
    let mut got = h
        .call(Method::GET, &format!("/Users/{id}"), None)
        .await
        .body;
    got["active"] = json!(false);
    got["password"] = json!("placeholder");
    got["groups"] = json!([]);
    let r = h
        .call(Method::PUT, &format!("/Users/{id}"), Some(got))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["active"], false);
    assert_eq!(r.body["id"], id.as_str());
    assert_eq!(r.body["meta"]["version"], "W/\"2\"");
    assert!(r.body.get("password").is_none());
    // Deactivated users stay readable and filterable.
    let r = h
        .call(
            Method::GET,
            "/Users?filter=userName%20eq%20%22okta@example.com%22",
            None,
        )
        .await;
    assert_eq!(r.body["Resources"][0]["active"], false);
}

#[tokio::test]
async fn if_match_is_honoured_on_writes() {
    let h = Harness::new().await;
    let id = h.create_user("cond@example.com").await;
    let path = format!("/Users/{id}");
    let r = h
        .call_with(
            Method::PUT,
            &path,
            Some(user("cond@example.com")),
            &[("If-Match", "W/\"7\"")],
        )
        .await;
    r.assert_error(412, None);
    let patch = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": false}]
    });
    h.call_with(
        Method::PATCH,
        &path,
        Some(patch.clone()),
        &[("If-Match", "W/\"7\"")],
    )
    .await
    .assert_error(412, None);
    h.call_with(Method::DELETE, &path, None, &[("If-Match", "W/\"7\"")])
        .await
        .assert_error(412, None);
    let r = h
        .call_with(
            Method::PATCH,
            &path,
            Some(patch),
            &[("If-Match", "W/\"1\"")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.headers["etag"], "W/\"2\"");
    let r = h
        .call_with(Method::DELETE, &path, None, &[("If-Match", "*")])
        .await;
    assert_eq!(r.status, 204);
}

#[tokio::test]
async fn patch_returns_the_resource_and_delete_removes_it() {
    let h = Harness::new().await;
    let id = h.create_user("entra@example.com").await;
    let path = format!("/Users/{id}");
    let r = h
        .call(
            Method::PATCH,
            &path,
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [
                    {"op": "Replace", "path": "active", "value": "False"},
                    {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Sales"},
                    {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "new@example.com"}
                ]
            })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["active"], false);
    assert_eq!(
        r.body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"],
        "Sales"
    );
    assert_eq!(r.body["emails"][0]["value"], "new@example.com");
    let bad = h
        .call(
            Method::PATCH,
            &path,
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [
                    {"op": "replace", "path": "displayName", "value": "Changed"},
                    {"op": "replace", "path": "id", "value": "stolen"}
                ]
            })),
        )
        .await;
    bad.assert_error(400, Some("mutability"));
    let after = h.call(Method::GET, &path, None).await;
    assert!(
        after.body.get("displayName").is_none(),
        "atomic: nothing changed"
    );
    let r = h.call(Method::DELETE, &path, None).await;
    assert_eq!(r.status, 204);
    assert!(r.raw.is_empty());
    h.call(Method::GET, &path, None)
        .await
        .assert_error(404, None);
    h.call(Method::DELETE, &path, None)
        .await
        .assert_error(404, None);
}

// ---- groups and membership ---------------------------------------------------------------

#[tokio::test]
async fn groups_members_and_user_groups() {
    let h = Harness::new().await;
    let alice = h.create_user("alice@example.com").await;
    let bob = h.create_user("bob@example.com").await;
    let gid = h.create_group("Engineering", &[&alice]).await;
    let r = h.call(Method::GET, &format!("/Groups/{gid}"), None).await;
    let m = &r.body["members"][0];
    assert_eq!(m["value"], alice.as_str());
    assert_eq!(m["type"], "User");
    assert_eq!(
        m["$ref"],
        format!("https://app.example.com/scim/v2/acme/Users/{alice}")
    );
    assert!(
        m.get("display").is_none(),
        "members.display is returned on request only"
    );
    let r = h
        .call(
            Method::GET,
            &format!("/Groups/{gid}?attributes=members.display,members.value"),
            None,
        )
        .await;
    assert_eq!(r.body["members"][0]["display"], "alice@example.com");
    let r = h.call(Method::GET, &format!("/Users/{alice}"), None).await;
    assert_eq!(r.body["groups"][0]["value"], gid.as_str());
    assert_eq!(r.body["groups"][0]["display"], "Engineering");
    // Entra: add with $ref null, remove with a value list, excludedAttributes=members.
    let r = h
        .patch_group(
            &gid,
            json!([
                {"op": "Add", "path": "members", "value": [{"$ref": null, "value": bob}]},
                {"op": "Remove", "path": "members", "value": [{"$ref": null, "value": alice}]}
            ]),
        )
        .await;
    let members: Vec<&str> = r.body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    assert_eq!(members, [bob.as_str()]);
    let r = h
        .call(
            Method::GET,
            "/Groups?excludedAttributes=members&filter=displayName+eq+%22Engineering%22",
            None,
        )
        .await;
    assert_eq!(r.body["totalResults"], 1);
    assert!(r.body["Resources"][0].get("members").is_none());
    // Duplicate group names are refused (Entra requires unique displayName).
    let r = h
        .call(
            Method::POST,
            "/Groups",
            Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "engineering"})),
        )
        .await;
    r.assert_error(409, Some("uniqueness"));
    // A member that does not exist is skipped (it could never resolve: ids are ours).
    let add_unknown =
        json!([{"op": "add", "path": "members", "value": [{"value": "nope"}, {"value": alice}]}]);
    let r = h.patch_group(&gid, add_unknown).await;
    let members: Vec<&str> = r.body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    assert_eq!(members.len(), 2, "{}", r.body);
    assert!(!members.contains(&"nope"));
    // Deleting a user removes it from its groups.
    h.call(Method::DELETE, &format!("/Users/{bob}"), None).await;
    let r = h.call(Method::GET, &format!("/Groups/{gid}"), None).await;
    assert_eq!(r.body["members"].as_array().unwrap().len(), 1, "{}", r.body);
    assert_eq!(r.body["members"][0]["value"], alice.as_str());
    h.call(Method::DELETE, &format!("/Users/{alice}"), None)
        .await;
    let r = h.call(Method::GET, &format!("/Groups/{gid}"), None).await;
    assert!(r.body.get("members").is_none(), "{}", r.body);
}

#[tokio::test]
async fn group_put_replaces_membership() {
    let h = Harness::new().await;
    let a = h.create_user("a@example.com").await;
    let b = h.create_user("b@example.com").await;
    let gid = h.create_group("G", &[&a]).await;
    let r = h
        .call(
            Method::PUT,
            &format!("/Groups/{gid}"),
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "id": gid,
                "displayName": "G2",
                "members": [{"value": b, "display": null}]
            })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["displayName"], "G2");
    assert_eq!(r.body["members"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["members"][0]["value"], b.as_str());
}

// ---- membership at scale -------------------------------------------------------------------

/// A PATCH adding one member (`op` in the IdP's spelling) at `uri` (path and query).
async fn add_member(h: &Harness, op: &str, uri: &str, id: &str) -> common::Reply {
    h.call(
        Method::PATCH,
        uri,
        Some(patch_op(
            json!([{"op": op, "path": "members", "value": [{"value": id}]}]),
        )),
    )
    .await
}

fn member_ids(body: &Value) -> Vec<String> {
    common::sorted_values(&body["members"])
}

/// The answer to a membership write never reads a large member list: a PATCH answers 200
/// with the group and reads at most the head of its list (the whole list when it is short),
/// a PUT renders the members the store resolved for it, and only a client naming `members`
/// in `attributes` gets a long list read back.
#[tokio::test]
async fn membership_writes_never_read_the_member_list() {
    let mut settings = scimkit::settings::Settings::default();
    settings.limits.max_members_in_write_answer = 10;
    let (h, counter) = common::Harness::counting(settings).await;
    let mut users = Vec::new();
    for i in 0..60 {
        users.push(h.create_user(&format!("m{i}@example.com")).await);
    }
    let refs: Vec<&str> = users.iter().map(String::as_str).collect();
    let gid = h.create_group("Everyone", &refs[..50]).await;
    let path = format!("/Groups/{gid}");

    counter.reset();
    let r = add_member(&h, "Add", &path, &users[50]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["displayName"], "Everyone");
    assert!(
        r.body.get("members").is_none(),
        "51 members are more than the answer carries: {}",
        r.body
    );
    assert!(r.headers.get("etag").is_some());
    let remove = format!("members[value eq \"{}\"]", users[0]);
    let r = h
        .call(
            Method::PATCH,
            &path,
            Some(patch_op(json!([{"op": "remove", "path": remove}]))),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.get("members").is_none(), "{}", r.body);
    let calls = counter.calls();
    assert_eq!(calls.gets_with_members, 0, "{calls:?}");
    assert_eq!(calls.member_pages, 0, "{calls:?}");
    assert_eq!(
        calls.short_member_lists, 2,
        "a bounded read only: {calls:?}"
    );
    assert_eq!(calls.lists, 0, "{calls:?}");
    assert_eq!(
        calls.versioned_updates, 0,
        "membership-only PATCHes carry no version precondition: {calls:?}"
    );

    // Named in `attributes`, the members are read; named elsewhere, they are not.
    let r = add_member(
        &h,
        "add",
        &format!("{path}?attributes=displayName"),
        &users[51],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["displayName"], "Everyone");
    assert!(r.body.get("members").is_none(), "{}", r.body);
    assert_eq!(counter.calls().gets_with_members, 0);
    assert_eq!(counter.calls().short_member_lists, 2);
    let r = add_member(&h, "add", &format!("{path}?attributes=members"), &users[52]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(member_ids(&r.body).len(), 52, "{}", r.body);

    // A short list is in the answer.
    let small = h.create_group("Few", &refs[..3]).await;
    let r = add_member(&h, "add", &format!("/Groups/{small}"), &users[3]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mut expected = users[..4].to_vec();
    expected.sort();
    assert_eq!(member_ids(&r.body), expected);

    // PUT: the members come from the write itself.
    counter.reset();
    let r = h
        .call(
            Method::PUT,
            &path,
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Everyone",
                "members": [{"value": users[58]}, {"value": users[59]}, {"value": "no-such-id"}]
            })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mut expected = vec![users[58].clone(), users[59].clone()];
    expected.sort();
    assert_eq!(member_ids(&r.body), expected);
    let calls = counter.calls();
    assert_eq!(calls.gets_with_members, 0, "{calls:?}");
    assert_eq!(
        calls.member_pages + calls.short_member_lists,
        0,
        "{calls:?}"
    );
    let r = h.call(Method::GET, &path, None).await;
    assert_eq!(member_ids(&r.body), expected);

    // A PUT of more members than the answer carries answers without them (like PATCH),
    // unless the client names them; either way nothing is read back.
    let put_all = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "Everyone",
        "members": users[..40].iter().map(|u| json!({"value": u, "display": "echoed"})).collect::<Vec<_>>()
    });
    counter.reset();
    let r = h.call(Method::PUT, &path, Some(put_all.clone())).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["displayName"], "Everyone");
    assert!(r.body.get("members").is_none(), "40 > 10: {}", r.body);
    let r = h
        .call(
            Method::PUT,
            &format!("{path}?attributes=members"),
            Some(put_all),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(member_ids(&r.body).len(), 40, "{}", r.body);
    let calls = counter.calls();
    assert_eq!(calls.gets_with_members, 0, "{calls:?}");
    assert_eq!(
        calls.member_pages + calls.short_member_lists,
        0,
        "{calls:?}"
    );
    let r = h.call(Method::GET, &path, None).await;
    let mut expected: Vec<String> = users[..40].to_vec();
    expected.sort();
    assert_eq!(member_ids(&r.body), expected);

    // Users keep 200 with the resource.
    let r = h
        .call(
            Method::PATCH,
            &format!("/Users/{}", users[0]),
            Some(patch_op(
                json!([{"op": "replace", "path": "active", "value": false}]),
            )),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["active"], false);
}

/// What a PATCH answers is a setting per kind of resource.
#[tokio::test]
async fn patch_answers_are_settings() {
    let mut settings = scimkit::settings::Settings::default();
    settings.group_patch_response = scimkit::settings::PatchResponse::NoContent;
    settings.patch_response = scimkit::settings::PatchResponse::NoContent;
    let h = Harness::with_settings(settings).await;
    let a = h.create_user("a@example.com").await;
    let gid = h.create_group("G", &[]).await;
    let r = add_member(&h, "add", &format!("/Groups/{gid}"), &a).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert!(r.raw.is_empty(), "a 204 has no body");
    let etag = r.headers.get("etag").unwrap().clone();
    let r = h.call(Method::GET, &format!("/Groups/{gid}"), None).await;
    assert_eq!(r.headers.get("etag"), Some(&etag));
    assert_eq!(member_ids(&r.body), vec![a.clone()]);
    let r = h
        .call(
            Method::PATCH,
            &format!("/Users/{a}"),
            Some(patch_op(
                json!([{"op": "replace", "path": "title", "value": "X"}]),
            )),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let etag = r.headers.get("etag").unwrap().to_str().unwrap().to_owned();
    let r = h.call(Method::GET, &format!("/Users/{a}"), None).await;
    assert_eq!(r.body["title"], "X");
    assert_eq!(r.body["meta"]["version"], etag.as_str());
    let r = h
        .call(
            Method::PATCH,
            &format!("/Users/{a}?excludedAttributes=emails"),
            Some(patch_op(
                json!([{"op": "replace", "path": "title", "value": "Y"}]),
            )),
        )
        .await;
    assert_eq!(r.status, 200, "a client naming attributes gets a body");
    assert_eq!(r.body["title"], "Y");
}

/// Without the tolerance, a member that cannot be one fails the write with 400
/// `invalidValue` naming it, and nothing changes; with it, the rest is applied.
#[tokio::test]
async fn unknown_members_are_rejected_in_strict_mode() {
    let mut settings = scimkit::settings::Settings::default();
    settings.tolerances.ignore_unknown_members = false;
    let h = Harness::with_settings(settings).await;
    let a = h.create_user("a@example.com").await;
    let gid = h.create_group("G", &[&a]).await;
    let before = h.call(Method::GET, &format!("/Groups/{gid}"), None).await;
    let mut value = vec![json!({"value": a})];
    value.extend((0..5000).map(|i| json!({"value": format!("ghost-{i}")})));
    let r = h
        .call(
            Method::PATCH,
            &format!("/Groups/{gid}"),
            Some(patch_op(
                json!([{"op": "add", "path": "members", "value": value}]),
            )),
        )
        .await;
    r.assert_error(400, Some("invalidValue"));
    assert!(
        r.body["detail"].as_str().unwrap().contains("ghost-0"),
        "{}",
        r.body
    );
    let after = h.call(Method::GET, &format!("/Groups/{gid}"), None).await;
    assert_eq!(after.body, before.body, "a refused PATCH changed nothing");
    let r = h
        .call(
            Method::POST,
            "/Groups",
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "H",
                "members": [{"value": a}, {"value": "ghost"}]
            })),
        )
        .await;
    r.assert_error(400, Some("invalidValue"));
    let r = h
        .call(
            Method::GET,
            "/Groups?filter=displayName%20eq%20%22H%22",
            None,
        )
        .await;
    assert_eq!(r.body["totalResults"], 0);
}

/// 16 clients each adding 20 distinct users to one group, one PATCH per user and no
/// If-Match (as Entra and Okta send them): every PATCH succeeds and every member is there.
/// With a stale If-Match, a membership PATCH is still 412.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_membership_patches_all_succeed() {
    let h = std::sync::Arc::new(Harness::new().await);
    let gid = h.create_group("Busy", &[]).await;
    let mut users = Vec::new();
    for i in 0..320 {
        users.push(h.create_user(&format!("c{i}@example.com")).await);
    }
    let mut tasks = Vec::new();
    for chunk in users.chunks(20) {
        let (h, gid, chunk) = (h.clone(), gid.clone(), chunk.to_vec());
        tasks.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for u in chunk {
                let r = add_member(&h, "Add", &format!("/Groups/{gid}"), &u).await;
                statuses.push(r.status.as_u16());
            }
            statuses
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.extend(t.await.unwrap());
    }
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let r = h.call(Method::GET, &format!("/Groups/{gid}"), None).await;
    let mut expected = users.clone();
    expected.sort();
    assert_eq!(member_ids(&r.body), expected);
    assert_eq!(r.body["meta"]["version"], "W/\"321\"");
    let r = h
        .call_with(
            Method::PATCH,
            &format!("/Groups/{gid}"),
            Some(patch_op(
                json!([{"op": "remove", "path": "members", "value": [{"value": users[0]}]}]),
            )),
            &[("If-Match", "W/\"7\"")],
        )
        .await;
    r.assert_error(412, None);
}

/// Writes to groups take full member lists past the general body limit (which still
/// bounds every other request).
#[tokio::test]
async fn membership_writes_have_their_own_body_limit() {
    let h = Harness::new().await;
    let limits = scimkit::settings::Limits::default();
    let a = h.create_user("a@example.com").await;
    // 15,000 members with a display each: about 1.2 MB, over the 1 MiB general limit.
    let mut members = vec![json!({"value": a, "display": "a@example.com"})];
    members.extend((0..15_000).map(|i| {
        json!({"value": format!("{i:08}-0000-4000-8000-000000000000"), "display": format!("user{i}@example.com")})
    }));
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "Large",
        "members": members
    });
    assert!(serde_json::to_vec(&body).unwrap().len() > limits.max_payload_bytes);
    let r = h.call(Method::POST, "/Groups", Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(member_ids(&r.body), vec![a.clone()]);
    let mut user = user("big@example.com");
    user["title"] = json!("x".repeat(limits.max_payload_bytes));
    let r = h.call(Method::POST, "/Users", Some(user)).await;
    r.assert_error(413, None);

    // What an adapter may buffer, per request head.
    let cases = [
        (
            "POST",
            "/scim/v2/acme/Groups",
            limits.max_membership_payload_bytes,
        ),
        (
            "PUT",
            "/scim/v2/acme/Groups/g1",
            limits.max_membership_payload_bytes,
        ),
        (
            "PATCH",
            "/scim/v2/acme/Groups/g1",
            limits.max_membership_payload_bytes,
        ),
        ("GET", "/scim/v2/acme/Groups", limits.max_payload_bytes),
        ("POST", "/scim/v2/acme/Users", limits.max_payload_bytes),
        (
            "POST",
            "/scim/v2/acme/Groups/.search",
            limits.max_payload_bytes,
        ),
        ("POST", "/scim/v2/acme/Bulk", limits.bulk_max_payload_bytes),
        // No such tenant: the request will be refused, so it gets no larger limit.
        ("POST", "/scim/v2/nobody/Groups", limits.max_payload_bytes),
        ("POST", "/elsewhere/Groups", limits.max_payload_bytes),
    ];
    for (method, path, expected) in cases {
        assert_eq!(
            h.service.body_limit(method, path).await,
            expected,
            "{method} {path}"
        );
    }
    let mut settings = scimkit::settings::Settings::default();
    settings.limits.max_membership_payload_bytes = 4 << 20;
    let small = Harness::with_settings(settings).await;
    assert_eq!(
        small
            .service
            .body_limit("PATCH", "/scim/v2/acme/Groups/g1")
            .await,
        4 << 20,
        "the tenant's own limit"
    );
}

// ---- bulk -------------------------------------------------------------------------------

#[tokio::test]
async fn bulk_resolves_bulk_ids_across_operations() {
    let h = Harness::new().await;
    let r = h
        .call(
            Method::POST,
            "/Bulk",
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                "Operations": [
                    {"method": "POST", "path": "/Groups", "bulkId": "g1", "data": {
                        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                        "displayName": "Bulk group",
                        "members": [{"value": "bulkId:u1", "type": "User"}]
                    }},
                    {"method": "POST", "path": "/Users", "bulkId": "u1", "data": user("bulk@example.com")},
                    {"method": "PATCH", "path": "/Users/bulkId:u1", "data": {
                        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                        "Operations": [{"op": "replace", "path": "displayName", "value": "Bulk"}]
                    }},
                    {"method": "POST", "path": "/Users", "bulkId": "dup", "data": user("BULK@example.com")}
                ]
            })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let ops = r.body["Operations"].as_array().unwrap();
    assert_eq!(ops.len(), 4);
    assert_eq!(ops[0]["status"], "201", "{}", r.body);
    assert_eq!(ops[1]["status"], "201");
    assert_eq!(ops[2]["status"], "200");
    assert_eq!(ops[3]["status"], "409");
    assert_eq!(ops[3]["response"]["scimType"], "uniqueness");
    let group_loc = ops[0]["location"].as_str().unwrap();
    let gid = group_loc.rsplit('/').next().unwrap();
    let g = h.call(Method::GET, &format!("/Groups/{gid}"), None).await;
    assert_eq!(
        g.body["members"][0]["value"],
        ops[1]["location"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
    );
    let g = h
        .call(
            Method::GET,
            &format!("/Groups/{gid}?attributes=members.display"),
            None,
        )
        .await;
    assert_eq!(g.body["members"][0]["display"], "Bulk");
}

#[tokio::test]
async fn bulk_limits_cycles_and_fail_on_errors() {
    let mut settings = scimkit::settings::Settings::default();
    settings.limits.bulk_max_operations = 3;
    let h = Harness::with_settings(settings).await;
    let op = |n: usize| json!({"method": "POST", "path": "/Users", "bulkId": format!("b{n}"), "data": user(&format!("u{n}@x.com"))});
    let r = h
        .call(
            Method::POST,
            "/Bulk",
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                "Operations": [op(1), op(2), op(3), op(4)]
            })),
        )
        .await;
    r.assert_error(413, None);
    // Circular references.
    let r = h
        .call(
            Method::POST,
            "/Bulk",
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                "Operations": [
                    {"method": "POST", "path": "/Groups", "bulkId": "a", "data": {"displayName": "A", "members": [{"value": "bulkId:b"}]}},
                    {"method": "POST", "path": "/Groups", "bulkId": "b", "data": {"displayName": "B", "members": [{"value": "bulkId:a"}]}}
                ]
            })),
        )
        .await;
    assert_eq!(r.status, 200);
    for o in r.body["Operations"].as_array().unwrap() {
        assert_eq!(o["status"], "409", "{}", r.body);
    }
    // failOnErrors stops after the first error.
    let r = h
        .call(
            Method::POST,
            "/Bulk",
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                "failOnErrors": 1,
                "Operations": [
                    {"method": "POST", "path": "/Users", "bulkId": "x", "data": {"userName": 5}},
                    op(7)
                ]
            })),
        )
        .await;
    let ops = r.body["Operations"].as_array().unwrap();
    assert_eq!(ops.len(), 1, "{}", r.body);
    assert_eq!(ops[0]["status"], "400");
    let list = h.call(Method::GET, "/Users", None).await;
    assert_eq!(list.body["totalResults"], 0);
    let r = h
        .call(Method::POST, "/Bulk", Some(json!({"Operations": []})))
        .await;
    r.assert_error(400, Some("invalidSyntax"));
}

#[tokio::test]
async fn strict_mode_refuses_unknown_members() {
    let h = Harness::with_settings(scimkit::settings::Settings::strict()).await;
    let gid = h.create_group("Strict", &[]).await;
    let r = h
        .call(
            Method::PATCH,
            &format!("/Groups/{gid}"),
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "add", "path": "members", "value": [{"value": "nope"}]}]
            })),
        )
        .await;
    r.assert_error(400, Some("invalidValue"));
    assert!(r.detail().contains("nope"), "{}", r.detail());
    let r = h
        .call(
            Method::POST,
            "/Groups",
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Dangling",
                "members": [{"value": "nope"}]
            })),
        )
        .await;
    r.assert_error(400, Some("invalidValue"));
    let list = h.call(Method::GET, "/Groups", None).await;
    assert_eq!(list.body["totalResults"], 1);
}

/// A store whose every call fails, as a database outage would.
struct BrokenStore;

#[derive(Debug)]
struct Outage;

impl std::fmt::Display for Outage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection to db.internal:5432 refused (password=hunter2)")
    }
}

impl std::error::Error for Outage {}

mod broken {
    use super::*;
    use scimkit::feed::Change;
    use scimkit::schema::ResourceDef;
    use scimkit::store::*;
    use scimkit::{resource::ResourceId, resource::Version, tenant::TenantId};

    #[async_trait::async_trait]
    impl ResourceStore for BrokenStore {
        async fn create(
            &self,
            _: &TenantId,
            _: &ResourceDef,
            _: CreateRequest,
        ) -> Result<StoredResource, StoreError> {
            Err(StoreError::backend(Outage))
        }
        async fn get(
            &self,
            _: &TenantId,
            _: &ResourceDef,
            _: &ResourceId,
            _: bool,
        ) -> Result<StoredResource, StoreError> {
            Err(StoreError::backend(Outage))
        }
        async fn update(
            &self,
            _: &TenantId,
            _: &ResourceDef,
            _: &ResourceId,
            _: UpdateRequest,
        ) -> Result<StoredResource, StoreError> {
            Err(StoreError::backend(Outage))
        }
        async fn delete(
            &self,
            _: &TenantId,
            _: &ResourceDef,
            _: &ResourceId,
            _: Option<Version>,
            _: chrono::DateTime<chrono::Utc>,
        ) -> Result<(), StoreError> {
            Err(StoreError::backend(Outage))
        }
        async fn list(
            &self,
            _: &TenantId,
            _: &ResourceDef,
            _: &ListQuery,
        ) -> Result<Page, StoreError> {
            Err(StoreError::backend(Outage))
        }
        async fn members(
            &self,
            _: &TenantId,
            _: &ResourceDef,
            _: &ResourceId,
            _: usize,
            _: usize,
        ) -> Result<MemberPage, StoreError> {
            Err(StoreError::backend(Outage))
        }
        async fn groups_of(
            &self,
            _: &TenantId,
            _: &ResourceId,
        ) -> Result<Vec<GroupRef>, StoreError> {
            Err(StoreError::backend(Outage))
        }
        async fn changes_since(
            &self,
            _: &TenantId,
            _: u64,
            _: usize,
        ) -> Result<Vec<Change>, StoreError> {
            Err(StoreError::backend(Outage))
        }
    }
}

#[tokio::test]
async fn backend_failures_are_500_without_the_backend_text() {
    let h = Harness::with_store(
        scimkit::settings::Settings::default(),
        std::sync::Arc::new(BrokenStore),
    )
    .await;
    for (method, path, body) in [
        (Method::GET, "/Users", None),
        (Method::GET, "/Users/x", None),
        (Method::POST, "/Users", Some(user("x@example.com"))),
        (Method::DELETE, "/Users/x", None),
    ] {
        let r = h.call(method, path, body).await;
        r.assert_error(500, None);
        let raw = String::from_utf8_lossy(&r.raw);
        assert!(
            !raw.contains("hunter2") && !raw.contains("db.internal"),
            "{raw}"
        );
    }
}

#[tokio::test]
async fn bulk_payload_limit_is_413() {
    let mut settings = scimkit::settings::Settings::default();
    settings.limits.bulk_max_payload_bytes = 300;
    let h = Harness::with_settings(settings).await;
    let ops: Vec<Value> = (0..5)
        .map(|i| json!({"method": "POST", "path": "/Users", "bulkId": format!("b{i}"), "data": user(&format!("u{i}@example.com"))}))
        .collect();
    let r = h
        .call(
            Method::POST,
            "/Bulk",
            Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops})),
        )
        .await;
    r.assert_error(413, None);
    assert_eq!(
        h.call(Method::GET, "/Users", None).await.body["totalResults"],
        0
    );
}

/// The wire order of a resource: `schemas`, `id`, the attributes in schema order, then
/// the derived `groups`/`members` and `meta` last; each key once, in single resources and in
/// lists alike.
#[tokio::test]
async fn resources_are_written_schemas_id_attributes_meta() {
    let h = Harness::new().await;
    let created = h
        .call(Method::POST, "/Users", Some(user("order@example.com")))
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let group = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "Order",
        "members": [{"value": id}]
    });
    assert_eq!(
        h.call(Method::POST, "/Groups", Some(group)).await.status,
        201
    );
    let single = h.call(Method::GET, &format!("/Users/{id}"), None).await;
    let list = h
        .call(
            Method::GET,
            "/Users?filter=userName%20eq%20%22order@example.com%22",
            None,
        )
        .await;
    for text in [
        String::from_utf8_lossy(&single.raw).into_owned(),
        serde_json::to_string(&list.body["Resources"][0]).unwrap(),
    ] {
        let at = |key: &str| {
            let needle = format!("\"{key}\":");
            assert_eq!(text.matches(&needle).count(), 1, "{key} once in {text}");
            text.find(&needle).unwrap()
        };
        assert!(text.starts_with("{\"schemas\":"), "{text}");
        assert!(
            at("schemas") < at("id") && at("id") < at("userName"),
            "{text}"
        );
        assert!(
            at("userName") < at("groups") && at("groups") < at("meta"),
            "{text}"
        );
        assert!(text.ends_with('}') && at("meta") > at("active"), "{text}");
    }
    // Under `attributes`, `schemas`, `id` and `meta` (returned: always) stay, in that order.
    let only = h
        .call(
            Method::GET,
            &format!("/Users/{id}?attributes=userName"),
            None,
        )
        .await;
    let keys: Vec<&String> = only.body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["schemas", "id", "userName", "meta"]);
    assert!(only.headers.contains_key("etag"));
}

// ---- rate limits -----------------------------------------------------------------------------

/// A service on a manual clock with tenants `acme` (two tokens) and `other`, both under
/// `limit`.
struct Limited {
    service: scimkit::service::ScimService,
    clock: std::sync::Arc<scimkit::auth::ManualClock>,
    acme: [String; 2],
    other: String,
}

impl Limited {
    async fn new(limit: scimkit::settings::RateLimit) -> Limited {
        use std::sync::Arc;
        let start = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let clock = Arc::new(scimkit::auth::ManualClock::new(start));
        let tenants = scimkit::auth::Tenants::new(
            Arc::new(scimkit::auth::MemoryTenantStore::new()),
            clock.clone(),
        );
        let mut settings = scimkit::settings::Settings::default();
        settings.rate_limit = Some(limit);
        let mut tokens = Vec::new();
        for (tenant, n) in [("acme", 2), ("other", 1)] {
            let id = scimkit::tenant::TenantId::new(tenant).unwrap();
            tenants
                .create_tenant(id.clone(), tenant, settings.clone())
                .await
                .unwrap();
            for _ in 0..n {
                let (_, t) = tenants.issue_token(&id, "idp", None).await.unwrap();
                tokens.push(t.expose_secret().to_owned());
            }
        }
        let service = scimkit::service::ScimService::builder(
            common::PUBLIC_URL,
            Arc::new(scimkit::store::MemoryStore::new()),
            Arc::clone(tenants.store()),
        )
        .clock(clock.clone())
        .build()
        .unwrap();
        Limited {
            service,
            clock,
            acme: [tokens[0].clone(), tokens[1].clone()],
            other: tokens[2].clone(),
        }
    }

    async fn get(&self, tenant: &str, token: Option<&str>) -> http::Response<Bytes> {
        let mut b = Request::get(format!("/scim/v2/{tenant}/Users"));
        if let Some(t) = token {
            b = b.header("Authorization", format!("Bearer {t}"));
        }
        self.service.handle(b.body(Bytes::new()).unwrap()).await
    }

    fn advance_ms(&self, ms: i64) {
        self.clock.advance(chrono::Duration::milliseconds(ms));
    }
}

/// The SCIM answer to a request over the limit: 429, `Retry-After` in whole seconds, and
/// an error body saying so. Returns the `Retry-After` seconds.
fn assert_limited(r: &http::Response<Bytes>) -> u64 {
    assert_eq!(r.status(), 429);
    let body: Value = serde_json::from_slice(r.body()).unwrap();
    assert_eq!(
        body["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:Error"
    );
    assert_eq!(body["status"], "429");
    assert!(
        body["detail"].as_str().unwrap().contains("rate limit"),
        "{body}"
    );
    r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_tenant_over_its_rate_gets_429_with_retry_after_until_the_bucket_refills() {
    let limit = scimkit::settings::RateLimit {
        requests_per_second: 2,
        burst: 3,
        per_token: false,
    };
    let l = Limited::new(limit).await;
    let acme = Some(l.acme[0].as_str());
    // Unauthenticated requests are refused before the limit and use none of it.
    for _ in 0..10 {
        assert_eq!(l.get("acme", None).await.status(), 401);
    }
    for _ in 0..3 {
        assert_eq!(l.get("acme", acme).await.status(), 200);
    }
    assert_eq!(assert_limited(&l.get("acme", acme).await), 1);
    // Half a second at 2 per second is one more request; the wait is rounded up to 1 s.
    l.advance_ms(500);
    assert_eq!(l.get("acme", acme).await.status(), 200);
    assert_eq!(assert_limited(&l.get("acme", acme).await), 1);
    // A long pause refills the burst, not more.
    l.advance_ms(60_000);
    for _ in 0..3 {
        assert_eq!(l.get("acme", acme).await.status(), 200);
    }
    assert_limited(&l.get("acme", acme).await);
    // authorize is the check: a refused head is the same 429.
    let head = Request::get("/scim/v2/acme/Users")
        .header("Authorization", format!("Bearer {}", l.acme[0]))
        .body(())
        .unwrap()
        .into_parts()
        .0;
    assert_limited(&l.service.authorize(&head).await.unwrap_err());
}

#[tokio::test]
async fn rate_limits_are_per_tenant_and_optionally_per_token() {
    let shared = scimkit::settings::RateLimit {
        requests_per_second: 1,
        burst: 2,
        per_token: false,
    };
    let l = Limited::new(shared).await;
    // Both of acme's tokens draw on one bucket; `other` has its own.
    assert_eq!(l.get("acme", Some(&l.acme[0])).await.status(), 200);
    assert_eq!(l.get("acme", Some(&l.acme[1])).await.status(), 200);
    assert_limited(&l.get("acme", Some(&l.acme[0])).await);
    assert_limited(&l.get("acme", Some(&l.acme[1])).await);
    assert_eq!(l.get("other", Some(&l.other)).await.status(), 200);
    assert_eq!(l.get("other", Some(&l.other)).await.status(), 200);
    assert_limited(&l.get("other", Some(&l.other)).await);
    // A slow rate: 1 per second, 0.3 s after the last refusal still waits 1 s.
    l.advance_ms(300);
    assert_eq!(assert_limited(&l.get("acme", Some(&l.acme[0])).await), 1);
    l.advance_ms(700);
    assert_eq!(l.get("acme", Some(&l.acme[0])).await.status(), 200);

    let per_token = scimkit::settings::RateLimit {
        per_token: true,
        ..shared
    };
    let l = Limited::new(per_token).await;
    for token in &l.acme {
        assert_eq!(l.get("acme", Some(token)).await.status(), 200);
        assert_eq!(l.get("acme", Some(token)).await.status(), 200);
        assert_limited(&l.get("acme", Some(token)).await);
    }
}

// ---- bad input gets the RFC answer (issue 15) --------------------------------------------

/// A raw request to tenant `acme` with its token, the given body and optional Content-Type.
fn raw_request(
    h: &Harness,
    method: Method,
    path: &str,
    body: &str,
    ct: Option<&str>,
) -> Request<Bytes> {
    let mut b = Request::builder()
        .method(method)
        .uri(format!("/scim/v2/acme{path}"))
        .header("Authorization", format!("Bearer {}", h.token));
    if let Some(ct) = ct {
        b = b.header("Content-Type", ct);
    }
    b.body(Bytes::from(body.to_owned())).unwrap()
}

#[tokio::test]
async fn blank_required_strings_are_invalid_value_in_every_mode() {
    for settings in [
        scimkit::settings::Settings::default(),
        scimkit::settings::Settings::strict(),
    ] {
        let h = Harness::with_settings(settings).await;
        // Create: empty, blank and whitespace-only userName (RFC 7643 §4.1.1).
        for blank in ["", " ", "   ", "\t\n", "\u{a0}\u{2003}"] {
            let r = h.call(Method::POST, "/Users", Some(user(blank))).await;
            r.assert_error(400, Some("invalidValue"));
            assert!(r.detail().contains("`userName`"), "{}", r.detail());
            assert!(r.detail().contains("empty"), "{}", r.detail());
        }
        // Any required string: a Group's displayName.
        let r = h
            .call(
                Method::POST,
                "/Groups",
                Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "  "})),
            )
            .await;
        r.assert_error(400, Some("invalidValue"));
        assert!(r.detail().contains("`displayName`"), "{}", r.detail());
        assert_eq!(
            h.call(Method::GET, "/Users", None).await.body["totalResults"],
            0
        );
        assert_eq!(
            h.call(Method::GET, "/Groups", None).await.body["totalResults"],
            0
        );

        // Replace and patch of an existing user: refused, nothing changed.
        let id = h.create_user("keep@example.com").await;
        let before = h.call(Method::GET, &format!("/Users/{id}"), None).await;
        let r = h
            .call(Method::PUT, &format!("/Users/{id}"), Some(user(" ")))
            .await;
        r.assert_error(400, Some("invalidValue"));
        assert!(r.detail().contains("`userName`"), "{}", r.detail());
        let patches = [
            json!([{"op": "replace", "path": "userName", "value": ""}]),
            json!([{"op": "replace", "value": {"userName": "  "}}]),
            json!([{"op": "add", "path": "userName", "value": "\t"}]),
            // The first operation is fine; the second breaks the rule: all or nothing.
            json!([{"op": "replace", "path": "title", "value": "Lead"},
                   {"op": "replace", "path": "userName", "value": " "}]),
        ];
        for ops in patches {
            let r = h
                .call(
                    Method::PATCH,
                    &format!("/Users/{id}"),
                    Some(patch_op(ops.clone())),
                )
                .await;
            r.assert_error(400, Some("invalidValue"));
            assert!(r.detail().contains("`userName`"), "{ops}: {}", r.detail());
            assert!(r.detail().contains("Operations["), "{ops}: {}", r.detail());
        }
        // Removing a required attribute fails too (RFC 7644 §3.5.2.2).
        let r = h
            .call(
                Method::PATCH,
                &format!("/Users/{id}"),
                Some(patch_op(json!([{"op": "remove", "path": "userName"}]))),
            )
            .await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(r.detail().contains("userName"), "{}", r.detail());
        let after = h.call(Method::GET, &format!("/Users/{id}"), None).await;
        assert_eq!(after.body, before.body, "a refused write changed nothing");
        assert_eq!(after.headers["etag"], before.headers["etag"]);
        // A patch that does not touch userName still works, and a valid one too.
        let r = h
            .call(
                Method::PATCH,
                &format!("/Users/{id}"),
                Some(patch_op(
                    json!([{"op": "replace", "path": "userName", "value": " x "}]),
                )),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
}

#[tokio::test]
async fn strict_mode_requires_a_content_type_on_bodies() {
    let body = serde_json::to_string(&user("noct@example.com")).unwrap();
    let strict = Harness::with_settings(scimkit::settings::Settings::strict()).await;
    let id = strict.create_user("present@example.com").await;
    let before = strict
        .call(Method::GET, &format!("/Users/{id}"), None)
        .await;
    let patch = patch_op(json!([{"op": "replace", "path": "title", "value": "x"}])).to_string();
    for (method, path, body) in [
        (Method::POST, "/Users".to_owned(), body.as_str()),
        (Method::PUT, format!("/Users/{id}"), body.as_str()),
        (Method::PATCH, format!("/Users/{id}"), patch.as_str()),
        (
            Method::POST,
            "/Users/.search".to_owned(),
            r#"{"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}"#,
        ),
    ] {
        let r = strict
            .send(raw_request(&strict, method.clone(), &path, body, None))
            .await;
        r.assert_error(415, None);
        assert!(
            r.detail().contains("Content-Type"),
            "{method} {path}: {}",
            r.detail()
        );
    }
    let list = strict.call(Method::GET, "/Users", None).await;
    assert_eq!(list.body["totalResults"], 1, "nothing was created");
    let after = strict
        .call(Method::GET, &format!("/Users/{id}"), None)
        .await;
    assert_eq!(after.body, before.body, "nothing was changed");
    // With the header, the same request is fine.
    let r = strict
        .send(raw_request(
            &strict,
            Method::POST,
            "/Users",
            &body,
            Some("application/scim+json"),
        ))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);

    // Tolerant mode keeps reading a body without Content-Type as JSON.
    let tolerant = Harness::new().await;
    let r = tolerant
        .send(raw_request(&tolerant, Method::POST, "/Users", &body, None))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
}

#[tokio::test]
async fn strict_mode_refuses_duplicate_json_keys() {
    const CT: Option<&str> = Some("application/scim+json");
    let strict = Harness::with_settings(scimkit::settings::Settings::strict()).await;
    let cases = [
        (
            r#"{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a@x", "userName": "b@x"}"#,
            "the request body gives the key `userName` more than once",
        ),
        (
            r#"{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a@x",
                "emails": [{"value": "a@x"}, {"value": "b@x", "type": "work", "value": "c@x"}]}"#,
            "the object at `emails[1]` in the request body gives the key `value` more than once",
        ),
        (
            r#"{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a@x",
                "name": {"givenName": "A", "givenName": "B"}}"#,
            "the object at `name` in the request body gives the key `givenName` more than once",
        ),
    ];
    for (body, detail) in cases {
        let r = strict
            .send(raw_request(&strict, Method::POST, "/Users", body, CT))
            .await;
        r.assert_error(400, Some("invalidSyntax"));
        assert_eq!(r.detail(), detail);
    }
    assert_eq!(
        strict.call(Method::GET, "/Users", None).await.body["totalResults"],
        0
    );
    // In a PATCH too, and the resource is unchanged.
    let id = strict.create_user("p@x").await;
    let before = strict
        .call(Method::GET, &format!("/Users/{id}"), None)
        .await;
    let body = r#"{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "title", "value": "A", "value": "B"}]}"#;
    let r = strict
        .send(raw_request(
            &strict,
            Method::PATCH,
            &format!("/Users/{id}"),
            body,
            CT,
        ))
        .await;
    r.assert_error(400, Some("invalidSyntax"));
    assert!(
        r.detail().contains("Operations[0]") && r.detail().contains("`value`"),
        "{}",
        r.detail()
    );
    let after = strict
        .call(Method::GET, &format!("/Users/{id}"), None)
        .await;
    assert_eq!(after.body, before.body);

    // Tolerant mode keeps today's rule: the last value wins.
    let tolerant = Harness::new().await;
    let (body, _) = cases[0];
    let r = tolerant
        .send(raw_request(&tolerant, Method::POST, "/Users", body, CT))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["userName"], "b@x");
}

/// A User is read with its derived groups in one store call, and a page of Users with the
/// groups of all of them in one more, whatever the page size (one statement each on the SQL
/// stores); a projection without `groups` reads none.
#[tokio::test]
async fn reads_fetch_groups_in_one_call() {
    let (h, counter) = common::Harness::counting(scimkit::settings::Settings::default()).await;
    let mut users = Vec::new();
    for i in 0..5 {
        users.push(h.create_user(&format!("reader{i}@example.com")).await);
    }
    let refs: Vec<&str> = users.iter().map(String::as_str).collect();
    h.create_group("Alpha", &refs[..3]).await;
    h.create_group("Beta", &refs[1..2]).await;

    counter.reset();
    let r = h
        .call(Method::GET, &format!("/Users/{}", users[1]), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let names: Vec<&str> = r.body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["display"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{}", r.body);
    assert!(
        names.contains(&"Alpha") && names.contains(&"Beta"),
        "{names:?}"
    );
    let calls = counter.calls();
    assert_eq!(
        (calls.gets_with_groups, calls.gets, calls.groups_of),
        (1, 0, 0),
        "{calls:?}"
    );

    counter.reset();
    let r = h
        .call(
            Method::GET,
            "/Users?filter=userName%20sw%20%22reader%22&sortBy=userName&count=10",
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["totalResults"], 5);
    let counts: Vec<usize> = r.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["groups"].as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(counts, [1, 2, 1, 0, 0]);
    let calls = counter.calls();
    assert_eq!(
        (calls.lists, calls.groups_of_pages, calls.groups_of),
        (1, 1, 0),
        "{calls:?}"
    );

    counter.reset();
    let r = h
        .call(Method::GET, "/Users?excludedAttributes=groups", None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let calls = counter.calls();
    assert_eq!(
        (calls.groups_of_pages, calls.groups_of),
        (0, 0),
        "{calls:?}"
    );
}

/// A host's write policy: a seat limit, an e-mail domain allow-list and a protected
/// break-glass account. Refused writes answer the host's SCIM error and change nothing; bulk
/// operations go through the same policy.
#[tokio::test]
async fn write_policy_refuses_writes_and_changes_nothing() {
    use scimkit::error::ScimError;
    use scimkit::service::{PendingWrite, WriteOperation, WritePolicy};
    use std::sync::Arc;

    struct Product {
        seats: usize,
        store: Arc<dyn scimkit::store::ResourceStore>,
    }

    fn user_name(doc: Option<&Value>) -> Option<&str> {
        doc.and_then(|d| d.get("userName")).and_then(Value::as_str)
    }

    #[async_trait::async_trait]
    impl WritePolicy for Product {
        async fn check(&self, w: &PendingWrite<'_>) -> Result<(), ScimError> {
            if w.resource_type.name() != "User" {
                return Ok(());
            }
            let name = user_name(w.document).or(user_name(w.current)).unwrap_or("");
            if w.operation == WriteOperation::Create {
                if !name.ends_with("@example.com") {
                    return Err(ScimError::InvalidValue(format!(
                        "`userName` {name} is outside the verified domains"
                    )));
                }
                let query = scimkit::store::ListQuery {
                    count: 0,
                    ..Default::default()
                };
                let used = self
                    .store
                    .list(w.tenant, w.resource_type, &query)
                    .await
                    .map_err(ScimError::from)?
                    .total_results;
                if used >= self.seats {
                    return Err(ScimError::Conflict(format!(
                        "the plan has {} seats and all are taken",
                        self.seats
                    )));
                }
            }
            let deactivates = w
                .document
                .is_some_and(|d| d.get("active") == Some(&json!(false)));
            if user_name(w.current) == Some("breakglass@example.com")
                && (w.operation == WriteOperation::Delete || deactivates)
            {
                return Err(ScimError::Forbidden(
                    "the break-glass account is managed by hand".to_owned(),
                ));
            }
            Ok(())
        }
    }

    let mut h = Harness::new().await;
    h.service = scimkit::service::ScimService::builder(
        common::PUBLIC_URL,
        h.store.clone(),
        Arc::clone(h.tenants.store()),
    )
    .write_policy(Product {
        seats: 3,
        store: h.store.clone(),
    })
    .build()
    .unwrap();

    let glass = h.create_user("breakglass@example.com").await;
    let ann = h.create_user("ann@example.com").await;
    let r = h
        .call(Method::POST, "/Users", Some(user("eve@elsewhere.org")))
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["scimType"], "invalidValue");
    assert!(r.body["detail"]
        .as_str()
        .unwrap()
        .contains("verified domains"));
    h.create_user("bob@example.com").await;
    let r = h
        .call(Method::POST, "/Users", Some(user("cy@example.com")))
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.body["detail"], "the plan has 3 seats and all are taken");
    let bulk = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [{"method": "POST", "path": "/Users", "bulkId": "c", "data": user("cy@example.com")}]
    });
    let r = h.call(Method::POST, "/Bulk", Some(bulk)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["Operations"][0]["status"], "409", "{}", r.body);

    // The protected account: neither deleted nor deactivated, by PATCH or PUT.
    let before = h.call(Method::GET, &format!("/Users/{glass}"), None).await;
    let r = h
        .call(Method::DELETE, &format!("/Users/{glass}"), None)
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let off = patch_op(json!([{"op": "replace", "path": "active", "value": false}]));
    let r = h
        .call(Method::PATCH, &format!("/Users/{glass}"), Some(off.clone()))
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let mut put = user("breakglass@example.com");
    put["active"] = json!(false);
    let r = h
        .call(Method::PUT, &format!("/Users/{glass}"), Some(put))
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let after = h.call(Method::GET, &format!("/Users/{glass}"), None).await;
    assert_eq!(before.body, after.body, "nothing changed");
    let total = h.call(Method::GET, "/Users?count=0", None).await;
    assert_eq!(total.body["totalResults"], 3);

    // Everyone else is managed as usual.
    let r = h
        .call(Method::PATCH, &format!("/Users/{ann}"), Some(off))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = h.call(Method::DELETE, &format!("/Users/{ann}"), None).await;
    assert_eq!(r.status, 204);
    let r = h
        .call(Method::POST, "/Users", Some(user("cy@example.com")))
        .await;
    assert_eq!(r.status, 201, "a seat is free again: {}", r.body);
}

// ---- RFC 9865 cursor paging ----------------------------------------------------------------

/// Follows `nextCursor` from an empty cursor; `between` runs after each page. Returns the ids
/// in walk order, checking every page's shape.
async fn cursor_walk(
    h: &Harness,
    path: &str,
    count: usize,
    mut between: impl FnMut(usize) -> Option<Vec<(Method, String)>>,
) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor = String::new();
    for page in 0..1000 {
        let sep = if path.contains('?') { '&' } else { '?' };
        let r = h
            .call(
                Method::GET,
                &format!("{path}{sep}count={count}&cursor={}", encode(&cursor)),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.body.get("startIndex").is_none(), "{}", r.body);
        let items = r.body["Resources"].as_array().cloned().unwrap_or_default();
        assert!(items.len() <= count);
        assert_eq!(r.body["itemsPerPage"], items.len());
        ids.extend(items.iter().map(|u| u["id"].as_str().unwrap().to_owned()));
        if let Some(calls) = between(page) {
            for (m, p) in calls {
                let body = (m == Method::POST).then(|| user(&p));
                let path = if m == Method::POST {
                    "/Users".to_owned()
                } else {
                    p
                };
                let r = h.call(m, &path, body).await;
                assert!(r.status.is_success(), "{}", r.body);
            }
        }
        match r.body.get("nextCursor").and_then(|c| c.as_str()) {
            Some(c) => {
                assert!(
                    !items.is_empty(),
                    "a next page only follows a non-empty one"
                );
                cursor = c.to_owned();
            }
            None => return ids,
        }
    }
    panic!("the walk did not end");
}

#[tokio::test]
async fn cursor_paging_walks_every_resource_once_under_writes() {
    let h = Harness::new().await;
    let mut ids = Vec::new();
    for i in 0..23 {
        ids.push(h.create_user(&format!("walker{i:02}@example.com")).await);
    }
    // Without writes: every user once, in id order without a sort; totals count them all.
    let got = cursor_walk(&h, "/Users", 5, |_| None).await;
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(got, sorted);
    let first = h.call(Method::GET, "/Users?cursor=&count=5", None).await;
    assert_eq!(first.body["totalResults"], 23);
    // Sorted by userName descending, with creates and deletes between pages: every user that
    // exists throughout is seen exactly once.
    let victims: Vec<String> = ids.iter().step_by(5).cloned().collect();
    let mut next = victims.clone().into_iter();
    let mut n = 0;
    let got = cursor_walk(&h, "/Users?sortBy=userName&sortOrder=descending", 4, |_| {
        n += 1;
        let mut calls = vec![(Method::POST, format!("walker{n:02}x@example.com"))];
        if let Some(v) = next.next() {
            calls.push((Method::DELETE, format!("/Users/{v}")));
        }
        Some(calls)
    })
    .await;
    let mut seen = std::collections::HashSet::new();
    for id in &got {
        assert!(seen.insert(id.clone()), "{id} seen twice");
    }
    for id in ids.iter().filter(|i| !victims.contains(i)) {
        assert!(seen.contains(id), "{id} existed throughout and was skipped");
    }
    // count=0: only the total.
    let r = h.call(Method::GET, "/Users?cursor=&count=0", None).await;
    assert_eq!(r.status, 200);
    assert!(r.body.get("nextCursor").is_none());
    assert_eq!(r.body["itemsPerPage"], 0);
    assert!(r.body["totalResults"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn cursor_paging_on_search_and_root_search() {
    let h = Harness::new().await;
    let mut users = Vec::new();
    for i in 0..7 {
        users.push(h.create_user(&format!("search{i}@example.com")).await);
    }
    let g1 = h.create_group("Alpha", &[]).await;
    let g2 = h.create_group("Beta", &[]).await;
    // POST /Users/.search with a filter, pages of 3.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let r = h
            .call(
                Method::POST,
                "/Users/.search",
                Some(json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                    "filter": "userName sw \"search\"",
                    "sortBy": "userName",
                    "count": 3,
                    "cursor": cursor,
                })),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["totalResults"], 7);
        for u in r.body["Resources"].as_array().unwrap() {
            seen.push(u["userName"].as_str().unwrap().to_owned());
        }
        match r.body["nextCursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    let expected: Vec<String> = (0..7).map(|i| format!("search{i}@example.com")).collect();
    assert_eq!(seen, expected);
    // Root search: users then groups, pages crossing from one type to the other.
    let mut all = Vec::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let r = h
            .call(
                Method::POST,
                "/.search",
                Some(json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                    "count": 4,
                    "cursor": cursor,
                })),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["totalResults"], 9);
        pages += 1;
        for res in r.body["Resources"].as_array().unwrap() {
            all.push(res["id"].as_str().unwrap().to_owned());
        }
        match r.body["nextCursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut expected = users.clone();
    expected.sort();
    let mut groups = vec![g1, g2];
    groups.sort();
    expected.extend(groups);
    assert_eq!(all, expected);
}

#[tokio::test]
async fn bad_cursors_and_counts_get_the_rfc_9865_errors() {
    let h = Harness::new().await;
    for i in 0..4 {
        h.create_user(&format!("bad{i}@example.com")).await;
    }
    let r = h
        .call(
            Method::GET,
            "/Users?cursor=&count=2&filter=userName+sw+%22bad%22",
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let cursor = r.body["nextCursor"].as_str().unwrap().to_owned();
    let good = format!(
        "/Users?count=2&filter=userName+sw+%22bad%22&cursor={}",
        encode(&cursor)
    );
    assert_eq!(h.call(Method::GET, &good, None).await.status, 200);
    // Tampered: one character changed, truncated, garbage.
    let mut tampered = cursor.clone().into_bytes();
    tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let truncated: String = cursor.chars().take(cursor.len() - 2).collect();
    for bad in [tampered.as_str(), truncated.as_str(), "garbage", "a.b"] {
        let path = format!(
            "/Users?count=2&filter=userName+sw+%22bad%22&cursor={}",
            encode(bad)
        );
        let r = h.call(Method::GET, &path, None).await;
        r.assert_error(400, Some("invalidCursor"));
    }
    // Another filter, another sort, another resource type, another tenant.
    for path in [
        format!(
            "/Users?count=2&filter=userName+sw+%22b%22&cursor={}",
            encode(&cursor)
        ),
        format!(
            "/Users?count=2&filter=userName+sw+%22bad%22&sortBy=userName&cursor={}",
            encode(&cursor)
        ),
        format!(
            "/Groups?count=2&filter=userName+sw+%22bad%22&cursor={}",
            encode(&cursor)
        ),
    ] {
        let r = h.call(Method::GET, &path, None).await;
        assert_eq!(r.status, 400, "{path}: {}", r.body);
        if r.body["scimType"] != "invalidFilter" {
            r.assert_error(400, Some("invalidCursor"));
        }
    }
    let r = h
        .call_as(
            "other",
            &h.other_token.clone(),
            Method::GET,
            &good,
            None,
            &[],
        )
        .await;
    r.assert_error(400, Some("invalidCursor"));
    // startIndex with cursor; counts out of range.
    let r = h
        .call(Method::GET, "/Users?cursor=&startIndex=2", None)
        .await;
    r.assert_error(400, Some("invalidValue"));
    assert!(r.detail().contains("startIndex"), "{}", r.detail());
    for count in ["-1", "1001"] {
        let r = h
            .call(Method::GET, &format!("/Users?cursor=&count={count}"), None)
            .await;
        r.assert_error(400, Some("invalidCount"));
        assert!(r.detail().contains("1000"), "{}", r.detail());
    }
    // Without a cursor, index paging is unchanged: count above the maximum is capped.
    let r = h.call(Method::GET, "/Users?count=5000", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["startIndex"], 1);
    assert!(r.body.get("nextCursor").is_none());
}

#[tokio::test]
async fn cursors_expire_and_are_shared_by_instances_with_one_key() {
    use scimkit::auth::ManualClock;
    use scimkit::service::ScimService;
    use std::sync::Arc;
    let h = Harness::new().await;
    for i in 0..3 {
        h.create_user(&format!("exp{i}@example.com")).await;
    }
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let instance = |key: &[u8]| {
        ScimService::builder(
            common::PUBLIC_URL,
            h.store.clone(),
            Arc::clone(h.tenants.store()),
        )
        .clock(clock.clone())
        .cursor_key(key)
        .cursor_timeout(std::time::Duration::from_secs(600))
        .build()
        .unwrap()
    };
    let a = instance(b"shared secret");
    let b = instance(b"shared secret");
    let c = instance(b"another secret");
    let get = |svc: &ScimService, path: String| {
        let req = http::Request::get(format!("/scim/v2/acme{path}"))
            .header("Authorization", format!("Bearer {}", h.token))
            .body(bytes::Bytes::new())
            .unwrap();
        let svc = svc.clone();
        async move {
            let resp = svc.handle(req).await;
            let status = resp.status().as_u16();
            let body: Value = serde_json::from_slice(resp.body()).unwrap();
            (status, body)
        }
    };
    let (status, body) = get(&a, "/Users?cursor=&count=1".into()).await;
    assert_eq!(status, 200);
    let cursor = body["nextCursor"].as_str().unwrap().to_owned();
    let next = format!("/Users?count=1&cursor={}", encode(&cursor));
    assert_eq!(
        get(&b, next.clone()).await.0,
        200,
        "another instance with the key"
    );
    let (status, body) = get(&c, next.clone()).await;
    assert_eq!(
        (status, body["scimType"].as_str()),
        (400, Some("invalidCursor"))
    );
    clock.advance(chrono::Duration::seconds(601));
    let (status, body) = get(&b, next).await;
    assert_eq!(
        (status, body["scimType"].as_str()),
        (400, Some("expiredCursor")),
        "{body}"
    );
    // The configuration says so.
    let (status, body) = get(&a, "/ServiceProviderConfig".into()).await;
    assert_eq!(status, 200);
    let p = &body["pagination"];
    assert_eq!(p["cursor"], true);
    assert_eq!(p["index"], true);
    assert_eq!(p["defaultPaginationMethod"], "index");
    assert_eq!(p["defaultPageSize"], 1000);
    assert_eq!(p["maxPageSize"], 1000);
    assert_eq!(p["cursorTimeout"], 600);
}
