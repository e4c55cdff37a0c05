//! A bounded load generator for `evstore serve`, on loopback only: N concurrent HTTP clients
//! add items to orders (one order each, then all on one hot order) for a few seconds, then
//! read orders for a few seconds; then the same calls on `OrderService` directly, in-process,
//! in the same run (the baseline). Prints requests/s and p50/p99 latency of each as a Markdown
//! table.
//!
//! ```text
//! cargo run --release -p evstore-server --example load -- --clients 32 --seconds 5
//! ```
//!
//! Options: `--clients N` (default 32), `--seconds S` per phase (default 5, at most 60),
//! `--dir D` (where the two store files go; default a temporary directory),
//! `--database-url URL` (also run both sides on PostgreSQL, in the same run: a server started
//! as `evstore serve --database-url` does, and `OrderService` over a `PgStore`; each in a
//! fresh schema `load_*`, dropped at the end). Each client also stops after 1,000,000
//! requests, so the run is bounded in time and count.
#![allow(
    clippy::pedantic,
    reason = "a measuring tool: casts of counts and durations to floats are intended"
)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use evstore::{EventStorage, Store};
use evstore_orders::OrderService;
use evstore_postgres::{PgOptions, PgStore};
use evstore_server::{Server, ServerConfig};

const MAX_REQUESTS_PER_CLIENT: usize = 1_000_000;

struct Args {
    clients: usize,
    seconds: u64,
    dir: Option<PathBuf>,
    database_url: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        clients: 32,
        seconds: 5,
        dir: None,
        database_url: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--clients" => a.clients = value.parse().unwrap_or(a.clients).clamp(1, 1024),
            "--seconds" => a.seconds = value.parse().unwrap_or(a.seconds).clamp(1, 60),
            "--dir" => a.dir = Some(PathBuf::from(value)),
            "--database-url" => a.database_url = Some(value),
            other => {
                eprintln!(
                    "unknown option {other:?}; use --clients N --seconds S --dir D --database-url URL"
                );
                std::process::exit(2);
            }
        }
    }
    a
}

/// Requests, wall time and sorted latencies of one phase.
struct Phase {
    latencies: Vec<Duration>,
    wall: Duration,
    errors: usize,
}

impl Phase {
    fn from(results: Vec<(Vec<Duration>, usize)>, wall: Duration) -> Phase {
        let mut latencies = Vec::new();
        let mut errors = 0;
        for (l, e) in results {
            latencies.extend(l);
            errors += e;
        }
        latencies.sort_unstable();
        Phase {
            latencies,
            wall,
            errors,
        }
    }

    fn pct(&self, p: f64) -> String {
        if self.latencies.is_empty() {
            return "–".into();
        }
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        format!("{:.2} ms", self.latencies[i].as_secs_f64() * 1e3)
    }

    fn row(&self, what: &str) -> String {
        format!(
            "| {what} | {} | {:.0} | {} | {} | {} |",
            self.latencies.len(),
            self.latencies.len() as f64 / self.wall.as_secs_f64(),
            self.pct(0.5),
            self.pct(0.99),
            self.errors
        )
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let a = args();
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let dir = a.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let duration = Duration::from_secs(a.seconds);
    eprintln!(
        "load: {} clients, {} s per phase, stores in {}",
        a.clients,
        a.seconds,
        dir.display()
    );

    // HTTP: a server on an ephemeral loopback port.
    let http_file = dir.join("load-http.evs");
    let _ = std::fs::remove_file(&http_file);
    let [http_add, http_hot, http_get] =
        http_run(ServerConfig::new(&http_file), a.clients, duration).await;

    // In-process: the same calls on OrderService, same durability, same client count.
    let file = dir.join("load-inproc.evs");
    let _ = std::fs::remove_file(&file);
    let store = Arc::new(Store::open(&file).expect("the store opens"));
    let service =
        OrderService::new(store).with_max_attempts(evstore_server::ORDER_COMMAND_ATTEMPTS);
    let ids: Vec<String> = (0..a.clients)
        .map(|i| {
            service
                .create_order(&format!("load-{i}"))
                .expect("an order")
        })
        .collect();
    let [local_add, local_hot, local_get] = local_run(&service, &ids, duration);

    // PostgreSQL: the same, each side in a fresh schema.
    let pg = match &a.database_url {
        None => None,
        Some(url) => {
            let http_schema = format!("load_http_{}", uuid::Uuid::new_v4().simple());
            let config = ServerConfig::postgres(schema_url(url, &http_schema));
            let http = http_run(config, a.clients, duration).await;
            let (url, clients) = (url.clone(), a.clients);
            // The synchronous client runs off the async workers.
            let local = std::thread::spawn(move || {
                drop_schema(&url, &http_schema);
                local_pg(&url, clients, duration)
            })
            .join()
            .expect("the PostgreSQL baseline");
            Some((http, local))
        }
    };

    println!(
        "{} concurrent clients, {} s per phase, one order per client, Durability::Sync\n",
        a.clients, a.seconds
    );
    println!("| call | requests | requests/s | p50 | p99 | errors |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    println!("{}", http_add.row("HTTP `POST /orders/{id}/items`"));
    println!("{}", local_add.row("in-process `OrderService::add_item`"));
    println!(
        "{}",
        http_hot.row("HTTP add-item, every client on one order")
    );
    println!(
        "{}",
        local_hot.row("in-process add-item, every thread on one order")
    );
    println!("{}", http_get.row("HTTP `GET /orders/{id}` (projection)"));
    println!(
        "{}",
        local_get.row("in-process `OrderService::get_order` (replay)")
    );
    if let Some((http, local)) = &pg {
        let names = [
            (
                "HTTP `POST /orders/{id}/items`",
                "in-process `OrderService::add_item`",
            ),
            (
                "HTTP add-item, every client on one order",
                "in-process add-item, every thread on one order",
            ),
            (
                "HTTP `GET /orders/{id}` (projection)",
                "in-process `OrderService::get_order` (replay)",
            ),
        ];
        for (i, (h, l)) in names.iter().enumerate() {
            println!("{}", http[i].row(&format!("PostgreSQL: {h}")));
            println!("{}", local[i].row(&format!("PostgreSQL: {l}")));
        }
    }
    for f in [&http_file, &file] {
        for suffix in ["", ".snap", ".proj-order-summaries", ".proj-server-streams"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", f.display()));
        }
    }
}

async fn create_orders(base: &str, n: usize) -> Vec<String> {
    let client = reqwest::Client::new();
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let r: serde_json::Value = client
            .post(format!("{base}/orders?user_id=load-{i}"))
            .send()
            .await
            .expect("create")
            .json()
            .await
            .expect("JSON");
        ids.push(r["order_id"].as_str().expect("an id").to_string());
    }
    ids
}

async fn http_phase(base: &str, orders: &[String], duration: Duration, add: bool) -> Phase {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for id in orders {
        let url = if add {
            format!("{base}/orders/{id}/items?product_id=p&quantity=1&price=0.99")
        } else {
            format!("{base}/orders/{id}")
        };
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut latencies = Vec::new();
            let mut errors = 0;
            while Instant::now() < deadline && latencies.len() < MAX_REQUESTS_PER_CLIENT {
                let t = Instant::now();
                let sent = if add {
                    client.post(&url).send().await
                } else {
                    client.get(&url).send().await
                };
                let ok = match sent {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if ok {
                    latencies.push(t.elapsed());
                } else {
                    errors += 1;
                }
            }
            (latencies, errors)
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.expect("a client task"));
    }
    Phase::from(results, started.elapsed())
}

/// A server started with `config` on loopback: one order per client, then the add, hot-order
/// and read phases.
async fn http_run(mut config: ServerConfig, clients: usize, duration: Duration) -> [Phase; 3] {
    config.listen = "127.0.0.1:0".parse().expect("an address");
    let server = Server::start(config).await.expect("the server starts");
    let base = format!("http://{}", server.local_addr());
    let orders = create_orders(&base, clients).await;
    let add = http_phase(&base, &orders, duration, true).await;
    let hot = vec![orders[0].clone(); orders.len()];
    let hot = http_phase(&base, &hot, duration, true).await;
    let get = http_phase(&base, &orders, duration, false).await;
    server.shutdown().await.expect("a clean shutdown");
    [add, hot, get]
}

/// The add, hot-order and read phases on `service` directly.
fn local_run<S: EventStorage>(
    service: &OrderService<S>,
    ids: &[String],
    duration: Duration,
) -> [Phase; 3] {
    let add = local_phase(service, ids, duration, true);
    let hot = vec![ids[0].clone(); ids.len()];
    let hot = local_phase(service, &hot, duration, true);
    let get = local_phase(service, ids, duration, false);
    [add, hot, get]
}

/// The in-process baseline on PostgreSQL, in a fresh schema (dropped after).
fn local_pg(url: &str, clients: usize, duration: Duration) -> [Phase; 3] {
    let schema = format!("load_inproc_{}", uuid::Uuid::new_v4().simple());
    let options = PgOptions {
        schema: Some(schema),
        ..PgOptions::default()
    };
    let store = Arc::new(PgStore::connect_with(url, options).expect("PostgreSQL connects"));
    let service =
        OrderService::new(store.clone()).with_max_attempts(evstore_server::ORDER_COMMAND_ATTEMPTS);
    let ids: Vec<String> = (0..clients)
        .map(|i| {
            service
                .create_order(&format!("load-{i}"))
                .expect("an order")
        })
        .collect();
    let phases = local_run(&service, &ids, duration);
    if let Err(e) = store.drop_schema() {
        eprintln!("dropping the load schema: {e}");
    }
    phases
}

/// `url` naming `schema` (`options=-csearch_path%3D<schema>`).
fn schema_url(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-csearch_path%3D{schema}")
}

fn drop_schema(url: &str, schema: &str) {
    let options = PgOptions {
        schema: Some(schema.to_string()),
        ..PgOptions::default()
    };
    match PgStore::connect_with(url, options) {
        Ok(s) => {
            if let Err(e) = s.drop_schema() {
                eprintln!("dropping {schema}: {e}");
            }
        }
        Err(e) => eprintln!("dropping {schema}: {e}"),
    }
}

fn local_phase<S: EventStorage>(
    service: &OrderService<S>,
    ids: &[String],
    duration: Duration,
    add: bool,
) -> Phase {
    let started = Instant::now();
    let deadline = started + duration;
    let results = std::thread::scope(|s| {
        let handles: Vec<_> = ids
            .iter()
            .map(|id| {
                s.spawn(move || {
                    let mut latencies = Vec::new();
                    let mut errors = 0;
                    while Instant::now() < deadline && latencies.len() < MAX_REQUESTS_PER_CLIENT {
                        let t = Instant::now();
                        let ok = if add {
                            service.add_item(id, "p", 1, 99).is_ok()
                        } else {
                            matches!(service.get_order(id), Ok(Some(_)))
                        };
                        if ok {
                            latencies.push(t.elapsed());
                        } else {
                            errors += 1;
                        }
                    }
                    (latencies, errors)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a client thread"))
            .collect()
    });
    Phase::from(results, started.elapsed())
}
