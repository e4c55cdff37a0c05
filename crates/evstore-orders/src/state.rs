//! The Order aggregate: state, commands, domain errors and the rules between them.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use evstore::aggregate::Aggregate;

use super::events::{
    ItemAddedToOrder, OrderCancelled, OrderConfirmed, OrderCreated, OrderDelivered, OrderEvent,
    OrderShipped, StockRelease,
};

/// Where an order is in its life cycle.
///
/// `Pending → Confirmed → Shipped → Delivered`; `Pending` and `Confirmed` may also go to
/// `Cancelled`. `Delivered` and `Cancelled` are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum OrderStatus {
    /// Created; items may be added.
    #[default]
    Pending,
    /// Confirmed by the customer; items are frozen.
    Confirmed,
    /// Handed to the carrier.
    Shipped,
    /// Received by the customer (final).
    Delivered,
    /// Cancelled before shipping (final).
    Cancelled,
}

impl OrderStatus {
    /// Whether the life cycle allows going from `self` to `to`.
    pub fn can_become(self, to: OrderStatus) -> bool {
        use OrderStatus::{Cancelled, Confirmed, Delivered, Pending, Shipped};
        matches!(
            (self, to),
            (Pending, Confirmed | Cancelled)
                | (Confirmed, Shipped | Cancelled)
                | (Shipped, Delivered)
        )
    }

    /// Whether no further transition is possible.
    pub fn is_final(self) -> bool {
        matches!(self, OrderStatus::Delivered | OrderStatus::Cancelled)
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Confirmed => "confirmed",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Delivered => "delivered",
            OrderStatus::Cancelled => "cancelled",
        };
        f.write_str(s)
    }
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderItem {
    /// The product.
    pub product_id: String,
    /// Units ordered.
    pub quantity: u32,
    /// Unit price in cents.
    pub price_cents: i64,
}

impl OrderItem {
    /// `quantity × price_cents`, or `None` on overflow.
    pub fn line_total_cents(&self) -> Option<i64> {
        i64::from(self.quantity).checked_mul(self.price_cents)
    }
}

/// The Order aggregate's state (stream `"Order-{id}"`). Changed only by applying
/// [`OrderEvent`]s; the version is kept by [`Root`](evstore::aggregate::Root).
///
/// The default value is "no such order" ([`Order::exists`] is `false`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Order {
    exists: bool,
    id: String,
    user_id: String,
    items: Vec<OrderItem>,
    status: OrderStatus,
    total_cents: i64,
    cancel_reason: Option<String>,
    created_at: Option<DateTime<Utc>>,
    updated_at: Option<DateTime<Utc>>,
}

impl Order {
    /// Whether the order has been created.
    pub fn exists(&self) -> bool {
        self.exists
    }
    /// The order id (empty until created).
    pub fn id(&self) -> &str {
        &self.id
    }
    /// The customer (empty until created).
    pub fn user_id(&self) -> &str {
        &self.user_id
    }
    /// The lines, in the order they were added (adding a product twice makes two lines).
    pub fn items(&self) -> &[OrderItem] {
        &self.items
    }
    /// The life-cycle status (`Pending` for an order not yet created; see [`Order::exists`]).
    pub fn status(&self) -> OrderStatus {
        self.status
    }
    /// Sum of the line totals, in cents.
    pub fn total_cents(&self) -> i64 {
        self.total_cents
    }
    /// The reason given when the order was cancelled.
    pub fn cancel_reason(&self) -> Option<&str> {
        self.cancel_reason.as_deref()
    }
    /// When the order was created (from the `OrderCreated` event).
    pub fn created_at(&self) -> Option<DateTime<Utc>> {
        self.created_at
    }
    /// When the last event happened (from its `at`).
    pub fn updated_at(&self) -> Option<DateTime<Utc>> {
        self.updated_at
    }
}

/// What can be asked of an order.
///
/// Commands carry no time: [`Order::handle`] stamps each event's `at` with `Utc::now()` when
/// it decides (so a retried command is stamped again at the retry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderCommand {
    /// Create the order. `order_id` must be the aggregate id it is executed on (checked by
    /// [`OrderService`](crate::OrderService)).
    Create {
        /// The new order's id.
        order_id: String,
        /// The customer.
        user_id: String,
    },
    /// Add a line to a pending order.
    AddItem {
        /// The product.
        product_id: String,
        /// Units (> 0).
        quantity: u32,
        /// Unit price in cents (≥ 0).
        price_cents: i64,
    },
    /// Confirm a pending, non-empty order.
    Confirm,
    /// Cancel a pending or confirmed order, releasing the units its lines reserved.
    Cancel {
        /// Why.
        reason: String,
    },
    /// Ship a confirmed order.
    Ship,
    /// Mark a shipped order delivered.
    Deliver,
}

/// Why an order command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// `Create` on an order that already exists.
    #[error("order {order_id:?} already exists")]
    AlreadyExists {
        /// The existing order.
        order_id: String,
    },
    /// A command other than `Create` on an order that does not exist.
    #[error("order {order_id:?} not found")]
    NotFound {
        /// The order asked for (filled in by the service; empty from [`Order::handle`]).
        order_id: String,
    },
    /// `Create` executed on an aggregate whose id differs from the command's `order_id`.
    #[error("command is for order {command_id:?} but was executed on {aggregate_id:?}")]
    IdMismatch {
        /// The id in the command.
        command_id: String,
        /// The aggregate it was executed on.
        aggregate_id: String,
    },
    /// A required text field is empty (`user_id`, `product_id`).
    #[error("{field} must not be empty")]
    EmptyField {
        /// The field's name.
        field: &'static str,
    },
    /// A product id longer than [`MAX_PRODUCT_ID_LEN`](crate::MAX_PRODUCT_ID_LEN) bytes (its
    /// tag `product:<id>` must fit the store's tag limit).
    #[error("product_id must be at most {max} bytes, got {len}")]
    ProductIdTooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// `AddItem` with quantity 0.
    #[error("quantity must be greater than zero")]
    InvalidQuantity,
    /// `AddItem` with a negative price.
    #[error("price must not be negative, got {price_cents} cents")]
    NegativePrice {
        /// The refused price.
        price_cents: i64,
    },
    /// `AddItem` on an order that is no longer pending.
    #[error("items can only be added to a pending order, this one is {status}")]
    NotPending {
        /// The order's status.
        status: OrderStatus,
    },
    /// `Confirm` on an order without items.
    #[error("cannot confirm an order without items")]
    EmptyOrder,
    /// A status change the life cycle does not allow.
    #[error("cannot go from {from} to {to}")]
    InvalidTransition {
        /// The current status.
        from: OrderStatus,
        /// The status the command asked for.
        to: OrderStatus,
    },
    /// A line total or the order total would not fit in an `i64` of cents.
    #[error(
        "order total overflows: {quantity} × {price_cents} cents added to {total_cents} cents"
    )]
    Overflow {
        /// The refused line's quantity.
        quantity: u32,
        /// The refused line's unit price, in cents.
        price_cents: i64,
        /// The order total before the line, in cents.
        total_cents: i64,
    },
    /// `AddItem` asking for more units of a limited product than are left: its stock
    /// ([`OrderService::set_stock`](crate::OrderService::set_stock)) minus the units reserved
    /// by every order's items, plus the units cancelled orders released. Checked by
    /// [`OrderService`](crate::OrderService), atomically with the append.
    #[error(
        "product {product_id:?} would be oversold: {requested} requested, {available} available"
    )]
    OutOfStock {
        /// The product.
        product_id: String,
        /// Units the refused line asked for.
        requested: u64,
        /// Units still available when the decision was taken.
        available: u64,
    },
    /// [`OrderService::set_stock`](crate::OrderService::set_stock) on a storage whose events
    /// cannot carry tags (a log of format version 1): the stock rule is enforced with tags,
    /// so it could not hold there. `evstore copy` the log into a new file first.
    #[error("product {product_id:?}: a stock limit needs a log whose events carry tags (format version 2); `evstore copy` this log into a new file first")]
    StockNeedsTags {
        /// The product.
        product_id: String,
    },
    /// [`OrderService::set_stock`](crate::OrderService::set_stock) below the units orders
    /// already reserve.
    #[error("product {product_id:?} cannot have {stock} units: orders already reserve {reserved}")]
    StockBelowReserved {
        /// The product.
        product_id: String,
        /// The refused stock.
        stock: u64,
        /// Units reserved when the decision was taken.
        reserved: u64,
    },
}

impl Order {
    fn require_exists(&self) -> Result<(), OrderError> {
        if self.exists {
            Ok(())
        } else {
            Err(OrderError::NotFound {
                order_id: String::new(),
            })
        }
    }

    /// The units the order's lines hold, summed per product (sorted by product id): what a
    /// cancellation gives back.
    fn reserved_units(&self) -> Vec<StockRelease> {
        let mut per_product: BTreeMap<&str, u64> = BTreeMap::new();
        for item in &self.items {
            *per_product.entry(item.product_id.as_str()).or_default() += u64::from(item.quantity);
        }
        per_product
            .into_iter()
            .map(|(product_id, quantity)| StockRelease {
                product_id: product_id.to_string(),
                quantity,
            })
            .collect()
    }

    fn transition(&self, to: OrderStatus) -> Result<(), OrderError> {
        if self.status.can_become(to) {
            Ok(())
        } else {
            Err(OrderError::InvalidTransition {
                from: self.status,
                to,
            })
        }
    }
}

impl Aggregate for Order {
    const TYPE_NAME: &'static str = "Order";
    type Event = OrderEvent;
    type Command = OrderCommand;
    type Error = OrderError;

    fn apply(&mut self, event: &OrderEvent) {
        // Events are facts: apply never fails. Totals saturate rather than wrap (handle refuses
        // any command that would overflow, so only a hand-written log can reach the bound).
        match event {
            OrderEvent::OrderCreated(e) => {
                self.exists = true;
                self.id.clone_from(&e.order_id);
                self.user_id.clone_from(&e.user_id);
                self.status = OrderStatus::Pending;
                self.created_at = Some(e.at);
            }
            OrderEvent::ItemAddedToOrder(e) => {
                let item = OrderItem {
                    product_id: e.product_id.clone(),
                    quantity: e.quantity,
                    price_cents: e.price_cents,
                };
                let line = i64::from(e.quantity).saturating_mul(e.price_cents);
                self.total_cents = self.total_cents.saturating_add(line);
                self.items.push(item);
            }
            OrderEvent::OrderConfirmed(_) => self.status = OrderStatus::Confirmed,
            OrderEvent::OrderCancelled(e) => {
                self.status = OrderStatus::Cancelled;
                self.cancel_reason = Some(e.reason.clone());
            }
            OrderEvent::OrderShipped(_) => self.status = OrderStatus::Shipped,
            OrderEvent::OrderDelivered(_) => self.status = OrderStatus::Delivered,
        }
        self.updated_at = Some(event.at());
    }

    fn handle(&self, command: &OrderCommand) -> Result<Vec<OrderEvent>, OrderError> {
        let at = Utc::now();
        let event = match command {
            OrderCommand::Create { order_id, user_id } => {
                if self.exists {
                    return Err(OrderError::AlreadyExists {
                        order_id: self.id.clone(),
                    });
                }
                if user_id.is_empty() {
                    return Err(OrderError::EmptyField { field: "user_id" });
                }
                OrderEvent::OrderCreated(OrderCreated {
                    order_id: order_id.clone(),
                    user_id: user_id.clone(),
                    at,
                })
            }
            OrderCommand::AddItem {
                product_id,
                quantity,
                price_cents,
            } => {
                self.require_exists()?;
                if product_id.is_empty() {
                    return Err(OrderError::EmptyField {
                        field: "product_id",
                    });
                }
                if product_id.len() > crate::MAX_PRODUCT_ID_LEN {
                    return Err(OrderError::ProductIdTooLong {
                        len: product_id.len(),
                        max: crate::MAX_PRODUCT_ID_LEN,
                    });
                }
                if *quantity == 0 {
                    return Err(OrderError::InvalidQuantity);
                }
                if *price_cents < 0 {
                    return Err(OrderError::NegativePrice {
                        price_cents: *price_cents,
                    });
                }
                if self.status != OrderStatus::Pending {
                    return Err(OrderError::NotPending {
                        status: self.status,
                    });
                }
                let overflow = || OrderError::Overflow {
                    quantity: *quantity,
                    price_cents: *price_cents,
                    total_cents: self.total_cents,
                };
                i64::from(*quantity)
                    .checked_mul(*price_cents)
                    .and_then(|line| self.total_cents.checked_add(line))
                    .ok_or_else(overflow)?;
                OrderEvent::ItemAddedToOrder(ItemAddedToOrder {
                    product_id: product_id.clone(),
                    quantity: *quantity,
                    price_cents: *price_cents,
                    at,
                })
            }
            OrderCommand::Confirm => {
                self.require_exists()?;
                self.transition(OrderStatus::Confirmed)?;
                if self.items.is_empty() {
                    return Err(OrderError::EmptyOrder);
                }
                OrderEvent::OrderConfirmed(OrderConfirmed { at })
            }
            OrderCommand::Cancel { reason } => {
                self.require_exists()?;
                self.transition(OrderStatus::Cancelled)?;
                OrderEvent::OrderCancelled(OrderCancelled {
                    reason: reason.clone(),
                    at,
                    released: self.reserved_units(),
                })
            }
            OrderCommand::Ship => {
                self.require_exists()?;
                self.transition(OrderStatus::Shipped)?;
                OrderEvent::OrderShipped(OrderShipped { at })
            }
            OrderCommand::Deliver => {
                self.require_exists()?;
                self.transition(OrderStatus::Delivered)?;
                OrderEvent::OrderDelivered(OrderDelivered { at })
            }
        };
        Ok(vec![event])
    }
}
