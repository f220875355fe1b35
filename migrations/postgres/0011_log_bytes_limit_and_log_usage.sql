-- Per-tenant ingest limit in log bytes per second (uncompressed export bodies, per ingest
-- replica), beside the log-record limit; NULL means the service default
-- (WEFT_TENANT_LOG_BYTES_PER_SECOND).
ALTER TABLE tenants ADD COLUMN log_bytes_per_second bigint CHECK (log_bytes_per_second > 0);

-- Log records received, accepted and rejected per tenant and UTC day beside the spans,
-- and the uncompressed bytes of the log exports that were accepted.
ALTER TABLE usage_daily
    ADD COLUMN log_records_received bigint NOT NULL DEFAULT 0,
    ADD COLUMN log_records_accepted bigint NOT NULL DEFAULT 0,
    ADD COLUMN log_records_rejected bigint NOT NULL DEFAULT 0,
    ADD COLUMN log_bytes_accepted bigint NOT NULL DEFAULT 0;
