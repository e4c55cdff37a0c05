//! Legacy `ItemAddedToOrder` v1 events (float prices) in a committed log load through the
//! Order upcasters with exact cents; without the upcasters loading fails with an error naming
//! the event type and the schema version.
//!
//! The fixture `tests/fixtures/orders_v1.evs` is written by the ignored test `regenerate`:
//! `cargo test --test order_upcast_v1_fixture -- --ignored regenerate`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use evstore::aggregate::{DomainEvent, EventMetadata};
use evstore::repository::{Repository, RepositoryError};
use evstore::upcast::UpcastError;
use evstore::{ExpectedVersion, NewEvent, Options, Store};
use evstore_orders::{
    ItemAddedToOrder, ItemAddedToOrderV1, Order, OrderCancelledV1, OrderConfirmed, OrderCreated,
    OrderEvent, OrderService, OrderShipped, OrderStatus,
};
use uuid::Uuid;

fn fixture_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/orders_v1.evs")
}

fn at(day: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2023, 3, day, 10, minute, 0).unwrap()
}

/// One event of the fixture: type, payload, schema version written in its metadata.
struct Legacy {
    event_type: &'static str,
    payload: Vec<u8>,
    schema_version: u16,
}

fn v1_item(product_id: &str, quantity: u32, price: f64, at: DateTime<Utc>) -> Legacy {
    Legacy {
        event_type: "ItemAddedToOrder",
        payload: evstore::codec::encode(&ItemAddedToOrderV1 {
            product_id: product_id.into(),
            quantity,
            price,
            at,
        })
        .unwrap(),
        schema_version: 1,
    }
}

fn current(event: OrderEvent) -> Legacy {
    Legacy {
        event_type: event.event_type(),
        payload: event.encode().unwrap(),
        schema_version: OrderEvent::schema_version(event.event_type()).unwrap(),
    }
}

fn created(id: &str, user: &str, day: u32) -> Legacy {
    current(OrderEvent::OrderCreated(OrderCreated {
        order_id: id.into(),
        user_id: user.into(),
        at: at(day, 0),
    }))
}

/// The fixture's content: (order id, its events).
fn fixture_orders() -> Vec<(&'static str, Vec<Legacy>)> {
    vec![
        (
            "legacy-1",
            vec![
                created("legacy-1", "alice", 1),
                v1_item("book", 2, 12.5, at(1, 1)),
                v1_item("pen", 3, 0.1 + 0.2, at(1, 2)),
                v1_item("ink", 1, 1.005, at(1, 3)),
                v1_item("sticker", 1, 0.0, at(1, 4)),
                current(OrderEvent::OrderConfirmed(OrderConfirmed { at: at(1, 5) })),
                current(OrderEvent::OrderShipped(OrderShipped { at: at(1, 6) })),
            ],
        ),
        (
            "legacy-2",
            vec![
                created("legacy-2", "bob", 2),
                v1_item("lamp", 1, 19.99, at(2, 1)),
                v1_item("bulb", 4, 2.675, at(2, 2)),
                Legacy {
                    event_type: "OrderCancelled",
                    payload: evstore::codec::encode(&OrderCancelledV1 {
                        reason: "out of stock".into(),
                        at: at(2, 3),
                    })
                    .unwrap(),
                    schema_version: 1,
                },
            ],
        ),
        (
            "mixed-3",
            vec![
                created("mixed-3", "carol", 3),
                v1_item("old", 1, 7.25, at(3, 1)),
                current(OrderEvent::ItemAddedToOrder(ItemAddedToOrder {
                    product_id: "new".into(),
                    quantity: 1,
                    price_cents: 1234,
                    at: at(3, 2),
                })),
                current(OrderEvent::OrderConfirmed(OrderConfirmed { at: at(3, 3) })),
            ],
        ),
    ]
}

#[test]
#[ignore = "writes tests/fixtures/orders_v1.evs; run with --ignored regenerate"]
fn regenerate() {
    let path = fixture_path();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    for p in [path.clone(), path.with_extension("evs.snap")] {
        let _ = std::fs::remove_file(p);
    }
    let store = Store::open_with(
        &path,
        Options {
            segment_size: 64 * 1024,
            ..Default::default()
        },
    )
    .unwrap();
    for (id, events) in fixture_orders() {
        let stream = format!("Order-{id}");
        for (version, e) in events.into_iter().enumerate() {
            let meta = EventMetadata {
                schema_version: e.schema_version,
                ..EventMetadata::default()
            };
            let event = NewEvent::new(e.event_type, e.payload)
                .with_metadata(meta.encode().unwrap())
                .with_id(Uuid::new_v5(
                    &Uuid::NAMESPACE_OID,
                    format!("evstore/orders_v1/{stream}/{version}").as_bytes(),
                ));
            let expected = match version {
                0 => ExpectedVersion::NoStream,
                v => ExpectedVersion::Exact(v as u64 - 1),
            };
            store.append(&stream, expected, &[event]).unwrap();
        }
    }
    store.close().unwrap();
    assert!(!path.with_extension("evs.snap").exists());
}

/// A private copy of the fixture (opening a store may write to it).
fn copy_fixture() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orders_v1.evs");
    std::fs::copy(fixture_path(), &path).unwrap();
    (dir, path)
}

fn lines(o: &Order) -> Vec<(&str, u32, i64)> {
    o.items()
        .iter()
        .map(|i| (i.product_id.as_str(), i.quantity, i.price_cents))
        .collect()
}

#[test]
fn fixture_is_small_and_holds_v1_events() {
    let len = std::fs::metadata(fixture_path()).unwrap().len();
    assert!(len <= 128 * 1024, "fixture is {len} bytes");
    let (_dir, path) = copy_fixture();
    let store = Store::open(&path).unwrap();
    let v1_items = store
        .read_by_type("ItemAddedToOrder", None)
        .unwrap()
        .into_iter()
        .filter(|e| EventMetadata::decode(&e.metadata).unwrap().schema_version == 1)
        .count();
    assert_eq!(v1_items, 7);
    assert_eq!(store.head_position(), Some(14));
}

#[test]
fn v1_items_load_through_the_upcaster_with_exact_cents() {
    let original = std::fs::read(fixture_path()).unwrap();
    let (_dir, path) = copy_fixture();
    let store = Arc::new(Store::open(&path).unwrap());
    let svc = OrderService::new(store.clone());

    let o = svc.get_order("legacy-1").unwrap().unwrap();
    assert_eq!(
        lines(&o),
        [
            ("book", 2, 1250),
            ("pen", 3, 30),
            ("ink", 1, 101),
            ("sticker", 1, 0)
        ]
    );
    assert_eq!(o.total_cents(), 2 * 1250 + 3 * 30 + 101);
    assert_eq!((o.user_id(), o.status()), ("alice", OrderStatus::Shipped));
    assert_eq!(
        (o.created_at(), o.updated_at()),
        (Some(at(1, 0)), Some(at(1, 6)))
    );

    let o = svc.get_order("legacy-2").unwrap().unwrap();
    assert_eq!(lines(&o), [("lamp", 1, 1999), ("bulb", 4, 268)]);
    assert_eq!(o.total_cents(), 1999 + 4 * 268);
    assert_eq!(o.status(), OrderStatus::Cancelled);
    assert_eq!(o.cancel_reason(), Some("out of stock"));

    let o = svc.get_order("mixed-3").unwrap().unwrap();
    assert_eq!(lines(&o), [("old", 1, 725), ("new", 1, 1234)]);
    assert_eq!(o.total_cents(), 1959);

    // History shows the stored schema version and the upcast event.
    let h = svc.history("legacy-1").unwrap();
    assert_eq!(h[1].metadata.schema_version, 1);
    assert_eq!(
        h[1].event,
        OrderEvent::ItemAddedToOrder(ItemAddedToOrder {
            product_id: "book".into(),
            quantity: 2,
            price_cents: 1250,
            at: at(1, 1)
        })
    );
    assert_eq!(
        svc.load_at_version("legacy-1", 2)
            .unwrap()
            .unwrap()
            .total_cents(),
        2590
    );

    // Legacy orders keep working: new events are written at the current schema, and a
    // snapshot of the upcast state loads the same.
    let svc = svc.with_snapshot_every(1);
    let delivered = svc.deliver("legacy-1").unwrap();
    assert_eq!(delivered.status(), OrderStatus::Delivered);
    assert_eq!(svc.get_order("legacy-1").unwrap().unwrap(), delivered);
    assert!(store.snapshot_stats().unwrap().used >= 1);

    // The committed fixture was not touched.
    assert_eq!(std::fs::read(fixture_path()).unwrap(), original);
}

#[test]
fn without_upcasters_v1_items_fail_naming_type_and_version() {
    let (_dir, path) = copy_fixture();
    let store = Arc::new(Store::open(&path).unwrap());
    let bare = Repository::<Order, _>::new(store.clone()).with_snapshot_every(0);
    let err = bare.load("legacy-1").unwrap_err();
    assert!(
        matches!(
            &err,
            RepositoryError::Upcast { source: UpcastError::Missing { name, from_version: 1, current_version: 2, .. }, .. }
                if name == "ItemAddedToOrder"
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("ItemAddedToOrder") && msg.contains("version 1"),
        "{msg}"
    );
    // Every read path refuses the same way, for every order holding v1 items.
    for id in ["legacy-2", "mixed-3"] {
        assert!(matches!(
            bare.history(id),
            Err(RepositoryError::Upcast { .. })
        ));
        assert!(matches!(
            bare.load_at_version(id, 1),
            Err(RepositoryError::Upcast { .. })
        ));
    }
    // Before the first v1 item, nothing needs upcasting.
    let created = bare.load_at_version("legacy-1", 0).unwrap().unwrap();
    assert_eq!(created.state().user_id(), "alice");
    drop(store);
}
