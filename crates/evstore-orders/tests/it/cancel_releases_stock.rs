//! Cancelling an order gives its reserved units back: `OrderCancelled` (schema v2) lists and
//! is tagged with the products it releases, and the stock rule counts it. Shipped orders keep
//! theirs; legacy v1 cancellations release nothing.

use evstore::repository::RepositoryError;
use evstore::{Query, QueryItem};
use evstore_orders::{OrderError, OrderEvent, OrderService, StockRelease};

use crate::common::open;

#[test]
fn cancel_releases_what_the_order_reserved() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let orders = OrderService::new(store.clone());
    orders.set_stock("chair", 4).unwrap();

    let a = orders.create_order("alice").unwrap();
    orders.add_item(&a, "chair", 2, 4_000).unwrap();
    orders.add_item(&a, "chair", 1, 4_000).unwrap();
    orders.add_item(&a, "cushion", 2, 1_500).unwrap();
    let b = orders.create_order("bob").unwrap();
    assert!(matches!(
        orders.add_item(&b, "chair", 2, 4_000),
        Err(RepositoryError::Domain(OrderError::OutOfStock {
            available: 1,
            ..
        }))
    ));

    orders.confirm(&a).unwrap();
    orders.cancel(&a, "changed my mind").unwrap();
    assert_eq!(orders.product_stock("chair").unwrap().available(), Some(4));
    orders.add_item(&b, "chair", 2, 4_000).unwrap();
    assert_eq!(orders.product_stock("chair").unwrap().available(), Some(2));

    // The cancellation event lists the units per product and carries their tags.
    let q = Query::new(vec![QueryItem::new(
        &["OrderCancelled"],
        &["product:chair"],
    )]);
    let (cancelled, _) = store.read_query(&q, None).unwrap();
    assert_eq!(cancelled.len(), 1);
    assert_eq!(cancelled[0].stream_id, format!("Order-{a}"));
    assert_eq!(cancelled[0].tags, ["product:chair", "product:cushion"]);
    let (event, _) = orders.repository().decode_event(&cancelled[0]).unwrap();
    let OrderEvent::OrderCancelled(c) = event else {
        panic!("not a cancellation: {event:?}");
    };
    assert_eq!(
        c.released,
        [
            StockRelease {
                product_id: "chair".into(),
                quantity: 3
            },
            StockRelease {
                product_id: "cushion".into(),
                quantity: 2
            }
        ]
    );
}

#[test]
fn shipped_orders_keep_their_units_and_an_empty_cancel_releases_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let orders = OrderService::new(store.clone());
    orders.set_stock("desk", 2).unwrap();
    let a = orders.create_order("carol").unwrap();
    orders.add_item(&a, "desk", 2, 20_000).unwrap();
    orders.confirm(&a).unwrap();
    orders.ship(&a).unwrap();
    assert!(matches!(
        orders.cancel(&a, "too late"),
        Err(RepositoryError::Domain(
            OrderError::InvalidTransition { .. }
        ))
    ));
    assert_eq!(orders.product_stock("desk").unwrap().available(), Some(0));

    let empty = orders.create_order("dave").unwrap();
    orders.cancel(&empty, "nothing in it").unwrap();
    let last = store.read_stream(&format!("Order-{empty}"), 0).unwrap();
    let cancelled = last.last().unwrap();
    assert_eq!(cancelled.event_type, "OrderCancelled");
    assert!(cancelled.tags.is_empty());
    assert_eq!(orders.product_stock("desk").unwrap().available(), Some(0));
}
