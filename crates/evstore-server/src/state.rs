//! What every handler shares: [`AppState`].

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use tokio::sync::watch;

use evstore::projection::ProjectionHandle;
use evstore::{EventStorage, RecordedEvent};
use evstore_orders::projections::OrderSummaries;
use evstore_orders::OrderService;

use crate::backend::Backend;
use crate::followers::StreamCatalog;
use crate::metrics::Metrics;
use crate::problem::ApiError;

/// The server's shared state (behind an `Arc`).
#[derive(Debug)]
pub(crate) struct AppState {
    /// The store (the file store or PostgreSQL); its calls go through [`blocking`] unless
    /// [`Backend::answers_from_memory`].
    pub store: Arc<dyn Backend>,
    /// The Order domain's application service (commands retry on conflicts).
    pub orders: OrderService<Arc<dyn Backend>>,
    /// The Order read model.
    pub summaries: ProjectionHandle<OrderSummaries>,
    /// The stream catalog.
    pub catalog: ProjectionHandle<StreamCatalog>,
    /// The store's head position as the head watcher last saw it.
    pub head: watch::Receiver<Option<u64>>,
    /// Becomes `true` when the server starts shutting down (ends `/events` streams).
    pub shutdown: watch::Receiver<bool>,
    /// Metrics.
    pub metrics: Metrics,
    /// The bearer token writes need (`None`: writes are open).
    pub token: Option<String>,
    /// Errors the read-model threads met.
    pub followers_errors: Arc<AtomicU64>,
}

/// Run `f` on tokio's blocking pool (store and service calls block on fsyncs and reads).
///
/// # Errors
/// `f`'s error; a 500 problem if the task panicked.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, ApiError>
where
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("a blocking task failed: {e}")))?
}

impl AppState {
    /// The store's head position: from memory (file store) or a query on the blocking pool.
    ///
    /// # Errors
    /// A 500 problem when the store cannot be read (PostgreSQL unreachable).
    pub(crate) async fn head_position(&self) -> Result<Option<u64>, ApiError> {
        if self.store.answers_from_memory() {
            return self.store.head().map_err(ApiError::from);
        }
        let store = self.store.clone();
        blocking(move || store.head().map_err(ApiError::from)).await
    }

    /// The last version of `stream` (`None`: no such stream), as [`AppState::head_position`].
    ///
    /// # Errors
    /// As [`EventStorage::last_version`].
    pub(crate) async fn stream_version(&self, stream: &str) -> Result<Option<u64>, ApiError> {
        if self.store.answers_from_memory() {
            return self.store.last_version(stream).map_err(ApiError::from);
        }
        let store = self.store.clone();
        let stream = stream.to_string();
        blocking(move || store.last_version(&stream).map_err(ApiError::from)).await
    }

    /// Up to `max` events from position `from`, on the blocking pool.
    ///
    /// # Errors
    /// The store's read errors.
    pub(crate) async fn read_all_from(
        &self,
        from: u64,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, ApiError> {
        let store = self.store.clone();
        blocking(move || store.read_all_from(from, max).map_err(ApiError::from)).await
    }
}
