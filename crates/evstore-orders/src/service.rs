//! [`OrderService`]: the application API of the Order domain over a [`Repository`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::state::{Order, OrderCommand, OrderError};
use super::stock::{ProductEvent, ProductStock, ProductStockSet, PRODUCT_STREAM_PREFIX};
use super::upcast::upcasters;
use evstore::aggregate::{Aggregate, CommandContext, Root};
use evstore::repository::{
    HistoryEntry, Repository, RepositoryError, CONFLICT_WAIT, DEFAULT_SNAPSHOT_EVERY,
};
use evstore::saga::caused_event;
use evstore::upcast::Upcasters;
use evstore::{
    AppendCondition, Error, EventStorage, ExpectedVersion, NewEvent, Query, StreamAppend,
};

/// Errors of [`OrderService`]: a refused command is `RepositoryError::Domain(OrderError)`.
pub type OrderServiceError = RepositoryError<OrderError>;

/// Results of [`OrderService`].
pub type OrderResult<T> = Result<T, OrderServiceError>;

/// Default number of attempts of a command that meets concurrent writers: the repository's
/// ([`evstore::repository::DEFAULT_MAX_ATTEMPTS`]).
pub const DEFAULT_MAX_ATTEMPTS: u32 = evstore::repository::DEFAULT_MAX_ATTEMPTS;

/// Orders: create them, change them, read them now or as they were.
///
/// Every command goes through [`Repository::execute`]: load (from the latest snapshot), decide,
/// append with an optimistic version check, and on a conflict reload and decide again, up to
/// [`DEFAULT_MAX_ATTEMPTS`] times. The service reads legacy events through
/// [`upcasters`](crate::upcasters) and snapshots every [`DEFAULT_SNAPSHOT_EVERY`]
/// events unless told otherwise.
///
/// `AddItem` also obeys the stock rule, which spans all orders (see [`ProductStock`]): the
/// decision reads the product's events with [`EventStorage::read_query`], refuses an add that
/// would oversell ([`OrderError::OutOfStock`]), and appends with
/// [`EventStorage::append_if`] on the same query after the head it read; when another
/// order's item (or a stock change) got in first, it reads and decides again (the same
/// attempts as a version conflict). For a product whose stock was never set, the query is
/// only its stock events ([`ProductStock::limit_query`]), so adds of unlimited products stay
/// cheap and never conflict with each other. [`OrderService::set_stock`] limits a product;
/// cancelling an order releases what it reserved.
///
/// ```
/// use evstore_orders::{OrderError, OrderService, OrderStatus};
/// use evstore::repository::RepositoryError;
/// use evstore::Store;
/// # let dir = tempfile::tempdir().unwrap();
/// let store = Store::open(dir.path().join("shop.evs"))?;
/// let orders = OrderService::new(store).with_snapshot_every(10);
///
/// let id = orders.create_order("user-7")?;
/// orders.add_item(&id, "book", 2, 1250)?;            // 2 × 12.50
/// let order = orders.confirm(&id)?;
/// assert_eq!((order.status(), order.total_cents()), (OrderStatus::Confirmed, 2500));
///
/// // Rules are typed errors.
/// let refused = orders.deliver(&id).unwrap_err();
/// assert!(matches!(refused, RepositoryError::Domain(OrderError::InvalidTransition { .. })));
///
/// // Time travel: the order right after its first event.
/// let then = orders.load_at_version(&id, 0)?.unwrap();
/// assert!(then.items().is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct OrderService<S: EventStorage> {
    repo: Repository<Order, S>,
    max_attempts: u32,
    /// The Order upcasters, to decode the order events a stock query returns.
    upcasters: Arc<Upcasters>,
}

impl<S: EventStorage + Clone> Clone for OrderService<S> {
    fn clone(&self) -> Self {
        OrderService {
            repo: self.repo.clone(),
            max_attempts: self.max_attempts,
            upcasters: self.upcasters.clone(),
        }
    }
}

impl<S: EventStorage> std::fmt::Debug for OrderService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderService")
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

impl<S: EventStorage> OrderService<S> {
    /// A service over `storage`, with the Order upcasters, a snapshot every
    /// [`DEFAULT_SNAPSHOT_EVERY`] events and [`DEFAULT_MAX_ATTEMPTS`] attempts per command.
    pub fn new(storage: S) -> OrderService<S> {
        let upcasters = Arc::new(upcasters());
        OrderService {
            repo: Repository::new(storage)
                .with_upcasters(upcasters.clone())
                .with_snapshot_every(DEFAULT_SNAPSHOT_EVERY),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            upcasters,
        }
    }

    /// A service over a repository configured by the caller (snapshot policy, upcasters).
    /// Stock queries decode order events with the Order [`upcasters`](crate::upcasters).
    pub fn from_repository(repo: Repository<Order, S>) -> OrderService<S> {
        OrderService {
            repo,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            upcasters: Arc::new(upcasters()),
        }
    }

    /// Save a snapshot every `n` events (0: never).
    #[must_use = "the reconfigured service is returned, `self` is consumed"]
    pub fn with_snapshot_every(mut self, n: u64) -> Self {
        self.repo = self.repo.with_snapshot_every(n);
        self
    }

    /// Try a command at most `n` times (at least once) when it meets concurrent writers.
    #[must_use = "the reconfigured service is returned, `self` is consumed"]
    pub fn with_max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// The underlying repository (for history, time travel, raw saves).
    pub fn repository(&self) -> &Repository<Order, S> {
        &self.repo
    }

    /// Run `command` on order `order_id` under `ctx` (with retries on conflicts) and return
    /// the saved root. `Create` must name `order_id` itself.
    ///
    /// # Errors
    /// - [`RepositoryError::Domain`]: the rules refuse the command (an [`OrderError`]:
    ///   `IdMismatch` when a `Create` names another id, `NotFound` naming `order_id`,
    ///   `OutOfStock` when an `AddItem` would oversell a limited product, ...); nothing is
    ///   written.
    /// - [`RepositoryError::TooManyConflicts`]: concurrent writers changed the order (or, for
    ///   `AddItem`, the product's stock) before every one of the attempts (see
    ///   [`OrderService::with_max_attempts`]).
    /// - [`RepositoryError::Store`], [`RepositoryError::Decode`],
    ///   [`RepositoryError::Upcast`]: the order's events cannot be read, or the new ones
    ///   cannot be written.
    pub fn execute(
        &self,
        order_id: &str,
        command: &OrderCommand,
        ctx: &CommandContext,
    ) -> OrderResult<Root<Order>> {
        if let OrderCommand::Create {
            order_id: command_id,
            ..
        } = command
        {
            if command_id != order_id {
                return Err(RepositoryError::Domain(OrderError::IdMismatch {
                    command_id: command_id.clone(),
                    aggregate_id: order_id.to_string(),
                }));
            }
        }
        let result = match command {
            OrderCommand::AddItem { product_id, .. } => {
                self.execute_reserving(order_id, command, product_id, ctx)
            }
            _ => self.repo.execute(order_id, command, ctx, self.max_attempts),
        };
        result.map_err(|e| match e {
            RepositoryError::Domain(OrderError::NotFound { .. }) => {
                RepositoryError::Domain(OrderError::NotFound {
                    order_id: order_id.to_string(),
                })
            }
            other => other,
        })
    }

    /// `AddItem` under the stock rule: load and decide as [`Repository::execute`] does, then
    /// read the product's stock, refuse an oversell, and append conditioned on the product's
    /// query after the head the read saw. Retries on a version conflict and on a failed
    /// condition, up to `max_attempts` in all.
    fn execute_reserving(
        &self,
        order_id: &str,
        command: &OrderCommand,
        product_id: &str,
        ctx: &CommandContext,
    ) -> OrderResult<Root<Order>> {
        let storage = self.repo.storage();
        let stream = Order::stream_id(order_id);
        let mut actual = None;
        for attempt in 0..self.max_attempts {
            let mut root = self
                .repo
                .load(order_id)?
                .unwrap_or_else(|| Root::new(order_id));
            let pending = root.execute(command).map_err(RepositoryError::Domain)?;
            let requested: u64 = pending
                .iter()
                .map(|e| match e {
                    crate::OrderEvent::ItemAddedToOrder(i) => u64::from(i.quantity),
                    _ => 0,
                })
                .sum();
            let (stock, query) = self.stock_for_decision(product_id)?;
            if let Some(available) = stock.available() {
                if requested > available {
                    return Err(RepositoryError::Domain(OrderError::OutOfStock {
                        product_id: product_id.to_string(),
                        requested,
                        available,
                    }));
                }
            }
            let condition = AppendCondition::new(query.clone(), stock.head);
            // Saved through the repository: the same encoding and snapshots as every command.
            match self.repo.save_if(&mut root, ctx, &condition) {
                Ok(_) => return Ok(root),
                Err(RepositoryError::Conflict { actual: a, .. }) => {
                    actual = a;
                    if let Some(v) = a {
                        storage.wait_for_version(&stream, v, CONFLICT_WAIT)?;
                    }
                }
                Err(RepositoryError::Store(Error::AppendConditionFailed { positions, .. })) => {
                    self.wait_for_head(&query, positions.last().copied())?;
                }
                Err(e) => return Err(e),
            }
            conflict_backoff(attempt);
        }
        Err(RepositoryError::TooManyConflicts {
            stream,
            attempts: self.max_attempts,
            actual,
        })
    }

    /// The stock an add of `product_id` decides on, and the query its append condition must
    /// use: for a product whose stock was never set, only [`ProductStock::limit_query`] (it
    /// stays unlimited unless a stock is set meanwhile, which fails the condition); for a
    /// limited one, everything that reserves or releases it ([`ProductStock::query`]).
    fn stock_for_decision(&self, product_id: &str) -> OrderResult<(ProductStock, Query)> {
        let limit_query = ProductStock::limit_query(product_id);
        let (limits, head) = self.repo.storage().read_query(&limit_query, None)?;
        if limits.is_empty() {
            let unlimited = ProductStock {
                product_id: product_id.to_string(),
                stock: None,
                reserved: 0,
                head,
            };
            return Ok((unlimited, limit_query));
        }
        let query = ProductStock::query(product_id);
        Ok((self.read_stock(product_id, &query)?, query))
    }

    fn read_stock(&self, product_id: &str, query: &Query) -> OrderResult<ProductStock> {
        let (events, head) = self.repo.storage().read_query(query, None)?;
        ProductStock::fold(product_id, &events, head, &self.upcasters)
    }

    /// After a failed append condition: wait (up to [`CONFLICT_WAIT`]) until reads see the
    /// conflicting event at `position`. The condition counts appends still being written, a
    /// read sees only published ones; deciding again before the winner is visible would only
    /// fail again.
    fn wait_for_head(&self, query: &Query, position: Option<u64>) -> OrderResult<()> {
        let Some(position) = position else {
            return Ok(());
        };
        let deadline = Instant::now() + CONFLICT_WAIT;
        let mut pause = Duration::from_micros(200);
        // Bounded by the deadline.
        loop {
            let (_, head) = self
                .repo
                .storage()
                .read_query(query, Some(position.saturating_sub(1)))?;
            let now = Instant::now();
            if head.is_some_and(|h| h >= position) || now >= deadline {
                return Ok(());
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(16));
        }
    }

    /// Product `product_id`'s stock now: its limit (`None`: unlimited), the units orders
    /// reserve, and what is available ([`ProductStock::available`]).
    ///
    /// # Errors
    /// [`RepositoryError::Store`] when the query cannot be read (an invalid product id for a
    /// tag: 1..=247 bytes); [`RepositoryError::Decode`] / [`RepositoryError::Upcast`] for an
    /// event that does not decode.
    pub fn product_stock(&self, product_id: &str) -> OrderResult<ProductStock> {
        if product_id.is_empty() {
            return Err(RepositoryError::Domain(OrderError::EmptyField {
                field: "product_id",
            }));
        }
        if product_id.len() > crate::MAX_PRODUCT_ID_LEN {
            return Err(RepositoryError::Domain(OrderError::ProductIdTooLong {
                len: product_id.len(),
                max: crate::MAX_PRODUCT_ID_LEN,
            }));
        }
        self.read_stock(product_id, &ProductStock::query(product_id))
    }

    /// Limit `product_id` to `stock` units in total (reserved ones included): record a
    /// [`ProductStockSet`] in stream `"Product-<id>"`, tagged with the product. Refused when
    /// orders already reserve more than `stock`, checked atomically with the append (an item
    /// added meanwhile makes it read and decide again). Returns the stock right after.
    ///
    /// # Errors
    /// [`OrderError::EmptyField`] and [`OrderError::ProductIdTooLong`] (`product_id`),
    /// [`OrderError::StockBelowReserved`], [`OrderError::StockNeedsTags`] (a format version 1
    /// log) as [`RepositoryError::Domain`]; [`RepositoryError::TooManyConflicts`] when orders kept
    /// reserving the product through every attempt; the errors of
    /// [`OrderService::product_stock`] and of the append.
    pub fn set_stock(&self, product_id: &str, stock: u64) -> OrderResult<ProductStock> {
        if !self.repo.storage().supports_tags() {
            return Err(RepositoryError::Domain(OrderError::StockNeedsTags {
                product_id: product_id.to_string(),
            }));
        }
        let query = ProductStock::query(product_id);
        let stream = format!("{PRODUCT_STREAM_PREFIX}{product_id}");
        for attempt in 0..self.max_attempts {
            let now = self.product_stock(product_id)?;
            if stock < now.reserved {
                return Err(RepositoryError::Domain(OrderError::StockBelowReserved {
                    product_id: product_id.to_string(),
                    stock,
                    reserved: now.reserved,
                }));
            }
            let event = ProductEvent::ProductStockSet(ProductStockSet {
                product_id: product_id.to_string(),
                stock,
                at: Utc::now(),
            });
            let events = new_events(&[event], &CommandContext::new_request())?;
            let condition = AppendCondition::new(query.clone(), now.head);
            match self
                .repo
                .storage()
                .append_if(&stream, ExpectedVersion::Any, &events, &condition)
            {
                Ok(result) => {
                    return Ok(ProductStock {
                        stock: Some(stock),
                        head: Some(result.last_position),
                        ..now
                    })
                }
                Err(Error::AppendConditionFailed { positions, .. }) => {
                    self.wait_for_head(&query, positions.last().copied())?;
                }
                Err(e) => return Err(e.into()),
            }
            conflict_backoff(attempt);
        }
        Err(RepositoryError::TooManyConflicts {
            stream,
            attempts: self.max_attempts,
            actual: None,
        })
    }

    /// Run `command` on order `order_id` under `ctx` and append its events **in one atomic
    /// multi-stream append** ([`EventStorage::append_multi`]) together with `with`: the
    /// order's events and every part of `with` are all written, or none is. Used by the
    /// order saga to record its own event in the same unit as the command it sends.
    ///
    /// A version conflict on the order stream reloads, decides again and retries (as
    /// [`OrderService::execute`]); a conflict on a stream of `with` is returned at once
    /// (the caller's expected version is stale: deciding again is the caller's business).
    /// A command that records no event writes nothing (not even `with`).
    ///
    /// # Errors
    /// - [`RepositoryError::Domain`]: the rules refuse the command; nothing is written.
    /// - [`RepositoryError::Conflict`] naming a stream of `with` whose expected version does
    ///   not hold; nothing is written.
    /// - [`RepositoryError::Store`] with [`Error::InvalidInput`] for `AddItem` (its stock
    ///   condition needs [`OrderService::execute`]) or for a `Create` naming another id; the
    ///   errors of [`OrderService::execute`] otherwise.
    pub fn execute_with(
        &self,
        order_id: &str,
        command: &OrderCommand,
        ctx: &CommandContext,
        with: &[StreamAppend],
    ) -> OrderResult<Root<Order>> {
        match command {
            OrderCommand::AddItem { .. } => {
                return Err(RepositoryError::Store(Error::InvalidInput(
                    "AddItem reserves stock: run it with OrderService::execute".into(),
                )))
            }
            OrderCommand::Create {
                order_id: command_id,
                ..
            } if command_id != order_id => {
                return Err(RepositoryError::Domain(OrderError::IdMismatch {
                    command_id: command_id.clone(),
                    aggregate_id: order_id.to_string(),
                }))
            }
            _ => {}
        }
        let storage = self.repo.storage();
        let stream = Order::stream_id(order_id);
        let mut actual = None;
        for attempt in 0..self.max_attempts {
            let mut root = self
                .repo
                .load(order_id)?
                .unwrap_or_else(|| Root::new(order_id));
            root.execute(command).map_err(|e| match e {
                OrderError::NotFound { .. } => RepositoryError::Domain(OrderError::NotFound {
                    order_id: order_id.to_string(),
                }),
                other => RepositoryError::Domain(other),
            })?;
            if root.pending().is_empty() {
                return Ok(root);
            }
            let expected = root
                .version()
                .map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
            let mut parts = vec![StreamAppend::new(
                &stream,
                expected,
                new_events(root.pending(), ctx)?,
            )];
            parts.extend_from_slice(with);
            match storage.append_multi(&parts) {
                Ok(results) => {
                    let last = results.first().map_or(0, |r| r.last_version);
                    return self.repo.load_at_version(order_id, last)?.ok_or_else(|| {
                        RepositoryError::Store(Error::InvalidInput(format!(
                            "{stream:?} lost version {last} right after appending it"
                        )))
                    });
                }
                Err(Error::WrongExpectedVersion {
                    stream: conflicted,
                    actual: a,
                    ..
                }) if conflicted == stream => {
                    actual = a;
                    if let Some(v) = a {
                        storage.wait_for_version(&stream, v, CONFLICT_WAIT)?;
                    }
                }
                Err(e) => return Err(e.into()),
            }
            conflict_backoff(attempt);
        }
        Err(RepositoryError::TooManyConflicts {
            stream,
            attempts: self.max_attempts,
            actual,
        })
    }

    fn run(&self, order_id: &str, command: &OrderCommand) -> OrderResult<Order> {
        let root = self.execute(order_id, command, &CommandContext::new_request())?;
        Ok(root.state().clone())
    }

    /// Create an order for `user_id` under a new random id (UUID v4), returned.
    ///
    /// # Errors
    /// As [`OrderService::create_order_with_id`].
    pub fn create_order(&self, user_id: &str) -> OrderResult<String> {
        let order_id = Uuid::new_v4().to_string();
        self.create_order_with_id(&order_id, user_id)?;
        Ok(order_id)
    }

    /// Create an order under an id chosen by the caller (`AlreadyExists` if taken).
    ///
    /// # Errors
    /// As [`OrderService::execute`]; refusals: [`OrderError::AlreadyExists`] (the id is
    /// taken), [`OrderError::EmptyField`] (`user_id` is empty).
    pub fn create_order_with_id(&self, order_id: &str, user_id: &str) -> OrderResult<Order> {
        self.run(
            order_id,
            &OrderCommand::Create {
                order_id: order_id.to_string(),
                user_id: user_id.to_string(),
            },
        )
    }

    /// Add `quantity` units of `product_id` at `price_cents` (cents, ≥ 0) each to a pending
    /// order.
    ///
    /// # Errors
    /// As [`OrderService::execute`]; refusals: [`OrderError::NotFound`],
    /// [`OrderError::EmptyField`] (`product_id`), [`OrderError::InvalidQuantity`] (0),
    /// [`OrderError::NegativePrice`], [`OrderError::NotPending`], [`OrderError::Overflow`]
    /// (the line or the order total would not fit in an `i64` of cents),
    /// [`OrderError::OutOfStock`] (the product is limited and fewer than `quantity` units are
    /// left).
    pub fn add_item(
        &self,
        order_id: &str,
        product_id: &str,
        quantity: u32,
        price_cents: i64,
    ) -> OrderResult<Order> {
        self.run(
            order_id,
            &OrderCommand::AddItem {
                product_id: product_id.to_string(),
                quantity,
                price_cents,
            },
        )
    }

    /// Confirm a pending order that has items.
    ///
    /// # Errors
    /// As [`OrderService::execute`]; refusals: [`OrderError::NotFound`],
    /// [`OrderError::InvalidTransition`] (not pending), [`OrderError::EmptyOrder`].
    pub fn confirm(&self, order_id: &str) -> OrderResult<Order> {
        self.run(order_id, &OrderCommand::Confirm)
    }

    /// Cancel a pending or confirmed order; the units its lines reserved go back to stock
    /// (the `OrderCancelled` event lists and is tagged with them).
    ///
    /// # Errors
    /// As [`OrderService::execute`]; refusals: [`OrderError::NotFound`],
    /// [`OrderError::InvalidTransition`] (shipped, delivered or already cancelled).
    pub fn cancel(&self, order_id: &str, reason: &str) -> OrderResult<Order> {
        self.run(
            order_id,
            &OrderCommand::Cancel {
                reason: reason.to_string(),
            },
        )
    }

    /// Ship a confirmed order.
    ///
    /// # Errors
    /// As [`OrderService::execute`]; refusals: [`OrderError::NotFound`],
    /// [`OrderError::InvalidTransition`] (not confirmed).
    pub fn ship(&self, order_id: &str) -> OrderResult<Order> {
        self.run(order_id, &OrderCommand::Ship)
    }

    /// Mark a shipped order delivered.
    ///
    /// # Errors
    /// As [`OrderService::execute`]; refusals: [`OrderError::NotFound`],
    /// [`OrderError::InvalidTransition`] (not shipped).
    pub fn deliver(&self, order_id: &str) -> OrderResult<Order> {
        self.run(order_id, &OrderCommand::Deliver)
    }

    /// The order as it is now (`None`: no such order).
    ///
    /// # Errors
    /// [`RepositoryError::Store`], [`RepositoryError::Decode`] or [`RepositoryError::Upcast`]:
    /// the order's events cannot be read or turned into [`OrderEvent`](crate::OrderEvent)s.
    pub fn get_order(&self, order_id: &str) -> OrderResult<Option<Order>> {
        Ok(self.repo.load(order_id)?.map(|r| r.state().clone()))
    }

    /// The order right after its event at `version` (`None`: it did not exist yet).
    ///
    /// # Errors
    /// [`RepositoryError::Store`], [`RepositoryError::Decode`] or [`RepositoryError::Upcast`]:
    /// the order's events cannot be read or turned into [`OrderEvent`](crate::OrderEvent)s.
    pub fn load_at_version(&self, order_id: &str, version: u64) -> OrderResult<Option<Order>> {
        Ok(self
            .repo
            .load_at_version(order_id, version)?
            .map(|r| r.state().clone()))
    }

    /// The order as it was at `at` (events recorded at or before `at`).
    ///
    /// # Errors
    /// [`RepositoryError::Store`], [`RepositoryError::Decode`] or [`RepositoryError::Upcast`]:
    /// the order's events cannot be read or turned into [`OrderEvent`](crate::OrderEvent)s.
    pub fn load_as_of(&self, order_id: &str, at: DateTime<Utc>) -> OrderResult<Option<Order>> {
        Ok(self
            .repo
            .load_as_of(order_id, at)?
            .map(|r| r.state().clone()))
    }

    /// Every event of the order with its metadata and the state right after it.
    ///
    /// # Errors
    /// [`RepositoryError::Store`], [`RepositoryError::Decode`] or [`RepositoryError::Upcast`]:
    /// the order's events cannot be read or turned into [`OrderEvent`](crate::OrderEvent)s.
    pub fn history(&self, order_id: &str) -> OrderResult<Vec<HistoryEntry<Order>>> {
        self.repo.history(order_id)
    }
}

/// The new events of `pending`, stamped with `ctx` (ids `ctx.event_id(i)`, correlation,
/// causation, extras) and tagged with their [`DomainEvent::tags`](evstore::aggregate::DomainEvent::tags),
/// as [`Repository::save`] writes them.
pub(crate) fn new_events<E: evstore::aggregate::DomainEvent>(
    pending: &[E],
    ctx: &CommandContext,
) -> OrderResult<Vec<NewEvent>> {
    pending
        .iter()
        .enumerate()
        .map(|(i, e)| caused_event(e, ctx, i))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| RepositoryError::Store(Error::Encoding(e)))
}

/// The pause after conflict number `attempt` (0-based): none for the first two, then a random
/// pause below 2^min(attempt, 8) × 20 µs, so writers that keep colliding fall out of step (as
/// [`Repository::execute`] does).
fn conflict_backoff(attempt: u32) {
    if attempt < 2 {
        return;
    }
    let ceiling_us = 20u64 << attempt.min(8);
    let noise = Uuid::new_v4().as_u64_pair().1;
    std::thread::sleep(Duration::from_micros(noise % ceiling_us));
}
