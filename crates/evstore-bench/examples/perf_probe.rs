//! Profiling probe: one hot path in a loop, for `perf record`. Not the benchmark (figures for
//! docs/PERFORMANCE.md come from `benches/suite.rs`); it prints a rate so a change can be
//! compared quickly, and gives the profiler a process that does one thing.
//!
//! ```sh
//! cargo run --release --example perf_probe -- <probe> [n]
//! perf record -g target/release/examples/perf_probe append-any 1000000
//! ```
//!
//! Probes (n defaults to 1,000,000):
//! * `append-any`, `append-exact`: Buffered one-event appends (100 B payload, 10 B type, 20 B
//!   stream) to one stream with `Any` / `Exact`;
//! * `raw`: `write(2)` of 200 B to an `O_APPEND` file (the disk's limit in the suite);
//! * `raw-prealloc`, `raw-prealloc-touched`: `pwrite` of 200 B into a 64 MiB preallocated
//!   file, the second after reading every page of it through a map first (the kernel's large
//!   zero folios that slowed appends, see "The unwritten tail" in docs/PERFORMANCE.md);
//! * `open`: build a log of n one-event appends over n/10 streams, then time `Store::open`;
//! * `open-cold`: as `open`, one open after dropping the page cache (root only; affects the
//!   whole machine);
//! * `read`: as `open`, then 2,000,000 `read_stream`s of random streams.
//!
//! `PROBE_BATCH` sets the events per append (n counts appends), `PROBE_SEGMENT_MB` the segment size, `PROBE_SPLITS=1` prints a running rate every
//! 100,000 appends.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::time::Instant;

use evstore::testing::segment_probe as segment;
use evstore::{Durability, ExpectedVersion, NewEvent, Options, Store};
use uuid::Uuid;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let what = args.get(1).map(String::as_str).unwrap_or("append-any");
    let n: u64 = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let splits = std::env::var_os("PROBE_SPLITS").is_some();
    let segment_size = std::env::var("PROBE_SEGMENT_MB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(64 << 20, |m| m << 20);
    // On the crate's disk, not a tmpfs /tmp.
    let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR"))?;
    let path = dir.path().join("probe.evs");
    let options = Options {
        segment_size,
        durability: Durability::Buffered,
        ..Options::default()
    };
    let rate = |label: &str, count: u64, secs: f64| {
        println!(
            "{label}: {:.0}/s ({:.3} us each)",
            count as f64 / secs,
            secs * 1e6 / count as f64
        );
    };
    match what {
        "append-any" | "append-exact" => {
            let store = Store::open_with(&path, options)?;
            let exact = what == "append-exact";
            let size: u64 = std::env::var("PROBE_BATCH")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(1);
            let mut batch = vec![NewEvent::new("BenchEvent", vec![7u8; 100]); size as usize];
            let t = Instant::now();
            for i in 0..n {
                let expected = match (exact, i) {
                    (false, _) => ExpectedVersion::Any,
                    (true, 0) => ExpectedVersion::NoStream,
                    (true, i) => ExpectedVersion::Exact(i * size - 1),
                };
                for (j, e) in batch.iter_mut().enumerate() {
                    e.event_id = Uuid::from_u128(u128::from(i * size + j as u64) + 1);
                }
                store.append("bench-stream-0000001", expected, &batch)?;
                if splits && i % 100_000 == 99_999 {
                    rate("  so far", i + 1, t.elapsed().as_secs_f64());
                }
            }
            rate(what, n, t.elapsed().as_secs_f64());
        }
        "raw" => {
            let mut f = OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(&path)?;
            let buf = vec![1u8; 200];
            let t = Instant::now();
            for _ in 0..n {
                f.write_all(&buf)?;
            }
            rate(what, n, t.elapsed().as_secs_f64());
        }
        "raw-prealloc" | "raw-prealloc-touched" => {
            let f = OpenOptions::new()
                .create_new(true)
                .read(true)
                .write(true)
                .open(&path)?;
            let size = 64u64 << 20;
            segment::allocate(&f, 0, size)?;
            if what == "raw-prealloc-touched" {
                // SAFETY: a read-only map of a file this process created and does not truncate.
                let map = unsafe { memmap2::Mmap::map(&f)? };
                let sum: u64 = map.iter().step_by(4096).map(|&b| u64::from(b)).sum();
                println!("read every page through a map (sum {sum})");
            }
            let buf = vec![1u8; 200];
            let writes = (size / 200).min(n);
            let t = Instant::now();
            for i in 0..writes {
                f.write_all_at(&buf, i * 200)?;
            }
            rate(what, writes, t.elapsed().as_secs_f64());
        }
        "open" | "read" | "open-cold" => {
            let streams = (n / 10).max(1);
            {
                let store = Store::open_with(&path, options.clone())?;
                let mut batch = vec![NewEvent::new("BenchEvent", vec![7u8; 100])];
                for i in 0..n {
                    batch[0].event_id = Uuid::from_u128(u128::from(i) + 1);
                    let s = format!("bench-stream-{:07}", i % streams);
                    store.append(&s, ExpectedVersion::Any, &batch)?;
                }
                store.close()?;
            }
            if what == "open-cold" {
                // Needs root: drops the whole machine's clean page cache.
                std::fs::write("/proc/sys/vm/drop_caches", "1")?;
            }
            let reps = if what == "open" { 10 } else { 1 };
            let t = Instant::now();
            let mut store = Store::open_with(&path, options.clone())?;
            for _ in 1..reps {
                drop(store);
                store = Store::open_with(&path, options.clone())?;
            }
            let secs = t.elapsed().as_secs_f64() / f64::from(reps);
            println!(
                "open: {:.1} ms ({:.2} GB/s of log)",
                secs * 1e3,
                n as f64 * 200.0 / secs / 1e9
            );
            if what == "read" {
                let mut x = 0x9E37_79B9_7F4A_7C15u64;
                let reads = 2_000_000u64;
                let mut events = 0u64;
                let t = Instant::now();
                for _ in 0..reads {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let s = format!("bench-stream-{:07}", x % streams);
                    events += store.read_stream(&s, 0)?.len() as u64;
                }
                rate("read_stream events", events, t.elapsed().as_secs_f64());
            }
        }
        other => return Err(format!("unknown probe {other}").into()),
    }
    Ok(())
}
