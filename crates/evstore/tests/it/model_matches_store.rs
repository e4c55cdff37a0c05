//! Random sequences of appends (random streams, expected versions, batch sizes, payload sizes
//! across segment boundaries), reads and reopens agree with a simple in-memory model.

use std::collections::HashMap;

use crate::common::*;
use evstore::{Durability, Error, ExpectedVersion, NewEvent, Store};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Expect {
    Any,
    NoStream,
    StreamExists,
    ExactRight,
    ExactWrong(u64),
}

#[derive(Debug, Clone)]
enum Op {
    Append {
        stream: u8,
        expect: Expect,
        sizes: Vec<usize>,
        ty: u8,
    },
    Reopen,
    ReadStream {
        stream: u8,
        from: u64,
    },
    ReadAllFrom(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let expect = prop_oneof![
        Just(Expect::Any),
        Just(Expect::NoStream),
        Just(Expect::StreamExists),
        Just(Expect::ExactRight),
        Just(Expect::ExactRight),
        (0u64..8).prop_map(Expect::ExactWrong),
    ];
    let size = prop_oneof![
        6 => 0usize..200,
        2 => 1000usize..9000,
        1 => 20_000usize..30_000,
    ];
    prop_oneof![
        8 => (0u8..5, expect, prop::collection::vec(size, 1..5), 0u8..3)
            .prop_map(|(stream, expect, sizes, ty)| Op::Append { stream, expect, sizes, ty }),
        1 => Just(Op::Reopen),
        1 => (0u8..5, 0u64..6).prop_map(|(stream, from)| Op::ReadStream { stream, from }),
        1 => (0u64..40).prop_map(Op::ReadAllFrom),
    ]
}

#[derive(Debug, Clone, PartialEq)]
struct ModelEvent {
    id: uuid::Uuid,
    stream: String,
    ty: String,
    version: u64,
    data: Vec<u8>,
}

fn check_all(store: &Store, model: &[ModelEvent], from: u64) {
    let got = store.read_all(from).collect::<Result<Vec<_>, _>>().unwrap();
    let want = model.get(from as usize..).unwrap_or(&[]);
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert_eq!(
            (&g.event_id, &g.stream_id, &g.event_type, g.version, &g.data),
            (&w.id, &w.stream, &w.ty, w.version, &w.data)
        );
    }
    for (i, g) in got.iter().enumerate() {
        assert_eq!(g.position, from + i as u64);
    }
}

fn run(ops: Vec<Op>, durability: Durability) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.evs");
    let mut store = Some(Store::open_with(&path, small_options(durability)).unwrap());
    let mut model: Vec<ModelEvent> = Vec::new();
    let mut versions: HashMap<String, u64> = HashMap::new();
    for op in ops {
        let s = store.as_ref().unwrap();
        match op {
            Op::Append {
                stream,
                expect,
                sizes,
                ty,
            } => {
                let name = format!("stream-{stream}");
                let current = versions.get(&name).copied();
                let expected = match expect {
                    Expect::Any => ExpectedVersion::Any,
                    Expect::NoStream => ExpectedVersion::NoStream,
                    Expect::StreamExists => ExpectedVersion::StreamExists,
                    Expect::ExactRight => {
                        current.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact)
                    }
                    Expect::ExactWrong(v) => {
                        ExpectedVersion::Exact(current.map_or(v, |c| c + 1 + v))
                    }
                };
                let ok = match expected {
                    ExpectedVersion::Any => true,
                    ExpectedVersion::NoStream => current.is_none(),
                    ExpectedVersion::StreamExists => current.is_some(),
                    ExpectedVersion::Exact(v) => current == Some(v),
                };
                let events: Vec<NewEvent> = sizes
                    .iter()
                    .enumerate()
                    .map(|(i, &n)| {
                        NewEvent::new(format!("T{ty}"), vec![(i as u8).wrapping_add(ty); n])
                    })
                    .collect();
                match s.append(&name, expected, &events) {
                    Ok(r) => {
                        assert!(ok, "append should have failed: {expected:?} vs {current:?}");
                        let first = current.map_or(0, |c| c + 1);
                        assert_eq!(r.first_version, first);
                        assert_eq!(r.first_position, model.len() as u64);
                        for (i, e) in events.iter().enumerate() {
                            model.push(ModelEvent {
                                id: e.event_id,
                                stream: name.clone(),
                                ty: e.event_type.clone(),
                                version: first + i as u64,
                                data: e.data.clone(),
                            });
                        }
                        versions.insert(name, r.last_version);
                        assert_eq!(r.last_position, model.len() as u64 - 1);
                    }
                    Err(Error::WrongExpectedVersion { actual, .. }) => {
                        assert!(!ok, "append should have succeeded");
                        assert_eq!(actual, current);
                    }
                    Err(Error::InvalidInput(msg)) => {
                        // Only when the batch is larger than a segment.
                        let total: usize = sizes.iter().map(|n| n + 40).sum();
                        assert!(total > 60 * 1024, "unexpected InvalidInput: {msg}");
                    }
                    Err(e) => panic!("unexpected error {e}"),
                }
            }
            Op::Reopen => {
                drop(store.take());
                let s = Store::open(&path).unwrap();
                assert!(s.recovery_report().trimmed.is_none());
                store = Some(s);
            }
            Op::ReadStream { stream, from } => {
                let name = format!("stream-{stream}");
                let got = s.read_stream(&name, from).unwrap();
                let want: Vec<&ModelEvent> = model
                    .iter()
                    .filter(|e| e.stream == name && e.version >= from)
                    .collect();
                assert_eq!(got.len(), want.len());
                for (g, w) in got.iter().zip(want) {
                    assert_eq!((g.event_id, g.version), (w.id, w.version));
                }
                assert_eq!(s.stream_version(&name), versions.get(&name).copied());
            }
            Op::ReadAllFrom(from) => check_all(s, &model, from),
        }
    }
    let s = store.take().unwrap();
    check_all(&s, &model, 0);
    assert_eq!(s.head_position(), (model.len() as u64).checked_sub(1));
    drop(s);
    let s = Store::open(&path).unwrap();
    check_all(&s, &model, 0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn buffered_store_matches_model(ops in prop::collection::vec(op(), 1..60)) {
        run(ops, Durability::Buffered);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn sync_store_matches_model(ops in prop::collection::vec(op(), 1..30)) {
        run(ops, Durability::Sync);
    }
}
