//! The OSWorld harness results document, found among the run's artifacts.

use std::collections::BTreeMap;

use serde::Deserialize;

use testmeter_plugin_sdk::Artifact;

#[derive(Debug, Deserialize)]
pub struct ResultsDoc {
    /// Fraction of tasks that succeeded, 0 to 1.
    pub success_rate: f64,
    pub total_tasks: u64,
    pub passed_tasks: u64,
    #[allow(dead_code)]
    pub total_time: f64,
    #[serde(default)]
    pub category_stats: BTreeMap<String, CategoryStats>,
    #[serde(default)]
    pub detailed_results: Vec<TaskResult>,
    /// Optional: the harness's own measurement of its memory use.
    #[serde(default)]
    pub memory_usage_bytes: Option<f64>,
}

#[derive(Debug, Deserialize)]
pub struct CategoryStats {
    pub total: u64,
    pub passed: u64,
}

#[derive(Debug, Deserialize)]
pub struct TaskResult {
    #[allow(dead_code)]
    pub task_id: String,
    pub category: String,
    #[allow(dead_code)]
    pub success: bool,
    pub steps_taken: u64,
    pub execution_time: f64,
}

/// Returns the first JSON artifact that is an OSWorld results document.
///
/// A JSON object with a `detailed_results` key claims to be one: if it then fails to
/// deserialize, that is an error, not a silent fallback to test outcomes.
pub fn find(artifacts: &[Artifact]) -> Result<Option<(&str, ResultsDoc)>, String> {
    for artifact in artifacts.iter().filter(|a| a.name.ends_with(".json")) {
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(&artifact.content) else {
            continue;
        };
        if value.get("detailed_results").is_none() {
            continue;
        }
        return serde_json::from_value(value)
            .map(|doc| Some((artifact.name.as_str(), doc)))
            .map_err(|e| {
                format!(
                    "artifact {} is not a valid OSWorld results document: {e}",
                    artifact.name
                )
            });
    }
    Ok(None)
}
