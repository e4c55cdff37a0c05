//! `evstore dump` shows payloads that describe themselves as JSON, not base64: events written
//! through a repository (MessagePack, or JSON for types that choose it) and raw JSON payloads;
//! opaque bytes stay base64. `dump --stream S --limit N` stops after N events.

use std::sync::Arc;

use crate::common::cli::{evstore, stdout};
use evstore::aggregate::{Aggregate, PayloadFormat, SerdeEvent};
use evstore::repository::Repository;
use evstore::{ExpectedVersion, NewEvent, Store};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
enum NoteEvent {
    Written { text: String, stars: u8 },
}
impl SerdeEvent for NoteEvent {}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum JsonNoteEvent {
    Pinned { by: String },
}
impl SerdeEvent for JsonNoteEvent {
    const FORMAT: PayloadFormat = PayloadFormat::Json;
}

macro_rules! note_aggregate {
    ($name:ident, $event:ty, $type_name:literal) => {
        #[derive(Debug, Clone, Default, Serialize, Deserialize)]
        struct $name;
        impl Aggregate for $name {
            const TYPE_NAME: &'static str = $type_name;
            type Event = $event;
            type Command = $event;
            type Error = std::convert::Infallible;
            fn apply(&mut self, _: &$event) {}
            fn handle(&self, c: &$event) -> Result<Vec<$event>, Self::Error> {
                Ok(vec![c.clone()])
            }
        }
    };
}
note_aggregate!(Note, NoteEvent, "Note");
note_aggregate!(JsonNote, JsonNoteEvent, "JsonNote");

#[test]
fn dump_shows_self_describing_payloads_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.evs");
    {
        let store = Arc::new(Store::open(&path).unwrap());
        let written = NoteEvent::Written {
            text: "hi".into(),
            stars: 5,
        };
        Repository::<Note, _>::new(store.clone())
            .handle("n1", &written)
            .unwrap();
        let pinned = JsonNoteEvent::Pinned { by: "ann".into() };
        Repository::<JsonNote, _>::new(store.clone())
            .handle("n1", &pinned)
            .unwrap();
        store
            .append(
                "raw",
                ExpectedVersion::Any,
                &[
                    NewEvent::new("RawJson", br#"{"user":"u1","n":2}"#.to_vec()),
                    NewEvent::new("Opaque", vec![0xff, 0x00, 0x13]),
                ],
            )
            .unwrap();
    }
    let text = stdout(&evstore(dir.path(), &["dump", "n.evs"]));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[0].contains(r#"data={"text":"hi","stars":5}"#),
        "{text}"
    );
    assert!(lines[1].contains(r#"data={"by":"ann"}"#), "{text}");
    assert!(lines[2].contains(r#"data={"user":"u1","n":2}"#), "{text}");
    assert!(lines[3].contains("data_base64=/wAT"), "{text}");

    let json = stdout(&evstore(dir.path(), &["dump", "n.evs", "--json"]));
    let docs: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(docs[0]["data"]["stars"], 5);
    assert_eq!(docs[1]["data"]["by"], "ann");
    assert_eq!(docs[2]["data"]["user"], "u1");
    assert_eq!(docs[3]["data_base64"], "/wAT");
}

#[test]
fn dump_of_a_stream_stops_at_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.evs");
    {
        let store = Store::open(&path).unwrap();
        let events: Vec<NewEvent> = (0..1_500)
            .map(|i| NewEvent::new("E", format!("{i}")))
            .collect();
        for chunk in events.chunks(500) {
            store.append("s", ExpectedVersion::Any, chunk).unwrap();
        }
    }
    let out = stdout(&evstore(
        dir.path(),
        &["dump", "l.evs", "--stream", "s", "--limit", "700"],
    ));
    assert_eq!(out.lines().count(), 700);
    assert!(out.lines().last().unwrap_or("").contains("s v699"), "{out}");
    let all = stdout(&evstore(dir.path(), &["dump", "l.evs", "--stream", "s"]));
    assert_eq!(all.lines().count(), 1_500);
}

#[test]
fn an_unknown_type_and_foreign_snapshots_are_reported_not_silently_passed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.evs");
    {
        let store = Arc::new(Store::open(&path).unwrap());
        let notes = Repository::<Note, _>::new(store.clone()).with_snapshot_every(1);
        let written = NoteEvent::Written {
            text: "x".into(),
            stars: 1,
        };
        notes.handle("n1", &written).unwrap();
        assert_eq!(store.snapshot_stats().unwrap().live, 1);
    }
    let o = evstore(dir.path(), &["dump", "f.evs", "--type", "Nope"]);
    assert!(o.status.success());
    assert!(stdout(&o).is_empty());
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(err.contains("no events of type \"Nope\""), "{err}");

    let o = evstore(dir.path(), &["snapshots", "verify", "f.evs"]);
    assert!(o.status.success());
    let text = stdout(&o);
    assert!(
        text.contains("1 snapshots of other aggregate types were not checked"),
        "{text}"
    );
}
