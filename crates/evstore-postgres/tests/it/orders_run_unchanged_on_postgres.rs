//! The Order domain (repository, snapshots, optimistic retries) runs on PostgreSQL unchanged,
//! and agrees with the in-memory projection run over the same log.

use std::sync::Arc;

use evstore::projection::ProjectionRunner;
use evstore_orders::projections::OrderSummaries;
use evstore_orders::{OrderService, OrderStatus};
use evstore_postgres::testing::TestStore;

#[test]
fn order_service_with_snapshots_and_contention() {
    let Some(t) = TestStore::fresh("order_service_with_snapshots_and_contention") else {
        return;
    };
    let svc = OrderService::new(t.store.clone()).with_snapshot_every(3);
    let id = svc.create_order("user-1").unwrap();
    // Eight threads add items to the same order at once: optimistic retries resolve it.
    std::thread::scope(|sc| {
        for i in 0..8 {
            let (svc, id) = (&svc, &id);
            sc.spawn(move || {
                for j in 0..3 {
                    svc.add_item(id, &format!("p-{i}-{j}"), 1, 100 + i).unwrap();
                }
            });
        }
    });
    let order = svc.get_order(&id).unwrap().unwrap();
    let expected: i64 = (0..8).map(|i| 3 * (100 + i)).sum();
    assert_eq!(order.total_cents(), expected);
    svc.confirm(&id).unwrap();
    assert_eq!(
        svc.get_order(&id).unwrap().unwrap().status(),
        OrderStatus::Confirmed
    );
    // Snapshots were saved in PostgreSQL and are used.
    let snap = t.store.load_snapshot(&format!("Order-{id}")).unwrap();
    assert!(snap.is_some_and(|s| s.version >= 3));
    // The in-memory projection over the PostgreSQL log agrees.
    let dir = tempfile::tempdir().unwrap();
    let mut runner =
        ProjectionRunner::<OrderSummaries, _>::open(Arc::clone(&t.store), dir.path().join("cp"))
            .unwrap();
    runner.catch_up().unwrap();
    let summary = runner
        .handle()
        .read(|p| p.get_order_summary(&id).cloned())
        .unwrap();
    assert_eq!(summary.total_cents, expected);
    assert_eq!(summary.item_count, 24);
    assert_eq!(summary.status, OrderStatus::Confirmed);
}
