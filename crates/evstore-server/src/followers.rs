//! The threads that follow the log for the server: the Order read model
//! ([`OrderSummaries`]), the stream catalog ([`StreamCatalog`]) and the head watcher that
//! wakes the live feed (`/events`).
//!
//! Both read models are checkpointed projections ([`ProjectionRunner`]), in memory, with their
//! checkpoints where the backend keeps them: files beside the log for the file store
//! (`<log>.proj-order-summaries`, `<log>.proj-server-streams`), rows of `evstore_checkpoints`
//! for PostgreSQL (`proj-order-summaries`, `proj-server-streams`). Each runs on a thread of its
//! own and is stopped, with a final checkpoint, at shutdown. The head watcher waits with the
//! backend's [`EventSource::wait_for_position`]: the file store's in-process wake-up, or
//! PostgreSQL's LISTEN/NOTIFY (so appends by other processes wake the feed too).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use evstore::checkpoint_store::CheckpointStore;
use evstore::projection::{Projection, ProjectionHandle, ProjectionRunner};
use evstore::subscription::{EventSource, StopHandle};
use evstore::RecordedEvent;
use evstore_orders::projections::OrderSummaries;

use crate::backend::Backend;

/// The store as the followers read it.
type Source = Arc<dyn Backend>;

/// Where a read model named `name` keeps its checkpoint.
pub(crate) type CheckpointsFor = dyn Fn(&str) -> Box<dyn CheckpointStore> + Send + Sync;

/// One stream as the catalog knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamInfo {
    /// Events in the stream.
    pub events: u64,
    /// Version of its last event.
    pub last_version: u64,
    /// Type of its last event.
    pub last_type: String,
    /// When its last event was recorded.
    pub last_recorded_at: DateTime<Utc>,
    /// Global position of its last event.
    pub last_position: u64,
}

/// Every stream with its event count: the store has no stream listing of its own, so the
/// server keeps this read model (projection `server-streams`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamCatalog {
    streams: BTreeMap<String, StreamInfo>,
}

impl StreamCatalog {
    /// Streams whose id starts with `prefix`, in id order, after `after` (exclusive), at most
    /// `limit`.
    pub fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Vec<(String, StreamInfo)> {
        use std::ops::Bound;
        // Start at the prefix, or after `after` if that is further on.
        let start = match after {
            Some(a) if a >= prefix => Bound::Excluded(a),
            _ => Bound::Included(prefix),
        };
        self.streams
            .range::<str, _>((start, Bound::Unbounded))
            .take_while(|(id, _)| id.starts_with(prefix))
            .take(limit)
            .map(|(id, info)| (id.clone(), info.clone()))
            .collect()
    }

    /// Number of streams.
    pub fn len(&self) -> usize {
        self.streams.len()
    }

    /// Whether there are no streams.
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }
}

impl Projection for StreamCatalog {
    const NAME: &'static str = "server-streams";
    const VERSION: u32 = 1;

    fn apply(&mut self, e: &RecordedEvent) {
        let info = self
            .streams
            .entry(e.stream_id.clone())
            .or_insert_with(|| StreamInfo {
                events: 0,
                last_version: 0,
                last_type: String::new(),
                last_recorded_at: e.recorded_at,
                last_position: 0,
            });
        info.events += 1;
        info.last_version = e.version;
        info.last_type.clone_from(&e.event_type);
        info.last_recorded_at = e.recorded_at;
        info.last_position = e.position;
    }
}

/// The running followers; [`Followers::stop`] ends them.
pub(crate) struct Followers {
    stop: StopHandle,
    threads: Vec<JoinHandle<()>>,
    /// The Order read model.
    pub summaries: ProjectionHandle<OrderSummaries>,
    /// The stream catalog.
    pub catalog: ProjectionHandle<StreamCatalog>,
    /// The store's head position, updated as events become visible.
    pub head: watch::Receiver<Option<u64>>,
    /// Errors the runners met (each retried after a second).
    pub errors: Arc<AtomicU64>,
}

impl Followers {
    /// Open both projections (loading their checkpoints from `checkpoints(P::NAME)`) and
    /// start the threads.
    ///
    /// # Errors
    /// As [`ProjectionRunner::open_with`].
    pub fn start(store: &Source, checkpoints: &CheckpointsFor) -> evstore::Result<Followers> {
        let stop = StopHandle::new();
        let errors = Arc::new(AtomicU64::new(0));
        let summaries_runner = ProjectionRunner::<OrderSummaries, Source>::open_with(
            store.clone(),
            checkpoints(OrderSummaries::NAME),
        )?;
        let catalog_runner = ProjectionRunner::<StreamCatalog, Source>::open_with(
            store.clone(),
            checkpoints(StreamCatalog::NAME),
        )?;
        let summaries = summaries_runner.handle();
        let catalog = catalog_runner.handle();
        let (head_tx, head) = watch::channel(store.head_position());
        let threads = vec![
            run_projection(summaries_runner, stop.clone(), errors.clone()),
            run_projection(catalog_runner, stop.clone(), errors.clone()),
            watch_head(store.clone(), head_tx, stop.clone()),
        ];
        Ok(Followers {
            stop,
            threads,
            summaries,
            catalog,
            head,
            errors,
        })
    }

    /// Stop the threads and wait for them (each writes a final checkpoint).
    pub fn stop(self) {
        self.stop.stop();
        for t in self.threads {
            if t.join().is_err() {
                tracing::error!("a follower thread panicked");
            }
        }
    }
}

fn run_projection<P: Projection + Send + Sync + 'static>(
    mut runner: ProjectionRunner<P, Source>,
    stop: StopHandle,
    errors: Arc<AtomicU64>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        // Bounded by the stop handle, checked at least every 100 ms.
        while !stop.is_stopped() {
            if let Err(e) = runner.step(1024, Duration::from_millis(100)) {
                errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(projection = P::NAME, error = %e, "projection step failed; retrying in 1 s");
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        if let Err(e) = runner.checkpoint() {
            tracing::error!(projection = P::NAME, error = %e, "final checkpoint failed");
        }
    })
}

fn watch_head(store: Source, tx: watch::Sender<Option<u64>>, stop: StopHandle) -> JoinHandle<()> {
    std::thread::spawn(move || {
        // Bounded by the stop handle, checked every 100 ms.
        // The head as last sent: on PostgreSQL `head_position` is a query, made only when the
        // wait says the head moved.
        let mut head = store.head_position();
        while !stop.is_stopped() {
            let next = head.map_or(0, |h| h + 1);
            if store.wait_for_position(next, Duration::from_millis(100)) {
                head = store.head_position();
                tx.send_replace(head);
            }
        }
    })
}
