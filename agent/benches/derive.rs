//! Benchmark: each bundled plugin's derivation of the same 10,000 test cases through the real
//! host: a fresh store and instance, the start, every batch fed (marshalled into the plugin)
//! and the finish. Prints the median and spread over repeated runs per plugin, and the
//! host-side conversion of the cases into batches alone (which the agent does on the parser's
//! thread, while plugins read the batches before).
//! Run: `cargo plugins && cargo bench -p testmeter --bench derive`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use std::sync::Arc;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};
use testmeter::model::{RunReport, SuiteRun};
use testmeter::parse::{CaseView, Parsed};
use testmeter::plugin::conversions::{self, CaseBatch, RunEndInput};
use testmeter::plugin::derivation::Derivation;
use testmeter::plugin::{PluginRuntime, SandboxLimits};

/// Cases per batch, as the agent cuts them.
const BATCH: usize = 512;

const CASES: usize = 10_000;
const ITERATIONS: usize = 50;
const CATEGORIES: [&str; 4] = [
    "file_operations",
    "terminal",
    "web_browsing",
    "system_settings",
];

/// A run shaped like a large OSWorld suite: categories and steps as properties, some failures
/// and skips, and captured output on every fifth case.
fn synthetic_run() -> SuiteRun {
    let mut suite = TestSuite::new("pytest");
    for i in 0..CASES {
        let status = match i % 20 {
            0 => TestCaseStatus::skipped(),
            1 | 7 => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                status.set_message(format!("AssertionError: task {i} exceeded its step budget"));
                status
            }
            _ => TestCaseStatus::success(),
        };
        let mut case = TestCase::new(format!("test_task[task_{i}]"), status);
        case.set_classname("test_osworld_benchmark")
            .set_time(Duration::from_millis(50 + (i as u64 * 37) % 5000))
            .add_property(Property::new("task_id", format!("task_{i}")))
            .add_property(Property::new("category", CATEGORIES[i % CATEGORIES.len()]))
            .add_property(Property::new("steps", ((i % 15) + 1).to_string()));
        if i % 5 == 0 {
            case.set_system_out(format!("step 1: open app\nstep 2: click\ntask {i} done\n"));
        }
        suite.add_test_case(case);
    }
    let mut report = Report::new("bench");
    report.add_test_suite(suite);
    SuiteRun {
        suite: "osworld".to_owned(),
        system: "osworld".to_owned(),
        labels: BTreeMap::new(),
        started: Some(SystemTime::now()),
        duration: Some(Duration::from_secs(60)),
        exit_code: Some(1),
        peak_rss_bytes: Some(40_000_000),
        partial: None,
        timed_out: None,
        status: Some("exit code 1".to_owned()),
        artifacts: vec![],
        dropped_artifacts: vec![],
        report: RunReport::parsed(Parsed {
            report,
            partial: None,
            suite_partial: BTreeMap::new(),
        }),
    }
}

/// The run's cases in batches with the fields `reads` asks for.
fn batches(run: &SuiteRun, reads: conversions::Reads) -> Vec<Arc<Vec<CaseBatch>>> {
    let testmeter::model::ReportSource::Parsed(parsed) = &run.report.source else {
        unreachable!("the synthetic run is parsed");
    };
    let mut out = Vec::new();
    for suite in &parsed.report.test_suites {
        for chunk in suite.test_cases.chunks(BATCH) {
            let mut batch = CaseBatch::default();
            for case in chunk {
                batch.push(suite.name.as_str(), &CaseView::of(case), reads);
            }
            out.push(Arc::new(vec![batch]));
        }
    }
    out
}

fn summarize(label: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "{label:<44} median {:>7.3} ms   p10 {:>7.3}   p90 {:>7.3}   min {:>7.3}   (n={})",
        ms(at(0.5)),
        ms(at(0.1)),
        ms(at(0.9)),
        ms(samples[0]),
        samples.len()
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let limits = SandboxLimits {
        call_timeout: Duration::from_secs(10),
        ..SandboxLimits::default()
    };
    let host = PluginRuntime::new(limits).expect("engine");
    let run = synthetic_run();

    let mut conversion = Vec::with_capacity(ITERATIONS);
    for _ in 0..ITERATIONS {
        let started = Instant::now();
        std::hint::black_box(batches(&run, conversions::Reads::ALL));
        conversion.push(started.elapsed());
    }
    println!("{CASES} cases");
    summarize("host conversion to WIT batches only", conversion);
    let start = conversions::run_start(&run);
    let end = RunEndInput {
        started_unix_ms: 1_800_000_000_000,
        duration_seconds: 60.0,
        properties: vec![],
        partial: None,
    };
    for name in ["osworld", "langmem", "waltzrl"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("../plugins/{name}.wasm"));
        let plugin = runtime
            .block_on(host.load(&path))
            .unwrap_or_else(|e| panic!("{e}: run `cargo plugins` first"));
        let fed = batches(&run, plugin.reads);
        let mut derive = Vec::with_capacity(ITERATIONS);
        let mut samples = 0;
        for iteration in 0..ITERATIONS + 5 {
            let started = Instant::now();
            let out = runtime.block_on(async {
                let mut derivation = Derivation::start(&host, &plugin, &start, 0).await;
                for batch in &fed {
                    derivation.feed(batch).await;
                }
                derivation.finish(&end).await.0
            });
            if iteration >= 5 {
                derive.push(started.elapsed());
            }
            samples = out.expect("derives").len();
        }
        summarize(
            &format!("{name} derive, {samples} samples per call"),
            derive,
        );
    }
}
