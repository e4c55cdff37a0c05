//! `evstore copy`: a log file into PostgreSQL and PostgreSQL into PostgreSQL, every field
//! identical; an interrupted copy (a destination holding a prefix) resumes without duplicates;
//! a destination that is not a prefix is refused. Into a log file too (`Store::import`).

use evstore::{ExpectedVersion, NewEvent, RecordedEvent, Store};
use evstore_postgres::testing::TestStore;

use crate::common::cli::{evstore, stderr, stdout};

fn file_with_events(dir: &std::path::Path) -> (std::path::PathBuf, Vec<RecordedEvent>) {
    let path = dir.join("src.evs");
    let store = Store::open(&path).unwrap();
    for i in 0..600u32 {
        let n = 1 + (i % 4) as usize;
        let batch: Vec<NewEvent> = (0..n)
            .map(|j| {
                NewEvent::new(format!("T{}", j % 3), i.to_le_bytes().to_vec())
                    .with_metadata(vec![j as u8; j])
            })
            .collect();
        store
            .append(&format!("s-{}", i % 37), ExpectedVersion::Any, &batch)
            .unwrap();
    }
    let all: Vec<RecordedEvent> = store.read_all(0).map(Result::unwrap).collect();
    store.close().unwrap();
    (path, all)
}

#[test]
fn file_to_postgres_resumes_and_postgres_to_postgres_is_exact() {
    let Some(dst) = TestStore::fresh("file_to_postgres_resumes_and_postgres_to_postgres_is_exact")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (src, all) = file_with_events(dir.path());
    assert_eq!(all.len(), 1500);
    // An interrupted copy left the first 1234 events.
    dst.store.import(&all[..1234]).unwrap();
    let o = evstore(
        dir.path(),
        &["copy", src.to_str().unwrap(), &dst.schema_url(), "--quiet"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("copied 266 events (positions 1234..1499)"),
        "{}",
        stdout(&o)
    );
    let copied: Vec<RecordedEvent> = dst.store.read_all(0).map(Result::unwrap).collect();
    assert_eq!(
        copied, all,
        "ids, streams, versions, positions, times, data, metadata"
    );
    // Running it again copies nothing.
    let o = evstore(
        dir.path(),
        &["copy", src.to_str().unwrap(), &dst.schema_url(), "--quiet"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("copied 0 events"), "{}", stdout(&o));
    // PostgreSQL to PostgreSQL.
    let Some(second) = TestStore::fresh("postgres_to_postgres") else {
        return;
    };
    let o = evstore(
        dir.path(),
        &["copy", &dst.schema_url(), &second.schema_url(), "--quiet"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let again: Vec<RecordedEvent> = second.store.read_all(0).map(Result::unwrap).collect();
    assert_eq!(again, all);
    // The copy is a working store: appends continue its positions and versions.
    let r = second
        .store
        .append(
            "s-0",
            ExpectedVersion::Any,
            &[NewEvent::new("After", vec![])],
        )
        .unwrap();
    assert_eq!(r.first_position, 1500);
}

#[test]
fn a_destination_that_is_not_a_prefix_is_refused() {
    let Some(dst) = TestStore::fresh("a_destination_that_is_not_a_prefix_is_refused") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (src, _) = file_with_events(dir.path());
    dst.store
        .append("other", ExpectedVersion::Any, &[NewEvent::new("X", vec![])])
        .unwrap();
    let o = evstore(
        dir.path(),
        &["copy", src.to_str().unwrap(), &dst.schema_url(), "--quiet"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("not a copy of the source"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        dst.store.head_position().unwrap(),
        Some(0),
        "nothing written"
    );
}

#[test]
fn into_a_log_file_copies_are_exact_resume_and_refuse_a_stranger() {
    let dir = tempfile::tempdir().unwrap();
    let (src, all) = file_with_events(dir.path());
    // An interrupted copy left the first 700 events in dst.evs.
    let dst = dir.path().join("dst.evs");
    Store::open(&dst).unwrap().import(&all[..700]).unwrap();
    let o = evstore(
        dir.path(),
        &["copy", src.to_str().unwrap(), "dst.evs", "--quiet"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("copied 800 events (positions 700..1499)"),
        "{}",
        stdout(&o)
    );
    let copied: Vec<RecordedEvent> = Store::open(&dst)
        .unwrap()
        .read_all(0)
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        copied, all,
        "ids, streams, versions, positions, times, data, metadata"
    );
    let o = evstore(
        dir.path(),
        &["copy", src.to_str().unwrap(), "dst.evs", "--quiet"],
    );
    assert!(stdout(&o).contains("copied 0 events"), "{}", stdout(&o));
    // A log file that is not a prefix of the source is refused and left as it was.
    let other = dir.path().join("other.evs");
    let o_store = Store::open(&other).unwrap();
    o_store
        .append("other", ExpectedVersion::Any, &[NewEvent::new("X", vec![])])
        .unwrap();
    drop(o_store);
    let o = evstore(
        dir.path(),
        &["copy", src.to_str().unwrap(), "other.evs", "--quiet"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("not a copy of the source"),
        "{}",
        stderr(&o)
    );
    assert_eq!(Store::open(&other).unwrap().head_position(), Some(0));
    // From PostgreSQL into a new log file, when a server is there.
    let Some(pg) = TestStore::fresh("into_a_log_file_copies_are_exact") else {
        return;
    };
    pg.store.import(&all).unwrap();
    let o = evstore(
        dir.path(),
        &["copy", &pg.schema_url(), "back.evs", "--quiet"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let back: Vec<RecordedEvent> = Store::open(dir.path().join("back.evs"))
        .unwrap()
        .read_all(0)
        .map(Result::unwrap)
        .collect();
    assert_eq!(back, all);
}

#[test]
fn a_copy_killed_midway_resumes_without_duplicates() {
    let Some(dst) = TestStore::fresh("a_copy_killed_midway_resumes_without_duplicates") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.evs");
    let store = Store::open(&path).unwrap();
    for i in 0..600u32 {
        let batch: Vec<NewEvent> = (0..100u32)
            .map(|j| NewEvent::new("Big", (i * 100 + j).to_le_bytes().to_vec()))
            .collect();
        store
            .append(&format!("b-{}", i % 50), ExpectedVersion::Any, &batch)
            .unwrap();
    }
    let all: Vec<RecordedEvent> = store.read_all(0).map(Result::unwrap).collect();
    store.close().unwrap();
    let mut child = crate::common::cli::command()
        .args(["copy", path.to_str().unwrap(), &dst.schema_url(), "--quiet"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once the first page is in (or when it finished first on a fast machine).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while dst.store.head_position().unwrap().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
    // A COMMIT the child sent before it died still completes on the server: wait until the
    // head stops moving (bounded) before measuring what the first copy left.
    let mut copied_before = dst.store.head_position().unwrap().map_or(0, |h| h + 1);
    for _ in 0..50 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let now = dst.store.head_position().unwrap().map_or(0, |h| h + 1);
        if now == copied_before {
            break;
        }
        copied_before = now;
    }
    assert!(copied_before > 0, "the first copy wrote something");
    eprintln!("the first copy was stopped after {copied_before} of 60000 events");
    let o = evstore(
        dir.path(),
        &["copy", path.to_str().unwrap(), &dst.schema_url(), "--quiet"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let resumed = 60_000 - copied_before;
    assert!(
        stdout(&o).contains(&format!(
            "copied {resumed} events (positions {copied_before}.."
        )),
        "{}",
        stdout(&o)
    );
    let copied: Vec<RecordedEvent> = dst.store.read_all(0).map(Result::unwrap).collect();
    assert_eq!(copied.len(), all.len());
    assert!(copied == all, "identical after the resume");
}
