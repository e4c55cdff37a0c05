//! Operator commands: `stats`, `verify`, `dump`, `tail`, `repair`.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use crate::json::Json;
use crate::text::{bytes, group, time, EventDecoder};
use crate::{check_log_path, json_line, line, open_error, open_read_only, CliError, CliResult};
use evstore::maintenance::{self, SidecarReport, Verdict, VerifyReport};
use evstore::{Error, RecordedEvent, Site, Store};

pub const VERIFY_HELP: &str = "\
Reads the whole file and changes nothing (the snapshot sidecar is only read); it never keeps
an application from opening the store. On a store an application has open right now it checks
every frame that application made durable and says \"clean (live)\" (frames being written are
not checked). Every figure comes from the one pass: for a torn tail or corruption, the frames,
events and streams before it. Shows a progress bar when stdout is a terminal. --json prints one JSON
document with the same fields.

Exit codes: 0 clean; 3 corruption (where, and what is wrong); 4 only a torn tail, which the
next open trims (no acknowledged event is lost); 1 the file cannot be read, is not an
evstore log, or is being repaired.

Example:
  evstore verify evstore-demo.evs && echo ok
  evstore verify evstore-demo.evs --json | jq .verdict";

pub const DUMP_HELP: &str = "\
Order events are decoded into their fields (older schemas upcast); other events show their
payload as JSON when it describes itself (events written through a repository: MessagePack or
JSON; raw JSON payloads), else in base64. Opens the store read-only, so it also works while an
application has it open (it shows what that application made durable). FILE may also be a
postgres:// URL (the PostgreSQL backend).

Examples:
  evstore dump evstore-demo.evs --limit 20
  evstore dump evstore-demo.evs --stream Order-3f2a... --json
  evstore dump evstore-demo.evs --type OrderCancelled --from 1000 --json | jq .data.reason";

pub const TAIL_HELP: &str = "\
Works on a live store: with --follow it prints events as the application that has the store
open appends them, from another terminal (a read-only reader: it never blocks the writer).
It shows what the writer made durable: every append of a Sync store at once, a Buffered
store's appends once the application flushes. Stop it with Ctrl-C.

Examples:
  evstore tail evstore-demo.evs -n 20
  evstore tail evstore-demo.evs --follow --json";

pub const REPAIR_HELP: &str = "\
Only a log that `evstore verify` reports as corrupt (exit 3) is changed: it is copied to
FILE.bak-<UTC time> first, then cut at the damaged frame. Every frame before the damage is
kept; the frames after it are listed (stream and versions) because they are gone. A clean log
or one with only a torn tail is left as it is.

Example:
  evstore verify shop.evs || evstore repair shop.evs";

#[derive(Debug, Args)]
pub struct DumpArgs {
    /// The log file, or a postgres:// URL.
    file: PathBuf,
    /// Only this stream.
    #[arg(long)]
    stream: Option<String>,
    /// Only this event type.
    #[arg(long = "type", value_name = "TYPE")]
    event_type: Option<String>,
    /// Start at this global position.
    #[arg(long, default_value_t = 0, value_name = "POSITION")]
    from: u64,
    /// Print at most N events.
    #[arg(long, value_name = "N")]
    limit: Option<u64>,
    /// Print JSON lines (one object per event).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct TailArgs {
    /// The log file.
    file: PathBuf,
    /// How many of the newest events to print.
    #[arg(short = 'n', long = "lines", default_value_t = 10, value_name = "N")]
    count: u64,
    /// Keep printing new events as they are appended, by this or another process.
    #[arg(short, long)]
    follow: bool,
    /// Print JSON lines.
    #[arg(long)]
    json: bool,
}

// ---------------------------------------------------------------------------------------------
// stats

pub fn stats(file: &Path, json: bool, out: &mut dyn Write) -> CliResult<()> {
    if let Some(url) = file
        .to_str()
        .filter(|s| evstore_postgres::is_postgres_url(s))
    {
        return pg_stats(url, json, out);
    }
    let store = open_read_only(file)?;
    let st = store.stats();
    let file_bytes = std::fs::metadata(file).map_or(0, |m| m.len());
    let segment_size = store.options().segment_size;
    let head = store.head_position();
    let first = first_event(&store, 0)?;
    let last = match head {
        Some(h) => first_event(&store, h)?,
        None => None,
    };
    let types = store.event_types();
    let sidecar = evstore::maintenance::inspect_sidecar(file)?;
    if json {
        let doc = Json::obj([
            ("file", file.display().to_string().into()),
            ("file_bytes", file_bytes.into()),
            ("format_version", u64::from(store.format_version()).into()),
            ("segment_size", segment_size.into()),
            ("segments", st.segments.into()),
            ("events", st.events.into()),
            ("streams", st.streams.into()),
            ("head_position", Json::opt(head)),
            ("tags", st.tags.into()),
            ("tag_occurrences", st.tag_occurrences.into()),
            ("tag_index_bytes", st.tag_index_bytes.into()),
            (
                "first_recorded_at",
                Json::opt(first.as_ref().map(|e| time(e.recorded_at))),
            ),
            (
                "last_recorded_at",
                Json::opt(last.as_ref().map(|e| time(e.recorded_at))),
            ),
            (
                "event_types",
                Json::obj(types.iter().map(|(t, n)| (t.clone(), Json::UInt(*n)))),
            ),
            ("sidecar", sidecar.as_ref().map_or(Json::Null, sidecar_json)),
        ]);
        return json_line(out, &doc);
    }
    line(out, format!("file           {}", file.display()))?;
    line(
        out,
        format!(
            "size           {} ({} bytes), {} segment{} of {}",
            bytes(file_bytes),
            group(file_bytes),
            st.segments,
            if st.segments == 1 { "" } else { "s" },
            bytes(segment_size)
        ),
    )?;
    line(
        out,
        format!("format         version {}", store.format_version()),
    )?;
    line(out, format!("events         {}", group(st.events)))?;
    line(out, format!("streams        {}", group(st.streams)))?;
    line(
        out,
        format!(
            "head position  {}",
            head.map_or("none (empty store)".into(), |h| h.to_string())
        ),
    )?;
    line(out, tags_line(&st))?;
    if let (Some(f), Some(l)) = (&first, &last) {
        line(out, format!("first event    {}", time(f.recorded_at)))?;
        line(out, format!("last event     {}", time(l.recorded_at)))?;
    }
    if !types.is_empty() {
        line(out, "event types")?;
        let width = types.iter().map(|(t, _)| t.len()).max().unwrap_or(0);
        for (t, n) in &types {
            line(out, format!("  {t:<width$}  {:>12}", group(*n)))?;
        }
    }
    match &sidecar {
        None => line(out, "snapshots      none (no sidecar file)"),
        Some(s) => line(
            out,
            format!(
                "snapshots      {}: {}, {} live snapshot{}, {} damaged record{}",
                s.path.display(),
                bytes(s.bytes),
                group(s.live_snapshots),
                if s.live_snapshots == 1 { "" } else { "s" },
                s.corrupt_records,
                if s.corrupt_records == 1 { "" } else { "s" }
            ),
        ),
    }
}

/// The `tags` line of `evstore stats`: distinct tags, their occurrences on events, and the
/// heap bytes of the tag index (`StoreStats::{tags, tag_occurrences, tag_index_bytes}`).
fn tags_line(st: &evstore::StoreStats) -> String {
    if st.tags == 0 {
        return "tags           none".to_string();
    }
    format!(
        "tags           {} distinct, {} on events, index {} ({} bytes)",
        group(st.tags),
        group(st.tag_occurrences),
        bytes(st.tag_index_bytes),
        group(st.tag_index_bytes)
    )
}

/// `evstore stats postgres://…`: the same report for a PostgreSQL store (table size instead of
/// file and segments; snapshots counted in their table).
fn pg_stats(url: &str, json: bool, out: &mut dyn Write) -> CliResult<()> {
    let store = crate::copy::connect(url)?;
    let st = store.stats()?;
    let head = store.head_position()?;
    if json {
        let doc = Json::obj([
            ("database", store.schema().into()),
            (
                "schema_version",
                u64::try_from(st.schema_version).unwrap_or(0).into(),
            ),
            ("table_bytes", st.table_bytes.into()),
            ("events", st.events.into()),
            ("streams", st.streams.into()),
            ("head_position", Json::opt(head)),
            ("tags", st.tags.into()),
            ("tag_occurrences", st.tag_occurrences.into()),
            ("tag_table_bytes", st.tag_table_bytes.into()),
            (
                "first_recorded_at",
                Json::opt(st.first_recorded_at.map(time)),
            ),
            ("last_recorded_at", Json::opt(st.last_recorded_at.map(time))),
            (
                "event_types",
                Json::obj(
                    st.event_types
                        .iter()
                        .map(|(t, n)| (t.clone(), Json::UInt(*n))),
                ),
            ),
            ("snapshots", st.snapshots.into()),
        ]);
        return json_line(out, &doc);
    }
    line(
        out,
        format!(
            "database       PostgreSQL, schema {} (version {})",
            st.schema, st.schema_version
        ),
    )?;
    line(
        out,
        format!(
            "size           {} ({} bytes) in evstore_events",
            bytes(st.table_bytes),
            group(st.table_bytes)
        ),
    )?;
    line(out, format!("events         {}", group(st.events)))?;
    line(out, format!("streams        {}", group(st.streams)))?;
    line(
        out,
        format!(
            "head position  {}",
            head.map_or("none (empty store)".into(), |h| h.to_string())
        ),
    )?;
    if st.tags == 0 {
        line(out, "tags           none")?;
    } else {
        line(
            out,
            format!(
                "tags           {} distinct, {} on events, index table {} ({} bytes)",
                group(st.tags),
                group(st.tag_occurrences),
                bytes(st.tag_table_bytes),
                group(st.tag_table_bytes)
            ),
        )?;
    }
    if let (Some(f), Some(l)) = (st.first_recorded_at, st.last_recorded_at) {
        line(out, format!("first event    {}", time(f)))?;
        line(out, format!("last event     {}", time(l)))?;
    }
    if !st.event_types.is_empty() {
        line(out, "event types")?;
        let width = st
            .event_types
            .iter()
            .map(|(t, _)| t.len())
            .max()
            .unwrap_or(0);
        for (t, n) in &st.event_types {
            line(out, format!("  {t:<width$}  {:>12}", group(*n)))?;
        }
    }
    line(
        out,
        format!(
            "snapshots      {} in evstore_snapshots",
            group(st.snapshots)
        ),
    )
}

fn first_event(store: &Store, from: u64) -> CliResult<Option<RecordedEvent>> {
    Ok(store.read_all(from).next().transpose()?)
}

// ---------------------------------------------------------------------------------------------
// verify

pub fn verify(file: &Path, json: bool, out: &mut dyn Write) -> CliResult<u8> {
    check_log_path(file)?;
    let terminal = std::io::stdout().is_terminal();
    if terminal {
        warm_with_progress(file);
    }
    let spinner = terminal.then(|| {
        let pb = indicatif::ProgressBar::new_spinner();
        pb.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        pb.set_message(
            crate::text::escape(&format!("checking frames of {}", file.display())).into_owned(),
        );
        pb.enable_steady_tick(Duration::from_millis(100));
        pb
    });
    let result = maintenance::verify(file);
    if let Some(pb) = spinner {
        pb.finish_and_clear();
    }
    let report = match result {
        Ok(r) => r,
        Err(Error::Corruption { site, what }) => {
            // Damage before any frame could be read (the file header).
            if json {
                json_line(
                    out,
                    &Json::obj([
                        ("file", file.display().to_string().into()),
                        ("verdict", "corrupt".into()),
                        ("segment", Json::opt(site.segment())),
                        ("offset", site.offset().into()),
                        ("what", what.into()),
                        ("frames", 0u64.into()),
                        ("events", 0u64.into()),
                        ("streams", 0u64.into()),
                    ]),
                )?;
                return Ok(3);
            }
            line(
                out,
                format!("{}: CORRUPT at {}: {what}", file.display(), place(&site)),
            )?;
            line(
                out,
                "The store refuses to open this file; its header cannot be trusted, so `evstore repair` cannot salvage it either.",
            )?;
            return Ok(3);
        }
        Err(e) => return Err(open_error(file, e)),
    };
    if json {
        json_line(out, &verify_json(file, &report))?;
        return Ok(verify_code(&report.verdict));
    }
    print_verify(file, &report, out)
}

/// Where damage is, as `verify` prints it: "segment K offset N", or "the file header (offset
/// N)".
pub(crate) fn place(site: &Site) -> String {
    match site.segment() {
        Some(s) => format!("segment {s} offset {}", site.offset()),
        None => format!("the file header (offset {})", site.offset()),
    }
}

/// The exit code of a verdict (see `VERIFY_HELP`).
fn verify_code(verdict: &Verdict) -> u8 {
    match verdict {
        Verdict::Clean => 0,
        Verdict::TornTail { .. } => 4,
        Verdict::Corrupt { .. } => 3,
    }
}

/// The `verify --json` document: every field of the report.
fn verify_json(file: &Path, r: &VerifyReport) -> Json {
    let mut pairs: Vec<(String, Json)> = vec![("file".into(), file.display().to_string().into())];
    match &r.verdict {
        Verdict::Clean => pairs.push(("verdict".into(), "clean".into())),
        Verdict::TornTail {
            segment,
            offset,
            reason,
        } => pairs.extend([
            ("verdict".into(), "torn_tail".into()),
            ("segment".into(), (*segment).into()),
            ("offset".into(), (*offset).into()),
            ("reason".into(), reason.as_str().into()),
        ]),
        Verdict::Corrupt { site, what } => pairs.extend([
            ("verdict".into(), "corrupt".into()),
            ("segment".into(), Json::opt(site.segment())),
            ("offset".into(), site.offset().into()),
            ("what".into(), what.as_str().into()),
        ]),
    }
    pairs.extend([
        ("live".into(), r.live.into()),
        ("frames".into(), r.frames.into()),
        ("events".into(), r.events.into()),
        ("streams".into(), r.streams.into()),
        ("segments".into(), r.segments.into()),
        ("segment_size".into(), r.segment_size.into()),
        ("file_bytes".into(), r.file_bytes.into()),
        (
            "sidecar".into(),
            r.sidecar.as_ref().map_or(Json::Null, sidecar_json),
        ),
    ]);
    Json::Obj(pairs)
}

fn sidecar_json(s: &SidecarReport) -> Json {
    Json::obj([
        ("path", s.path.display().to_string().into()),
        ("bytes", s.bytes.into()),
        ("live_snapshots", s.live_snapshots.into()),
        ("corrupt_records", s.corrupt_records.into()),
        ("reset", s.reset.into()),
    ])
}

/// Read the file once with a byte progress bar (this also warms the page cache for the
/// checking pass, which has no progress hook of its own). A read error just ends it early:
/// the checking pass reports it.
fn warm_with_progress(file: &Path) {
    let Ok(mut f) = std::fs::File::open(file) else {
        return; // verify reports the error itself
    };
    let len = f.metadata().map_or(0, |m| m.len());
    let pb = indicatif::ProgressBar::with_draw_target(
        Some(len),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("reading {msg} [{wide_bar}] {bytes}/{total_bytes}")
    {
        pb.set_style(style.progress_chars("=> "));
    }
    let name = file.file_name().map_or_else(
        || file.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    pb.set_message(crate::text::escape(&name).into_owned());
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match f.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => pb.inc(n as u64),
        }
    }
    pb.finish_and_clear();
}

fn print_verify(file: &Path, r: &VerifyReport, out: &mut dyn Write) -> CliResult<u8> {
    let summary = format!(
        "{} event{} in {} frame{}, {} stream{}, {} segment{} of {}, {} bytes",
        group(r.events),
        if r.events == 1 { "" } else { "s" },
        group(r.frames),
        if r.frames == 1 { "" } else { "s" },
        group(r.streams),
        if r.streams == 1 { "" } else { "s" },
        r.segments,
        if r.segments == 1 { "" } else { "s" },
        bytes(r.segment_size),
        group(r.file_bytes)
    );
    let code = match &r.verdict {
        Verdict::Clean if r.live => {
            line(out, format!("{}: clean (live): {summary}", file.display()))?;
            line(
                out,
                "  A writer has the file open: checked every frame it made durable; frames being \
                 written after them are not checked.",
            )?;
            0
        }
        Verdict::Clean => {
            line(out, format!("{}: clean: {summary}", file.display()))?;
            0
        }
        Verdict::TornTail {
            segment,
            offset,
            reason,
        } => {
            line(
                out,
                format!(
                    "{}: TORN TAIL at segment {segment} offset {offset}: {reason}",
                    file.display()
                ),
            )?;
            line(out, format!("  before it: {summary}"))?;
            line(
                out,
                "  The bytes after the last valid frame were never made durable (an interrupted write). \
                 The next open trims them; no acknowledged event is lost.",
            )?;
            4
        }
        Verdict::Corrupt { site, what } => {
            line(
                out,
                format!("{}: CORRUPT at {}: {what}", file.display(), place(site)),
            )?;
            line(out, format!("  valid before the damage: {summary}"))?;
            line(
                out,
                "  The log proves these bytes were durable, so this is damage, not a torn write: the store refuses to open.",
            )?;
            line(
                out,
                format!(
                    "  `evstore repair {}` keeps a backup and cuts the log at the damage (reporting what is lost).",
                    file.display()
                ),
            )?;
            3
        }
    };
    if let Some(s) = &r.sidecar {
        let health = if s.reset {
            "unusable header (it will be reset on open; snapshots are a cache)".to_string()
        } else if s.corrupt_records > 0 {
            format!(
                "{} damaged record{} (cut on open; snapshots are a cache, the log is not affected)",
                s.corrupt_records,
                if s.corrupt_records == 1 { "" } else { "s" }
            )
        } else {
            "ok".to_string()
        };
        line(
            out,
            format!(
                "snapshots: {}: {}, {} live snapshot{}, {health}",
                s.path.display(),
                bytes(s.bytes),
                group(s.live_snapshots),
                if s.live_snapshots == 1 { "" } else { "s" },
            ),
        )?;
    }
    Ok(code)
}

// ---------------------------------------------------------------------------------------------
// dump and tail

/// Events read at a time by `dump --stream` (bounds its memory).
const PAGE: u64 = 512;
/// Events of one type `dump --type` reads at a time.
const TYPE_PAGE: usize = 512;

pub fn dump(args: &DumpArgs, out: &mut dyn Write) -> CliResult<()> {
    if let Some(url) = args
        .file
        .to_str()
        .filter(|s| evstore_postgres::is_postgres_url(s))
    {
        return pg_dump(url, args, out);
    }
    let store = open_read_only(&args.file)?;
    let decoder = EventDecoder::new(&store);
    let limit = args.limit.unwrap_or(u64::MAX);
    let mut printed = 0u64;
    let mut out = std::io::BufWriter::new(out);
    let mut emit = |e: &RecordedEvent, out: &mut dyn Write| -> CliResult<bool> {
        if printed >= limit {
            return Ok(false);
        }
        if args.json {
            json_line(out, &decoder.json(e))?;
        } else {
            line(out, decoder.line(e))?;
        }
        printed += 1;
        Ok(true)
    };
    match (&args.stream, &args.event_type) {
        (Some(stream), ty) => {
            // Streamed a page of versions at a time: `--limit` stops early, and memory stays
            // bounded by the page, not the stream.
            let mut from_version = 0u64;
            'pages: loop {
                let page = store.read_stream_range(stream, from_version, from_version + PAGE)?;
                for e in &page {
                    if e.position >= args.from
                        && ty.as_ref().is_none_or(|t| *t == e.event_type)
                        && !emit(e, &mut out)?
                    {
                        break 'pages;
                    }
                }
                if (page.len() as u64) < PAGE {
                    break;
                }
                from_version += PAGE;
            }
        }
        (None, Some(ty)) => {
            // A page of the type's positions at a time, like `--stream`: `--limit` stops
            // early and memory is bounded by the page, not by the type's events.
            let mut from = args.from;
            'type_pages: loop {
                let page = store.read_by_type_from(ty, from, TYPE_PAGE)?;
                for e in &page {
                    if !emit(e, &mut out)? {
                        break 'type_pages;
                    }
                }
                match page.last() {
                    Some(last) if page.len() == TYPE_PAGE => from = last.position + 1,
                    _ => break,
                }
            }
        }
        (None, None) => {
            for e in store.read_all(args.from) {
                if !emit(&e?, &mut out)? {
                    break;
                }
            }
        }
    }
    out.flush()?;
    if let Some(ty) = &args.event_type {
        if !store.event_types().iter().any(|(name, _)| name == ty) {
            // Not an error (an empty result is an answer), but say why nothing was printed.
            eprintln!(
                "evstore: no events of type {:?} in {} (evstore stats lists the types)",
                crate::text::escape(ty),
                crate::text::escape(&args.file.display().to_string())
            );
        }
    }
    Ok(())
}

/// `evstore dump` of a PostgreSQL store: the same filters and output, reading the global log
/// (or the stream) a page at a time.
fn pg_dump(url: &str, args: &DumpArgs, out: &mut dyn Write) -> CliResult<()> {
    let store = crate::copy::connect(url)?;
    let decoder = EventDecoder::new(&store);
    let limit = args.limit.unwrap_or(u64::MAX);
    let mut printed = 0u64;
    let mut out = std::io::BufWriter::new(out);
    let wanted = |e: &RecordedEvent| {
        e.position >= args.from
            && args.stream.as_ref().is_none_or(|s| *s == e.stream_id)
            && args.event_type.as_ref().is_none_or(|t| *t == e.event_type)
    };
    let mut from = args.from;
    let mut from_version = 0u64;
    // Bounded by the log (or the stream): every page moves on, an empty one ends it.
    while printed < limit {
        let page = if let Some(stream) = &args.stream {
            let p = store.read_stream_range(stream, from_version, from_version + PAGE)?;
            from_version += PAGE;
            p
        } else {
            let p = store.read_all_from(from, TYPE_PAGE)?;
            from = p.last().map_or(from, |e| e.position + 1);
            p
        };
        for e in page.iter().filter(|e| wanted(e)) {
            if printed >= limit {
                break;
            }
            if args.json {
                json_line(&mut out, &decoder.json(e))?;
            } else {
                line(&mut out, decoder.line(e))?;
            }
            printed += 1;
        }
        let full = match &args.stream {
            Some(_) => page.len() as u64 == PAGE,
            None => page.len() == TYPE_PAGE,
        };
        if !full {
            break;
        }
    }
    out.flush()?;
    Ok(())
}

pub fn tail(args: &TailArgs, out: &mut dyn Write) -> CliResult<()> {
    // Read-only: it follows a writer in another process (docs/FORMAT.md §10).
    let store = open_read_only(&args.file)?;
    let decoder = EventDecoder::new(&store);
    let print = |e: &RecordedEvent, out: &mut dyn Write| -> CliResult<()> {
        if args.json {
            json_line(out, &decoder.json(e))
        } else {
            line(out, decoder.line(e))
        }
    };
    let end = store.head_position().map_or(0, |h| h + 1);
    let mut next = end.saturating_sub(args.count);
    for e in store.read_all(next) {
        let e = e?;
        next = e.position + 1;
        print(&e, out)?;
    }
    out.flush()?;
    if !args.follow {
        return Ok(());
    }
    loop {
        if store.wait_for_position(next, Duration::from_millis(500)) {
            for e in store.read_all(next) {
                let e = e?;
                next = e.position + 1;
                print(&e, out)?;
            }
            out.flush()?;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// repair

pub fn repair(file: &Path, out: &mut dyn Write) -> CliResult<()> {
    check_log_path(file)?;
    let report = match maintenance::repair(file) {
        Ok(r) => r,
        Err(Error::Corruption {
            site: Site::Header { .. },
            ..
        }) => {
            return Err(CliError::new(
                3,
                format!(
                    "{}: the file header is damaged; repair cannot tell where frames are, nothing was changed",
                    file.display()
                ),
            ))
        }
        Err(e) => return Err(open_error(file, e)),
    };
    if report.backup.as_os_str().is_empty() {
        return line(
            out,
            format!(
                "{}: nothing to repair ({} events; no corruption). A torn tail, if any, is trimmed by the next open.",
                file.display(),
                group(report.events_kept)
            ),
        );
    }
    line(out, format!("backup: {}", report.backup.display()))?;
    line(
        out,
        format!(
            "{}: cut at segment {} offset {}; kept {} events (positions 0..{})",
            file.display(),
            report.cut_segment,
            report.cut_offset,
            group(report.events_kept),
            report.events_kept
        ),
    )?;
    if report.damaged_frame_unreadable {
        line(
            out,
            "lost: the damaged frame itself (unreadable: its streams and events are unknown)",
        )?;
    }
    let lost_events: u64 = report
        .lost_frames
        .iter()
        .flat_map(|f| f.appends.iter())
        .map(|(_, _, n)| u64::from(*n))
        .sum();
    if report.lost_frames.is_empty() {
        line(out, "lost: no readable frames after the damage")?;
    } else {
        line(
            out,
            format!(
                "lost: {} readable frame{} after the damage, {} event{}:",
                report.lost_frames.len(),
                if report.lost_frames.len() == 1 {
                    ""
                } else {
                    "s"
                },
                lost_events,
                if lost_events == 1 { "" } else { "s" }
            ),
        )?;
        for f in &report.lost_frames {
            for (stream, first, n) in &f.appends {
                let versions = if *n <= 1 {
                    format!("version {first}")
                } else {
                    format!("versions {first}..={}", first + u64::from(*n) - 1)
                };
                line(
                    out,
                    format!(
                        "  frame {} (segment {} offset {}): {stream} {versions}",
                        f.seq, f.segment, f.offset
                    ),
                )?;
            }
        }
    }
    line(
        out,
        "The store opens again; `evstore verify` should now report it clean.",
    )
}
