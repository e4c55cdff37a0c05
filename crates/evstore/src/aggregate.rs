//! The domain layer's building blocks: [`DomainEvent`], [`Aggregate`], the in-memory
//! [`Root`] that carries an aggregate's state, version and uncommitted events, and the
//! [`EventMetadata`] envelope stored with every domain event.
//!
//! State changes only through [`Aggregate::apply`]; commands are checked by
//! [`Aggregate::handle`], which returns the events to record or a domain error.
//!
//! ```
//! use evstore::aggregate::{Aggregate, DomainEvent, Root};
//! use evstore::codec::{self, CodecError};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Clone, PartialEq)]
//! enum CounterEvent { Added(u32) }
//! impl DomainEvent for CounterEvent {
//!     fn event_type(&self) -> &'static str { "Added" }
//!     fn schema_version(event_type: &str) -> Option<u16> { (event_type == "Added").then_some(1) }
//!     fn encode(&self) -> Result<Vec<u8>, CodecError> { match self { CounterEvent::Added(n) => codec::encode(n) } }
//!     fn decode(event_type: &str, payload: &[u8]) -> Result<Self, CodecError> {
//!         match event_type {
//!             "Added" => Ok(CounterEvent::Added(codec::decode(payload)?)),
//!             other => Err(CodecError::Decode(format!("unknown event type {other}"))),
//!         }
//!     }
//! }
//!
//! #[derive(Debug, Clone, Default, Serialize, Deserialize)]
//! struct Counter { total: u64 }
//! #[derive(Debug, thiserror::Error)]
//! #[error("cannot add zero")]
//! struct AddZero;
//!
//! impl Aggregate for Counter {
//!     const TYPE_NAME: &'static str = "Counter";
//!     type Event = CounterEvent;
//!     type Command = u32;
//!     type Error = AddZero;
//!     fn apply(&mut self, e: &CounterEvent) { match e { CounterEvent::Added(n) => self.total += u64::from(*n) } }
//!     fn handle(&self, n: &u32) -> Result<Vec<CounterEvent>, AddZero> {
//!         if *n == 0 { Err(AddZero) } else { Ok(vec![CounterEvent::Added(*n)]) }
//!     }
//! }
//!
//! let mut c = Root::<Counter>::new("c1");
//! c.execute(&5).unwrap();
//! assert!(c.execute(&0).is_err());
//! assert_eq!((c.state().total, c.pending().len()), (5, 1));
//! ```

use std::collections::BTreeMap;
use std::fmt::Debug;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::codec::{self, Codec, CodecError};
pub use crate::serde_event::{PayloadFormat, SerdeEvent};

/// An aggregate's event type: an enum whose variants each have a stable event-type name and
/// a schema version. Payloads go through [`crate::codec`].
pub trait DomainEvent: Sized + Clone + Debug + Send + Sync + 'static {
    /// The stable name of this variant, stored as the event's `event_type`.
    fn event_type(&self) -> &'static str;
    /// The schema version this build writes for `event_type`; `None` for an unknown type.
    fn schema_version(event_type: &str) -> Option<u16>;
    /// Encode this event's payload (at the current schema version), in
    /// [`DomainEvent::payload_codec`].
    ///
    /// # Errors
    /// [`CodecError::Encode`] when the payload cannot be encoded.
    fn encode(&self) -> Result<Vec<u8>, CodecError>;
    /// Decode a payload of `event_type` at the current schema version. Called inside
    /// [`codec::with_codec`] naming the codec the payload was written with, so
    /// [`codec::decode`] reads it right.
    ///
    /// # Errors
    /// [`CodecError::Decode`] for an unknown `event_type` or a payload that does not decode
    /// (or [`CodecError::TrailingBytes`], as [`codec::decode`] reports it).
    fn decode(event_type: &str, payload: &[u8]) -> Result<Self, CodecError>;

    /// The codec [`DomainEvent::encode`] writes this event's payload in, recorded in the
    /// metadata envelope so readers decode it right. Default: [`Codec::CURRENT`] (what
    /// [`codec::encode`] writes).
    fn payload_codec(&self) -> Codec {
        Codec::CURRENT
    }

    /// The tags this event is stored with ([`NewEvent::tags`](crate::NewEvent::tags)), for
    /// Dynamic Consistency Boundary queries ([`crate::query`]), e.g. `product:sku-1`. Default:
    /// none.
    fn tags(&self) -> Vec<String> {
        Vec::new()
    }
}

/// An event-sourced aggregate: its state is the fold of its events.
pub trait Aggregate:
    Default + Clone + Debug + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// Type name, used as the stream prefix: aggregate `id` lives in stream `"{TYPE_NAME}-{id}"`.
    const TYPE_NAME: &'static str;
    /// Schema version of the snapshot payload (the serde form of `Self`).
    const SNAPSHOT_VERSION: u16 = 1;
    /// How snapshots of this aggregate are encoded: the store's binary codec (MessagePack,
    /// default) or JSON. Each snapshot records its codec, so changing this later keeps older
    /// snapshots usable.
    const SNAPSHOT_FORMAT: PayloadFormat = PayloadFormat::Binary;
    /// The events.
    type Event: DomainEvent;
    /// The commands.
    type Command;
    /// The domain error of a refused command.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Fold one event into the state. Never fails: events are facts.
    fn apply(&mut self, event: &Self::Event);

    /// Decide what a command means: the events to record (possibly none). A pure decision on
    /// the state: [`Repository::execute`](crate::repository::Repository::execute) re-runs it
    /// after a conflict.
    ///
    /// # Errors
    /// The domain error saying why the command is refused.
    fn handle(&self, command: &Self::Command) -> Result<Vec<Self::Event>, Self::Error>;

    /// The stream holding aggregate `id`.
    fn stream_id(id: &str) -> String {
        format!("{}-{}", Self::TYPE_NAME, id)
    }
}

/// An aggregate instance in memory: id, state, the version of the last recorded event folded
/// in (`None`: nothing recorded yet), and events produced by commands but not yet saved.
#[derive(Debug, Clone)]
pub struct Root<A: Aggregate> {
    id: String,
    state: A,
    version: Option<u64>,
    last_event_id: Option<Uuid>,
    pending: Vec<A::Event>,
}

impl<A: Aggregate> Root<A> {
    /// A new, empty aggregate (no events yet).
    pub fn new(id: impl Into<String>) -> Root<A> {
        Root {
            id: id.into(),
            state: A::default(),
            version: None,
            last_event_id: None,
            pending: Vec::new(),
        }
    }

    /// Rebuild from a state at `version` (e.g. a snapshot).
    pub(crate) fn from_state(id: String, state: A, version: u64, event_id: Uuid) -> Root<A> {
        Root {
            id,
            state,
            version: Some(version),
            last_event_id: Some(event_id),
            pending: Vec::new(),
        }
    }

    /// The aggregate id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The stream holding this aggregate.
    pub fn stream_id(&self) -> String {
        A::stream_id(&self.id)
    }

    /// Current state (including pending events).
    pub fn state(&self) -> &A {
        &self.state
    }

    /// Version of the last recorded event folded in; `None` when nothing is recorded.
    pub fn version(&self) -> Option<u64> {
        self.version
    }

    /// Id of the last recorded event folded in.
    pub fn last_event_id(&self) -> Option<Uuid> {
        self.last_event_id
    }

    /// Events produced by commands and not yet saved.
    pub fn pending(&self) -> &[A::Event] {
        &self.pending
    }

    /// Handle a command: on success its events are applied to the state and queued for saving,
    /// and returned.
    ///
    /// # Errors
    /// The domain error of [`Aggregate::handle`]; nothing changes then.
    pub fn execute(&mut self, command: &A::Command) -> Result<&[A::Event], A::Error> {
        let events = self.state.handle(command)?;
        let start = self.pending.len();
        for e in &events {
            self.state.apply(e);
        }
        self.pending.extend(events);
        Ok(&self.pending[start..])
    }

    /// Fold in a recorded event.
    pub(crate) fn apply_recorded(&mut self, event: &A::Event, version: u64, event_id: Uuid) {
        debug_assert!(
            self.pending.is_empty(),
            "recorded events fold in before pending ones"
        );
        self.state.apply(event);
        self.version = Some(version);
        self.last_event_id = Some(event_id);
    }

    /// Mark pending events as recorded at `last_version`.
    pub(crate) fn mark_saved(&mut self, last_version: u64, last_event_id: Uuid) {
        self.pending.clear();
        self.version = Some(last_version);
        self.last_event_id = Some(last_event_id);
    }
}

/// The metadata envelope stored in [`NewEvent::metadata`](crate::NewEvent) of every domain
/// event. Encoding (docs/FORMAT.md §9.1): one tag byte naming the codec of the event's
/// payload, then this struct: `0xE2`, the struct in MessagePack with field names, payload in
/// MessagePack (what this build writes by default); `0xE3`, the struct in MessagePack, payload
/// in JSON; `0xE1` (legacy, decoded only), the struct and the payload in bincode 2.0.1.
/// Empty metadata (an event written without the domain layer) reads as the default with
/// schema version 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMetadata {
    /// Schema version of the payload.
    pub schema_version: u16,
    /// The id shared by everything caused by one original request.
    pub correlation_id: Option<Uuid>,
    /// The id of the message (command or event) that caused this event.
    pub causation_id: Option<Uuid>,
    /// Free-form key/values (user id, tenant, source...).
    pub extra: BTreeMap<String, String>,
}

impl Default for EventMetadata {
    fn default() -> Self {
        EventMetadata {
            schema_version: 1,
            correlation_id: None,
            causation_id: None,
            extra: BTreeMap::new(),
        }
    }
}

/// Envelope tag of metadata written by builds before the MessagePack codec: the rest is the
/// bincode 2.0.1 encoding of [`EventMetadata`], and the event's payload is bincode too.
const METADATA_TAG_BINCODE: u8 = 0xE1;
/// Envelope tag of metadata written by this build: the rest is the MessagePack (named fields)
/// encoding of [`EventMetadata`], and the event's payload is MessagePack too.
const METADATA_TAG_MSGPACK: u8 = 0xE2;
/// Envelope tag of metadata (MessagePack) of an event whose payload is JSON.
const METADATA_TAG_JSON: u8 = 0xE3;

impl EventMetadata {
    /// Encode for `NewEvent::metadata`: the envelope tag of the current codec
    /// ([`Codec::CURRENT`]), then the metadata in that codec (docs/FORMAT.md, "Domain
    /// events"). The event's payload must be encoded with the same codec ([`codec::encode`]).
    ///
    /// # Errors
    /// [`CodecError::Encode`] if the metadata cannot be encoded.
    pub fn encode(&self) -> Result<Vec<u8>, CodecError> {
        self.encode_for(Codec::CURRENT)
    }

    /// Encode for `NewEvent::metadata`, for a payload in `payload_codec` (MessagePack, the
    /// current codec, or JSON): the envelope tag names it (docs/FORMAT.md §9.1).
    ///
    /// # Errors
    /// [`CodecError::Encode`] if the metadata cannot be encoded, or for the legacy codec,
    /// which is never written.
    pub fn encode_for(&self, payload_codec: Codec) -> Result<Vec<u8>, CodecError> {
        let tag = match payload_codec {
            Codec::MessagePack => METADATA_TAG_MSGPACK,
            Codec::Json => METADATA_TAG_JSON,
            Codec::Bincode2 => {
                return Err(CodecError::Encode(
                    "the legacy codec is decoded only, never written".into(),
                ))
            }
        };
        let mut out = vec![tag];
        out.extend(codec::encode_as(Codec::MessagePack, self)?);
        Ok(out)
    }

    /// Decode from `RecordedEvent::metadata` (empty → default).
    ///
    /// # Errors
    /// [`CodecError::Decode`] for an unknown envelope tag or a damaged envelope.
    pub fn decode(bytes: &[u8]) -> Result<EventMetadata, CodecError> {
        Ok(EventMetadata::decode_with_codec(bytes)?.0)
    }

    /// Decode from `RecordedEvent::metadata`, with the codec the event's payload was written
    /// with (which the envelope's tag names). Empty metadata is the default metadata with the
    /// current codec.
    ///
    /// # Errors
    /// As [`EventMetadata::decode`].
    pub fn decode_with_codec(bytes: &[u8]) -> Result<(EventMetadata, Codec), CodecError> {
        match bytes.split_first() {
            None => Ok((EventMetadata::default(), Codec::CURRENT)),
            Some((&METADATA_TAG_MSGPACK, rest)) => Ok((
                codec::decode_as(Codec::MessagePack, rest)?,
                Codec::MessagePack,
            )),
            Some((&METADATA_TAG_JSON, rest)) => {
                Ok((codec::decode_as(Codec::MessagePack, rest)?, Codec::Json))
            }
            Some((&METADATA_TAG_BINCODE, rest)) => {
                Ok((codec::decode_as(Codec::Bincode2, rest)?, Codec::Bincode2))
            }
            Some((tag, _)) => Err(CodecError::Decode(format!(
                "metadata tag {tag:#04x} is not an evstore domain envelope"
            ))),
        }
    }

    /// The legacy envelope (tag `0xE1` + bincode), as builds before the MessagePack codec wrote
    /// it: for tests that write old data.
    #[cfg(feature = "test-support")]
    pub(crate) fn encode_legacy(&self) -> Result<Vec<u8>, CodecError> {
        let mut out = vec![METADATA_TAG_BINCODE];
        out.extend(codec::encode_bincode(self)?);
        Ok(out)
    }
}

/// Who and what caused a command: carried into the metadata of every event it records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandContext {
    /// Correlation id (a new request starts one; everything it causes shares it).
    pub correlation_id: Option<Uuid>,
    /// Id of the message that caused the command.
    pub causation_id: Option<Uuid>,
    /// Free-form metadata.
    pub extra: BTreeMap<String, String>,
    /// When set, event ids are derived from it (UUID v5 of this seed and the event's index),
    /// so re-running the same cause produces the same ids and an idempotent append.
    pub event_id_seed: Option<Uuid>,
}

impl CommandContext {
    /// A context for a fresh request: a new random correlation id.
    pub fn new_request() -> CommandContext {
        CommandContext {
            correlation_id: Some(Uuid::new_v4()),
            ..CommandContext::default()
        }
    }

    /// A context for a reaction to `cause` (an event id): same correlation, causation = cause,
    /// and deterministic event ids derived from the cause.
    pub fn caused_by(cause: Uuid, correlation_id: Option<Uuid>) -> CommandContext {
        CommandContext {
            correlation_id: correlation_id.or(Some(cause)),
            causation_id: Some(cause),
            extra: BTreeMap::new(),
            event_id_seed: Some(cause),
        }
    }

    /// The id of the `index`-th event recorded under this context.
    pub fn event_id(&self, index: usize) -> Uuid {
        match self.event_id_seed {
            Some(seed) => Uuid::new_v5(&seed, format!("evstore-event-{index}").as_bytes()),
            None => Uuid::new_v4(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips_and_empty_is_default() {
        let mut m = EventMetadata {
            schema_version: 3,
            correlation_id: Some(Uuid::new_v4()),
            causation_id: None,
            extra: BTreeMap::new(),
        };
        m.extra.insert("user".into(), "u1".into());
        assert_eq!(EventMetadata::decode(&m.encode().unwrap()).unwrap(), m);
        assert_eq!(
            EventMetadata::decode(&[]).unwrap(),
            EventMetadata::default()
        );
        assert!(EventMetadata::decode(b"{json}").is_err());
    }

    #[test]
    fn seeded_event_ids_are_deterministic() {
        let cause = Uuid::new_v4();
        let a = CommandContext::caused_by(cause, None);
        let b = CommandContext::caused_by(cause, None);
        assert_eq!(a.event_id(0), b.event_id(0));
        assert_ne!(a.event_id(0), a.event_id(1));
        assert_ne!(
            CommandContext::new_request().event_id(0),
            CommandContext::new_request().event_id(0)
        );
    }
}
