//! The Order domain on a log written before tags existed (format version 1, the checked-in
//! fixture): new orders, items and cancellations of legacy orders work — their events are
//! stored without tags — while setting a stock limit, which is enforced with tags, is refused
//! with a clear error and writes nothing.

use std::path::Path;

use evstore::repository::RepositoryError;
use evstore::{EventStorage, Store};
use evstore_orders::{OrderError, OrderService, OrderStatus};

#[test]
fn orders_work_and_stock_limits_are_refused_on_a_version_1_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.evs");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/orders_v1.evs"),
        &path,
    )
    .unwrap();
    let store = Store::open(&path).unwrap();
    assert_eq!(store.format_version(), 1);
    assert!(!EventStorage::supports_tags(&store));
    let head = store.head_position();
    let svc = OrderService::new(store);

    // A stock limit cannot be enforced here: refused, nothing written.
    match svc.set_stock("lamp", 3) {
        Err(RepositoryError::Domain(OrderError::StockNeedsTags { product_id })) => {
            assert_eq!(product_id, "lamp");
        }
        other => panic!("expected StockNeedsTags, got {other:?}"),
    }
    assert_eq!(svc.repository().storage().head_position(), head);
    assert_eq!(svc.product_stock("lamp").unwrap().stock, None, "unlimited");

    // Orders keep working: a new one, an item, a cancellation of a legacy order with items.
    let id = svc.create_order("dave").unwrap();
    let o = svc.add_item(&id, "lamp", 2, 1999).unwrap();
    assert_eq!(o.total_cents(), 3998);
    let cancelled = svc.cancel("mixed-3", "changed my mind").unwrap();
    assert_eq!(cancelled.status(), OrderStatus::Cancelled);
    let all: Vec<_> = svc
        .repository()
        .storage()
        .read_all(0)
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(all.iter().all(|e| e.tags.is_empty()), "stored without tags");
}
