//! Codec comparison for domain payloads (issue #19): encode/decode speed and size of the Order
//! events, a 10,000-item order snapshot and an order-summaries projection state, for bincode
//! 2.0.1 (the legacy codec, reached through `evstore::testing`), MessagePack with named fields
//! (rmp-serde, evstore's current codec through `evstore::codec`), postcard, CBOR (ciborium) and
//! JSON (serde_json); plus whether each round-trips a struct using the serde attributes
//! applications write (`skip_serializing_if` + `default`).
//!
//! `cargo bench -p evstore-bench --bench codec` (a few seconds; `-- --test` runs one round).
//! Prints a markdown table; figures go to docs/PERFORMANCE.md.

use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use evstore::aggregate::Aggregate;
use evstore::codec::{self, Codec};
use evstore_orders::projections::OrderSummaries;
use evstore_orders::{ItemAddedToOrder, Order, OrderCreated, OrderEvent};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

struct Contender {
    name: &'static str,
    encode: fn(&dyn erased::Ser) -> Vec<u8>,
}

mod erased {
    //! Minimal type erasure: each contender encodes through serde.
    pub trait Ser {
        fn with_bincode(&self) -> Vec<u8>;
        fn with_current(&self) -> Vec<u8>;
        fn with_postcard(&self) -> Vec<u8>;
        fn with_cbor(&self) -> Vec<u8>;
        fn with_json(&self) -> Vec<u8>;
    }
    impl<T: serde::Serialize> Ser for T {
        fn with_bincode(&self) -> Vec<u8> {
            evstore::testing::encode_legacy_bincode(self).unwrap_or_default()
        }
        fn with_current(&self) -> Vec<u8> {
            evstore::codec::encode(self).unwrap_or_default()
        }
        fn with_postcard(&self) -> Vec<u8> {
            postcard::to_allocvec(self).unwrap_or_default()
        }
        fn with_cbor(&self) -> Vec<u8> {
            let mut out = Vec::new();
            let _ = ciborium::into_writer(self, &mut out);
            out
        }
        fn with_json(&self) -> Vec<u8> {
            serde_json::to_vec(self).unwrap_or_default()
        }
    }
}

fn decode_with<T: DeserializeOwned>(name: &str, bytes: &[u8]) -> Option<T> {
    match name {
        "bincode 2.0.1" => codec::decode_as(Codec::Bincode2, bytes).ok(),
        "MessagePack (rmp-serde, named)" => codec::decode_as(Codec::MessagePack, bytes).ok(),
        "postcard 1" => postcard::from_bytes(bytes).ok(),
        "CBOR (ciborium)" => ciborium::from_reader(bytes).ok(),
        "JSON (serde_json)" => serde_json::from_slice(bytes).ok(),
        _ => None,
    }
}

const CONTENDERS: [Contender; 5] = [
    Contender {
        name: "bincode 2.0.1",
        encode: |v| v.with_bincode(),
    },
    Contender {
        name: "MessagePack (rmp-serde, named)",
        encode: |v| v.with_current(),
    },
    Contender {
        name: "postcard 1",
        encode: |v| v.with_postcard(),
    },
    Contender {
        name: "CBOR (ciborium)",
        encode: |v| v.with_cbor(),
    },
    Contender {
        name: "JSON (serde_json)",
        encode: |v| v.with_json(),
    },
];

/// A state with the attributes users write: a field left out when empty, filled by default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct WithAttributes {
    id: u64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    note: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    total: i64,
}

fn at(s: i64) -> chrono::DateTime<Utc> {
    Utc.timestamp_opt(1_790_000_000 + s, 0)
        .single()
        .unwrap_or_default()
}

fn created() -> OrderCreated {
    OrderCreated {
        order_id: "5495c4ce-09b2-44ce-a084-0dd70d219c8f".into(),
        user_id: "user-41".into(),
        at: at(0),
    }
}

fn item_added() -> ItemAddedToOrder {
    ItemAddedToOrder {
        product_id: "espresso-beans-1kg".into(),
        quantity: 3,
        price_cents: 1899,
        at: at(1),
    }
}

fn big_order(items: usize) -> Order {
    let mut o = Order::default();
    o.apply(&OrderEvent::OrderCreated(created()));
    for i in 0..items {
        o.apply(&OrderEvent::ItemAddedToOrder(ItemAddedToOrder {
            product_id: format!("sku-{i}"),
            quantity: 1 + (i % 5) as u32,
            price_cents: 100 + (i % 3000) as i64,
            at: at(i as i64),
        }));
    }
    o
}

fn projection_state(orders: usize) -> OrderSummaries {
    use evstore::projection::Projection;
    let mut p = OrderSummaries::default();
    let mut position = 0u64;
    for o in 0..orders {
        let id = format!("order-{o}");
        let events = [
            OrderEvent::OrderCreated(OrderCreated {
                order_id: id.clone(),
                user_id: format!("user-{}", o % 50),
                at: at(o as i64),
            }),
            OrderEvent::ItemAddedToOrder(ItemAddedToOrder {
                product_id: "book".into(),
                quantity: 2,
                price_cents: 1250,
                at: at(o as i64),
            }),
        ];
        for (v, e) in events.iter().enumerate() {
            let recorded = evstore::RecordedEvent {
                event_id: evstore::new_event_id(),
                stream_id: Order::stream_id(&id),
                event_type: evstore::aggregate::DomainEvent::event_type(e).into(),
                version: v as u64,
                position,
                recorded_at: at(o as i64),
                data: evstore::aggregate::DomainEvent::encode(e).unwrap_or_default(),
                metadata: evstore::aggregate::EventMetadata {
                    schema_version:
                        <OrderEvent as evstore::aggregate::DomainEvent>::schema_version(
                            evstore::aggregate::DomainEvent::event_type(e),
                        )
                        .unwrap_or(1),
                    ..Default::default()
                }
                .encode()
                .unwrap_or_default(),
                tags: Vec::new(),
            };
            p.apply(&recorded);
            position += 1;
        }
    }
    p
}

/// Mean time per call of `f`, over rounds of at least `min` each.
fn time(min: Duration, mut f: impl FnMut()) -> Duration {
    let mut n = 0u32;
    let start = Instant::now();
    while start.elapsed() < min || n < 3 {
        f();
        n += 1;
    }
    start.elapsed() / n
}

fn row<T: Serialize + DeserializeOwned + PartialEq>(
    label: &str,
    value: &T,
    c: &Contender,
    min: Duration,
) {
    let bytes = (c.encode)(value);
    let back: Option<T> = decode_with(c.name, &bytes);
    let ok = back.as_ref() == Some(value);
    let enc = time(min, || {
        black_box((c.encode)(black_box(value)));
    });
    let dec = time(min, || {
        black_box(decode_with::<T>(c.name, black_box(&bytes)));
    });
    println!(
        "| {label} | {} | {} | {:.1} | {:.1} | {} |",
        c.name,
        bytes.len(),
        enc.as_secs_f64() * 1e6,
        dec.as_secs_f64() * 1e6,
        if ok { "yes" } else { "NO" }
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "--test");
    let min = if quick {
        Duration::from_millis(1)
    } else {
        Duration::from_millis(300)
    };
    let (created, item) = (created(), item_added());
    let order = big_order(10_000);
    let summaries = projection_state(if quick { 100 } else { 2_000 });
    let attrs = WithAttributes {
        id: 7,
        note: None,
        tags: vec![],
        total: 1250,
    };
    println!("| payload | codec | bytes | encode µs | decode µs | round trip |");
    println!("| --- | --- | ---: | ---: | ---: | --- |");
    for c in &CONTENDERS {
        row("OrderCreated event", &created, c, min);
    }
    for c in &CONTENDERS {
        row("ItemAddedToOrder event", &item, c, min);
    }
    for c in &CONTENDERS {
        row("order snapshot, 10,000 items", &order, c, min);
    }
    let label = format!(
        "order-summaries state, {} orders",
        if quick { 100 } else { 2_000 }
    );
    for c in &CONTENDERS {
        row(&label, &summaries, c, min);
    }
    for c in &CONTENDERS {
        row("struct with skip_serializing_if + default", &attrs, c, min);
    }
}
