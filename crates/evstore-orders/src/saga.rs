//! The order fulfilment saga and a simulated payment/shipping participant.
//!
//! Flow (each arrow is a reaction of [`OrderSagaHandler`], recorded in stream
//! `"OrderSaga-<order id>"`):
//!
//! * `OrderConfirmed` → `PaymentRequested` (with the order's total);
//! * `PaymentCompleted` → `ShippingRequested`;
//! * `PaymentFailed` → the order is cancelled with the failure reason
//!   ([`OrderService`] `Cancel`), and `OrderSagaFailed` is recorded;
//! * `ShippingCompleted` → the order is shipped ([`OrderService`] `Ship`), and `OrderCompleted`
//!   is recorded.
//!
//! The last two write two streams, the order's and the saga's: [`OrderSagaHandler`] writes
//! both in **one atomic multi-stream append** ([`OrderService::execute_with`]), so the order
//! is never cancelled or shipped without the saga knowing it, and the saga never records a
//! cancellation or shipment the order does not hold, whatever crashes in between. The saga
//! event gets exactly the id, metadata and expected version the [`SagaRunner`] gives it, so
//! the runner's own append of it right after is an idempotent retry that writes nothing. A
//! command the order's rules refuse writes nothing, and the runner records the saga event
//! alone (as before).
//!
//! [`PaymentShippingSimulator`] plays the outside world: it answers `PaymentRequested` with
//! `PaymentCompleted` (or `PaymentFailed` when the amount exceeds its limit) in stream
//! `"Payment-<order id>"`, and `ShippingRequested` with `ShippingCompleted` in
//! `"Shipping-<order id>"`. It is deterministic and idempotent (UUID v5 ids, `NoStream`).
//!
//! ```
//! use std::sync::Arc;
//! use evstore_orders::saga::{OrderSaga, OrderSagaStatus, PaymentShippingSimulator};
//! use evstore_orders::{OrderService, OrderStatus};
//! use evstore::Store;
//! # let dir = tempfile::tempdir().unwrap();
//! let store = Arc::new(Store::open(dir.path().join("saga.evs"))?);
//! let orders = OrderService::new(store.clone());
//! let mut saga = OrderSaga::open_runner(store.clone())?;
//! let mut world = PaymentShippingSimulator::new(store.clone(), 0, 100_000);
//!
//! let id = orders.create_order("u1")?;
//! orders.add_item(&id, "book", 1, 1_500)?;
//! orders.confirm(&id)?;
//! for _ in 0..3 {
//!     saga.catch_up()?;   // OrderConfirmed → PaymentRequested, …
//!     world.catch_up()?;  // PaymentRequested → PaymentCompleted, …
//! }
//! saga.catch_up()?;
//! assert_eq!(OrderSaga::load(&saga, &id)?.status, OrderSagaStatus::Completed);
//! assert_eq!(orders.get_order(&id)?.unwrap().status(), OrderStatus::Shipped);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use evstore::aggregate::{Aggregate, CommandContext, DomainEvent, EventMetadata};
use evstore::codec::{self, CodecError};
use evstore::repository::RepositoryError;
use evstore::saga::{
    caused_event, correlation_of, saga_checkpoint_path, CommandOutcome, Reaction, Saga, SagaError,
    SagaHandler, SagaResult, SagaRunner, TRIGGER_POSITION_KEY,
};
use evstore::subscription::{EventSource, Subscription, SubscriptionFilter};
use evstore::EventStorage;
use evstore::Store;
use evstore::{Error, Result};
use evstore::{ExpectedVersion, RecordedEvent, StreamAppend};

use super::{Order, OrderCommand, OrderEvent, OrderService};

/// Stream prefix of payment events (`"Payment-<order id>"`).
pub const PAYMENT_STREAM_PREFIX: &str = "Payment-";
/// Stream prefix of shipping events (`"Shipping-<order id>"`).
pub const SHIPPING_STREAM_PREFIX: &str = "Shipping-";

/// Payload of `PaymentRequested` (saga event, schema 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRequested {
    /// The order.
    pub order_id: String,
    /// The customer.
    pub user_id: String,
    /// Amount to charge, cents.
    pub amount_cents: i64,
    /// When requested.
    pub at: DateTime<Utc>,
}

/// Payload of `ShippingRequested` (saga event, schema 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippingRequested {
    /// The order.
    pub order_id: String,
    /// When requested.
    pub at: DateTime<Utc>,
}

/// Payload of `OrderCompleted` (saga event, schema 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCompleted {
    /// The order.
    pub order_id: String,
    /// When completed.
    pub at: DateTime<Utc>,
}

/// Payload of `OrderSagaFailed` (saga event, schema 1): the saga gave up (payment failed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderSagaFailed {
    /// The order.
    pub order_id: String,
    /// Why.
    pub reason: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// The order saga's own events (stream `"OrderSaga-<order id>"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderSagaEvent {
    /// `"PaymentRequested"`.
    PaymentRequested(PaymentRequested),
    /// `"ShippingRequested"`.
    ShippingRequested(ShippingRequested),
    /// `"OrderCompleted"`.
    OrderCompleted(OrderCompleted),
    /// `"OrderSagaFailed"`.
    OrderSagaFailed(OrderSagaFailed),
}

impl OrderSagaEvent {
    /// Event type of [`OrderSagaEvent::PaymentRequested`].
    pub const PAYMENT_REQUESTED: &'static str = "PaymentRequested";
    /// Event type of [`OrderSagaEvent::ShippingRequested`].
    pub const SHIPPING_REQUESTED: &'static str = "ShippingRequested";
    /// Event type of [`OrderSagaEvent::OrderCompleted`].
    pub const ORDER_COMPLETED: &'static str = "OrderCompleted";
    /// Event type of [`OrderSagaEvent::OrderSagaFailed`].
    pub const ORDER_SAGA_FAILED: &'static str = "OrderSagaFailed";
}

impl DomainEvent for OrderSagaEvent {
    fn event_type(&self) -> &'static str {
        match self {
            OrderSagaEvent::PaymentRequested(_) => Self::PAYMENT_REQUESTED,
            OrderSagaEvent::ShippingRequested(_) => Self::SHIPPING_REQUESTED,
            OrderSagaEvent::OrderCompleted(_) => Self::ORDER_COMPLETED,
            OrderSagaEvent::OrderSagaFailed(_) => Self::ORDER_SAGA_FAILED,
        }
    }
    fn schema_version(event_type: &str) -> Option<u16> {
        matches!(
            event_type,
            Self::PAYMENT_REQUESTED
                | Self::SHIPPING_REQUESTED
                | Self::ORDER_COMPLETED
                | Self::ORDER_SAGA_FAILED
        )
        .then_some(1)
    }
    fn encode(&self) -> std::result::Result<Vec<u8>, CodecError> {
        match self {
            OrderSagaEvent::PaymentRequested(e) => codec::encode(e),
            OrderSagaEvent::ShippingRequested(e) => codec::encode(e),
            OrderSagaEvent::OrderCompleted(e) => codec::encode(e),
            OrderSagaEvent::OrderSagaFailed(e) => codec::encode(e),
        }
    }
    fn decode(event_type: &str, payload: &[u8]) -> std::result::Result<Self, CodecError> {
        Ok(match event_type {
            Self::PAYMENT_REQUESTED => OrderSagaEvent::PaymentRequested(codec::decode(payload)?),
            Self::SHIPPING_REQUESTED => OrderSagaEvent::ShippingRequested(codec::decode(payload)?),
            Self::ORDER_COMPLETED => OrderSagaEvent::OrderCompleted(codec::decode(payload)?),
            Self::ORDER_SAGA_FAILED => OrderSagaEvent::OrderSagaFailed(codec::decode(payload)?),
            other => {
                return Err(CodecError::Decode(format!(
                    "unknown OrderSaga event type {other:?}"
                )))
            }
        })
    }
}

/// Events of the simulated outside world (streams `"Payment-<id>"` / `"Shipping-<id>"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParticipantEvent {
    /// `"PaymentCompleted"`: the amount was charged.
    PaymentCompleted(PaymentOutcome),
    /// `"PaymentFailed"`: the charge was declined (`reason` set).
    PaymentFailed(PaymentOutcome),
    /// `"ShippingCompleted"`: the parcel left the warehouse.
    ShippingCompleted(ShippingCompleted),
}

/// Payload of `PaymentCompleted` and `PaymentFailed` (schema 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentOutcome {
    /// The order.
    pub order_id: String,
    /// Amount, cents.
    pub amount_cents: i64,
    /// Why it failed (`None` for a completed payment).
    pub reason: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

/// Payload of `ShippingCompleted` (schema 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippingCompleted {
    /// The order.
    pub order_id: String,
    /// Carrier tracking reference.
    pub tracking: String,
    /// When.
    pub at: DateTime<Utc>,
}

impl ParticipantEvent {
    /// Event type of [`ParticipantEvent::PaymentCompleted`].
    pub const PAYMENT_COMPLETED: &'static str = "PaymentCompleted";
    /// Event type of [`ParticipantEvent::PaymentFailed`].
    pub const PAYMENT_FAILED: &'static str = "PaymentFailed";
    /// Event type of [`ParticipantEvent::ShippingCompleted`].
    pub const SHIPPING_COMPLETED: &'static str = "ShippingCompleted";
}

impl DomainEvent for ParticipantEvent {
    fn event_type(&self) -> &'static str {
        match self {
            ParticipantEvent::PaymentCompleted(_) => Self::PAYMENT_COMPLETED,
            ParticipantEvent::PaymentFailed(_) => Self::PAYMENT_FAILED,
            ParticipantEvent::ShippingCompleted(_) => Self::SHIPPING_COMPLETED,
        }
    }
    fn schema_version(event_type: &str) -> Option<u16> {
        matches!(
            event_type,
            Self::PAYMENT_COMPLETED | Self::PAYMENT_FAILED | Self::SHIPPING_COMPLETED
        )
        .then_some(1)
    }
    fn encode(&self) -> std::result::Result<Vec<u8>, CodecError> {
        match self {
            ParticipantEvent::PaymentCompleted(e) | ParticipantEvent::PaymentFailed(e) => {
                codec::encode(e)
            }
            ParticipantEvent::ShippingCompleted(e) => codec::encode(e),
        }
    }
    fn decode(event_type: &str, payload: &[u8]) -> std::result::Result<Self, CodecError> {
        Ok(match event_type {
            Self::PAYMENT_COMPLETED => ParticipantEvent::PaymentCompleted(codec::decode(payload)?),
            Self::PAYMENT_FAILED => ParticipantEvent::PaymentFailed(codec::decode(payload)?),
            Self::SHIPPING_COMPLETED => {
                ParticipantEvent::ShippingCompleted(codec::decode(payload)?)
            }
            other => {
                return Err(CodecError::Decode(format!(
                    "unknown participant event type {other:?}"
                )))
            }
        })
    }
}

/// Where an order's fulfilment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OrderSagaStatus {
    /// No saga event yet.
    #[default]
    NotStarted,
    /// `PaymentRequested` recorded.
    AwaitingPayment,
    /// `ShippingRequested` recorded.
    AwaitingShipping,
    /// `OrderCompleted` recorded (final).
    Completed,
    /// `OrderSagaFailed` recorded (final).
    Failed,
}

/// The state of one order's saga (folded from its stream).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderSaga {
    /// Where it is.
    pub status: OrderSagaStatus,
    /// The amount requested, cents.
    pub amount_cents: i64,
    /// Why it failed.
    pub failure_reason: Option<String>,
}

impl Saga for OrderSaga {
    const NAME: &'static str = "OrderSaga";
    type Event = OrderSagaEvent;
    type Command = OrderSagaCommand;

    fn filter() -> SubscriptionFilter {
        SubscriptionFilter::all().with_event_types([
            OrderEvent::ORDER_CONFIRMED,
            ParticipantEvent::PAYMENT_COMPLETED,
            ParticipantEvent::PAYMENT_FAILED,
            ParticipantEvent::SHIPPING_COMPLETED,
        ])
    }

    fn saga_id(trigger: &RecordedEvent) -> Option<String> {
        let s = trigger.stream_id.as_str();
        let prefix = format!("{}-", Order::TYPE_NAME);
        s.strip_prefix(prefix.as_str())
            .or_else(|| s.strip_prefix(PAYMENT_STREAM_PREFIX))
            .or_else(|| s.strip_prefix(SHIPPING_STREAM_PREFIX))
            .filter(|id| !id.is_empty())
            .map(str::to_string)
    }

    fn apply(&mut self, event: &OrderSagaEvent) {
        match event {
            OrderSagaEvent::PaymentRequested(e) => {
                self.status = OrderSagaStatus::AwaitingPayment;
                self.amount_cents = e.amount_cents;
            }
            OrderSagaEvent::ShippingRequested(_) => self.status = OrderSagaStatus::AwaitingShipping,
            OrderSagaEvent::OrderCompleted(_) => self.status = OrderSagaStatus::Completed,
            OrderSagaEvent::OrderSagaFailed(e) => {
                self.status = OrderSagaStatus::Failed;
                self.failure_reason = Some(e.reason.clone());
            }
        }
    }
}

/// Commands the order saga sends to orders. Each carries the saga's reaction events
/// ([`SagaRecord`]) so the handler writes the order's events and the saga's in one atomic
/// multi-stream append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderSagaCommand {
    /// Cancel the order.
    CancelOrder {
        /// The order.
        order_id: String,
        /// Why.
        reason: String,
        /// The saga events to record with the cancellation.
        record: SagaRecord,
    },
    /// Ship the order.
    ShipOrder {
        /// The order.
        order_id: String,
        /// The saga events to record with the shipment.
        record: SagaRecord,
    },
}

/// The saga events of a reaction, to be appended to `"OrderSaga-<order id>"` in the same
/// atomic append as the command's order events: the same events as the reaction's
/// [`Reaction::events`], and the position of the trigger that caused them (their
/// [`TRIGGER_POSITION_KEY`], which also fixes their expected version: right after the saga
/// events of earlier triggers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SagaRecord {
    /// The saga events.
    pub events: Vec<OrderSagaEvent>,
    /// Global position of the trigger.
    pub trigger_position: u64,
}

/// Decisions of the order saga, and its commands through an [`OrderService`].
#[derive(Debug, Clone)]
pub struct OrderSagaHandler<S: EventStorage> {
    orders: OrderService<S>,
}

impl<S: EventStorage> OrderSagaHandler<S> {
    /// A handler that reads and commands orders through `orders`.
    pub fn new(orders: OrderService<S>) -> OrderSagaHandler<S> {
        OrderSagaHandler { orders }
    }

    /// Whether the order stream already holds the event with `id` (a command already run).
    fn order_has_event(&self, order_id: &str, id: uuid::Uuid) -> SagaResult<bool> {
        let stream = Order::stream_id(order_id);
        let events = self
            .orders
            .repository()
            .storage()
            .read_stream_range(&stream, 0, u64::MAX)?;
        Ok(events.iter().any(|e| e.event_id == id))
    }

    /// The saga's part of the atomic append for a command dispatched under `ctx`: the events
    /// of `record` with the ids and metadata the [`SagaRunner`] gives a reaction to the same
    /// trigger, at the expected version it uses (after the saga events of earlier triggers).
    fn saga_part(
        &self,
        order_id: &str,
        record: &SagaRecord,
        ctx: &CommandContext,
    ) -> SagaResult<SagaPart> {
        let cause = ctx.causation_id.ok_or_else(|| {
            SagaError::Handler("a saga command's context names no trigger (causation id)".into())
        })?;
        let stream = OrderSaga::stream_id(order_id);
        let recorded =
            self.orders
                .repository()
                .storage()
                .read_stream_range(&stream, 0, u64::MAX)?;
        let mut version = None;
        for e in &recorded {
            let position = EventMetadata::decode(&e.metadata)
                .ok()
                .and_then(|m| m.extra.get(TRIGGER_POSITION_KEY)?.parse::<u64>().ok())
                .ok_or_else(|| SagaError::Decode {
                    position: e.position,
                    event_type: e.event_type.clone(),
                    reason: format!("metadata lacks {TRIGGER_POSITION_KEY}"),
                })?;
            if position == record.trigger_position {
                return Ok(SagaPart::AlreadyRecorded);
            }
            if position > record.trigger_position {
                break;
            }
            version = Some(e.version);
        }
        let mut saga_ctx = CommandContext::caused_by(cause, ctx.correlation_id);
        saga_ctx.extra.clone_from(&ctx.extra);
        saga_ctx.extra.insert(
            TRIGGER_POSITION_KEY.into(),
            record.trigger_position.to_string(),
        );
        let events = record
            .events
            .iter()
            .enumerate()
            .map(|(i, e)| caused_event(e, &saga_ctx, i))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| SagaError::Handler(format!("cannot encode a saga event: {e}")))?;
        let expected = version.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
        Ok(SagaPart::Append(StreamAppend::new(
            &stream, expected, events,
        )))
    }
}

/// What [`OrderSagaHandler::saga_part`] found.
enum SagaPart {
    /// Append this with the order's events.
    Append(StreamAppend),
    /// The saga stream already holds the trigger's events.
    AlreadyRecorded,
}

fn decode_participant(trigger: &RecordedEvent) -> SagaResult<ParticipantEvent> {
    ParticipantEvent::decode(&trigger.event_type, &trigger.data).map_err(|e| SagaError::Decode {
        position: trigger.position,
        event_type: trigger.event_type.clone(),
        reason: e.to_string(),
    })
}

impl<S: EventStorage> SagaHandler<OrderSaga> for OrderSagaHandler<S> {
    fn react(
        &self,
        saga: &OrderSaga,
        order_id: &str,
        trigger: &RecordedEvent,
    ) -> SagaResult<Reaction<OrderSagaEvent, OrderSagaCommand>> {
        let at = trigger.recorded_at;
        let ty = trigger.event_type.as_str();
        Ok(match (saga.status, ty) {
            (OrderSagaStatus::NotStarted, OrderEvent::ORDER_CONFIRMED) => {
                let order = self
                    .orders
                    .get_order(order_id)
                    .map_err(|e| SagaError::Handler(e.to_string()))?
                    .ok_or_else(|| SagaError::Handler(format!("order {order_id:?} not found")))?;
                Reaction::events(vec![OrderSagaEvent::PaymentRequested(PaymentRequested {
                    order_id: order_id.to_string(),
                    user_id: order.user_id().to_string(),
                    amount_cents: order.total_cents(),
                    at,
                })])
            }
            (OrderSagaStatus::AwaitingPayment, ParticipantEvent::PAYMENT_COMPLETED) => {
                Reaction::events(vec![OrderSagaEvent::ShippingRequested(ShippingRequested {
                    order_id: order_id.to_string(),
                    at,
                })])
            }
            (OrderSagaStatus::AwaitingPayment, ParticipantEvent::PAYMENT_FAILED) => {
                let why = match decode_participant(trigger)? {
                    ParticipantEvent::PaymentFailed(p) => p.reason.unwrap_or_default(),
                    _ => String::new(),
                };
                let reason = format!("payment failed: {why}");
                let events = vec![OrderSagaEvent::OrderSagaFailed(OrderSagaFailed {
                    order_id: order_id.to_string(),
                    reason: reason.clone(),
                    at,
                })];
                Reaction {
                    commands: vec![OrderSagaCommand::CancelOrder {
                        order_id: order_id.to_string(),
                        reason,
                        record: SagaRecord {
                            events: events.clone(),
                            trigger_position: trigger.position,
                        },
                    }],
                    events,
                }
            }
            (OrderSagaStatus::AwaitingShipping, ParticipantEvent::SHIPPING_COMPLETED) => {
                let events = vec![OrderSagaEvent::OrderCompleted(OrderCompleted {
                    order_id: order_id.to_string(),
                    at,
                })];
                Reaction {
                    commands: vec![OrderSagaCommand::ShipOrder {
                        order_id: order_id.to_string(),
                        record: SagaRecord {
                            events: events.clone(),
                            trigger_position: trigger.position,
                        },
                    }],
                    events,
                }
            }
            // Anything else (a duplicate, or out of order) needs nothing.
            _ => Reaction::none(),
        })
    }

    fn dispatch(
        &self,
        command: &OrderSagaCommand,
        ctx: &CommandContext,
    ) -> SagaResult<CommandOutcome> {
        let (order_id, cmd, record) = match command {
            OrderSagaCommand::CancelOrder {
                order_id,
                reason,
                record,
            } => (
                order_id,
                OrderCommand::Cancel {
                    reason: reason.clone(),
                },
                record,
            ),
            OrderSagaCommand::ShipOrder { order_id, record } => {
                (order_id, OrderCommand::Ship, record)
            }
        };
        if self.order_has_event(order_id, ctx.event_id(0))? {
            return Ok(CommandOutcome::AlreadyDone);
        }
        let saga_part = match self.saga_part(order_id, record, ctx)? {
            SagaPart::Append(part) => part,
            SagaPart::AlreadyRecorded => {
                // The saga events of this trigger are in, the command's are not: with both
                // written in one unit, the command was refused when the trigger was first
                // processed.
                return Ok(CommandOutcome::Refused(
                    "refused when the trigger was first processed".into(),
                ));
            }
        };
        match self
            .orders
            .execute_with(order_id, &cmd, ctx, std::slice::from_ref(&saga_part))
        {
            Ok(_) => Ok(CommandOutcome::Executed),
            Err(RepositoryError::Domain(e)) => Ok(CommandOutcome::Refused(e.to_string())),
            Err(RepositoryError::Conflict {
                stream,
                expected,
                actual,
            }) => Err(SagaError::Store(Error::WrongExpectedVersion {
                stream,
                expected,
                actual,
            })),
            Err(RepositoryError::Store(e)) => Err(SagaError::Store(e)),
            Err(e) => Err(SagaError::Handler(e.to_string())),
        }
    }
}

/// The order saga's runner over a store handle `S`.
pub type OrderSagaRunner<S> = SagaRunner<OrderSaga, S, OrderSagaHandler<S>>;

impl OrderSaga {
    /// Open the order saga's runner over `store` with its checkpoint beside the log
    /// (`<log path>.saga-OrderSaga`) and an [`OrderService`] with default settings.
    ///
    /// # Errors
    /// As [`SagaRunner::open`]: the checkpoint cannot be read or written.
    pub fn open_runner(store: Arc<Store>) -> SagaResult<OrderSagaRunner<Arc<Store>>> {
        let path = saga_checkpoint_path(store.path(), OrderSaga::NAME);
        let handler = OrderSagaHandler::new(OrderService::new(store.clone()));
        SagaRunner::open(store, handler, path)
    }

    /// The current state of order `order_id`'s saga (all its events), as `runner` sees it.
    ///
    /// # Errors
    /// The saga's events cannot be read or decoded.
    pub fn load<S: EventSource + EventStorage>(
        runner: &OrderSagaRunner<S>,
        order_id: &str,
    ) -> SagaResult<OrderSaga> {
        Ok(runner.load_before(order_id, u64::MAX)?.0)
    }
}

/// A deterministic stand-in for the payment provider and the warehouse.
///
/// Payments of more than `limit_cents` fail; everything else succeeds. Reactions are appended
/// with ids derived from the request (UUID v5) and `ExpectedVersion::NoStream`, so handling a
/// request twice writes nothing the second time.
pub struct PaymentShippingSimulator<S: EventSource + EventStorage> {
    subscription: Subscription<S>,
    limit_cents: i64,
    handled: u64,
}

impl<S: EventSource + EventStorage> std::fmt::Debug for PaymentShippingSimulator<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymentShippingSimulator")
            .field("position", &self.subscription.next_position())
            .field("limit_cents", &self.limit_cents)
            .field("handled", &self.handled)
            .finish_non_exhaustive()
    }
}

impl<S: EventSource + EventStorage> PaymentShippingSimulator<S> {
    /// A simulator reading requests from `from_position` on; payments above `limit_cents` fail.
    pub fn new(source: S, from_position: u64, limit_cents: i64) -> PaymentShippingSimulator<S> {
        let filter = SubscriptionFilter::all()
            .with_stream_prefix(format!("{}-", OrderSaga::NAME))
            .with_event_types([
                OrderSagaEvent::PAYMENT_REQUESTED,
                OrderSagaEvent::SHIPPING_REQUESTED,
            ]);
        PaymentShippingSimulator {
            subscription: Subscription::new(source, from_position, filter),
            limit_cents,
            handled: 0,
        }
    }

    /// The next position to read.
    pub fn next_position(&self) -> u64 {
        self.subscription.next_position()
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

    /// Requests answered so far (including idempotent repeats).
    pub fn handled(&self) -> u64 {
        self.handled
    }

    /// Answer up to `max` requests, waiting up to `timeout` for the first. Returns how many
    /// were answered (0: none came in time).
    ///
    /// # Errors
    /// The requests cannot be read, a request cannot be decoded ([`Error::InvalidInput`]), or
    /// a reply cannot be appended. The subscription then stands at the failed request, so the
    /// next call retries it.
    pub fn step(&mut self, max: usize, timeout: Duration) -> Result<usize> {
        let batch = self.subscription.next_batch(max, timeout)?;
        for (i, request) in batch.iter().enumerate() {
            if let Err(e) = self.answer(request) {
                self.subscription.seek(request.position);
                self.handled += i as u64;
                return Err(e);
            }
        }
        self.handled += batch.len() as u64;
        Ok(batch.len())
    }

    /// Answer every request visible now; returns how many were answered.
    ///
    /// # Errors
    /// As [`PaymentShippingSimulator::step`].
    pub fn catch_up(&mut self) -> Result<usize> {
        let mut total = 0;
        // Bounded: each round answers at least one request or stops.
        loop {
            let n = self.step(256, Duration::ZERO)?;
            total += n;
            if n == 0 {
                return Ok(total);
            }
        }
    }

    fn answer(&self, request: &RecordedEvent) -> Result<()> {
        let bad = |e: CodecError| Error::InvalidInput(e.to_string());
        let event = OrderSagaEvent::decode(&request.event_type, &request.data).map_err(bad)?;
        let at = request.recorded_at;
        let (stream, reply) = match event {
            OrderSagaEvent::PaymentRequested(p) => {
                let outcome = PaymentOutcome {
                    order_id: p.order_id.clone(),
                    amount_cents: p.amount_cents,
                    reason: None,
                    at,
                };
                let reply = if p.amount_cents > self.limit_cents {
                    ParticipantEvent::PaymentFailed(PaymentOutcome {
                        reason: Some(format!(
                            "amount {} cents exceeds the limit of {} cents",
                            p.amount_cents, self.limit_cents
                        )),
                        ..outcome
                    })
                } else {
                    ParticipantEvent::PaymentCompleted(outcome)
                };
                (format!("{PAYMENT_STREAM_PREFIX}{}", p.order_id), reply)
            }
            OrderSagaEvent::ShippingRequested(s) => (
                format!("{SHIPPING_STREAM_PREFIX}{}", s.order_id),
                ParticipantEvent::ShippingCompleted(ShippingCompleted {
                    tracking: format!("TRK-{}", request.event_id.simple()),
                    order_id: s.order_id,
                    at,
                }),
            ),
            _ => return Ok(()),
        };
        let ctx = CommandContext::caused_by(request.event_id, Some(correlation_of(request)));
        let new = caused_event(&reply, &ctx, 0).map_err(bad)?;
        self.subscription
            .source()
            .append(&stream, ExpectedVersion::NoStream, &[new])?;
        Ok(())
    }
}
