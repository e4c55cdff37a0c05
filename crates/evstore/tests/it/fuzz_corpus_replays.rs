//! Replays every file of the fuzz corpora (`fuzz/corpus/<target>/`) through the fuzz target
//! functions, so regressions found by `cargo fuzz` are caught by a plain `cargo test` on stable.
//!
//! `cargo test --test fuzz_corpus_replays -- --ignored regenerate_seed_corpus` rewrites the
//! seed files (small valid logs, torn logs, sidecars, op scripts).

use std::path::{Path, PathBuf};

use evstore::{Durability, ExpectedVersion, NewEvent, Options, Store};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join("fuzz")
        .join("corpus")
        .join(target)
}

fn replay(target: &str, f: fn(&[u8])) -> usize {
    let dir = corpus_dir(target);
    let mut n = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {} is missing: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    entries.sort();
    for path in entries {
        let data = std::fs::read(&path).unwrap();
        f(&data);
        n += 1;
    }
    n
}

#[test]
fn open_log_corpus_replays() {
    assert!(replay("open_log", evstore::fuzzing::open_log) >= 4);
}

#[test]
fn frame_decode_corpus_replays() {
    assert!(replay("frame_decode", evstore::fuzzing::frame_decode) >= 2);
}

#[test]
fn snapshot_sidecar_corpus_replays() {
    assert!(replay("snapshot_sidecar", evstore::fuzzing::snapshot_sidecar) >= 2);
}

#[test]
fn ops_corpus_replays() {
    assert!(replay("ops", evstore::fuzzing::ops) >= 2);
}

/// The used part of a log file: header plus frames up to the last non-zero byte (opening a
/// shorter file re-extends its last segment).
fn used_prefix(bytes: &[u8]) -> Vec<u8> {
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let end = end.max(4096).div_ceil(8) * 8;
    bytes[..end.min(bytes.len())].to_vec()
}

#[test]
#[ignore = "regenerates fuzz/corpus seed files"]
fn regenerate_seed_corpus() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = Options {
        durability: Durability::Buffered,
        segment_size: 64 * 1024,
        ..Options::default()
    };
    let write = |target: &str, name: &str, data: &[u8]| {
        let dir = corpus_dir(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), data).unwrap();
    };

    // Logs: empty, a few small appends, a multi-event batch, a torn tail.
    let path = tmp.path().join("a.evs");
    drop(Store::open_with(&path, opts.clone()).unwrap());
    let empty = used_prefix(&std::fs::read(&path).unwrap());
    write("open_log", "empty-log", &empty);
    let store = Store::open_with(&path, opts.clone()).unwrap();
    store
        .append(
            "order-1",
            ExpectedVersion::NoStream,
            &[NewEvent::new("Created", b"u1".to_vec())],
        )
        .unwrap();
    store
        .append(
            "order-1",
            ExpectedVersion::Exact(0),
            &[
                NewEvent::new("ItemAdded", vec![1u8; 40]).with_metadata(b"meta".to_vec()),
                NewEvent::new("ItemAdded", vec![2u8; 10]),
            ],
        )
        .unwrap();
    store
        .append(
            "order-2",
            ExpectedVersion::Any,
            &[NewEvent::new("Created", b"u2".to_vec())],
        )
        .unwrap();
    drop(store);
    let small = used_prefix(&std::fs::read(&path).unwrap());
    write("open_log", "small-log", &small);
    let mut torn = small.clone();
    let cut = torn.len() - 40;
    torn.truncate(cut);
    write("open_log", "torn-log", &torn);
    let mut flipped = small.clone();
    flipped[4096 + 30] ^= 0x10;
    write("open_log", "flipped-first-frame", &flipped);
    write("open_log", "not-a-log", b"hello, I am a text file\n");

    // Frames: the first frame of the small log (from its offset to the end), and a raw body.
    write("frame_decode", "first-frame", &small[4096..]);
    write("frame_decode", "body-only", &small[4096 + 24..]);

    // Sidecars.
    let snap_path = evstore::snapshot::sidecar_path(&path);
    let store = Store::open_with(&path, opts.clone()).unwrap();
    let id = store.event_id_at("order-1", 2).unwrap().unwrap();
    store
        .save_snapshot("order-1", 2, id, b"state-at-2")
        .unwrap();
    store.save_snapshot("order-2", 0, id, b"state").unwrap();
    drop(store);
    let sidecar = std::fs::read(&snap_path).unwrap();
    write("snapshot_sidecar", "two-records", &sidecar);
    write("snapshot_sidecar", "torn", &sidecar[..sidecar.len() - 3]);
    write("snapshot_sidecar", "header-only", &sidecar[..40]);

    // Op scripts (see evstore::fuzzing::ops for the byte language).
    write(
        "ops",
        "appends-and-reads",
        &[0, 1, 2, 10, 3, 1, 1, 0, 3, 0, 5, 6, 5],
    );
    write(
        "ops",
        "append-cut-reopen",
        &[
            0, 0, 0, 200, 0, 1, 0, 1, 250, 3, 7, 128, 5, 2, 2, 1, 9, 0, 6, 5,
        ],
    );
    write(
        "ops",
        "conflicts",
        &[1, 0, 0, 1, 1, 1, 0, 1, 1, 2, 3, 0, 1, 2, 5],
    );
}
