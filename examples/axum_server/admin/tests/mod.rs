//! The console's API in process: login, sessions, tokens and policies on the memory store.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::*;
use crate::common::cli::StoreSpec;
use axum::http::Request;
use scimkit::auth::TokenVerifier;
use tower::ServiceExt as _;

const SECRET: &str = "correct horse battery staple";

async fn console() -> (Admin, Router) {
    let app = App::open(&StoreSpec::Memory, "http://127.0.0.1:8080/scim/v2")
        .await
        .unwrap();
    let admin = Admin::new(app, SECRET, false);
    let router = routes::<Admin>().with_state(admin.clone());
    (admin, router)
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

async fn call(
    router: &Router,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Reply {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    let resp = router
        .clone()
        .oneshot(req.body(body).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    Reply {
        status,
        headers,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

/// Logs in and returns the `Cookie` header value.
async fn log_in(router: &Router) -> String {
    let r = call(
        router,
        "POST",
        "/admin/login",
        &[(API_HEADER, "1")],
        Some(json!({ "secret": SECRET })),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let set = r.headers[header::SET_COOKIE].to_str().unwrap().to_owned();
    assert!(set.contains("HttpOnly"), "{set}");
    assert!(set.contains("SameSite=Strict"), "{set}");
    assert!(set.contains("Path=/admin"), "{set}");
    set.split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn the_console_is_refused_without_the_secret() {
    let (_, router) = console().await;
    let r = call(&router, "GET", "/admin", &[], None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains("login-form"));
    assert!(
        !r.body.contains("tenant-select"),
        "no console without a session"
    );

    // Wrong secret, missing header, forged cookie: refused.
    let wrong = call(
        &router,
        "POST",
        "/admin/login",
        &[(API_HEADER, "1")],
        Some(json!({"secret": "correct horse battery stapler"})),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.headers.get(header::SET_COOKIE).is_none());
    let no_header = call(
        &router,
        "POST",
        "/admin/login",
        &[],
        Some(json!({ "secret": SECRET })),
    )
    .await;
    assert_eq!(no_header.status, StatusCode::FORBIDDEN);
    let forged = [(API_HEADER, "1"), ("cookie", "scimkit_admin=AAAA")];
    let r = call(&router, "GET", "/admin/api/tenants", &forged, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.json()["error"].as_str().unwrap().contains("log in"));

    // With a session: the console, and the API (only with the custom header).
    let cookie = log_in(&router).await;
    let r = call(&router, "GET", "/admin", &[("cookie", &cookie)], None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("tenant-select"));
    assert!(r.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .contains("script-src 'self'"));
    let r = call(
        &router,
        "GET",
        "/admin/api/tenants",
        &[("cookie", &cookie)],
        None,
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "the CSRF header is required"
    );
    let auth = [(API_HEADER, "1"), ("cookie", cookie.as_str())];
    let r = call(&router, "GET", "/admin/api/tenants", &auth, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["tenants"], json!([]));

    // Logging out ends the session on the server, not only in the browser.
    let r = call(&router, "POST", "/admin/logout", &auth, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = call(&router, "GET", "/admin/api/tenants", &auth, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

async fn try_login(router: &Router, secret: &str) -> Reply {
    call(
        router,
        "POST",
        "/admin/login",
        &[(API_HEADER, "1")],
        Some(json!({ "secret": secret })),
    )
    .await
}

/// Parallel wrong secrets from any number of clients are counted together: after
/// `FREE_FAILURES` of them every login is 429 with `Retry-After`, the right secret too,
/// until the window passes; then the right secret works and clears the count.
#[tokio::test]
async fn wrong_logins_lock_the_login_for_everyone() {
    let (admin, router) = console().await;
    let guesses = (0..40).map(|i| {
        let router = router.clone();
        tokio::spawn(async move { try_login(&router, &format!("guess number {i:02}")).await })
    });
    let mut unauthorized = 0;
    let mut locked = 0;
    for g in guesses {
        let r = g.await.unwrap();
        match r.status {
            StatusCode::UNAUTHORIZED => unauthorized += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                locked += 1;
                let wait: u64 = r.headers[header::RETRY_AFTER]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!((1..=FIRST_LOCKOUT.as_secs()).contains(&wait), "{wait}");
                assert!(r.json()["error"].as_str().unwrap().contains("locked"));
            }
            other => panic!("unexpected {other}: {}", r.body),
        }
    }
    assert_eq!(
        unauthorized, FREE_FAILURES,
        "only the free attempts were checked"
    );
    assert_eq!(locked, 40 - FREE_FAILURES);
    let r = try_login(&router, SECRET).await;
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "locked for everyone"
    );
    assert!(r.headers.get(header::SET_COOKIE).is_none());

    // The window passes: the right secret works and clears the count.
    lock(&admin.0.throttle).locked_until = Some(Instant::now());
    log_in(&router).await;
    assert_eq!(lock(&admin.0.throttle).failures, 0);
}

/// The backoff doubles with each wrong secret past the free ones, up to the maximum, and
/// failures are forgotten after a quiet hour.
#[test]
fn the_lockout_doubles_up_to_its_maximum() {
    let start = Instant::now();
    let mut t = LoginThrottle::default();
    for _ in 0..FREE_FAILURES - 1 {
        assert!(t.admit(start).is_ok());
        t.failed(start);
    }
    assert!(t.admit(start).is_ok(), "not locked before the limit");
    t.failed(start);
    assert_eq!(t.admit(start), Err(FIRST_LOCKOUT));
    let mut now = start + FIRST_LOCKOUT;
    assert!(t.admit(now).is_ok(), "the window passed");
    t.failed(now);
    assert_eq!(t.admit(now), Err(FIRST_LOCKOUT * 2));
    for _ in 0..30 {
        now += MAX_LOCKOUT;
        assert!(t.admit(now).is_ok());
        t.failed(now);
    }
    assert_eq!(t.admit(now), Err(MAX_LOCKOUT));
    // A right secret after the window clears everything.
    now += MAX_LOCKOUT;
    assert!(t.admit(now).is_ok());
    t.succeeded();
    t.failed(now);
    assert!(
        t.admit(now).is_ok(),
        "one failure after a success is free again"
    );
    // An hour without failures forgets them.
    for _ in 0..FREE_FAILURES - 2 {
        t.failed(now);
    }
    now += FAILURE_MEMORY + Duration::from_secs(1);
    assert!(t.admit(now).is_ok());
    assert_eq!(t.failures, 0);
}

/// Behind an https public URL the session cookie (and its removal) is `Secure`; on
/// plain http it cannot be.
#[tokio::test]
async fn the_cookie_is_secure_behind_https() {
    for (https, url) in [
        (true, "https://scim.example.com/scim/v2"),
        (false, "http://127.0.0.1:8080/scim/v2"),
    ] {
        let app = App::open(&StoreSpec::Memory, url).await.unwrap();
        let router = routes::<Admin>().with_state(Admin::new(app, SECRET, https));
        let r = try_login(&router, SECRET).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let set = r.headers[header::SET_COOKIE].to_str().unwrap().to_owned();
        assert_eq!(set.contains("; Secure"), https, "{set}");
        let cookie = set.split(';').next().unwrap().to_owned();
        let r = call(
            &router,
            "POST",
            "/admin/logout",
            &[(API_HEADER, "1"), ("cookie", &cookie)],
            None,
        )
        .await;
        let cleared = r.headers[header::SET_COOKIE].to_str().unwrap();
        assert_eq!(cleared.contains("; Secure"), https, "{cleared}");
    }
}

#[tokio::test]
async fn a_token_is_shown_once_and_never_listed() {
    let (admin, router) = console().await;
    let cookie = log_in(&router).await;
    let auth = [(API_HEADER, "1"), ("cookie", cookie.as_str())];

    let r = call(
        &router,
        "POST",
        "/admin/api/tenants",
        &auth,
        Some(json!({"id": "okta-prod", "name": "Okta production"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.json()["scimEnabled"], false, "created switched off");
    assert_eq!(
        r.json()["baseUrl"],
        "http://127.0.0.1:8080/scim/v2/okta-prod"
    );
    let bad = call(
        &router,
        "POST",
        "/admin/api/tenants",
        &auth,
        Some(json!({"id": "okta_prod", "name": "x"})),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    let r = call(
        &router,
        "POST",
        "/admin/api/tenants/okta-prod/tokens",
        &auth,
        Some(json!({"label": "Okta"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
    let token = r.json()["token"].as_str().unwrap().to_owned();
    let tid = r.json()["id"].as_str().unwrap().to_owned();

    // The token opens the tenant once SCIM is on...
    let tenant = TenantId::new("okta-prod").unwrap();
    let bearer = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
    let verifier = admin.app().tenants.verifier();
    let r = call(
        &router,
        "PUT",
        "/admin/api/tenants/okta-prod/scim",
        &auth,
        Some(json!({"enabled": true})),
    )
    .await;
    assert_eq!(r.json()["scimEnabled"], true);
    assert!(verifier.verify(&tenant, Some(&bearer)).await.is_ok());

    // ...and no later answer carries it.
    let list = call(
        &router,
        "GET",
        "/admin/api/tenants/okta-prod/tokens",
        &auth,
        None,
    )
    .await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(!list.body.contains(&token), "{}", list.body);
    assert_eq!(list.json()["tokens"][0]["label"], "Okta");
    assert_eq!(list.json()["tokens"][0]["status"], "active");
    let page = call(&router, "GET", "/admin", &[("cookie", &cookie)], None).await;
    assert!(!page.body.contains(&token));

    // Revoked: refused at once.
    let r = call(
        &router,
        "POST",
        &format!("/admin/api/tenants/okta-prod/tokens/{tid}/revoke"),
        &auth,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(verifier.verify(&tenant, Some(&bearer)).await.is_err());
    let list = call(
        &router,
        "GET",
        "/admin/api/tenants/okta-prod/tokens",
        &auth,
        None,
    )
    .await;
    assert_eq!(list.json()["tokens"][0]["status"], "revoked");
}

#[tokio::test]
async fn policies_need_existing_collections_and_unknown_things_are_404() {
    let (_, router) = console().await;
    let cookie = log_in(&router).await;
    let auth = [(API_HEADER, "1"), ("cookie", cookie.as_str())];
    call(
        &router,
        "POST",
        "/admin/api/tenants",
        &auth,
        Some(json!({"id": "entra", "name": "Entra"})),
    )
    .await;
    let policies = "/admin/api/tenants/entra/policies";
    for (method, path, body, want) in [
        (
            "POST",
            policies,
            Some(json!({"name": "VPN", "collections": ["no-such-group"]})),
            StatusCode::BAD_REQUEST,
        ),
        (
            "POST",
            policies,
            Some(json!({"name": "  ", "collections": []})),
            StatusCode::BAD_REQUEST,
        ),
        (
            "GET",
            "/admin/api/tenants/nope/policies",
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            "GET",
            "/admin/api/tenants/entra/groups?count=x",
            None,
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let r = call(&router, method, path, &auth, body).await;
        assert_eq!(r.status, want, "{method} {path}");
    }
    let r = call(
        &router,
        "GET",
        "/admin/api/tenants/entra/groups",
        &auth,
        None,
    )
    .await;
    assert_eq!(r.json()["total"], 0);
    let r = call(
        &router,
        "POST",
        "/admin/api/tenants/entra/check-login",
        &auth,
        Some(json!({"userName": "ghost@example.com"})),
    )
    .await;
    assert_eq!(r.json()["found"], false);
    assert_eq!(r.json()["allowed"], false);
}

#[test]
fn query_strings_are_decoded() {
    let uri: Uri = "/x?q=Eng%C3%A9+team&start=2&bad=%G1".parse().unwrap();
    let p = query_params(&uri);
    assert_eq!(p.get("q").map(String::as_str), Some("Engé team"));
    assert_eq!(p.get("start").map(String::as_str), Some("2"));
    assert!(!p.contains_key("bad"), "an invalid escape is dropped");
    assert_eq!(paging(&p, 25).unwrap(), (2, 25));
}

mod stores;
