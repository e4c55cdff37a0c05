//! The names most programs need, in one import: `use evstore::prelude::*;`.
//!
//! The store and its value types, the domain layer (aggregates, serde events, repositories),
//! the read side (projections, subscriptions) and the `chrono` / `uuid` types the API takes and
//! returns (re-exported, so an application needs no matching versions of those crates).
//!
//! ```
//! use evstore::prelude::*;
//! # let dir = tempfile::tempdir().unwrap();
//! let store = Store::open(dir.path().join("p.evs"))?;
//! let at: DateTime<Utc> = Utc::now();
//! let id: Uuid = store
//!     .append("s", ExpectedVersion::NoStream, &[NewEvent::new("E", vec![])])
//!     .map(|_| store.event_id_at("s", 0))??
//!     .unwrap_or_default();
//! assert!(!id.is_nil());
//! assert!(store.read_by_type("E", Some(at - chrono::Duration::seconds(1)))?.len() == 1);
//! # Ok::<(), evstore::Error>(())
//! ```

pub use crate::aggregate::{
    Aggregate, CommandContext, DomainEvent, EventMetadata, PayloadFormat, Root, SerdeEvent,
};
pub use crate::aggregate_projection::AggregateProjection;
pub use crate::projection::{Projection, ProjectionRunner};
pub use crate::repository::{Repository, RepositoryError};
pub use crate::subscription::{Subscription, SubscriptionFilter};
pub use crate::{
    AppendResult, Durability, Error, EventStorage, ExpectedVersion, NewEvent, Options,
    RecordedEvent, Result, Store,
};
pub use chrono::{DateTime, Utc};
pub use uuid::Uuid;
