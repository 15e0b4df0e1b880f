use std::sync::Mutex;

use super::*;
use crate::auth::Tenants;
use crate::store::testing::{simple_user, user_request};
use crate::store::MemoryStore;

/// Positions in memory; `save` fails `save_failures` times first.
#[derive(Default)]
struct Cursors {
    at: Mutex<HashMap<TenantId, u64>>,
    save_failures: Mutex<u32>,
}

#[async_trait]
impl CursorStore for Cursors {
    async fn load(&self, tenant: &TenantId) -> Result<Option<u64>, HostError> {
        Ok(self.at.lock().unwrap().get(tenant).copied())
    }

    async fn save(&self, tenant: &TenantId, seq: u64) -> Result<(), HostError> {
        let mut failures = self.save_failures.lock().unwrap();
        if *failures > 0 {
            *failures -= 1;
            return Err("the host's database is unavailable".into());
        }
        self.at.lock().unwrap().insert(tenant.clone(), seq);
        Ok(())
    }
}

/// Records every seq it is handed; `apply` fails `failures` times first, applying
/// nothing.
#[derive(Default)]
struct Recorder {
    applied: Mutex<Vec<u64>>,
    failures: Mutex<u32>,
}

#[async_trait]
impl FeedHandler for Recorder {
    async fn apply(&self, batch: &ChangeBatch) -> Result<(), HostError> {
        let mut failures = self.failures.lock().unwrap();
        if *failures > 0 {
            *failures -= 1;
            return Err("transient".into());
        }
        for c in &batch.changes {
            assert!(c.current.is_some(), "the state of a live user is read");
            assert!(c.user().is_some_and(|u| u.is_ok()));
        }
        self.applied
            .lock()
            .unwrap()
            .extend(batch.changes.iter().map(|c| c.change.seq));
        Ok(())
    }

    async fn resync(&self, _: &TenantId, _: u64) -> Result<(), HostError> {
        Err("not expected".into())
    }
}

async fn setup() -> (ScimService, TenantId) {
    let tenants = Tenants::in_memory();
    let store = Arc::new(MemoryStore::new());
    let service = ScimService::builder(
        "https://app.example.com/scim/v2",
        store,
        Arc::clone(tenants.store()),
    )
    .build()
    .unwrap();
    let tenant = TenantId::new("acme").unwrap();
    service
        .tenants()
        .create_tenant(tenant.clone(), "Acme", Default::default())
        .await
        .unwrap();
    (service, tenant)
}

async fn add_users(service: &ScimService, tenant: &TenantId, from: usize, to: usize) {
    let users = service.registry().user().unwrap();
    for i in from..to {
        let req = user_request(
            &format!("u{i}"),
            simple_user(&format!("user{i}")),
            chrono::Utc::now(),
        );
        service.store().create(tenant, users, req).await.unwrap();
    }
}

/// Waits (bounded) until `cursors` holds `seq` for `tenant`.
async fn reaches(cursors: &Cursors, tenant: &TenantId, seq: u64) -> bool {
    for _ in 0..500 {
        if cursors.at.lock().unwrap().get(tenant) == Some(&seq) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_follower_retries_failures_and_misses_no_write() {
    let (service, tenant) = setup().await;
    add_users(&service, &tenant, 0, 5).await;
    let cursors = Arc::new(Cursors::default());
    let handler = Arc::new(Recorder {
        failures: Mutex::new(2),
        ..Recorder::default()
    });
    let follower = FeedFollower::new(&service, cursors.clone(), handler.clone(), |d| {
        tokio::time::sleep(d)
    })
    .cursor_saving(CursorSaving::AfterHandler)
    .batch_size(2)
    .backoff(Duration::from_millis(1), Duration::from_millis(5))
    // Only the subscription can wake it after the catch-up.
    .poll_interval(Duration::from_secs(3600));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(follower.run_until(async {
        let _ = stopped.await;
    }));
    assert!(
        reaches(&cursors, &tenant, 5).await,
        "caught up after two failures"
    );
    // Writes while it waits, one at a time and in a burst.
    add_users(&service, &tenant, 5, 6).await;
    assert!(reaches(&cursors, &tenant, 6).await);
    add_users(&service, &tenant, 6, 20).await;
    assert!(reaches(&cursors, &tenant, 20).await);
    stop.send(()).unwrap();
    task.await.unwrap();
    assert_eq!(
        *handler.applied.lock().unwrap(),
        (1..=20).collect::<Vec<u64>>()
    );
    assert_eq!(
        *handler.failures.lock().unwrap(),
        0,
        "both failures were retried"
    );
}

#[tokio::test]
async fn saving_after_the_handler_delivers_again_a_batch_whose_save_failed() {
    let (service, tenant) = setup().await;
    add_users(&service, &tenant, 0, 3).await;
    let cursors = Arc::new(Cursors {
        save_failures: Mutex::new(1),
        ..Cursors::default()
    });
    let handler = Arc::new(Recorder::default());
    let mut follower = FeedFollower::new(&service, cursors.clone(), handler.clone(), |d| {
        tokio::time::sleep(d)
    })
    .cursor_saving(CursorSaving::AfterHandler)
    .batch_size(2);
    assert!(matches!(
        follower.catch_up().await,
        Err(FollowError::Cursor { .. })
    ));
    let report = follower.catch_up().await.unwrap();
    assert_eq!((report.batches, report.changes), (2, 3));
    // At least once: the first batch was applied, its position not saved, so it came
    // again.
    assert_eq!(*handler.applied.lock().unwrap(), vec![1, 2, 1, 2, 3]);
    assert_eq!(cursors.at.lock().unwrap().get(&tenant), Some(&3));
}

#[test]
fn backoff_doubles_up_to_its_bound() {
    let pause = |first: u64, max: u64, failures: u32| {
        let f = FeedFollower {
            backoff: (Duration::from_millis(first), Duration::from_millis(max)),
            ..dummy()
        };
        f.pause_after(failures).as_millis()
    };
    assert_eq!(
        (1..=6).map(|n| pause(100, 1_000, n)).collect::<Vec<_>>(),
        vec![100, 200, 400, 800, 1_000, 1_000]
    );
    assert_eq!(pause(100, 1_000, u32::MAX), 1_000);
}

fn dummy() -> FeedFollower {
    struct Never;
    #[async_trait]
    impl CursorStore for Never {
        async fn load(&self, _: &TenantId) -> Result<Option<u64>, HostError> {
            Ok(None)
        }
        async fn save(&self, _: &TenantId, _: u64) -> Result<(), HostError> {
            Ok(())
        }
    }
    let tenants = Tenants::in_memory();
    let service = ScimService::builder(
        "https://app.example.com/scim/v2",
        Arc::new(MemoryStore::new()),
        Arc::clone(tenants.store()),
    )
    .build()
    .unwrap();
    FeedFollower::new(
        &service,
        Arc::new(Never),
        Arc::new(Recorder::default()),
        |d| tokio::time::sleep(d),
    )
}
