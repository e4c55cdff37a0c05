//! `/metrics`: Prometheus text format (0.0.4), one registry per server.
//!
//! | name | type | what |
//! | --- | --- | --- |
//! | `evstore_appends_total` | counter | appends (batches) written since the store was opened |
//! | `evstore_fsyncs_total` | counter | `fdatasync` calls since open |
//! | `evstore_group_commits_total` | counter | group commits (leader rounds) since open |
//! | `evstore_appends_per_fsync` | gauge | `appends / fsyncs` since open (group commit's gain) |
//! | `evstore_bytes_written_total` | counter | bytes written to the log since open |
//! | `evstore_events` | gauge | events in the store |
//! | `evstore_streams` | gauge | streams in the store |
//! | `evstore_segments` | gauge | mapped segments |
//! | `evstore_projection_lag_events{projection}` | gauge | events between the log's head and a read model |
//! | `evstore_projection_errors_total` | counter | read-model steps that failed (retried) |
//! | `evstore_append_latency_seconds{source}` | histogram | a write through the store: `orders` (an order command: load, decide, append, retries) or `streams` (a raw append) |
//! | `evstore_http_requests_total{method,route,status}` | counter | HTTP requests answered |
//! | `evstore_http_request_duration_seconds{route}` | histogram | time to the response head |
//! | `evstore_sse_clients` | gauge | open `/events` streams |
//!
//! The store's counters come from `Store::stats` at each scrape.

use std::sync::atomic::Ordering;
use std::time::Duration;

use parking_lot::Mutex;
use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::state::AppState;

/// The server's metrics: HTTP ones updated as requests are answered, store ones read at
/// each scrape.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    scrape: Mutex<()>,
    appends: IntCounter,
    fsyncs: IntCounter,
    groups: IntCounter,
    bytes: IntCounter,
    per_fsync: Gauge,
    events: IntGauge,
    streams: IntGauge,
    segments: IntGauge,
    lag: IntGaugeVec,
    projection_errors: IntCounter,
    append_latency: HistogramVec,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    /// Open `/events` streams.
    pub sse_clients: IntGauge,
}

fn latency_buckets() -> Vec<f64> {
    // 50 µs to ~3 s.
    prometheus::exponential_buckets(0.000_05, 2.0, 16).unwrap_or_default()
}

impl Metrics {
    /// A fresh registry with every metric registered.
    ///
    /// # Errors
    /// A metric that cannot be registered (a name clash: a bug).
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| -> Result<IntCounter, prometheus::Error> {
            let c = IntCounter::new(name, help)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let appends = counter(
            "evstore_appends_total",
            "Appends (batches) written since the store was opened.",
        )?;
        let fsyncs = counter(
            "evstore_fsyncs_total",
            "fdatasync calls since the store was opened.",
        )?;
        let groups = counter(
            "evstore_group_commits_total",
            "Group commits (leader rounds) since the store was opened.",
        )?;
        let bytes = counter(
            "evstore_bytes_written_total",
            "Bytes written to the log since the store was opened.",
        )?;
        let projection_errors = counter(
            "evstore_projection_errors_total",
            "Read-model steps that failed (each retried).",
        )?;
        let gauge = |name: &str, help: &str| -> Result<IntGauge, prometheus::Error> {
            let g = IntGauge::new(name, help)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let events = gauge("evstore_events", "Events in the store.")?;
        let streams = gauge("evstore_streams", "Streams in the store.")?;
        let segments = gauge("evstore_segments", "Mapped log segments.")?;
        let sse_clients = gauge("evstore_sse_clients", "Open /events streams.")?;
        let per_fsync = Gauge::new(
            "evstore_appends_per_fsync",
            "Appends per fdatasync since the store was opened (group commit).",
        )?;
        registry.register(Box::new(per_fsync.clone()))?;
        let lag = IntGaugeVec::new(
            Opts::new(
                "evstore_projection_lag_events",
                "Events between the log's head and a read model.",
            ),
            &["projection"],
        )?;
        registry.register(Box::new(lag.clone()))?;
        let append_latency = HistogramVec::new(
            HistogramOpts::new(
                "evstore_append_latency_seconds",
                "Writes through the store: order commands (load, decide, append, retries) and raw appends.",
            )
            .buckets(latency_buckets()),
            &["source"],
        )?;
        registry.register(Box::new(append_latency.clone()))?;
        let http_requests = IntCounterVec::new(
            Opts::new("evstore_http_requests_total", "HTTP requests answered."),
            &["method", "route", "status"],
        )?;
        registry.register(Box::new(http_requests.clone()))?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "evstore_http_request_duration_seconds",
                "Time from a request to its response head.",
            )
            .buckets(latency_buckets()),
            &["route"],
        )?;
        registry.register(Box::new(http_duration.clone()))?;
        Ok(Metrics {
            registry,
            scrape: Mutex::new(()),
            appends,
            fsyncs,
            groups,
            bytes,
            per_fsync,
            events,
            streams,
            segments,
            lag,
            projection_errors,
            append_latency,
            http_requests,
            http_duration,
            sse_clients,
        })
    }

    /// Record an answered request.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        self.http_requests
            .with_label_values(&[method, route, &status.to_string()])
            .inc();
        self.http_duration
            .with_label_values(&[route])
            .observe(elapsed.as_secs_f64());
    }

    /// The append-latency histogram of `source` (`orders` or `streams`).
    pub fn append_latency(&self, source: &str) -> Histogram {
        self.append_latency.with_label_values(&[source])
    }

    /// Read the store's counters and the read models' positions, and render everything.
    pub(crate) fn render(&self, state: &AppState) -> String {
        let _one_scrape_at_a_time = self.scrape.lock();
        let store_stats = state.store.store().stats();
        set_counter(&self.appends, store_stats.appends);
        set_counter(&self.fsyncs, store_stats.data_syncs);
        set_counter(&self.groups, store_stats.groups);
        set_counter(&self.bytes, store_stats.bytes_written);
        set_counter(
            &self.projection_errors,
            state.followers_errors.load(Ordering::Relaxed),
        );
        self.per_fsync.set(if store_stats.data_syncs == 0 {
            0.0
        } else {
            store_stats.appends as f64 / store_stats.data_syncs as f64
        });
        self.events.set(gauge_value(store_stats.events));
        self.streams.set(gauge_value(store_stats.streams));
        self.segments.set(gauge_value(store_stats.segments));
        let next = state.store.head_position().map_or(0, |h| h + 1);
        let lag = |p: u64| gauge_value(next.saturating_sub(p));
        self.lag
            .with_label_values(&["order-summaries"])
            .set(lag(state.summaries.next_position()));
        self.lag
            .with_label_values(&["server-streams"])
            .set(lag(state.catalog.next_position()));
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

fn gauge_value(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Set a counter that mirrors a counter kept elsewhere (scrapes are serialised by the caller).
fn set_counter(c: &IntCounter, value: u64) {
    let now = c.get();
    if value >= now {
        c.inc_by(value - now);
    } else {
        c.reset();
        c.inc_by(value);
    }
}
