//! Where runs come from: suites run here (spawning their commands, collecting the reports and
//! artifacts they write) and reports another job wrote (`ingest.rs`), each made into one
//! `SuiteRun`.

pub mod artifacts;
pub mod ingest;
pub mod process;
pub mod suite;

pub use suite::{execute, RunError};
