-- The trace index written by ClickHouse itself, from the spans of each INSERT into
-- `spans`: one row per trace and block, as the sampler wrote them before (queries sum a
-- trace's rows, so spans of one trace stored by several INSERTs need no
-- read-modify-write).
--
-- Until now the sampler wrote index rows in an INSERT of their own after the spans'.
-- Two INSERTs could be split by a crash (spans stored, index rows not): a redelivered
-- message then found its spans stored and, leaving them out so nothing is stored twice,
-- would never index them. With the view, a trace's spans and their index rows come from
-- one statement, and the sampler sends one INSERT fewer per batch.
--
-- Rows as `TraceIndexRow::summarise` makes them: the root is the span without a parent
-- (the all-zero parent id ingest stores), errors are status code 2 (Error).
--
-- A span's end is a column of `spans`, MATERIALIZED (ClickHouse computes it as it writes
-- the row; about 8 bytes a span before compression), so that the view reads it by name:
-- the view names its results as the index's columns, which are the spans' own names, and
-- ClickHouse aliases are visible to the whole SELECT, so `min(start_time_unix_nano) AS
-- start_time_unix_nano` beside `max(start_time_unix_nano + duration_ns)` would nest one
-- aggregate in another. 18.16 neither resolves the spans' columns in a subquery of a view
-- (it runs the SELECT over the inserted block in its place) nor passes rows on from a
-- view's target table to that table's views, so neither can do the renaming.
--
-- Stop the samplers while this migration runs (`weft-admin migrate` before they start,
-- as `deploy/up.sh` does): a sampler of the previous version still writes index rows,
-- which with the view's would index its spans twice.
--
-- 18.16 has no `ADD COLUMN IF NOT EXISTS`: the migrator's ledger makes each run once.
--
-- Portable core as in 0001: runs on ClickHouse 18.16 and on current ClickHouse.

ALTER TABLE spans ADD COLUMN end_time_unix_nano UInt64
    MATERIALIZED start_time_unix_nano + duration_ns;

CREATE MATERIALIZED VIEW IF NOT EXISTS trace_index_feed TO trace_index AS
SELECT
    tenant_id,
    trace_id,
    min(start_time) AS start_time,
    min(start_time_unix_nano) AS start_time_unix_nano,
    max(end_time_unix_nano) AS end_time_unix_nano,
    anyIf(service_name, parent_span_id = toFixedString(unhex('0000000000000000'), 8)) AS root_service,
    anyIf(name, parent_span_id = toFixedString(unhex('0000000000000000'), 8)) AS root_name,
    toUInt32(count()) AS span_count,
    toUInt32(countIf(status_code = 2)) AS error_count,
    groupUniqArray(service_name) AS service_names,
    any(sample_rate) AS sample_rate,
    any(sampled_by) AS sampled_by
FROM spans
GROUP BY tenant_id, trace_id;
