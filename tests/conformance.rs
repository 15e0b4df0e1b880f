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

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

/// The example binary `cargo test` built next to this test binary.
fn example_binary(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    // target/<profile>/deps/conformance-<hash> -> target/<profile>/examples/<name>
    let profile_dir = exe.parent()?.parent()?;
    let path = profile_dir.join("examples").join(name);
    path.exists().then_some(path)
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the example on a free loopback port with an in-memory store and reads the base
/// URL and token it prints.
fn start(binary: &Path, extra: &[&str]) -> (Server, String, String) {
    let mut child = Command::new(binary)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--store",
            "memory",
            "--tenant",
            "conformance",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the example server starts");
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut url = None;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(u) = line.strip_prefix("SCIM base URL: ") {
                url = Some(u.trim().to_owned());
            } else if let Some(t) = line.strip_prefix("Bearer token: ") {
                let _ = tx.send((url.clone().unwrap_or_default(), t.trim().to_owned()));
            }
        }
    });
    let (url, token) = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the server prints its base URL and token");
    // Wait until it answers.
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "the server never listened on {addr}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (server, url, token)
}

fn run_tools(python: &str, url: &str, token: &str) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/conformance.py");
    let out = Command::new(python)
        .arg(script)
        .arg(url)
        .arg(token)
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
}

#[test]
fn axum_example_passes_scim2_tester_and_scim_sanity() {
    let Ok(python) = std::env::var("SCIMKIT_CONFORMANCE_PYTHON") else {
        return skip("SCIMKIT_CONFORMANCE_PYTHON is not set (see .ci/run)");
    };
    let Some(binary) = example_binary("axum_server") else {
        return skip("the axum_server example was not built with this test");
    };
    let (_server, url, token) = start(&binary, &[]);
    run_tools(&python, &url, &token);
}
