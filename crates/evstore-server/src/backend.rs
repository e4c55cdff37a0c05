//! The two storage backends behind one interface: the file store ([`evstore::Store`]) and
//! PostgreSQL ([`evstore_postgres::PgStore`]).
//!
//! Both already implement the library's backend traits ([`EventStorage`] for the order
//! service and repositories, [`EventSource`] for the read models and the live feed). The
//! server needs a few more calls that each backend has as inherent methods with slightly
//! different shapes (PostgreSQL's return `Result`s: a query can fail); [`Backend`] gives them
//! one shape so every handler is written once, over `Arc<dyn Backend>`.
//!
//! Every call may block (the file store on its locks and page faults, PostgreSQL on a round
//! trip); the handlers run them on tokio's blocking pool, except the two the file store
//! answers from memory ([`Backend::answers_from_memory`]).

use std::path::PathBuf;

use evstore::subscription::EventSource;
use evstore::{EventStorage, RecordedEvent, Result, Store};
use evstore_postgres::PgStore;

/// Where the server's events live. Its `Debug` form hides a URL's password, as
/// [`StoreLocation::describe`] does.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// A log file (created if missing): `evstore serve --file`.
    File(PathBuf),
    /// A PostgreSQL database (`postgres://` URL or libpq key=value string; the schema is
    /// created or migrated on start): `evstore serve --database-url`.
    Postgres(String),
}

impl std::fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreLocation::File(p) => f.debug_tuple("File").field(p).finish(),
            StoreLocation::Postgres(url) => f
                .debug_tuple("Postgres")
                .field(&redact_password(url))
                .finish(),
        }
    }
}

impl StoreLocation {
    /// `"file"` or `"postgres"`, as [`Backend::kind`] of the store it opens.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreLocation::File(_) => "file",
            StoreLocation::Postgres(_) => "postgres",
        }
    }

    /// For messages and logs: the file's path, or the URL with its password replaced by `***`.
    pub fn describe(&self) -> String {
        match self {
            StoreLocation::File(p) => p.display().to_string(),
            StoreLocation::Postgres(url) => redact_password(url),
        }
    }
}

/// `url` with the password of its user info (`scheme://user:password@host`) and any
/// `password=` key replaced by `***`.
pub(crate) fn redact_password(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest = scheme_end + 3;
        let authority_end = out[rest..].find(['/', '?']).map_or(out.len(), |i| rest + i);
        if let Some(at) = out[rest..authority_end].rfind('@') {
            let userinfo = &out[rest..rest + at];
            if let Some(colon) = userinfo.find(':') {
                out.replace_range(rest + colon + 1..rest + at, "***");
            }
        }
    }
    // `password=...` as a key=value pair or a query parameter.
    let mut redacted = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(i) = rest.find("password=") {
        let value_start = i + "password=".len();
        redacted.push_str(&rest[..value_start]);
        redacted.push_str("***");
        let value_len = rest[value_start..]
            .find([' ', '&'])
            .unwrap_or(rest.len() - value_start);
        rest = &rest[value_start + value_len..];
    }
    redacted.push_str(rest);
    redacted
}

/// Counters and sizes for `/metrics`, read at each scrape.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackendCounters {
    /// Appends (batches) written through this server's store since it was opened.
    pub appends: u64,
    /// Group commits since open: the file store's leader rounds; PostgreSQL's append
    /// transactions (each one commit, i.e. one WAL flush with `synchronous_commit = on`).
    pub commits: u64,
    /// Events in the store (PostgreSQL: the head position + 1, positions being dense from 0).
    pub events: u64,
    /// Streams in the store, when the backend knows without a scan (the file store's index);
    /// `None`: the server reports its stream catalog's count.
    pub streams: Option<u64>,
    /// What only the file store has.
    pub file: Option<FileCounters>,
}

/// The file store's own counters ([`evstore::StoreStats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileCounters {
    /// `fdatasync` calls since open.
    pub fsyncs: u64,
    /// Bytes written to the log since open.
    pub bytes_written: u64,
    /// Mapped segments.
    pub segments: u64,
}

/// What the server needs of a store beyond [`EventStorage`] and [`EventSource`]; implemented
/// for [`Store`] and [`PgStore`].
pub trait Backend: EventStorage + EventSource + std::fmt::Debug + 'static {
    /// `"file"` or `"postgres"` (the `backend` label of `evstore_backend_info`).
    fn kind(&self) -> &'static str;

    /// Whether [`Backend::head`] and [`EventStorage::last_version`] are answered from memory
    /// without blocking (the file store's index), so handlers may call them on the async
    /// workers; otherwise they go to the blocking pool.
    fn answers_from_memory(&self) -> bool;

    /// The position of the newest event (`None`: the log is empty).
    ///
    /// # Errors
    /// PostgreSQL: [`evstore::Error::Io`] when the query fails. The file store: none.
    fn head(&self) -> Result<Option<u64>>;

    /// Up to `max` events of `event_type` from position `from` on, in position order.
    ///
    /// # Errors
    /// [`evstore::Error::InvalidInput`] for a bad type name; the backend's read errors.
    fn read_by_type_from(
        &self,
        event_type: &str,
        from: u64,
        max: usize,
    ) -> Result<Vec<RecordedEvent>>;

    /// Every event type with its count, by name.
    ///
    /// # Errors
    /// PostgreSQL: [`evstore::Error::Io`] when the query fails. The file store: none.
    fn event_types(&self) -> Result<Vec<(String, u64)>>;

    /// Counters for `/metrics`.
    ///
    /// # Errors
    /// PostgreSQL: [`evstore::Error::Io`] when the head cannot be read. The file store: none.
    fn counters(&self) -> Result<BackendCounters>;
}

impl Backend for Store {
    fn kind(&self) -> &'static str {
        "file"
    }

    fn answers_from_memory(&self) -> bool {
        true
    }

    fn head(&self) -> Result<Option<u64>> {
        Ok(Store::head_position(self))
    }

    fn read_by_type_from(
        &self,
        event_type: &str,
        from: u64,
        max: usize,
    ) -> Result<Vec<RecordedEvent>> {
        Store::read_by_type_from(self, event_type, from, max)
    }

    fn event_types(&self) -> Result<Vec<(String, u64)>> {
        Ok(Store::event_types(self))
    }

    fn counters(&self) -> Result<BackendCounters> {
        let s = self.stats();
        Ok(BackendCounters {
            appends: s.appends,
            commits: s.groups,
            events: s.events,
            streams: Some(s.streams),
            file: Some(FileCounters {
                fsyncs: s.data_syncs,
                bytes_written: s.bytes_written,
                segments: s.segments,
            }),
        })
    }
}

impl Backend for PgStore {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn answers_from_memory(&self) -> bool {
        false
    }

    fn head(&self) -> Result<Option<u64>> {
        PgStore::head_position(self)
    }

    fn read_by_type_from(
        &self,
        event_type: &str,
        from: u64,
        max: usize,
    ) -> Result<Vec<RecordedEvent>> {
        PgStore::read_by_type_from(self, event_type, from, max)
    }

    fn event_types(&self) -> Result<Vec<(String, u64)>> {
        PgStore::event_types(self)
    }

    fn counters(&self) -> Result<BackendCounters> {
        let (commits, appends) = self.commit_stats();
        let events = PgStore::head_position(self)?.map_or(0, |h| h + 1);
        Ok(BackendCounters {
            appends,
            commits,
            events,
            streams: None,
            file: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::redact_password;

    #[test]
    fn passwords_are_redacted() {
        let config = super::StoreLocation::Postgres("postgres://a:pw@h/db".into());
        assert_eq!(
            format!("{config:?}"),
            r#"Postgres("postgres://a:***@h/db")"#
        );
        assert_eq!(
            redact_password("postgres://app:s3cret@localhost:5432/shop?sslmode=disable"),
            "postgres://app:***@localhost:5432/shop?sslmode=disable"
        );
        assert_eq!(
            redact_password("postgres://app@%2Ftmp/shop"),
            "postgres://app@%2Ftmp/shop"
        );
        assert_eq!(
            redact_password("host=/tmp user=app password=s3cret dbname=shop"),
            "host=/tmp user=app password=*** dbname=shop"
        );
        assert_eq!(
            redact_password("postgres://h/db?user=a&password=x&b=c"),
            "postgres://h/db?user=a&password=***&b=c"
        );
    }
}
