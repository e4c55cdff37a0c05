//! Helpers shared by the integration tests.
#![allow(
    dead_code,
    reason = "shared by the test modules, each of which uses a subset"
)]

pub mod child;
pub mod counter;
pub mod layout;

use evstore::{Durability, NewEvent, Options, RecordedEvent, Store};

/// Small segments so tests cross segment boundaries quickly.
pub fn small_options(durability: Durability) -> Options {
    Options {
        durability,
        segment_size: 64 * 1024,
        ..Options::default()
    }
}

pub fn event(ty: &str, payload: &str) -> NewEvent {
    NewEvent::new(ty, payload.as_bytes().to_vec())
}

pub fn all_events(store: &Store) -> Vec<RecordedEvent> {
    store
        .read_all(0)
        .collect::<Result<Vec<_>, _>>()
        .expect("read_all succeeds")
}

/// A small deterministic PRNG (xorshift64*) for reproducible workloads from a printed seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The full name libtest knows test `name` of module `module_path` by (what `--exact` needs
/// when a test re-executes its own binary): the module path without the crate's name.
pub fn test_name(module_path: &str, name: &str) -> String {
    match module_path.split_once("::") {
        Some((_, module)) => format!("{module}::{name}"),
        None => name.to_string(),
    }
}
