//! The integration tests of the Order domain: one test binary (one link step), one module per
//! property, named after it.
#![allow(
    clippy::pedantic,
    missing_docs,
    reason = "test code: the pedantic group and documented items are for the published API; \
              tests favour direct, long, literal scenarios"
)]

mod cancel_releases_stock;
mod common;
mod cqrs_order_read_side;
mod order_concurrency;
mod order_load_timing;
mod order_rules;
mod order_snapshot_equals_replay;
mod order_time_travel;
mod order_upcast_v1_fixture;
mod orders_run_on_format_version_1_logs;
mod projection_catch_up_speed;
mod saga_order_fulfilment;
mod saga_two_stream_write_is_atomic;
mod stock_is_never_oversold;
