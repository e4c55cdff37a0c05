//! `evstore backup SRC DST`: a consistent, verified copy of a store file
//! ([`Store::backup_to`](evstore::Store::backup_to)).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use evstore::BackupReport;

use crate::json::Json;
use crate::text::{bytes, group};
use crate::{json_line, line, open_read_only, CliResult};

pub const BACKUP_HELP: &str = "\
Copies every event of SRC, and its snapshot sidecar (SRC.snap) if there is one, to DST: a
temporary file beside DST is written, fsynced and verified clean, then renamed over DST, so
DST is never a partial copy. The copy opens anywhere with the same events.

SRC is opened read-only, so this works while an application has the store open: it copies
everything that application made durable, without pausing its appends. (From inside the
application, Store::backup_to does the same.) Never copy a log with cp or rsync while a
store writes it: the copy can be refused as corrupt or be silently cut short. Shows a progress bar when stdout is a terminal. --json prints one JSON
document.

Example:
  evstore backup shop.evs /backups/shop-$(date +%F).evs";

/// `evstore backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The store's log file.
    src: PathBuf,
    /// Where the copy goes (replaced if it exists; its directory must exist).
    dst: PathBuf,
    /// Print one JSON document.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &BackupArgs, out: &mut dyn Write) -> CliResult<()> {
    let store = open_read_only(&args.src)?;
    let bar = std::io::stdout().is_terminal().then(progress_bar);
    let result = store.backup_to_with(&args.dst, |copied, total| {
        if let Some(pb) = &bar {
            pb.set_length(total);
            pb.set_position(copied);
        }
    });
    if let Some(pb) = bar {
        pb.finish_and_clear();
    }
    let report = result?;
    store.close()?;
    if args.json {
        return json_line(out, &report_json(&args.src, &report));
    }
    line(out, summary(&args.src, &report))
}

/// A byte progress bar on stderr.
fn progress_bar() -> indicatif::ProgressBar {
    let pb =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("copying [{wide_bar}] {bytes}/{total_bytes}")
    {
        pb.set_style(style.progress_chars("=> "));
    }
    pb
}

/// The one-line text summary.
fn summary(src: &Path, r: &BackupReport) -> String {
    let sidecar = match r.sidecar_bytes {
        Some(n) => format!(", snapshot sidecar {}", bytes(n)),
        None => String::new(),
    };
    format!(
        "{} -> {}: {} events in {} frames, {} copied ({} file){sidecar}, verified clean in {}",
        src.display(),
        r.path.display(),
        group(r.events),
        group(r.frames),
        bytes(r.copied_bytes),
        bytes(r.file_bytes),
        millis(r.duration),
    )
}

fn millis(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn report_json(src: &Path, r: &BackupReport) -> Json {
    Json::obj([
        ("source", src.display().to_string().into()),
        ("backup", r.path.display().to_string().into()),
        ("verdict", "clean".into()),
        ("events", r.events.into()),
        ("frames", r.frames.into()),
        ("copied_bytes", r.copied_bytes.into()),
        ("file_bytes", r.file_bytes.into()),
        ("sidecar_bytes", Json::opt(r.sidecar_bytes)),
        ("append_pause_us", micros(r.append_pause).into()),
        ("duration_us", micros(r.duration).into()),
    ])
}
