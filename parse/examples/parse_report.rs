//! Parses a report RUNS times and prints the median wall time, the test totals and the
//! process's peak RSS as JSON: the Rust side of `bench/parse.sh`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use testmeter_parse::{parse_file, Format, Limits, Summary};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = PathBuf::from(args.next().ok_or("usage: parse_report FILE [RUNS]")?);
    let runs: usize = args.next().map_or(Ok(5), |r| r.parse())?;
    let mut times: Vec<Duration> = Vec::with_capacity(runs);
    let mut summary = Summary::default();
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        let parsed = parse_file(&path, Format::Junit, Limits::default())?;
        times.push(started.elapsed());
        summary = Summary::of(&parsed.report);
        drop(parsed);
    }
    times.sort();
    println!(
        "{{\"cases\": {}, \"failed\": {}, \"median_s\": {}, \"peak_rss_bytes\": {}}}",
        summary.tests,
        summary.failed,
        times[times.len() / 2].as_secs_f64(),
        peak_rss_bytes()
    );
    Ok(())
}

/// VmHWM of this process (Linux), in bytes; 0 where unavailable.
fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                let kib = line.strip_prefix("VmHWM:")?.trim().strip_suffix("kB")?;
                kib.trim().parse::<u64>().ok()
            })
        })
        .map_or(0, |kib| kib * 1024)
}
