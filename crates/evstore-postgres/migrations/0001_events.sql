-- evstore PostgreSQL schema, version 1: the event log and snapshots.
-- Applied by evstore-postgres (src/migrate.rs) once per schema, recorded in
-- evstore_schema_migrations. Never edit an applied migration: add a new file.

-- The global log. `position` is the global order: dense from 0, assigned under a
-- transaction-scoped advisory lock so positions commit in order (docs/POSTGRES.md).
CREATE TABLE evstore_events (
    position    bigint      NOT NULL PRIMARY KEY CHECK (position >= 0),
    stream_id   text        NOT NULL CHECK (octet_length(stream_id) BETWEEN 1 AND 255),
    version     bigint      NOT NULL CHECK (version >= 0),
    event_id    uuid        NOT NULL,
    event_type  text        NOT NULL CHECK (octet_length(event_type) BETWEEN 1 AND 255),
    -- Stamped by the database's clock at append; never decreases with the position.
    recorded_at timestamptz NOT NULL,
    data        bytea       NOT NULL,
    metadata    bytea       NOT NULL,
    CONSTRAINT evstore_events_stream_version UNIQUE (stream_id, version)
);

-- read_by_type (with `since`: recorded_at grows with the position).
CREATE INDEX evstore_events_type ON evstore_events (event_type, position);

-- Aggregate snapshots: a cache, used only while the log still holds `version` with `event_id`.
CREATE TABLE evstore_snapshots (
    stream_id text        NOT NULL PRIMARY KEY,
    version   bigint      NOT NULL,
    event_id  uuid        NOT NULL,
    payload   bytea       NOT NULL,
    saved_at  timestamptz NOT NULL DEFAULT now()
);
