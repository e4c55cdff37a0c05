//! The snapshot sidecar glue: opening `<log path>.snap` (`snapshot::SnapshotStore`) on first
//! use, and checking a loaded snapshot against the log (its version must still hold its
//! event id) before handing it out.

use uuid::Uuid;

use super::{validate_name, Store};
use crate::error::{Error, Result};
use crate::snapshot::{self, IgnoredReason, Snapshot, SnapshotStats, SnapshotStore};

impl Store {
    /// Run `f` on the sidecar, opening (and if damaged, repairing) it on first use.
    /// `Err(ReadOnly)` for a read-only store, which never opens it.
    fn with_snapshots<T>(&self, f: impl FnOnce(&mut SnapshotStore) -> Result<T>) -> Result<T> {
        if self.options.read_only {
            return Err(Error::ReadOnly);
        }
        let mut guard = self.snapshots.lock();
        if guard.is_none() {
            let path = snapshot::sidecar_path(&self.path);
            *guard = Some(SnapshotStore::open(&path, self.header.file_id)?);
        }
        match guard.as_mut() {
            Some(s) => f(s),
            None => unreachable!("sidecar opened above"),
        }
    }

    /// Save a snapshot of `stream` at `version`, whose event id is `event_id`, in the sidecar
    /// (`<log path>.snap`). Snapshots are a cache: not fsynced, checked against the log on load.
    /// An older snapshot of the stream is superseded; a newer one is kept (saves never go
    /// backwards).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a stream id that is empty or longer than 255 bytes;
    /// [`Error::ReadOnly`]; [`Error::Io`] from opening or writing the sidecar, also (kind
    /// `InvalidInput`) for a payload over 64 MiB.
    pub fn save_snapshot(
        &self,
        stream: &str,
        version: u64,
        event_id: Uuid,
        payload: &[u8],
    ) -> Result<()> {
        validate_name(stream, "stream id")?;
        self.with_snapshots(|s| Ok(s.save(stream, version, event_id, payload)?))
    }

    /// The latest snapshot of `stream` that the log confirms: the log still holds its version
    /// with the same event id. Anything else (no snapshot, ahead of the log, stale, damaged) is
    /// `None`, counted in [`Store::snapshot_stats`]. A read-only store never opens the
    /// sidecar (opening may repair it) and always returns `None`: its callers replay.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a stream id that is empty or longer than 255 bytes;
    /// [`Error::Io`] from opening the sidecar; reading the event id back from the log as
    /// [`Store::event_id_at`].
    pub fn load_snapshot(&self, stream: &str) -> Result<Option<Snapshot>> {
        validate_name(stream, "stream id")?;
        if self.options.read_only {
            // Opening the sidecar may repair it; a read-only store replays instead.
            return Ok(None);
        }
        let Some(snap) = self.with_snapshots(|s| Ok(s.load_latest(stream)))? else {
            return Ok(None);
        };
        let verdict = match self.event_id_at(stream, snap.version)? {
            None => Some(IgnoredReason::AheadOfLog),
            Some(id) if id != snap.event_id => Some(IgnoredReason::Stale),
            Some(_) => None,
        };
        self.with_snapshots(|s| {
            match verdict {
                Some(reason) => {
                    s.note_ignored(reason);
                    s.forget(stream);
                }
                None => s.note_used(),
            }
            Ok(())
        })?;
        Ok(if verdict.is_none() { Some(snap) } else { None })
    }

    /// Record that a snapshot returned by [`Store::load_snapshot`] could not be decoded (and
    /// drop it), so it shows in the statistics: counted as ignored (undecodable), no longer as
    /// used.
    ///
    /// # Errors
    /// [`Error::ReadOnly`]; [`Error::Io`] from opening the sidecar.
    pub fn note_snapshot_undecodable(&self, stream: &str) -> Result<()> {
        self.note_snapshot_ignored(stream, IgnoredReason::Undecodable)
    }

    /// Record that a snapshot returned by [`Store::load_snapshot`] was not used for `reason`
    /// (e.g. [`IgnoredReason::OtherUpcasters`]) and drop it: counted as ignored for that
    /// reason, no longer as used.
    ///
    /// # Errors
    /// [`Error::ReadOnly`]; [`Error::Io`] from opening the sidecar.
    pub fn note_snapshot_ignored(&self, stream: &str, reason: IgnoredReason) -> Result<()> {
        self.with_snapshots(|s| {
            // `load_snapshot` counted it as used when the log confirmed it; it served no load.
            s.retract_used();
            s.note_ignored(reason);
            s.forget(stream);
            Ok(())
        })
    }

    /// Snapshot sidecar counters (all zero when there is no sidecar; a read-only store never
    /// opens it).
    ///
    /// # Errors
    /// [`Error::Io`] from opening an existing sidecar.
    pub fn snapshot_stats(&self) -> Result<SnapshotStats> {
        if self.options.read_only {
            return Ok(SnapshotStats::default());
        }
        if self.snapshots.lock().is_none() && !snapshot::sidecar_path(&self.path).exists() {
            return Ok(SnapshotStats::default());
        }
        self.with_snapshots(|s| Ok(s.stats()))
    }
}
