//! The admin console of the axum example in a real headless browser: Chromium driven by
//! chromedriver over the W3C WebDriver protocol (plain HTTP, with `ureq`).
//!
//! The whole product flow: log in, create an IdP connection, switch SCIM on, generate a
//! token and copy it with the page's button, push a user and a group over SCIM with it, see
//! the collection and its member appear without a reload, attach the collection to a policy,
//! see the policy apply in "check login", deactivate the user over SCIM and see the login
//! refused. Screenshots of each page, wide (1280 px) and narrow, go to
//! `target/admin-screenshots/`.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (Debian's `chromium` and
//! `chromium-driver`; `SCIMKIT_CHROMIUM` / `SCIMKIT_CHROMEDRIVER` name others). Without them
//! the test says so and passes, unless `SCIMKIT_REQUIRE_BROWSER=1` (CI sets it), then it fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::string_slice
)]

#[path = "common/examples.rs"]
mod examples;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use examples::{scratch_dir, Client, Server};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// The W3C WebDriver key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// WebDriver key codes.
const TAB: &str = "\u{E004}";
const ENTER: &str = "\u{E007}";
/// The admin secret the test starts the server with (so that a restart keeps it).
const ADMIN_SECRET: &str = "browser-test-admin-secret-0123456789";

// ---- a minimal WebDriver client ------------------------------------------------------------

/// The browser's paths, or `None` (after saying so) when the test should be skipped.
fn browser_paths() -> Option<(PathBuf, PathBuf)> {
    let chromium = PathBuf::from(
        std::env::var("SCIMKIT_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned()),
    );
    let driver = PathBuf::from(
        std::env::var("SCIMKIT_CHROMEDRIVER")
            .unwrap_or_else(|_| "/usr/bin/chromedriver".to_owned()),
    );
    if chromium.is_file() && driver.is_file() {
        return Some((chromium, driver));
    }
    let msg = format!(
        "admin_browser: {} or {} is missing (apt-get install chromium chromium-driver)",
        chromium.display(),
        driver.display()
    );
    if std::env::var("SCIMKIT_REQUIRE_BROWSER").is_ok_and(|v| v == "1") {
        panic!("{msg}, and SCIMKIT_REQUIRE_BROWSER=1");
    }
    eprintln!("\n!!!!!!!! SKIPPED: {msg} !!!!!!!!\n");
    None
}

/// A chromedriver process; killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser session.
struct Browser {
    session: String,
    agent: ureq::Agent,
    shots: PathBuf,
    // Dropped after the session is deleted.
    _driver: Driver,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    fn start(chromium: &Path, driver_path: &Path, profile: &Path) -> Browser {
        let port = free_port();
        let child = Command::new(driver_path)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(60))
            .build();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status = format!("{}/status", driver.url);
            let ready = agent.get(&status).call().is_ok_and(|r| {
                r.into_string()
                    .ok()
                    .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                    .is_some_and(|v| v["value"]["ready"] == true)
            });
            if ready {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium.to_str().unwrap(),
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                    "--disable-gpu", "--window-size=1280,1000", "--hide-scrollbars",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }
        }}});
        let created = wd(
            &agent,
            "POST",
            &format!("{}/session", driver.url),
            Some(&caps),
        )
        .unwrap_or_else(|(s, v)| panic!("cannot start a browser session: {s} {v}"));
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_owned();
        let shots = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .unwrap()
            .join("admin-screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        let session = format!("{}/session/{session}", driver.url);
        Browser {
            session,
            agent,
            shots,
            _driver: driver,
        }
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.session);
        match wd(&self.agent, method, &url, body.as_ref()) {
            Ok(v) => v["value"].clone(),
            Err((status, v)) => panic!("WebDriver {method} {path}: {status} {v}"),
        }
    }

    fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    fn resize(&self, width: u32, height: u32) {
        self.cmd(
            "POST",
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        );
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page.
    fn js(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// Runs an async `script` whose last argument is the callback to call with the result.
    fn js_async(&self, script: &str) -> Value {
        self.cmd(
            "POST",
            "/execute/async",
            Some(json!({"script": script, "args": []})),
        )
    }

    /// The first element matching `css` now, if any.
    fn find(&self, css: &str) -> Option<String> {
        let url = format!("{}/element", self.session);
        let body = json!({"using": "css selector", "value": css});
        match wd(&self.agent, "POST", &url, Some(&body)) {
            Ok(v) => Some(
                v["value"][ELEMENT]
                    .as_str()
                    .unwrap_or_else(|| panic!("{v}"))
                    .to_owned(),
            ),
            Err((404, _)) => None,
            Err((status, v)) => panic!("find {css}: {status} {v}"),
        }
    }

    /// Waits until `check` answers `Some`, polling; on timeout saves a screenshot and fails
    /// with `what`.
    fn wait<T>(&self, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(v) = check() {
                return v;
            }
            if Instant::now() > deadline {
                self.screenshot("failure");
                let text = self.js("return document.body.innerText", json!([]));
                panic!(
                    "timed out waiting for {what}; the page says:\n{}",
                    text.as_str().unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for an element matching `css` and returns it.
    fn element(&self, css: &str) -> String {
        self.wait(css, || self.find(css))
    }

    /// The text of every element matching `css` (empty when none).
    fn texts(&self, css: &str) -> Vec<String> {
        let v = self.js(
            "return [...document.querySelectorAll(arguments[0])].map(e => e.innerText.trim())",
            json!([css]),
        );
        serde_json::from_value(v).unwrap()
    }

    /// Waits until an element matching `css` has a text containing `needle`.
    fn wait_text(&self, css: &str, needle: &str) {
        self.wait(&format!("{css} containing {needle:?}"), || {
            self.texts(css)
                .iter()
                .any(|t| t.contains(needle))
                .then_some(())
        });
    }

    fn click(&self, css: &str) {
        let e = self.element(css);
        self.cmd("POST", &format!("/element/{e}/click"), Some(json!({})));
    }

    fn type_into(&self, css: &str, text: &str) {
        let e = self.element(css);
        self.cmd("POST", &format!("/element/{e}/clear"), Some(json!({})));
        self.cmd(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({ "text": text })),
        );
    }

    /// Empties a text field the way a user does (select all, delete), so that the page sees
    /// an `input` event.
    fn clear_by_keys(&self, css: &str) {
        let e = self.element(css);
        self.cmd(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({ "text": "\u{E009}a\u{E000}\u{E003}" })),
        );
    }

    fn value(&self, css: &str) -> String {
        let e = self.element(css);
        self.cmd("GET", &format!("/element/{e}/property/value"), None)
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn source(&self) -> String {
        self.cmd("GET", "/source", None)
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Presses and releases one key (a WebDriver key code such as [`TAB`]) where the focus is.
    fn press(&self, key: &str) {
        self.cmd(
            "POST",
            "/actions",
            Some(
                json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
                    {"type": "keyDown", "value": key}, {"type": "keyUp", "value": key}
                ]}]}),
            ),
        );
    }

    /// Whether the focused element matches `css`.
    fn focused(&self, css: &str) -> bool {
        self.js(
            "return !!document.activeElement && document.activeElement.matches(arguments[0])",
            json!([css]),
        ) == Value::Bool(true)
    }

    /// Presses Tab until the focused element matches `css` (at most 80 times): what a
    /// keyboard user does to reach it.
    fn tab_to(&self, css: &str) {
        for _ in 0..80 {
            if self.focused(css) {
                return;
            }
            self.press(TAB);
        }
        self.screenshot("failure");
        let at = self.js(
            "return document.activeElement ? document.activeElement.outerHTML : 'nothing'",
            json!([]),
        );
        panic!("Tab never reached {css}; the focus is on {at}");
    }

    /// The text of the open `confirm` dialog, waiting for it.
    fn dialog_text(&self) -> String {
        let url = format!("{}/alert/text", self.session);
        self.wait("a dialog", || match wd(&self.agent, "GET", &url, None) {
            Ok(v) => Some(v["value"].as_str().unwrap_or_default().to_owned()),
            Err(_) => None,
        })
    }

    /// Answers the open dialog: OK (`accept`) or Cancel.
    fn answer_dialog(&self, accept: bool) {
        let what = if accept { "accept" } else { "dismiss" };
        self.cmd("POST", &format!("/alert/{what}"), Some(json!({})));
    }

    /// A Chrome DevTools Protocol command through chromedriver.
    fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.cmd(
            "POST",
            "/goog/cdp/execute",
            Some(json!({"cmd": cmd, "params": params})),
        )
    }

    /// Saves a PNG of the viewport as `name`.png.
    fn screenshot(&self, name: &str) {
        let b64 = self.cmd("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.agent.delete(&self.session).call();
    }
}

/// One WebDriver call: JSON in, JSON out; an error status comes back with its body.
fn wd(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    body: Option<&Value>,
) -> Result<Value, (u16, Value)> {
    let req = agent.request(method, url);
    let result = match body {
        Some(b) => req
            .set("Content-Type", "application/json")
            .send_string(&b.to_string()),
        None => req.call(),
    };
    let parse = |r: ureq::Response| -> Value {
        let mut text = String::new();
        r.into_reader().read_to_string(&mut text).unwrap();
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    match result {
        Ok(r) => Ok(parse(r)),
        Err(ureq::Error::Status(status, r)) => Err((status, parse(r))),
        Err(e) => panic!("WebDriver {method} {url}: {e}"),
    }
}

// ---- plain HTTP checks -----------------------------------------------------------------------

/// Status and body of a request to the admin console, with optional headers.
fn http(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&str>) -> (u16, String) {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .build();
    let mut req = agent.request(method, url);
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let result = match body {
        Some(b) => req.send_string(b),
        None => req.call(),
    };
    let resp = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    let status = resp.status();
    (status, resp.into_string().unwrap())
}

// ---- the test --------------------------------------------------------------------------------

/// The server's store: a SQLite file when the feature is on (so a restart keeps the policies),
/// otherwise memory.
fn store_args(dir: &Path) -> Vec<String> {
    if cfg!(feature = "sqlite") {
        vec![
            "--store".to_owned(),
            format!("sqlite:{}", dir.join("admin.db").display()),
        ]
    } else {
        vec!["--store".to_owned(), "memory".to_owned()]
    }
}

fn start_server(dir: &Path, listen: Option<&str>, expect_token: bool) -> Server {
    let mut args = store_args(dir);
    args.extend(["--admin-secret".to_owned(), ADMIN_SECRET.to_owned()]);
    if let Some(l) = listen {
        args.extend(["--listen".to_owned(), l.to_owned()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start("axum_server", dir, &args, expect_token)
}

/// Whether the element matching `css` lies entirely inside the window's width.
fn fits_width(b: &Browser, css: &str) -> bool {
    b.js(
        "const e = document.querySelector(arguments[0]); if (!e) return false;\
         const r = e.getBoundingClientRect();\
         return r.width > 0 && r.left >= 0 && r.right <= document.documentElement.clientWidth;",
        json!([css]),
    ) == Value::Bool(true)
}

#[test]
fn admin_console_runs_the_whole_provisioning_flow_in_a_browser() {
    let Some((chromium, driver)) = browser_paths() else {
        return;
    };
    let dir = scratch_dir("admin");
    let server = start_server(&dir, None, true);
    let admin = server.admin_url.clone().expect("an Admin console: line");
    let secret = ADMIN_SECRET.to_owned();
    assert!(admin.ends_with("/admin"), "{admin}");

    // Without the secret: the login form, with 401, and no API.
    let (status, body) = http("GET", &admin, &[], None);
    assert_eq!(status, 401);
    assert!(body.contains("login-form") && !body.contains("tenant-select"));
    let api = format!("{admin}/api/tenants");
    let (status, _) = http("GET", &api, &[("X-Scimkit-Admin", "1")], None);
    assert_eq!(status, 401);
    let (status, _) = http(
        "GET",
        &api,
        &[("X-Scimkit-Admin", "1"), ("Cookie", "scimkit_admin=forged")],
        None,
    );
    assert_eq!(status, 401);
    // The session cookie does not open SCIM: bearer tokens only.
    let (status, _) = http(
        "POST",
        &format!("{admin}/login"),
        &[("X-Scimkit-Admin", "1")],
        Some(&json!({ "secret": secret }).to_string()),
    );
    assert_eq!(status, 204);

    let b = Browser::start(&chromium, &driver, &dir.join("chromium-profile"));
    b.resize(1280, 1000);

    // ---- log in
    b.goto(&admin);
    b.element("#login-form");
    b.screenshot("01-login");
    b.type_into("#secret", "not-the-secret-at-all");
    b.click("#login-button");
    b.wait_text("#login-error", "Wrong admin secret");
    b.screenshot("02-login-wrong-secret");
    b.type_into("#secret", &secret);
    b.click("#login-button");
    b.element("#tenant-select");
    // The default tenant the server bootstrapped is listed; the section is marked current.
    b.wait_text("#connections", "default");
    b.element("#nav a[data-view=connections][aria-current=page]");
    assert!(b.find("#nav a[data-view=users][aria-current]").is_none());

    // ---- create a connection, switch SCIM on: no token yet, so the page warns
    b.type_into("#new-connection-name", "Okta production");
    assert_eq!(b.value("#new-connection-id"), "okta-production");
    b.click("#create-connection-button");
    b.wait_text("#connection-details h2", "Okta production");
    b.wait_text("#scim-status", "SCIM provisioning is off");
    b.wait_text("#tokens, #connection-details .empty", "No tokens yet");
    b.element("#health-warnings li[data-code=noRequestYet]");
    b.wait_text("#checklist-progress", "0 of 6");
    let base_url = b.value("#base-url");
    assert!(base_url.ends_with("/scim/v2/okta-production"), "{base_url}");
    b.screenshot("03-connection-created");
    b.click("label.switch");
    b.wait_text("#scim-status", "no token is active");
    b.element("#health-warnings li[data-code=noActiveToken]");
    b.element("#checklist li[data-step=scimOn].done");
    // Entra's checklist is one click (or Enter) away.
    b.click("#checklist-entra");
    b.wait_text("#checklist", "Test Connection");
    b.click("#checklist-okta");
    b.wait_text("#checklist", "Test Connector Configuration");

    // ---- generate a token; leaving it uncopied asks first
    b.cmd(
        "POST",
        "/permissions",
        Some(json!({"descriptor": {"name": "clipboard-read"}, "state": "granted"})),
    );
    b.cmd(
        "POST",
        "/permissions",
        Some(json!({"descriptor": {"name": "clipboard-write"}, "state": "granted"})),
    );
    b.type_into("#token-label", "Okta SCIM app");
    b.click("#generate-token");
    b.wait_text("#one-time-token", "will not be shown again");
    b.click("#nav a[data-view=users]");
    let asked = b.dialog_text();
    assert!(asked.contains("has not been copied"), "{asked}");
    b.answer_dialog(false);
    b.wait_text("#one-time-token", "will not be shown again");
    assert!(b.js("return location.hash", json!([])) == json!("#connections"));
    b.screenshot("04a-token-not-copied-warning-kept");
    // Closing or reloading the tab now would ask too (the page cancels `beforeunload`).
    let asks = b.js(
        "const e = new Event('beforeunload', {cancelable: true}); window.dispatchEvent(e);\
         return e.defaultPrevented",
        json!([]),
    );
    assert_eq!(asks, json!(true), "an uncopied token guards the tab");
    b.click("#copy-token");
    b.wait_text("#copy-token", "Copied");
    let copied = b.js_async(
        "const done = arguments[arguments.length - 1];\
         navigator.clipboard.readText().then(done, e => done('error: ' + e));",
    );
    let token = copied.as_str().unwrap().to_owned();
    assert!(token.starts_with("scimkit_"), "the clipboard holds {token}");
    assert_eq!(token, b.value("#new-token"));
    b.screenshot("04-token-shown-once");
    let asks = b.js(
        "const e = new Event('beforeunload', {cancelable: true}); window.dispatchEvent(e);\
         return e.defaultPrevented",
        json!([]),
    );
    assert_eq!(asks, json!(false), "once copied, leaving is free");
    // Once copied, the status no longer warns: a token is active.
    b.wait_text("#scim-status", "the IdP can create");

    // The token works for the connection it was made for.
    let scim = Client::new(&base_url, &token);
    let r = scim.call("GET", "/Users?startIndex=1&count=2", None);
    assert_eq!(r.status, 200, "{}", r.body);

    // Shown once: gone after "I have copied it", and after a reload.
    b.click("#dismiss-token");
    b.wait("the one-time box to close", || {
        b.find("#one-time-token").is_none().then_some(())
    });
    assert!(!b.source().contains(&token));
    b.wait_text("#tokens", "Okta SCIM app");
    b.goto(&format!("{admin}#connections"));
    b.wait_text("#tokens", "Okta SCIM app");
    // The token's first use is shown, with a short prefix of its id (never of the secret).
    b.wait_text("#tokens .last-used", "just now");
    let prefix = b.texts("#tokens .prefix")[0].clone();
    assert_eq!(prefix.chars().count(), 9, "{prefix}");
    assert!(prefix.ends_with('…') && !token.contains(prefix.trim_end_matches('…')));
    assert!(
        !b.source().contains(&token),
        "the token is never rendered again"
    );
    // The test request ticked off "test the connection"; the warning is gone.
    b.element("#checklist li[data-step=tested].done");
    b.wait("the no-request warning to go", || {
        b.find("#health-warnings li[data-code=noRequestYet]")
            .is_none()
            .then_some(())
    });
    b.screenshot("05-connections");

    // ---- user collections: empty, then live as the IdP pushes
    b.click("#nav a[data-view=collections]");
    b.wait_text("#groups-area", "No user collections yet");
    b.element("#nav a[data-view=collections][aria-current=page]");
    b.screenshot("06-collections-empty");
    let user = scim.ok(
        "POST",
        "/Users",
        json!({"schemas": [USER], "userName": "jdoe@example.com", "displayName": "John Doe",
               "externalId": "okta-00u1", "emails": [{"value": "john.doe@corp.example", "primary": true}],
               "name": {"givenName": "John", "familyName": "Doe"}, "active": true}),
        201,
    );
    let uid = user["id"].as_str().unwrap().to_owned();
    let other = scim.ok(
        "POST",
        "/Users",
        json!({"schemas": [USER], "userName": "asmith@example.com", "displayName": "Ann Smith",
               "externalId": "okta-00u2", "emails": [{"value": "ann.smith@corp.example"}], "active": false}),
        201,
    );
    let other_id = other["id"].as_str().unwrap().to_owned();
    let group = scim.ok(
        "POST",
        "/Groups",
        json!({"schemas": [GROUP], "displayName": "Engineering",
               "members": [{"value": uid, "display": "John Doe"}, {"value": other_id}]}),
        201,
    );
    let gid = group["id"].as_str().unwrap().to_owned();
    let row = format!("#groups tr[data-id=\"{gid}\"]");
    b.wait_text(&format!("{row} .name"), "Engineering");
    b.wait_text(&format!("{row} .members"), "2");
    b.click(&row);
    b.wait_text("#members-title", "Engineering");
    // Members by userName; the deactivated one is counted as such, not silently.
    b.wait_text("#members-count", "2 members: 1 active, 1 inactive");
    assert_eq!(
        b.texts("#members .user-name"),
        vec!["asmith@example.com", "jdoe@example.com"]
    );
    b.wait_text("#members", "John Doe");
    b.wait_text("#members .active", "active");
    b.screenshot("07-collection-members");

    // Long lists page: 30 more groups arrive, the first page shows 25 of 31.
    for i in 0..30 {
        scim.ok(
            "POST",
            "/Groups",
            json!({"schemas": [GROUP], "displayName": format!("Team {i:02}")}),
            201,
        );
    }
    b.wait_text("#groups-area .pager", "1–25 of 31");
    b.click("#groups-area .pager .next");
    b.wait_text("#groups-area .pager", "26–31 of 31");
    b.screenshot("08-collections-page-2");
    b.type_into("#group-search", "engin");
    b.wait_text("#groups-area", "Engineering");
    b.wait("the filter to leave one collection", || {
        (b.texts("#groups tbody tr").len() == 1).then_some(())
    });

    // ---- the users view: search by userName, email and externalId, filter by state
    b.click("#nav a[data-view=users]");
    b.wait_text("#users-total", "2 users");
    b.type_into("#user-search", "jdo");
    b.wait("the userName search", || {
        (b.texts("#users .user-name") == ["jdoe@example.com"]).then_some(())
    });
    b.click("#user-search-by option[value=email]");
    b.type_into("#user-search", "ann.smith@corp");
    b.wait("the email search", || {
        (b.texts("#users .user-name") == ["asmith@example.com"]).then_some(())
    });
    b.click("#user-search-by option[value=externalId]");
    b.type_into("#user-search", "okta-00u1");
    b.wait("the externalId search", || {
        (b.texts("#users .user-name") == ["jdoe@example.com"]).then_some(())
    });
    b.clear_by_keys("#user-search");
    b.click("#user-status option[value=inactive]");
    b.wait("the inactive filter", || {
        (b.texts("#users .user-name") == ["asmith@example.com"]).then_some(())
    });
    b.click("#user-status option[value=all]");
    b.wait_text("#users-total", "2 users");
    b.screenshot("09-users");

    // ---- keyboard only: a section, a user row, the user's collection
    b.js(
        "document.activeElement && document.activeElement.blur()",
        json!([]),
    );
    b.goto(&format!("{admin}#connections"));
    b.wait_text("#connection-details h2", "Okta production");
    b.tab_to("#nav a[data-view=users]");
    b.press(ENTER);
    b.element("#nav a[data-view=users][aria-current=page]");
    b.wait_text("#users-total", "2 users");
    b.tab_to(&format!("#users tr[data-id=\"{uid}\"] a"));
    b.press(ENTER);
    b.wait_text("#user-title", "jdoe@example.com");
    b.wait_text("#user-external-id", "okta-00u1");
    b.wait_text("#user-active", "active");
    b.wait_text("#user-groups", "Engineering");
    b.screenshot("10-user-page");
    b.tab_to("#user-groups a");
    b.press(ENTER);
    b.element("#nav a[data-view=collections][aria-current=page]");
    b.wait_text("#members-title", "Engineering");
    // A collection row itself is a link too.
    b.tab_to(&format!("{row} a"));
    b.press(ENTER);
    b.wait_text("#members-count", "2 members");

    // ---- a policy with the collection, and check login
    b.click("#nav a[data-view=policies]");
    b.wait_text("#policies-area", "No policies yet");
    let contractors = scim.ok(
        "POST",
        "/Groups",
        json!({"schemas": [GROUP], "displayName": "Contractors"}),
        201,
    );
    let contractors_id = contractors["id"].as_str().unwrap().to_owned();
    b.type_into("#policy-name", "Engineering VPN");
    b.click(&format!("#policy-collection option[value=\"{gid}\"]"));
    b.click("#create-policy-button");
    b.wait_text("#policies .policy .chip", "Engineering");
    b.click(&format!(
        "#policies .policy select option[value=\"{contractors_id}\"]"
    ));
    b.click("#policies .policy .add-collection");
    b.wait_text("#policies .policy .collections", "Contractors");
    // The chips' remove buttons say what they remove.
    let labels: Vec<String> = serde_json::from_value(b.js(
        "return [...document.querySelectorAll('#policies .chip button')].map(b => b.getAttribute('aria-label'))",
        json!([]),
    ))
    .unwrap();
    assert!(
        labels.contains(&"Remove “Contractors” from “Engineering VPN”".to_owned()),
        "{labels:?}"
    );
    // The IdP deletes a collection: the chip keeps its name.
    let r = scim.call("DELETE", &format!("/Groups/{contractors_id}"), None);
    assert_eq!(r.status, 204);
    b.wait_text("#policies .chip.gone", "Contractors (deleted by the IdP)");
    b.type_into("#check-username", "JDOE@example.com");
    b.click("#check-button");
    b.wait_text("#check-decision", "Login allowed");
    b.wait_text("#check-policies", "Engineering VPN");
    b.wait_text("#check-groups", "Engineering");
    b.screenshot("11-policies-login-allowed");

    // ---- the IdP deactivates the user: the next check refuses the login
    scim.patch(
        &format!("/Users/{uid}"),
        json!([{"op": "replace", "value": {"active": false}}]),
    );
    b.click("#check-button");
    b.wait_text("#check-decision", "Login refused");
    b.wait_text("#check-active", "inactive");
    assert!(b.texts("#check-policies li").is_empty());
    b.screenshot("12-policies-user-deactivated");
    // ...and the collection shows the user inactive, counted as such.
    b.goto(&format!("{admin}#collections/{gid}"));
    b.wait_text("#members-count", "0 active, 2 inactive");

    // An unknown user.
    b.click("#nav a[data-view=policies]");
    b.type_into("#check-username", "nobody@example.com");
    b.click("#check-button");
    b.wait_text("#check-decision", "No user with this userName");

    // ---- dark mode follows prefers-color-scheme
    b.cdp(
        "Emulation.setEmulatedMedia",
        json!({"features": [{"name": "prefers-color-scheme", "value": "dark"}]}),
    );
    let dark = b.js(
        "return getComputedStyle(document.body).backgroundColor",
        json!([]),
    );
    assert_eq!(dark, json!("rgb(18, 21, 28)"), "the dark palette applies");
    b.screenshot("13-dark-policies");
    b.click("#nav a[data-view=connections]");
    b.wait_text("#connection-details h2", "Okta production");
    b.screenshot("14-dark-connections");
    b.cdp(
        "Emulation.setEmulatedMedia",
        json!({"features": [{"name": "prefers-color-scheme", "value": "light"}]}),
    );
    let light = b.js(
        "return getComputedStyle(document.body).backgroundColor",
        json!([]),
    );
    assert_eq!(light, json!("rgb(245, 246, 248)"));

    // ---- narrow window (a 390 px phone): the Active column stays on screen
    b.resize(390, 844);
    b.wait_text("#connection-details h2", "Okta production");
    b.screenshot("15-narrow-connections");
    b.goto(&format!("{admin}#collections/{gid}"));
    b.wait_text("#members-title", "Engineering");
    let width = b.js("return document.documentElement.clientWidth", json!([]));
    assert!(width.as_u64().unwrap() <= 390, "{width}");
    b.wait("the members' Active column to fit", || {
        fits_width(&b, "#members tbody tr td:last-child .active").then_some(())
    });
    b.screenshot("16-narrow-collections");
    b.click("#nav a[data-view=users]");
    b.wait_text("#users-total", "2 users");
    assert!(fits_width(&b, "#users tbody tr td:last-child .active"));
    b.screenshot("17-narrow-users");
    b.click("#nav a[data-view=policies]");
    b.wait_text("#policies .policy", "Engineering VPN");
    b.screenshot("18-narrow-policies");
    b.resize(1280, 1000);

    // ---- SCIM switched off: asked first; the IdP is refused, data and tokens kept
    b.click("#nav a[data-view=connections]");
    b.wait_text("#scim-status", "SCIM provisioning is on");
    b.click("label.switch");
    let asked = b.dialog_text();
    assert!(asked.contains("Switch SCIM provisioning off"), "{asked}");
    b.answer_dialog(false);
    b.wait_text("#scim-status", "SCIM provisioning is on");
    assert_eq!(scim.call("GET", "/Users", None).status, 200, "still on");
    b.click("label.switch");
    b.dialog_text();
    b.answer_dialog(true);
    b.wait_text("#scim-status", "SCIM provisioning is off");
    assert_eq!(scim.call("GET", "/Users", None).status, 401);
    b.wait_text("#tokens", "Okta SCIM app");
    b.screenshot("19-scim-switched-off");
    b.click("#nav a[data-view=collections]");
    b.wait_text("#view .notice", "SCIM provisioning is off");
    b.wait_text("#groups-area", "Engineering");
    b.click("#nav a[data-view=connections]");

    // ---- revoke the last token: the page no longer says the IdP can create users
    b.click("label.switch");
    b.wait_text("#scim-status", "SCIM provisioning is on");
    assert_eq!(scim.call("GET", "/Users", None).status, 200);

    // ---- the provisioning log: failed and tolerated requests with their real reasons
    let bogus = Client::new(
        &base_url,
        "scimkit_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    );
    assert_eq!(bogus.call("GET", "/Users", None).status, 401);
    scim.patch(
        &format!("/Groups/{gid}"),
        json!([{"op": "add", "path": "members", "value": [{"value": "no-such-user"}]}]),
    );
    b.click("#nav a[data-view=log]");
    b.element("#nav a[data-view=log][aria-current=page]");
    // Newest first: the tolerated PATCH, the bogus token, the GET after SCIM came back on,
    // the 401 while SCIM was off.
    b.wait_text("#log .log-entry.tolerated .reason", "unknown member");
    b.wait_text("#log .log-entry.failure .reason", "unknown token");
    b.wait_text(
        "#log .log-entry.failure .reason",
        "SCIM provisioning is switched off",
    );
    let kinds: Vec<String> = serde_json::from_value(b.js(
        "return [...document.querySelectorAll('#log .log-entry')].slice(0, 4).map(e => e.dataset.kind)",
        json!([]),
    ))
    .unwrap();
    assert_eq!(kinds, ["tolerated", "failure", "success", "failure"]);
    assert!(!b.source().contains(&token), "no token in the log view");
    b.screenshot("19a-log");
    // Filtered by outcome: failures only.
    b.click("#log-outcome option[value=failure]");
    b.wait("only failures", || {
        let kinds = b.texts("#log .log-entry .badge");
        (!kinds.is_empty() && kinds.iter().all(|k| k == "failed")).then_some(())
    });
    // An entry opens from the keyboard and shows the real reason (the IdP got a plain 401).
    b.tab_to("#log .log-entry.failure .log-summary");
    b.press(ENTER);
    b.wait_text(
        "#log .log-details:not([hidden]) .auth-reason",
        "unknown token",
    );
    b.element("#log .log-entry.failure .log-summary[aria-expanded=true]");
    b.screenshot("19b-log-failure-open");
    // By text and resource: the dropped member id.
    b.click("#log-outcome option[value=\"\"]");
    b.click("#log-resource option[value=Group]");
    b.type_into("#log-text", "no-such-user");
    b.wait("the text filter", || {
        (b.texts("#log .log-entry").len() == 1).then_some(())
    });
    b.wait_text("#log .log-entry.tolerated", "PATCH");
    // The connection page tells the last error with its reason, and the checklist is done.
    b.click("#nav a[data-view=connections]");
    b.wait_text("#health-last-error", "unknown token");
    b.wait_text("#health-last-success", "just now");
    b.wait_text("#checklist-progress", "6 of 6");
    b.js("window.confirm = () => true", json!([]));
    b.click("#tokens button.revoke");
    b.wait_text("#tokens", "revoked");
    b.wait_text("#tokens .revoked-at", "just now");
    assert_eq!(scim.call("GET", "/Users", None).status, 401);
    b.wait_text("#scim-status", "no token is active");
    assert!(!b.texts("#scim-status")[0].contains("can create"));
    b.element("#health-warnings li[data-code=noActiveToken]");
    b.screenshot("20-last-token-revoked");

    // ---- log out, then log in on a section URL: the console opens at that section
    b.click("#logout");
    b.element("#login-form");
    b.goto(&format!("{admin}#collections"));
    b.element("#login-form");
    assert!(!b.source().contains("tenant-select"));
    b.type_into("#secret", &secret);
    b.click("#login-button");
    b.wait_text("#groups-area", "Engineering");
    b.element("#nav a[data-view=collections][aria-current=page]");

    // ---- the server stops: "live" turns offline; it comes back (same store, same port)
    b.wait_text("#live", "live");
    let listen = admin
        .trim_start_matches("http://")
        .trim_end_matches("/admin")
        .to_owned();
    let log = server.log_text();
    drop(server);
    b.wait_text("#live", "offline");
    b.screenshot("21-offline");
    let server = start_server(&dir, Some(&listen), false);
    // The sessions were in the old process: the page goes back to the login form by itself,
    // and logging in opens the section it was on.
    b.element("#login-form");
    b.type_into("#secret", &secret);
    b.click("#login-button");
    b.wait_text("#groups-area", "Engineering");
    b.wait_text("#live", "live");
    if cfg!(feature = "sqlite") {
        // Policies are in the store's database: the restart kept them.
        b.click("#nav a[data-view=policies]");
        b.wait_text("#policies .policy", "Engineering VPN");
        b.wait_text("#policies .chip.gone", "Contractors (deleted by the IdP)");
    }

    // Neither the admin secret nor any token reached the log.
    let log = log + &server.log_text();
    assert!(log.contains("/admin"), "admin requests are logged:\n{log}");
    assert!(
        !log.contains(&secret),
        "the admin secret leaked into the log"
    );
    assert!(!log.contains(&token), "a token leaked into the log");
}

/// With `--governance` the console's policies are the `Entitlement` catalog: a policy the IdP
/// grants in `User.entitlements` shows with origin "IdP" in "check login", on the user's
/// page and on the policy (how many users the IdP granted it), next to a policy that comes
/// from a collection.
#[test]
fn admin_console_shows_which_policies_the_idp_granted() {
    let Some((chromium, driver)) = browser_paths() else {
        return;
    };
    let dir = scratch_dir("admin-governance");
    let server = Server::start(
        "axum_server",
        &dir,
        &[
            "--store",
            "memory",
            "--governance",
            "--admin-secret",
            ADMIN_SECRET,
        ],
        true,
    );
    let admin = server.admin_url.clone().expect("an Admin console: line");
    let scim = server.client();
    let user = scim.ok(
        "POST",
        "/Users",
        json!({"schemas": [USER], "userName": "jdoe@example.com", "active": true}),
        201,
    );
    let uid = user["id"].as_str().unwrap().to_owned();
    let group = scim.ok(
        "POST",
        "/Groups",
        json!({"schemas": [GROUP], "displayName": "Engineering", "members": [{"value": uid}]}),
        201,
    );
    let gid = group["id"].as_str().unwrap().to_owned();

    let b = Browser::start(&chromium, &driver, &dir.join("chromium-profile"));
    b.resize(1280, 1000);
    b.goto(&admin);
    b.type_into("#secret", ADMIN_SECRET);
    b.click("#login-button");
    b.element("#tenant-select");
    b.click("#nav a[data-view=policies]");
    b.wait_text("#policies-area", "No policies yet");
    // Two policies: one through the collection, one the IdP will grant.
    b.type_into("#policy-name", "Engineering VPN");
    b.click(&format!("#policy-collection option[value=\"{gid}\"]"));
    b.click("#create-policy-button");
    b.wait_text("#policies .policy .chip", "Engineering");
    b.type_into("#policy-name", "Billing admins");
    b.click("#create-policy-button");
    b.wait_text("#policies", "Billing admins");
    // Each policy shows the Entitlement value the IdP grants; the catalog has both.
    let billing = b
        .texts("#policies .policy[data-name=\"Billing admins\"] .policy-value")
        .first()
        .cloned()
        .expect("the policy's Entitlement value");
    let billing = billing.trim().to_owned();
    assert!(billing.starts_with("policy-"), "{billing}");
    let value = scim.get(&format!("/Entitlements/{billing}"));
    assert_eq!(value["displayName"], "Billing admins");
    assert_eq!(scim.get("/Entitlements")["totalResults"], 2);

    // Okta Identity Governance grants "Billing admins" to the user.
    scim.patch(
        &format!("/Users/{uid}"),
        json!([{"op": "add", "path": "entitlements",
                "value": [{"value": billing, "display": "Billing admins", "type": "Entitlement"}]}]),
    );
    b.type_into("#check-username", "jdoe@example.com");
    b.click("#check-button");
    b.wait_text("#check-decision", "Login allowed");
    b.wait_text("#check-policies li[data-origins=\"IdP\"]", "Billing admins");
    b.wait_text(
        "#check-policies li[data-origins=\"IdP\"] .badge.origin.idp",
        "IdP",
    );
    b.wait_text(
        "#check-policies li[data-origins=\"collection\"]",
        "Engineering VPN",
    );
    b.wait_text(
        "#check-policies li[data-origins=\"collection\"] .via",
        "via Engineering",
    );
    // The policy says how many users the IdP granted it (live, from the change feed).
    b.wait_text(
        "#policies .policy[data-name=\"Billing admins\"] .idp-grants",
        "Granted by the IdP to 1 user",
    );
    b.wait_text(
        "#policies .policy[data-name=\"Engineering VPN\"] .idp-grants",
        "Granted by the IdP to 0 users",
    );
    b.screenshot("22-governance-check-login-origins");

    // The user's page lists the policies with their origins.
    b.goto(&format!("{admin}#users/{uid}"));
    b.wait_text("#user-title", "jdoe@example.com");
    b.wait_text("#user-policies li[data-origins=\"IdP\"]", "Billing admins");
    b.wait_text(
        "#user-policies li[data-origins=\"collection\"]",
        "Engineering VPN",
    );
    b.screenshot("23-governance-user-policies");

    // The IdP revokes the grant (remove with a value filter): the next check has only the
    // collection's policy.
    scim.patch(
        &format!("/Users/{uid}"),
        json!([{"op": "remove", "path": format!("entitlements[value eq \"{billing}\"]")}]),
    );
    b.click("#nav a[data-view=policies]");
    b.type_into("#check-username", "jdoe@example.com");
    b.click("#check-button");
    b.wait("the IdP's policy to go", || {
        let lines = b.texts("#check-policies li");
        (lines.len() == 1
            && lines[0].contains("Engineering VPN")
            && b.find("#check-policies li[data-origins~=\"IdP\"]")
                .is_none())
        .then_some(())
    });
    server.stop_gracefully();
}
