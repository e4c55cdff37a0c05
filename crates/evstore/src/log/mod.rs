//! The log engine: the file, its segments and their maps, the frame codec, recovery, the
//! writer, and the event reader. Below the index and the store: nothing here knows what a
//! frame body means beyond the checks of docs/FORMAT.md (recovery hands bodies to its caller).
//!
//! | where is | module |
//! | --- | --- |
//! | the lock taken, the header read and checked, a log created, a segment mapped or cut | [`file`](mod@file) |
//! | the header layout, segment geometry, the maps and the segment table | [`segment`] |
//! | preallocation and hole probes (`posix_fallocate`, `SEEK_DATA` / `SEEK_HOLE`) | [`space`] |
//! | a frame, batch or event encoded and checked | [`frame`] |
//! | every segment mapped and scanned on open, torn tail vs corruption decided, a tail trimmed | [`recovery`] |
//! | frames laid out, written, synced, the file grown | [`writer`] |
//! | the durable head published for readers in other processes, the reader lock, the watch readers sleep on | [`head`] |
//! | an event decoded at an index location | [`reader`] |
//!
//! See docs/FORMAT.md for the byte layout these modules implement.

pub(crate) mod file;
pub(crate) mod frame;
pub(crate) mod head;
pub(crate) mod reader;
pub(crate) mod recovery;
pub(crate) mod segment;
pub(crate) mod space;
pub(crate) mod writer;
