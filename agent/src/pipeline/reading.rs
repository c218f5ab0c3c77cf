//! Reading a run's report and deriving it with the plugins of its system at the same time.
//! The report is parsed on a blocking thread, and its cases reach every plugin in batches
//! while the next batch is parsed: neither the report nor the run is ever held whole, and the
//! parser and the plugins each keep a core busy. Only what the plugins read is parsed.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use quick_junit::{TestCaseStatus, TestSuite};
use testmeter_parse::{
    hand_on, stream_bytes, stream_file, CaseSink, CaseView, Fields, Format, Limits, ParseError,
    Streamed, Summary,
};
use tokio::sync::mpsc;

use crate::catalog::Sample;
use crate::model::{CaseResult, FailedCase, ReportSource, RunRecord, SuiteRun};
use crate::plugin::conversions::{self, CaseBatch, Reads, RunEndInput};
use crate::plugin::derivation::{Batches, Derivation};
use crate::plugin::{LoadedPlugin, PluginError, PluginRuntime};
use crate::runner::RunError;

/// Cases in a batch, at most.
const BATCH_CASES: usize = 512;
/// Bytes of strings in a batch, about: a batch of long outputs is cut early.
const BATCH_BYTES: usize = 1 << 20;
/// Batches the parser may be ahead of the plugins.
const BATCHES_AHEAD: usize = 2;

/// A run read and derived.
#[derive(Debug)]
pub struct Reading {
    /// What the agent keeps of the run, or why its report could not be read.
    pub record: Result<RunRecord, RunError>,
    /// Each plugin's samples or error, in the order the plugins were given; empty when the
    /// report could not be read (nothing a plugin made of it counts).
    pub derived: Vec<Derived>,
}

/// One plugin's result on a run.
#[derive(Debug)]
pub struct Derived {
    pub result: Result<Vec<Sample>, PluginError>,
    /// Time spent in the plugin's calls.
    pub busy: Duration,
}

enum Message {
    Batch(Batches),
    Cases(Vec<CaseResult>),
    Restart,
}

/// What a follower of a run's cases is told while its report is read.
#[derive(Debug, Clone, Copy)]
pub enum Cases<'a> {
    /// The next cases, in report order.
    Read(&'a [CaseResult]),
    /// The report is being read again from its start (far-apart retries): forget the cases
    /// told so far.
    Restart,
}

/// Reads `run`'s report and derives it with every plugin in `plugins`; `follow`, when given,
/// is told every case as it is read.
pub async fn read(
    runtime: &PluginRuntime,
    plugins: &[&LoadedPlugin],
    mut run: SuiteRun,
    follow: Option<&(dyn Fn(Cases<'_>) + Sync)>,
) -> Reading {
    let source = std::mem::replace(&mut run.report.source, ReportSource::None);
    let judged_by_exit_code = matches!(source, ReportSource::None);
    let (format, limits) = (run.report.format, run.report.limits);
    // One batch per set of fields the plugins read: each gets only what it declared.
    let mut classes: Vec<Reads> = Vec::new();
    let class_of: Vec<usize> = plugins
        .iter()
        .map(
            |plugin| match classes.iter().position(|r| *r == plugin.reads) {
                Some(class) => class,
                None => {
                    classes.push(plugin.reads);
                    classes.len() - 1
                }
            },
        )
        .collect();
    let fields = classes
        .iter()
        .fold(Reads::default(), |all, reads| all.union(*reads))
        .fields();
    let (sender, mut receiver) = mpsc::channel(BATCHES_AHEAD);
    let collect = follow.is_some();
    let parse = tokio::task::spawn_blocking(move || {
        let mut sink = Batcher::new(sender, classes, collect);
        let read = read_report(source, format, limits, fields, &mut sink);
        sink.flush();
        read.map(|read| (read, sink.failures))
    });
    let start = conversions::run_start(&run);
    let mut derivations = Vec::with_capacity(plugins.len());
    for (plugin, class) in plugins.iter().zip(class_of) {
        derivations.push(Derivation::start(runtime, plugin, &start, class).await);
    }
    while let Some(message) = receiver.recv().await {
        match message {
            Message::Batch(batches) => {
                for derivation in &mut derivations {
                    derivation.feed(&batches).await;
                }
            }
            Message::Cases(cases) => {
                if let Some(follow) = follow {
                    follow(Cases::Read(&cases));
                }
            }
            Message::Restart => {
                for derivation in &mut derivations {
                    derivation.restart().await;
                }
                if let Some(follow) = follow {
                    follow(Cases::Restart);
                }
            }
        }
    }
    let (read, failures) = match parse.await {
        Ok(Ok(read)) => read,
        Ok(Err(unread)) => {
            return Reading {
                record: Err(run_error(&run, unread)),
                derived: Vec::new(),
            }
        }
        Err(panicked) => {
            return Reading {
                record: Err(RunError::Reader {
                    message: panicked.to_string(),
                }),
                derived: Vec::new(),
            }
        }
    };
    let partial = match (run.partial.clone(), read.partial) {
        (Some(cut), Some(reason)) => Some(format!("{cut}; {reason}")),
        (cut, reason) => cut.or(reason),
    };
    if let Some(reason) = &partial {
        tracing::warn!(
            suite = run.suite,
            reason,
            "partial run: only the cases that completed are reported"
        );
    }
    let started = run
        .started
        .or(read.timestamp)
        .unwrap_or_else(SystemTime::now);
    let duration = run.duration.unwrap_or(read.time);
    let end = RunEndInput {
        started_unix_ms: started
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        duration_seconds: duration.as_secs_f64(),
        properties: read
            .properties
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect(),
        partial: partial.as_deref(),
    };
    let mut derived = Vec::with_capacity(derivations.len());
    for derivation in derivations {
        let (result, busy) = derivation.finish(&end).await;
        derived.push(Derived { result, busy });
    }
    Reading {
        record: Ok(RunRecord {
            suite: run.suite,
            system: run.system,
            labels: run.labels,
            started,
            duration,
            exit_code: run.exit_code,
            peak_rss_bytes: run.peak_rss_bytes,
            summary: read.summary,
            judged_by_exit_code,
            failures,
            partial,
        }),
        derived,
    }
}

/// A failed or errored test as the summary shows it; `None` for a test that passed or was
/// skipped.
fn failed_case(case: &CaseView<'_>) -> Option<FailedCase> {
    let TestCaseStatus::NonSuccess { message, .. } = case.status else {
        return None;
    };
    let name = match case.classname {
        Some(classname) => format!("{classname}::{}", case.name),
        None => case.name.to_owned(),
    };
    let message = message
        .as_ref()
        .and_then(|m| m.as_str().lines().next().map(str::to_owned))
        .unwrap_or_else(|| "(no message)".to_owned());
    Some(FailedCase { name, message })
}

/// A case as the followers of cases keep it.
fn case_result(suite: &str, case: &CaseView<'_>) -> CaseResult {
    let (outcome, attempts, flaky, message) = conversions::outcome_of(case.status);
    let kind = match case.status {
        TestCaseStatus::NonSuccess { ty: Some(ty), .. } => {
            first_line(ty.as_str(), CaseResult::MESSAGE_BYTES)
        }
        _ => None,
    };
    CaseResult {
        report_suite: suite.to_owned(),
        classname: case.classname.unwrap_or_default().to_owned(),
        name: case.name.to_owned(),
        outcome,
        attempts,
        flaky,
        duration: case.time,
        message: message.and_then(|m| first_line(m, CaseResult::MESSAGE_BYTES)),
        kind,
        started: case.timestamp.map(SystemTime::from),
    }
}

/// The first non-empty line of `text`, cut to at most `max` bytes on a character boundary.
fn first_line(text: &str, max: usize) -> Option<String> {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    let mut end = line.len().min(max);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    Some(line[..end].to_owned())
}

/// Why a report could not be read, and which.
struct Unread {
    report: String,
    error: ParseError,
}

fn run_error(run: &SuiteRun, unread: Unread) -> RunError {
    if let Some(timeout) = run.timed_out {
        // A hung suite that was killed may have left no readable report.
        return RunError::Timeout { timeout };
    }
    match &run.status {
        Some(status) => RunError::Report {
            report: unread.report,
            status: status.clone(),
            source: unread.error,
        },
        None => RunError::Ingest {
            report: unread.report,
            source: unread.error,
        },
    }
}

/// What the report said besides its cases: every part of it together.
struct Read {
    summary: Summary,
    partial: Option<String>,
    /// The earliest suite timestamp.
    timestamp: Option<SystemTime>,
    /// The sum of the suites' times.
    time: Duration,
    /// The properties of its suites.
    properties: Vec<(String, String)>,
}

impl Read {
    fn of(parts: Vec<Streamed>, suites: Suites) -> Read {
        let mut summary = Summary::default();
        let mut reasons = Vec::new();
        let mut timestamp = None;
        for part in parts {
            summary.merge(&part.summary);
            reasons.extend(part.partial);
            if timestamp.is_none() {
                timestamp = part.report.timestamp.map(SystemTime::from);
            }
        }
        Read {
            summary,
            partial: (!reasons.is_empty()).then(|| reasons.join("; ")),
            timestamp,
            time: suites.time,
            properties: suites.properties,
        }
    }
}

/// What the run needs of the report's suites, summed as they are read.
#[derive(Default)]
struct Suites {
    time: Duration,
    properties: Vec<(String, String)>,
}

impl Suites {
    fn add(&mut self, suite: &TestSuite) {
        self.time += suite.time.unwrap_or(Duration::ZERO);
        self.properties.extend(
            suite
                .properties
                .iter()
                .map(|p| (p.name.as_str().to_owned(), p.value.as_str().to_owned())),
        );
    }
}

fn read_report(
    source: ReportSource,
    format: Format,
    limits: Limits,
    fields: Fields,
    sink: &mut Batcher,
) -> Result<Read, Unread> {
    let streamed = match source {
        ReportSource::Parsed(parsed) => vec![hand_on(parsed, sink)],
        ReportSource::None => Vec::new(),
        ReportSource::Bytes { what, bytes } => {
            vec![
                stream_bytes(&bytes, format, limits, fields, sink).map_err(|error| Unread {
                    report: what,
                    error,
                })?,
            ]
        }
        ReportSource::Files(paths) => {
            let mut replay = Replay {
                sink,
                read: Vec::new(),
                format,
                limits,
                fields,
                failed: None,
            };
            let mut parts = Vec::with_capacity(paths.len());
            for path in paths {
                let part = stream_file(&path, format, limits, fields, &mut replay);
                if let Some(unread) = replay.failed.take() {
                    return Err(unread);
                }
                parts.push(part.map_err(|error| Unread {
                    report: path.display().to_string(),
                    error,
                })?);
                replay.read.push(path);
            }
            parts
        }
    };
    Ok(Read::of(streamed, std::mem::take(&mut sink.suites)))
}

/// Several report files read as one: when one has to be read again from its start, the
/// files before it are streamed again first, so the plugins see every case once.
struct Replay<'s> {
    sink: &'s mut Batcher,
    read: Vec<PathBuf>,
    format: Format,
    limits: Limits,
    fields: Fields,
    /// A file read before that cannot be read again (it changed on disk).
    failed: Option<Unread>,
}

impl CaseSink for Replay<'_> {
    fn case(&mut self, suite: &str, case: CaseView<'_>) {
        self.sink.case(suite, case);
    }

    fn suite(&mut self, suite: &TestSuite) {
        self.sink.suite(suite);
    }

    fn restart(&mut self) {
        self.sink.restart();
        for path in &self.read {
            if let Err(error) = stream_file(path, self.format, self.limits, self.fields, self.sink)
            {
                self.failed.get_or_insert_with(|| Unread {
                    report: path.display().to_string(),
                    error,
                });
            }
        }
    }
}

/// Puts cases into batches, one per set of fields the plugins read, and sends them to the
/// plugins when they are full. Each case is converted and dropped here, on the thread that
/// parsed it. Also keeps the first failed tests for the summary.
struct Batcher {
    sender: mpsc::Sender<Message>,
    classes: Vec<Reads>,
    batches: Vec<CaseBatch>,
    /// The cases of this batch for the followers of cases, when there are any.
    results: Option<Vec<CaseResult>>,
    cases: usize,
    failures: Vec<FailedCase>,
    suites: Suites,
}

impl Batcher {
    fn new(sender: mpsc::Sender<Message>, classes: Vec<Reads>, collect: bool) -> Self {
        let batches = classes.iter().map(|_| CaseBatch::default()).collect();
        Batcher {
            sender,
            classes,
            batches,
            results: collect.then(Vec::new),
            cases: 0,
            failures: Vec::new(),
            suites: Suites::default(),
        }
    }

    fn send(&self, message: Message) {
        // The receiving side only goes away when the agent stops: the rest is not needed.
        let _ = self.sender.blocking_send(message);
    }

    fn flush(&mut self) {
        if let Some(results) = self.results.as_mut().filter(|r| !r.is_empty()) {
            let capacity = results.len();
            let full = std::mem::replace(results, Vec::with_capacity(capacity));
            self.send(Message::Cases(full));
        }
        if self.cases == 0 || self.classes.is_empty() {
            self.cases = 0;
            return;
        }
        // The next batches start as large as these ended: they fill alike, without growing.
        let batches = self.batches.iter().map(CaseBatch::sized_like).collect();
        let full = std::mem::replace(&mut self.batches, batches);
        self.cases = 0;
        self.send(Message::Batch(Arc::new(full)));
    }
}

impl CaseSink for Batcher {
    fn case(&mut self, suite: &str, case: CaseView<'_>) {
        if self.failures.len() < RunRecord::FAILURES_KEPT {
            self.failures.extend(failed_case(&case));
        }
        if let Some(results) = &mut self.results {
            results.push(case_result(suite, &case));
        }
        let mut bytes = 0;
        for (batch, reads) in self.batches.iter_mut().zip(&self.classes) {
            batch.push(suite, &case, *reads);
            bytes = bytes.max(batch.text_len());
        }
        self.cases += 1;
        if self.cases >= BATCH_CASES || bytes >= BATCH_BYTES {
            self.flush();
        }
    }

    fn suite(&mut self, suite: &TestSuite) {
        self.suites.add(suite);
    }

    fn restart(&mut self) {
        for batch in &mut self.batches {
            *batch = CaseBatch::default();
        }
        self.cases = 0;
        self.failures.clear();
        if let Some(results) = &mut self.results {
            results.clear();
        }
        self.suites = Suites::default();
        self.send(Message::Restart);
    }
}

/// Reads `run`'s report and derives it with one plugin: what `testmeter` does for each plugin
/// of a system, for tests and benchmarks.
pub async fn derive_one(
    runtime: &PluginRuntime,
    plugin: &LoadedPlugin,
    run: &SuiteRun,
) -> Result<Vec<Sample>, PluginError> {
    let reading = read(runtime, &[plugin], run.clone(), None).await;
    match (reading.record, reading.derived.into_iter().next()) {
        (Ok(_), Some(derived)) => derived.result,
        (Err(error), _) => Err(PluginError::Guest {
            plugin: plugin.decl.name.clone(),
            message: format!("the report could not be read: {error}"),
        }),
        (Ok(_), None) => Err(PluginError::Guest {
            plugin: plugin.decl.name.clone(),
            message: "no derivation".to_owned(),
        }),
    }
}
