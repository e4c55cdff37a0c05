//! A snapshot records the fingerprint of the event upcaster chain it was built under. After an
//! upcaster changes (a new revision label), the old snapshot is ignored (counted in
//! `ignored_other_upcasters`) and the load equals a full replay; an unchanged chain keeps
//! using it. An envelope without a fingerprint is only used when no upcaster covers the
//! aggregate's events.

use std::sync::Arc;

use evstore::aggregate::{Aggregate, CommandContext, DomainEvent, EventMetadata};
use evstore::codec::{self, CodecError};
use evstore::repository::Repository;
use evstore::upcast::Upcasters;
use evstore::{ExpectedVersion, NewEvent, Store};
use serde::{Deserialize, Serialize};

/// `Read(n)`, at schema 4; schema 3 stored the same `u32` but meant something an upcaster fixes.
#[derive(Debug, Clone)]
struct Read(u32);

impl DomainEvent for Read {
    fn event_type(&self) -> &'static str {
        "Read"
    }
    fn schema_version(ty: &str) -> Option<u16> {
        (ty == "Read").then_some(4)
    }
    fn encode(&self) -> Result<Vec<u8>, CodecError> {
        codec::encode(&self.0)
    }
    fn decode(_: &str, payload: &[u8]) -> Result<Self, CodecError> {
        Ok(Read(codec::decode(payload)?))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Meter {
    total: u64,
}

impl Aggregate for Meter {
    const TYPE_NAME: &'static str = "Meter";
    type Event = Read;
    type Command = u32;
    type Error = std::convert::Infallible;
    fn apply(&mut self, event: &Read) {
        self.total += u64::from(event.0);
    }
    fn handle(&self, n: &u32) -> Result<Vec<Read>, Self::Error> {
        Ok(vec![Read(*n)])
    }
}

/// Upcaster "A" (3→4 keeps the number) or "B" (3→4 multiplies it by 10, the bug fix).
fn upcasters(fixed: bool) -> Arc<Upcasters> {
    let mut up = Upcasters::new();
    if fixed {
        up.register_named("Read", 3, "B", |b| {
            let n: u32 = codec::decode(b).map_err(|e| e.to_string())?;
            codec::encode(&(n * 10)).map_err(|e| e.to_string())
        });
    } else {
        up.register_named("Read", 3, "A", |b| Ok(b.to_vec()));
    }
    Arc::new(up)
}

fn repo(store: &Arc<Store>, fixed: bool) -> Repository<Meter, Arc<Store>> {
    Repository::new(store.clone())
        .with_snapshot_every(6)
        .with_upcasters(upcasters(fixed))
}

/// Five `Read` events at schema 3 (10, 20, 30, 40, 50), then one at schema 4 (1) through the
/// repository under upcaster A, whose save writes a snapshot at version 5.
fn history(store: &Arc<Store>) {
    let old: Vec<NewEvent> = [10u32, 20, 30, 40, 50]
        .iter()
        .map(|n| NewEvent {
            metadata: EventMetadata {
                schema_version: 3,
                ..EventMetadata::default()
            }
            .encode()
            .unwrap(),
            ..NewEvent::new("Read", codec::encode(n).unwrap())
        })
        .collect();
    store
        .append("Meter-m", ExpectedVersion::NoStream, &old)
        .unwrap();
    repo(store, false)
        .execute("m", &1, &CommandContext::new_request(), 3)
        .unwrap();
}

#[test]
fn a_changed_upcaster_makes_the_load_ignore_the_snapshot_and_equal_a_replay() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path().join("m.evs")).unwrap());
    history(&store);
    assert_ne!(repo(&store, false).upcaster_fingerprint(), 0);
    assert_ne!(
        repo(&store, false).upcaster_fingerprint(),
        repo(&store, true).upcaster_fingerprint()
    );

    // Unchanged chain (a fresh registry with the same labels): the snapshot is used.
    let before = store.snapshot_stats().unwrap();
    let a = repo(&store, false).load("m").unwrap().unwrap();
    assert_eq!(a.state().total, 151);
    let after = store.snapshot_stats().unwrap();
    assert_eq!(after.used, before.used + 1, "{after:?}");
    assert_eq!(after.ignored_other_upcasters, 0);

    // Upcaster B: the snapshot (built under A) is ignored and the load is the full replay.
    let fixed = repo(&store, true);
    let b = fixed.load("m").unwrap().unwrap();
    let replay = fixed.history("m").unwrap().last().unwrap().state.clone();
    assert_eq!(replay.total, 1501);
    assert_eq!(b.state(), &replay);
    assert_eq!(b.version(), Some(5));
    let after_b = store.snapshot_stats().unwrap();
    assert_eq!(after_b.ignored_other_upcasters, 1, "{after_b:?}");
    assert_eq!(after_b.used, after.used, "not counted as used");
}

#[test]
fn an_envelope_without_fingerprint_is_used_only_without_upcasters() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path().join("m.evs")).unwrap());
    let plain: Repository<Meter, _> = Repository::new(store.clone()).with_snapshot_every(6);
    plain
        .execute("m", &7, &CommandContext::new_request(), 3)
        .unwrap();
    let id = plain.load("m").unwrap().unwrap().last_event_id().unwrap();
    // The envelope before fingerprints: FF FF, codec tag (2: MessagePack), SNAPSHOT_VERSION
    // (u16 LE), the state. It claims a total of 99 so its use shows.
    let mut payload = vec![0xFF, 0xFF, 2];
    payload.extend(Meter::SNAPSHOT_VERSION.to_le_bytes());
    payload.extend(codec::encode(&Meter { total: 99 }).unwrap());
    store.save_snapshot("Meter-m", 0, id, &payload).unwrap();
    assert_eq!(plain.load("m").unwrap().unwrap().state().total, 99);
    assert_eq!(
        repo(&store, false)
            .load("m")
            .unwrap()
            .unwrap()
            .state()
            .total,
        7
    );
    assert_eq!(store.snapshot_stats().unwrap().ignored_other_upcasters, 1);
}
