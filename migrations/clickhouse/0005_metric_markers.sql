-- The metrics tables, re-keyed so that counting a bus message once costs a row, not a
-- growing list. In 0002 every row listed the messages it counted (`messagesMap`), and
-- SummingMergeTree kept the union of the lists as it folded rows: a busy minute's row
-- carried tens of thousands of ids, rewritten by every merge, and merging them became
-- ClickHouse's largest cost under load.
--
-- Now a table holds two kinds of row. Metrics have `message = 0` and fold as before.
-- Markers have `message` = a bus message's stream sequence and `messages = 1` (every
-- other counter 0): one per message and minute it counted, written in the same INSERT as
-- the metrics they vouch for. A marker's key is its own, so merges never fold it; it is
-- a few bytes. `message` is in the sort key right after the minute, so a lookup of some
-- messages reads only their markers. Every metrics read says `message = 0`.
--
-- A sort key cannot gain a column on 18.16, so each table is rebuilt: created under a new
-- name, filled from the old one (its rows as metrics, its message lists as markers), and
-- swapped in. Stop the samplers while this migration runs (`weft-admin migrate` before
-- they start, as `deploy/up.sh` does): rows written to the old table during the copy
-- would be left behind.
--
-- Portable core as in 0001: runs on ClickHouse 18.16 and on current ClickHouse.

CREATE TABLE IF NOT EXISTS span_metrics_0005
(
    tenant_id UUID,
    minute DateTime,
    message UInt64,
    service_name String,
    operation String,
    kind UInt8,
    status_code UInt8,
    spans UInt64,
    errors UInt64,
    duration_sum_ns UInt64,
    durationMap Nested(bucket UInt16, count UInt64),
    messages UInt64
)
ENGINE = SummingMergeTree()
PARTITION BY toYYYYMMDD(minute)
ORDER BY (tenant_id, minute, message, service_name, operation, kind, status_code);

INSERT INTO span_metrics_0005 (tenant_id, minute, message, service_name, operation, kind,
    status_code, spans, errors, duration_sum_ns, durationMap.bucket, durationMap.count, messages)
SELECT tenant_id, minute, toUInt64(0), service_name, operation, kind, status_code, spans,
    errors, duration_sum_ns, durationMap.bucket, durationMap.count, toUInt64(0)
FROM span_metrics;

INSERT INTO span_metrics_0005 (tenant_id, minute, message, messages)
SELECT DISTINCT tenant_id, minute, counted, toUInt64(1)
FROM span_metrics ARRAY JOIN messagesMap.id AS counted;

RENAME TABLE span_metrics TO span_metrics_0002, span_metrics_0005 TO span_metrics;

DROP TABLE IF EXISTS span_metrics_0002;

CREATE TABLE IF NOT EXISTS service_edges_0005
(
    tenant_id UUID,
    minute DateTime,
    message UInt64,
    caller_service String,
    callee_service String,
    calls UInt64,
    errors UInt64,
    duration_sum_ns UInt64,
    durationMap Nested(bucket UInt16, count UInt64),
    messages UInt64
)
ENGINE = SummingMergeTree()
PARTITION BY toYYYYMMDD(minute)
ORDER BY (tenant_id, minute, message, caller_service, callee_service);

INSERT INTO service_edges_0005 (tenant_id, minute, message, caller_service, callee_service,
    calls, errors, duration_sum_ns, durationMap.bucket, durationMap.count, messages)
SELECT tenant_id, minute, toUInt64(0), caller_service, callee_service, calls, errors,
    duration_sum_ns, durationMap.bucket, durationMap.count, toUInt64(0)
FROM service_edges;

INSERT INTO service_edges_0005 (tenant_id, minute, message, messages)
SELECT DISTINCT tenant_id, minute, counted, toUInt64(1)
FROM service_edges ARRAY JOIN messagesMap.id AS counted;

RENAME TABLE service_edges TO service_edges_0002, service_edges_0005 TO service_edges;

DROP TABLE IF EXISTS service_edges_0002;

-- weft:min-version 20.3
ALTER TABLE span_metrics MODIFY TTL minute + INTERVAL {retention_days} DAY;

-- weft:min-version 20.3
ALTER TABLE service_edges MODIFY TTL minute + INTERVAL {retention_days} DAY;
