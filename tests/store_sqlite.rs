//! `SqliteStore` on real database files in a temporary directory: the store contract suite
//! (filter equivalence corpus included), the tenant store contract, an SQL-injection corpus,
//! a SIGKILL durability test, migration idempotence and the case-folding migration.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use chrono::Utc;
use scimkit::store::sqlite::{Durability, SqliteOptions, SqliteStore};
use scimkit::store::testing::{self, base_time, simple_user, user_request, Fixture, TaskFuture};
use scimkit::store::{view_document, ListQuery, ResourceStore};
use scimkit::{filter::Filter, resource::ResourceId};
use serde_json::{json, Value};

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "scimkit-sqlite-{}-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            Utc::now().timestamp_nanos_opt().unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn db(&self) -> PathBuf {
        self.0.join("scim.db")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn open(path: &Path) -> Arc<SqliteStore> {
    Arc::new(SqliteStore::open(path).await.expect("open"))
}

fn spawn(task: TaskFuture) -> TaskFuture {
    let handle = tokio::spawn(task);
    Box::pin(async move { handle.await.expect("task panicked") })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn contract_suite() {
    let dir = Arc::new(TempDir::new("contract"));
    let n = Arc::new(AtomicUsize::new(0));
    testing::run_contract_suite(
        || {
            let (dir, n) = (Arc::clone(&dir), Arc::clone(&n));
            async move {
                let i = n.fetch_add(1, Ordering::Relaxed);
                let store: Arc<dyn ResourceStore> =
                    open(&dir.0.join(format!("contract-{i}.db"))).await;
                store
            }
        },
        spawn,
    )
    .await;
}

#[tokio::test]
async fn tenant_store_contract() {
    let dir = TempDir::new("tenants");
    testing::check_tenant_store(&*open(&dir.db()).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_writers_lose_nothing() {
    let dir = TempDir::new("concurrent");
    for i in 0..3 {
        let store = open(&dir.0.join(format!("c{i}.db"))).await;
        testing::check_concurrent_member_adds(store.clone(), &Fixture::new(), &spawn).await;
        testing::check_concurrent_read_modify_write(store, &Fixture::new(), &spawn).await;
    }
}

/// Values and attribute names meant to break out of SQL text or LIKE patterns.
fn hostile_values() -> Vec<String> {
    [
        "'",
        "''",
        "' OR '1'='1",
        "\" OR \"1\"=\"1",
        "x'); DROP TABLE resources; --",
        "\\",
        "\\'",
        "a\\\"b",
        "%",
        "_",
        "a%b",
        "a_b",
        "100%_done",
        "nul\u{0}byte",
        "\u{0}",
        "Ünïcödé",
        "ǅungla",
        "İstanbul",
        "ΣΊΣΥΦΟΣ",
        "日本語",
        "emoji 🎉",
        "$.userName",
        "*",
        "?1",
        ":name",
        "@x",
        "]",
        "[",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn json_escape(s: &str) -> String {
    let quoted = serde_json::to_string(s).unwrap();
    quoted[1..quoted.len() - 1].to_owned()
}

#[tokio::test]
async fn sql_injection_corpus_changes_nothing_and_answers_exactly() {
    let dir = TempDir::new("injection");
    let store = open(&dir.db()).await;
    let fx = Fixture::new();
    let tn = &fx.tenant;
    let values = hostile_values();
    for (i, v) in values.iter().enumerate() {
        let mut doc = simple_user(&format!("user{i} {v}"));
        doc["title"] = json!(v);
        doc["emails"] = json!([{"value": format!("{v}@example.com"), "type": v}]);
        doc["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] =
            json!({"department": v, "employeeNumber": format!("{i}{v}")});
        store
            .create(
                tn,
                &fx.users,
                user_request(&format!("u{i}"), doc, base_time()),
            )
            .await
            .unwrap();
    }
    let all = ListQuery::default();
    let before = testing::list_exact(&*store, tn, &fx.users, &all).await;
    let views: Vec<(String, Value)> = before
        .resources
        .iter()
        .map(|r| (r.id.to_string(), view_document(r)))
        .collect();

    let mut filters = Vec::new();
    for v in &values {
        let e = json_escape(v);
        for op in ["eq", "ne", "co", "sw", "ew", "gt", "lt"] {
            filters.push(format!(r#"title {op} "{e}""#));
            filters.push(format!(r#"userName {op} "{e}""#));
        }
        filters.push(format!(r#"emails[type eq "{e}" or value co "{e}"]"#));
        filters.push(format!(r#"emails.value ew "{e}@EXAMPLE.COM""#));
        filters.push(format!(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "{e}""#
        ));
        filters.push(format!(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber co "{e}""#
        ));
        filters.push(format!(r#"not (title co "{e}") and userName sw "user""#));
        filters.push(format!(r#"id eq "{e}" or externalId eq "{e}""#));
    }
    let mut checked = 0;
    for text in &filters {
        let filter = Filter::parse(text).unwrap_or_else(|e| panic!("`{text}`: {e}"));
        let compiled = filter.compile(&fx.users, false).unwrap();
        let expected: BTreeSet<&str> = views
            .iter()
            .filter(|(_, v)| compiled.matches(v))
            .map(|(id, _)| id.as_str())
            .collect();
        let page = testing::list_exact(
            &*store,
            tn,
            &fx.users,
            &ListQuery {
                filter: Some(filter),
                ..ListQuery::default()
            },
        )
        .await;
        let got: BTreeSet<&str> = page.resources.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(got, expected, "`{text}`");
        assert_eq!(page.total_results, expected.len(), "`{text}`");
        checked += 1;
    }
    assert!(checked > 400);

    // Hostile attribute names are refused by the parser or match nothing; none reaches SQL.
    for name in [
        "a'b", "a\"b", "a;b", "a%b", "a b", "a\u{0}b", "ü", "$.x", "a--",
    ] {
        let text = format!(r#"{name} eq "x""#);
        if let Ok(f) = Filter::parse(&text) {
            let page = testing::list_exact(
                &*store,
                tn,
                &fx.users,
                &ListQuery {
                    filter: Some(f),
                    ..ListQuery::default()
                },
            )
            .await;
            assert_eq!(page.total_results, 0, "`{text}`");
        }
    }

    // Nothing changed.
    let after = testing::list_exact(&*store, tn, &fx.users, &all).await;
    assert_eq!(after, before);
    assert_eq!(
        store.changes_since(tn, 0, 1000).await.unwrap().len(),
        values.len()
    );
}

#[tokio::test]
async fn reopening_applies_migrations_once_and_keeps_everything() {
    let dir = TempDir::new("reopen");
    let fx = Fixture::new();
    let tn = &fx.tenant;
    {
        let store = open(&dir.db()).await;
        assert_eq!(store.schema_version(), 8);
        store
            .create(
                tn,
                &fx.users,
                user_request("u1", simple_user("a"), base_time()),
            )
            .await
            .unwrap();
        store
            .create(
                tn,
                &fx.groups,
                testing::group_request("g1", "G", &["u1"], base_time()),
            )
            .await
            .unwrap();
        store.close().await;
    }
    // Two stores on the same file at once, then a third after they close.
    let (a, b) = tokio::join!(
        SqliteStore::open(dir.db()),
        SqliteStore::open_with(
            SqliteOptions::new(dir.db())
                .readers(1)
                .durability(Durability::Normal)
        )
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!((a.schema_version(), b.schema_version()), (8, 8));
    let g = b.get(tn, &fx.groups, &"g1".into(), true).await.unwrap();
    assert_eq!(g.members.unwrap()[0].value.as_str(), "u1");
    // A write through one is visible through the other.
    a.create(
        tn,
        &fx.users,
        user_request("u2", simple_user("b"), base_time()),
    )
    .await
    .unwrap();
    assert!(b.get(tn, &fx.users, &"u2".into(), false).await.is_ok());
    // Uniqueness holds across both.
    assert!(b
        .create(
            tn,
            &fx.users,
            user_request("u3", simple_user("B"), base_time())
        )
        .await
        .is_err());
    a.close().await;
    b.close().await;
    let c = open(&dir.db()).await;
    assert_eq!(c.schema_version(), 8);
    let feed = c.changes_since(tn, 0, 100).await.unwrap();
    assert_eq!(feed.len(), 3);
    assert_eq!(feed.iter().map(|c| c.seq).collect::<Vec<_>>(), [1, 2, 3]);
}

/// The fold stores used before migration 3: `str::to_lowercase`.
fn old_fold(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(s.to_lowercase()),
        Value::Array(items) => Value::Array(items.iter().map(old_fold).collect()),
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, x)| (k.clone(), old_fold(x))).collect())
        }
        other => other.clone(),
    }
}

/// Rewrites every folded copy of the database at `path` as the old fold left it, and forgets
/// migration 3: the database a scimkit before Unicode full case folding wrote.
async fn downgrade_to_old_fold(path: &Path) {
    use sqlx::{Connection, Row};
    let url = format!("sqlite://{}", path.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let rows = sqlx::query("SELECT ord, doc FROM resources")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    for row in &rows {
        let ord: i64 = row.get("ord");
        let doc: Value = serde_json::from_str(row.get::<&str, _>("doc")).unwrap();
        let text = |k: &str| doc.get(k).and_then(Value::as_str).map(str::to_lowercase);
        sqlx::query(
            "UPDATE resources SET fdoc = ?1, user_name_cf = ?2, display_name_cf = ?3 WHERE ord = ?4",
        )
        .bind(old_fold(&doc).to_string())
        .bind(text("userName"))
        .bind(text("displayName"))
        .bind(ord)
        .execute(&mut conn)
        .await
        .unwrap();
    }
    sqlx::query("UPDATE members SET member_cf = lower(member_id)")
        .execute(&mut conn)
        .await
        .unwrap();
    // userName keys were folded (SQLite's lower() only folds ASCII, so do it in Rust)
    let keys = sqlx::query("SELECT tenant, rt, attribute, value, id FROM unique_keys")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    for k in &keys {
        let id: String = k.get("id");
        let doc: String = sqlx::query_scalar("SELECT doc FROM resources WHERE id = ?1")
            .bind(&id)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        let doc: Value = serde_json::from_str(&doc).unwrap();
        let attribute: String = k.get("attribute");
        let old = doc[attribute.as_str()].as_str().unwrap().to_lowercase();
        sqlx::query("UPDATE unique_keys SET value = ?1 WHERE id = ?2 AND attribute = ?3")
            .bind(old)
            .bind(&id)
            .bind(&attribute)
            .execute(&mut conn)
            .await
            .unwrap();
    }
    // A database of schema version 2 has none of the later migrations either.
    for sql in [
        "DROP TABLE provisioning_log",
        "DROP TABLE provisioning_log_tenants",
        "ALTER TABLE changes DROP COLUMN members",
        "ALTER TABLE changes DROP COLUMN actor",
        "DELETE FROM scimkit_migrations WHERE version >= 3",
    ] {
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    }
    conn.close().await.unwrap();
}

/// Migration 3: a database whose folded copies were written with the old fold (lower-casing)
/// is re-folded on open, in batches, from the documents: filters pushed down to SQL and
/// uniqueness then follow Unicode full case folding for the old rows too.
#[tokio::test]
async fn migration_3_refolds_values_written_with_the_old_fold() {
    use sqlx::{Connection, Row};
    let dir = TempDir::new("refold");
    let fx = Fixture::new();
    let tn = &fx.tenant;
    // More rows than one migration batch (200).
    let users = 230;
    {
        let store =
            SqliteStore::open_with(SqliteOptions::new(dir.db()).durability(Durability::Normal))
                .await
                .unwrap();
        let t = base_time();
        let doc = json!({"schemas": [scimkit::schema::USER_SCHEMA], "userName": "Straße@x.test",
                         "displayName": "Οδυσσευς", "emails": [{"value": "ΟΔΟΣ@x.test"}]});
        store
            .create(tn, &fx.users, user_request("strasse", doc, t))
            .await
            .unwrap();
        store
            .create(
                tn,
                &fx.users,
                user_request("Ωmega", simple_user("omega"), t),
            )
            .await
            .unwrap();
        for i in 0..users {
            store
                .create(
                    tn,
                    &fx.users,
                    user_request(&format!("u{i}"), simple_user(&format!("ßuser{i}")), t),
                )
                .await
                .unwrap();
        }
        store
            .create(
                tn,
                &fx.groups,
                testing::group_request("g1", "Größe", &["Ωmega"], t),
            )
            .await
            .unwrap();
        store.close().await;
    }
    downgrade_to_old_fold(&dir.db()).await;
    let url = format!("sqlite://{}", dir.db().display());
    {
        // The downgrade did write old-fold values.
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let cf: String =
            sqlx::query_scalar("SELECT user_name_cf FROM resources WHERE id = 'strasse'")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        assert_eq!(cf, "straße@x.test");
        // Migration 3 is no longer recorded (the later ones, which do not touch the folded
        // copies, still are).
        let refold: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM scimkit_migrations WHERE version = 3")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        assert_eq!(refold, 0);
        conn.close().await.unwrap();
    }

    let store = open(&dir.db()).await;
    assert_eq!(store.schema_version(), 8);
    store.close().await;
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let row = sqlx::query(
        "SELECT user_name_cf, display_name_cf, fdoc FROM resources WHERE id = 'strasse'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(row.get::<String, _>("user_name_cf"), "strasse@x.test");
    assert_eq!(row.get::<String, _>("display_name_cf"), "οδυσσευσ");
    let fdoc: Value = serde_json::from_str(row.get::<&str, _>("fdoc")).unwrap();
    assert_eq!(fdoc["emails"][0]["value"], "οδοσ@x.test");
    assert_eq!(fdoc["userName"], "strasse@x.test");
    let refolded: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM resources WHERE user_name_cf LIKE 'ssuser%' AND fdoc LIKE '%\"ssuser%'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(refolded, users as i64, "every batch was re-folded");
    let key: String = sqlx::query_scalar("SELECT value FROM unique_keys WHERE id = 'strasse'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(key, "strasse@x.test");
    let group_key: String = sqlx::query_scalar("SELECT value FROM unique_keys WHERE id = 'g1'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(group_key, "grösse");
    let member: String = sqlx::query_scalar("SELECT member_cf FROM members WHERE group_id = 'g1'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(member, "ωmega");
    conn.close().await.unwrap();

    // The store now answers by the new fold, for the old rows too, exactly in SQL.
    let store = open(&dir.db()).await;
    for (text, want) in [
        (r#"userName eq "STRASSE@X.TEST""#, &["strasse"][..]),
        (r#"displayName ew "ΕΥΣ""#, &["strasse"][..]),
        (r#"emails.value eq "ΟΔΟΣ@X.TEST""#, &["strasse"][..]),
        (r#"userName eq "SSUSER7""#, &["u7"][..]),
    ] {
        let q = ListQuery {
            filter: Some(Filter::parse(text).unwrap()),
            ..ListQuery::default()
        };
        let page = store.list(tn, &fx.users, &q).await.unwrap();
        assert_eq!(page.pushdown, scimkit::store::Pushdown::Exact, "`{text}`");
        let got: Vec<&str> = page.resources.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(got, want, "`{text}`");
    }
    let g = store
        .list(
            tn,
            &fx.groups,
            &ListQuery {
                filter: Some(Filter::parse(r#"members.value eq "ΩMEGA""#).unwrap()),
                ..ListQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        g.resources.len(),
        1,
        "members.value compares the re-folded member ids"
    );
    let dup = store
        .create(
            tn,
            &fx.users,
            user_request("dup", simple_user("STRASSE@x.test"), base_time()),
        )
        .await;
    assert!(
        matches!(&dup, Err(scimkit::store::StoreError::Conflict { attribute }) if attribute == "userName"),
        "{dup:?}"
    );
    // Opening again finds the migration done.
    store.close().await;
    assert_eq!(open(&dir.db()).await.schema_version(), 8);
}

#[tokio::test]
async fn opening_an_unusable_path_is_an_error() {
    let dir = TempDir::new("bad");
    // A directory is not a database file.
    assert!(SqliteStore::open(&dir.0).await.is_err());
    // Nor is a file of garbage.
    let junk = dir.0.join("junk.db");
    std::fs::write(&junk, vec![0x42u8; 8192]).unwrap();
    assert!(SqliteStore::open(&junk).await.is_err());
}

const WRITER_ENV: &str = "SCIMKIT_SQLITE_KILL_WRITER_DB";

/// The child half of `acknowledged_writes_survive_sigkill`: when started by it (the database
/// path in `SCIMKIT_SQLITE_KILL_WRITER_DB`), creates users and prints the id of each one the
/// store acknowledged, until killed. Started any other way it has nothing to do.
#[tokio::test]
async fn kill_test_writer_child() {
    let Ok(path) = std::env::var(WRITER_ENV) else {
        return;
    };
    let store = open(Path::new(&path)).await;
    let fx = Fixture::new();
    let mut out = std::io::stdout().lock();
    for i in 0.. {
        let id = format!("k{i:07}");
        let mut req = user_request(&id, simple_user(&id), Utc::now());
        req.members.clear();
        store.create(&fx.tenant, &fx.users, req).await.unwrap();
        writeln!(out, "ACK {id}").unwrap();
        out.flush().unwrap();
    }
}

#[tokio::test]
async fn acknowledged_writes_survive_sigkill() {
    let dir = TempDir::new("kill");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "kill_test_writer_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(WRITER_ENV, dir.db())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acked = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(id) = line.strip_prefix("ACK ") {
            acked.push(id.to_owned());
            if acked.len() == 300 {
                // SIGKILL mid-stream: the child is writing its next user.
                child.kill().unwrap();
                break;
            }
        }
    }
    child.wait().unwrap();
    assert_eq!(acked.len(), 300, "the writer stopped early");
    let store = open(&dir.db()).await;
    let fx = Fixture::new();
    for id in &acked {
        store
            .get(&fx.tenant, &fx.users, &ResourceId::new(id.as_str()), false)
            .await
            .unwrap_or_else(|e| panic!("acknowledged {id} lost: {e}"));
    }
    let feed = store.changes_since(&fx.tenant, 0, 100_000).await.unwrap();
    assert!(feed.len() >= acked.len());
}

/// The equivalence corpus answered by SQL alone: every filter is pushed down exactly
/// (paging and `totalResults` included), except those reading a member's `type` or
/// `display`, which are answered as a superset.
#[tokio::test]
async fn the_filter_corpus_is_pushed_down_exactly() {
    let dir = TempDir::new("pushdown");
    let store = open(&dir.db()).await;
    let fx = Fixture::new();
    let tn = &fx.tenant;
    testing::load_users(&*store, &fx, tn, 200).await;
    let user_ids: Vec<String> = (0..200).map(|i| format!("u{i:05}")).collect();
    for g in 0..20usize {
        let members: Vec<&str> = user_ids
            .iter()
            .skip(g)
            .step_by(g + 3)
            .map(String::as_str)
            .collect();
        store
            .create(
                tn,
                &fx.groups,
                testing::group_request(
                    &format!("g{g:03}"),
                    &format!("Group {g}"),
                    &members,
                    base_time(),
                ),
            )
            .await
            .unwrap();
    }
    let mut exact = 0;
    for (rt, filters) in [
        (&fx.users, testing::user_filters()),
        (&fx.groups, testing::group_filters(&user_ids)),
    ] {
        let everything = store
            .list(
                tn,
                rt,
                &ListQuery {
                    include_members: true,
                    ..ListQuery::default()
                },
            )
            .await
            .unwrap();
        let views: Vec<(String, Value)> = everything
            .resources
            .iter()
            .map(|r| (r.id.to_string(), view_document(r)))
            .collect();
        for text in &filters {
            let filter = Filter::parse(text).unwrap();
            let compiled = filter.compile(rt, false).unwrap();
            let expected: Vec<&str> = views
                .iter()
                .filter(|(_, v)| compiled.matches(v))
                .map(|(id, _)| id.as_str())
                .collect();
            let q = ListQuery {
                filter: Some(filter),
                start_index: 2,
                count: 3,
                ..ListQuery::default()
            };
            let page = store.list(tn, rt, &q).await.unwrap();
            let member_detail = text.contains("members.type")
                || text.contains("members.display")
                || text.contains("members[type");
            if member_detail {
                assert_ne!(page.pushdown, scimkit::store::Pushdown::Exact, "`{text}`");
                continue;
            }
            assert_eq!(page.pushdown, scimkit::store::Pushdown::Exact, "`{text}`");
            assert_eq!(page.total_results, expected.len(), "`{text}`");
            let want: Vec<&str> = expected.iter().skip(1).take(3).copied().collect();
            let got: Vec<&str> = page.resources.iter().map(|r| r.id.as_str()).collect();
            assert_eq!(got, want, "`{text}` expected {expected:?}");
            exact += 1;
        }
    }
    assert!(exact >= 200, "only {exact} filters pushed down");
}

#[tokio::test]
async fn create_many_is_all_or_nothing() {
    let dir = TempDir::new("many");
    let store = open(&dir.db()).await;
    let fx = Fixture::new();
    let tn = &fx.tenant;
    let reqs = |names: &[&str]| {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| user_request(&format!("{n}-{i}"), simple_user(n), base_time()))
            .collect::<Vec<_>>()
    };
    let made = store
        .create_many(tn, &fx.users, reqs(&["a", "b", "c"]))
        .await
        .unwrap();
    assert_eq!(made.len(), 3);
    // "B" collides with "b" (userName is not caseExact): nothing of the batch is kept.
    let err = store
        .create_many(tn, &fx.users, reqs(&["d", "B", "e"]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, scimkit::store::StoreError::Conflict { .. }),
        "{err:?}"
    );
    let all = store
        .list(tn, &fx.users, &ListQuery::default())
        .await
        .unwrap();
    assert_eq!(all.total_results, 3);
    assert_eq!(store.changes_since(tn, 0, 100).await.unwrap().len(), 3);
}

#[tokio::test]
async fn provisioning_log() {
    let dir = TempDir::new("provisioning-log");
    let store = open(&dir.db()).await;
    testing::check_provisioning_log(&*store).await;
    // Events and health survive a reopen.
    use scimkit::{events::LogFilter, store::ProvisioningLog};
    let t = scimkit::tenant::TenantId::new("log-b").unwrap();
    let before = store.query(&t, &LogFilter::all(), None, 10).await.unwrap();
    let health = store.health(&t).await.unwrap();
    store.close().await;
    let again = open(&dir.db()).await;
    assert_eq!(
        again.query(&t, &LogFilter::all(), None, 10).await.unwrap(),
        before
    );
    assert_eq!(again.health(&t).await.unwrap(), health);
}

/// The precomputed sort keys follow every write, and sorted pages agree with the engine.
#[tokio::test]
async fn sort_keys_follow_writes() {
    let dir = TempDir::new("sortkeys");
    testing::check_sort_keys(&*open(&dir.db()).await, &Fixture::new()).await;
}

/// Migration 8 computes the keys of resources stored before it (here: a database whose keys
/// and markers are removed and the migration forgotten), and a sorted page then reads them.
#[tokio::test]
async fn migration_8_backfills_sort_keys() {
    use scimkit::filter::SortSpec;
    use sqlx::Connection;
    let dir = TempDir::new("sortkeys-backfill");
    let fx = Fixture::new();
    let tn = &fx.tenant;
    let n = 520; // more than one batch (500)
    {
        let store = open(&dir.db()).await;
        let reqs = (0..n)
            .map(|i| {
                user_request(
                    &format!("u{i:04}"),
                    json!({"schemas": [scimkit::schema::USER_SCHEMA], "userName": format!("user{i}"),
                           "emails": [{"value": format!("{}@x", (i * 7919) % n)}]}),
                    base_time(),
                )
            })
            .collect();
        store.create_many(tn, &fx.users, reqs).await.unwrap();
        store.close().await;
    }
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", dir.db().display()))
        .await
        .unwrap();
    for sql in [
        "DELETE FROM sort_keys",
        "DELETE FROM sort_key_sets",
        "DELETE FROM scimkit_migrations WHERE version = 8",
    ] {
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    }
    conn.close().await.unwrap();
    let store = open(&dir.db()).await;
    assert_eq!(store.schema_version(), 8);
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", dir.db().display()))
        .await
        .unwrap();
    let keys: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sort_keys WHERE path = '|emails|value'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(keys, n as i64, "every resource got its key back");
    let sets: i64 = sqlx::query_scalar("SELECT count(*) FROM sort_key_sets")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(sets, 1, "the (tenant, User) set is marked complete");
    conn.close().await.unwrap();
    let q = ListQuery {
        sort: Some(SortSpec::parse("emails.value", Some("descending")).unwrap()),
        start_index: 3,
        count: 4,
        ..ListQuery::default()
    };
    let all = store
        .list(
            tn,
            &fx.users,
            &ListQuery {
                count: n,
                ..ListQuery::default()
            },
        )
        .await
        .unwrap();
    let want = scimkit::store::apply_query(&fx.users, &q, all.resources).unwrap();
    let got = store.list(tn, &fx.users, &q).await.unwrap();
    let ids = |p: &scimkit::store::Page| {
        p.resources
            .iter()
            .map(|r| r.id.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&got), ids(&want));
    assert_eq!(got.total_results, n);
}
