//! The two Rust anchors of the ingest bench (bench/report.py), each reading a JUnit report and
//! filling the duration histogram the osworld plugin exports:
//!
//! - `junit-parser FILE`: the `junit-parser` crate, which reads the whole report into memory;
//! - `quick-xml FILE`: a bare `quick-xml` event loop that only counts `<testcase>` elements
//!   and observes their `time`, the floor of any real XML parse.
//!
//! Each prints the cases it counted and the histogram, so the bench can check they read what
//! testmeter read.

use std::io::BufReader;
use std::process::ExitCode;

/// The osworld plugin's task duration buckets (plugins/osworld/src/declare.rs).
const BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0,
];

#[derive(Debug, Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
}

impl Histogram {
    fn new() -> Self {
        Histogram {
            counts: vec![0; BUCKETS.len() + 1],
            sum: 0.0,
        }
    }

    fn observe(&mut self, value: f64) {
        let bucket = BUCKETS.partition_point(|bound| *bound < value);
        self.counts[bucket] += 1;
        self.sum += value;
    }
}

fn with_junit_parser(path: &str) -> Result<Histogram, String> {
    fn walk(suite: &junit_parser::TestSuite, histogram: &mut Histogram) {
        for case in &suite.cases {
            histogram.observe(case.time);
        }
        for nested in &suite.suites {
            walk(nested, histogram);
        }
    }
    let file = std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
    let suites = junit_parser::from_reader(BufReader::new(file)).map_err(|e| e.to_string())?;
    let mut histogram = Histogram::new();
    for suite in &suites.suites {
        walk(suite, &mut histogram);
    }
    Ok(histogram)
}

fn with_quick_xml(path: &str) -> Result<Histogram, String> {
    use quick_xml::events::Event;
    let file = std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
    let mut reader = quick_xml::Reader::from_reader(BufReader::new(file));
    let mut buf = Vec::new();
    let mut histogram = Histogram::new();
    loop {
        match reader
            .read_event_into(&mut buf)
            .map_err(|e| e.to_string())?
        {
            Event::Start(element) | Event::Empty(element)
                if element.local_name().into_inner() == "testcase" =>
            {
                let time = element
                    .attributes()
                    .flatten()
                    .find(|a| a.key.local_name().into_inner() == "time")
                    .and_then(|a| a.value.parse::<f64>().ok())
                    .unwrap_or(0.0);
                histogram.observe(time);
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    Ok(histogram)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1..) {
        Some([which, path]) if which == "junit-parser" => with_junit_parser(path),
        Some([which, path]) if which == "quick-xml" => with_quick_xml(path),
        _ => Err("usage: testmeter-bench-anchors junit-parser|quick-xml FILE".to_owned()),
    };
    match result {
        Ok(histogram) => {
            let cases: u64 = histogram.counts.iter().sum();
            println!(
                "{{\"cases\": {cases}, \"buckets\": {:?}, \"sum\": {}}}",
                histogram.counts, histogram.sum
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}
