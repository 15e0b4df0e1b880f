//! Replays of what real identity providers send (../shared/IDP-QUIRKS.md), through
//! `ScimService::handle`, with the resulting state asserted after each step.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use bytes::Bytes;
use common::{patch_op, sorted_values as ids, Harness};
use http::{Method, Request};
use serde_json::json;

/// Every replay of this file again on each SQL store the build has.
#[test]
fn the_replays_pass_on_the_sql_stores() {
    common::rerun_on_sql_backends();
}

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

#[tokio::test]
async fn okta_user_lifecycle() {
    let h = Harness::new().await;
    // Test Connector Configuration.
    let r = h
        .call(Method::GET, "/Users?startIndex=1&count=2", None)
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body["totalResults"].is_u64() && r.body["itemsPerPage"].is_u64());
    // Create flow: filter on userName (not found -> 200 empty), then POST.
    let r = h
        .call(
            Method::GET,
            "/Users?filter=userName%20eq%20%22isaac.brock@example.com%22&startIndex=1&count=100",
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["totalResults"], 0);
    let okta_post = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "isaac.brock@example.com",
        "name": {"givenName": "Isaac", "familyName": "Brock"},
        "emails": [{"primary": true, "value": "isaac.brock@example.com", "type": "work"}],
        "displayName": "Isaac Brock",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "password": "1mz050nq",
        "active": true
    });
    // The OIN test posts with plain application/json.
    let req = Request::post("/scim/v2/acme/Users")
        .header("Authorization", format!("Bearer {}", h.token))
        .header("Content-Type", "application/json")
        .header("User-Agent", "Okta SCIM Client 1.0.0")
        .body(Bytes::from(serde_json::to_vec(&okta_post).unwrap()))
        .unwrap();
    let r = h.send(req).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(r.body["externalId"], "00ujl29u0le5T6Aj10h7");
    assert!(r.body.get("password").is_none());
    // Duplicate -> 409 to stop the job.
    let r = h
        .call(Method::POST, "/Users", Some(okta_post.clone()))
        .await;
    r.assert_error(409, Some("uniqueness"));
    // Upper-cased filter finds the user; the OIN test reads these fields.
    let r = h
        .call(
            Method::GET,
            "/Users?filter=userName%20eq%20%22ISAAC.BROCK@EXAMPLE.COM%22",
            None,
        )
        .await;
    let u = &r.body["Resources"][0];
    assert_eq!(u["id"], id.as_str());
    assert_eq!(u["name"]["givenName"], "Isaac");
    assert_eq!(u["emails"][0]["value"], "isaac.brock@example.com");
    assert_eq!(u["active"], true);
    // Profile update: GET, then PUT of the GET response echoed back with a change.
    let mut echo = h
        .call(Method::GET, &format!("/Users/{id}"), None)
        .await
        .body;
    echo["name"]["familyName"] = json!("Brock-Smith");
    echo["password"] = json!("another-placeholder");
    let r = h
        .call(Method::PUT, &format!("/Users/{id}"), Some(echo))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["name"]["familyName"], "Brock-Smith");
    // Deactivation: path-less replace with a value object.
    let r = h
        .call(
            Method::PATCH,
            &format!("/Users/{id}"),
            Some(patch_op(
                json!([{"op": "replace", "value": {"active": false}}]),
            )),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["active"], false);
    assert_eq!(r.body["name"]["familyName"], "Brock-Smith");
    // Still readable, still filterable after deactivation.
    let r = h.call(Method::GET, &format!("/Users/{id}"), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["active"], false);
    // Re-assignment re-activates the same user.
    let r = h
        .call(
            Method::PATCH,
            &format!("/Users/{id}"),
            Some(patch_op(
                json!([{"op": "replace", "value": {"active": true}}]),
            )),
        )
        .await;
    assert_eq!(r.body["active"], true);
    // The OIN test's fake id.
    let r = h
        .call(Method::GET, "/Users/010101001010101011001010101011", None)
        .await;
    r.assert_error(404, None);
}

#[tokio::test]
async fn okta_group_push() {
    let h = Harness::new().await;
    let a = h.create_user("a@example.com").await;
    let b = h.create_user("b@example.com").await;
    let c = h.create_user("c@example.com").await;
    let r = h
        .call(Method::GET, "/Groups?startIndex=1&count=100", None)
        .await;
    assert_eq!(r.status, 200);
    let r = h
        .call(
            Method::GET,
            "/Groups?filter=displayName%20eq%20%22Sales%22&startIndex=1&count=100",
            None,
        )
        .await;
    assert_eq!(r.body["totalResults"], 0);
    let r = h
        .call(
            Method::POST,
            "/Groups",
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Sales",
                "members": []
            })),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let gid = r.body["id"].as_str().unwrap().to_owned();
    // Membership PATCH mixing remove-by-filter and add (no `type` in member objects).
    h.patch_group(
        &gid,
        json!([
            {"op": "add", "path": "members", "value": [
                {"value": a, "display": "a@example.com"},
                {"value": b, "display": "b@example.com"}
            ]}
        ]),
    )
    .await;
    let r = h.patch_group(&gid, json!([
                {"op": "remove", "path": format!("members[value eq \"{a}\"]")},
                {"op": "add", "path": "members", "value": [{"value": c, "display": "c@example.com"}]}
            ])).await;
    let mut expect = vec![b.clone(), c.clone()];
    expect.sort();
    assert_eq!(ids(&r.body["members"]), expect);
    // Rename: path-less replace carrying the read-only id, no members: members stay.
    let r = h
        .patch_group(
            &gid,
            json!([{"op": "replace", "value": {"id": gid, "displayName": "Sales EMEA"}}]),
        )
        .await;
    assert_eq!(r.body["displayName"], "Sales EMEA");
    assert_eq!(ids(&r.body["members"]), expect);
    // The user sees its groups.
    let r = h.call(Method::GET, &format!("/Users/{c}"), None).await;
    assert_eq!(r.body["groups"][0]["display"], "Sales EMEA");
    // AIW apps: full PUT with the complete member list, id included, display null.
    let r = h
        .call(
            Method::PUT,
            &format!("/Groups/{gid}"),
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "id": gid,
                "displayName": "Sales EMEA",
                "members": [{"value": a, "display": null}, {"value": c, "display": null}]
            })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mut expect = vec![a.clone(), c.clone()];
    expect.sort();
    assert_eq!(ids(&r.body["members"]), expect);
    // Full push: replace path members.
    let r = h
        .patch_group(
            &gid,
            json!([{"op": "replace", "path": "members", "value": [{"value": b}]}]),
        )
        .await;
    assert_eq!(ids(&r.body["members"]), vec![b.clone()]);
    // Deleting the group when the admin chooses so.
    let r = h
        .call(Method::DELETE, &format!("/Groups/{gid}"), None)
        .await;
    assert_eq!(r.status, 204);
    let r = h.call(Method::GET, &format!("/Users/{b}"), None).await;
    assert!(r.body.get("groups").is_none());
}

#[tokio::test]
async fn entra_user_lifecycle() {
    let h = Harness::new().await;
    // Test Connection: a random GUID must give 200 and an empty list (no User-Agent).
    let req = Request::get(
        "/scim/v2/acme/Users?filter=userName+eq+%226b2f1d8e-2c38-4f7e-a3d9-1c0f9e0b5e11%22",
    )
    .header("Authorization", format!("Bearer {}", h.token))
    .body(Bytes::new())
    .unwrap();
    let r = h.send(req).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["totalResults"], 0);
    assert_eq!(r.body["Resources"], json!([]));
    // POST with client meta, roles: [], the enterprise URN listed without an object, and
    // legacy nulls plus a typo'd URN.
    let r = h
        .call(
            Method::POST,
            "/Users",
            Some(json!({
                "schemas": [
                    "urn:ietf:params:scim:schemas:core:2.0:User",
                    ENTERPRISE,
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0User"
                ],
                "externalId": "jwong",
                "userName": "Jane.Wong@contoso.com",
                "active": "True",
                "addresses": null,
                "phoneNumbers": null,
                "displayName": "Jane Wong",
                "emails": [{"primary": true, "type": "work", "value": "jane.wong@contoso.com"}],
                "meta": {"resourceType": "User"},
                "name": {"formatted": "Jane Wong", "familyName": "Wong", "givenName": "Jane"},
                "roles": []
            })),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["active"], true);
    let id = r.body["id"].as_str().unwrap().to_owned();
    // Matching filters Entra uses.
    for q in [
        "/Users?filter=externalId+eq+%22jwong%22",
        "/Users?filter=userName+eq+%22jane.wong%40contoso.com%22",
        "/Users?filter=emails%5Btype+eq+%22work%22%5D.value+eq+%22jane.wong%40contoso.com%22",
        "/Users?filter=emails[type%20eq%20%22work%22].value%20eq%20%22JANE.WONG@contoso.com%22",
    ] {
        let r = h.call(Method::GET, q, None).await;
        assert_eq!(r.body["totalResults"], 1, "{q}: {}", r.body);
    }
    // externalId is caseExact.
    let r = h
        .call(Method::GET, "/Users?filter=externalId+eq+%22JWONG%22", None)
        .await;
    assert_eq!(r.body["totalResults"], 0);
    // Legacy unquoted value: a clean 400.
    let r = h
        .call(Method::GET, "/Users?filter=externalId+eq+jwong", None)
        .await;
    r.assert_error(400, Some("invalidFilter"));
    // Default job: capitalised ops, string booleans, filtered paths creating elements,
    // extension attributes by URN path, manager as a bare id.
    let manager = h.create_user("boss@contoso.com").await;
    let r = h
        .call(
            Method::PATCH,
            &format!("/Users/{id}"),
            Some(patch_op(json!([
                {"op": "Replace", "path": "active", "value": "False"},
                {"op": "Add", "path": "addresses[type eq \"work\"].streetAddress", "value": "1 Main St"},
                {"op": "Add", "path": "addresses[type eq \"work\"].locality", "value": "Redmond"},
                {"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0100"},
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "jane@contoso.com"},
                {"op": "Add", "path": format!("{ENTERPRISE}:department"), "value": "Finance"},
                {"op": "Add", "path": format!("{ENTERPRISE}:employeeNumber"), "value": "701984"},
                {"op": "Add", "path": format!("{ENTERPRISE}:manager"), "value": manager}
            ]))),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let u = &r.body;
    assert_eq!(u["active"], false);
    assert_eq!(u["addresses"].as_array().unwrap().len(), 1, "{u}");
    assert_eq!(u["addresses"][0]["type"], "work");
    assert_eq!(u["addresses"][0]["streetAddress"], "1 Main St");
    assert_eq!(u["addresses"][0]["locality"], "Redmond");
    assert_eq!(u["phoneNumbers"][0]["type"], "mobile");
    assert_eq!(u["emails"][0]["value"], "jane@contoso.com");
    assert_eq!(u[ENTERPRISE]["department"], "Finance");
    assert_eq!(u[ENTERPRISE]["manager"]["value"], manager.as_str());
    // Soft-deleted users remain readable and filterable.
    let r = h
        .call(Method::GET, "/Users?filter=externalId+eq+%22jwong%22", None)
        .await;
    assert_eq!(r.body["Resources"][0]["active"], false);
    // aadOptscim062020: lower-case ops, path-less replace with dotted and URN keys.
    let r = h
        .call(
            Method::PATCH,
            &format!("/Users/{id}?aadOptscim062020"),
            Some(patch_op(json!([{"op": "replace", "value": {
                "displayName": "Jane W.",
                "name.givenName": "Janet",
                format!("{ENTERPRISE}:employeeNumber"): "701985",
                "active": true
            }}]))),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["displayName"], "Jane W.");
    assert_eq!(r.body["name"]["givenName"], "Janet");
    assert_eq!(r.body["name"]["familyName"], "Wong");
    assert_eq!(r.body[ENTERPRISE]["employeeNumber"], "701985");
    assert!(r.body.get("name.givenName").is_none());
    // Manager removal as a filter on a single-valued attribute; roles as JSON strings.
    let r = h
        .call(
            Method::PATCH,
            &format!("/Users/{id}"),
            Some(patch_op(json!([
                {"op": "remove", "path": format!("{ENTERPRISE}:manager[value eq \"{manager}\"]")},
                {"op": "Add", "path": "roles", "value": [{"value": "{\"id\":\"role-1\",\"displayName\":\"Admin\"}"}]}
            ]))),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body[ENTERPRISE].get("manager").is_none(), "{}", r.body);
    assert_eq!(r.body["roles"].as_array().unwrap().len(), 1);
    // Null and empty-string handling from the gallery validator.
    let r = h
        .call(
            Method::PATCH,
            &format!("/Users/{id}"),
            Some(patch_op(json!([
                {"op": "Replace", "path": "displayName", "value": null},
                {"op": "Replace", "path": "title", "value": ""}
            ]))),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.get("displayName").is_none(), "{}", r.body);
    // Removing a required attribute is refused and changes nothing.
    let r = h
        .call(
            Method::PATCH,
            &format!("/Users/{id}"),
            Some(patch_op(json!([{"op": "remove", "path": "userName"}]))),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    let after = h.call(Method::GET, &format!("/Users/{id}"), None).await;
    assert_eq!(after.body["userName"], "Jane.Wong@contoso.com");
    // Hard delete.
    let r = h.call(Method::DELETE, &format!("/Users/{id}"), None).await;
    assert_eq!(r.status, 204);
}

#[tokio::test]
async fn entra_group_provisioning() {
    let h = Harness::new().await;
    let a = h.create_user("a@contoso.com").await;
    let b = h.create_user("b@contoso.com").await;
    let r = h
        .call(
            Method::GET,
            "/Groups?excludedAttributes=members&filter=displayName+eq+%22Group1DisplayName%22",
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["totalResults"], 0);
    let r = h
        .call(
            Method::POST,
            "/Groups",
            Some(json!({
                "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
                "displayName": "Group1DisplayName",
                "meta": {"resourceType": "Group"},
                "schemas": [
                    "urn:ietf:params:scim:schemas:core:2.0:Group",
                    "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
                ]
            })),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let gid = r.body["id"].as_str().unwrap().to_owned();
    // Add members with $ref null, several at once, twice (idempotent).
    for _ in 0..2 {
        h.patch_group(
            &gid,
            json!([{"op": "Add", "path": "members", "value": [
                {"$ref": null, "value": a},
                {"$ref": null, "value": b}
            ]}]),
        )
        .await;
    }
    let r = h.call(Method::GET, &format!("/Groups/{gid}"), None).await;
    let mut both = vec![a.clone(), b.clone()];
    both.sort();
    assert_eq!(ids(&r.body["members"]), both);
    // Default job: Remove with a value list removes only those members.
    let r = h
        .patch_group(
            &gid,
            json!([{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": a}]}]),
        )
        .await;
    assert_eq!(ids(&r.body["members"]), vec![b.clone()]);
    // Rename and an `Add` on a single-valued attribute.
    let r = h
        .patch_group(
            &gid,
            json!([
                {"op": "Replace", "path": "displayName", "value": "Renamed"},
                {"op": "Add", "path": "externalId", "value": "new-object-id"}
            ]),
        )
        .await;
    assert_eq!(r.body["displayName"], "Renamed");
    assert_eq!(r.body["externalId"], "new-object-id");
    assert_eq!(ids(&r.body["members"]), vec![b.clone()]);
    let r = h
        .call(
            Method::GET,
            &format!("/Groups/{gid}?excludedAttributes=members"),
            None,
        )
        .await;
    assert!(r.body.get("members").is_none());
    assert_eq!(r.body["displayName"], "Renamed");
    // With the flag: RFC member removal by filter.
    let r = h
        .patch_group(
            &gid,
            json!([{"op": "remove", "path": format!("members[value eq \"{b}\"]")}]),
        )
        .await;
    assert!(r.body.get("members").is_none(), "{}", r.body);
}

#[tokio::test]
async fn onelogin_jumpcloud_pingone_shapes() {
    let h = Harness::new().await;
    let id = h.create_user("ol@example.com").await;
    // OneLogin: emails as a single object in a replace, lower-case ops.
    let r = h
        .call(
            Method::PATCH,
            &format!("/Users/{id}"),
            Some(patch_op(json!([{"op": "replace", "path": "emails", "value": {"value": "new@example.com", "type": "work", "primary": true}}]))),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["emails"],
        json!([{"value": "new@example.com", "type": "work", "primary": true}])
    );
    // PingOne: capitalised operators and lower-case attribute names.
    let r = h
        .call(
            Method::GET,
            "/Users?filter=username%20Eq%20%22OL@example.com%22",
            None,
        )
        .await;
    assert_eq!(r.body["totalResults"], 1);
    let r = h
        .call(
            Method::GET,
            "/Users?filter=emails.value%20Co%20%22new@%22",
            None,
        )
        .await;
    assert_eq!(r.body["totalResults"], 1);
    // JumpCloud: repeated member adds are idempotent.
    let gid = h.create_group("JC", &[]).await;
    for _ in 0..3 {
        h.patch_group(
            &gid,
            json!([{"op": "add", "path": "members", "value": [{"value": id}]}]),
        )
        .await;
    }
    let r = h.call(Method::GET, &format!("/Groups/{gid}"), None).await;
    assert_eq!(ids(&r.body["members"]), vec![id.clone()]);
}
