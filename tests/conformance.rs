//! The independent conformance tools, run against the axum example server over real HTTP:
//! the PyPI packages `scim2-tester` (every check must pass) and `scim-sanity` (strict probe,
//! zero failures), driven by `scripts/conformance.py`.
//!
//! The tools live in a Python virtual environment that `.ci/run` creates from
//! `scripts/conformance-requirements.txt` and names in `SCIMKIT_CONFORMANCE_PYTHON`. Without
//! it the test says so and passes, unless `SCIMKIT_REQUIRE_CONFORMANCE=1` (set by `.ci/run`),
//! where a missing tool is a failure.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "common/examples.rs"]
mod examples;

use std::path::Path;
use std::process::Command;

use examples::{scratch_dir, Server};

fn required() -> bool {
    std::env::var("SCIMKIT_REQUIRE_CONFORMANCE").is_ok_and(|v| v == "1")
}

fn skip(why: &str) {
    assert!(
        !required(),
        "conformance tools required but unavailable: {why}"
    );
    eprintln!("\n*** SKIPPING the SCIM conformance tools: {why} ***\n");
}

fn run_tools(python: &str, url: &str, token: &str, extra: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/conformance.py");
    let out = Command::new(python)
        .arg(script)
        .arg(url)
        .arg(token)
        .args(extra)
        .output()
        .expect("python runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    assert!(out.status.success(), "conformance failures:\n{text}");
    assert!(text.contains("scim2-tester:") && text.contains("scim-sanity:"));
    text
}

#[test]
fn axum_example_passes_scim2_tester_and_scim_sanity() {
    let Ok(python) = std::env::var("SCIMKIT_CONFORMANCE_PYTHON") else {
        return skip("SCIMKIT_CONFORMANCE_PYTHON is not set (see .ci/run)");
    };
    // The axum example on a free loopback port, in-memory store, its own tenant.
    let dir = scratch_dir("conformance");
    let server = Server::start(
        "axum_server",
        &dir,
        &["--store", "memory", "--tenant", "conformance"],
        true,
    );
    let (url, token) = (
        server.base_url.clone(),
        server.token.clone().unwrap_or_default(),
    );
    run_tools(&python, &url, &token, &[]);
}

/// The same tools against the example with `--governance`: the agent resource types
/// (draft-abbey-scim-agent-extension-00) and the demo Entitlement and Role catalogs. The
/// script (`--governance`) also requires scim-sanity's Agent and AgenticApplication phases
/// to run and pass with nothing skipped, and runs scim2-tester's write checks on every
/// resource type but the read-only catalogs.
#[test]
fn axum_example_with_agents_and_catalogs_passes_the_tools() {
    let Ok(python) = std::env::var("SCIMKIT_CONFORMANCE_PYTHON") else {
        return skip("SCIMKIT_CONFORMANCE_PYTHON is not set (see .ci/run)");
    };
    let dir = scratch_dir("conformance-governance");
    let server = Server::start(
        "axum_server",
        &dir,
        &[
            "--store",
            "memory",
            "--tenant",
            "conformance",
            "--governance",
        ],
        true,
    );
    let (url, token) = (
        server.base_url.clone(),
        server.token.clone().unwrap_or_default(),
    );
    let text = run_tools(&python, &url, &token, &["--governance"]);
    // The agent phases ran (the script fails on any skip or failure in them).
    for phase in ["Phase 4:", "Phase 5:", "Phase 5a:"] {
        assert!(
            text.contains(&format!("scim-sanity agents: {phase} {{'pass': ")),
            "{phase} did not run:\n{text}"
        );
    }
    assert!(
        text.contains("'Agent'") && text.contains("'AgenticApplication'"),
        "{text}"
    );
}
