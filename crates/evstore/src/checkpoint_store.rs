//! [`CheckpointStore`]: where a projection or saga runner keeps its checkpoint.
//!
//! The runners' default is a file ([`FileCheckpoint`], `<log path>.proj-<NAME>` /
//! `<log path>.saga-<NAME>`, what [`ProjectionRunner::open`] and [`SagaRunner::open`] use). A
//! backend can keep checkpoints elsewhere — `evstore-postgres` keeps them in a table — and a
//! runner opened with [`ProjectionRunner::open_with`] / [`SagaRunner::open_with`] uses it. The
//! content is the same [`Checkpoint`] either way, and it is checked against the log the same
//! way on open ([`crate::checkpoint::verify_against_log`]).
//!
//! [`ProjectionRunner::open`]: crate::projection::ProjectionRunner::open
//! [`ProjectionRunner::open_with`]: crate::projection::ProjectionRunner::open_with
//! [`SagaRunner::open`]: crate::saga::SagaRunner::open
//! [`SagaRunner::open_with`]: crate::saga::SagaRunner::open_with

use std::path::{Path, PathBuf};

use crate::checkpoint::{Checkpoint, CheckpointError};

/// A place that holds one checkpoint and replaces it atomically.
pub trait CheckpointStore: Send + Sync + std::fmt::Debug {
    /// The stored checkpoint.
    ///
    /// # Errors
    /// [`CheckpointError::Missing`] when there is none; [`CheckpointError::Damaged`] when it
    /// does not decode; [`CheckpointError::Io`] when it cannot be read.
    fn read(&self) -> Result<Checkpoint, CheckpointError>;

    /// Replace the stored checkpoint with `cp`, atomically: after a crash the old or the new
    /// one is there.
    ///
    /// # Errors
    /// [`CheckpointError::Invalid`] (nothing written) for a checkpoint that would read back as
    /// damaged; [`CheckpointError::Io`] when it cannot be written (the old one is kept).
    fn write(&self, cp: &Checkpoint) -> Result<(), CheckpointError>;

    /// The file, when the checkpoint is one (`None` for other stores).
    fn file(&self) -> Option<&Path> {
        None
    }
}

impl Checkpoint {
    /// Write this checkpoint to `store` ([`CheckpointStore::write`]).
    ///
    /// # Errors
    /// As [`CheckpointStore::write`].
    pub fn write_to(&self, store: &dyn CheckpointStore) -> Result<(), CheckpointError> {
        store.write(self)
    }
}

/// A checkpoint in a file ([`Checkpoint::read`] / [`Checkpoint::write`]: temp file, fsync,
/// rename, directory fsync).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCheckpoint {
    path: PathBuf,
}

impl FileCheckpoint {
    /// The checkpoint file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> FileCheckpoint {
        FileCheckpoint { path: path.into() }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl CheckpointStore for FileCheckpoint {
    fn read(&self) -> Result<Checkpoint, CheckpointError> {
        Checkpoint::read(&self.path)
    }

    fn write(&self, cp: &Checkpoint) -> Result<(), CheckpointError> {
        cp.write(&self.path)
    }

    fn file(&self) -> Option<&Path> {
        Some(&self.path)
    }
}

impl<C: CheckpointStore + ?Sized> CheckpointStore for Box<C> {
    fn read(&self) -> Result<Checkpoint, CheckpointError> {
        (**self).read()
    }
    fn write(&self, cp: &Checkpoint) -> Result<(), CheckpointError> {
        (**self).write(cp)
    }
    fn file(&self) -> Option<&Path> {
        (**self).file()
    }
}
