//! Where the order saga writes two streams (the order's command and its own event), it writes
//! them in one atomic multi-stream append: both land together, right next to each other, and
//! when the saga's stream changed under it (a concurrent writer) neither is written.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use evstore::aggregate::CommandContext;
use evstore::repository::RepositoryError;
use evstore::saga::{saga_checkpoint_path, Saga, SagaError, SagaRunner};
use evstore::snapshot::Snapshot;
use evstore::subscription::EventSource;
use evstore::{
    AppendCondition, AppendResult, Error, EventStorage, ExpectedVersion, NewEvent, Query,
    RecordedEvent, Store, StreamAppend,
};
use evstore_orders::saga::{
    OrderSaga, OrderSagaHandler, OrderSagaStatus, PaymentShippingSimulator,
};
use evstore_orders::{OrderCommand, OrderService, OrderStatus};
use uuid::Uuid;

use crate::common::open;

fn types(events: &[RecordedEvent]) -> Vec<&str> {
    events.iter().map(|e| e.event_type.as_str()).collect()
}

/// Run saga and participant until the log stops growing.
fn settle<S: EventSource + EventStorage + Clone + 'static>(
    store: &Store,
    saga: &mut SagaRunner<OrderSaga, S, OrderSagaHandler<S>>,
    world: &mut PaymentShippingSimulator<S>,
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

#[test]
fn ship_and_order_completed_land_together_and_the_runner_writes_no_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let orders = OrderService::new(store.clone());
    let mut saga = OrderSaga::open_runner(store.clone()).unwrap();
    let mut world = PaymentShippingSimulator::new(store.clone(), 0, 100_000);
    let id = orders.create_order("alice").unwrap();
    orders.add_item(&id, "book", 2, 1_250).unwrap();
    orders.confirm(&id).unwrap();
    settle(&store, &mut saga, &mut world);

    let order = store.read_stream(&format!("Order-{id}"), 0).unwrap();
    let saga_events = store.read_stream(&format!("OrderSaga-{id}"), 0).unwrap();
    assert_eq!(
        types(&saga_events),
        ["PaymentRequested", "ShippingRequested", "OrderCompleted"],
        "the runner's own append of OrderCompleted was an idempotent retry"
    );
    let shipped = order.last().unwrap();
    let completed = saga_events.last().unwrap();
    assert_eq!(shipped.event_type, "OrderShipped");
    assert_eq!(
        completed.position,
        shipped.position + 1,
        "one append, in order"
    );
    assert_eq!(shipped.recorded_at, completed.recorded_at);
    let st = saga.stats();
    assert_eq!((st.commands_executed, st.reactions_appended), (1, 3));
    assert_eq!(
        OrderSaga::load(&saga, &id).unwrap().status,
        OrderSagaStatus::Completed
    );
}

#[test]
fn payment_failure_cancels_releases_stock_and_records_the_failure_in_one_append() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let orders = OrderService::new(store.clone());
    orders.set_stock("tv", 1).unwrap();
    let mut saga = OrderSaga::open_runner(store.clone()).unwrap();
    let mut world = PaymentShippingSimulator::new(store.clone(), 0, 1_000);
    let id = orders.create_order("bob").unwrap();
    orders.add_item(&id, "tv", 1, 99_900).unwrap();
    orders.confirm(&id).unwrap();
    assert_eq!(orders.product_stock("tv").unwrap().available(), Some(0));
    settle(&store, &mut saga, &mut world);

    let order = orders.get_order(&id).unwrap().unwrap();
    assert_eq!(order.status(), OrderStatus::Cancelled);
    let cancelled = store.read_stream(&format!("Order-{id}"), 0).unwrap();
    let saga_events = store.read_stream(&format!("OrderSaga-{id}"), 0).unwrap();
    assert_eq!(types(&saga_events), ["PaymentRequested", "OrderSagaFailed"]);
    assert_eq!(
        saga_events[1].position,
        cancelled.last().unwrap().position + 1
    );
    assert_eq!(orders.product_stock("tv").unwrap().available(), Some(1));
}

/// A real store whose multi-stream appends meet a concurrent writer: while `intrude` is set,
/// another event is appended to the saga stream of the append just before it runs.
#[derive(Clone)]
struct RacedSaga {
    inner: Arc<Store>,
    intrude: Arc<AtomicBool>,
}

impl EventSource for RacedSaga {
    fn read_all_from(&self, from: u64, max: usize) -> evstore::Result<Vec<RecordedEvent>> {
        self.inner.read_all_from(from, max)
    }
    fn wait_for_position(&self, position: u64, timeout: Duration) -> bool {
        EventSource::wait_for_position(&self.inner, position, timeout)
    }
    fn head_position(&self) -> Option<u64> {
        EventSource::head_position(&self.inner)
    }
}

impl EventStorage for RacedSaga {
    fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> evstore::Result<AppendResult> {
        self.inner.append(stream, expected, events)
    }
    fn append_multi(&self, appends: &[StreamAppend]) -> evstore::Result<Vec<AppendResult>> {
        if self.intrude.swap(false, Ordering::SeqCst) {
            if let Some(part) = appends.iter().find(|p| p.stream.starts_with("OrderSaga-")) {
                let other = NewEvent::new("WrittenByAnotherRunner", b"{}".to_vec());
                self.inner
                    .append(&part.stream, ExpectedVersion::Any, &[other])
                    .unwrap();
            }
        }
        self.inner.append_multi(appends)
    }
    fn append_if(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
        condition: &AppendCondition,
    ) -> evstore::Result<AppendResult> {
        self.inner.append_if(stream, expected, events, condition)
    }
    fn read_query(
        &self,
        query: &Query,
        after: Option<u64>,
    ) -> evstore::Result<(Vec<RecordedEvent>, Option<u64>)> {
        self.inner.read_query(query, after)
    }
    fn read_stream_range(
        &self,
        stream: &str,
        from: u64,
        to: u64,
    ) -> evstore::Result<Vec<RecordedEvent>> {
        self.inner.read_stream_range(stream, from, to)
    }
    fn last_version(&self, stream: &str) -> evstore::Result<Option<u64>> {
        self.inner.last_version(stream)
    }
    fn load_snapshot(&self, stream: &str) -> evstore::Result<Option<Snapshot>> {
        self.inner.load_snapshot(stream)
    }
    fn save_snapshot(
        &self,
        stream: &str,
        version: u64,
        event_id: Uuid,
        payload: &[u8],
    ) -> evstore::Result<()> {
        self.inner.save_snapshot(stream, version, event_id, payload)
    }
    fn note_snapshot_undecodable(&self, stream: &str) -> evstore::Result<()> {
        self.inner.note_snapshot_undecodable(stream)
    }
}

#[test]
fn a_conflict_on_the_saga_stream_writes_nothing_on_the_order_stream() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let raced = RacedSaga {
        inner: store.clone(),
        intrude: Arc::new(AtomicBool::new(false)),
    };
    let orders = OrderService::new(raced.clone());
    let path = saga_checkpoint_path(store.path(), OrderSaga::NAME);
    let mut saga: SagaRunner<OrderSaga, RacedSaga, _> =
        SagaRunner::open(raced.clone(), OrderSagaHandler::new(orders.clone()), path).unwrap();
    let mut world = PaymentShippingSimulator::new(raced.clone(), 0, 100_000);
    let id = orders.create_order("carol").unwrap();
    orders.add_item(&id, "kettle", 1, 3_000).unwrap();
    orders.confirm(&id).unwrap();
    // Payment, then shipping requested and completed: the next saga step ships the order.
    for _ in 0..2 {
        saga.catch_up().unwrap();
        world.catch_up().unwrap();
    }
    assert_eq!(
        OrderSaga::load(&saga, &id).unwrap().status,
        OrderSagaStatus::AwaitingShipping
    );
    let order_stream = format!("Order-{id}");
    let saga_stream = format!("OrderSaga-{id}");
    let order_before = store.stream_version(&order_stream);

    raced.intrude.store(true, Ordering::SeqCst);
    match saga.catch_up() {
        Err(SagaError::Store(Error::WrongExpectedVersion { stream, .. })) => {
            assert_eq!(stream, saga_stream);
        }
        other => panic!("expected a conflict on the saga stream, got {other:?}"),
    }
    assert_eq!(
        store.stream_version(&order_stream),
        order_before,
        "the order's Ship was not written without the saga's OrderCompleted"
    );
    assert_eq!(
        orders.get_order(&id).unwrap().unwrap().status(),
        OrderStatus::Confirmed
    );
    let saga_events = store.read_stream(&saga_stream, 0).unwrap();
    assert_eq!(
        types(&saga_events),
        [
            "PaymentRequested",
            "ShippingRequested",
            "WrittenByAnotherRunner"
        ]
    );
}

#[test]
fn execute_with_writes_all_streams_or_none() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let orders = OrderService::new(store.clone());
    let id = orders.create_order("dave").unwrap();
    let note = || vec![NewEvent::new("Noted", b"{}".to_vec())];
    let ctx = CommandContext::new_request();

    // A stale expected version on the other stream: nothing anywhere.
    let head = store.head_position();
    let stale = StreamAppend::new("Audit-1", ExpectedVersion::Exact(7), note());
    match orders.execute_with(&id, &cancel(), &ctx, &[stale]) {
        Err(RepositoryError::Conflict { stream, actual, .. }) => {
            assert_eq!((stream.as_str(), actual), ("Audit-1", None));
        }
        other => panic!("expected a conflict on Audit-1, got {other:?}"),
    }
    assert_eq!(store.head_position(), head);
    assert_eq!(
        orders.get_order(&id).unwrap().unwrap().status(),
        OrderStatus::Pending
    );

    // A refused command: nothing anywhere either.
    let fresh = StreamAppend::new("Audit-1", ExpectedVersion::NoStream, note());
    assert!(matches!(
        orders.execute_with(&id, &OrderCommand::Ship, &ctx, std::slice::from_ref(&fresh)),
        Err(RepositoryError::Domain(_))
    ));
    assert_eq!(store.head_position(), head);

    // Both hold: both written, next to each other.
    let root = orders.execute_with(&id, &cancel(), &ctx, &[fresh]).unwrap();
    assert_eq!(root.state().status(), OrderStatus::Cancelled);
    let audit = store.read_stream("Audit-1", 0).unwrap();
    let cancelled = store.read_stream(&format!("Order-{id}"), 0).unwrap();
    assert_eq!(audit[0].position, cancelled.last().unwrap().position + 1);
    // AddItem is not accepted here: its stock condition needs `execute`.
    let add = OrderCommand::AddItem {
        product_id: "x".into(),
        quantity: 1,
        price_cents: 1,
    };
    assert!(matches!(
        orders.execute_with(&id, &add, &ctx, &[]),
        Err(RepositoryError::Store(Error::InvalidInput(_)))
    ));
}

fn cancel() -> OrderCommand {
    OrderCommand::Cancel {
        reason: "test".into(),
    }
}
