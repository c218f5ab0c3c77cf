//! Registers plugin declarations and checks every emitted sample against them: the name is
//! declared by that plugin, the labels are exactly the declared keys, and the value fits the kind.

use std::collections::BTreeMap;

use super::model::{HistogramCounts, MetricDecl, MetricKind, PluginDecl, Sample, SampleValues};
use crate::config::is_label_name;

/// A declaration the catalog refused. The rest of the plugin's declarations still register.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CatalogError {
    #[error("plugin {plugin}: metric name {metric:?} is not a valid Prometheus metric name")]
    InvalidName { plugin: String, metric: String },
    #[error(
        "plugin {plugin}: metric {metric}: label {label:?} is not a valid Prometheus label name"
    )]
    InvalidLabel {
        plugin: String,
        metric: String,
        label: String,
    },
    #[error("plugin {plugin}: metric {metric} is also declared by {others}; a contested name is exported by none of them")]
    Contested {
        plugin: String,
        metric: String,
        others: String,
    },
    #[error("plugin {plugin}: metric {metric} is already declared by plugin {owner}")]
    Clash {
        plugin: String,
        metric: String,
        owner: String,
    },
    #[error("plugin {plugin}: histogram {metric} needs ascending, finite buckets")]
    InvalidBuckets { plugin: String, metric: String },
    #[error("plugin {plugin}: SLO {slo:?} is dropped: {problem}")]
    InvalidSlo {
        plugin: String,
        slo: String,
        problem: String,
    },
    #[error("plugin {plugin}: metric {metric} is in the agent's own namespace (`{RESERVED_PREFIX}*`), which plugins cannot write; give it the system's prefix (e.g. `genesis_<system>_...`)")]
    Reserved { plugin: String, metric: String },
}

/// The prefix of the agent's own metrics (`testmeter_suite_runs_total`, ...). A plugin metric
/// under it could forge a suite's runs or hide a quarantine, so no plugin may declare one.
pub const RESERVED_PREFIX: &str = "testmeter_";

/// Whether `name` is the agent's: under its prefix, or its bare stem, which the exporters'
/// suffixes (`_total`, `_bucket`, ...) would put under the prefix.
pub fn is_reserved(name: &str) -> bool {
    name.starts_with(RESERVED_PREFIX) || name == RESERVED_PREFIX.trim_end_matches('_')
}

impl CatalogError {
    /// The plugin whose declaration was refused.
    pub fn plugin(&self) -> &str {
        match self {
            CatalogError::InvalidName { plugin, .. }
            | CatalogError::InvalidLabel { plugin, .. }
            | CatalogError::Contested { plugin, .. }
            | CatalogError::Clash { plugin, .. }
            | CatalogError::InvalidBuckets { plugin, .. }
            | CatalogError::InvalidSlo { plugin, .. }
            | CatalogError::Reserved { plugin, .. } => plugin,
        }
    }
}

/// Why one sample was dropped. `reason()` is the self-metric label.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejection {
    #[error("metric {metric:?} is not declared by plugin {plugin}")]
    Undeclared { plugin: String, metric: String },
    #[error("metric {metric}: labels {got:?} do not match the declared keys {want:?}")]
    Labels {
        metric: String,
        got: Vec<String>,
        want: Vec<String>,
    },
    #[error("metric {metric}: value {value} is not valid for a {kind}")]
    Value {
        metric: String,
        value: f64,
        kind: &'static str,
    },
    #[error("metric {metric}: a new label set would exceed the budget of {limit} series")]
    Cardinality { metric: String, limit: usize },
    #[error("metric {metric}: histogram counts {problem}")]
    Counts { metric: String, problem: String },
}

impl Rejection {
    /// Every value of [`Self::reason`].
    pub const REASONS: [&'static str; 4] = ["undeclared", "labels", "value", "cardinality"];

    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::Undeclared { .. } => "undeclared",
            Rejection::Labels { .. } => "labels",
            Rejection::Value { .. } | Rejection::Counts { .. } => "value",
            Rejection::Cardinality { .. } => "cardinality",
        }
    }
}

/// Every registered metric, keyed by name, with the plugin that owns it.
#[derive(Debug, Default)]
pub struct Catalog {
    metrics: BTreeMap<String, (String, MetricDecl)>,
}

impl Catalog {
    /// Registers the plugins loaded together at start. A name declared by more than one of them
    /// is refused for all: load order must never decide which plugin owns a name, or a plugin
    /// could take over (and overwrite) another's metric by sorting first.
    pub fn register_all(&mut self, plugins: &[&PluginDecl]) -> Vec<CatalogError> {
        let mut claimants: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for plugin in plugins {
            for metric in &plugin.metrics {
                claimants
                    .entry(&metric.name)
                    .or_default()
                    .push(&plugin.name);
            }
        }
        let mut errors = Vec::new();
        for plugin in plugins {
            let mut uncontested = (*plugin).clone();
            uncontested.metrics.retain(|metric| {
                let owners = &claimants[metric.name.as_str()];
                if owners.len() == 1 {
                    return true;
                }
                let others: Vec<&str> = owners
                    .iter()
                    .copied()
                    .filter(|o| *o != plugin.name)
                    .collect();
                errors.push(CatalogError::Contested {
                    plugin: plugin.name.clone(),
                    metric: metric.name.clone(),
                    others: others.join(", "),
                });
                false
            });
            errors.extend(self.register(&uncontested));
        }
        errors
    }

    /// Registers one plugin's metrics next to those already registered; a name that is taken
    /// stays with its owner. Returns the declarations it refused; a refused metric is
    /// not exported, and samples of it are rejected as undeclared.
    pub fn register(&mut self, plugin: &PluginDecl) -> Vec<CatalogError> {
        let mut errors = Vec::new();
        for metric in &plugin.metrics {
            match self.check_declaration(&plugin.name, metric) {
                Ok(()) => {
                    self.metrics
                        .insert(metric.name.clone(), (plugin.name.clone(), metric.clone()));
                }
                Err(error) => errors.push(error),
            }
        }
        errors
    }

    fn check_declaration(&self, plugin: &str, metric: &MetricDecl) -> Result<(), CatalogError> {
        if is_reserved(&metric.name) {
            return Err(CatalogError::Reserved {
                plugin: plugin.to_owned(),
                metric: metric.name.clone(),
            });
        }
        if !is_metric_name(&metric.name) {
            return Err(CatalogError::InvalidName {
                plugin: plugin.to_owned(),
                metric: metric.name.clone(),
            });
        }
        if let Some(label) = metric
            .label_keys
            .iter()
            .find(|l| !is_label_name(l) || l.as_str() == "le")
        {
            return Err(CatalogError::InvalidLabel {
                plugin: plugin.to_owned(),
                metric: metric.name.clone(),
                label: label.clone(),
            });
        }
        if let Some((owner, _)) = self.metrics.get(&metric.name) {
            return Err(CatalogError::Clash {
                plugin: plugin.to_owned(),
                metric: metric.name.clone(),
                owner: owner.clone(),
            });
        }
        let ascending = metric.buckets.windows(2).all(|w| w[0] < w[1]);
        let finite = metric.buckets.iter().all(|b| b.is_finite());
        if metric.kind == MetricKind::Histogram && !(ascending && finite) {
            return Err(CatalogError::InvalidBuckets {
                plugin: plugin.to_owned(),
                metric: metric.name.clone(),
            });
        }
        Ok(())
    }

    /// The declaration of `metric`, if `plugin` owns it.
    pub fn get(&self, plugin: &str, metric: &str) -> Option<&MetricDecl> {
        self.metrics
            .get(metric)
            .filter(|(owner, _)| owner == plugin)
            .map(|(_, decl)| decl)
    }

    /// All registered metrics, by name.
    pub fn metrics(&self) -> impl Iterator<Item = (&str, &MetricDecl)> {
        self.metrics
            .iter()
            .map(|(_, (owner, decl))| (owner.as_str(), decl))
    }

    /// Checks one sample emitted by `plugin`.
    pub fn check(&self, plugin: &str, sample: &Sample) -> Result<&MetricDecl, Rejection> {
        let decl = self
            .get(plugin, &sample.metric)
            .ok_or_else(|| Rejection::Undeclared {
                plugin: plugin.to_owned(),
                metric: sample.metric.clone(),
            })?;
        let mut got: Vec<&str> = sample.labels.iter().map(|(k, _)| k.as_str()).collect();
        got.sort_unstable();
        let mut want: Vec<&str> = decl.label_keys.iter().map(String::as_str).collect();
        want.sort_unstable();
        if got != want {
            return Err(Rejection::Labels {
                metric: sample.metric.clone(),
                got: got.into_iter().map(str::to_owned).collect(),
                want: want.into_iter().map(str::to_owned).collect(),
            });
        }
        let valid = |value: f64| match decl.kind {
            MetricKind::Counter => value.is_finite() && value >= 0.0,
            MetricKind::Gauge | MetricKind::Histogram => value.is_finite(),
        };
        match &sample.values {
            SampleValues::Values(values) => {
                if let Some(&value) = values.iter().find(|&&v| !valid(v)) {
                    return Err(Rejection::Value {
                        metric: sample.metric.clone(),
                        value,
                        kind: decl.kind.as_str(),
                    });
                }
            }
            SampleValues::Histogram(counts) => {
                check_counts(decl, counts).map_err(|problem| Rejection::Counts {
                    metric: sample.metric.clone(),
                    problem,
                })?;
            }
        }
        Ok(decl)
    }
}

/// Counted observations fit a histogram's declaration only if some set of observations could
/// have given them: one count per bucket and one above the last bound, min and max inside the
/// first and last buckets that hold anything, and a sum that observations in those buckets,
/// between min and max, can add up to. The exporter replays them as such a set
/// (`export::instruments`), so what it exports is exactly these counts.
fn check_counts(decl: &MetricDecl, counts: &HistogramCounts) -> Result<(), String> {
    if decl.kind != MetricKind::Histogram {
        return Err(format!("sent for a {}", decl.kind.as_str()));
    }
    let bounds = &decl.buckets;
    if counts.bucket_counts.len() != bounds.len() + 1 {
        return Err(format!(
            "has {} buckets, the declaration {} bounds (one more bucket for the values above the last)",
            counts.bucket_counts.len(),
            bounds.len()
        ));
    }
    let total = counts.count();
    if total == 0 {
        return if counts.sum == 0.0 {
            Ok(())
        } else {
            Err(format!("hold no observation but sum to {}", counts.sum))
        };
    }
    let (min, max, sum) = (counts.min, counts.max, counts.sum);
    if !(min.is_finite() && max.is_finite() && sum.is_finite()) || min > max {
        return Err(format!("have min {min}, max {max} and sum {sum}"));
    }
    let range = |bucket: usize| {
        let low = if bucket == 0 {
            f64::NEG_INFINITY
        } else {
            bounds[bucket - 1]
        };
        let high = bounds.get(bucket).copied().unwrap_or(f64::INFINITY);
        (low, high)
    };
    let occupied = |bucket: &usize| counts.bucket_counts[*bucket] > 0;
    let first = (0..counts.bucket_counts.len()).find(occupied);
    let last = (0..counts.bucket_counts.len()).rev().find(occupied);
    if let (Some(first), Some(last)) = (first, last) {
        let (low, high) = range(first);
        if !(min > low && min <= high) {
            return Err(format!("have min {min} outside its bucket ({low}, {high}]"));
        }
        let (low, high) = range(last);
        if !(max > low && max <= high) {
            return Err(format!("have max {max} outside its bucket ({low}, {high}]"));
        }
    }
    let (mut least, mut most) = (0.0f64, 0.0f64);
    for (bucket, &count) in counts.bucket_counts.iter().enumerate() {
        let (low, high) = range(bucket);
        let count = count as f64;
        least += count * low.max(min);
        most += count * high.min(max);
    }
    let slack = 1e-9 * least.abs().max(most.abs()).max(1.0);
    if sum < least - slack || sum > most + slack {
        return Err(format!(
            "sum to {sum}, which observations in their buckets between {min} and {max} cannot (from {least} to {most})"
        ));
    }
    Ok(())
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`; colons are reserved for recording rules, so plugins may not use them.
pub fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(name: &str, kind: MetricKind, labels: &[&str]) -> MetricDecl {
        MetricDecl {
            name: name.to_owned(),
            kind,
            unit: "1".to_owned(),
            description: String::new(),
            label_keys: labels.iter().map(|l| (*l).to_owned()).collect(),
            buckets: vec![1.0, 2.0],
        }
    }

    fn plugin(name: &str, metrics: Vec<MetricDecl>) -> PluginDecl {
        PluginDecl {
            name: name.to_owned(),
            version: "0".to_owned(),
            systems: vec![],
            metrics,
            slos: vec![],
        }
    }

    fn sample(metric: &str, labels: &[(&str, &str)], value: f64) -> Sample {
        Sample {
            metric: metric.to_owned(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            values: SampleValues::Values(vec![value]),
        }
    }

    fn counted(metric: &str, buckets: Vec<u64>, sum: f64, min: f64, max: f64) -> Sample {
        Sample {
            metric: metric.to_owned(),
            labels: vec![],
            values: SampleValues::Histogram(HistogramCounts {
                bucket_counts: buckets,
                sum,
                min,
                max,
            }),
        }
    }

    /// Buckets (-inf, 1], (1, 2], (2, +inf).
    #[test]
    fn counted_histograms_must_be_counts_some_observations_could_give() {
        let mut catalog = Catalog::default();
        catalog.register(&plugin("a", vec![decl("h", MetricKind::Histogram, &[])]));
        let check = |sample: Sample| {
            catalog
                .check("a", &sample)
                .map(|_| "ok".to_owned())
                .unwrap_or_else(|r| r.to_string())
        };
        // 0.5, 1.5, 1.7 and 3.0.
        assert_eq!(check(counted("h", vec![1, 2, 1], 6.7, 0.5, 3.0)), "ok");
        assert_eq!(check(counted("h", vec![0, 0, 0], 0.0, 0.0, 0.0)), "ok");
        assert_eq!(
            check(counted("h", vec![1, 2], 6.7, 0.5, 3.0)),
            "metric h: histogram counts has 2 buckets, the declaration 2 bounds (one more bucket for the values above the last)"
        );
        assert_eq!(
            check(counted("h", vec![1, 2, 1], 6.7, 1.5, 3.0)),
            "metric h: histogram counts have min 1.5 outside its bucket (-inf, 1]"
        );
        assert_eq!(
            check(counted("h", vec![1, 2, 1], 6.7, 0.5, 1.9)),
            "metric h: histogram counts have max 1.9 outside its bucket (2, inf]"
        );
        assert_eq!(
            check(counted("h", vec![1, 2, 1], 100.0, 0.5, 3.0)),
            "metric h: histogram counts sum to 100, which observations in their buckets between 0.5 and 3 cannot (from 4.5 to 8)"
        );
        assert_eq!(
            check(counted("h", vec![1, 0, 0], f64::NAN, 0.5, 0.5)),
            "metric h: histogram counts have min 0.5, max 0.5 and sum NaN"
        );
    }

    #[test]
    fn refuses_bad_names_and_clashes() {
        let mut catalog = Catalog::default();
        let first = plugin("a", vec![decl("x_total", MetricKind::Counter, &["status"])]);
        assert!(catalog.register(&first).is_empty());
        let second = plugin(
            "b",
            vec![
                decl("x_total", MetricKind::Counter, &[]),
                decl("bad-name", MetricKind::Gauge, &[]),
                decl("y", MetricKind::Gauge, &["le"]),
            ],
        );
        let errors: Vec<String> = catalog
            .register(&second)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errors,
            vec![
                "plugin b: metric x_total is already declared by plugin a",
                "plugin b: metric name \"bad-name\" is not a valid Prometheus metric name",
                "plugin b: metric y: label \"le\" is not a valid Prometheus label name",
            ]
        );
    }

    #[test]
    fn the_agents_own_names_are_refused_to_every_plugin() {
        let mut catalog = Catalog::default();
        let forger = plugin(
            "forger",
            vec![
                decl(
                    "testmeter_suite_runs_total",
                    MetricKind::Counter,
                    &["suite"],
                ),
                decl("testmeter", MetricKind::Counter, &[]),
                decl("testmeterish_total", MetricKind::Counter, &[]),
            ],
        );
        let errors: Vec<String> = catalog
            .register(&forger)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errors,
            vec![
                "plugin forger: metric testmeter_suite_runs_total is in the agent's own namespace (`testmeter_*`), which plugins cannot write; give it the system's prefix (e.g. `genesis_<system>_...`)",
                "plugin forger: metric testmeter is in the agent's own namespace (`testmeter_*`), which plugins cannot write; give it the system's prefix (e.g. `genesis_<system>_...`)",
            ]
        );
        assert!(catalog.get("forger", "testmeterish_total").is_some());
        assert!(catalog
            .get("forger", "testmeter_suite_runs_total")
            .is_none());
    }

    #[test]
    fn a_name_two_plugins_declare_at_start_is_exported_by_neither() {
        let mut catalog = Catalog::default();
        let a = plugin(
            "a",
            vec![
                decl("shared", MetricKind::Gauge, &[]),
                decl("mine", MetricKind::Gauge, &[]),
            ],
        );
        let b = plugin("b", vec![decl("shared", MetricKind::Gauge, &[])]);
        let errors: Vec<String> = catalog
            .register_all(&[&a, &b])
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errors,
            vec![
                "plugin a: metric shared is also declared by b; a contested name is exported by none of them",
                "plugin b: metric shared is also declared by a; a contested name is exported by none of them",
            ]
        );
        assert!(catalog.get("a", "shared").is_none() && catalog.get("b", "shared").is_none());
        assert!(catalog.get("a", "mine").is_some());
    }

    #[test]
    fn checks_samples_against_declarations() {
        let mut catalog = Catalog::default();
        catalog.register(&plugin(
            "a",
            vec![
                decl("x_total", MetricKind::Counter, &["status"]),
                decl("g", MetricKind::Gauge, &[]),
            ],
        ));
        assert!(catalog
            .check("a", &sample("x_total", &[("status", "passed")], 2.0))
            .is_ok());
        let reasons: Vec<&str> = [
            sample("x_total", &[("status", "passed")], -1.0),
            sample("x_total", &[], 1.0),
            sample("nope", &[], 1.0),
            sample("g", &[], f64::NAN),
        ]
        .iter()
        .map(|s| {
            catalog
                .check("a", s)
                .map(|_| "ok")
                .unwrap_or_else(|r| r.reason())
        })
        .collect();
        assert_eq!(reasons, vec!["value", "labels", "undeclared", "value"]);
        assert_eq!(
            catalog
                .check("a", &counted("g", vec![1, 0, 0], 0.5, 0.5, 0.5))
                .map(|_| ()),
            Err(Rejection::Counts {
                metric: "g".to_owned(),
                problem: "sent for a gauge".to_owned()
            })
        );
        assert_eq!(
            catalog.check("b", &sample("g", &[], 1.0)).map(|_| ()),
            Err(Rejection::Undeclared {
                plugin: "b".to_owned(),
                metric: "g".to_owned()
            }),
            "a plugin cannot emit another plugin's metric"
        );
    }
}
