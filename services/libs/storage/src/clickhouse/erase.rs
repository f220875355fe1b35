//! Erasing a deleted organisation's rows from every table that holds tenant data. Each
//! table is first counted for the tenant (a seek: `tenant_id` leads every sort key), and
//! only a table that has rows gets `ALTER TABLE … DELETE`, a mutation ClickHouse applies in
//! the background by rewriting the parts that hold them (18.16 has no lightweight
//! `DELETE` and no `mutations_sync`), so repeated sweeps cost nothing once it is done.

use super::queries::TENANT;
use super::rows::Table;
use super::{LogRow, ServiceEdgeRow, SpanMetricRow, SpanRow};
use weft_model::TenantId;

/// The trace-sorted copy of `spans`, filled by a materialized view on it (migration
/// 0006), not written by Weft itself.
pub const SPANS_BY_TRACE: &str = "spans_by_trace";

/// The trace index, filled by a materialized view on `spans` (migration 0008).
pub const TRACE_INDEX: &str = "trace_index";

/// The resources of log lines, filled by a materialized view on `logs` (migration 0007).
pub const LOG_RESOURCES: &str = "log_resources";

/// Every table of tenant data.
pub const TENANT_TABLES: [&str; 7] = [
    SpanRow::TABLE,
    SPANS_BY_TRACE,
    TRACE_INDEX,
    SpanMetricRow::TABLE,
    ServiceEdgeRow::TABLE,
    LogRow::TABLE,
    LOG_RESOURCES,
];

/// The tenant's rows in `table`; reads one `UInt64`.
pub fn stored_rows(table: &str, tenant: TenantId) -> String {
    scoped(
        &format!("SELECT count() FROM {table} WHERE tenant_id = {TENANT}"),
        tenant,
    )
}

/// Deletes the tenant's rows of `table`, in the background.
pub fn erasure(table: &str, tenant: TenantId) -> String {
    scoped(
        &format!("ALTER TABLE {table} DELETE WHERE tenant_id = {TENANT}"),
        tenant,
    )
}

fn scoped(template: &str, tenant: TenantId) -> String {
    assert!(template.contains(TENANT), "unscoped statement: {template}");
    template.replace(TENANT, &format!("toUUID('{tenant}')"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stored_table_is_erased() {
        let rows = include_str!("rows.rs");
        let stored = rows.matches("impl Table for ").count();
        // Beside those Weft writes, the tables materialized views fill.
        let filled = [SPANS_BY_TRACE, TRACE_INDEX, LOG_RESOURCES];
        assert_eq!(
            stored + filled.len(),
            TENANT_TABLES.len(),
            "rows.rs stores a table not erased"
        );
        let tenant = TenantId::new(uuid::Uuid::from_u128(7));
        assert_eq!(
            erasure("logs", tenant),
            "ALTER TABLE logs DELETE WHERE tenant_id = toUUID('00000000-0000-0000-0000-000000000007')"
        );
    }
}
