//! `testmeter gate`: evaluates declared SLOs, either on the samples of a run the gate just made
//! (a small PromQL evaluator for the forms SLOs take) or on a live Prometheus, so a rollout can
//! stop on a breach. No data is never a pass.

use std::collections::BTreeMap;

use promql_parser::parser::{Expr, LabelModifier};
use serde::Serialize;

use super::live::{LiveError, Prometheus};
use super::model::{Contract, ContractSlo};
use super::promql;
use crate::catalog::{MetricKind, Sample, SampleValues};

/// What an SLO's condition says.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// The condition is empty: the objective holds.
    Met,
    /// The condition returns series: the objective is breached.
    Breached { series: Vec<String> },
    /// It could not be decided; a gate treats this as a failure.
    Unknown { reason: String },
}

#[derive(Debug, Clone, Serialize)]
pub struct SloResult {
    pub slo: String,
    pub plugin: String,
    pub severity: String,
    pub expr: String,
    #[serde(flatten)]
    pub verdict: Verdict,
    /// What the SLO measures, met or not: the value of the side of its comparison that is not
    /// the threshold. Filled when the gate evaluates a run; Prometheus is not asked for it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub observed: Vec<Observed>,
}

/// One series of what an SLO measures, with its value in the run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Observed {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// The SLOs to gate on: those named, or all when none are named. Unknown names are errors.
pub fn select<'a>(
    contract: &'a Contract,
    names: &[String],
) -> Result<Vec<&'a ContractSlo>, String> {
    if names.is_empty() {
        return Ok(contract.slos.iter().collect());
    }
    names
        .iter()
        .map(|name| {
            contract
                .slos
                .iter()
                .find(|slo| &slo.decl.name == name)
                .ok_or_else(|| {
                    let known: Vec<&str> =
                        contract.slos.iter().map(|s| s.decl.name.as_str()).collect();
                    format!("no SLO named {name}; declared: {}", known.join(", "))
                })
        })
        .collect()
}

fn result(slo: &ContractSlo, verdict: Verdict) -> SloResult {
    SloResult {
        slo: slo.decl.name.clone(),
        plugin: slo.plugin.clone(),
        severity: slo.decl.severity.clone(),
        expr: slo.decl.expr.clone(),
        verdict,
        observed: Vec::new(),
    }
}

/// Evaluates each SLO on a live Prometheus: a non-empty result is a breach.
pub fn evaluate_live(
    prometheus: &Prometheus,
    slos: &[&ContractSlo],
) -> Result<Vec<SloResult>, LiveError> {
    let mut out = Vec::new();
    for slo in slos {
        let verdict = if prometheus.has_data(&slo.decl.expr)? {
            Verdict::Breached {
                series: vec!["(see Prometheus)".to_owned()],
            }
        } else {
            // Empty can also mean the watched series is missing: that is not a pass.
            let Ok(expr) = promql::parse(&slo.decl.expr) else {
                out.push(result(
                    slo,
                    Verdict::Unknown {
                        reason: "does not parse".to_owned(),
                    },
                ));
                continue;
            };
            let mut missing = Vec::new();
            for selector in promql::selectors(&expr) {
                let bare = promql::current_selector(selector);
                if !prometheus.has_data(&format!("count({bare})"))? {
                    missing.push(bare);
                }
            }
            if missing.is_empty() {
                Verdict::Met
            } else {
                Verdict::Unknown {
                    reason: format!("no recent samples of {}", missing.join(", ")),
                }
            }
        };
        out.push(result(slo, verdict));
    }
    Ok(out)
}

/// A label set and its value.
type Series = (BTreeMap<String, String>, f64);

/// A label set and every value the run gave it.
type RunSeries = (BTreeMap<String, String>, SeriesValues);

/// A series' values in a run: one by one, and a histogram's counted observations per bucket.
#[derive(Debug, Default)]
struct SeriesValues {
    values: Vec<f64>,
    counted: Vec<u64>,
}

impl SeriesValues {
    fn add(&mut self, values: &SampleValues) {
        match values {
            SampleValues::Values(values) => self.values.extend(values),
            SampleValues::Histogram(counts) => {
                if self.counted.len() < counts.bucket_counts.len() {
                    self.counted.resize(counts.bucket_counts.len(), 0);
                }
                for (total, count) in self.counted.iter_mut().zip(&counts.bucket_counts) {
                    *total = total.saturating_add(*count);
                }
            }
        }
    }
}

/// What a selector picked from the run: the metric's kind, its series, and whether the
/// selector named the `_bucket` series of a histogram.
struct Selected<'r> {
    kind: MetricKind,
    series: Vec<&'r RunSeries>,
    bucket: bool,
}

#[derive(Debug, Clone)]
enum Value {
    Scalar(f64),
    Vector(Vec<Series>),
}

/// The samples of one run, by metric, with each label set's values.
pub struct RunSamples<'a> {
    contract: &'a Contract,
    by_metric: BTreeMap<&'a str, Vec<RunSeries>>,
}

impl<'a> RunSamples<'a> {
    /// Groups the run's samples by metric and label set, with each label set's values.
    pub fn new(contract: &'a Contract, samples: impl IntoIterator<Item = &'a Sample>) -> Self {
        let mut by_metric: BTreeMap<&str, Vec<RunSeries>> = BTreeMap::new();
        for sample in samples {
            let labels: BTreeMap<String, String> = sample.labels.iter().cloned().collect();
            let series = by_metric.entry(sample.metric.as_str()).or_default();
            let index = match series.iter().position(|(l, _)| *l == labels) {
                Some(index) => index,
                None => {
                    series.push((labels, SeriesValues::default()));
                    series.len() - 1
                }
            };
            series[index].1.add(&sample.values);
        }
        Self {
            contract,
            by_metric,
        }
    }

    fn selected(
        &self,
        selector: &promql_parser::parser::VectorSelector,
    ) -> Result<Selected<'_>, String> {
        let name = promql::metric_name(selector).ok_or("a selector without a metric name")?;
        let (metric_name, bucket) = match name.strip_suffix("_bucket") {
            Some(base) if self.contract.series(name).is_some() => (base, true),
            _ => (name, false),
        };
        let metric = self
            .contract
            .metrics
            .get(metric_name)
            .ok_or_else(|| format!("{name} is not declared"))?;
        let series = self
            .by_metric
            .get(metric_name)
            .map(|series| {
                series
                    .iter()
                    .filter(|(labels, _)| {
                        selector.matchers.matchers.iter().all(|m| {
                            m.name == "__name__"
                                || m.is_match(labels.get(&m.name).map_or("", String::as_str))
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Selected {
            kind: metric.decl.kind,
            series,
            bucket,
        })
    }

    /// The measured side of a comparison with a number (`x > 50`, `90 > x`): what the SLO
    /// watches, whether or not it is breached. Empty for other forms.
    fn observe(&self, expr: &Expr) -> Vec<Observed> {
        let expr = unparen(expr);
        let Expr::Binary(binary) = expr else {
            return Vec::new();
        };
        let comparison = matches!(
            binary.op.to_string().as_str(),
            "<" | "<=" | ">" | ">=" | "==" | "!="
        );
        if !comparison || binary.modifier.as_ref().is_some_and(|m| m.return_bool) {
            return Vec::new();
        }
        let measured = match (unparen(&binary.lhs), unparen(&binary.rhs)) {
            (side, Expr::NumberLiteral(_)) | (Expr::NumberLiteral(_), side) => side,
            _ => return Vec::new(),
        };
        match self.eval(measured) {
            Ok(Value::Vector(series)) => series
                .into_iter()
                .map(|(labels, value)| Observed { labels, value })
                .collect(),
            Ok(Value::Scalar(value)) => vec![Observed {
                labels: BTreeMap::new(),
                value,
            }],
            Err(_) => Vec::new(),
        }
    }

    fn eval(&self, expr: &Expr) -> Result<Value, String> {
        match expr {
            Expr::NumberLiteral(n) => Ok(Value::Scalar(n.val)),
            Expr::Paren(p) => self.eval(&p.expr),
            Expr::VectorSelector(selector) => {
                let Selected {
                    kind,
                    series,
                    bucket,
                } = self.selected(selector)?;
                if bucket || kind == MetricKind::Histogram {
                    return Err("a histogram outside histogram_quantile()".to_owned());
                }
                Ok(Value::Vector(
                    series
                        .into_iter()
                        .filter_map(|(labels, series)| {
                            let value = match kind {
                                // A counter's increase over the run; a gauge's last value.
                                MetricKind::Counter => series.values.iter().sum(),
                                _ => *series.values.last()?,
                            };
                            Some((labels.clone(), value))
                        })
                        .collect(),
                ))
            }
            Expr::Binary(binary) => {
                let op = binary.op.to_string();
                let lhs = self.eval(&binary.lhs)?;
                let rhs = self.eval(&binary.rhs)?;
                let apply = |a: f64, b: f64| -> Option<f64> {
                    match op.as_str() {
                        "+" => Some(a + b),
                        "-" => Some(a - b),
                        "*" => Some(a * b),
                        "/" => Some(a / b),
                        "<" => (a < b).then_some(a),
                        "<=" => (a <= b).then_some(a),
                        ">" => (a > b).then_some(a),
                        ">=" => (a >= b).then_some(a),
                        "==" => (a == b).then_some(a),
                        "!=" => (a != b).then_some(a),
                        _ => None,
                    }
                };
                if !matches!(
                    op.as_str(),
                    "+" | "-" | "*" | "/" | "<" | "<=" | ">" | ">=" | "==" | "!="
                ) || binary.modifier.as_ref().is_some_and(|m| m.return_bool)
                {
                    return Err(format!("operator {op} needs Prometheus"));
                }
                match (lhs, rhs) {
                    (Value::Scalar(a), Value::Scalar(b)) => apply(a, b)
                        .map(Value::Scalar)
                        .ok_or_else(|| "an empty scalar comparison".to_owned()),
                    (Value::Vector(v), Value::Scalar(b)) => Ok(Value::Vector(
                        v.into_iter()
                            .filter_map(|(l, a)| apply(a, b).map(|x| (l, x)))
                            .collect(),
                    )),
                    (Value::Scalar(a), Value::Vector(v)) => Ok(Value::Vector(
                        v.into_iter()
                            .filter_map(|(l, b)| apply(a, b).map(|x| (l, x)))
                            .collect(),
                    )),
                    (Value::Vector(_), Value::Vector(_)) => {
                        Err("an operation between two vectors needs Prometheus".to_owned())
                    }
                }
            }
            Expr::Call(call) if call.func.name == "histogram_quantile" => self.quantile(call),
            _ => Err(format!("{expr} needs Prometheus")),
        }
    }

    /// `histogram_quantile(q, [sum by (le, ...)] (rate(x_bucket[w])))` on this run's
    /// observations, interpolated within the declared buckets as Prometheus does.
    fn quantile(&self, call: &promql_parser::parser::Call) -> Result<Value, String> {
        let unsupported = || "this histogram_quantile() form needs Prometheus".to_owned();
        let [q, inner] = call.args.args.as_slice() else {
            return Err(unsupported());
        };
        let q = match self.eval(q)? {
            Value::Scalar(q) => q,
            Value::Vector(_) => return Err(unsupported()),
        };
        let mut inner: &Expr = inner;
        let mut by: Option<Vec<String>> = None;
        loop {
            match inner {
                Expr::Paren(p) => inner = &p.expr,
                Expr::Aggregate(aggregate) if aggregate.op.to_string() == "sum" => {
                    by = match &aggregate.modifier {
                        Some(LabelModifier::Include(labels)) => Some(labels.labels.clone()),
                        None => Some(Vec::new()),
                        Some(LabelModifier::Exclude(_)) => return Err(unsupported()),
                    };
                    inner = &aggregate.expr;
                }
                Expr::Call(rate) if matches!(rate.func.name, "rate" | "increase") => {
                    match rate.args.args.first().map(|a| a.as_ref()) {
                        Some(Expr::MatrixSelector(matrix)) => {
                            return self.quantile_of(q, &matrix.vs, by.as_deref());
                        }
                        _ => return Err(unsupported()),
                    }
                }
                _ => return Err(unsupported()),
            }
        }
    }

    fn quantile_of(
        &self,
        q: f64,
        selector: &promql_parser::parser::VectorSelector,
        by: Option<&[String]>,
    ) -> Result<Value, String> {
        let Selected {
            kind,
            series,
            bucket,
        } = self.selected(selector)?;
        if kind != MetricKind::Histogram || !bucket {
            return Err(
                "histogram_quantile() over something other than a _bucket series".to_owned(),
            );
        }
        let name = promql::metric_name(selector).unwrap_or_default();
        let buckets = self
            .contract
            .series(name)
            .map(|s| s.metric.decl.buckets.clone())
            .unwrap_or_default();
        let mut groups: BTreeMap<BTreeMap<String, String>, BucketCounts> = BTreeMap::new();
        for (labels, values) in series {
            let key = match by {
                Some(by) => labels
                    .iter()
                    .filter(|(k, _)| by.contains(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                None => labels.clone(),
            };
            groups
                .entry(key)
                .or_insert_with(|| BucketCounts::new(&buckets))
                .add_series(&buckets, values);
        }
        Ok(Value::Vector(
            groups
                .into_iter()
                .filter(|(_, counts)| counts.total > 0)
                .map(|(labels, counts)| (labels, counts.quantile(q, &buckets)))
                .collect(),
        ))
    }
}

fn unparen(mut expr: &Expr) -> &Expr {
    while let Expr::Paren(p) = expr {
        expr = &p.expr;
    }
    expr
}

/// Observations counted into ascending `bounds` as a histogram does, in one pass over them.
struct BucketCounts {
    /// Observations in each bucket (not cumulative); the last is +Inf, NaN included.
    buckets: Vec<u64>,
    total: u64,
}

impl BucketCounts {
    fn new(bounds: &[f64]) -> Self {
        BucketCounts {
            buckets: vec![0; bounds.len() + 1],
            total: 0,
        }
    }

    /// Counts a series' observations and adds the ones its plugin counted.
    fn add_series(&mut self, bounds: &[f64], series: &SeriesValues) {
        for (total, count) in self.buckets.iter_mut().zip(&series.counted) {
            *total += count;
            self.total += count;
        }
        self.observe(bounds, &series.values);
    }

    fn observe(&mut self, bounds: &[f64], observations: &[f64]) {
        for &value in observations {
            // The first bucket whose bound is at least the value; NaN is `<=` no bound.
            let index = if value.is_nan() {
                bounds.len()
            } else {
                bounds.partition_point(|bound| *bound < value)
            };
            self.buckets[index] += 1;
        }
        self.total += observations.len() as u64;
    }

    /// Prometheus' `histogram_quantile` over these counts (+Inf implied): linear
    /// interpolation inside the bucket holding rank `q × count`, the first bucket starting at
    /// 0, and the last finite bound when the rank falls into +Inf.
    fn quantile(&self, q: f64, bounds: &[f64]) -> f64 {
        if q.is_nan() || self.total == 0 {
            return f64::NAN;
        }
        if q < 0.0 {
            return f64::NEG_INFINITY;
        }
        if q > 1.0 {
            return f64::INFINITY;
        }
        let counts: Vec<f64> = self.buckets[..bounds.len()]
            .iter()
            .scan(0u64, |below, count| {
                *below += count;
                Some(*below as f64)
            })
            .collect();
        quantile_of_counts(q, bounds, &counts, self.total as f64)
    }
}

/// The interpolation of [`BucketCounts::quantile`] over cumulative counts per finite bound.
fn quantile_of_counts(q: f64, bounds: &[f64], counts: &[f64], total: f64) -> f64 {
    let rank = q * total;
    let Some(index) = counts.iter().position(|count| *count >= rank) else {
        return bounds.last().copied().unwrap_or(f64::NAN);
    };
    let (lower, below) = if index == 0 {
        (0.0_f64.min(bounds[0]), 0.0)
    } else {
        (bounds[index - 1], counts[index - 1])
    };
    let inside = counts[index] - below;
    if inside == 0.0 {
        return bounds[index];
    }
    lower + (bounds[index] - lower) * (rank - below) / inside
}

fn describe(labels: &BTreeMap<String, String>, value: f64) -> String {
    let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}} {value}", labels.join(","))
}

/// Evaluates each SLO on one run's samples.
pub fn evaluate_run(run: &RunSamples<'_>, slos: &[&ContractSlo]) -> Vec<SloResult> {
    slos.iter()
        .map(|slo| match promql::parse(&slo.decl.expr) {
            Err(error) => result(
                slo,
                Verdict::Unknown {
                    reason: format!("does not parse: {error}"),
                },
            ),
            Ok(expr) => {
                let watched_present = promql::selectors(&expr)
                    .iter()
                    .all(|selector| run.selected(selector).is_ok_and(|s| !s.series.is_empty()));
                let verdict = match run.eval(&expr) {
                    Err(reason) => Verdict::Unknown { reason },
                    Ok(_) if !watched_present => Verdict::Unknown {
                        reason: "the latest run produced no samples for it".to_owned(),
                    },
                    Ok(Value::Vector(v)) if v.is_empty() => Verdict::Met,
                    Ok(Value::Vector(v)) => Verdict::Breached {
                        series: v.iter().map(|(l, x)| describe(l, *x)).collect(),
                    },
                    Ok(Value::Scalar(x)) => Verdict::Breached {
                        series: vec![x.to_string()],
                    },
                };
                SloResult {
                    observed: run.observe(&expr),
                    ..result(slo, verdict)
                }
            }
        })
        .collect()
}

/// The gate's report: one line per SLO and a verdict line.
pub fn render(results: &[SloResult]) -> String {
    let mut out = String::new();
    for r in results {
        let (mark, detail) = match &r.verdict {
            Verdict::Met => ("✓", "met".to_owned()),
            Verdict::Breached { series } => ("✗", format!("BREACHED: {}", series.join("; "))),
            Verdict::Unknown { reason } => ("?", format!("unknown: {reason}")),
        };
        out.push_str(&format!(
            "{mark} {} ({}, plugin {}): {detail}\n    {}\n",
            r.slo, r.severity, r.plugin, r.expr
        ));
    }
    let breached = results
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Breached { .. }))
        .count();
    let unknown = results
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Unknown { .. }))
        .count();
    out.push_str(&format!(
        "gate: {} SLO(s), {breached} breached, {unknown} unknown: {}\n",
        results.len(),
        if breached > 0 {
            "STOP"
        } else if unknown > 0 {
            "STOP (cannot decide)"
        } else {
            "PROCEED"
        }
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket_quantile(q: f64, bounds: &[f64], observations: &[f64]) -> f64 {
        let mut counts = BucketCounts::new(bounds);
        counts.observe(bounds, observations);
        counts.quantile(q, bounds)
    }

    #[test]
    fn quantiles_interpolate_like_prometheus() {
        let bounds = [10.0, 30.0, 60.0];
        // All in (30, 60]: p95 = 30 + 30 × 0.95.
        assert!((bucket_quantile(0.95, &bounds, &[40.0; 20]) - 58.5).abs() < 1e-9);
        // All in the first bucket: from 0.
        assert!((bucket_quantile(0.5, &bounds, &[1.0, 2.0]) - 5.0).abs() < 1e-9);
        // Past the last bound: the last finite bound.
        assert_eq!(bucket_quantile(0.99, &bounds, &[100.0; 4]), 60.0);
        assert!(bucket_quantile(0.5, &bounds, &[]).is_nan());
    }

    #[test]
    fn one_pass_counts_match_counting_each_bound() {
        let bounds = [0.5, 1.0, 2.5, 10.0];
        // On the bounds, between them, outside them, and the values no bucket holds.
        let mut values = vec![
            0.5,
            1.0,
            10.0,
            -3.0,
            f64::NEG_INFINITY,
            f64::INFINITY,
            f64::NAN,
            11.0,
        ];
        values.extend((0..200).map(|i| f64::from(i) * 0.07));
        let mut counts = BucketCounts::new(&bounds);
        counts.observe(&bounds, &values[..5]);
        counts.observe(&bounds, &values[5..]);
        // Prometheus' cumulative `le` counts, counted bound by bound.
        let cumulative: Vec<f64> = bounds
            .iter()
            .map(|bound| values.iter().filter(|v| **v <= *bound).count() as f64)
            .collect();
        for (index, expected) in cumulative.iter().enumerate() {
            let at_most: u64 = counts.buckets[..=index].iter().sum();
            assert_eq!(
                at_most as f64, *expected,
                "observations <= {}",
                bounds[index]
            );
        }
        assert_eq!(counts.total, values.len() as u64);
        for q in [0.0, 0.1, 0.5, 0.9, 0.95, 0.99, 1.0] {
            let expected = quantile_of_counts(q, &bounds, &cumulative, values.len() as f64);
            assert_eq!(counts.quantile(q, &bounds), expected, "q = {q}");
        }
    }
}
