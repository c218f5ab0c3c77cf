//! What keeps `testmeter run` going between runs: per-suite schedules (`schedule.rs`) and the
//! plugins dir watcher that reloads the plugin set (`reload.rs`).

pub mod reload;
pub mod schedule;
