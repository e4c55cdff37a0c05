//! The `evstore` command line: a log file's operator tools (`stats`, `verify`, `dump`, `tail`,
//! `repair`, `backup`), the Order domain from the shell (`orders`), the `demo` and `bench`.
//!
//! Exit codes: `0` success; `1` an error (domain rule, conflict, I/O, locked file, not a log);
//! `2` a usage error; `3` corruption (`verify`, or a command that found it on open); `4` only a
//! torn tail that opening would trim (`verify`).

mod backup;
mod bench;
mod copy;
mod demo;
mod json;
mod ops;
mod orders;
mod serve;
mod snapshots;
mod text;

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use evstore::repository::RepositoryError;
use evstore::{Durability, Error, Options, Site, Store};
use evstore_orders::{OrderError, OrderServiceError};

const EXAMPLES: &str = "\
Examples:
  evstore demo                                  run the order-service demo on ./evstore-demo.evs
  evstore orders create --user alice            create an order (prints its id)
  evstore orders add-item ID --product book --quantity 2 --price 12.50
  evstore orders show ID --json                 the order as JSON
  evstore stats evstore-demo.evs                what is in a log file
  evstore verify evstore-demo.evs               full read-only check (exit 0 clean, 3 corrupt, 4 torn tail)
  evstore dump evstore-demo.evs --type OrderCreated --limit 5
  evstore backup evstore-demo.evs copy.evs      a consistent, verified copy (never cp a live log)
  evstore bench                                 append throughput on this disk

Exit codes: 0 ok, 1 error, 2 usage, 3 corruption, 4 torn tail (verify).";

/// evstore: an embedded, crash-safe event store — tools for its log files.
#[derive(Debug, Parser)]
#[command(
    name = "evstore",
    version,
    about,
    arg_required_else_help = true,
    after_help = EXAMPLES
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a realistic order service in-process and report on it (the quick tour).
    #[command(after_help = demo::EXAMPLES)]
    Demo(demo::DemoArgs),
    /// Create, change and query orders in a store file.
    #[command(after_help = orders::EXAMPLES)]
    Orders(orders::OrdersArgs),
    /// Show what a log file (or a postgres:// store) holds: events, streams, types, times, snapshots.
    #[command(
        after_help = "Examples:\n  evstore stats evstore-demo.evs --json\n  evstore stats postgres://app@%2Ftmp/shop"
    )]
    Stats {
        /// The log file, or a postgres:// URL.
        file: PathBuf,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Check every frame of a log file (and its snapshot sidecar) without changing anything.
    #[command(after_help = ops::VERIFY_HELP)]
    Verify {
        /// The log file.
        file: PathBuf,
        /// Print one JSON document (the same exit codes).
        #[arg(long)]
        json: bool,
    },
    /// Print events, as text or JSON lines (Order events decoded).
    #[command(after_help = ops::DUMP_HELP)]
    Dump(ops::DumpArgs),
    /// Print the newest events; with --follow, keep printing new ones.
    #[command(after_help = ops::TAIL_HELP)]
    Tail(ops::TailArgs),
    /// Cut a corrupt log at the damage, after keeping a backup; reports what was lost.
    #[command(after_help = ops::REPAIR_HELP)]
    Repair {
        /// The log file.
        file: PathBuf,
    },
    /// Copy a store file (and its snapshots) to DST, consistently, verified, atomically.
    #[command(after_help = backup::BACKUP_HELP)]
    Backup(backup::BackupArgs),
    /// Copy every event (same ids, positions, times) from SRC to DST: log files or postgres:// URLs.
    #[command(after_help = copy::COPY_HELP)]
    Copy(copy::CopyArgs),
    /// Measure append throughput on this disk (a temporary file in the current directory).
    #[command(after_help = bench::EXAMPLES)]
    Bench(bench::BenchArgs),
    /// Check the Order domain's snapshots against full replays (`verify`: exit 3 if any differ).
    #[command(after_help = snapshots::EXAMPLES)]
    Snapshots(snapshots::SnapshotsArgs),
    /// Serve the store over HTTP: the order API, the store's API, live events, metrics, a web page.
    #[command(after_help = serve::EXAMPLES)]
    Serve(serve::ServeArgs),
}

/// Durability as a command-line value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DurabilityArg {
    /// Every append is durable (fdatasync, shared by concurrent appenders) before it returns.
    Sync,
    /// Appends return once written to the OS; durable at flush/close.
    Buffered,
}

impl From<DurabilityArg> for Durability {
    fn from(d: DurabilityArg) -> Durability {
        match d {
            DurabilityArg::Sync => Durability::Sync,
            DurabilityArg::Buffered => Durability::Buffered,
        }
    }
}

fn main() -> ExitCode {
    run()
}

/// Parse the command line and run it.
fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            let show_help = matches!(e.kind(), ErrorKind::InvalidSubcommand);
            let _ = e.print();
            if show_help {
                let mut cmd = <Cli as clap::CommandFactory>::command();
                eprintln!();
                let _ = cmd.write_help(&mut io::stderr());
            }
            // clap exits 0 (help, version) or 2 (usage); anything else would be a usage error.
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let result = match cli.command {
        Command::Demo(args) => demo::run(&args, &mut out).map(|()| 0),
        Command::Orders(args) => orders::run(&args, &mut out).map(|()| 0),
        Command::Stats { file, json } => ops::stats(&file, json, &mut out).map(|()| 0),
        Command::Verify { file, json } => ops::verify(&file, json, &mut out),
        Command::Dump(args) => ops::dump(&args, &mut out).map(|()| 0),
        Command::Tail(args) => ops::tail(&args, &mut out).map(|()| 0),
        Command::Repair { file } => ops::repair(&file, &mut out).map(|()| 0),
        Command::Backup(args) => backup::run(&args, &mut out).map(|()| 0),
        Command::Copy(args) => copy::run(&args, &mut out).map(|()| 0),
        Command::Bench(args) => bench::run(&args, &mut out).map(|()| 0),
        Command::Snapshots(args) => snapshots::run(&args, &mut out),
        Command::Serve(args) => serve::run(&args, &mut out).map(|()| 0),
    };
    let flushed = out.flush();
    match (result, flushed) {
        (Ok(code), Ok(())) => ExitCode::from(code),
        (Ok(_), Err(e)) => report(&CliError::from(e)),
        (Err(e), _) => report(&e),
    }
}

fn report(e: &CliError) -> ExitCode {
    if e.code != 0 && !e.message.is_empty() {
        note(&e.message);
    }
    ExitCode::from(e.code)
}

/// Print `evstore: {message}` on stderr, escaped like every text line ([`text::escape`]):
/// messages carry paths, names and library errors.
fn note(message: &str) {
    eprintln!("evstore: {}", text::escape(message));
}

/// An error to report: a one-line message and the exit code.
#[derive(Debug)]
pub(crate) struct CliError {
    code: u8,
    message: String,
}

type CliResult<T> = Result<T, CliError>;

impl CliError {
    fn new(code: u8, message: impl Into<String>) -> CliError {
        CliError {
            code,
            message: message.into(),
        }
    }

    /// An error of exit code 1.
    fn msg(message: impl Into<String>) -> CliError {
        CliError::new(1, message)
    }
}

impl From<io::Error> for CliError {
    fn from(e: io::Error) -> CliError {
        if e.kind() == io::ErrorKind::BrokenPipe {
            // `evstore dump f | head`: the reader went away; that is not an error.
            CliError::new(0, "")
        } else {
            CliError::msg(format!("I/O error: {e}"))
        }
    }
}

impl From<Error> for CliError {
    fn from(e: Error) -> CliError {
        match e {
            Error::Corruption {
                site: Site::Header { .. },
                ..
            } => CliError::new(
                3,
                format!("{e} (the file header cannot be trusted; `evstore repair` cannot salvage it)"),
            ),
            Error::Corruption { .. } => CliError::new(
                3,
                format!("{e} (run `evstore verify` for details; `evstore repair` salvages the valid prefix)"),
            ),
            Error::Io(io) if io.kind() == io::ErrorKind::BrokenPipe => CliError::new(0, ""),
            other => CliError::msg(other.to_string()),
        }
    }
}

impl From<OrderServiceError> for CliError {
    fn from(e: OrderServiceError) -> CliError {
        match e {
            RepositoryError::Store(e) => CliError::from(e),
            RepositoryError::Domain(OrderError::NotFound { order_id }) => {
                CliError::msg(format!("order {order_id:?} not found"))
            }
            other => CliError::msg(other.to_string()),
        }
    }
}

/// Open an existing store file (never create one) with a clear error for the usual mistakes.
fn open_existing(path: &Path, durability: Durability) -> CliResult<Store> {
    check_log_path(path)?;
    open_with(
        path,
        Options {
            durability,
            create_if_missing: false,
            ..Options::default()
        },
    )
}

/// Open an existing store file read-only: beside a writer in another process (what it made
/// durable) or alone; nothing written (a torn tail is skipped, not trimmed). For inspection
/// commands.
fn open_read_only(path: &Path) -> CliResult<Store> {
    check_log_path(path)?;
    let store = Store::open_with(
        path,
        Options {
            read_only: true,
            create_if_missing: false,
            ..Options::default()
        },
    )
    .map_err(|e| open_error(path, e))?;
    if let Some(t) = &store.recovery_report().trimmed {
        note(&format!(
            "note: {}: a torn tail at segment {} offset {} ({}) is skipped; the next writer will trim it",
            path.display(),
            t.segment,
            t.offset,
            t.reason
        ));
    }
    Ok(store)
}

/// Open a store file, creating it if missing.
fn open_or_create(path: &Path, durability: Durability) -> CliResult<Store> {
    if path.is_dir() {
        return Err(CliError::msg(format!(
            "{} is a directory, not an evstore log file",
            path.display()
        )));
    }
    open_with(
        path,
        Options {
            durability,
            ..Options::default()
        },
    )
}

fn open_with(path: &Path, options: Options) -> CliResult<Store> {
    let store = Store::open_with(path, options).map_err(|e| open_error(path, e))?;
    if let Some(t) = &store.recovery_report().trimmed {
        note(&format!(
            "note: {}: trimmed a torn tail at segment {} offset {} ({}); no acknowledged event was lost",
            path.display(),
            t.segment,
            t.offset,
            t.reason
        ));
    }
    Ok(store)
}

/// An error from opening `path`, naming the file.
fn open_error(path: &Path, e: Error) -> CliError {
    match e {
        Error::Io(io) => CliError::msg(format!("cannot open {}: {io}", path.display())),
        Error::Corruption {
            site: Site::Header { .. },
            ..
        } => CliError::new(
            3,
            format!(
                "{}: {e}; the store refuses to open, and `evstore repair` cannot salvage a file whose header cannot be trusted",
                path.display()
            ),
        ),
        Error::Corruption { .. } => CliError::new(
            3,
            format!(
                "{}: {e}; the store refuses to open (see `evstore verify {}`, and `evstore repair` to salvage the valid prefix)",
                path.display(),
                path.display()
            ),
        ),
        other => CliError::from(other),
    }
}

/// The file must exist, be a regular file and not be empty (an empty file would be
/// initialised as a new log by `Store::open`).
fn check_log_path(path: &Path) -> CliResult<()> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(CliError::msg(format!("{}: no such file", path.display())))
        }
        Err(e) => Err(CliError::msg(format!(
            "cannot open {}: {e}",
            path.display()
        ))),
        Ok(m) if m.is_dir() => Err(CliError::msg(format!(
            "{} is a directory, not an evstore log file",
            path.display()
        ))),
        Ok(m) if m.len() == 0 => Err(CliError::msg(format!(
            "{} is empty, not an evstore log file",
            path.display()
        ))),
        Ok(_) => Ok(()),
    }
}

/// Write one line of text for a person. Control and other non-printing characters in it are
/// escaped ([`text::escape`]), so nothing taken from a file or the command line (stream ids,
/// event types, payloads, ids, paths, error messages) can break the line or drive the terminal.
fn line(out: &mut dyn Write, text: impl AsRef<str>) -> CliResult<()> {
    out.write_all(text::escape(text.as_ref()).as_bytes())?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Write one JSON document as a line (`--json` output: valid JSON, not escaped again).
fn json_line(out: &mut dyn Write, doc: &json::Json) -> CliResult<()> {
    out.write_all(doc.render().as_bytes())?;
    out.write_all(b"\n")?;
    Ok(())
}
