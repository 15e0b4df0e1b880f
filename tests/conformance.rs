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

use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

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

/// Logs in to the example's admin console (the secret it printed) and creates one access
/// policy per name for `tenant`, with no collections; returns the catalog values
/// (`policy-<id>`) the console reports for them.
fn create_policies(server: &Server, tenant: &str, names: &[&str]) -> Vec<String> {
    let url = server.admin_url.clone().expect("an Admin console: line");
    let secret = server.admin_secret.clone().expect("the console's secret");
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .build();
    let login = agent
        .post(&format!("{url}/login"))
        .set("X-Scimkit-Admin", "1")
        .set("Content-Type", "application/json")
        .send_string(&json!({ "secret": secret }).to_string())
        .expect("console login");
    assert_eq!(login.status(), 204);
    let cookie = login
        .header("set-cookie")
        .expect("a session cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    names
        .iter()
        .map(|name| {
            let resp = agent
                .post(&format!("{url}/api/tenants/{tenant}/policies"))
                .set("X-Scimkit-Admin", "1")
                .set("Cookie", &cookie)
                .set("Content-Type", "application/json")
                .send_string(&json!({ "name": name, "collections": [] }).to_string())
                .unwrap_or_else(|e| panic!("creating policy {name}: {e}"));
            assert_eq!(resp.status(), 201, "creating policy {name}");
            let mut text = String::new();
            resp.into_reader().read_to_string(&mut text).unwrap();
            let body: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(body["name"], *name, "{body}");
            body["value"].as_str().expect("a catalog value").to_owned()
        })
        .collect()
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
/// (draft-abbey-scim-agent-extension-00) and the Entitlement and Role catalogs. The
/// example's Entitlement catalog is its admin console's access policies, empty until an
/// admin creates one, so the test first creates three policies through the console's HTTP
/// API; the Role catalog is the demo roles. The script (`--governance`) also requires
/// scim-sanity's Agent and AgenticApplication phases to run and pass with nothing skipped,
/// runs scim2-tester's write checks on every resource type but the read-only catalogs, and
/// has scim2-client read every catalog value (list and by id) and validate it against the
/// published schema, failing on an empty catalog.
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
    let names = ["VPN", "Billing", "Support desk"];
    let values = create_policies(&server, "conformance", &names);
    let text = run_tools(&python, &url, &token, &["--governance"]);
    // The tools read the console's policies as the Entitlement catalog, and nothing else.
    let listed: Vec<String> = values
        .iter()
        .zip(names)
        .map(|(value, name)| format!("'{value}={name}'"))
        .collect();
    assert!(
        text.contains(&format!(
            "catalog Entitlement: 3 values read and validated [{}]",
            listed.join(", ")
        )),
        "{text}"
    );
    assert!(
        text.contains("catalog Role: 2 values read and validated"),
        "{text}"
    );
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
