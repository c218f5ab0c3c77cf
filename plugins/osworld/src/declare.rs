//! What the osworld plugin declares: its metrics, with the exact names dashboards query, and SLOs.

use testmeter_plugin_sdk::{metric, slo, CaseFields, MetricKind, PluginInfo};

pub const SUCCESS_RATE: &str = "genesis_osworld_success_rate";
pub const TASKS_TOTAL: &str = "genesis_osworld_tasks_total";
pub const TASKS_PASSED: &str = "genesis_osworld_tasks_passed";
pub const TASK_DURATION: &str = "genesis_osworld_task_duration_seconds";
pub const STEP_COUNT: &str = "genesis_osworld_step_count";
pub const MEMORY: &str = "genesis_osworld_memory_usage_bytes";

/// Task durations run from sub-second file chores to five-minute long-horizon tasks.
const DURATION_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0,
];
/// OSWorld caps agents at 15 steps by default; leave room above for harder task sets.
const STEP_BUCKETS: &[f64] = &[1.0, 2.0, 3.0, 5.0, 8.0, 10.0, 15.0, 20.0, 30.0, 50.0];

pub fn plugin_info() -> PluginInfo {
    use MetricKind::{Counter, Gauge, Histogram};
    PluginInfo {
        name: "osworld".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        systems: vec!["osworld".to_owned()],
        metrics: vec![
            metric(SUCCESS_RATE, Gauge, "%", "OSWorld benchmark task success rate, overall (task_category=\"all\") and per category", &["task_category"], &[]),
            metric(TASKS_TOTAL, Counter, "1", "OSWorld tasks executed, by final status", &["status"], &[]),
            metric(TASKS_PASSED, Gauge, "1", "OSWorld tasks passed in the latest run", &[], &[]),
            metric(TASK_DURATION, Histogram, "s", "OSWorld task execution time", &["category"], DURATION_BUCKETS),
            metric(STEP_COUNT, Histogram, "1", "Actions an agent took per OSWorld task", &[], STEP_BUCKETS),
            metric(MEMORY, Gauge, "By", "Peak memory of the OSWorld harness in the latest run, as the harness measured it (the results document's memory_usage_bytes, else the largest memory_bytes property)", &[], &[]),
        ],
        slos: vec![
            slo("OSWorldSuccessRateLow", "genesis_osworld_success_rate{task_category=\"all\"} < 90", 300, "critical", "OSWorld benchmark success rate below the 90% target"),
            slo("OSWorldSuccessRateRollback", "genesis_osworld_success_rate{task_category=\"all\"} < 85", 300, "critical", "OSWorld success rate below 85%: rollback trigger"),
            slo("OSWorldTaskDurationP95High", "histogram_quantile(0.95, sum by (le) (rate(genesis_osworld_task_duration_seconds_bucket[15m]))) > 30", 300, "warning", "OSWorld task P95 duration above 30 s"),
            slo("OSWorldMemoryHigh", "genesis_osworld_memory_usage_bytes / 1024 / 1024 > 20", 300, "warning", "OSWorld benchmark memory above 20 MB"),
        ],
        // `category` and `steps` of each task.
        reads: CaseFields::PROPERTIES,
    }
}
