//! `evstore copy`: a log file into PostgreSQL and PostgreSQL into PostgreSQL, every field
//! identical; an interrupted copy (a destination holding a prefix) resumes without duplicates;
//! a destination that is not a prefix, and a log file destination, are refused.

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
fn a_log_file_destination_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (src, _) = file_with_events(dir.path());
    let o = evstore(dir.path(), &["copy", src.to_str().unwrap(), "dst.evs"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not supported yet"), "{}", stderr(&o));
    assert!(!dir.path().join("dst.evs").exists());
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
    let copied_before = dst.store.head_position().unwrap().map_or(0, |h| h + 1);
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
