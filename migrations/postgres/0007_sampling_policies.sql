-- Tail-sampling policies: one per tenant, as the JSON of weft_model::sampling::SamplingPolicy
-- (validated by Weft before it is stored). A tenant without a row samples with the default
-- policy: keep errors, keep slow traces, keep 10 % of the rest.
CREATE TABLE sampling_policies (
    tenant_id uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    policy jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by uuid REFERENCES users (id) ON DELETE SET NULL
);

-- Keys that may change a tenant's configuration through the API (sampling policies,
-- alert rules), beside the ingest and read keys.
ALTER TABLE api_keys DROP CONSTRAINT api_keys_scope_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_scope_check CHECK (scope IN ('ingest', 'read', 'write'));
