//! Creating a store leaves no garbage and a complete log: temporary files that interrupted
//! creations of a log left behind (`.NAME.creating-<uuid>`, up to a whole preallocated segment)
//! are removed by the next read-write open of that log — only that log's, only those no
//! creator is using — and a pre-existing empty or header-only file becomes a complete log that
//! keeps its events across reopens.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::common::*;
use evstore::maintenance::{verify, Verdict};
use evstore::{Durability, ExpectedVersion, Options, Store};

/// The temporary name a creation of `log` uses, with a UUID-like suffix made from `n`.
fn creating(dir: &Path, log: &str, n: u8) -> PathBuf {
    dir.join(format!(".{log}.creating-{}", format!("{n:02x}").repeat(16)))
}

/// A file at `path` holding `bytes`, last modified `age` ago.
fn plant(path: &Path, bytes: &[u8], age: Duration) {
    std::fs::write(path, bytes).unwrap();
    let f = OpenOptions::new().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - age).unwrap();
}

/// The bytes of a complete new log (what a creator has built just before linking it).
fn complete_log(dir: &Path) -> Vec<u8> {
    let path = dir.join("template.evs");
    drop(Store::open_with(&path, small_options(Durability::Sync)).unwrap());
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    bytes
}

/// Names in `dir` that look like creation temporary files of any log.
fn creating_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".creating-"))
        .collect();
    names.sort();
    names
}

fn append_one(store: &Store, stream: &str) {
    store
        .append(stream, ExpectedVersion::Any, &[event("T", "x")])
        .unwrap();
}

#[test]
fn stale_temporary_files_of_this_log_are_removed_and_all_others_kept() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hour = Duration::from_secs(3600);
    let log = complete_log(d);

    // Left by creations of shop.evs killed at various points.
    let stale_full = creating(d, "shop.evs", 1);
    plant(&stale_full, &log, Duration::ZERO);
    let stale_partial = creating(d, "shop.evs", 2);
    plant(&stale_partial, &log[..4096], hour);
    let stale_empty_old = creating(d, "shop.evs", 3);
    plant(&stale_empty_old, b"", hour);
    // Possibly a creator between creating its file and locking it: kept.
    let young_empty = creating(d, "shop.evs", 4);
    plant(&young_empty, b"", Duration::ZERO);
    // A creator at work (it holds the lock): kept, however old.
    let in_use = creating(d, "shop.evs", 5);
    plant(&in_use, &log, hour);
    let holder = File::open(&in_use).unwrap();
    holder.try_lock().unwrap();
    // Another log's, and names that are not creation files: kept.
    let other_log = creating(d, "other.evs", 6);
    plant(&other_log, &log, hour);
    let mut kept = vec![other_log.clone(), young_empty.clone(), in_use.clone()];
    for name in [
        ".shop.evs.creating-notauuid".to_string(),
        format!(".shop.evs.creating-{}", "ab".repeat(15)),
        format!(".shop.evs.creating-{}.bak", "ab".repeat(16)),
        format!("shop.evs.creating-{}", "ab".repeat(16)),
        format!(".shop.evs.creating-{}", "ab".repeat(17)),
        format!(".xshop.evs.creating-{}", "ab".repeat(16)),
    ] {
        plant(&d.join(&name), b"not ours", hour);
        kept.push(d.join(name));
    }
    // A symlink under a creation name is never followed nor removed.
    let target = d.join("precious");
    plant(&target, b"precious", hour);
    let link = creating(d, "shop.evs", 7);
    std::os::unix::fs::symlink(&target, &link).unwrap();
    kept.push(link.clone());

    let path = d.join("shop.evs");
    let store = Store::open_with(&path, small_options(Durability::Sync)).unwrap();
    append_one(&store, "s");
    for gone in [&stale_full, &stale_partial, &stale_empty_old] {
        assert!(!gone.exists(), "{} removed", gone.display());
    }
    for k in &kept {
        assert!(std::fs::symlink_metadata(k).is_ok(), "{} kept", k.display());
    }
    assert_eq!(std::fs::read(&target).unwrap(), b"precious");
    drop(store);

    // A read-only open changes nothing; a read-write open removes what is stale by now.
    let late = creating(d, "shop.evs", 8);
    plant(&late, &log, Duration::ZERO);
    drop(
        Store::open_with(
            &path,
            Options {
                read_only: true,
                create_if_missing: false,
                ..Options::default()
            },
        )
        .unwrap(),
    );
    assert!(late.exists(), "a read-only open writes nothing");
    drop(holder); // the creator that held in_use is gone
    let store = Store::open_with(&path, small_options(Durability::Sync)).unwrap();
    assert!(!late.exists() && !in_use.exists());
    assert!(young_empty.exists(), "still too young to tell");
    assert!(other_log.exists());
    assert_eq!(all_events(&store).len(), 1, "the log itself is untouched");
}

#[test]
fn a_creation_killed_before_linking_leaves_no_log_and_no_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The creator built the whole file under its temporary name, then died: there is no log.
    let log = complete_log(d);
    let tmp = creating(d, "shop.evs", 0xc1);
    plant(&tmp, &log, Duration::ZERO);
    let path = d.join("shop.evs");
    assert!(!path.exists());
    let store = Store::open_with(&path, small_options(Durability::Sync)).unwrap();
    assert!(creating_files(d).is_empty(), "{:?}", creating_files(d));
    assert_eq!(all_events(&store).len(), 0, "a new, empty log");
    append_one(&store, "s");
    drop(store);
    let names: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names
            .iter()
            .filter(|n| !n.to_string_lossy().ends_with(".evs.head"))
            .count(),
        1,
        "nothing but the log and head files (the template's too): {names:?}"
    );
    assert!(names.iter().any(|n| n == "shop.evs"), "{names:?}");
    let store = Store::open(&path).unwrap();
    assert_eq!(all_events(&store).len(), 1);
}

#[test]
fn a_creation_killed_after_linking_keeps_the_log_and_drops_the_extra_name() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let path = d.join("shop.evs");
    {
        let store = Store::open_with(&path, small_options(Durability::Sync)).unwrap();
        for i in 0..5 {
            append_one(&store, &format!("s{i}"));
        }
    }
    // The creator linked its file into place and died before removing its temporary name.
    let tmp = creating(d, "shop.evs", 0xc2);
    std::fs::hard_link(&path, &tmp).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().nlink(), 2);
    let store = Store::open(&path).unwrap();
    assert!(!tmp.exists());
    assert_eq!(std::fs::metadata(&path).unwrap().nlink(), 1);
    assert_eq!(all_events(&store).len(), 5, "the log keeps its events");
}

#[test]
fn concurrent_creators_never_remove_each_others_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let options = Options {
        lock_timeout: Duration::from_secs(30),
        ..small_options(Durability::Sync)
    };
    const THREADS: usize = 4;
    for round in 0..20 {
        let path = d.join(format!("race-{round}.evs"));
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let (path, options) = (&path, options.clone());
                s.spawn(move || {
                    let store = Store::open_with(path, options)
                        .unwrap_or_else(|e| panic!("round {round} thread {t}: {e}"));
                    append_one(&store, &format!("t{t}"));
                });
            }
        });
        let store = Store::open(&path).unwrap();
        assert_eq!(all_events(&store).len(), THREADS, "round {round}");
    }
    assert!(creating_files(d).is_empty(), "{:?}", creating_files(d));
}

#[test]
fn an_empty_file_is_initialised_in_place_and_keeps_its_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("touched.evs");
    // `touch` with a chosen mode just before the first open.
    File::create(&path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let inode = std::fs::metadata(&path).unwrap().ino();
    {
        let store = Store::open_with(&path, small_options(Durability::Sync)).unwrap();
        for i in 0..3 {
            append_one(&store, &format!("s{i}"));
        }
    }
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.ino(), inode, "initialised in place");
    assert_eq!(meta.permissions().mode() & 0o777, 0o640, "its mode is kept");
    assert!(creating_files(dir.path()).is_empty());
    assert_eq!(verify(&path).unwrap().verdict, Verdict::Clean);
    let store = Store::open(&path).unwrap();
    assert_eq!(all_events(&store).len(), 3);
    append_one(&store, "more");
    drop(store);
    assert_eq!(all_events(&Store::open(&path).unwrap()).len(), 4);
}

#[test]
fn a_file_whose_initialisation_was_interrupted_is_completed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let log = complete_log(dir.path());
    // Header only (segment 0 never allocated), and header with part of segment 0.
    for (name, len) in [("header-only.evs", 4096), ("partial.evs", 4096 + 10_000)] {
        let path = dir.path().join(name);
        std::fs::write(&path, &log[..len]).unwrap();
        {
            let store = Store::open_with(&path, small_options(Durability::Sync)).unwrap();
            assert_eq!(all_events(&store).len(), 0);
            append_one(&store, "s");
            append_one(&store, "s");
        }
        assert_eq!(verify(&path).unwrap().verdict, Verdict::Clean, "{name}");
        let store = Store::open(&path).unwrap();
        assert_eq!(all_events(&store).len(), 2, "{name}");
    }
}
