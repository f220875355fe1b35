//! The top floor of Weft's test kit: the whole platform assembled in-process on
//! `127.0.0.1:0`, each service built and served by the same `build` and `serve` its
//! binary calls, and a dashboard visitor for page-level tests. The end-to-end suites in
//! `tests/` drive it the way users do. The low floor (`weft-testkit`) is re-exported so
//! a suite needs one import.

pub mod browser;
pub mod mesh;
pub mod smtp;
mod stack;
pub mod web;

pub use stack::{Replica, Stack, StackOptions, sampler_backlog};
pub use weft_testkit::{ChildServer, Namespace, TestTenant, eventually, init_logging, otlp};
