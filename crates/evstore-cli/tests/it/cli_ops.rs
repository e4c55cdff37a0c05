//! Operator commands through the real binary: `stats`, `dump`, `tail`, `verify` (clean 0,
//! corrupt 3, torn tail 4, on a terminal), `repair`, `bench`, and the clear one-line errors for
//! files that are not logs, missing, or locked by another process.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::cli::{command, evstore, json_raw, json_u64, stderr, stdout};
use evstore::{Durability, ExpectedVersion, NewEvent, Options, Store};

fn small() -> Options {
    Options {
        durability: Durability::Sync,
        segment_size: 64 * 1024,
        ..Options::default()
    }
}

/// Ten one-event appends (one frame each) over streams s0..s2, like tests/verify_and_repair.rs.
fn build_raw(path: &Path) {
    let store = Store::open_with(path, small()).unwrap();
    for i in 0..10u64 {
        store
            .append(
                &format!("s{}", i % 3),
                ExpectedVersion::Any,
                &[NewEvent::new("T", format!("payload-{i}").into_bytes())],
            )
            .unwrap();
    }
}

/// A log with a flipped bit in its third frame (frames after it prove it was durable).
fn corrupt_copy(dir: &Path) -> PathBuf {
    let path = dir.join("corrupt.evs");
    build_raw(&path);
    let mut bytes = std::fs::read(&path).unwrap();
    // Each frame is 88 bytes (docs/FORMAT.md §3); the third starts at segment offset 176.
    bytes[4096 + 176 + 40] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    path
}

/// A log with garbage after its last frame (never made durable): a torn tail.
fn torn_copy(dir: &Path) -> PathBuf {
    let path = dir.join("torn.evs");
    build_raw(&path);
    let mut bytes = std::fs::read(&path).unwrap();
    let end = bytes.iter().rposition(|&b| b != 0).unwrap() + 1;
    bytes[end + 100] = 0xAB;
    std::fs::write(&path, &bytes).unwrap();
    path
}

/// A store made by the CLI itself, with a few orders.
fn orders_store(dir: &Path) -> PathBuf {
    let o = evstore(
        dir,
        &[
            "demo",
            "--orders",
            "12",
            "--threads",
            "2",
            "--file",
            "o.evs",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    dir.join("o.evs")
}

#[test]
fn stats_reports_counts_types_times_and_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let path = orders_store(dir.path());
    let p = path.to_str().unwrap();
    let text = evstore(dir.path(), &["stats", p]);
    assert_eq!(text.status.code(), Some(0), "{}", stderr(&text));
    let text = stdout(&text);
    for key in [
        "events",
        "streams",
        "head position",
        "first event",
        "last event",
        "OrderCreated",
        "snapshots",
        "segment",
    ] {
        assert!(text.contains(key), "{key}: {text}");
    }
    let json = stdout(&evstore(dir.path(), &["stats", p, "--json"]));
    for key in [
        "\"file_bytes\":",
        "\"segments\":1",
        "\"streams\":",
        "\"head_position\":",
        "\"first_recorded_at\":\"",
        "\"last_recorded_at\":\"",
        "\"event_types\":{",
        "\"OrderCreated\":12",
        "\"sidecar\":",
    ] {
        assert!(json.contains(key), "{key}: {json}");
    }
    assert!(json.trim_end().ends_with('}') && json.lines().count() == 1);
}

#[test]
fn dump_prints_decoded_events_with_filters_and_base64_for_unknown_types() {
    let dir = tempfile::tempdir().unwrap();
    let path = orders_store(dir.path());
    {
        let store = Store::open(&path).unwrap();
        store
            .append(
                "raw-1",
                ExpectedVersion::NoStream,
                &[NewEvent::new("Raw", b"foobar".to_vec())],
            )
            .unwrap();
    }
    let p = path.to_str().unwrap();
    let all = stdout(&evstore(dir.path(), &["dump", p]));
    assert!(all.lines().count() > 24, "{all}");
    assert!(
        all.contains("OrderCreated") && all.contains("user_id=\"user-"),
        "{all}"
    );
    assert!(all.contains("price_cents="), "decoded items: {all}");
    assert!(all.contains("data_base64=Zm9vYmFy"), "{all}");

    let limited = stdout(&evstore(dir.path(), &["dump", p, "--limit", "3", "--json"]));
    assert_eq!(limited.lines().count(), 3);
    for l in limited.lines() {
        assert!(l.starts_with("{\"position\":") && l.ends_with('}'), "{l}");
        assert!(l.contains("\"data\":{"), "{l}");
    }

    let created = stdout(&evstore(
        dir.path(),
        &["dump", p, "--type", "OrderCreated", "--json"],
    ));
    assert_eq!(created.lines().count(), 12);
    assert!(created
        .lines()
        .all(|l| l.contains("\"type\":\"OrderCreated\"")));

    let raw = stdout(&evstore(
        dir.path(),
        &["dump", p, "--stream", "raw-1", "--json"],
    ));
    assert_eq!(raw.lines().count(), 1, "{raw}");
    assert!(raw.contains("\"data_base64\":\"Zm9vYmFy\""), "{raw}");

    let from = stdout(&evstore(
        dir.path(),
        &["dump", p, "--from", "5", "--limit", "1", "--json"],
    ));
    assert!(from.starts_with("{\"position\":5,"), "{from}");

    let none = evstore(dir.path(), &["dump", p, "--type", "NoSuchType"]);
    assert_eq!(none.status.code(), Some(0));
    assert!(stdout(&none).is_empty());
}

#[test]
fn tail_prints_the_newest_events_and_follow_keeps_running() {
    let dir = tempfile::tempdir().unwrap();
    let path = orders_store(dir.path());
    let p = path.to_str().unwrap();
    let last = stdout(&evstore(dir.path(), &["tail", p, "-n", "3", "--json"]));
    assert_eq!(last.lines().count(), 3, "{last}");
    let stats = stdout(&evstore(dir.path(), &["stats", p, "--json"]));
    let head = stats
        .split("\"head_position\":")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .unwrap()
        .to_string();
    assert!(
        last.lines()
            .last()
            .unwrap()
            .starts_with(&format!("{{\"position\":{head},")),
        "{last}"
    );

    // --follow prints the tail, then waits (a read-only reader) until killed.
    let mut child = command()
        .args(["tail", p, "-n", "2", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for _ in 0..2 {
        let l = lines.next().unwrap().unwrap();
        assert!(l.starts_with('#'), "{l}");
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(child.try_wait().unwrap().is_none(), "still following");
    // While it follows, others read and a writer opens beside it.
    assert_eq!(evstore(dir.path(), &["stats", p]).status.code(), Some(0));
    drop(Store::open(p).unwrap());
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn tail_follow_prints_events_another_process_appends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("held.evs");
    let store = Store::open(&path).unwrap();
    store
        .append(
            "s",
            ExpectedVersion::Any,
            &[NewEvent::new("Before", vec![1])],
        )
        .unwrap();
    let mut child = command()
        .args(["tail", path.to_str().unwrap(), "--follow", "--json"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains("\"Before\""), "{first}");
    for i in 0..3u8 {
        store
            .append(
                "s",
                ExpectedVersion::Any,
                &[NewEvent::new(format!("Live{i}"), vec![i])],
            )
            .unwrap();
        let l = lines.next().unwrap().unwrap();
        assert!(l.contains(&format!("\"Live{i}\"")), "{l}");
        assert!(l.contains(&format!("\"position\":{}", i + 1)), "{l}");
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn verify_exit_codes_clean_corrupt_torn_and_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let clean = dir.path().join("clean.evs");
    build_raw(&clean);
    let o = evstore(dir.path(), &["verify", clean.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("clean: 10 events in ") && out.contains("3 streams"),
        "{out}"
    );

    let corrupt = corrupt_copy(dir.path());
    let before = std::fs::read(&corrupt).unwrap();
    let o = evstore(dir.path(), &["verify", corrupt.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(out.contains("CORRUPT at segment 0 offset 176"), "{out}");
    assert!(out.contains("evstore repair"), "{out}");
    assert_eq!(
        std::fs::read(&corrupt).unwrap(),
        before,
        "verify is read-only"
    );

    let torn = torn_copy(dir.path());
    let before = std::fs::read(&torn).unwrap();
    let o = evstore(dir.path(), &["verify", torn.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(4), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("TORN TAIL at segment 0"),
        "{}",
        stdout(&o)
    );
    assert_eq!(std::fs::read(&torn).unwrap(), before, "verify is read-only");

    // Other commands refuse the corrupt file with exit 3 and a pointer to verify/repair.
    let o = evstore(dir.path(), &["stats", corrupt.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("evstore repair"), "{}", stderr(&o));
}

#[test]
fn repair_keeps_a_backup_and_lists_what_was_lost() {
    let dir = tempfile::tempdir().unwrap();
    let corrupt = corrupt_copy(dir.path());
    let damaged = std::fs::read(&corrupt).unwrap();
    let o = evstore(dir.path(), &["repair", corrupt.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("kept 2 events"), "{out}");
    assert!(out.contains("cut at segment 0 offset 176"), "{out}");
    assert!(out.contains("7 readable frames"), "{out}");
    assert!(out.contains("s0 version 1"), "{out}");
    assert!(out.contains("the damaged frame itself"), "{out}");
    let backup = out
        .lines()
        .find_map(|l| l.strip_prefix("backup: "))
        .expect("backup line");
    assert!(backup.contains(".bak-"), "{backup}");
    assert_eq!(
        std::fs::read(backup).unwrap(),
        damaged,
        "the backup is the damaged file"
    );
    let v = evstore(dir.path(), &["verify", corrupt.to_str().unwrap()]);
    assert_eq!(v.status.code(), Some(0), "{}", stdout(&v));

    // A clean log is left alone.
    let again = evstore(dir.path(), &["repair", corrupt.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(0));
    assert!(
        stdout(&again).contains("nothing to repair"),
        "{}",
        stdout(&again)
    );
}

#[test]
fn a_text_file_missing_file_and_empty_file_get_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "just some notes\n".repeat(1000)).unwrap();
    let before = std::fs::read(&text).unwrap();
    let t = text.to_str().unwrap();
    let commands: &[&[&str]] = &[
        &["stats", t],
        &["verify", t],
        &["dump", t],
        &["tail", t],
        &["repair", t],
        &["orders", "--file", t, "show", "x"],
        &["orders", "--file", t, "create", "--user", "u"],
        &["demo", "--file", t, "--orders", "1"],
    ];
    for args in commands {
        let o = evstore(dir.path(), args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains("not an evstore log"), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    assert_eq!(
        std::fs::read(&text).unwrap(),
        before,
        "the text file is untouched"
    );

    let o = evstore(dir.path(), &["stats", "missing.evs"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o).trim(), "evstore: missing.evs: no such file");
    assert!(!dir.path().join("missing.evs").exists());

    std::fs::write(dir.path().join("empty.evs"), b"").unwrap();
    let o = evstore(dir.path(), &["verify", "empty.evs"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("empty"), "{}", stderr(&o));

    let o = evstore(dir.path(), &["stats", "."]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("directory"), "{}", stderr(&o));
}

#[test]
fn inspection_commands_read_a_store_another_process_writes() {
    // docs/FORMAT.md §10: stats, verify, dump and tail open read-only beside the writer and
    // show what it made durable; commands that write still find it in use.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("busy.evs");
    let store = Store::open(&path).unwrap();
    store
        .append("s", ExpectedVersion::Any, &[NewEvent::new("E", vec![1])])
        .unwrap();
    let p = path.to_str().unwrap();
    let o = evstore(dir.path(), &["stats", p]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = evstore(dir.path(), &["verify", p]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("clean (live)"), "{}", stdout(&o));
    let o = evstore(dir.path(), &["verify", p, "--json"]);
    assert_eq!(
        json_raw(&stdout(&o), "live"),
        Some("true"),
        "{}",
        stdout(&o)
    );
    assert_eq!(json_u64(&stdout(&o), "events"), Some(1), "{}", stdout(&o));
    for args in [&["dump", p][..], &["tail", p]] {
        let o = evstore(dir.path(), args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        assert_eq!(stdout(&o).lines().count(), 1, "{args:?}: {}", stdout(&o));
    }
    let writers: &[&[&str]] = &[
        &["repair", p],
        &["orders", "--file", p, "list", "--user", "u"],
        &["demo", "--file", p, "--orders", "1"],
    ];
    for args in writers {
        let o = evstore(dir.path(), args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains("in use by another process"), "{args:?}: {err}");
    }
    drop(store);
    assert_eq!(evstore(dir.path(), &["stats", p]).status.code(), Some(0));
}

#[test]
fn verify_on_a_terminal_shows_progress_and_the_verdict() {
    if !Path::new("/usr/bin/script").exists() && !Path::new("/bin/script").exists() {
        println!("note: `script` (util-linux) is not installed; skipping the terminal test");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let corrupt = corrupt_copy(dir.path());
    let cmd = format!(
        "{} verify {}",
        env!("CARGO_BIN_EXE_evstore"),
        corrupt.display()
    );
    let o = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("COLUMNS", "100")
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = stdout(&o);
    assert_eq!(
        o.status.code(),
        Some(3),
        "script passes the exit code: {out}"
    );
    assert!(
        out.contains("reading corrupt.evs"),
        "progress bar drawn: {out:?}"
    );
    assert!(out.contains("CORRUPT at segment 0 offset 176"), "{out:?}");

    // Without a terminal there is no progress output at all.
    let plain = evstore(dir.path(), &["verify", corrupt.to_str().unwrap()]);
    assert!(!stdout(&plain).contains("reading"), "{}", stdout(&plain));
    assert!(stderr(&plain).is_empty(), "{}", stderr(&plain));
}

#[test]
fn bench_measures_and_removes_its_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let o = evstore(
        dir.path(),
        &[
            "bench",
            "--events",
            "400",
            "--threads",
            "4",
            "--payload",
            "100",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("events/s"), "{out}");
    assert!(out.contains("MB/s"), "{out}");
    assert!(out.contains("appends per fsync"), "{out}");
    assert!(out.contains("400 appends"), "{out}");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "temporary file removed"
    );

    let kept = evstore(
        dir.path(),
        &[
            "bench",
            "--events",
            "50",
            "--durability",
            "buffered",
            "--file",
            "b.evs",
        ],
    );
    assert_eq!(kept.status.code(), Some(0), "{}", stderr(&kept));
    assert!(dir.path().join("b.evs").exists());
    let again = evstore(dir.path(), &["bench", "--events", "50", "--file", "b.evs"]);
    assert_eq!(
        again.status.code(),
        Some(1),
        "an existing file is never overwritten"
    );
}
