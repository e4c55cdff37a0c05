//! A second open of the same file, from another process or this one, fails with `Locked`.

use std::process::Command;

use crate::common::*;
use evstore::{Durability, Error, Store};

const CHILD_ENV: &str = "EVSTORE_LOCK_TEST_CHILD_PATH";

/// Runs in the child process: try to open the path and report the outcome on stdout.
#[test]
fn lock_child_probe() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return; // Only meaningful when started by the parent test.
    };
    match Store::open(&path) {
        Err(Error::Locked { .. }) => println!("RESULT=locked"),
        Ok(_) => println!("RESULT=opened"),
        Err(e) => println!("RESULT=error {e}"),
    }
}

fn open_from_child(path: &std::path::Path) -> String {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args([
            "--exact",
            &crate::common::test_name(module_path!(), "lock_child_probe"),
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    stdout
        .lines()
        .find_map(|l| l.split_once("RESULT=").map(|(_, r)| r.trim().to_string()))
        .unwrap_or_else(|| panic!("child printed no result: {stdout}"))
}

#[test]
fn second_process_gets_locked_until_the_first_closes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.evs");
    let store = Store::open_with(&path, small_options(Durability::Sync)).unwrap();
    assert_eq!(open_from_child(&path), "locked");
    drop(store);
    assert_eq!(open_from_child(&path), "opened");
}

#[test]
fn second_open_in_the_same_process_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.evs");
    let store = Store::open_with(&path, small_options(Durability::Sync)).unwrap();
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err:?}");
    assert!(err.to_string().contains("in use by another process"));
    drop(store);
    Store::open(&path).unwrap();
}

#[test]
fn open_waits_up_to_lock_timeout_for_a_lock_being_released() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.evs");
    let store = Store::open_with(&path, small_options(Durability::Sync)).unwrap();
    let impatient = evstore::Options {
        lock_timeout: std::time::Duration::ZERO,
        ..evstore::Options::default()
    };
    assert!(matches!(
        Store::open_with(&path, impatient),
        Err(Error::Locked { .. })
    ));
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(50));
        drop(store);
    });
    let patient = evstore::Options {
        lock_timeout: std::time::Duration::from_secs(5),
        ..evstore::Options::default()
    };
    let started = std::time::Instant::now();
    Store::open_with(&path, patient).unwrap();
    assert!(started.elapsed() >= std::time::Duration::from_millis(40));
    releaser.join().unwrap();
}
