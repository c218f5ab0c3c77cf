//! What the langmem plugin declares: the exact metric names the LangMem dashboards and
//! alerts query, and the SLOs from the deployment's audit.

use testmeter_plugin_sdk::{metric, slo, CaseFields, MetricKind, PluginInfo};

pub const DEDUP_RATE: &str = "genesis_langmem_dedup_rate";
pub const EXACT_TOTAL: &str = "genesis_langmem_exact_dedup_total";
pub const SEMANTIC_TOTAL: &str = "genesis_langmem_semantic_dedup_total";
pub const TTL_CLEANUPS: &str = "genesis_langmem_ttl_cleanups_total";
pub const P95_MS: &str = "genesis_langmem_p95_latency_ms";
pub const LATENCY: &str = "genesis_langmem_dedup_latency_seconds";
pub const CACHE_SIZE: &str = "genesis_langmem_cache_size";
pub const MEMORY_MB: &str = "genesis_langmem_memory_usage_mb";
pub const TESTS_PASSED: &str = "genesis_langmem_tests_passed";
pub const TESTS_TOTAL: &str = "genesis_langmem_tests_total";

/// Dedup passes take from well under a millisecond to the 67 ms "acceptable" P95 and beyond.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.067, 0.1, 0.25, 0.5, 1.0,
];

pub fn plugin_info() -> PluginInfo {
    use MetricKind::{Counter, Gauge, Histogram};
    PluginInfo {
        name: "langmem".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        systems: vec!["langmem".to_owned()],
        metrics: vec![
            metric(DEDUP_RATE, Gauge, "%", "Share of input memories removed as duplicates in the latest run: 100 × (exact + semantic) / input", &[], &[]),
            metric(EXACT_TOTAL, Counter, "1", "Memories removed as exact duplicates (same content hash)", &[], &[]),
            metric(SEMANTIC_TOTAL, Counter, "1", "Memories removed as semantic duplicates (similarity at or above the threshold)", &[], &[]),
            metric(TTL_CLEANUPS, Counter, "1", "TTL cleanup passes run", &[], &[]),
            metric(P95_MS, Gauge, "ms", "P95 of the latest run's dedup pass latencies (nearest rank)", &[], &[]),
            metric(LATENCY, Histogram, "s", "Dedup pass latency", &[], LATENCY_BUCKETS),
            metric(CACHE_SIZE, Gauge, "1", "Entries in the dedup cache at the end of the latest run (the suite's cache_size property)", &[], &[]),
            metric(MEMORY_MB, Gauge, "MiBy", "Peak memory of the LangMem store in the latest run (the suite's largest memory_bytes property), in MiB", &[], &[]),
            metric(TESTS_PASSED, Gauge, "1", "LangMem tests passed in the latest run", &[], &[]),
            metric(TESTS_TOTAL, Gauge, "1", "LangMem tests in the latest run", &[], &[]),
        ],
        slos: vec![
            slo("LangMemDedupRateLow", "genesis_langmem_dedup_rate < 30", 600, "warning", "LangMem deduplication rate below 30%"),
            slo("LangMemDedupRateCritical", "genesis_langmem_dedup_rate < 20", 600, "critical", "LangMem deduplication rate below 20%"),
            slo("LangMemLatencyAboveTarget", "genesis_langmem_p95_latency_ms > 50", 300, "warning", "LangMem P95 dedup latency above the 50 ms target"),
            slo("LangMemHighLatency", "genesis_langmem_p95_latency_ms > 67", 300, "critical", "LangMem P95 dedup latency above the 67 ms acceptable limit"),
            slo("LangMemMemoryHigh", "genesis_langmem_memory_usage_mb > 20", 300, "warning", "LangMem memory above 20 MB"),
        ],
        // The operation log in each test's captured output, and the recorded properties.
        reads: CaseFields::SYSTEM_OUT | CaseFields::SYSTEM_ERR | CaseFields::PROPERTIES,
    }
}
