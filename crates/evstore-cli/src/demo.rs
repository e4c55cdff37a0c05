//! `evstore demo`: a realistic order service run in-process, then a short report.
//!
//! [`run`] goes phase by phase: writer threads create and drive orders while the order saga
//! and a simulated payment/shipping service fulfil them live ([`Demo::write`]); most shipped
//! orders are delivered; then the report: throughput and outcomes, limited stock (one rule
//! across all orders, enforced with a Dynamic Consistency Boundary: a refused oversell and a
//! cancel releasing stock, [`stock_section`]), a sample order's history and time travel,
//! snapshot use, one user's orders from the projection, and a verify of the closed file.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;

use crate::orders::{availability, history_line};
use crate::text::{bytes, group, money, per_second, time};
use crate::{line, open_or_create, CliError, CliResult};
use evstore::checkpoint_store::{CheckpointStore, FileCheckpoint};
use evstore::maintenance::{self, Verdict};
use evstore::projection::{checkpoint_path, Projection, ProjectionRunner};
use evstore::repository::{HistoryEntry, RepositoryError};
use evstore::saga::{saga_checkpoint_path, Saga, SagaError, SagaRunner};
use evstore::subscription::EventSource;
use evstore::{Durability, EventStorage, Store, StoreStats};
use evstore_orders::projections::{OrderSummaries, OrderSummary};
use evstore_orders::saga::{
    OrderSaga, OrderSagaHandler, OrderSagaRunner, PaymentShippingSimulator,
};
use evstore_orders::{Order, OrderError, OrderService, OrderStatus};
use evstore_postgres::{OrderSummariesTable, PgCheckpointStore, PgProjector, PgStore};

pub const EXAMPLES: &str = "\
Creates orders across users, adds items (prices in cents), and confirms, cancels, ships and
delivers a realistic mix from several threads (group commit), with a snapshot every 10
events. Then reports throughput; limited stock (a product that can never be oversold across
all orders: orders reserve it, one add-item is refused because it would oversell, a cancel
releases stock, and threads race for the last units; 6 of the --orders when there are at
least 12); one order's full history, the same order in the past (time travel), snapshot use,
one user's orders, and a full verify of the file. Re-running on the same file continues it.

With --database-url the same run goes to PostgreSQL: checkpoints in evstore_checkpoints, and
the Order summaries also kept in PostgreSQL's order_projections table (updated exactly once,
with their checkpoint, in one transaction).

Examples:
  evstore demo
  evstore demo --file /tmp/shop.evs --orders 5000 --threads 8
  evstore demo --database-url postgres://app@%2Ftmp/shop --orders 200";

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The store file (created if missing; re-running continues it).
    #[arg(long, default_value = "evstore-demo.evs")]
    file: PathBuf,
    /// Run on the PostgreSQL store at this postgres:// URL instead of a file (the schema is
    /// created if missing; re-running continues it).
    #[arg(long, conflicts_with = "file")]
    database_url: Option<String>,
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

/// What the demo needs of a store: both backend traits (the file store and PostgreSQL).
pub trait DemoStore: EventStorage + EventSource {}
impl<T: EventStorage + EventSource> DemoStore for T {}

/// The store the demo's parts share.
type H<'s> = &'s dyn DemoStore;

type Summaries<'a> = ProjectionRunner<OrderSummaries, H<'a>>;

fn saga_err(e: SagaError) -> CliError {
    match e {
        SagaError::Store(e) => CliError::from(e),
        other => CliError::msg(format!("order saga: {other}")),
    }
}

/// What to run, from the command line (threads 1..=64, at least one user), with the seed of
/// this run's random choices.
struct Plan {
    /// Orders the writer threads create.
    orders: u64,
    /// Orders the limited-stock section creates: [`STOCK_DEMO_ORDERS`] of the `--orders`
    /// when there are at least twice as many, else 0 (the section is skipped).
    stock_orders: u64,
    users: u64,
    threads: u64,
    seed: u64,
}

impl Plan {
    fn new(args: &DemoArgs) -> Plan {
        let stock_orders = if args.orders >= 2 * STOCK_DEMO_ORDERS {
            STOCK_DEMO_ORDERS
        } else {
            0
        };
        Plan {
            orders: args.orders - stock_orders,
            stock_orders,
            users: args.users.max(1),
            threads: args.threads.clamp(1, 64),
            seed: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(7, |d| d.as_nanos() as u64),
        }
    }
}

/// The limited product of [`stock_section`].
const LIMITED_PRODUCT: &str = "limited-edition-grinder";
/// Its unit price, cents.
const LIMITED_PRICE_CENTS: i64 = 34_900;
/// Threads racing for the last units in [`stock_section`].
const STOCK_RACERS: usize = 4;
/// Orders [`stock_section`] creates: two, then one per racer.
const STOCK_DEMO_ORDERS: u64 = 2 + STOCK_RACERS as u64;

/// Limited stock, enforced across all orders with a DCB append condition: the product gets 3
/// more units than orders hold; order A reserves 2; order B asks for 2 and is refused (only 1
/// left); B takes the last one; cancelling A gives its 2 back; then `STOCK_RACERS` threads,
/// each with its own order, race for those 2 units and exactly 2 win.
fn stock_section(out: &mut dyn Write, store: &dyn EventStorage) -> CliResult<()> {
    let orders = OrderService::new(store);
    let p = LIMITED_PRODUCT;
    line(out, "")?;
    line(
        out,
        "Limited stock (one rule across all orders, a Dynamic Consistency Boundary on tag product:<id>)",
    )?;
    let held = orders.product_stock(p)?.reserved;
    let set = orders.set_stock(p, held + 3)?;
    line(out, format!("  set stock of {p}: {}", availability(&set)))?;
    let a = orders.create_order("stock-demo-a")?;
    orders.add_item(&a, p, 2, LIMITED_PRICE_CENTS)?;
    line(
        out,
        format!(
            "  order {a} reserves 2: {}",
            availability(&orders.product_stock(p)?)
        ),
    )?;
    let b = orders.create_order("stock-demo-b")?;
    match orders.add_item(&b, p, 2, LIMITED_PRICE_CENTS) {
        Err(RepositoryError::Domain(refusal @ OrderError::OutOfStock { .. })) => {
            line(out, format!("  order {b} asks for 2: REFUSED, {refusal}"))?;
        }
        Err(e) => return Err(e.into()),
        Ok(_) => {
            return Err(CliError::msg(format!(
                "the stock rule let order {b} oversell {p}"
            )))
        }
    }
    orders.add_item(&b, p, 1, LIMITED_PRICE_CENTS)?;
    line(
        out,
        format!(
            "  order {b} takes the last one: {}",
            availability(&orders.product_stock(p)?)
        ),
    )?;
    orders.cancel(&a, "customer changed their mind")?;
    line(
        out,
        format!(
            "  order {a} cancelled, releasing 2: {}",
            availability(&orders.product_stock(p)?)
        ),
    )?;
    let outcomes = std::thread::scope(|scope| {
        let racers: Vec<_> = (0..STOCK_RACERS)
            .map(|i| {
                let orders = orders.clone();
                scope.spawn(move || {
                    let id = orders.create_order(&format!("stock-demo-racer-{i}"))?;
                    match orders.add_item(&id, p, 1, LIMITED_PRICE_CENTS) {
                        Ok(_) => Ok(true),
                        Err(RepositoryError::Domain(OrderError::OutOfStock { .. })) => Ok(false),
                        Err(e) => Err(e),
                    }
                })
            })
            .collect();
        racers
            .into_iter()
            .map(|r| {
                r.join()
                    .map_err(|_| CliError::msg("a stock racer thread panicked"))?
                    .map_err(CliError::from)
            })
            .collect::<CliResult<Vec<bool>>>()
    })?;
    let won = outcomes.iter().filter(|w| **w).count();
    line(
        out,
        format!(
            "  {STOCK_RACERS} threads race for the last units, one new order each: {won} got one, {} refused; {}",
            STOCK_RACERS - won,
            availability(&orders.product_stock(p)?)
        ),
    )
}

/// The next global position of `store` (its event count).
fn next_position(store: &dyn DemoStore) -> u64 {
    store.head_position().map_or(0, |p| p + 1)
}

/// The demo, phase by phase: write (with the saga fulfilling orders live), deliver, report,
/// a sample order's history and time travel, snapshots, the projection, verify.
pub fn run(args: &DemoArgs, out: &mut dyn Write) -> CliResult<()> {
    if let Some(url) = &args.database_url {
        return run_pg(args, url, out);
    }
    let plan = Plan::new(args);
    let file = &args.file;
    let existed = file.exists();
    let store = open_or_create(file, Durability::Sync)?;
    let before = next_position(&store);
    introduce(out, &store, file, existed, before, &plan)?;

    let mut demo = Demo::open(
        &store,
        Box::new(FileCheckpoint::new(saga_checkpoint_path(
            store.path(),
            OrderSaga::NAME,
        ))),
        Box::new(FileCheckpoint::new(checkpoint_path(
            store.path(),
            OrderSummaries::NAME,
        ))),
    )?;
    let started = Instant::now();
    let all = demo.write(&plan)?;
    demo.deliver_most_shipped(&all, &plan)?;
    let elapsed = started.elapsed();
    demo.summaries.catch_up()?;
    let written = next_position(&store) - before;
    demo.report_written(out, &all, written, elapsed, Some(&store.stats()))?;
    demo.report_outcomes(out, &all)?;
    if plan.stock_orders > 0 {
        stock_section(out, &store)?;
    }

    let Some(sample) = demo.sample(&all) else {
        line(out, "  (no orders were created; nothing more to show)")?;
        drop(demo);
        store.close()?;
        return verify_section(file, out);
    };
    let history = demo.sample_history(out, &sample)?;
    demo.time_travel(out, &sample, &history)?;
    snapshots_section(out, &store)?;
    let user = history.last().map_or("", |h| h.state.user_id());
    demo.projection_section(out, user)?;

    demo.checkpoint()?;
    drop(demo);
    let total = next_position(&store);
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

/// `evstore demo --database-url`: the same run on PostgreSQL; the report adds the Order
/// summaries kept in PostgreSQL (a `PgProjector`) and a check that positions are dense.
fn run_pg(args: &DemoArgs, url: &str, out: &mut dyn Write) -> CliResult<()> {
    let plan = Plan::new(args);
    let store = Arc::new(crate::copy::connect(url)?);
    let before = next_position(&*store);
    line(
        out,
        format!(
            "evstore demo: an order service on PostgreSQL (schema {})",
            store.schema()
        ),
    )?;
    if before > 0 {
        line(
            out,
            format!("  {} events already there; adding more", group(before)),
        )?;
    }
    line(
        out,
        format!(
            "  {} orders for {} users from {} threads (snapshot every 10 events, in evstore_snapshots);",
            group(plan.orders + plan.stock_orders),
            plan.users,
            plan.threads,
        ),
    )?;
    line(
        out,
        "  the order saga and a simulated payment/shipping service fulfil confirmed orders live...",
    )?;
    out.flush()?;
    let handle: H<'_> = &*store;
    let mut demo = Demo::open(
        handle,
        Box::new(PgCheckpointStore::new(store.clone(), "saga-OrderSaga")),
        Box::new(PgCheckpointStore::new(
            store.clone(),
            "proj-order-summaries",
        )),
    )?;
    let started = Instant::now();
    let all = demo.write(&plan)?;
    demo.deliver_most_shipped(&all, &plan)?;
    let elapsed = started.elapsed();
    demo.summaries.catch_up()?;
    let written = next_position(&*store) - before;
    demo.report_written(out, &all, written, elapsed, None)?;
    demo.report_outcomes(out, &all)?;
    if plan.stock_orders > 0 {
        stock_section(out, &*store)?;
    }
    let Some(sample) = demo.sample(&all) else {
        return line(out, "  (no orders were created; nothing more to show)");
    };
    let history = demo.sample_history(out, &sample)?;
    demo.time_travel(out, &sample, &history)?;
    let user = history.last().map_or("", |h| h.state.user_id()).to_string();
    demo.projection_section(out, &user)?;
    demo.checkpoint()?;
    drop(demo);
    pg_read_model_section(out, &store, &user)?;
    let st = store.stats()?;
    let head = PgStore::head_position(&store)?;
    line(out, "")?;
    line(out, "Check")?;
    let dense = head.map_or(0, |h| h + 1) == st.events;
    line(
        out,
        format!(
            "  {} events, positions 0..={} {}; {} snapshots",
            group(st.events),
            head.map_or("-".into(), |h| h.to_string()),
            if dense { "dense (no gap)" } else { "NOT dense" },
            group(st.snapshots)
        ),
    )?;
    if !dense {
        return Err(CliError::new(3, "the demo store's positions are not dense"));
    }
    line(out, "")?;
    line(
        out,
        format!("Try: evstore orders show {sample} --database-url {url}"),
    )
}

/// The Order summaries kept in PostgreSQL (`order_projections`), brought up to date by a
/// `PgProjector` (model and checkpoint in one transaction), then queried by user.
fn pg_read_model_section(out: &mut dyn Write, store: &Arc<PgStore>, user: &str) -> CliResult<()> {
    let mut projector = PgProjector::open(store.clone(), OrderSummariesTable::default())?;
    let applied = projector.catch_up()?;
    line(out, "")?;
    line(
        out,
        format!(
            "Read model in PostgreSQL (order_projections): {} events applied, checkpoint at position {}",
            group(applied),
            group(projector.next_position())
        ),
    )?;
    let rows = OrderSummariesTable::user_orders(store, user)?;
    line(out, format!("  orders of {user}: {}", rows.len()))?;
    for r in rows.iter().take(5) {
        line(
            out,
            format!(
                "  {:<36}  {:<9}  {:>3} units  {:>10}",
                r.order_id,
                r.status,
                r.item_count,
                money(r.total_cents)
            ),
        )?;
    }
    Ok(())
}

/// The opening lines: the file (new, or reopened with what it holds) and what will run.
fn introduce(
    out: &mut dyn Write,
    store: &Store,
    file: &Path,
    existed: bool,
    before: u64,
    plan: &Plan,
) -> CliResult<()> {
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
            group(plan.orders + plan.stock_orders),
            plan.users,
            plan.threads,
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
    Ok(())
}

/// The demo's parts over one open store: the service the writers use, the order saga, the
/// simulated payment/shipping service and the order-summaries projection.
struct Demo<'s> {
    service: OrderService<H<'s>>,
    saga: OrderSagaRunner<H<'s>>,
    world: PaymentShippingSimulator<H<'s>>,
    summaries: Summaries<'s>,
}

impl<'s> Demo<'s> {
    /// The parts, each resuming from its checkpoint beside the log (the simulator from the
    /// start: its answers are idempotent).
    fn open(
        store: H<'s>,
        saga_checkpoint: Box<dyn CheckpointStore>,
        summaries_checkpoint: Box<dyn CheckpointStore>,
    ) -> CliResult<Demo<'s>> {
        let service = OrderService::new(store).with_snapshot_every(10);
        let saga: OrderSagaRunner<H<'s>> = SagaRunner::open_with(
            store,
            OrderSagaHandler::new(OrderService::new(store).with_snapshot_every(10)),
            saga_checkpoint,
        )
        .map_err(saga_err)?;
        let world = PaymentShippingSimulator::new(store, 0, PAYMENT_LIMIT_CENTS);
        let summaries: Summaries<'_> = ProjectionRunner::open_with(store, summaries_checkpoint)?;
        Ok(Demo {
            service,
            saga,
            world,
            summaries,
        })
    }

    /// Write: `plan.threads` threads create and drive orders ([`run_orders`]) while the saga
    /// and the simulated payment/shipping service fulfil confirmed ones as they land.
    fn write(&mut self, plan: &Plan) -> CliResult<ThreadReport> {
        let writers_done = AtomicBool::new(false);
        let (reports, fulfilment) = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..plan.threads)
                .map(|t| {
                    let service = &self.service;
                    let count =
                        plan.orders / plan.threads + u64::from(t < plan.orders % plan.threads);
                    let rng = Rng::new(plan.seed ^ (t + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                    scope.spawn(move || run_orders(service, count, plan.users, rng))
                })
                .collect();
            let (saga, world, done) = (&mut self.saga, &mut self.world, &writers_done);
            let fulfil = scope.spawn(move || fulfil_live(saga, world, done));
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
        Ok(all)
    }

    /// Deliver about three quarters of this run's orders that the saga shipped, from
    /// `plan.threads` threads.
    fn deliver_most_shipped(&mut self, all: &ThreadReport, plan: &Plan) -> CliResult<()> {
        self.summaries.catch_up()?;
        let shipped: Vec<String> = self.summaries.handle().read(|p| {
            all.orders
                .iter()
                .filter(|(id, _)| {
                    p.get_order_summary(id)
                        .is_some_and(|s| s.status == OrderStatus::Shipped)
                })
                .map(|(id, _)| id.clone())
                .collect()
        });
        let mut rng = Rng::new(plan.seed ^ 0xD1B5_4A32_D192_ED03);
        let to_deliver: Vec<&String> = shipped.iter().filter(|_| rng.below(100) < 75).collect();
        let service = &self.service;
        std::thread::scope(|scope| -> CliResult<()> {
            let chunk = to_deliver.len().div_ceil(plan.threads as usize).max(1);
            let handles: Vec<_> = to_deliver
                .chunks(chunk)
                .map(|ids| {
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
        })
    }

    /// The "Written" section: events and throughput, group commit, the saga's work.
    fn report_written(
        &self,
        out: &mut dyn Write,
        all: &ThreadReport,
        written: u64,
        elapsed: Duration,
        st: Option<&StoreStats>,
    ) -> CliResult<()> {
        line(out, "")?;
        line(out, "Written")?;
        line(
            out,
            format!(
                "  {} events ({} orders, their sagas, payments and shipments) in {:.2} s: {} events/s",
                group(written),
                group(all.orders.len() as u64),
                elapsed.as_secs_f64().max(1e-9),
                group(per_second(written, elapsed))
            ),
        )?;
        if let Some(st) = st {
            line(
                out,
                format!(
                    "  group commit: {} appends shared {} fsyncs ({:.1} appends per fsync)",
                    group(st.appends),
                    group(st.data_syncs),
                    st.appends as f64 / st.data_syncs.max(1) as f64
                ),
            )?;
        }
        let ss = self.saga.stats();
        line(
            out,
            format!(
                "  order saga: {} triggers, {} reactions, {} commands executed ({} refused); payment/shipping simulator answered {} requests",
                group(ss.triggers),
                group(ss.reactions_appended),
                group(ss.commands_executed),
                ss.commands_refused,
                group(self.world.handled())
            ),
        )
    }

    /// How this run's orders ended, by status.
    fn report_outcomes(&self, out: &mut dyn Write, all: &ThreadReport) -> CliResult<()> {
        let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
        self.summaries.handle().read(|p| {
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
        line(out, format!("  outcomes: {outcomes}"))
    }

    /// The sample: the order of this run with the most events (`None`: no orders).
    fn sample(&self, all: &ThreadReport) -> Option<String> {
        self.summaries.handle().read(|p| {
            all.orders
                .iter()
                .filter_map(|(id, _)| p.get_order_summary(id))
                .max_by_key(|s| (s.version, s.status == OrderStatus::Delivered))
                .map(|s| s.order_id.clone())
        })
    }

    /// The sample's full history, decoded, and its saga; returns the history (never empty).
    fn sample_history(
        &self,
        out: &mut dyn Write,
        sample: &str,
    ) -> CliResult<Vec<HistoryEntry<Order>>> {
        let history = self.service.history(sample)?;
        let Some(last) = history.last() else {
            return Err(CliError::msg(format!(
                "order {sample} has no history right after being written"
            )));
        };
        let user = last.state.user_id();
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
        if let Ok(s) = OrderSaga::load(&self.saga, sample) {
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
        Ok(history)
    }

    /// Time travel: the sample halfway through its life (by version and by time), now, and a
    /// rule the aggregate enforces.
    fn time_travel(
        &self,
        out: &mut dyn Write,
        sample: &str,
        history: &[HistoryEntry<Order>],
    ) -> CliResult<()> {
        let (Some(mid), Some(last)) = (history.get((history.len() - 1) / 2), history.last()) else {
            return Ok(());
        };
        line(out, "")?;
        line(out, "Time travel")?;
        let at_version = self.service.load_at_version(sample, mid.recorded.version)?;
        let as_of = self.service.load_as_of(sample, mid.recorded.recorded_at)?;
        let now = self.service.get_order(sample)?;
        line(
            out,
            format!(
                "  load_at_version({}):  {}",
                mid.recorded.version,
                describe(at_version.as_ref())
            ),
        )?;
        line(
            out,
            format!(
                "  load_as_of({}):  {}",
                time(mid.recorded.recorded_at),
                describe(as_of.as_ref())
            ),
        )?;
        line(
            out,
            format!(
                "  now (version {}):  {}",
                last.recorded.version,
                describe(now.as_ref())
            ),
        )?;
        if let Err(e) = self.service.add_item(sample, "late-addition", 1, 100) {
            line(
                out,
                format!(
                    "  adding an item now is refused: {}",
                    CliError::from(e).message
                ),
            )?;
        }
        Ok(())
    }

    /// The projection: `user`'s orders from the order-summaries read model, timed.
    fn projection_section(&self, out: &mut dyn Write, user: &str) -> CliResult<()> {
        let query_started = Instant::now();
        let orders: Vec<OrderSummary> = self
            .summaries
            .handle()
            .read(|p| p.get_user_orders(user).into_iter().cloned().collect());
        let query_us = query_started.elapsed().as_secs_f64() * 1e6;
        line(out, "")?;
        line(
            out,
            format!(
                "Orders of {user} (order-summaries projection at position {}, query {query_us:.0} µs)",
                self.summaries.next_position()
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
        Ok(())
    }

    /// Save the projection's and the saga's checkpoints, so a re-run resumes them.
    fn checkpoint(&mut self) -> CliResult<()> {
        self.summaries.checkpoint()?;
        self.saga.checkpoint().map_err(saga_err)
    }
}

/// Saga: the order saga and the simulated payment/shipping service react as events land;
/// they stop once `writers_done` is set and a whole round finds nothing left to do.
fn fulfil_live(
    saga: &mut OrderSagaRunner<H<'_>>,
    world: &mut PaymentShippingSimulator<H<'_>>,
    writers_done: &AtomicBool,
) -> CliResult<()> {
    loop {
        let finished = writers_done.load(Ordering::Acquire);
        let a = saga
            .step(256, Duration::from_millis(20))
            .map_err(saga_err)?;
        let b = world.step(256, Duration::from_millis(5))?;
        if finished && a == 0 && b == 0 {
            return Ok(());
        }
    }
}

/// An order in one line: status, items, total (`None`: it did not exist).
fn describe(order: Option<&Order>) -> String {
    match order {
        Some(o) => format!(
            "{}, {} item{}, total {}",
            o.status(),
            o.items().len(),
            if o.items().len() == 1 { "" } else { "s" },
            money(o.total_cents())
        ),
        None => "did not exist".into(),
    }
}

/// Snapshots: how the snapshot store served this run.
fn snapshots_section(out: &mut dyn Write, store: &Store) -> CliResult<()> {
    let snap = store.snapshot_stats()?;
    line(out, "")?;
    line(out, "Snapshots (every 10 events of an order)")?;
    line(
        out,
        format!(
            "  saved {}, loads served from a snapshot {}, orders with a live snapshot {}, ignored {} (stale {}, ahead of log {}, undecodable {}, other upcasters {})",
            group(snap.saved),
            group(snap.used),
            group(snap.live),
            snap.ignored_stale
                + snap.ignored_ahead_of_log
                + snap.ignored_undecodable
                + snap.ignored_other_upcasters,
            snap.ignored_stale,
            snap.ignored_ahead_of_log,
            snap.ignored_undecodable,
            snap.ignored_other_upcasters
        ),
    )
}

/// Verify: a full read-only scan of the closed file.
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
    service: &OrderService<H<'_>>,
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
