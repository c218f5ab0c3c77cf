//! What every telemetry sink tells the agent about itself: its name and, for a sink that pushes,
//! the health of its exports.

use std::sync::Arc;

use super::health::ExportHealth;

/// One place metrics go.
#[derive(Debug)]
pub struct Sink {
    /// The `exporter` label of `testmeter_export_errors_total`.
    pub name: &'static str,
    /// Outcomes of its exports, for a sink that pushes.
    pub health: Option<Arc<ExportHealth>>,
}
