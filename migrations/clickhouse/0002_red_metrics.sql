-- RED metrics and service edges, computed by the sampler from every span before any
-- sampling decision: one row per write batch and key, keyed by minute.
--
-- SummingMergeTree folds the rows of one key together in the background: it sums the
-- counters and, bucket by bucket, the duration histogram (a nested column whose name ends
-- in `Map` is summed by its first column). Queries always sum, so they are exact before
-- and after merges; merges only shrink the table.
--
-- `messagesMap` lists the bus messages (JetStream stream sequences) counted in a row and
-- what each contributed; merging keeps the union of the ids. Before it counts a
-- redelivered message, the sampler looks its id up here, so a message is counted once
-- however often it is delivered.
--
-- Portable core as in 0001: runs on ClickHouse 18.16 and on current ClickHouse.

CREATE TABLE IF NOT EXISTS span_metrics
(
    tenant_id UUID,
    minute DateTime,
    service_name String,
    operation String,
    kind UInt8,
    status_code UInt8,
    spans UInt64,
    errors UInt64,
    duration_sum_ns UInt64,
    durationMap Nested(bucket UInt16, count UInt64),
    messagesMap Nested(id UInt64, spans UInt64)
)
ENGINE = SummingMergeTree()
PARTITION BY toYYYYMMDD(minute)
ORDER BY (tenant_id, minute, service_name, operation, kind, status_code);

-- One row per caller → callee pair and minute: calls, failed calls and the callee's
-- latency, from parent/child spans of different services and from client/server pairs.
CREATE TABLE IF NOT EXISTS service_edges
(
    tenant_id UUID,
    minute DateTime,
    caller_service String,
    callee_service String,
    calls UInt64,
    errors UInt64,
    duration_sum_ns UInt64,
    durationMap Nested(bucket UInt16, count UInt64),
    messagesMap Nested(id UInt64, calls UInt64)
)
ENGINE = SummingMergeTree()
PARTITION BY toYYYYMMDD(minute)
ORDER BY (tenant_id, minute, caller_service, callee_service);

-- weft:min-version 20.3
ALTER TABLE span_metrics MODIFY TTL minute + INTERVAL {retention_days} DAY;

-- weft:min-version 20.3
ALTER TABLE service_edges MODIFY TTL minute + INTERVAL {retention_days} DAY;
