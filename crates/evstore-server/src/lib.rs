//! evstore over HTTP: the server behind `evstore serve`.
//!
//! * The seed order service's API, compatible with its clients (`POST /orders?user_id=..`,
//!   `POST /orders/{order_id}/items?product_id=..&quantity=..&price=..`,
//!   `POST /orders/{order_id}/confirm`, `GET /orders/{order_id}`, `GET /users/{user_id}/orders`),
//!   also taking JSON bodies; plus ship, deliver, cancel, an order's history and time travel
//!   (`?at_version=`, `?as_of=`); a product's limited stock (`PUT` and
//!   `GET /products/{product_id}/stock`), which adding items may not oversell.
//! * The store's own API: append with an expected version (events may carry tags), read a
//!   stream, the global log, by type, the stream catalog; the live log as Server-Sent Events
//!   at `/events`, resumable with `Last-Event-ID`.
//! * `/metrics` (Prometheus text format, [`metrics`]), `/openapi.json`, a web page at `/`,
//!   `/healthz`. docs/SERVER.md describes every endpoint.
//!
//! Errors are RFC 9457 problem details ([`problem`]). Money is exact ([`money`]). Writes can
//! require a bearer token ([`ServerConfig::token`]); bodies are limited in size
//! ([`ServerConfig::max_body_bytes`]). Blocking store calls run on tokio's blocking pool,
//! never on the async workers.
//!
//! Two backends serve the same API ([`StoreLocation`]): the file store (`evstore serve --file`)
//! and PostgreSQL (`evstore serve --database-url`, [`evstore_postgres::PgStore`]); the
//! handlers are written once over [`Backend`]. The read models (orders, the stream catalog)
//! are the same in-memory projections on both; only where their checkpoints live differs.
//!
//! Shutdown ([`Server::shutdown`], or Ctrl-C / SIGTERM under [`run`]): the listener stops
//! accepting, `/events` streams end, in-flight requests finish, the read models write their
//! checkpoints, and the store is flushed and closed. With the file store's default `Sync`
//! durability an answered write is already durable, and on PostgreSQL an answered write is
//! committed, so nothing acknowledged is lost even by a crash.
//!
//! ```no_run
//! # async fn demo() -> Result<(), evstore_server::ServerError> {
//! use evstore_server::{Server, ServerConfig};
//! let server = Server::start(ServerConfig::new("shop.evs")).await?;
//! println!("listening on http://{}", server.local_addr());
//! server.shutdown().await?;
//! # Ok(()) }
//! ```

mod backend;
mod feed;
mod followers;
mod layers;
pub mod metrics;
pub mod money;
mod openapi;
mod orders;
mod params;
pub mod problem;
mod products;
mod state;
mod streams;
mod ui;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::watch;
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};

use evstore::checkpoint::checkpoint_path;
use evstore::checkpoint_store::{CheckpointStore, FileCheckpoint};
use evstore::{Durability, Options, Store};
use evstore_orders::OrderService;
use evstore_postgres::{PgCheckpointStore, PgStore};

pub use backend::{Backend, BackendCounters, FileCounters, StoreLocation};
pub use followers::{StreamCatalog, StreamInfo};
use state::AppState;

/// Default listen address: loopback only.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);
/// Attempts an order command gets when other requests change the same order concurrently
/// (each conflict reloads the order and decides again). Higher than the library's default
/// (`evstore_orders::DEFAULT_MAX_ATTEMPTS`) because a server's clients cannot coordinate: a hot
/// order with many concurrent writers must not starve one of them.
pub const ORDER_COMMAND_ATTEMPTS: u32 = 1000;
/// Default request body limit: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// How to run a server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The store: a file (created if missing) or a PostgreSQL database.
    pub store: StoreLocation,
    /// Address to listen on (port 0: any free port). Default [`DEFAULT_LISTEN`].
    pub listen: SocketAddr,
    /// If set, every write (`POST`, `PUT`) needs `Authorization: Bearer <token>`; reads stay open.
    pub token: Option<String>,
    /// Largest request body accepted, in bytes (413 beyond). Default [`DEFAULT_MAX_BODY_BYTES`].
    pub max_body_bytes: usize,
    /// The file store's durability. Default `Sync`: a write is durable before it is answered.
    /// PostgreSQL ignores it: a write is answered after its commit, whose durability the
    /// server's `synchronous_commit` decides (durable with the default `on`).
    pub durability: Durability,
    /// PostgreSQL's connection pool: most connections (default 16; every request that reads
    /// or writes holds one while it runs, the LISTEN connection of the live feed is separate).
    pub pg_pool_size: u32,
}

impl ServerConfig {
    /// Defaults for the store file `file`.
    pub fn new(file: impl Into<PathBuf>) -> ServerConfig {
        ServerConfig::with_store(StoreLocation::File(file.into()))
    }

    /// Defaults for the PostgreSQL database at `url` (see [`PgStore::connect`]; a schema other
    /// than `public` goes in the URL: `?options=-csearch_path%3Dname`).
    pub fn postgres(url: impl Into<String>) -> ServerConfig {
        ServerConfig::with_store(StoreLocation::Postgres(url.into()))
    }

    /// Defaults for `store`.
    pub fn with_store(store: StoreLocation) -> ServerConfig {
        ServerConfig {
            store,
            listen: DEFAULT_LISTEN,
            token: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            durability: Durability::Sync,
            pg_pool_size: evstore_postgres::PgOptions::default().pool_size,
        }
    }
}

/// Why the server could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The store (or a read model's checkpoint) could not be opened: for PostgreSQL also a
    /// URL that does not parse or a server that cannot be reached.
    #[error("cannot open the store {store}: {source}")]
    Open {
        /// The store file, or the database URL without its password
        /// ([`StoreLocation::describe`]).
        store: String,
        /// Why.
        source: evstore::Error,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Serving failed, or the runtime could not be built.
    #[error("server I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// Flushing or closing the store at shutdown failed.
    #[error("closing the store failed: {0}")]
    Close(evstore::Error),
    /// The metrics registry could not be built (a bug).
    #[error("metrics: {0}")]
    Metrics(String),
}

/// A running server: its address, and [`Server::shutdown`] to stop it.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    shutdown_tx: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), ServerError>>,
}

impl Server {
    /// Open the store, start the read models, bind and serve in a background task.
    ///
    /// # Errors
    /// [`ServerError::Open`], [`ServerError::Bind`], [`ServerError::Metrics`].
    pub async fn start(config: ServerConfig) -> Result<Server, ServerError> {
        // Bind first: a taken port leaves no store opened and no thread behind.
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| ServerError::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr()?;
        let described = config.store.describe();
        let open_error = |source| ServerError::Open {
            store: described.clone(),
            source,
        };
        let metrics = metrics::Metrics::new(config.store.kind())
            .map_err(|e| ServerError::Metrics(e.to_string()))?;
        let opened = open_store(&config).await?.map_err(open_error)?;
        let shared = opened.shared();
        let started = {
            let shared = shared.clone();
            let checkpoints = opened.checkpoints();
            tokio::task::spawn_blocking(move || {
                followers::Followers::start(&shared, checkpoints.as_ref())
            })
            .await
        };
        let followers = match started {
            Ok(Ok(f)) => f,
            Ok(Err(e)) => {
                release(shared, opened).await;
                return Err(open_error(e));
            }
            Err(e) => {
                release(shared, opened).await;
                return Err(ServerError::Io(std::io::Error::other(e.to_string())));
            }
        };
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let state = Arc::new(AppState {
            store: shared.clone(),
            orders: OrderService::new(shared.clone()).with_max_attempts(ORDER_COMMAND_ATTEMPTS),
            summaries: followers.summaries.clone(),
            catalog: followers.catalog.clone(),
            head: followers.head.clone(),
            shutdown: shutdown_rx.clone(),
            metrics,
            token: config.token.clone().filter(|t| !t.is_empty()),
            followers_errors: followers.errors.clone(),
        });
        let app = router(state.clone(), config.max_body_bytes);
        tracing::info!(%addr, store = %described, backend = shared.kind(), "evstore server listening");
        drop(shared);
        let task = tokio::spawn(async move {
            let mut rx = shutdown_rx;
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    // Resolves when `true` is sent or the sender is gone.
                    let _ = rx.wait_for(|stop| *stop).await;
                })
                .await;
            tracing::info!("stopped accepting; requests finished; closing the store");
            drop(state);
            let closed = tokio::task::spawn_blocking(move || {
                followers.stop();
                opened.close()
            })
            .await
            .map_err(|e| ServerError::Io(std::io::Error::other(e.to_string())))?;
            served?;
            closed
        });
        Ok(Server {
            addr,
            shutdown_tx,
            task,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop gracefully (see the crate docs) and wait until the store is closed.
    ///
    /// # Errors
    /// [`ServerError::Io`] if serving failed; [`ServerError::Close`] if the store could not be
    /// flushed or closed.
    pub async fn shutdown(self) -> Result<(), ServerError> {
        self.shutdown_tx.send_replace(true);
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(ServerError::Io(std::io::Error::other(e.to_string()))),
        }
    }
}

/// The store the server opened, typed (for its checkpoints and for closing it).
enum Opened {
    File(Arc<Store>),
    Postgres(Arc<PgStore>),
}

/// Open (or connect to) the store of `config` on the blocking pool. The outer error: the
/// blocking task failed; the inner one: the store's.
async fn open_store(config: &ServerConfig) -> Result<evstore::Result<Opened>, ServerError> {
    let location = config.store.clone();
    let durability = config.durability;
    let pool_size = config.pg_pool_size;
    tokio::task::spawn_blocking(move || match location {
        StoreLocation::File(path) => {
            let options = Options {
                durability,
                ..Options::default()
            };
            Store::open_with(path, options).map(|s| Opened::File(Arc::new(s)))
        }
        StoreLocation::Postgres(url) => {
            let options = evstore_postgres::PgOptions {
                pool_size,
                ..evstore_postgres::PgOptions::default()
            };
            PgStore::connect_with(&url, options).map(|s| Opened::Postgres(Arc::new(s)))
        }
    })
    .await
    .map_err(|e| ServerError::Io(std::io::Error::other(e.to_string())))
}

/// Drop a store that will not be served, on the blocking pool: PostgreSQL's synchronous
/// client must not be dropped on an async worker.
async fn release(shared: Arc<dyn Backend>, opened: Opened) {
    let _ = tokio::task::spawn_blocking(move || drop((shared, opened))).await;
}

impl Opened {
    /// The store as the handlers use it.
    fn shared(&self) -> Arc<dyn Backend> {
        match self {
            Opened::File(s) => s.clone(),
            Opened::Postgres(s) => s.clone(),
        }
    }

    /// Where the read model named `name` keeps its checkpoint: a file beside the log
    /// (`<log>.proj-<name>`), or the row `proj-<name>` of `evstore_checkpoints`.
    fn checkpoints(&self) -> Box<followers::CheckpointsFor> {
        match self {
            Opened::File(s) => {
                let log = s.path().to_path_buf();
                Box::new(move |name: &str| -> Box<dyn CheckpointStore> {
                    Box::new(FileCheckpoint::new(checkpoint_path(&log, name)))
                })
            }
            Opened::Postgres(s) => {
                let s = s.clone();
                Box::new(move |name: &str| -> Box<dyn CheckpointStore> {
                    Box::new(PgCheckpointStore::new(s.clone(), format!("proj-{name}")))
                })
            }
        }
    }

    /// Flush and close. The file store: flush, then close once every other handle is gone
    /// (request tasks still on the blocking pool finish first); if one is still held after
    /// 10 s, flushing is all we can do. PostgreSQL: every answered write is already
    /// committed; the pool's connections close as the last handle drops.
    fn close(self) -> Result<(), ServerError> {
        let store = match self {
            Opened::File(store) => store,
            Opened::Postgres(store) => {
                store.flush().map_err(ServerError::Close)?;
                drop(store);
                tracing::info!("PostgreSQL store released");
                return Ok(());
            }
        };
        store.flush().map_err(ServerError::Close)?;
        let mut store = store;
        for _ in 0..1000 {
            match Arc::try_unwrap(store) {
                Ok(s) => {
                    s.close().map_err(ServerError::Close)?;
                    tracing::info!("store flushed and closed");
                    return Ok(());
                }
                Err(s) => {
                    store = s;
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
        tracing::warn!("store still shared after 10 s; flushed, closed when the last handle drops");
        store.flush().map_err(ServerError::Close)
    }
}

/// The application: every route, the token check, metrics, tracing and the body limit.
fn router(state: Arc<AppState>, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/", get(ui::index))
        .route("/assets/{name}", get(ui::asset))
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(layers::metrics))
        .route("/openapi.json", get(openapi::document))
        .route("/orders", post(orders::create_order))
        .route("/orders/{order_id}", get(orders::get_order))
        .route("/orders/{order_id}/items", post(orders::add_item))
        .route("/orders/{order_id}/confirm", post(orders::confirm))
        .route("/orders/{order_id}/ship", post(orders::ship))
        .route("/orders/{order_id}/deliver", post(orders::deliver))
        .route("/orders/{order_id}/cancel", post(orders::cancel))
        .route("/orders/{order_id}/history", get(orders::history))
        .route("/users/{user_id}/orders", get(orders::user_orders))
        .route(
            "/products/{product_id}/stock",
            get(products::get_stock).put(products::set_stock),
        )
        .route("/streams", get(streams::list_streams))
        .route(
            "/streams/{stream_id}",
            get(streams::read_stream).post(streams::append),
        )
        .route("/log", get(streams::read_log))
        .route("/types", get(streams::list_types))
        .route("/types/{event_type}", get(streams::read_type))
        .route("/events", get(feed::events))
        .fallback(layers::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            layers::require_token,
        ))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            layers::observe,
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(DefaultMakeSpan::new().level(tracing::Level::INFO))
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .with_state(state)
}

/// Start a server with `config` on a runtime of its own, call `ready` with its address, and
/// serve until Ctrl-C or SIGTERM; then shut down gracefully. For `evstore serve`.
///
/// # Errors
/// As [`Server::start`] and [`Server::shutdown`].
pub fn run(config: ServerConfig, ready: impl FnOnce(SocketAddr)) -> Result<(), ServerError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        // Listen for the signals before announcing readiness: a SIGTERM right after the ready
        // line must already be a graceful shutdown, not the default (immediate) exit.
        let signals = ShutdownSignals::install()?;
        let server = Server::start(config).await?;
        ready(server.local_addr());
        signals.recv().await;
        tracing::info!("shutdown requested");
        server.shutdown().await
    })
}

/// SIGINT (Ctrl-C) and SIGTERM, registered when installed.
struct ShutdownSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    #[cfg(unix)]
    fn install() -> std::io::Result<ShutdownSignals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(ShutdownSignals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    #[cfg(not(unix))]
    fn install() -> std::io::Result<ShutdownSignals> {
        Ok(ShutdownSignals {})
    }

    /// Resolves at the first of the signals.
    #[cfg(unix)]
    async fn recv(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }

    /// Resolves at Ctrl-C.
    #[cfg(not(unix))]
    async fn recv(self) {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
