//! A small host, end to end (issue 19's acceptance): a service with its own SQLite file and
//! its own `users`, `groups` and `memberships` tables, a custom CostCenter extension read
//! through the typed accessors, a seat limit enforced by a write policy, and the feed
//! follower keeping the host's tables in step, with its cursor saved in the host's file in
//! the same transaction as each update. An Okta-like sequence goes through
//! `ScimService::handle`; the follower is crashed mid-batch and restarted, woken by the
//! store's subscription, and resynchronised after the feed was pruned. At every check the
//! host's tables equal the SCIM state, and every change was applied exactly once.
#![cfg(feature = "sqlite")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::{Method, Request};
use serde_json::{json, Value};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::Row;

use scimkit::feed::MemberChanges;
use scimkit::follow::{
    ChangeBatch, ChangeWithState, CursorStore, FeedFollower, FeedHandler, FollowError, HostError,
};
use scimkit::resource::Extension;
use scimkit::schema::{AttributeDef, Schema};
use scimkit::service::{PendingWrite, WriteOperation, WritePolicy};
use scimkit::store::sqlite::SqliteStore;
use scimkit::store::{ChangeRetention, ResourceStore};
use scimkit::{error::ScimError, schema::SchemaRegistry, service::ScimService, tenant::TenantId};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const FINANCE: &str = "urn:example:params:scim:schemas:extension:finance:2.0:User";
const SEATS: usize = 3;

/// The host's custom extension, read with `User::extension::<CostCenter>()`.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct CostCenter {
    cost_center: String,
}

impl Extension for CostCenter {
    const URN: &'static str = FINANCE;
}

/// A seat limit: at most `SEATS` active users per tenant.
struct SeatLimit {
    service: Arc<OnceLock<ScimService>>,
}

#[async_trait]
impl WritePolicy for SeatLimit {
    async fn check(&self, write: &PendingWrite<'_>) -> Result<(), ScimError> {
        let active = |doc: Option<&Value>| doc.and_then(|d| d["active"].as_bool()) == Some(true);
        let activates = write.resource_type.name() == "User"
            && matches!(
                write.operation,
                WriteOperation::Create | WriteOperation::Replace | WriteOperation::Patch
            )
            && active(write.document)
            && !active(write.current);
        if !activates {
            return Ok(());
        }
        let service = self
            .service
            .get()
            .ok_or_else(|| ScimError::Forbidden("not ready".into()))?;
        let in_use = service
            .users(write.tenant)
            .list(Some("active eq true"), 1, 0)
            .await?
            .total_results;
        if in_use >= SEATS {
            return Err(ScimError::Forbidden(format!(
                "the seat limit of {SEATS} active users is reached"
            )));
        }
        Ok(())
    }
}

/// The host's own database: its tables, its feed cursor, and a per-change counter.
#[derive(Clone)]
struct HostDb {
    pool: SqlitePool,
}

impl HostDb {
    async fn open(path: &PathBuf) -> HostDb {
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(
                SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true),
            )
            .await
            .unwrap();
        for ddl in [
            "CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, user_name TEXT NOT NULL, \
             active INTEGER NOT NULL, cost_center TEXT)",
            "CREATE TABLE IF NOT EXISTS groups (id TEXT PRIMARY KEY, display_name TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS memberships (group_id TEXT NOT NULL, user_id TEXT NOT NULL, \
             PRIMARY KEY (group_id, user_id))",
            "CREATE TABLE IF NOT EXISTS feed_cursor (tenant TEXT PRIMARY KEY, seq INTEGER NOT NULL)",
            "CREATE TABLE IF NOT EXISTS applied (tenant TEXT NOT NULL, seq INTEGER NOT NULL, \
             times INTEGER NOT NULL, PRIMARY KEY (tenant, seq))",
        ] {
            sqlx::query(ddl).execute(&pool).await.unwrap();
        }
        HostDb { pool }
    }

    async fn cursor(&self, tenant: &TenantId) -> Option<u64> {
        sqlx::query("SELECT seq FROM feed_cursor WHERE tenant = ?1")
            .bind(tenant.as_str())
            .fetch_optional(&self.pool)
            .await
            .unwrap()
            .map(|r| r.get::<i64, _>(0) as u64)
    }

    async fn users(&self) -> Vec<(String, String, bool, Option<String>)> {
        sqlx::query("SELECT id, user_name, active, cost_center FROM users ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get::<i64, _>(2) != 0, r.get(3)))
            .collect()
    }

    async fn memberships(&self) -> BTreeSet<(String, String)> {
        sqlx::query("SELECT group_id, user_id FROM memberships")
            .fetch_all(&self.pool)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    }

    async fn groups(&self) -> Vec<(String, String)> {
        sqlx::query("SELECT id, display_name FROM groups ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    }

    /// (number of changes applied, the most times one was applied).
    async fn applied(&self, tenant: &TenantId) -> (u64, u64) {
        let r =
            sqlx::query("SELECT COUNT(*), COALESCE(MAX(times), 0) FROM applied WHERE tenant = ?1")
                .bind(tenant.as_str())
                .fetch_one(&self.pool)
                .await
                .unwrap();
        (r.get::<i64, _>(0) as u64, r.get::<i64, _>(1) as u64)
    }
}

#[async_trait]
impl CursorStore for HostDb {
    async fn load(&self, tenant: &TenantId) -> Result<Option<u64>, HostError> {
        Ok(self.cursor(tenant).await)
    }

    async fn save(&self, _tenant: &TenantId, _seq: u64) -> Result<(), HostError> {
        Err("the handler saves the cursor in its own transaction".into())
    }
}

/// The host's feed handler: applies each batch and saves the cursor in one transaction.
struct Handler {
    db: HostDb,
    service: ScimService,
    /// Fails (as a crash would) when this many changes were seen, before its commit.
    crash_after: Option<usize>,
    seen: AtomicUsize,
}

type Tx = sqlx::Transaction<'static, sqlx::Sqlite>;

async fn save_cursor(tx: &mut Tx, tenant: &TenantId, seq: u64) -> Result<(), HostError> {
    sqlx::query(
        "INSERT INTO feed_cursor (tenant, seq) VALUES (?1, ?2) \
         ON CONFLICT (tenant) DO UPDATE SET seq = excluded.seq",
    )
    .bind(tenant.as_str())
    .bind(seq as i64)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Handler {
    fn new(db: &HostDb, service: &ScimService, crash_after: Option<usize>) -> Arc<Handler> {
        Arc::new(Handler {
            db: db.clone(),
            service: service.clone(),
            crash_after,
            seen: AtomicUsize::new(0),
        })
    }

    async fn upsert_user(tx: &mut Tx, user: &scimkit::resource::User) -> Result<(), HostError> {
        let cost_center = user.extension::<CostCenter>()?.map(|c| c.cost_center);
        sqlx::query(
            "INSERT INTO users (id, user_name, active, cost_center) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (id) DO UPDATE SET user_name = excluded.user_name, \
             active = excluded.active, cost_center = excluded.cost_center",
        )
        .bind(user.id.as_deref().unwrap_or_default())
        .bind(&user.user_name)
        .bind(user.active.unwrap_or(true))
        .bind(cost_center)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    async fn replace_members(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        group: &str,
    ) -> Result<(), HostError> {
        sqlx::query("DELETE FROM memberships WHERE group_id = ?1")
            .bind(group)
            .execute(&mut **tx)
            .await?;
        let mut start = 1;
        loop {
            let page = match self.service.groups(tenant).members(group, start, 500).await {
                Ok(p) => p,
                // Deleted since: a later change of the batch or feed says so.
                Err(ScimError::NotFound(_)) => return Ok(()),
                Err(e) => return Err(e.into()),
            };
            for m in &page.members {
                sqlx::query(
                    "INSERT OR IGNORE INTO memberships (group_id, user_id) VALUES (?1, ?2)",
                )
                .bind(group)
                .bind(m.value.as_str())
                .execute(&mut **tx)
                .await?;
            }
            start += page.members.len();
            if page.members.is_empty() || start > page.total_results {
                return Ok(());
            }
        }
    }

    async fn apply_one(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        c: &ChangeWithState,
    ) -> Result<(), HostError> {
        let id = c.change.id.as_str();
        match c.change.resource_type.as_str() {
            "User" => match c.user() {
                Some(user) => Self::upsert_user(tx, &user?).await?,
                None => {
                    for sql in [
                        "DELETE FROM users WHERE id = ?1",
                        "DELETE FROM memberships WHERE user_id = ?1",
                    ] {
                        sqlx::query(sql).bind(id).execute(&mut **tx).await?;
                    }
                }
            },
            "Group" => {
                match c.group() {
                    Some(group) => {
                        sqlx::query(
                            "INSERT INTO groups (id, display_name) VALUES (?1, ?2) \
                             ON CONFLICT (id) DO UPDATE SET display_name = excluded.display_name",
                        )
                        .bind(id)
                        .bind(&group?.display_name)
                        .execute(&mut **tx)
                        .await?;
                    }
                    None => {
                        for sql in [
                            "DELETE FROM groups WHERE id = ?1",
                            "DELETE FROM memberships WHERE group_id = ?1",
                        ] {
                            sqlx::query(sql).bind(id).execute(&mut **tx).await?;
                        }
                        return Ok(());
                    }
                }
                match &c.change.members {
                    Some(MemberChanges::Delta { added, removed }) => {
                        for m in added {
                            sqlx::query(
                                "INSERT OR IGNORE INTO memberships (group_id, user_id) VALUES (?1, ?2)",
                            )
                            .bind(id)
                            .bind(m.as_str())
                            .execute(&mut **tx)
                            .await?;
                        }
                        for m in removed {
                            sqlx::query(
                                "DELETE FROM memberships WHERE group_id = ?1 AND user_id = ?2",
                            )
                            .bind(id)
                            .bind(m.as_str())
                            .execute(&mut **tx)
                            .await?;
                        }
                    }
                    None => {}
                    // `Replaced`, and whatever a later version adds: read them afresh.
                    Some(_) => self.replace_members(tx, tenant, id).await?,
                }
            }
            other => return Err(format!("unexpected resource type {other}").into()),
        }
        sqlx::query(
            "INSERT INTO applied (tenant, seq, times) VALUES (?1, ?2, 1) \
             ON CONFLICT (tenant, seq) DO UPDATE SET times = times + 1",
        )
        .bind(tenant.as_str())
        .bind(c.change.seq as i64)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

#[async_trait]
impl FeedHandler for Handler {
    async fn apply(&self, batch: &ChangeBatch) -> Result<(), HostError> {
        let mut tx = self.db.pool.begin().await?;
        for c in &batch.changes {
            let n = self.seen.fetch_add(1, Ordering::SeqCst) + 1;
            if self.crash_after.is_some_and(|limit| n > limit) {
                // The transaction is dropped: nothing of this batch is kept.
                return Err("simulated crash".into());
            }
            self.apply_one(&mut tx, &batch.tenant, c).await?;
        }
        save_cursor(&mut tx, &batch.tenant, batch.cursor()).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn resync(&self, tenant: &TenantId, resume_at: u64) -> Result<(), HostError> {
        let mut tx = self.db.pool.begin().await?;
        for sql in [
            "DELETE FROM users",
            "DELETE FROM groups",
            "DELETE FROM memberships",
        ] {
            sqlx::query(sql).execute(&mut *tx).await?;
        }
        let users = self.service.users(tenant).list(None, 1, 1000).await?;
        for u in &users.resources {
            Self::upsert_user(&mut tx, u).await?;
        }
        let groups = self.service.groups(tenant).list(None, 1, 1000).await?;
        for g in &groups.resources {
            let id = g.id.as_deref().unwrap_or_default();
            sqlx::query("INSERT INTO groups (id, display_name) VALUES (?1, ?2)")
                .bind(id)
                .bind(&g.display_name)
                .execute(&mut *tx)
                .await?;
            self.replace_members(&mut tx, tenant, id).await?;
        }
        save_cursor(&mut tx, tenant, resume_at).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The service side: its own SQLite file, the CostCenter extension, the seat limit.
struct Scim {
    service: ScimService,
    store: Arc<SqliteStore>,
    tenant: TenantId,
    token: String,
    token_id: String,
}

impl Scim {
    async fn open(path: &PathBuf) -> Scim {
        let store = Arc::new(SqliteStore::open(path).await.unwrap());
        let mut registry = SchemaRegistry::default();
        registry
            .add_extension(
                "User",
                Schema {
                    id: FINANCE.into(),
                    name: "Finance".into(),
                    description: "The host's cost centre".into(),
                    attributes: vec![AttributeDef::string("costCenter")],
                },
                false,
            )
            .unwrap();
        let ready = Arc::new(OnceLock::new());
        let service = ScimService::builder(
            "https://app.example.com/scim/v2",
            Arc::clone(&store) as Arc<dyn ResourceStore>,
            Arc::clone(&store) as Arc<dyn scimkit::auth::TenantStore>,
        )
        .registry(registry)
        .write_policy(SeatLimit {
            service: Arc::clone(&ready),
        })
        .build()
        .unwrap();
        ready.set(service.clone()).ok().unwrap();
        let tenant = TenantId::new("acme").unwrap();
        let tenants = service.tenants();
        tenants
            .create_tenant(tenant.clone(), "Acme (Okta)", Default::default())
            .await
            .unwrap();
        let (record, secret) = tenants.issue_token(&tenant, "Okta", None).await.unwrap();
        Scim {
            service,
            store,
            tenant,
            token: secret.expose_secret().to_owned(),
            token_id: record.id.to_string(),
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let request = Request::builder()
            .method(method)
            .uri(format!("/scim/v2/acme{path}"))
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Content-Type", "application/scim+json")
            .body(body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string())))
            .unwrap();
        let response = self.service.handle(request).await;
        let status = response.status().as_u16();
        let body = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
        (status, body)
    }

    async fn ok(&self, method: Method, path: &str, body: Value, want: u16) -> Value {
        let (status, reply) = self.call(method, path, Some(body)).await;
        assert_eq!(status, want, "{path}: {reply}");
        reply
    }

    async fn create_user(&self, name: &str, cost_center: Option<&str>) -> String {
        let mut doc = json!({
            "schemas": [USER],
            "userName": name,
            "name": {"givenName": name, "familyName": "Example"},
            "emails": [{"value": name, "primary": true, "type": "work"}],
            "active": true,
        });
        if let Some(cc) = cost_center {
            doc["schemas"].as_array_mut().unwrap().push(json!(FINANCE));
            doc[FINANCE] = json!({"costCenter": cc});
        }
        let created = self.ok(Method::POST, "/Users", doc, 201).await;
        created["id"].as_str().unwrap().to_owned()
    }

    async fn patch(&self, path: &str, ops: Value) {
        let (status, reply) = self
            .call(
                Method::PATCH,
                path,
                Some(json!({"schemas": [PATCH], "Operations": ops})),
            )
            .await;
        assert!(status == 200 || status == 204, "{path}: {status} {reply}");
    }

    async fn head(&self) -> u64 {
        self.store.head_seq(&self.tenant).await.unwrap()
    }

    /// The SCIM state read through the typed accessors, in the host's table shapes.
    async fn state(
        &self,
    ) -> (
        Vec<(String, String, bool, Option<String>)>,
        Vec<(String, String)>,
        BTreeSet<(String, String)>,
    ) {
        let users = self
            .service
            .users(&self.tenant)
            .list(None, 1, 1000)
            .await
            .unwrap();
        let mut users: Vec<_> = users
            .resources
            .iter()
            .map(|u| {
                (
                    u.id.clone().unwrap(),
                    u.user_name.clone(),
                    u.active.unwrap_or(true),
                    u.extension::<CostCenter>().unwrap().map(|c| c.cost_center),
                )
            })
            .collect();
        users.sort();
        let groups = self
            .service
            .groups(&self.tenant)
            .list(None, 1, 1000)
            .await
            .unwrap();
        let mut names = Vec::new();
        let mut members = BTreeSet::new();
        for g in &groups.resources {
            let id = g.id.clone().unwrap();
            names.push((id.clone(), g.display_name.clone()));
            let page = self
                .service
                .groups(&self.tenant)
                .members(&id, 1, 1000)
                .await
                .unwrap();
            for m in page.members {
                members.insert((id.clone(), m.value.as_str().to_owned()));
            }
        }
        names.sort();
        (users, names, members)
    }
}

/// The host's tables equal the SCIM state, its cursor is the feed's head, and each change
/// up to `applied_through` was applied exactly once.
async fn assert_in_step(scim: &Scim, db: &HostDb, applied_through: u64) {
    let (users, groups, members) = scim.state().await;
    assert_eq!(db.users().await, users, "host users = SCIM users");
    assert_eq!(db.groups().await, groups, "host groups = SCIM groups");
    assert_eq!(
        db.memberships().await,
        members,
        "host memberships = SCIM memberships"
    );
    assert_eq!(db.cursor(&scim.tenant).await, Some(scim.head().await));
    assert_eq!(
        db.applied(&scim.tenant).await,
        (applied_through, 1),
        "every change up to {applied_through} applied, none twice"
    );
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "scimkit-host-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn follower(scim: &Scim, db: &HostDb, handler: Arc<Handler>) -> FeedFollower {
    FeedFollower::new(&scim.service, Arc::new(db.clone()), handler, |d| {
        tokio::time::sleep(d)
    })
    .batch_size(3)
    .backoff(Duration::from_millis(10), Duration::from_millis(50))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_host_follows_an_okta_like_sequence_exactly_once() {
    let dir = scratch();
    let scim = Scim::open(&dir.join("scim.db")).await;
    let db = HostDb::open(&dir.join("host.db")).await;

    // Okta creates three users; the fourth active one is over the seat limit.
    let alice = scim.create_user("alice@example.com", Some("CC-100")).await;
    let bob = scim.create_user("bob@example.com", Some("CC-200")).await;
    let carol = scim.create_user("carol@example.com", None).await;
    let before = scim.head().await;
    let (status, refused) = scim
        .call(
            Method::POST,
            "/Users",
            Some(json!({"schemas": [USER], "userName": "dave@example.com", "active": true})),
        )
        .await;
    assert_eq!(status, 403, "{refused}");
    assert!(refused["detail"].as_str().unwrap().contains("seat limit"));
    assert_eq!(scim.head().await, before, "a refused write records nothing");
    // Okta deactivates bob, which frees a seat for dave.
    scim.patch(
        &format!("/Users/{bob}"),
        json!([{"op": "replace", "value": {"active": false}}]),
    )
    .await;
    let dave = scim.create_user("dave@example.com", Some("CC-100")).await;
    assert_eq!(scim.head().await, 5);
    // Each change names the token that made it.
    let feed = scim
        .store
        .changes_since(&scim.tenant, 0, 100)
        .await
        .unwrap();
    assert_eq!(feed.len(), 5);
    assert!(feed
        .iter()
        .all(|c| c.actor.as_deref() == Some(scim.token_id.as_str())));

    // The follower crashes after four changes (mid-batch: batches of three).
    let mut first = follower(&scim, &db, Handler::new(&db, &scim.service, Some(4)));
    match first.catch_up().await {
        Err(FollowError::Handler { cursor, .. }) => assert_eq!(cursor, 3),
        other => panic!("expected the simulated crash, got {other:?}"),
    }
    drop(first);
    assert_eq!(
        db.cursor(&scim.tenant).await,
        Some(3),
        "the first batch only"
    );
    assert_eq!(db.applied(&scim.tenant).await, (3, 1));
    // Restarted, it continues from the saved cursor.
    let mut second = follower(&scim, &db, Handler::new(&db, &scim.service, None));
    let report = second.catch_up().await.unwrap();
    assert_eq!(report.changes, 2, "changes 4 and 5, nothing again");
    drop(second);
    assert_in_step(&scim, &db, 5).await;
    // The typed accessors: by id, by userName (case-insensitively), by externalId, filtered.
    let users = scim.service.users(&scim.tenant);
    let found = users
        .by_user_name("ALICE@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id.as_deref(), Some(alice.as_str()));
    assert_eq!(
        found
            .extension::<CostCenter>()
            .unwrap()
            .unwrap()
            .cost_center,
        "CC-100"
    );
    assert_eq!(found.meta.as_ref().unwrap().resource_type, "User");
    assert_eq!(users.get(&bob).await.unwrap().unwrap().active, Some(false));
    assert!(users.get("no-such-id").await.unwrap().is_none());
    assert!(users.by_external_id("none").await.unwrap().is_none());
    let inactive = users.list(Some("active eq false"), 1, 10).await.unwrap();
    assert_eq!(inactive.total_results, 1);
    assert_eq!(inactive.resources[0].user_name, "bob@example.com");
    let paged = users.list(None, 2, 2).await.unwrap();
    assert_eq!(
        (
            paged.total_results,
            paged.resources.len(),
            paged.start_index
        ),
        (4, 2, 2)
    );
    let bad = users.list(Some("userName eq"), 1, 10).await.unwrap_err();
    assert_eq!(bad.scim_type().map(|t| t.as_str()), Some("invalidFilter"));
    let host_users = db.users().await;
    assert!(host_users.contains(&(
        alice.clone(),
        "alice@example.com".into(),
        true,
        Some("CC-100".into())
    )));
    assert!(host_users.contains(&(
        bob.clone(),
        "bob@example.com".into(),
        false,
        Some("CC-200".into())
    )));

    // Now a running follower, woken by the store's subscription only (no polling).
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = follower(&scim, &db, Handler::new(&db, &scim.service, None))
        .poll_interval(Duration::from_secs(3600));
    let task = tokio::spawn(running.run_until(async {
        let _ = stopped.await;
    }));

    // Okta pushes a group, then its members; removes one; updates a profile; deletes a
    // member; and finally replaces the group's membership as a whole.
    let group = scim
        .ok(
            Method::POST,
            "/Groups",
            json!({"schemas": [GROUP], "displayName": "Engineering", "members": []}),
            201,
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    scim.patch(
        &format!("/Groups/{group}"),
        json!([{"op": "add", "path": "members", "value": [
            {"value": alice}, {"value": carol}, {"value": dave}
        ]}]),
    )
    .await;
    scim.patch(
        &format!("/Groups/{group}"),
        json!([{"op": "remove", "path": format!("members[value eq \"{carol}\"]")}]),
    )
    .await;
    let mut profile = scim
        .ok(Method::GET, &format!("/Users/{alice}"), Value::Null, 200)
        .await;
    profile[FINANCE]["costCenter"] = json!("CC-101");
    scim.ok(Method::PUT, &format!("/Users/{alice}"), profile, 200)
        .await;
    let (status, _) = scim
        .call(Method::DELETE, &format!("/Users/{dave}"), None)
        .await;
    assert_eq!(status, 204);
    scim.ok(
        Method::PUT,
        &format!("/Groups/{group}"),
        json!({"schemas": [GROUP], "displayName": "Engineering",
               "members": [{"value": alice}, {"value": bob}]}),
        200,
    )
    .await;
    let head = scim.head().await;
    assert_eq!(head, 12);

    // Wait (bounded) until the follower has applied everything.
    let mut reached = false;
    for _ in 0..500 {
        if db.cursor(&scim.tenant).await == Some(head) {
            reached = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        reached,
        "the subscription woke the follower for every write"
    );
    stop.send(()).unwrap();
    task.await.unwrap();
    assert_in_step(&scim, &db, head).await;
    let engineering = scim
        .service
        .groups(&scim.tenant)
        .by_display_name("ENGINEERING")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(engineering.id.as_deref(), Some(group.as_str()));
    let members = db.memberships().await;
    assert_eq!(
        members,
        BTreeSet::from([(group.clone(), alice.clone()), (group.clone(), bob.clone())])
    );
    assert!(db.users().await.contains(&(
        alice.clone(),
        "alice@example.com".into(),
        true,
        Some("CC-101".into())
    )));

    // The follower is down while Okta creates another user and the feed is pruned past the
    // host's cursor: the next run resynchronises instead of skipping changes.
    let erin = scim.create_user("erin@example.com", None).await;
    let pruned = scim
        .store
        .prune_changes(
            &scim.tenant,
            &ChangeRetention::max_entries(0),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(pruned.pruned_through, head + 1);
    let mut after = follower(&scim, &db, Handler::new(&db, &scim.service, None));
    let report = after.catch_up().await.unwrap();
    assert_eq!((report.resyncs, report.changes), (1, 0));
    let (users, groups, members) = scim.state().await;
    assert_eq!(db.users().await, users);
    assert!(users.iter().any(|u| u.0 == erin));
    assert_eq!(db.groups().await, groups);
    assert_eq!(db.memberships().await, members);
    assert_eq!(db.cursor(&scim.tenant).await, Some(head + 1));

    scim.store.close().await;
    db.pool.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}
