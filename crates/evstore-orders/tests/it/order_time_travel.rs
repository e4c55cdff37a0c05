//! `load_at_version` and `load_as_of` at every point of an order's history equal the state
//! built from the prefix of its events (with and without snapshots), and `history` gives the
//! same states.

use std::sync::Arc;
use std::time::Duration;

use crate::common::open;
use chrono::Duration as ChronoDuration;
use evstore::aggregate::{CommandContext, Root};
use evstore::repository::Repository;
use evstore_orders::{upcasters, Order, OrderCommand, OrderService};

fn commands(id: &str) -> Vec<OrderCommand> {
    let mut c = vec![OrderCommand::Create {
        order_id: id.into(),
        user_id: "u".into(),
    }];
    c.extend((0..12).map(|i| OrderCommand::AddItem {
        product_id: format!("p{i}"),
        quantity: i + 1,
        price_cents: i64::from(i) * 101,
    }));
    c.extend([
        OrderCommand::Confirm,
        OrderCommand::Ship,
        OrderCommand::Deliver,
    ]);
    c
}

#[test]
fn load_at_version_and_as_of_equal_the_prefix_state_at_every_point() {
    for every in [0u64, 1, 3, 10] {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        let svc = OrderService::new(store.clone()).with_snapshot_every(every);
        let id = format!("tt-{every}");
        // The live state after each event (one event per command).
        let mut states: Vec<Order> = Vec::new();
        for cmd in commands(&id) {
            let root = svc
                .execute(&id, &cmd, &CommandContext::new_request())
                .unwrap();
            assert_eq!(root.version(), Some(states.len() as u64));
            states.push(root.state().clone());
            // Distinct recorded_at per event (the store stamps in microseconds).
            std::thread::sleep(Duration::from_millis(2));
        }
        let history = svc.history(&id).unwrap();
        assert_eq!(history.len(), states.len());
        for (v, (entry, expected)) in history.iter().zip(&states).enumerate() {
            assert_eq!(entry.recorded.version, v as u64);
            assert_eq!(&entry.state, expected, "history at {v}");

            let at_version = svc.load_at_version(&id, v as u64).unwrap();
            assert_eq!(
                at_version.as_ref(),
                Some(expected),
                "every {every}: load_at_version {v}"
            );

            let t = entry.recorded.recorded_at;
            assert_eq!(
                svc.load_as_of(&id, t).unwrap().as_ref(),
                Some(expected),
                "every {every}: load_as_of event {v}"
            );
            let just_before = svc
                .load_as_of(&id, t - ChronoDuration::microseconds(1))
                .unwrap();
            let expected_before = v.checked_sub(1).map(|p| &states[p]);
            assert_eq!(
                just_before.as_ref(),
                expected_before,
                "every {every}: just before event {v}"
            );
        }
        let last = states.last().unwrap();
        assert_eq!(
            svc.load_at_version(&id, 1_000).unwrap().as_ref(),
            Some(last)
        );
        assert_eq!(
            svc.load_as_of(&id, chrono::Utc::now()).unwrap().as_ref(),
            Some(last)
        );
        assert_eq!(svc.get_order(&id).unwrap().as_ref(), Some(last));
        assert_eq!(svc.load_at_version("nobody", 0).unwrap(), None);
        assert_eq!(svc.load_as_of("nobody", chrono::Utc::now()).unwrap(), None);
    }
}

#[test]
fn load_as_of_includes_a_whole_batch_recorded_at_one_instant() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let repo = Repository::<Order, _>::new(store.clone())
        .with_upcasters(Arc::new(upcasters()))
        .with_snapshot_every(0);
    let ctx = CommandContext::new_request();
    let mut root = Root::<Order>::new("b");
    root.execute(&OrderCommand::Create {
        order_id: "b".into(),
        user_id: "u".into(),
    })
    .unwrap();
    repo.save(&mut root, &ctx).unwrap();
    let after_create = root.state().clone();
    std::thread::sleep(Duration::from_millis(2));
    for i in 1..=3 {
        root.execute(&OrderCommand::AddItem {
            product_id: format!("p{i}"),
            quantity: i,
            price_cents: 10,
        })
        .unwrap();
    }
    repo.save(&mut root, &ctx).unwrap(); // one append, versions 1..=3
    let history = repo.history("b").unwrap();
    assert_eq!(history.len(), 4);
    let batch_time = history[1].recorded.recorded_at;
    assert!(history[1..]
        .iter()
        .all(|h| h.recorded.recorded_at == batch_time));
    let as_of = repo.load_as_of("b", batch_time).unwrap().unwrap();
    assert_eq!((as_of.state(), as_of.version()), (root.state(), Some(3)));
    let before = repo
        .load_as_of("b", batch_time - ChronoDuration::microseconds(1))
        .unwrap()
        .unwrap();
    assert_eq!((before.state(), before.version()), (&after_create, Some(0)));
    // Inside the batch only load_at_version can stop.
    let mid = repo.load_at_version("b", 2).unwrap().unwrap();
    assert_eq!(mid.state().items().len(), 2);
    assert_eq!(mid.state(), &history[2].state);
}
