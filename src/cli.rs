//! The `evstore` command line (`src/main.rs` calls [`run`]).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::{Parser, Subcommand};

use crate::{Durability, ExpectedVersion, NewEvent, Options, Store};

/// evstore: an embedded, crash-safe event store.
#[derive(Debug, Parser)]
#[command(name = "evstore", version, about, arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Append and read back a batch of events in a demo store, and report what happened.
    ///
    /// Example: evstore demo --file /tmp/demo.evs --events 20000
    Demo {
        /// The log file (created if missing; re-running continues it).
        #[arg(long, default_value = "evstore-demo.evs")]
        file: PathBuf,
        /// Events to append.
        #[arg(long, default_value_t = 10_000)]
        events: u64,
        /// Appending threads.
        #[arg(long, default_value_t = 4)]
        threads: u64,
    },
}

/// Parse the command line and run it.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo {
            file,
            events,
            threads,
        } => demo(file, events, threads),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("evstore: {e}");
            ExitCode::from(1)
        }
    }
}

fn demo(file: PathBuf, events: u64, threads: u64) -> crate::Result<()> {
    let threads = threads.clamp(1, 64);
    let store = Arc::new(Store::open_with(&file, Options::default())?);
    let before = store.head_position().map_or(0, |p| p + 1);
    let report = store.recovery_report().clone();
    println!(
        "opened {} ({} events in {} frames{})",
        file.display(),
        report.events,
        report.frames,
        match &report.trimmed {
            Some(t) => format!(
                "; trimmed a torn tail at segment {} offset {}",
                t.segment, t.offset
            ),
            None => String::new(),
        }
    );
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let started = Instant::now();
    let per_thread = events / threads;
    let mut handles = Vec::new();
    for t in 0..threads {
        let store = Arc::clone(&store);
        let run_id = run_id.clone();
        let count = per_thread + if t < events % threads { 1 } else { 0 };
        handles.push(std::thread::spawn(move || -> crate::Result<u64> {
            let mut written = 0;
            let mut version: Option<u64> = None;
            let stream = format!("demo-{}-{t}", &run_id[..8]);
            while written < count {
                let batch = (count - written).min(10);
                let evs: Vec<NewEvent> = (0..batch)
                    .map(|i| {
                        NewEvent::new(
                            if i % 3 == 0 {
                                "ThingCreated"
                            } else {
                                "ThingChanged"
                            },
                            format!("{{\"n\":{}}}", written + i).into_bytes(),
                        )
                    })
                    .collect();
                let expected = match version {
                    None => ExpectedVersion::NoStream,
                    Some(v) => ExpectedVersion::Exact(v),
                };
                let r = store.append(&stream, expected, &evs)?;
                version = Some(r.last_version);
                written += batch;
            }
            Ok(written)
        }));
    }
    let mut written = 0;
    for h in handles {
        written += h
            .join()
            .map_err(|_| crate::Error::InvalidInput("demo thread panicked".into()))??;
    }
    let elapsed = started.elapsed();
    let stats = store.stats();
    println!(
        "appended {written} events from {threads} threads in {:.3}s ({:.0} events/s, Sync durability, {} appends in {} fsyncs)",
        elapsed.as_secs_f64(),
        written as f64 / elapsed.as_secs_f64().max(1e-9),
        stats.appends,
        stats.data_syncs
    );
    let read_started = Instant::now();
    let mut read = 0u64;
    for e in store.read_all(before) {
        e?;
        read += 1;
    }
    println!(
        "read back {read} new events with read_all in {:.3}s",
        read_started.elapsed().as_secs_f64()
    );
    let total = store.head_position().map_or(0, |p| p + 1);
    drop(store);
    let reopened = Store::open_with(
        &file,
        Options {
            durability: Durability::Sync,
            ..Options::default()
        },
    )?;
    println!(
        "reopened: {} events, {} streams, head position {}",
        total,
        reopened.stats().streams,
        reopened
            .head_position()
            .map_or("none".to_string(), |p| p.to_string())
    );
    if reopened.head_position().map_or(0, |p| p + 1) != total {
        return Err(crate::Error::InvalidInput(
            "event count changed across reopen".into(),
        ));
    }
    Ok(())
}
