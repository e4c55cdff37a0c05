//! evstore-postgres against a real server (`EVSTORE_PG_URL`; skipped with a message without
//! it, failing with `EVSTORE_REQUIRE_PG=1`). The store contract shared with the file store runs
//! in crate `evstore-contract`; these are the PostgreSQL-specific properties.

mod altered_tables_give_errors_not_panics;
mod conditions_see_earlier_appends_of_their_group;
mod group_commit_keeps_each_appends_outcome;
mod live_subscription_wakes_on_notify;
mod migrations_are_idempotent;
mod orders_run_unchanged_on_postgres;
mod positions_stay_gap_free_across_processes;
mod read_model_and_checkpoint_commit_together;
mod runner_checkpoints_live_in_postgres;
mod tags_are_stored_on_every_path;
