//! Service runtime shared by every Weft binary: typed configuration from `WEFT_*`
//! variables, telemetry, health and metrics endpoints, graceful shutdown, what every
//! `main` shares, and the one mapping from error kind to HTTP status and gRPC code.

pub mod auth;
pub mod config;
pub mod error;
pub mod health;
pub mod metrics;
pub mod self_traces;
pub mod service;
pub mod shutdown;
pub mod telemetry;
pub mod tracing_context;

pub use error::{ApiError, ErrorKind};
