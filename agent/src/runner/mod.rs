//! Running suites: spawning their commands, and collecting the reports and artifacts they
//! write into one `SuiteRun`.

pub mod artifacts;
pub mod process;
pub mod suite;

pub use suite::{execute, RunError};
