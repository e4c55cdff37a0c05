//! Fuzz target `ops`: see `evstore::fuzzing::ops`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    evstore::fuzzing::ops(data);
});
