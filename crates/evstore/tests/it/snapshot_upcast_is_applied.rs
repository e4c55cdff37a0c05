//! A snapshot stored under an older snapshot schema is brought to the current one by a
//! registered snapshot upcaster and used; without the upcaster it is ignored (replay).

use std::sync::Arc;

use crate::common::counter::*;
use crate::common::*;
use evstore::aggregate::CommandContext;
use evstore::repository::Repository;
use evstore::upcast::Upcasters;
use evstore::{Durability, Store};

/// The schema-0 snapshot layout: the same fields in another order.
#[derive(serde::Serialize, serde::Deserialize)]
struct CounterV0 {
    history_hash: u64,
    adds: u64,
    total: u64,
}

#[test]
fn old_snapshot_schema_is_upcast_and_used() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("u.evs");
    let store = Arc::new(Store::open_with(&path, small_options(Durability::Sync)).unwrap());
    let plain: Repository<Counter, _> = Repository::new(store.clone()).with_snapshot_every(0);
    let ctx = CommandContext::new_request();
    for n in 1..=7u32 {
        plain
            .execute("c", &CounterCommand::Add(n), &ctx, 3)
            .unwrap();
    }
    let live = plain.load("c").unwrap().unwrap();
    let state = live.state().clone();
    // Write a schema-0 snapshot at the last version, as an older build did (legacy envelope,
    // bincode): the upcaster then reads and writes the legacy codec inside the decode scope.
    let v0 = CounterV0 {
        history_hash: state.history_hash,
        adds: state.adds,
        total: state.total,
    };
    let payload = evstore::testing::legacy_snapshot_payload(0, &v0).unwrap();
    store
        .save_snapshot("Counter-c", 6, live.last_event_id().unwrap(), &payload)
        .unwrap();

    let mut up = Upcasters::new();
    up.register_snapshot("Counter", 0, |bytes| {
        let old: CounterV0 = evstore::codec::decode(bytes).map_err(|e| e.to_string())?;
        evstore::codec::encode(&Counter {
            total: old.total,
            adds: old.adds,
            history_hash: old.history_hash,
        })
        .map_err(|e| e.to_string())
    });
    let with_upcaster: Repository<Counter, _> = Repository::new(store.clone())
        .with_snapshot_every(100)
        .with_upcasters(Arc::new(up));
    let before = store.snapshot_stats().unwrap();
    let loaded = with_upcaster.load("c").unwrap().unwrap();
    assert_eq!(loaded.state(), &state);
    assert_eq!(loaded.version(), Some(6));
    let after = store.snapshot_stats().unwrap();
    assert_eq!(after.used, before.used + 1, "the upcast snapshot was used");
    assert_eq!(after.ignored_undecodable, before.ignored_undecodable);

    // Without the upcaster the same snapshot is undecodable: ignored, replayed, same state.
    let without: Repository<Counter, _> = Repository::new(store.clone()).with_snapshot_every(100);
    assert_eq!(without.load("c").unwrap().unwrap().state(), &state);
    assert_eq!(
        store.snapshot_stats().unwrap().ignored_undecodable,
        before.ignored_undecodable + 1
    );
}
