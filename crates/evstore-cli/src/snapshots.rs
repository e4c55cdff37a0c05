//! `evstore snapshots verify FILE`: compare every Order snapshot with a full replay of its
//! stream (the Order domain's aggregate and upcasters), through
//! [`Repository::verify_snapshots`].

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};

use crate::{line, open_existing, CliResult};
use evstore::repository::{Repository, SnapshotVerdict};
use evstore::snapshot::IgnoredReason;
use evstore::Durability;
use evstore_orders::{upcasters, Order, OrderEvent};

/// Order ids checked per library call (bounds the ids held at once).
const ID_PAGE: usize = 512;

pub const EXAMPLES: &str = "\
Examples:
  evstore snapshots verify evstore-demo.evs     exit 0: every snapshot equals a replay; 3: some differ

Knows the Order domain only (the flagship example): snapshots of other aggregate types are counted
and reported as not checked; check your own aggregates with Repository::verify_snapshots.
Opens the file read-write (the snapshot sidecar is only read by a writer): stop the application
first. Nothing is written.";

/// `evstore snapshots`.
#[derive(Debug, Args)]
pub struct SnapshotsArgs {
    #[command(subcommand)]
    command: SnapshotsCommand,
}

#[derive(Debug, Subcommand)]
enum SnapshotsCommand {
    /// Replay every order that has a snapshot and report those whose snapshot state differs
    /// from the replay (exit 3 if any, 0 if none).
    Verify {
        /// The log file.
        file: PathBuf,
    },
}

/// Counts of one verification.
#[derive(Debug, Default)]
struct Tally {
    orders: u64,
    agree: u64,
    differ: u64,
    unusable: u64,
}

/// Run `evstore snapshots ...`; the exit code.
pub fn run(args: &SnapshotsArgs, out: &mut dyn Write) -> CliResult<u8> {
    let SnapshotsCommand::Verify { file } = &args.command;
    let store = Arc::new(open_existing(file, Durability::Sync)?);
    let repo: Repository<Order, _> =
        Repository::new(store.clone()).with_upcasters(Arc::new(upcasters()));
    let live_before = store.snapshot_stats()?.live;
    let mut tally = Tally::default();
    let mut from = 0;
    loop {
        let page = store.read_by_type_from(OrderEvent::ORDER_CREATED, from, ID_PAGE)?;
        let ids: Vec<&str> = page
            .iter()
            .filter_map(|e| e.stream_id.strip_prefix("Order-"))
            .collect();
        for check in repo.verify_snapshots(ids.iter().copied())? {
            tally.orders += 1;
            match check.verdict {
                SnapshotVerdict::NoSnapshot => {}
                SnapshotVerdict::Agrees { .. } => tally.agree += 1,
                SnapshotVerdict::Differs { version } => {
                    tally.differ += 1;
                    line(
                        out,
                        format!(
                            "differs   order {}: the snapshot at version {version} is not what \
                             a replay of its events gives",
                            check.id
                        ),
                    )?;
                }
                SnapshotVerdict::Unusable { version, reason } => {
                    tally.unusable += 1;
                    let why = match reason {
                        IgnoredReason::OtherUpcasters => "built under other upcasters",
                        _ => "does not decode",
                    };
                    line(
                        out,
                        format!(
                            "unusable  order {}: the snapshot at version {version} {why}; loads \
                             replay instead",
                            check.id
                        ),
                    )?;
                }
            }
        }
        match page.last() {
            Some(last) if page.len() == ID_PAGE => from = last.position + 1,
            _ => break,
        }
    }
    line(
        out,
        format!(
            "{} orders, {} snapshots: {} agree with a replay, {} differ, {} unusable",
            tally.orders,
            tally.agree + tally.differ + tally.unusable,
            tally.agree,
            tally.differ,
            tally.unusable
        ),
    )?;
    let others = live_before.saturating_sub(tally.agree + tally.differ + tally.unusable);
    if others > 0 {
        line(
            out,
            format!(
                "{others} snapshots of other aggregate types were not checked: this command knows \
                 the Order domain only (use Repository::verify_snapshots for your aggregates)"
            ),
        )?;
    }
    Ok(if tally.differ > 0 { 3 } else { 0 })
}
