//! `ScimService` as a `tower::Service` (feature `tower`), mounted in axum with and without
//! the router stripping the mount path; the body is read only for an authorised request and
//! only up to its limit.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use common::Harness;
use http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::{json, Value};
use tower::ServiceExt as _;

async fn send(app: axum::Router, request: Request<Body>) -> (StatusCode, http::HeaderMap, Value) {
    let r = app.oneshot(request).await.unwrap();
    let (parts, body) = r.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let v = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (parts.status, parts.headers, v)
}

/// A body that records whether anyone read it, and then yields `len` bytes.
struct Watched {
    read: Arc<AtomicBool>,
    left: usize,
}

impl http_body::Body for Watched {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        self.read.store(true, Ordering::SeqCst);
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(64 * 1024);
        self.left -= n;
        Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from(vec![b' '; n])))))
    }
}

#[tokio::test]
async fn mounted_with_nest_service_or_as_fallback() {
    let h = Harness::new().await;
    let bearer = format!("Bearer {}", h.token);
    let nested = axum::Router::new().nest_service("/scim/v2", h.service.clone());
    let whole = axum::Router::new().fallback_service(h.service.clone());
    for app in [nested.clone(), whole] {
        let body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": format!("t{}@example.com", uuid::Uuid::new_v4()),
        });
        let (status, headers, v) = send(
            app.clone(),
            Request::post("/scim/v2/acme/Users")
                .header("Authorization", &bearer)
                .header("Content-Type", "application/scim+json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await;
        assert_eq!(status, 201, "{v}");
        // Location is the public URL, whatever the router did to the path.
        let location = headers["location"].to_str().unwrap();
        assert!(location.starts_with("https://app.example.com/scim/v2/acme/Users/"));
        let (status, _, v) = send(
            app,
            Request::get("/scim/v2/acme/Users?count=1")
                .header("Authorization", &bearer)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{v}");
    }
    // A path that names no tenant is a 404 that says which paths are served.
    let (status, _, v) = send(
        nested,
        Request::get("/scim/v2/").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, 404, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("/scim/v2/{tenant}/{endpoint}"),
        "{v}"
    );
}

#[tokio::test]
async fn bodies_are_read_only_when_authorised_and_within_the_limit() {
    let h = Harness::new().await;
    let bearer = format!("Bearer {}", h.token);
    let app = axum::Router::new().nest_service("/scim/v2", h.service.clone());
    let watched = |len: usize| {
        let read = Arc::new(AtomicBool::new(false));
        let body = Body::new(Watched {
            read: Arc::clone(&read),
            left: len,
        });
        (read, body)
    };

    // Unauthenticated: 401 with the challenge, the body untouched.
    let (read, body) = watched(10 << 20);
    let (status, headers, v) = send(
        app.clone(),
        Request::post("/scim/v2/acme/Users").body(body).unwrap(),
    )
    .await;
    assert_eq!(status, 401, "{v}");
    assert!(headers.contains_key("www-authenticate"));
    assert!(!read.load(Ordering::SeqCst));

    // A declared length over the limit: 413 before reading.
    let (read, body) = watched(2 << 20);
    let (status, _, v) = send(
        app.clone(),
        Request::post("/scim/v2/acme/Users")
            .header("Authorization", &bearer)
            .header("Content-Length", (2u64 << 20).to_string())
            .body(body)
            .unwrap(),
    )
    .await;
    assert_eq!(status, 413, "{v}");
    assert_eq!(v["status"], "413");
    assert!(!read.load(Ordering::SeqCst));

    // A streamed body without a length, over the limit: 413 once the limit is passed.
    let (read, body) = watched(2 << 20);
    let (status, _, v) = send(
        app.clone(),
        Request::post("/scim/v2/acme/Users")
            .header("Authorization", &bearer)
            .body(body)
            .unwrap(),
    )
    .await;
    assert_eq!(status, 413, "{v}");
    assert!(read.load(Ordering::SeqCst));

    // Groups take their larger membership limit: 2 MiB of whitespace is read, then it is
    // not JSON.
    let (_, body) = watched(2 << 20);
    let (status, _, v) = send(
        app,
        Request::post("/scim/v2/acme/Groups")
            .header("Authorization", &bearer)
            .header("Content-Type", "application/scim+json")
            .body(body)
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400, "{v}");
}

#[test]
fn errors_render_as_the_service_renders_them() {
    let r = scimkit::error::ScimError::PayloadTooLarge("too big".to_owned()).to_response();
    assert_eq!(r.status(), 413);
    let v: Value = serde_json::from_slice(r.body()).unwrap();
    assert_eq!(
        v["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:Error"
    );
    assert_eq!(v["detail"], "too big");
    let r = scimkit::auth::unauthorized().to_response();
    assert!(r.headers().contains_key("www-authenticate"));
    let _ = Bytes::new();
}
