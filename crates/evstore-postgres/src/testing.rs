//! Throwaway stores on a real server for tests: `EVSTORE_PG_URL` names the server; each store
//! gets a schema of its own, dropped when the guard is dropped.
//!
//! Without `EVSTORE_PG_URL`, [`test_url`] prints `skipped: set EVSTORE_PG_URL …` and returns
//! `None` (the test passes without running) — unless `EVSTORE_REQUIRE_PG=1`, when it panics:
//! CI sets both, so a server that did not start fails the run.

use std::sync::Arc;

use crate::{PgOptions, PgStore};

/// The server URL for tests, or `None` (after printing why) when tests should skip.
///
/// # Panics
/// When `EVSTORE_REQUIRE_PG=1` and `EVSTORE_PG_URL` is unset or empty: the test must fail.
pub fn test_url(test: &str) -> Option<String> {
    match std::env::var("EVSTORE_PG_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("EVSTORE_REQUIRE_PG").as_deref() != Ok("1"),
                "{test}: EVSTORE_REQUIRE_PG=1 but EVSTORE_PG_URL is not set (start a server with .ci/pg-start)"
            );
            eprintln!(
                "{test}: skipped: set EVSTORE_PG_URL (e.g. eval \"$(.ci/pg-start)\") to run it against PostgreSQL"
            );
            None
        }
    }
}

/// A store in a fresh schema of its own; the schema is dropped with the last clone of the
/// guard's store when the guard is dropped.
#[derive(Debug)]
pub struct TestStore {
    /// The store.
    pub store: Arc<PgStore>,
    /// The URL it was connected with (to connect more stores to the same schema).
    pub url: String,
}

impl TestStore {
    /// A fresh store, or `None` when tests skip (see [`test_url`]).
    ///
    /// # Panics
    /// When the server named by `EVSTORE_PG_URL` cannot be reached (a test must fail then,
    /// not skip), or as [`test_url`].
    pub fn fresh(test: &str) -> Option<TestStore> {
        let url = test_url(test)?;
        let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
        let store = PgStore::connect_with(&url, TestStore::options(&schema))
            .unwrap_or_else(|e| panic!("{test}: cannot connect to EVSTORE_PG_URL={url}: {e}"));
        Some(TestStore {
            store: Arc::new(store),
            url,
        })
    }

    /// The options of the guard's schema (to connect another store to it).
    pub fn options(schema: &str) -> PgOptions {
        PgOptions {
            schema: Some(schema.to_string()),
            pool_size: 12,
            ..PgOptions::default()
        }
    }

    /// The URL naming this store's schema (`?options=-csearch_path%3D<schema>`), for tools
    /// that take only a URL (`evstore copy`).
    pub fn schema_url(&self) -> String {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!(
            "{}{sep}options=-csearch_path%3D{}",
            self.url,
            self.store.schema()
        )
    }

    /// Another store on the same schema (as another process would have).
    ///
    /// # Panics
    /// When it cannot connect.
    pub fn connect_again(&self) -> PgStore {
        PgStore::connect_with(&self.url, TestStore::options(self.store.schema()))
            .unwrap_or_else(|e| panic!("cannot connect again: {e}"))
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if let Err(e) = self.store.drop_schema() {
            eprintln!("dropping test schema {}: {e}", self.store.schema());
        }
    }
}
