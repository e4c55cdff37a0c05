//! The integration tests of the evstore command: one test binary (one link step), one module per
//! property, named after it.
#![allow(
    clippy::pedantic,
    missing_docs,
    reason = "test code: the pedantic group and documented items are for the shipped code; \
              tests favour direct, long, literal scenarios"
)]

mod cli_backup_copy_verifies_clean;
mod cli_inspection_is_read_only;
mod cli_ops;
mod cli_orders;
mod cli_refuses_an_oversell;
mod cli_text_escapes_control_characters;
mod cli_usage;
mod common;
mod copy_is_exact_and_resumes;
mod dump_by_type_pages_and_respects_the_limit;
mod dump_shows_payloads_as_json;
mod dump_tail_and_stats_show_tags;
mod orders_run_on_postgres_with_database_url;
mod snapshots_verify_finds_a_disagreeing_order;
mod verify_counts_match_the_scan;
