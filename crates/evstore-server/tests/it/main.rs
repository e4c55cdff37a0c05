//! HTTP tests of `evstore serve`: a real client (reqwest) against servers on ephemeral
//! loopback ports, the real `evstore` binary for signals, and a real headless Chromium for
//! the web page. Each module is named after the property it proves. The API, feed, page and
//! shutdown tests run on both backends: a file, and a real PostgreSQL server
//! (`EVSTORE_PG_URL`; without it the PostgreSQL variants print `skipped: ...` and pass, unless
//! `EVSTORE_REQUIRE_PG=1`).
#![allow(
    clippy::pedantic,
    missing_docs,
    reason = "test code: the pedantic group and documented items are for the shipped code; \
              tests favour direct, long, literal scenarios"
)]

mod browser_page_shows_orders_time_travel_and_live_tail;
mod concurrent_clients_lose_no_update;
mod errors_are_problem_details;
mod event_tags_round_trip_through_the_store_api;
mod limits_and_token_guard_writes;
mod metrics_and_openapi_are_served;
mod product_stock_is_never_oversold;
mod read_models_resume_from_their_checkpoints_after_a_restart;
mod seed_api_is_compatible;
mod serve_store_arguments_are_checked;
mod shutdown_lets_requests_in_flight_finish;
mod sigterm_loses_no_acknowledged_write;
mod sse_feed_resumes_after_disconnect;
mod store_api_appends_and_reads;
mod support;
mod time_travel_and_history;
