//! Fuzz target `open_log`: see `evstore::fuzzing::open_log`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    evstore::fuzzing::open_log(data);
});
