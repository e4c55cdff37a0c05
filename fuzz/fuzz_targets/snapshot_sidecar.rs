//! Fuzz target `snapshot_sidecar`: see `evstore::fuzzing::snapshot_sidecar`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    evstore::fuzzing::snapshot_sidecar(data);
});
