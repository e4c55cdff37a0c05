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
  evstore serve --file shop.evs                         http://127.0.0.1:8080/ (the web page)
  evstore serve --file shop.evs --listen 127.0.0.1:9000 --token s3cret
  curl -X POST 'http://127.0.0.1:8080/orders?user_id=alice'
  curl -X POST 'http://127.0.0.1:8080/orders/ID/items?product_id=book&quantity=2&price=12.50'
  curl http://127.0.0.1:8080/orders/ID

Ctrl-C or SIGTERM stops it gracefully: requests in flight finish, the store is flushed and
closed. Endpoints, limits and metrics: docs/SERVER.md; the API: GET /openapi.json.";

/// Arguments of `evstore serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The store file (created if missing).
    #[arg(long, short = 'f')]
    file: PathBuf,
    /// Address to listen on (loopback by default; port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Require `Authorization: Bearer <TOKEN>` for writes (also from `EVSTORE_TOKEN`).
    #[arg(long, env = "EVSTORE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Largest request body accepted, in bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_BODY_BYTES)]
    max_body: usize,
    /// Durability of appends.
    #[arg(long, value_enum, default_value_t = DurabilityArg::Sync)]
    durability: DurabilityArg,
}

/// Serve until Ctrl-C or SIGTERM. Prints `listening on http://ADDR` once ready.
pub fn run(args: &ServeArgs, out: &mut dyn Write) -> CliResult<()> {
    if args.file.is_dir() {
        return Err(CliError::msg(format!(
            "{} is a directory, not an evstore log file",
            args.file.display()
        )));
    }
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO)
        .try_init();
    let mut config = ServerConfig::new(&args.file);
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
    .map_err(|e| CliError::msg(e.to_string()))?;
    match ready_error {
        Some(e) => Err(CliError::from(e)),
        None => Ok(()),
    }
}
