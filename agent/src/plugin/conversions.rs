//! Every conversion between the host model and the current WIT types: a run's start and end
//! and its cases into borrowed `run-start`, `run-end` and `test-case` records, and
//! `plugin-info` and `sample` back into catalog types. Older WIT versions are adapted to these
//! types in `compat`.

use quick_junit::{NonSuccessKind, TestCaseStatus};
use testmeter_parse::CaseView;
use wasmtime::component::{ComponentType, Lower};

use super::bindings::v0_4::testmeter::plugin::types as wit;
use crate::catalog::{
    HistogramCounts, MetricDecl, MetricKind, PluginDecl, Sample, SampleValues, SloDecl,
};
use crate::model::{Artifact, Outcome, SuiteRun};

/// The optional fields of a case a plugin reads (`case-fields` in wit/plugin.wit). The host
/// fills only these, and reads only what some plugin of a system reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reads {
    pub message: bool,
    pub properties: bool,
    pub system_out: bool,
    pub system_err: bool,
}

impl Reads {
    /// What plugins built against WIT versions without `reads` receive: everything.
    pub const ALL: Reads = Reads {
        message: true,
        properties: true,
        system_out: true,
        system_err: true,
    };

    /// Whatever either reads.
    pub fn union(self, other: Reads) -> Reads {
        Reads {
            message: self.message || other.message,
            properties: self.properties || other.properties,
            system_out: self.system_out || other.system_out,
            system_err: self.system_err || other.system_err,
        }
    }

    /// Whether captured output (`system-out` or `system-err`) is read.
    pub fn output(self) -> bool {
        self.system_out || self.system_err
    }

    /// The parts of a report the parser has to keep for these reads.
    pub fn fields(self) -> testmeter_parse::Fields {
        testmeter_parse::Fields {
            properties: self.properties,
            output: self.output(),
            // No WIT version hands failure texts to plugins.
            descriptions: false,
        }
    }

    /// The names of the fields, for logs and `testmeter plugins`.
    pub fn names(self) -> Vec<&'static str> {
        [
            (self.message, "message"),
            (self.properties, "properties"),
            (self.system_out, "system-out"),
            (self.system_err, "system-err"),
        ]
        .into_iter()
        .filter_map(|(read, name)| read.then_some(name))
        .collect()
    }
}

impl From<wit::CaseFields> for Reads {
    fn from(flags: wit::CaseFields) -> Self {
        Reads {
            message: flags.contains(wit::CaseFields::MESSAGE),
            properties: flags.contains(wit::CaseFields::PROPERTIES),
            system_out: flags.contains(wit::CaseFields::SYSTEM_OUT),
            system_err: flags.contains(wit::CaseFields::SYSTEM_ERR),
        }
    }
}

/// Where a string of a batch is (`span`).
#[derive(ComponentType, Lower, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[component(record)]
pub struct Span {
    pub start: u32,
    pub length: u32,
}

/// One `<property>` of a case (`property`).
#[derive(ComponentType, Lower, Debug, Clone, Copy, PartialEq, Eq)]
#[component(record)]
pub struct PropertyRecord {
    pub name: Span,
    pub value: Span,
}

/// One test case of a batch (`test-case`), its strings spans of the batch's text.
#[derive(ComponentType, Lower, Debug, Clone, Copy)]
#[component(record)]
pub struct CaseRecord {
    pub suite: Span,
    pub classname: Span,
    pub name: Span,
    pub outcome: wit::Outcome,
    /// `None` when the report gave the case no time.
    #[component(name = "duration-seconds")]
    pub duration_seconds: Option<f64>,
    pub attempts: u32,
    pub flaky: bool,
    pub message: Option<Span>,
    #[component(name = "first-property")]
    pub first_property: u32,
    #[component(name = "property-count")]
    pub property_count: u32,
    #[component(name = "system-out")]
    pub system_out: Option<Span>,
    #[component(name = "system-err")]
    pub system_err: Option<Span>,
}

/// A batch as `feed` receives it (`case-batch`), borrowed from a [`CaseBatch`].
#[derive(ComponentType, Lower)]
#[component(record)]
pub struct CaseBatchInput<'a> {
    pub text: &'a str,
    pub cases: &'a [CaseRecord],
    pub properties: &'a [PropertyRecord],
}

/// Consecutive cases of a run in the columnar form plugins receive them in: one text for all
/// their strings, so lowering a batch into a plugin is three allocations there, however many
/// cases it holds. Built on the parser's thread, one per set of [`Reads`] among the plugins.
#[derive(Debug, Default)]
pub struct CaseBatch {
    pub text: String,
    pub cases: Vec<CaseRecord>,
    pub properties: Vec<PropertyRecord>,
    /// The latest suite and classname, whose spans the next case usually shares.
    last_suite: Option<Span>,
    last_classname: Option<Span>,
}

impl CaseBatch {
    /// Appends one case of suite `suite`, with the optional fields `reads` asks for.
    pub fn push(&mut self, suite: &str, case: &CaseView<'_>, reads: Reads) {
        let (outcome, attempts, flaky, message) = outcome_of(case.status);
        let outcome = wit_outcome(outcome);
        let suite = match self.last_suite {
            Some(span) if self.text_of(span) == suite => span,
            _ => self.append(suite),
        };
        self.last_suite = Some(suite);
        let classname = case.classname.unwrap_or("");
        let classname = match self.last_classname {
            Some(span) if self.text_of(span) == classname => span,
            _ => self.append(classname),
        };
        self.last_classname = Some(classname);
        let name = self.append(case.name);
        let message = message
            .filter(|_| reads.message)
            .map(|message| self.append(message));
        let first_property = u32::try_from(self.properties.len()).unwrap_or(u32::MAX);
        let mut property_count = 0u32;
        if reads.properties {
            for (name, value) in case.properties.iter() {
                let name = self.append(name);
                let value = self.append(value);
                self.properties.push(PropertyRecord { name, value });
                property_count = property_count.saturating_add(1);
            }
        }
        let system_out = match case.system_out {
            Some(text) if reads.system_out => Some(self.append(text)),
            _ => None,
        };
        let system_err = match case.system_err {
            Some(text) if reads.system_err => Some(self.append(text)),
            _ => None,
        };
        self.cases.push(CaseRecord {
            suite,
            classname,
            name,
            outcome,
            duration_seconds: case.time.map(|t| t.as_secs_f64()),
            attempts,
            flaky,
            message,
            first_property,
            property_count,
            system_out,
            system_err,
        });
    }

    /// An empty batch with room for as much as `other` holds.
    pub fn sized_like(other: &CaseBatch) -> CaseBatch {
        CaseBatch {
            text: String::with_capacity(other.text.len()),
            cases: Vec::with_capacity(other.cases.len()),
            properties: Vec::with_capacity(other.properties.len()),
            last_suite: None,
            last_classname: None,
        }
    }

    /// Bytes of text so far.
    pub fn text_len(&self) -> usize {
        self.text.len()
    }

    /// The batch as `feed` lowers it.
    pub fn input(&self) -> CaseBatchInput<'_> {
        CaseBatchInput {
            text: &self.text,
            cases: &self.cases,
            properties: &self.properties,
        }
    }

    /// The text a span of this batch refers to.
    pub fn text_of(&self, span: Span) -> &str {
        let start = span.start as usize;
        self.text
            .get(start..start.saturating_add(span.length as usize))
            .unwrap_or("")
    }

    /// The properties of a case of this batch.
    pub fn properties_of(&self, case: &CaseRecord) -> &[PropertyRecord] {
        let first = case.first_property as usize;
        self.properties
            .get(first..first.saturating_add(case.property_count as usize))
            .unwrap_or(&[])
    }

    fn append(&mut self, text: &str) -> Span {
        // A batch is cut at about a MiB; only one string of 4 GiB or more would not fit.
        let start = u32::try_from(self.text.len()).unwrap_or(u32::MAX);
        let length = u32::try_from(text.len()).unwrap_or(u32::MAX);
        self.text.push_str(text);
        Span { start, length }
    }
}

/// A file the suite wrote (`artifact`), borrowed.
#[derive(ComponentType, Lower)]
#[component(record)]
pub struct ArtifactInput<'a> {
    pub name: &'a str,
    pub content: &'a [u8],
    pub fresh: bool,
}

/// What a plugin's derivation is made with (`run-start`), borrowed from the run. Field names
/// and order are checked against the plugin's export when the call is typed, so a drift from
/// the WIT fails loudly, never silently.
#[derive(ComponentType, Lower)]
#[component(record)]
pub struct RunStartInput<'a> {
    pub suite: &'a str,
    pub system: &'a str,
    #[component(name = "exit-code")]
    pub exit_code: Option<i32>,
    #[component(name = "peak-rss-bytes")]
    pub peak_rss_bytes: Option<u64>,
    pub labels: Vec<(&'a str, &'a str)>,
    pub artifacts: Vec<ArtifactInput<'a>>,
}

/// What a derivation's `finish` receives (`run-end`).
#[derive(ComponentType, Lower)]
#[component(record)]
pub struct RunEndInput<'a> {
    #[component(name = "started-unix-ms")]
    pub started_unix_ms: u64,
    #[component(name = "duration-seconds")]
    pub duration_seconds: f64,
    pub properties: Vec<(&'a str, &'a str)>,
    pub partial: Option<&'a str>,
}

/// The start of `run`, borrowing every string from it.
pub fn run_start(run: &SuiteRun) -> RunStartInput<'_> {
    RunStartInput {
        suite: &run.suite,
        system: &run.system,
        exit_code: run.exit_code,
        peak_rss_bytes: run.peak_rss_bytes,
        labels: run
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect(),
        artifacts: run.artifacts.iter().map(artifact).collect(),
    }
}

fn artifact(artifact: &Artifact) -> ArtifactInput<'_> {
    ArtifactInput {
        name: &artifact.name,
        content: &artifact.content,
        fresh: artifact.fresh,
    }
}

/// A case's outcome as the current WIT has it.
fn wit_outcome(outcome: Outcome) -> wit::Outcome {
    match outcome {
        Outcome::Passed => wit::Outcome::Passed,
        Outcome::Failed => wit::Outcome::Failed,
        Outcome::Errored => wit::Outcome::Errored,
        Outcome::Skipped => wit::Outcome::Skipped,
    }
}

/// The final outcome, attempts, flakiness and message of a case with this status.
pub fn outcome_of(status: &TestCaseStatus) -> (Outcome, u32, bool, Option<&str>) {
    let (outcome, attempts, flaky, message) = match status {
        TestCaseStatus::Success { flaky_runs } => (
            Outcome::Passed,
            1 + flaky_runs.len(),
            !flaky_runs.is_empty(),
            None,
        ),
        TestCaseStatus::NonSuccess {
            kind,
            message,
            reruns,
            ..
        } => (
            match kind {
                NonSuccessKind::Failure => Outcome::Failed,
                NonSuccessKind::Error => Outcome::Errored,
            },
            1 + reruns.runs.len(),
            false,
            message.as_ref(),
        ),
        TestCaseStatus::Skipped { message, .. } => (Outcome::Skipped, 1, false, message.as_ref()),
    };
    (
        outcome,
        u32::try_from(attempts).unwrap_or(u32::MAX),
        flaky,
        message.map(|m| m.as_str()),
    )
}

impl From<wit::MetricKind> for MetricKind {
    fn from(kind: wit::MetricKind) -> Self {
        match kind {
            wit::MetricKind::Counter => MetricKind::Counter,
            wit::MetricKind::Gauge => MetricKind::Gauge,
            wit::MetricKind::Histogram => MetricKind::Histogram,
        }
    }
}

impl From<wit::PluginInfo> for PluginDecl {
    fn from(info: wit::PluginInfo) -> Self {
        PluginDecl {
            name: info.name,
            version: info.version,
            systems: info.systems,
            metrics: info
                .metrics
                .into_iter()
                .map(|m| MetricDecl {
                    name: m.name,
                    kind: m.kind.into(),
                    unit: m.unit,
                    description: m.description,
                    label_keys: m.label_keys,
                    buckets: m.buckets,
                })
                .collect(),
            slos: info
                .slos
                .into_iter()
                .map(|s| SloDecl {
                    name: s.name,
                    expr: s.expr,
                    for_seconds: s.for_seconds,
                    severity: s.severity,
                    summary: s.summary,
                })
                .collect(),
        }
    }
}

impl From<wit::Sample> for Sample {
    fn from(sample: wit::Sample) -> Self {
        Sample {
            metric: sample.metric,
            labels: sample.labels,
            values: match sample.values {
                wit::SampleValues::Values(values) => SampleValues::Values(values),
                wit::SampleValues::Histogram(counts) => SampleValues::Histogram(HistogramCounts {
                    bucket_counts: counts.bucket_counts,
                    sum: counts.sum,
                    min: counts.min,
                    max: counts.max,
                }),
            },
        }
    }
}
