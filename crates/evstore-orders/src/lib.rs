//! The flagship domain: orders.
//!
//! * [`OrderEvent`]: the facts (`OrderCreated`, `ItemAddedToOrder` (schema v2), `OrderConfirmed`,
//!   `OrderCancelled` (schema v2), `OrderShipped`, `OrderDelivered`), payloads through [`evstore::codec`].
//! * [`Order`]: the aggregate (stream `"Order-{id}"`), with its life cycle [`OrderStatus`]:
//!   `Pending → Confirmed → Shipped → Delivered`, and `Pending`/`Confirmed → Cancelled`.
//! * [`OrderCommand`] / [`OrderError`]: what can be asked and why it may be refused.
//! * [`OrderService`]: the application API (commands with retries, reads, time travel).
//! * [`upcasters`]: reads legacy `ItemAddedToOrder` v1 events (float prices) as v2 (cents),
//!   and `OrderCancelled` v1 events as v2 (nothing released).
//! * Limited stock, one rule across all orders: [`OrderService::set_stock`] gives a product a
//!   number of units ([`ProductStockSet`], stream `"Product-{id}"`); `AddItem` reserves units,
//!   `Cancel` releases them, and an add that would oversell is refused with
//!   [`OrderError::OutOfStock`]. Enforced with a Dynamic Consistency Boundary
//!   ([`evstore::query`]): events tagged [`product_tag`] are the boundary, not a stream.
//!   Products whose stock was never set are unlimited.
//!
//! Money is `i64` cents everywhere; times are the events' `at` (`DateTime<Utc>`), stamped
//! with `Utc::now()` when a command is decided.

pub mod cqrs;
mod events;
pub mod projections;
pub mod saga;
mod service;
mod state;
mod stock;
mod upcast;

pub use events::{
    product_tag, ItemAddedToOrder, OrderCancelled, OrderConfirmed, OrderCreated, OrderDelivered,
    OrderEvent, OrderShipped, StockRelease, MAX_PRODUCT_ID_LEN,
};
pub use service::{OrderResult, OrderService, OrderServiceError, DEFAULT_MAX_ATTEMPTS};
pub use state::{Order, OrderCommand, OrderError, OrderItem, OrderStatus};
pub use stock::{ProductEvent, ProductStock, ProductStockSet, PRODUCT_STREAM_PREFIX};
pub use upcast::{
    price_to_cents, upcast_item_added_v1, upcast_order_cancelled_v1, upcasters, ItemAddedToOrderV1,
    OrderCancelledV1,
};
