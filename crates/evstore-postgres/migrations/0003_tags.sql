-- evstore PostgreSQL schema, version 3: tags, for Dynamic Consistency Boundary queries and
-- append conditions (issue #15; docs/POSTGRES.md "Tags, queries and append conditions").

-- The tags of each event as appended (order kept), read back with the row: an array, so reads
-- need no join. Events appended before this migration carry none (adding a column with a
-- constant default rewrites nothing).
ALTER TABLE evstore_events
    ADD COLUMN tags text[] NOT NULL DEFAULT '{}'
        CHECK (cardinality(tags) <= 255);

-- The tag index: one row per (tag, event), written in the same statement as the event. A
-- btree on (tag, position) answers "events carrying tag t after position p" with one range
-- scan that starts at p, so an append condition's check costs the events after the decision's
-- position, not the tag's whole history (a GIN index on the array could not bound the scan by
-- position).
CREATE TABLE evstore_event_tags (
    tag      text   NOT NULL CHECK (octet_length(tag) BETWEEN 1 AND 255),
    position bigint NOT NULL CHECK (position >= 0),
    PRIMARY KEY (tag, position)
);
