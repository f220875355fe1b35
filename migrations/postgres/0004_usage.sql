-- Spans received, accepted and rejected per tenant and UTC day, added up by ingest.
CREATE TABLE usage_daily (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    day date NOT NULL,
    spans_received bigint NOT NULL DEFAULT 0,
    spans_accepted bigint NOT NULL DEFAULT 0,
    spans_rejected bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, day)
);
