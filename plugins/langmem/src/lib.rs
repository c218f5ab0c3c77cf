//! testmeter plugin for LangMem's TTL and deduplication: reads the operation log lines in
//! each test's captured output (see `logs`) and the properties a suite records
//! (`cache_size`, `memory_bytes`, `dedup_latency_seconds`), and derives the
//! `genesis_langmem_*` metrics. A value whose source is missing, or whose log lines are
//! malformed, is left out rather than guessed.

mod declare;
mod logs;

use testmeter_plugin_sdk::{
    log, property, Guest, LogLevel, Outcome, Outcomes, PluginInfo, Sample, Samples, SuiteRun,
};

use crate::logs::Log;

struct LangMem;

impl Guest for LangMem {
    fn describe() -> PluginInfo {
        declare::plugin_info()
    }

    fn derive(run: SuiteRun) -> Result<Vec<Sample>, String> {
        let mut log_lines = Log::default();
        for case in &run.cases {
            for text in [&case.system_out, &case.system_err].into_iter().flatten() {
                log_lines.read(text);
            }
        }
        let mut out = Samples::default();
        dedup(&run, &log_lines, &mut out);
        cleanups(&log_lines, &mut out);
        cache_and_memory(&run, &log_lines, &mut out);
        let outcomes = Outcomes::of(&run.cases);
        out.push(declare::TESTS_PASSED, &[], outcomes.passed as f64);
        out.push(declare::TESTS_TOTAL, &[], outcomes.total() as f64);
        Ok(out.into_vec())
    }
}

testmeter_plugin_sdk::export_plugin!(LangMem);

fn dedup(run: &SuiteRun, log_lines: &Log, out: &mut Samples) {
    if let Some(first) = log_lines.malformed_dedup.first() {
        log(
            LogLevel::Warn,
            &format!(
                "{} malformed dedup log line(s), dedup metrics left out; first: {first}",
                log_lines.malformed_dedup.len()
            ),
        );
        return;
    }
    let (mut input, mut exact, mut semantic) = (0u64, 0u64, 0u64);
    let mut latencies: Vec<f64> = Vec::with_capacity(log_lines.dedups.len());
    for pass in &log_lines.dedups {
        input += pass.input;
        exact += pass.exact;
        semantic += pass.semantic;
        latencies.push(pass.seconds);
    }
    if !log_lines.dedups.is_empty() {
        out.push(declare::EXACT_TOTAL, &[], exact as f64);
        out.push(declare::SEMANTIC_TOTAL, &[], semantic as f64);
        if input > 0 {
            out.push(
                declare::DEDUP_RATE,
                &[],
                100.0 * (exact + semantic) as f64 / input as f64,
            );
        }
    }
    if latencies.is_empty() {
        latencies = property_latencies(run);
    }
    for seconds in &latencies {
        out.push(declare::LATENCY, &[], *seconds);
    }
    if let Some(p95) = nearest_rank(&mut latencies, 0.95) {
        out.push(declare::P95_MS, &[], p95 * 1000.0);
    }
}

/// Latency samples a suite recorded as `dedup_latency_seconds` properties (one value, or
/// several separated by commas), when the log has none.
fn property_latencies(run: &SuiteRun) -> Vec<f64> {
    run.cases
        .iter()
        .filter_map(|case| property(case, "dedup_latency_seconds"))
        .flat_map(|value| value.split(','))
        .filter_map(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0)
        .collect()
}

/// The nearest-rank percentile: the smallest value with at least `q` of the values at or
/// below it.
fn nearest_rank(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let rank = (q * values.len() as f64).ceil() as usize;
    values.get(rank.clamp(1, values.len()) - 1).copied()
}

fn cleanups(log_lines: &Log, out: &mut Samples) {
    if let Some(first) = log_lines.malformed_cleanup.first() {
        log(
            LogLevel::Warn,
            &format!("malformed TTL cleanup log line(s), cleanups left out; first: {first}"),
        );
        return;
    }
    if !log_lines.cleanups.is_empty() {
        out.push(declare::TTL_CLEANUPS, &[], log_lines.cleanups.len() as f64);
    }
}

fn cache_and_memory(run: &SuiteRun, log_lines: &Log, out: &mut Samples) {
    // The last case in report order that recorded it is the latest value.
    let recorded = |key: &str| {
        run.cases
            .iter()
            .rev()
            .filter(|case| case.outcome != Outcome::Skipped)
            .find_map(|case| property(case, key).and_then(|v| v.trim().parse::<f64>().ok()))
    };
    let configured = if log_lines.malformed_init.is_empty() {
        log_lines.configured_cache_size.map(|size| size as f64)
    } else {
        None
    };
    if let Some(size) = recorded("cache_size").or(configured) {
        out.push(declare::CACHE_SIZE, &[], size);
    }
    let peak_property = run
        .cases
        .iter()
        .filter_map(|case| {
            property(case, "memory_bytes").and_then(|v| v.trim().parse::<f64>().ok())
        })
        .fold(None, |max: Option<f64>, v| {
            Some(max.map_or(v, |m| m.max(v)))
        });
    let bytes = peak_property.or(run.peak_rss_bytes.map(|b| b as f64));
    if let Some(bytes) = bytes {
        out.push(declare::MEMORY_MB, &[], bytes / 1_048_576.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_p95() {
        let mut values: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(nearest_rank(&mut values, 0.95), Some(19.0));
        assert_eq!(nearest_rank(&mut [3.0], 0.95), Some(3.0));
        assert_eq!(nearest_rank(&mut [], 0.95), None);
    }
}
