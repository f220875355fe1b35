-- Log records, from OTLP and from JSON lines. Never sampled: every accepted record is
-- stored. `tenant_id` leads the sort key, then time, so a tenant's newest lines are a
-- range read; a trace's lines are found within its time window (and, on servers that
-- support one, through the bloom filter on `trace_id`).
--
-- `message` and `message_line` name the bus message (its stream sequence) that carried
-- the record and its place in it: together with the time they identify a row, so the
-- sampler can tell whether a redelivered message is stored already, and readers page
-- by them.
--
-- Portable core as in 0001: runs on ClickHouse 18.16 and on current ClickHouse.

CREATE TABLE IF NOT EXISTS logs
(
    tenant_id UUID,
    time DateTime,
    time_unix_nano UInt64,
    observed_time_unix_nano UInt64,
    trace_id FixedString(16),
    span_id FixedString(8),
    severity_number UInt8,
    severity_text String,
    body String,
    service_name String,
    scope_name String,
    scope_version String,
    attribute_keys Array(String),
    attribute_values Array(String),
    resource_keys Array(String),
    resource_values Array(String),
    message UInt64,
    message_line UInt32
)
ENGINE = MergeTree()
PARTITION BY toYYYYMMDD(time)
ORDER BY (tenant_id, time, service_name);

-- weft:min-version 20.3
ALTER TABLE logs MODIFY TTL time + INTERVAL {retention_days} DAY;

-- weft:min-version 20.3
ALTER TABLE logs ADD INDEX IF NOT EXISTS logs_trace_id_bloom trace_id TYPE bloom_filter(0.01) GRANULARITY 4;
