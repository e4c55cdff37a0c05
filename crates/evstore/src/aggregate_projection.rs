//! [`AggregateProjection`]: a projection over one aggregate type's events, decoded and upcast,
//! with the aggregate id, instead of raw bytes.
//!
//! A blanket `impl<T: AggregateProjection> Projection for T` turns it into an ordinary
//! [`Projection`] (so [`ProjectionRunner`](crate::projection::ProjectionRunner), checkpoints and
//! [`InlineProjection`](crate::projection::InlineProjection) work unchanged): its filter reads
//! only the aggregate's streams (`"{TYPE_NAME}-"`), each event is decoded with
//! [`decode_recorded`] through [`AggregateProjection::upcasters`], and one that does not decode
//! goes to [`AggregateProjection::undecodable`] (events are facts: a projection never fails).
//!
//! ```
//! use evstore::aggregate::{Aggregate, SerdeEvent};
//! use evstore::aggregate_projection::AggregateProjection;
//! use evstore::projection::ProjectionRunner;
//! use evstore::repository::Repository;
//! use evstore::RecordedEvent;
//! use serde::{Deserialize, Serialize};
//! use std::collections::BTreeMap;
//!
//! #[derive(Debug, Clone, Serialize, Deserialize)]
//! enum TabEvent { Opened { owner: String }, Added { cents: i64 } }
//! impl SerdeEvent for TabEvent {}
//!
//! #[derive(Debug, Clone, Default, Serialize, Deserialize)]
//! struct Tab { owner: String, cents: i64 }
//! impl Aggregate for Tab {
//!     const TYPE_NAME: &'static str = "Tab";
//!     type Event = TabEvent;
//!     type Command = TabEvent;
//!     type Error = std::convert::Infallible;
//!     fn apply(&mut self, e: &TabEvent) {
//!         match e { TabEvent::Opened { owner } => self.owner = owner.clone(),
//!                   TabEvent::Added { cents } => self.cents += cents }
//!     }
//!     fn handle(&self, c: &TabEvent) -> Result<Vec<TabEvent>, Self::Error> { Ok(vec![c.clone()]) }
//! }
//!
//! /// Cents per owner.
//! #[derive(Default, Serialize, Deserialize)]
//! struct ByOwner { owners: BTreeMap<String, String>, cents: BTreeMap<String, i64> }
//! impl AggregateProjection for ByOwner {
//!     type Aggregate = Tab;
//!     const NAME: &'static str = "tabs-by-owner";
//!     const VERSION: u32 = 1;
//!     fn apply(&mut self, id: &str, event: &TabEvent, _recorded: &RecordedEvent) {
//!         match event {
//!             TabEvent::Opened { owner } => { self.owners.insert(id.into(), owner.clone()); }
//!             TabEvent::Added { cents } => {
//!                 let owner = self.owners.get(id).cloned().unwrap_or_default();
//!                 *self.cents.entry(owner).or_default() += cents;
//!             }
//!         }
//!     }
//! }
//!
//! # let dir = tempfile::tempdir().unwrap();
//! let store = std::sync::Arc::new(evstore::Store::open(dir.path().join("t.evs"))?);
//! let tabs = Repository::<Tab, _>::new(store.clone());
//! tabs.handle("t1", &TabEvent::Opened { owner: "ann".into() })?;
//! tabs.handle("t1", &TabEvent::Added { cents: 250 })?;
//! let mut runner = ProjectionRunner::<ByOwner, _>::open_beside(store)?;
//! runner.catch_up()?;
//! assert_eq!(runner.handle().read(|p| p.cents["ann"]), 250);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::OnceLock;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::aggregate::{Aggregate, PayloadFormat};
use crate::projection::Projection;
use crate::repository::{decode_recorded, DecodeFailure};
use crate::subscription::SubscriptionFilter;
use crate::upcast::Upcasters;
use crate::RecordedEvent;

/// A read model folded from the decoded events of one aggregate type. See the module docs.
pub trait AggregateProjection:
    Default + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// The aggregate whose events this projection reads.
    type Aggregate: Aggregate;
    /// Stable name (as [`Projection::NAME`]: ASCII letters, digits, `-`, `_`; 1..=64 bytes).
    const NAME: &'static str;
    /// Version of `apply` and of the state's shape; a change rebuilds from zero (as
    /// [`Projection::VERSION`]).
    const VERSION: u32;
    /// How the state is encoded in the checkpoint (as [`Projection::STATE_FORMAT`]).
    const STATE_FORMAT: PayloadFormat = PayloadFormat::Binary;

    /// The upcasters the aggregate's repository uses (default: none). Called for every
    /// event: return a static (e.g. from a `std::sync::OnceLock`).
    fn upcasters() -> &'static Upcasters {
        static NONE: OnceLock<Upcasters> = OnceLock::new();
        NONE.get_or_init(Upcasters::new)
    }

    /// Fold one event of aggregate `id` (the stream id without the `"{TYPE_NAME}-"` prefix).
    fn apply(
        &mut self,
        id: &str,
        event: &<Self::Aggregate as Aggregate>::Event,
        recorded: &RecordedEvent,
    );

    /// An event of the aggregate's streams that does not decode (unknown type, damaged
    /// payload, missing upcaster). Default: ignored. Count it if you want to see it.
    fn undecodable(&mut self, recorded: &RecordedEvent, reason: &DecodeFailure) {
        let _ = (recorded, reason);
    }
}

impl<T: AggregateProjection> Projection for T {
    const NAME: &'static str = <T as AggregateProjection>::NAME;
    const VERSION: u32 = <T as AggregateProjection>::VERSION;
    const STATE_FORMAT: PayloadFormat = <T as AggregateProjection>::STATE_FORMAT;

    fn filter() -> SubscriptionFilter {
        SubscriptionFilter::all().with_stream_prefix(stream_prefix::<T::Aggregate>())
    }

    fn apply(&mut self, event: &RecordedEvent) {
        let prefix = stream_prefix::<T::Aggregate>();
        let Some(id) = event.stream_id.strip_prefix(&prefix) else {
            return;
        };
        match decode_recorded::<<T::Aggregate as Aggregate>::Event>(T::upcasters(), event) {
            Ok((decoded, _meta)) => AggregateProjection::apply(self, id, &decoded, event),
            Err(reason) => self.undecodable(event, &reason),
        }
    }
}

fn stream_prefix<A: Aggregate>() -> String {
    format!("{}-", A::TYPE_NAME)
}
