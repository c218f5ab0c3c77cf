//! The contract itself: declared metrics by name with their owner and labels, the SLOs by
//! system, and the configured suites.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::catalog::{MetricDecl, MetricKind, SloDecl};
use crate::config::SuiteConfig;
use crate::export::self_metrics;
use crate::plugin::PluginSet;

/// Who exports a metric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// A plugin, for the systems it handles.
    Plugin { name: String, systems: Vec<String> },
    /// The agent itself (`testmeter_*`).
    Agent,
}

/// One declared metric and who exports it.
#[derive(Debug, Clone)]
pub struct ContractMetric {
    pub decl: MetricDecl,
    pub owner: Owner,
}

/// An SLO with the plugin and systems it belongs to.
#[derive(Debug, Clone)]
pub struct ContractSlo {
    pub plugin: String,
    pub systems: Vec<String>,
    pub decl: SloDecl,
}

/// A configured suite, as far as monitoring cares.
#[derive(Debug, Clone)]
pub struct ContractSuite {
    pub name: String,
    pub system: String,
    pub interval: Duration,
    pub timeout: Duration,
}

/// Which series of a metric a name refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suffix {
    /// The metric's own name: a counter or a gauge.
    None,
    /// `_bucket` of a histogram (carries `le`).
    Bucket,
    /// `_sum` of a histogram.
    Sum,
    /// `_count` of a histogram.
    Count,
}

/// A series name resolved to its metric.
#[derive(Debug, Clone, Copy)]
pub struct SeriesRef<'a> {
    pub metric: &'a ContractMetric,
    pub suffix: Suffix,
}

impl SeriesRef<'_> {
    /// Whether the series behaves as a counter (rate and increase apply).
    pub fn is_counter_like(&self) -> bool {
        match self.suffix {
            Suffix::None => self.metric.decl.kind == MetricKind::Counter,
            Suffix::Bucket | Suffix::Sum | Suffix::Count => true,
        }
    }
}

/// Every series the agent exports, with the SLOs and suites behind them.
#[derive(Debug, Clone, Default)]
pub struct Contract {
    pub metrics: BTreeMap<String, ContractMetric>,
    pub slos: Vec<ContractSlo>,
    pub suites: Vec<ContractSuite>,
    /// Label keys the suites' configured `labels` add to every plugin sample.
    pub suite_labels: BTreeSet<String>,
}

/// Labels Prometheus attaches to every scraped series.
pub const SCRAPE_LABELS: &[&str] = &["job", "instance"];

impl Contract {
    /// The contract of a loaded plugin set and the configured suites. Metrics refused by the
    /// catalog (for example a name two plugins declare) are left out: they are not exported.
    pub fn new(set: &PluginSet, suites: &[SuiteConfig]) -> Self {
        let mut contract = Contract::default();
        for spec in self_metrics::DECLARED {
            contract.metrics.insert(
                spec.name.to_owned(),
                ContractMetric {
                    decl: spec.decl(),
                    owner: Owner::Agent,
                },
            );
        }
        for plugin in &set.plugins {
            let decl = &plugin.decl;
            for metric in &decl.metrics {
                if set.catalog_kind(&decl.name, &metric.name).is_none() {
                    continue;
                }
                contract.metrics.insert(
                    metric.name.clone(),
                    ContractMetric {
                        decl: metric.clone(),
                        owner: Owner::Plugin {
                            name: decl.name.clone(),
                            systems: decl.systems.clone(),
                        },
                    },
                );
            }
            contract
                .slos
                .extend(decl.slos.iter().map(|slo| ContractSlo {
                    plugin: decl.name.clone(),
                    systems: decl.systems.clone(),
                    decl: slo.clone(),
                }));
        }
        for suite in suites {
            contract.suites.push(ContractSuite {
                name: suite.name.clone(),
                system: suite.system.clone(),
                interval: suite.interval,
                timeout: suite.timeout,
            });
            contract.suite_labels.extend(suite.labels.keys().cloned());
        }
        contract
    }

    /// Systems that have at least one plugin metric, in order.
    pub fn systems(&self) -> BTreeSet<&str> {
        self.metrics
            .values()
            .filter_map(|m| match &m.owner {
                Owner::Plugin { systems, .. } => Some(systems),
                Owner::Agent => None,
            })
            .flatten()
            .map(String::as_str)
            .collect()
    }

    /// The plugin metrics of one system, in name order.
    pub fn system_metrics<'a>(
        &'a self,
        system: &'a str,
    ) -> impl Iterator<Item = &'a ContractMetric> {
        self.metrics.values().filter(move |m| {
            matches!(&m.owner, Owner::Plugin { systems, .. } if systems.iter().any(|s| s == system))
        })
    }

    /// The SLOs of one system, in declaration order.
    pub fn system_slos<'a>(&'a self, system: &'a str) -> impl Iterator<Item = &'a ContractSlo> {
        self.slos
            .iter()
            .filter(move |slo| slo.systems.iter().any(|s| s == system))
    }

    /// Resolves an exported series name (`x`, `x_bucket`, `x_sum`, `x_count`) to its metric.
    pub fn series(&self, name: &str) -> Option<SeriesRef<'_>> {
        if let Some(metric) = self.metrics.get(name) {
            // A histogram is exported only as its `_bucket`, `_sum` and `_count` series.
            return (metric.decl.kind != MetricKind::Histogram).then_some(SeriesRef {
                metric,
                suffix: Suffix::None,
            });
        }
        [
            ("_bucket", Suffix::Bucket),
            ("_sum", Suffix::Sum),
            ("_count", Suffix::Count),
        ]
        .into_iter()
        .find_map(|(ending, suffix)| {
            let metric = self.metrics.get(name.strip_suffix(ending)?)?;
            (metric.decl.kind == MetricKind::Histogram).then_some(SeriesRef { metric, suffix })
        })
    }

    /// Every exported series name, for suggestions.
    pub fn series_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        for (name, metric) in &self.metrics {
            if metric.decl.kind == MetricKind::Histogram {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.push(format!("{name}{suffix}"));
                }
            } else {
                names.push(name.clone());
            }
        }
        names
    }

    /// Every label a series of this metric can carry once scraped: its declared keys, the
    /// suites' labels (plugin metrics only), `le` on buckets, and the scrape labels.
    pub fn labels_of(&self, series: &SeriesRef<'_>) -> BTreeSet<String> {
        let mut labels: BTreeSet<String> = series.metric.decl.label_keys.iter().cloned().collect();
        if matches!(series.metric.owner, Owner::Plugin { .. }) {
            labels.extend(self.suite_labels.iter().cloned());
        }
        if series.suffix == Suffix::Bucket {
            labels.insert("le".to_owned());
        }
        labels.extend(SCRAPE_LABELS.iter().map(|l| (*l).to_owned()));
        labels
    }
}
