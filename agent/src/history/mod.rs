//! The per-test history: every run's tests kept in a SQLite file (`store.rs`), classified as
//! each run is recorded by rules over each test's recent runs (`classify.rs`), with the commit
//! and branch the CI environment names (`ci.rs`). Written by the history consumer, read by
//! `testmeter history` and `testmeter flaky`.

pub mod classify;
pub mod codec;
pub mod error;
mod migrate;
pub mod store;

pub use classify::{Rules, State};
pub use store::{HistoryError, Store};
