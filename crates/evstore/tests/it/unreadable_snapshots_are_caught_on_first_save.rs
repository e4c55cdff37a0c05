//! A snapshot that would not decode back is caught when the first one of its aggregate type is
//! saved: a warning is logged once through `tracing`, no snapshot of that type is written (so no
//! load meets one it cannot use), loads replay, and the statistics count no phantom "used".

use std::io::Write;
use std::sync::{Arc, Mutex};

use evstore::aggregate::{Aggregate, SerdeEvent};
use evstore::repository::Repository;
use evstore::Store;
use serde::{Deserialize, Deserializer, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
enum TallyEvent {
    Counted,
}
impl SerdeEvent for TallyEvent {}

/// A state whose serde form cannot be read back (a `Deserialize` that rejects what
/// `Serialize` wrote, like a mismatched hand-written impl or attribute).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Tally {
    #[serde(deserialize_with = "reject")]
    n: u64,
}

fn reject<'de, D: Deserializer<'de>>(_: D) -> Result<u64, D::Error> {
    Err(serde::de::Error::custom("this field never reads back"))
}

impl Aggregate for Tally {
    const TYPE_NAME: &'static str = "UnreadableTally";
    type Event = TallyEvent;
    type Command = TallyEvent;
    type Error = std::convert::Infallible;
    fn apply(&mut self, _: &TallyEvent) {
        self.n += 1;
    }
    fn handle(&self, c: &TallyEvent) -> Result<Vec<TallyEvent>, Self::Error> {
        Ok(vec![c.clone()])
    }
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn unreadable_snapshots_are_caught_on_first_save() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path().join("t.evs")).unwrap());
    let tallies = Repository::<Tally, _>::new(store.clone()).with_snapshot_every(2);
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer({
            let logs = logs.clone();
            move || logs.clone()
        })
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        for _ in 0..10 {
            tallies.handle("t1", &TallyEvent::Counted).unwrap();
            tallies.handle("t2", &TallyEvent::Counted).unwrap();
        }
    });
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert_eq!(
        text.matches("cannot be read back").count(),
        1,
        "logged once: {text}"
    );
    assert!(text.contains("UnreadableTally"), "{text}");

    let stats = store.snapshot_stats().unwrap();
    assert_eq!((stats.saved, stats.live), (0, 0), "none written: {stats:?}");
    assert_eq!(
        tallies.load("t1").unwrap().unwrap().state().n,
        10,
        "loads replay"
    );
    let stats = store.snapshot_stats().unwrap();
    assert_eq!((stats.used, stats.ignored_undecodable), (0, 0), "{stats:?}");
}

#[test]
fn a_snapshot_that_does_not_decode_is_not_counted_as_used() {
    // A snapshot written by hand that the log confirms but that does not decode.
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path().join("u.evs")).unwrap());
    let tallies = Repository::<Tally, _>::new(store.clone()).with_snapshot_every(100);
    tallies.handle("t", &TallyEvent::Counted).unwrap();
    let id = store.event_id_at("UnreadableTally-t", 0).unwrap().unwrap();
    store
        .save_snapshot("UnreadableTally-t", 0, id, b"\xff\xff\x02\x01\x00garbage")
        .unwrap();
    assert_eq!(tallies.load("t").unwrap().unwrap().state().n, 1);
    let stats = store.snapshot_stats().unwrap();
    assert_eq!((stats.used, stats.ignored_undecodable), (0, 1), "{stats:?}");
}
