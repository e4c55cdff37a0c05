//! The integration tests of the evstore library: one test binary (one link step), one module per
//! property, named after it.

// Test code: clippy's pedantic group and documented items are held to the library's API. The
// tests favour long scenario functions, plain casts in test arithmetic and repeated names for
// the same value at different steps.
#![allow(
    clippy::pedantic,
    missing_docs,
    reason = "test code: pedantic style and docs are required of the library, not of its tests"
)]

mod api_round_trips;
mod backup_copies_usable_snapshots;
mod backup_destination_is_written_atomically;
mod backup_during_heavy_appends_verifies_clean;
mod bank_app_holds_under_contention;
mod common;
mod corruption_sweep;
mod crash_kill9_keeps_acknowledged_events;
mod durable_corruption_is_refused;
mod execute_holds_under_contention;
mod expected_version_is_enforced;
mod format_version_1_logs_still_open;
mod fuzz_corpus_replays;
mod group_commit_wakes_every_appender;
mod idempotent_retry;
mod identical_appends_racing_write_once;
mod import_keeps_positions_versions_and_times;
mod input_validation;
mod io_errors_poison_the_store;
mod json_snapshots_and_projection_state;
mod legacy_codec_data_stays_readable;
mod model_matches_store;
mod multi_stream_appends_are_all_or_nothing;
mod power_loss;
mod projection_checkpoint_is_exactly_once;
mod queries_match_a_model;
mod read_only_open;
mod readers_in_other_processes_follow_the_writer;
mod reads_racing_segment_growth_see_no_error;
mod reopen_preserves_index;
mod saga_checkpoint_names_the_event_before_its_position;
mod saga_reactions_carry_only_the_chosen_extra_keys;
mod second_open_is_locked;
mod snapshot_compaction_crash_states;
mod snapshot_failures_fall_back_to_replay;
mod snapshot_upcast_is_applied;
mod snapshots_built_under_other_upcasters_are_ignored;
mod store_creation_leaves_no_garbage;
mod stream_views_match_owned_reads;
mod subscription_latency;
mod subscription_sees_every_position_once;
mod tag_claims_race_exactly_one_wins;
mod torn_tail_is_trimmed;
mod type_reads_page_through_positions;
mod unreadable_snapshots_are_caught_on_first_save;
mod unwritten_tail_stays_out_of_the_page_cache;
mod verify_and_repair;
mod verify_names_a_live_copy_as_a_cause_of_holes;
mod verify_snapshots_finds_a_disagreeing_snapshot;
