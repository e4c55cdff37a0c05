//! Schema evolution: upcasters turn payloads stored under an old schema version into the
//! current one at read time, one version step at a time (v1 → v2 → v3), for events and for
//! snapshots.
//!
//! ```
//! use evstore::upcast::Upcasters;
//! let mut up = Upcasters::new();
//! // v1 stored a name, v2 stores it upper-cased.
//! up.register("Renamed", 1, |bytes| Ok(bytes.to_ascii_uppercase()));
//! let (payload, version) = up.upcast("Renamed", 1, 2, b"abc".to_vec()).unwrap();
//! assert_eq!((payload.as_slice(), version), (&b"ABC"[..], 2));
//! assert!(up.upcast("Renamed", 0, 2, vec![]).is_err()); // no upcaster from v0
//! ```

use std::collections::HashMap;
use std::sync::Arc;

/// An upcaster from one schema version to the next: old payload bytes in, new payload bytes out.
pub type UpcastFn = dyn Fn(&[u8]) -> Result<Vec<u8>, String> + Send + Sync;

/// Why a payload could not be brought to the current schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpcastError {
    /// No upcaster is registered from `from_version` for this type.
    #[error("no upcaster for {kind} {name:?} from schema version {from_version} (current is {current_version})")]
    Missing {
        /// What was upcast: `"event type"` or `"snapshot of"` (followed by `name`).
        kind: &'static str,
        /// The event type, or the aggregate type of the snapshot.
        name: String,
        /// The schema version the chain stopped at (no upcaster from it).
        from_version: u16,
        /// The schema version the chain was to reach.
        current_version: u16,
    },
    /// The stored version is newer than this build knows.
    #[error(
        "{kind} {name:?} has schema version {found}, newer than this build's {current_version}"
    )]
    FromTheFuture {
        /// What was upcast: `"event type"` or `"snapshot of"` (followed by `name`).
        kind: &'static str,
        /// The event type, or the aggregate type of the snapshot.
        name: String,
        /// The stored schema version.
        found: u16,
        /// The schema version this build reads and writes.
        current_version: u16,
    },
    /// An upcaster failed.
    #[error("upcasting {kind} {name:?} from schema version {from_version} failed: {reason}")]
    Failed {
        /// What was upcast: `"event type"` or `"snapshot of"` (followed by `name`).
        kind: &'static str,
        /// The event type, or the aggregate type of the snapshot.
        name: String,
        /// The schema version the failed upcaster reads.
        from_version: u16,
        /// The upcaster's error message.
        reason: String,
    },
}

/// A registry of upcasters, keyed by (event type or snapshot type, from-version). Each event
/// upcaster carries a revision label ([`Upcasters::register_named`]) that gives the chain an
/// identity: [`Upcasters::event_fingerprint`] hashes the labels, and snapshots record it.
#[derive(Clone, Default)]
pub struct Upcasters {
    events: HashMap<(String, u16), Arc<UpcastFn>>,
    revisions: HashMap<(String, u16), String>,
    snapshots: HashMap<(String, u16), Arc<UpcastFn>>,
}

impl std::fmt::Debug for Upcasters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut ev: Vec<_> = self.revisions.iter().collect();
        ev.sort();
        let mut sn: Vec<_> = self.snapshots.keys().collect();
        sn.sort();
        f.debug_struct("Upcasters")
            .field("events", &ev)
            .field("snapshots", &sn)
            .finish()
    }
}

impl Upcasters {
    /// An empty registry.
    pub fn new() -> Upcasters {
        Upcasters::default()
    }

    /// Register the upcaster of event type `event_type` from `from_version` to `from_version + 1`
    /// with the empty revision label: [`Upcasters::register_named`] with `""`. A change to
    /// such an upcaster's code cannot be noticed (only its presence is fingerprinted), so
    /// snapshots built before the change stay in use; prefer `register_named`.
    pub fn register(
        &mut self,
        event_type: &str,
        from_version: u16,
        f: impl Fn(&[u8]) -> Result<Vec<u8>, String> + Send + Sync + 'static,
    ) -> &mut Self {
        self.register_named(event_type, from_version, "", f)
    }

    /// Register the upcaster of event type `event_type` from `from_version` to `from_version + 1`
    /// under `revision`, a label the application changes whenever it changes what this
    /// upcaster does (e.g. `"1"`, then `"2"` after a bug fix). Snapshots record the
    /// fingerprint of the labels ([`Upcasters::event_fingerprint`]), so a snapshot built before
    /// the change is not used after it (docs/FORMAT.md §9.3).
    ///
    /// ```
    /// use evstore::upcast::Upcasters;
    /// let mut a = Upcasters::new();
    /// a.register_named("Paid", 3, "1", |b| Ok(b.to_vec()));
    /// let mut b = Upcasters::new();
    /// b.register_named("Paid", 3, "2", |b| Ok(b.to_vec()));
    /// let all = |_: &str| true;
    /// assert_ne!(a.event_fingerprint(all), b.event_fingerprint(all));
    /// assert_eq!(Upcasters::new().event_fingerprint(all), 0);
    /// ```
    pub fn register_named(
        &mut self,
        event_type: &str,
        from_version: u16,
        revision: &str,
        f: impl Fn(&[u8]) -> Result<Vec<u8>, String> + Send + Sync + 'static,
    ) -> &mut Self {
        let key = (event_type.to_string(), from_version);
        self.revisions.insert(key.clone(), revision.to_string());
        self.events.insert(key, Arc::new(f));
        self
    }

    /// The fingerprint of the event upcasters registered for the event types `covers`
    /// accepts: CRC-32 (IEEE, as the log's frames) of, for each registered
    /// (event type, from-version, revision) in ascending (event type bytes, from-version)
    /// order, the event type's length (u32 LE) and UTF-8 bytes, the from-version (u16 LE), and
    /// the revision's length (u32 LE) and UTF-8 bytes (docs/FORMAT.md §9.3). No covered
    /// upcaster: 0 (the CRC-32 of no bytes). A repository covers the types its aggregate's
    /// events know.
    pub fn event_fingerprint(&self, covers: impl Fn(&str) -> bool) -> u32 {
        let mut keys: Vec<&(String, u16)> =
            self.revisions.keys().filter(|(ty, _)| covers(ty)).collect();
        keys.sort();
        let mut hasher = crc32fast::Hasher::new();
        for key in keys {
            let (ty, from) = key;
            let revision = self.revisions.get(key).map_or("", String::as_str);
            let text = |hasher: &mut crc32fast::Hasher, t: &str| {
                // Names are at most 255 bytes; a longer revision label still hashes all of it.
                let len = u32::try_from(t.len()).unwrap_or(u32::MAX);
                hasher.update(&len.to_le_bytes());
                hasher.update(t.as_bytes());
            };
            text(&mut hasher, ty);
            hasher.update(&from.to_le_bytes());
            text(&mut hasher, revision);
        }
        hasher.finalize()
    }

    /// Register the upcaster of an aggregate's snapshots (by aggregate type name) from
    /// `from_version` to `from_version + 1`.
    pub fn register_snapshot(
        &mut self,
        aggregate_type: &str,
        from_version: u16,
        f: impl Fn(&[u8]) -> Result<Vec<u8>, String> + Send + Sync + 'static,
    ) -> &mut Self {
        self.snapshots
            .insert((aggregate_type.to_string(), from_version), Arc::new(f));
        self
    }

    /// Bring an event payload stored at `version` up to `current`, running the upcasters
    /// registered for `event_type` from `version`, `version + 1`, … up to `current - 1` in
    /// order. Returns the payload and the version reached (always `current` on success).
    ///
    /// # Errors
    /// [`UpcastError::FromTheFuture`] when `version > current`; [`UpcastError::Missing`] when
    /// a step has no upcaster; [`UpcastError::Failed`] when an upcaster returns an error.
    pub fn upcast(
        &self,
        event_type: &str,
        version: u16,
        current: u16,
        payload: Vec<u8>,
    ) -> Result<(Vec<u8>, u16), UpcastError> {
        chain(
            &self.events,
            "event type",
            event_type,
            version,
            current,
            payload,
        )
    }

    /// Bring a snapshot payload of an `aggregate_type` aggregate stored at `version` up to
    /// `current`, as [`Upcasters::upcast`] does for events, with the upcasters registered by
    /// [`Upcasters::register_snapshot`].
    ///
    /// # Errors
    /// As [`Upcasters::upcast`].
    pub fn upcast_snapshot(
        &self,
        aggregate_type: &str,
        version: u16,
        current: u16,
        payload: Vec<u8>,
    ) -> Result<(Vec<u8>, u16), UpcastError> {
        chain(
            &self.snapshots,
            "snapshot of",
            aggregate_type,
            version,
            current,
            payload,
        )
    }
}

fn chain(
    map: &HashMap<(String, u16), Arc<UpcastFn>>,
    kind: &'static str,
    name: &str,
    mut version: u16,
    current: u16,
    mut payload: Vec<u8>,
) -> Result<(Vec<u8>, u16), UpcastError> {
    if version > current {
        return Err(UpcastError::FromTheFuture {
            kind,
            name: name.to_string(),
            found: version,
            current_version: current,
        });
    }
    // Bounded: the version grows by one per step up to `current`.
    while version < current {
        let f = map
            .get(&(name.to_string(), version))
            .ok_or_else(|| UpcastError::Missing {
                kind,
                name: name.to_string(),
                from_version: version,
                current_version: current,
            })?;
        payload = f(&payload).map_err(|reason| UpcastError::Failed {
            kind,
            name: name.to_string(),
            from_version: version,
            reason,
        })?;
        version += 1;
    }
    Ok((payload, version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_run_in_order() {
        let mut up = Upcasters::new();
        up.register("E", 1, |b| Ok([b, b"2"].concat()));
        up.register("E", 2, |b| Ok([b, b"3"].concat()));
        assert_eq!(up.upcast("E", 1, 3, b"1".to_vec()).unwrap().0, b"123");
        assert_eq!(up.upcast("E", 2, 3, b"x".to_vec()).unwrap().0, b"x3");
        assert_eq!(up.upcast("E", 3, 3, b"x".to_vec()).unwrap().0, b"x");
        let err = up.upcast("F", 1, 2, vec![]).unwrap_err().to_string();
        assert!(err.contains("\"F\"") && err.contains("version 1"), "{err}");
        assert!(matches!(
            up.upcast("E", 4, 3, vec![]),
            Err(UpcastError::FromTheFuture { .. })
        ));
    }
}
