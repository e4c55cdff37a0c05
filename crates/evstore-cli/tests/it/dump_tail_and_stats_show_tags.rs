//! `evstore dump` and `evstore tail` show each event's tags, in text (`tags=[...]` after the
//! type, only on tagged events) and in JSON (a `tags` array on every event, empty when it has
//! none); `evstore stats` shows distinct tags, their occurrences and the tag index's bytes.
//! Events of a format version 1 log (the checked-in fixture) show no tags.

use std::path::Path;

use crate::common::cli::{evstore, group, json_u64, stderr, stdout};
use evstore::{AppendCondition, ExpectedVersion, NewEvent, Query, QueryItem, Store, StreamAppend};

/// A tag with a space, a comma and a quote: text output must keep it one readable item.
const ODD_TAG: &str = "note:a, \"b\" c";

/// A log of 5 events: a tagged append, an untagged one, an `append_if` claim, and a
/// two-stream `append_multi` with tags on one part.
fn tagged_store(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("t.evs");
    let store = Store::open(&path).unwrap();
    store
        .append(
            "seat-12A",
            ExpectedVersion::NoStream,
            &[NewEvent::new("SeatBooked", br#"{"seat":"12A"}"#.to_vec())
                .with_tags(["seat:12A", "show:7"])],
        )
        .unwrap();
    store
        .append(
            "log",
            ExpectedVersion::Any,
            &[NewEvent::new("Noted", br#"{"n":1}"#.to_vec())],
        )
        .unwrap();
    let query = Query::new(vec![QueryItem::new(
        &["UsernameClaimed"],
        &["username:alice"],
    )]);
    let (seen, head) = store.read_query(&query, None).unwrap();
    assert!(seen.is_empty());
    store
        .append_if(
            "user-1",
            ExpectedVersion::NoStream,
            &[
                NewEvent::new("UsernameClaimed", br#"{"user":"alice"}"#.to_vec())
                    .with_tags(["username:alice"]),
            ],
            &AppendCondition::new(query, head),
        )
        .unwrap();
    store
        .append_multi(&[
            StreamAppend::new(
                "a",
                ExpectedVersion::Any,
                vec![NewEvent::new("Moved", br#"{"to":"b"}"#.to_vec())
                    .with_tags([ODD_TAG, "show:7"])],
            ),
            StreamAppend::new(
                "b",
                ExpectedVersion::Any,
                vec![NewEvent::new("Moved", br#"{"from":"a"}"#.to_vec())],
            ),
        ])
        .unwrap();
    store.close().unwrap();
    path
}

/// The `tags` arrays of JSON lines, one per line.
fn tags_of(json_lines: &str) -> Vec<Vec<String>> {
    json_lines
        .lines()
        .map(|l| {
            let doc: serde_json::Value = serde_json::from_str(l).unwrap();
            doc["tags"]
                .as_array()
                .unwrap_or_else(|| panic!("no tags array: {l}"))
                .iter()
                .map(|t| t.as_str().unwrap().to_string())
                .collect()
        })
        .collect()
}

fn expected_tags() -> Vec<Vec<String>> {
    [
        &["seat:12A", "show:7"][..],
        &[],
        &["username:alice"],
        &[ODD_TAG, "show:7"],
        &[],
    ]
    .iter()
    .map(|ts| ts.iter().map(ToString::to_string).collect())
    .collect()
}

#[test]
fn dump_json_and_text_show_each_events_tags() {
    let dir = tempfile::tempdir().unwrap();
    let path = tagged_store(dir.path());
    let p = path.to_str().unwrap();

    let o = evstore(dir.path(), &["dump", p, "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(tags_of(&stdout(&o)), expected_tags());

    let o = evstore(dir.path(), &["dump", p]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(
        lines[0].contains(r#"SeatBooked  tags=["seat:12A","show:7"]  data={"seat":"12A"}"#),
        "{text}"
    );
    assert!(!lines[1].contains("tags="), "untagged: {text}");
    assert!(
        lines[2].contains(r#"UsernameClaimed  tags=["username:alice"]"#),
        "{text}"
    );
    assert!(
        lines[3].contains(r#"Moved  tags=["note:a, \"b\" c","show:7"]"#),
        "{text}"
    );
    assert!(!lines[4].contains("tags="), "untagged: {text}");

    // The filtered paths print the same fields.
    let by_stream = stdout(&evstore(
        dir.path(),
        &["dump", p, "--stream", "user-1", "--json"],
    ));
    assert_eq!(
        tags_of(&by_stream),
        vec![vec!["username:alice".to_string()]]
    );
    let by_type = stdout(&evstore(dir.path(), &["dump", p, "--type", "Moved"]));
    assert_eq!(by_type.lines().count(), 2, "{by_type}");
    assert!(
        by_type.lines().next().unwrap().contains("tags=["),
        "{by_type}"
    );
}

#[test]
fn tail_json_and_text_show_each_events_tags() {
    let dir = tempfile::tempdir().unwrap();
    let path = tagged_store(dir.path());
    let p = path.to_str().unwrap();

    let o = evstore(dir.path(), &["tail", p, "-n", "3", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(tags_of(&stdout(&o)), expected_tags()[2..].to_vec());

    let o = evstore(dir.path(), &["tail", p, "-n", "3"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].contains(r#"UsernameClaimed  tags=["username:alice"]"#),
        "{text}"
    );
    assert!(
        lines[1].contains(r#"tags=["note:a, \"b\" c","show:7"]"#),
        "{text}"
    );
    assert!(!lines[2].contains("tags="), "{text}");
}

#[test]
fn stats_counts_distinct_tags_occurrences_and_index_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = tagged_store(dir.path());
    let p = path.to_str().unwrap();

    let json = stdout(&evstore(dir.path(), &["stats", p, "--json"]));
    // seat:12A, show:7, username:alice, ODD_TAG; show:7 twice.
    assert_eq!(json_u64(&json, "tags"), Some(4), "{json}");
    assert_eq!(json_u64(&json, "tag_occurrences"), Some(5), "{json}");
    let index_bytes = json_u64(&json, "tag_index_bytes").unwrap();
    assert!(index_bytes > 0, "{json}");

    let text = stdout(&evstore(dir.path(), &["stats", p]));
    let tags_line = text
        .lines()
        .find(|l| l.starts_with("tags "))
        .unwrap_or_else(|| panic!("no tags line: {text}"));
    assert!(
        tags_line.contains("4 distinct, 5 on events, index ")
            && tags_line.contains(&format!("({} bytes)", group(index_bytes))),
        "{tags_line}"
    );
}

#[test]
fn a_format_version_1_log_shows_no_tags() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../evstore-orders/tests/fixtures/orders_v1.evs");
    let path = dir.path().join("v1.evs");
    std::fs::copy(&fixture, &path).unwrap();
    let p = path.to_str().unwrap();

    let json = stdout(&evstore(dir.path(), &["dump", p, "--json"]));
    let tags = tags_of(&json);
    assert!(!tags.is_empty(), "the fixture has events");
    assert!(tags.iter().all(Vec::is_empty), "{json}");
    let text = stdout(&evstore(dir.path(), &["dump", p]));
    assert!(!text.contains("tags="), "{text}");

    let stats = stdout(&evstore(dir.path(), &["stats", p]));
    assert!(stats.contains("tags           none"), "{stats}");
    let json = stdout(&evstore(dir.path(), &["stats", p, "--json"]));
    assert_eq!(json_u64(&json, "tags"), Some(0), "{json}");
    assert_eq!(json_u64(&json, "tag_occurrences"), Some(0), "{json}");
}
