//! Statement counts of the PostgreSQL store's reads, against a real server (see
//! tests/store_postgres.rs for the server). In a test binary of its own: the counter is a
//! thread-local tracing subscriber, which other tests logging in parallel threads of the same
//! process could disturb.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;

use scimkit::filter::Filter;
use scimkit::store::postgres::PostgresStore;
use scimkit::store::testing::{self, base_time, group_request, simple_user, user_request, Fixture};
use scimkit::store::{ListQuery, Pushdown, ResourceStore};

async fn store() -> Option<PostgresStore> {
    testing::postgres::fresh_store().await
}

/// Counts the SQL statements sqlx runs on this thread (its `sqlx::query` events).
struct CountStatements(Arc<std::sync::atomic::AtomicUsize>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountStatements {
    fn on_event(&self, e: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if e.metadata().target() == "sqlx::query" {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

/// A User with its groups is one statement, and so are the groups of a whole page.
#[tokio::test]
async fn reads_are_one_statement() {
    use tracing_subscriber::layer::SubscriberExt as _;
    let Some(s) = store().await else { return };
    let fx = Fixture::new();
    let tn = &fx.tenant;
    let mut ids = Vec::new();
    for i in 0..50 {
        let id = format!("u{i}");
        s.create(
            tn,
            &fx.users,
            user_request(&id, simple_user(&format!("{id}@x")), base_time()),
        )
        .await
        .unwrap();
        ids.push(scimkit::resource::ResourceId::new(id));
    }
    for g in 0..3 {
        let members: Vec<&str> = ids.iter().take(10 * (g + 1)).map(|i| i.as_str()).collect();
        s.create(
            tn,
            &fx.groups,
            group_request(&format!("g{g}"), &format!("G{g}"), &members, base_time()),
        )
        .await
        .unwrap();
    }
    let n = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = tracing_subscriber::registry().with(CountStatements(Arc::clone(&n)));
    let _guard = tracing::subscriber::set_default(counted);
    // The pool is warm: the creates above opened its connections.
    let (u, groups) = s.get_with_groups(tn, &fx.users, &ids[5]).await.unwrap();
    assert_eq!(u.id, ids[5]);
    assert_eq!(groups.len(), 3);
    assert_eq!(
        n.swap(0, std::sync::atomic::Ordering::SeqCst),
        1,
        "one statement"
    );
    let many = s.groups_of_many(tn, &ids).await.unwrap();
    assert_eq!(many.iter().map(Vec::len).sum::<usize>(), 10 + 20 + 30);
    assert_eq!(
        n.swap(0, std::sync::atomic::Ordering::SeqCst),
        1,
        "one statement for 50 ids"
    );
    // A `userName eq` filter (what `GET /Users?filter=...` runs): the page and its
    // totalResults in one statement, then the page's groups in one more.
    let q = ListQuery {
        filter: Some(Filter::parse(r#"userName eq "u7@x""#).unwrap()),
        ..ListQuery::default()
    };
    let page = s.list(tn, &fx.users, &q).await.unwrap();
    assert_eq!(page.pushdown, Pushdown::Exact);
    assert_eq!(page.total_results, 1);
    let page_ids: Vec<scimkit::resource::ResourceId> =
        page.resources.iter().map(|r| r.id.clone()).collect();
    assert_eq!(page_ids, vec![ids[7].clone()]);
    assert_eq!(
        n.swap(0, std::sync::atomic::Ordering::SeqCst),
        1,
        "a filtered page and its total are one statement"
    );
    let groups = s.groups_of_many(tn, &page_ids).await.unwrap();
    assert_eq!(groups.iter().map(Vec::len).sum::<usize>(), 3);
    assert_eq!(n.swap(0, std::sync::atomic::Ordering::SeqCst), 1);
    // With its groups: still one statement, and the groups are those groups_of_many reads.
    let (page, groups) = s.list_with_groups(tn, &fx.users, &q).await.unwrap();
    assert_eq!(page.total_results, 1);
    assert_eq!(
        n.swap(0, std::sync::atomic::Ordering::SeqCst),
        1,
        "a filtered page, its total and its groups are one statement"
    );
    let groups = groups.expect("read with the page");
    assert_eq!(groups.len(), 1);
    assert_eq!(
        groups[0].iter().map(|g| g.id.as_str()).collect::<Vec<_>>(),
        ["g0", "g1", "g2"]
    );
    // A page of many, sorted: each resource gets its own groups, in page order.
    let many_q = ListQuery {
        filter: Some(Filter::parse(r#"userName sw "u1""#).unwrap()),
        sort: Some(scimkit::filter::SortSpec::parse("userName", None).unwrap()),
        start_index: 3,
        count: 10,
        ..ListQuery::default()
    };
    let (page, groups) = s.list_with_groups(tn, &fx.users, &many_q).await.unwrap();
    assert_eq!(n.swap(0, std::sync::atomic::Ordering::SeqCst), 1);
    let page_ids: Vec<scimkit::resource::ResourceId> =
        page.resources.iter().map(|r| r.id.clone()).collect();
    assert_eq!(page.total_results, 11, "u1, u10..u19");
    assert_eq!(
        page_ids.len(),
        9,
        "the page from the third: u12..u19, then u1"
    );
    let expected = s.groups_of_many(tn, &page_ids).await.unwrap();
    assert!(expected.iter().any(|g| g.len() == 2) && expected.iter().any(|g| g.len() == 3));
    assert_eq!(groups.expect("read with the page"), expected);
    n.store(0, std::sync::atomic::Ordering::SeqCst);
    // Past the end of the matches: the page is empty and the total is still read with it.
    let q = ListQuery {
        start_index: 2,
        ..q
    };
    let page = s.list(tn, &fx.users, &q).await.unwrap();
    assert!(page.resources.is_empty());
    assert_eq!(page.total_results, 1);
    assert_eq!(
        n.swap(0, std::sync::atomic::Ordering::SeqCst),
        1,
        "an empty page past the end is one statement too"
    );
    // The counter sees statements at all: the old two-call form is two.
    s.get(tn, &fx.users, &ids[5], false).await.unwrap();
    s.groups_of(tn, &ids[5]).await.unwrap();
    assert_eq!(n.load(std::sync::atomic::Ordering::SeqCst), 2);
}
