//! Writes each run as a trace: a span for the suite run and a child span for each case that
//! matters (`trace_cases`: all, notable or none), named and attributed by the OpenTelemetry
//! test semantic conventions, and hands them to the traces sink. Cases are chosen while the
//! report is read, so memory is bounded by the per-run cap, not by the report.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{
    Event as SpanEvent, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, SpanData, SpanEvents, SpanLinks};

use super::History;
use crate::config::{SuiteConfig, TraceCases, TracesConfig};
use crate::export::{SelfMetrics, Spans};
use crate::model::{CaseResult, Outcome, RunTrace, TraceContext};
use crate::pipeline::reading::Cases;
use crate::pipeline::{Consumer, Event, SuiteOutcome};

/// The traces consumer.
pub struct Traces {
    spans: Arc<Spans>,
    config: TracesConfig,
    history: Option<Arc<History>>,
    metrics: Option<Arc<SelfMetrics>>,
    scope: InstrumentationScope,
    /// Cases being chosen, by suite, while its report is read.
    open: Mutex<BTreeMap<String, Choice>>,
}

impl std::fmt::Debug for Traces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Traces").finish_non_exhaustive()
    }
}

/// A case kept for a span, with where it started relative to the run when the report does
/// not say.
#[derive(Debug)]
struct Kept {
    case: CaseResult,
    offset: Duration,
    /// Its place in the report, to keep spans in report order.
    seq: u64,
}

impl PartialEq for Kept {
    fn eq(&self, other: &Self) -> bool {
        self.seq == other.seq
    }
}
impl Eq for Kept {}
impl PartialOrd for Kept {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Kept {
    /// By duration, and of equal durations the later case first: the heap of the slowest drops
    /// the quickest, and of the quickest the latest, so the earliest of a tie stays.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.case.duration, Reverse(self.seq)).cmp(&(other.case.duration, Reverse(other.seq)))
    }
}

/// The cases of one run chosen so far.
#[derive(Debug)]
struct Choice {
    mode: TraceCases,
    /// The report's durations so far: where the next case started, rebuilt.
    elapsed: Duration,
    seen: u64,
    /// Failed, errored and flaky cases (notable), or every case (all), up to the cap.
    kept: Vec<Kept>,
    /// The slowest other cases (notable), quickest on top.
    slowest: BinaryHeap<Reverse<Kept>>,
    /// Cases that would have had a span past the cap.
    cut: u64,
}

impl Choice {
    fn new(mode: TraceCases) -> Self {
        Choice {
            mode,
            elapsed: Duration::ZERO,
            seen: 0,
            kept: Vec::new(),
            slowest: BinaryHeap::new(),
            cut: 0,
        }
    }

    /// Looks at the next case of the report. A case is copied only when it is kept: most are
    /// neither notable nor among the slowest so far, and cost a comparison.
    fn add(&mut self, case: &CaseResult, max: usize, slowest: usize) {
        let (offset, seq) = (self.elapsed, self.seen);
        self.seen += 1;
        self.elapsed += case.duration.unwrap_or_default();
        let keep = |case: &CaseResult| Kept {
            case: case.clone(),
            offset,
            seq,
        };
        let notable = case.outcome.is_failure() || case.flaky;
        match self.mode {
            TraceCases::None => {}
            TraceCases::All | TraceCases::Notable if notable || self.mode == TraceCases::All => {
                if self.kept.len() < max {
                    self.kept.push(keep(case));
                } else {
                    self.cut += 1;
                }
            }
            TraceCases::All | TraceCases::Notable => {
                let Some(duration) = case.duration else {
                    return;
                };
                if slowest == 0 {
                    return;
                }
                // Full, and no slower than the quickest kept: the earlier case stays.
                let quickest = self.slowest.peek().and_then(|Reverse(k)| k.case.duration);
                if self.slowest.len() >= slowest && quickest.is_some_and(|q| duration <= q) {
                    return;
                }
                self.slowest.push(Reverse(keep(case)));
                if self.slowest.len() > slowest {
                    self.slowest.pop();
                }
            }
        }
    }

    /// The chosen cases in report order, within the cap (the slowest fill what the notable
    /// cases left of it).
    fn finish(self, max: usize) -> (Vec<Kept>, u64) {
        let mut kept = self.kept;
        let mut cut = self.cut;
        let mut slowest: Vec<Kept> = self.slowest.into_iter().map(|Reverse(k)| k).collect();
        slowest.sort_by(|a, b| b.cmp(a));
        for case in slowest {
            if kept.len() < max {
                kept.push(case);
            } else {
                cut += 1;
            }
        }
        kept.sort_by_key(|k| k.seq);
        (kept, cut)
    }
}

impl Traces {
    pub fn new(
        spans: Arc<Spans>,
        config: &TracesConfig,
        history: Option<Arc<History>>,
        metrics: Option<Arc<SelfMetrics>>,
    ) -> Self {
        Traces {
            spans,
            config: config.clone(),
            history,
            metrics,
            scope: InstrumentationScope::builder("testmeter")
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
            open: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Choice>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn mode(&self, suite: &SuiteConfig) -> TraceCases {
        suite.trace_cases.unwrap_or(self.config.cases)
    }

    fn cases(&self, suite: &SuiteConfig, cases: Cases<'_>) {
        let mode = self.mode(suite);
        let mut open = self.lock();
        let choice = open
            .entry(suite.name.clone())
            .or_insert_with(|| Choice::new(mode));
        match cases {
            Cases::Read(cases) => {
                for case in cases {
                    choice.add(case, self.config.max_case_spans, self.config.slowest);
                }
            }
            Cases::Restart => *choice = Choice::new(mode),
        }
    }

    fn finished(&self, outcome: &SuiteOutcome) {
        let choice = self.lock().remove(&outcome.suite);
        // Not traced, or the caller's trace is not recorded (so its children are not either).
        let Some(trace) = outcome.sent_trace().copied() else {
            return;
        };
        let (kept, cut) = match (choice, &outcome.run) {
            (Some(choice), Ok(_)) => choice.finish(self.config.max_case_spans),
            _ => (Vec::new(), 0),
        };
        if cut > 0 {
            tracing::debug!(
                suite = outcome.suite,
                cut,
                "case spans past the cap of a run not sent"
            );
            if let Some(metrics) = &self.metrics {
                metrics.case_spans_cut(&outcome.suite, cut);
            }
        }
        let states = self.history_states(outcome);
        let (run_span, start) = run_span(outcome, &trace, kept.len(), cut, &self.scope);
        let mut sent = 0u64;
        let mut dropped = 0u64;
        let ids = RandomIdGenerator::default();
        let cases = kept.into_iter().map(|kept| {
            let key = (kept.case.classname.clone(), kept.case.name.clone());
            let state = states.get(&key).copied();
            case_span(
                outcome,
                &trace,
                start,
                kept,
                state,
                ids.new_span_id(),
                &self.scope,
            )
        });
        for span in cases.chain(std::iter::once(run_span)) {
            if self.spans.send(span) {
                sent += 1;
            } else {
                dropped += 1;
            }
        }
        if dropped > 0 {
            tracing::warn!(
                suite = outcome.suite,
                dropped,
                sent,
                "span queue full: spans of this run dropped ([traces] queue)"
            );
            if let Some(metrics) = &self.metrics {
                metrics.spans_dropped(dropped);
            }
        }
    }

    /// The history's verdicts on this run's notable tests (new failures, failing, fixed,
    /// flaky, slower, quarantined), by classname and name.
    fn history_states(&self, outcome: &SuiteOutcome) -> HashMap<(String, String), &'static str> {
        let verdicts = self
            .history
            .as_ref()
            .and_then(|history| history.latest(&outcome.suite));
        verdicts
            .map(|verdicts| {
                verdicts
                    .notable
                    .into_iter()
                    .map(|v| ((v.classname, v.name), v.state.as_str()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Consumer for Traces {
    fn on(&self, event: &Event<'_>) {
        match event {
            Event::Cases { suite, cases } => self.cases(suite, *cases),
            Event::SuiteFinished { outcome, .. } => self.finished(outcome),
            Event::PluginsLoaded { .. }
            | Event::SuiteStarted { .. }
            | Event::SuiteSkipped { .. } => {}
        }
    }

    fn follows_cases(&self) -> bool {
        true
    }
}

/// `test.suite.run.status` of a run, as the semantic conventions name them.
fn run_status(outcome: &SuiteOutcome) -> &'static str {
    match outcome.result() {
        "passed" => "success",
        "failed" => "failure",
        "timeout" => "timed_out",
        _ => "aborted",
    }
}

/// A sent span's own context: its trace, its id, sampled.
fn context(trace_id: u128, span_id: SpanId) -> SpanContext {
    SpanContext::new(
        TraceId::from(trace_id),
        span_id,
        TraceFlags::SAMPLED,
        false,
        TraceState::default(),
    )
}

fn count(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The span of the suite run, from its start to the end of its derivations, and when it
/// started (its cases' rebuilt starts count from there).
fn run_span(
    outcome: &SuiteOutcome,
    trace: &RunTrace,
    case_spans: usize,
    cut: u64,
    scope: &InstrumentationScope,
) -> (SpanData, SystemTime) {
    let end = outcome.finished_at;
    let start = outcome.run.as_ref().map_or_else(
        |_| end.checked_sub(outcome.duration).unwrap_or(end),
        |record| record.started,
    );
    let mut attributes = vec![
        KeyValue::new("test.suite.name", outcome.suite.clone()),
        KeyValue::new("test.suite.run.status", run_status(outcome)),
        KeyValue::new("testmeter.system", outcome.system.clone()),
        KeyValue::new("testmeter.result", outcome.result()),
        KeyValue::new("testmeter.agent.duration_s", outcome.duration.as_secs_f64()),
        KeyValue::new("testmeter.case_spans", count(case_spans)),
        KeyValue::new(
            "testmeter.case_spans.cut",
            i64::try_from(cut).unwrap_or(i64::MAX),
        ),
    ];
    let status = match &outcome.run {
        Ok(record) => {
            let summary = &record.summary;
            attributes.extend([
                KeyValue::new("testmeter.tests", count(summary.tests)),
                KeyValue::new("testmeter.passed", count(summary.passed)),
                KeyValue::new("testmeter.failed", count(summary.failed)),
                KeyValue::new("testmeter.errored", count(summary.errored)),
                KeyValue::new("testmeter.skipped", count(summary.skipped)),
                KeyValue::new("testmeter.flaky", count(summary.flaky)),
                KeyValue::new("testmeter.suite.duration_s", record.duration.as_secs_f64()),
            ]);
            if let Some(partial) = &record.partial {
                attributes.push(KeyValue::new("testmeter.partial", partial.clone()));
            }
            if record.passed() {
                Status::Unset
            } else {
                Status::error(format!(
                    "{} failed, {} errored",
                    summary.failed, summary.errored
                ))
            }
        }
        Err(error) => Status::error(crate::log::error_chain(error)),
    };
    let span = SpanData {
        span_context: context(trace.span.trace_id, SpanId::from(trace.span.span_id)),
        parent_span_id: trace
            .parent
            .map_or(SpanId::INVALID, |p: TraceContext| SpanId::from(p.span_id)),
        parent_span_is_remote: trace.parent.is_some(),
        span_kind: SpanKind::Internal,
        name: Cow::Owned(format!("suite {}", outcome.suite)),
        start_time: start,
        end_time: end.max(start),
        attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status,
        instrumentation_scope: scope.clone(),
    };
    (span, start)
}

/// The span of one case, a child of the run's. Without a timestamp in the report its start is
/// rebuilt from the durations of the cases before it (as if they ran one after another), and
/// `testmeter.start_rebuilt` says so.
fn case_span(
    outcome: &SuiteOutcome,
    trace: &RunTrace,
    run_start: SystemTime,
    kept: Kept,
    state: Option<&'static str>,
    span_id: SpanId,
    scope: &InstrumentationScope,
) -> SpanData {
    let case = kept.case;
    let (start, rebuilt) = match case.started {
        Some(started) => (started, false),
        None => (run_start + kept.offset, true),
    };
    let end = start + case.duration.unwrap_or_default();
    let full_name = if case.classname.is_empty() {
        case.name.clone()
    } else {
        format!("{}.{}", case.classname, case.name)
    };
    let mut attributes = vec![
        KeyValue::new("test.suite.name", outcome.suite.clone()),
        KeyValue::new("test.case.name", full_name.clone()),
        KeyValue::new(
            "test.case.result.status",
            match case.outcome {
                Outcome::Passed => "pass",
                Outcome::Failed | Outcome::Errored => "fail",
                Outcome::Skipped => "skipped",
            },
        ),
        KeyValue::new("testmeter.outcome", case.outcome.as_str()),
        KeyValue::new("testmeter.attempts", i64::from(case.attempts)),
        KeyValue::new("testmeter.flaky", case.flaky),
        KeyValue::new("testmeter.start_rebuilt", rebuilt),
    ];
    if !case.report_suite.is_empty() {
        attributes.push(KeyValue::new(
            "testmeter.report_suite",
            case.report_suite.clone(),
        ));
    }
    if let Some(state) = state {
        attributes.push(KeyValue::new("testmeter.history.state", state));
    }
    let mut events = SpanEvents::default();
    let status = if case.outcome.is_failure() {
        let message = case.message.clone().unwrap_or_default();
        let kind = case.kind.clone().unwrap_or_else(|| {
            match case.outcome {
                Outcome::Errored => "error",
                _ => "failure",
            }
            .to_owned()
        });
        events.events.push(SpanEvent::new(
            "exception",
            end,
            vec![
                KeyValue::new("exception.type", kind),
                KeyValue::new("exception.message", message.clone()),
            ],
            0,
        ));
        Status::error(message)
    } else {
        Status::Unset
    };
    SpanData {
        span_context: context(trace.span.trace_id, span_id),
        parent_span_id: SpanId::from(trace.span.span_id),
        parent_span_is_remote: false,
        span_kind: SpanKind::Internal,
        name: Cow::Owned(full_name),
        start_time: start,
        end_time: end,
        attributes,
        dropped_attributes_count: 0,
        events,
        links: SpanLinks::default(),
        status,
        instrumentation_scope: scope.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(name: &str, outcome: Outcome, millis: u64) -> CaseResult {
        CaseResult::of_test(name, outcome, millis)
    }

    fn names(kept: &[Kept]) -> Vec<&str> {
        kept.iter().map(|k| k.case.name.as_str()).collect()
    }

    #[test]
    fn notable_keeps_failures_and_the_slowest_in_report_order() {
        let mut choice = Choice::new(TraceCases::Notable);
        let cases = [
            case("a", Outcome::Passed, 10),
            case("b", Outcome::Failed, 1),
            case("c", Outcome::Passed, 500),
            case("d", Outcome::Passed, 20),
            case("e", Outcome::Errored, 2),
            case("f", Outcome::Passed, 300),
            case("g", Outcome::Skipped, 0),
        ];
        for c in &cases {
            choice.add(c, 100, 2);
        }
        let (kept, cut) = choice.finish(100);
        assert_eq!(names(&kept), ["b", "c", "e", "f"]);
        assert_eq!(cut, 0);
        // Rebuilt starts: each case after the durations of those before it.
        let offsets: Vec<u64> = kept.iter().map(|k| k.offset.as_millis() as u64).collect();
        assert_eq!(offsets, [10, 11, 531, 533]);
    }

    #[test]
    fn of_equally_slow_cases_the_earliest_stay() {
        let mut choice = Choice::new(TraceCases::Notable);
        for name in ["a", "b", "c", "d"] {
            choice.add(&case(name, Outcome::Passed, 5), 100, 2);
        }
        choice.add(&case("e", Outcome::Passed, 6), 100, 2);
        assert_eq!(names(&choice.finish(100).0), ["a", "e"]);
    }

    #[test]
    fn the_cap_cuts_and_counts() {
        let mut all = Choice::new(TraceCases::All);
        for i in 0..10 {
            all.add(&case(&format!("t{i}"), Outcome::Passed, 1), 4, 5);
        }
        let (kept, cut) = all.finish(4);
        assert_eq!(names(&kept), ["t0", "t1", "t2", "t3"]);
        assert_eq!(cut, 6);

        let mut notable = Choice::new(TraceCases::Notable);
        for i in 0..3 {
            notable.add(&case(&format!("f{i}"), Outcome::Failed, 1), 3, 2);
        }
        notable.add(&case("slow", Outcome::Passed, 900), 3, 2);
        let (kept, cut) = notable.finish(3);
        assert_eq!(names(&kept), ["f0", "f1", "f2"]);
        assert_eq!(cut, 1, "the slowest case found no room");

        let mut none = Choice::new(TraceCases::None);
        none.add(&case("x", Outcome::Failed, 1), 3, 2);
        assert!(none.finish(3).0.is_empty());
    }
}
