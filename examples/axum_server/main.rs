//! scimkit's example server on axum: a SCIM 2.0 endpoint Okta or Entra ID can provision
//! into, plus the admin commands of the product flow.
//!
//! ```sh
//! cargo run --example axum_server --features sqlite             # serve (SQLite file scimkit.db)
//! cargo run --example axum_server --features sqlite -- --help   # every option and command
//! cargo run --example axum_server --features sqlite -- groups   # the groups pushed so far
//! ```
//!
//! SCIM is mounted with `Router::nest_service` (`ScimService` is a `tower::Service`, cargo
//! feature `tower`, which this example's build enables); `adapter.rs` holds the request log
//! (path only, never the query string); the admin console at `/admin` (connections, tokens,
//! user collections, a demo of the host's access policies) is `admin/`; the rest (command
//! line, store, tenant bootstrap, admin commands) is shared with the actix-web example in
//! `examples/common/`.

// A binary: `pub` marks what its modules share, nothing is exported.
#![allow(unreachable_pub)]

#[path = "../common/mod.rs"]
mod common;

mod adapter;
mod admin;
mod console_db;

use std::process::ExitCode;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::FromRef;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use scimkit::service::SCIM_CONTENT_TYPE;

use admin::Admin;
use common::app::App;
use common::cli::{Cli, Command, Timeouts, USAGE};

/// The router's state: the admin console's (`State<Admin>`). SCIM is a mounted service and
/// needs none.
#[derive(Clone)]
struct ServerState {
    admin: Admin,
}

impl FromRef<ServerState> for Admin {
    fn from_ref(state: &ServerState) -> Admin {
        state.admin.clone()
    }
}

/// Every route of the server. SCIM is mounted at the public URL's path with
/// `nest_service` (the router strips the prefix; the service serves `/{tenant}/...`), and is
/// also the fallback: a reverse proxy may strip the prefix itself, and any other path gets
/// the service's SCIM 404. The admin console's routes (all under `/admin`) come first.
///
/// Each request, body upload included, must complete within `request_timeout` (tower's
/// timeout layer); past it the answer is a SCIM 503 error, not the layer's empty body. It
/// sits inside the request log, so a timed-out request is logged with its 503.
fn router(app: App, admin: Admin, request_timeout: Duration, public_url: &str) -> Router {
    let timeout = tower::ServiceBuilder::new()
        .layer(HandleErrorLayer::new(
            move |_: tower::BoxError| async move { timed_out(request_timeout) },
        ))
        .timeout(request_timeout);
    let scim = app.service.clone();
    let mount = common::app::url_path(public_url).trim_end_matches('/');
    let router = Router::new()
        .route("/ping", get(ping))
        .merge(admin::routes());
    // axum refuses to nest at the root: a service at `/` is only the fallback.
    let router = if mount.is_empty() {
        router
    } else {
        router.nest_service(mount, scim.clone())
    };
    router
        .fallback_service(scim)
        .layer(timeout)
        .layer(axum::middleware::from_fn(adapter::log_requests))
        .with_state(ServerState { admin })
}

/// The answer to a request that ran out of time: a SCIM error, so that an identity provider
/// reads it like any other (503: it may retry).
fn timed_out(limit: Duration) -> Response {
    let body = serde_json::json!({
        "schemas": [scimkit::error::ERROR_SCHEMA],
        "status": "503",
        "detail": format!(
            "the request did not complete within {} ms (body upload included); retry",
            limit.as_millis()
        ),
    });
    let mut response = Response::new(axum::body::Body::from(body.to_string()));
    *response.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(SCIM_CONTENT_TYPE),
    );
    response
}

/// The scheme, host and port of an absolute URL.
fn origin(url: &str) -> &str {
    let path = common::app::url_path(url);
    url.strip_suffix(path).unwrap_or(url)
}

/// A trivial handler: a health check, and the ceiling `scripts/load.sh` measures SCIM
/// against.
async fn ping() -> &'static str {
    "pong"
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
    common::init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        if cli.command == Command::Serve {
            serve(&cli).await
        } else {
            let app = App::open_with(
                &cli.store,
                &cli.public_url(cli.listen),
                cli.governance,
                cli.cursor_key.as_deref(),
            )
            .await?;
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
    let listener = tokio::net::TcpListener::bind(cli.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", cli.listen))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    let public_url = cli.public_url(addr);
    let mut app = App::open_with(
        &cli.store,
        &public_url,
        cli.governance,
        cli.cursor_key.as_deref(),
    )
    .await?;
    // With --governance the console's policies are the Entitlement catalog (published below,
    // once the console's tables are open), not the demo values.
    app.demo_entitlements = false;
    tracing::info!(store = %cli.store.describe(), "opened store");
    let token = app.bootstrap(cli).await?;
    app.seed_users(&cli.tenant, cli.seed_users).await?;
    app.spawn_feed_pruning(cli.feed_retention_days);

    // The console's password: given (flag or environment, not echoed), or drawn and printed.
    let given = cli
        .admin_secret
        .clone()
        .or_else(|| std::env::var("SCIMKIT_ADMIN_SECRET").ok());
    let shown = match &given {
        Some(s) if s.chars().count() < common::cli::MIN_ADMIN_SECRET_CHARS => {
            return Err(format!(
                "SCIMKIT_ADMIN_SECRET must be at least {} characters",
                common::cli::MIN_ADMIN_SECRET_CHARS
            ));
        }
        Some(_) => "as given".to_owned(),
        None => String::new(),
    };
    let secret = match given {
        Some(s) => s,
        None => Admin::random_secret()?,
    };
    let shown = if shown.is_empty() {
        secret.as_str()
    } else {
        shown.as_str()
    };
    // Behind an https public URL (a TLS-terminating proxy) the session cookie is `Secure`.
    let https = public_url
        .get(..8)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"));
    let db = console_db::ConsoleDb::open(&cli.store).await?;
    let admin = Admin::with_db(app.clone(), &secret, https, db);
    admin.sync_policy_catalogs().await?;
    // Printed first, so that a reader of the two SCIM lines below has this one already.
    println!(
        "Admin console: {}/admin (secret: {shown})",
        origin(&app.service.base_url(&cli.tenant))
    );
    println!("SCIM base URL: {}", app.service.base_url(&cli.tenant));
    if let Some(token) = token {
        println!("Bearer token: {token}");
    }
    tracing::info!(%addr, "listening");
    serve_connections(
        listener,
        router(app, admin, cli.timeouts.request, &public_url),
        cli.timeouts,
    )
    .await;
    tracing::info!("shut down");
    Ok(())
}

/// Serves HTTP/1.1 on `listener` until Ctrl-C or SIGTERM, then lets in-flight requests
/// finish (at most 10 s more). Each connection is served by hyper with a header-read
/// timeout: `axum::serve` does not expose one, so this is its accept loop with hyper's
/// connection builder. hyper starts that timer whenever a connection waits for a request,
/// so it also closes idle keep-alive connections: the shorter of the header-read and idle
/// timeouts applies.
async fn serve_connections(listener: tokio::net::TcpListener, router: Router, timeouts: Timeouts) {
    let head_timeout = timeouts.header_read.min(timeouts.idle);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown_signal());
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // A connection that failed before it was accepted, or the process is
                    // out of file descriptors: wait a little rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(head_timeout)
            .keep_alive(true);
        let connection = builder.serve_connection(
            TokioIo::new(stream),
            TowerToHyperService::new(router.clone()),
        );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // Timeouts and clients going away end up here; nothing to answer any more.
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection closed");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(10)) => {
            tracing::warn!("requests still running 10 s after the shutdown signal; stopping");
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM; axum then stops accepting and lets in-flight requests
/// finish.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
