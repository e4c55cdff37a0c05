//! [`Repository`]: loads and saves [`Aggregate`]s through an [`EventStorage`], with optimistic
//! version checks, a snapshot policy, upcasting, and time travel.
//!
//! * `load` starts from the latest snapshot the log confirms, then folds in the events after it.
//! * `save` appends the root's pending events with `ExpectedVersion::Exact(version)` (or
//!   `NoStream` for a new aggregate); a concurrent writer yields [`RepositoryError::Conflict`].
//!   [`Repository::execute`] is the retry helper: it reloads, re-runs the command and saves again.
//! * Every `snapshot_every` events (default 100) a snapshot is saved after a successful save.
//! * `load_at_version`, `load_as_of` and `history` rebuild past states for audits.

use std::marker::PhantomData;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::aggregate::{Aggregate, CommandContext, DomainEvent, EventMetadata, Root};
use crate::codec::{self, Codec, CodecError};
use crate::error::Error;
use crate::snapshot::IgnoredReason;
use crate::storage::EventStorage;
use crate::types::{AppendResult, EventView, ExpectedVersion, NewEvent, RecordedEvent};
use crate::upcast::{UpcastError, Upcasters};

/// Default snapshot interval, in events.
pub const DEFAULT_SNAPSHOT_EVERY: u64 = 100;

/// Errors of repository operations; `E` is the aggregate's domain error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RepositoryError<E: std::error::Error + 'static> {
    /// The command was refused by the domain.
    #[error(transparent)]
    Domain(E),
    /// Another writer changed the aggregate since it was loaded: the storage's
    /// [`Error::WrongExpectedVersion`], nothing was written.
    #[error("concurrent modification of {stream:?}: expected {expected}, found {}", .actual.map_or("no stream".to_string(), |v| v.to_string()))]
    Conflict {
        /// The aggregate's stream.
        stream: String,
        /// The check the save asked for: `NoStream` for a new aggregate, else `Exact` of the
        /// version it was loaded at.
        expected: ExpectedVersion,
        /// The stream's last version when the check ran (`None`: the stream does not exist).
        actual: Option<u64>,
    },
    /// A stored event cannot be turned into a domain event.
    #[error("cannot decode event {event_type:?} at version {version} of {stream:?}: {reason}")]
    Decode {
        /// The aggregate's stream.
        stream: String,
        /// The event's version in the stream (0 when a save finds a pending event whose type
        /// has no schema version: it was never stored).
        version: u64,
        /// The event's type.
        event_type: String,
        /// What failed, for people (not a stable format).
        reason: String,
    },
    /// A stored event's schema cannot be brought to the current one.
    #[error("cannot upcast the event at version {version} of {stream:?}: {source}")]
    Upcast {
        /// The aggregate's stream.
        stream: String,
        /// The event's version in the stream.
        version: u64,
        /// Why the upcast failed.
        source: UpcastError,
    },
    /// The storage failed.
    #[error(transparent)]
    Store(Error),
    /// `execute` gave up after `attempts` conflicts in a row; `actual` is the stream's version
    /// the last conflict reported (`None`: the stream did not exist).
    #[error("gave up on {stream:?} after {attempts} conflicting attempts (stream at version {})", .actual.map_or("none".to_string(), |v| v.to_string()))]
    TooManyConflicts {
        /// The aggregate's stream.
        stream: String,
        /// Attempts made (`max_attempts`, at least 1).
        attempts: u32,
        /// The stream's last version the last conflict reported.
        actual: Option<u64>,
    },
}

impl<E: std::error::Error + 'static> From<Error> for RepositoryError<E> {
    fn from(e: Error) -> Self {
        match e {
            Error::WrongExpectedVersion {
                stream,
                expected,
                actual,
            } => RepositoryError::Conflict {
                stream,
                expected,
                actual,
            },
            other => RepositoryError::Store(other),
        }
    }
}

/// Shorthand for repository results.
pub type RepoResult<T, A> = std::result::Result<T, RepositoryError<<A as Aggregate>::Error>>;

/// Why [`decode_recorded`] could not produce a domain event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeFailure {
    /// Unknown event type, bad metadata envelope, or a payload the codec rejects.
    Decode(String),
    /// The stored schema version cannot be brought to the current one.
    Upcast(UpcastError),
}

/// Decode a recorded event into domain event `E` (with its metadata envelope), upcasting an
/// older schema version through `upcasters`. Needs no storage: projections and sagas use it
/// directly; [`Repository::decode_event`] adds the stream and version to the error.
///
/// # Errors
/// [`DecodeFailure::Decode`] for a damaged metadata envelope, an event type `E` does not know,
/// or a payload `E::decode` refuses; [`DecodeFailure::Upcast`] when the stored schema version
/// cannot be brought to `E`'s current one.
pub fn decode_recorded<E: DomainEvent>(
    upcasters: &Upcasters,
    recorded: &RecordedEvent,
) -> Result<(E, EventMetadata), DecodeFailure> {
    decode_view(upcasters, recorded.as_view())
}

/// [`decode_recorded`] for an event borrowed from the log ([`EventView`]): the payload is
/// decoded in place unless it needs upcasting.
///
/// # Errors
/// As [`decode_recorded`].
pub fn decode_view<E: DomainEvent>(
    upcasters: &Upcasters,
    recorded: EventView<'_>,
) -> Result<(E, EventMetadata), DecodeFailure> {
    let (meta, payload_codec) = EventMetadata::decode_with_codec(recorded.metadata)
        .map_err(|e| DecodeFailure::Decode(e.to_string()))?;
    let current = E::schema_version(recorded.event_type)
        .ok_or_else(|| DecodeFailure::Decode("unknown event type".into()))?;
    // The upcasters and `E::decode` read (and an upcaster writes) the codec the event was
    // written with.
    let event = codec::with_codec(payload_codec, || {
        if meta.schema_version == current {
            return E::decode(recorded.event_type, recorded.data)
                .map_err(|e: CodecError| DecodeFailure::Decode(e.to_string()));
        }
        let (payload, _) = upcasters
            .upcast(
                recorded.event_type,
                meta.schema_version,
                current,
                recorded.data.to_vec(),
            )
            .map_err(DecodeFailure::Upcast)?;
        E::decode(recorded.event_type, &payload)
            .map_err(|e: CodecError| DecodeFailure::Decode(e.to_string()))
    })?;
    Ok((event, meta))
}

/// One step of an aggregate's history: the event and the state right after it.
#[derive(Debug, Clone)]
pub struct HistoryEntry<A: Aggregate> {
    /// The event as stored.
    pub recorded: RecordedEvent,
    /// The event decoded (and upcast to the current schema).
    pub event: A::Event,
    /// Its metadata envelope.
    pub metadata: EventMetadata,
    /// The aggregate's state right after the event.
    pub state: A,
}

/// What [`Repository::verify_snapshots`] found for one aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotCheck {
    /// The aggregate's id (not its stream id).
    pub id: String,
    /// The comparison's outcome.
    pub verdict: SnapshotVerdict,
}

/// The outcome of comparing one aggregate's snapshot with a full replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotVerdict {
    /// No snapshot the log confirms: nothing to compare.
    NoSnapshot,
    /// The snapshot's state equals the replay's up to its `version` (stream version).
    Agrees {
        /// The stream version the snapshot includes.
        version: u64,
    },
    /// The snapshot's state differs from the replay's up to its `version`: a load from it
    /// would give another state than a replay.
    Differs {
        /// The stream version the snapshot includes.
        version: u64,
    },
    /// A load would not use the snapshot anyway (`reason`: undecodable, or built under
    /// other upcasters).
    Unusable {
        /// The stream version the snapshot includes.
        version: u64,
        /// Why a load would ignore it.
        reason: IgnoredReason,
    },
}

/// Loads and saves aggregates of type `A` in storage `S`.
pub struct Repository<A: Aggregate, S: EventStorage> {
    storage: S,
    upcasters: Arc<Upcasters>,
    /// [`Upcasters::event_fingerprint`] of `upcasters` over `A`'s event types.
    upcaster_fingerprint: u32,
    snapshot_every: u64,
    _aggregate: PhantomData<fn() -> A>,
}

impl<A: Aggregate, S: EventStorage + Clone> Clone for Repository<A, S> {
    fn clone(&self) -> Self {
        Repository {
            storage: self.storage.clone(),
            upcasters: self.upcasters.clone(),
            upcaster_fingerprint: self.upcaster_fingerprint,
            snapshot_every: self.snapshot_every,
            _aggregate: PhantomData,
        }
    }
}

impl<A: Aggregate, S: EventStorage> Repository<A, S> {
    /// A repository with the default snapshot policy and no upcasters.
    pub fn new(storage: S) -> Repository<A, S> {
        Repository {
            storage,
            upcasters: Arc::new(Upcasters::new()),
            upcaster_fingerprint: 0,
            snapshot_every: DEFAULT_SNAPSHOT_EVERY,
            _aggregate: PhantomData,
        }
    }

    /// Save a snapshot every `n` events. `0` turns snapshots off entirely: none are written and
    /// none are read (every load replays the whole stream).
    #[must_use]
    pub fn with_snapshot_every(mut self, n: u64) -> Self {
        self.snapshot_every = n;
        self
    }

    /// Use these upcasters for events and snapshots stored under older schemas. Snapshots
    /// record the fingerprint of the event upcasters for `A`'s event types
    /// ([`Repository::upcaster_fingerprint`]); one built under another fingerprint is not used.
    #[must_use]
    pub fn with_upcasters(mut self, upcasters: Arc<Upcasters>) -> Self {
        self.upcaster_fingerprint =
            upcasters.event_fingerprint(|ty| A::Event::schema_version(ty).is_some());
        self.upcasters = upcasters;
        self
    }

    /// The fingerprint this repository writes into snapshots and requires of the snapshots it
    /// uses: [`Upcasters::event_fingerprint`] of its upcasters over the event types `A::Event`
    /// knows (those with a schema version); 0 when none of them has an upcaster.
    pub fn upcaster_fingerprint(&self) -> u32 {
        self.upcaster_fingerprint
    }

    /// The storage.
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// Turn a recorded event into a domain event, upcasting old schema versions.
    ///
    /// # Errors
    /// [`RepositoryError::Decode`] or [`RepositoryError::Upcast`] (see [`decode_recorded`]),
    /// naming the event's stream and version.
    pub fn decode_event(
        &self,
        recorded: &RecordedEvent,
    ) -> RepoResult<(A::Event, EventMetadata), A> {
        self.decode_view(recorded.as_view())
    }

    /// [`Repository::decode_event`] for an event borrowed from the log.
    ///
    /// # Errors
    /// As [`Repository::decode_event`].
    pub fn decode_view(&self, recorded: EventView<'_>) -> RepoResult<(A::Event, EventMetadata), A> {
        decode_view::<A::Event>(&self.upcasters, recorded).map_err(|f| match f {
            DecodeFailure::Upcast(source) => RepositoryError::Upcast {
                stream: recorded.stream_id.to_string(),
                version: recorded.version,
                source,
            },
            DecodeFailure::Decode(reason) => RepositoryError::Decode {
                stream: recorded.stream_id.to_string(),
                version: recorded.version,
                event_type: recorded.event_type.to_string(),
                reason,
            },
        })
    }

    /// Load aggregate `id` with all its events (`None` if it has none): from the latest
    /// snapshot the log confirms, if any, then the events after it.
    ///
    /// # Errors
    /// [`RepositoryError::Store`] when the storage fails; [`RepositoryError::Decode`] or
    /// [`RepositoryError::Upcast`] for the first event that cannot be turned into a domain
    /// event. A snapshot that cannot be decoded is no error: it is counted and the stream is
    /// replayed instead.
    pub fn load(&self, id: &str) -> RepoResult<Option<Root<A>>, A> {
        self.load_until(id, u64::MAX, true)
    }

    /// The aggregate as it was right after version `version` (`None` if it did not exist yet).
    /// Starts from the latest snapshot if it is not newer than `version`.
    ///
    /// # Errors
    /// [`RepositoryError::Store`] when the storage fails; [`RepositoryError::Decode`] or
    /// [`RepositoryError::Upcast`] for the first event that cannot be turned into a domain
    /// event. A snapshot that cannot be decoded is no error: it is counted and the stream is
    /// replayed instead.
    pub fn load_at_version(&self, id: &str, version: u64) -> RepoResult<Option<Root<A>>, A> {
        self.load_until(id, version, true)
    }

    /// The aggregate as it was at time `at` (events recorded at or before `at`), replayed from
    /// the stream's first event (no snapshot).
    ///
    /// # Errors
    /// [`RepositoryError::Store`] when the storage fails; [`RepositoryError::Decode`] or
    /// [`RepositoryError::Upcast`] for the first event that cannot be turned into a domain
    /// event.
    pub fn load_as_of(&self, id: &str, at: DateTime<Utc>) -> RepoResult<Option<Root<A>>, A> {
        let stream = A::stream_id(id);
        let events = self.storage.read_stream_range(&stream, 0, u64::MAX)?;
        let mut root: Option<Root<A>> = None;
        for recorded in events.iter().take_while(|e| e.recorded_at <= at) {
            let (event, _) = self.decode_event(recorded)?;
            root.get_or_insert_with(|| Root::new(id)).apply_recorded(
                &event,
                recorded.version,
                recorded.event_id,
            );
        }
        Ok(root)
    }

    /// Every event of aggregate `id` with the state right after it, replayed from the
    /// stream's first event (no snapshot).
    ///
    /// # Errors
    /// [`RepositoryError::Store`] when the storage fails; [`RepositoryError::Decode`] or
    /// [`RepositoryError::Upcast`] for the first event that cannot be turned into a domain
    /// event.
    pub fn history(&self, id: &str) -> RepoResult<Vec<HistoryEntry<A>>, A> {
        let stream = A::stream_id(id);
        let mut state = A::default();
        let mut out = Vec::new();
        for recorded in self.storage.read_stream_range(&stream, 0, u64::MAX)? {
            let (event, metadata) = self.decode_event(&recorded)?;
            state.apply(&event);
            out.push(HistoryEntry {
                recorded,
                event,
                metadata,
                state: state.clone(),
            });
        }
        Ok(out)
    }

    /// Compare the snapshot of each aggregate in `ids` with a full replay of its stream up to
    /// the snapshot's version: a check for changes the snapshot's guards miss (a change to
    /// `apply` without a `SNAPSHOT_VERSION` bump, docs/RELIABILITY.md). Only snapshots the log
    /// confirms are checked (a read-only store has none); the sidecar is not changed, and each
    /// snapshot found counts as used in the store's snapshot statistics. Reads each stream
    /// once up to the snapshot's version.
    ///
    /// # Errors
    /// [`RepositoryError::Store`] when the storage fails; [`RepositoryError::Decode`] or
    /// [`RepositoryError::Upcast`] when the replay meets an event it cannot decode.
    pub fn verify_snapshots<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a str>,
    ) -> RepoResult<Vec<SnapshotCheck>, A>
    where
        A: PartialEq,
    {
        let mut out = Vec::new();
        for id in ids {
            let stream = A::stream_id(id);
            let verdict = match self.storage.load_snapshot(&stream)? {
                None => SnapshotVerdict::NoSnapshot,
                Some(snap) => match self.decode_snapshot(&snap.payload) {
                    Err(reason) => SnapshotVerdict::Unusable {
                        version: snap.version,
                        reason,
                    },
                    Ok(state) => {
                        let replay = self.load_until(id, snap.version, false)?;
                        if replay.as_ref().map(Root::state) == Some(&state) {
                            SnapshotVerdict::Agrees {
                                version: snap.version,
                            }
                        } else {
                            SnapshotVerdict::Differs {
                                version: snap.version,
                            }
                        }
                    }
                },
            };
            out.push(SnapshotCheck {
                id: id.to_string(),
                verdict,
            });
        }
        Ok(out)
    }

    /// Load up to and including `max_version`, optionally starting from a snapshot.
    fn load_until(
        &self,
        id: &str,
        max_version: u64,
        use_snapshot: bool,
    ) -> RepoResult<Option<Root<A>>, A> {
        let stream = A::stream_id(id);
        let mut root: Option<Root<A>> = None;
        if use_snapshot && self.snapshot_every > 0 {
            if let Some(snap) = self.storage.load_snapshot(&stream)? {
                if snap.version <= max_version {
                    match self.decode_snapshot(&snap.payload) {
                        Ok(state) => {
                            root = Some(Root::from_state(
                                id.to_string(),
                                state,
                                snap.version,
                                snap.event_id,
                            ));
                        }
                        Err(IgnoredReason::Undecodable) => {
                            self.storage.note_snapshot_undecodable(&stream)?;
                        }
                        Err(reason) => self.storage.note_snapshot_ignored(&stream, reason)?,
                    }
                }
            }
        }
        let from = root.as_ref().and_then(Root::version).map_or(0, |v| v + 1);
        let to = max_version.saturating_add(1);
        if from < to {
            // Decode straight from the log; the first failure stops the fold (later events
            // are skipped, not applied) and is returned after the read.
            let mut failure = None;
            self.storage
                .visit_stream_range(&stream, from, to, &mut |recorded| {
                    if failure.is_some() {
                        return Ok(());
                    }
                    match self.decode_view(recorded) {
                        Ok((event, _)) => root.get_or_insert_with(|| Root::new(id)).apply_recorded(
                            &event,
                            recorded.version,
                            recorded.event_id,
                        ),
                        Err(e) => failure = Some(e),
                    }
                    Ok(())
                })?;
            if let Some(e) = failure {
                return Err(e);
            }
        }
        Ok(root)
    }

    fn encode_snapshot(&self, state: &A) -> Result<Vec<u8>, CodecError> {
        let state_codec = A::SNAPSHOT_FORMAT.codec();
        let mut out = SnapshotEnvelope {
            codec: state_codec,
            schema_version: A::SNAPSHOT_VERSION,
            fingerprint: Some(self.upcaster_fingerprint),
        }
        .encode();
        out.extend(codec::encode_as(state_codec, state)?);
        Ok(out)
    }

    /// The state in a snapshot payload, if this repository may use it: the envelope decodes,
    /// the state was built under this repository's upcaster fingerprint (an envelope without
    /// one counts as fingerprint 0: usable only when no upcaster covers `A`'s events), and the
    /// state decodes (upcast from an older `SNAPSHOT_VERSION` if needed).
    fn decode_snapshot(&self, payload: &[u8]) -> Result<A, IgnoredReason> {
        let (envelope, body) =
            SnapshotEnvelope::decode(payload).ok_or(IgnoredReason::Undecodable)?;
        if envelope.fingerprint.unwrap_or(0) != self.upcaster_fingerprint {
            return Err(IgnoredReason::OtherUpcasters);
        }
        Self::decode_snapshot_state(&self.upcasters, envelope, body)
            .ok_or(IgnoredReason::Undecodable)
    }

    fn decode_snapshot_state(
        upcasters: &Upcasters,
        envelope: SnapshotEnvelope,
        body: &[u8],
    ) -> Option<A> {
        codec::with_codec(envelope.codec, || {
            if envelope.schema_version == A::SNAPSHOT_VERSION {
                return codec::decode(body).ok();
            }
            let upcast = upcasters
                .upcast_snapshot(
                    A::TYPE_NAME,
                    envelope.schema_version,
                    A::SNAPSHOT_VERSION,
                    body.to_vec(),
                )
                .ok()?
                .0;
            codec::decode(&upcast).ok()
        })
    }

    /// Append the root's pending events (nothing to do if there are none), with the metadata of
    /// `ctx`. On success the root's version moves on; on a conflict the root is unchanged.
    /// Returns where the events landed (`None`: nothing was pending). Every
    /// [`Repository::with_snapshot_every`] events a snapshot is saved too; failing to save one
    /// is not an error (snapshots are a cache).
    ///
    /// # Errors
    /// [`RepositoryError::Conflict`] when another writer appended since the root was loaded;
    /// [`RepositoryError::Decode`] for a pending event whose type has no schema version;
    /// [`RepositoryError::Store`] when encoding ([`Error::Encoding`]) or the append fails.
    pub fn save(
        &self,
        root: &mut Root<A>,
        ctx: &CommandContext,
    ) -> RepoResult<Option<AppendResult>, A> {
        self.save_under(root, ctx, None)
    }

    /// [`Repository::save`] under a Dynamic Consistency Boundary: the pending events are
    /// appended with [`EventStorage::append_if`], so the save also fails if an event matching
    /// `condition.fail_if_events_match` was appended after `condition.after` (a decision that
    /// spans aggregates, e.g. stock shared by orders; see [`crate::query`]). Snapshots as
    /// `save`.
    ///
    /// # Errors
    /// As [`Repository::save`]; [`RepositoryError::Store`] with
    /// [`Error::AppendConditionFailed`] when the condition fails (nothing was written; read the
    /// query again and decide again).
    pub fn save_if(
        &self,
        root: &mut Root<A>,
        ctx: &CommandContext,
        condition: &crate::AppendCondition,
    ) -> RepoResult<Option<AppendResult>, A> {
        self.save_under(root, ctx, Some(condition))
    }

    /// `save` and `save_if`: append (conditioned when `condition` is given), then snapshot.
    fn save_under(
        &self,
        root: &mut Root<A>,
        ctx: &CommandContext,
        condition: Option<&crate::AppendCondition>,
    ) -> RepoResult<Option<AppendResult>, A> {
        if root.pending().is_empty() {
            return Ok(None);
        }
        let stream = root.stream_id();
        let mut events = Vec::with_capacity(root.pending().len());
        for (i, e) in root.pending().iter().enumerate() {
            let ty = e.event_type();
            let meta = EventMetadata {
                schema_version: A::Event::schema_version(ty).ok_or_else(|| {
                    RepositoryError::Decode {
                        stream: stream.clone(),
                        version: 0,
                        event_type: ty.to_string(),
                        reason: "event type has no schema version".into(),
                    }
                })?,
                correlation_id: ctx.correlation_id,
                causation_id: ctx.causation_id,
                extra: ctx.extra.clone(),
            };
            let codec_err = |e: CodecError| RepositoryError::Store(Error::Encoding(e));
            events.push(NewEvent {
                event_id: ctx.event_id(i),
                event_type: ty.to_string(),
                data: e.encode().map_err(codec_err)?,
                metadata: meta.encode_for(e.payload_codec()).map_err(codec_err)?,
                tags: e.tags(),
            });
        }
        let expected = match root.version() {
            None => ExpectedVersion::NoStream,
            Some(v) => ExpectedVersion::Exact(v),
        };
        let result = match condition {
            None => self.storage.append(&stream, expected, &events)?,
            Some(c) => self.storage.append_if(&stream, expected, &events, c)?,
        };
        let before = root.version().map_or(0, |v| v + 1);
        let last_id = events.last().map_or(Uuid::nil(), |e| e.event_id);
        root.mark_saved(result.last_version, last_id);
        let after = result.last_version + 1;
        if self.snapshot_every > 0 && after / self.snapshot_every > before / self.snapshot_every {
            self.save_snapshot(&stream, root, result.last_version, last_id);
        }
        Ok(Some(result))
    }

    /// Save a snapshot of `root` (a cache: failing to write one is not a failed save). The
    /// first snapshot of each aggregate type in this process is decoded back before it is
    /// written: one that does not (e.g. a `Serialize` the `Deserialize` cannot read) is logged
    /// once through `tracing` at warn level, and no snapshot of that type is written from then
    /// on, so loads replay instead of meeting a snapshot they cannot use.
    fn save_snapshot(&self, stream: &str, root: &Root<A>, version: u64, event_id: Uuid) {
        let payload = match self.encode_snapshot(root.state()) {
            Ok(payload) => payload,
            Err(e) => {
                snapshot_check::fail_once(
                    snapshot_check::kind::<A>(),
                    &format!("cannot encode the state: {e}"),
                );
                return;
            }
        };
        let usable = snapshot_check::checked(snapshot_check::kind::<A>(), || {
            self.decode_snapshot(&payload)
                .map(|_| ())
                .map_err(|_| "the encoded state does not decode back".to_string())
        });
        if usable {
            let _ = self
                .storage
                .save_snapshot(stream, version, event_id, &payload);
        }
    }

    /// [`Repository::execute`] with the defaults: a fresh request context
    /// ([`CommandContext::new_request`]: a new correlation id, random event ids) and
    /// [`DEFAULT_MAX_ATTEMPTS`] attempts. Returns the saved root.
    ///
    /// # Errors
    /// As [`Repository::execute`].
    pub fn handle(&self, id: &str, command: &A::Command) -> RepoResult<Root<A>, A> {
        self.execute(
            id,
            command,
            &CommandContext::new_request(),
            DEFAULT_MAX_ATTEMPTS,
        )
    }

    /// Load aggregate `id` (or start a new one), run `command`, save; on a conflict reload and
    /// try again, up to `max_attempts` times (at least once). Returns the saved root.
    ///
    /// Re-running is safe because `handle` is a pure decision on the state: the retry sees the
    /// other writer's events and decides again (and may now refuse the command).
    ///
    /// After a conflict the retry first waits (up to [`CONFLICT_WAIT`]) until the version the
    /// conflict reported is visible to reads ([`EventStorage::wait_for_version`]): the
    /// concurrency check counts appends still being written, a reload only sees durable ones,
    /// and reloading before the winner is durable would only conflict again. From the third
    /// attempt on it also sleeps a short random pause (up to 2^attempt × 20 µs, at most
    /// ~5 ms), so writers that keep colliding on one aggregate fall out of step.
    ///
    /// # Errors
    /// [`RepositoryError::Domain`] when the command is refused; [`RepositoryError::TooManyConflicts`]
    /// (with the stream's last reported version) after `max_attempts` conflicts in a row; the
    /// load and save errors otherwise.
    pub fn execute(
        &self,
        id: &str,
        command: &A::Command,
        ctx: &CommandContext,
        max_attempts: u32,
    ) -> RepoResult<Root<A>, A> {
        let attempts = max_attempts.max(1);
        let mut actual = None;
        for attempt in 0..attempts {
            let mut root = self.load(id)?.unwrap_or_else(|| Root::new(id));
            root.execute(command).map_err(RepositoryError::Domain)?;
            match self.save(&mut root, ctx) {
                Ok(_) => return Ok(root),
                Err(RepositoryError::Conflict {
                    stream, actual: a, ..
                }) => {
                    actual = a;
                    if let Some(v) = a {
                        self.storage.wait_for_version(&stream, v, CONFLICT_WAIT)?;
                    }
                    conflict_backoff(attempt);
                }
                Err(e) => return Err(e),
            }
        }
        Err(RepositoryError::TooManyConflicts {
            stream: A::stream_id(id),
            attempts,
            actual,
        })
    }
}

/// The attempts [`Repository::handle`] gives a command that meets concurrent writers. With
/// the wait for the winner's append before each reload, a retry only conflicts again when yet
/// another writer won the next round, so this bounds starvation, not ordinary contention.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 100;

/// How long [`Repository::execute`] waits for a conflicting append to become visible before
/// it reloads anyway.
pub const CONFLICT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The pause after conflict number `attempt` (0-based) of one `execute`: none for the first
/// two, then a random pause below 2^min(attempt, 8) × 20 µs.
fn conflict_backoff(attempt: u32) {
    if attempt < 2 {
        return;
    }
    let ceiling_us = 20u64 << attempt.min(8);
    // Jitter from the per-thread id generator: cheap, and differs between threads.
    let noise = crate::new_event_id().as_u64_pair().1;
    std::thread::sleep(std::time::Duration::from_micros(noise % ceiling_us));
}

/// The envelope in front of a snapshot payload (docs/FORMAT.md, "Snapshot payloads"): which
/// codec the state is in and the aggregate's `SNAPSHOT_VERSION` it was written at.
///
/// * Current: `FF FF`, the codec's tag with bit 7 set (1 byte), the schema version (u16 LE),
///   the upcaster fingerprint (u32 LE, [`Upcasters::event_fingerprint`]), the state.
/// * Without fingerprint (builds before it): `FF FF`, the codec's tag (bit 7 clear), the
///   schema version (u16 LE), the state; read as fingerprint 0.
/// * Legacy (builds before the MessagePack codec): the schema version (u16 LE, never `FFFF`),
///   the state in bincode 2.0.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SnapshotEnvelope {
    codec: Codec,
    schema_version: u16,
    /// `None`: an envelope written before fingerprints (read as 0).
    fingerprint: Option<u32>,
}

/// Bit of the codec tag byte saying a fingerprint (u32 LE) follows the schema version. Builds
/// before it read the tag as an unknown codec and ignore the snapshot (replay), never misuse it.
const SNAPSHOT_FINGERPRINT_FLAG: u8 = 0x80;

/// First two bytes of a current snapshot envelope; a legacy envelope starts with the schema
/// version instead, which is below `u16::MAX`.
const SNAPSHOT_ENVELOPE_MARK: [u8; 2] = [0xFF, 0xFF];

impl SnapshotEnvelope {
    fn encode(self) -> Vec<u8> {
        let mut out = SNAPSHOT_ENVELOPE_MARK.to_vec();
        let flag = if self.fingerprint.is_some() {
            SNAPSHOT_FINGERPRINT_FLAG
        } else {
            0
        };
        out.push(self.codec.tag() | flag);
        out.extend(self.schema_version.to_le_bytes());
        if let Some(fingerprint) = self.fingerprint {
            out.extend(fingerprint.to_le_bytes());
        }
        out
    }

    /// The envelope and the state's bytes; `None` for a payload too short or naming a codec
    /// this build does not know (the snapshot is then unusable, and counted so).
    fn decode(payload: &[u8]) -> Option<(SnapshotEnvelope, &[u8])> {
        let (first, rest) = payload.split_first_chunk::<2>()?;
        if *first != SNAPSHOT_ENVELOPE_MARK {
            let envelope = SnapshotEnvelope {
                codec: Codec::Bincode2,
                schema_version: u16::from_le_bytes(*first),
                fingerprint: None,
            };
            return Some((envelope, rest));
        }
        let (&tag, rest) = rest.split_first()?;
        let (version, mut body) = rest.split_first_chunk::<2>()?;
        let mut fingerprint = None;
        if tag & SNAPSHOT_FINGERPRINT_FLAG != 0 {
            let (fp, state) = body.split_first_chunk::<4>()?;
            fingerprint = Some(u32::from_le_bytes(*fp));
            body = state;
        }
        let envelope = SnapshotEnvelope {
            codec: Codec::from_tag(tag & !SNAPSHOT_FINGERPRINT_FLAG)?,
            schema_version: u16::from_le_bytes(*version),
            fingerprint,
        };
        Some((envelope, body))
    }
}

/// A snapshot payload of `state` at `schema_version` as builds before the MessagePack codec
/// wrote it (legacy envelope + bincode): for tests that write old data.
#[cfg(feature = "test-support")]
pub(crate) fn legacy_snapshot_payload<T: serde::Serialize>(
    schema_version: u16,
    state: &T,
) -> Result<Vec<u8>, CodecError> {
    let mut out = schema_version.to_le_bytes().to_vec();
    out.extend(codec::encode_bincode(state)?);
    Ok(out)
}

/// The once-per-type check of [`Repository::save_snapshot`]: which aggregate types' snapshots
/// decode back, decided on their first snapshot in this process.
mod snapshot_check {
    use std::any::TypeId;
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock, PoisonError};

    use crate::aggregate::Aggregate;

    /// An aggregate type: its Rust type (two types may share a `TYPE_NAME`) and its name.
    pub(super) type Kind = (TypeId, &'static str);

    /// The [`Kind`] of `A`.
    pub(super) fn kind<A: Aggregate>() -> Kind {
        (TypeId::of::<A>(), A::TYPE_NAME)
    }

    fn verdicts() -> &'static Mutex<HashMap<Kind, bool>> {
        static VERDICTS: OnceLock<Mutex<HashMap<Kind, bool>>> = OnceLock::new();
        VERDICTS.get_or_init(|| Mutex::new(HashMap::new()))
    }

    /// Whether snapshots of the aggregate type `kind` are usable: the verdict of its first check, running
    /// `check` now if there is none (a failure is logged once).
    pub(super) fn checked(kind: Kind, check: impl FnOnce() -> Result<(), String>) -> bool {
        let known = verdicts()
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&kind)
            .copied();
        if let Some(usable) = known {
            return usable;
        }
        match check() {
            Ok(()) => {
                record(kind, true);
                true
            }
            Err(why) => {
                fail_once(kind, &why);
                false
            }
        }
    }

    /// Mark the snapshots of `kind` unusable, logging why the first time.
    pub(super) fn fail_once(kind: Kind, why: &str) {
        if record(kind, false) {
            tracing::warn!(
                aggregate = kind.1,
                reason = why,
                "snapshots of this aggregate cannot be read back, so none are written: loads \
                 replay its events. Its state's serde form must round-trip through the codec \
                 (docs/FORMAT.md section 9)"
            );
        }
    }

    /// Record a verdict; whether it is new (or changed).
    fn record(kind: Kind, usable: bool) -> bool {
        let mut v = verdicts().lock().unwrap_or_else(PoisonError::into_inner);
        v.insert(kind, usable) != Some(usable)
    }
}
