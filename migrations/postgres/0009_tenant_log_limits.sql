-- Per-tenant ingest limit in log records per second (per ingest replica), beside the
-- span limit; NULL means the service default (WEFT_TENANT_LOGS_PER_SECOND).
ALTER TABLE tenants ADD COLUMN logs_per_second integer CHECK (logs_per_second > 0);
