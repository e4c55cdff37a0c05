//! `evstore copy SRC DST`: every event of SRC into DST with the same ids, streams, versions,
//! positions, timestamps, data and metadata. Each side is a log file path or a `postgres://`
//! URL. Resumable: a destination that holds a prefix of the source continues after it.

use std::io::Write;
use std::path::Path;

use clap::Args;
use evstore::{Options, RecordedEvent, Store};
use evstore_postgres::{is_postgres_url, PgStore};

use crate::{check_log_path, line, open_with, CliError, CliResult};

/// Events read and written per transaction.
const PAGE: usize = 1_000;

pub const COPY_HELP: &str = "\
Examples:
  evstore copy shop.evs postgres://app@%2Frun%2Fpostgresql/shop
  evstore copy postgres://app@db.internal/shop postgres://app@%2Ftmp/shop_copy

Each side is a log file or a postgres:// (postgresql://) URL; a Unix socket directory goes in
the host, percent-encoded; a schema other than public is named with
?options=-csearch_path%3Dname. Events keep their ids, streams, versions, positions, timestamps,
data and metadata. The destination may be empty or hold a prefix of the source (an earlier,
interrupted copy): it is checked event by event and the copy resumes after it; anything else
is refused. Each page of 1000 events is one transaction (into a log file: appended, then
flushed), so an interruption loses nothing and duplicates nothing. A log file destination is
created if missing (64 MiB segments) and must not be open in another process.";

/// Arguments of `evstore copy`.
#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The source: a log file (opened read-only) or a postgres:// URL.
    pub src: String,
    /// The destination: a log file (created if missing) or a postgres:// URL.
    pub dst: String,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// One side of a copy: a log file or a PostgreSQL store.
enum Side {
    File(Box<Store>),
    Pg(Box<PgStore>),
}

impl Side {
    /// The source: a URL, or an existing log file opened read-only.
    fn source(s: &str) -> CliResult<Side> {
        if is_postgres_url(s) {
            return Ok(Side::Pg(Box::new(connect(s)?)));
        }
        let path = Path::new(s);
        check_log_path(path)?;
        let store = open_with(
            path,
            Options {
                read_only: true,
                ..Options::default()
            },
        )?;
        Ok(Side::File(Box::new(store)))
    }

    /// The destination: a URL, or a log file (created if missing).
    fn destination(s: &str) -> CliResult<Side> {
        if is_postgres_url(s) {
            return Ok(Side::Pg(Box::new(connect(s)?)));
        }
        // Buffered: each page is flushed once (`Side::import`), not each append.
        let store = open_with(
            Path::new(s),
            Options {
                durability: evstore::Durability::Buffered,
                ..Options::default()
            },
        )?;
        Ok(Side::File(Box::new(store)))
    }

    fn head(&self) -> CliResult<Option<u64>> {
        Ok(match self {
            Side::File(s) => s.head_position(),
            Side::Pg(s) => s.head_position()?,
        })
    }

    fn page(&self, from: u64, max: usize) -> CliResult<Vec<RecordedEvent>> {
        Ok(match self {
            Side::File(s) => s.read_all(from).take(max).collect::<evstore::Result<_>>()?,
            Side::Pg(s) => s.read_all_from(from, max)?,
        })
    }

    /// Import one page into a destination, durably.
    fn import(&self, page: &[RecordedEvent]) -> CliResult<()> {
        match self {
            Side::File(s) => {
                s.import(page)?;
                s.flush()?;
            }
            Side::Pg(s) => s.import(page)?,
        }
        Ok(())
    }
}

/// Connect to `url`, naming it in the error.
pub(crate) fn connect(url: &str) -> CliResult<PgStore> {
    PgStore::connect(url).map_err(|e| CliError::msg(format!("cannot connect to {url}: {e}")))
}

/// Run `evstore copy`.
pub fn run(args: &CopyArgs, out: &mut dyn Write) -> CliResult<()> {
    if !is_postgres_url(&args.dst) {
        check_log_path(Path::new(&args.dst)).or_else(|e| {
            if Path::new(&args.dst).exists() {
                Err(e)
            } else {
                Ok(()) // created by the copy
            }
        })?;
    }
    let src = Side::source(&args.src)?;
    let dst = Side::destination(&args.dst)?;
    let Some(src_head) = src.head()? else {
        return line(out, format!("{}: no events; nothing to copy", args.src));
    };
    let total = src_head + 1;
    let pb = progress_bar(total, args.quiet);
    let start = check_prefix(&src, &dst, &pb)?;
    pb.set_position(start);
    let mut next = start;
    // Bounded by the source's head when the copy started.
    while next < total {
        let want = usize::try_from(total - next).map_or(PAGE, |n| n.min(PAGE));
        let page = src.page(next, want)?;
        if page.is_empty() {
            break;
        }
        dst.import(&page)?;
        next += page.len() as u64;
        pb.set_position(next);
    }
    pb.finish_and_clear();
    line(
        out,
        format!(
            "copied {} events (positions {start}..{}) from {} to {}; the destination holds {next}",
            next - start,
            next.saturating_sub(1),
            args.src,
            args.dst
        ),
    )
}

/// The destination's events must be the source's first events, field by field: returns how
/// many there are (where the copy resumes).
fn check_prefix(src: &Side, dst: &Side, pb: &indicatif::ProgressBar) -> CliResult<u64> {
    let Some(dst_head) = dst.head()? else {
        return Ok(0);
    };
    let n = dst_head + 1;
    pb.set_message("checking the destination");
    let mut at = 0;
    // Bounded by the destination's head.
    while at < n {
        let want = usize::try_from(n - at).map_or(PAGE, |k| k.min(PAGE));
        let theirs = dst.page(at, want)?;
        let ours = src.page(at, want)?;
        for (i, d) in theirs.iter().enumerate() {
            match ours.get(i) {
                Some(s) if s == d => {}
                Some(_) => {
                    return Err(CliError::msg(format!(
                        "the destination is not a copy of the source: they differ at position {}; refusing to copy into it",
                        d.position
                    )))
                }
                None => {
                    return Err(CliError::msg(format!(
                        "the destination holds more events than the source ({n}); refusing to copy into it"
                    )))
                }
            }
        }
        if theirs.is_empty() {
            break;
        }
        at += theirs.len() as u64;
        pb.set_position(at);
    }
    pb.set_message("copying");
    Ok(n)
}

/// An event progress bar on stderr (hidden with `--quiet`).
fn progress_bar(total: u64, quiet: bool) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    let pb = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg} [{wide_bar}] {pos}/{len} events ({per_sec})")
    {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message("copying");
    pb
}
