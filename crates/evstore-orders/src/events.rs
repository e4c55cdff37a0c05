//! The Order events and their payloads (current schema versions).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use evstore::aggregate::DomainEvent;
use evstore::codec::{self, CodecError};

/// Payload of `OrderCreated` (schema version 1): the order exists from now on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCreated {
    /// The order id (the aggregate id).
    pub order_id: String,
    /// The customer.
    pub user_id: String,
    /// When the order was created.
    pub at: DateTime<Utc>,
}

/// Payload of `ItemAddedToOrder` (schema version 2): a line added to a pending order.
///
/// Version 1 stored `price: f64` in major units; see [`crate::upcasters`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemAddedToOrder {
    /// The product.
    pub product_id: String,
    /// How many units (> 0 when recorded by a command).
    pub quantity: u32,
    /// Unit price in cents (≥ 0 when recorded by a command).
    pub price_cents: i64,
    /// When the item was added.
    pub at: DateTime<Utc>,
}

/// Payload of `OrderConfirmed` (schema version 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderConfirmed {
    /// When the order was confirmed.
    pub at: DateTime<Utc>,
}

/// Payload of `OrderCancelled` (schema version 2): the order is cancelled and the units it
/// reserved go back to stock.
///
/// Version 1 had no `released`; the v1 → v2 upcaster ([`crate::upcasters`]) reads it with an
/// empty list (a v1 cancellation was written before stock reservations existed, and the
/// items it cancelled were never tagged, so it released nothing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCancelled {
    /// Why the order was cancelled.
    pub reason: String,
    /// When the order was cancelled.
    pub at: DateTime<Utc>,
    /// The units the cancellation gives back, one entry per product of the order (sorted by
    /// product id). The event is tagged with each product's [`product_tag`], so a product's
    /// stock query sees the release.
    #[serde(default)]
    pub released: Vec<StockRelease>,
}

/// Units of one product given back to stock by an [`OrderCancelled`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockRelease {
    /// The product.
    pub product_id: String,
    /// Units released (the sum of the order's lines of that product).
    pub quantity: u64,
}

/// Longest product id, in bytes: its tag ([`product_tag`], `product:` + the id) must fit the
/// store's 255-byte tag limit.
pub const MAX_PRODUCT_ID_LEN: usize = evstore::limits::MAX_NAME_LEN - "product:".len();

/// The tag of every event that reserves or releases units of `product_id`, or sets its stock:
/// `"product:<product_id>"` ([`evstore::query`]).
///
/// ```
/// assert_eq!(evstore_orders::product_tag("sku-1"), "product:sku-1");
/// ```
pub fn product_tag(product_id: &str) -> String {
    format!("product:{product_id}")
}

/// Payload of `OrderShipped` (schema version 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderShipped {
    /// When the order was shipped.
    pub at: DateTime<Utc>,
}

/// Payload of `OrderDelivered` (schema version 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderDelivered {
    /// When the order was delivered.
    pub at: DateTime<Utc>,
}

/// The events of an [`Order`](crate::Order). The stored event type of each variant is
/// its name (e.g. `"ItemAddedToOrder"`); payloads are encoded with [`evstore::codec`].
///
/// Tags ([`DomainEvent::tags`]): `ItemAddedToOrder` carries the [`product_tag`] of its product
/// (it reserves units), `OrderCancelled` the tags of the products it releases; the others
/// carry none. The stock rule of [`OrderService`](crate::OrderService) queries them.
///
/// ```
/// use evstore::aggregate::DomainEvent;
/// use evstore_orders::{OrderEvent, OrderShipped};
/// let e = OrderEvent::OrderShipped(OrderShipped { at: chrono::Utc::now() });
/// let bytes = e.encode().unwrap();
/// assert_eq!(OrderEvent::decode(e.event_type(), &bytes).unwrap(), e);
/// assert_eq!(OrderEvent::schema_version("ItemAddedToOrder"), Some(2));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderEvent {
    /// `"OrderCreated"`, schema version 1.
    OrderCreated(OrderCreated),
    /// `"ItemAddedToOrder"`, schema version 2.
    ItemAddedToOrder(ItemAddedToOrder),
    /// `"OrderConfirmed"`, schema version 1.
    OrderConfirmed(OrderConfirmed),
    /// `"OrderCancelled"`, schema version 2.
    OrderCancelled(OrderCancelled),
    /// `"OrderShipped"`, schema version 1.
    OrderShipped(OrderShipped),
    /// `"OrderDelivered"`, schema version 1.
    OrderDelivered(OrderDelivered),
}

impl OrderEvent {
    /// Stored event type of [`OrderEvent::OrderCreated`].
    pub const ORDER_CREATED: &'static str = "OrderCreated";
    /// Stored event type of [`OrderEvent::ItemAddedToOrder`].
    pub const ITEM_ADDED_TO_ORDER: &'static str = "ItemAddedToOrder";
    /// Stored event type of [`OrderEvent::OrderConfirmed`].
    pub const ORDER_CONFIRMED: &'static str = "OrderConfirmed";
    /// Stored event type of [`OrderEvent::OrderCancelled`].
    pub const ORDER_CANCELLED: &'static str = "OrderCancelled";
    /// Stored event type of [`OrderEvent::OrderShipped`].
    pub const ORDER_SHIPPED: &'static str = "OrderShipped";
    /// Stored event type of [`OrderEvent::OrderDelivered`].
    pub const ORDER_DELIVERED: &'static str = "OrderDelivered";

    /// Every event type of the Order aggregate with its current schema version.
    pub const SCHEMA_VERSIONS: [(&'static str, u16); 6] = [
        (Self::ORDER_CREATED, 1),
        (Self::ITEM_ADDED_TO_ORDER, 2),
        (Self::ORDER_CONFIRMED, 1),
        (Self::ORDER_CANCELLED, 2),
        (Self::ORDER_SHIPPED, 1),
        (Self::ORDER_DELIVERED, 1),
    ];

    /// When the event happened (the `at` of its payload).
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            OrderEvent::OrderCreated(e) => e.at,
            OrderEvent::ItemAddedToOrder(e) => e.at,
            OrderEvent::OrderConfirmed(e) => e.at,
            OrderEvent::OrderCancelled(e) => e.at,
            OrderEvent::OrderShipped(e) => e.at,
            OrderEvent::OrderDelivered(e) => e.at,
        }
    }
}

impl DomainEvent for OrderEvent {
    fn event_type(&self) -> &'static str {
        match self {
            OrderEvent::OrderCreated(_) => Self::ORDER_CREATED,
            OrderEvent::ItemAddedToOrder(_) => Self::ITEM_ADDED_TO_ORDER,
            OrderEvent::OrderConfirmed(_) => Self::ORDER_CONFIRMED,
            OrderEvent::OrderCancelled(_) => Self::ORDER_CANCELLED,
            OrderEvent::OrderShipped(_) => Self::ORDER_SHIPPED,
            OrderEvent::OrderDelivered(_) => Self::ORDER_DELIVERED,
        }
    }

    fn schema_version(event_type: &str) -> Option<u16> {
        Self::SCHEMA_VERSIONS
            .iter()
            .find(|(ty, _)| *ty == event_type)
            .map(|(_, v)| *v)
    }

    fn encode(&self) -> Result<Vec<u8>, CodecError> {
        match self {
            OrderEvent::OrderCreated(e) => codec::encode(e),
            OrderEvent::ItemAddedToOrder(e) => codec::encode(e),
            OrderEvent::OrderConfirmed(e) => codec::encode(e),
            OrderEvent::OrderCancelled(e) => codec::encode(e),
            OrderEvent::OrderShipped(e) => codec::encode(e),
            OrderEvent::OrderDelivered(e) => codec::encode(e),
        }
    }

    fn tags(&self) -> Vec<String> {
        match self {
            OrderEvent::ItemAddedToOrder(e) => vec![product_tag(&e.product_id)],
            OrderEvent::OrderCancelled(e) => e
                .released
                .iter()
                .map(|r| product_tag(&r.product_id))
                .collect(),
            _ => Vec::new(),
        }
    }

    fn decode(event_type: &str, payload: &[u8]) -> Result<Self, CodecError> {
        Ok(match event_type {
            Self::ORDER_CREATED => OrderEvent::OrderCreated(codec::decode(payload)?),
            Self::ITEM_ADDED_TO_ORDER => OrderEvent::ItemAddedToOrder(codec::decode(payload)?),
            Self::ORDER_CONFIRMED => OrderEvent::OrderConfirmed(codec::decode(payload)?),
            Self::ORDER_CANCELLED => OrderEvent::OrderCancelled(codec::decode(payload)?),
            Self::ORDER_SHIPPED => OrderEvent::OrderShipped(codec::decode(payload)?),
            Self::ORDER_DELIVERED => OrderEvent::OrderDelivered(codec::decode(payload)?),
            other => {
                return Err(CodecError::Decode(format!(
                    "unknown Order event type {other:?}"
                )))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_round_trips_under_its_stable_name() {
        let at = Utc::now();
        let events = [
            OrderEvent::OrderCreated(OrderCreated {
                order_id: "o1".into(),
                user_id: "u1".into(),
                at,
            }),
            OrderEvent::ItemAddedToOrder(ItemAddedToOrder {
                product_id: "p".into(),
                quantity: 3,
                price_cents: 1250,
                at,
            }),
            OrderEvent::OrderConfirmed(OrderConfirmed { at }),
            OrderEvent::OrderCancelled(OrderCancelled {
                reason: "why".into(),
                at,
                released: vec![StockRelease {
                    product_id: "p".into(),
                    quantity: 3,
                }],
            }),
            OrderEvent::OrderShipped(OrderShipped { at }),
            OrderEvent::OrderDelivered(OrderDelivered { at }),
        ];
        let names: Vec<_> = events.iter().map(DomainEvent::event_type).collect();
        assert_eq!(
            names,
            [
                "OrderCreated",
                "ItemAddedToOrder",
                "OrderConfirmed",
                "OrderCancelled",
                "OrderShipped",
                "OrderDelivered"
            ]
        );
        for e in &events {
            let back = OrderEvent::decode(e.event_type(), &e.encode().unwrap()).unwrap();
            assert_eq!(&back, e);
            assert_eq!(back.at(), at);
            assert!(OrderEvent::schema_version(e.event_type()).is_some());
        }
        assert_eq!(OrderEvent::schema_version("ItemAddedToOrder"), Some(2));
        assert_eq!(OrderEvent::schema_version("OrderCancelled"), Some(2));
        assert_eq!(OrderEvent::schema_version("Nope"), None);
        assert_eq!(events[1].tags(), ["product:p"]);
        assert_eq!(events[3].tags(), ["product:p"]);
        assert!(events[0].tags().is_empty());
        assert!(OrderEvent::decode("Nope", &[]).is_err());
    }
}
