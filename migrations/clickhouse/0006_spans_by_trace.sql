-- Spans again, sorted by trace: the table a trace is read from. `spans` is sorted for
-- search (service, operation, time), so reading one trace from it meant reading every
-- granule of the trace's time window: at ten million spans an hour, tens of milliseconds
-- for a short trace and hundreds for one whose spans arrived over an hour. Here a
-- trace's spans are adjacent, so reading it is a seek to its first granule per day.
--
-- Rows come from a materialized view on `spans`: every INSERT into `spans` writes the
-- same rows here in the same statement (the sampler's writes need no change, and an
-- INSERT that fails here fails as a whole and is retried, like any other). Small
-- granules, because a read wants a few hundred rows, not thousands.
--
-- The view selects the columns `spans` has now. A migration that adds a column to
-- `spans` adds it here too and recreates the view (DROP TABLE spans_by_trace_feed, then
-- CREATE MATERIALIZED VIEW as below).
--
-- Existing spans are copied before the view starts, so stop the samplers while this
-- migration runs (`weft-admin migrate` before they start, as `deploy/up.sh` does); spans
-- written meanwhile would be copied twice, which readers tolerate (a redelivered batch
-- is stored twice too, and a trace shows each span once).
--
-- Portable core as in 0001: runs on ClickHouse 18.16 and on current ClickHouse.

CREATE TABLE IF NOT EXISTS spans_by_trace AS spans
ENGINE = MergeTree()
PARTITION BY toYYYYMMDD(start_time)
ORDER BY (tenant_id, trace_id)
SETTINGS index_granularity = 1024;

INSERT INTO spans_by_trace SELECT * FROM spans;

CREATE MATERIALIZED VIEW IF NOT EXISTS spans_by_trace_feed TO spans_by_trace AS SELECT * FROM spans;

-- weft:min-version 20.3
ALTER TABLE spans_by_trace MODIFY TTL start_time + INTERVAL {retention_days} DAY;
