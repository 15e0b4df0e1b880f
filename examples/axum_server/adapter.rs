//! The request log of the axum example. SCIM itself needs no adapter: `ScimService` is a
//! `tower::Service` (cargo feature `tower`) mounted with `Router::nest_service`, which reads
//! the head first, then the body only up to the tenant's limit, and answers SCIM-shaped
//! 413/400 for bodies it cannot take.

use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument as _;

/// Logs one line per request: method, path, status and duration. Never headers (they carry
/// the bearer token) and never the query string (filters carry user names and emails).
///
/// Everything logged while the request runs is inside a span that records the same: method
/// and path (tower-http's `TraceLayer` would record the whole URI, query string included).
pub async fn log_requests(request: Request, next: Next) -> Response {
    if !tracing::enabled!(tracing::Level::INFO) {
        return next.run(request).await;
    }
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let span = tracing::info_span!("request", %method, path = %path);
    let response = next.run(request).instrument(span).await;
    tracing::info!(
        %method,
        path,
        status = response.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    response
}
