//! `dump --type T` reads the type a page at a time: every event of the type across several
//! pages, `--from` respected, and `--limit N` prints exactly N of them.

use crate::common::cli::{evstore, stdout};
use evstore::{ExpectedVersion, NewEvent, Store};

#[test]
fn dump_by_type_pages_through_the_type_and_stops_at_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.evs");
    {
        let store = Store::open(&path).unwrap();
        // 1300 "T" events interleaved with "U" events: T at even positions.
        for chunk in 0..13 {
            let events: Vec<NewEvent> = (0..100)
                .flat_map(|i| {
                    let n = chunk * 100 + i;
                    [
                        NewEvent::new("T", format!("t{n}").into_bytes()),
                        NewEvent::new("U", format!("u{n}").into_bytes()),
                    ]
                })
                .collect();
            store.append("s", ExpectedVersion::Any, &events).unwrap();
        }
    }
    let p = path.to_str().unwrap();
    let all = stdout(&evstore(dir.path(), &["dump", p, "--type", "T", "--json"]));
    assert_eq!(all.lines().count(), 1300);
    assert!(all.lines().all(|l| l.contains("\"type\":\"T\"")));

    let limited = stdout(&evstore(
        dir.path(),
        &["dump", p, "--type", "T", "--limit", "700", "--json"],
    ));
    assert_eq!(limited.lines().count(), 700);
    assert!(limited
        .lines()
        .last()
        .unwrap()
        .starts_with("{\"position\":1398,"));

    let from = stdout(&evstore(
        dir.path(),
        &[
            "dump", p, "--type", "T", "--from", "1001", "--limit", "2", "--json",
        ],
    ));
    let positions: Vec<&str> = from.lines().map(|l| &l[..16]).collect();
    assert_eq!(
        positions,
        ["{\"position\":1002", "{\"position\":1004"],
        "{from}"
    );
}
