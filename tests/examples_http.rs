//! The example servers over real HTTP: each test starts an example binary on a free port of
//! 127.0.0.1, reads the base URL and token it prints, and drives it with a plain HTTP client
//! the way Okta and Entra ID do. Building, starting and the client are in
//! `tests/common/examples.rs`.
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
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use examples::{enc, example, scratch_dir, Client, Server, PATCH_OP};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// Runs an admin command of `example_name` in `dir` and returns its stdout.
#[cfg(feature = "sqlite")]
fn admin(example_name: &str, dir: &Path, args: &[&str]) -> String {
    let out = Command::new(example(example_name))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "`{}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Form-encodes a query value the way Entra does (`+` for spaces).
fn form(s: &str) -> String {
    enc(s).replace("%20", "+")
}

fn member_ids(group: &Value) -> Vec<String> {
    let mut ids: Vec<String> = group["members"]
        .as_array()
        .map(|m| {
            m.iter()
                .map(|m| m["value"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

// ---- the lifecycles -------------------------------------------------------------------------

/// What Okta does for one user and one pushed group (IDP-QUIRKS.md §1).
fn okta_lifecycle(c: &Client) {
    // "Test Connector Configuration".
    let r = c.get("/Users?startIndex=1&count=2");
    assert_eq!(r["schemas"][0], LIST);
    assert!(r["totalResults"].is_u64());

    // Create flow: filter on the unique identifier, then POST with Okta's extras.
    let filter = |name: &str| {
        format!(
            "/Users?filter={}&startIndex=1&count=100",
            enc(&format!("userName eq \"{name}\""))
        )
    };
    assert_eq!(c.get(&filter("jdoe@example.com"))["totalResults"], 0);
    let created = c.ok(
        "POST",
        "/Users",
        json!({
            "schemas": [USER],
            "userName": "jdoe@example.com",
            "name": {"givenName": "John", "familyName": "Doe"},
            "emails": [{"primary": true, "value": "jdoe@example.com", "type": "work"}],
            "displayName": "John Doe",
            "locale": "en-US",
            "externalId": "00ujl29u0le5T6Aj10h7",
            "groups": [],
            "password": "1mz050nq",
            "active": true
        }),
        201,
    );
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(
        created.get("password").is_none(),
        "password is never returned"
    );
    let dup = c.call(
        "POST",
        "/Users",
        Some(json!({"schemas": [USER], "userName": "JDOE@example.com"})),
    );
    assert_eq!(dup.status, 409);
    assert_eq!(dup.body["scimType"], "uniqueness");
    // userName is matched case-insensitively (Okta's OIN test upper-cases it).
    let found = c.get(&filter("JDOE@EXAMPLE.COM"));
    assert_eq!(found["totalResults"], 1);
    assert_eq!(found["Resources"][0]["id"], id.as_str());

    // Profile update: GET, then PUT the echoed document with a change.
    let mut user = c.get(&format!("/Users/{id}"));
    let v1 = user["meta"]["version"].clone();
    user["name"]["givenName"] = json!("Johnny");
    let put = c.ok("PUT", &format!("/Users/{id}"), user, 200);
    assert_eq!(put["name"]["givenName"], "Johnny");
    assert_eq!(put["id"], id.as_str());
    assert_ne!(put["meta"]["version"], v1);

    // Deactivation: path-less PATCH with a value object; the user stays readable.
    c.patch(
        &format!("/Users/{id}"),
        json!([{"op": "replace", "value": {"active": false}}]),
    );
    let user = c.get(&format!("/Users/{id}"));
    assert_eq!(user["active"], false);
    assert_eq!(user["name"]["givenName"], "Johnny");

    // A second user to move in and out of the group.
    let other = c.ok(
        "POST",
        "/Users",
        json!({"schemas": [USER], "userName": "asmith@example.com", "active": true}),
        201,
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Group push: look it up by name, create it empty, then a membership PATCH.
    let gfilter = format!(
        "/Groups?filter={}&startIndex=1&count=100",
        enc("displayName eq \"Engineering\"")
    );
    assert_eq!(c.get(&gfilter)["totalResults"], 0);
    let group = c.ok(
        "POST",
        "/Groups",
        json!({"schemas": [GROUP], "displayName": "Engineering", "members": []}),
        201,
    );
    let gid = group["id"].as_str().unwrap().to_owned();
    c.patch(
        &format!("/Groups/{gid}"),
        json!([{"op": "add", "path": "members",
                "value": [{"value": id, "display": "jdoe@example.com"},
                          {"value": other, "display": "asmith@example.com"}]}]),
    );
    // Okta's mixed PATCH: remove one member by filter, add the other back (idempotent).
    c.patch(
        &format!("/Groups/{gid}"),
        json!([
            {"op": "remove", "path": format!("members[value eq \"{other}\"]")},
            {"op": "add", "path": "members", "value": [{"value": id, "display": "jdoe@example.com"}]}
        ]),
    );
    assert_eq!(
        member_ids(&c.get(&format!("/Groups/{gid}"))),
        vec![id.clone()]
    );
    let user = c.get(&format!("/Users/{id}"));
    assert_eq!(user["groups"][0]["value"], gid.as_str());

    // Rename: path-less replace carrying the read-only id; members must survive.
    c.patch(
        &format!("/Groups/{gid}"),
        json!([{"op": "replace", "value": {"id": gid, "displayName": "Engineering Team"}}]),
    );
    let group = c.get(&format!("/Groups/{gid}"));
    assert_eq!(group["displayName"], "Engineering Team");
    assert_eq!(member_ids(&group), vec![id.clone()]);
    assert_eq!(c.get(&gfilter)["totalResults"], 0);

    // Reassignment re-activates the same user.
    c.patch(
        &format!("/Users/{id}"),
        json!([{"op": "replace", "value": {"active": true}}]),
    );
    assert_eq!(c.get(&format!("/Users/{id}"))["active"], true);
}

/// What Entra ID's provisioning service does (IDP-QUIRKS.md §2).
fn entra_lifecycle(c: &Client) {
    // "Test Connection": a random GUID must give 200 and an empty list.
    let probe = c.get(&format!(
        "/Users?filter={}",
        form("userName eq \"5a3e0c6c-6a0e-4f55-9b2c-1b3d3f0a9e77\"")
    ));
    assert_eq!(probe["totalResults"], 0);
    assert_eq!(probe["Resources"], json!([]));

    let vector = |name: &str| -> Value {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/vectors")
            .join(name);
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    let user = c.ok("POST", "/Users", vector("entra_post_user.json"), 201);
    let id = user["id"].as_str().unwrap().to_owned();
    assert_eq!(user["active"], true, "string boolean `True` accepted");
    let second = c.ok(
        "POST",
        "/Users",
        json!({"schemas": [USER], "userName": "bob@contoso.com", "externalId": "bob", "active": "True"}),
        201,
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Capitalised ops, a string boolean and a filtered value path.
    c.patch(
        &format!("/Users/{id}"),
        json!([
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "test.user@contoso.com"},
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Sales"}
        ]),
    );
    let by_ext = c.get(&format!(
        "/Users?filter={}",
        form("externalId eq \"0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef\"")
    ));
    assert_eq!(by_ext["totalResults"], 1);
    let u = &by_ext["Resources"][0];
    assert_eq!(u["active"], false);
    assert_eq!(u["emails"][0]["value"], "test.user@contoso.com");
    assert_eq!(
        u["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"],
        "Sales"
    );

    // Groups: created without members, members added and removed with value lists.
    let group = c.ok("POST", "/Groups", vector("entra_post_group.json"), 201);
    let gid = group["id"].as_str().unwrap().to_owned();
    c.patch(
        &format!("/Groups/{gid}"),
        json!([{"op": "Add", "path": "members",
                "value": [{"$ref": null, "value": id}, {"$ref": null, "value": second}]}]),
    );
    let mut both = vec![id.clone(), second.clone()];
    both.sort();
    assert_eq!(member_ids(&c.get(&format!("/Groups/{gid}"))), both);
    let lean = c.get(&format!("/Groups/{gid}?excludedAttributes=members"));
    assert!(lean.get("members").is_none());
    assert_eq!(lean["displayName"], "Group1");
    let by_name = c.get(&format!(
        "/Groups?excludedAttributes=members&filter={}",
        form("displayName eq \"Group1\"")
    ));
    assert_eq!(by_name["totalResults"], 1);
    c.patch(
        &format!("/Groups/{gid}"),
        json!([{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": second}]}]),
    );
    assert_eq!(
        member_ids(&c.get(&format!("/Groups/{gid}"))),
        vec![id.clone()]
    );
    c.patch(
        &format!("/Groups/{gid}"),
        json!([{"op": "Replace", "path": "displayName", "value": "Group1 renamed"}]),
    );
    assert_eq!(
        c.get(&format!("/Groups/{gid}"))["displayName"],
        "Group1 renamed"
    );

    // Hard delete.
    assert_eq!(
        c.call("DELETE", &format!("/Users/{second}"), None).status,
        204
    );
    assert_eq!(c.call("GET", &format!("/Users/{second}"), None).status, 404);
}

/// Transport-level behaviour every adapter must keep.
fn adapter_basics(server: &Server) {
    let c = server.client();
    // No token, no data; the SCIM error format and content type survive the adapter.
    let r = c.raw("GET", "/Users", None, None);
    assert_eq!(r.status, 401);
    assert_eq!(r.body["status"], "401");
    assert!(
        r.content_type.starts_with("application/scim+json"),
        "{}",
        r.content_type
    );
    // A body above the adapter's cap is refused with a SCIM 413 before it is uploaded; a
    // raw socket shows it, since an HTTP client would fail on the connection the server
    // closes while the client is still writing.
    let token = server.token.as_deref().unwrap();
    let reply = raw_post_declaring(server, "/Users", 3 << 20, Some(token));
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(reply.contains("\"413\""), "a SCIM error body: {reply}");
    // The head is authenticated before the body is read: a client without a token that
    // declares 1 MiB (within the limit) and sends a few bytes gets its 401 at once. A server
    // that read the body first would wait for the rest, and the read below would time out.
    for auth in [None, Some("scimkit_not-a-token")] {
        let reply = raw_post_declaring(server, "/Users", 1 << 20, auth);
        assert!(reply.starts_with("HTTP/1.1 401"), "{auth:?}: {reply}");
        assert!(
            reply
                .to_ascii_lowercase()
                .contains("www-authenticate: bearer"),
            "{reply}"
        );
        assert!(reply.contains("\"401\""), "a SCIM error body: {reply}");
    }
    // Discovery works through the adapter.
    let spc = c.get("/ServiceProviderConfig");
    assert_eq!(spc["patch"]["supported"], true);
}

/// Sends a POST whose headers declare `length` bytes but sends only a few of them, with
/// `token` as bearer token if any, and returns the raw response (empty if none came within
/// 20 s, less than the servers' default request timeout).
fn raw_post_declaring(server: &Server, path: &str, length: usize, token: Option<&str>) -> String {
    use std::io::Write;
    let origin = server.origin();
    let host = origin.strip_prefix("http://").unwrap();
    let base_path = &server.base_url[origin.len()..];
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "POST {base_path}{path} HTTP/1.1\r\nHost: {host}\r\n{auth}\
         Content-Type: application/scim+json\r\nContent-Length: {length}\r\n\r\n{{\"schemas\":",
    )
    .unwrap();
    stream.flush().unwrap();
    read_reply(&mut stream)
}

/// Reads one response from `stream`: until its JSON body closes or the connection does.
fn read_reply(stream: &mut std::net::TcpStream) -> String {
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&reply);
        if text.contains("\r\n\r\n") && text.trim_end().ends_with('}') {
            break;
        }
    }
    String::from_utf8_lossy(&reply).into_owned()
}

/// The request log has lines for the requests and never the token, nor a query string
/// (the lifecycles filtered on user names and e-mail addresses).
fn assert_log_is_clean(server: &Server) {
    let token = server.token.as_deref().unwrap();
    let log = server.log_text();
    assert!(log.contains("/Users"), "requests are logged:\n{log}");
    assert!(!log.contains(token), "the token leaked into the log");
    assert!(
        !log.contains("Bearer"),
        "an Authorization header leaked into the log"
    );
    for leak in ["filter=", "startIndex=", "userName%20eq"] {
        assert!(
            !log.contains(leak),
            "`{leak}` (a query string) is in the log:\n{log}"
        );
    }
}

// ---- the tests -------------------------------------------------------------------------------

#[test]
fn axum_example_serves_okta_and_entra() {
    let dir = scratch_dir("axum");
    let server = Server::start("axum_server", &dir, &["--store", "memory"], true);
    assert!(
        server.base_url.ends_with("/scim/v2/default"),
        "{}",
        server.base_url
    );
    let c = server.client();
    okta_lifecycle(&c);
    entra_lifecycle(&c);
    adapter_basics(&server);
    // The trivial handler used as the load-test ceiling.
    let pong = ureq::get(&format!("{}/ping", server.origin()))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert_eq!(pong, "pong");
    assert_log_is_clean(&server);
    server.stop_gracefully();
}

#[test]
fn actix_example_serves_okta_and_entra() {
    let dir = scratch_dir("actix");
    let token = format!("scimkit_{}", "A1b2-C3d4_".repeat(5).get(..43).unwrap());
    let server = Server::start(
        "actix_server",
        &dir,
        &[
            "--store",
            "memory",
            "--tenant",
            "acme-entra",
            "--token",
            &token,
        ],
        true,
    );
    assert!(
        server.base_url.ends_with("/scim/v2/acme-entra"),
        "{}",
        server.base_url
    );
    let c = server.client();
    okta_lifecycle(&c);
    // The operator's token is registered, never echoed (by now everything printed on start
    // has been read).
    let printed = server.stdout_lines();
    assert!(!printed.iter().any(|l| l.contains(&token)), "{printed:?}");
    assert!(
        printed.iter().all(|l| !l.starts_with("Bearer token:")),
        "{printed:?}"
    );
    entra_lifecycle(&c);
    adapter_basics(&server);
    assert_log_is_clean(&server);
    server.stop_gracefully();
}

#[test]
fn tenants_are_isolated_and_strict_mode_is_a_flag() {
    let dir = scratch_dir("strict");
    let server = Server::start(
        "axum_server",
        &dir,
        &["--store", "memory", "--tenant", "rfc", "--strict"],
        true,
    );
    let c = server.client();
    let id = c.ok(
        "POST",
        "/Users",
        json!({"schemas": [USER], "userName": "strict@example.com"}),
        201,
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Entra's capitalised op is refused in strict mode...
    let r = c.call(
        "PATCH",
        &format!("/Users/{id}"),
        Some(json!({"schemas": [PATCH_OP], "Operations": [{"op": "Replace", "path": "active", "value": false}]})),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    // ...and the tenant's token opens no other tenant's base URL.
    let other = Client::new(
        &server.base_url.replace("/rfc", "/default"),
        server.token.as_deref().unwrap(),
    );
    assert_eq!(other.call("GET", "/Users", None).status, 401);
}

/// `--governance` on either example: the demo catalogs are read-only for the IdP and checked
/// on grants; agents are served. `entitlements` is the size of the Entitlement catalog on
/// start: the actix example publishes 3 demo values, the axum example its console's policies
/// (none yet; see tests/examples_governance.rs).
fn governance_flag(example_name: &str, entitlements: u64) {
    let dir = scratch_dir(&format!("governance-{example_name}"));
    let server = Server::start(
        example_name,
        &dir,
        &["--store", "memory", "--governance"],
        true,
    );
    let c = server.client();
    let types = c.get("/ResourceTypes");
    let names: Vec<&str> = types["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "User",
            "Group",
            "Agent",
            "AgenticApplication",
            "Entitlement",
            "Role"
        ]
    );
    let roles = c.get("/Roles?startIndex=1&count=1");
    assert_eq!(roles["totalResults"], 2);
    assert_eq!(roles["Resources"].as_array().unwrap().len(), 1);
    assert_eq!(c.get("/Entitlements")["totalResults"], entitlements);
    let r = c.call(
        "POST",
        "/Roles",
        Some(json!({"schemas": ["urn:okta:scim:schemas:core:1.0:Role"], "displayName": "x"})),
    );
    assert_eq!(r.status, 405, "{}", r.body);
    // A grant of a known role lands; an unknown one is dropped (default tolerance).
    let id = c.ok(
        "POST",
        "/Users",
        json!({"schemas": [USER], "userName": "granted@example.com"}),
        201,
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    c.patch(
        &format!("/Users/{id}"),
        json!([{"op": "add", "path": "roles",
                "value": [{"value": "admin", "type": "Role"}, {"value": "root", "type": "Role"}]}]),
    );
    let user = c.get(&format!("/Users/{id}"));
    assert_eq!(user["roles"], json!([{"value": "admin", "type": "Role"}]));
    let found = c.get(&format!(
        "/Users?filter={}",
        enc(r#"roles[type eq "Role" and value eq "admin"]"#)
    ));
    assert_eq!(found["totalResults"], 1);
    c.ok(
        "POST",
        "/Agents",
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Agent"], "name": "bot"}),
        201,
    );
    assert_log_is_clean(&server);
    server.stop_gracefully();
}

#[test]
fn axum_example_governance_flag() {
    governance_flag("axum_server", 0);
}

#[test]
fn actix_example_governance_flag() {
    governance_flag("actix_server", 3);
}

// ---- slow and hostile clients -----------------------------------------------------------------

/// The resident memory of process `pid`, in kB.
fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Whether the server closes `stream` (end of stream or reset) within `within`; an answer
/// before the close (actix-web sends 408) is read and skipped.
fn closed_by_server(stream: &mut std::net::TcpStream, within: Duration) -> bool {
    use std::io::ErrorKind;
    stream.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            // Only running out of time means open; any other error is a dead connection.
            Err(e) => return !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        }
    }
}

/// Whether `stream` is still open: nothing to read yet, and no end of stream.
fn still_open(stream: &std::net::TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 16];
    let r = (&*stream).read(&mut buf);
    stream.set_nonblocking(false).unwrap();
    matches!(r, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

/// 200 slow unauthenticated connections (150 trickling an incomplete request head, 50
/// declaring a 1 MiB body and sending a few bytes of it) do not keep an authenticated GET
/// from being answered while they are open; the heads are closed by the header-read
/// timeout, the bodies get their 401 without being read, an authenticated request whose
/// body never completes gets a SCIM 503 at the request timeout, and the server's memory
/// stays bounded.
fn slow_clients_are_cut_off(example_name: &str) {
    use std::io::Write;
    let dir = scratch_dir("slow");
    let server = Server::start(
        example_name,
        &dir,
        &[
            "--store",
            "memory",
            "--header-read-timeout",
            "6s",
            "--request-timeout",
            "2s",
        ],
        true,
    );
    let pid = server.child.as_ref().unwrap().id();
    let c = server.client();
    c.get("/Users?count=1");
    let started = std::time::Instant::now();
    c.get("/Users?count=1");
    let quiet = started.elapsed();
    let rss_before = rss_kb(pid);
    let origin = server.origin();
    let host = origin.strip_prefix("http://").unwrap();
    let base_path = &server.base_url[origin.len()..];

    let mut heads = Vec::new();
    let mut bodies = Vec::new();
    for i in 0..200 {
        let mut s = std::net::TcpStream::connect(host).unwrap();
        if i % 4 == 3 {
            write!(
                s,
                "POST {base_path}/Users HTTP/1.1\r\nHost: {host}\r\n\
                 Content-Type: application/scim+json\r\nContent-Length: 1048576\r\n\r\n\
                 {{\"schemas\":"
            )
            .unwrap();
            bodies.push(s);
        } else {
            write!(
                s,
                "GET {base_path}/Users HTTP/1.1\r\nHost: {host}\r\nX-Slow: "
            )
            .unwrap();
            heads.push(s);
        }
    }
    // Slowly: one more byte of each head.
    for s in &mut heads {
        s.write_all(b"a").unwrap();
    }
    let started = std::time::Instant::now();
    let users = c.get("/Users?count=1");
    let latency = started.elapsed();
    assert!(users["totalResults"].is_u64());
    let open = heads.iter().filter(|s| still_open(s)).count();
    assert_eq!(open, heads.len(), "the slow heads were open during the GET");
    eprintln!(
        "{example_name}: authenticated GET {quiet:?} alone, {latency:?} with 200 slow \
         connections open"
    );

    for s in &mut bodies {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let reply = read_reply(s);
        assert!(reply.starts_with("HTTP/1.1 401"), "{reply}");
    }
    let token = server.token.clone().unwrap();
    let reply = raw_post_declaring(&server, "/Users", 1000, Some(&token));
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    assert!(
        reply.contains("\"status\":\"503\"") && reply.contains(":api:messages:2.0:Error"),
        "a SCIM error body: {reply}"
    );
    for s in &mut heads {
        assert!(
            closed_by_server(s, Duration::from_secs(30)),
            "a slow head is closed by the header-read timeout"
        );
    }
    let rss_after = rss_kb(pid);
    eprintln!("{example_name}: VmRSS {rss_before} kB before, {rss_after} kB after");
    assert!(
        rss_after < rss_before + 64 * 1024,
        "{rss_before} kB -> {rss_after} kB"
    );
    // And the server still serves.
    assert!(c.get("/Users?count=1")["totalResults"].is_u64());
}

#[test]
fn axum_example_cuts_off_slow_clients() {
    slow_clients_are_cut_off("axum_server");
}

#[test]
fn actix_example_cuts_off_slow_clients() {
    slow_clients_are_cut_off("actix_server");
}

/// `--rate-limit` sets the tenant's token bucket: past the burst, the SCIM answer is 429
/// with `Retry-After` and a SCIM error body, through the adapter.
#[test]
fn the_rate_limit_flag_gives_429_with_retry_after() {
    let dir = scratch_dir("rate");
    let server = Server::start(
        "axum_server",
        &dir,
        &["--store", "memory", "--rate-limit", "1/3"],
        true,
    );
    let url = format!("{}/Users?count=1", server.base_url);
    let auth = format!("Bearer {}", server.token.as_deref().unwrap());
    let mut ok = 0;
    let mut limited = None;
    // At 1 request per second with bursts of 3, ten back-to-back requests cannot all pass.
    for _ in 0..10 {
        match ureq::get(&url).set("Authorization", &auth).call() {
            Ok(r) => {
                assert_eq!(r.status(), 200);
                ok += 1;
            }
            Err(ureq::Error::Status(429, r)) => {
                limited = Some(r);
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(ok >= 3, "the burst passes: {ok}");
    let r = limited.expect("a 429 past the burst");
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!(wait >= 1, "{wait}");
    assert!(r.content_type().starts_with("application/scim+json"));
    let body: Value = serde_json::from_str(&r.into_string().unwrap()).unwrap();
    assert_eq!(body["status"], "429");
    assert!(
        body["detail"].as_str().unwrap().contains("rate limit"),
        "{body}"
    );
    // Requests without a token are refused before the limit (and do not count).
    assert_eq!(server.client().raw("GET", "/Users", None, None).status, 401);
}

#[test]
fn bad_command_lines_are_refused_with_usage() {
    for args in [
        &["--store", "redis:x"][..],
        &["--token", "not-a-scimkit-token"],
        &["--tenant", "no spaces"],
        &["--admin-secret", "short-secret"],
        &["--rate-limit", "fast"],
        &["--rate-limit", "0/5"],
        &["--header-read-timeout", "0"],
        &["--request-timeout", "soon"],
        &["--feed-retention-days", "-1"],
        &["--feed-retention-days", "ten"],
        &["--feed-retention-days", "36501"],
        &["frobnicate"],
    ] {
        let out = Command::new(example("axum_server"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("Usage:"), "{err}");
        assert!(
            !err.contains("not-a-scimkit-token") && !err.contains("short-secret"),
            "a --token value is never echoed"
        );
    }
    // The actix example has no admin console: its secret flag is refused, not ignored.
    let out = Command::new(example("actix_server"))
        .args(["--admin-secret", "a-long-enough-admin-secret"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("axum example only"));
    let help = Command::new(example("actix_server"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--store STORE"));
    assert!(String::from_utf8_lossy(&help.stdout).contains("--feed-retention-days D"));
}

/// Resources as a list returns them, keyed by id, without `meta.location` (it names the
/// server's port, which changes across a restart).
#[cfg(feature = "sqlite")]
fn snapshot(c: &Client, endpoint: &str) -> Vec<Value> {
    let mut list = c.get(&format!("{endpoint}?startIndex=1&count=1000"))["Resources"]
        .as_array()
        .unwrap()
        .clone();
    for r in &mut list {
        r["meta"].as_object_mut().unwrap().remove("location");
        if let Some(members) = r.get_mut("members").and_then(Value::as_array_mut) {
            for m in members {
                m.as_object_mut().unwrap().remove("$ref");
            }
        }
        if let Some(groups) = r.get_mut("groups").and_then(Value::as_array_mut) {
            for g in groups {
                g.as_object_mut().unwrap().remove("$ref");
            }
        }
    }
    list.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    list
}

#[cfg(feature = "sqlite")]
#[test]
fn sqlite_default_survives_a_restart_with_users_groups_and_tokens() {
    let dir = scratch_dir("sqlite");
    // No --store: the default is an SQLite file in the working directory.
    let server = Server::start("axum_server", &dir, &[], true);
    let token = server.token.clone().unwrap();
    let c = server.client();
    okta_lifecycle(&c);
    entra_lifecycle(&c);
    let users = snapshot(&c, "/Users");
    let groups = snapshot(&c, "/Groups");
    assert_eq!(users.len(), 3);
    assert_eq!(groups.len(), 2);

    // Admin commands work on the same file while the server runs.
    let issued = admin(
        "axum_server",
        &dir,
        &["token", "create", "--label", "ci robot"],
    );
    let second = issued
        .lines()
        .find_map(|l| l.strip_prefix("Bearer token: "))
        .expect("the new token is printed")
        .to_owned();
    assert_eq!(
        Client::new(&server.base_url, &second)
            .call("GET", "/Users", None)
            .status,
        200
    );
    server.stop_gracefully();
    assert!(dir.join("scimkit.db").is_file());

    // After the restart: no new token (the tenant has working ones), same data, both
    // tokens still open the tenant.
    let server = Server::start("axum_server", &dir, &[], false);
    let c = Client::new(&server.base_url, &token);
    assert_eq!(snapshot(&c, "/Users"), users);
    assert_eq!(snapshot(&c, "/Groups"), groups);
    let c2 = Client::new(&server.base_url, &second);
    assert_eq!(
        c2.get("/Groups?excludedAttributes=members")["totalResults"],
        2
    );

    // Tokens are listed without secrets, with last use; one can be revoked.
    let list = admin("axum_server", &dir, &["token", "list"]);
    assert!(list.contains("ci robot"), "{list}");
    assert!(
        !list.contains(&token) && !list.contains(&second),
        "no secrets in `token list`"
    );
    let ci_id = list
        .lines()
        .find(|l| l.contains("ci robot"))
        .and_then(|l| l.split('\t').next())
        .unwrap()
        .to_owned();
    admin("axum_server", &dir, &["token", "revoke", &ci_id]);
    // Revoked by another process on the same file: the server's authentication cache sees
    // it within its 2 s bound (TENANT_CACHE_TTL).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while c2.call("GET", "/Users", None).status != 401 {
        assert!(
            std::time::Instant::now() < deadline,
            "a revoked token still opens the tenant after 10 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(c.call("GET", "/Users", None).status, 200);

    // User collections with member counts, and a group's members.
    let groups_out = admin("axum_server", &dir, &["groups"]);
    let line = groups_out
        .lines()
        .find(|l| l.contains("Engineering Team"))
        .unwrap_or_else(|| panic!("{groups_out}"));
    let cols: Vec<&str> = line.split('\t').collect();
    assert_eq!(cols[2], "1", "{line}");
    let members = admin("axum_server", &dir, &["members", cols[0]]);
    assert!(members.contains("jdoe@example.com"), "{members}");
    server.stop_gracefully();
}

/// `serve` prunes the change feed on start with the default retention (30 days): a change
/// committed 40 days ago is gone, one from yesterday stays, and reading from before the
/// horizon is the typed error.
#[cfg(feature = "sqlite")]
#[test]
fn serve_prunes_the_change_feed_older_than_30_days_on_start() {
    use scimkit::store::sqlite::SqliteStore;
    use scimkit::store::{CreateRequest, ResourceStore, StoreError};

    let dir = scratch_dir("prune");
    let db = dir.join("scimkit.db");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let tenant = scimkit::tenant::TenantId::new("default").unwrap();
    rt.block_on(async {
        let store = SqliteStore::open(&db).await.unwrap();
        let registry = scimkit::schema::SchemaRegistry::default();
        let users = registry.user().unwrap();
        for (id, days) in [("old", 40), ("recent", 1)] {
            let req = CreateRequest {
                id: id.into(),
                doc: json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": id}),
                unique_keys: vec![scimkit::resource::UniqueKey::new("userName", id)],
                members: vec![],
                unknown_members: Default::default(),
                now: chrono::Utc::now() - chrono::Duration::days(days),
                actor: None,
            };
            store.create(&tenant, users, req).await.unwrap();
        }
        store.close().await;
    });

    let _server = Server::start("axum_server", &dir, &["--store", "sqlite:scimkit.db"], true);
    let pruned = rt.block_on(async {
        let store = SqliteStore::open(&db).await.unwrap();
        let mut result = None;
        // The first run starts with the server; give it a few seconds.
        for _ in 0..100 {
            match store.changes_since(&tenant, 0, 10).await {
                Err(StoreError::ChangesPruned { pruned_through, .. }) => {
                    let rest = store
                        .changes_since(&tenant, pruned_through, 10)
                        .await
                        .unwrap();
                    result = Some((pruned_through, rest));
                    break;
                }
                Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                Err(e) => panic!("{e}"),
            }
        }
        store.close().await;
        result
    });
    let (horizon, rest) = pruned.expect("the change from 40 days ago was pruned");
    assert_eq!(horizon, 1);
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].id.as_str(), "recent");
}
