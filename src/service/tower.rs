//! `ScimService` as a [`tower_service::Service`] (cargo feature `tower`), for hosts on hyper,
//! axum or any tower stack: `Router::nest_service("/scim/v2", service)` mounts it, with the
//! prefix stripped by the router or not.
//!
//! Each request is authorised from its head first ([`ScimService::authorize`]); only then is
//! the body read, up to the tenant's limit for that endpoint
//! ([`Authorized::body_limit`](super::Authorized::body_limit)). A body over the limit is a
//! SCIM 413 (at once when its `Content-Length` says so), a body that cannot be read a SCIM
//! 400; an unauthenticated request is answered without reading its body at all.
//!
//! ```
//! # use std::sync::Arc;
//! use scimkit::{service::ScimService, store::MemoryStore, auth::Tenants};
//!
//! let tenants = Tenants::in_memory();
//! let store = Arc::new(MemoryStore::new());
//! let scim = ScimService::builder("https://app.example.com/scim/v2", store, tenants.store().clone())
//!     .build()?;
//! let app: axum::Router = axum::Router::new()
//!     .route("/health", axum::routing::get(|| async { "ok" }))
//!     .nest_service("/scim/v2", scim);
//! # let _ = app;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};

use super::ScimService;
use crate::error::ScimError;

/// The response body of the tower service.
pub type TowerBody = Full<Bytes>;

impl<B> tower_service::Service<Request<B>> for ScimService
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<TowerBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let service = self.clone();
        Box::pin(async move { Ok(service.serve_streaming(request).await.map(Full::new)) })
    }
}

impl ScimService {
    /// Serves a request whose body is still to be read: authorises the head, then reads the
    /// body within the authorised limit (413 beyond it, 400 for a body that cannot be read). What the `tower`
    /// service does for each request.
    pub async fn serve_streaming<B>(&self, request: Request<B>) -> Response<Bytes>
    where
        B: http_body::Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (head, body) = request.into_parts();
        let authorized = match self.authorize(&head).await {
            Ok(a) => a,
            Err(refusal) => return refusal,
        };
        let limit = authorized.body_limit();
        let too_large = || {
            ScimError::PayloadTooLarge(format!(
                "the request body is larger than {limit} bytes, the limit for this request"
            ))
        };
        let declared = head
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > u64::try_from(limit).unwrap_or(u64::MAX)) {
            return self.refuse_authorized(authorized, too_large()).await;
        }
        let bytes = match Limited::new(body, limit).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.is::<LengthLimitError>() => {
                return self.refuse_authorized(authorized, too_large()).await
            }
            Err(_) => {
                let error = ScimError::InvalidSyntax(
                    "the request body could not be read to its end".to_owned(),
                );
                return self.refuse_authorized(authorized, error).await;
            }
        };
        self.handle_authorized(authorized, Request::from_parts(head, bytes))
            .await
    }
}
