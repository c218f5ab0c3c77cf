//! The part of Grafana's dashboard model (schemaVersion 39) that generated dashboards use,
//! typed after `@grafana/schema`; CI checks the output against that package.

use serde::Serialize;

/// Schema version the generated dashboards are written for (Grafana 10.4 and later).
pub const SCHEMA_VERSION: u32 = 39;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Dashboard {
    pub uid: String,
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    pub editable: bool,
    /// 1: shared crosshair.
    pub graph_tooltip: u8,
    pub schema_version: u32,
    pub version: u32,
    pub refresh: String,
    pub time: TimeRange,
    pub timezone: String,
    pub templating: Templating,
    pub panels: Vec<Panel>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TimeRange {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Templating {
    pub list: Vec<Variable>,
}

/// The data source variable every panel queries through.
#[derive(Debug, Clone, Serialize)]
pub struct Variable {
    pub name: String,
    pub label: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub query: String,
    pub hide: u8,
}

#[derive(Debug, Clone, Serialize)]
pub struct DataSourceRef {
    #[serde(rename = "type")]
    pub kind: String,
    pub uid: String,
}

impl DataSourceRef {
    /// The dashboard's `${datasource}` Prometheus variable.
    pub fn prometheus_variable() -> Self {
        Self {
            kind: "prometheus".to_owned(),
            uid: "${datasource}".to_owned(),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct GridPos {
    pub h: u32,
    pub w: u32,
    pub x: u32,
    pub y: u32,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    pub ref_id: String,
    pub expr: String,
    pub legend_format: String,
    pub datasource: DataSourceRef,
    /// Ask Prometheus for the exemplars of the series too (the trace of a run, on the agent's
    /// duration histograms), shown as points that link to the trace.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub exemplar: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Threshold {
    pub color: String,
    /// `None` for the base step.
    pub value: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Thresholds {
    /// Always `absolute`.
    pub mode: String,
    pub steps: Vec<Threshold>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldDefaults {
    pub unit: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    pub thresholds: Thresholds,
}

#[derive(Debug, Clone, Serialize)]
pub struct FieldConfig {
    pub defaults: FieldDefaults,
    pub overrides: Vec<serde_json::Value>,
}

/// A panel, or a row (`type: "row"`, with `collapsed` and no targets).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Panel {
    pub id: u32,
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub grid_pos: GridPos,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datasource: Option<DataSourceRef>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<Target>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field_config: Option<FieldConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collapsed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub panels: Option<Vec<Panel>>,
}
