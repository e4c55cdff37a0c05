//! [`OrderService`]: the application API of the Order domain over a [`Repository`].

use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::state::{Order, OrderCommand, OrderError};
use super::upcast::upcasters;
use evstore::aggregate::{CommandContext, Root};
use evstore::repository::{HistoryEntry, Repository, RepositoryError, DEFAULT_SNAPSHOT_EVERY};
use evstore::EventStorage;

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
}

impl<S: EventStorage + Clone> Clone for OrderService<S> {
    fn clone(&self) -> Self {
        OrderService {
            repo: self.repo.clone(),
            max_attempts: self.max_attempts,
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
        OrderService {
            repo: Repository::new(storage)
                .with_upcasters(Arc::new(upcasters()))
                .with_snapshot_every(DEFAULT_SNAPSHOT_EVERY),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
        }
    }

    /// A service over a repository configured by the caller (snapshot policy, upcasters).
    pub fn from_repository(repo: Repository<Order, S>) -> OrderService<S> {
        OrderService {
            repo,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
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
    ///   `IdMismatch` when a `Create` names another id, `NotFound` naming `order_id`, ...);
    ///   nothing is written.
    /// - [`RepositoryError::TooManyConflicts`]: concurrent writers changed the order before
    ///   every one of the attempts (see [`OrderService::with_max_attempts`]).
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
        self.repo
            .execute(order_id, command, ctx, self.max_attempts)
            .map_err(|e| match e {
                RepositoryError::Domain(OrderError::NotFound { .. }) => {
                    RepositoryError::Domain(OrderError::NotFound {
                        order_id: order_id.to_string(),
                    })
                }
                other => other,
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
    /// (the line or the order total would not fit in an `i64` of cents).
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

    /// Cancel a pending or confirmed order.
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
