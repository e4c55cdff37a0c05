//! The Order summaries read model in PostgreSQL: the seed's `order_projections` table
//! (`migrations/0002_read_side.sql`), money in integer cents, kept by a [`PgProjector`] so each
//! event is applied exactly once.
//!
//! [`PgProjector`]: crate::PgProjector

use chrono::{DateTime, Utc};
use evstore::aggregate::Aggregate;
use evstore::subscription::SubscriptionFilter;
use evstore::{RecordedEvent, Result};
use evstore_orders::projections::decode_order_event;
use evstore_orders::{Order, OrderEvent, OrderStatus};

use crate::readmodel::TableProjection;
use crate::store::{col, pg, to_i64, to_u64, PgStore};

/// One row of `order_projections`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRow {
    /// The order id (the stream is `Order-<order_id>`).
    pub order_id: String,
    /// The customer.
    pub user_id: String,
    /// `pending`, `confirmed`, `shipped`, `delivered` or `cancelled`.
    pub status: String,
    /// Sum of quantity × unit price, in cents (saturating).
    pub total_cents: i64,
    /// Units ordered (sum of quantities).
    pub item_count: i64,
    /// The `OrderCreated` event's time.
    pub created_at: DateTime<Utc>,
    /// The last applied event's time.
    pub updated_at: DateTime<Utc>,
    /// The stream version of the last applied event.
    pub version: u64,
}

/// The Order summaries as a [`TableProjection`]. Events that do not decode, or that come before
/// their order's `OrderCreated`, are counted in [`OrderSummariesTable::skipped`] and skipped.
#[derive(Debug, Default)]
pub struct OrderSummariesTable {
    skipped: u64,
}

impl OrderSummariesTable {
    /// Order events skipped by this instance (undecodable or out of order).
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// The summary of `order_id`.
    ///
    /// # Errors
    /// [`evstore::Error::Io`] from the server.
    pub fn order(store: &PgStore, order_id: &str) -> Result<Option<OrderRow>> {
        let row = store
            .conn()?
            .query_opt(&format!("{SELECT} WHERE order_id = $1"), &[&order_id])
            .map_err(pg)?;
        row.as_ref().map(order_row).transpose()
    }

    /// The orders of `user_id`, newest first.
    ///
    /// # Errors
    /// [`evstore::Error::Io`] from the server.
    pub fn user_orders(store: &PgStore, user_id: &str) -> Result<Vec<OrderRow>> {
        let rows = store
            .conn()?
            .query(
                &format!("{SELECT} WHERE user_id = $1 ORDER BY created_at DESC, order_id"),
                &[&user_id],
            )
            .map_err(pg)?;
        rows.iter().map(order_row).collect()
    }
}

const SELECT: &str = "SELECT order_id, user_id, status, total_cents, item_count, created_at, \
                      updated_at, version FROM order_projections";

fn order_row(r: &postgres::Row) -> Result<OrderRow> {
    Ok(OrderRow {
        order_id: col(r, 0)?,
        user_id: col(r, 1)?,
        status: col(r, 2)?,
        total_cents: col(r, 3)?,
        item_count: i64::from(col::<i32>(r, 4)?),
        created_at: col(r, 5)?,
        updated_at: col(r, 6)?,
        version: to_u64(col(r, 7)?)?,
    })
}

impl TableProjection for OrderSummariesTable {
    const NAME: &'static str = "order-summaries-pg";
    const VERSION: u32 = 1;

    fn filter(&self) -> SubscriptionFilter {
        SubscriptionFilter::all().with_stream_prefix(format!("{}-", Order::TYPE_NAME))
    }

    fn reset(&mut self, tx: &mut postgres::Transaction<'_>) -> Result<()> {
        tx.batch_execute("DELETE FROM order_projections")
            .map_err(pg)
    }

    fn apply(&mut self, tx: &mut postgres::Transaction<'_>, e: &RecordedEvent) -> Result<()> {
        let Some(order_id) = e
            .stream_id
            .strip_prefix(Order::TYPE_NAME)
            .and_then(|s| s.strip_prefix('-'))
        else {
            return Ok(());
        };
        let Some(event) = decode_order_event(e) else {
            self.skipped += 1;
            return Ok(());
        };
        let version = to_i64(e.version);
        let at = event.at();
        let changed = match &event {
            OrderEvent::OrderCreated(c) => tx.execute(
                "INSERT INTO order_projections (order_id, user_id, status, total_cents, \
                     item_count, created_at, updated_at, version) \
                 VALUES ($1, $2, 'pending', 0, 0, $3, $3, $4) ON CONFLICT (order_id) DO NOTHING",
                &[&order_id, &c.user_id, &c.at, &version],
            ),
            OrderEvent::ItemAddedToOrder(i) => {
                let line = i64::from(i.quantity).saturating_mul(i.price_cents);
                let qty = i32::try_from(i.quantity).unwrap_or(i32::MAX);
                tx.execute(
                    "UPDATE order_projections SET \
                         total_cents = LEAST(GREATEST(total_cents::numeric + $2::bigint, -9223372036854775808), 9223372036854775807)::bigint, \
                         item_count = LEAST(item_count::bigint + $3, 2147483647)::integer, \
                         updated_at = $4, version = $5 WHERE order_id = $1",
                    &[&order_id, &line, &i64::from(qty), &at, &version],
                )
            }
            other => {
                let status = match other {
                    OrderEvent::OrderConfirmed(_) => OrderStatus::Confirmed,
                    OrderEvent::OrderCancelled(_) => OrderStatus::Cancelled,
                    OrderEvent::OrderShipped(_) => OrderStatus::Shipped,
                    _ => OrderStatus::Delivered,
                };
                tx.execute(
                    "UPDATE order_projections SET status = $2, updated_at = $3, version = $4 \
                     WHERE order_id = $1",
                    &[&order_id, &status.to_string(), &at, &version],
                )
            }
        }
        .map_err(pg)?;
        if changed == 0 {
            // An event before its order's OrderCreated, or a second OrderCreated.
            self.skipped += 1;
        }
        Ok(())
    }
}
