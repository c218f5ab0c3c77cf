//! The metric contract: every series the agent exports, from the plugins' declarations and the
//! agent's own, and what is generated from it (Grafana dashboards, Prometheus alert rules) or
//! checked against it.

pub mod alerts;
pub mod check;
pub mod check_files;
pub mod dashboards;
pub mod gate;
pub mod grafana;
pub mod live;
pub mod model;
pub mod promql;
pub mod rules;

pub use model::{Contract, ContractMetric, ContractSlo, Owner, SeriesRef, Suffix};
