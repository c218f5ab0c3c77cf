//! `testmeter history`, `testmeter flaky` and `testmeter quarantine`: what the per-test history
//! holds, read from its store (and quarantines written to it) without starting an agent.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::Context as _;
use testmeter::config::Config;
use testmeter::history::store::{RunRow, Timeline};
use testmeter::history::Store;

/// The store file the config names.
fn store_path(config: &Path) -> anyhow::Result<std::path::PathBuf> {
    let config = Config::load(config)?;
    config.history.effective_path().context(
        "history is off in this config ([history] enabled = false), or no path can be named",
    )
}

/// The store the config names, opened to read.
fn open(config: &Path) -> anyhow::Result<Store> {
    Ok(Store::open_read_only(&store_path(config)?)?)
}

/// `testmeter quarantine add`.
pub fn quarantine(
    config: &Path,
    suite: &str,
    test: &str,
    reason: &str,
    duration: std::time::Duration,
) -> anyhow::Result<ExitCode> {
    let mut store = Store::open(&store_path(config)?)?;
    let until = std::time::SystemTime::now() + duration;
    let matched = store.quarantine(suite, test, reason, until)?;
    if matched == 0 {
        anyhow::bail!("no recorded test of suite {suite:?} is named {test:?} (see testmeter history --suite {suite} --test ...)");
    }
    println!(
        "quarantined {test} of {suite} until {}: {reason}",
        humantime::format_rfc3339_seconds(until)
    );
    Ok(ExitCode::SUCCESS)
}

/// `testmeter quarantine remove`.
pub fn release(config: &Path, suite: &str, test: &str) -> anyhow::Result<ExitCode> {
    let mut store = Store::open(&store_path(config)?)?;
    if store.release(suite, test)? == 0 {
        anyhow::bail!("{test:?} of suite {suite:?} is not quarantined");
    }
    println!("quarantine of {test} of {suite} ended");
    Ok(ExitCode::SUCCESS)
}

/// `testmeter quarantine list`.
pub fn quarantined(config: &Path, suite: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    let store = open(config)?;
    let rows = store.quarantined(suite)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        println!("no quarantined tests");
    }
    for row in &rows {
        println!(
            "{}: {}::{} until {}: {}",
            row.suite,
            row.classname,
            row.name,
            utc(row.until_unix_ms),
            row.reason
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `testmeter history --suite S [--test PATTERN] [--runs N] [--json]`.
pub fn run(
    config: &Path,
    suite: &str,
    test: Option<&str>,
    runs: usize,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let store = open(config)?;
    let rows = store.runs(suite, runs)?;
    let timelines = match test {
        Some(pattern) => store.timelines(suite, pattern, runs)?,
        None => Vec::new(),
    };
    if json {
        let value = serde_json::json!({ "suite": suite, "runs": rows, "tests": timelines });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print!(
            "{}",
            render(suite, &rows, test.map(|_| timelines.as_slice()))
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn render(suite: &str, rows: &[RunRow], timelines: Option<&[Timeline]>) -> String {
    let mut out = String::new();
    if rows.is_empty() {
        let _ = writeln!(out, "no recorded runs of suite {suite:?}");
        return out;
    }
    let _ = writeln!(out, "{suite}: the last {} run(s), newest first", rows.len());
    let _ = writeln!(
        out,
        "  {:>6}  {:<20}  {:<8}  {:>6}  {:>6}  {:>7}  {:>7}  {:>5}  {:>12}  {:>8}",
        "RUN",
        "STARTED (UTC)",
        "RESULT",
        "TESTS",
        "FAILED",
        "ERRORED",
        "SKIPPED",
        "FLAKY",
        "NEW FAILURES",
        "TIME"
    );
    for row in rows {
        let _ = writeln!(
            out,
            "  {:>6}  {:<20}  {:<8}  {:>6}  {:>6}  {:>7}  {:>7}  {:>5}  {:>12}  {:>7.2}s",
            row.id,
            utc(row.started_unix_ms),
            row.result,
            row.tests,
            row.failed,
            row.errored,
            row.skipped,
            row.flaky,
            row.new_failures,
            row.duration_ms as f64 / 1000.0
        );
    }
    if let Some(timelines) = timelines {
        out.push('\n');
        if timelines.is_empty() {
            let _ = writeln!(out, "no test matches in these runs");
        }
        for timeline in timelines {
            let strip: String = timeline
                .runs
                .iter()
                .map(|(_, outcome, _)| match outcome.as_str() {
                    "passed" => '.',
                    "failed" => 'F',
                    "errored" => 'E',
                    _ => 's',
                })
                .collect();
            let last_state = timeline
                .runs
                .last()
                .map_or("", |(_, _, state)| state.as_str());
            let name = if timeline.classname.is_empty() {
                timeline.name.clone()
            } else {
                format!("{}::{}", timeline.classname, timeline.name)
            };
            let _ = writeln!(out, "  {strip:<20}  {last_state:<12}  {name}");
        }
        let _ = writeln!(
            out,
            "  (oldest run first: . passed, F failed, E errored, s skipped)"
        );
    }
    out
}

/// `2026-12-06T05:40:39Z` from Unix milliseconds.
fn utc(unix_ms: i64) -> String {
    let since_epoch = Duration::from_millis(u64::try_from(unix_ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(UNIX_EPOCH + since_epoch).to_string()
}

/// `testmeter flaky [--suite S] [--json]`.
pub fn flaky(config: &Path, suite: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    let store = open(config)?;
    let tests = store.flaky(suite)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&tests)?);
        return Ok(ExitCode::SUCCESS);
    }
    if tests.is_empty() {
        println!("no flaky tests");
    }
    for test in &tests {
        let name = if test.classname.is_empty() {
            test.name.clone()
        } else {
            format!("{}::{}", test.classname, test.name)
        };
        println!(
            "{}: {name}: {:.0}% flips over its last runs ({} runs recorded){}",
            test.suite,
            test.flip_rate * 100.0,
            test.runs,
            test.last_failure
                .as_deref()
                .map(|m| format!("; last failure: {m}"))
                .unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates_are_civil() {
        assert_eq!(super::utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::utc(1_796_535_639_000), "2026-12-06T05:40:39Z");
        assert_eq!(super::utc(951_782_400_000), "2000-02-29T00:00:00Z");
    }
}
