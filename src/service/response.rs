//! Building HTTP responses.

use bytes::Bytes;
use http::header::{
    HeaderValue, ALLOW, CONTENT_TYPE, ETAG, LOCATION, RETRY_AFTER, WWW_AUTHENTICATE,
};
use http::{Response, StatusCode};
use serde_json::Value;

use crate::auth::WWW_AUTHENTICATE as BEARER_CHALLENGE;
use crate::error::ScimError;

/// The media type of every SCIM response body (RFC 7644 §3.1, §8.1).
pub const SCIM_CONTENT_TYPE: &str = "application/scim+json; charset=utf-8";

fn builder(status: StatusCode) -> http::response::Builder {
    Response::builder().status(status)
}

fn finish(b: http::response::Builder, body: Bytes) -> Response<Bytes> {
    // Every header we set is built from validated values, so this cannot fail; fall back to
    // a bare 500 rather than panic if it ever did.
    b.body(body).unwrap_or_else(|_| {
        let mut r = Response::new(Bytes::new());
        *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}

/// A JSON response with the SCIM content type.
pub(crate) fn json(status: StatusCode, body: &Value) -> Response<Bytes> {
    serialized(status, body)
}

/// A response with the SCIM content type and any serialisable body.
pub(crate) fn serialized<T: serde::Serialize>(status: StatusCode, body: &T) -> Response<Bytes> {
    // Most SCIM answers are a few hundred bytes to a few KiB: start big enough to avoid the
    // first reallocations.
    let mut bytes = Vec::with_capacity(1024);
    if serde_json::to_writer(&mut bytes, body).is_err() {
        bytes.clear();
    }
    finish(
        builder(status).header(CONTENT_TYPE, SCIM_CONTENT_TYPE),
        Bytes::from(bytes),
    )
}

/// A resource response with `ETag` and optionally `Location` (RFC 7644 §3.3, §3.14).
pub(crate) fn resource(
    status: StatusCode,
    body: &impl serde::Serialize,
    etag: Option<&str>,
    location: Option<&str>,
) -> Response<Bytes> {
    let mut r = serialized(status, body);
    if let Some(v) = etag.and_then(|e| HeaderValue::from_str(e).ok()) {
        r.headers_mut().insert(ETAG, v);
    }
    if let Some(v) = location.and_then(|l| HeaderValue::from_str(l).ok()) {
        r.headers_mut().insert(LOCATION, v);
    }
    r
}

/// An empty response (204, 304) with an optional `ETag`.
pub(crate) fn empty(status: StatusCode, etag: Option<&str>) -> Response<Bytes> {
    let mut r = finish(builder(status), Bytes::new());
    if let Some(v) = etag.and_then(|e| HeaderValue::from_str(e).ok()) {
        r.headers_mut().insert(ETAG, v);
    }
    r
}

/// The RFC 7644 §3.12 error response, with `WWW-Authenticate` on 401 and `Allow` on 405.
impl ScimError {
    /// The RFC 7644 §3.12 error response for this error: its status, a SCIM `Error` body,
    /// `WWW-Authenticate` on a 401, `Allow` on a 405, `Retry-After` on a 429; what the
    /// service itself answers. For hosts that answer on the service's behalf (a body they
    /// could not read, a timeout of their own).
    pub fn to_response(&self) -> Response<Bytes> {
        error(self)
    }
}

pub(crate) fn error(err: &ScimError) -> Response<Bytes> {
    let mut r = json(err.status(), &err.to_body());
    match err {
        ScimError::Unauthorized(_) => {
            r.headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static(BEARER_CHALLENGE));
        }
        ScimError::MethodNotAllowed { allow, .. } => {
            let list = allow
                .iter()
                .map(http::Method::as_str)
                .collect::<Vec<_>>()
                .join(", ");
            if let Ok(v) = HeaderValue::from_str(&list) {
                r.headers_mut().insert(ALLOW, v);
            }
        }
        ScimError::TooManyRequests { retry_after, .. } => {
            r.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(*retry_after));
        }
        _ => {}
    }
    r
}
