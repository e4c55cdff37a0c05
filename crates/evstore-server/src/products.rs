//! A product's limited stock over HTTP: `PUT /products/{product_id}/stock` sets it,
//! `GET /products/{product_id}/stock` reads it.
//!
//! The rule lives in the Order domain ([`OrderService::set_stock`] and
//! [`OrderService::product_stock`](evstore_orders::OrderService::product_stock)), enforced with
//! DCB append conditions over the events tagged `product:<id>`: adding an item beyond what is
//! available is a 409 `out-of-stock` problem, and so is setting the stock below the units
//! orders already reserve. A product whose stock was never set is unlimited (`stock` and
//! `available` are `null`). Both calls read the log itself (not a read model), so an answer
//! reflects every write acknowledged before the request.
//!
//! [`OrderService::set_stock`]: evstore_orders::OrderService::set_stock

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use evstore_orders::ProductStock;

use crate::orders::body_bytes;
use crate::params::{validate_id, Input};
use crate::problem::{ApiError, Problem};
use crate::state::{blocking, AppState};

/// A product's stock, as both endpoints answer it.
#[derive(Debug, Serialize, ToSchema)]
pub struct StockView {
    /// The product.
    pub product_id: String,
    /// Units for sale in total, reserved ones included (`null`: never set, unlimited).
    pub stock: Option<u64>,
    /// Units reserved by orders' items and not released by cancellations.
    pub reserved: u64,
    /// Units that can still be ordered: `stock − reserved`, never below 0 (`null`:
    /// unlimited).
    pub available: Option<u64>,
}

impl From<ProductStock> for StockView {
    fn from(s: ProductStock) -> StockView {
        StockView {
            available: s.available(),
            product_id: s.product_id,
            stock: s.stock,
            reserved: s.reserved,
        }
    }
}

/// The body of `PUT /products/{product_id}/stock` (`units` may also be a query parameter).
#[derive(Debug, ToSchema)]
#[allow(
    dead_code,
    reason = "the OpenAPI description of input that `Input` parses"
)]
pub struct SetStockRequest {
    /// Units for sale in total, reserved ones included (a whole number ≥ 0; a restock sets a
    /// higher number). Refused (409) below the units orders already reserve.
    pub units: u64,
}

fn product_path(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(id) =
        path.map_err(|e| ApiError::invalid(format!("bad product_id in the path: {e}")))?;
    validate_id("product_id", &id)?;
    Ok(id)
}

/// `PUT /products/{product_id}/stock`: set the product's stock to `units`.
#[utoipa::path(put, path = "/products/{product_id}/stock", tag = "orders",
    params(("product_id" = String, Path, description = "The product")),
    request_body(content = SetStockRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Set (durable before this answer); the stock right after", body = StockView),
        (status = 409, description = "Orders already reserve more than `units` (`out-of-stock`), or reservations kept changing", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad input", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn set_stock(
    State(state): State<Arc<AppState>>,
    path: Result<Path<String>, PathRejection>,
    query: RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<StockView>, ApiError> {
    let product_id = product_path(path)?;
    let input = Input::new(&query, &headers, &body_bytes(body)?)?;
    let units = input
        .unsigned("units")?
        .ok_or_else(|| ApiError::invalid("units is required (a whole number ≥ 0)"))?;
    let started = Instant::now();
    let service = state.orders.clone();
    let stock = blocking(move || {
        service
            .set_stock(&product_id, units)
            .map_err(ApiError::from)
    })
    .await;
    state
        .metrics
        .append_latency("products")
        .observe(started.elapsed().as_secs_f64());
    Ok(Json(stock?.into()))
}

/// `GET /products/{product_id}/stock`: the product's stock, reserved and available units.
#[utoipa::path(get, path = "/products/{product_id}/stock", tag = "orders",
    params(("product_id" = String, Path, description = "The product")),
    responses(
        (status = 200, description = "The stock now (`null` stock and available: unlimited)", body = StockView),
        (status = 422, description = "Bad input", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_stock(
    State(state): State<Arc<AppState>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<StockView>, ApiError> {
    let product_id = product_path(path)?;
    let service = state.orders.clone();
    let stock =
        blocking(move || service.product_stock(&product_id).map_err(ApiError::from)).await?;
    Ok(Json(stock.into()))
}
