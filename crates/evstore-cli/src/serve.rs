//! `evstore serve`: the store over HTTP (crate `evstore-server`).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use evstore_server::{ServerConfig, DEFAULT_MAX_BODY_BYTES};

use crate::{CliError, CliResult, DurabilityArg};

/// Examples shown by `evstore serve --help`.
pub const EXAMPLES: &str = "\
Examples:
  evstore serve --file shop.evs                           http://127.0.0.1:8080/ (the web page)
  evstore serve --file shop.evs --listen 127.0.0.1:9000 --token s3cret
  evstore serve --database-url postgres://app@%2Ftmp/shop the same API on PostgreSQL
  curl -X POST 'http://127.0.0.1:8080/orders?user_id=alice'
  curl -X POST 'http://127.0.0.1:8080/orders/ID/items?product_id=book&quantity=2&price=12.50'
  curl http://127.0.0.1:8080/orders/ID

Give exactly one of --file and --database-url. On PostgreSQL the tables are created (or
migrated) in the URL's schema (`public`, or ?options=-csearch_path%3Dname); the read models
keep their checkpoints in evstore_checkpoints, and the live feed wakes on LISTEN/NOTIFY, so
events appended by other processes reach /events too. --durability applies to files only.

Ctrl-C or SIGTERM stops it gracefully: requests in flight finish, the store is flushed and
closed. Endpoints, limits and metrics: docs/SERVER.md; the API: GET /openapi.json.";

/// Arguments of `evstore serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Address to listen on (loopback by default; port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Require `Authorization: Bearer <TOKEN>` for writes (also from `EVSTORE_TOKEN`).
    #[arg(long, env = "EVSTORE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Largest request body accepted, in bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_BODY_BYTES)]
    max_body: usize,
    /// Durability of appends to the file (PostgreSQL: its `synchronous_commit` decides).
    #[arg(long, value_enum, default_value_t = DurabilityArg::Sync)]
    durability: DurabilityArg,
}

/// The store to serve: exactly one of `--file` and `--database-url`.
#[derive(Debug, Args)]
#[group(id = "store", required = true, multiple = false)]
struct StoreArgs {
    /// The store file (created if missing).
    #[arg(long, short = 'f')]
    file: Option<PathBuf>,
    /// Serve the PostgreSQL store at this postgres:// URL instead of a file (the schema is
    /// created if missing). Logs and errors show its password as ***.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
}

/// Serve until Ctrl-C or SIGTERM. Prints `listening on http://ADDR` once ready.
pub fn run(args: &ServeArgs, out: &mut dyn Write) -> CliResult<()> {
    let mut config = match (&args.store.file, &args.store.database_url) {
        (Some(file), None) => {
            if file.is_dir() {
                return Err(CliError::msg(format!(
                    "{} is a directory, not an evstore log file",
                    file.display()
                )));
            }
            ServerConfig::new(file)
        }
        (None, Some(url)) => ServerConfig::postgres(url),
        // clap's group requires exactly one.
        _ => {
            return Err(CliError::msg(
                "give exactly one of --file and --database-url",
            ))
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO)
        .try_init();
    config.listen = args.listen;
    config.token.clone_from(&args.token);
    config.max_body_bytes = args.max_body;
    config.durability = args.durability.into();
    let mut ready_error = None;
    evstore_server::run(config, |addr| {
        if let Err(e) = writeln!(out, "listening on http://{addr}").and_then(|()| out.flush()) {
            ready_error = Some(e);
        }
    })
    .map_err(|e| CliError::msg(with_causes(&e)))?;
    match ready_error {
        Some(e) => Err(CliError::from(e)),
        None => Ok(()),
    }
}

/// `e` with the causes its message does not already include (e.g. the client's "connection
/// refused" under PostgreSQL's "error connecting to server").
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut cause = e.source();
    // Bounded by the chain's length.
    while let Some(c) = cause {
        let text = c.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        cause = c.source();
    }
    message
}
