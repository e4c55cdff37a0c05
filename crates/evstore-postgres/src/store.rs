//! [`PgStore`]: connecting, the connection pool, options.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use evstore::{Error, Result};
use postgres::NoTls;
use r2d2_postgres::PostgresConnectionManager;

use crate::group::GroupCommit;
use crate::migrate;
use crate::wait::Waiter;

/// A pooled connection.
pub(crate) type Conn = r2d2_postgres::r2d2::PooledConnection<PostgresConnectionManager<NoTls>>;

/// How a [`PgStore`] connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgOptions {
    /// The PostgreSQL schema holding the tables (created if missing). `None`: the connection's
    /// default (`public` on a stock server). Each schema is a separate store with its own
    /// positions and its own append lock. 1..=63 bytes of lowercase ASCII letters, digits and
    /// `_`, not starting with a digit.
    pub schema: Option<String>,
    /// Most pooled connections (default 16). Every concurrent call holds one; a live
    /// subscription's LISTEN connection is separate.
    pub pool_size: u32,
    /// How long a call waits for a pooled connection (default 30 s).
    pub connect_timeout: Duration,
    /// The polling fallback of waits for new events: how often the head is re-read when no
    /// notification arrived (default 250 ms).
    pub poll_interval: Duration,
    /// Concurrent appends through this `PgStore` share one transaction and commit (default
    /// `true`; `false`: one transaction per append, for comparison).
    pub group_commit: bool,
}

impl Default for PgOptions {
    fn default() -> PgOptions {
        PgOptions {
            schema: None,
            pool_size: 16,
            connect_timeout: Duration::from_secs(30),
            poll_interval: Duration::from_millis(250),
            group_commit: true,
        }
    }
}

/// Whether `s` names a PostgreSQL database (`postgres://` or `postgresql://`), rather than a
/// log file path.
pub fn is_postgres_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

/// An evstore event log in PostgreSQL. `Send + Sync`; share it with `Arc`. Each call takes a
/// connection from a pool ([`PgOptions::pool_size`]).
///
/// Errors from the server or the network are reported as [`Error::Io`] wrapping the client's
/// error (`evstore::Error` has no database variant; the message names the server's error).
pub struct PgStore {
    pub(crate) pool: r2d2_postgres::r2d2::Pool<PostgresConnectionManager<NoTls>>,
    pub(crate) schema: String,
    /// The key of the append lock (`pg_advisory_xact_lock`), derived from the schema.
    pub(crate) lock_key: i64,
    /// The NOTIFY channel appends signal on.
    pub(crate) channel: String,
    pub(crate) waiter: Arc<Waiter>,
    /// In-process group commit of appends.
    pub(crate) group: GroupCommit,
    pub(crate) options: PgOptions,
    /// Snapshots dropped as unusable (undecodable or ignored) since connect.
    pub(crate) snapshots_dropped: AtomicU64,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("schema", &self.schema)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connect to the database at `url` (a `postgres://` URL or a libpq key=value string; a
    /// Unix socket directory goes in the host, percent-encoded: `postgres://user@%2Ftmp/db`)
    /// with default [`PgOptions`], and bring the schema up to date. The schema is `public`, or
    /// the one the URL names with `?options=-csearch_path%3Dname` (idempotent; concurrent
    /// connects are serialised by an advisory lock).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a URL that does not parse; [`Error::Io`] when the server
    /// cannot be reached or a migration fails.
    pub fn connect(url: &str) -> Result<PgStore> {
        PgStore::connect_with(url, PgOptions::default())
    }

    /// [`PgStore::connect`] with options (schema, pool size, timeouts).
    ///
    /// # Errors
    /// As [`PgStore::connect`]; [`Error::InvalidInput`] for a bad schema name or a pool size
    /// of 0.
    pub fn connect_with(url: &str, options: PgOptions) -> Result<PgStore> {
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e| Error::InvalidInput(format!("not a PostgreSQL URL: {e}")))?;
        if options.pool_size == 0 {
            return Err(Error::InvalidInput("pool_size must be at least 1".into()));
        }
        let schema = match options.schema.clone().or_else(|| url_schema(&config)) {
            Some(s) => {
                validate_schema(&s)?;
                s
            }
            None => "public".to_string(),
        };
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.connect_timeout);
        }
        // Every connection works in the store's schema.
        // (Added to the URL's own `options`, e.g. a statement timeout, which are kept.)
        let options_with_path = match config.get_options() {
            Some(o) if !o.trim().is_empty() => format!("{o} -c search_path={schema}"),
            _ => format!("-c search_path={schema}"),
        };
        config.options(&options_with_path);
        migrate::ensure_schema(&config, &schema)?;
        let manager = PostgresConnectionManager::new(config.clone(), NoTls);
        let pool = r2d2_postgres::r2d2::Pool::builder()
            .max_size(options.pool_size)
            .min_idle(Some(0))
            .connection_timeout(options.connect_timeout)
            // A broken connection is caught by `has_broken`; no round trip on every checkout.
            .test_on_check_out(false)
            .build(manager)
            .map_err(|e| io_error(format!("cannot connect to PostgreSQL: {e}")))?;
        let key = lock_key(&schema);
        let channel = format!("evstore_{:016x}", key.cast_unsigned());
        Ok(PgStore {
            pool,
            waiter: Arc::new(Waiter::new(
                config.clone(),
                channel.clone(),
                options.poll_interval,
            )),
            schema,
            group: GroupCommit::default(),
            lock_key: key,
            channel,
            options,
            snapshots_dropped: AtomicU64::new(0),
        })
    }

    /// The schema the tables live in.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The options in force.
    pub fn options(&self) -> &PgOptions {
        &self.options
    }

    /// `(commits, appends)` written through this `PgStore` since connect: with concurrent
    /// appenders, group commit makes the second larger than the first.
    pub fn commit_stats(&self) -> (u64, u64) {
        (
            self.group
                .commits
                .load(std::sync::atomic::Ordering::Relaxed),
            self.group
                .appends
                .load(std::sync::atomic::Ordering::Relaxed),
        )
    }

    /// Snapshots dropped as unusable (undecodable or ignored) since connect.
    pub fn snapshots_dropped(&self) -> u64 {
        self.snapshots_dropped
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A pooled connection, for read models and tests that query beside the store (it works in
    /// the store's schema).
    ///
    /// # Errors
    /// [`Error::Io`] when no connection can be had within [`PgOptions::connect_timeout`].
    pub fn connection(&self) -> Result<impl std::ops::DerefMut<Target = postgres::Client>> {
        self.conn()
    }

    pub(crate) fn conn(&self) -> Result<Conn> {
        self.pool
            .get()
            .map_err(|e| io_error(format!("no PostgreSQL connection: {e}")))
    }

    /// Make everything appended durable: nothing to do, an append returns after its commit,
    /// which the server made durable (with the server's default `synchronous_commit = on`; a
    /// server set otherwise decides durability itself).
    ///
    /// # Errors
    /// None today; a `Result` to match [`evstore::Store::flush`].
    pub fn flush(&self) -> Result<()> {
        Ok(())
    }

    /// Drop the store's schema and everything in it (tests and throwaway stores). Refuses the
    /// `public` schema.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for `public`; [`Error::Io`] from the server.
    pub fn drop_schema(&self) -> Result<()> {
        if self.schema == "public" {
            return Err(Error::InvalidInput(
                "refusing to drop the public schema".into(),
            ));
        }
        self.waiter.shutdown();
        let mut c = self.conn()?;
        c.batch_execute(&format!(
            "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
            self.schema
        ))
        .map_err(pg)
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.waiter.shutdown();
    }
}

/// The schema a URL names in its `options` parameter (`?options=-csearch_path%3Dname`): the
/// first entry of `search_path`.
fn url_schema(config: &postgres::Config) -> Option<String> {
    let opts = config.get_options()?;
    let at = opts.find("search_path=")?;
    let rest = &opts[at + "search_path=".len()..];
    let first = rest.split([' ', ',']).next()?.trim_matches('"');
    (!first.is_empty()).then(|| first.to_string())
}

/// Check a schema name (it is put into SQL quoted, but kept to a safe alphabet anyway).
fn validate_schema(s: &str) -> Result<()> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && !s.as_bytes()[0].is_ascii_digit()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "schema {s:?} must be 1..=63 bytes of lowercase ASCII letters, digits and '_', not starting with a digit"
        )))
    }
}

/// The advisory lock key of a schema: FNV-1a of `evstore:<schema>` (stable across builds and
/// processes, so every writer of one schema takes the same lock).
pub(crate) fn lock_key(schema: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in "evstore:".bytes().chain(schema.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h.cast_signed()
}

/// A server or network error as an [`Error::Io`].
pub(crate) fn pg(e: postgres::Error) -> Error {
    let kind = if e.is_closed() {
        std::io::ErrorKind::ConnectionAborted
    } else {
        std::io::ErrorKind::Other
    };
    Error::Io(std::io::Error::new(kind, e))
}

/// An [`Error::Io`] with `msg`.
pub(crate) fn io_error(msg: String) -> Error {
    Error::Io(std::io::Error::other(msg))
}

/// A stored `bigint` (position, version) as `u64`; negative values cannot be stored (CHECK).
pub(crate) fn to_u64(v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| Error::Internal(format!("a negative position or version: {v}")))
}

/// A `u64` argument as a `bigint`, saturating (positions and versions never reach 2^63).
pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Column `i` of `row` as a `T`: an error (never a panic) when the stored value does not
/// convert, e.g. in a table altered by hand.
pub(crate) fn col<'a, T: postgres::types::FromSql<'a>>(
    row: &'a postgres::Row,
    i: usize,
) -> Result<T> {
    row.try_get(i).map_err(pg)
}

/// A typed query parameter (for `query_typed`, which skips the prepare round trip).
pub(crate) fn typed(
    value: &(dyn postgres::types::ToSql + Sync),
    ty: postgres::types::Type,
) -> (&(dyn postgres::types::ToSql + Sync), postgres::types::Type) {
    (value, ty)
}
