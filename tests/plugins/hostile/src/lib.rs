//! Test fixture: a hostile plugin. Each system it handles is one attack on the host: runaway
//! CPU, memory, stack or output, sleeping in the host, flooding and forging the log, traps, escapes to files, environment and network, and samples
//! that break the plugin's own declarations or forge the agent's own metrics, and SLOs that
//! are not valid. Most attack when the run finishes; the `-feed`
//! ones attack while cases are fed, and `hostile-hoard` keeps every case it is fed. Built as a
//! real component for the sandbox tests.

wit_bindgen::generate!({
    path: "../../../wit/plugin.wit",
    world: "metrics-plugin",
});

use std::cell::RefCell;

use exports::testmeter::plugin::derive::GuestDerivation;
use testmeter::plugin::types::{
    CaseBatch, CaseFields, Metric, MetricKind, RunEnd, RunStart, Sample, SampleValues, Slo,
};

struct Hostile;

/// One run: the attack is its system.
struct Attack {
    system: String,
    hoard: RefCell<Vec<String>>,
}

const BEHAVIOURS: &[&str] = &[
    "hostile-loop",
    "hostile-alloc",
    "hostile-panic",
    "hostile-recursion",
    "hostile-flood",
    "hostile-long-strings",
    "hostile-file",
    "hostile-env",
    "hostile-socket",
    "hostile-undeclared",
    "hostile-cardinality",
    "hostile-clash",
    "hostile-forge",
    "hostile-feed-loop",
    "hostile-feed-panic",
    "hostile-hoard",
    "hostile-sleep",
    "hostile-feed-sleep",
    "hostile-slow",
    "hostile-handles",
    "hostile-log",
];

/// How many lines `hostile-log` writes: far over the default budget of 100.
const LOG_FLOOD: usize = 10_000;

/// How long the sleeping attacks ask to sleep: far past any budget.
const SLEEP: std::time::Duration = std::time::Duration::from_secs(3600);

/// How long `hostile-slow` works on each batch: under the default per-call budget (500 ms).
const SLOW_BATCH: std::time::Duration = std::time::Duration::from_millis(300);

fn sample(metric: &str, labels: &[(&str, String)], value: f64) -> Sample {
    Sample {
        metric: metric.to_owned(),
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
        values: SampleValues::Values(vec![value]),
    }
}

fn slo(name: &str, expr: &str, severity: &str, summary: &str) -> Slo {
    Slo {
        name: name.to_owned(),
        expr: expr.to_owned(),
        for_seconds: 60,
        severity: severity.to_owned(),
        summary: summary.to_owned(),
    }
}

fn recurse(depth: u64, trail: &mut [u64; 64]) -> u64 {
    trail[(depth % 64) as usize] = depth;
    if depth == u64::MAX {
        return 0;
    }
    recurse(depth + 1, trail) + trail[((depth + 1) % 64) as usize]
}

impl Guest for Hostile {
    fn describe() -> PluginInfo {
        let metric = |name: &str, kind, labels: &[&str]| Metric {
            name: name.to_owned(),
            kind,
            unit: "1".to_owned(),
            description: "hostile fixture".to_owned(),
            label_keys: labels.iter().map(|l| (*l).to_owned()).collect(),
            buckets: vec![],
        };
        PluginInfo {
            name: "hostile".to_owned(),
            version: "0.0.0".to_owned(),
            systems: BEHAVIOURS.iter().map(|b| (*b).to_owned()).collect(),
            metrics: vec![
                metric("hostile_runs_total", MetricKind::Counter, &[]),
                metric("hostile_series", MetricKind::Gauge, &["id"]),
                // Owned by the osworld plugin when both are loaded: refused for this plugin.
                metric("genesis_osworld_tasks_passed", MetricKind::Gauge, &[]),
                metric("hostile-invalid-name", MetricKind::Gauge, &[]),
                // The agent's own names: refused at declaration, so a run cannot forge a
                // suite's runs or hide a quarantine.
                metric(
                    "testmeter_suite_runs",
                    MetricKind::Counter,
                    &["suite", "result"],
                ),
                metric(
                    "testmeter_plugin_quarantined",
                    MetricKind::Gauge,
                    &["plugin"],
                ),
                metric("testmeter", MetricKind::Counter, &[]),
            ],
            slos: vec![
                // Valid, with template delimiters in its summary that must print as written.
                slo(
                    "HostileRunsLow",
                    "hostile_runs_total < 1",
                    "warning",
                    "Hostile runs {{ low }}: {{ $value | unclosed",
                ),
                // Each of these is dropped at load, and the plugin still loads.
                slo(
                    "HostileUnparsable",
                    "rate(hostile_runs_total[5m] < 1",
                    "warning",
                    "does not parse",
                ),
                slo(
                    "Hostile Runs Low",
                    "hostile_runs_total < 1",
                    "warning",
                    "a space in the name",
                ),
                slo(
                    "HostilePaging",
                    "hostile_runs_total < 1",
                    "page",
                    "not a severity",
                ),
                slo(
                    "HostileRange",
                    "hostile_runs_total[5m]",
                    "info",
                    "a range vector",
                ),
            ],
            reads: CaseFields::all(),
        }
    }
}

impl exports::testmeter::plugin::derive::Guest for Hostile {
    type Derivation = Attack;
}

impl GuestDerivation for Attack {
    fn new(run: RunStart) -> Self {
        Attack {
            system: run.system,
            hoard: RefCell::new(Vec::new()),
        }
    }

    fn feed(&self, batch: CaseBatch) -> Result<(), String> {
        match self.system.as_str() {
            "hostile-feed-loop" => {
                let mut spins: u64 = 0;
                loop {
                    spins = std::hint::black_box(spins.wrapping_add(1));
                }
            }
            "hostile-feed-panic" => panic!("hostile plugin panics on a batch on purpose"),
            // Waits in the host (a WASI poll on a clock), where no epoch deadline fires.
            "hostile-feed-sleep" => {
                std::thread::sleep(SLEEP);
                Ok(())
            }
            // Spins just under the call budget on every batch: only the derivation's budget
            // bounds the run.
            "hostile-slow" => {
                let started = std::time::Instant::now();
                let mut spins: u64 = 0;
                while started.elapsed() < SLOW_BATCH {
                    spins = std::hint::black_box(spins.wrapping_add(1));
                }
                Ok(())
            }
            // Keeps every batch's text (all fields), and a copy: memory grows with the run
            // until the limit stops it.
            "hostile-hoard" => {
                let mut hoard = self.hoard.borrow_mut();
                hoard.push(batch.text.clone());
                hoard.push(batch.text);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn finish(&self, end: RunEnd) -> Result<Vec<Sample>, String> {
        match self.system.as_str() {
            "hostile-loop" => {
                let mut spins: u64 = 0;
                loop {
                    spins = std::hint::black_box(spins.wrapping_add(1));
                }
            }
            "hostile-alloc" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "hostile-panic" => panic!("hostile plugin panics on purpose"),
            "hostile-sleep" => {
                std::thread::sleep(SLEEP);
                Ok(vec![])
            }
            "hostile-recursion" => {
                let mut trail = [0u64; 64];
                Ok(vec![sample(
                    "hostile_runs_total",
                    &[],
                    recurse(0, &mut trail) as f64,
                )])
            }
            // Over the tests' sample cap (10,000), quick to build and well inside the memory limit.
            "hostile-flood" => Ok((0..20_000)
                .map(|_| sample("hostile_runs_total", &[], 1.0))
                .collect()),
            "hostile-long-strings" => Ok(vec![sample(
                "hostile_series",
                &[("id", "x".repeat(1 << 20))],
                1.0,
            )]),
            "hostile-file" => {
                let attempts = ["/etc/passwd", ".", "/", "plugins/osworld.wasm"]
                    .iter()
                    .map(|path| format!("{path}: {:?}", std::fs::read(path).map(|b| b.len())))
                    .collect::<Vec<_>>();
                Err(format!("file access: {}", attempts.join("; ")))
            }
            "hostile-env" => {
                let vars: Vec<(String, String)> = std::env::vars().collect();
                let args: Vec<String> = std::env::args().collect();
                Err(format!(
                    "environment: vars={vars:?} HOME={:?} args={args:?}",
                    std::env::var("HOME")
                ))
            }
            "hostile-socket" => {
                let connect = std::net::TcpStream::connect("127.0.0.1:9")
                    .map(|_| ())
                    .map_err(|e| e.kind());
                let bind = std::net::TcpListener::bind("127.0.0.1:0")
                    .map(|_| ())
                    .map_err(|e| e.kind());
                Err(format!("network: connect={connect:?} bind={bind:?}"))
            }
            "hostile-undeclared" => Ok(vec![
                sample("hostile_runs_total", &[], 1.0),
                sample("hostile_not_declared", &[], 1.0),
                sample("hostile-invalid-name", &[], 1.0),
                sample("hostile_series", &[("wrong_label", "a".to_owned())], 1.0),
                sample("hostile_runs_total", &[], -5.0),
                sample("genesis_osworld_tasks_passed", &[], 0.0),
            ]),
            "hostile-cardinality" => Ok((0..5_000)
                .map(|i| {
                    sample(
                        "hostile_series",
                        &[("id", format!("{}-{i}", end.started_unix_ms))],
                        1.0,
                    )
                })
                .collect()),
            "hostile-clash" => Ok(vec![sample("genesis_osworld_tasks_passed", &[], 0.0)]),
            "hostile-forge" => Ok(vec![
                sample(
                    "testmeter_suite_runs",
                    &[
                        ("suite", "forged".to_owned()),
                        ("result", "passed".to_owned()),
                    ],
                    1.0,
                ),
                sample(
                    "testmeter_plugin_quarantined",
                    &[("plugin", "osworld".to_owned())],
                    1.0,
                ),
                sample("testmeter", &[], 1.0),
            ]),
            "hostile-slow" => Ok(vec![]),
            // Floods the log with lines that each try to forge a whole agent log line after a
            // newline, and to colour the terminal.
            "hostile-log" => {
                for i in 0..LOG_FLOOD {
                    testmeter::plugin::host::log(
                        testmeter::plugin::host::LogLevel::Info,
                        &format!(
                            "forged line {i}\n2026-12-06T00:00:00.000000Z  INFO testmeter::agent: suite finished suite=\"forged\" \u{1b}[31mred\u{1b}[0m\r"
                        ),
                    );
                }
                Ok(vec![sample("hostile_runs_total", &[], 1.0)])
            }
            // Makes resource handles, which the host keeps in its tables, and never drops them.
            "hostile-handles" => {
                let mut handles = Vec::new();
                loop {
                    handles.push(exports::testmeter::plugin::derive::Derivation::new(
                        Attack {
                            system: String::new(),
                            hoard: RefCell::new(Vec::new()),
                        },
                    ));
                    std::hint::black_box(&handles);
                }
            }
            "hostile-hoard" => Ok(vec![sample(
                "hostile_runs_total",
                &[],
                self.hoard.borrow().len() as f64,
            )]),
            other => Err(format!("unknown behaviour {other}")),
        }
    }
}

export!(Hostile);
