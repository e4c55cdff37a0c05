//! # evstore-contract — the store contract, written once, for every backend
//!
//! [`Backend`] is the small surface the contract needs beyond [`EventStorage`] and
//! [`EventSource`]: the inherent reads every backend has under the same names
//! (`read_stream`, `read_all`, `read_by_type`, `stream_version`, `head_position`, `flush`).
//! It is implemented here for the file [`Store`] and for [`PgStore`]; each `contract_*`
//! function proves one property against any backend, and `tests/it` runs every one of them
//! against both (`cargo test --release --workspace`). A new backend implements [`Backend`] and
//! adds one test module that calls them all.
//!
//! The functions panic (assert) on a violation: they are test bodies.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use evstore::projection::{Projection, ProjectionRunner};
use evstore::subscription::{EventSource, Subscription, SubscriptionFilter};
use evstore::{
    AppendResult, Error, EventStorage, ExpectedVersion, NewEvent, RecordedEvent, Result, Store,
};
use evstore_postgres::PgStore;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

mod dcb;
pub use dcb::{
    contract_append_if, contract_append_if_idempotent_retry,
    contract_append_multi_idempotent_retry, contract_append_multi_is_atomic,
    contract_mixed_appends_keep_positions_dense, contract_query_semantics,
    contract_racing_tag_claims_have_one_winner, contract_read_query_pages,
    contract_tags_round_trip,
};

/// What the contract needs from a backend beyond the two backend traits: the inherent methods
/// every store has under these names (`Result`s where a networked backend can fail).
pub trait Backend: EventStorage + EventSource + Send + Sync + 'static {
    /// For messages: "file", "postgres".
    fn backend_name(&self) -> &'static str;
    /// `read_stream(stream, from_version)`.
    ///
    /// # Errors
    /// The backend's.
    fn read_stream(&self, stream: &str, from_version: u64) -> Result<Vec<RecordedEvent>>;
    /// `read_all(from_position)`, collected.
    ///
    /// # Errors
    /// The backend's.
    fn read_all_events(&self, from_position: u64) -> Result<Vec<RecordedEvent>>;
    /// `read_by_type(event_type, since)`.
    ///
    /// # Errors
    /// The backend's.
    fn read_by_type(
        &self,
        event_type: &str,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<RecordedEvent>>;
    /// `stream_version(stream)`.
    ///
    /// # Errors
    /// The backend's (the file store has none).
    fn stream_version(&self, stream: &str) -> Result<Option<u64>>;
    /// `head_position()`.
    ///
    /// # Errors
    /// The backend's (the file store has none).
    fn head(&self) -> Result<Option<u64>>;
    /// `flush()`.
    ///
    /// # Errors
    /// The backend's.
    fn flush(&self) -> Result<()>;
    /// `read_query_page(query, after, max)`.
    ///
    /// # Errors
    /// The backend's.
    fn read_query_page(
        &self,
        query: &evstore::Query,
        after: Option<u64>,
        max: usize,
    ) -> Result<(Vec<RecordedEvent>, Option<u64>)>;
}

impl Backend for Store {
    fn backend_name(&self) -> &'static str {
        "file"
    }
    fn read_stream(&self, stream: &str, from_version: u64) -> Result<Vec<RecordedEvent>> {
        Store::read_stream(self, stream, from_version)
    }
    fn read_all_events(&self, from_position: u64) -> Result<Vec<RecordedEvent>> {
        Store::read_all(self, from_position).collect()
    }
    fn read_by_type(
        &self,
        event_type: &str,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<RecordedEvent>> {
        Store::read_by_type(self, event_type, since)
    }
    fn stream_version(&self, stream: &str) -> Result<Option<u64>> {
        Ok(Store::stream_version(self, stream))
    }
    fn head(&self) -> Result<Option<u64>> {
        Ok(Store::head_position(self))
    }
    fn flush(&self) -> Result<()> {
        Store::flush(self)
    }
    fn read_query_page(
        &self,
        query: &evstore::Query,
        after: Option<u64>,
        max: usize,
    ) -> Result<(Vec<RecordedEvent>, Option<u64>)> {
        Store::read_query_page(self, query, after, max)
    }
}

impl Backend for PgStore {
    fn backend_name(&self) -> &'static str {
        "postgres"
    }
    fn read_stream(&self, stream: &str, from_version: u64) -> Result<Vec<RecordedEvent>> {
        PgStore::read_stream(self, stream, from_version)
    }
    fn read_all_events(&self, from_position: u64) -> Result<Vec<RecordedEvent>> {
        PgStore::read_all(self, from_position).collect()
    }
    fn read_by_type(
        &self,
        event_type: &str,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<RecordedEvent>> {
        PgStore::read_by_type(self, event_type, since)
    }
    fn stream_version(&self, stream: &str) -> Result<Option<u64>> {
        PgStore::stream_version(self, stream)
    }
    fn head(&self) -> Result<Option<u64>> {
        PgStore::head_position(self)
    }
    fn flush(&self) -> Result<()> {
        PgStore::flush(self)
    }
    fn read_query_page(
        &self,
        query: &evstore::Query,
        after: Option<u64>,
        max: usize,
    ) -> Result<(Vec<RecordedEvent>, Option<u64>)> {
        PgStore::read_query_page(self, query, after, max)
    }
}

fn ev(t: &str, data: &[u8]) -> NewEvent {
    NewEvent::new(t, data.to_vec())
}

fn ok<T>(r: Result<T>, what: &str) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// All four expected versions hold and fail as specified; a conflict reports the actual
/// version and writes nothing.
///
/// # Panics
/// When the backend breaks the property (a test failure).
pub fn contract_expected_versions<B: Backend>(s: &B) {
    let wrong = |r: Result<AppendResult>, actual: Option<u64>| match r {
        Err(Error::WrongExpectedVersion { actual: a, .. }) => assert_eq!(a, actual),
        other => panic!(
            "{}: expected WrongExpectedVersion, got {other:?}",
            s.backend_name()
        ),
    };
    wrong(
        s.append("a", ExpectedVersion::StreamExists, &[ev("E", b"")]),
        None,
    );
    wrong(
        s.append("a", ExpectedVersion::Exact(0), &[ev("E", b"")]),
        None,
    );
    let r = ok(
        s.append("a", ExpectedVersion::NoStream, &[ev("E", b"0")]),
        "NoStream",
    );
    assert_eq!((r.first_version, r.last_version), (0, 0));
    wrong(
        s.append("a", ExpectedVersion::NoStream, &[ev("E", b"")]),
        Some(0),
    );
    let r = ok(
        s.append(
            "a",
            ExpectedVersion::Exact(0),
            &[ev("E", b"1"), ev("E", b"2")],
        ),
        "Exact",
    );
    assert_eq!((r.first_version, r.last_version), (1, 2));
    wrong(
        s.append("a", ExpectedVersion::Exact(1), &[ev("E", b"")]),
        Some(2),
    );
    wrong(
        s.append("a", ExpectedVersion::Exact(7), &[ev("E", b"")]),
        Some(2),
    );
    let r = ok(
        s.append("a", ExpectedVersion::StreamExists, &[ev("E", b"3")]),
        "StreamExists",
    );
    assert_eq!(r.first_version, 3);
    let r = ok(s.append("a", ExpectedVersion::Any, &[ev("E", b"4")]), "Any");
    assert_eq!(r.first_version, 4);
    let r = ok(
        s.append("b", ExpectedVersion::Any, &[ev("E", b"")]),
        "Any new",
    );
    assert_eq!((r.first_version, r.first_position), (0, 5));
    assert_eq!(ok(s.stream_version("a"), "version"), Some(4));
    assert_eq!(ok(s.stream_version("none"), "version"), None);
    let data: Vec<Vec<u8>> = ok(s.read_stream("a", 0), "read")
        .into_iter()
        .map(|e| e.data)
        .collect();
    assert_eq!(data, [b"0", b"1", b"2", b"3", b"4"].map(|b| b.to_vec()));
}

/// A repeated append returns the original result and writes nothing, for every expected
/// version; a batch that only partly repeats one is an `IdempotencyConflict`.
///
/// # Panics
/// When the backend breaks the property (a test failure).
pub fn contract_idempotent_retry<B: Backend>(s: &B) {
    let batch = vec![ev("E", b"1"), ev("E", b"2")];
    let first = ok(s.append("r", ExpectedVersion::NoStream, &batch), "first");
    // Exact / NoStream repeats, after other appends too.
    ok(
        s.append("other", ExpectedVersion::Any, &[ev("X", b"")]),
        "other",
    );
    assert_eq!(
        ok(
            s.append("r", ExpectedVersion::NoStream, &batch),
            "NoStream repeat"
        ),
        first
    );
    let second = vec![ev("E", b"3")];
    let r2 = ok(s.append("r", ExpectedVersion::Exact(1), &second), "second");
    ok(
        s.append("r", ExpectedVersion::Any, &[ev("E", b"4")]),
        "third",
    );
    assert_eq!(
        ok(
            s.append("r", ExpectedVersion::Exact(1), &second),
            "Exact repeat"
        ),
        r2
    );
    // Any repeat of the stream's tail.
    let tail = vec![ev("E", b"5"), ev("E", b"6")];
    let r3 = ok(s.append("r", ExpectedVersion::Any, &tail), "tail");
    assert_eq!(
        ok(s.append("r", ExpectedVersion::Any, &tail), "Any repeat"),
        r3
    );
    assert_eq!(
        ok(
            s.append("r", ExpectedVersion::StreamExists, &tail),
            "SE repeat"
        ),
        r3
    );
    assert_eq!(ok(s.stream_version("r"), "version"), Some(5));
    let head = ok(s.head(), "head");
    // Partial repeats: same first id, different rest; the repeat plus one more event.
    let mut partial = tail.clone();
    partial[1] = ev("E", b"x");
    let conflict = |r: Result<AppendResult>| {
        assert!(
            matches!(r, Err(Error::IdempotencyConflict { .. })),
            "{}: expected IdempotencyConflict, got {r:?}",
            s.backend_name()
        );
    };
    conflict(s.append("r", ExpectedVersion::Exact(3), &partial));
    let mut longer = tail.clone();
    longer.push(ev("E", b"7"));
    conflict(s.append("r", ExpectedVersion::Exact(3), &longer));
    conflict(s.append("r", ExpectedVersion::Any, &[tail[1].clone(), ev("E", b"8")]));
    assert_eq!(
        ok(s.head(), "head"),
        head,
        "{}: conflicts wrote nothing",
        s.backend_name()
    );
}

/// Identical appends racing from many threads write the batch once; every caller gets the
/// same result.
///
/// # Panics
/// When the backend breaks the property (a test failure).
pub fn contract_identical_appends_racing_write_once<B: Backend>(s: &Arc<B>) {
    for round in 0..5u8 {
        let batch = vec![ev("E", &[round]), ev("E", &[round, 1])];
        let expected = if round == 0 {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact(u64::from(round) * 2 - 1)
        };
        let results: Vec<AppendResult> = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..8)
                .map(|_| {
                    let (s, batch) = (s.clone(), batch.clone());
                    sc.spawn(move || ok(s.append("race", expected, &batch), "racing append"))
                })
                .collect();
            hs.into_iter().map(|h| h.join().expect("thread")).collect()
        });
        assert!(results.windows(2).all(|w| w[0] == w[1]), "{results:?}");
        assert_eq!(results[0].first_version, u64::from(round) * 2);
    }
    assert_eq!(ok(s.read_stream("race", 0), "read").len(), 10);
}

/// A batch is atomic: all its events get consecutive versions and positions, and a batch
/// refused for any reason writes none of them. Limits are enforced with `InvalidInput`.
///
/// # Panics
/// When the backend breaks the property (a test failure).
pub fn contract_batches_are_atomic_and_limits_enforced<B: Backend>(s: &B) {
    let invalid = |r: Result<AppendResult>| {
        assert!(
            matches!(r, Err(Error::InvalidInput(_))),
            "{}: expected InvalidInput, got {r:?}",
            s.backend_name()
        );
    };
    invalid(s.append("", ExpectedVersion::Any, &[ev("E", b"")]));
    invalid(s.append(&"s".repeat(256), ExpectedVersion::Any, &[ev("E", b"")]));
    invalid(s.append("s", ExpectedVersion::Any, &[]));
    invalid(s.append("s", ExpectedVersion::Any, &[ev("E", b""), ev("", b"")]));
    invalid(s.append("s", ExpectedVersion::Any, &[ev(&"t".repeat(256), b"")]));
    invalid(s.append(
        "s",
        ExpectedVersion::Any,
        &[NewEvent::new("E", vec![0u8; 65 << 20])],
    ));
    let name255 = "n".repeat(255);
    ok(
        s.append(&name255, ExpectedVersion::Any, &[ev(&name255, b"")]),
        "255 bytes",
    );
    assert_eq!(
        ok(s.head(), "head"),
        Some(0),
        "{}: refused batches wrote nothing",
        s.backend_name()
    );
    let batch: Vec<NewEvent> = (0..100u8)
        .map(|i| ev("B", &[i]).with_metadata(vec![i, i]))
        .collect();
    let r = ok(
        s.append("batch", ExpectedVersion::NoStream, &batch),
        "batch",
    );
    assert_eq!((r.first_version, r.last_version), (0, 99));
    assert_eq!((r.first_position, r.last_position), (1, 100));
    let read = ok(s.read_stream("batch", 0), "read");
    for (i, (e, n)) in read.iter().zip(&batch).enumerate() {
        assert_eq!(
            (e.event_id, &e.data, &e.metadata),
            (n.event_id, &n.data, &n.metadata)
        );
        assert_eq!((e.version, e.position), (i as u64, i as u64 + 1));
        assert_eq!(e.recorded_at, read[0].recorded_at, "one stamp per batch");
    }
}

/// Positions are dense from 0 in append order, `recorded_at` never decreases with them, and
/// the reads agree: by stream, from a position, by type with `since`.
///
/// # Panics
/// When the backend breaks the property (a test failure).
pub fn contract_positions_and_reads<B: Backend>(s: &B) {
    assert_eq!(ok(s.head(), "head"), None);
    assert!(ok(s.read_all_events(0), "read_all").is_empty());
    let mut ids = Vec::new();
    for i in 0..30u64 {
        let t = if i % 3 == 0 { "Three" } else { "Other" };
        let e = ev(t, &i.to_le_bytes());
        ids.push(e.event_id);
        let r = ok(
            s.append(&format!("s-{}", i % 4), ExpectedVersion::Any, &[e]),
            "append",
        );
        assert_eq!(r.first_position, i);
        if i == 14 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    ok(s.flush(), "flush");
    assert_eq!(ok(s.head(), "head"), Some(29));
    let all = ok(s.read_all_events(0), "read_all");
    assert_eq!(
        all.iter().map(|e| e.position).collect::<Vec<_>>(),
        (0..30).collect::<Vec<_>>()
    );
    assert_eq!(all.iter().map(|e| e.event_id).collect::<Vec<_>>(), ids);
    assert!(all.windows(2).all(|w| w[0].recorded_at <= w[1].recorded_at));
    assert_eq!(ok(s.read_all_events(25), "from 25").len(), 5);
    assert!(ok(s.read_all_events(30), "from head").is_empty());
    let s1 = ok(s.read_stream("s-1", 2), "stream from 2");
    assert_eq!(
        s1.iter().map(|e| e.position).collect::<Vec<_>>(),
        [9, 13, 17, 21, 25, 29]
    );
    let three = ok(s.read_by_type("Three", None), "by type");
    assert_eq!(three.len(), 10);
    assert!(three
        .iter()
        .all(|e| e.event_type == "Three" && e.position % 3 == 0));
    let since = all[15].recorded_at;
    let later = ok(s.read_by_type("Three", Some(since)), "by type since");
    let want: Vec<u64> = three
        .iter()
        .filter(|e| e.recorded_at >= since)
        .map(|e| e.position)
        .collect();
    assert_eq!(later.iter().map(|e| e.position).collect::<Vec<_>>(), want);
    assert!(
        !later.is_empty() && later.len() < 10,
        "{} since splits",
        s.backend_name()
    );
    let just_after = since + chrono::Duration::nanoseconds(1);
    assert!(ok(s.read_by_type("Three", Some(just_after)), "since+1ns")
        .iter()
        .all(|e| e.recorded_at > since));
    assert!(ok(s.read_by_type("Missing", None), "missing type").is_empty());
    assert!(matches!(
        s.read_by_type("", None),
        Err(Error::InvalidInput(_))
    ));
}

/// A subscription sees every position exactly once, in order, while `writers` threads append
/// concurrently (single events and batches); it checks the ids too.
///
/// # Panics
/// When the backend breaks the property (a test failure).
pub fn contract_subscription_sees_every_position_once<B: Backend>(s: &Arc<B>, writers: usize) {
    const PER_WRITER: usize = 60;
    let total = (writers * PER_WRITER) as u64;
    let sub_source = s.clone();
    let reader = std::thread::spawn(move || {
        let mut sub =
            Subscription::new(sub_source, 0, SubscriptionFilter::all()).with_batch_size(7);
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        while (seen.len() as u64) < total && Instant::now() < deadline {
            match sub.next_timeout(Duration::from_millis(200)) {
                Ok(Some(e)) => seen.push((e.position, e.event_id)),
                Ok(None) => {}
                Err(e) => panic!("subscription failed: {e}"),
            }
        }
        seen
    });
    let written: Vec<Vec<Uuid>> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..writers)
            .map(|w| {
                let s = s.clone();
                sc.spawn(move || {
                    let mut ids = Vec::new();
                    let mut i = 0;
                    while i < PER_WRITER {
                        let n = if i % 10 == 0 {
                            3.min(PER_WRITER - i)
                        } else {
                            1
                        };
                        let batch: Vec<NewEvent> = (0..n).map(|_| ev("W", &[w as u8])).collect();
                        ids.extend(batch.iter().map(|e| e.event_id));
                        ok(
                            s.append(&format!("w-{w}"), ExpectedVersion::Any, &batch),
                            "append",
                        );
                        i += n;
                    }
                    ids
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().expect("writer")).collect()
    });
    let seen = reader.join().expect("reader");
    assert_eq!(
        seen.len() as u64,
        total,
        "{}: subscriber saw every event",
        s.backend_name()
    );
    for (i, (p, _)) in seen.iter().enumerate() {
        assert_eq!(
            *p,
            i as u64,
            "{}: in order, no gap, no repeat",
            s.backend_name()
        );
    }
    let seen_ids: HashSet<Uuid> = seen.iter().map(|x| x.1).collect();
    let all_ids: HashSet<Uuid> = written.into_iter().flatten().collect();
    assert_eq!(seen_ids, all_ids);
}

/// Snapshots: saved, loaded back, replaced by a later save; one whose event id the log does not
/// hold at that version is not returned.
///
/// # Panics
/// When the backend breaks the property (a test failure).
pub fn contract_snapshots<B: Backend>(s: &B) {
    let r = ok(
        s.append(
            "agg",
            ExpectedVersion::NoStream,
            &[ev("E", b""), ev("E", b"")],
        ),
        "append",
    );
    let events = ok(s.read_stream("agg", 0), "read");
    assert_eq!(ok(s.load_snapshot("agg"), "load none"), None);
    ok(
        s.save_snapshot("agg", 0, events[0].event_id, b"state-0"),
        "save 0",
    );
    let snap = ok(s.load_snapshot("agg"), "load").expect("snapshot at 0");
    assert_eq!(
        (snap.version, snap.payload.as_slice()),
        (0, &b"state-0"[..])
    );
    ok(
        s.save_snapshot("agg", r.last_version, events[1].event_id, b"state-1"),
        "save 1",
    );
    let snap = ok(s.load_snapshot("agg"), "load").expect("snapshot at 1");
    assert_eq!((snap.version, snap.event_id), (1, events[1].event_id));
    // A snapshot naming an event the log does not hold there is ignored.
    ok(
        s.save_snapshot("agg", 1, Uuid::new_v4(), b"lies"),
        "save wrong id",
    );
    assert_eq!(ok(s.load_snapshot("agg"), "load wrong id"), None);
}

/// The contract's projection: counts events and sums their first bytes.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct CountingProjection {
    /// Events applied.
    pub count: u64,
    /// Sum of the first data byte of each.
    pub sum: u64,
}

impl Projection for CountingProjection {
    const NAME: &'static str = "contract-count";
    const VERSION: u32 = 1;
    fn apply(&mut self, event: &RecordedEvent) {
        self.count += 1;
        self.sum += u64::from(event.data.first().copied().unwrap_or(0));
    }
}

/// Checkpoints: a projection runner over the backend resumes from its checkpoint after a
/// restart (no event applied twice or missed), and rebuilds when the log no longer holds the
/// event the checkpoint names.
///
/// # Panics
/// When the backend breaks the property (a test failure).
pub fn contract_checkpoints<B: Backend>(s: &Arc<B>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("count.proj");
    for i in 0..10u8 {
        ok(
            s.append("c", ExpectedVersion::Any, &[ev("E", &[i])]),
            "append",
        );
    }
    let mut runner = ok(
        ProjectionRunner::<CountingProjection, _>::open(s.clone(), &path),
        "open",
    );
    assert_eq!(ok(runner.catch_up(), "catch up"), 10);
    ok(runner.checkpoint(), "checkpoint");
    drop(runner);
    for i in 10..15u8 {
        ok(
            s.append("c", ExpectedVersion::Any, &[ev("E", &[i])]),
            "append",
        );
    }
    let mut runner = ok(
        ProjectionRunner::<CountingProjection, _>::open(s.clone(), &path),
        "reopen",
    );
    assert_eq!(runner.stats().resumed_from, Some(10));
    assert_eq!(ok(runner.catch_up(), "catch up"), 5);
    assert_eq!(
        runner.handle().read(|p| (p.count, p.sum)),
        (15, (0..15).sum())
    );
    assert_eq!(runner.next_position(), 15);
}

/// The domain layer runs unchanged: the Order service (repository with snapshots every 3
/// events, optimistic retries under contention from 8 threads) gives the same orders on the
/// backend, and its snapshots are saved and used.
///
/// # Panics
/// When the backend breaks the property (a test failure).
pub fn contract_order_service_runs_unchanged<B: Backend>(s: &Arc<B>) {
    use evstore_orders::{OrderService, OrderStatus};
    let svc = OrderService::new(s.clone()).with_snapshot_every(3);
    let id = ok(
        svc.create_order("user-1")
            .map_err(|e| Error::Internal(e.to_string())),
        "create",
    );
    std::thread::scope(|sc| {
        for i in 0..8i64 {
            let (svc, id) = (&svc, &id);
            sc.spawn(move || {
                for j in 0..3 {
                    svc.add_item(id, &format!("p-{i}-{j}"), 2, 100 + i)
                        .unwrap_or_else(|e| panic!("add_item: {e}"));
                }
            });
        }
    });
    let order = svc.confirm(&id).unwrap_or_else(|e| panic!("confirm: {e}"));
    let expected: i64 = (0..8).map(|i| 3 * 2 * (100 + i)).sum();
    assert_eq!(order.total_cents(), expected, "{}", s.backend_name());
    assert_eq!(order.status(), OrderStatus::Confirmed);
    let snap = ok(s.load_snapshot(&format!("Order-{id}")), "load snapshot");
    assert!(
        snap.is_some_and(|x| x.version >= 3),
        "{}: snapshots saved",
        s.backend_name()
    );
    let again = svc
        .get_order(&id)
        .unwrap_or_else(|e| panic!("get_order: {e}"))
        .unwrap_or_else(|| panic!("the order exists"));
    assert_eq!(again.total_cents(), expected);
    assert_eq!(
        ok(s.stream_version(&format!("Order-{id}")), "version"),
        Some(25)
    );
}
