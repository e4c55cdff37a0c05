//! [`AsyncStore`]: the store from async (tokio) code, with every blocking call kept off the
//! runtime's worker threads. Enabled by the `tokio` feature.
//!
//! A [`Store`] call can block: an append waits for its `fdatasync` (100 µs to milliseconds), a
//! read may fault pages in from disk, `wait_for_position` sleeps. Called from an async task it
//! would stall every other task on that worker. `AsyncStore` runs such calls on tokio's
//! blocking pool ([`tokio::task::spawn_blocking`]) and awaits them; calls that only look at the
//! in-memory index (`stream_version`, `head_position`) run inline. Clone it freely: it is an
//! `Arc` around the store.
//!
//! Domain code (repositories, projections) runs unchanged inside [`AsyncStore::run`], which
//! lends the shared store to a closure on the blocking pool.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
//! # rt.block_on(async {
//! use evstore::async_store::AsyncStore;
//! use evstore::{ExpectedVersion, NewEvent};
//!
//! let store = AsyncStore::open(dir.path().join("app.evs")).await?;
//! let r = store
//!     .append("cart-1", ExpectedVersion::NoStream, vec![NewEvent::new("Added", b"1".to_vec())])
//!     .await?;
//! assert_eq!(r.first_version, 0);
//! let events = store.read_stream("cart-1", 0).await?;
//! assert_eq!(events.len(), 1);
//! assert_eq!(store.stream_version("cart-1"), Some(0));
//! // Anything else, e.g. a repository, on the blocking pool:
//! let types = store.run(|s| s.event_types()).await?;
//! assert_eq!(types, vec![("Added".to_string(), 1)]);
//! # Ok::<(), evstore::Error>(())
//! # })?;
//! # Ok(())
//! # }
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::{
    AppendResult, Error, ExpectedVersion, NewEvent, Options, RecordedEvent, Result, Store,
};

/// A [`Store`] for async code: blocking calls run on tokio's blocking pool. See the module
/// docs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AsyncStore {
    store: Arc<Store>,
}

impl AsyncStore {
    /// Wrap an open store.
    pub fn new(store: Arc<Store>) -> AsyncStore {
        AsyncStore { store }
    }

    /// Open (or create) the store at `path` with default [`Options`], on the blocking pool.
    ///
    /// # Errors
    /// As [`Store::open`].
    pub async fn open(path: impl Into<PathBuf>) -> Result<AsyncStore> {
        AsyncStore::open_with(path, Options::default()).await
    }

    /// Open the store at `path` with `options`, on the blocking pool.
    ///
    /// # Errors
    /// As [`Store::open_with`].
    pub async fn open_with(path: impl Into<PathBuf>, options: Options) -> Result<AsyncStore> {
        let path = path.into();
        let store = blocking(move || Store::open_with(path, options)).await??;
        Ok(AsyncStore::new(Arc::new(store)))
    }

    /// The shared store, for synchronous use (e.g. handing it to a repository that runs in
    /// [`AsyncStore::run`]).
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Run `f` with the store on the blocking pool and return its result: the way to call
    /// anything not wrapped here (repositories, projections, maintenance) from async code.
    ///
    /// # Errors
    /// [`Error::Internal`] if `f` panicked (the panic is not propagated into the caller's
    /// task).
    pub async fn run<R, F>(&self, f: F) -> Result<R>
    where
        F: FnOnce(&Store) -> R + Send + 'static,
        R: Send + 'static,
    {
        let store = self.store.clone();
        blocking(move || f(&store)).await
    }

    /// [`Store::append`] on the blocking pool (it waits for the fsync in `Sync` mode).
    ///
    /// # Errors
    /// As [`Store::append`]; [`Error::Internal`] if the blocking task panicked.
    pub async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult> {
        let stream = stream.to_string();
        self.run(move |s| s.append(&stream, expected, &events))
            .await?
    }

    /// [`Store::append_multi`] on the blocking pool: every part or none.
    ///
    /// # Errors
    /// As [`Store::append_multi`]; [`Error::Internal`] if the blocking task panicked.
    pub async fn append_multi(
        &self,
        appends: Vec<crate::StreamAppend>,
    ) -> Result<Vec<AppendResult>> {
        self.run(move |s| s.append_multi(&appends)).await?
    }

    /// [`Store::append_if`] on the blocking pool: a DCB append under `condition`.
    ///
    /// # Errors
    /// As [`Store::append_if`]; [`Error::Internal`] if the blocking task panicked.
    pub async fn append_if(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        condition: crate::AppendCondition,
    ) -> Result<AppendResult> {
        let stream = stream.to_string();
        self.run(move |s| s.append_if(&stream, expected, &events, &condition))
            .await?
    }

    /// [`Store::read_query`] on the blocking pool: the events `query` matches after `after`,
    /// and the head position the read saw.
    ///
    /// # Errors
    /// As [`Store::read_query`]; [`Error::Internal`] if the blocking task panicked.
    pub async fn read_query(
        &self,
        query: crate::Query,
        after: Option<u64>,
    ) -> Result<(Vec<RecordedEvent>, Option<u64>)> {
        self.run(move |s| s.read_query(&query, after)).await?
    }

    /// [`Store::read_stream`] on the blocking pool.
    ///
    /// # Errors
    /// As [`Store::read_stream`]; [`Error::Internal`] if the blocking task panicked.
    pub async fn read_stream(&self, stream: &str, from_version: u64) -> Result<Vec<RecordedEvent>> {
        let stream = stream.to_string();
        self.run(move |s| s.read_stream(&stream, from_version))
            .await?
    }

    /// Up to `max` events of the global log from `from_position` on, in position order (a
    /// page of [`Store::read_all`]), on the blocking pool.
    ///
    /// # Errors
    /// As [`Store::read_all`]'s items; [`Error::Internal`] if the blocking task panicked.
    pub async fn read_all_from(
        &self,
        from_position: u64,
        max: usize,
    ) -> Result<Vec<RecordedEvent>> {
        self.run(move |s| s.read_all(from_position).take(max).collect())
            .await?
    }

    /// [`Store::read_by_type`] on the blocking pool.
    ///
    /// # Errors
    /// As [`Store::read_by_type`]; [`Error::Internal`] if the blocking task panicked.
    pub async fn read_by_type(
        &self,
        event_type: &str,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<RecordedEvent>> {
        let event_type = event_type.to_string();
        self.run(move |s| s.read_by_type(&event_type, since))
            .await?
    }

    /// [`Store::wait_for_position`] on the blocking pool: whether an event at `position` or
    /// later became visible within `timeout`. The blocking pool thread sleeps, not the task's
    /// worker.
    ///
    /// # Errors
    /// [`Error::Internal`] if the blocking task panicked.
    pub async fn wait_for_position(&self, position: u64, timeout: Duration) -> Result<bool> {
        self.run(move |s| s.wait_for_position(position, timeout))
            .await
    }

    /// [`Store::flush`] on the blocking pool.
    ///
    /// # Errors
    /// As [`Store::flush`]; [`Error::Internal`] if the blocking task panicked.
    pub async fn flush(&self) -> Result<()> {
        self.run(Store::flush).await?
    }

    /// [`Store::stream_version`]: an index lookup, inline.
    pub fn stream_version(&self, stream: &str) -> Option<u64> {
        self.store.stream_version(stream)
    }

    /// [`Store::head_position`]: an index lookup, inline.
    pub fn head_position(&self) -> Option<u64> {
        self.store.head_position()
    }
}

/// Run `f` on tokio's blocking pool; a panic in `f` becomes [`Error::Internal`].
async fn blocking<R, F>(f: F) -> Result<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("a blocking store task failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One worker thread: if an append blocked it, the ticker task below could not run.
    #[test]
    fn appends_keep_the_only_worker_free() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        rt.block_on(async {
            let store = AsyncStore::open(dir.path().join("a.evs")).await.unwrap();
            let ticks = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let ticker = {
                let ticks = ticks.clone();
                tokio::spawn(async move {
                    for _ in 0..1000 {
                        ticks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        tokio::task::yield_now().await;
                    }
                })
            };
            for i in 0..50u64 {
                let e = NewEvent::new("E", i.to_le_bytes().to_vec());
                store
                    .append("s", ExpectedVersion::Any, vec![e])
                    .await
                    .unwrap();
            }
            ticker.await.unwrap();
            assert_eq!(ticks.load(std::sync::atomic::Ordering::Relaxed), 1000);
            assert_eq!(store.read_all_from(0, 10).await.unwrap().len(), 10);
            assert!(store.wait_for_position(49, Duration::ZERO).await.unwrap());
            assert_eq!(store.head_position(), Some(49));
        });
    }

    #[test]
    fn a_panicking_task_is_an_internal_error_not_a_panic() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        rt.block_on(async {
            let store = AsyncStore::open(dir.path().join("p.evs")).await.unwrap();
            let r = store.run(|_| -> u32 { panic!("boom") }).await;
            assert!(matches!(r, Err(Error::Internal(_))), "{r:?}");
        });
    }

    #[test]
    fn dcb_calls_run_on_the_blocking_pool() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        rt.block_on(async {
            let store = AsyncStore::open(dir.path().join("d.evs")).await.unwrap();
            let parts = vec![
                crate::StreamAppend::new(
                    "a",
                    ExpectedVersion::NoStream,
                    vec![NewEvent::new("E", vec![])],
                ),
                crate::StreamAppend::new(
                    "b",
                    ExpectedVersion::NoStream,
                    vec![NewEvent::new("E", vec![])],
                ),
            ];
            assert_eq!(store.append_multi(parts).await.unwrap().len(), 2);
            let query = crate::Query::new(vec![crate::QueryItem::new(&[], &["k"])]);
            let (seen, head) = store.read_query(query.clone(), None).await.unwrap();
            assert!(seen.is_empty());
            assert_eq!(head, Some(1));
            let claim = NewEvent::new("C", vec![]).with_tags(["k"]);
            let condition = crate::AppendCondition::new(query, head);
            store
                .append_if(
                    "c",
                    ExpectedVersion::Any,
                    vec![claim.clone()],
                    condition.clone(),
                )
                .await
                .unwrap();
            let again = NewEvent::new("C", vec![]).with_tags(["k"]);
            let r = store
                .append_if("d", ExpectedVersion::Any, vec![again], condition)
                .await;
            assert!(
                matches!(r, Err(Error::AppendConditionFailed { .. })),
                "{r:?}"
            );
        });
    }
}
