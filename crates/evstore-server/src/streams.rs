//! The store's own API: append to a stream with an expected version, read a stream, the
//! global log from a position, events by type, and the stream and type catalogs.
//!
//! Events are answered as JSON objects: `event_id`, `stream_id`, `event_type`, `version`,
//! `position`, `recorded_at`, `tags` (an array of strings, `[]` for none), `data_encoding` and
//! `data` (and `metadata_encoding`/`metadata` when there is metadata). Payloads, as `?payload=` asks:
//! * `auto` (default): Order events decoded (`data_encoding: "order"`); other payloads as
//!   JSON if they are JSON (`"json"`), else base64 (`"base64"`);
//! * `json`: as `auto`, but Order payloads are not decoded (their raw bytes as base64);
//! * `base64`: every payload as base64 (standard alphabet, padded).
//!
//! Appends take `{"expected_version": "any" | "no_stream" | "stream_exists" | <u64>, "events":
//! [{"event_type": "...", "data": <any JSON>, "data_base64": "...", "metadata": <JSON>,
//! "event_id": "<uuid>", "tags": ["..."]}]}` (`data` or `data_base64`; `tags` for Dynamic
//! Consistency Boundary queries: up to [`MAX_TAGS_PER_EVENT`] distinct strings of 1 to 255
//! bytes). Order streams (`Order-...`) and product streams (`Product-...`) are written only
//! through `/orders` and `/products`, so their events always decode; for the same reason the
//! Order domain's tags (`product:<id>`, which decide a product's stock) are refused here.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::Json;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Map, Value};
use utoipa::{IntoParams, ToSchema};

use evstore::{ExpectedVersion, NewEvent, RecordedEvent, MAX_TAGS_PER_EVENT};
use evstore_orders::projections::decode_order_event;
use evstore_orders::{OrderEvent, PRODUCT_STREAM_PREFIX};

use crate::money::format_cents;
use crate::orders::body_bytes;
use crate::params::{json_object, validate_name, Input, MAX_PAGE};
use crate::problem::{ApiError, Problem};
use crate::state::{blocking, AppState};

/// Most events in one append request.
pub const MAX_EVENTS_PER_APPEND: usize = 1000;

/// How payloads are answered (`?payload=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadMode {
    /// Order events decoded; other JSON as JSON; the rest base64.
    Auto,
    /// JSON payloads as JSON, everything else (Order payloads included) base64.
    Json,
    /// Every payload base64.
    Base64,
}

impl PayloadMode {
    /// From `?payload=` (absent: [`PayloadMode::Auto`]).
    ///
    /// # Errors
    /// 422 for another value.
    pub fn parse(v: Option<&str>) -> Result<PayloadMode, ApiError> {
        match v {
            None | Some("auto") => Ok(PayloadMode::Auto),
            Some("json") => Ok(PayloadMode::Json),
            Some("base64") => Ok(PayloadMode::Base64),
            Some(other) => Err(ApiError::invalid(format!(
                "payload must be auto, json or base64, not {other:?}"
            ))),
        }
    }
}

fn b64(bytes: &[u8]) -> Value {
    Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// A payload as (encoding, value).
fn payload(bytes: &[u8], mode: PayloadMode) -> (&'static str, Value) {
    if mode != PayloadMode::Base64 {
        if let Ok(v) = serde_json::from_slice::<Value>(bytes) {
            return ("json", v);
        }
    }
    ("base64", b64(bytes))
}

/// An Order event's payload as JSON (money also as decimal strings).
pub fn order_payload(event: &OrderEvent) -> Value {
    let v = match event {
        OrderEvent::OrderCreated(e) => serde_json::to_value(e),
        OrderEvent::ItemAddedToOrder(e) => serde_json::to_value(e).map(|mut v| {
            if let Value::Object(m) = &mut v {
                m.insert("price".into(), Value::String(format_cents(e.price_cents)));
            }
            v
        }),
        OrderEvent::OrderConfirmed(e) => serde_json::to_value(e),
        OrderEvent::OrderCancelled(e) => serde_json::to_value(e),
        OrderEvent::OrderShipped(e) => serde_json::to_value(e),
        OrderEvent::OrderDelivered(e) => serde_json::to_value(e),
    };
    v.unwrap_or(Value::Null)
}

/// One recorded event as JSON (see the module docs).
pub fn event_json(e: &RecordedEvent, mode: PayloadMode) -> Value {
    let decoded = if mode == PayloadMode::Auto && e.stream_id.starts_with("Order-") {
        decode_order_event(e).map(|ev| order_payload(&ev))
    } else {
        None
    };
    let (encoding, data) = match decoded {
        Some(v) => ("order", v),
        None => payload(&e.data, mode),
    };
    let mut m = Map::new();
    m.insert("event_id".into(), json!(e.event_id));
    m.insert("stream_id".into(), json!(e.stream_id));
    m.insert("event_type".into(), json!(e.event_type));
    m.insert("version".into(), json!(e.version));
    m.insert("position".into(), json!(e.position));
    m.insert("recorded_at".into(), json!(e.recorded_at));
    m.insert("tags".into(), json!(e.tags));
    m.insert("data_encoding".into(), json!(encoding));
    m.insert("data".into(), data);
    if !e.metadata.is_empty() {
        let (encoding, metadata) = if encoding == "order" {
            match evstore::aggregate::EventMetadata::decode(&e.metadata) {
                Ok(md) => ("json", serde_json::to_value(md).unwrap_or(Value::Null)),
                Err(_) => ("base64", b64(&e.metadata)),
            }
        } else {
            payload(&e.metadata, mode)
        };
        m.insert("metadata_encoding".into(), json!(encoding));
        m.insert("metadata".into(), metadata);
    }
    Value::Object(m)
}

/// One event as the server answers it ([`event_json`]): in pages, in order histories and as
/// the `data` of each `/events` message.
#[derive(Debug, ToSchema)]
#[allow(
    dead_code,
    reason = "the OpenAPI description of what `event_json` builds"
)]
pub struct EventJson {
    /// The event's id (a UUID).
    pub event_id: String,
    /// Its stream.
    pub stream_id: String,
    /// Its type.
    pub event_type: String,
    /// Its version in the stream (from 0).
    pub version: u64,
    /// Its position in the global log (from 0).
    pub position: u64,
    /// When it was recorded (RFC 3339).
    pub recorded_at: DateTime<Utc>,
    /// Its tags, as appended (`[]`: none).
    pub tags: Vec<String>,
    /// How `data` is given: `order` (an Order event decoded), `json` or `base64`.
    pub data_encoding: String,
    /// The payload.
    #[schema(value_type = Object)]
    pub data: Value,
    /// How `metadata` is given (`json` or `base64`); absent without metadata.
    pub metadata_encoding: Option<String>,
    /// The metadata; absent without metadata.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

/// One event of an append request.
#[derive(Debug, ToSchema)]
#[allow(
    dead_code,
    reason = "the OpenAPI description of input that `new_events` parses"
)]
pub struct NewEventRequest {
    /// The event's type (1 to 255 bytes).
    pub event_type: String,
    /// The payload as any JSON (or give `data_base64`; neither: empty).
    #[schema(value_type = Option<Object>)]
    pub data: Option<Value>,
    /// The payload as base64 bytes (instead of `data`).
    pub data_base64: Option<String>,
    /// Metadata as any JSON (or give `metadata_base64`).
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// Metadata as base64 bytes (instead of `metadata`).
    pub metadata_base64: Option<String>,
    /// The event's id (a UUID; default a new one): an append repeating the ids of an earlier
    /// one is answered with its result and writes nothing (idempotent retries).
    pub event_id: Option<String>,
    /// Tags for Dynamic Consistency Boundary queries: up to 255 distinct strings of 1 to 255
    /// bytes; not `product:...` (the Order domain's). Default none.
    pub tags: Option<Vec<String>>,
}

/// A page of events.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    /// The events (see the module docs for their shape).
    #[schema(value_type = Vec<EventJson>)]
    pub events: Vec<Value>,
    /// Where the next page starts (`from_version` for a stream, `from_position` for the log
    /// and types); `null`: nothing more now.
    pub next: Option<u64>,
    /// The stream's last version (stream reads) or the log's head position (other reads).
    pub head: Option<u64>,
}

/// An append's outcome (the store's `AppendResult`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Appended {
    /// Version of the first event written.
    pub first_version: u64,
    /// Version of the last event written (the stream's new version).
    pub last_version: u64,
    /// Global position of the first event.
    pub first_position: u64,
    /// Global position of the last event.
    pub last_position: u64,
}

/// One stream in the catalog.
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamSummary {
    /// The stream id.
    pub stream_id: String,
    /// Events in it.
    pub events: u64,
    /// Its last version.
    pub last_version: u64,
    /// Type of its last event.
    pub last_type: String,
    /// When its last event was recorded.
    pub last_recorded_at: DateTime<Utc>,
}

/// `GET /streams` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamList {
    /// Streams in id order.
    pub streams: Vec<StreamSummary>,
    /// Streams in the store (all prefixes).
    pub total: u64,
    /// Pass as `after` for the next page; `null`: last page.
    pub next_after: Option<String>,
}

/// `GET /types` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct TypeList {
    /// `[event type, count]`, by type.
    pub types: Vec<(String, u64)>,
}

/// Paging for reads.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(
    dead_code,
    reason = "the OpenAPI description of input that `Input` parses"
)]
pub struct ReadParams {
    /// First version (stream) or position (log, types) to return; default 0.
    pub from: Option<u64>,
    /// At most this many events, 1 to 1000; default 100.
    pub limit: Option<u32>,
    /// `auto` (default), `json` or `base64`: see the module docs.
    pub payload: Option<String>,
}

/// Paging for the catalog.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(
    dead_code,
    reason = "the OpenAPI description of input that `Input` parses"
)]
pub struct ListParams {
    /// Only streams whose id starts with this.
    pub prefix: Option<String>,
    /// Start after this stream id.
    pub after: Option<String>,
    /// At most this many, 1 to 1000; default 100.
    pub limit: Option<u32>,
}

/// The append request body.
#[derive(Debug, ToSchema)]
#[allow(
    dead_code,
    reason = "the OpenAPI description of input that `Input` parses"
)]
pub struct AppendRequest {
    /// `"any"`, `"no_stream"`, `"stream_exists"` or the stream's exact last version.
    #[schema(value_type = Object)]
    pub expected_version: Value,
    /// The events (1 to 1000).
    #[schema(value_type = Vec<NewEventRequest>)]
    pub events: Vec<Value>,
}

type QueryResult = RawQuery;

fn stream_path(path: Result<Path<String>, PathRejection>, what: &str) -> Result<String, ApiError> {
    let Path(s) = path.map_err(|e| ApiError::invalid(format!("bad {what} in the path: {e}")))?;
    validate_name(what, &s)?;
    Ok(s)
}

/// `GET /streams`: the stream catalog with event counts.
#[utoipa::path(get, path = "/streams", tag = "store", params(ListParams),
    responses((status = 200, description = "Streams", body = StreamList),
              (status = 422, description = "Bad input", body = Problem, content_type = "application/problem+json")))]
pub async fn list_streams(
    State(state): State<Arc<AppState>>,
    query: QueryResult,
) -> Result<Json<StreamList>, ApiError> {
    let input = Input::query_only(&query)?;
    let prefix = input.text("prefix", 255)?.unwrap_or_default();
    let after = input.text("after", 255)?;
    let limit = input.limit()?;
    let (page, total) = state
        .catalog
        .read(|c| (c.list(&prefix, after.as_deref(), limit + 1), c.len() as u64));
    let more = page.len() > limit;
    let streams: Vec<StreamSummary> = page
        .into_iter()
        .take(limit)
        .map(|(id, i)| StreamSummary {
            stream_id: id,
            events: i.events,
            last_version: i.last_version,
            last_type: i.last_type,
            last_recorded_at: i.last_recorded_at,
        })
        .collect();
    let next_after = if more {
        streams.last().map(|s| s.stream_id.clone())
    } else {
        None
    };
    Ok(Json(StreamList {
        streams,
        total,
        next_after,
    }))
}

/// `GET /streams/{stream_id}`: a stream's events from version `from`.
#[utoipa::path(get, path = "/streams/{stream_id}", tag = "store",
    params(("stream_id" = String, Path, description = "The stream"), ReadParams),
    responses((status = 200, description = "Events", body = EventPage),
              (status = 404, description = "No such stream", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "Bad input", body = Problem, content_type = "application/problem+json")))]
pub async fn read_stream(
    State(state): State<Arc<AppState>>,
    path: Result<Path<String>, PathRejection>,
    query: QueryResult,
) -> Result<Json<EventPage>, ApiError> {
    let stream = stream_path(path, "stream_id")?;
    let input = Input::query_only(&query)?;
    let from = input.unsigned("from")?.unwrap_or(0);
    let limit = input.limit()?;
    let mode = PayloadMode::parse(input.text("payload", 16)?.as_deref())?;
    let Some(head) = state.stream_version(&stream).await? else {
        return Err(ApiError::stream_not_found(&stream));
    };
    let s = state.store.clone();
    let name = stream.clone();
    let end = from.saturating_add(limit as u64);
    let events = blocking(move || {
        s.read_stream_range(&name, from, end)
            .map_err(ApiError::from)
    })
    .await?;
    let next = events.last().map(|e| e.version + 1).filter(|n| *n <= head);
    Ok(Json(EventPage {
        events: events.iter().map(|e| event_json(e, mode)).collect(),
        next,
        head: Some(head),
    }))
}

fn expected_version(v: Option<&Value>) -> Result<ExpectedVersion, ApiError> {
    match v {
        None => Err(ApiError::invalid(
            "expected_version is required: \"any\", \"no_stream\", \"stream_exists\" or a version",
        )),
        Some(Value::String(s)) => match s.as_str() {
            "any" => Ok(ExpectedVersion::Any),
            "no_stream" => Ok(ExpectedVersion::NoStream),
            "stream_exists" => Ok(ExpectedVersion::StreamExists),
            other => other.parse::<u64>().map(ExpectedVersion::Exact).map_err(|_| {
                ApiError::invalid(format!("expected_version {other:?} is not any, no_stream, stream_exists or a version"))
            }),
        },
        Some(Value::Number(n)) => n
            .as_u64()
            .map(ExpectedVersion::Exact)
            .ok_or_else(|| ApiError::invalid("expected_version must be a version ≥ 0")),
        Some(_) => Err(ApiError::invalid("expected_version must be a string or a number")),
    }
}

fn bytes_field(e: &Map<String, Value>, name: &str, i: usize) -> Result<Option<Vec<u8>>, ApiError> {
    let b64name = format!("{name}_base64");
    match (e.get(name), e.get(&b64name)) {
        (Some(_), Some(_)) => Err(ApiError::invalid(format!(
            "events[{i}]: give {name} or {b64name}, not both"
        ))),
        (Some(v), None) => Ok(Some(serde_json::to_vec(v).unwrap_or_default())),
        (None, Some(Value::String(s))) => base64::engine::general_purpose::STANDARD
            .decode(s)
            .map(Some)
            .map_err(|err| ApiError::invalid(format!("events[{i}].{b64name}: not base64: {err}"))),
        (None, Some(_)) => Err(ApiError::invalid(format!(
            "events[{i}].{b64name} must be a base64 string"
        ))),
        (None, None) => Ok(None),
    }
}

fn new_events(body: &Map<String, Value>) -> Result<Vec<NewEvent>, ApiError> {
    let Some(Value::Array(items)) = body.get("events") else {
        return Err(ApiError::invalid("events must be an array of events"));
    };
    if items.is_empty() || items.len() > MAX_EVENTS_PER_APPEND {
        return Err(ApiError::invalid(format!(
            "an append takes 1 to {MAX_EVENTS_PER_APPEND} events, got {}",
            items.len()
        )));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let Value::Object(e) = item else {
                return Err(ApiError::invalid(format!("events[{i}] must be an object")));
            };
            let Some(Value::String(event_type)) = e.get("event_type") else {
                return Err(ApiError::invalid(format!(
                    "events[{i}].event_type is required"
                )));
            };
            validate_name(&format!("events[{i}].event_type"), event_type)?;
            let data = bytes_field(e, "data", i)?.unwrap_or_default();
            let mut event = NewEvent::new(event_type.clone(), data);
            if let Some(metadata) = bytes_field(e, "metadata", i)? {
                event.metadata = metadata;
            }
            match e.get("event_id") {
                None | Some(Value::Null) => {}
                Some(Value::String(s)) => {
                    event.event_id = s.parse().map_err(|_| {
                        ApiError::invalid(format!("events[{i}].event_id {s:?} is not a UUID"))
                    })?;
                }
                Some(_) => {
                    return Err(ApiError::invalid(format!(
                        "events[{i}].event_id must be a UUID string"
                    )))
                }
            }
            event.tags = tags(e, i)?;
            Ok(event)
        })
        .collect()
}

/// The tag prefix the Order domain owns: its events tagged `product:<id>` decide the
/// product's stock, so raw appends may not carry it.
const RESERVED_TAG_PREFIX: &str = "product:";

/// `events[i].tags`: absent or `null` is none.
fn tags(e: &Map<String, Value>, i: usize) -> Result<Vec<String>, ApiError> {
    let items = match e.get("tags") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(ApiError::invalid(format!(
                "events[{i}].tags must be an array of strings"
            )))
        }
    };
    if items.len() > MAX_TAGS_PER_EVENT {
        return Err(ApiError::invalid(format!(
            "events[{i}] carries {} tags; at most {MAX_TAGS_PER_EVENT}",
            items.len()
        )));
    }
    let mut tags: Vec<String> = Vec::with_capacity(items.len());
    for (j, t) in items.iter().enumerate() {
        let Value::String(t) = t else {
            return Err(ApiError::invalid(format!(
                "events[{i}].tags[{j}] must be a string"
            )));
        };
        if t.is_empty() || t.len() > 255 {
            return Err(ApiError::invalid(format!(
                "events[{i}].tags[{j}] must be 1 to 255 bytes long, got {}",
                t.len()
            )));
        }
        if t.starts_with(RESERVED_TAG_PREFIX) {
            return Err(ApiError::invalid(format!(
                "events[{i}].tags[{j}] {t:?}: tags starting with {RESERVED_TAG_PREFIX:?} are the Order domain's (written through /orders and /products)"
            )));
        }
        if tags.contains(t) {
            return Err(ApiError::invalid(format!(
                "events[{i}].tags[{j}] {t:?} appears twice"
            )));
        }
        tags.push(t.clone());
    }
    Ok(tags)
}

/// `POST /streams/{stream_id}`: append events with an expected version.
#[utoipa::path(post, path = "/streams/{stream_id}", tag = "store",
    params(("stream_id" = String, Path, description = "The stream (not `Order-...` nor `Product-...`)")),
    request_body(content = AppendRequest, content_type = "application/json"),
    responses((status = 200, description = "Written (durable before this answer)", body = Appended),
              (status = 409, description = "The stream is not at the expected version", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "Bad input", body = Problem, content_type = "application/problem+json")))]
pub async fn append(
    State(state): State<Arc<AppState>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Appended>, ApiError> {
    let stream = stream_path(path, "stream_id")?;
    if stream.starts_with("Order-") {
        return Err(ApiError::invalid(
            "Order streams are written through /orders (their events must decode)",
        ));
    }
    if stream.starts_with(PRODUCT_STREAM_PREFIX) {
        return Err(ApiError::invalid(
            "Product streams are written through /products (their events must decode)",
        ));
    }
    let body = json_object(&headers, &body_bytes(body)?)?
        .ok_or_else(|| ApiError::invalid("the body must be a JSON object with events"))?;
    let expected = expected_version(body.get("expected_version"))?;
    let events = new_events(&body)?;
    let started = Instant::now();
    let s = state.store.clone();
    let r = blocking(move || s.append(&stream, expected, &events).map_err(ApiError::from)).await;
    state
        .metrics
        .append_latency("streams")
        .observe(started.elapsed().as_secs_f64());
    let r = r?;
    Ok(Json(Appended {
        first_version: r.first_version,
        last_version: r.last_version,
        first_position: r.first_position,
        last_position: r.last_position,
    }))
}

/// `GET /log`: the global log from position `from`.
#[utoipa::path(get, path = "/log", tag = "store", params(ReadParams),
    responses((status = 200, description = "Events in position order", body = EventPage),
              (status = 422, description = "Bad input", body = Problem, content_type = "application/problem+json")))]
pub async fn read_log(
    State(state): State<Arc<AppState>>,
    query: QueryResult,
) -> Result<Json<EventPage>, ApiError> {
    let input = Input::query_only(&query)?;
    let from = input.unsigned("from")?.unwrap_or(0);
    let limit = input.limit()?;
    let mode = PayloadMode::parse(input.text("payload", 16)?.as_deref())?;
    let events = state.read_all_from(from, limit).await?;
    let head = state.head_position().await?;
    let next = events.last().map(|e| e.position + 1);
    Ok(Json(EventPage {
        events: events.iter().map(|e| event_json(e, mode)).collect(),
        next,
        head,
    }))
}

/// `GET /types`: every event type with its count.
#[utoipa::path(get, path = "/types", tag = "store",
    responses((status = 200, description = "Event types", body = TypeList)))]
pub async fn list_types(State(state): State<Arc<AppState>>) -> Result<Json<TypeList>, ApiError> {
    let s = state.store.clone();
    let types = blocking(move || s.event_types().map_err(ApiError::from)).await?;
    Ok(Json(TypeList { types }))
}

/// `GET /types/{event_type}`: events of one type from position `from`, optionally only those
/// recorded at or after `since` (RFC 3339).
#[utoipa::path(get, path = "/types/{event_type}", tag = "store",
    params(("event_type" = String, Path, description = "The event type"), ReadParams,
        ("since" = Option<String>, Query, description = "Only events recorded at or after this time (RFC 3339)")),
    responses((status = 200, description = "Events in position order", body = EventPage),
              (status = 422, description = "Bad input", body = Problem, content_type = "application/problem+json")))]
pub async fn read_type(
    State(state): State<Arc<AppState>>,
    path: Result<Path<String>, PathRejection>,
    query: QueryResult,
) -> Result<Json<EventPage>, ApiError> {
    let event_type = stream_path(path, "event_type")?;
    let input = Input::query_only(&query)?;
    let from = input.unsigned("from")?.unwrap_or(0);
    let limit = input.limit()?.min(MAX_PAGE);
    let mode = PayloadMode::parse(input.text("payload", 16)?.as_deref())?;
    let since = match input.text("since", 64)? {
        None => None,
        Some(t) => Some(
            DateTime::parse_from_rfc3339(t.trim())
                .map_err(|e| {
                    ApiError::invalid(format!("since {t:?} is not an RFC 3339 time: {e}"))
                })?
                .with_timezone(&Utc),
        ),
    };
    let s = state.store.clone();
    let events = blocking(move || {
        let mut page = Vec::with_capacity(limit);
        let mut from = from;
        // Pages of the type index from `from`, skipping events recorded before `since`
        // (`recorded_at` does not decrease with the position, so once one is at or after
        // `since`, every later one is too).
        while page.len() < limit {
            let batch = s
                .read_by_type_from(&event_type, from, limit)
                .map_err(ApiError::from)?;
            let Some(last) = batch.last() else { break };
            from = last.position + 1;
            page.extend(
                batch
                    .into_iter()
                    .filter(|e| since.is_none_or(|t| e.recorded_at >= t)),
            );
        }
        page.truncate(limit);
        Ok(page)
    })
    .await?;
    let next = events.last().map(|e| e.position + 1);
    Ok(Json(EventPage {
        events: events.iter().map(|e| event_json(e, mode)).collect(),
        next,
        head: state.head_position().await?,
    }))
}
