//! Errors as RFC 9457 problem details (`application/problem+json`): [`ApiError`].
//!
//! Every refusal has a `type` URI naming the problem (`urn:evstore:problem:<slug>`), a
//! `title`, the HTTP `status`, a `detail` for people, and sometimes fields of its own
//! (`expected_version`, `actual_version` for conflicts, `product_id` for `out-of-stock`).
//! Status codes: 401 missing or wrong bearer token, 404 no such order or stream, 409 a
//! version conflict, a transition the order's state forbids, or a product's stock refusing
//! an item or a new stock level, 413 a body over the limit, 415 a body that is not JSON, 422 bad
//! input, 500 the store failed, 503 shutting down.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use evstore::repository::RepositoryError;
use evstore_orders::{OrderError, OrderServiceError};

/// The media type of problem details (RFC 9457 §3).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A problem details document (RFC 9457), as the server sends it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// URI naming the kind of problem: `urn:evstore:problem:<slug>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the kind of problem (the same for every occurrence).
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong this time, for people.
    pub detail: String,
    /// For version conflicts: the version the request expected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_version: Option<String>,
    /// For version conflicts: the stream's version when the check ran (`null`: no stream).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual_version: Option<Option<u64>>,
    /// For `out-of-stock` problems: the product whose stock refused the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
}

/// An error answer of the API: a status and a [`Problem`] body.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    problem: Box<Problem>,
}

impl ApiError {
    /// A problem of `status`, kind `slug` (`urn:evstore:problem:{slug}`), `title` and `detail`.
    pub fn new(status: StatusCode, slug: &str, title: &str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            problem: Box::new(Problem {
                kind: format!("urn:evstore:problem:{slug}"),
                title: title.to_string(),
                status: status.as_u16(),
                detail: detail.into(),
                expected_version: None,
                actual_version: None,
                product_id: None,
            }),
        }
    }

    /// 422: the request's input is invalid (`detail` says which field and why).
    pub fn invalid(detail: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-input",
            "Invalid input",
            detail,
        )
    }

    /// 404: no such order.
    pub fn order_not_found(order_id: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "order-not-found",
            "Order not found",
            format!("order {order_id:?} not found"),
        )
    }

    /// 404: no such stream.
    pub fn stream_not_found(stream: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "stream-not-found",
            "Stream not found",
            format!("stream {stream:?} not found"),
        )
    }

    /// 409: a version conflict (`expected` as text, `actual` the stream's version).
    pub fn conflict(detail: impl Into<String>, expected: String, actual: Option<u64>) -> Self {
        let mut e = ApiError::new(
            StatusCode::CONFLICT,
            "wrong-expected-version",
            "Version conflict",
            detail,
        );
        e.problem.expected_version = Some(expected);
        e.problem.actual_version = Some(actual);
        e
    }

    /// 500: the store or the server failed; the detail is logged, not only sent.
    pub fn internal(detail: impl Into<String>) -> Self {
        let detail = detail.into();
        tracing::error!(%detail, "request failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            detail,
        )
    }

    /// 401: a write without the right bearer token.
    pub fn unauthorized() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            "this server requires `Authorization: Bearer <token>` for writes",
        )
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The problem document.
    pub fn problem(&self) -> &Problem {
        &self.problem
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&*self.problem).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<evstore::Error> for ApiError {
    fn from(e: evstore::Error) -> Self {
        match e {
            evstore::Error::WrongExpectedVersion {
                stream,
                expected,
                actual,
            } => ApiError::conflict(
                format!("stream {stream:?} is not at the expected version {expected}"),
                expected.to_string(),
                actual,
            ),
            evstore::Error::InvalidInput(m) => ApiError::invalid(m),
            evstore::Error::IdempotencyConflict { stream, detail } => ApiError::new(
                StatusCode::CONFLICT,
                "idempotency-conflict",
                "Partial repeat of an earlier append",
                format!("append to {stream:?} partly repeats an earlier append: {detail}"),
            ),
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl From<OrderServiceError> for ApiError {
    fn from(e: OrderServiceError) -> Self {
        match e {
            RepositoryError::Domain(d) => ApiError::from(d),
            RepositoryError::Conflict {
                stream,
                expected,
                actual,
            } => ApiError::conflict(
                format!("stream {stream:?} changed concurrently"),
                expected.to_string(),
                actual,
            ),
            RepositoryError::TooManyConflicts {
                stream,
                attempts,
                actual,
            } => ApiError::conflict(
                format!("stream {stream:?} kept changing: gave up after {attempts} attempts"),
                "the version it was loaded at".to_string(),
                actual,
            ),
            RepositoryError::Store(e) => ApiError::from(e),
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl From<OrderError> for ApiError {
    fn from(e: OrderError) -> Self {
        let detail = e.to_string();
        match e {
            OrderError::NotFound { order_id } => ApiError::order_not_found(&order_id),
            OrderError::AlreadyExists { .. } => ApiError::new(
                StatusCode::CONFLICT,
                "order-exists",
                "Order already exists",
                detail,
            ),
            OrderError::NotPending { .. }
            | OrderError::InvalidTransition { .. }
            | OrderError::EmptyOrder => ApiError::new(
                StatusCode::CONFLICT,
                "invalid-transition",
                "The order's state forbids this",
                detail,
            ),
            // A rule across orders (enforced with a DCB append condition): the request was
            // valid, the current state of the product forbids it.
            OrderError::OutOfStock { product_id, .. }
            | OrderError::StockBelowReserved { product_id, .. } => {
                let mut e = ApiError::new(
                    StatusCode::CONFLICT,
                    "out-of-stock",
                    "The product's stock forbids this",
                    detail,
                );
                e.problem.product_id = Some(product_id);
                e
            }
            _ => ApiError::invalid(detail),
        }
    }
}
