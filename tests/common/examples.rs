//! Starting the example servers for integration tests: build them with cargo, start one on
//! a free port, read what it prints, and talk SCIM to it with a tiny blocking client.
//!
//! How the binaries are found: cargo does not hand integration tests the paths of examples
//! (`CARGO_BIN_EXE_*` covers only `[[bin]]` targets), so the first test runs
//! `cargo build --examples` with this test's own features and profile (a no-op when
//! `cargo test` already built them) and takes each executable's path from cargo's JSON
//! messages. That works whatever the target directory, and never runs a stale binary.
//!
//! Every server is killed when its guard drops, so a failing assertion leaves nothing behind.
//! Included by `tests/examples_http.rs` and `tests/admin_browser.rs` with `#[path]`.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The PatchOp message schema (RFC 7644 §3.5.2).
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

// ---- building and starting the examples ---------------------------------------------------

/// The crate features this test was compiled with, passed on to the example build so that
/// both share one build of the library.
pub fn features() -> Vec<&'static str> {
    let mut f = Vec::new();
    if cfg!(feature = "sqlite") {
        f.push("sqlite");
    }
    if cfg!(feature = "postgres") {
        f.push("postgres");
    }
    if cfg!(feature = "testing") {
        f.push("testing");
    }
    f
}

/// The path of example `name`, built on first use.
pub fn example(name: &str) -> PathBuf {
    static BUILT: OnceLock<HashMap<String, PathBuf>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args([
            "build",
            "--examples",
            "--message-format=json-render-diagnostics",
        ])
        .arg("--manifest-path")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"));
        let features = features();
        if !features.is_empty() {
            cmd.arg("--features").arg(features.join(","));
        }
        if !cfg!(debug_assertions) {
            cmd.arg("--release");
        }
        let out = cmd
            .stderr(Stdio::inherit())
            .output()
            .expect("run cargo build");
        assert!(out.status.success(), "cargo build --examples failed");
        let mut map = HashMap::new();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let Ok(msg) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if msg["reason"] == "compiler-artifact" && msg["target"]["kind"][0] == "example" {
                if let Some(exe) = msg["executable"].as_str() {
                    map.insert(
                        msg["target"]["name"].as_str().unwrap().to_owned(),
                        PathBuf::from(exe),
                    );
                }
            }
        }
        map
    });
    built
        .get(name)
        .unwrap_or_else(|| panic!("cargo built no example `{name}`"))
        .clone()
}

/// A fresh, empty working directory for one server.
pub fn scratch_dir(test: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "example-{test}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running example server; killed on drop.
pub struct Server {
    pub child: Option<Child>,
    pub base_url: String,
    pub token: Option<String>,
    /// The admin console's URL and secret, from the `Admin console:` line (axum only).
    pub admin_url: Option<String>,
    pub admin_secret: Option<String>,
    pub log: PathBuf,
    /// Every line the server printed on stdout so far.
    pub printed: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `example` in `dir` with `args` and waits for its `SCIM base URL:` line (and its
    /// `Bearer token:` line when `expect_token`, unless the token is given with `--token`:
    /// the server does not print that one, the test knows it).
    pub fn start(example_name: &str, dir: &Path, args: &[&str], expect_token: bool) -> Server {
        let log = dir.join(format!("{example_name}.stderr.log"));
        let mut child = Command::new(example(example_name))
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .current_dir(dir)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start the example");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let printed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let all = printed.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                all.lock().unwrap().push(line.clone());
                // The test may stop listening once the server is up; keep collecting.
                let _ = tx.send(line);
            }
        });
        let mut server = Server {
            child: Some(child),
            base_url: String::new(),
            token: None,
            admin_url: None,
            admin_secret: None,
            log,
            printed: printed.clone(),
        };
        let given = args
            .iter()
            .position(|a| *a == "--token")
            .and_then(|i| args.get(i + 1));
        if let Some(token) = given {
            server.token = Some((*token).to_owned());
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        while server.base_url.is_empty() || (expect_token && server.token.is_none()) {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "{example_name} printed no base URL/token in time; stderr:\n{}",
                    server.log_text()
                )
            });
            if let Some(url) = line.strip_prefix("SCIM base URL: ") {
                server.base_url = url.to_owned();
            } else if let Some(rest) = line.strip_prefix("Admin console: ") {
                let (url, secret) = rest.split_once(" (secret: ").unwrap();
                server.admin_url = Some(url.to_owned());
                server.admin_secret = Some(secret.strip_suffix(')').unwrap().to_owned());
            } else if let Some(token) = line.strip_prefix("Bearer token: ") {
                server.token = Some(token.to_owned());
            }
        }
        server
    }

    pub fn client(&self) -> Client {
        Client::new(&self.base_url, self.token.as_deref().expect("a token"))
    }

    /// The lines printed on stdout so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.printed.lock().unwrap().clone()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The scheme, host and port of the base URL.
    pub fn origin(&self) -> String {
        let after = self.base_url.find("://").unwrap() + 3;
        let end = self.base_url[after..].find('/').unwrap() + after;
        self.base_url[..end].to_owned()
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn stop_gracefully(mut self) {
        let mut child = self.child.take().unwrap();
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "exit after SIGTERM: {status}");
                return;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the server did not stop within 20 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// ---- a tiny SCIM client over ureq -----------------------------------------------------------

/// A SCIM client for one base URL and bearer token.
pub struct Client {
    pub base: String,
    pub auth: String,
    pub agent: ureq::Agent,
}

pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub content_type: String,
}

impl Client {
    pub fn new(base: &str, token: &str) -> Client {
        Client {
            base: base.to_owned(),
            auth: format!("Bearer {token}"),
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(30))
                .build(),
        }
    }

    pub fn raw(&self, method: &str, path: &str, auth: Option<&str>, body: Option<&[u8]>) -> Reply {
        let mut req = self
            .agent
            .request(method, &format!("{}{path}", self.base))
            .set("Accept", "application/scim+json");
        if let Some(a) = auth {
            req = req.set("Authorization", a);
        }
        let result = match body {
            Some(b) => req
                .set("Content-Type", "application/scim+json; charset=utf-8")
                .send_bytes(b),
            None => req.call(),
        };
        let resp = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: {e}"),
        };
        let status = resp.status();
        let content_type = resp.header("content-type").unwrap_or("").to_owned();
        let mut text = String::new();
        resp.into_reader().read_to_string(&mut text).unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Reply {
            status,
            body,
            content_type,
        }
    }

    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        let bytes = body.map(|b| b.to_string().into_bytes());
        self.raw(method, path, Some(&self.auth.clone()), bytes.as_deref())
    }

    pub fn get(&self, path: &str) -> Value {
        let r = self.call("GET", path, None);
        assert_eq!(r.status, 200, "GET {path}: {}", r.body);
        r.body
    }

    pub fn ok(&self, method: &str, path: &str, body: Value, expect: u16) -> Value {
        let r = self.call(method, path, Some(body));
        assert_eq!(r.status, expect, "{method} {path}: {}", r.body);
        r.body
    }

    /// A PATCH that may answer 200 with the resource or 204 (both allowed by RFC 7644 §3.5.2).
    pub fn patch(&self, path: &str, ops: Value) {
        let r = self.call(
            "PATCH",
            path,
            Some(json!({"schemas": [PATCH_OP], "Operations": ops})),
        );
        assert!(
            r.status == 200 || r.status == 204,
            "PATCH {path}: {} {}",
            r.status,
            r.body
        );
    }
}

/// Percent-encodes a query value the way Okta does (`%20` for spaces).
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
