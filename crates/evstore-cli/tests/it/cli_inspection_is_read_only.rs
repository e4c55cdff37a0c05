//! `stats`, `dump` and `tail` only look: on a log with a torn tail they print the events and
//! leave the file byte for byte unchanged (no trim, no seal, no sidecar).

use std::ffi::OsStr;

use crate::common::cli::evstore;
use evstore::{Durability, ExpectedVersion, NewEvent, Options, Store};

#[test]
fn inspection_commands_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("i.evs");
    {
        let store = Store::open_with(
            &path,
            Options {
                durability: Durability::Sync,
                segment_size: 64 * 1024,
                ..Options::default()
            },
        )
        .unwrap();
        for i in 0..3 {
            store
                .append(
                    "s",
                    ExpectedVersion::Any,
                    &[NewEvent::new("T", vec![i; 10])],
                )
                .unwrap();
        }
    }
    let mut bytes = std::fs::read(&path).unwrap();
    let end = bytes.iter().rposition(|&b| b != 0).unwrap() + 1;
    bytes[end + 40] = 0x42; // a torn tail
    std::fs::write(&path, &bytes).unwrap();
    for args in [
        vec!["stats"],
        vec!["stats", "--json"],
        vec!["dump"],
        vec!["tail"],
    ] {
        let mut argv: Vec<&OsStr> = args.iter().map(|a| OsStr::new(*a)).collect();
        argv.push(path.as_os_str());
        let out = evstore(dir.path(), &argv);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("skipped"),
            "{args:?} notes the torn tail: {stderr}"
        );
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "{args:?} changed the file"
        );
    }
    assert!(!evstore::snapshot::sidecar_path(&path).exists());
}
