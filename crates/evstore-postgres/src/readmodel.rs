//! Read models kept in PostgreSQL: a [`TableProjection`] writes its tables and its checkpoint
//! (`evstore_checkpoints`) in **one transaction** per batch, so after any crash the model
//! includes exactly the events before the checkpoint — each event is applied exactly once.

use std::sync::Arc;
use std::time::Duration;

use evstore::checkpoint::validate_name;
use evstore::subscription::{StopHandle, Subscription, SubscriptionFilter};
use evstore::{Error, RecordedEvent, Result};
use uuid::Uuid;

use crate::store::{col, pg, to_i64, to_u64, PgStore};

/// Events applied per transaction.
const BATCH: usize = 512;

/// A read model whose state lives in PostgreSQL tables of the store's schema.
///
/// `apply` must be deterministic; it runs inside the batch's transaction (`tx`), with the
/// checkpoint written in the same transaction. An error rolls the whole batch back.
pub trait TableProjection: Send {
    /// Stable name (the checkpoint row's key): 1..=64 bytes of ASCII letters, digits, `-`, `_`.
    const NAME: &'static str;
    /// Version of `apply` and of the tables' shape; a change makes the projector rebuild
    /// (`reset`, then every event from position 0).
    const VERSION: u32;

    /// The events `apply` needs (others still advance the checkpoint). Default: all.
    fn filter(&self) -> SubscriptionFilter {
        SubscriptionFilter::all()
    }

    /// Empty the model's tables (a rebuild starts from position 0).
    ///
    /// # Errors
    /// The statements' errors (use [`crate::pg_error`]).
    fn reset(&mut self, tx: &mut postgres::Transaction<'_>) -> Result<()>;

    /// Fold one event into the tables.
    ///
    /// # Errors
    /// The statements' errors (use [`crate::pg_error`]); the batch is rolled back.
    fn apply(&mut self, tx: &mut postgres::Transaction<'_>, event: &RecordedEvent) -> Result<()>;
}

/// A checkpoint row of `evstore_checkpoints`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgCheckpoint {
    /// The projection's or saga's name.
    pub name: String,
    /// The next position to process: every position below it is in the model.
    pub next_position: u64,
    /// The id of the event at `next_position - 1` (checked against the log on open).
    pub last_event_id: Option<Uuid>,
    /// The version of the projection that wrote it.
    pub version: u32,
}

impl PgCheckpoint {
    /// The checkpoint named `name`, if any.
    ///
    /// # Errors
    /// [`Error::Io`] from the server.
    pub fn load(
        client: &mut impl postgres::GenericClient,
        name: &str,
    ) -> Result<Option<PgCheckpoint>> {
        let row = client
            .query_opt(
                "SELECT next_position, last_event_id, version FROM evstore_checkpoints \
                 WHERE name = $1",
                &[&name],
            )
            .map_err(pg)?;
        row.map(|r| {
            Ok(PgCheckpoint {
                name: name.to_string(),
                next_position: to_u64(col(&r, 0)?)?,
                last_event_id: col(&r, 1)?,
                version: u32::try_from(col::<i32>(&r, 2)?).unwrap_or(0),
            })
        })
        .transpose()
    }

    /// Insert or replace the checkpoint (inside the caller's transaction).
    ///
    /// # Errors
    /// [`Error::Io`] from the server.
    pub fn save(&self, client: &mut impl postgres::GenericClient) -> Result<()> {
        let version = i32::try_from(self.version).unwrap_or(i32::MAX);
        client
            .execute(
                "INSERT INTO evstore_checkpoints (name, next_position, last_event_id, version) \
                 VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (name) DO UPDATE SET next_position = excluded.next_position, \
                     last_event_id = excluded.last_event_id, version = excluded.version, \
                     updated_at = now()",
                &[
                    &self.name,
                    &to_i64(self.next_position),
                    &self.last_event_id,
                    &version,
                ],
            )
            .map_err(pg)?;
        Ok(())
    }
}

/// Runs a [`TableProjection`] over a [`PgStore`]: reads the log through a subscription and
/// commits each batch together with its checkpoint.
///
/// Several projectors of the same name may run (e.g. in several processes): each batch locks
/// the checkpoint row (`FOR UPDATE`) and is applied only if the checkpoint is still where this
/// projector left it; otherwise the projector moves to the stored checkpoint and drops the
/// batch. So no event is ever applied twice.
pub struct PgProjector<T: TableProjection> {
    store: Arc<PgStore>,
    projection: T,
    subscription: Subscription<Arc<PgStore>>,
    /// The committed checkpoint position (what the model includes).
    committed: u64,
    rebuilt: Option<String>,
}

impl<T: TableProjection> std::fmt::Debug for PgProjector<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgProjector")
            .field("name", &T::NAME)
            .field("committed", &self.committed)
            .field("rebuilt", &self.rebuilt)
            .finish_non_exhaustive()
    }
}

impl<T: TableProjection> PgProjector<T> {
    /// Open the projector: resume from the stored checkpoint when it is of this
    /// [`TableProjection::VERSION`] and the log still holds the event it names; otherwise
    /// rebuild (reset the tables and start from position 0, in one transaction).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad [`TableProjection::NAME`]; [`Error::Io`] from the
    /// server; `reset`'s errors.
    pub fn open(store: Arc<PgStore>, mut projection: T) -> Result<PgProjector<T>> {
        validate_name(T::NAME)?;
        let stored = PgCheckpoint::load(&mut *store.conn()?, T::NAME)?;
        let reason = match &stored {
            None => Some("no checkpoint".to_string()),
            Some(cp) if cp.version != T::VERSION => Some(format!(
                "version changed from {} to {}",
                cp.version,
                T::VERSION
            )),
            Some(cp) => match cp.next_position.checked_sub(1) {
                None => None,
                Some(p) => {
                    let at = store.read_all_from(p, 1)?;
                    let id = at.first().filter(|e| e.position == p).map(|e| e.event_id);
                    (id.is_none() || id != cp.last_event_id)
                        .then(|| "the log does not hold the checkpoint's event".to_string())
                }
            },
        };
        let resumed = match (&reason, &stored) {
            (None, Some(cp)) => Some(cp.next_position),
            _ => None,
        };
        let position = if let Some(p) = resumed {
            p
        } else {
            let mut conn = store.conn()?;
            let mut tx = conn.transaction().map_err(pg)?;
            projection.reset(&mut tx)?;
            PgCheckpoint {
                name: T::NAME.to_string(),
                next_position: 0,
                last_event_id: None,
                version: T::VERSION,
            }
            .save(&mut tx)?;
            tx.commit().map_err(pg)?;
            0
        };
        let filter = projection.filter();
        Ok(PgProjector {
            subscription: Subscription::new(store.clone(), position, filter),
            store,
            projection,
            committed: position,
            rebuilt: reason,
        })
    }

    /// Why the projector rebuilt on open (`None`: it resumed).
    pub fn rebuilt(&self) -> Option<&str> {
        self.rebuilt.as_deref()
    }

    /// The committed checkpoint: every position below it is in the model.
    pub fn next_position(&self) -> u64 {
        self.committed
    }

    /// The projection (e.g. to read its counters).
    pub fn projection(&self) -> &T {
        &self.projection
    }

    /// Apply up to `max` events (waiting up to `timeout` for the first) in one transaction with
    /// the checkpoint. Returns how many were applied (filtered-out events advance the
    /// checkpoint without counting).
    ///
    /// # Errors
    /// The store's read errors, `apply`'s errors, [`Error::Io`] from the commit. After an
    /// error nothing of the batch is kept and the projector resumes from its last committed
    /// checkpoint.
    pub fn step(&mut self, max: usize, timeout: Duration) -> Result<usize> {
        let batch = match self.subscription.next_batch(max.max(1), timeout) {
            Ok(b) => b,
            Err(e) => {
                self.subscription.seek(self.committed);
                return Err(e);
            }
        };
        let end = self.subscription.next_position();
        if end == self.committed {
            return Ok(0);
        }
        let last_event_id = self.subscription.last_event_id();
        match self.commit(&batch, end, last_event_id) {
            Ok(true) => {
                self.committed = end;
                Ok(batch.len())
            }
            Ok(false) => Ok(0),
            Err(e) => {
                self.subscription.seek(self.committed);
                Err(e)
            }
        }
    }

    /// One transaction: lock the checkpoint, check it is ours, apply, move it. `Ok(false)`:
    /// another projector moved it; this one now follows the stored checkpoint.
    fn commit(&mut self, batch: &[RecordedEvent], end: u64, last: Option<Uuid>) -> Result<bool> {
        let mut conn = self.store.conn()?;
        let mut tx = conn.transaction().map_err(pg)?;
        let row = tx
            .query_opt(
                "SELECT next_position FROM evstore_checkpoints WHERE name = $1 FOR UPDATE",
                &[&T::NAME],
            )
            .map_err(pg)?;
        let stored = row.map(|r| to_u64(col(&r, 0)?)).transpose()?;
        if stored != Some(self.committed) {
            let moved_to = stored.unwrap_or(0);
            drop(tx);
            self.committed = moved_to;
            self.subscription.seek(moved_to);
            return Ok(false);
        }
        for e in batch {
            self.projection.apply(&mut tx, e)?;
        }
        PgCheckpoint {
            name: T::NAME.to_string(),
            next_position: end,
            last_event_id: last,
            version: T::VERSION,
        }
        .save(&mut tx)?;
        tx.commit().map_err(pg)?;
        Ok(true)
    }

    /// Apply everything committed up to the current head. Returns the number applied.
    ///
    /// # Errors
    /// As [`PgProjector::step`].
    pub fn catch_up(&mut self) -> Result<u64> {
        let Some(head) = self.store.head_position()? else {
            return Ok(0);
        };
        let mut applied = 0u64;
        // Bounded: every round commits a batch or stops.
        while self.committed <= head {
            let before = self.committed;
            applied += self.step(BATCH, Duration::ZERO)? as u64;
            if self.committed == before {
                break;
            }
        }
        Ok(applied)
    }

    /// Follow the log until `stop` is stopped (woken by LISTEN/NOTIFY, polling as fallback).
    ///
    /// # Errors
    /// As [`PgProjector::step`].
    pub fn run_until(&mut self, stop: &StopHandle) -> Result<()> {
        // Bounded by the stop handle, checked at least every 100 ms.
        while !stop.is_stopped() {
            self.step(BATCH, Duration::from_millis(100))?;
        }
        Ok(())
    }
}

/// A PostgreSQL client error as an [`Error`] (for [`TableProjection`] implementations).
pub fn pg_error(e: postgres::Error) -> Error {
    pg(e)
}

/// A [`CheckpointStore`](evstore::checkpoint_store::CheckpointStore) in `evstore_checkpoints`:
/// the checkpoint of a [`ProjectionRunner`](evstore::projection::ProjectionRunner) (its state
/// included) or a [`SagaRunner`](evstore::saga::SagaRunner) kept in PostgreSQL, under `name`
/// (distinct from every other checkpoint's name in the schema, [`PgProjector`]s' included).
/// The row holds the encoded [`Checkpoint`](evstore::checkpoint::Checkpoint) (the file
/// format's bytes, CRC included) and its position, event id and version as columns for people.
///
/// ```no_run
/// # use std::sync::Arc;
/// # use evstore::projection::{Projection, ProjectionRunner};
/// # #[derive(Default, serde::Serialize, serde::Deserialize)] struct Count(u64);
/// # impl Projection for Count { const NAME: &'static str = "count"; const VERSION: u32 = 1;
/// #     fn apply(&mut self, _: &evstore::RecordedEvent) { self.0 += 1 } }
/// use evstore_postgres::{PgCheckpointStore, PgStore};
/// let store = Arc::new(PgStore::connect("postgres://postgres@%2Ftmp/postgres")?);
/// let cp = PgCheckpointStore::new(store.clone(), "proj-count");
/// let mut runner = ProjectionRunner::<Count, _>::open_with(store, cp)?;
/// runner.catch_up()?;
/// # Ok::<(), evstore::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct PgCheckpointStore {
    store: Arc<PgStore>,
    name: String,
}

impl PgCheckpointStore {
    /// The checkpoint row `name` of `store`'s schema.
    pub fn new(store: Arc<PgStore>, name: impl Into<String>) -> PgCheckpointStore {
        PgCheckpointStore {
            store,
            name: name.into(),
        }
    }

    /// The row's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

fn cp_io(e: impl std::fmt::Display) -> evstore::checkpoint::CheckpointError {
    evstore::checkpoint::CheckpointError::Io(std::io::Error::other(e.to_string()))
}

impl evstore::checkpoint_store::CheckpointStore for PgCheckpointStore {
    fn read(
        &self,
    ) -> std::result::Result<evstore::checkpoint::Checkpoint, evstore::checkpoint::CheckpointError>
    {
        use evstore::checkpoint::{Checkpoint, CheckpointError};
        let mut conn = self.store.conn().map_err(cp_io)?;
        let row = conn
            .query_opt(
                "SELECT state FROM evstore_checkpoints WHERE name = $1",
                &[&self.name],
            )
            .map_err(cp_io)?;
        let Some(row) = row else {
            return Err(CheckpointError::Missing);
        };
        let bytes: Vec<u8> = col(&row, 0).map_err(cp_io)?;
        Checkpoint::decode(&bytes)
    }

    fn write(
        &self,
        cp: &evstore::checkpoint::Checkpoint,
    ) -> std::result::Result<(), evstore::checkpoint::CheckpointError> {
        use evstore::checkpoint::CheckpointError;
        // The file store's checks (`Checkpoint::write`): what would read back as damaged is
        // refused before anything is written.
        if cp.state.len() > evstore::codec::MAX_DECODE_BYTES {
            return Err(CheckpointError::Invalid(format!(
                "state of {} bytes exceeds the {} bytes a checkpoint can hold",
                cp.state.len(),
                evstore::codec::MAX_DECODE_BYTES
            )));
        }
        if (cp.position == 0) != cp.last_event_id.is_none() {
            return Err(CheckpointError::Invalid(format!(
                "position {} with event id {:?}: the id of the event at position - 1 is needed \
                 exactly when the position is not 0",
                cp.position, cp.last_event_id
            )));
        }
        let version = i32::try_from(cp.version).unwrap_or(i32::MAX);
        let mut conn = self.store.conn().map_err(cp_io)?;
        conn.execute(
            "INSERT INTO evstore_checkpoints (name, next_position, last_event_id, version, state) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (name) DO UPDATE SET next_position = excluded.next_position, \
                 last_event_id = excluded.last_event_id, version = excluded.version, \
                 state = excluded.state, updated_at = now()",
            &[
                &self.name,
                &to_i64(cp.position),
                &cp.last_event_id,
                &version,
                &cp.encode(),
            ],
        )
        .map_err(cp_io)?;
        Ok(())
    }
}
