//! Process managers (sagas): long-running workflows that react to events with commands and
//! events of their own, exactly once in effect.
//!
//! A [`Saga`] type describes one workflow instance's state, which is **event-sourced in its own
//! stream** `"<NAME>-<saga id>"`. A [`SagaHandler`] decides the [`Reaction`] to a triggering
//! event (events for the saga's stream, commands for other aggregates) and executes commands. A
//! [`SagaRunner`] drives it from a [`Subscription`] with a checkpoint file
//! (`<log path>.saga-<NAME>`, [`saga_checkpoint_path`]): the projection checkpoint format of
//! [`crate::checkpoint`] with an empty state, loaded and checked against the log the same way.
//!
//! # Exactly-once effect
//!
//! The runner may see a trigger again after a crash (the checkpoint is older than the last
//! reaction). Re-processing is harmless because:
//!
//! * every saga event records the position of its trigger (metadata key
//!   [`TRIGGER_POSITION_KEY`]). Before reacting to a trigger, the runner folds only the saga
//!   events caused by **earlier** triggers, so the decision is the same as the first time;
//! * reaction events get deterministic ids (UUID v5 of the trigger's event id, through
//!   [`CommandContext::caused_by`]) and are appended with the expected version of that same
//!   prefix, so the store's idempotent append returns the original result and writes nothing;
//! * each command gets a [`CommandContext`] whose event ids derive from the trigger, and the
//!   handler must report [`CommandOutcome::AlreadyDone`] when the target already holds them.
//!
//! # Metadata of reactions
//!
//! Every event a saga writes, and the [`CommandContext`] of every command it dispatches, carry
//! correlation (the trigger's correlation id, or the trigger id) and causation (the trigger id)
//! in their [`EventMetadata`]. Of the trigger's [`EventMetadata::extra`], only the keys the saga
//! lists in [`Saga::PROPAGATED_EXTRA`] are copied (default: none, so nothing the trigger
//! carries, a secret included, leaks into reactions unless asked for); saga events also get
//! [`TRIGGER_POSITION_KEY`], which a trigger's own value never overrides. A trigger whose
//! metadata does not decode propagates no extras.
//!
//! A trigger whose processing fails is not skipped: the runner moves back to it and returns the
//! error; the next step retries it. The handler's `react` must be deterministic for a given
//! saga state and trigger.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::aggregate::{CommandContext, DomainEvent, EventMetadata};
use crate::checkpoint::{id_before_position, load_checkpoint_from, validate_name, Checkpoint};
pub use crate::checkpoint::{saga_checkpoint_path, RebuildReason};
use crate::checkpoint_store::{CheckpointStore, FileCheckpoint};
use crate::codec::{Codec, CodecError};
use crate::error::Error;
use crate::storage::EventStorage;
use crate::subscription::{EventSource, StopHandle, Subscription, SubscriptionFilter};
use crate::types::{ExpectedVersion, NewEvent, RecordedEvent};

/// Metadata key (in [`EventMetadata::extra`]) holding the global position of the event that
/// caused a saga event.
pub const TRIGGER_POSITION_KEY: &str = "saga.trigger_position";
/// Default number of triggers between automatic checkpoints.
pub const DEFAULT_SAGA_CHECKPOINT_EVERY: u64 = 100;
/// The "version" written in saga checkpoints (they hold no state, only a position).
const SAGA_CHECKPOINT_VERSION: u32 = 1;
/// Triggers handled per [`SagaRunner::step`] read.
const STEP_BATCH: usize = 256;

/// Errors of saga processing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SagaError {
    /// The store failed (including a concurrent writer to the saga's stream).
    #[error(transparent)]
    Store(#[from] Error),
    /// A saga event or a trigger could not be decoded.
    #[error("cannot decode {event_type:?} at position {position}: {reason}")]
    Decode {
        /// Global position of the event.
        position: u64,
        /// Its type.
        event_type: String,
        /// Why.
        reason: String,
    },
    /// The handler failed (its own reason).
    #[error("saga handler failed: {0}")]
    Handler(String),
}

/// Results of saga processing.
pub type SagaResult<T> = std::result::Result<T, SagaError>;

/// A workflow's state, event-sourced in stream `"<NAME>-<id>"`.
pub trait Saga: Default + Clone + std::fmt::Debug + Send + Sync + 'static {
    /// Stable name: ASCII letters, digits, `-`, `_` (stream prefix and checkpoint file name).
    const NAME: &'static str;
    /// The saga's own events.
    type Event: DomainEvent;
    /// Commands it sends to other aggregates.
    type Command: std::fmt::Debug + Send;

    /// Keys of the trigger's [`EventMetadata::extra`] copied into the metadata of the saga's
    /// reaction events and into its commands' [`CommandContext::extra`] (e.g. a tenant id);
    /// keys the trigger lacks are skipped. Default: none.
    const PROPAGATED_EXTRA: &'static [&'static str] = &[];

    /// The events that drive the saga.
    fn filter() -> SubscriptionFilter;

    /// Which saga instance a trigger belongs to (`None`: not for this saga).
    fn saga_id(trigger: &RecordedEvent) -> Option<String>;

    /// Fold one of the saga's own events into the state.
    fn apply(&mut self, event: &Self::Event);

    /// The stream of instance `id`.
    fn stream_id(id: &str) -> String {
        format!("{}-{}", Self::NAME, id)
    }
}

/// What a saga does about one trigger: events for its own stream (appended atomically, after
/// the commands) and commands for others (executed in order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reaction<E, C> {
    /// Events to append to the saga's stream.
    pub events: Vec<E>,
    /// Commands to dispatch.
    pub commands: Vec<C>,
}

impl<E, C> Reaction<E, C> {
    /// Do nothing.
    pub fn none() -> Reaction<E, C> {
        Reaction {
            events: Vec::new(),
            commands: Vec::new(),
        }
    }

    /// Only record `events`.
    pub fn events(events: Vec<E>) -> Reaction<E, C> {
        Reaction {
            events,
            commands: Vec::new(),
        }
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.commands.is_empty()
    }
}

/// What happened to a dispatched command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandOutcome {
    /// It was executed now.
    Executed,
    /// An earlier run already executed it (its deterministic event ids are in the target).
    AlreadyDone,
    /// The target's rules refused it (e.g. the order was cancelled meanwhile). Counted; the
    /// saga's events are still recorded.
    Refused(String),
}

/// The decisions and side effects of a saga.
pub trait SagaHandler<G: Saga>: Send {
    /// Decide what to do about `trigger` for instance `saga_id`, whose state (built from the
    /// saga events caused by earlier triggers) is `saga`. Must be deterministic.
    ///
    /// # Errors
    /// The handler's own: the runner returns it and retries the trigger on its next step.
    fn react(
        &self,
        saga: &G,
        saga_id: &str,
        trigger: &RecordedEvent,
    ) -> SagaResult<Reaction<G::Event, G::Command>>;

    /// Execute `command` under `ctx` (record events with ids `ctx.event_id(i)`). Must be
    /// idempotent for a given `ctx`: return [`CommandOutcome::AlreadyDone`] when the target
    /// already holds `ctx.event_id(0)`.
    ///
    /// # Errors
    /// The handler's own (a refusal by the target's rules is [`CommandOutcome::Refused`], not
    /// an error): the runner returns it and retries the trigger on its next step.
    fn dispatch(&self, command: &G::Command, ctx: &CommandContext) -> SagaResult<CommandOutcome>;
}

/// Counters of a saga runner since open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SagaStats {
    /// Triggers processed (matching the filter and belonging to an instance).
    pub triggers: u64,
    /// Reactions whose events were appended now.
    pub reactions_appended: u64,
    /// Reactions found already recorded (re-processing after a crash): the idempotent append
    /// wrote nothing.
    pub reactions_replayed: u64,
    /// Commands executed now.
    pub commands_executed: u64,
    /// Commands found already executed.
    pub commands_already_done: u64,
    /// Commands refused by the target's rules.
    pub commands_refused: u64,
    /// Checkpoint files written.
    pub checkpoints_written: u64,
    /// Set when the runner started from position 0 because no checkpoint was usable.
    pub restarted_from_zero: Option<RebuildReason>,
}

/// Build a [`NewEvent`] for `event`, the `index`-th caused under `ctx`: deterministic id
/// `ctx.event_id(index)`, metadata with the context's correlation, causation and extras.
///
/// ```
/// use evstore::aggregate::{CommandContext, DomainEvent};
/// use evstore::codec::CodecError;
/// #[derive(Debug, Clone)]
/// struct Shipped;
/// impl DomainEvent for Shipped {
///     fn event_type(&self) -> &'static str { "Shipped" }
///     fn schema_version(ty: &str) -> Option<u16> { (ty == "Shipped").then_some(1) }
///     fn encode(&self) -> Result<Vec<u8>, CodecError> { Ok(Vec::new()) }
///     fn decode(_: &str, _: &[u8]) -> Result<Self, CodecError> { Ok(Shipped) }
/// }
/// let cause = uuid::Uuid::new_v4();
/// let ctx = CommandContext::caused_by(cause, None);
/// let e = Shipped;
/// let a = evstore::saga::caused_event(&e, &ctx, 0).unwrap();
/// let b = evstore::saga::caused_event(&e, &ctx, 0).unwrap();
/// assert_eq!(a.event_id, b.event_id);
/// let meta = evstore::aggregate::EventMetadata::decode(&a.metadata).unwrap();
/// assert_eq!(meta.causation_id, Some(cause));
/// ```
///
/// # Errors
/// [`CodecError::Encode`] when `event`'s type has no schema version, or its payload or the
/// metadata cannot be encoded.
pub fn caused_event<E: DomainEvent>(
    event: &E,
    ctx: &CommandContext,
    index: usize,
) -> Result<NewEvent, CodecError> {
    let ty = event.event_type();
    let meta = EventMetadata {
        schema_version: E::schema_version(ty)
            .ok_or_else(|| CodecError::Encode(format!("event type {ty:?} has no schema")))?,
        correlation_id: ctx.correlation_id,
        causation_id: ctx.causation_id,
        extra: ctx.extra.clone(),
    };
    Ok(NewEvent {
        event_id: ctx.event_id(index),
        event_type: ty.to_string(),
        data: event.encode()?,
        metadata: meta.encode()?,
        tags: event.tags(),
    })
}

/// The correlation id of a reaction to `trigger`: the trigger's own correlation id if its
/// metadata has one, else the trigger's event id.
pub fn correlation_of(trigger: &RecordedEvent) -> Uuid {
    EventMetadata::decode(&trigger.metadata)
        .ok()
        .and_then(|m| m.correlation_id)
        .unwrap_or(trigger.event_id)
}

/// The entries of `trigger`'s metadata `extra` whose keys are in `keys` (none when its metadata
/// does not decode).
fn propagated_extra(trigger: &RecordedEvent, keys: &[&str]) -> BTreeMap<String, String> {
    if keys.is_empty() {
        return BTreeMap::new();
    }
    let Ok(meta) = EventMetadata::decode(&trigger.metadata) else {
        return BTreeMap::new();
    };
    meta.extra
        .into_iter()
        .filter(|(k, _)| keys.contains(&k.as_str()))
        .collect()
}

/// Decode one of a saga's own events (current schema only).
fn decode_saga_event<E: DomainEvent>(recorded: &RecordedEvent) -> SagaResult<(E, EventMetadata)> {
    let err = |reason: String| SagaError::Decode {
        position: recorded.position,
        event_type: recorded.event_type.clone(),
        reason,
    };
    // A saga's own events have no upcasters: an old schema is an error.
    crate::repository::decode_recorded::<E>(&crate::upcast::Upcasters::new(), recorded).map_err(
        |f| match f {
            crate::repository::DecodeFailure::Decode(reason) => err(reason),
            crate::repository::DecodeFailure::Upcast(e) => err(e.to_string()),
        },
    )
}

/// Drives a [`Saga`] from a subscription over `S`, which it also appends to.
pub struct SagaRunner<G: Saga, S: EventSource + EventStorage, H: SagaHandler<G>> {
    subscription: Subscription<S>,
    handler: H,
    checkpoints: Box<dyn CheckpointStore>,
    checkpoint_every: u64,
    since_checkpoint: u64,
    stats: SagaStats,
    _saga: std::marker::PhantomData<fn() -> G>,
}

impl<G: Saga, S: EventSource + EventStorage, H: SagaHandler<G>> std::fmt::Debug
    for SagaRunner<G, S, H>
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SagaRunner")
            .field("name", &G::NAME)
            .field("position", &self.subscription.next_position())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<G: Saga, S: EventSource + EventStorage, H: SagaHandler<G>> SagaRunner<G, S, H> {
    /// Open the runner with its checkpoint at `checkpoint_path` (usually
    /// [`saga_checkpoint_path`]). Without a usable checkpoint it starts at position 0, which
    /// is safe (reactions are idempotent) but re-reads the whole log.
    ///
    /// # Errors
    /// [`SagaError::Store`] with [`Error::InvalidInput`] when [`Saga::NAME`] is not a valid
    /// name ([`crate::checkpoint::validate_name`]). A checkpoint that cannot be used is no
    /// error ([`SagaStats::restarted_from_zero`]).
    pub fn open(
        source: S,
        handler: H,
        checkpoint_path: impl AsRef<Path>,
    ) -> SagaResult<SagaRunner<G, S, H>> {
        SagaRunner::open_with(
            source,
            handler,
            FileCheckpoint::new(checkpoint_path.as_ref()),
        )
    }

    /// [`SagaRunner::open`] with the checkpoint kept in `checkpoints` (a file, a database
    /// table: see [`crate::checkpoint_store`]).
    ///
    /// # Errors
    /// As [`SagaRunner::open`].
    pub fn open_with(
        source: S,
        handler: H,
        checkpoints: impl CheckpointStore + 'static,
    ) -> SagaResult<SagaRunner<G, S, H>> {
        validate_name(G::NAME)?;
        let mut counters = SagaStats::default();
        let loaded = load_checkpoint_from(&source, &checkpoints, SAGA_CHECKPOINT_VERSION)
            .map(|cp| cp.position);
        let position = loaded.unwrap_or_else(|reason| {
            counters.restarted_from_zero = Some(reason);
            0
        });
        Ok(SagaRunner {
            subscription: Subscription::new(source, position, G::filter()),
            handler,
            checkpoints: Box::new(checkpoints),
            checkpoint_every: DEFAULT_SAGA_CHECKPOINT_EVERY,
            since_checkpoint: 0,
            stats: counters,
            _saga: std::marker::PhantomData,
        })
    }

    /// Checkpoint automatically every `n` triggers (0: only on demand and at the end of
    /// [`SagaRunner::catch_up`] / [`SagaRunner::run_until`]).
    #[must_use]
    pub fn with_checkpoint_every(mut self, n: u64) -> Self {
        self.checkpoint_every = n;
        self
    }

    /// The next position to process.
    pub fn next_position(&self) -> u64 {
        self.subscription.next_position()
    }

    /// The old name of [`Self::next_position`] (the position of the next event, not the last:
    /// compare `Store::head_position`, the last event's).
    #[deprecated(
        since = "0.2.0",
        note = "renamed next_position: the position of the next event"
    )]
    pub fn position(&self) -> u64 {
        self.next_position()
    }

    /// Counters since open.
    pub fn stats(&self) -> &SagaStats {
        &self.stats
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// Load instance `id` as it was before the trigger at `trigger_position`: its state, the
    /// version of the last event folded in, and whether the stream already holds events caused
    /// by this trigger.
    ///
    /// # Errors
    /// [`SagaError::Store`] when the stream cannot be read; [`SagaError::Decode`] for a saga
    /// event that does not decode at its current schema or lacks [`TRIGGER_POSITION_KEY`].
    pub fn load_before(
        &self,
        id: &str,
        trigger_position: u64,
    ) -> SagaResult<(G, Option<u64>, bool)> {
        let stream = G::stream_id(id);
        let events = self
            .subscription
            .source()
            .read_stream_range(&stream, 0, u64::MAX)?;
        let mut state = G::default();
        let mut version = None;
        let mut seen = false;
        for recorded in &events {
            let (event, meta) = decode_saga_event::<G::Event>(recorded)?;
            let cause = meta
                .extra
                .get(TRIGGER_POSITION_KEY)
                .and_then(|p| p.parse::<u64>().ok())
                .ok_or_else(|| SagaError::Decode {
                    position: recorded.position,
                    event_type: recorded.event_type.clone(),
                    reason: format!("metadata lacks {TRIGGER_POSITION_KEY}"),
                })?;
            if cause >= trigger_position {
                seen |= cause == trigger_position;
                break;
            }
            state.apply(&event);
            version = Some(recorded.version);
        }
        Ok((state, version, seen))
    }

    /// React to one trigger (already delivered by the subscription).
    fn process(&mut self, trigger: &RecordedEvent) -> SagaResult<()> {
        let Some(id) = G::saga_id(trigger) else {
            return Ok(());
        };
        self.stats.triggers += 1;
        let (state, version, seen) = self.load_before(&id, trigger.position)?;
        let reaction = self.handler.react(&state, &id, trigger)?;
        let correlation = correlation_of(trigger);
        let propagated = propagated_extra(trigger, G::PROPAGATED_EXTRA);
        for (i, command) in reaction.commands.iter().enumerate() {
            let ctx = CommandContext {
                correlation_id: Some(correlation),
                causation_id: Some(trigger.event_id),
                extra: propagated.clone(),
                event_id_seed: Some(Uuid::new_v5(
                    &trigger.event_id,
                    format!("{}-command-{i}", G::NAME).as_bytes(),
                )),
            };
            match self.handler.dispatch(command, &ctx)? {
                CommandOutcome::Executed => self.stats.commands_executed += 1,
                CommandOutcome::AlreadyDone => self.stats.commands_already_done += 1,
                CommandOutcome::Refused(_) => self.stats.commands_refused += 1,
            }
        }
        if reaction.events.is_empty() {
            return Ok(());
        }
        let mut ctx = CommandContext::caused_by(trigger.event_id, Some(correlation));
        ctx.extra = propagated;
        ctx.extra
            .insert(TRIGGER_POSITION_KEY.into(), trigger.position.to_string());
        let events = reaction
            .events
            .iter()
            .enumerate()
            .map(|(i, e)| caused_event(e, &ctx, i))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| SagaError::Handler(format!("cannot encode a saga event: {e}")))?;
        let expected = version.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
        self.subscription
            .source()
            .append(&G::stream_id(&id), expected, &events)?;
        if seen {
            self.stats.reactions_replayed += 1;
        } else {
            self.stats.reactions_appended += 1;
        }
        Ok(())
    }

    /// Process up to `max` triggers: wait up to `timeout` for the first, then take what is
    /// visible. Returns how many were processed.
    ///
    /// # Errors
    /// [`SagaError::Store`] for the source's read and append errors (a concurrent writer to
    /// the saga's stream shows as [`Error::WrongExpectedVersion`]) and for a checkpoint that
    /// cannot be written; [`SagaError::Decode`] for a saga event that does not decode (or lacks
    /// [`TRIGGER_POSITION_KEY`]); the handler's errors. The failed trigger is processed again
    /// by the next call.
    pub fn step(&mut self, max: usize, timeout: Duration) -> SagaResult<usize> {
        let deadline = Instant::now() + timeout;
        let mut done = 0;
        // Bounded by `max` and the deadline.
        while done < max {
            let wait = deadline.saturating_duration_since(Instant::now());
            let batch = self
                .subscription
                .next_batch((max - done).min(STEP_BATCH), wait)?;
            if batch.is_empty() {
                break;
            }
            for trigger in &batch {
                if let Err(e) = self.process(trigger) {
                    self.subscription.seek(trigger.position);
                    return Err(e);
                }
                done += 1;
                self.since_checkpoint += 1;
                if self.checkpoint_every > 0 && self.since_checkpoint >= self.checkpoint_every {
                    // Checkpoint right after this trigger (later ones in the batch are redone
                    // if we crash: harmless).
                    self.checkpoint_at(trigger.position + 1, Some(trigger.event_id))?;
                }
            }
            if !self.subscription.has_pending() {
                break;
            }
        }
        Ok(done)
    }

    /// Process everything visible now, then checkpoint. Returns the number of triggers.
    ///
    /// # Errors
    /// [`SagaError::Store`] for the source's read and append errors (a concurrent writer to
    /// the saga's stream shows as [`Error::WrongExpectedVersion`]) and for a checkpoint that
    /// cannot be written; [`SagaError::Decode`] for a saga event that does not decode (or lacks
    /// [`TRIGGER_POSITION_KEY`]); the handler's errors. The failed trigger is processed again
    /// by the next call.
    pub fn catch_up(&mut self) -> SagaResult<usize> {
        let mut total = 0;
        // Bounded: each round processes at least one trigger or stops.
        loop {
            let n = self.step(STEP_BATCH, Duration::ZERO)?;
            total += n;
            if n == 0 {
                break;
            }
        }
        self.checkpoint()?;
        Ok(total)
    }

    /// Loop on [`SagaRunner::step`] until `stop` is stopped, then checkpoint.
    ///
    /// # Errors
    /// [`SagaError::Store`] for the source's read and append errors (a concurrent writer to
    /// the saga's stream shows as [`Error::WrongExpectedVersion`]) and for a checkpoint that
    /// cannot be written; [`SagaError::Decode`] for a saga event that does not decode (or lacks
    /// [`TRIGGER_POSITION_KEY`]); the handler's errors. The failed trigger is processed again
    /// by the next call.
    pub fn run_until(&mut self, stop: &StopHandle) -> SagaResult<()> {
        // Bounded by the stop handle, checked at least every 100 ms.
        while !stop.is_stopped() {
            self.step(STEP_BATCH, Duration::from_millis(100))?;
        }
        self.checkpoint()
    }

    /// Save the position now ([`Checkpoint::write`]).
    ///
    /// # Errors
    /// [`SagaError::Store`]: [`Error::Io`] when the checkpoint cannot be written (the old one is
    /// kept), or the source's read error when the id of the event before the position must be
    /// read back.
    pub fn checkpoint(&mut self) -> SagaResult<()> {
        let position = self.subscription.next_position();
        let last = id_before_position(&self.subscription)?;
        self.checkpoint_at(position, last)
    }

    fn checkpoint_at(&mut self, position: u64, last_event_id: Option<Uuid>) -> SagaResult<()> {
        Checkpoint {
            version: SAGA_CHECKPOINT_VERSION,
            position,
            last_event_id: if position == 0 { None } else { last_event_id },
            state: Vec::new(),
            state_codec: Codec::CURRENT,
        }
        .write_to(&*self.checkpoints)
        .map_err(Error::from)?;
        self.since_checkpoint = 0;
        self.stats.checkpoints_written += 1;
        Ok(())
    }
}
