//! `Store::read_stream_with` lends exactly the events `read_stream_range` returns (same fields,
//! same order, same ranges), across segments and batches, and stops at the callback's first
//! error.

use crate::common::*;
use evstore::{Durability, Error, ExpectedVersion, NewEvent, Store};

#[test]
fn views_equal_owned_events_for_every_range() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(
        dir.path().join("v.evs"),
        small_options(Durability::Buffered),
    )
    .unwrap();
    let mut rng = Rng(0x005E_ED0F_u64);
    let streams = ["a", "bb", "stream-ccc", "d"];
    for i in 0..600u64 {
        let s = streams[rng.below(streams.len() as u64) as usize];
        let n = 1 + rng.below(4) as usize;
        let events: Vec<NewEvent> = (0..n)
            .map(|j| {
                NewEvent::new(
                    format!("Type{}", (i + j as u64) % 3),
                    vec![j as u8; rng.below(300) as usize],
                )
                .with_metadata(if j % 2 == 0 {
                    b"m".to_vec()
                } else {
                    Vec::new()
                })
            })
            .collect();
        store.append(s, ExpectedVersion::Any, &events).unwrap();
    }
    assert!(store.stats().segments > 1, "the log spans segments");
    for s in streams {
        let len = store.stream_version(s).map_or(0, |v| v + 1);
        for (from, to) in [
            (0, u64::MAX),
            (0, len),
            (1, 3),
            (len / 2, len),
            (len, u64::MAX),
            (5, 2),
        ] {
            let owned = store.read_stream_range(s, from, to).unwrap();
            let mut lent = Vec::new();
            store
                .read_stream_with(s, from, to, |e| {
                    assert_eq!(e.stream_id, s);
                    lent.push(e.to_recorded());
                    Ok(())
                })
                .unwrap();
            assert_eq!(lent, owned, "{s} [{from}, {to})");
        }
    }
}

#[test]
fn the_callbacks_first_error_stops_the_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("v.evs")).unwrap();
    let events: Vec<NewEvent> = (0..5).map(|i| event("T", &i.to_string())).collect();
    store
        .append("s", ExpectedVersion::NoStream, &events)
        .unwrap();
    let mut seen = 0;
    let r = store.read_stream_with("s", 0, u64::MAX, |e| {
        seen += 1;
        if e.version == 2 {
            return Err(Error::InvalidInput("stop here".into()));
        }
        Ok(())
    });
    assert!(
        matches!(r, Err(Error::InvalidInput(ref m)) if m == "stop here"),
        "{r:?}"
    );
    assert_eq!(seen, 3, "no event after the failing one");
    // Bad stream ids are rejected like read_stream's.
    assert!(matches!(
        store.read_stream_with("", 0, u64::MAX, |_| Ok(())),
        Err(Error::InvalidInput(_))
    ));
}
