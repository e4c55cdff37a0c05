//! Data written by builds before the MessagePack codec (event payloads, metadata envelopes and
//! snapshots in bincode 2.0.1) stays readable after the upgrade: load, history and snapshots
//! read it; new appends and snapshots use the current codec beside it; a reopen reads both.

use std::sync::Arc;

use crate::common::counter::{Counter, CounterCommand, CounterEvent};
use crate::common::small_options;
use evstore::aggregate::{Aggregate, CommandContext, DomainEvent, EventMetadata};
use evstore::repository::Repository;
use evstore::testing::{encode_legacy_bincode, legacy_event_metadata, legacy_snapshot_payload};
use evstore::{Durability, ExpectedVersion, NewEvent, Store};

/// Tags of the metadata envelopes (docs/FORMAT.md): legacy bincode, current MessagePack.
const LEGACY_TAG: u8 = 0xE1;
const CURRENT_TAG: u8 = 0xE2;

/// Append `adds` as an older build did: bincode payloads in the 0xE1 envelope.
fn write_as_old_build(store: &Store, adds: &[u32]) {
    let events: Vec<NewEvent> = adds
        .iter()
        .map(|n| NewEvent {
            data: encode_legacy_bincode(n).unwrap(),
            metadata: legacy_event_metadata(&EventMetadata::default()).unwrap(),
            ..NewEvent::new(CounterEvent::Added(*n).event_type(), Vec::new())
        })
        .collect();
    store
        .append(&Counter::stream_id("c"), ExpectedVersion::NoStream, &events)
        .unwrap();
}

fn expected_after(adds: &[u32]) -> Counter {
    let mut c = Counter::default();
    for n in adds {
        c.apply(&CounterEvent::Added(*n));
    }
    c
}

#[test]
fn legacy_codec_data_stays_readable_after_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.evs");
    let old_adds = [3u32, 4, 5];
    {
        let store = Store::open_with(&path, small_options(Durability::Sync)).unwrap();
        write_as_old_build(&store, &old_adds);
        // A legacy snapshot at the last version (schema 1, bincode).
        let payload = legacy_snapshot_payload(1, &expected_after(&old_adds)).unwrap();
        let id = store.event_id_at("Counter-c", 2).unwrap().unwrap();
        store.save_snapshot("Counter-c", 2, id, &payload).unwrap();
    }
    // The upgrade: this build opens the file.
    let store = Arc::new(Store::open(&path).unwrap());
    let repo = Repository::<Counter, _>::new(store.clone()).with_snapshot_every(4);
    let loaded = repo.load("c").unwrap().unwrap();
    assert_eq!(loaded.state(), &expected_after(&old_adds));
    assert_eq!(
        store.snapshot_stats().unwrap().used,
        1,
        "the legacy snapshot was used"
    );
    let history = repo.history("c").unwrap();
    assert_eq!(history.len(), 3, "every legacy event decodes");

    // New commands are written with the current codec, beside the old events; the snapshot
    // taken at version 3 uses the current envelope.
    let ctx = CommandContext::new_request();
    for n in [6u32, 7] {
        repo.execute("c", &CounterCommand::Add(n), &ctx, 5).unwrap();
    }
    let all = [3u32, 4, 5, 6, 7];
    let tags: Vec<u8> = store
        .read_stream("Counter-c", 0)
        .unwrap()
        .iter()
        .map(|e| e.metadata[0])
        .collect();
    assert_eq!(
        tags,
        [LEGACY_TAG, LEGACY_TAG, LEGACY_TAG, CURRENT_TAG, CURRENT_TAG]
    );
    drop(repo);
    drop(store);

    // Reopen: old and new events, and the new snapshot, read back.
    let store = Arc::new(Store::open(&path).unwrap());
    let repo = Repository::<Counter, _>::new(store.clone()).with_snapshot_every(4);
    let loaded = repo.load("c").unwrap().unwrap();
    assert_eq!(loaded.state(), &expected_after(&all));
    let stats = store.snapshot_stats().unwrap();
    assert_eq!((stats.used, stats.ignored_undecodable), (1, 0), "{stats:?}");
    let replayed = repo.load_at_version("c", 4).unwrap().unwrap();
    assert_eq!(replayed.state(), &expected_after(&all));
    assert_eq!(repo.history("c").unwrap().len(), 5);
}

#[derive(Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
struct Sum {
    events: u64,
    bytes: u64,
}

impl evstore::projection::Projection for Sum {
    const NAME: &'static str = "sum";
    const VERSION: u32 = 1;
    fn apply(&mut self, event: &evstore::RecordedEvent) {
        self.events += 1;
        self.bytes += event.data.len() as u64;
    }
}

#[test]
fn a_legacy_projection_checkpoint_resumes_without_a_rebuild() {
    use evstore::checkpoint::{checkpoint_path, Checkpoint};
    use evstore::codec::Codec;
    use evstore::projection::ProjectionRunner;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.evs");
    let store = Arc::new(Store::open_with(&path, small_options(Durability::Sync)).unwrap());
    write_as_old_build(&store, &[1, 2, 3]);
    // The checkpoint an older build left after the three events: format 1, bincode state.
    let old_state = Sum {
        events: 3,
        bytes: 3,
    };
    Checkpoint {
        version: 1,
        position: 3,
        last_event_id: store.event_id_at("Counter-c", 2).unwrap(),
        state: encode_legacy_bincode(&old_state).unwrap(),
        state_codec: Codec::Bincode2,
    }
    .write(&checkpoint_path(&path, "sum"))
    .unwrap();

    let mut runner = ProjectionRunner::<Sum, _>::open_beside(store.clone()).unwrap();
    assert_eq!(
        runner.stats().rebuilds,
        0,
        "{:?}",
        runner.stats().last_rebuild
    );
    assert_eq!(runner.stats().resumed_from, Some(3));
    assert_eq!(runner.handle().read(|s| s.events), 3);
    // It goes on, and its next checkpoint is in the current format.
    store
        .append(
            "other",
            ExpectedVersion::Any,
            &[NewEvent::new("E", vec![9, 9])],
        )
        .unwrap();
    runner.catch_up().unwrap();
    runner.checkpoint().unwrap();
    let cp = Checkpoint::read(&checkpoint_path(&path, "sum")).unwrap();
    assert_eq!(cp.state_codec, Codec::CURRENT);
    let reopened = ProjectionRunner::<Sum, _>::open_beside(store).unwrap();
    assert_eq!(
        reopened.handle().read(|s| (s.events, s.bytes)),
        (4, 5),
        "the legacy state plus the new event"
    );
}
