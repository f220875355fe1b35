-- Per-tenant ingest limit in spans per second (per ingest replica); NULL means the
-- service default (WEFT_TENANT_SPANS_PER_SECOND).
ALTER TABLE tenants ADD COLUMN spans_per_second integer CHECK (spans_per_second > 0);
