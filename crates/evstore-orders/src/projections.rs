//! Read models of the Order domain: an order summary per order and each user's orders, newest
//! first. Both live in one [`Projection`], [`OrderSummaries`], so they are always consistent
//! with each other.
//!
//! Order events are decoded with
//! [`DomainEvent::decode`](evstore::aggregate::DomainEvent::decode) after upcasting older
//! schemas with [`upcasters`] (the same upcasters the [`OrderService`](super::OrderService)
//! uses).
//!
//! ```
//! use std::sync::Arc;
//! use evstore_orders::projections::OrderSummaries;
//! use evstore_orders::{OrderService, OrderStatus};
//! use evstore::projection::ProjectionRunner;
//! use evstore::Store;
//! # let dir = tempfile::tempdir().unwrap();
//! let store = Arc::new(Store::open(dir.path().join("shop.evs"))?);
//! let orders = OrderService::new(store.clone());
//! let id = orders.create_order("u1")?;
//! orders.add_item(&id, "pen", 3, 150)?;
//!
//! let mut runner = ProjectionRunner::<OrderSummaries, _>::open_beside(store.clone())?;
//! runner.catch_up()?;
//! let summary = runner.handle().read(|p| p.get_order_summary(&id).cloned()).unwrap();
//! assert_eq!((summary.status, summary.total_cents, summary.item_count), (OrderStatus::Pending, 450, 3));
//! assert_eq!(runner.handle().read(|p| p.get_user_orders("u1").len()), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use evstore::aggregate::Aggregate;
use evstore::projection::Projection;
use evstore::subscription::SubscriptionFilter;
use evstore::upcast::Upcasters;
use evstore::RecordedEvent;

use super::{upcasters, Order, OrderEvent, OrderStatus};

/// One order as the read side sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderSummary {
    /// The order id.
    pub order_id: String,
    /// The customer.
    pub user_id: String,
    /// Life-cycle status.
    pub status: OrderStatus,
    /// Sum of line totals, cents (saturating, like the aggregate).
    pub total_cents: i64,
    /// Units ordered (sum of quantities).
    pub item_count: u64,
    /// Lines (one per `ItemAddedToOrder`).
    pub line_count: u32,
    /// When the order was created (the `OrderCreated` event's `at`).
    pub created_at: DateTime<Utc>,
    /// When the last event happened (its `at`).
    pub updated_at: DateTime<Utc>,
    /// Stream version of the last event applied.
    pub version: u64,
    /// Why it was cancelled.
    pub cancel_reason: Option<String>,
    /// Global position of the `OrderCreated` event (orders by user are newest first by it).
    pub created_position: u64,
}

/// The order read models: summaries by order id and order ids by user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderSummaries {
    orders: HashMap<String, OrderSummary>,
    /// user id → order ids in creation (position) order; read newest first.
    by_user: BTreeMap<String, Vec<String>>,
    /// Order events that could not be decoded or that came before their `OrderCreated`.
    skipped: u64,
}

fn order_upcasters() -> &'static Upcasters {
    static UPCASTERS: OnceLock<Upcasters> = OnceLock::new();
    UPCASTERS.get_or_init(upcasters)
}

/// Decode an Order event, upcasting an older schema with [`upcasters`]. `None`: not a
/// decodable Order event.
pub fn decode_order_event(recorded: &RecordedEvent) -> Option<OrderEvent> {
    evstore::repository::decode_recorded::<OrderEvent>(order_upcasters(), recorded)
        .ok()
        .map(|(event, _)| event)
}

impl OrderSummaries {
    /// The summary of order `order_id`.
    pub fn get_order_summary(&self, order_id: &str) -> Option<&OrderSummary> {
        self.orders.get(order_id)
    }

    /// The orders of `user_id`, newest first.
    pub fn get_user_orders(&self, user_id: &str) -> Vec<&OrderSummary> {
        self.by_user
            .get(user_id)
            .map(|ids| {
                ids.iter()
                    .rev()
                    .filter_map(|id| self.orders.get(id))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Number of orders.
    pub fn order_count(&self) -> usize {
        self.orders.len()
    }

    /// Order events skipped (undecodable, or for an order never created).
    pub fn skipped(&self) -> u64 {
        self.skipped
    }
}

impl Projection for OrderSummaries {
    const NAME: &'static str = "order-summaries";
    const VERSION: u32 = 1;

    fn filter() -> SubscriptionFilter {
        SubscriptionFilter::all().with_stream_prefix(format!("{}-", Order::TYPE_NAME))
    }

    fn apply(&mut self, recorded: &RecordedEvent) {
        let Some(order_id) = recorded
            .stream_id
            .strip_prefix(Order::TYPE_NAME)
            .and_then(|s| s.strip_prefix('-'))
        else {
            return;
        };
        let Some(event) = decode_order_event(recorded) else {
            self.skipped += 1;
            return;
        };
        if let OrderEvent::OrderCreated(e) = &event {
            if self.orders.contains_key(order_id) {
                self.skipped += 1;
                return;
            }
            self.orders.insert(
                order_id.to_string(),
                OrderSummary {
                    order_id: order_id.to_string(),
                    user_id: e.user_id.clone(),
                    status: OrderStatus::Pending,
                    total_cents: 0,
                    item_count: 0,
                    line_count: 0,
                    created_at: e.at,
                    updated_at: e.at,
                    version: recorded.version,
                    cancel_reason: None,
                    created_position: recorded.position,
                },
            );
            self.by_user
                .entry(e.user_id.clone())
                .or_default()
                .push(order_id.to_string());
            return;
        }
        let Some(s) = self.orders.get_mut(order_id) else {
            self.skipped += 1;
            return;
        };
        match &event {
            OrderEvent::OrderCreated(_) => {}
            OrderEvent::ItemAddedToOrder(e) => {
                let line = i64::from(e.quantity).saturating_mul(e.price_cents);
                s.total_cents = s.total_cents.saturating_add(line);
                s.item_count = s.item_count.saturating_add(u64::from(e.quantity));
                s.line_count = s.line_count.saturating_add(1);
            }
            OrderEvent::OrderConfirmed(_) => s.status = OrderStatus::Confirmed,
            OrderEvent::OrderCancelled(e) => {
                s.status = OrderStatus::Cancelled;
                s.cancel_reason = Some(e.reason.clone());
            }
            OrderEvent::OrderShipped(_) => s.status = OrderStatus::Shipped,
            OrderEvent::OrderDelivered(_) => s.status = OrderStatus::Delivered,
        }
        s.updated_at = event.at();
        s.version = recorded.version;
    }
}
