//! The log engine: frame codec, segments and their maps, the writer, and the reader/recovery.
//!
//! See docs/FORMAT.md for the byte layout these modules implement.

pub mod frame;
pub mod reader;
pub mod segment;
pub mod writer;
