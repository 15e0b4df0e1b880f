//! What both example servers share: the command line, opening the store, bootstrapping the
//! tenant and its token, and the admin commands. Only the HTTP adapters differ.

pub mod app;
pub mod cli;
pub mod manage;

/// Sends `tracing` output to stderr (stdout carries only the base URL and token lines) at
/// the level named by `RUST_LOG` (`info` by default).
pub fn init_logging() {
    let level = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| {
            v.trim()
                .parse::<tracing_subscriber::filter::LevelFilter>()
                .ok()
        })
        .unwrap_or(tracing_subscriber::filter::LevelFilter::INFO);
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
