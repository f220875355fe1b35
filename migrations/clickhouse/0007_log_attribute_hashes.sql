-- What an attribute filter on log lines (`attr=key=value`) reads instead of four string
-- array columns: a hash of each of the line's own attributes, and a hash naming its
-- resource, looked up in a small table of the tenant's resources.
--
-- A filter on `attribute_keys` / `attribute_values` / `resource_keys` /
-- `resource_values` decompressed and compared every string of every line of the window:
-- at 31 M lines an hour a count took 1.65 s.
--
-- `attribute_hashes` holds one 64-bit `cityHash64(key, value)` per attribute of the line.
-- Hashing key and value as two arguments keeps `a=b` + `c` apart from `a` + `b=c`. A false
-- match needs two different pairs with one 64-bit hash: about one chance in 10^10 for a
-- window holding a billion distinct pairs, which a log search accepts.
--
-- A line's resource attributes (nine for an SDK's defaults) are the same for every line
-- of its process: hashing each would store 72 bytes a line. Instead `resource_hash`
-- names the whole resource, and `log_resources` holds each resource once per tenant,
-- filled by a materialized view on `logs` (each INSERT adds its distinct resources;
-- ReplacingMergeTree folds repeats). A filter finds the resources that match in that
-- small table, then the lines whose `resource_hash` is one of them.
--
-- The columns are MATERIALIZED: ClickHouse computes them as it writes a row, from the
-- columns the sampler sends, so no writer changes, and reads of the old arrays still
-- work. Parts written before this migration compute them as they are read (as slow as
-- before) until they are merged or expire. The resources of lines stored before it are
-- copied first; as with 0006, stop the samplers while it runs (`weft-admin migrate`
-- before they start, as `deploy/up.sh` does), or a resource first seen meanwhile could
-- be missed by the copy and by the view.
--
-- 18.16 has no `ADD COLUMN IF NOT EXISTS`: the migrator's ledger makes each run once.
--
-- Portable core as in 0001: runs on ClickHouse 18.16 and on current ClickHouse.

ALTER TABLE logs ADD COLUMN attribute_hashes Array(UInt64)
    MATERIALIZED arrayMap((k, v) -> cityHash64(k, v), attribute_keys, attribute_values);

ALTER TABLE logs ADD COLUMN resource_hash UInt64
    MATERIALIZED cityHash64(resource_keys, resource_values);

CREATE TABLE IF NOT EXISTS log_resources
(
    tenant_id UUID,
    resource_hash UInt64,
    resource_keys Array(String),
    resource_values Array(String)
)
ENGINE = ReplacingMergeTree()
ORDER BY (tenant_id, resource_hash);

INSERT INTO log_resources SELECT DISTINCT tenant_id,
    cityHash64(resource_keys, resource_values), resource_keys, resource_values FROM logs;

CREATE MATERIALIZED VIEW IF NOT EXISTS log_resources_feed TO log_resources AS
    SELECT DISTINCT tenant_id, cityHash64(resource_keys, resource_values) AS resource_hash,
    resource_keys, resource_values FROM logs;
