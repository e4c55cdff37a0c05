//! Test support: the seams the crate's own tests, benchmarks and profiling examples reach
//! into the engine through. Compiled only with the `test-support` feature; not part of the
//! stable API (the engine itself is private).
//!
//! * [`LogIo`] and [`open_with_io`]: the I/O fault seam. Every write, sync and allocation
//!   the log writer makes goes through a [`LogIo`]; tests wrap the real file to inject
//!   errors, tear writes or record the operations for power-loss simulation.
//! * [`segment_probe`]: the file-space probes recovery uses (`SEEK_DATA`, preallocation),
//!   so tests can check that the unwritten tail stays a hole.
//! * [`index_fingerprint`]: a comparable copy of the whole in-memory index.

use std::fs::File;
use std::path::Path;

use crate::{Options, Result, Store};

pub use crate::index::IndexFingerprint;
pub use crate::log::writer::LogIo;

/// Open `path` like [`Store::open_with`], with the writer's file operations wrapped by
/// `wrap_io` (fault injection). `wrap_io` receives the open log file and returns the
/// [`LogIo`] every later write, sync and allocation goes through.
///
/// # Errors
/// As [`Store::open_with`].
pub fn open_with_io(
    path: impl AsRef<Path>,
    options: Options,
    wrap_io: impl FnOnce(File) -> Box<dyn LogIo>,
) -> Result<Store> {
    Store::open_with_io(path, options, wrap_io)
}

/// A comparable copy of the whole index of `store` (tests compare it across reopen).
pub fn index_fingerprint(store: &Store) -> IndexFingerprint {
    store.index_fingerprint()
}

/// The file-space probes of the segment layer.
pub mod segment_probe {
    pub use crate::log::segment::HEADER_SIZE;
    pub use crate::log::space::{allocate, next_data};
}

/// Encode `value` with the legacy codec, bincode 2.0.1, as builds before the MessagePack codec
/// did: for tests that write old data and for the codec comparison benchmark.
///
/// # Errors
/// As [`crate::codec::encode`].
pub fn encode_legacy_bincode<T: serde::Serialize + ?Sized>(
    value: &T,
) -> std::result::Result<Vec<u8>, crate::codec::CodecError> {
    crate::codec::encode_bincode(value)
}

/// Event metadata in the legacy envelope (tag `0xE1` + bincode 2.0.1), as builds before the
/// MessagePack codec wrote it; the event's payload must then be [`encode_legacy_bincode`]d.
///
/// # Errors
/// As [`crate::codec::encode`].
pub fn legacy_event_metadata(
    meta: &crate::aggregate::EventMetadata,
) -> std::result::Result<Vec<u8>, crate::codec::CodecError> {
    meta.encode_legacy()
}

/// A snapshot payload of `state` at `schema_version` in the legacy envelope (the version as
/// u16 LE + bincode 2.0.1), as builds before the MessagePack codec wrote it.
///
/// # Errors
/// As [`crate::codec::encode`].
pub fn legacy_snapshot_payload<T: serde::Serialize>(
    schema_version: u16,
    state: &T,
) -> std::result::Result<Vec<u8>, crate::codec::CodecError> {
    crate::repository::legacy_snapshot_payload(schema_version, state)
}
