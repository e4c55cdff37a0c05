//! Measures loading a 10,000-event order with and without snapshots (ignored: a measurement,
//! not a check). Run: `cargo test --release --test order_load_timing -- --ignored --nocapture`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use evstore::aggregate::{CommandContext, Root};
use evstore::repository::Repository;
use evstore::{Durability, Options, Store};
use evstore_orders::{upcasters, Order, OrderCommand};

const EVENTS: u64 = 10_000;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[test]
#[ignore = "measurement; run with --ignored --nocapture"]
fn load_time_of_a_10k_event_order_with_and_without_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        Store::open_with(
            dir.path().join("big.evs"),
            Options {
                durability: Durability::Buffered,
                ..Default::default()
            },
        )
        .unwrap(),
    );
    let repo = |every| {
        Repository::<Order, _>::new(store.clone())
            .with_upcasters(Arc::new(upcasters()))
            .with_snapshot_every(every)
    };
    let writer = repo(100);
    let ctx = CommandContext::new_request();
    let mut root = Root::<Order>::new("big");
    root.execute(&OrderCommand::Create {
        order_id: "big".into(),
        user_id: "u".into(),
    })
    .unwrap();
    // 9,999 items saved in batches of 100 events, snapshotting every 100 events, except the
    // last batch, saved without a snapshot: loading then reads the snapshot at version 9,899
    // and a tail of 100 events (the worst case of a 100-event policy).
    for i in 1..EVENTS {
        root.execute(&OrderCommand::AddItem {
            product_id: format!("sku-{}", i % 500),
            quantity: 1 + (i % 5) as u32,
            price_cents: (i % 10_000) as i64,
        })
        .unwrap();
        if i == EVENTS - 1 {
            repo(0).save(&mut root, &ctx).unwrap();
        } else if root.pending().len() == 100 {
            writer.save(&mut root, &ctx).unwrap();
        }
    }
    store.flush().unwrap();
    assert_eq!(root.version(), Some(EVENTS - 1));

    let replay = repo(0);
    let snap = repo(100);
    let check = |r: &Repository<Order, Arc<Store>>| {
        let loaded = r.load("big").unwrap().unwrap();
        assert_eq!(loaded.state(), root.state());
        assert_eq!(loaded.version(), Some(EVENTS - 1));
    };
    check(&replay);
    check(&snap);
    let time = |r: &Repository<Order, Arc<Store>>| {
        median(
            (0..7)
                .map(|_| {
                    let t = Instant::now();
                    let loaded = r.load("big").unwrap().unwrap();
                    let d = t.elapsed();
                    std::hint::black_box(loaded);
                    d
                })
                .collect(),
        )
    };
    let full = time(&replay);
    let with_snapshot = time(&snap);
    let stats = store.snapshot_stats().unwrap();
    let snapshot_bytes = store
        .load_snapshot("Order-big")
        .unwrap()
        .unwrap()
        .payload
        .len();
    println!(
        "10,000-event order: full replay {full:?}, snapshot at 9,899 + 100-event tail {with_snapshot:?} \
         (snapshot payload {snapshot_bytes} bytes); snapshot stats {stats:?}"
    );
}
