-- Spans kept by the sampler, and the trace index that makes trace-by-id a primary-key
-- seek and trace-level search a scan of one small row per trace.
--
-- Portable core: runs on ClickHouse 18.16 (Debian's package, used locally and in CI) and
-- on current ClickHouse. Statements marked `weft:min-version` are applied only by a
-- server at least that new; the migrator records each statement it applied, so an
-- upgraded server picks up the extras on the next run.

CREATE TABLE IF NOT EXISTS spans
(
    tenant_id UUID,
    trace_id FixedString(16),
    span_id FixedString(8),
    parent_span_id FixedString(8),
    trace_state String,
    service_name String,
    name String,
    kind UInt8,
    start_time DateTime,
    start_time_unix_nano UInt64,
    duration_ns UInt64,
    status_code UInt8,
    status_message String,
    scope_name String,
    scope_version String,
    attribute_keys Array(String),
    attribute_values Array(String),
    resource_keys Array(String),
    resource_values Array(String),
    event_times_unix_nano Array(UInt64),
    event_names Array(String),
    event_attributes Array(String),
    link_trace_ids Array(FixedString(16)),
    link_span_ids Array(FixedString(8)),
    link_attributes Array(String),
    sample_rate Float32
)
ENGINE = MergeTree()
PARTITION BY toYYYYMMDD(start_time)
ORDER BY (tenant_id, service_name, name, start_time);

-- One row per trace and write batch; queries aggregate the rows of a trace, so spans of
-- one trace that arrive in several batches need no read-modify-write.
CREATE TABLE IF NOT EXISTS trace_index
(
    tenant_id UUID,
    trace_id FixedString(16),
    start_time DateTime,
    start_time_unix_nano UInt64,
    end_time_unix_nano UInt64,
    root_service String,
    root_name String,
    span_count UInt32,
    error_count UInt32,
    service_names Array(String)
)
ENGINE = MergeTree()
PARTITION BY toYYYYMMDD(start_time)
ORDER BY (tenant_id, trace_id);

-- weft:min-version 20.3
ALTER TABLE spans MODIFY TTL start_time + INTERVAL {retention_days} DAY;

-- weft:min-version 20.3
ALTER TABLE trace_index MODIFY TTL start_time + INTERVAL {retention_days} DAY;

-- weft:min-version 20.3
ALTER TABLE spans ADD INDEX IF NOT EXISTS spans_trace_id_bloom trace_id TYPE bloom_filter(0.01) GRANULARITY 4;
