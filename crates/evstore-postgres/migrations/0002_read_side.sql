-- evstore PostgreSQL schema, version 2: the read side.

-- Checkpoints of projections and sagas: the next position to process and the id of the event
-- just before it (checked against the log on load). `state` is the projection's encoded state
-- for in-memory projections; read models kept in tables leave it empty.
CREATE TABLE evstore_checkpoints (
    name          text        NOT NULL PRIMARY KEY,
    next_position bigint      NOT NULL CHECK (next_position >= 0),
    -- The projection's version (a change rebuilds it from position 0).
    version       integer     NOT NULL DEFAULT 0,
    last_event_id uuid,
    state         bytea       NOT NULL DEFAULT '\x',
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- The Order summaries read model (the seed's order_projections), money in integer cents.
CREATE TABLE order_projections (
    order_id     text        NOT NULL PRIMARY KEY,
    user_id      text        NOT NULL,
    status       text        NOT NULL,
    total_cents  bigint      NOT NULL,
    item_count   integer     NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    version      bigint      NOT NULL
);
CREATE INDEX order_projections_user ON order_projections (user_id, created_at DESC);
