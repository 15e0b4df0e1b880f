//! The query plans of the SQLite store's list statements (issue 16): a `userName`,
//! `externalId` or `displayName` equality is answered from its value index, whatever the
//! paging, never by walking every resource of the type. The statements are the ones the
//! store runs (captured from sqlx's `sqlx::query` events by a global tracing subscriber,
//! hence a test binary of its own), explained with `EXPLAIN QUERY PLAN` on a second
//! connection to the same file (parameters unbound: SQLite plans without their values).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use scimkit::filter::{SortSpec, SortValue};
use scimkit::store::sqlite::SqliteStore;
use scimkit::store::testing::{self, Fixture};
use scimkit::store::{Keyset, ListQuery, Paging, ResourceStore};
use scimkit::{filter::Filter, resource::ResourceId};
use sqlx::{Connection, Row};

/// Records the SQL text of every statement sqlx runs, in any thread.
struct Statements(Arc<Mutex<Vec<String>>>);

struct Field<'a>(&'a mut Option<String>, &'a mut Option<String>);

impl tracing::field::Visit for Field<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        match field.name() {
            "db.statement" => *self.0 = Some(value.to_owned()),
            "summary" => *self.1 = Some(value.to_owned()),
            _ => {}
        }
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "db.statement" => *self.0 = Some(format!("{value:?}")),
            "summary" => *self.1 = Some(format!("{value:?}")),
            _ => {}
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Statements {
    fn on_event(&self, e: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if e.metadata().target() != "sqlx::query" {
            return;
        }
        let (mut full, mut summary) = (None, None);
        e.record(&mut Field(&mut full, &mut summary));
        let sql = match full.filter(|s| !s.trim().is_empty()) {
            Some(s) => s,
            None => summary.unwrap_or_default(),
        };
        self.0.lock().unwrap().push(sql.trim().to_owned());
    }
}

fn temp_db() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "scimkit-sqlite-plans-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("scim.db")
}

/// The plan lines (`detail`) of `sql`.
async fn plan(conn: &mut sqlx::SqliteConnection, sql: &str) -> Vec<String> {
    sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
        .fetch_all(&mut *conn)
        .await
        .unwrap_or_else(|e| panic!("explain {sql}: {e}"))
        .iter()
        .map(|r| r.get::<String, _>("detail"))
        .collect()
}

#[tokio::test]
async fn equality_filters_use_their_value_index() {
    use tracing_subscriber::layer::SubscriberExt as _;
    let seen = Arc::new(Mutex::new(Vec::new()));
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(Statements(Arc::clone(&seen))),
    )
    .unwrap();

    let path = temp_db();
    let store = SqliteStore::open(&path).await.unwrap();
    let fx = Fixture::new();
    testing::load_users(&store, &fx, &fx.tenant, 300).await;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();

    let sort = |by: &str| Some(SortSpec::parse(by, None).unwrap());
    let after = Keyset {
        value: None,
        id: ResourceId::new("u00010"),
    };
    let cases: Vec<(&str, &str, ListQuery)> = vec![
        (
            r#"userName eq "user1@example.com""#,
            "resources_user_name_id",
            ListQuery::default(),
        ),
        (
            r#"userName eq "user1@example.com""#,
            "resources_user_name_id",
            ListQuery {
                sort: sort("userName"),
                ..ListQuery::default()
            },
        ),
        (
            r#"userName eq "user1@example.com""#,
            "resources_user_name_id",
            ListQuery {
                paging: Paging::Keyset(None),
                ..ListQuery::default()
            },
        ),
        (
            r#"userName eq "user1@example.com""#,
            "resources_user_name_id",
            ListQuery {
                paging: Paging::Keyset(Some(after)),
                ..ListQuery::default()
            },
        ),
        (
            r#"externalId eq "x1""#,
            "resources_external_id_id",
            ListQuery::default(),
        ),
        (
            r#"displayName eq "Barbara Jensen""#,
            "resources_display_name_id",
            ListQuery::default(),
        ),
    ];
    for (filter, index, query) in cases {
        let query = ListQuery {
            filter: Some(Filter::parse(filter).unwrap()),
            count: 10,
            start_index: 1,
            ..query
        };
        seen.lock().unwrap().clear();
        let page = store.list(&fx.tenant, &fx.users, &query).await.unwrap();
        if filter.starts_with("userName") {
            assert_eq!(page.total_results, 1, "{filter}");
        }
        let statements: Vec<String> = seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.contains("FROM resources"))
            .cloned()
            .collect();
        assert!(!statements.is_empty(), "{filter}: no statement seen");
        for sql in statements {
            let lines = plan(&mut conn, &sql).await;
            assert!(
                lines.iter().any(|l| l.contains(&format!("INDEX {index} "))),
                "{filter} ({query:?}): {sql}\n{lines:#?}"
            );
            assert!(
                !lines
                    .iter()
                    // `SCAN p` reads the page's own rows (the co-routine), not a table.
                    .any(|l| (l.starts_with("SCAN") && l != "SCAN p")
                        || l.contains("INDEX resources_type ")),
                "{filter} ({query:?}): walks every resource: {sql}\n{lines:#?}"
            );
        }
    }

    // A cursor page by userName: the position starts the index range (a walk from the
    // first user would filter every user before it).
    for (order, bound) in [
        ("ascending", "(user_name_cf,id)>"),
        ("descending", "(user_name_cf,id)<"),
    ] {
        let query = ListQuery {
            sort: Some(SortSpec::parse("userName", Some(order)).unwrap()),
            count: 10,
            paging: Paging::Keyset(Some(Keyset {
                value: Some(SortValue::String("user150@example.com".into())),
                id: ResourceId::new("u00150"),
            })),
            ..ListQuery::default()
        };
        seen.lock().unwrap().clear();
        let page = store.list(&fx.tenant, &fx.users, &query).await.unwrap();
        assert_eq!(page.resources.len(), 10, "{order}");
        let statements: Vec<String> = seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.contains("FROM resources") && s.contains("ORDER BY"))
            .cloned()
            .collect();
        assert_eq!(statements.len(), 1, "{order}: {statements:#?}");
        let lines = plan(&mut conn, &statements[0]).await;
        assert!(
            lines
                .iter()
                .any(|l| l.contains("INDEX resources_user_name_id (")
                    && l.replace(' ', "").contains(bound)),
            "{order}: {}\n{lines:#?}",
            statements[0]
        );
    }
    store.close().await;
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}
