//! scimkit's example server on axum: a SCIM 2.0 endpoint Okta or Entra ID can provision
//! into, plus the admin commands of the product flow.
//!
//! ```sh
//! cargo run --example axum_server --features sqlite             # serve (SQLite file scimkit.db)
//! cargo run --example axum_server --features sqlite -- --help   # every option and command
//! cargo run --example axum_server --features sqlite -- groups   # the groups pushed so far
//! ```
//!
//! The SCIM part is `adapter.rs`; the admin console at `/admin` (connections, tokens, user
//! collections, a demo of the host's access policies) is `admin.rs`; the rest (command line,
//! store, tenant bootstrap, admin commands) is shared with the actix-web example in
//! `examples/common/`.

// A binary: `pub` marks what its modules share, nothing is exported.
#![allow(unreachable_pub)]

#[path = "../common/mod.rs"]
mod common;

mod adapter;
mod admin;

use std::process::ExitCode;

use axum::extract::FromRef;
use axum::routing::get;
use axum::Router;
use scimkit::service::ScimService;

use admin::Admin;
use common::app::App;
use common::cli::{Cli, Command, USAGE};

/// The router's state. Handlers extract what they need from it (`State<ScimService>` for
/// the SCIM adapter, `State<Admin>` for the admin console).
#[derive(Clone)]
struct ServerState {
    app: App,
    admin: Admin,
}

impl FromRef<ServerState> for ScimService {
    fn from_ref(state: &ServerState) -> ScimService {
        state.app.service.clone()
    }
}

impl FromRef<ServerState> for Admin {
    fn from_ref(state: &ServerState) -> Admin {
        state.admin.clone()
    }
}

/// Every route of the server. SCIM is the fallback: the service itself answers 404 (as a
/// SCIM error) for a path outside its mount point, so no SCIM route needs listing here. The
/// admin console's routes (all under `/admin`) come before the fallback.
fn router(app: App, admin: Admin) -> Router {
    Router::new()
        .route("/ping", get(ping))
        .merge(admin::routes())
        .fallback(adapter::scim)
        .layer(axum::middleware::from_fn(adapter::log_requests))
        .with_state(ServerState { app, admin })
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
            let app = App::open(&cli.store, &cli.public_url(cli.listen)).await?;
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
    let app = App::open(&cli.store, &cli.public_url(addr)).await?;
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
    let admin = Admin::new(app.clone(), &secret);
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
    axum::serve(listener, router(app, admin))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| format!("server error: {e}"))?;
    tracing::info!("shut down");
    Ok(())
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
