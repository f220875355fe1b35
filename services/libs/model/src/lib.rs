//! Domain model shared by every Weft service: the ids that cross service boundaries as
//! newtypes, the OTLP span kinds and status codes, the stable partitioning of traces, API key scopes and the roles of an organisation's members.

mod ids;
mod otlp;
mod partition;
mod role;
pub mod sampling;

pub use ids::{IdError, SpanId, TenantId, TraceId};
pub use otlp::{SpanKind, StatusCode};
pub use partition::{Partition, PartitionSet, PartitionSetError};
pub use role::Role;

use std::fmt;
use std::str::FromStr;

/// What an API key may be used for. A key carries exactly one scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyScope {
    /// Send telemetry to ingest.
    Ingest,
    /// Read traces through the query API.
    Read,
}

impl KeyScope {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyScope::Ingest => "ingest",
            KeyScope::Read => "read",
        }
    }
}

impl fmt::Display for KeyScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyScope {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ingest" => Ok(KeyScope::Ingest),
            "read" => Ok(KeyScope::Read),
            other => Err(IdError::UnknownScope(other.to_owned())),
        }
    }
}
