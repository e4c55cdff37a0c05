//! The store contract (crate `evstore-contract`) run against every backend: the file store
//! always, PostgreSQL when `EVSTORE_PG_URL` names a server (required with
//! `EVSTORE_REQUIRE_PG=1`).

mod file_store_passes_the_contract;
mod postgres_passes_the_contract;
