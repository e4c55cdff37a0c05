//! The side-by-side benchmark suite: evstore next to SQLite (rusqlite, bundled) and the disk's
//! own limit (plain writes, write + fdatasync, sequential reads), measured in the same process
//! and run, back to back, and reported as ratios. docs/PERFORMANCE.md holds the figures, the
//! method and their reading.
//!
//! ```sh
//! cargo bench --bench suite                                   # full run (~7-9 min)
//! cargo bench --bench suite -- --quick                        # reduced set (< 2 min)
//! EVSTORE_BENCH_QUICK=1 cargo bench --bench suite             # the same
//! cargo bench --bench suite -- --test                         # CI smoke: tiny, untimed
//! EVSTORE_BENCH_10M=0 cargo bench --bench suite               # full run without the 10M open
//! EVSTORE_BENCH_ONLY=append,sync cargo bench --bench suite    # some sections only
//! ```
//! Sections: `append` (1), `sync` (2), `aggregate` (3), `open` (4, with the 1M read set),
//! `read` (5), `open10m` (4, 10M events), `load` (6).
//!
//! Method. Every comparison alternates the contenders in rounds (raw, evstore, SQLite, raw,
//! evstore, SQLite, ...), each for a fixed time budget, so a noisy neighbour hits all of them;
//! the figures are medians over rounds and the ratios are medians of the per-round ratios.
//! Output: a markdown table on stdout, `target/evstore-bench/report.md`, and the sync plot
//! `target/evstore-bench/sync_threads.svg` (copied to docs/perf/ by hand).
//!
//! A counting global allocator (switched on only around `Store::open`) measures the index's
//! heap bytes per event.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use common::{bench_dir, stream_id};
use criterion::black_box;
use evstore::aggregate::{Aggregate, CommandContext, Root};
use evstore::repository::{decode_recorded, Repository};
use evstore::{Durability, ExpectedVersion, NewEvent, Options, RecordedEvent, Store};
use evstore_orders::{upcasters, Order, OrderCommand, OrderEvent};
use rusqlite::{params, Connection, TransactionBehavior};
use tempfile::TempDir;
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Counting allocator

struct Counting;
static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicI64 = AtomicI64::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments; the counter is only
// bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() && COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() && COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(ptr, layout) };
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() && COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

// ---------------------------------------------------------------------------------------------
// Configuration

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Test,
    Quick,
    Full,
}

struct Cfg {
    mode: Mode,
    only: Option<Vec<String>>,
    ten_million: bool,
    out_dir: PathBuf,
}

impl Cfg {
    fn from_env() -> Cfg {
        let test = std::env::args().any(|a| a == "--test");
        let quick = std::env::args().any(|a| a == "--quick")
            || std::env::var("EVSTORE_BENCH_QUICK").is_ok_and(|v| v != "0");
        let mode = if test {
            Mode::Test
        } else if quick {
            Mode::Quick
        } else {
            Mode::Full
        };
        let only = std::env::var("EVSTORE_BENCH_ONLY")
            .ok()
            .map(|s| s.split(',').map(|x| x.trim().to_string()).collect());
        let ten_million =
            mode == Mode::Full && std::env::var("EVSTORE_BENCH_10M").map_or(true, |v| v != "0");
        let out_dir = std::env::var_os("EVSTORE_BENCH_OUT")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                let target = std::env::var_os("CARGO_TARGET_DIR")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| {
                        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target")
                    });
                target.join("evstore-bench")
            });
        Cfg {
            mode,
            only,
            ten_million,
            out_dir,
        }
    }

    fn wants(&self, section: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|s| s == section))
    }

    fn payloads(&self) -> &'static [usize] {
        match self.mode {
            Mode::Full => &[100, 1024],
            _ => &[100],
        }
    }

    fn rounds(&self) -> usize {
        match self.mode {
            Mode::Test => 1,
            Mode::Quick => 2,
            Mode::Full => 5,
        }
    }

    fn sync_rounds(&self) -> usize {
        match self.mode {
            Mode::Test => 1,
            Mode::Quick => 1,
            Mode::Full => 3,
        }
    }

    fn budget(&self) -> Duration {
        match self.mode {
            Mode::Test => Duration::from_millis(5),
            Mode::Quick => Duration::from_millis(200),
            Mode::Full => Duration::from_millis(400),
        }
    }

    fn sync_budget(&self) -> Duration {
        match self.mode {
            Mode::Test => Duration::from_millis(10),
            Mode::Quick => Duration::from_millis(400),
            Mode::Full => Duration::from_millis(1000),
        }
    }

    fn threads(&self) -> &'static [usize] {
        match self.mode {
            Mode::Test => &[1, 4],
            _ => &[1, 4, 16, 64],
        }
    }

    /// Events of the read / open data set (streams of 10 events).
    fn dataset(&self) -> usize {
        match self.mode {
            Mode::Test => 10_000,
            Mode::Quick => 200_000,
            Mode::Full => 1_000_000,
        }
    }

    /// Streams of the aggregate workload (10 events each).
    fn aggregate_streams(&self) -> usize {
        match self.mode {
            Mode::Test => 1_000,
            Mode::Quick => 20_000,
            Mode::Full => 100_000,
        }
    }

    fn order_events(&self) -> usize {
        match self.mode {
            Mode::Test => 200,
            _ => 10_000,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

const EVENT_TYPE: &str = "BenchEvent"; // 10 bytes

/// On-disk bytes of an append of `n` events of `payload` bytes with a 20-byte stream id and a
/// 10-byte type, no metadata (docs/FORMAT.md §3): align8(24 + 21 + 20 + n * (25 + 10 + p)).
fn frame_bytes(n: usize, payload: usize) -> usize {
    (24 + 21 + 20 + n * (25 + 10 + payload)).div_ceil(8) * 8
}

/// A 20-byte aggregate stream id.
fn agg_id(i: usize) -> String {
    format!("agg-{i:016}")
}

/// xorshift64*: ids and random picks without a crypto RNG in the loop (same for all contenders).
struct Rng(u64);

impl Rng {
    /// A generator for `seed`, decorrelated by splitmix64 (never the zero state).
    fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn uuid(&mut self) -> Uuid {
        let v = (u128::from(self.next()) << 64) | u128::from(self.next());
        uuid::Builder::from_random_bytes(v.to_le_bytes()).into_uuid()
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn open_store(path: &Path, durability: Durability) -> Store {
    Store::open_with(
        path,
        Options {
            durability,
            ..Options::default()
        },
    )
    .expect("open store")
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64
}

/// Run `op` (which does `per_op` events) until `budget` passes; events per second.
fn block(budget: Duration, per_op: usize, mut op: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut ops = 0u64;
    loop {
        for _ in 0..8 {
            op();
        }
        ops += 8;
        let e = start.elapsed();
        if e >= budget {
            return (ops * per_op as u64) as f64 / e.as_secs_f64();
        }
    }
}

/// Rates of the contenders over `rounds` alternating rounds: `rates[c][round]`.
fn alternate(rounds: usize, mut contenders: Vec<&mut dyn FnMut() -> f64>) -> Vec<Vec<f64>> {
    let mut rates = vec![Vec::new(); contenders.len()];
    for _ in 0..rounds {
        for (c, f) in contenders.iter_mut().enumerate() {
            rates[c].push(f());
        }
    }
    rates
}

/// Median over rounds of `a[i] / b[i]`.
fn paired_ratio(a: &[f64], b: &[f64]) -> f64 {
    let mut r: Vec<f64> = a.iter().zip(b).map(|(x, y)| x / y).collect();
    median(&mut r)
}

// ---------------------------------------------------------------------------------------------
// Report

struct Row {
    section: &'static str,
    figure: String,
    unit: &'static str,
    evstore: f64,
    sqlite: Option<f64>,
    raw: Option<f64>,
    /// evstore ÷ SQLite and evstore ÷ raw (medians of paired ratios when measured in rounds).
    r_sqlite: Option<f64>,
    r_raw: Option<f64>,
    notes: String,
}

/// (threads, payload, evstore, SQLite, raw) events/s.
type SyncPoint = (usize, usize, f64, f64, f64);

#[derive(Default)]
struct Report {
    rows: Vec<Row>,
    /// (threads, payload, evstore, sqlite, raw) events/s for the plot.
    sync_curve: Vec<SyncPoint>,
}

fn fmt_num(x: f64) -> String {
    if x.is_nan() {
        return "—".into();
    }
    let a = x.abs();
    if a >= 100.0 {
        let s = format!("{:.0}", x);
        // Thousands separators.
        let (sign, digits) = s.strip_prefix('-').map_or(("", s.as_str()), |d| ("-", d));
        let mut out = String::new();
        for (i, ch) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(ch);
        }
        format!("{sign}{out}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn fmt_ratio(x: Option<f64>) -> String {
    match x {
        None => "—".into(),
        Some(r) if r >= 100.0 => format!("{r:.0}×"),
        Some(r) if r >= 10.0 => format!("{r:.1}×"),
        Some(r) => format!("{r:.2}×"),
    }
}

impl Report {
    fn add(&mut self, row: Row) {
        println!(
            "RESULT [{}] {} ({}): evstore {} | sqlite {} | raw {} | ÷sqlite {} | ÷raw {} | {}",
            row.section,
            row.figure,
            row.unit,
            fmt_num(row.evstore),
            row.sqlite.map_or("—".into(), fmt_num),
            row.raw.map_or("—".into(), fmt_num),
            fmt_ratio(row.r_sqlite),
            fmt_ratio(row.r_raw),
            row.notes
        );
        self.rows.push(row);
    }

    fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "| § | figure | unit | evstore | SQLite | raw | evstore ÷ SQLite | evstore ÷ raw | notes |"
        );
        let _ = writeln!(
            s,
            "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"
        );
        for r in &self.rows {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.section,
                r.figure,
                r.unit,
                fmt_num(r.evstore),
                r.sqlite.map_or("—".into(), fmt_num),
                r.raw.map_or("—".into(), fmt_num),
                fmt_ratio(r.r_sqlite),
                fmt_ratio(r.r_raw),
                r.notes
            );
        }
        s
    }
}

// ---------------------------------------------------------------------------------------------
// Contenders: evstore appender, SQLite, raw files

/// Appends batches to one stream with fresh ids.
struct Appender {
    stream: String,
    batch: Vec<NewEvent>,
    rng: Rng,
}

impl Appender {
    fn new(stream: String, batch: usize, payload: usize, seed: u64) -> Appender {
        Appender {
            stream,
            batch: (0..batch)
                .map(|_| NewEvent::new(EVENT_TYPE, vec![0xA5u8; payload]))
                .collect(),
            rng: Rng::new(seed),
        }
    }

    fn append(&mut self, store: &Store) {
        for e in &mut self.batch {
            e.event_id = self.rng.uuid();
        }
        let r = store
            .append(&self.stream, ExpectedVersion::Any, &self.batch)
            .expect("append");
        black_box(r);
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    event_id     TEXT PRIMARY KEY,
    aggregate_id TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    event_data   BLOB NOT NULL,
    timestamp    INTEGER NOT NULL,
    version      INTEGER NOT NULL,
    UNIQUE (aggregate_id, version)
);
CREATE INDEX IF NOT EXISTS idx_events_aggregate ON events (aggregate_id);
CREATE INDEX IF NOT EXISTS idx_events_timestamp ON events (timestamp);
";

fn sqlite_open(path: &Path, synchronous: &str) -> Connection {
    let conn = Connection::open(path).expect("sqlite open");
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .expect("wal");
    assert_eq!(mode, "wal");
    conn.execute_batch(&format!("PRAGMA synchronous={synchronous};"))
        .expect("synchronous");
    conn.execute_batch(SCHEMA).expect("schema");
    conn.busy_timeout(Duration::from_secs(30))
        .expect("busy timeout");
    conn
}

/// The classic optimistic append: in one IMMEDIATE transaction, `SELECT MAX(version)`, check
/// it against `expected` (`None`: Any; `Some(None)`: no stream; `Some(Some(v))`: exact), insert
/// the events. Returns the last version.
struct SqliteAppender {
    aggregate: String,
    payload: Vec<u8>,
    batch: usize,
    rng: Rng,
}

impl SqliteAppender {
    fn new(aggregate: String, batch: usize, payload: usize, seed: u64) -> SqliteAppender {
        SqliteAppender {
            aggregate,
            payload: vec![0xA5u8; payload],
            batch,
            rng: Rng::new(seed),
        }
    }

    fn append(&mut self, conn: &mut Connection, expected: Option<Option<i64>>) -> i64 {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .expect("begin");
        let current: Option<i64> = tx
            .prepare_cached("SELECT MAX(version) FROM events WHERE aggregate_id = ?1")
            .expect("prepare")
            .query_row([&self.aggregate], |r| r.get(0))
            .expect("max version");
        if let Some(exp) = expected {
            assert_eq!(current, exp, "sqlite expected version");
        }
        let first = current.map_or(0, |v| v + 1);
        let ts = chrono::Utc::now().timestamp_micros();
        {
            let mut ins = tx
                .prepare_cached(
                    "INSERT INTO events (event_id, aggregate_id, event_type, event_data, \
                     timestamp, version) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .expect("prepare insert");
            let mut buf = [0u8; 36];
            for i in 0..self.batch {
                let id = self.rng.uuid();
                let id = id.hyphenated().encode_lower(&mut buf);
                ins.execute(params![
                    &*id,
                    &self.aggregate,
                    EVENT_TYPE,
                    &self.payload,
                    ts,
                    first + i as i64
                ])
                .expect("insert");
            }
        }
        tx.commit().expect("commit");
        first + self.batch as i64 - 1
    }
}

/// A file written with plain `write_all` (O_APPEND, no user-space buffer).
fn raw_append_file(dir: &TempDir, name: &str) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.path().join(name))
        .expect("raw file")
}

/// A preallocated file written with `pwrite` at a shared offset and `fdatasync`ed, like the
/// log (space reserved with `posix_fallocate` and made durable first). Wraps around inside its
/// reservation.
struct RawSync {
    f: File,
    size: u64,
    off: AtomicU64,
}

impl RawSync {
    fn new(dir: &TempDir, size: u64) -> RawSync {
        use std::os::fd::AsRawFd;
        let f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(dir.path().join("raw-sync.bin"))
            .expect("raw file");
        // SAFETY: plain syscall on an open descriptor.
        let rc = unsafe { libc::posix_fallocate(f.as_raw_fd(), 0, size as i64) };
        assert_eq!(rc, 0, "posix_fallocate");
        f.sync_all().expect("fsync");
        RawSync {
            f,
            size,
            off: AtomicU64::new(0),
        }
    }

    fn write_sync(&self, buf: &[u8]) {
        let len = buf.len() as u64;
        let mut at = self.off.fetch_add(len, Ordering::Relaxed) % self.size;
        if at + len > self.size {
            at = 0;
        }
        self.f.write_all_at(buf, at).expect("pwrite");
        self.f.sync_data().expect("fdatasync");
    }
}

/// Buffered `pwrite`s into space reserved ahead with `posix_fallocate` (64 MiB at a time, made
/// durable with fsync): the log's own I/O pattern, without any of its CPU work.
struct RawPrealloc {
    f: File,
    allocated: u64,
    off: u64,
}

impl RawPrealloc {
    const STEP: u64 = 64 << 20;

    fn new(dir: &TempDir) -> RawPrealloc {
        let f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(dir.path().join("raw-prealloc.bin"))
            .expect("raw file");
        RawPrealloc {
            f,
            allocated: 0,
            off: 0,
        }
    }

    fn write(&mut self, buf: &[u8]) {
        use std::os::fd::AsRawFd;
        if self.off + buf.len() as u64 > self.allocated {
            // SAFETY: plain syscall on an open descriptor.
            let rc = unsafe {
                libc::posix_fallocate(self.f.as_raw_fd(), self.allocated as i64, Self::STEP as i64)
            };
            assert_eq!(rc, 0, "posix_fallocate");
            self.f.sync_all().expect("fsync");
            self.off = self.allocated;
            self.allocated += Self::STEP;
        }
        self.f.write_all_at(buf, self.off).expect("pwrite");
        self.off += buf.len() as u64;
    }
}

/// Run `threads` threads, each calling its op (one event each) until `budget` passes.
/// Returns (events/s, sorted latencies in ns).
fn threaded<F: FnMut() + Send>(budget: Duration, mut ops: Vec<F>) -> (f64, Vec<u64>) {
    let n = ops.len();
    let barrier = Barrier::new(n + 1);
    let total = AtomicU64::new(0);
    let lat = Mutex::new(Vec::new());
    let elapsed = std::thread::scope(|s| {
        let mut handles = Vec::new();
        for op in ops.iter_mut() {
            let (barrier, total, lat) = (&barrier, &total, &lat);
            handles.push(s.spawn(move || {
                let mut mine = Vec::with_capacity(4096);
                barrier.wait();
                let start = Instant::now();
                loop {
                    let t = Instant::now();
                    op();
                    let now = Instant::now();
                    mine.push((now - t).as_nanos() as u64);
                    if now - start >= budget {
                        break;
                    }
                }
                total.fetch_add(mine.len() as u64, Ordering::Relaxed);
                lat.lock().expect("lat").extend(mine);
                Instant::now()
            }));
        }
        barrier.wait();
        let start = Instant::now();
        let mut end = start;
        for h in handles {
            end = end.max(h.join().expect("thread"));
        }
        end - start
    });
    let mut l = lat.into_inner().expect("lat");
    l.sort_unstable();
    (
        total.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64(),
        l,
    )
}

// ---------------------------------------------------------------------------------------------
// 1. Buffered appends

fn section_append(cfg: &Cfg, rep: &mut Report) {
    for &payload in cfg.payloads() {
        for batch in [1usize, 10, 100] {
            let dir = bench_dir();
            let store = open_store(&dir.path().join("b.evs"), Durability::Buffered);
            let mut app = Appender::new(stream_id(0), batch, payload, 1);
            let mut conn = sqlite_open(&dir.path().join("b.sqlite"), "NORMAL");
            let mut sq = SqliteAppender::new(stream_id(0), batch, payload, 2);
            let mut raw = raw_append_file(&dir, "raw.bin");
            let mut pre = RawPrealloc::new(&dir);
            let buf = vec![0x5Au8; frame_bytes(batch, payload)];
            let budget = cfg.budget();
            let before = store.stats();
            // SQLite is ~100x slower: a shorter budget per round keeps the run short; its
            // rate is stable over it.
            let rates = alternate(
                cfg.rounds(),
                vec![
                    &mut || block(budget, batch, || raw.write_all(black_box(&buf)).expect("w")),
                    &mut || block(budget, batch, || app.append(&store)),
                    &mut || {
                        block(budget / 2, batch, || {
                            black_box(sq.append(&mut conn, None));
                        })
                    },
                    &mut || block(budget, batch, || pre.write(black_box(&buf))),
                ],
            );
            let st = store.stats();
            let (mut rw, mut ev, mut sqr) = (rates[0].clone(), rates[1].clone(), rates[2].clone());
            let r_raw = paired_ratio(&rates[1], &rates[0]);
            let r_sql = paired_ratio(&rates[1], &rates[2]);
            let e = median(&mut ev);
            rep.add(Row {
                section: "1",
                figure: format!("append Buffered, 1 thread, batch {batch}, {payload} B"),
                unit: "events/s",
                evstore: e,
                sqlite: Some(median(&mut sqr)),
                raw: Some(median(&mut rw)),
                r_sqlite: Some(r_sql),
                r_raw: Some(r_raw),
                notes: format!(
                    "{:.1} MB/s payload, {:.1} MB/s on disk ({:.1} B/event); SQLite NORMAL; raw \
                     pwrite into preallocated space (the log's I/O pattern): {} events/s, \
                     evstore ÷ that {:.2}×",
                    e * payload as f64 / 1e6,
                    e * (st.bytes_written - before.bytes_written) as f64
                        / (st.events - before.events).max(1) as f64
                        / 1e6,
                    (st.bytes_written - before.bytes_written) as f64
                        / (st.events - before.events).max(1) as f64,
                    fmt_num(median(&mut rates[3].clone())),
                    paired_ratio(&rates[1], &rates[3]),
                ),
            });
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Sync appends, group commit

fn section_sync(cfg: &Cfg, rep: &mut Report) {
    for &payload in cfg.payloads() {
        for &threads in cfg.threads() {
            let dir = bench_dir();
            let store = open_store(&dir.path().join("s.evs"), Durability::Sync);
            let conn = Mutex::new(sqlite_open(&dir.path().join("s.sqlite"), "FULL"));
            let raw = RawSync::new(&dir, 256 << 20);
            let buf = vec![0x5Au8; frame_bytes(1, payload)];
            let mut apps: Vec<Appender> = (0..threads)
                .map(|t| Appender::new(stream_id(t), 1, payload, 100 + t as u64))
                .collect();
            let mut sqs: Vec<SqliteAppender> = (0..threads)
                .map(|t| SqliteAppender::new(stream_id(t), 1, payload, 200 + t as u64))
                .collect();
            let budget = cfg.sync_budget();
            let before = store.stats();
            let (mut ev, mut sq, mut rw) = (Vec::new(), Vec::new(), Vec::new());
            let (mut ev_lat, mut sq_lat, mut rw_lat) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..cfg.sync_rounds() {
                let (r, l) = threaded(
                    budget,
                    (0..threads).map(|_| || raw.write_sync(&buf)).collect(),
                );
                rw.push(r);
                rw_lat.extend(l);
                let (r, l) = threaded(
                    budget,
                    apps.iter_mut()
                        .map(|a| {
                            let store = &store;
                            move || a.append(store)
                        })
                        .collect(),
                );
                ev.push(r);
                ev_lat.extend(l);
                let (r, l) = threaded(
                    budget,
                    sqs.iter_mut()
                        .map(|a| {
                            let conn = &conn;
                            move || {
                                black_box(a.append(&mut conn.lock().expect("conn"), None));
                            }
                        })
                        .collect(),
                );
                sq.push(r);
                sq_lat.extend(l);
            }
            let st = store.stats();
            let appends = st.appends - before.appends;
            let syncs = (st.data_syncs - before.data_syncs).max(1);
            for l in [&mut ev_lat, &mut sq_lat, &mut rw_lat] {
                l.sort_unstable();
            }
            let r_raw = paired_ratio(&ev, &rw);
            let r_sql = paired_ratio(&ev, &sq);
            let (e, s, r) = (median(&mut ev), median(&mut sq), median(&mut rw));
            rep.sync_curve.push((threads, payload, e, s, r));
            let us = |l: &[u64], p: f64| percentile(l, p) / 1000.0;
            rep.add(Row {
                section: "2",
                figure: format!("append Sync, batch 1, {threads} thread(s), {payload} B"),
                unit: "events/s",
                evstore: e,
                sqlite: Some(s),
                raw: Some(r),
                r_sqlite: Some(r_sql),
                r_raw: Some(r_raw),
                notes: format!(
                    "{:.2} appends/fsync; p50/p99 µs: evstore {:.0}/{:.0}, SQLite {:.0}/{:.0}, \
                     raw {:.0}/{:.0}; {:.2} MB/s payload; SQLite FULL, one shared connection",
                    appends as f64 / syncs as f64,
                    us(&ev_lat, 0.5),
                    us(&ev_lat, 0.99),
                    us(&sq_lat, 0.5),
                    us(&sq_lat, 0.99),
                    us(&rw_lat, 0.5),
                    us(&rw_lat, 0.99),
                    e * payload as f64 / 1e6,
                ),
            });
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Exact across many streams vs Any on one stream

fn section_aggregate(cfg: &Cfg, rep: &mut Report) {
    let streams = cfg.aggregate_streams();
    let per = 10usize;
    let n = streams * per;
    for &payload in cfg.payloads() {
        let dir = bench_dir();
        let ids: Vec<String> = (0..streams).map(agg_id).collect();
        let mut batch = vec![NewEvent::new(EVENT_TYPE, vec![0xA5u8; payload])];
        let mut rng = Rng::new(7);
        // Raw: the same bytes, one write per append.
        let t = Instant::now();
        {
            let mut raw = raw_append_file(&dir, "raw.bin");
            let buf = vec![0x5Au8; frame_bytes(1, payload)];
            for _ in 0..n {
                raw.write_all(black_box(&buf)).expect("w");
            }
        }
        let raw_rate = n as f64 / t.elapsed().as_secs_f64();
        // evstore, Exact, round-robin over the streams (each append is the next version).
        let exact_store = open_store(&dir.path().join("exact.evs"), Durability::Buffered);
        let t = Instant::now();
        for round in 0..per {
            let expected = if round == 0 {
                ExpectedVersion::NoStream
            } else {
                ExpectedVersion::Exact(round as u64 - 1)
            };
            for id in &ids {
                batch[0].event_id = rng.uuid();
                exact_store.append(id, expected, &batch).expect("exact");
            }
        }
        let exact_rate = n as f64 / t.elapsed().as_secs_f64();
        drop(exact_store);
        // evstore, Any, one stream.
        let any_store = open_store(&dir.path().join("any.evs"), Durability::Buffered);
        let t = Instant::now();
        let one = agg_id(0);
        for _ in 0..n {
            batch[0].event_id = rng.uuid();
            any_store
                .append(&one, ExpectedVersion::Any, &batch)
                .expect("any");
        }
        let any_rate = n as f64 / t.elapsed().as_secs_f64();
        drop(any_store);
        // SQLite NORMAL, the same workload (Exact), for a time budget: it cannot do 10^6 appends
        // in this run's time. The table stays smaller than evstore's, which favours SQLite.
        let mut conn = sqlite_open(&dir.path().join("agg.sqlite"), "NORMAL");
        let sq_budget = cfg.budget() * 5;
        let mut done = 0usize;
        let t = Instant::now();
        let mut sqs: Vec<SqliteAppender> = Vec::new();
        'outer: for round in 0..per {
            for (s, id) in ids.iter().enumerate() {
                if round == 0 {
                    sqs.push(SqliteAppender::new(id.clone(), 1, payload, 300 + s as u64));
                }
                let exp = if round == 0 {
                    None
                } else {
                    Some(round as i64 - 1)
                };
                sqs[s].append(&mut conn, Some(exp));
                done += 1;
                if done.is_multiple_of(16) && t.elapsed() >= sq_budget {
                    break 'outer;
                }
            }
        }
        let sq_rate = done as f64 / t.elapsed().as_secs_f64();
        rep.add(Row {
            section: "3",
            figure: format!(
                "append Exact, {streams} streams × {per} events, round-robin, {payload} B (Buffered)"
            ),
            unit: "events/s",
            evstore: exact_rate,
            sqlite: Some(sq_rate),
            raw: Some(raw_rate),
            r_sqlite: Some(exact_rate / sq_rate),
            r_raw: Some(exact_rate / raw_rate),
            notes: format!(
                "{n} appends; SQLite ran {done} appends (time budget); ÷ Any on one stream: {:.2}",
                exact_rate / any_rate
            ),
        });
        rep.add(Row {
            section: "3",
            figure: format!("append Any, 1 stream, {payload} B (Buffered)"),
            unit: "events/s",
            evstore: any_rate,
            sqlite: None,
            raw: Some(raw_rate),
            r_sqlite: None,
            r_raw: Some(any_rate / raw_rate),
            notes: format!("{n} appends, same bytes as the Exact row"),
        });
    }
}

// ---------------------------------------------------------------------------------------------
// 4 + 5. Open, index memory, reads, footprint

/// The read data set: `n` events in streams of 10, one event per append, round-robin (so a
/// stream's events are spread over the log), 10 event types of 10 bytes, 100-byte payloads.
struct Dataset {
    _dir: TempDir,
    log: PathBuf,
    sqlite: Option<PathBuf>,
    n: usize,
    streams: usize,
    log_bytes: u64,
    build_rate: f64,
}

fn type_name(i: usize) -> String {
    format!("EventType{}", i % 10)
}

fn build_dataset(n: usize, with_sqlite: bool) -> Dataset {
    let dir = bench_dir();
    let log = dir.path().join("read.evs");
    let streams = n / 10;
    let ids: Vec<String> = (0..streams).map(stream_id).collect();
    let mut rng = Rng::new(11);
    let t = Instant::now();
    let log_bytes = {
        let store = open_store(&log, Durability::Buffered);
        let mut evs: Vec<Vec<NewEvent>> = (0..10)
            .map(|k| vec![NewEvent::new(type_name(k), vec![0xA5u8; 100])])
            .collect();
        for i in 0..n {
            let e = &mut evs[i % 10];
            e[0].event_id = rng.uuid();
            store
                .append(&ids[i % streams], ExpectedVersion::Any, e)
                .expect("append");
        }
        let b = store.stats().bytes_written;
        store.close().expect("close");
        b
    };
    let build_rate = n as f64 / t.elapsed().as_secs_f64();
    let sqlite = with_sqlite.then(|| {
        let path = dir.path().join("read.sqlite");
        let mut conn = sqlite_open(&path, "NORMAL");
        let payload = vec![0xA5u8; 100];
        let mut rng = Rng::new(11);
        let tx = conn.transaction().expect("tx");
        {
            let mut ins = tx
                .prepare(
                    "INSERT INTO events (event_id, aggregate_id, event_type, event_data, \
                     timestamp, version) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .expect("prepare");
            let mut buf = [0u8; 36];
            for i in 0..n {
                let id = rng.uuid();
                let id = id.hyphenated().encode_lower(&mut buf);
                ins.execute(params![
                    &*id,
                    &ids[i % streams],
                    type_name(i),
                    &payload,
                    SQLITE_TS0 + i as i64,
                    (i / streams) as i64
                ])
                .expect("insert");
            }
        }
        tx.commit().expect("commit");
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .expect("checkpoint");
        path
    });
    // Flush the data set before anything is timed, so writeback of the setup's dirty pages
    // does not compete with the measured opens and reads (the log is synced by close).
    if let Some(p) = &sqlite {
        File::open(p)
            .and_then(|f| f.sync_all())
            .expect("sync sqlite");
    }
    Dataset {
        _dir: dir,
        log,
        sqlite,
        n,
        streams,
        log_bytes,
        build_rate,
    }
}

/// SQLite data-set timestamps: µs, one per event, in insertion order.
const SQLITE_TS0: i64 = 1_700_000_000_000_000;

/// Sequential read of the first `len` bytes of `path` (page cache warm), bytes/s.
fn raw_read_rate(path: &Path, len: u64) -> f64 {
    let mut f = File::open(path).expect("open raw");
    let mut buf = vec![0u8; 1 << 20];
    let t = Instant::now();
    let mut left = len;
    let mut sum = 0u64;
    while left > 0 {
        let want = buf.len().min(left as usize);
        let got = f.read(&mut buf[..want]).expect("read");
        if got == 0 {
            break;
        }
        sum = sum.wrapping_add(u64::from(buf[got - 1]));
        left -= got as u64;
    }
    black_box(sum);
    (len - left) as f64 / t.elapsed().as_secs_f64()
}

/// Opens the data set once with the allocation counter on (index bytes/event), then `reps`
/// times timed with it off. Returns (median seconds, index bytes/event, the last store).
fn measure_open(ds: &Dataset, reps: usize) -> (f64, f64, Store) {
    let mem = {
        LIVE.store(0, Ordering::SeqCst);
        COUNTING.store(true, Ordering::SeqCst);
        let s = Store::open_with(&ds.log, Options::default()).expect("open");
        COUNTING.store(false, Ordering::SeqCst);
        assert_eq!(s.recovery_report().events, ds.n as u64);
        LIVE.load(Ordering::SeqCst) as f64 / ds.n as f64
    };
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..reps.max(1) {
        drop(last.take());
        let t = Instant::now();
        let s = Store::open_with(&ds.log, Options::default()).expect("open");
        times.push(t.elapsed().as_secs_f64());
        assert_eq!(s.recovery_report().events, ds.n as u64);
        last = Some(s);
    }
    let store = last.expect("opened");
    (median(&mut times), mem, store)
}

fn open_rows(rep: &mut Report, label: &str, ds: &Dataset, reps: usize) -> Store {
    let raw = raw_read_rate(&ds.log, 4096 + ds.log_bytes);
    let (secs, mem, store) = measure_open(ds, reps);
    let gbs = ds.log_bytes as f64 / secs / 1e9;
    rep.add(Row {
        section: "4",
        figure: format!(
            "open (scan + index rebuild) of {label} events, 1 event/append, {} streams",
            ds.streams
        ),
        unit: "GB/s of log",
        evstore: gbs,
        sqlite: None,
        raw: Some(raw / 1e9),
        r_sqlite: None,
        r_raw: Some(gbs * 1e9 / raw),
        notes: format!(
            "{:.0} ms for {} MB ({:.0} events/s); page cache warm; raw = sequential read(2) \
             of the same bytes; SQLite keeps its index on disk (nothing to rebuild)",
            secs * 1e3,
            ds.log_bytes / 1_000_000,
            ds.n as f64 / secs
        ),
    });
    rep.add(Row {
        section: "4",
        figure: format!("index heap per event, {label} events"),
        unit: "bytes/event",
        evstore: mem,
        sqlite: None,
        raw: None,
        r_sqlite: None,
        r_raw: None,
        notes: "counting allocator: live bytes requested by Store::open (stream ids included)"
            .into(),
    });
    store
}

/// SQLite's side of read_stream: one aggregate's rows in version order.
const SQL_AGGREGATE_ROWS: &str = "SELECT event_id, event_type, event_data, timestamp, version \
     FROM events WHERE aggregate_id = ?1 ORDER BY version";

/// The disk's side of read_stream: 10 `pread`s of 200 B at random 8-aligned offsets of the log.
fn ten_random_preads(f: &File, buf: &mut [u8], rng: &mut Rng, span: u64) {
    for _ in 0..10 {
        let at = 4096 + (rng.next() % span) / 8 * 8;
        f.read_exact_at(buf, at).expect("pread");
    }
    black_box(&*buf);
}

fn section_open_read(cfg: &Cfg, rep: &mut Report) {
    let n = cfg.dataset();
    let ds = build_dataset(n, cfg.wants("read"));
    let label = format!("{}k", n / 1000);
    println!(
        "SETUP read set: {n} events, {} streams, {} log bytes, built at {:.0} events/s",
        ds.streams, ds.log_bytes, ds.build_rate
    );
    // EVSTORE_BENCH_OPEN_REPS: more opens (for profiling the open path).
    let reps = std::env::var("EVSTORE_BENCH_OPEN_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if cfg.mode == Mode::Full { 5 } else { 1 });
    let store = if cfg.wants("open") {
        open_rows(rep, &label, &ds, reps)
    } else {
        Store::open_with(&ds.log, Options::default()).expect("open")
    };
    if !cfg.wants("read") {
        return;
    }
    let Some(sq_path) = &ds.sqlite else { return };
    let conn = Connection::open(sq_path).expect("sqlite");
    let rounds = cfg.rounds();
    let budget = cfg.budget();

    // Footprint.
    let sq_bytes = std::fs::metadata(sq_path).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(sq_path.with_extension("sqlite-wal")).map_or(0, |m| m.len());
    let ev_fp = ds.log_bytes as f64 / n as f64;
    let sq_fp = sq_bytes as f64 / n as f64;
    rep.add(Row {
        section: "5",
        figure: "footprint on disk, 100 B payload, 20 B stream id, 10 B type".into(),
        unit: "bytes/event",
        evstore: ev_fp,
        sqlite: Some(sq_fp),
        raw: Some(100.0),
        r_sqlite: Some(ev_fp / sq_fp),
        r_raw: Some(ev_fp / 100.0),
        notes: "lower is better; evstore: frames written (excl. preallocated tail); SQLite: \
                db + WAL after checkpoint; raw = the payload alone"
            .into(),
    });

    // read_stream of random aggregates.
    let (mut rng_a, mut rng_b, mut rng_c) = (Rng::new(97), Rng::new(98), Rng::new(99));
    let raw_f = File::open(&ds.log).expect("log");
    let mut rbuf = vec![0u8; 200];
    let span = ds.log_bytes.saturating_sub(200).max(1);
    let mut stmt = conn.prepare_cached(SQL_AGGREGATE_ROWS).expect("prepare");
    let streams = ds.streams;
    let rates = alternate(
        rounds,
        vec![
            &mut || {
                block(budget, 10, || {
                    ten_random_preads(&raw_f, &mut rbuf, &mut rng_a, span)
                })
            },
            &mut || {
                block(budget, 10, || {
                    let evs = store
                        .read_stream(&stream_id(rng_b.below(streams)), 0)
                        .expect("read_stream");
                    assert_eq!(evs.len(), 10);
                    black_box(evs);
                })
            },
            &mut || {
                block(budget, 10, || {
                    let rows: Vec<(String, String, Vec<u8>, i64, i64)> = stmt
                        .query_map([stream_id(rng_c.below(streams))], |r| {
                            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                        })
                        .expect("query")
                        .collect::<Result<_, _>>()
                        .expect("rows");
                    assert_eq!(rows.len(), 10);
                    black_box(rows);
                })
            },
        ],
    );
    drop(stmt);
    let (mut rw, mut ev, mut sq) = (rates[0].clone(), rates[1].clone(), rates[2].clone());
    let e = median(&mut ev);
    rep.add(Row {
        section: "5",
        figure: format!("read_stream of a random 10-event aggregate, {label} events"),
        unit: "events/s",
        evstore: e,
        sqlite: Some(median(&mut sq)),
        raw: Some(median(&mut rw)),
        r_sqlite: Some(paired_ratio(&rates[1], &rates[2])),
        r_raw: Some(paired_ratio(&rates[1], &rates[0])),
        notes: format!(
            "{:.0} aggregates/s; raw = 10 pread(2)s of 200 B at random offsets",
            e / 10.0
        ),
    });

    // The same with borrowed reads on both sides: evstore lends events out of the map
    // (read_stream_with), SQLite's rows are read with get_ref (no copies); both consume every
    // field so nothing is optimised away.
    let (mut rng_a, mut rng_b, mut rng_c) = (Rng::new(197), Rng::new(198), Rng::new(199));
    let mut stmt = conn.prepare_cached(SQL_AGGREGATE_ROWS).expect("prepare");
    let rates = alternate(
        rounds,
        vec![
            &mut || {
                block(budget, 10, || {
                    ten_random_preads(&raw_f, &mut rbuf, &mut rng_a, span)
                })
            },
            &mut || {
                block(budget, 10, || {
                    let mut seen = 0usize;
                    let mut sum = 0u64;
                    store
                        .read_stream_with(&stream_id(rng_b.below(streams)), 0, u64::MAX, |e| {
                            seen += 1;
                            sum = sum
                                .wrapping_add(e.event_id.as_u64_pair().0)
                                .wrapping_add(e.event_type.len() as u64)
                                .wrapping_add(u64::from(e.data.first().copied().unwrap_or(0)))
                                .wrapping_add(e.data.len() as u64)
                                .wrapping_add(e.recorded_at.timestamp_micros() as u64)
                                .wrapping_add(e.version);
                            Ok(())
                        })
                        .expect("read_stream_with");
                    assert_eq!(seen, 10);
                    black_box(sum);
                })
            },
            &mut || {
                block(budget, 10, || {
                    let mut rows = stmt
                        .query([stream_id(rng_c.below(streams))])
                        .expect("query");
                    let mut seen = 0usize;
                    let mut sum = 0u64;
                    while let Some(r) = rows.next().expect("row") {
                        seen += 1;
                        let id = r.get_ref(0).expect("id").as_str().expect("text");
                        let ty = r.get_ref(1).expect("type").as_str().expect("text");
                        let data = r.get_ref(2).expect("data").as_blob().expect("blob");
                        let ts: i64 = r.get(3).expect("ts");
                        let v: i64 = r.get(4).expect("version");
                        sum = sum
                            .wrapping_add(id.len() as u64)
                            .wrapping_add(ty.len() as u64)
                            .wrapping_add(u64::from(data.first().copied().unwrap_or(0)))
                            .wrapping_add(data.len() as u64)
                            .wrapping_add(ts as u64)
                            .wrapping_add(v as u64);
                    }
                    assert_eq!(seen, 10);
                    black_box(sum);
                })
            },
        ],
    );
    drop(stmt);
    let (mut rw, mut ev, mut sq) = (rates[0].clone(), rates[1].clone(), rates[2].clone());
    let e = median(&mut ev);
    rep.add(Row {
        section: "5",
        figure: format!(
            "read_stream_with (borrowed) of a random 10-event aggregate, {label} events"
        ),
        unit: "events/s",
        evstore: e,
        sqlite: Some(median(&mut sq)),
        raw: Some(median(&mut rw)),
        r_sqlite: Some(paired_ratio(&rates[1], &rates[2])),
        r_raw: Some(paired_ratio(&rates[1], &rates[0])),
        notes: format!(
            "{:.0} aggregates/s; no copies on either side: evstore lends events from the map, \
             SQLite rows read with get_ref; raw = 10 pread(2)s of 200 B",
            e / 10.0
        ),
    });

    // Full scans and by-type reads: a few repetitions each, alternating.
    let scan_reps = if cfg.mode == Mode::Full { 3 } else { 1 };
    let log_len = 4096 + ds.log_bytes;
    let (mut ev_all, mut sq_all, mut rw_all) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..scan_reps {
        rw_all.push(raw_read_rate(&ds.log, log_len) / ds.log_bytes as f64 * n as f64);
        let t = Instant::now();
        let mut count = 0usize;
        let mut bytes = 0usize;
        for e in store.read_all(0) {
            let e = e.expect("read_all");
            bytes += e.data.len();
            count += 1;
        }
        assert_eq!(count, n);
        black_box(bytes);
        ev_all.push(n as f64 / t.elapsed().as_secs_f64());
        let t = Instant::now();
        let mut stmt = conn
            .prepare_cached(
                "SELECT event_id, aggregate_id, event_type, event_data, timestamp, version \
                 FROM events ORDER BY rowid",
            )
            .expect("prepare");
        let mut rows = stmt.query([]).expect("query");
        let mut count = 0usize;
        while let Some(r) = rows.next().expect("row") {
            let row: (String, String, String, Vec<u8>, i64, i64) = (
                r.get(0).expect("c"),
                r.get(1).expect("c"),
                r.get(2).expect("c"),
                r.get(3).expect("c"),
                r.get(4).expect("c"),
                r.get(5).expect("c"),
            );
            black_box(row);
            count += 1;
        }
        assert_eq!(count, n);
        sq_all.push(n as f64 / t.elapsed().as_secs_f64());
    }
    let r_sql = paired_ratio(&ev_all, &sq_all);
    let r_raw = paired_ratio(&ev_all, &rw_all);
    let e = median(&mut ev_all);
    rep.add(Row {
        section: "5",
        figure: format!("read_all full scan, {label} events"),
        unit: "events/s",
        evstore: e,
        sqlite: Some(median(&mut sq_all)),
        raw: Some(median(&mut rw_all)),
        r_sqlite: Some(r_sql),
        r_raw: Some(r_raw),
        notes: format!(
            "evstore {:.0} MB/s of log, {:.1} MB/s payload; raw = sequential read(2) of the log \
             (as events/s); SQLite: SELECT * ORDER BY rowid",
            e * ds.log_bytes as f64 / n as f64 / 1e6,
            e * 100.0 / 1e6
        ),
    });

    // read_by_type with and without since (the newest 10% of the log).
    let ty = type_name(3);
    let since_pos = (n - n / 10) as u64;
    let since = store
        .read_all(since_pos)
        .next()
        .expect("event")
        .expect("read")
        .recorded_at;
    let sq_since = SQLITE_TS0 + since_pos as i64;
    for with_since in [false, true] {
        let (mut ev_t, mut sq_t) = (Vec::new(), Vec::new());
        let mut raw_t = Vec::new();
        let mut got = 0usize;
        for _ in 0..scan_reps {
            raw_t.push(raw_read_rate(&ds.log, log_len) / ds.log_bytes as f64);
            let t = Instant::now();
            let evs = store
                .read_by_type(&ty, with_since.then_some(since))
                .expect("by type");
            got = evs.len();
            black_box(evs);
            ev_t.push(got as f64 / t.elapsed().as_secs_f64());
            let t = Instant::now();
            let sql = if with_since {
                "SELECT event_id, aggregate_id, event_type, event_data, timestamp, version \
                 FROM events WHERE event_type = ?1 AND timestamp >= ?2 ORDER BY rowid"
            } else {
                "SELECT event_id, aggregate_id, event_type, event_data, timestamp, version \
                 FROM events WHERE event_type = ?1 AND ?2 = ?2 ORDER BY rowid"
            };
            let mut stmt = conn.prepare_cached(sql).expect("prepare");
            let rows: Vec<(String, String, String, Vec<u8>, i64, i64)> = stmt
                .query_map(params![&ty, if with_since { sq_since } else { 0 }], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                })
                .expect("query")
                .collect::<Result<_, _>>()
                .expect("rows");
            sq_t.push(rows.len() as f64 / t.elapsed().as_secs_f64());
        }
        // raw: a brute-force scan of the whole log for the same matches (events/s delivered).
        let raw_rates: Vec<f64> = raw_t.iter().map(|r| r * got as f64).collect();
        let r_sql = paired_ratio(&ev_t, &sq_t);
        let r_raw = paired_ratio(&ev_t, &raw_rates);
        let mut raw_rates = raw_rates;
        rep.add(Row {
            section: "5",
            figure: format!(
                "read_by_type {} ({got} of {label} events)",
                if with_since {
                    "since (newest 10%)"
                } else {
                    "all"
                }
            ),
            unit: "events/s",
            evstore: median(&mut ev_t),
            sqlite: Some(median(&mut sq_t)),
            raw: Some(median(&mut raw_rates)),
            r_sqlite: Some(r_sql),
            r_raw: Some(r_raw),
            notes: "raw = matches ÷ time of a sequential read of the whole log; SQLite: \
                    WHERE event_type (no index) [AND timestamp >= (indexed)]"
                .into(),
        });
    }
}

fn section_open_10m(rep: &mut Report) {
    let n = 10_000_000;
    let t = Instant::now();
    let ds = build_dataset(n, false);
    println!(
        "SETUP 10M set: {} log bytes, built in {:.1} s ({:.0} events/s)",
        ds.log_bytes,
        t.elapsed().as_secs_f64(),
        ds.build_rate
    );
    let store = open_rows(rep, "10M", &ds, 3);
    drop(store);
}

// ---------------------------------------------------------------------------------------------
// 6. Aggregate load

fn section_load(cfg: &Cfg, rep: &mut Report) {
    let n = cfg.order_events();
    let dir = bench_dir();
    let store = Arc::new(open_store(
        &dir.path().join("orders.evs"),
        Durability::Buffered,
    ));
    let id = "bench-order-000001";
    let repo_snap: Repository<Order, Arc<Store>> =
        Repository::new(store.clone()).with_snapshot_every(100);
    let repo_plain: Repository<Order, Arc<Store>> =
        Repository::new(store.clone()).with_snapshot_every(0);
    let ctx = CommandContext::new_request();
    let mut root: Root<Order> = Root::new(id);
    root.execute(&OrderCommand::Create {
        order_id: id.into(),
        user_id: "user-000001".into(),
    })
    .expect("create");
    for i in 1..n {
        root.execute(&OrderCommand::AddItem {
            product_id: format!("sku-{:06}", i % 1000),
            quantity: 1 + (i % 5) as u32,
            price_cents: 199 + (i % 100) as i64,
        })
        .expect("add");
        if (i + 1) % 100 == 0 || i + 1 == n {
            repo_snap.save(&mut root, &ctx).expect("save");
        }
    }
    let stream = Order::stream_id(id);
    let recorded: Vec<RecordedEvent> = store.read_stream(&stream, 0).expect("read");
    assert_eq!(recorded.len(), n);

    // SQLite: the same events (data in event_data; the classic table has no metadata column,
    // and the metadata envelope is the same bytes for every event of a type here, so the fold
    // gets it from memory).
    let mut conn = sqlite_open(&dir.path().join("orders.sqlite"), "NORMAL");
    {
        let tx = conn.transaction().expect("tx");
        {
            let mut ins = tx
                .prepare(
                    "INSERT INTO events (event_id, aggregate_id, event_type, event_data, \
                     timestamp, version) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .expect("prepare");
            for e in &recorded {
                ins.execute(params![
                    e.event_id.to_string(),
                    &stream,
                    &e.event_type,
                    &e.data,
                    e.recorded_at.timestamp_micros(),
                    e.version as i64
                ])
                .expect("insert");
            }
        }
        tx.commit().expect("commit");
    }
    let ups = upcasters();
    let fold = |events: &[RecordedEvent]| -> Order {
        let mut st = Order::default();
        for r in events {
            let (ev, _) = decode_recorded::<OrderEvent>(&ups, r).expect("decode");
            st.apply(&ev);
        }
        st
    };
    // The metadata envelope differs by type (schema version) only: one per type.
    let metas: std::collections::HashMap<String, Vec<u8>> = recorded
        .iter()
        .map(|e| (e.event_type.clone(), e.metadata.clone()))
        .collect();
    let sq_load = || -> Order {
        let mut stmt = conn
            .prepare_cached(
                "SELECT event_id, event_type, event_data, timestamp, version FROM events \
                 WHERE aggregate_id = ?1 ORDER BY version",
            )
            .expect("prepare");
        let rows: Vec<RecordedEvent> = stmt
            .query_map([&stream], |r| {
                let id: String = r.get(0)?;
                let ts: i64 = r.get(3)?;
                let v: i64 = r.get(4)?;
                let event_type: String = r.get(1)?;
                let metadata = metas.get(&event_type).cloned().unwrap_or_default();
                Ok(RecordedEvent {
                    event_id: Uuid::parse_str(&id).unwrap_or_default(),
                    stream_id: stream.clone(),
                    event_type,
                    version: v as u64,
                    position: 0,
                    recorded_at: chrono::DateTime::from_timestamp_micros(ts).unwrap_or_default(),
                    data: r.get(2)?,
                    metadata,
                    tags: Vec::new(),
                })
            })
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        fold(&rows)
    };
    let budget = cfg.budget() * 2;
    let rounds = cfg.rounds().min(3);
    let loads = |f: &mut dyn FnMut() -> usize| -> f64 {
        let t = Instant::now();
        let mut k = 0usize;
        loop {
            assert_eq!(f(), n - 1, "items");
            k += 1;
            if t.elapsed() >= budget {
                return k as f64 / t.elapsed().as_secs_f64();
            }
        }
    };
    let (mut plain, mut snap, mut sq, mut raw) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        raw.push(loads(&mut || fold(&recorded).items().len()));
        plain.push(loads(&mut || {
            let r = repo_plain.load(id).expect("load").expect("exists");
            r.state().items().len()
        }));
        snap.push(loads(&mut || {
            let r = repo_snap.load(id).expect("load").expect("exists");
            assert_eq!(r.version(), Some(n as u64 - 1));
            r.state().items().len()
        }));
        sq.push(loads(&mut || sq_load().items().len()));
    }
    let rp = paired_ratio(&plain, &sq);
    let rr = paired_ratio(&plain, &raw);
    let rs = paired_ratio(&snap, &sq);
    let rsr = paired_ratio(&snap, &raw);
    let (mp, ms, msq, mr) = (
        median(&mut plain),
        median(&mut snap),
        median(&mut sq),
        median(&mut raw),
    );
    rep.add(Row {
        section: "6",
        figure: format!("aggregate load, {n}-event order, no snapshot"),
        unit: "loads/s",
        evstore: mp,
        sqlite: Some(msq),
        raw: Some(mr),
        r_sqlite: Some(rp),
        r_raw: Some(rr),
        notes: format!(
            "{:.2} ms per load; SQLite = rows by aggregate_id + the same decode and fold; raw = \
             decode + fold of events already in memory",
            1e3 / mp
        ),
    });
    rep.add(Row {
        section: "6",
        figure: format!("aggregate load, {n}-event order, snapshot at the last version"),
        unit: "loads/s",
        evstore: ms,
        sqlite: Some(msq),
        raw: Some(mr),
        r_sqlite: Some(rs),
        r_raw: Some(rsr),
        notes: format!(
            "{:.2} ms per load (snapshot decode of {} items + 0 events)",
            1e3 / ms,
            n - 1
        ),
    });
}

// ---------------------------------------------------------------------------------------------
// Plot

fn svg_plot(rep: &Report, payload: usize) -> Option<String> {
    let pts: Vec<_> = rep
        .sync_curve
        .iter()
        .filter(|p| p.1 == payload)
        .copied()
        .collect();
    if pts.len() < 2 {
        return None;
    }
    let (w, h) = (720.0, 440.0);
    let (l, r, t, b) = (80.0, 170.0, 40.0, 60.0);
    let xs: Vec<f64> = pts.iter().map(|p| (p.0 as f64).log2()).collect();
    let (x0, x1) = (
        xs.iter().cloned().fold(f64::MAX, f64::min),
        xs.iter().cloned().fold(f64::MIN, f64::max),
    );
    let all: Vec<f64> = pts.iter().flat_map(|p| [p.2, p.3, p.4]).collect();
    let ymin = all.iter().cloned().fold(f64::MAX, f64::min).max(1.0);
    let ymax = all.iter().cloned().fold(f64::MIN, f64::max);
    let (y0, y1) = (ymin.log10().floor(), ymax.log10().ceil());
    let px = |x: f64| l + (x - x0) / (x1 - x0).max(1e-9) * (w - l - r);
    let py = |y: f64| t + (y1 - y.max(1.0).log10()) / (y1 - y0).max(1e-9) * (h - t - b);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="14">Sync append, batch 1, {payload} B: events/s vs threads (log-log)</text>"#,
        (l + w - r) / 2.0
    );
    for d in (y0 as i32)..=(y1 as i32) {
        let y = py(10f64.powi(d));
        let _ = writeln!(
            s,
            r##"<line x1="{l}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            w - r,
            l - 6.0,
            y + 4.0,
            fmt_num(10f64.powi(d))
        );
    }
    for p in &pts {
        let x = px((p.0 as f64).log2());
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{t}" x2="{x:.1}" y2="{:.1}" stroke="#eee"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            h - b,
            h - b + 18.0,
            p.0
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">threads</text>"#,
        (l + w - r) / 2.0,
        h - 18.0
    );
    let _ = writeln!(
        s,
        r#"<text x="18" y="{:.1}" text-anchor="middle" transform="rotate(-90 18 {:.1})">events/s</text>"#,
        (t + h - b) / 2.0,
        (t + h - b) / 2.0
    );
    let _ = writeln!(
        s,
        r##"<rect x="{l}" y="{t}" width="{:.1}" height="{:.1}" fill="none" stroke="#888"/>"##,
        w - l - r,
        h - t - b
    );
    type Pick = fn(&SyncPoint) -> f64;
    let series: [(&str, &str, Pick); 3] = [
        ("evstore (group commit)", "#1f77b4", |p| p.2),
        ("raw pwrite+fdatasync", "#2ca02c", |p| p.4),
        ("SQLite WAL, FULL", "#d62728", |p| p.3),
    ];
    for (k, (name, color, get)) in series.iter().enumerate() {
        let path: Vec<String> = pts
            .iter()
            .map(|p| format!("{:.1},{:.1}", px((p.0 as f64).log2()), py(get(p))))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
            path.join(" ")
        );
        for p in &pts {
            let (x, y) = (px((p.0 as f64).log2()), py(get(p)));
            let _ = writeln!(
                s,
                r#"<circle cx="{x:.1}" cy="{y:.1}" r="3.5" fill="{color}"/><text x="{:.1}" y="{:.1}" font-size="10" fill="{color}">{}</text>"#,
                x + 5.0,
                y - 6.0,
                fmt_num(get(p))
            );
        }
        let ly = t + 20.0 + 22.0 * k as f64;
        let _ = writeln!(
            s,
            r#"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{color}" stroke-width="3"/><text x="{:.1}" y="{:.1}">{name}</text>"#,
            w - r + 10.0,
            w - r + 30.0,
            w - r + 35.0,
            ly + 4.0
        );
    }
    let _ = writeln!(s, "</svg>");
    Some(s)
}

// ---------------------------------------------------------------------------------------------

fn main() {
    let cfg = Cfg::from_env();
    let started = Instant::now();
    let mut rep = Report::default();
    println!(
        "evstore bench suite: mode {}, temp dir {}",
        match cfg.mode {
            Mode::Test => "test (smoke)",
            Mode::Quick => "quick",
            Mode::Full => "full",
        },
        std::env::temp_dir().display()
    );
    type Section<'a> = &'a dyn Fn(&Cfg, &mut Report);
    let sections: [(&str, Section<'_>); 6] = [
        ("append", &section_append),
        ("sync", &section_sync),
        ("aggregate", &section_aggregate),
        ("open|read", &section_open_read),
        ("open10m", &|c: &Cfg, r: &mut Report| {
            if c.ten_million {
                section_open_10m(r)
            }
        }),
        ("load", &section_load),
    ];
    for (name, f) in sections {
        if name.split('|').any(|n| cfg.wants(n)) {
            let t = Instant::now();
            f(&cfg, &mut rep);
            println!("SECTION {name} took {:.1} s", t.elapsed().as_secs_f64());
        }
    }
    let md = rep.markdown();
    println!("\n{md}");
    if cfg.mode != Mode::Test {
        let _ = std::fs::create_dir_all(&cfg.out_dir);
        let _ = std::fs::write(cfg.out_dir.join("report.md"), &md);
        if let Some(svg) = svg_plot(&rep, 100) {
            let _ = std::fs::write(cfg.out_dir.join("sync_threads.svg"), svg);
        }
        println!("wrote {}", cfg.out_dir.display());
    }
    println!("total {:.1} s", started.elapsed().as_secs_f64());
}
