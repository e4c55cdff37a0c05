//! The flagship domain: orders.
//!
//! * [`OrderEvent`]: the facts (`OrderCreated`, `ItemAddedToOrder` (schema v2), `OrderConfirmed`,
//!   `OrderCancelled`, `OrderShipped`, `OrderDelivered`), payloads through [`evstore::codec`].
//! * [`Order`]: the aggregate (stream `"Order-{id}"`), with its life cycle [`OrderStatus`]:
//!   `Pending → Confirmed → Shipped → Delivered`, and `Pending`/`Confirmed → Cancelled`.
//! * [`OrderCommand`] / [`OrderError`]: what can be asked and why it may be refused.
//! * [`OrderService`]: the application API (commands with retries, reads, time travel).
//! * [`upcasters`]: reads legacy `ItemAddedToOrder` v1 events (float prices) as v2 (cents).
//!
//! Money is `i64` cents everywhere; times are the events' `at` (`DateTime<Utc>`), stamped
//! with `Utc::now()` when a command is decided.

pub mod cqrs;
mod events;
pub mod projections;
pub mod saga;
mod service;
mod state;
mod upcast;

pub use events::{
    ItemAddedToOrder, OrderCancelled, OrderConfirmed, OrderCreated, OrderDelivered, OrderEvent,
    OrderShipped,
};
pub use service::{OrderResult, OrderService, OrderServiceError, DEFAULT_MAX_ATTEMPTS};
pub use state::{Order, OrderCommand, OrderError, OrderItem, OrderStatus};
pub use upcast::{price_to_cents, upcast_item_added_v1, upcasters, ItemAddedToOrderV1};
