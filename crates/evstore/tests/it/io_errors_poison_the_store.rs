//! I/O errors poison the store (BRIEF §3): when a write, an fdatasync or a segment allocation
//! fails, the append reports the error, every later write is refused with `Error::Poisoned`
//! without touching the file again (no retried fsync, no seal on close), reads keep returning
//! exactly the acknowledged events, and a plain reopen finds every acknowledged event and
//! accepts new appends.
//!
//! Faults are injected through `Store::open_with_io` and a `LogIo` wrapper.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use evstore::testing::LogIo;
use evstore::{
    AppendResult, Durability, Error, ExpectedVersion, NewEvent, Options, RecordedEvent, Store,
};
use uuid::Uuid;

const SEG: u64 = 64 * 1024;
const HEADER: u64 = 4096;
const EIO: i32 = 5;
const ENOSPC: i32 = 28;

/// Switches and counters shared between a test and its `FaultyIo`.
#[derive(Default)]
struct Faults {
    /// The next `write_all_at` fails with EIO, writing nothing.
    fail_next_write: AtomicBool,
    /// The next `write_all_at` writes the first half of its bytes, then fails with EIO.
    short_next_write: AtomicBool,
    /// The `write_all_at` call with this 1-based number fails with EIO (0: never).
    fail_write_number: AtomicU64,
    /// The next `sync_data` fails with EIO.
    fail_next_sync_data: AtomicBool,
    /// Every `allocate` fails with ENOSPC.
    fail_allocate: AtomicBool,
    writes: AtomicU64,
    data_syncs: AtomicU64,
    full_syncs: AtomicU64,
    allocates: AtomicU64,
}

impl Faults {
    /// Every I/O call the writer made.
    fn calls(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
            + self.data_syncs.load(Ordering::SeqCst)
            + self.full_syncs.load(Ordering::SeqCst)
            + self.allocates.load(Ordering::SeqCst)
    }
}

struct FaultyIo {
    inner: File,
    faults: Arc<Faults>,
}

fn os_error(errno: i32) -> io::Error {
    io::Error::from_raw_os_error(errno)
}

impl LogIo for FaultyIo {
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let n = self.faults.writes.fetch_add(1, Ordering::SeqCst) + 1;
        if self.faults.fail_next_write.swap(false, Ordering::SeqCst)
            || self.faults.fail_write_number.load(Ordering::SeqCst) == n
        {
            return Err(os_error(EIO));
        }
        if self.faults.short_next_write.swap(false, Ordering::SeqCst) {
            LogIo::write_all_at(&self.inner, &buf[..buf.len() / 2], offset)?;
            return Err(os_error(EIO));
        }
        LogIo::write_all_at(&self.inner, buf, offset)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.faults.data_syncs.fetch_add(1, Ordering::SeqCst);
        if self
            .faults
            .fail_next_sync_data
            .swap(false, Ordering::SeqCst)
        {
            return Err(os_error(EIO));
        }
        LogIo::sync_data(&self.inner)
    }

    fn sync_all(&self) -> io::Result<()> {
        self.faults.full_syncs.fetch_add(1, Ordering::SeqCst);
        LogIo::sync_all(&self.inner)
    }

    fn allocate(&self, offset: u64, len: u64) -> io::Result<()> {
        self.faults.allocates.fetch_add(1, Ordering::SeqCst);
        if self.faults.fail_allocate.load(Ordering::SeqCst) {
            return Err(os_error(ENOSPC));
        }
        LogIo::allocate(&self.inner, offset, len)
    }
}

fn options(durability: Durability) -> Options {
    Options {
        durability,
        segment_size: SEG,
        ..Options::default()
    }
}

fn open_faulty(path: &Path, durability: Durability) -> (Store, Arc<Faults>) {
    let faults = Arc::new(Faults::default());
    let f = faults.clone();
    let store = evstore::testing::open_with_io(path, options(durability), move |file| {
        Box::new(FaultyIo {
            inner: file,
            faults: f,
        })
    })
    .unwrap();
    (store, faults)
}

fn read_all(store: &Store) -> Vec<RecordedEvent> {
    store
        .read_all(0)
        .collect::<evstore::Result<Vec<_>>>()
        .expect("read_all")
}

/// An event the store acknowledged: what a reader must find.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Acked {
    id: Uuid,
    stream: String,
    version: u64,
    position: u64,
}

fn acked_from(stream: &str, events: &[NewEvent], r: &AppendResult) -> Vec<Acked> {
    assert_eq!(r.last_position - r.first_position + 1, events.len() as u64);
    events
        .iter()
        .enumerate()
        .map(|(i, e)| Acked {
            id: e.event_id,
            stream: stream.to_string(),
            version: r.first_version + i as u64,
            position: r.first_position + i as u64,
        })
        .collect()
}

fn as_acked(events: &[RecordedEvent]) -> Vec<Acked> {
    events
        .iter()
        .map(|e| Acked {
            id: e.event_id,
            stream: e.stream_id.clone(),
            version: e.version,
            position: e.position,
        })
        .collect()
}

fn batch(tag: &str, n: usize, data_len: usize) -> Vec<NewEvent> {
    (0..n)
        .map(|i| NewEvent::new(format!("{tag}-{i}"), vec![b'a' + (i % 26) as u8; data_len]))
        .collect()
}

/// `n` appends of 1..=3 events across two streams; records what was acknowledged.
fn append_some(store: &Store, n: usize, acked: &mut Vec<Acked>) {
    for i in 0..n {
        let stream = if i % 2 == 0 { "acct-1" } else { "acct-2" };
        let events = batch("Deposited", 1 + i % 3, 20);
        let r = store.append(stream, ExpectedVersion::Any, &events).unwrap();
        acked.extend(acked_from(stream, &events, &r));
    }
}

fn assert_io_error(r: evstore::Result<impl std::fmt::Debug>, errno: i32, what: &str) {
    match r {
        Err(Error::Io(e)) => assert_eq!(e.raw_os_error(), Some(errno), "{what}: {e}"),
        other => panic!("{what}: expected an I/O error {errno}, got {other:?}"),
    }
}

fn assert_poisoned_error(r: evstore::Result<impl std::fmt::Debug>, what: &str) {
    assert!(matches!(r, Err(Error::Poisoned)), "{what}: {r:?}");
}

/// The store is poisoned: writes are refused without any I/O, reads return exactly `acked`,
/// and dropping it does no I/O either.
fn check_poisoned_then_drop(store: Store, faults: &Faults, acked: &[Acked]) {
    assert!(store.is_poisoned());
    let calls = faults.calls();
    assert_poisoned_error(
        store.append("acct-1", ExpectedVersion::Any, &batch("Late", 1, 5)),
        "append after poison",
    );
    assert_poisoned_error(
        store.append("fresh", ExpectedVersion::NoStream, &batch("Late", 2, 5)),
        "append to a new stream after poison",
    );
    assert_poisoned_error(store.flush(), "flush after poison");
    assert_poisoned_error(store.flush(), "second flush after poison");
    assert_eq!(faults.calls(), calls, "a poisoned store touched the file");

    assert_eq!(as_acked(&read_all(&store)), acked, "reads while poisoned");
    assert_eq!(
        store.head_position(),
        (acked.len() as u64).checked_sub(1),
        "head while poisoned"
    );
    let mut streams: Vec<&str> = acked.iter().map(|a| a.stream.as_str()).collect();
    streams.sort_unstable();
    streams.dedup();
    assert!(!streams.is_empty());
    for stream in streams {
        let want: Vec<&Acked> = acked.iter().filter(|a| a.stream == stream).collect();
        let got = store.read_stream(stream, 0).unwrap();
        assert_eq!(
            got.len(),
            want.len(),
            "read_stream({stream}) while poisoned"
        );
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(
                (g.event_id, g.version, g.position),
                (w.id, w.version, w.position)
            );
        }
        assert_eq!(store.stream_version(stream), want.last().map(|a| a.version));
    }
    assert!(store.is_poisoned(), "still poisoned after reads");
    drop(store);
    assert_eq!(
        faults.calls(),
        calls,
        "dropping a poisoned store touched the file"
    );
}

/// Reopen with a plain `Store::open`: every acknowledged event is there, in place. Events of
/// `failed` (the append that reported the error) may be there too, all or none, right after.
/// New appends continue densely and survive another reopen. Returns the events found on open.
fn check_reopen(path: &Path, acked: &[Acked], failed: &[Uuid]) -> Vec<RecordedEvent> {
    let store = Store::open(path).unwrap();
    let found = read_all(&store);
    assert!(
        found.len() >= acked.len(),
        "lost events: {} of {}",
        found.len(),
        acked.len()
    );
    assert_eq!(
        as_acked(&found[..acked.len()]),
        acked,
        "acknowledged events after reopen"
    );
    let extra: Vec<Uuid> = found[acked.len()..].iter().map(|e| e.event_id).collect();
    assert!(
        extra.is_empty() || extra == failed,
        "after the acknowledged events: {extra:?}, expected nothing or the failed append {failed:?}"
    );
    let events = batch("AfterReopen", 2, 10);
    let r = store
        .append("acct-1", ExpectedVersion::Any, &events)
        .unwrap();
    assert_eq!(
        r.first_position,
        found.len() as u64,
        "positions continue densely"
    );
    let v1 = found
        .iter()
        .filter(|e| e.stream_id == "acct-1")
        .map(|e| e.version)
        .max();
    assert_eq!(
        r.first_version,
        v1.map_or(0, |v| v + 1),
        "versions continue densely"
    );
    drop(store);
    let store = Store::open(path).unwrap();
    let again = read_all(&store);
    assert_eq!(again.len(), found.len() + 2);
    assert_eq!(&again[..found.len()], &found[..]);
    assert_eq!(again[found.len()].event_id, events[0].event_id);
    found
}

fn write_eio_poisons(durability: Durability) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.evs");
    let (store, faults) = open_faulty(&path, durability);
    let mut acked = Vec::new();
    append_some(&store, 5, &mut acked);
    assert!(!store.is_poisoned());
    faults.fail_next_write.store(true, Ordering::SeqCst);
    let failed = batch("Failed", 2, 30);
    assert_io_error(
        store.append("acct-1", ExpectedVersion::Any, &failed),
        EIO,
        "append with a failing write",
    );
    check_poisoned_then_drop(store, &faults, &acked);
    let found = check_reopen(&path, &acked, &[]);
    assert_eq!(
        found.len(),
        acked.len(),
        "nothing of the failed write was written"
    );
}

#[test]
fn write_eio_fails_the_append_and_poisons_a_sync_store() {
    write_eio_poisons(Durability::Sync);
}

#[test]
fn write_eio_fails_the_append_and_poisons_a_buffered_store() {
    write_eio_poisons(Durability::Buffered);
}

#[test]
fn sync_eio_fails_the_append_poisons_and_hides_the_unsynced_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.evs");
    let (store, faults) = open_faulty(&path, Durability::Sync);
    let mut acked = Vec::new();
    append_some(&store, 5, &mut acked);
    faults.fail_next_sync_data.store(true, Ordering::SeqCst);
    let failed = batch("Failed", 3, 30);
    assert_io_error(
        store.append("acct-2", ExpectedVersion::Any, &failed),
        EIO,
        "append with a failing fdatasync",
    );
    // The written-but-unsynced events must not be visible (check_poisoned compares exactly).
    check_poisoned_then_drop(store, &faults, &acked);
    // Their bytes reached the page cache, so they may reappear, but only as a whole.
    let ids: Vec<Uuid> = failed.iter().map(|e| e.event_id).collect();
    check_reopen(&path, &acked, &ids);
}

#[test]
fn flush_eio_in_a_buffered_store_poisons_it_and_keeps_acknowledged_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.evs");
    let (store, faults) = open_faulty(&path, Durability::Buffered);
    let mut acked = Vec::new();
    append_some(&store, 4, &mut acked);
    store.flush().unwrap();
    append_some(&store, 3, &mut acked);
    faults.fail_next_sync_data.store(true, Ordering::SeqCst);
    assert_io_error(store.flush(), EIO, "flush with a failing fdatasync");
    check_poisoned_then_drop(store, &faults, &acked);
    let found = check_reopen(&path, &acked, &[]);
    assert_eq!(found.len(), acked.len());
}

#[test]
fn short_write_fails_the_append_poisons_and_its_torn_frame_is_trimmed_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.evs");
    let (store, faults) = open_faulty(&path, Durability::Sync);
    let mut acked = Vec::new();
    append_some(&store, 5, &mut acked);
    let before = std::fs::read(&path).unwrap();
    faults.short_next_write.store(true, Ordering::SeqCst);
    let failed = batch("Failed", 3, 40);
    assert_io_error(
        store.append("acct-1", ExpectedVersion::Any, &failed),
        EIO,
        "append with a short write",
    );
    let after = std::fs::read(&path).unwrap();
    let torn_at = before
        .iter()
        .zip(&after)
        .position(|(a, b)| a != b)
        .expect("the short write left bytes in the file");
    check_poisoned_then_drop(store, &faults, &acked);

    let store = Store::open(&path).unwrap();
    let t = store
        .recovery_report()
        .trimmed
        .clone()
        .expect("the half-written frame is reported trimmed");
    assert_eq!(t.segment, 0);
    assert!(
        HEADER + t.offset <= torn_at as u64,
        "trimmed at {} but the torn bytes start at file offset {torn_at}",
        t.offset
    );
    assert_eq!(as_acked(&read_all(&store)), acked);
    drop(store);
    let found = check_reopen(&path, &acked, &[]);
    assert_eq!(
        found.len(),
        acked.len(),
        "a half-written append must not reappear"
    );
}

#[test]
fn enospc_while_growing_a_segment_fails_the_append_and_poisons_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.evs");
    let (store, faults) = open_faulty(&path, Durability::Sync);
    faults.fail_allocate.store(true, Ordering::SeqCst);
    let mut acked = Vec::new();
    let mut failed = Vec::new();
    for i in 0.. {
        assert!(i < 1000, "the store never needed a second segment");
        let stream = if i % 2 == 0 { "acct-1" } else { "acct-2" };
        let events = batch("Blob", 1, 1000);
        match store.append(stream, ExpectedVersion::Any, &events) {
            Ok(r) => acked.extend(acked_from(stream, &events, &r)),
            Err(e) => {
                assert_io_error(Err::<(), _>(e), ENOSPC, "append that needs a new segment");
                failed = events;
                break;
            }
        }
    }
    assert!(!failed.is_empty());
    assert!(
        acked.len() > 50,
        "the first segment should hold ~60 such events, failed after {}",
        acked.len()
    );
    assert_eq!(
        faults.allocates.load(Ordering::SeqCst),
        1,
        "one growth attempt"
    );
    assert_eq!(store.stats().segments, 1);
    check_poisoned_then_drop(store, &faults, &acked);
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        HEADER + SEG,
        "no partial segment was added"
    );

    let found = check_reopen(&path, &acked, &[]);
    assert_eq!(found.len(), acked.len());
    // With space available again, the store grows a second segment.
    let store = Store::open(&path).unwrap();
    let mut n = 0;
    while store.stats().segments < 2 {
        store
            .append("acct-3", ExpectedVersion::Any, &batch("Blob", 1, 1000))
            .unwrap();
        n += 1;
        assert!(n < 1000);
    }
    let total = read_all(&store).len();
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(read_all(&store).len(), total);
    assert_eq!(store.stats().segments, 2);
    assert_eq!(
        as_acked(&read_all(&store)[..acked.len()]),
        acked,
        "acknowledged events after growth"
    );
}

#[test]
fn failed_seal_sync_on_close_is_reported_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.evs");
    let (store, faults) = open_faulty(&path, Durability::Sync);
    let mut acked = Vec::new();
    append_some(&store, 4, &mut acked);
    faults.fail_next_sync_data.store(true, Ordering::SeqCst);
    assert_io_error(store.close(), EIO, "close whose seal sync fails");
    let found = check_reopen(&path, &acked, &[]);
    assert_eq!(found.len(), acked.len());
}

#[test]
fn write_eio_under_concurrent_group_commit_keeps_every_acknowledged_event() {
    const THREADS: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.evs");
    let (store, faults) = open_faulty(&path, Durability::Sync);
    // Fail a write in the middle of the run.
    faults.fail_write_number.store(40, Ordering::SeqCst);
    let store = Arc::new(store);
    let acked_all = Arc::new(Mutex::new(Vec::<Acked>::new()));
    let failed_all = Arc::new(Mutex::new(Vec::<Vec<Uuid>>::new()));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (store, acked_all, failed_all) =
                (store.clone(), acked_all.clone(), failed_all.clone());
            std::thread::spawn(move || {
                let stream = format!("worker-{t}");
                for i in 0.. {
                    assert!(i < 100_000, "the injected write failure never happened");
                    let events = batch("Tick", 1 + i % 2, 16);
                    match store.append(&stream, ExpectedVersion::Any, &events) {
                        Ok(r) => acked_all
                            .lock()
                            .unwrap()
                            .extend(acked_from(&stream, &events, &r)),
                        Err(e) => {
                            assert!(
                                matches!(&e, Error::Poisoned)
                                    || matches!(&e, Error::Io(io) if io.raw_os_error() == Some(EIO)),
                                "thread {t}: {e:?}"
                            );
                            failed_all
                                .lock()
                                .unwrap()
                                .push(events.iter().map(|e| e.event_id).collect());
                            return;
                        }
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let store = Arc::into_inner(store).expect("threads are done");
    let mut acked = std::mem::take(&mut *acked_all.lock().unwrap());
    acked.sort_by_key(|a| a.position);
    assert!(
        acked.len() >= 39,
        "only {} events acknowledged",
        acked.len()
    );
    let positions: Vec<u64> = acked.iter().map(|a| a.position).collect();
    assert_eq!(
        positions,
        (0..acked.len() as u64).collect::<Vec<_>>(),
        "acknowledged positions are dense from 0"
    );
    check_poisoned_then_drop(store, &faults, &acked);

    let store = Store::open(&path).unwrap();
    let found = read_all(&store);
    drop(store);
    assert_eq!(as_acked(&found[..acked.len()]), acked);
    // Anything more must be whole failed appends.
    let failed = failed_all.lock().unwrap().clone();
    let mut rest = &found[acked.len()..];
    while !rest.is_empty() {
        let f = failed
            .iter()
            .find(|f| f[0] == rest[0].event_id)
            .unwrap_or_else(|| panic!("event {:?} was never appended", rest[0]));
        assert!(rest.len() >= f.len(), "a failed append came back partly");
        let ids: Vec<Uuid> = rest[..f.len()].iter().map(|e| e.event_id).collect();
        assert_eq!(&ids, f, "a failed append came back partly");
        rest = &rest[f.len()..];
    }
    check_reopen(&path, &as_acked(&found), &[]);
}
