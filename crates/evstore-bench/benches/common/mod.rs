//! Set-up shared by the bench targets (`core`, `suite`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use tempfile::TempDir;

/// A 20-byte stream id.
pub fn stream_id(i: usize) -> String {
    let s = format!("bench-stream-{i:07}");
    debug_assert_eq!(s.len(), 20);
    s
}

/// Whether `path` lies on a tmpfs (where fsync is free), by the longest matching mount point.
pub fn on_tmpfs(path: &Path) -> bool {
    let Ok(mounts) = std::fs::read_to_string("/proc/mounts") else {
        return false;
    };
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let mut best: Option<(usize, bool)> = None;
    for line in mounts.lines() {
        let mut f = line.split_whitespace();
        let (Some(_dev), Some(mnt), Some(fstype)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if path.starts_with(mnt) && best.is_none_or(|(len, _)| mnt.len() > len) {
            best = Some((mnt.len(), fstype == "tmpfs"));
        }
    }
    best.is_some_and(|(_, tmpfs)| tmpfs)
}

/// A temporary directory on a real disk: the system temp dir unless it is a tmpfs, else
/// `target/bench-tmp` in the workspace root.
pub fn bench_dir() -> TempDir {
    let tmp = std::env::temp_dir();
    if on_tmpfs(&tmp) {
        let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-tmp");
        std::fs::create_dir_all(&base).expect("create target/bench-tmp");
        tempfile::tempdir_in(base).expect("tempdir")
    } else {
        tempfile::tempdir().expect("tempdir")
    }
}
