//! testmeter: runs test and benchmark suites, derives metrics from their JUnit reports through
//! sandboxed WebAssembly plugins, and exports them over OTLP and on a Prometheus endpoint.

pub mod agent;
pub mod catalog;
pub mod config;
pub mod contract;
pub mod export;
pub mod ingest;
pub mod log;
pub mod model;
pub mod plugin;
pub mod progress;
pub mod reading;
pub mod reload;
pub mod runner;
pub mod scaffold;
pub mod schedule;
pub mod status;
pub mod summary;

/// The report parsers (their own crate, so they can be fuzzed and benchmarked without the
/// plugin runtime).
pub use testmeter_parse as parse;
