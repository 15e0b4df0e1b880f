//! The axum adapter: the request head is authorised first (`ScimService::authorize`), the
//! body is read only then and only up to the tenant's limit, `handle_authorized` answers,
//! and the `http::Response<Bytes>` goes back as an axum response. This is all an axum host
//! needs to serve SCIM.

use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use scimkit::service::{ScimService, SCIM_CONTENT_TYPE};
use scimkit::ScimError;

/// Serves every request that reaches it as SCIM (mount it as the router's fallback).
pub async fn scim(State(service): State<ScimService>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    // Path, tenant and bearer token first: an unauthenticated client gets its 401 (or 404)
    // without a byte of its body being read.
    let authorized = match service.authorize(&parts).await {
        Ok(a) => a,
        Err(refusal) => return refusal.map(Body::from),
    };
    // The tenant's limit for this request (groups take full member lists, everything else
    // far less); nothing more is buffered.
    let cap = authorized.body_limit();
    if declared_length(&parts.headers).is_some_and(|n| n > cap) {
        // Refuse before reading: the client learns at once instead of after uploading.
        return error_response(&too_large(cap));
    }
    let bytes = match axum::body::to_bytes(body, cap).await {
        Ok(b) => b,
        Err(e) => {
            let over_cap = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            let error = if over_cap {
                too_large(cap)
            } else {
                ScimError::BadRequest("the request body could not be read".to_owned())
            };
            return error_response(&error);
        }
    };
    let response = service
        .handle_authorized(authorized, Request::from_parts(parts, bytes))
        .await;
    response.map(Body::from)
}

/// RFC 7644 §3.12: 413 for a body above the advertised maxPayloadSize.
fn too_large(cap: usize) -> ScimError {
    ScimError::PayloadTooLarge(format!("the request body exceeds {cap} bytes"))
}

/// The `Content-Length` the client declared, if any and readable.
fn declared_length(headers: &http::HeaderMap) -> Option<usize> {
    headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn error_response(error: &ScimError) -> Response {
    let mut response = Response::new(Body::from(error.to_body().to_string()));
    *response.status_mut() = error.status();
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(SCIM_CONTENT_TYPE),
    );
    response
}

/// Logs one line per request: method, path, status and duration. Never headers (they carry
/// the bearer token) and never the query string (filters carry user names and emails).
pub async fn log_requests(request: Request, next: Next) -> Response {
    if !tracing::enabled!(tracing::Level::INFO) {
        return next.run(request).await;
    }
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    tracing::info!(
        %method,
        path,
        status = response.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    response
}
