//! The schema: migrations under `migrations/`, applied in order, once each, recorded in
//! `evstore_schema_migrations`.

use evstore::Result;
use postgres::NoTls;

use crate::store::{col, lock_key, pg};

/// The migrations, in order: (version, name, SQL). Version `n` is `migrations/000n_*.sql`.
pub const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "events", include_str!("../migrations/0001_events.sql")),
    (
        2,
        "read_side",
        include_str!("../migrations/0002_read_side.sql"),
    ),
    (3, "tags", include_str!("../migrations/0003_tags.sql")),
];

/// The schema version this build brings a database up to.
pub const SCHEMA_VERSION: i32 = 3;

/// Create `schema` if missing and apply every migration it lacks, in one transaction under an
/// advisory lock (so concurrent connects neither race nor apply one twice). Idempotent.
pub(crate) fn ensure_schema(config: &postgres::Config, schema: &str) -> Result<()> {
    let mut client = config.connect(NoTls).map_err(pg)?;
    let mut tx = client.transaction().map_err(pg)?;
    // A different key from the append lock: migrations do not wait for appends.
    let key = lock_key(schema).wrapping_add(1);
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&key])
        .map_err(pg)?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS \"{schema}\";
         CREATE TABLE IF NOT EXISTS evstore_schema_migrations (
             version    integer     NOT NULL PRIMARY KEY,
             name       text        NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         );"
    ))
    .map_err(pg)?;
    let applied: Vec<i32> = tx
        .query("SELECT version FROM evstore_schema_migrations", &[])
        .map_err(pg)?
        .iter()
        .map(|r| col(r, 0))
        .collect::<Result<_>>()?;
    if let Some(newer) = applied.iter().find(|v| **v > SCHEMA_VERSION) {
        return Err(evstore::Error::InvalidInput(format!(
            "schema {schema} is at version {newer}, newer than this build's {SCHEMA_VERSION}"
        )));
    }
    for (version, name, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        tx.batch_execute(sql).map_err(pg)?;
        tx.execute(
            "INSERT INTO evstore_schema_migrations (version, name) VALUES ($1, $2)",
            &[version, name],
        )
        .map_err(pg)?;
    }
    tx.commit().map_err(pg)
}
