//! `evstore bench`: a quick append-throughput check on the user's own disk.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;

use crate::text::{bytes, group, per_second};
use crate::{line, open_or_create, CliError, CliResult, DurabilityArg};
use evstore::{Durability, ExpectedVersion, NewEvent, Store, StoreStats};

pub const EXAMPLES: &str = "\
Each thread appends to its own stream, `--batch` events per append. With sync durability
concurrent appends share fsyncs (group commit): more threads, more appends per fsync. The
default file is a temporary one in the current directory (so the disk measured is the one
you are on), deleted afterwards; a file given with --file must not exist yet and is kept.

Examples:
  evstore bench
  evstore bench --events 100000 --payload 1024 --threads 16
  evstore bench --durability buffered --file /mnt/data/bench.evs";

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Events to append in total.
    #[arg(long, default_value_t = 20_000)]
    events: u64,
    /// Payload bytes per event.
    #[arg(long, default_value_t = 256)]
    payload: usize,
    /// Appending threads.
    #[arg(long, default_value_t = 4)]
    threads: u64,
    /// Events per append.
    #[arg(long, default_value_t = 1)]
    batch: u64,
    /// sync: durable before append returns; buffered: durable at the end (flush).
    #[arg(long, value_enum, default_value = "sync")]
    durability: DurabilityArg,
    /// Write here (must not exist; kept) instead of a temporary file.
    #[arg(long)]
    file: Option<PathBuf>,
}

/// Removes the temporary bench file (and a sidecar) however the run ends.
struct TempFile(Option<PathBuf>);

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = std::fs::remove_file(p);
            let _ = std::fs::remove_file(evstore::snapshot::sidecar_path(p));
            let _ = std::fs::remove_file(evstore::maintenance::head_file_path(p));
        }
    }
}

pub fn run(args: &BenchArgs, out: &mut dyn Write) -> CliResult<()> {
    let threads = args.threads.clamp(1, 256);
    let batch = args.batch.clamp(1, 1000);
    let (path, _cleanup) = bench_file(args.file.as_deref())?;
    let durability: Durability = args.durability.into();
    let store = open_or_create(&path, durability)?;
    line(
        out,
        format!(
            "bench: {} events of {} payload bytes, {} per append, {} threads, {:?} durability, file {}",
            group(args.events),
            args.payload,
            batch,
            threads,
            durability,
            path.display()
        ),
    )?;
    out.flush()?;
    let started = Instant::now();
    let payload = vec![b'x'; args.payload];
    append_from_threads(&store, &payload, args.events, threads, batch)?;
    store.flush()?;
    let elapsed = started.elapsed();
    let st = store.stats();
    store.close()?;
    report(out, args, elapsed, &st)?;
    if args.file.is_some() {
        line(out, format!("  kept {}", path.display()))?;
    }
    Ok(())
}

/// The file to write: `file` if given (it must not exist; kept), else a temporary file in
/// the current directory, removed when the returned guard drops.
fn bench_file(file: Option<&Path>) -> CliResult<(PathBuf, TempFile)> {
    if let Some(p) = file {
        if p.exists() {
            return Err(CliError::msg(format!(
                "{} exists; bench writes a fresh file (remove it or pick another path)",
                p.display()
            )));
        }
        Ok((p.to_path_buf(), TempFile(None)))
    } else {
        let p = PathBuf::from(format!(
            "evstore-bench-{}-{}.evs",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ));
        Ok((p.clone(), TempFile(Some(p))))
    }
}

/// Append `events` events of `payload` from `threads` threads, each to its own stream
/// (`bench-<thread>`), `batch` events per append.
fn append_from_threads(
    store: &Store,
    payload: &[u8],
    events: u64,
    threads: u64,
    batch: u64,
) -> CliResult<()> {
    let results: Vec<CliResult<()>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let count = events / threads + u64::from(t < events % threads);
                scope.spawn(move || -> CliResult<()> {
                    let stream = format!("bench-{t}");
                    let mut done = 0;
                    while done < count {
                        let n = batch.min(count - done);
                        let events: Vec<NewEvent> = (0..n)
                            .map(|_| NewEvent::new("BenchEvent", payload.to_vec()))
                            .collect();
                        store.append(&stream, ExpectedVersion::Any, &events)?;
                        done += n;
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(CliError::msg("a bench thread panicked")))
            })
            .collect()
    });
    results.into_iter().collect()
}

/// The figures: events per second, payload and log bytes per second, appends per fsync.
fn report(
    out: &mut dyn Write,
    args: &BenchArgs,
    elapsed: Duration,
    st: &StoreStats,
) -> CliResult<()> {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let payload_bytes = args.events.saturating_mul(args.payload as u64);
    line(
        out,
        format!(
            "  {} events in {:.2} s: {} events/s",
            group(args.events),
            secs,
            group(per_second(args.events, elapsed))
        ),
    )?;
    line(
        out,
        format!(
            "  {:.1} MB/s of payload, {:.1} MB/s written to the log ({} incl. framing)",
            payload_bytes as f64 / secs / 1e6,
            st.bytes_written as f64 / secs / 1e6,
            bytes(st.bytes_written)
        ),
    )?;
    line(
        out,
        format!(
            "  {} appends in {} frames, {} fsyncs: {:.1} appends per fsync",
            group(st.appends),
            group(st.frames_written),
            group(st.data_syncs),
            st.appends as f64 / st.data_syncs.max(1) as f64
        ),
    )
}
