//! Helpers shared by the CLI's integration tests: the library tests' helpers (workloads, the
//! independent frame walker), plus running the binary.
#![allow(dead_code)]

pub mod cli;

pub use evstore_shared::*;

#[path = "../../../../evstore/tests/it/common/mod.rs"]
mod evstore_shared;
