//! Registers plugin declarations and checks every emitted sample against them: the name is
//! declared by that plugin, the labels are exactly the declared keys, and the value fits the kind.

use std::collections::BTreeMap;

use super::model::{MetricDecl, MetricKind, PluginDecl, Sample};
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
}

impl CatalogError {
    /// The plugin whose declaration was refused.
    pub fn plugin(&self) -> &str {
        match self {
            CatalogError::InvalidName { plugin, .. }
            | CatalogError::InvalidLabel { plugin, .. }
            | CatalogError::Contested { plugin, .. }
            | CatalogError::Clash { plugin, .. }
            | CatalogError::InvalidBuckets { plugin, .. } => plugin,
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
}

impl Rejection {
    /// Every value of [`Self::reason`].
    pub const REASONS: [&'static str; 4] = ["undeclared", "labels", "value", "cardinality"];

    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::Undeclared { .. } => "undeclared",
            Rejection::Labels { .. } => "labels",
            Rejection::Value { .. } => "value",
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
        if let Some(&value) = sample.values.iter().find(|&&v| !valid(v)) {
            return Err(Rejection::Value {
                metric: sample.metric.clone(),
                value,
                kind: decl.kind.as_str(),
            });
        }
        Ok(decl)
    }
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
            values: vec![value],
        }
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
            catalog.check("b", &sample("g", &[], 1.0)).map(|_| ()),
            Err(Rejection::Undeclared {
                plugin: "b".to_owned(),
                metric: "g".to_owned()
            }),
            "a plugin cannot emit another plugin's metric"
        );
    }
}
