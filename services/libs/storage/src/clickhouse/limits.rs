//! What one read may cost. Every tenant read carries ClickHouse's own limits (execution
//! time, memory, rows read, AST size; settings 18.16 and current ClickHouse both accept),
//! runs under its own query id, and is killed on the server when the reader stops
//! waiting (the HTTP client went away, so axum dropped the handler): ClickHouse 18.16
//! does not cancel an HTTP query when its client disconnects.

use super::ClickHouseError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use weft_model::TenantId;
use weft_runtime::config::{ConfigError, Env};

/// Limits applied to every tenant read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadLimits {
    pub max_execution_time: Duration,
    pub max_memory_usage: u64,
    pub max_rows_to_read: u64,
    /// Nodes of the parsed query: bounds what a long list of filters can cost to plan.
    pub max_ast_elements: u64,
    /// Scans one tenant may run at once on one query replica.
    pub scans_per_tenant: usize,
    /// Traces of each group whose spans "what is different" reads at most: larger groups
    /// are sampled.
    pub difference_sample_traces: u64,
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits {
            max_execution_time: Duration::from_secs(10),
            max_memory_usage: 2 << 30,
            max_rows_to_read: 2_000_000_000,
            max_ast_elements: 20_000,
            scans_per_tenant: 4,
            difference_sample_traces: super::queries::DIFFERENCE_SAMPLE_TRACES,
        }
    }
}

impl ReadLimits {
    /// Reads `WEFT_QUERY_MAX_EXECUTION_TIME`, `WEFT_QUERY_MAX_MEMORY`,
    /// `WEFT_QUERY_MAX_ROWS_TO_READ`, `WEFT_QUERY_MAX_AST_ELEMENTS` and
    /// `WEFT_QUERY_SCANS_PER_TENANT` and `WEFT_QUERY_DIFFERENCE_SAMPLE_TRACES`.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let d = ReadLimits::default();
        let limits = ReadLimits {
            max_execution_time: env
                .duration("WEFT_QUERY_MAX_EXECUTION_TIME", d.max_execution_time)?,
            max_memory_usage: env.bytes("WEFT_QUERY_MAX_MEMORY", d.max_memory_usage as usize)?
                as u64,
            max_rows_to_read: env.get("WEFT_QUERY_MAX_ROWS_TO_READ", d.max_rows_to_read)?,
            max_ast_elements: env.get("WEFT_QUERY_MAX_AST_ELEMENTS", d.max_ast_elements)?,
            scans_per_tenant: env.get("WEFT_QUERY_SCANS_PER_TENANT", d.scans_per_tenant)?,
            difference_sample_traces: env.get(
                "WEFT_QUERY_DIFFERENCE_SAMPLE_TRACES",
                d.difference_sample_traces,
            )?,
        };
        env.check(
            "WEFT_QUERY_MAX_EXECUTION_TIME",
            limits.max_execution_time >= Duration::from_secs(1),
            "must be at least 1s (ClickHouse counts whole seconds)",
        )?;
        for (name, value) in [
            ("WEFT_QUERY_MAX_MEMORY", limits.max_memory_usage),
            ("WEFT_QUERY_MAX_ROWS_TO_READ", limits.max_rows_to_read),
            ("WEFT_QUERY_MAX_AST_ELEMENTS", limits.max_ast_elements),
            (
                "WEFT_QUERY_SCANS_PER_TENANT",
                limits.scans_per_tenant as u64,
            ),
            (
                "WEFT_QUERY_DIFFERENCE_SAMPLE_TRACES",
                limits.difference_sample_traces,
            ),
        ] {
            env.check(name, value > 0, "must be at least 1")?;
        }
        Ok(limits)
    }

    /// The settings, as `(name, value)` for a query.
    pub(super) fn settings(&self) -> [(&'static str, String); 4] {
        [
            (
                "max_execution_time",
                self.max_execution_time.as_secs().max(1).to_string(),
            ),
            ("max_memory_usage", self.max_memory_usage.to_string()),
            ("max_rows_to_read", self.max_rows_to_read.to_string()),
            ("max_ast_elements", self.max_ast_elements.to_string()),
        ]
    }
}

/// ClickHouse error codes of a read that went past one of its limits.
const OVER_LIMIT_CODES: &[u32] = &[
    158, // TOO_MANY_ROWS
    159, // TIMEOUT_EXCEEDED
    160, // TOO_SLOW
    167, // TOO_DEEP_AST
    168, // TOO_BIG_AST
    307, // TOO_MANY_BYTES
];

impl ClickHouseError {
    /// The server's error code, when ClickHouse answered with an exception. Both the
    /// 18.16 (`Code: 53, e.displayText() = …`) and the current (`Code: 53. DB::Exception:
    /// …`) wording start with it.
    pub fn server_code(&self) -> Option<u32> {
        let text = self.to_string();
        let after = &text[text.find("Code: ")? + 6..];
        after
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    }

    /// Whether the read was stopped by its [`ReadLimits`]: the question was too expensive
    /// to answer, which is the asker's to narrow, not the store's fault.
    pub fn is_over_limit(&self) -> bool {
        let Some(code) = self.server_code() else {
            return false;
        };
        OVER_LIMIT_CODES.contains(&code)
            // The query's own memory limit, not the server's total running out.
            || (code == 241 && self.to_string().contains("for query"))
    }
}

/// The scan slots of every tenant on this replica.
#[derive(Debug, Default)]
pub(super) struct TenantGates {
    slots: Mutex<HashMap<TenantId, Arc<Semaphore>>>,
}

impl TenantGates {
    /// One of the tenant's `per_tenant` slots, held until the permit drops;
    /// [`ClickHouseError::TenantBusy`] when all are taken.
    pub(super) fn enter(
        &self,
        tenant: TenantId,
        per_tenant: usize,
    ) -> Result<OwnedSemaphorePermit, ClickHouseError> {
        let mut slots = self.slots.lock().expect("gate lock");
        // Tenants with no scan running hold no entry.
        slots.retain(|_, gate| gate.available_permits() < per_tenant);
        let gate = slots
            .entry(tenant)
            .or_insert_with(|| Arc::new(Semaphore::new(per_tenant)))
            .clone();
        gate.try_acquire_owned()
            .map_err(|_| ClickHouseError::TenantBusy(per_tenant))
    }
}

/// ClickHouse error codes that mean "these rows can never be inserted" (parse and type
/// errors, values a table's expressions reject). Anything else (network, timeouts,
/// memory, too many parts, a missing table while migrations run) is worth retrying.
const DATA_ERROR_CODES: &[u32] = &[
    6,   // CANNOT_PARSE_TEXT
    26,  // CANNOT_PARSE_QUOTED_STRING
    27,  // CANNOT_PARSE_INPUT_ASSERTION_FAILED
    32,  // ATTEMPT_TO_READ_AFTER_EOF
    33,  // CANNOT_READ_ALL_DATA
    38,  // CANNOT_PARSE_DATE
    41,  // CANNOT_PARSE_DATETIME
    53,  // TYPE_MISMATCH
    69,  // ARGUMENT_OUT_OF_BOUND
    70,  // CANNOT_CONVERT_TYPE
    72,  // CANNOT_PARSE_NUMBER
    117, // INCORRECT_DATA
    128, // TOO_LARGE_ARRAY_SIZE
    131, // TOO_LARGE_STRING_SIZE
    190, // SIZES_OF_ARRAYS_DOESNT_MATCH
    395, // FUNCTION_THROW_IF_VALUE_IS_NON_ZERO
];

impl ClickHouseError {
    /// The server's reason when ClickHouse refused an INSERT because of its rows: retrying
    /// cannot help. Code 252 is "too many parts" (retry: merges catch up) except for "too
    /// many partitions for a single INSERT block", which no retry fixes.
    pub fn refused_rows(&self) -> Option<String> {
        let code = self.server_code()?;
        let text = self.to_string();
        let data_error = DATA_ERROR_CODES.contains(&code)
            || (code == 252 && text.to_ascii_lowercase().contains("partitions for"));
        data_error.then_some(text)
    }
}

/// A read in flight on the server; dropping it before [`RunningRead::finish`] kills it.
pub(super) struct RunningRead {
    client: ::clickhouse::Client,
    query_id: String,
    finished: bool,
}

impl RunningRead {
    pub(super) fn start(client: &::clickhouse::Client) -> RunningRead {
        RunningRead {
            client: client.clone(),
            query_id: format!("weft-read-{}", uuid::Uuid::new_v4().simple()),
            finished: false,
        }
    }

    pub(super) fn query_id(&self) -> &str {
        &self.query_id
    }

    pub(super) fn finish(mut self) {
        self.finished = true;
    }
}

impl Drop for RunningRead {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let kill = self
            .client
            .query(super::queries::KILL_QUERY)
            .bind(self.query_id.as_str());
        let query_id = std::mem::take(&mut self.query_id);
        runtime.spawn(async move {
            match kill.execute().await {
                Ok(()) => tracing::debug!(%query_id, "killed an abandoned read"),
                Err(error) => tracing::warn!(%error, %query_id, "could not kill an abandoned read"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad_response(text: &str) -> ClickHouseError {
        ClickHouseError::Client(::clickhouse::error::Error::BadResponse(text.to_owned()))
    }

    #[test]
    fn only_errors_about_the_data_are_final() {
        let old = "Code: 395, e.displayText() = DB::Exception: Value passed to 'throwIf' function is non zero";
        let new = "Code: 252. DB::Exception: Too many partitions for single INSERT block (more than 100). (TOO_MANY_PARTS)";
        assert!(bad_response(old).refused_rows().is_some());
        assert!(bad_response(new).refused_rows().is_some());
        for retry in [
            "Code: 252. DB::Exception: Too many parts (300). Merges are processing significantly slower than inserts. (TOO_MANY_PARTS)",
            "Code: 241. DB::Exception: Memory limit (total) exceeded. (MEMORY_LIMIT_EXCEEDED)",
            "Code: 60, e.displayText() = DB::Exception: Table weft.spans doesn't exist.",
            "no code at all",
        ] {
            assert_eq!(bad_response(retry).refused_rows(), None, "{retry}");
        }
    }

    #[test]
    fn reads_over_their_limits_are_told_apart() {
        for over in [
            "Code: 159, e.displayText() = DB::Exception: Timeout exceeded: elapsed 10.0 seconds",
            "Code: 158. DB::Exception: Limit for rows or bytes to read exceeded. (TOO_MANY_ROWS)",
            "Code: 168. DB::Exception: AST is too big. Maximum: 20000. (TOO_BIG_AST)",
            "Code: 241. DB::Exception: Memory limit (for query) exceeded: would use 2.00 GiB",
        ] {
            assert!(bad_response(over).is_over_limit(), "{over}");
        }
        for other in [
            "Code: 241. DB::Exception: Memory limit (total) exceeded",
            "Code: 60. DB::Exception: Table weft.spans does not exist",
            "connection refused",
        ] {
            assert!(!bad_response(other).is_over_limit(), "{other}");
        }
        assert_eq!(
            bad_response("Code: 53, e.displayText()").server_code(),
            Some(53)
        );
    }

    #[test]
    fn a_tenant_past_its_scan_slots_is_busy_and_others_are_not() {
        let gates = TenantGates::default();
        let (busy, other) = (TenantId::random(), TenantId::random());
        let held: Vec<_> = (0..2).map(|_| gates.enter(busy, 2).unwrap()).collect();
        assert!(matches!(
            gates.enter(busy, 2),
            Err(ClickHouseError::TenantBusy(2))
        ));
        assert!(gates.enter(other, 2).is_ok());
        drop(held);
        assert!(gates.enter(busy, 2).is_ok());
    }

    #[test]
    fn limits_come_from_the_environment_and_are_checked() {
        let env = Env::from_pairs([("WEFT_QUERY_MAX_ROWS_TO_READ", "1000")]);
        assert_eq!(ReadLimits::from_env(&env).unwrap().max_rows_to_read, 1000);
        let env = Env::from_pairs([("WEFT_QUERY_MAX_EXECUTION_TIME", "100ms")]);
        assert!(ReadLimits::from_env(&env).is_err());
    }
}
