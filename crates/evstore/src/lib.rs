//! # evstore — an embedded, crash-safe event store
//!
//! One log file, many streams, optimistic concurrency, group commit, no server.
//!
//! ```
//! use evstore::{ExpectedVersion, NewEvent, Store};
//! # let dir = tempfile::tempdir().unwrap();
//! let store = Store::open(dir.path().join("app.evs"))?;
//! store.append("account-42", ExpectedVersion::NoStream, &[NewEvent::new("Opened", b"{}".to_vec())])?;
//! store.append("account-42", ExpectedVersion::Exact(0), &[NewEvent::new("Deposited", b"100".to_vec())])?;
//! for event in store.read_all(0) {
//!     let event = event?;
//!     println!("{} {} v{}", event.position, event.event_type, event.version);
//! }
//! # Ok::<(), evstore::Error>(())
//! ```
//!
//! Beyond one stream: [`Store::append_multi`] appends to several streams atomically, and
//! [`Store::read_query`] / [`Store::append_if`] give Dynamic Consistency Boundaries over
//! tagged events ([`NewEvent::with_tags`], the [`query`] module).
//!
//! The on-disk format is specified in `docs/FORMAT.md`; the guarantees in the `Store` docs.

#![forbid(unsafe_op_in_unsafe_fn)]

// 64-bit targets only. The workspace allows `clippy::cast_possible_truncation` on this ground
// (a u64 offset or length converted to usize cannot truncate), and the index packs file offsets
// and positions into 64-bit words.
const _: () = assert!(usize::BITS == 64, "evstore supports 64-bit targets only");

pub mod aggregate;
pub mod aggregate_projection;
#[cfg(feature = "tokio")]
pub mod async_store;
pub mod checkpoint;
pub mod checkpoint_store;
pub mod codec;
mod error;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod index;
pub mod limits;
mod log;
pub mod maintenance;
pub mod prelude;
pub mod projection;
pub mod query;
pub mod repository;
pub mod saga;
mod serde_event;
pub mod snapshot;
mod storage;
mod store;
pub mod subscription;
#[cfg(feature = "test-support")]
pub mod testing;
mod types;
pub mod upcast;

/// The `chrono` crate the API's times come from (re-exported: no version to match).
pub use chrono;
pub use error::{Error, Result, Site};
pub use query::{AppendCondition, Query, QueryItem};
pub use storage::EventStorage;
pub use store::{BackupReport, ReadAll, RecoveryReport, Store, StoreStats, TrimReport};
pub use types::{
    new_event_id, AppendResult, Durability, EventView, ExpectedVersion, NewEvent, Options,
    RecordedEvent, StreamAppend, Tags, DEFAULT_SEGMENT_SIZE, MAX_SEGMENT_SIZE, MAX_TAGS_PER_EVENT,
    MIN_SEGMENT_SIZE,
};
/// The `uuid` crate the API's event ids come from (re-exported: no version to match).
pub use uuid;

/// docs/GUIDE.md ("Your first aggregate"), compiled and run as doc tests so its code stays
/// true.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/GUIDE.md")]
pub struct Guide;
