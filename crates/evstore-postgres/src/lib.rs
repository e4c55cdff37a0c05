//! # evstore-postgres — evstore's PostgreSQL backend
//!
//! [`PgStore`] keeps the event log in PostgreSQL with the file [`evstore::Store`]'s semantics:
//! streams with the four [`ExpectedVersion`](evstore::ExpectedVersion)s, atomic batches,
//! atomic multi-stream appends ([`PgStore::append_multi`]), tags with Dynamic Consistency
//! Boundary queries and append conditions ([`PgStore::read_query`], [`PgStore::append_if`]),
//! idempotent retries by event id, dense global positions from 0, `recorded_at` that never
//! decreases with the position, and the same input limits and errors. It implements
//! [`evstore::EventStorage`] and [`evstore::subscription::EventSource`], so repositories,
//! projections and sagas run on it unchanged.
//!
//! **Gap-free order.** Appends take a transaction-scoped advisory lock
//! (`pg_advisory_xact_lock`) before they read the head and hold it until their commit, so
//! transactions commit in position order and every snapshot a reader takes sees a prefix of the
//! log: a subscriber never skips or repeats a position. The price is that append transactions
//! to one schema are serialised; concurrent appends of one `PgStore` share a transaction (group
//! commit) and batches amortise it. docs/POSTGRES.md explains why this holds and what it costs.
//!
//! ```no_run
//! use evstore::{ExpectedVersion, NewEvent};
//! use evstore_postgres::PgStore;
//! let store = PgStore::connect("postgres://postgres@%2Ftmp/postgres")?;
//! let r = store.append("order-1", ExpectedVersion::NoStream, &[NewEvent::new("OrderCreated", b"{}".to_vec())])?;
//! assert_eq!(r.first_version, 0);
//! # Ok::<(), evstore::Error>(())
//! ```
//!
//! | what | module |
//! | --- | --- |
//! | [`PgStore`], [`PgOptions`], connecting, the pool | `store` |
//! | the schema migrations (`migrations/*.sql`) and their version table | `migrate` |
//! | input limits (the file store's, replicated) | `validate` |
//! | appends: the lock, expected versions, idempotent retries | `append` |
//! | group commit: concurrent appends of one `PgStore` share a transaction | `group` |
//! | reads ([`PgReadAll`]) | `read` |
//! | paged reads by type, the type catalog | `type_pages` |
//! | DCB queries over types and tags: `read_query`, the append condition's check | `query` |
//! | importing events with their positions and times (`evstore copy`) | `import` |
//! | LISTEN/NOTIFY with a polling fallback: waiting for new events | `wait` |
//! | snapshots and the backend traits | `storage` |
//! | throwaway stores for tests (`EVSTORE_PG_URL`) | [`testing`] |
//! | checkpoints and read models kept in PostgreSQL ([`PgProjector`]) | `readmodel` |
//! | the Order summaries read model ([`OrderSummariesTable`]) | `orders` |

mod append;
mod group;
mod import;
mod migrate;
mod orders;
mod query;
mod read;
mod readmodel;
mod storage;
mod store;
pub mod testing;
mod type_pages;
mod validate;
mod wait;

pub use migrate::{MIGRATIONS, SCHEMA_VERSION};
pub use orders::{OrderRow, OrderSummariesTable};
pub use read::{PgReadAll, PgStats};
pub use readmodel::{pg_error, PgCheckpoint, PgCheckpointStore, PgProjector, TableProjection};
pub use store::{is_postgres_url, PgOptions, PgStore};
pub use validate::MAX_BATCH_BYTES;
