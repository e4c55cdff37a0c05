//! Helpers shared by the Order domain's integration tests.

use std::path::Path;
use std::sync::Arc;

use evstore::{Durability, Options, Store};

/// A Buffered store with 64 KiB segments (so tests cross segment boundaries quickly) at `path`.
pub fn open_at(path: &Path) -> Arc<Store> {
    let options = Options {
        durability: Durability::Buffered,
        segment_size: 64 * 1024,
        ..Options::default()
    };
    Arc::new(Store::open_with(path, options).unwrap())
}

/// [`open_at`] `<dir>/orders.evs`.
pub fn open(dir: &tempfile::TempDir) -> Arc<Store> {
    open_at(&dir.path().join("orders.evs"))
}
