//! The PostgreSQL store's query plans over the contract filter corpus (issue 16, item 5),
//! against a real server (see tests/store_postgres.rs for the server): on a seeded,
//! `ANALYZE`d table of two tenants, every pushed-down filter runs on an index — no
//! sequential scan of `scimkit_resources` — except the scans documented in [`SCANS`]; and a
//! filter page, and a `count=0` total, is one statement.
//!
//! The plans are the ones the server runs, with the store's own parameters: the database
//! loads `auto_explain` in every session and sends each plan (JSON) to the client as a
//! notice, which sqlx reports as a `sqlx::postgres::notice` tracing event. A global
//! subscriber collects them, hence a test binary of its own.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::{Arc, Mutex};

use chrono::Duration;
use scimkit::filter::Filter;
use scimkit::store::postgres::PostgresStore;
use scimkit::store::testing::{self, base_time, group_request, Fixture};
use scimkit::store::{ListQuery, Pushdown, ResourceStore};
use serde_json::Value;
use sqlx::Connection;

/// Filters answered by a sequential scan of `scimkit_resources`, documented: none. With
/// the tenant a twelfth of the table, every pushed-down filter of the corpus, selective or
/// not, is planned on an index (a value, trigram or id index, or the tenant's
/// `(tenant, resource_type, ord)` range). On a table holding a single tenant, PostgreSQL
/// rightly prefers a sequential scan for filters matching a large share of it (`userName sw
/// "u"`, `... ne ...`, `meta.resourceType eq "User"`), which is why the table is seeded with
/// several tenants. A filter added here must still scan: the test fails when it no longer
/// does.
const SCANS: &[&str] = &[];

#[derive(Default)]
struct Seen {
    statements: Vec<String>,
    plans: Vec<Value>,
}

struct Collect(Arc<Mutex<Seen>>);

struct Fields<'a> {
    statement: &'a mut Option<String>,
    summary: &'a mut Option<String>,
    message: &'a mut Option<String>,
}

impl tracing::field::Visit for Fields<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        let slot = match field.name() {
            "db.statement" => &mut *self.statement,
            "summary" => &mut *self.summary,
            "message" => &mut *self.message,
            _ => return,
        };
        *slot = Some(value.to_owned());
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let slot = match field.name() {
            "db.statement" => &mut *self.statement,
            "summary" => &mut *self.summary,
            "message" => &mut *self.message,
            _ => return,
        };
        *slot = Some(format!("{value:?}"));
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Collect {
    fn on_event(&self, e: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let target = e.metadata().target();
        if target != "sqlx::query" && target != "sqlx::postgres::notice" {
            return;
        }
        let (mut statement, mut summary, mut message) = (None, None, None);
        e.record(&mut Fields {
            statement: &mut statement,
            summary: &mut summary,
            message: &mut message,
        });
        let mut seen = self.0.lock().unwrap();
        if target == "sqlx::query" {
            let sql = statement
                .filter(|s| !s.trim().is_empty())
                .or(summary)
                .unwrap_or_default();
            seen.statements.push(sql.trim().to_owned());
        } else if let Some(m) = message {
            // "duration: 0.1 ms  plan:\n{...}"
            if let Some(json) = m.find('{').and_then(|i| m.get(i..)) {
                if let Ok(plan) = serde_json::from_str::<Value>(json) {
                    seen.plans.push(plan);
                }
            }
        }
    }
}

/// The sequential scans of `scimkit_resources` in a plan tree.
fn seq_scans(node: &Value, out: &mut Vec<String>) {
    if node["Node Type"] == "Seq Scan" && node["Relation Name"] == "scimkit_resources" {
        out.push(node["Filter"].as_str().unwrap_or("").to_owned());
    }
    if let Some(children) = node["Plans"].as_array() {
        for c in children {
            seq_scans(c, out);
        }
    }
}

fn database_of(url: &str) -> String {
    let base = url.split('?').next().unwrap();
    base.rsplit('/').next().unwrap().to_owned()
}

#[tokio::test]
async fn the_filter_corpus_runs_on_indexes() {
    use tracing_subscriber::layer::SubscriberExt as _;
    let Some(url) = testing::postgres::fresh_database().await else {
        return;
    };
    let fx = Fixture::new();
    let tn = &fx.tenant;
    {
        let seed = PostgresStore::connect(&url).await.unwrap();
        testing::load_users(&seed, &fx, tn, 3000).await;
        testing::load_users(&seed, &fx, &fx.other, 1000).await;
        let user_ids: Vec<String> = (0..500).map(|i| format!("u{i:05}")).collect();
        for g in 0..50usize {
            let members: Vec<&str> = user_ids
                .iter()
                .enumerate()
                .filter(|(i, _)| g > 0 && (i % 50 == g || i % (g + 7) == 0))
                .map(|(_, id)| id.as_str())
                .collect();
            let mut req = group_request(
                &format!("g{g:03}"),
                &format!("Group {g}"),
                &members,
                base_time() + Duration::minutes(g as i64),
            );
            if g % 3 == 0 {
                req.doc["externalId"] = serde_json::json!(format!("gext-{g}"));
            }
            seed.create(tn, &fx.groups, req).await.unwrap();
        }
        seed.close().await;
    }
    let db = database_of(&url);
    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    // `db` is made of ASCII letters, digits and `_` only (see fresh_database).
    // Ten more tenants, copies of the first (written directly: the store's writes are
    // not what is measured), so that one tenant is a small part of the table, as on a
    // shared database.
    sqlx::raw_sql(
        "INSERT INTO scimkit_resources (tenant, id, resource_type, version, created, \
           last_modified, doc, doc_fold, user_name_fold, external_id, display_name_fold, display) \
         SELECT 'bulk-' || g, id, resource_type, version, created, last_modified, doc, doc_fold, \
           user_name_fold, external_id, display_name_fold, display \
         FROM scimkit_resources, generate_series(1, 10) AS g WHERE tenant = 'tenant-a'",
    )
    .execute(&mut admin)
    .await
    .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "ANALYZE;
         ALTER DATABASE {db} SET session_preload_libraries = 'auto_explain';
         ALTER DATABASE {db} SET auto_explain.log_min_duration = 0;
         ALTER DATABASE {db} SET auto_explain.log_level = 'notice';
         ALTER DATABASE {db} SET auto_explain.log_format = 'json';"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    let _ = admin.close().await;

    let seen = Arc::new(Mutex::new(Seen::default()));
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(Collect(Arc::clone(&seen))),
    )
    .unwrap();
    let store = PostgresStore::connect(&url).await.unwrap();

    let user_ids: Vec<String> = (0..500).map(|i| format!("u{i:05}")).collect();
    let mut scans = Vec::new();
    let mut checked = 0;
    for (rt, filters) in [
        (&fx.users, testing::user_filters()),
        (&fx.groups, testing::group_filters(&user_ids)),
    ] {
        for filter in filters {
            for count in [10, 0] {
                let query = ListQuery {
                    filter: Some(Filter::parse(&filter).unwrap()),
                    count,
                    start_index: 1,
                    ..ListQuery::default()
                };
                *seen.lock().unwrap() = Seen::default();
                let page = store.list(tn, rt, &query).await.unwrap();
                let seen = std::mem::take(&mut *seen.lock().unwrap());
                if page.pushdown != Pushdown::Exact {
                    continue;
                }
                checked += 1;
                assert_eq!(
                    seen.statements.len(),
                    1,
                    "{filter} (count={count}): {:#?}",
                    seen.statements
                );
                assert_eq!(seen.plans.len(), 1, "{filter} (count={count})");
                let mut found = Vec::new();
                seq_scans(&seen.plans[0]["Plan"], &mut found);
                if !found.is_empty() && count == 10 {
                    scans.push((filter.clone(), found));
                }
            }
        }
    }
    assert!(checked > 200, "only {checked} pushed-down queries");
    let unexpected: Vec<_> = scans
        .iter()
        .filter(|(f, _)| !SCANS.contains(&f.as_str()))
        .collect();
    assert!(
        unexpected.is_empty(),
        "{} sequential scans: {unexpected:#?}",
        unexpected.len()
    );
    let stale: Vec<_> = SCANS
        .iter()
        .filter(|f| !scans.iter().any(|(s, _)| s == *f))
        .collect();
    assert!(
        stale.is_empty(),
        "documented scans that no longer scan: {stale:#?}"
    );
}
