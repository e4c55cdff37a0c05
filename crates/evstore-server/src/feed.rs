//! `GET /events`: the global log, live, as Server-Sent Events.
//!
//! Each event is an SSE message whose `id` is the event's global position and whose `data` is
//! the event as JSON (the shape of [`crate::streams::event_json`]). Parameters:
//! * `from`: the first position to send; default: only events appended from now on;
//! * `Last-Event-ID` (the header browsers send when they reconnect): resume after that
//!   position (it wins over `from`), so a client that reconnects misses nothing and sees
//!   nothing twice;
//! * `stream_prefix`: only streams whose id starts with it;
//! * `type`: only these event types (comma-separated);
//! * `payload`: `auto`, `json` or `base64`, as for `/streams`.
//!
//! A comment is sent every 15 s to keep idle connections open. Streams end when the server
//! shuts down (the client's `EventSource` reconnects with `Last-Event-ID` to its successor).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use utoipa::IntoParams;

use evstore::subscription::SubscriptionFilter;

use crate::params::{validate_name, Input};
use crate::problem::ApiError;
use crate::state::AppState;
use crate::streams::{event_json, PayloadMode};

/// Events read from the log per round.
const BATCH: usize = 256;

/// Parameters of `/events`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(
    dead_code,
    reason = "the OpenAPI description of input that `Input` parses"
)]
pub struct FeedParams {
    /// First position to send (default: events appended from now on). `Last-Event-ID` wins.
    pub from: Option<u64>,
    /// Only streams whose id starts with this.
    pub stream_prefix: Option<String>,
    /// Only these event types, comma-separated.
    #[param(rename = "type")]
    pub event_type: Option<String>,
    /// `auto` (default), `json` or `base64`.
    pub payload: Option<String>,
}

struct Feed {
    state: Arc<AppState>,
    next: u64,
    filter: SubscriptionFilter,
    mode: PayloadMode,
    ready: VecDeque<Event>,
    head: tokio::sync::watch::Receiver<Option<u64>>,
    shutdown: tokio::sync::watch::Receiver<bool>,
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.state.metrics.sse_clients.dec();
    }
}

/// `GET /events`: see the module docs.
#[utoipa::path(get, path = "/events", tag = "store", params(FeedParams,
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this position")),
    responses((status = 200, description = "text/event-stream of events", content_type = "text/event-stream"),
              (status = 422, description = "Bad input", body = crate::problem::Problem, content_type = "application/problem+json")))]
pub async fn events(
    State(state): State<Arc<AppState>>,
    query: RawQuery,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let input = Input::query_only(&query)?;
    let last_event_id = match headers.get("last-event-id") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| ApiError::invalid("Last-Event-ID must be an event position"))?,
        ),
    };
    let next = match (last_event_id, input.unsigned("from")?) {
        (Some(last), _) => last.saturating_add(1),
        (None, Some(from)) => from,
        (None, None) => state.head_position().await?.map_or(0, |h| h + 1),
    };
    let mut filter = SubscriptionFilter::all();
    if let Some(prefix) = input.text("stream_prefix", 255)? {
        filter = filter.with_stream_prefix(prefix);
    }
    if let Some(types) = input.text("type", 4096)? {
        let types: Vec<String> = types
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect();
        for t in &types {
            validate_name("type", t)?;
        }
        filter = filter.with_event_types(types);
    }
    let mode = PayloadMode::parse(input.text("payload", 16)?.as_deref())?;
    state.metrics.sse_clients.inc();
    let feed = Feed {
        head: state.head.clone(),
        shutdown: state.shutdown.clone(),
        state,
        next,
        filter,
        mode,
        ready: VecDeque::new(),
    };
    let stream = stream::unfold(feed, |mut feed| async move {
        // Each round sends a ready event, reads a batch, or waits for the head to move; it
        // ends at shutdown or on a read error.
        loop {
            if let Some(event) = feed.ready.pop_front() {
                return Some((Ok(event), feed));
            }
            if *feed.shutdown.borrow() {
                return None;
            }
            let batch = match feed.state.read_all_from(feed.next, BATCH).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = ?e, "the /events feed cannot read the log");
                    return None;
                }
            };
            if let Some(last) = batch.last() {
                feed.next = last.position + 1;
                for e in batch.iter().filter(|e| feed.filter.matches(e)) {
                    let data = event_json(e, feed.mode).to_string();
                    feed.ready
                        .push_back(Event::default().id(e.position.to_string()).data(data));
                }
                continue;
            }
            let next = feed.next;
            tokio::select! {
                r = feed.head.wait_for(|h| h.is_some_and(|h| h >= next)) => {
                    if r.is_err() {
                        return None;
                    }
                }
                _ = feed.shutdown.wait_for(|stop| *stop) => return None,
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
