//! The library's projection and saga runners keep their checkpoints in PostgreSQL
//! (`PgCheckpointStore`) and resume from them; the Order saga runs on PostgreSQL unchanged.

use std::sync::Arc;

use evstore::projection::ProjectionRunner;
use evstore::saga::SagaRunner;
use evstore::{ExpectedVersion, NewEvent};
use evstore_contract::CountingProjection;
use evstore_orders::saga::{OrderSaga, OrderSagaHandler, PaymentShippingSimulator};
use evstore_orders::{OrderService, OrderStatus};
use evstore_postgres::testing::TestStore;
use evstore_postgres::PgCheckpointStore;

#[test]
fn a_projection_runner_resumes_from_its_postgres_checkpoint() {
    let Some(t) = TestStore::fresh("a_projection_runner_resumes_from_its_postgres_checkpoint")
    else {
        return;
    };
    for i in 0..10u8 {
        t.store
            .append("c", ExpectedVersion::Any, &[NewEvent::new("E", vec![i])])
            .unwrap();
    }
    let cp = PgCheckpointStore::new(t.store.clone(), "proj-count");
    let mut runner =
        ProjectionRunner::<CountingProjection, _>::open_with(t.store.clone(), cp.clone()).unwrap();
    assert!(runner.stats().last_rebuild.is_some(), "no checkpoint yet");
    assert_eq!(runner.catch_up().unwrap(), 10);
    assert_eq!(runner.checkpoint_file(), std::path::Path::new(""));
    drop(runner);
    t.store
        .append("c", ExpectedVersion::Any, &[NewEvent::new("E", vec![10])])
        .unwrap();
    let mut runner =
        ProjectionRunner::<CountingProjection, _>::open_with(t.store.clone(), cp).unwrap();
    assert_eq!(runner.stats().resumed_from, Some(10));
    assert_eq!(runner.catch_up().unwrap(), 1);
    assert_eq!(runner.handle().read(|p| (p.count, p.sum)), (11, 55));
}

#[test]
fn the_order_saga_runs_on_postgres_with_its_checkpoint_there() {
    let Some(t) = TestStore::fresh("the_order_saga_runs_on_postgres_with_its_checkpoint_there")
    else {
        return;
    };
    let svc = OrderService::new(t.store.clone());
    let id = svc.create_order("u1").unwrap();
    svc.add_item(&id, "sku", 1, 500).unwrap();
    svc.confirm(&id).unwrap();
    let open = || {
        SagaRunner::open_with(
            t.store.clone(),
            OrderSagaHandler::new(OrderService::new(t.store.clone())),
            PgCheckpointStore::new(t.store.clone(), "saga-order"),
        )
        .unwrap()
    };
    let mut saga = open();
    let mut sim = PaymentShippingSimulator::new(Arc::clone(&t.store), 0, 1_000_000);
    for _ in 0..10 {
        saga.catch_up().unwrap();
        sim.catch_up().unwrap();
    }
    saga.checkpoint().unwrap();
    let order = svc.get_order(&id).unwrap().unwrap();
    assert_eq!(order.status(), OrderStatus::Shipped);
    let position = saga.next_position();
    drop(saga);
    let mut again = open();
    assert_eq!(
        again.next_position(),
        position,
        "resumed from the PostgreSQL checkpoint"
    );
    assert_eq!(again.catch_up().unwrap(), 0);
    // The saga's own history reads through the PostgreSQL store.
    OrderSaga::load(&again, &id).unwrap();
}

#[test]
fn an_inline_projection_reads_its_writes_on_postgres() {
    let Some(t) = TestStore::fresh("an_inline_projection_reads_its_writes_on_postgres") else {
        return;
    };
    let inline = evstore::projection::InlineProjection::<CountingProjection, _>::open_with(
        t.store.clone(),
        PgCheckpointStore::new(t.store.clone(), "inline-count"),
    )
    .unwrap();
    for i in 1..=3u8 {
        inline
            .append("c", ExpectedVersion::Any, &[NewEvent::new("E", vec![i])])
            .unwrap();
        // Applied before the append returned.
        assert_eq!(inline.handle().read(|p| p.count), u64::from(i));
    }
    inline.checkpoint().unwrap();
    let again = evstore::projection::InlineProjection::<CountingProjection, _>::open_with(
        t.store.clone(),
        PgCheckpointStore::new(t.store.clone(), "inline-count"),
    )
    .unwrap();
    assert_eq!(again.handle().read(|p| (p.count, p.sum)), (3, 6));
}
