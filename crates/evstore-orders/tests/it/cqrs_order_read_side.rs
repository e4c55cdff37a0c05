//! CQRS over orders: commands through the service, queries from the projection only; the
//! projection agrees with the aggregates; inline mode reads its own writes; an asynchronous
//! runner reads them after waiting for the command's position.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::common::open;
use evstore::projection::{InlineProjection, ProjectionRunner};
use evstore::subscription::StopHandle;
use evstore::Store;
use evstore_orders::cqrs::{
    AddItem, CancelOrder, CommandHandler, ConfirmOrder, CreateOrder, DeliverOrder, GetOrderSummary,
    GetUserOrders, OrderCommands, OrderQueries, QueryHandler, ShipOrder,
};
use evstore_orders::projections::OrderSummaries;
use evstore_orders::{OrderService, OrderStatus};

#[test]
fn inline_projection_reads_its_own_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let inline =
        Arc::new(InlineProjection::<OrderSummaries, _>::open_beside(store.clone()).unwrap());
    let commands = OrderCommands::new(OrderService::new(inline.clone()));
    let queries = OrderQueries::new(inline.handle());

    let id = commands
        .handle(&CreateOrder {
            order_id: Some("o-1".into()),
            user_id: "u1".into(),
        })
        .unwrap()
        .order_id;
    // Every query right after a command already sees it: no waiting.
    let get = |q: &OrderQueries| {
        q.query(&GetOrderSummary {
            order_id: id.clone(),
        })
        .unwrap()
    };
    assert_eq!(get(&queries).status, OrderStatus::Pending);
    commands
        .handle(&AddItem {
            order_id: id.clone(),
            product_id: "book".into(),
            quantity: 2,
            price_cents: 1_250,
        })
        .unwrap();
    let s = get(&queries);
    assert_eq!(
        (s.total_cents, s.item_count, s.line_count, s.version),
        (2_500, 2, 1, 1)
    );
    let ack = commands
        .handle(&ConfirmOrder {
            order_id: id.clone(),
        })
        .unwrap();
    assert_eq!(get(&queries).status, OrderStatus::Confirmed);
    assert!(queries.next_position() > ack.position);
    commands
        .handle(&ShipOrder {
            order_id: id.clone(),
        })
        .unwrap();
    commands
        .handle(&DeliverOrder {
            order_id: id.clone(),
        })
        .unwrap();
    let s = get(&queries);
    assert_eq!((s.status, s.version), (OrderStatus::Delivered, 4));
    assert!(s.updated_at >= s.created_at);

    // A refused command changes nothing.
    assert!(commands
        .handle(&CancelOrder {
            order_id: id.clone(),
            reason: "late".into()
        })
        .is_err());
    assert_eq!(get(&queries).status, OrderStatus::Delivered);
}

#[test]
fn async_runner_serves_queries_and_matches_the_aggregates() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let commands = OrderCommands::new(OrderService::new(store.clone()));
    let runner = ProjectionRunner::<OrderSummaries, _>::open_beside(store.clone()).unwrap();
    let queries = OrderQueries::new(runner.handle());
    let stop = StopHandle::new();
    let runner_thread = {
        let stop = stop.clone();
        let mut runner = runner.with_checkpoint_every(50);
        thread::spawn(move || {
            runner.run_until(&stop).unwrap();
            runner
        })
    };

    // Several writers, several users.
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let commands = commands.clone();
            thread::spawn(move || {
                let mut ids = Vec::new();
                for i in 0..30u32 {
                    let user = format!("user-{}", i % 4);
                    let ack = commands
                        .handle(&CreateOrder {
                            order_id: Some(format!("w{w}-{i}")),
                            user_id: user,
                        })
                        .unwrap();
                    for k in 0..(i % 3 + 1) {
                        commands
                            .handle(&AddItem {
                                order_id: ack.order_id.clone(),
                                product_id: format!("p{k}"),
                                quantity: k + 1,
                                price_cents: i64::from(100 * (i + 1)),
                            })
                            .unwrap();
                    }
                    match i % 5 {
                        0 => {
                            commands
                                .handle(&CancelOrder {
                                    order_id: ack.order_id.clone(),
                                    reason: "changed my mind".into(),
                                })
                                .unwrap();
                        }
                        1 | 2 => {
                            commands
                                .handle(&ConfirmOrder {
                                    order_id: ack.order_id.clone(),
                                })
                                .unwrap();
                        }
                        _ => {}
                    }
                    ids.push(ack.order_id);
                }
                ids
            })
        })
        .collect();
    let ids: Vec<String> = writers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();

    // Read-your-writes on the async runner: wait for the last position, then query.
    let ack = commands
        .handle(&CreateOrder {
            order_id: Some("last".into()),
            user_id: "user-0".into(),
        })
        .unwrap();
    assert!(queries.wait_for(ack.position, Duration::from_secs(10)));
    let service = commands.service();
    for id in ids.iter().chain(std::iter::once(&ack.order_id)) {
        let order = service.get_order(id).unwrap().unwrap();
        let s = queries
            .query(&GetOrderSummary {
                order_id: id.clone(),
            })
            .unwrap();
        assert_eq!(s.status, order.status(), "{id}");
        assert_eq!(s.total_cents, order.total_cents(), "{id}");
        assert_eq!(s.user_id, order.user_id());
        assert_eq!(s.line_count as usize, order.items().len());
        assert_eq!(
            s.item_count,
            order
                .items()
                .iter()
                .map(|i| u64::from(i.quantity))
                .sum::<u64>()
        );
        assert_eq!(s.cancel_reason.as_deref(), order.cancel_reason());
        assert_eq!(Some(s.created_at), order.created_at());
        assert_eq!(Some(s.updated_at), order.updated_at());
    }
    // Newest first, per user.
    let mine = queries.query(&GetUserOrders {
        user_id: "user-0".into(),
    });
    assert_eq!(mine[0].order_id, "last");
    assert_eq!(mine.len(), 1 + 3 * 8);
    assert!(mine
        .windows(2)
        .all(|w| w[0].created_position > w[1].created_position));
    assert!(queries
        .query(&GetUserOrders {
            user_id: "nobody".into()
        })
        .is_empty());

    stop.stop();
    let runner = runner_thread.join().unwrap();
    // The final checkpoint lets a restarted runner resume with an equal state.
    let expected = runner.handle().read(OrderSummaries::clone);
    drop(runner);
    let mut again = ProjectionRunner::<OrderSummaries, _>::open_beside(store.clone()).unwrap();
    assert!(again.stats().resumed_from.is_some());
    again.catch_up().unwrap();
    assert_eq!(again.handle().read(OrderSummaries::clone), expected);
    assert_eq!(expected.skipped(), 0);
}

#[test]
fn legacy_v1_items_are_upcast_on_the_read_side() {
    // The fixture log holds ItemAddedToOrder v1 events (float prices).
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/orders_v1.evs");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("v1.evs");
    std::fs::copy(&fixture, &log).unwrap();
    let store = Arc::new(Store::open(&log).unwrap());
    let service = OrderService::new(store.clone());
    let mut runner = ProjectionRunner::<OrderSummaries, _>::open_beside(store.clone()).unwrap();
    runner.catch_up().unwrap();
    let p = runner.handle().read(OrderSummaries::clone);
    assert!(p.order_count() > 0);
    assert_eq!(p.skipped(), 0);
    for e in store.read_all(0) {
        let e = e.unwrap();
        if let Some(id) = e.stream_id.strip_prefix("Order-") {
            let order = service.get_order(id).unwrap().unwrap();
            assert_eq!(
                p.get_order_summary(id).unwrap().total_cents,
                order.total_cents()
            );
        }
    }
}
