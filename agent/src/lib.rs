//! testmeter: runs test and benchmark suites, derives metrics from their JUnit reports through
//! sandboxed WebAssembly plugins, and exports them over OTLP and on a Prometheus endpoint.
//!
//! The rooms, each depending only on those listed before it (`docs/architecture.md`):
//! `config`, `model`, `log` and `ci` (what the CI environment names) are shared by all; `runner` makes runs (executed or ingested);
//! `catalog` and `plugin` load plugins and check what they declare; `export` holds the telemetry
//! sinks; `contract` is what dashboards and alerts may query; `history` keeps each test's past runs; `pipeline` turns a run into one
//! outcome and hands it to its consumers; `consumers` read it; `server` serves what they hold;
//! `agent` assembles them; `daemon` keeps `testmeter run` going.

pub mod ci;
pub mod config;
pub mod log;
pub mod model;

pub mod catalog;
pub mod runner;

pub mod plugin;

pub mod export;

pub mod contract;

pub mod history;

pub mod pipeline;

pub mod consumers;

pub mod server;

pub mod agent;

pub mod daemon;

/// The report parsers (their own crate, so they can be fuzzed and benchmarked without the
/// plugin runtime).
pub use testmeter_parse as parse;
