//! Heap bytes per event of the in-memory index, measured with a counting global allocator.
//!
//! Builds a store of N events (default 1,000,000; `index_memory N`): streams of 10 events,
//! 20-byte stream ids, a 10-byte event type, 100-byte payloads, one event per append, Buffered
//! durability. Drops it, then measures heap bytes before and after `Store::open` (which rebuilds
//! the index by scanning the log).
//!
//! The stream ids are part of the index heap: they are interned back to back in the stream
//! table's name arena (64 KiB chunks), so there is no allocation per id and no allocator chunk
//! overhead to add. Live allocations are mostly one version vector per stream.
//!
//! Run: `CARGO_TARGET_DIR=/work/main/target-bench cargo run --release --example index_memory`

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use evstore::{Durability, ExpectedVersion, NewEvent, Options, Store};
use uuid::Uuid;

/// Counts the bytes requested (`Layout::size`) that are currently allocated. The allocator's
/// own per-allocation overhead (headers, size-class rounding) is not included.
struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments and only adds
// bookkeeping; the layouts passed on are the ones received.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            CURRENT.fetch_add(layout.size(), Ordering::Relaxed);
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            CURRENT.fetch_add(layout.size(), Ordering::Relaxed);
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        ALLOCS.fetch_sub(1, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
            CURRENT.fetch_add(new_size, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const EVENTS_PER_STREAM: usize = 10;
const STREAM_ID_LEN: usize = 20;

fn stream_id(i: usize) -> String {
    let s = format!("stream-{i:013}");
    assert_eq!(s.len(), STREAM_ID_LEN);
    s
}

/// Resident set size in bytes, from /proc/self/statm.
fn rss_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.replace('_', "").parse().expect("N must be a number"))
        .unwrap_or(1_000_000);
    let streams = n.div_ceil(EVENTS_PER_STREAM);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("index-memory.evs");
    let options = Options {
        durability: Durability::Buffered,
        ..Options::default()
    };

    // Build: one event per append, streams filled one after another.
    let t = Instant::now();
    let mut event = NewEvent::new("EventType0", vec![0x42u8; 100]);
    assert_eq!(event.event_type.len(), 10);
    let (bytes_written, frames) = {
        let store = Store::open_with(&path, options.clone()).expect("create");
        let mut written = 0usize;
        for s in 0..streams {
            let id = stream_id(s);
            for _ in 0..EVENTS_PER_STREAM.min(n - written) {
                written += 1;
                event.event_id = Uuid::from_u128(written as u128);
                store
                    .append(&id, ExpectedVersion::Any, std::slice::from_ref(&event))
                    .expect("append");
            }
        }
        let st = store.stats();
        assert_eq!(st.events, n as u64);
        store.close().expect("close");
        (st.bytes_written, st.frames_written)
    };
    let build = t.elapsed();

    // Measure: heap before and after open (the index is rebuilt by the scan).
    let rss_before = rss_bytes();
    let before = CURRENT.load(Ordering::Relaxed);
    let allocs_before = ALLOCS.load(Ordering::Relaxed);
    let t = Instant::now();
    let store = Store::open_with(&path, options).expect("open");
    let open = t.elapsed();
    let after = CURRENT.load(Ordering::Relaxed);
    let allocs_after = ALLOCS.load(Ordering::Relaxed);
    let rss_after = rss_bytes();
    let st = store.stats();
    assert_eq!(st.events, n as u64);
    assert_eq!(st.streams, streams as u64);

    let heap = after - before;
    let ids_bytes = streams * STREAM_ID_LEN;
    let per = |x: usize| x as f64 / n as f64;
    println!("events                     {n}");
    println!("streams                    {streams} ({EVENTS_PER_STREAM} events each, {STREAM_ID_LEN}-byte ids)");
    println!(
        "build (Buffered, batch 1)  {:.2} s ({:.0} events/s)",
        build.as_secs_f64(),
        n as f64 / build.as_secs_f64()
    );
    println!(
        "on-disk bytes/event        {:.1} (bytes_written {bytes_written} over {frames} frames)",
        bytes_written as f64 / n as f64
    );
    println!(
        "open (scan + rebuild)      {:.3} s ({:.2} GB/s of log, {:.0} events/s)",
        open.as_secs_f64(),
        bytes_written as f64 / open.as_secs_f64() / 1e9,
        n as f64 / open.as_secs_f64()
    );
    println!(
        "index heap (requested)     {heap} bytes in {} live allocations",
        allocs_after - allocs_before
    );
    println!(
        "  bytes/event incl. ids    {:.2} (ids in the name arena: {STREAM_ID_LEN} B each, chunked)",
        per(heap)
    );
    println!(
        "  bytes/event excl. ids    {:.2} (heap - streams x {STREAM_ID_LEN} B)",
        per(heap - ids_bytes)
    );
    if let (Some(a), Some(b)) = (rss_before, rss_after) {
        println!(
            "RSS delta over open        {} bytes ({:.2}/event; includes touched mmap pages of the log)",
            b as i64 - a as i64,
            (b as f64 - a as f64) / n as f64
        );
    }
}
