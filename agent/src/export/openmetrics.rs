//! `/metrics` in the OpenMetrics text format, for a scraper that asks for it: every family the
//! classic format serves, with the duration histograms the agent records carrying the trace of
//! the run they observed as an exemplar. Written by `prometheus-client`: the `prometheus` crate
//! under `opentelemetry-prometheus` writes neither OpenMetrics nor exemplars, and the
//! OpenTelemetry SDK records none (docs/architecture.md).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use prometheus::proto::{Metric, MetricFamily, MetricType as Classic};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::model::TraceContext;

/// The content type of [`OpenMetrics::exposition`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A series' labels, in the order the classic exposition gives them.
type Labels = Vec<(String, String)>;

/// The histograms that carry exemplars, recorded a second time here (the first is through
/// OpenTelemetry, for OTLP and the classic text) from the same call, so both hold the same
/// observations.
#[derive(Debug)]
pub struct Exemplars {
    buckets: BTreeMap<&'static str, &'static [f64]>,
    series: Mutex<BTreeMap<(&'static str, Labels), HistogramWithExemplars<Labels>>>,
}

impl Exemplars {
    /// Exemplars for the histograms `(name, bucket bounds)`.
    pub fn new(histograms: &[(&'static str, &'static [f64])]) -> Self {
        Exemplars {
            buckets: histograms.iter().copied().collect(),
            series: Mutex::default(),
        }
    }

    /// Observes `value` in the series `labels` of histogram `name`, with the trace of the run
    /// that made it as the exemplar of its bucket when there is one.
    pub fn observe(
        &self,
        name: &'static str,
        labels: &[(&str, &str)],
        value: f64,
        trace: Option<&TraceContext>,
    ) {
        let Some(bounds) = self.buckets.get(name) else {
            return;
        };
        let labels: Labels = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let exemplar = trace.map(|trace| {
            vec![
                ("trace_id".to_owned(), trace.trace_hex()),
                ("span_id".to_owned(), format!("{:016x}", trace.span_id)),
            ]
        });
        let mut series = self.series.lock().unwrap_or_else(PoisonError::into_inner);
        series
            .entry((name, labels))
            .or_insert_with(|| HistogramWithExemplars::new(bounds.iter().copied()))
            .observe(value, exemplar, Some(SystemTime::now()));
    }

    fn carries(&self, name: &str) -> bool {
        self.buckets.contains_key(name)
    }

    /// Encodes the series of histogram `name` that the classic family also has.
    fn encode(
        &self,
        name: &str,
        help: &str,
        family: &MetricFamily,
        encoder: &mut DescriptorEncoder,
    ) -> fmt::Result {
        let Some((&name, _)) = self.buckets.get_key_value(name) else {
            return Ok(());
        };
        let series = self.series.lock().unwrap_or_else(PoisonError::into_inner);
        let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
        for classic in family.get_metric() {
            let key = (name, labels(classic));
            let encoder = metric.encode_family(&key.1)?;
            match series.get(&key) {
                Some(histogram) => histogram.encode(encoder)?,
                None => classic_histogram(classic, encoder)?,
            }
        }
        Ok(())
    }
}

fn labels(metric: &Metric) -> Labels {
    metric
        .label
        .iter()
        .map(|pair| (pair.name().to_owned(), pair.value().to_owned()))
        .collect()
}

/// A histogram of the classic registry, without exemplars.
fn classic_histogram(
    metric: &Metric,
    mut encoder: prometheus_client::encoding::MetricEncoder<'_>,
) -> fmt::Result {
    let histogram = &metric.histogram;
    // The classic buckets are cumulative and leave +Inf implicit; OpenMetrics' encoder takes
    // each bucket's own count and +Inf as the last.
    let mut below = 0;
    let mut buckets: Vec<(f64, u64)> = histogram
        .bucket
        .iter()
        .filter(|b| b.upper_bound().is_finite())
        .map(|b| {
            let own = b.cumulative_count().saturating_sub(below);
            below = b.cumulative_count();
            (b.upper_bound(), own)
        })
        .collect();
    buckets.push((
        f64::INFINITY,
        histogram.sample_count().saturating_sub(below),
    ));
    encoder.encode_histogram::<NoLabelSet>(
        histogram.sample_sum(),
        histogram.sample_count(),
        &buckets,
        None,
    )
}

/// Help text as OpenMetrics escapes it.
fn escape(help: &str) -> String {
    help.replace('\\', "\\\\")
        .replace('\n', "\\n")
        .replace('"', "\\\"")
}

/// The classic registry, family by family, as OpenMetrics.
#[derive(Debug)]
struct Bridge {
    classic: prometheus::Registry,
    exemplars: Arc<Exemplars>,
}

impl Collector for Bridge {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        for family in self.classic.gather() {
            let name = family.name();
            let help = escape(family.help());
            match family.get_field_type() {
                Classic::COUNTER => match name.strip_suffix("_total") {
                    // OpenMetrics names a counter's family without `_total` and its sample with
                    // it, so the series keeps its name.
                    Some(base) => {
                        let mut metric =
                            encoder.encode_descriptor(base, &help, None, MetricType::Counter)?;
                        for series in family.get_metric() {
                            metric
                                .encode_family(&labels(series))?
                                .encode_counter::<NoLabelSet, f64, f64>(
                                    &series.counter.value(),
                                    None,
                                )?;
                        }
                    }
                    // A counter declared without `_total` would be renamed by OpenMetrics; as
                    // an unknown-typed family it keeps its name in both formats.
                    None => {
                        let mut metric =
                            encoder.encode_descriptor(name, &help, None, MetricType::Unknown)?;
                        for series in family.get_metric() {
                            metric
                                .encode_family(&labels(series))?
                                .encode_gauge(&series.counter.value())?;
                        }
                    }
                },
                Classic::GAUGE | Classic::UNTYPED => {
                    let info = name
                        .strip_suffix("_info")
                        .filter(|_| family.get_metric().iter().all(|m| m.gauge.value() == 1.0));
                    if let Some(base) = info {
                        // `target_info` (the resource) and the `*_info` gauges that are always 1
                        // are info families in OpenMetrics; any other value stays a gauge.
                        let mut metric =
                            encoder.encode_descriptor(base, &help, None, MetricType::Info)?;
                        for series in family.get_metric() {
                            metric.encode_info(&labels(series))?;
                        }
                        continue;
                    }
                    let mut metric =
                        encoder.encode_descriptor(name, &help, None, MetricType::Gauge)?;
                    for series in family.get_metric() {
                        let value = if family.get_field_type() == Classic::GAUGE {
                            series.gauge.value()
                        } else {
                            series.untyped.value()
                        };
                        metric
                            .encode_family(&labels(series))?
                            .encode_gauge(&value)?;
                    }
                }
                Classic::HISTOGRAM if self.exemplars.carries(name) => {
                    self.exemplars.encode(name, &help, &family, &mut encoder)?;
                }
                Classic::HISTOGRAM => {
                    let mut metric =
                        encoder.encode_descriptor(name, &help, None, MetricType::Histogram)?;
                    for series in family.get_metric() {
                        classic_histogram(series, metric.encode_family(&labels(series))?)?;
                    }
                }
                // Nothing in the agent records a summary.
                Classic::SUMMARY => {}
            }
        }
        Ok(())
    }
}

/// The OpenMetrics exposition of a classic registry and its exemplars.
#[derive(Debug)]
pub struct OpenMetrics {
    registry: Registry,
}

impl OpenMetrics {
    pub fn new(classic: prometheus::Registry, exemplars: Arc<Exemplars>) -> Self {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Bridge { classic, exemplars }));
        OpenMetrics { registry }
    }

    /// Everything the classic exposition holds, as OpenMetrics text ending in `# EOF`.
    pub fn exposition(&self) -> Result<Vec<u8>, fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text.into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use super::*;
    use crate::config::TracesConfig;
    use crate::export::{SelfMetrics, Telemetry};

    /// Each sample line's series (`name{labels}`), its labels sorted and `le` read as a
    /// number: the classic text writes `le="1"` last, OpenMetrics `le="1.0"` first.
    fn series(text: &str) -> BTreeSet<String> {
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| {
                let sample = l.split(" # ").next().unwrap_or(l);
                let series = sample.rsplit_once(' ').map_or(sample, |(s, _)| s);
                let Some((name, labels)) = series.split_once('{') else {
                    return series.to_owned();
                };
                let mut labels: Vec<String> = labels
                    .trim_end_matches('}')
                    .split("\",")
                    .map(|pair| {
                        let pair = pair.trim_end_matches('"');
                        match pair.strip_prefix("le=\"") {
                            Some("+Inf") => "le=inf".to_owned(),
                            Some(le) => format!("le={}", le.parse::<f64>().expect("le")),
                            None => pair.to_owned(),
                        }
                    })
                    .collect();
                labels.sort();
                format!("{name}{{{}}}", labels.join(","))
            })
            .collect()
    }

    #[test]
    fn both_formats_hold_the_same_series_and_openmetrics_the_exemplars() {
        let telemetry = Telemetry::init(None, &TracesConfig::default()).expect("telemetry");
        let metrics = SelfMetrics::new(&telemetry.provider, &[])
            .with_exemplars(Arc::clone(&telemetry.exemplars));
        let trace = TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            .expect("valid");
        metrics.suite_run(
            "osworld",
            "failed",
            Duration::from_millis(1500),
            Some(&trace),
        );
        metrics.suite_run("langmem", "passed", Duration::from_millis(300), None);
        metrics.plugin_call("osworld", Duration::from_millis(2), Some(&trace));
        metrics.plugin_error("osworld", "trap");
        metrics.history_tests("osworld", "flaky", 2);
        let classic = String::from_utf8(
            crate::export::prometheus::exposition(&telemetry.registry).expect("classic"),
        )
        .expect("utf-8");
        let open = String::from_utf8(telemetry.openmetrics.exposition().expect("openmetrics"))
            .expect("utf-8");
        assert!(open.ends_with("# EOF\n"), "{open}");
        assert_eq!(series(&open), series(&classic));
        // Exemplars only on the buckets the traced observations fell in, with their value.
        let exemplars: Vec<String> = open
            .lines()
            .filter(|l| l.contains(" # {"))
            .map(|l| {
                // The exemplar's timestamp is the time of the observation.
                let (head, _timestamp) = l.rsplit_once(' ').expect("timestamp");
                head.to_owned()
            })
            .collect();
        insta::assert_snapshot!(exemplars.join("\n"), @r#"
        testmeter_plugin_duration_seconds_bucket{le="0.0025",plugin="osworld"} 1 # {trace_id="4bf92f3577b34da6a3ce929d0e0e4736",span_id="00f067aa0ba902b7"} 0.002
        testmeter_suite_run_duration_seconds_bucket{le="2.5",suite="osworld"} 1 # {trace_id="4bf92f3577b34da6a3ce929d0e0e4736",span_id="00f067aa0ba902b7"} 1.5
        "#);
    }
}
