//! The contract of a [`ProvisioningLog`]: append, query (filters, paging newest first),
//! prune, health, tenant isolation.

use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::events::{
    LogCursor, LogFilter, Outcome, OutcomeKind, ProvisioningEvent, ToleranceKind, ToleranceNote,
};
use crate::store::ChangeRetention;
use crate::store::ProvisioningLog;
use crate::tenant::TenantId;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

fn event(tenant: &TenantId, minute: i64, status: u16, rt: &str, name: &str) -> ProvisioningEvent {
    let outcome = if status >= 400 {
        Outcome::error(status, Some("invalidValue".into()), format!("bad {name}"))
    } else {
        Outcome::success(status)
    };
    let mut e = ProvisioningEvent::new(
        t0() + Duration::minutes(minute),
        Some(tenant.clone()),
        "POST",
        format!("/scim/v2/{tenant}/{rt}s"),
        outcome,
    );
    e.resource_type = Some(rt.to_owned());
    e.name = Some(name.to_owned());
    e
}

fn tid(s: &str) -> TenantId {
    TenantId::new(s).unwrap_or_else(|_| panic!("tenant id {s}"))
}

fn names(page: &crate::events::LogPage) -> Vec<String> {
    page.events
        .iter()
        .map(|(_, e)| e.name.clone().unwrap_or_default())
        .collect()
}

/// Append, query newest first with each filter, page with cursors, health, prune by count
/// and by age, and tenant isolation.
pub async fn check_provisioning_log(log: &dyn ProvisioningLog) {
    let a = tid("log-a");
    let b = tid("log-b");
    // 30 events for a: every 3rd a failure, every 5th (not failing) tolerated, a Group
    // every 4th; 2 events for b.
    let mut batch = Vec::new();
    for i in 0..30i64 {
        let status = if i % 3 == 0 { 400 } else { 201 };
        let rt = if i % 4 == 0 { "Group" } else { "User" };
        let mut e = event(&a, i, status, rt, &format!("user{i:02}"));
        if i % 5 == 0 && status < 400 {
            e.tolerances.push(ToleranceNote::new(
                ToleranceKind::UnknownAttributeDropped,
                "costCentre",
                "dropped unknown attribute costCentre",
            ));
        }
        batch.push(e);
    }
    // Appended in two calls: positions continue.
    let (first, second) = batch.split_at(10);
    log.append(first).await.expect("append");
    log.append(second).await.expect("append");
    log.append(&[
        event(&b, 0, 201, "User", "other0"),
        event(&b, 1, 401, "User", "other1"),
    ])
    .await
    .expect("append b");
    // An event without a tenant is not kept (and does not fail the batch).
    let mut no_tenant = event(&b, 2, 404, "User", "nobody");
    no_tenant.tenant = None;
    log.append(&[no_tenant])
        .await
        .expect("append without tenant");

    // Newest first, all of them.
    let page = log
        .query(&a, &LogFilter::all(), None, 100)
        .await
        .expect("query");
    let want: Vec<String> = (0..30).rev().map(|i| format!("user{i:02}")).collect();
    assert_eq!(names(&page), want);
    assert_eq!(page.next, None, "everything fit in one page");
    assert_eq!(
        page.events.first().map(|(_, e)| e),
        batch.last(),
        "events round-trip"
    );
    assert!(
        page.events.windows(2).all(|w| w[0].0 > w[1].0),
        "cursors decrease"
    );

    // Paging: 7 at a time, newest first, no gaps or repeats.
    let mut seen = Vec::new();
    let mut before: Option<LogCursor> = None;
    for _ in 0..10 {
        let page = log
            .query(&a, &LogFilter::all(), before, 7)
            .await
            .expect("page");
        assert!(page.events.len() <= 7);
        seen.extend(names(&page));
        match page.next {
            Some(c) => before = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, want, "paging with cursors");

    // Filters.
    let failures = log
        .query(
            &a,
            &LogFilter::all().outcome(OutcomeKind::Failure),
            None,
            100,
        )
        .await
        .expect("failures");
    let want_f: Vec<String> = (0..30)
        .rev()
        .filter(|i| i % 3 == 0)
        .map(|i| format!("user{i:02}"))
        .collect();
    assert_eq!(names(&failures), want_f);
    let tolerated = log
        .query(
            &a,
            &LogFilter::all().outcome(OutcomeKind::Tolerated),
            None,
            100,
        )
        .await
        .expect("tolerated");
    assert_eq!(names(&tolerated), ["user25", "user20", "user10", "user05"]);
    let success = log
        .query(
            &a,
            &LogFilter::all().outcome(OutcomeKind::Success),
            None,
            100,
        )
        .await
        .expect("success");
    assert_eq!(success.events.len(), 30 - 10 - 4);
    let groups = log
        .query(&a, &LogFilter::all().resource_type("Group"), None, 100)
        .await
        .expect("groups");
    assert_eq!(
        names(&groups),
        ["user28", "user24", "user20", "user16", "user12", "user08", "user04", "user00"]
    );
    let text = log
        .query(&a, &LogFilter::all().text("USER1"), None, 100)
        .await
        .expect("text");
    assert_eq!(names(&text).len(), 10, "user10..user19, case-insensitive");
    let in_notes = log
        .query(&a, &LogFilter::all().text("costcentre"), None, 100)
        .await
        .expect("text in notes");
    assert_eq!(names(&in_notes), ["user25", "user20", "user10", "user05"]);
    let combined = log
        .query(
            &a,
            &LogFilter::all()
                .outcome(OutcomeKind::Failure)
                .resource_type("Group")
                .text("user1"),
            None,
            100,
        )
        .await
        .expect("combined");
    assert_eq!(names(&combined), ["user12"]);
    // Paging a filtered query.
    let p1 = log
        .query(&a, &LogFilter::all().outcome(OutcomeKind::Failure), None, 4)
        .await
        .expect("p1");
    assert_eq!(names(&p1), ["user27", "user24", "user21", "user18"]);
    let p2 = log
        .query(
            &a,
            &LogFilter::all().outcome(OutcomeKind::Failure),
            p1.next,
            4,
        )
        .await
        .expect("p2");
    assert_eq!(names(&p2), ["user15", "user12", "user09", "user06"]);

    // Tenant isolation.
    let pb = log
        .query(&b, &LogFilter::all(), None, 100)
        .await
        .expect("b");
    assert_eq!(names(&pb), ["other1", "other0"]);
    let none = log
        .query(&tid("log-none"), &LogFilter::all(), None, 100)
        .await
        .expect("unknown tenant");
    assert!(none.events.is_empty() && none.next.is_none());

    // Health.
    let h = log.health(&a).await.expect("health");
    assert_eq!((h.successes, h.failures, h.tolerated), (16, 10, 4));
    assert_eq!(h.last_success, Some(t0() + Duration::minutes(29)));
    let last_error = h.last_error.expect("a last error");
    assert_eq!(last_error.time, t0() + Duration::minutes(27));
    assert_eq!(last_error.status, 400);
    assert_eq!(last_error.detail, "bad user27");
    let hb = log.health(&b).await.expect("health b");
    assert_eq!((hb.successes, hb.failures, hb.tolerated), (1, 1, 0));
    assert_eq!(
        log.health(&tid("log-none")).await.expect("health none"),
        Default::default()
    );

    // Prune by count, bounded per call.
    let mut keep_20 = ChangeRetention::max_age(std::time::Duration::from_secs(10 * 365 * 86_400));
    keep_20.max_entries = Some(20);
    keep_20.max_removed_per_call = 6;
    let now = t0() + Duration::minutes(60);
    let r1 = log.prune_log(&a, &keep_20, now).await.expect("prune 1");
    assert_eq!((r1.removed, r1.complete), (6, false));
    let r2 = log.prune_log(&a, &keep_20, now).await.expect("prune 2");
    assert_eq!((r2.removed, r2.complete), (4, true));
    let r3 = log.prune_log(&a, &keep_20, now).await.expect("prune 3");
    assert_eq!((r3.removed, r3.complete), (0, true));
    assert_eq!(r2.pruned_through, r3.pruned_through);
    let left = log
        .query(&a, &LogFilter::all(), None, 100)
        .await
        .expect("after prune");
    let want_left: Vec<String> = (10..30).rev().map(|i| format!("user{i:02}")).collect();
    assert_eq!(names(&left), want_left);
    // Paging down to the pruned horizon ends there.
    let tail = log
        .query(
            &a,
            &LogFilter::all(),
            left.events.get(18).map(|(c, _)| *c),
            100,
        )
        .await
        .expect("tail");
    assert_eq!(names(&tail), ["user10"]);
    assert_eq!(tail.next, None);
    // Health counts what was appended, not what is left.
    assert_eq!(log.health(&a).await.expect("health").failures, 10);
    // The other tenant is untouched.
    assert_eq!(
        log.query(&b, &LogFilter::all(), None, 100)
            .await
            .expect("b")
            .events
            .len(),
        2
    );

    // Prune by age: events older than 25 minutes before minute 40 (minutes 10..14) go.
    let by_age = ChangeRetention::max_age(std::time::Duration::from_secs(25 * 60));
    let r = log
        .prune_log(&a, &by_age, t0() + Duration::minutes(40))
        .await
        .expect("prune by age");
    assert_eq!((r.removed, r.complete), (5, true));
    let left = log
        .query(&a, &LogFilter::all(), None, 100)
        .await
        .expect("after age");
    assert_eq!(left.events.len(), 15);
    assert_eq!(names(&left).last().map(String::as_str), Some("user15"));

    // New events after pruning get new positions, above every old one.
    let top = left.events.first().map(|(c, _)| *c);
    log.append(&[event(&a, 31, 200, "User", "late")])
        .await
        .expect("append after prune");
    let page = log
        .query(&a, &LogFilter::all(), None, 1)
        .await
        .expect("newest");
    assert_eq!(names(&page), ["late"]);
    assert!(page.events.first().map(|(c, _)| *c) > top);
    assert!(page.next.is_some());

    check_large_mixed_batch(log).await;
}

/// One append of 700 events alternating between two tenants (more than a SQL store writes
/// in one statement): every event lands in its tenant's log, in order, and counts once.
async fn check_large_mixed_batch(log: &dyn ProvisioningLog) {
    let (c, d) = (tid("log-c"), tid("log-d"));
    let batch: Vec<ProvisioningEvent> = (0..700i64)
        .map(|i| {
            let tenant = if i % 2 == 0 { &c } else { &d };
            let status = if i % 7 == 0 { 409 } else { 200 };
            event(tenant, i, status, "User", &format!("bulk{i:03}"))
        })
        .collect();
    log.append(&batch).await.expect("append a large batch");
    for (tenant, parity) in [(&c, 0), (&d, 1)] {
        let mut seen = Vec::new();
        let mut before = None;
        loop {
            let page = log
                .query(tenant, &LogFilter::all(), before, 100)
                .await
                .expect("page of a large batch");
            seen.extend(names(&page));
            match page.next {
                Some(next) => before = Some(next),
                None => break,
            }
        }
        let want: Vec<String> = (0..700i64)
            .rev()
            .filter(|i| i % 2 == parity)
            .map(|i| format!("bulk{i:03}"))
            .collect();
        assert_eq!(seen, want, "{tenant}: every event, newest first");
        let health = log.health(tenant).await.expect("health");
        let failures = (0..700i64)
            .filter(|i| i % 2 == parity && i % 7 == 0)
            .count() as u64;
        assert_eq!(
            (health.successes, health.failures),
            (350 - failures, failures),
            "{tenant}: each event counted once"
        );
    }
}
