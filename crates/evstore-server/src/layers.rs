//! Middleware: the bearer token for writes, metrics per request, and turning the framework's
//! bare error answers (405, 413, ...) into problem documents. Also `/metrics` and the 404
//! fallback.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::problem::{ApiError, PROBLEM_JSON};
use crate::state::{blocking, AppState};

/// Writes (every method but GET, HEAD and OPTIONS) need `Authorization: Bearer <token>` when
/// the server has a token.
pub(crate) async fn require_token(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(token) = &state.token {
        let write = !matches!(
            *request.method(),
            Method::GET | Method::HEAD | Method::OPTIONS
        );
        if write {
            let given = request
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim);
            if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) {
                return ApiError::unauthorized().into_response();
            }
        }
    }
    next.run(request).await
}

/// Compare without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Count and time every request by method, route template and status; give error answers
/// without a body of their own a problem document.
pub(crate) async fn observe(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = request.method().clone();
    let mut response = next.run(request).await;
    let status = response.status();
    if (status.is_client_error() || status.is_server_error())
        && response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_none_or(|ct| ct.as_bytes() != PROBLEM_JSON.as_bytes())
    {
        response = bare_error(status).into_response();
    }
    state
        .metrics
        .observe_request(method.as_str(), &route, status.as_u16(), started.elapsed());
    response
}

fn bare_error(status: StatusCode) -> ApiError {
    let (slug, title, detail) = match status {
        StatusCode::METHOD_NOT_ALLOWED => (
            "method-not-allowed",
            "Method not allowed",
            "this route does not take that method (see /openapi.json)",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "body-too-large",
            "Request body too large",
            "the request body is over the server's limit (--max-body)",
        ),
        StatusCode::NOT_FOUND => (
            "not-found",
            "Not found",
            "no such route (see /openapi.json)",
        ),
        s if s.is_server_error() => ("internal", "Internal error", "the server failed"),
        _ => ("bad-request", "Bad request", "the request was refused"),
    };
    ApiError::new(status, slug, title, detail)
}

/// `GET /metrics`: Prometheus text format.
pub(crate) async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let scraped = state.clone();
    let body = match blocking(move || Ok(scraped.metrics.render(&scraped))).await {
        Ok(body) => body,
        Err(e) => return e.into_response(),
    };
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// Unknown routes: a 404 problem.
pub(crate) async fn not_found() -> ApiError {
    bare_error(StatusCode::NOT_FOUND)
}
