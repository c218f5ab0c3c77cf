//! Parses a report RUNS times and prints the median wall time, the test totals and the
//! process's peak RSS as JSON: the Rust side of `bench/parse.sh`. With `--stream`, the report
//! is streamed case by case into a sink that only counts, keeping case properties and
//! messages but no output or tracebacks (what the osworld plugin reads).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use testmeter_parse::{
    parse_file, stream_file, CaseSink, CaseView, Fields, Format, Limits, Summary,
};

/// Counts what it receives and keeps nothing.
struct Count(usize);

impl CaseSink for Count {
    fn case(&mut self, _suite: &str, case: CaseView<'_>) {
        self.0 += case.properties.len();
    }
    fn suite(&mut self, _suite: &quick_junit::TestSuite) {}
    fn restart(&mut self) {
        self.0 = 0;
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let stream = args.iter().any(|a| a == "--stream");
    args.retain(|a| a != "--stream");
    let mut args = args.into_iter();
    let path = PathBuf::from(
        args.next()
            .ok_or("usage: parse_report [--stream] FILE [RUNS]")?,
    );
    let runs: usize = args.next().map_or(Ok(5), |r| r.parse())?;
    let mut times: Vec<Duration> = Vec::with_capacity(runs);
    let mut summary = Summary::default();
    let fields = Fields {
        properties: true,
        output: false,
        descriptions: false,
    };
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        if stream {
            let streamed = stream_file(
                &path,
                Format::Junit,
                Limits::default(),
                fields,
                &mut Count(0),
            )?;
            summary = streamed.summary;
        } else {
            let parsed = parse_file(&path, Format::Junit, Limits::default())?;
            summary = Summary::of(&parsed.report);
            drop(parsed);
        }
        times.push(started.elapsed());
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
