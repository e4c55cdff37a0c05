//! Unit tests of the group-commit bookkeeping (`WriterState`, without I/O) and of a real
//! `Store` whose writes are held at a gate, so the leader hand-off happens in a known order.

use std::fs::File;
use std::io;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::retry::InflightMatch;
use super::state::{QueuedPart, RecentAppend, WaitStep, WriterState};
use super::Store;
use crate::error::Error;
use crate::log::writer::{EncodedBatch, LogIo};
use crate::types::{AppendResult, ExpectedVersion, NewEvent, Options, MIN_SEGMENT_SIZE};

/// `n` events with fresh ids.
fn events(n: usize) -> Vec<NewEvent> {
    (0..n).map(|_| NewEvent::new("E", Vec::new())).collect()
}

/// Assign `batch` versions after `current` of `stream` and queue it, as `append` does when a
/// leader is writing or others are queued.
fn queue(
    st: &mut WriterState,
    stream: &str,
    current: Option<u64>,
    batch: &[NewEvent],
) -> AppendResult {
    let (result, _) = st.assign(current, batch.len() as u64, 0);
    let encoded = EncodedBatch {
        bytes: Arc::new(Vec::new()),
        events: batch.len() as u64,
        batches: 1,
    };
    let part = QueuedPart {
        stream,
        result,
        events: batch,
        range: 0..0,
    };
    st.enqueue(encoded, std::slice::from_ref(&part));
    result
}

/// Put `batch` in the solo slot and begin writing it, as a solo leader does.
fn begin_solo(
    st: &mut WriterState,
    stream: &str,
    current: Option<u64>,
    batch: &[NewEvent],
) -> AppendResult {
    let (result, _) = st.assign(current, batch.len() as u64, 0);
    st.begin_solo(stream, batch, result, Arc::new(Vec::new()));
    st.begin_write(end(result));
    result
}

/// The end position of a batch: what its appender waits to see published.
fn end(result: AppendResult) -> u64 {
    result.last_position + 1
}

fn wait_on(st: &WriterState, result: AppendResult) -> usize {
    match st.wait_step(end(result)) {
        WaitStep::WaitOn(parity) => parity,
        other => panic!("expected to wait for a leader, got {other:?}"),
    }
}

#[test]
fn a_batch_queued_while_a_group_is_written_waits_for_the_next_group() {
    let mut st = WriterState::new(0, 0);
    let a = queue(&mut st, "a", None, &events(2));
    assert_eq!(st.wait_step(end(a)), WaitStep::Lead, "nobody leads");
    let (batches, group_end) = st.take_group();
    assert_eq!((batches.len(), group_end), (1, end(a)));
    st.begin_write(group_end);
    let b = queue(&mut st, "b", None, &events(1));
    let (a_waits_on, b_waits_on) = (wait_on(&st, a), wait_on(&st, b));
    assert_ne!(a_waits_on, b_waits_on, "b is in the next group");
    assert_eq!(
        st.publish(group_end),
        a_waits_on,
        "the publish wakes a's group"
    );
    st.finish_group(batches, true);
    assert_eq!(st.wait_step(end(a)), WaitStep::Published);
    assert_eq!(
        st.wait_step(end(b)),
        WaitStep::Lead,
        "b's group has no leader yet"
    );
    assert!(st.queue_needs_leader());
    assert_eq!(st.next_group_parity(), b_waits_on, "a hand-off wakes b");
    let (batches, group_end) = st.take_group();
    st.begin_write(group_end);
    assert_eq!(
        wait_on(&st, b),
        b_waits_on,
        "b stays on its condvar as its group runs"
    );
    assert_eq!(st.publish(group_end), b_waits_on);
    st.finish_group(batches, true);
    assert_eq!(st.wait_step(end(b)), WaitStep::Published);
}

#[test]
fn a_queue_needs_a_leader_only_when_nobody_leads_and_the_store_is_healthy() {
    let mut st = WriterState::new(0, 0);
    assert!(!st.queue_needs_leader(), "nothing queued");
    assert!(st.solo_slot_free());
    let a = queue(&mut st, "a", None, &events(1));
    assert!(st.queue_needs_leader());
    assert!(!st.solo_slot_free(), "a later append queues behind a");
    let (batches, group_end) = st.take_group();
    st.begin_write(group_end);
    assert!(!st.solo_slot_free(), "a leader is writing");
    let b = queue(&mut st, "b", None, &events(1));
    assert!(!st.queue_needs_leader(), "the leader returns to it");
    st.fail_write();
    st.finish_group(batches, false);
    assert!(!st.queue_needs_leader(), "poisoned: nobody leads again");
    assert_eq!(st.wait_step(end(a)), WaitStep::Poisoned);
    assert_eq!(st.wait_step(end(b)), WaitStep::Poisoned);
    assert_eq!(
        st.wait_step(0),
        WaitStep::Published,
        "published before the failure"
    );
}

#[test]
fn versions_and_positions_are_assigned_densely_and_stamps_never_go_backwards() {
    let mut st = WriterState::new(10, 500);
    let (r, stamp) = st.assign(None, 3, 400);
    let first = AppendResult {
        first_version: 0,
        last_version: 2,
        first_position: 10,
        last_position: 12,
    };
    assert_eq!((r, stamp), (first, 500), "the clock went back: held up");
    let (r, stamp) = st.assign(Some(7), 1, 900);
    let second = AppendResult {
        first_version: 8,
        last_version: 8,
        first_position: 13,
        last_position: 13,
    };
    assert_eq!((r, stamp), (second, 900));
    assert_eq!(st.counters(), (2, 0), "two appends, no group begun");
}

/// What `inflight_match` says about an append of `batch` to `stream` with `expected`, which
/// must not be a conflict.
fn matched(
    st: &WriterState,
    stream: &str,
    expected: ExpectedVersion,
    batch: &[NewEvent],
) -> InflightMatch {
    match st.inflight_match(stream, expected, batch) {
        Ok(m) => m,
        Err(e) => panic!("{expected:?}: {e}"),
    }
}

/// That `inflight_match` finds `batch` (in flight at `r`) under each expected version that
/// places it there, and not under one that does not, nor in another stream.
fn assert_found_where_expected(
    st: &WriterState,
    stream: &str,
    batch: &[NewEvent],
    r: AppendResult,
) {
    let dup = InflightMatch::Duplicate(r);
    for expected in [ExpectedVersion::Any, ExpectedVersion::StreamExists] {
        assert_eq!(matched(st, stream, expected, batch), dup, "{expected:?}");
    }
    if r.first_version == 0 {
        assert_eq!(matched(st, stream, ExpectedVersion::NoStream, batch), dup);
    } else {
        let at = ExpectedVersion::Exact(r.first_version - 1);
        assert_eq!(matched(st, stream, at, batch), dup, "{at:?}");
        let no_stream = matched(st, stream, ExpectedVersion::NoStream, batch);
        assert_eq!(no_stream, InflightMatch::None, "NoStream puts it at 0");
    }
    let elsewhere = ExpectedVersion::Exact(r.first_version + 5);
    assert_eq!(matched(st, stream, elsewhere, batch), InflightMatch::None);
    let other_stream = matched(st, "other", ExpectedVersion::Any, batch);
    assert_eq!(
        other_stream,
        InflightMatch::None,
        "ids are matched per stream"
    );
}

#[test]
fn an_identical_inflight_batch_is_found_in_the_queue_the_writing_group_and_the_solo_slot() {
    // Queued (behind a leader nobody sees here), at versions 5..=6.
    let mut st = WriterState::new(0, 0);
    let batch = events(2);
    let r = queue(&mut st, "q", Some(4), &batch);
    assert_found_where_expected(&st, "q", &batch, r);

    // In the group a leader is writing.
    let (_batches, group_end) = st.take_group();
    st.begin_write(group_end);
    assert_found_where_expected(&st, "q", &batch, r);
    assert_eq!(st.inflight_version("q"), Some(6));

    // In the solo slot.
    let mut st = WriterState::new(0, 0);
    let batch = events(3);
    let r = begin_solo(&mut st, "s", None, &batch);
    assert_found_where_expected(&st, "s", &batch, r);
    assert_eq!(st.inflight_version("s"), Some(2));
}

#[test]
fn a_batch_that_only_starts_like_an_inflight_one_is_a_conflict() {
    let mut st = WriterState::new(0, 0);
    let batch = events(2);
    queue(&mut st, "s", None, &batch);
    let other = events(1).remove(0);
    let shorter = vec![batch[0].clone()];
    let different = vec![batch[0].clone(), other.clone()];
    let longer = vec![batch[0].clone(), batch[1].clone(), other];
    for attempt in [shorter, different, longer] {
        for expected in [ExpectedVersion::Any, ExpectedVersion::NoStream] {
            match st.inflight_match("s", expected, &attempt) {
                Err(Error::IdempotencyConflict { stream, .. }) => assert_eq!(stream, "s"),
                other => panic!("{} events, {expected:?}: {other:?}", attempt.len()),
            }
        }
    }
    let second_only = vec![batch[1].clone()];
    let found = matched(&st, "s", ExpectedVersion::Any, &second_only);
    assert_eq!(found, InflightMatch::None, "matched by the first event id");
}

#[test]
fn the_inflight_version_is_the_last_queued_batch_of_the_stream_or_the_solo_leaders() {
    let mut st = WriterState::new(0, 0);
    queue(&mut st, "s", None, &events(2));
    queue(&mut st, "t", None, &events(1));
    queue(&mut st, "s", Some(1), &events(1));
    assert_eq!(st.inflight_version("s"), Some(2));
    assert_eq!(st.inflight_version("t"), Some(0));
    assert_eq!(st.inflight_version("u"), None);
    let (batches, group_end) = st.take_group();
    st.begin_write(group_end);
    assert_eq!(
        st.inflight_version("s"),
        Some(2),
        "still in flight while written"
    );
    st.publish(group_end);
    st.finish_group(batches, true);
    assert_eq!(
        (st.inflight_version("s"), st.inflight_version("t")),
        (None, None)
    );

    begin_solo(&mut st, "u", Some(9), &events(1));
    assert_eq!(st.inflight_version("u"), Some(10));
    st.publish(group_end + 1);
    st.end_solo(true);
    assert_eq!(st.inflight_version("u"), None);
}

#[test]
fn a_published_group_keeps_the_inflight_version_of_a_batch_queued_meanwhile() {
    let mut st = WriterState::new(0, 0);
    let first = events(1);
    queue(&mut st, "s", None, &first);
    let (batches, group_end) = st.take_group();
    st.begin_write(group_end);
    let second = events(1);
    let r = queue(&mut st, "s", Some(0), &second);
    st.publish(group_end);
    st.finish_group(batches, true);
    assert_eq!(st.inflight_version("s"), Some(1));
    let published = matched(&st, "s", ExpectedVersion::Any, &first);
    assert_eq!(
        published,
        InflightMatch::None,
        "left to the published-retry check"
    );
    let queued = matched(&st, "s", ExpectedVersion::Exact(0), &second);
    assert_eq!(queued, InflightMatch::Duplicate(r));
}

#[test]
fn the_recent_append_cache_holds_the_last_solo_append_until_a_group_commits() {
    let mut st = WriterState::new(0, 0);
    let batch = events(2);
    let r = begin_solo(&mut st, "s", None, &batch);
    assert_eq!(st.recent_append("s"), None, "not published yet");
    st.publish(end(r));
    st.end_solo(true);
    let cached = RecentAppend {
        first_version: 0,
        last_version: 1,
    };
    assert_eq!(st.recent_append("s"), Some(cached));
    assert_eq!(st.recent_append("t"), None);
    let ids: Vec<_> = batch.iter().map(|e| e.event_id).collect();
    assert_eq!(st.recent_ids(), &ids[..]);

    let failed = begin_solo(&mut st, "t", None, &events(1));
    st.fail_write();
    st.end_solo(false);
    assert_eq!(st.recent_append("t"), None, "a failed append is not cached");
    assert_eq!(st.wait_step(end(failed)), WaitStep::Poisoned);

    let mut st = WriterState::new(0, 0);
    let r = begin_solo(&mut st, "s", None, &events(1));
    st.publish(end(r));
    st.end_solo(true);
    queue(&mut st, "other", None, &events(1));
    let (batches, group_end) = st.take_group();
    st.begin_write(group_end);
    st.publish(group_end);
    st.finish_group(batches, true);
    assert_eq!(st.recent_append("s"), None, "any group commit clears it");
}

#[test]
fn a_finished_group_hands_its_emptied_queue_back_unless_appenders_queued_meanwhile() {
    let mut st = WriterState::new(0, 0);
    queue(&mut st, "a", None, &events(1));
    let (batches, group_end) = st.take_group();
    let first_buffer = batches.as_ptr();
    st.begin_write(group_end);
    st.publish(group_end);
    st.finish_group(batches, true);
    queue(&mut st, "b", None, &events(1));
    let (batches, group_end) = st.take_group();
    assert_eq!(
        batches.as_ptr(),
        first_buffer,
        "the next group reuses the vector"
    );

    st.begin_write(group_end);
    let c = queue(&mut st, "c", None, &events(1));
    st.publish(group_end);
    st.finish_group(batches, true);
    let (batches, group_end) = st.take_group();
    assert_eq!(batches.len(), 1, "c, queued meanwhile, stays queued");
    assert_ne!(batches.as_ptr(), first_buffer);
    assert_eq!(group_end, end(c));
}

/// A gate in front of the log's writes: while armed, each write waits until the test lets it
/// through, so the test knows which group is being written.
#[derive(Default)]
struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Default)]
struct GateState {
    armed: bool,
    entered: u64,
    allowed: u64,
}

impl Gate {
    fn pass(&self) {
        let mut s = self.state.lock();
        if !s.armed {
            return;
        }
        s.entered += 1;
        let me = s.entered;
        self.changed.notify_all();
        while s.armed && s.allowed < me {
            self.changed.wait(&mut s);
        }
    }

    fn wait_entered(&self, n: u64) {
        let mut s = self.state.lock();
        let deadline = Instant::now() + Duration::from_secs(20);
        while s.entered < n {
            assert!(
                !self.changed.wait_until(&mut s, deadline).timed_out(),
                "write {n} never started"
            );
        }
    }

    fn allow(&self, n: u64) {
        self.state.lock().allowed = n;
        self.changed.notify_all();
    }

    fn set_armed(&self, armed: bool) {
        self.state.lock().armed = armed;
        self.changed.notify_all();
    }
}

struct GatedIo {
    file: File,
    gate: Arc<Gate>,
}

impl LogIo for GatedIo {
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.gate.pass();
        LogIo::write_all_at(&self.file, buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }
    fn sync_all(&self) -> io::Result<()> {
        self.file.sync_all()
    }
    fn allocate(&self, offset: u64, len: u64) -> io::Result<()> {
        LogIo::allocate(&self.file, offset, len)
    }
}

/// A store in a temporary directory whose writes pass `gate` (armed).
fn gated_store() -> (tempfile::TempDir, Arc<Store>, Arc<Gate>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let gate = Arc::new(Gate::default());
    let options = Options {
        segment_size: MIN_SEGMENT_SIZE,
        ..Options::default()
    };
    let io_gate = gate.clone();
    let store = Store::open_with_io(dir.path().join("g.evs"), options, move |file| {
        Box::new(GatedIo {
            file,
            gate: io_gate,
        })
    })
    .expect("open");
    gate.set_armed(true);
    (dir, Arc::new(store), gate)
}

/// Append `batch` to `stream` on a thread of its own; its result arrives on the channel.
fn spawn_append(
    store: &Arc<Store>,
    stream: &'static str,
    expected: ExpectedVersion,
    batch: Vec<NewEvent>,
) -> mpsc::Receiver<crate::Result<AppendResult>> {
    let (tx, rx) = mpsc::channel();
    let store = store.clone();
    std::thread::spawn(move || {
        let _ = tx.send(store.append(stream, expected, &batch));
    });
    rx
}

/// Wait until `n` appends were assigned versions (each is then queued or being written).
fn wait_assigned(store: &Store, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.state.lock().counters().0 < n {
        assert!(
            Instant::now() < deadline,
            "append {n} never got its versions"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn returned(rx: &mpsc::Receiver<crate::Result<AppendResult>>) -> AppendResult {
    rx.recv_timeout(Duration::from_secs(20))
        .expect("the append never returned")
        .expect("the append failed")
}

#[test]
fn a_leader_leads_two_groups_queued_behind_it_then_hands_the_queue_to_its_appenders() {
    let (_dir, store, gate) = gated_store();
    let a = spawn_append(&store, "a", ExpectedVersion::Any, events(1));
    gate.wait_entered(1); // a leads a group of one.
    let mut queued = Vec::new();
    for (k, stream) in [(2, "b"), (3, "c"), (4, "d")] {
        queued.push(spawn_append(
            &store,
            stream,
            ExpectedVersion::Any,
            events(1),
        ));
        wait_assigned(&store, k);
        gate.allow(k - 1);
        gate.wait_entered(k);
        if k < 4 {
            assert!(a.try_recv().is_err(), "a keeps leading group {k}");
        }
    }
    // Group 4 (d's) is held at the gate: a, done with its extra rounds, has returned and
    // handed d's queue off, and d leads it.
    assert_eq!(returned(&a).first_position, 0);
    gate.allow(4);
    let positions: Vec<_> = queued.iter().map(|r| returned(r).first_position).collect();
    assert_eq!(positions, [1, 2, 3]);
    gate.set_armed(false);
    assert_eq!(
        store.state.lock().counters(),
        (4, 4),
        "four appends, four groups"
    );
}

#[test]
fn an_identical_append_racing_a_solo_leader_waits_for_it_and_shares_its_result() {
    let (_dir, store, gate) = gated_store();
    let batch = events(2);
    let first = spawn_append(&store, "s", ExpectedVersion::NoStream, batch.clone());
    gate.wait_entered(1);
    let repeat = spawn_append(&store, "s", ExpectedVersion::NoStream, batch);
    // The repeat finds the batch in the solo slot and waits for it, assigned nothing.
    std::thread::sleep(Duration::from_millis(20));
    assert!(repeat.try_recv().is_err(), "the repeat waits for the write");
    gate.allow(1);
    let (r1, r2) = (returned(&first), returned(&repeat));
    assert_eq!(r1, r2);
    gate.set_armed(false);
    assert_eq!(store.state.lock().counters(), (1, 1), "written once");
    assert_eq!(store.head_position(), Some(1));
}

#[test]
fn a_repeat_of_the_last_solo_append_is_recognised_through_the_recent_cache() {
    let (_dir, store, gate) = gated_store();
    gate.set_armed(false);
    let batch = events(2);
    let r = store
        .append("s", ExpectedVersion::Any, &batch)
        .expect("append");
    assert!(store.state.lock().recent_append("s").is_some());
    let again = store
        .append("s", ExpectedVersion::Any, &batch)
        .expect("repeat");
    assert_eq!(again, r);
    let mut partial = batch.clone();
    partial[1] = events(1).remove(0);
    match store.append("s", ExpectedVersion::Any, &partial) {
        Err(Error::IdempotencyConflict { stream, .. }) => assert_eq!(stream, "s"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store.state.lock().counters(),
        (1, 1),
        "nothing written again"
    );
}
