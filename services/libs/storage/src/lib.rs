//! Storage for Weft: ClickHouse (spans and the trace index) and PostgreSQL (accounts and
//! API keys), with their migrations. Every read of tenant data goes through a layer that
//! cannot be built without a tenant id.

pub mod clickhouse;
pub mod postgres;
