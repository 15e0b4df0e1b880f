//! A PostgreSQL server for tests (features `testing` and `postgres`).
//!
//! [`fresh_database`] gives each test its own empty database on one server per test process:
//! - the server at `SCIMKIT_POSTGRES_URL` when that is set (its user needs `CREATEDB`; the
//!   databases created are left behind for inspection);
//! - otherwise a throw-away cluster started with the machine's `initdb` and `pg_ctl` (on the
//!   `PATH`, or Debian's `/usr/lib/postgresql/<version>/bin`), listening on a free loopback
//!   port with its socket in a private temporary directory. When the test process runs as
//!   root the cluster runs as the `postgres` system user (PostgreSQL refuses root). A watchdog
//!   process stops the cluster and deletes its directory as soon as the test process exits,
//!   however it exits.
//!
//! When neither is possible the functions return `None` after printing why on stderr, and the
//! caller skips its test; with `SCIMKIT_REQUIRE_POSTGRES=1` they panic instead, so that a CI
//! run cannot pass without PostgreSQL.
//!
//! ```no_run
//! # async fn t() {
//! use scimkit::store::testing::postgres;
//! let Some(store) = postgres::fresh_store().await else { return };
//! # let _ = store;
//! # }
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use sqlx::{Connection, PgConnection};

use crate::store::postgres::PostgresStore;

/// The environment variable naming an existing server to use.
pub const URL_VAR: &str = "SCIMKIT_POSTGRES_URL";
/// The environment variable that turns a skip into a failure.
pub const REQUIRE_VAR: &str = "SCIMKIT_REQUIRE_POSTGRES";

/// A server the tests can create databases on.
#[derive(Debug)]
pub struct TestServer {
    /// A URL of the server's maintenance database (`postgres`), as a user that may create
    /// databases.
    pub admin_url: String,
    /// Where the throw-away cluster lives (`None` for `SCIMKIT_POSTGRES_URL`).
    pub data_dir: Option<PathBuf>,
}

fn required() -> bool {
    std::env::var(REQUIRE_VAR).is_ok_and(|v| !v.is_empty() && v != "0")
}

fn skip(why: &str) {
    let msg = format!(
        "PostgreSQL tests SKIPPED: {why}. Set {URL_VAR} or install PostgreSQL (Debian: apt-get install postgresql)."
    );
    if required() {
        panic!("{msg} ({REQUIRE_VAR} is set, so this is a failure)");
    }
    eprintln!("\n!!!!! {msg}\n");
}

/// The process-wide server, started on first use. `None` (with the reason) when there is
/// none.
pub fn server() -> Result<&'static TestServer, &'static str> {
    static SERVER: OnceLock<Result<TestServer, String>> = OnceLock::new();
    SERVER
        .get_or_init(|| match std::env::var(URL_VAR) {
            Ok(url) if !url.is_empty() => Ok(TestServer {
                admin_url: url,
                data_dir: None,
            }),
            _ => start_cluster(),
        })
        .as_ref()
        .map_err(String::as_str)
}

/// The URL of a new, empty database on the test server, or `None` (after saying why) when
/// there is no server.
pub async fn fresh_database() -> Option<String> {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let server = match server() {
        Ok(s) => s,
        Err(why) => {
            skip(why);
            return None;
        }
    };
    let name = format!(
        "scimkit_test_{}_{}_{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let mut conn = PgConnection::connect(&server.admin_url)
        .await
        .unwrap_or_else(|e| panic!("connecting to the test server: {e}"));
    // `name` is made of ASCII letters, digits and `_` only.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
    let _ = conn.close().await;
    Some(with_database(&server.admin_url, &name))
}

/// A [`PostgresStore`] on a new, empty database (migrated), or `None` when there is no
/// server.
pub async fn fresh_store() -> Option<PostgresStore> {
    let url = fresh_database().await?;
    Some(
        PostgresStore::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("connecting to {url}: {e:?}")),
    )
}

/// `url` with its database replaced by `db` (the query string is kept).
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base
        .get(scheme_end..)
        .and_then(|rest| rest.find('/'))
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{db}", base.get(..authority_end).unwrap_or(base));
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

fn find_bin(name: &str) -> Option<PathBuf> {
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let p = e.path().join("bin").join(name);
            p.is_file().then_some((v, p))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, p)| p)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A command run as the cluster's owner.
fn as_owner(root: bool, program: &Path) -> Command {
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn run(mut c: Command, what: &str) -> Result<(), String> {
    let out = c
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn start_cluster() -> Result<TestServer, String> {
    let initdb = find_bin("initdb").ok_or("no `initdb` found")?;
    let pg_ctl = initdb
        .parent()
        .map(|d| d.join("pg_ctl"))
        .filter(|p| p.is_file())
        .or_else(|| find_bin("pg_ctl"))
        .ok_or("no `pg_ctl` found")?;
    // Resolve symlinks (/usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb) so that
    // initdb finds the matching `postgres` binary.
    let initdb = std::fs::canonicalize(&initdb).unwrap_or(initdb);
    let pg_ctl = std::fs::canonicalize(&pg_ctl).unwrap_or(pg_ctl);
    let root = is_root();
    let dir = std::env::temp_dir().join(format!(
        "scimkit-pg-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    if root {
        run(
            {
                let mut c = Command::new("chown");
                c.arg("postgres:").arg(&dir);
                c
            },
            "chown of the cluster directory to `postgres`",
        )?;
    }
    let data = dir.join("data");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("finding a free port: {e}"))?
        .port();
    let mut init = as_owner(root, &initdb);
    init.arg("-D").arg(&data).args([
        "-U",
        "postgres",
        "-A",
        "trust",
        "-E",
        "UTF8",
        "--locale=C",
        "--no-sync",
    ]);
    run(init, "initdb")?;
    // The watchdog: stops the cluster and removes it once this process is gone.
    let stop = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
         {owner}'{pg_ctl}' -D '{data}' -m immediate stop >/dev/null 2>&1; rm -rf '{dir}'",
        pid = std::process::id(),
        owner = if root { "runuser -u postgres -- " } else { "" },
        pg_ctl = pg_ctl.display(),
        data = data.display(),
        dir = dir.display(),
    );
    Command::new("sh")
        .args(["-c", &stop])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting the cluster watchdog: {e}"))?;
    let opts = format!(
        "-c listen_addresses=127.0.0.1 -p {port} -k {sock} -c fsync=off \
         -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
        sock = dir.display()
    );
    let mut start = as_owner(root, &pg_ctl);
    start
        .arg("-D")
        .arg(&data)
        .arg("-o")
        .arg(opts)
        .arg("-l")
        .arg(dir.join("log"))
        .args(["-w", "-t", "60", "start"]);
    run(start, "pg_ctl start")?;
    Ok(TestServer {
        admin_url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        data_dir: Some(data),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_replace_the_path() {
        assert_eq!(
            with_database("postgres://u:p@h:5/postgres?sslmode=disable", "x"),
            "postgres://u:p@h:5/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }
}
