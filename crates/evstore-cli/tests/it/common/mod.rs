//! Helpers shared by the CLI's integration tests: the library tests' helpers (workloads, the
//! independent frame walker), plus running the binary.
#![allow(
    dead_code,
    reason = "shared helpers: each test module uses some of them"
)]

pub mod cli;

pub use evstore_shared::*;

#[path = "../../../../evstore/tests/it/common/mod.rs"]
#[allow(
    clippy::allow_attributes_without_reason,
    reason = "the library's own test helpers, included as they are; their attributes are the \
              library's to word"
)]
mod evstore_shared;
