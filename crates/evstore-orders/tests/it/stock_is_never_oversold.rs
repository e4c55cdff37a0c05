//! Limited stock holds across all orders: concurrent adds to different orders reserve exactly
//! the stock and no more (the DCB append condition, not a stream, is the boundary); an add
//! that would oversell is refused with a typed error and writes nothing; products whose stock
//! was never set stay unlimited; the stock cannot be set below what orders reserve.

use std::sync::{Arc, Barrier};
use std::thread;

use evstore::repository::RepositoryError;
use evstore::{Durability, Options, Query, QueryItem, Store};
use evstore_orders::{OrderError, OrderService, ProductStock};

use crate::common::open;

const THREADS: usize = 16;
const ADDS_PER_THREAD: usize = 3;
const STOCK: u64 = 20;

/// `THREADS` threads, each with its own order, add one unit of "widget" `ADDS_PER_THREAD`
/// times at once. Returns (units that got in, refusals).
fn race(store: Arc<Store>) -> (u64, u64) {
    let orders = OrderService::new(store);
    orders.set_stock("widget", STOCK).unwrap();
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let orders = orders.clone();
            let barrier = barrier.clone();
            thread::spawn(move || {
                let id = orders.create_order(&format!("user-{t}")).unwrap();
                barrier.wait();
                let (mut ok, mut refused) = (0, 0);
                for _ in 0..ADDS_PER_THREAD {
                    match orders.add_item(&id, "widget", 1, 500) {
                        Ok(_) => ok += 1,
                        Err(RepositoryError::Domain(OrderError::OutOfStock {
                            product_id,
                            requested,
                            available,
                        })) => {
                            assert_eq!((product_id.as_str(), requested), ("widget", 1));
                            assert_eq!(available, 0, "refused while units were left");
                            refused += 1;
                        }
                        Err(other) => panic!("unexpected error: {other:?}"),
                    }
                }
                let order = orders.get_order(&id).unwrap().unwrap();
                assert_eq!(
                    order.items().len() as u64,
                    ok,
                    "only accepted lines are written"
                );
                (ok, refused)
            })
        })
        .collect();
    let (mut ok, mut refused) = (0, 0);
    for h in handles {
        let (o, r) = h.join().unwrap();
        ok += o;
        refused += r;
    }
    let stock = orders.product_stock("widget").unwrap();
    assert_eq!(stock.stock, Some(STOCK));
    assert_eq!(stock.reserved, ok);
    assert_eq!(stock.available(), Some(STOCK - ok));
    (ok, refused)
}

#[test]
fn concurrent_adds_to_different_orders_reserve_exactly_the_stock() {
    for durability in [Durability::Buffered, Durability::Sync] {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            Store::open_with(
                dir.path().join("stock.evs"),
                Options {
                    durability,
                    ..Options::default()
                },
            )
            .unwrap(),
        );
        let (ok, refused) = race(store.clone());
        let asked = (THREADS * ADDS_PER_THREAD) as u64;
        assert_eq!(ok, STOCK, "{durability:?}: exactly the stock got in");
        assert_eq!(refused, asked - STOCK, "{durability:?}");
        // What the log holds agrees: STOCK tagged reservations of the product, no more.
        let q = Query::new(vec![QueryItem::new(
            &["ItemAddedToOrder"],
            &["product:widget"],
        )]);
        let (added, _) = store.read_query(&q, None).unwrap();
        assert_eq!(added.len() as u64, STOCK, "{durability:?}");
        // And after a reopen (the tag index is rebuilt from the log).
        drop(store);
        let reopened = Arc::new(Store::open(dir.path().join("stock.evs")).unwrap());
        let stock = OrderService::new(reopened).product_stock("widget").unwrap();
        assert_eq!((stock.reserved, stock.available()), (STOCK, Some(0)));
    }
}

#[test]
fn an_add_that_would_oversell_is_refused_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let orders = OrderService::new(store.clone());
    let stock = orders.set_stock("lamp", 5).unwrap();
    assert_eq!(
        (stock.stock, stock.reserved, stock.available()),
        (Some(5), 0, Some(5))
    );

    let a = orders.create_order("alice").unwrap();
    let b = orders.create_order("bob").unwrap();
    orders.add_item(&a, "lamp", 3, 1999).unwrap();
    let head = store.head_position();
    let refused = orders.add_item(&b, "lamp", 3, 1999).unwrap_err();
    match &refused {
        RepositoryError::Domain(OrderError::OutOfStock {
            product_id,
            requested,
            available,
        }) => assert_eq!(
            (product_id.as_str(), *requested, *available),
            ("lamp", 3, 2)
        ),
        other => panic!("expected OutOfStock, got {other:?}"),
    }
    assert_eq!(
        refused.to_string(),
        "product \"lamp\" would be oversold: 3 requested, 2 available"
    );
    assert_eq!(store.head_position(), head, "a refusal writes nothing");
    assert!(orders.get_order(&b).unwrap().unwrap().items().is_empty());

    // Exactly what is left still fits; other products are not limited by it.
    orders.add_item(&b, "lamp", 2, 1999).unwrap();
    orders.add_item(&b, "bulb", 1000, 5).unwrap();
    let lamp = orders.product_stock("lamp").unwrap();
    assert_eq!((lamp.reserved, lamp.available()), (5, Some(0)));
    // Domain rules come first: an add to a missing order is NotFound, not OutOfStock.
    assert!(matches!(
        orders.add_item("nope", "lamp", 1, 1),
        Err(RepositoryError::Domain(OrderError::NotFound { .. }))
    ));
}

#[test]
fn products_whose_stock_was_never_set_stay_unlimited() {
    let dir = tempfile::tempdir().unwrap();
    let orders = OrderService::new(open(&dir));
    let id = orders.create_order("carol").unwrap();
    orders.add_item(&id, "pen", 1_000_000, 1).unwrap();
    orders.add_item(&id, "pen", u32::MAX, 0).unwrap();
    let pen = orders.product_stock("pen").unwrap();
    assert_eq!(pen.stock, None);
    assert_eq!(pen.available(), None);
    assert_eq!(pen.reserved, 1_000_000 + u64::from(u32::MAX));
}

#[test]
fn stock_cannot_be_set_below_what_orders_reserve_and_a_restock_lets_more_in() {
    let dir = tempfile::tempdir().unwrap();
    let orders = OrderService::new(open(&dir));
    // Reservations made while the product was unlimited count once it is limited.
    let id = orders.create_order("dave").unwrap();
    orders.add_item(&id, "mug", 4, 900).unwrap();
    match orders.set_stock("mug", 3) {
        Err(RepositoryError::Domain(OrderError::StockBelowReserved {
            product_id,
            stock,
            reserved,
        })) => assert_eq!((product_id.as_str(), stock, reserved), ("mug", 3, 4)),
        other => panic!("expected StockBelowReserved, got {other:?}"),
    }
    assert_eq!(orders.product_stock("mug").unwrap().stock, None);
    orders.set_stock("mug", 4).unwrap();
    assert!(matches!(
        orders.add_item(&id, "mug", 1, 900),
        Err(RepositoryError::Domain(OrderError::OutOfStock {
            available: 0,
            ..
        }))
    ));
    let restocked = orders.set_stock("mug", 6).unwrap();
    assert_eq!(restocked.available(), Some(2));
    orders.add_item(&id, "mug", 2, 900).unwrap();
    assert_eq!(orders.product_stock("mug").unwrap().available(), Some(0));
    assert!(matches!(
        orders.set_stock("", 1),
        Err(RepositoryError::Domain(OrderError::EmptyField { .. }))
    ));
    // The query is the whole boundary: stock set, reservations and releases of the product.
    let q = ProductStock::query("mug");
    assert_eq!(q.items().len(), 1);
    assert_eq!(q.items()[0].tags(), ["product:mug"]);
}

#[test]
fn a_stock_set_while_adds_of_the_unlimited_product_race_is_never_exceeded() {
    // Adds of a product with no stock condition only on its stock events: a stock set that
    // lands between an add's read and its append must fail that add's condition.
    let dir = tempfile::tempdir().unwrap();
    let orders = OrderService::new(open(&dir));
    const ADDERS: usize = 8;
    const ADDS: usize = 100;
    let handles: Vec<_> = (0..ADDERS)
        .map(|t| {
            let orders = orders.clone();
            thread::spawn(move || {
                let id = orders.create_order(&format!("adder-{t}")).unwrap();
                let mut ok = 0u64;
                for _ in 0..ADDS {
                    match orders.add_item(&id, "gadget", 1, 100) {
                        Ok(_) => ok += 1,
                        Err(RepositoryError::Domain(OrderError::OutOfStock { .. })) => {}
                        Err(other) => panic!("unexpected error: {other:?}"),
                    }
                    // Leave the stock setter room to get in while adds are still coming.
                    thread::sleep(std::time::Duration::from_micros(200));
                }
                ok
            })
        })
        .collect();
    // Limit the product while the adders run: 10 more than reserved at that moment.
    let limit = loop {
        let now = orders.product_stock("gadget").unwrap().reserved;
        if now < 20 {
            thread::yield_now();
            continue;
        }
        match orders.set_stock("gadget", now + 10) {
            Ok(set) => break set.stock.unwrap(),
            Err(RepositoryError::Domain(OrderError::StockBelowReserved { .. })) => continue,
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    };
    let ok: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    let stock = orders.product_stock("gadget").unwrap();
    assert_eq!(stock.reserved, ok);
    assert!(ok <= limit, "{ok} units reserved under a limit of {limit}");
    if (ADDERS * ADDS) as u64 > limit {
        assert_eq!(
            ok, limit,
            "the adders asked for more: exactly the limit got in"
        );
    }
}
