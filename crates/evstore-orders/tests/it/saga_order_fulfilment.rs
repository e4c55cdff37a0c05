//! The order saga: happy path, payment failure, and crash-and-restart without duplicates.

use std::collections::HashSet;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::open;
use evstore::aggregate::EventMetadata;
use evstore::saga::{saga_checkpoint_path, Saga, TRIGGER_POSITION_KEY};
use evstore::subscription::StopHandle;
use evstore::{RecordedEvent, Store};
use evstore_orders::saga::{OrderSaga, OrderSagaRunner, OrderSagaStatus, PaymentShippingSimulator};
use evstore_orders::{OrderService, OrderStatus};

const LIMIT: i64 = 10_000;

/// Create and confirm an order of `total` cents.
fn confirmed_order(orders: &OrderService<Arc<Store>>, user: &str, total: i64) -> String {
    let id = orders.create_order(user).unwrap();
    orders.add_item(&id, "thing", 1, total).unwrap();
    orders.confirm(&id).unwrap();
    id
}

/// Run saga and participant until nothing new is appended.
fn drive(
    store: &Store,
    saga: &mut OrderSagaRunner<Arc<Store>>,
    world: &mut PaymentShippingSimulator<Arc<Store>>,
) {
    for _ in 0..20 {
        let before = store.head_position();
        saga.catch_up().unwrap();
        world.catch_up().unwrap();
        saga.catch_up().unwrap();
        if store.head_position() == before {
            return;
        }
    }
    panic!("saga did not settle");
}

fn types(events: &[RecordedEvent]) -> Vec<&str> {
    events.iter().map(|e| e.event_type.as_str()).collect()
}

fn meta(e: &RecordedEvent) -> EventMetadata {
    EventMetadata::decode(&e.metadata).unwrap()
}

#[test]
fn happy_path_requests_payment_then_shipping_then_completes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let orders = OrderService::new(store.clone());
    let mut saga = OrderSaga::open_runner(store.clone()).unwrap();
    let mut world = PaymentShippingSimulator::new(store.clone(), 0, LIMIT);

    let id = confirmed_order(&orders, "alice", 2_500);
    drive(&store, &mut saga, &mut world);

    let s = OrderSaga::load(&saga, &id).unwrap();
    assert_eq!(s.status, OrderSagaStatus::Completed);
    assert_eq!(s.amount_cents, 2_500);
    let order = orders.get_order(&id).unwrap().unwrap();
    assert_eq!(order.status(), OrderStatus::Shipped);

    let saga_stream = store.read_stream(&OrderSaga::stream_id(&id), 0).unwrap();
    assert_eq!(
        types(&saga_stream),
        ["PaymentRequested", "ShippingRequested", "OrderCompleted"]
    );
    let payment = store.read_stream(&format!("Payment-{id}"), 0).unwrap();
    assert_eq!(types(&payment), ["PaymentCompleted"]);
    let shipping = store.read_stream(&format!("Shipping-{id}"), 0).unwrap();
    assert_eq!(types(&shipping), ["ShippingCompleted"]);

    // Correlation: everything shares the confirm command's correlation id; causation links
    // each reaction to its trigger.
    let order_events = store.read_stream(&format!("Order-{id}"), 0).unwrap();
    let confirmed = order_events
        .iter()
        .find(|e| e.event_type == "OrderConfirmed")
        .unwrap();
    let shipped = order_events
        .iter()
        .find(|e| e.event_type == "OrderShipped")
        .unwrap();
    let corr = meta(confirmed).correlation_id.unwrap();
    let chain = [
        (&saga_stream[0], confirmed),
        (&payment[0], &saga_stream[0]),
        (&saga_stream[1], &payment[0]),
        (&shipping[0], &saga_stream[1]),
        (&saga_stream[2], &shipping[0]),
        (shipped, &shipping[0]),
    ];
    for (effect, cause) in chain {
        let m = meta(effect);
        assert_eq!(m.correlation_id, Some(corr), "{}", effect.event_type);
        assert_eq!(
            m.causation_id,
            Some(cause.event_id),
            "{}",
            effect.event_type
        );
    }
    assert_eq!(
        meta(&saga_stream[0]).extra.get(TRIGGER_POSITION_KEY),
        Some(&confirmed.position.to_string())
    );
}

#[test]
fn payment_failure_cancels_the_order_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let orders = OrderService::new(store.clone());
    let mut saga = OrderSaga::open_runner(store.clone()).unwrap();
    let mut world = PaymentShippingSimulator::new(store.clone(), 0, LIMIT);

    let id = confirmed_order(&orders, "bob", LIMIT + 1);
    drive(&store, &mut saga, &mut world);

    let s = OrderSaga::load(&saga, &id).unwrap();
    assert_eq!(s.status, OrderSagaStatus::Failed);
    let order = orders.get_order(&id).unwrap().unwrap();
    assert_eq!(order.status(), OrderStatus::Cancelled);
    let reason = order.cancel_reason().unwrap();
    assert!(reason.starts_with("payment failed: "), "{reason}");
    assert!(reason.contains("exceeds the limit"), "{reason}");
    assert_eq!(
        types(&store.read_stream(&OrderSaga::stream_id(&id), 0).unwrap()),
        ["PaymentRequested", "OrderSagaFailed"]
    );
    assert!(store
        .read_stream(&format!("Shipping-{id}"), 0)
        .unwrap()
        .is_empty());
    assert_eq!(saga.stats().commands_executed, 1);
}

/// Event ids are unique across the whole log, and each order has at most one event of each
/// saga-driven kind.
fn assert_no_duplicates(store: &Store) {
    let all: Vec<RecordedEvent> = store.read_all(0).map(Result::unwrap).collect();
    let ids: HashSet<_> = all.iter().map(|e| e.event_id).collect();
    assert_eq!(ids.len(), all.len(), "duplicate event ids");
    let mut kinds = HashSet::new();
    for e in &all {
        if e.event_type != "ItemAddedToOrder" {
            assert!(
                kinds.insert((e.stream_id.clone(), e.event_type.clone())),
                "{} twice in {}",
                e.event_type,
                e.stream_id
            );
        }
    }
}

#[test]
fn crash_after_reacting_before_checkpointing_emits_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let orders = OrderService::new(store.clone());
    let ok: Vec<String> = (0..5)
        .map(|i| confirmed_order(&orders, "carol", 1_000 + i))
        .collect();
    let failing: Vec<String> = (0..3)
        .map(|i| confirmed_order(&orders, "dave", LIMIT + 1 + i))
        .collect();

    // First run: react to the confirmations, checkpoint.
    let mut saga = OrderSaga::open_runner(store.clone())
        .unwrap()
        .with_checkpoint_every(0);
    let mut world = PaymentShippingSimulator::new(store.clone(), 0, LIMIT);
    saga.catch_up().unwrap();
    let checkpointed = saga.next_position();
    // Second stretch: the participant answers, the saga reacts (cancels, ships, records) but
    // "crashes" before its next checkpoint.
    for _ in 0..3 {
        world.catch_up().unwrap();
        while saga.step(1_000, Duration::ZERO).unwrap() > 0 {}
    }
    assert!(saga.stats().reactions_appended > 8);
    drop(saga);
    let head = store.head_position();

    // Restart from the old checkpoint: everything after it is re-processed.
    let mut saga = OrderSaga::open_runner(store.clone()).unwrap();
    assert_eq!(saga.next_position(), checkpointed);
    saga.catch_up().unwrap();
    assert_eq!(
        store.head_position(),
        head,
        "re-processing appended nothing"
    );
    let st = saga.stats().clone();
    assert_eq!(st.reactions_appended, 0);
    assert!(st.reactions_replayed >= 8, "{st:?}");
    assert_eq!(st.commands_executed, 0);
    assert_eq!(st.commands_already_done, 8, "{st:?}");
    drop(saga);

    // Even without any checkpoint (from zero) nothing is emitted twice.
    std::fs::remove_file(saga_checkpoint_path(store.path(), OrderSaga::NAME)).unwrap();
    let mut saga = OrderSaga::open_runner(store.clone()).unwrap();
    assert_eq!(saga.next_position(), 0);
    saga.catch_up().unwrap();
    let mut world = PaymentShippingSimulator::new(store.clone(), 0, LIMIT);
    world.catch_up().unwrap();
    assert_eq!(store.head_position(), head);
    assert_eq!(saga.stats().reactions_appended, 0);

    for id in &ok {
        assert_eq!(
            OrderSaga::load(&saga, id).unwrap().status,
            OrderSagaStatus::Completed
        );
        assert_eq!(
            orders.get_order(id).unwrap().unwrap().status(),
            OrderStatus::Shipped
        );
    }
    for id in &failing {
        assert_eq!(
            OrderSaga::load(&saga, id).unwrap().status,
            OrderSagaStatus::Failed
        );
        assert_eq!(
            orders.get_order(id).unwrap().unwrap().status(),
            OrderStatus::Cancelled
        );
    }
    assert_no_duplicates(&store);
}

#[test]
fn saga_and_participant_run_live_on_threads() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let orders = OrderService::new(store.clone());
    let stop = StopHandle::new();
    let saga_thread = {
        let (store, stop) = (store.clone(), stop.clone());
        thread::spawn(move || {
            let mut saga = OrderSaga::open_runner(store).unwrap();
            saga.run_until(&stop).unwrap();
            saga.stats().clone()
        })
    };
    let world_thread = {
        let (store, stop) = (store.clone(), stop.clone());
        thread::spawn(move || {
            let mut world = PaymentShippingSimulator::new(store, 0, LIMIT);
            while !stop.is_stopped() {
                world.step(100, Duration::from_millis(50)).unwrap();
            }
        })
    };
    let ids: Vec<(String, i64)> = (0..20)
        .map(|i| {
            let total = if i % 4 == 0 { LIMIT * 2 } else { 100 * i };
            (confirmed_order(&orders, "erin", total.max(1)), total)
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    for (id, total) in &ids {
        let want = if *total > LIMIT {
            OrderStatus::Cancelled
        } else {
            OrderStatus::Shipped
        };
        while orders.get_order(id).unwrap().unwrap().status() != want {
            assert!(Instant::now() < deadline, "order {id} never reached {want}");
            thread::sleep(Duration::from_millis(5));
        }
    }
    // Let the last OrderCompleted land, then stop.
    thread::sleep(Duration::from_millis(200));
    stop.stop();
    let stats = saga_thread.join().unwrap();
    world_thread.join().unwrap();
    assert_eq!(stats.commands_executed, 20);
    assert_no_duplicates(&store);
}
