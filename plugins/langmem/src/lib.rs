//! testmeter plugin for LangMem's TTL and deduplication: reads the operation log lines in
//! each test's captured output, once per operation however the project logs (see `logs`),
//! and the properties a suite records (`cache_size`, `memory_bytes`,
//! `dedup_latency_seconds`), and derives the `genesis_langmem_*` metrics. A value whose
//! source is missing, or whose log lines are malformed, is left out rather than guessed or
//! filled from another quantity.

mod declare;
mod logs;

use testmeter_plugin_sdk::{
    log, Case, LogLevel, Outcome, Outcomes, Plugin, PluginInfo, RunEnd, RunStart, Sample, Samples,
};

use crate::logs::Log;

/// One run's derivation: what the cases' logs and properties said, as they stream past.
struct LangMem {
    log: Log,
    outcomes: Outcomes,
    /// `dedup_latency_seconds` properties, used when the log has no dedup passes.
    property_latencies: Vec<f64>,
    /// The latest `cache_size` property of a case that ran.
    cache_size: Option<f64>,
    /// The largest `memory_bytes` property.
    memory_bytes: Option<f64>,
}

impl Plugin for LangMem {
    fn describe() -> PluginInfo {
        declare::plugin_info()
    }

    fn start(_run: RunStart) -> Self {
        LangMem {
            log: Log::default(),
            outcomes: Outcomes::default(),
            property_latencies: Vec::new(),
            cache_size: None,
            memory_bytes: None,
        }
    }

    fn case(&mut self, case: Case<'_>) -> Result<(), String> {
        // One place of the case's output: pytest's captured log, else one stream.
        if let Some(log) = case.output().read_once(Log::of) {
            self.log.append(log);
        }
        self.outcomes.add(case.outcome());
        if let Some(value) = case.property("dedup_latency_seconds") {
            self.property_latencies.extend(
                value
                    .split(',')
                    .filter_map(|v| v.trim().parse::<f64>().ok())
                    .filter(|v| v.is_finite() && *v >= 0.0),
            );
        }
        // The last case in report order that recorded it is the latest value.
        if case.outcome() != Outcome::Skipped {
            if let Some(size) = number(case, "cache_size") {
                self.cache_size = Some(size);
            }
        }
        if let Some(bytes) = number(case, "memory_bytes") {
            self.memory_bytes = Some(self.memory_bytes.map_or(bytes, |m| m.max(bytes)));
        }
        Ok(())
    }

    fn finish(mut self, _end: RunEnd) -> Result<Vec<Sample>, String> {
        let mut out = Samples::declared(&declare::plugin_info());
        dedup(
            &self.log,
            std::mem::take(&mut self.property_latencies),
            &mut out,
        );
        cleanups(&self.log, &mut out);
        cache_and_memory(&self, &mut out);
        out.push(declare::TESTS_PASSED, &[], self.outcomes.passed as f64);
        out.push(declare::TESTS_TOTAL, &[], self.outcomes.total() as f64);
        Ok(out.into_vec())
    }
}

testmeter_plugin_sdk::export!(LangMem);

fn number(case: Case<'_>, key: &str) -> Option<f64> {
    case.property(key)
        .and_then(|v| v.trim().parse::<f64>().ok())
}

fn dedup(log_lines: &Log, property_latencies: Vec<f64>, out: &mut Samples) {
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
        latencies = property_latencies;
    }
    for seconds in &latencies {
        out.push(declare::LATENCY, &[], *seconds);
    }
    if let Some(p95) = nearest_rank(&mut latencies, 0.95) {
        out.push(declare::P95_MS, &[], p95 * 1000.0);
    }
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

/// The store's own figures, from the suite's properties only: the configured capacity is not
/// a number of entries, and the suite's peak RSS is not the store's memory (the agent exports
/// it as `testmeter_suite_peak_rss_bytes`).
fn cache_and_memory(run: &LangMem, out: &mut Samples) {
    if let Some(size) = run.cache_size {
        out.push(declare::CACHE_SIZE, &[], size);
    }
    if let Some(bytes) = run.memory_bytes {
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
