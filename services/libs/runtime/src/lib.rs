//! Service runtime shared by every Weft binary: typed configuration from `WEFT_*`
//! variables, telemetry, health endpoints, graceful shutdown, and the one mapping from
//! error kind to HTTP status and gRPC code.

pub mod auth;
pub mod config;
pub mod error;
pub mod health;
pub mod shutdown;
pub mod telemetry;

pub use error::{ApiError, ErrorKind};
