//! `/metrics`: Prometheus text format (0.0.4), one registry per server.
//!
//! | name | type | what |
//! | --- | --- | --- |
//! | `evstore_backend_info{backend}` | gauge | 1, labelled `file` or `postgres` |
//! | `evstore_appends_total` | counter | appends (batches) written since the store was opened |
//! | `evstore_group_commits_total` | counter | group commits since open: the file store's leader rounds; PostgreSQL's append transactions (one commit, one WAL flush, each) |
//! | `evstore_appends_per_commit` | gauge | `appends / group commits` since open (group commit's gain) |
//! | `evstore_fsyncs_total` | counter | file store only: `fdatasync` calls since open |
//! | `evstore_appends_per_fsync` | gauge | file store only: `appends / fsyncs` since open |
//! | `evstore_bytes_written_total` | counter | file store only: bytes written to the log since open |
//! | `evstore_segments` | gauge | file store only: mapped segments |
//! | `evstore_events` | gauge | events in the store (PostgreSQL: head position + 1) |
//! | `evstore_streams` | gauge | streams in the store (PostgreSQL: the stream catalog's count, which may trail the log by the catalog's lag) |
//! | `evstore_projection_lag_events{projection}` | gauge | events between the log's head and a read model |
//! | `evstore_projection_errors_total` | counter | read-model steps that failed (retried) |
//! | `evstore_append_latency_seconds{source}` | histogram | a write through the store: `orders` (an order command: load, decide, append, retries), `products` (setting a product's stock) or `streams` (a raw append) |
//! | `evstore_http_requests_total{method,route,status}` | counter | HTTP requests answered |
//! | `evstore_http_request_duration_seconds{route}` | histogram | time to the response head |
//! | `evstore_sse_clients` | gauge | open `/events` streams |
//!
//! The store's counters come from [`Backend::counters`](crate::Backend::counters) at each
//! scrape (the file store's `Store::stats`; PostgreSQL's `PgStore::commit_stats` and one head
//! query). The file-store-only metrics are not registered on PostgreSQL, where the server does
//! not write or sync files itself (PostgreSQL's own statistics views cover its I/O).

use std::sync::atomic::Ordering;
use std::time::Duration;

use parking_lot::Mutex;
use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::backend::BackendCounters;
use crate::state::AppState;

/// The server's metrics: HTTP ones updated as requests are answered, store ones read at
/// each scrape.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    scrape: Mutex<()>,
    appends: IntCounter,
    groups: IntCounter,
    per_commit: Gauge,
    file: Option<FileMetrics>,
    events: IntGauge,
    streams: IntGauge,
    lag: IntGaugeVec,
    projection_errors: IntCounter,
    append_latency: HistogramVec,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    /// Open `/events` streams.
    pub sse_clients: IntGauge,
}

/// The metrics only the file store has.
#[derive(Debug)]
struct FileMetrics {
    fsyncs: IntCounter,
    per_fsync: Gauge,
    bytes: IntCounter,
    segments: IntGauge,
}

impl FileMetrics {
    fn register(registry: &Registry) -> Result<FileMetrics, prometheus::Error> {
        let fsyncs = IntCounter::new(
            "evstore_fsyncs_total",
            "fdatasync calls since the store was opened.",
        )?;
        let per_fsync = Gauge::new(
            "evstore_appends_per_fsync",
            "Appends per fdatasync since the store was opened (group commit).",
        )?;
        let bytes = IntCounter::new(
            "evstore_bytes_written_total",
            "Bytes written to the log since the store was opened.",
        )?;
        let segments = IntGauge::new("evstore_segments", "Mapped log segments.")?;
        registry.register(Box::new(fsyncs.clone()))?;
        registry.register(Box::new(per_fsync.clone()))?;
        registry.register(Box::new(bytes.clone()))?;
        registry.register(Box::new(segments.clone()))?;
        Ok(FileMetrics {
            fsyncs,
            per_fsync,
            bytes,
            segments,
        })
    }
}

fn latency_buckets() -> Vec<f64> {
    // 50 µs to ~3 s.
    prometheus::exponential_buckets(0.000_05, 2.0, 16).unwrap_or_default()
}

impl Metrics {
    /// A fresh registry with every metric of a `backend` store (`"file"` or `"postgres"`,
    /// [`Backend::kind`](crate::Backend::kind)) registered.
    ///
    /// # Errors
    /// A metric that cannot be registered (a name clash: a bug).
    pub fn new(backend: &str) -> Result<Metrics, prometheus::Error> {
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
        let groups = counter(
            "evstore_group_commits_total",
            "Group commits since the store was opened (file store: leader rounds; PostgreSQL: append transactions).",
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
        let sse_clients = gauge("evstore_sse_clients", "Open /events streams.")?;
        let float_gauge = |name: &str, help: &str| -> Result<Gauge, prometheus::Error> {
            let g = Gauge::new(name, help)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let per_commit = float_gauge(
            "evstore_appends_per_commit",
            "Appends per group commit since the store was opened.",
        )?;
        let file = if backend == "file" {
            Some(FileMetrics::register(&registry)?)
        } else {
            None
        };
        let info = IntGaugeVec::new(
            Opts::new(
                "evstore_backend_info",
                "The storage backend (label backend: file or postgres); always 1.",
            ),
            &["backend"],
        )?;
        registry.register(Box::new(info.clone()))?;
        info.with_label_values(&[backend]).set(1);
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
                "Writes through the store: order commands (load, decide, append, retries), stock settings and raw appends.",
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
            groups,
            per_commit,
            file,
            events,
            streams,
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
    /// Blocks (PostgreSQL: a head query): call it on the blocking pool.
    pub(crate) fn render(&self, state: &AppState) -> String {
        let _one_scrape_at_a_time = self.scrape.lock();
        match state.store.counters() {
            Ok(c) => self.set_store_counters(&c, state),
            Err(e) => tracing::warn!(error = %e, "metrics: the store's counters are unavailable"),
        }
        set_counter(
            &self.projection_errors,
            state.followers_errors.load(Ordering::Relaxed),
        );
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        String::from_utf8(out).unwrap_or_default()
    }

    fn set_store_counters(&self, c: &BackendCounters, state: &AppState) {
        set_counter(&self.appends, c.appends);
        set_counter(&self.groups, c.commits);
        self.per_commit.set(ratio(c.appends, c.commits));
        if let (Some(m), Some(f)) = (&self.file, &c.file) {
            set_counter(&m.fsyncs, f.fsyncs);
            set_counter(&m.bytes, f.bytes_written);
            m.per_fsync.set(ratio(c.appends, f.fsyncs));
            m.segments.set(gauge_value(f.segments));
        }
        self.events.set(gauge_value(c.events));
        let streams = c
            .streams
            .unwrap_or_else(|| state.catalog.read(|s| s.len() as u64));
        self.streams.set(gauge_value(streams));
        // Positions are dense from 0: the next position is the number of events.
        let next = c.events;
        let lag = |p: u64| gauge_value(next.saturating_sub(p));
        self.lag
            .with_label_values(&["order-summaries"])
            .set(lag(state.summaries.next_position()));
        self.lag
            .with_label_values(&["server-streams"])
            .set(lag(state.catalog.next_position()));
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
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
