//! Concurrent saves of one order: exactly one of two racing saves wins, the other gets
//! `RepositoryError::Conflict` and writes nothing; `Repository::execute` (the retry helper)
//! then succeeds, and many threads adding items through the service lose none.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Barrier};

use crate::common::open;
use evstore::aggregate::{CommandContext, Root};
use evstore::repository::{Repository, RepositoryError};
use evstore::snapshot::Snapshot;
use evstore::{AppendResult, EventStorage, ExpectedVersion, NewEvent, RecordedEvent, Store};
use evstore_orders::{upcasters, Order, OrderCommand, OrderService};
use uuid::Uuid;

fn repo<S: EventStorage>(storage: S) -> Repository<Order, S> {
    Repository::new(storage).with_upcasters(Arc::new(upcasters()))
}

fn add(product: &str) -> OrderCommand {
    OrderCommand::AddItem {
        product_id: product.into(),
        quantity: 1,
        price_cents: 100,
    }
}

#[test]
fn two_threads_saving_the_same_order_one_wins_one_conflicts_then_execute_retries() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let svc = OrderService::new(store.clone());
    svc.create_order_with_id("o", "u").unwrap();
    let repo = Arc::new(repo(store.clone()));

    let barrier = Arc::new(Barrier::new(2));
    let handles: Vec<_> = ["left", "right"]
        .into_iter()
        .map(|product| {
            let repo = repo.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut root: Root<Order> = repo.load("o").unwrap().unwrap();
                assert_eq!(root.version(), Some(0));
                root.execute(&add(product)).unwrap();
                barrier.wait();
                (
                    product,
                    repo.save(&mut root, &CommandContext::new_request()),
                )
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();

    let winners: Vec<_> = results.iter().filter(|(_, r)| r.is_ok()).collect();
    assert_eq!(winners.len(), 1, "exactly one save wins: {results:?}");
    let (winner, _) = winners[0];
    let (loser, loser_result) = results.iter().find(|(_, r)| r.is_err()).unwrap();
    match loser_result {
        Err(RepositoryError::Conflict {
            stream,
            expected,
            actual,
        }) => {
            assert_eq!(stream, "Order-o");
            assert_eq!(*expected, ExpectedVersion::Exact(0));
            assert_eq!(*actual, Some(1));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    // The loser wrote nothing.
    let o = svc.get_order("o").unwrap().unwrap();
    assert_eq!(o.items().len(), 1);
    assert_eq!(o.items()[0].product_id, *winner);

    // The retry helper reloads, decides again and saves.
    let root = repo
        .execute("o", &add(loser), &CommandContext::new_request(), 3)
        .unwrap();
    assert_eq!(root.version(), Some(2));
    let products: Vec<_> = root
        .state()
        .items()
        .iter()
        .map(|i| i.product_id.as_str())
        .collect();
    assert_eq!(products, [*winner, *loser]);
    assert_eq!(root.state().total_cents(), 200);
    assert_eq!(svc.get_order("o").unwrap().unwrap(), *root.state());
}

#[test]
fn many_threads_adding_items_through_the_service_lose_nothing() {
    // 8 threads on one order at the service's default attempts: no command fails for conflicts.
    const THREADS: usize = 8;
    const EACH: usize = 25;
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    // Snapshots every 3 events, so retries also race snapshot writes.
    let svc = OrderService::new(store.clone()).with_snapshot_every(3);
    let id = svc.create_order("u").unwrap();
    let barrier = Arc::new(Barrier::new(THREADS));
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (svc, id, barrier) = (svc.clone(), id.clone(), barrier.clone());
            s.spawn(move || {
                barrier.wait();
                for i in 0..EACH {
                    svc.add_item(&id, &format!("t{t}-{i}"), 1, 1).unwrap();
                }
            });
        }
    });
    let o = svc.get_order(&id).unwrap().unwrap();
    assert_eq!(o.items().len(), THREADS * EACH);
    assert_eq!(o.total_cents(), (THREADS * EACH) as i64);
    assert_eq!(
        Store::stream_version(&store, &format!("Order-{id}")),
        Some((THREADS * EACH) as u64)
    );
    let replay = repo(store.clone())
        .with_snapshot_every(0)
        .load(&id)
        .unwrap()
        .unwrap();
    assert_eq!(replay.state(), &o);
}

/// Storage that lets another writer sneak in an event before each of the next `interfere`
/// appends (plain or conditional: `AddItem` appends with a stock condition), so conflicts are
/// deterministic.
struct Interfering {
    inner: Arc<Store>,
    interfere: AtomicU32,
}

impl Interfering {
    fn sneak_in(&self, stream: &str) {
        if self
            .interfere
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            let id = stream.strip_prefix("Order-").unwrap();
            repo(self.inner.clone())
                .execute(id, &add("intruder"), &CommandContext::new_request(), 1)
                .unwrap();
        }
    }
}

impl EventStorage for Interfering {
    fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> evstore::Result<AppendResult> {
        self.sneak_in(stream);
        self.inner.append(stream, expected, events)
    }
    fn append_multi(
        &self,
        appends: &[evstore::StreamAppend],
    ) -> evstore::Result<Vec<AppendResult>> {
        self.inner.append_multi(appends)
    }
    fn append_if(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
        condition: &evstore::AppendCondition,
    ) -> evstore::Result<AppendResult> {
        self.sneak_in(stream);
        self.inner.append_if(stream, expected, events, condition)
    }
    fn read_query(
        &self,
        query: &evstore::Query,
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
fn execute_retries_after_conflicts_and_gives_up_after_max_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    OrderService::new(store.clone())
        .create_order_with_id("o", "u")
        .unwrap();
    let storage = Interfering {
        inner: store.clone(),
        interfere: AtomicU32::new(2),
    };
    let svc = OrderService::new(storage).with_max_attempts(3);
    // Two conflicts, then success on the third attempt: both intruders are kept.
    let o = svc.add_item("o", "mine", 1, 100).unwrap();
    let products: Vec<_> = o.items().iter().map(|i| i.product_id.as_str()).collect();
    assert_eq!(products, ["intruder", "intruder", "mine"]);

    // Three conflicts with three attempts: TooManyConflicts, and "mine" is not written again.
    svc.repository()
        .storage()
        .interfere
        .store(3, Ordering::SeqCst);
    match svc.add_item("o", "mine-2", 1, 100) {
        Err(RepositoryError::TooManyConflicts {
            stream, attempts, ..
        }) => {
            assert_eq!((stream.as_str(), attempts), ("Order-o", 3));
        }
        other => panic!("expected TooManyConflicts, got {other:?}"),
    }
    let o = OrderService::new(store).get_order("o").unwrap().unwrap();
    assert_eq!(o.items().len(), 6);
    assert!(o.items().iter().all(|i| i.product_id != "mine-2"));
}
