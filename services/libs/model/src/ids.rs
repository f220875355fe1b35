//! Ids as newtypes: a tenant is a UUID, trace and span ids are the binary OTLP ids and
//! are never all zero (the OTLP specification makes an all-zero id invalid).

use std::fmt;
use std::str::FromStr;

/// Why a value is not a valid id.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdError {
    #[error("{kind} must be {expected} bytes, got {actual}")]
    Length {
        kind: &'static str,
        expected: usize,
        actual: usize,
    },
    #[error("{kind} must not be all zeros")]
    Zero { kind: &'static str },
    #[error("{kind} is not valid hex: {value:?}")]
    Hex { kind: &'static str, value: String },
    #[error("tenant id is not a valid uuid: {0:?}")]
    Tenant(String),
    #[error("unknown key scope {0:?} (expected ingest, read or write)")]
    UnknownScope(String),
    #[error("unknown role {0:?} (expected owner, admin, member or viewer)")]
    UnknownRole(String),
}

/// The organisation that owns data. Every stored row and every query carries one.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct TenantId(uuid::Uuid);

impl TenantId {
    pub fn new(id: uuid::Uuid) -> Self {
        TenantId(id)
    }

    pub fn random() -> Self {
        TenantId(uuid::Uuid::new_v4())
    }

    pub fn as_uuid(&self) -> uuid::Uuid {
        self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for TenantId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s)
            .map(TenantId)
            .map_err(|_| IdError::Tenant(s.to_owned()))
    }
}

macro_rules! binary_id {
    ($(#[$doc:meta])* $name:ident, $len:expr, $kind:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; $len]);

        impl $name {
            pub const LEN: usize = $len;

            /// Accepts exactly `LEN` bytes that are not all zero.
            pub fn from_bytes(bytes: &[u8]) -> Result<Self, IdError> {
                let array: [u8; $len] = bytes.try_into().map_err(|_| IdError::Length {
                    kind: $kind,
                    expected: $len,
                    actual: bytes.len(),
                })?;
                if array == [0; $len] {
                    return Err(IdError::Zero { kind: $kind });
                }
                Ok($name(array))
            }

            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let bytes = hex::decode(s).map_err(|_| IdError::Hex {
                    kind: $kind,
                    value: s.chars().take(64).collect(),
                })?;
                $name::from_bytes(&bytes)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.to_hex())
            }
        }
    };
}

binary_id!(
    /// A 16-byte OTLP trace id.
    TraceId,
    16,
    "trace id"
);
binary_id!(
    /// An 8-byte OTLP span id.
    SpanId,
    8,
    "span id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_id_round_trips_through_hex() {
        let id: TraceId = "5b8efff798038103d269b633813fc60c".parse().unwrap();
        assert_eq!(id.to_string(), "5b8efff798038103d269b633813fc60c");
    }

    #[test]
    fn ids_reject_wrong_length_zero_and_bad_hex() {
        assert_eq!(
            TraceId::from_bytes(&[1; 8]),
            Err(IdError::Length {
                kind: "trace id",
                expected: 16,
                actual: 8
            })
        );
        assert_eq!(
            SpanId::from_bytes(&[0; 8]),
            Err(IdError::Zero { kind: "span id" })
        );
        assert!(matches!("zz".parse::<SpanId>(), Err(IdError::Hex { .. })));
    }

    #[test]
    fn tenant_id_parses_uuid_only() {
        assert!("not-a-uuid".parse::<TenantId>().is_err());
        let id = TenantId::random();
        assert_eq!(id.to_string().parse::<TenantId>().unwrap(), id);
    }
}
