//! Limited stock: the one rule that spans orders, enforced with a Dynamic Consistency
//! Boundary ([`evstore::query`]).
//!
//! A product's stock is set by [`ProductStockSet`] (stream `"Product-<id>"`). Every
//! `ItemAddedToOrder` of the product reserves its quantity, every `OrderCancelled` gives back
//! the units it lists in `released`. All three are tagged [`product_tag`]`(id)`, so one
//! [`Query`] ([`ProductStock::query`]) reads everything the rule depends on, whatever order
//! stream it is in:
//!
//! `available = stock − Σ ItemAddedToOrder.quantity + Σ OrderCancelled.released.quantity`
//!
//! (reserved units never go below zero). A product without a `ProductStockSet` is unlimited:
//! an add of it reads and conditions on [`ProductStock::limit_query`] only (the product's
//! `ProductStockSet` events, none so far), so it does not read every reservation of a popular
//! product; a stock set concurrently makes its condition fail and it decides again.
//! The decision is made by [`OrderService`](crate::OrderService): it reads the query, decides,
//! and appends with [`EventStorage::append_if`](evstore::EventStorage::append_if) conditioned
//! on the same query after the head position it read, so two orders racing for the last unit
//! can never both get it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use evstore::aggregate::DomainEvent;
use evstore::codec::{self, CodecError};
use evstore::repository::{decode_recorded, DecodeFailure, RepositoryError};
use evstore::upcast::Upcasters;
use evstore::{Query, QueryItem, RecordedEvent};

use super::events::{product_tag, OrderEvent};
use super::state::OrderError;

/// Stream prefix of a product's stock events (`"Product-<product id>"`).
pub const PRODUCT_STREAM_PREFIX: &str = "Product-";

/// Payload of `ProductStockSet` (schema version 1): from now on the product has `stock`
/// units for sale in total, reserved or not (a restock sets a higher number).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductStockSet {
    /// The product.
    pub product_id: String,
    /// Units for sale in total (reserved ones included).
    pub stock: u64,
    /// When the stock was set.
    pub at: DateTime<Utc>,
}

/// The events of a product's stream (`"Product-<id>"`), tagged [`product_tag`].
///
/// ```
/// use evstore::aggregate::DomainEvent;
/// use evstore_orders::{ProductEvent, ProductStockSet};
/// let e = ProductEvent::ProductStockSet(ProductStockSet {
///     product_id: "lamp".into(), stock: 5, at: chrono::Utc::now(),
/// });
/// assert_eq!(e.tags(), ["product:lamp"]);
/// assert_eq!(ProductEvent::decode(e.event_type(), &e.encode().unwrap()).unwrap(), e);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProductEvent {
    /// `"ProductStockSet"`, schema version 1.
    ProductStockSet(ProductStockSet),
}

impl ProductEvent {
    /// Stored event type of [`ProductEvent::ProductStockSet`].
    pub const PRODUCT_STOCK_SET: &'static str = "ProductStockSet";
}

impl DomainEvent for ProductEvent {
    fn event_type(&self) -> &'static str {
        match self {
            ProductEvent::ProductStockSet(_) => Self::PRODUCT_STOCK_SET,
        }
    }

    fn schema_version(event_type: &str) -> Option<u16> {
        (event_type == Self::PRODUCT_STOCK_SET).then_some(1)
    }

    fn encode(&self) -> Result<Vec<u8>, CodecError> {
        match self {
            ProductEvent::ProductStockSet(e) => codec::encode(e),
        }
    }

    fn decode(event_type: &str, payload: &[u8]) -> Result<Self, CodecError> {
        match event_type {
            Self::PRODUCT_STOCK_SET => Ok(ProductEvent::ProductStockSet(codec::decode(payload)?)),
            other => Err(CodecError::Decode(format!(
                "unknown Product event type {other:?}"
            ))),
        }
    }

    fn tags(&self) -> Vec<String> {
        match self {
            ProductEvent::ProductStockSet(e) => vec![product_tag(&e.product_id)],
        }
    }
}

/// A product's stock as a decision saw it: the limit, the units reserved by orders, and the
/// head position of the read (the `after` of the append condition that guards a decision
/// taken on it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductStock {
    /// The product.
    pub product_id: String,
    /// Units for sale in total (`None`: never set, the product is unlimited).
    pub stock: Option<u64>,
    /// Units reserved by orders' items and not released by cancellations.
    pub reserved: u64,
    /// The store's head position when the stock was read (`None`: the store was empty).
    pub head: Option<u64>,
}

impl ProductStock {
    /// Units that can still be reserved (`None`: unlimited). Never negative: `0` when the
    /// reserved units reach the stock.
    pub fn available(&self) -> Option<u64> {
        self.stock.map(|s| s.saturating_sub(self.reserved))
    }

    /// The query of everything that decides `product_id`'s availability: its
    /// `ProductStockSet`, `ItemAddedToOrder` and `OrderCancelled` events, all tagged
    /// [`product_tag`]`(product_id)`.
    pub fn query(product_id: &str) -> Query {
        let tag = product_tag(product_id);
        Query::new(vec![QueryItem::new(
            &[
                ProductEvent::PRODUCT_STOCK_SET,
                OrderEvent::ITEM_ADDED_TO_ORDER,
                OrderEvent::ORDER_CANCELLED,
            ],
            &[tag.as_str()],
        )])
    }

    /// The query of `product_id`'s `ProductStockSet` events only: all an add of an unlimited
    /// product depends on (it stays unlimited unless a stock is set).
    pub fn limit_query(product_id: &str) -> Query {
        let tag = product_tag(product_id);
        Query::new(vec![QueryItem::new(
            &[ProductEvent::PRODUCT_STOCK_SET],
            &[tag.as_str()],
        )])
    }

    /// Fold the events a [`ProductStock::query`] read returned (with the head it saw) into
    /// the product's stock. Order events are decoded through `upcasters`.
    ///
    /// # Errors
    /// [`RepositoryError::Decode`] or [`RepositoryError::Upcast`] naming the event that cannot
    /// be decoded.
    pub fn fold(
        product_id: &str,
        events: &[RecordedEvent],
        head: Option<u64>,
        upcasters: &Upcasters,
    ) -> Result<ProductStock, RepositoryError<OrderError>> {
        let mut stock = None;
        let mut reserved: i128 = 0;
        for recorded in events {
            let failure = |f: DecodeFailure| match f {
                DecodeFailure::Decode(reason) => RepositoryError::Decode {
                    stream: recorded.stream_id.clone(),
                    version: recorded.version,
                    event_type: recorded.event_type.clone(),
                    reason,
                },
                DecodeFailure::Upcast(source) => RepositoryError::Upcast {
                    stream: recorded.stream_id.clone(),
                    version: recorded.version,
                    source,
                },
            };
            if recorded.event_type == ProductEvent::PRODUCT_STOCK_SET {
                let (ProductEvent::ProductStockSet(set), _) =
                    decode_recorded::<ProductEvent>(&Upcasters::new(), recorded)
                        .map_err(failure)?;
                if set.product_id == product_id {
                    stock = Some(set.stock);
                }
                continue;
            }
            match decode_recorded::<OrderEvent>(upcasters, recorded)
                .map_err(failure)?
                .0
            {
                OrderEvent::ItemAddedToOrder(e) if e.product_id == product_id => {
                    reserved += i128::from(e.quantity);
                }
                OrderEvent::OrderCancelled(e) => {
                    for r in e.released.iter().filter(|r| r.product_id == product_id) {
                        reserved -= i128::from(r.quantity);
                    }
                }
                _ => {}
            }
        }
        Ok(ProductStock {
            product_id: product_id.to_string(),
            stock,
            reserved: u64::try_from(reserved.max(0)).unwrap_or(u64::MAX),
            head,
        })
    }
}
