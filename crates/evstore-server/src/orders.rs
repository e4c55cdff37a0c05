//! The Order domain over HTTP: the seed service's endpoints (same paths, query parameters and
//! response shapes, JSON bodies also accepted) plus ship, deliver, cancel, history and time
//! travel.
//!
//! Commands go through [`OrderService`](evstore_orders::OrderService), which retries on
//! version conflicts, so concurrent requests on one order never lose an update. Reads of the
//! current state come from the order projection ([`OrderSummaries`]), after it has caught up
//! with the log's head as of the request (read-your-writes); time travel replays the order's
//! events (`?at_version=` a stream version, `?as_of=` an RFC 3339 time compared with the
//! events' `recorded_at`).
//!
//! Money: `price` is a decimal amount in major units (`"12.50"`, or the JSON number `12.5`),
//! parsed exactly; `price_cents` (an integer) may be given instead. Amounts are answered as
//! `total_amount` (a decimal string, `"25.00"`) beside `total_cents` (an integer).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use evstore::aggregate::{CommandContext, Root};
use evstore_orders::projections::OrderSummary;
use evstore_orders::{Order, OrderCommand};

use crate::money::format_cents;
use crate::params::{validate_id, Input, MAX_TEXT_BYTES};
use crate::problem::{ApiError, Problem};
use crate::state::{blocking, AppState};
use crate::streams::event_json;

/// How long a read waits for the order projection to reach the head before answering 503.
const READ_MODEL_WAIT: Duration = Duration::from_secs(5);

/// `POST /orders` answer (the seed's shape, `{"order_id": ...}`, plus the version).
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderCreated {
    /// The new order's id (a UUID unless the request chose one).
    pub order_id: String,
    /// The customer.
    pub user_id: String,
    /// The order stream's version after the command (0).
    pub version: u64,
}

/// Answer to a command on an order (the seed's `{"message": ...}` plus the order afterwards).
#[derive(Debug, Serialize, ToSchema)]
pub struct CommandDone {
    /// What happened, as the seed says it (e.g. `"Item added successfully"`).
    pub message: String,
    /// The order, right after the command.
    pub order: OrderView,
}

/// One line of an order.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemView {
    /// The product.
    pub product_id: String,
    /// Units.
    pub quantity: u32,
    /// Unit price, decimal string in major units (`"12.50"`).
    pub price: String,
    /// Unit price in cents.
    pub price_cents: i64,
    /// `quantity × price`, decimal string.
    pub line_total: String,
}

/// An order. From the projection (`GET /orders/{id}`, user orders) `items` is absent; from a
/// replay (commands, time travel) it is present and `line_count`/`item_count` are derived
/// from it.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderView {
    /// The order id.
    pub order_id: String,
    /// The customer.
    pub user_id: String,
    /// `pending`, `confirmed`, `shipped`, `delivered` or `cancelled`.
    pub status: String,
    /// Total, decimal string in major units (`"25.00"`): exact.
    pub total_amount: String,
    /// Total in cents.
    pub total_cents: i64,
    /// Units ordered (sum of quantities).
    pub item_count: u64,
    /// Lines.
    pub line_count: u64,
    /// When the order was created.
    pub created_at: Option<DateTime<Utc>>,
    /// When its last event happened.
    pub updated_at: Option<DateTime<Utc>>,
    /// Stream version of the last event included (0: just created).
    pub version: u64,
    /// The stream's current version (time travel: how far one can step forward).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_version: Option<u64>,
    /// Why it was cancelled.
    pub cancel_reason: Option<String>,
    /// The lines (replays only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<ItemView>>,
}

impl OrderView {
    fn from_summary(s: &OrderSummary) -> OrderView {
        OrderView {
            order_id: s.order_id.clone(),
            user_id: s.user_id.clone(),
            status: s.status.to_string(),
            total_amount: format_cents(s.total_cents),
            total_cents: s.total_cents,
            item_count: s.item_count,
            line_count: u64::from(s.line_count),
            created_at: Some(s.created_at),
            updated_at: Some(s.updated_at),
            version: s.version,
            current_version: None,
            cancel_reason: s.cancel_reason.clone(),
            items: None,
        }
    }

    /// An order from a replay, at `version`.
    pub fn from_order(o: &Order, version: u64) -> OrderView {
        let items: Vec<ItemView> = o
            .items()
            .iter()
            .map(|i| ItemView {
                product_id: i.product_id.clone(),
                quantity: i.quantity,
                price: format_cents(i.price_cents),
                price_cents: i.price_cents,
                line_total: format_cents(i.line_total_cents().unwrap_or(i64::MAX)),
            })
            .collect();
        OrderView {
            order_id: o.id().to_string(),
            user_id: o.user_id().to_string(),
            status: o.status().to_string(),
            total_amount: format_cents(o.total_cents()),
            total_cents: o.total_cents(),
            item_count: o.items().iter().map(|i| u64::from(i.quantity)).sum(),
            line_count: items.len() as u64,
            created_at: o.created_at(),
            updated_at: o.updated_at(),
            version,
            current_version: None,
            cancel_reason: o.cancel_reason().map(str::to_string),
            items: Some(items),
        }
    }
}

/// `GET /users/{user_id}/orders` answer (the seed's shape).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserOrders {
    /// The user's orders, newest first.
    pub orders: Vec<OrderView>,
}

/// One step of an order's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryStep {
    /// The event, as `/streams` shows events (Order payload decoded).
    #[schema(value_type = crate::streams::EventJson)]
    pub event: serde_json::Value,
    /// The order right after it.
    pub order: OrderView,
}

/// `GET /orders/{order_id}/history` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderHistory {
    /// The order id.
    pub order_id: String,
    /// Every event with the state after it, oldest first.
    pub steps: Vec<HistoryStep>,
}

/// Parameters of `POST /orders` (query string or JSON body).
#[derive(Debug, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
#[allow(
    dead_code,
    reason = "the OpenAPI description of input that `Input` parses"
)]
pub struct CreateOrderParams {
    /// The customer (required).
    pub user_id: String,
    /// An id of the caller's choosing (default: a new UUID); 409 if taken.
    pub order_id: Option<String>,
}

/// Parameters of `POST /orders/{order_id}/items` (query string or JSON body).
#[derive(Debug, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
#[allow(
    dead_code,
    reason = "the OpenAPI description of input that `Input` parses"
)]
pub struct AddItemParams {
    /// The product (required).
    pub product_id: String,
    /// Units, ≥ 1 (required).
    pub quantity: u32,
    /// Unit price in major units, exact decimal (`"12.50"`, or a JSON number); sub-cent
    /// amounts are refused. Give this or `price_cents`.
    pub price: Option<String>,
    /// Unit price in cents (instead of `price`).
    pub price_cents: Option<i64>,
}

/// Parameters of `POST /orders/{order_id}/cancel`.
#[derive(Debug, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
#[allow(
    dead_code,
    reason = "the OpenAPI description of input that `Input` parses"
)]
pub struct CancelParams {
    /// Why (optional, up to 1024 bytes).
    pub reason: Option<String>,
}

/// Time travel for `GET /orders/{order_id}`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(
    dead_code,
    reason = "the OpenAPI description of input that `Input` parses"
)]
pub struct TimeTravelParams {
    /// The order right after its event at this stream version (0: as created).
    pub at_version: Option<u64>,
    /// The order with the events recorded at or before this time (RFC 3339, e.g.
    /// `2026-01-31T12:00:00Z`; compared with each event's `recorded_at`).
    pub as_of: Option<String>,
}

type PathResult = Result<Path<String>, PathRejection>;
type QueryResult = RawQuery;
type BodyResult = Result<Bytes, BytesRejection>;

fn path_id(path: PathResult, what: &str) -> Result<String, ApiError> {
    let Path(id) = path.map_err(|e| ApiError::invalid(format!("bad {what} in the path: {e}")))?;
    validate_id(what, &id)?;
    Ok(id)
}

/// The body, or a problem (413 over the limit).
pub(crate) fn body_bytes(body: BodyResult) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        let status = e.status();
        ApiError::new(
            status,
            if status == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                "body-too-large"
            } else {
                "bad-body"
            },
            "Request body refused",
            e.body_text(),
        )
    })
}

/// Run `command` on `order_id` on the blocking pool; the saved root.
async fn execute(
    state: &Arc<AppState>,
    order_id: String,
    command: OrderCommand,
) -> Result<Root<Order>, ApiError> {
    let started = Instant::now();
    let service = state.orders.clone();
    let root = blocking(move || {
        service
            .execute(&order_id, &command, &CommandContext::new_request())
            .map_err(ApiError::from)
    })
    .await;
    state
        .metrics
        .append_latency("orders")
        .observe(started.elapsed().as_secs_f64());
    root
}

fn done(message: &str, root: &Root<Order>) -> Json<CommandDone> {
    Json(CommandDone {
        message: message.to_string(),
        order: OrderView::from_order(root.state(), root.version().unwrap_or(0)),
    })
}

/// `POST /orders`: create an order for `user_id`.
#[utoipa::path(post, path = "/orders", tag = "orders",
    params(CreateOrderParams),
    request_body(content = Option<CreateOrderParams>, description = "The same fields as JSON (optional)", content_type = "application/json"),
    responses(
        (status = 200, description = "Created", body = OrderCreated),
        (status = 409, description = "The chosen id is taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad input", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_order(
    State(state): State<Arc<AppState>>,
    query: QueryResult,
    headers: HeaderMap,
    body: BodyResult,
) -> Result<Json<OrderCreated>, ApiError> {
    let input = Input::new(&query, &headers, &body_bytes(body)?)?;
    let user_id = input.id("user_id")?;
    let order_id = match input.text("order_id", crate::params::MAX_ID_BYTES)? {
        Some(id) => {
            validate_id("order_id", &id)?;
            id
        }
        None => uuid::Uuid::new_v4().to_string(),
    };
    let command = OrderCommand::Create {
        order_id: order_id.clone(),
        user_id: user_id.clone(),
    };
    let root = execute(&state, order_id.clone(), command).await?;
    Ok(Json(OrderCreated {
        order_id,
        user_id,
        version: root.version().unwrap_or(0),
    }))
}

/// `POST /orders/{order_id}/items`: add a line to a pending order.
#[utoipa::path(post, path = "/orders/{order_id}/items", tag = "orders",
    params(("order_id" = String, Path, description = "The order"), AddItemParams),
    request_body(content = Option<AddItemParams>, description = "The same fields as JSON (optional)", content_type = "application/json"),
    responses(
        (status = 200, description = "Added", body = CommandDone),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The order is not pending, or kept changing", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad input", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn add_item(
    State(state): State<Arc<AppState>>,
    path: PathResult,
    query: QueryResult,
    headers: HeaderMap,
    body: BodyResult,
) -> Result<Json<CommandDone>, ApiError> {
    let order_id = path_id(path, "order_id")?;
    let input = Input::new(&query, &headers, &body_bytes(body)?)?;
    let product_id = input.id("product_id")?;
    let quantity = input
        .unsigned("quantity")?
        .ok_or_else(|| ApiError::invalid("quantity is required"))?;
    let quantity = u32::try_from(quantity)
        .map_err(|_| ApiError::invalid(format!("quantity {quantity} is too large")))?;
    let price_cents = match (input.money("price")?, input.signed("price_cents")?) {
        (Some(p), None) => p,
        (None, Some(c)) => c,
        (Some(_), Some(_)) => return Err(ApiError::invalid("give price or price_cents, not both")),
        (None, None) => return Err(ApiError::invalid("price is required (e.g. price=12.50)")),
    };
    let command = OrderCommand::AddItem {
        product_id,
        quantity,
        price_cents,
    };
    let root = execute(&state, order_id, command).await?;
    Ok(done("Item added successfully", &root))
}

macro_rules! transition {
    ($name:ident, $path:literal, $command:expr, $message:literal, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "orders",
            params(("order_id" = String, Path, description = "The order")),
            responses(
                (status = 200, description = "Done", body = CommandDone),
                (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
                (status = 409, description = "The order's state forbids it", body = Problem, content_type = "application/problem+json"),
                (status = 422, description = "Bad input", body = Problem, content_type = "application/problem+json"),
            ))]
        pub async fn $name(
            State(state): State<Arc<AppState>>,
            path: PathResult,
        ) -> Result<Json<CommandDone>, ApiError> {
            let order_id = path_id(path, "order_id")?;
            let root = execute(&state, order_id, $command).await?;
            Ok(done($message, &root))
        }
    };
}

transition!(
    confirm,
    "/orders/{order_id}/confirm",
    OrderCommand::Confirm,
    "Order confirmed",
    "`POST /orders/{order_id}/confirm`: confirm a pending order with items."
);
transition!(
    ship,
    "/orders/{order_id}/ship",
    OrderCommand::Ship,
    "Order shipped",
    "`POST /orders/{order_id}/ship`: ship a confirmed order."
);
transition!(
    deliver,
    "/orders/{order_id}/deliver",
    OrderCommand::Deliver,
    "Order delivered",
    "`POST /orders/{order_id}/deliver`: mark a shipped order delivered."
);

/// `POST /orders/{order_id}/cancel`: cancel a pending or confirmed order.
#[utoipa::path(post, path = "/orders/{order_id}/cancel", tag = "orders",
    params(("order_id" = String, Path, description = "The order"), CancelParams),
    request_body(content = Option<CancelParams>, description = "The same fields as JSON (optional)", content_type = "application/json"),
    responses(
        (status = 200, description = "Cancelled", body = CommandDone),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The order's state forbids it", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad input", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn cancel(
    State(state): State<Arc<AppState>>,
    path: PathResult,
    query: QueryResult,
    headers: HeaderMap,
    body: BodyResult,
) -> Result<Json<CommandDone>, ApiError> {
    let order_id = path_id(path, "order_id")?;
    let input = Input::new(&query, &headers, &body_bytes(body)?)?;
    let reason = input
        .text("reason", MAX_TEXT_BYTES)?
        .unwrap_or_else(|| "cancelled on request".to_string());
    let root = execute(&state, order_id, OrderCommand::Cancel { reason }).await?;
    Ok(done("Order cancelled", &root))
}

/// Wait (on the blocking pool) until the order projection includes the log's head as of now.
async fn await_read_model(state: &Arc<AppState>) -> Result<(), ApiError> {
    let Some(head) = state.head_position().await? else {
        return Ok(());
    };
    if state.summaries.next_position() > head {
        return Ok(());
    }
    let summaries = state.summaries.clone();
    let caught_up =
        blocking(move || Ok(summaries.wait_for_position(head, READ_MODEL_WAIT))).await?;
    if caught_up {
        Ok(())
    } else {
        Err(ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "read-model-behind",
            "Read model behind",
            format!(
                "the order projection did not reach position {head} within {READ_MODEL_WAIT:?}"
            ),
        ))
    }
}

/// `GET /orders/{order_id}`: the order from the projection; with `at_version` or `as_of`, as
/// it was then (a replay, with its items).
#[utoipa::path(get, path = "/orders/{order_id}", tag = "orders",
    params(("order_id" = String, Path, description = "The order"), TimeTravelParams),
    responses(
        (status = 200, description = "The order", body = OrderView),
        (status = 404, description = "No such order (at that time)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad input", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_order(
    State(state): State<Arc<AppState>>,
    path: PathResult,
    query: QueryResult,
) -> Result<Json<OrderView>, ApiError> {
    let order_id = path_id(path, "order_id")?;
    let input = Input::query_only(&query)?;
    let at_version = input.unsigned("at_version")?;
    let as_of = match input.text("as_of", 64)? {
        None => None,
        Some(t) => Some(
            DateTime::parse_from_rfc3339(t.trim())
                .map_err(|e| {
                    ApiError::invalid(format!("as_of {t:?} is not an RFC 3339 time: {e}"))
                })?
                .with_timezone(&Utc),
        ),
    };
    if at_version.is_none() && as_of.is_none() {
        await_read_model(&state).await?;
        let view = state
            .summaries
            .read(|p| p.get_order_summary(&order_id).map(OrderView::from_summary));
        return view
            .map(Json)
            .ok_or_else(|| ApiError::order_not_found(&order_id));
    }
    if at_version.is_some() && as_of.is_some() {
        return Err(ApiError::invalid("give at_version or as_of, not both"));
    }
    let service = state.orders.clone();
    let id = order_id.clone();
    let root = blocking(move || {
        let repo = service.repository();
        match (at_version, as_of) {
            (Some(v), _) => repo.load_at_version(&id, v),
            (_, Some(t)) => repo.load_as_of(&id, t),
            (None, None) => repo.load(&id),
        }
        .map_err(ApiError::from)
    })
    .await?;
    let root = root
        .filter(|r| r.state().exists())
        .ok_or_else(|| ApiError::order_not_found(&order_id))?;
    let mut view = OrderView::from_order(root.state(), root.version().unwrap_or(0));
    view.current_version = state.stream_version(&format!("Order-{order_id}")).await?;
    Ok(Json(view))
}

/// `GET /orders/{order_id}/history`: every event of the order with the state after it.
#[utoipa::path(get, path = "/orders/{order_id}/history", tag = "orders",
    params(("order_id" = String, Path, description = "The order")),
    responses(
        (status = 200, description = "The history, oldest first", body = OrderHistory),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn history(
    State(state): State<Arc<AppState>>,
    path: PathResult,
) -> Result<Json<OrderHistory>, ApiError> {
    let order_id = path_id(path, "order_id")?;
    let service = state.orders.clone();
    let id = order_id.clone();
    let entries = blocking(move || service.history(&id).map_err(ApiError::from)).await?;
    if entries.is_empty() {
        return Err(ApiError::order_not_found(&order_id));
    }
    let steps = entries
        .iter()
        .map(|e| HistoryStep {
            event: event_json(&e.recorded, crate::streams::PayloadMode::Auto),
            order: OrderView::from_order(&e.state, e.recorded.version),
        })
        .collect();
    Ok(Json(OrderHistory { order_id, steps }))
}

/// `GET /users/{user_id}/orders`: a user's orders, newest first (`{"orders": [...]}`).
#[utoipa::path(get, path = "/users/{user_id}/orders", tag = "orders",
    params(("user_id" = String, Path, description = "The customer")),
    responses(
        (status = 200, description = "The user's orders (maybe none)", body = UserOrders),
        (status = 422, description = "Bad input", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn user_orders(
    State(state): State<Arc<AppState>>,
    path: PathResult,
) -> Result<Json<UserOrders>, ApiError> {
    let user_id = path_id(path, "user_id")?;
    await_read_model(&state).await?;
    let orders = state.summaries.read(|p| {
        p.get_user_orders(&user_id)
            .into_iter()
            .map(OrderView::from_summary)
            .collect()
    });
    Ok(Json(UserOrders { orders }))
}
