//! Fuzz target `frame_decode`: see `evstore::fuzzing::frame_decode`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    evstore::fuzzing::frame_decode(data);
});
