//! What every handler shares: [`AppState`].

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use tokio::sync::watch;

use evstore::async_store::AsyncStore;
use evstore::projection::ProjectionHandle;
use evstore::Store;
use evstore_orders::projections::OrderSummaries;
use evstore_orders::OrderService;

use crate::followers::StreamCatalog;
use crate::metrics::Metrics;
use crate::problem::ApiError;

/// The server's shared state (behind an `Arc`).
#[derive(Debug)]
pub(crate) struct AppState {
    /// The store, with its blocking calls on tokio's blocking pool.
    pub store: AsyncStore,
    /// The Order domain's application service (commands retry on conflicts).
    pub orders: OrderService<Arc<Store>>,
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
