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
use scimkit::service::{ScimService, SCIM_CONTENT_TYPE};
use scimkit::ScimError;

use common::app::App;
use common::cli::{Cli, Command, USAGE};

/// Serves any request as SCIM: convert, `handle`, convert back.
async fn scim(
    service: web::Data<ScimService>,
    request: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let started = Instant::now();
    // The service says how large a body this request may carry (groups take full member
    // lists, everything else far less); nothing more is buffered.
    let cap = service
        .body_limit(request.method().as_str(), request.path())
        .await;
    let declared: Option<usize> = request
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let response = if declared.is_some_and(|n| n > cap) {
        // Refuse before reading: the client learns at once instead of after uploading.
        error(&too_large(cap))
    } else {
        match payload.to_bytes_limited(cap).await {
            Ok(Ok(body)) => match to_http(&request, body) {
                Ok(r) => service.handle(r).await,
                Err(e) => error(&e),
            },
            Err(_) => error(&too_large(cap)),
            Ok(Err(_)) => error(&ScimError::BadRequest(
                "the request body could not be read".to_owned(),
            )),
        }
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

/// RFC 7644 §3.12: 413 for a body above the advertised maxPayloadSize.
fn too_large(cap: usize) -> ScimError {
    ScimError::PayloadTooLarge(format!("the request body exceeds {cap} bytes"))
}

fn to_http(request: &HttpRequest, body: Bytes) -> Result<http::Request<Bytes>, ScimError> {
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
    builder.body(body).map_err(|_| bad("header set"))
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
            let app = App::open(&cli.store, &url).await?;
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
    let app = App::open(&cli.store, &cli.public_url(addr)).await?;
    tracing::info!(store = %cli.store.describe(), "opened store");
    let token = app.bootstrap(cli).await?;
    app.seed_users(&cli.tenant, cli.seed_users).await?;
    // On actix's runtime (tokio underneath), like the axum example.
    app.spawn_feed_pruning(cli.feed_retention_days);

    let service = web::Data::new(app.service.clone());
    // actix-web stops gracefully on Ctrl-C and SIGTERM by itself.
    let server = HttpServer::new(move || {
        ActixApp::new()
            .app_data(service.clone())
            .default_service(web::to(scim))
    })
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
