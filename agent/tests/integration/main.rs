//! The agent's integration tests, one binary (each test binary links wasmtime, so one build and
//! one link instead of one per area), a module per area. `support/` holds the shared helpers.

mod support;

mod bad_input;
mod compile_child;
mod contract;
mod contract_live;
mod e2e;
mod endpoint;
mod endpoint_limits;
mod extensibility;
mod history;
mod hot_reload;
mod new_plugin;
mod once_output;
mod outage;
mod plugin_langmem;
mod plugin_osworld;
mod plugin_waltzrl;
mod python_plugin;
mod reports;
mod sandbox;
mod schedule;
mod signals;
mod status_page;
mod traces;
mod wit_versions;
