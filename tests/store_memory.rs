//! The store contract suite on [`MemoryStore`], plus its concurrency checks.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;

use scimkit::store::testing::{self, Fixture, TaskFuture};
use scimkit::store::{MemoryStore, ResourceStore};

fn memory() -> Arc<dyn ResourceStore> {
    Arc::new(MemoryStore::new())
}

fn spawn(task: TaskFuture) -> TaskFuture {
    let handle = tokio::spawn(task);
    Box::pin(async move { handle.await.expect("task panicked") })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn contract_suite() {
    testing::run_contract_suite(|| async { memory() }, spawn).await;
}

#[tokio::test]
async fn crud() {
    testing::check_crud(&*memory(), &Fixture::new()).await;
}

#[tokio::test]
async fn filter_equivalence() {
    testing::check_filter_equivalence(&*memory(), &Fixture::new()).await;
}

#[tokio::test]
async fn membership() {
    testing::check_membership(&*memory(), &Fixture::new()).await;
    testing::check_delete_cleans_memberships(&*memory(), &Fixture::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_member_adds() {
    // Repeat: a race that loses an update is rarely hit on the first run.
    for _ in 0..20 {
        testing::check_concurrent_member_adds(memory(), &Fixture::new(), &spawn).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_read_modify_write() {
    for _ in 0..20 {
        testing::check_concurrent_read_modify_write(memory(), &Fixture::new(), &spawn).await;
    }
}
