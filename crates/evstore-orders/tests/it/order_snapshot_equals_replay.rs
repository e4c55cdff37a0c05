//! Loading an order from its latest snapshot plus the events after it gives exactly the state
//! of a full replay, for random command sequences and snapshot intervals 1, 3 and 10.

use std::sync::Arc;

use crate::common::open_at as open;
use evstore::aggregate::CommandContext;
use evstore::repository::{Repository, RepositoryError};
use evstore::Store;
use evstore_orders::{upcasters, Order, OrderCommand};
use proptest::prelude::*;

fn command() -> impl Strategy<Value = OrderCommand> {
    prop_oneof![
        12 => (0u32..4, -1i64..5_000, prop_oneof!["a", "b", "c"]).prop_map(|(quantity, price_cents, p)| {
            OrderCommand::AddItem { product_id: p, quantity, price_cents }
        }),
        1 => Just(OrderCommand::Confirm),
        1 => "[a-z]{0,8}".prop_map(|reason| OrderCommand::Cancel { reason }),
        1 => Just(OrderCommand::Ship),
        1 => Just(OrderCommand::Deliver),
        1 => Just(OrderCommand::Create { order_id: "x".into(), user_id: "u2".into() }),
    ]
}

fn repo(store: &Arc<Store>, every: u64) -> Repository<Order, Arc<Store>> {
    Repository::new(store.clone())
        .with_upcasters(Arc::new(upcasters()))
        .with_snapshot_every(every)
}

/// Runs `commands` on order `id` through a repository snapshotting every `every` events and
/// checks, after each command, that it loads the same as a replay-only repository and as the
/// live root. Returns the number of events written.
fn run(store: &Arc<Store>, id: &str, every: u64, commands: &[OrderCommand]) -> u64 {
    let snap = repo(store, every);
    let replay = repo(store, 0);
    let ctx = CommandContext::new_request();
    snap.execute(
        id,
        &OrderCommand::Create {
            order_id: id.into(),
            user_id: "u".into(),
        },
        &ctx,
        1,
    )
    .unwrap();
    for (i, cmd) in commands.iter().enumerate() {
        let cmd = match cmd {
            // A re-create is always refused; keep the id consistent.
            OrderCommand::Create { user_id, .. } => OrderCommand::Create {
                order_id: id.into(),
                user_id: user_id.clone(),
            },
            other => other.clone(),
        };
        let live = match snap.execute(id, &cmd, &ctx, 1) {
            Ok(root) => Some(root),
            Err(RepositoryError::Domain(_)) => None,
            Err(e) => panic!("storage error: {e}"),
        };
        let from_snapshot = snap.load(id).unwrap().unwrap();
        let from_replay = replay.load(id).unwrap().unwrap();
        assert_eq!(
            from_snapshot.state(),
            from_replay.state(),
            "every {every}, command {i}"
        );
        assert_eq!(from_snapshot.version(), from_replay.version());
        assert_eq!(from_snapshot.last_event_id(), from_replay.last_event_id());
        if let Some(live) = live {
            assert_eq!(live.state(), from_replay.state());
            assert_eq!(live.version(), from_replay.version());
        }
    }
    let from_snapshot = snap.load(id).unwrap().unwrap();
    let from_replay = replay.load(id).unwrap().unwrap();
    assert_eq!(from_snapshot.state(), from_replay.state());
    assert_eq!(from_snapshot.version(), from_replay.version());
    from_replay.version().unwrap() + 1
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn snapshot_load_equals_full_replay(commands in proptest::collection::vec(command(), 0..60)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orders.evs");
        let store = open(&path);
        let mut expected_used = false;
        let mut finals = Vec::new();
        for every in [1u64, 3, 10] {
            let id = format!("order-every-{every}");
            let events = run(&store, &id, every, &commands);
            expected_used |= events >= every;
            finals.push((id, repo(&store, 0).load(&format!("order-every-{every}")).unwrap().unwrap()));
        }
        if expected_used {
            prop_assert!(store.snapshot_stats().unwrap().used > 0, "snapshots were used");
        }
        // After a reopen, the sidecar still gives the same states.
        drop(store);
        let store = open(&path);
        for (every, (id, before)) in [1u64, 3, 10].into_iter().zip(finals) {
            let after = repo(&store, every).load(&id).unwrap().unwrap();
            prop_assert_eq!(after.state(), before.state());
            prop_assert_eq!(after.version(), before.version());
        }
    }
}

/// A deterministic long case: 250 items with snapshots every 10, then the life cycle.
#[test]
fn long_history_with_snapshots_equals_replay() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("orders.evs"));
    let mut commands: Vec<_> = (0..250)
        .map(|i| OrderCommand::AddItem {
            product_id: format!("p{}", i % 7),
            quantity: 1 + i % 3,
            price_cents: i64::from(i) * 17,
        })
        .collect();
    commands.extend([
        OrderCommand::Confirm,
        OrderCommand::Ship,
        OrderCommand::Deliver,
    ]);
    for every in [1, 3, 10] {
        let events = run(&store, &format!("long-{every}"), every, &commands);
        assert_eq!(events, 254);
    }
    let stats = store.snapshot_stats().unwrap();
    assert!(stats.used > 0 && stats.saved > 0, "{stats:?}");
}
