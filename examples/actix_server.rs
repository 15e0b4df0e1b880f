//! scimkit behind actix-web: the same command line and store as the axum example, with an
//! actix-web adapter.
//!
//! ```sh
//! cargo run --example actix_server --features sqlite -- --listen 127.0.0.1:8081
//! ```
//!
//! actix-web 4 has its own `http` types (from `http` 0.2), so the adapter converts method,
//! URI, headers and status by value; bodies are `bytes::Bytes` on both sides.

// A binary: `pub` marks what its modules share, nothing is exported.
#![allow(unreachable_pub)]

#[path = "common/mod.rs"]
mod common;

use std::process::ExitCode;
use std::time::Instant;

use actix_web::{web, App as ActixApp, HttpRequest, HttpResponse, HttpServer};
use bytes::Bytes;
use scimkit::error::ScimError;
use scimkit::service::{ScimService, SCIM_CONTENT_TYPE};

use common::app::App;
use common::cli::{Cli, Command, Timeouts, USAGE};

/// Serves any request as SCIM: convert the head, authorise it, read the body only then
/// (up to the tenant's limit), `handle_authorized`, convert back.
async fn scim(
    service: web::Data<ScimService>,
    timeouts: web::Data<Timeouts>,
    request: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let started = Instant::now();
    let response = match head(&request) {
        // Body upload included; actix-web has no timeout middleware, so the runtime's
        // timer bounds the whole request.
        Ok(head) => match actix_web::rt::time::timeout(
            timeouts.request,
            serve_scim(&service, head, &request, payload),
        )
        .await
        {
            Ok(response) => response,
            Err(_) => timed_out(timeouts.request),
        },
        Err(e) => error(&e),
    };
    // Never the headers (the bearer token) nor the query (user names in filters).
    tracing::info!(
        method = %request.method(),
        path = request.path(),
        status = response.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    from_http(response)
}

async fn serve_scim(
    service: &ScimService,
    head: http::request::Parts,
    request: &HttpRequest,
    payload: web::Payload,
) -> http::Response<Bytes> {
    // Path, tenant and bearer token first: an unauthenticated client gets its 401 (or 404)
    // without a byte of its body being read.
    let authorized = match service.authorize(&head).await {
        Ok(a) => a,
        Err(refusal) => return refusal,
    };
    // The tenant's limit for this request (groups take full member lists, everything else
    // far less); nothing more is buffered.
    let cap = authorized.body_limit();
    let declared: Option<usize> = request
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    if declared.is_some_and(|n| n > cap) {
        // Refuse before reading: the client learns at once instead of after uploading.
        return error(&too_large(cap));
    }
    match payload.to_bytes_limited(cap).await {
        Ok(Ok(body)) => {
            service
                .handle_authorized(authorized, http::Request::from_parts(head, body))
                .await
        }
        Err(_) => error(&too_large(cap)),
        Ok(Err(_)) => error(&ScimError::BadRequest(
            "the request body could not be read".to_owned(),
        )),
    }
}

/// The answer to a request that ran out of time: a SCIM error, so that an identity provider
/// reads it like any other (503: it may retry).
fn timed_out(limit: std::time::Duration) -> http::Response<Bytes> {
    let body = serde_json::json!({
        "schemas": [scimkit::error::ERROR_SCHEMA],
        "status": "503",
        "detail": format!(
            "the request did not complete within {} ms (body upload included); retry",
            limit.as_millis()
        ),
    });
    let mut response = http::Response::new(Bytes::from(body.to_string()));
    *response.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(SCIM_CONTENT_TYPE),
    );
    response
}

/// RFC 7644 §3.12: 413 for a body above the advertised maxPayloadSize.
fn too_large(cap: usize) -> ScimError {
    ScimError::PayloadTooLarge(format!("the request body exceeds {cap} bytes"))
}

/// The request head as `http` 1 types (actix-web 4 has its own, from `http` 0.2).
fn head(request: &HttpRequest) -> Result<http::request::Parts, ScimError> {
    let bad = |what: &str| ScimError::BadRequest(format!("the request {what} is not valid"));
    let mut builder = http::Request::builder()
        .method(
            http::Method::from_bytes(request.method().as_str().as_bytes())
                .map_err(|_| bad("method"))?,
        )
        .uri(
            request
                .uri()
                .to_string()
                .parse::<http::Uri>()
                .map_err(|_| bad("URI"))?,
        );
    for (name, value) in request.headers() {
        builder = builder.header(name.as_str(), value.as_bytes());
    }
    let request = builder.body(()).map_err(|_| bad("header set"))?;
    Ok(request.into_parts().0)
}

fn from_http(response: http::Response<Bytes>) -> HttpResponse {
    let (parts, body) = response.into_parts();
    let status = actix_web::http::StatusCode::from_u16(parts.status.as_u16())
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut builder = HttpResponse::build(status);
    for (name, value) in &parts.headers {
        builder.append_header((name.as_str(), value.as_bytes()));
    }
    builder.body(body)
}

fn error(e: &ScimError) -> http::Response<Bytes> {
    let mut response = http::Response::new(Bytes::from(e.to_body().to_string()));
    *response.status_mut() = e.status();
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(SCIM_CONTENT_TYPE),
    );
    response
}

fn main() -> ExitCode {
    let cli = match Cli::parse(std::env::args().skip(1)) {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if cli.command == Command::Help {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    if cli.admin_secret.is_some() {
        eprintln!(
            "error: --admin-secret: the admin console is in the axum example only \
             (cargo run --example axum_server)\n\n{USAGE}"
        );
        return ExitCode::from(2);
    }
    common::init_logging();
    let result = actix_web::rt::System::new().block_on(async {
        if cli.command == Command::Serve {
            serve(&cli).await
        } else {
            let url = cli.public_url(cli.listen);
            let app =
                App::open_with(&cli.store, &url, cli.governance, cli.cursor_key.as_deref()).await?;
            common::manage::run(&app, &cli).await
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(cli: &Cli) -> Result<(), String> {
    // Bind before building the service: with port 0 the base URL needs the port chosen.
    let listener = std::net::TcpListener::bind(cli.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", cli.listen))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    let app = App::open_with(
        &cli.store,
        &cli.public_url(addr),
        cli.governance,
        cli.cursor_key.as_deref(),
    )
    .await?;
    tracing::info!(store = %cli.store.describe(), "opened store");
    let token = app.bootstrap(cli).await?;
    app.seed_users(&cli.tenant, cli.seed_users).await?;
    // On actix's runtime (tokio underneath), like the axum example.
    app.spawn_feed_pruning(cli.feed_retention_days);

    let service = web::Data::new(app.service.clone());
    let timeouts = cli.timeouts;
    let request_timeouts = web::Data::new(timeouts);
    // actix-web stops gracefully on Ctrl-C and SIGTERM by itself.
    let server = HttpServer::new(move || {
        ActixApp::new()
            .app_data(service.clone())
            .app_data(request_timeouts.clone())
            .default_service(web::to(scim))
    })
    // A request head must arrive within this (408 and close otherwise).
    .client_request_timeout(timeouts.header_read)
    // An idle keep-alive connection is closed after this.
    .keep_alive(timeouts.idle)
    // After the answer, a client gets this long to close its side before the server does.
    .client_disconnect_timeout(std::time::Duration::from_secs(1))
    .shutdown_timeout(10)
    .listen(listener)
    .map_err(|e| format!("cannot serve on {addr}: {e}"))?;

    println!("SCIM base URL: {}", app.service.base_url(&cli.tenant));
    if let Some(token) = token {
        println!("Bearer token: {token}");
    }
    tracing::info!(%addr, "listening");
    server
        .run()
        .await
        .map_err(|e| format!("server error: {e}"))?;
    tracing::info!("shut down");
    Ok(())
}
