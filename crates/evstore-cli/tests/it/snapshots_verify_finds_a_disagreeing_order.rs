//! `evstore snapshots verify FILE` replays every Order that has a snapshot: exit 0 when all
//! agree; a snapshot planted with another order's state (current envelope and fingerprint, so
//! loads would trust it) is named and the exit code is 3.

use std::path::Path;
use std::sync::Arc;

use crate::common::cli::{evstore, stderr, stdout};
use evstore::aggregate::{Aggregate, CommandContext};
use evstore::repository::Repository;
use evstore::Store;
use evstore_orders::{upcasters, Order, OrderCommand};

fn orders(path: &Path) -> (Arc<Store>, Repository<Order, Arc<Store>>) {
    let store = Arc::new(Store::open(path).unwrap());
    let repo = Repository::new(store.clone())
        .with_snapshot_every(2)
        .with_upcasters(Arc::new(upcasters()));
    (store, repo)
}

#[test]
fn snapshots_verify_reports_a_planted_disagreement_with_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.evs");
    {
        let (_, repo) = orders(&path);
        let ctx = CommandContext::new_request();
        for (id, price) in [("o1", 100), ("o2", 250), ("o3", 7)] {
            let create = OrderCommand::Create {
                order_id: id.into(),
                user_id: "alice".into(),
            };
            repo.execute(id, &create, &ctx, 3).unwrap();
            let add = OrderCommand::AddItem {
                product_id: "book".into(),
                quantity: 1,
                price_cents: price,
            };
            repo.execute(id, &add, &ctx, 3).unwrap();
        }
    }
    let p = path.to_str().unwrap();
    let clean = evstore(dir.path(), &["snapshots", "verify", p]);
    assert_eq!(clean.status.code(), Some(0), "{}", stderr(&clean));
    assert!(
        stdout(&clean).contains("3 orders, 3 snapshots: 3 agree with a replay, 0 differ"),
        "{}",
        stdout(&clean)
    );

    {
        // o2's snapshot (version 1) gets o1's state.
        let (store, repo) = orders(&path);
        let o1 = repo.load("o1").unwrap().unwrap();
        let o2 = repo.load("o2").unwrap().unwrap();
        let mut payload = vec![0xFF, 0xFF, 0x82];
        payload.extend(Order::SNAPSHOT_VERSION.to_le_bytes());
        payload.extend(repo.upcaster_fingerprint().to_le_bytes());
        payload.extend(evstore::codec::encode(o1.state()).unwrap());
        store
            .save_snapshot("Order-o2", 1, o2.last_event_id().unwrap(), &payload)
            .unwrap();
        assert_eq!(repo.load("o2").unwrap().unwrap().state(), o1.state());
    }
    let found = evstore(dir.path(), &["snapshots", "verify", p]);
    assert_eq!(found.status.code(), Some(3), "{}", stderr(&found));
    let text = stdout(&found);
    assert!(text.contains("differs   order o2"), "{text}");
    assert!(
        !text.contains("order o1") && !text.contains("order o3"),
        "{text}"
    );
    assert!(text.contains("2 agree with a replay, 1 differ"), "{text}");
}
