//! Measurement (ignored by default; run in release):
//! `cargo test --release --test projection_catch_up_speed -- --ignored --nocapture`
//!
//! Catch-up speed of a projection rebuilding from zero over 200,000 order events.

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use evstore::aggregate::{DomainEvent, EventMetadata};
use evstore::projection::{Projection, ProjectionRunner};
use evstore::{Durability, ExpectedVersion, NewEvent, Options, RecordedEvent, Store};
use evstore_orders::projections::OrderSummaries;
use evstore_orders::{ItemAddedToOrder, OrderConfirmed, OrderCreated, OrderEvent};
use serde::{Deserialize, Serialize};

const ORDERS: usize = 40_000; // 5 events each: 200,000 events

fn domain_event(e: &OrderEvent) -> NewEvent {
    let meta = EventMetadata {
        schema_version: OrderEvent::schema_version(e.event_type()).unwrap(),
        ..EventMetadata::default()
    };
    NewEvent::new(e.event_type(), e.encode().unwrap()).with_metadata(meta.encode().unwrap())
}

#[derive(Default, Serialize, Deserialize)]
struct Count(u64);
impl Projection for Count {
    const NAME: &'static str = "count";
    const VERSION: u32 = 1;
    fn apply(&mut self, _: &RecordedEvent) {
        self.0 += 1;
    }
}

#[test]
#[ignore = "measurement; run in release with --ignored --nocapture"]
fn projection_catch_up_speed_over_200k_events() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        Store::open_with(
            dir.path().join("speed.evs"),
            Options {
                durability: Durability::Buffered,
                ..Options::default()
            },
        )
        .unwrap(),
    );
    let at = Utc::now();
    for o in 0..ORDERS {
        let order_id = format!("o{o}");
        let mut events = vec![domain_event(&OrderEvent::OrderCreated(OrderCreated {
            order_id: order_id.clone(),
            user_id: format!("u{}", o % 1_000),
            at,
        }))];
        for k in 0..3 {
            events.push(domain_event(&OrderEvent::ItemAddedToOrder(
                ItemAddedToOrder {
                    product_id: format!("p{k}"),
                    quantity: 1 + k,
                    price_cents: 995,
                    at,
                },
            )));
        }
        events.push(domain_event(&OrderEvent::OrderConfirmed(OrderConfirmed {
            at,
        })));
        store
            .append(
                &format!("Order-{order_id}"),
                ExpectedVersion::NoStream,
                &events,
            )
            .unwrap();
    }
    store.flush().unwrap();
    let total = store.head_position().unwrap() + 1;
    assert_eq!(total, (ORDERS * 5) as u64);

    let t = Instant::now();
    let mut count = ProjectionRunner::<Count, _>::open_beside(store.clone()).unwrap();
    count.catch_up().unwrap();
    let dt_count = t.elapsed();
    assert_eq!(count.handle().read(|c| c.0), total);

    let t = Instant::now();
    let mut orders = ProjectionRunner::<OrderSummaries, _>::open_beside(store.clone()).unwrap();
    orders.catch_up().unwrap();
    let dt_orders = t.elapsed();
    assert_eq!(orders.handle().read(|p| p.order_count()), ORDERS);
    let cp_len = std::fs::metadata(orders.checkpoint_file()).unwrap().len();

    // Restart from the checkpoint: load time.
    let t = Instant::now();
    let mut again = ProjectionRunner::<OrderSummaries, _>::open_beside(store.clone()).unwrap();
    assert_eq!(again.catch_up().unwrap(), 0);
    let dt_load = t.elapsed();

    let rate = |d: std::time::Duration| total as f64 / d.as_secs_f64();
    println!(
        "catch-up over {total} events: counting projection {:?} ({:.0} events/s); \
         OrderSummaries {:?} ({:.0} events/s, decode + upcast check + apply + final \
         checkpoint of {cp_len} bytes); restart from checkpoint {:?}",
        dt_count,
        rate(dt_count),
        dt_orders,
        rate(dt_orders),
        dt_load
    );
}
