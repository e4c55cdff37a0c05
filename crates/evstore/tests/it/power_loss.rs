//! Simulated power loss. The writer's file operations are recorded through the `LogIo` seam;
//! a "power cut" after I/O step N builds the disk image a real disk may leave: everything up to
//! the last completed sync is kept, and each later write is independently kept, dropped, or torn
//! (a prefix kept, the rest zeros or garbage), each later allocation kept or dropped. The image
//! is opened with the real code, which must:
//!
//! * open (a cut can never look like proven-durable corruption),
//! * keep every acknowledged append (Sync: acknowledged = returned; Buffered: returned before a
//!   completed `flush`), unchanged, at its versions and positions,
//! * hold no partial append — a multi-stream append (`append_multi`) counts as one append:
//!   all of its streams' events or none — keep positions and versions dense, keep tags, and
//!   accept new appends.
//!
//! Exhaustive over the cut step for a scripted workload (with segment growth and the seal on
//! close), with several random tear patterns per step, in both durability modes.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};

use crate::common::Rng;
use evstore::testing::LogIo;
use evstore::{Durability, ExpectedVersion, NewEvent, Options, Store, StreamAppend};

#[derive(Debug, Clone)]
enum Op {
    Write {
        offset: u64,
        data: Vec<u8>,
    },
    Allocate {
        offset: u64,
        len: u64,
    },
    Sync,
    /// Test marker: an append returned Ok (not an I/O step).
    Acked,
}

struct Recorder {
    inner: File,
    ops: Arc<Mutex<Vec<Op>>>,
}

impl LogIo for Recorder {
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.ops.lock().unwrap().push(Op::Write {
            offset,
            data: buf.to_vec(),
        });
        FileExt::write_all_at(&self.inner, buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.ops.lock().unwrap().push(Op::Sync);
        self.inner.sync_data()
    }
    fn sync_all(&self) -> io::Result<()> {
        self.ops.lock().unwrap().push(Op::Sync);
        self.inner.sync_all()
    }
    fn allocate(&self, offset: u64, len: u64) -> io::Result<()> {
        self.ops.lock().unwrap().push(Op::Allocate { offset, len });
        LogIo::allocate(&self.inner, offset, len)
    }
}

fn options(durability: Durability) -> Options {
    Options {
        durability,
        segment_size: 64 * 1024,
        ..Options::default()
    }
}

struct Recorded {
    base: Vec<u8>,
    ops: Vec<Op>,
    /// Each acknowledged append: one (stream, events) part, or several for `append_multi`.
    appends: Vec<Vec<(String, Vec<NewEvent>)>>,
}

/// Run the scripted workload, recording every I/O step.
fn record(durability: Durability, seed: u64) -> Recorded {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.evs");
    // Create the file first so the base image is the durable state at open.
    drop(Store::open_with(&path, options(durability)).unwrap());
    let base = std::fs::read(&path).unwrap();
    let ops = Arc::new(Mutex::new(Vec::new()));
    let store = {
        let ops = ops.clone();
        evstore::testing::open_with_io(&path, options(durability), move |f| {
            Box::new(Recorder { inner: f, ops })
        })
        .unwrap()
    };
    // Opening again may have trimmed nothing and fsynced; the base is what is on disk now.
    assert_eq!(std::fs::read(&path).unwrap(), base);
    let mut rng = Rng(seed);
    let mut appends = Vec::new();
    for n in 0..24 {
        let stream = format!("s{}", rng.below(3));
        let count = 1 + rng.below(3) as usize;
        let events: Vec<NewEvent> = (0..count)
            .map(|j| {
                let size = match (n % 5 == 2 && j == 0, rng.below(6)) {
                    (true, _) => 20_000 + rng.below(9000) as usize,
                    (false, 0) => 3000 + rng.below(5000) as usize,
                    _ => rng.below(300) as usize,
                };
                NewEvent::new("P", vec![(n as u8).wrapping_mul(7); size])
                    .with_tags([format!("n:{n}"), format!("j:{j}")])
            })
            .collect();
        if rng.below(3) == 0 {
            // A multi-stream append: this stream's events, and one event on each of one or
            // two other streams.
            let mut parts = vec![(stream.clone(), events)];
            for k in 0..1 + rng.below(2) {
                let other = format!("m{}", (n as u64 + k) % 4);
                let size = if rng.below(3) == 0 { 5000 } else { 40 };
                let e = NewEvent::new("M", vec![n as u8; size]).with_tags([format!("multi:{n}")]);
                parts.push((other, vec![e]));
            }
            let request: Vec<StreamAppend> = parts
                .iter()
                .map(|(s, e)| StreamAppend::new(s, ExpectedVersion::Any, e.clone()))
                .collect();
            store.append_multi(&request).unwrap();
            ops.lock().unwrap().push(Op::Acked);
            appends.push(parts);
        } else {
            store
                .append(&stream, ExpectedVersion::Any, &events)
                .unwrap();
            ops.lock().unwrap().push(Op::Acked);
            appends.push(vec![(stream, events)]);
        }
        if durability == Durability::Buffered && rng.below(4) == 0 {
            store.flush().unwrap();
        }
    }
    assert!(store.stats().segments >= 2, "the workload grows the file");
    drop(store); // flush + seal
    let ops = ops.lock().unwrap().clone();
    Recorded { base, ops, appends }
}

/// The image after a power cut before step `cut` (ops[..cut] were issued).
fn image(rec: &Recorded, cut: usize, rng: &mut Rng) -> Vec<u8> {
    let issued = &rec.ops[..cut];
    let last_sync = issued.iter().rposition(|o| matches!(o, Op::Sync));
    let mut img = rec.base.clone();
    for (i, op) in issued.iter().enumerate() {
        let durable = last_sync.is_some_and(|s| i < s);
        match op {
            Op::Write { offset, data } => {
                let keep = if durable {
                    data.len()
                } else {
                    match rng.below(3) {
                        0 => data.len(),
                        1 => 0,
                        _ => rng.below(data.len() as u64 + 1) as usize,
                    }
                };
                let end = *offset as usize + data.len();
                if img.len() < end && keep > 0 {
                    img.resize(end, 0);
                }
                let off = *offset as usize;
                img[off..off + keep].copy_from_slice(&data[..keep]);
                // A torn write may leave garbage instead of zeros after the kept prefix.
                if !durable && keep < data.len() && rng.below(2) == 0 {
                    let garbage_end = (off + data.len()).min(img.len());
                    for b in &mut img[off + keep..garbage_end] {
                        *b = rng.next() as u8;
                    }
                }
            }
            Op::Allocate { offset, len } => {
                if durable || rng.below(2) == 0 {
                    let end = (offset + len) as usize;
                    if img.len() < end {
                        img.resize(end, 0);
                    }
                }
            }
            Op::Sync | Op::Acked => {}
        }
    }
    img
}

/// Appends that must survive a cut before step `cut`.
fn must_survive(rec: &Recorded, cut: usize, durability: Durability) -> usize {
    let issued = &rec.ops[..cut];
    let horizon = match durability {
        Durability::Sync => issued.len(),
        // Buffered: only appends acknowledged before the last completed sync.
        Durability::Buffered => issued
            .iter()
            .rposition(|o| matches!(o, Op::Sync))
            .unwrap_or(0),
    };
    issued[..horizon]
        .iter()
        .filter(|o| matches!(o, Op::Acked))
        .count()
}

fn check(rec: &Recorded, img: &[u8], survivors: usize, what: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("img.evs");
    std::fs::write(&path, img).unwrap();
    let store = Store::open(&path).unwrap_or_else(|e| panic!("{what}: open failed: {e}"));
    let all: Vec<_> = store
        .read_all(0)
        .collect::<Result<Vec<_>, _>>()
        .unwrap_or_else(|e| panic!("{what}: read failed: {e}"));
    // The log is a prefix of the appends, whole appends only.
    let mut expected = Vec::new();
    let mut versions: HashMap<&str, u64> = HashMap::new();
    let mut boundaries = vec![0usize];
    for parts in &rec.appends {
        for (stream, events) in parts {
            for e in events {
                let v = versions.entry(stream).or_insert(0);
                expected.push((stream.as_str(), *v, e.event_id, e.data.len(), &e.tags));
                *v += 1;
            }
        }
        boundaries.push(expected.len());
    }
    assert!(
        boundaries.contains(&all.len()),
        "{what}: {} events is not a whole number of appends",
        all.len()
    );
    assert!(
        all.len() >= boundaries[survivors],
        "{what}: {} events survived, {} were acknowledged",
        all.len(),
        boundaries[survivors]
    );
    for (i, (e, (stream, version, id, len, tags))) in all.iter().zip(&expected).enumerate() {
        assert_eq!(e.position, i as u64, "{what}");
        assert_eq!(
            (e.stream_id.as_str(), e.version, e.event_id, e.data.len()),
            (*stream, *version, *id, *len),
            "{what}: event {i}"
        );
        assert_eq!(&e.tags, *tags, "{what}: tags of event {i}");
    }
    let r = store
        .append(
            "after",
            ExpectedVersion::Any,
            &[NewEvent::new("A", b"x".to_vec())],
        )
        .unwrap();
    assert_eq!(r.first_position, all.len() as u64, "{what}");
    drop(store);
    let again = Store::open(&path).unwrap_or_else(|e| panic!("{what}: second open failed: {e}"));
    assert_eq!(again.head_position(), Some(all.len() as u64), "{what}");
}

fn exhaustive(durability: Durability, seed: u64, variants: usize) {
    let rec = record(durability, seed);
    let io_steps = rec.ops.iter().filter(|o| !matches!(o, Op::Acked)).count();
    assert!(
        io_steps > 30,
        "a workload with enough I/O steps ({io_steps})"
    );
    let mut rng = Rng(seed ^ 0xA5A5);
    eprintln!(
        "{durability:?}: {io_steps} I/O steps, {} cut points x {variants} tear patterns",
        rec.ops.len() + 1
    );
    for cut in 0..=rec.ops.len() {
        let survivors = must_survive(&rec, cut, durability);
        for v in 0..variants {
            let img = image(&rec, cut, &mut rng);
            check(
                &rec,
                &img,
                survivors,
                &format!("{durability:?} seed {seed} cut {cut} variant {v}"),
            );
        }
    }
}

#[test]
fn sync_cuts_at_every_step_keep_acknowledged_appends() {
    exhaustive(Durability::Sync, 0x5EED_0001, 4);
}

#[test]
fn buffered_cuts_at_every_step_keep_flushed_appends() {
    exhaustive(Durability::Buffered, 0x5EED_0002, 4);
}

#[test]
fn random_workloads_survive_random_cuts() {
    let runs: u64 = std::env::var("EVSTORE_POWER_LOSS_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6);
    for seed in 0..runs {
        let durability = if seed % 2 == 0 {
            Durability::Sync
        } else {
            Durability::Buffered
        };
        let rec = record(durability, 1000 + seed);
        let mut rng = Rng(77 + seed);
        for _ in 0..20 {
            let cut = rng.below(rec.ops.len() as u64 + 1) as usize;
            let survivors = must_survive(&rec, cut, durability);
            let img = image(&rec, cut, &mut rng);
            check(
                &rec,
                &img,
                survivors,
                &format!("{durability:?} seed {} cut {cut}", 1000 + seed),
            );
        }
    }
}
