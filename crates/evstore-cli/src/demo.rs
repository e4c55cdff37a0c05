//! `evstore demo`: a realistic order service run in-process, then a short report.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Args;

use crate::orders::history_line;
use crate::text::{bytes, group, money, time};
use crate::{line, open_or_create, CliError, CliResult};
use evstore::maintenance::{self, Verdict};
use evstore::projection::{checkpoint_path, Projection, ProjectionRunner};
use evstore::saga::{saga_checkpoint_path, Saga, SagaError, SagaRunner};
use evstore::{Durability, Store};
use evstore_orders::projections::{OrderSummaries, OrderSummary};
use evstore_orders::saga::{
    OrderSaga, OrderSagaHandler, OrderSagaRunner, PaymentShippingSimulator,
};
use evstore_orders::{Order, OrderService, OrderStatus};

pub const EXAMPLES: &str = "\
Creates orders across users, adds items (prices in cents), and confirms, cancels, ships and
delivers a realistic mix from several threads (group commit), with a snapshot every 10
events. Then reports throughput, one order's full history, the same order in the past (time
travel), snapshot use, one user's orders, and a full verify of the file. Re-running on the
same file continues it.

Examples:
  evstore demo
  evstore demo --file /tmp/shop.evs --orders 5000 --threads 8";

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The store file (created if missing; re-running continues it).
    #[arg(long, default_value = "evstore-demo.evs")]
    file: PathBuf,
    /// Orders to create.
    #[arg(long, default_value_t = 1000)]
    orders: u64,
    /// Distinct users the orders belong to.
    #[arg(long, default_value_t = 50)]
    users: u64,
    /// Threads running commands concurrently.
    #[arg(long, default_value_t = 4)]
    threads: u64,
}

const CATALOG: [(&str, i64); 12] = [
    ("espresso-beans-1kg", 1899),
    ("oat-milk-6pack", 1194),
    ("pour-over-kettle", 4950),
    ("ceramic-mug", 1250),
    ("paper-filters-100", 599),
    ("burr-grinder", 12900),
    ("tea-sampler", 2475),
    ("travel-tumbler", 2299),
    ("descaler", 899),
    ("gift-card-25", 2500),
    ("chocolate-bar", 350),
    ("cold-brew-jar", 3199),
];

/// A small deterministic generator (xorshift64*), so the demo needs no `rand`.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[derive(Default)]
struct ThreadReport {
    /// (order id, events written for it).
    orders: Vec<(String, u64)>,
}

/// Payments above this amount fail in the simulated payment provider (the saga then cancels).
const PAYMENT_LIMIT_CENTS: i64 = 50_000;

type Summaries<'a> = ProjectionRunner<OrderSummaries, &'a Store>;

fn saga_err(e: SagaError) -> CliError {
    match e {
        SagaError::Store(e) => CliError::from(e),
        other => CliError::msg(format!("order saga: {other}")),
    }
}

pub fn run(args: DemoArgs, out: &mut dyn Write) -> CliResult<()> {
    let threads = args.threads.clamp(1, 64);
    let users = args.users.max(1);
    let file = &args.file;
    let existed = file.exists();
    let store = open_or_create(file, Durability::Sync)?;
    let before = store.head_position().map_or(0, |p| p + 1);
    line(
        out,
        format!("evstore demo: an order service on {}", file.display()),
    )?;
    if existed {
        line(
            out,
            format!(
                "  reopened: {} events in {} streams already there (recovered {} frames); adding more",
                group(before),
                group(store.stats().streams),
                group(store.recovery_report().frames)
            ),
        )?;
    } else {
        line(
            out,
            format!(
                "  created a new log (segments of {})",
                bytes(store.options().segment_size)
            ),
        )?;
    }
    line(
        out,
        format!(
            "  {} orders for {} users from {} threads (Sync durability, snapshot every 10 events);",
            group(args.orders),
            users,
            threads,
        ),
    )?;
    line(
        out,
        "  the order saga and a simulated payment/shipping service fulfil confirmed orders live",
    )?;
    line(
        out,
        format!(
            "  (payments above {} fail and the saga cancels the order)...",
            money(PAYMENT_LIMIT_CENTS)
        ),
    )?;
    out.flush()?;

    let service = OrderService::new(&store).with_snapshot_every(10);
    let mut saga: OrderSagaRunner<&Store> = SagaRunner::open(
        &store,
        OrderSagaHandler::new(OrderService::new(&store).with_snapshot_every(10)),
        saga_checkpoint_path(store.path(), OrderSaga::NAME),
    )
    .map_err(saga_err)?;
    let mut world = PaymentShippingSimulator::new(&store, 0, PAYMENT_LIMIT_CENTS);
    let mut summaries: Summaries<'_> =
        ProjectionRunner::open(&store, checkpoint_path(store.path(), OrderSummaries::NAME))?;

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(7, |d| d.as_nanos() as u64);
    let started = Instant::now();
    let writers_done = AtomicBool::new(false);
    let (reports, fulfilment) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let service = &service;
                let count = args.orders / threads + u64::from(t < args.orders % threads);
                scope.spawn(move || {
                    run_orders(
                        service,
                        count,
                        users,
                        Rng::new(seed ^ (t + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
                    )
                })
            })
            .collect();
        let (saga, world, done) = (&mut saga, &mut world, &writers_done);
        let fulfil = scope.spawn(move || -> CliResult<()> {
            // Both sides react as events land; stop once the writers are done and a whole
            // round finds nothing left to do.
            loop {
                let finished = done.load(Ordering::Acquire);
                let a = saga
                    .step(256, Duration::from_millis(20))
                    .map_err(saga_err)?;
                let b = world.step(256, Duration::from_millis(5))?;
                if finished && a == 0 && b == 0 {
                    return Ok(());
                }
            }
        });
        let reports: Vec<CliResult<ThreadReport>> = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(CliError::msg("a demo thread panicked")))
            })
            .collect();
        writers_done.store(true, Ordering::Release);
        let fulfilment = fulfil
            .join()
            .unwrap_or_else(|_| Err(CliError::msg("the fulfilment thread panicked")));
        (reports, fulfilment)
    });
    let mut all = ThreadReport::default();
    for r in reports {
        all.orders.extend(r?.orders);
    }
    fulfilment?;

    // Deliver most of the orders the saga shipped.
    summaries.catch_up()?;
    let shipped: Vec<String> = summaries.handle().read(|p| {
        all.orders
            .iter()
            .filter(|(id, _)| {
                p.get_order_summary(id)
                    .is_some_and(|s| s.status == OrderStatus::Shipped)
            })
            .map(|(id, _)| id.clone())
            .collect()
    });
    let mut rng = Rng::new(seed ^ 0xD1B5_4A32_D192_ED03);
    let to_deliver: Vec<&String> = shipped.iter().filter(|_| rng.below(100) < 75).collect();
    std::thread::scope(|scope| -> CliResult<()> {
        let chunk = to_deliver.len().div_ceil(threads as usize).max(1);
        let handles: Vec<_> = to_deliver
            .chunks(chunk)
            .map(|ids| {
                let service = &service;
                scope.spawn(move || -> CliResult<()> {
                    for id in ids {
                        service.deliver(id)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join()
                .unwrap_or_else(|_| Err(CliError::msg("a demo thread panicked")))?;
        }
        Ok(())
    })?;
    let elapsed = started.elapsed().as_secs_f64().max(1e-9);
    summaries.catch_up()?;
    let after = store.head_position().map_or(0, |p| p + 1);
    let written = after - before;
    let st = store.stats();

    line(out, "")?;
    line(out, "Written")?;
    line(
        out,
        format!(
            "  {} events ({} orders, their sagas, payments and shipments) in {:.2} s: {} events/s",
            group(written),
            group(all.orders.len() as u64),
            elapsed,
            group((written as f64 / elapsed) as u64)
        ),
    )?;
    line(
        out,
        format!(
            "  group commit: {} appends shared {} fsyncs ({:.1} appends per fsync)",
            group(st.appends),
            group(st.data_syncs),
            st.appends as f64 / st.data_syncs.max(1) as f64
        ),
    )?;
    let ss = saga.stats().clone();
    line(
        out,
        format!(
            "  order saga: {} triggers, {} reactions, {} commands executed ({} refused); payment/shipping simulator answered {} requests",
            group(ss.triggers),
            group(ss.reactions_appended),
            group(ss.commands_executed),
            ss.commands_refused,
            group(world.handled())
        ),
    )?;
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    summaries.handle().read(|p| {
        for (id, _) in &all.orders {
            if let Some(s) = p.get_order_summary(id) {
                *outcomes.entry(s.status.to_string()).or_default() += 1;
            }
        }
    });
    let outcomes = ["delivered", "shipped", "confirmed", "cancelled", "pending"]
        .iter()
        .map(|k| format!("{} {k}", outcomes.get(*k).copied().unwrap_or(0)))
        .collect::<Vec<_>>()
        .join(", ");
    line(out, format!("  outcomes: {outcomes}"))?;

    // The sample: the order of this run with the most events.
    let sample = summaries.handle().read(|p| {
        all.orders
            .iter()
            .filter_map(|(id, _)| p.get_order_summary(id))
            .max_by_key(|s| (s.version, s.status == OrderStatus::Delivered))
            .map(|s| s.order_id.clone())
    });
    let Some(sample) = sample else {
        line(out, "  (no orders were created; nothing more to show)")?;
        drop((saga, world, summaries, service));
        store.close()?;
        return verify_section(file, out);
    };
    let history = service.history(&sample)?;
    let Some(last) = history.last() else {
        return Err(CliError::msg(format!(
            "order {sample} has no history right after being written"
        )));
    };
    let user = last.state.user_id().to_string();
    line(out, "")?;
    line(
        out,
        format!("Sample order {sample} ({user}): full history, decoded"),
    )?;
    for h in &history {
        line(
            out,
            format!(
                "  {}",
                history_line(
                    h.recorded.version,
                    h.recorded.recorded_at,
                    &h.event,
                    &h.state
                )
            ),
        )?;
    }
    if let Ok(s) = OrderSaga::load(&saga, &sample) {
        line(
            out,
            format!(
                "  saga: {:?}, payment of {} requested{}",
                s.status,
                money(s.amount_cents),
                s.failure_reason
                    .map(|r| format!(", failed: {r}"))
                    .unwrap_or_default()
            ),
        )?;
    }

    // Time travel: the order halfway through its life.
    let mid = &history[(history.len() - 1) / 2];
    line(out, "")?;
    line(out, "Time travel")?;
    let at_version = service.load_at_version(&sample, mid.recorded.version)?;
    let as_of = service.load_as_of(&sample, mid.recorded.recorded_at)?;
    let now = service.get_order(&sample)?;
    let describe = |o: &Option<Order>| match o {
        Some(o) => format!(
            "{}, {} item{}, total {}",
            o.status(),
            o.items().len(),
            if o.items().len() == 1 { "" } else { "s" },
            money(o.total_cents())
        ),
        None => "did not exist".into(),
    };
    line(
        out,
        format!(
            "  load_at_version({}):  {}",
            mid.recorded.version,
            describe(&at_version)
        ),
    )?;
    line(
        out,
        format!(
            "  load_as_of({}):  {}",
            time(mid.recorded.recorded_at),
            describe(&as_of)
        ),
    )?;
    line(
        out,
        format!(
            "  now (version {}):  {}",
            last.recorded.version,
            describe(&now)
        ),
    )?;
    // A rule the aggregate enforces.
    if let Err(e) = service.add_item(&sample, "late-addition", 1, 100) {
        line(
            out,
            format!(
                "  adding an item now is refused: {}",
                CliError::from(e).message
            ),
        )?;
    }

    let snap = store.snapshot_stats()?;
    line(out, "")?;
    line(out, "Snapshots (every 10 events of an order)")?;
    line(
        out,
        format!(
            "  saved {}, loads served from a snapshot {}, orders with a live snapshot {}, ignored {} (stale {}, ahead of log {}, undecodable {})",
            group(snap.saved),
            group(snap.used),
            group(snap.live),
            snap.ignored_stale + snap.ignored_ahead_of_log + snap.ignored_undecodable,
            snap.ignored_stale,
            snap.ignored_ahead_of_log,
            snap.ignored_undecodable
        ),
    )?;

    let query_started = Instant::now();
    let orders: Vec<OrderSummary> = summaries
        .handle()
        .read(|p| p.get_user_orders(&user).into_iter().cloned().collect());
    let query_us = query_started.elapsed().as_secs_f64() * 1e6;
    line(out, "")?;
    line(
        out,
        format!(
            "Orders of {user} (order-summaries projection at position {}, query {query_us:.0} µs)",
            summaries.position()
        ),
    )?;
    let mut by_status: BTreeMap<String, (u64, i64)> = BTreeMap::new();
    for s in &orders {
        let e = by_status.entry(s.status.to_string()).or_default();
        e.0 += 1;
        e.1 += s.total_cents;
    }
    line(
        out,
        format!(
            "  {} orders: {}",
            orders.len(),
            by_status
                .iter()
                .map(|(s, (n, total))| format!("{n} {s} ({})", money(*total)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )?;
    for s in orders.iter().take(3) {
        line(
            out,
            format!(
                "  {}  {:<9}  {:>2} items  {:>9}",
                s.order_id,
                s.status.to_string(),
                s.line_count,
                money(s.total_cents)
            ),
        )?;
    }
    if orders.len() > 3 {
        line(out, format!("  ... (evstore orders list --user {user})"))?;
    }

    summaries.checkpoint()?;
    saga.checkpoint().map_err(saga_err)?;
    drop((saga, world, summaries, service));
    let total = store.head_position().map_or(0, |p| p + 1);
    store.close()?;
    verify_section(file, out)?;
    line(out, "")?;
    line(
        out,
        format!(
            "{} events in {}. Try: evstore orders show {sample} --file {}",
            group(total),
            file.display(),
            file.display()
        ),
    )
}

fn verify_section(file: &Path, out: &mut dyn Write) -> CliResult<()> {
    line(out, "")?;
    line(out, "Verify (full read-only scan of the closed file)")?;
    let r = maintenance::verify(file)?;
    let verdict = match &r.verdict {
        Verdict::Clean => "clean".to_string(),
        Verdict::TornTail {
            segment, offset, ..
        } => format!("torn tail at segment {segment} offset {offset}"),
        Verdict::Corrupt { site, what } => {
            format!("CORRUPT at {}: {what}", crate::ops::place(site))
        }
    };
    line(
        out,
        format!(
            "  {verdict}: {} events in {} frames, {} streams, {} segment{}, {}",
            group(r.events),
            group(r.frames),
            group(r.streams),
            r.segments,
            if r.segments == 1 { "" } else { "s" },
            bytes(r.file_bytes)
        ),
    )?;
    if let Some(s) = &r.sidecar {
        line(
            out,
            format!(
                "  snapshot sidecar: {}, {} live snapshots, {} damaged records",
                bytes(s.bytes),
                group(s.live_snapshots),
                s.corrupt_records
            ),
        )?;
    }
    if r.verdict != Verdict::Clean {
        return Err(CliError::new(3, "the demo store did not verify clean"));
    }
    Ok(())
}

/// One thread's share: create orders and drive each through a realistic life.
fn run_orders(
    service: &OrderService<&Store>,
    count: u64,
    users: u64,
    mut rng: Rng,
) -> CliResult<ThreadReport> {
    let mut report = ThreadReport::default();
    for _ in 0..count {
        let user = format!("user-{:02}", rng.below(users) + 1);
        let id = service.create_order(&user)?;
        let mut events = 1;
        // 1..=9 lines, so the busiest orders pass 10 events and get a snapshot.
        let lines = 1 + rng.below(4) + rng.below(3) + rng.below(3);
        for _ in 0..lines {
            let (product, price) = CATALOG[rng.below(CATALOG.len() as u64) as usize];
            let quantity = 1 + rng.below(3) as u32;
            service.add_item(&id, product, quantity, price)?;
            events += 1;
        }
        let roll = rng.below(100);
        if roll < 8 {
            // Left pending (an abandoned cart).
        } else if roll < 18 {
            service.cancel(&id, "customer changed their mind")?;
            events += 1;
        } else {
            // The saga takes it from here: payment, shipping (or cancellation).
            service.confirm(&id)?;
            events += 1;
        }
        report.orders.push((id, events));
    }
    Ok(report)
}
