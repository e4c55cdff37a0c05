//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod counter;

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
