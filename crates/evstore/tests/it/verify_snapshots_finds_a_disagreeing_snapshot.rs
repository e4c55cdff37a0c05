//! `Repository::verify_snapshots` compares each snapshot with a full replay: a snapshot the
//! repository wrote agrees; one planted by hand with a wrong state (current envelope, right
//! fingerprint, so a load would use it) is reported as differing; an aggregate without a
//! snapshot is reported as such.

use std::sync::Arc;

use crate::common::counter::*;
use crate::common::*;
use evstore::aggregate::{Aggregate, CommandContext};
use evstore::codec;
use evstore::repository::{Repository, SnapshotVerdict};
use evstore::{Durability, Store};

#[test]
fn a_planted_wrong_snapshot_is_found_and_true_ones_agree() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        Store::open_with(dir.path().join("v.evs"), small_options(Durability::Sync)).unwrap(),
    );
    let repo: Repository<Counter, _> = Repository::new(store.clone()).with_snapshot_every(3);
    let ctx = CommandContext::new_request();
    for id in ["good", "bad"] {
        for n in 1..=3 {
            repo.execute(id, &CounterCommand::Add(n), &ctx, 3).unwrap();
        }
    }
    repo.execute("none", &CounterCommand::Add(1), &ctx, 3)
        .unwrap();

    // Plant a wrong state for "bad" at its version 2: FF FF, MessagePack tag with the
    // fingerprint bit, SNAPSHOT_VERSION u16 LE, fingerprint u32 LE, the state.
    let bad = repo.load("bad").unwrap().unwrap();
    let mut payload = vec![0xFF, 0xFF, 0x82];
    payload.extend(Counter::SNAPSHOT_VERSION.to_le_bytes());
    payload.extend(repo.upcaster_fingerprint().to_le_bytes());
    let wrong = Counter {
        total: 1000,
        ..bad.state().clone()
    };
    payload.extend(codec::encode(&wrong).unwrap());
    store
        .save_snapshot("Counter-bad", 2, bad.last_event_id().unwrap(), &payload)
        .unwrap();
    assert_eq!(
        repo.load("bad").unwrap().unwrap().state().total,
        1000,
        "a load trusts it"
    );

    let checks = repo.verify_snapshots(["good", "bad", "none"]).unwrap();
    let verdicts: Vec<(&str, SnapshotVerdict)> =
        checks.iter().map(|c| (c.id.as_str(), c.verdict)).collect();
    assert_eq!(
        verdicts,
        [
            ("good", SnapshotVerdict::Agrees { version: 2 }),
            ("bad", SnapshotVerdict::Differs { version: 2 }),
            ("none", SnapshotVerdict::NoSnapshot),
        ]
    );
}
