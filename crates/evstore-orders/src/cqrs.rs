//! CQRS for orders: commands go through [`OrderService`] (the write model, event-sourced);
//! queries read only the [`OrderSummaries`] projection (the read model).
//!
//! Every command returns a [`CommandAck`] with the global position of its last event. A query
//! served by an asynchronous [`ProjectionRunner`](evstore::projection::ProjectionRunner) may lag
//! behind the log by the runner's backlog; to read your own write, wait for the ack's position
//! first ([`OrderQueries::wait_for`]), or use an
//! [`InlineProjection`](evstore::projection::InlineProjection) as the service's storage so the
//! projection is current when the command returns. See `docs/READ_SIDE.md`.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use evstore_orders::cqrs::{AddItem, CommandHandler, CreateOrder, GetOrderSummary, OrderCommands, OrderQueries, QueryHandler};
//! use evstore_orders::projections::OrderSummaries;
//! use evstore_orders::OrderService;
//! use evstore::projection::ProjectionRunner;
//! use evstore::Store;
//! # let dir = tempfile::tempdir().unwrap();
//! let store = Arc::new(Store::open(dir.path().join("cqrs.evs"))?);
//! let commands = OrderCommands::new(OrderService::new(store.clone()));
//! let mut runner = ProjectionRunner::<OrderSummaries, _>::open_beside(store.clone())?;
//! let queries = OrderQueries::new(runner.handle());
//!
//! let ack = commands.handle(&CreateOrder { order_id: None, user_id: "u1".into() })?;
//! let ack = commands.handle(&AddItem { order_id: ack.order_id, product_id: "pen".into(), quantity: 2, price_cents: 99 })?;
//! runner.catch_up()?; // normally a background thread
//! assert!(queries.wait_for(ack.position, Duration::from_secs(1)));
//! let summary = queries.query(&GetOrderSummary { order_id: ack.order_id.clone() }).unwrap();
//! assert_eq!(summary.total_cents, 198);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::time::Duration;

use uuid::Uuid;

use evstore::aggregate::{Aggregate, CommandContext, Root};
use evstore::projection::ProjectionHandle;
use evstore::EventStorage;

use super::projections::{OrderSummaries, OrderSummary};
use super::{Order, OrderCommand, OrderResult, OrderService, OrderServiceError};
use evstore::repository::RepositoryError;

/// Handles commands of type `C`.
pub trait CommandHandler<C> {
    /// What a successful command returns.
    type Output;
    /// Why a command failed.
    type Error;
    /// Handle `command`.
    ///
    /// # Errors
    /// `Self::Error` when the command is refused or cannot be carried out (for
    /// [`OrderCommands`]: an [`OrderServiceError`], as [`OrderService::execute`]).
    fn handle(&self, command: &C) -> Result<Self::Output, Self::Error>;
}

/// Answers queries of type `Q` from a read model.
pub trait QueryHandler<Q> {
    /// The answer.
    type Output;
    /// Answer `query` from the read model as it is now.
    fn query(&self, query: &Q) -> Self::Output;
}

/// Create an order (`order_id`: `None` picks a random UUID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateOrder {
    /// The id to use, or `None` for a new UUID.
    pub order_id: Option<String>,
    /// The customer.
    pub user_id: String,
}

/// Add a line to a pending order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddItem {
    /// The order.
    pub order_id: String,
    /// The product.
    pub product_id: String,
    /// Units (> 0).
    pub quantity: u32,
    /// Unit price, cents (≥ 0).
    pub price_cents: i64,
}

/// Confirm a pending order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmOrder {
    /// The order.
    pub order_id: String,
}

/// Cancel a pending or confirmed order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelOrder {
    /// The order.
    pub order_id: String,
    /// Why.
    pub reason: String,
}

/// Ship a confirmed order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShipOrder {
    /// The order.
    pub order_id: String,
}

/// Mark a shipped order delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliverOrder {
    /// The order.
    pub order_id: String,
}

/// What a command did: the order, its new stream version, and the global position of its last
/// event (wait for it on the read side to read your write).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandAck {
    /// The order.
    pub order_id: String,
    /// The order stream's version after the command.
    pub version: u64,
    /// Global position of the command's last event.
    pub position: u64,
}

/// The write side: runs order commands through an [`OrderService`].
#[derive(Debug, Clone)]
pub struct OrderCommands<S: EventStorage> {
    service: OrderService<S>,
}

impl<S: EventStorage> OrderCommands<S> {
    /// Commands through `service`.
    pub fn new(service: OrderService<S>) -> OrderCommands<S> {
        OrderCommands { service }
    }

    /// The service.
    pub fn service(&self) -> &OrderService<S> {
        &self.service
    }

    fn run(&self, order_id: &str, command: &OrderCommand) -> OrderResult<CommandAck> {
        let root = self
            .service
            .execute(order_id, command, &CommandContext::new_request())?;
        self.ack(&root)
    }

    /// The ack of a saved root: its position is read back from the store (the service
    /// returns the root, not the append result).
    fn ack(&self, root: &Root<Order>) -> OrderResult<CommandAck> {
        let stream = Order::stream_id(root.id());
        let version = root.version().ok_or_else(|| {
            RepositoryError::Store(evstore::Error::InvalidInput(format!(
                "order {:?} has no recorded version after a command",
                root.id()
            )))
        })?;
        let recorded = self.service.repository().storage().read_stream_range(
            &stream,
            version,
            version.saturating_add(1),
        )?;
        let position =
            recorded
                .first()
                .map(|e| e.position)
                .ok_or_else(|| -> OrderServiceError {
                    RepositoryError::Store(evstore::Error::InvalidInput(format!(
                        "version {version} of {stream:?} cannot be read back"
                    )))
                })?;
        Ok(CommandAck {
            order_id: root.id().to_string(),
            version,
            position,
        })
    }
}

impl<S: EventStorage> CommandHandler<CreateOrder> for OrderCommands<S> {
    type Output = CommandAck;
    type Error = OrderServiceError;
    fn handle(&self, c: &CreateOrder) -> OrderResult<CommandAck> {
        let order_id = c
            .order_id
            .clone()
            .unwrap_or_else(|| Uuid::new_v4().to_string());
        self.run(
            &order_id,
            &OrderCommand::Create {
                order_id: order_id.clone(),
                user_id: c.user_id.clone(),
            },
        )
    }
}

impl<S: EventStorage> CommandHandler<AddItem> for OrderCommands<S> {
    type Output = CommandAck;
    type Error = OrderServiceError;
    fn handle(&self, c: &AddItem) -> OrderResult<CommandAck> {
        self.run(
            &c.order_id,
            &OrderCommand::AddItem {
                product_id: c.product_id.clone(),
                quantity: c.quantity,
                price_cents: c.price_cents,
            },
        )
    }
}

impl<S: EventStorage> CommandHandler<ConfirmOrder> for OrderCommands<S> {
    type Output = CommandAck;
    type Error = OrderServiceError;
    fn handle(&self, c: &ConfirmOrder) -> OrderResult<CommandAck> {
        self.run(&c.order_id, &OrderCommand::Confirm)
    }
}

impl<S: EventStorage> CommandHandler<CancelOrder> for OrderCommands<S> {
    type Output = CommandAck;
    type Error = OrderServiceError;
    fn handle(&self, c: &CancelOrder) -> OrderResult<CommandAck> {
        self.run(
            &c.order_id,
            &OrderCommand::Cancel {
                reason: c.reason.clone(),
            },
        )
    }
}

impl<S: EventStorage> CommandHandler<ShipOrder> for OrderCommands<S> {
    type Output = CommandAck;
    type Error = OrderServiceError;
    fn handle(&self, c: &ShipOrder) -> OrderResult<CommandAck> {
        self.run(&c.order_id, &OrderCommand::Ship)
    }
}

impl<S: EventStorage> CommandHandler<DeliverOrder> for OrderCommands<S> {
    type Output = CommandAck;
    type Error = OrderServiceError;
    fn handle(&self, c: &DeliverOrder) -> OrderResult<CommandAck> {
        self.run(&c.order_id, &OrderCommand::Deliver)
    }
}

/// The summary of one order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetOrderSummary {
    /// The order.
    pub order_id: String,
}

/// A user's orders, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetUserOrders {
    /// The customer.
    pub user_id: String,
}

/// The read side: answers order queries from the [`OrderSummaries`] projection only.
#[derive(Debug, Clone)]
pub struct OrderQueries {
    projection: ProjectionHandle<OrderSummaries>,
}

impl OrderQueries {
    /// Queries over a projection handle (from a runner or an inline projection).
    pub fn new(projection: ProjectionHandle<OrderSummaries>) -> OrderQueries {
        OrderQueries { projection }
    }

    /// The position the read model has reached: it includes every event below it.
    pub fn next_position(&self) -> u64 {
        self.projection.next_position()
    }

    /// The old name of [`Self::next_position`] (the position of the next event, not the last:
    /// compare `Store::head_position`, the last event's).
    #[deprecated(
        since = "0.2.0",
        note = "renamed next_position: the position of the next event"
    )]
    pub fn position(&self) -> u64 {
        self.next_position()
    }

    /// Block until the read model includes position `position` (e.g. a [`CommandAck`]'s), or
    /// `timeout` passes. Returns whether it does.
    pub fn wait_for(&self, position: u64, timeout: Duration) -> bool {
        self.projection.wait_for_position(position, timeout)
    }
}

impl QueryHandler<GetOrderSummary> for OrderQueries {
    type Output = Option<OrderSummary>;
    fn query(&self, q: &GetOrderSummary) -> Option<OrderSummary> {
        self.projection
            .read(|p| p.get_order_summary(&q.order_id).cloned())
    }
}

impl QueryHandler<GetUserOrders> for OrderQueries {
    type Output = Vec<OrderSummary>;
    fn query(&self, q: &GetUserOrders) -> Vec<OrderSummary> {
        self.projection
            .read(|p| p.get_user_orders(&q.user_id).into_iter().cloned().collect())
    }
}
