//! A saga checkpoint records the id of the event **at** `position - 1`, read through the same
//! position-checked lookup that verifies checkpoints at open: when the source has no event at
//! that position, the checkpoint is refused instead of naming the next event (which the next
//! open would reject as another history, restarting the saga from position 0).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use evstore::aggregate::{CommandContext, DomainEvent};
use evstore::codec::CodecError;
use evstore::projection::Checkpoint;
use evstore::saga::{
    saga_checkpoint_path, CommandOutcome, Reaction, Saga, SagaHandler, SagaResult, SagaRunner,
};
use evstore::snapshot::Snapshot;
use evstore::subscription::{EventSource, SubscriptionFilter};
use evstore::{
    AppendResult, Durability, EventStorage, ExpectedVersion, NewEvent, Options, RecordedEvent,
    Store,
};
use uuid::Uuid;

/// A backend whose log prefix below `first` was archived: a read from an archived position
/// returns the events from `first` on ("up to `max` events from `from_position` on").
struct Archived {
    store: Arc<Store>,
    first: AtomicU64,
}

impl EventSource for Archived {
    fn read_all_from(&self, from: u64, max: usize) -> evstore::Result<Vec<RecordedEvent>> {
        let from = from.max(self.first.load(Ordering::SeqCst));
        self.store.read_all_from(from, max)
    }
    fn wait_for_position(&self, position: u64, timeout: Duration) -> bool {
        EventSource::wait_for_position(&self.store, position, timeout)
    }
    fn head_position(&self) -> Option<u64> {
        EventSource::head_position(&self.store)
    }
}

impl EventStorage for Archived {
    fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> evstore::Result<AppendResult> {
        EventStorage::append(&self.store, stream, expected, events)
    }
    fn append_multi(
        &self,
        appends: &[evstore::StreamAppend],
    ) -> evstore::Result<Vec<AppendResult>> {
        EventStorage::append_multi(&self.store, appends)
    }
    fn append_if(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
        condition: &evstore::AppendCondition,
    ) -> evstore::Result<AppendResult> {
        EventStorage::append_if(&self.store, stream, expected, events, condition)
    }
    fn read_query(
        &self,
        query: &evstore::Query,
        after: Option<u64>,
    ) -> evstore::Result<(Vec<RecordedEvent>, Option<u64>)> {
        EventStorage::read_query(&self.store, query, after)
    }
    fn read_stream_range(
        &self,
        stream: &str,
        from: u64,
        to: u64,
    ) -> evstore::Result<Vec<RecordedEvent>> {
        EventStorage::read_stream_range(&self.store, stream, from, to)
    }
    fn last_version(&self, stream: &str) -> evstore::Result<Option<u64>> {
        EventStorage::last_version(&self.store, stream)
    }
    fn load_snapshot(&self, stream: &str) -> evstore::Result<Option<Snapshot>> {
        EventStorage::load_snapshot(&self.store, stream)
    }
    fn save_snapshot(
        &self,
        stream: &str,
        version: u64,
        event_id: Uuid,
        payload: &[u8],
    ) -> evstore::Result<()> {
        EventStorage::save_snapshot(&self.store, stream, version, event_id, payload)
    }
    fn note_snapshot_undecodable(&self, stream: &str) -> evstore::Result<()> {
        EventStorage::note_snapshot_undecodable(&self.store, stream)
    }
}

/// A saga that watches every event and never reacts: only its checkpoint matters here.
#[derive(Debug, Clone, Default)]
struct Watcher;

#[derive(Debug, Clone)]
struct Never;

impl DomainEvent for Never {
    fn event_type(&self) -> &'static str {
        "Never"
    }
    fn schema_version(ty: &str) -> Option<u16> {
        (ty == "Never").then_some(1)
    }
    fn encode(&self) -> Result<Vec<u8>, CodecError> {
        Ok(Vec::new())
    }
    fn decode(_: &str, _: &[u8]) -> Result<Self, CodecError> {
        Ok(Never)
    }
}

impl Saga for Watcher {
    const NAME: &'static str = "watcher";
    type Event = Never;
    type Command = ();
    fn filter() -> SubscriptionFilter {
        SubscriptionFilter::all()
    }
    fn saga_id(_: &RecordedEvent) -> Option<String> {
        None
    }
    fn apply(&mut self, _: &Never) {}
}

struct Idle;

impl SagaHandler<Watcher> for Idle {
    fn react(&self, _: &Watcher, _: &str, _: &RecordedEvent) -> SagaResult<Reaction<Never, ()>> {
        Ok(Reaction::none())
    }
    fn dispatch(&self, _: &(), _: &CommandContext) -> SagaResult<CommandOutcome> {
        Ok(CommandOutcome::Executed)
    }
}

fn append_ticks(store: &Store, n: usize) {
    let events = vec![NewEvent::new("Tick", vec![]); n];
    store
        .append("clock", ExpectedVersion::Any, &events)
        .unwrap();
}

fn id_at(store: &Store, position: u64) -> Uuid {
    store.read_all(position).next().unwrap().unwrap().event_id
}

#[test]
fn saga_checkpoint_never_names_the_event_after_a_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        Store::open_with(
            dir.path().join("s.evs"),
            Options {
                durability: Durability::Buffered,
                ..Options::default()
            },
        )
        .unwrap(),
    );
    let path = saga_checkpoint_path(store.path(), Watcher::NAME);
    let source = Arc::new(Archived {
        store: store.clone(),
        first: AtomicU64::new(0),
    });
    append_ticks(&store, 10);
    SagaRunner::<Watcher, _, _>::open(source.clone(), Idle, &path)
        .unwrap()
        .catch_up()
        .unwrap();
    assert_eq!(
        Checkpoint::read(&path).unwrap().last_event_id,
        Some(id_at(&store, 9))
    );

    // Reopen from the checkpoint (verified: the event at 9 is there), then archive 0..10.
    append_ticks(&store, 5);
    let mut runner = SagaRunner::<Watcher, _, _>::open(source.clone(), Idle, &path).unwrap();
    assert_eq!(runner.stats().restarted_from_zero, None);
    assert_eq!(runner.next_position(), 10);
    source.first.store(10, Ordering::SeqCst);

    // The event at position 9 can no longer be read: a read from 9 returns the event at 10.
    // The checkpoint must not take that event for the one at 9.
    assert!(runner.checkpoint().is_err());
    let cp = Checkpoint::read(&path).unwrap();
    assert_eq!(cp.position, 10);
    assert_eq!(cp.last_event_id, Some(id_at(&store, 9)));
    drop(runner);

    // With the whole log back, the checkpoint on disk is still confirmed by it.
    let runner = SagaRunner::<Watcher, _, _>::open(store.clone(), Idle, &path).unwrap();
    assert_eq!(runner.stats().restarted_from_zero, None);
    assert_eq!(runner.next_position(), 10);
}
