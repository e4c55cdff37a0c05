//! `evstore orders`: the Order service from the shell.

use std::io::Write;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};

use crate::json::Json;
use crate::text::{self, money, order_event_fields, parse_price_cents, time};
use crate::{json_line, line, open_existing, open_or_create, CliError, CliResult};
use evstore::aggregate::{CommandContext, Root};
use evstore::repository::RepositoryError;
use evstore::{Durability, EventStorage, Store};
use evstore_orders::{Order, OrderCommand, OrderError, OrderEvent, OrderService, ProductStock};
use evstore_postgres::PgStore;

pub const EXAMPLES: &str = "\
Examples:
  ID=$(evstore orders create --user alice)
  evstore orders add-item $ID --product book --quantity 2 --price 12.50
  evstore orders confirm $ID
  evstore orders show $ID --json
  evstore orders show $ID --at-version 0
  evstore orders show $ID --as-of 2026-05-01T10:00:00Z
  evstore orders history $ID
  evstore orders list --user alice
  evstore orders --file shop.evs cancel $ID --reason \"out of stock\"
  evstore orders set-stock lamp --units 5
  evstore orders stock lamp
  evstore orders --database-url postgres://app@%2Ftmp/shop list --user alice

Prices are decimal amounts in major units, parsed exactly into cents (12, 12.5, 12.50).
Refused commands (e.g. shipping a pending order) print one line on stderr and exit 1.
Stock: a product limited with set-stock can never be oversold across all orders (add-item
reserves units, cancel releases them; an add that would oversell is refused); products whose
stock was never set are unlimited.";

#[derive(Debug, Args)]
pub struct OrdersArgs {
    /// The store file (created by `create` if missing).
    #[arg(long, global = true, default_value = "evstore-demo.evs")]
    file: PathBuf,
    /// Use the PostgreSQL store at this postgres:// URL instead of a file (the schema is
    /// created if missing).
    #[arg(long, global = true, conflicts_with = "file")]
    database_url: Option<String>,
    /// Print one JSON document instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: OrdersCommand,
}

#[derive(Debug, Subcommand)]
enum OrdersCommand {
    /// Create an order for a user; prints the new order id.
    #[command(after_help = "Example:\n  evstore orders create --user alice")]
    Create {
        /// The customer.
        #[arg(long)]
        user: String,
        /// Use this order id instead of a new random one.
        #[arg(long)]
        id: Option<String>,
    },
    /// Add a line to a pending order.
    #[command(
        after_help = "Example:\n  evstore orders add-item ID --product book --quantity 2 --price 12.50"
    )]
    AddItem {
        /// The order id.
        order: String,
        /// The product id.
        #[arg(long)]
        product: String,
        /// Units (greater than zero).
        #[arg(long, default_value_t = 1)]
        quantity: u32,
        /// Unit price, a decimal amount like 12.50 (exact; at most 2 decimal places).
        #[arg(long, value_parser = parse_price_cents)]
        price: i64,
    },
    /// Confirm a pending order that has items.
    #[command(after_help = "Example:\n  evstore orders confirm ID")]
    Confirm {
        /// The order id.
        order: String,
    },
    /// Cancel a pending or confirmed order.
    #[command(after_help = "Example:\n  evstore orders cancel ID --reason \"out of stock\"")]
    Cancel {
        /// The order id.
        order: String,
        /// Why.
        #[arg(long, default_value = "cancelled by operator")]
        reason: String,
    },
    /// Ship a confirmed order.
    #[command(after_help = "Example:\n  evstore orders ship ID")]
    Ship {
        /// The order id.
        order: String,
    },
    /// Mark a shipped order delivered.
    #[command(after_help = "Example:\n  evstore orders deliver ID")]
    Deliver {
        /// The order id.
        order: String,
    },
    /// Show an order now, or as it was (time travel).
    #[command(
        after_help = "Examples:\n  evstore orders show ID\n  evstore orders show ID --at-version 2\n  evstore orders show ID --as-of 2026-05-01T10:00:00Z --json"
    )]
    Show {
        /// The order id.
        order: String,
        /// The order right after its event at this version (0 = just created).
        #[arg(long, conflicts_with = "as_of")]
        at_version: Option<u64>,
        /// The order as it was at this time (RFC 3339, e.g. 2026-05-01T10:00:00Z).
        #[arg(long, value_parser = parse_time)]
        as_of: Option<DateTime<Utc>>,
    },
    /// List a user's orders.
    #[command(after_help = "Example:\n  evstore orders list --user alice --json")]
    List {
        /// The customer.
        #[arg(long)]
        user: String,
    },
    /// Every event of an order, decoded, with the state after it.
    #[command(after_help = "Example:\n  evstore orders history ID")]
    History {
        /// The order id.
        order: String,
    },
    /// Limit a product to a number of units in total, reserved ones included (refused below
    /// what orders already reserve).
    #[command(after_help = "Example:\n  evstore orders set-stock lamp --units 5")]
    SetStock {
        /// The product id.
        product: String,
        /// Units for sale in total.
        #[arg(long)]
        units: u64,
    },
    /// A product's stock: units in total, reserved by orders, and still available.
    #[command(after_help = "Example:\n  evstore orders stock lamp --json")]
    Stock {
        /// The product id.
        product: String,
    },
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("invalid RFC 3339 time {s:?} ({e}); example: 2026-05-01T10:00:00Z"))
}

pub fn run(args: &OrdersArgs, out: &mut dyn Write) -> CliResult<()> {
    if let Some(url) = &args.database_url {
        let store = crate::copy::connect(url)?;
        let orders = Orders {
            backend: Backend::Pg(&store),
            service: OrderService::new(&store as &dyn EventStorage),
            json: args.json,
        };
        return orders.run(out, &args.command);
    }
    let store = match &args.command {
        OrdersCommand::Create { .. } | OrdersCommand::SetStock { .. } => {
            open_or_create(&args.file, Durability::Sync)?
        }
        _ => open_existing(&args.file, Durability::Sync)?,
    };
    let orders = Orders {
        backend: Backend::File(&store),
        service: OrderService::new(&store as &dyn EventStorage),
        json: args.json,
    };
    orders.run(out, &args.command)
}

/// The store behind `evstore orders`: a log file or PostgreSQL.
#[derive(Clone, Copy)]
enum Backend<'s> {
    File(&'s Store),
    Pg(&'s PgStore),
}

impl Backend<'_> {
    fn stream_exists(self, stream: &str) -> CliResult<bool> {
        Ok(match self {
            Backend::File(s) => s.stream_version(stream).is_some(),
            Backend::Pg(s) => s.stream_version(stream)?.is_some(),
        })
    }

    fn read_by_type(self, event_type: &str) -> CliResult<Vec<evstore::RecordedEvent>> {
        Ok(match self {
            Backend::File(s) => s.read_by_type(event_type, None)?,
            Backend::Pg(s) => s.read_by_type(event_type, None)?,
        })
    }
}

impl Orders<'_> {
    fn run(&self, out: &mut dyn Write, command: &OrdersCommand) -> CliResult<()> {
        let orders = self;
        match command {
            OrdersCommand::Create { user, id } => orders.create(out, user, id.as_deref()),
            OrdersCommand::AddItem {
                order,
                product,
                quantity,
                price,
            } => {
                let command = OrderCommand::AddItem {
                    product_id: product.clone(),
                    quantity: *quantity,
                    price_cents: *price,
                };
                orders.change(out, order, &command)
            }
            OrdersCommand::Confirm { order } => orders.change(out, order, &OrderCommand::Confirm),
            OrdersCommand::Cancel { order, reason } => {
                let command = OrderCommand::Cancel {
                    reason: reason.clone(),
                };
                orders.change(out, order, &command)
            }
            OrdersCommand::Ship { order } => orders.change(out, order, &OrderCommand::Ship),
            OrdersCommand::Deliver { order } => orders.change(out, order, &OrderCommand::Deliver),
            OrdersCommand::Show {
                order,
                at_version,
                as_of,
            } => orders.show(out, order, *at_version, *as_of),
            OrdersCommand::List { user } => orders.list(out, user),
            OrdersCommand::History { order } => orders.history(out, order),
            OrdersCommand::SetStock { product, units } => {
                let stock = self.service.set_stock(product, *units).map_err(refusal)?;
                print_stock(out, &stock, self.json)
            }
            OrdersCommand::Stock { product } => {
                let stock = self.service.product_stock(product).map_err(refusal)?;
                print_stock(out, &stock, self.json)
            }
        }
    }
}

/// The Order service over the open store, and the output format.
struct Orders<'s> {
    backend: Backend<'s>,
    service: OrderService<&'s dyn EventStorage>,
    json: bool,
}

impl Orders<'_> {
    /// `create`: a new order (under `id`, or a new UUID v4); prints its id.
    fn create(&self, out: &mut dyn Write, user: &str, id: Option<&str>) -> CliResult<()> {
        let order_id = id.map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_string);
        let command = OrderCommand::Create {
            order_id: order_id.clone(),
            user_id: user.to_string(),
        };
        let root = execute(&self.service, &order_id, &command)?;
        if self.json {
            json_line(out, &Json::obj([("order_id", root.id().into())]))
        } else {
            line(out, root.id())
        }
    }

    /// `add-item`, `confirm`, `cancel`, `ship`, `deliver`: run `command` on `order`, print
    /// the order after it.
    fn change(&self, out: &mut dyn Write, order: &str, command: &OrderCommand) -> CliResult<()> {
        let root = execute(&self.service, order, command)?;
        print_change(out, &root, self.json)
    }

    /// `show`: the order now, right after its event at `at_version`, or as of `as_of`.
    fn show(
        &self,
        out: &mut dyn Write,
        order: &str,
        at_version: Option<u64>,
        as_of: Option<DateTime<Utc>>,
    ) -> CliResult<()> {
        let repo = self.service.repository();
        let root = match (at_version, as_of) {
            (Some(v), _) => repo.load_at_version(order, v)?,
            (None, Some(t)) => repo.load_as_of(order, t)?,
            (None, None) => repo.load(order)?,
        };
        let Some(root) = root else {
            return Err(match (at_version, as_of) {
                (None, Some(t)) if self.backend.stream_exists(&stream_of(order))? => {
                    CliError::msg(format!("order {order:?} did not exist yet at {}", time(t)))
                }
                _ => CliError::msg(format!("order {order:?} not found")),
            });
        };
        if self.json {
            json_line(out, &order_json(&root))
        } else {
            print_order(out, &root)
        }
    }

    /// `list`: the orders of `user`, as a table or a JSON array of summaries.
    fn list(&self, out: &mut dyn Write, user: &str) -> CliResult<()> {
        let orders = user_orders_in(
            self.backend.read_by_type(OrderEvent::ORDER_CREATED)?,
            &self.service,
            user,
        )?;
        if self.json {
            let list = orders.iter().map(summary_json).collect::<Vec<_>>();
            return json_line(out, &Json::obj([("orders", Json::Arr(list))]));
        }
        if orders.is_empty() {
            return line(out, format!("no orders for user {user:?}"));
        }
        line(
            out,
            format!(
                "{:<36}  {:<9}  {:>5}  {:>10}  {:>7}",
                "ORDER", "STATUS", "ITEMS", "TOTAL", "VERSION"
            ),
        )?;
        for r in &orders {
            let o = r.state();
            line(
                out,
                format!(
                    "{:<36}  {:<9}  {:>5}  {:>10}  {:>7}",
                    r.id(),
                    o.status().to_string(),
                    o.items().len(),
                    money(o.total_cents()),
                    r.version().map_or("-".into(), |v| v.to_string())
                ),
            )?;
        }
        let n = orders.len();
        line(out, format!("{n} order{}", if n == 1 { "" } else { "s" }))
    }

    /// `history`: every event of `order`, decoded, with the state after it.
    fn history(&self, out: &mut dyn Write, order: &str) -> CliResult<()> {
        let history = self.service.history(order)?;
        if history.is_empty() {
            return Err(CliError::msg(format!("order {order:?} not found")));
        }
        if self.json {
            let events = history
                .iter()
                .map(|h| {
                    Json::obj([
                        ("version", h.recorded.version.into()),
                        ("position", h.recorded.position.into()),
                        ("recorded_at", time(h.recorded.recorded_at).into()),
                        ("type", h.recorded.event_type.as_str().into()),
                        ("event_id", h.recorded.event_id.to_string().into()),
                        ("data", order_event_fields(&h.event)),
                        ("status", h.state.status().to_string().into()),
                        ("total_cents", h.state.total_cents().into()),
                    ])
                })
                .collect::<Vec<_>>();
            return json_line(
                out,
                &Json::obj([("order_id", order.into()), ("events", Json::Arr(events))]),
            );
        }
        for h in &history {
            line(
                out,
                history_line(
                    h.recorded.version,
                    h.recorded.recorded_at,
                    &h.event,
                    &h.state,
                ),
            )?;
        }
        Ok(())
    }
}

fn stream_of(order_id: &str) -> String {
    <Order as evstore::aggregate::Aggregate>::stream_id(order_id)
}

fn execute(
    service: &OrderService<&dyn EventStorage>,
    order_id: &str,
    command: &OrderCommand,
) -> CliResult<Root<Order>> {
    service
        .execute(order_id, command, &CommandContext::new_request())
        .map_err(|e| match e {
            RepositoryError::Domain(OrderError::NotFound { .. }) => CliError::from(e),
            RepositoryError::Domain(d) => CliError::msg(format!("order {order_id}: {d}")),
            other => CliError::from(other),
        })
}

/// A refused stock command: its domain reason on one line (it names the product).
fn refusal(e: RepositoryError<OrderError>) -> CliError {
    match e {
        RepositoryError::Domain(d) => CliError::msg(d.to_string()),
        other => CliError::from(other),
    }
}

/// `set-stock` and `stock`: `product lamp: 5 in stock, 3 reserved, 2 available`, or
/// `product pen: unlimited, 7 reserved` ([`availability`]); with `--json` one object.
fn print_stock(out: &mut dyn Write, stock: &ProductStock, json: bool) -> CliResult<()> {
    if json {
        return json_line(
            out,
            &Json::obj([
                ("product_id", stock.product_id.as_str().into()),
                ("stock", Json::opt(stock.stock)),
                ("reserved", stock.reserved.into()),
                ("available", Json::opt(stock.available())),
            ]),
        );
    }
    line(
        out,
        format!("product {}: {}", stock.product_id, availability(stock)),
    )
}

/// A product's availability for people: `5 in stock, 3 reserved, 2 available`, or
/// `unlimited, 3 reserved` for a product whose stock was never set.
pub fn availability(stock: &ProductStock) -> String {
    match (stock.stock, stock.available()) {
        (Some(total), Some(available)) => format!(
            "{total} in stock, {} reserved, {available} available",
            stock.reserved
        ),
        _ => format!("unlimited, {} reserved", stock.reserved),
    }
}

/// One line of an order's history: version, time, event, fields, and the state after it.
pub fn history_line(version: u64, at: DateTime<Utc>, event: &OrderEvent, state: &Order) -> String {
    use evstore::aggregate::DomainEvent;
    format!(
        "v{:<3} {}  {:<17} {:<45} → {}, total {}",
        version,
        time(at),
        event.event_type(),
        text::fields_text(&order_event_fields(event)),
        state.status(),
        money(state.total_cents())
    )
}

/// The `show` JSON document of an order.
pub fn order_json(root: &Root<Order>) -> Json {
    let o = root.state();
    let items = o
        .items()
        .iter()
        .map(|i| {
            Json::obj([
                ("product_id", i.product_id.as_str().into()),
                ("quantity", i.quantity.into()),
                ("price_cents", i.price_cents.into()),
            ])
        })
        .collect::<Vec<_>>();
    Json::obj([
        ("order_id", root.id().into()),
        ("user_id", o.user_id().into()),
        ("status", o.status().to_string().into()),
        ("total_cents", o.total_cents().into()),
        ("items", Json::Arr(items)),
        ("version", Json::opt(root.version())),
        ("cancel_reason", Json::opt(o.cancel_reason())),
        ("created_at", Json::opt(o.created_at().map(time))),
        ("updated_at", Json::opt(o.updated_at().map(time))),
    ])
}

/// The `list` JSON summary of an order.
pub fn summary_json(root: &Root<Order>) -> Json {
    let o = root.state();
    Json::obj([
        ("order_id", root.id().into()),
        ("user_id", o.user_id().into()),
        ("status", o.status().to_string().into()),
        ("total_cents", o.total_cents().into()),
        ("item_count", (o.items().len() as u64).into()),
        ("version", Json::opt(root.version())),
        ("created_at", Json::opt(o.created_at().map(time))),
    ])
}

fn print_change(out: &mut dyn Write, root: &Root<Order>, json: bool) -> CliResult<()> {
    if json {
        return json_line(out, &order_json(root));
    }
    let o = root.state();
    line(
        out,
        format!(
            "order {}: {}, {} item{}, total {} (version {})",
            root.id(),
            o.status(),
            o.items().len(),
            if o.items().len() == 1 { "" } else { "s" },
            money(o.total_cents()),
            root.version().map_or("-".into(), |v| v.to_string())
        ),
    )
}

fn print_order(out: &mut dyn Write, root: &Root<Order>) -> CliResult<()> {
    let o = root.state();
    line(out, format!("order    {}", root.id()))?;
    line(out, format!("user     {}", o.user_id()))?;
    let status = match o.cancel_reason() {
        Some(r) => format!("{} ({r})", o.status()),
        None => o.status().to_string(),
    };
    line(out, format!("status   {status}"))?;
    line(
        out,
        format!(
            "version  {}",
            root.version().map_or("-".into(), |v| v.to_string())
        ),
    )?;
    if let Some(t) = o.created_at() {
        line(out, format!("created  {}", time(t)))?;
    }
    if o.items().is_empty() {
        line(out, "items    (none)")?;
    }
    for (i, item) in o.items().iter().enumerate() {
        line(
            out,
            format!(
                "{}{:>3} × {:<20} @ {:>9} = {:>10}",
                if i == 0 { "items   " } else { "        " },
                item.quantity,
                item.product_id,
                money(item.price_cents),
                item.line_total_cents().map_or("overflow".into(), money)
            ),
        )?;
    }
    line(out, format!("total    {}", money(o.total_cents())))
}

/// The orders of `user` among the `OrderCreated` events `created` (from the type index), each
/// loaded.
fn user_orders_in<S: evstore::EventStorage>(
    created: Vec<evstore::RecordedEvent>,
    service: &OrderService<S>,
    user: &str,
) -> CliResult<Vec<Root<Order>>> {
    let mut out = Vec::new();
    for recorded in created {
        let Ok((OrderEvent::OrderCreated(created), _)) =
            service.repository().decode_event(&recorded)
        else {
            continue;
        };
        if created.user_id != user {
            continue;
        }
        if let Some(root) = service.repository().load(&created.order_id)? {
            out.push(root);
        }
    }
    Ok(out)
}
