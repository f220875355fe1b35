//! Domain model shared by every Weft service: the ids that cross service boundaries as
//! newtypes, the OTLP span kinds and status codes, the stable partitioning of traces, API key scopes and the roles of an organisation's members.

pub mod alerting;
mod ids;
mod otlp;
mod partition;
mod role;
pub mod sampling;
pub mod wire;

pub use ids::{IdError, SpanId, TenantId, TraceId};
pub use otlp::{SpanKind, StatusCode, severity_name};
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
    /// Change the organisation's configuration through the API (sampling policy, alert
    /// rules), and read whatever a read key reads.
    Write,
}

impl KeyScope {
    pub const ALL: [KeyScope; 3] = [KeyScope::Ingest, KeyScope::Read, KeyScope::Write];

    pub fn as_str(self) -> &'static str {
        match self {
            KeyScope::Ingest => "ingest",
            KeyScope::Read => "read",
            KeyScope::Write => "write",
        }
    }

    /// Whether a key of this scope may be used where `needed` is asked for. A write key
    /// reads too (whoever changes a policy reads it first); an ingest key only sends, and
    /// nothing but an ingest key sends, so a leaked read or write key cannot inject data.
    pub fn grants(self, needed: KeyScope) -> bool {
        self == needed || (self == KeyScope::Write && needed == KeyScope::Read)
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
            "write" => Ok(KeyScope::Write),
            other => Err(IdError::UnknownScope(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip_and_write_keys_read_but_never_send() {
        for scope in KeyScope::ALL {
            assert_eq!(scope.as_str().parse::<KeyScope>().unwrap(), scope);
            assert!(scope.grants(scope));
        }
        assert!("admin".parse::<KeyScope>().is_err());
        assert!(KeyScope::Write.grants(KeyScope::Read));
        assert!(!KeyScope::Write.grants(KeyScope::Ingest));
        assert!(!KeyScope::Read.grants(KeyScope::Write));
        assert!(!KeyScope::Read.grants(KeyScope::Ingest));
        assert!(!KeyScope::Ingest.grants(KeyScope::Read));
        assert!(!KeyScope::Ingest.grants(KeyScope::Write));
    }
}
