//! Grafana dashboards generated from the contract: one per system and an overview. Panel types
//! follow the metric kind (gauge or stat for gauges, with the SLO thresholds as colour steps;
//! `rate()` time series for counters; `histogram_quantile` over `_bucket` for histograms), and
//! every query uses only declared names and labels.

use std::collections::BTreeMap;

use promql_parser::parser::Expr;
use serde_json::json;

use super::alerts::stale_after;
use super::grafana::{
    Dashboard, DataSourceRef, FieldConfig, FieldDefaults, GridPos, Panel, Target, Templating,
    Threshold, Thresholds, TimeRange, Variable, SCHEMA_VERSION,
};
use super::model::{Contract, ContractMetric, ContractSlo};
use super::promql::{self, Comparison};
use crate::catalog::MetricKind;
use crate::export::self_metrics;

/// A generated dashboard and the file name it is written under.
#[derive(Debug, Clone)]
pub struct GeneratedDashboard {
    pub file_name: String,
    pub dashboard: Dashboard,
}

/// The overview first, then one dashboard per system, in name order.
pub fn generate(contract: &Contract) -> Vec<GeneratedDashboard> {
    let mut out = vec![GeneratedDashboard {
        file_name: "testmeter-overview.json".to_owned(),
        dashboard: overview(contract),
    }];
    for system in contract.systems() {
        out.push(GeneratedDashboard {
            file_name: format!("testmeter-{system}.json"),
            dashboard: system_dashboard(contract, system),
        });
    }
    out
}

/// Grafana's unit for a declared UCUM-style unit.
pub fn grafana_unit(unit: &str) -> &'static str {
    match unit {
        "s" => "s",
        "ms" => "ms",
        "By" => "bytes",
        "MBy" => "decmbytes",
        "%" => "percent",
        _ => "short",
    }
}

fn severity_color(severity: &str) -> &'static str {
    match severity {
        "critical" => "red",
        "warning" => "orange",
        "info" => "blue",
        _ => "purple",
    }
}

fn severity_rank(severity: &str) -> u8 {
    match severity {
        "critical" => 3,
        "warning" => 2,
        "info" => 1,
        _ => 0,
    }
}

/// SLO conditions on one watched expression.
#[derive(Debug, Clone)]
struct Watched<'a> {
    value: String,
    conditions: Vec<(Comparison, f64, &'a ContractSlo)>,
}

/// Groups the SLOs of `slos` that are thresholds by the expression they watch, in order.
fn watched<'a>(slos: impl Iterator<Item = &'a ContractSlo>) -> Vec<Watched<'a>> {
    let mut groups: Vec<Watched<'a>> = Vec::new();
    for slo in slos {
        let Some(threshold) = promql::parse(&slo.decl.expr)
            .ok()
            .as_ref()
            .and_then(promql::threshold)
        else {
            continue;
        };
        let condition = (threshold.comparison, threshold.threshold, slo);
        match groups.iter_mut().find(|g| g.value == threshold.value) {
            Some(group) => group.conditions.push(condition),
            None => groups.push(Watched {
                value: threshold.value,
                conditions: vec![condition],
            }),
        }
    }
    groups
}

/// Colour steps: each band between thresholds takes the colour of the worst SLO it breaches,
/// green where none is breached.
fn steps(conditions: &[(Comparison, f64, &ContractSlo)]) -> Vec<Threshold> {
    let mut cuts: Vec<f64> = conditions.iter().map(|(_, t, _)| *t).collect();
    cuts.sort_by(f64::total_cmp);
    cuts.dedup();
    let color_at = |value: f64| {
        conditions
            .iter()
            .filter(|(comparison, threshold, _)| comparison.breached(value, *threshold))
            .max_by_key(|(_, _, slo)| severity_rank(&slo.decl.severity))
            .map_or("green", |(_, _, slo)| severity_color(&slo.decl.severity))
    };
    // A representative value inside each band: below the first cut, between cuts, above the last.
    let mut bands = Vec::with_capacity(cuts.len() + 1);
    let first = cuts.first().copied().unwrap_or(0.0);
    bands.push((None, color_at(first - 1.0)));
    for (i, cut) in cuts.iter().enumerate() {
        let inside = match cuts.get(i + 1) {
            Some(next) => (cut + next) / 2.0,
            None => cut + cut.abs().max(1.0),
        };
        // At the cut itself `<` is not breached but `>` is not yet either; the band's inside
        // decides its colour.
        bands.push((Some(*cut), color_at(inside)));
    }
    let mut out: Vec<Threshold> = Vec::new();
    for (value, color) in bands {
        if out.last().is_some_and(|last| last.color == color) {
            continue;
        }
        out.push(Threshold {
            color: color.to_owned(),
            value,
        });
    }
    out
}

fn plain_thresholds() -> Vec<Threshold> {
    vec![Threshold {
        color: "green".to_owned(),
        value: None,
    }]
}

/// Places panels left to right, wrapping at Grafana's 24 columns.
struct Layout {
    next_id: u32,
    x: u32,
    y: u32,
    row_height: u32,
    panels: Vec<Panel>,
}

impl Layout {
    fn new() -> Self {
        Self {
            next_id: 1,
            x: 0,
            y: 0,
            row_height: 0,
            panels: Vec::new(),
        }
    }

    fn id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn row(&mut self, title: &str) {
        self.y += self.row_height;
        self.x = 0;
        self.row_height = 0;
        let id = self.id();
        self.panels.push(Panel {
            id,
            kind: "row".to_owned(),
            title: title.to_owned(),
            description: String::new(),
            grid_pos: GridPos {
                h: 1,
                w: 24,
                x: 0,
                y: self.y,
            },
            datasource: None,
            targets: Vec::new(),
            field_config: None,
            options: None,
            collapsed: Some(false),
            panels: Some(Vec::new()),
        });
        self.y += 1;
    }

    fn place(&mut self, mut panel: Panel, w: u32, h: u32) {
        if self.x + w > 24 {
            self.y += self.row_height;
            self.x = 0;
            self.row_height = 0;
        }
        panel.id = self.id();
        panel.grid_pos = GridPos {
            h,
            w,
            x: self.x,
            y: self.y,
        };
        self.x += w;
        self.row_height = self.row_height.max(h);
        self.panels.push(panel);
    }
}

fn targets(queries: &[(&str, &str)]) -> Vec<Target> {
    queries
        .iter()
        .zip('A'..='Z')
        .map(|((expr, legend), ref_id)| Target {
            ref_id: ref_id.to_string(),
            expr: (*expr).to_owned(),
            legend_format: (*legend).to_owned(),
            datasource: DataSourceRef::prometheus_variable(),
            exemplar: is_duration_quantile(expr),
        })
        .collect()
}

/// A quantile over a duration histogram's buckets: the panels where exemplars (the trace of a
/// run) are worth asking for.
fn is_duration_quantile(expr: &str) -> bool {
    expr.starts_with("histogram_quantile(") && expr.contains("_seconds_bucket")
}

#[allow(clippy::too_many_arguments)]
fn panel(
    kind: &str,
    title: &str,
    description: &str,
    queries: &[(&str, &str)],
    unit: &str,
    range: Option<(f64, f64)>,
    steps: Vec<Threshold>,
    options: serde_json::Value,
) -> Panel {
    Panel {
        id: 0,
        kind: kind.to_owned(),
        title: title.to_owned(),
        description: description.to_owned(),
        grid_pos: GridPos {
            h: 0,
            w: 0,
            x: 0,
            y: 0,
        },
        datasource: Some(DataSourceRef::prometheus_variable()),
        targets: targets(queries),
        field_config: Some(FieldConfig {
            defaults: FieldDefaults {
                unit: unit.to_owned(),
                min: range.map(|r| r.0),
                max: range.map(|r| r.1),
                thresholds: Thresholds {
                    mode: "absolute".to_owned(),
                    steps,
                },
            },
            overrides: Vec::new(),
        }),
        options: Some(options),
        collapsed: None,
        panels: None,
    }
}

fn stat_options() -> serde_json::Value {
    json!({
        "reduceOptions": { "calcs": ["lastNotNull"], "fields": "", "values": false },
        "colorMode": "background",
        "graphMode": "area",
        "textMode": "value_and_name"
    })
}

fn gauge_options() -> serde_json::Value {
    json!({
        "reduceOptions": { "calcs": ["lastNotNull"], "fields": "", "values": false },
        "showThresholdMarkers": true,
        "showThresholdLabels": false
    })
}

fn timeseries_options() -> serde_json::Value {
    json!({
        "legend": { "displayMode": "list", "placement": "bottom", "showLegend": true },
        "tooltip": { "mode": "multi", "sort": "desc" }
    })
}

/// `{{a}} {{b}}` for the label keys, or the fallback when there are none.
fn legend(labels: &[String], fallback: &str) -> String {
    if labels.is_empty() {
        fallback.to_owned()
    } else {
        labels
            .iter()
            .map(|l| format!("{{{{{l}}}}}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn slo_description(watched: &Watched<'_>) -> String {
    watched
        .conditions
        .iter()
        .map(|(comparison, threshold, slo)| {
            format!(
                "{} ({}, for {}s): breached when {} {}. {}",
                slo.decl.name,
                slo.decl.severity,
                slo.decl.for_seconds,
                comparison.as_str(),
                threshold,
                slo.decl.summary
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The metric a watched expression is about, and whether the expression is just that metric.
fn watched_metric<'a>(contract: &'a Contract, value: &str) -> Option<(&'a ContractMetric, bool)> {
    let expr = promql::parse(value).ok()?;
    let plain = matches!(expr, Expr::VectorSelector(_));
    let quantile = matches!(&expr, Expr::Call(call) if call.func.name == "histogram_quantile");
    let name = promql::selectors(&expr)
        .into_iter()
        .find_map(promql::metric_name)?
        .to_owned();
    let series = contract.series(&name)?;
    Some((series.metric, plain || quantile))
}

/// A gauge (percentages) or stat panel for one watched SLO expression.
fn slo_panel(contract: &Contract, watched: &Watched<'_>, title: Option<&str>) -> Panel {
    let metric = watched_metric(contract, &watched.value);
    let unit = match metric {
        Some((metric, true)) => grafana_unit(&metric.decl.unit),
        _ => "short",
    };
    let title = title
        .map(str::to_owned)
        .or_else(|| metric.map(|(m, _)| m.decl.description.clone()))
        .unwrap_or_else(|| watched.value.clone());
    let legend = metric
        .map(|(m, _)| legend(&m.decl.label_keys, &m.decl.name))
        .unwrap_or_default();
    let (kind, range, options) = if unit == "percent" {
        ("gauge", Some((0.0, 100.0)), gauge_options())
    } else {
        ("stat", None, stat_options())
    };
    panel(
        kind,
        &title,
        &slo_description(watched),
        &[(&watched.value, &legend)],
        unit,
        range,
        steps(&watched.conditions),
        options,
    )
}

fn by_clause(labels: &[String]) -> String {
    if labels.is_empty() {
        String::new()
    } else {
        format!(" by ({})", labels.join(", "))
    }
}

/// The panel of one metric by its kind.
fn metric_panel(metric: &ContractMetric) -> (Panel, u32, u32) {
    let decl = &metric.decl;
    let labels = &decl.label_keys;
    match decl.kind {
        MetricKind::Gauge => {
            let unit = grafana_unit(&decl.unit);
            let (kind, range, options) = if unit == "percent" {
                ("gauge", Some((0.0, 100.0)), gauge_options())
            } else {
                ("stat", None, stat_options())
            };
            let p = panel(
                kind,
                &decl.description,
                &format!("`{}` (gauge, {})", decl.name, decl.unit),
                &[(&decl.name, &legend(labels, &decl.name))],
                unit,
                range,
                plain_thresholds(),
                options,
            );
            (p, 6, 6)
        }
        MetricKind::Counter => {
            let expr = format!(
                "sum{} (rate({}[$__rate_interval]))",
                by_clause(labels),
                decl.name
            );
            let p = panel(
                "timeseries",
                &format!("{} (per second)", decl.description),
                &format!("`{}` (counter), rate per second", decl.name),
                &[(&expr, &legend(labels, &decl.name))],
                "short",
                None,
                plain_thresholds(),
                timeseries_options(),
            );
            (p, 12, 8)
        }
        MetricKind::Histogram => {
            let mut by = vec!["le".to_owned()];
            by.extend(labels.iter().cloned());
            let quantile = |q: f64| {
                format!(
                    "histogram_quantile({q}, sum by ({}) (rate({}_bucket[$__rate_interval])))",
                    by.join(", "),
                    decl.name
                )
            };
            let (p50, p95) = (quantile(0.5), quantile(0.95));
            let suffix = legend(labels, "");
            let legend_of = |q: &str| format!("{q} {suffix}").trim().to_owned();
            let (l50, l95) = (legend_of("p50"), legend_of("p95"));
            let p = panel(
                "timeseries",
                &decl.description,
                &format!("`{}` (histogram): p50 and p95 over `_bucket`", decl.name),
                &[(&p50, &l50), (&p95, &l95)],
                grafana_unit(&decl.unit),
                None,
                plain_thresholds(),
                timeseries_options(),
            );
            (p, 12, 8)
        }
    }
}

fn dashboard(
    uid: &str,
    title: &str,
    description: &str,
    tags: &[&str],
    panels: Vec<Panel>,
) -> Dashboard {
    Dashboard {
        uid: uid.to_owned(),
        title: title.to_owned(),
        description: description.to_owned(),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        editable: true,
        graph_tooltip: 1,
        schema_version: SCHEMA_VERSION,
        version: 1,
        refresh: "1m".to_owned(),
        time: TimeRange {
            from: "now-6h".to_owned(),
            to: "now".to_owned(),
        },
        timezone: "browser".to_owned(),
        templating: Templating {
            list: vec![Variable {
                name: "datasource".to_owned(),
                label: "Prometheus".to_owned(),
                kind: "datasource".to_owned(),
                query: "prometheus".to_owned(),
                hide: 0,
            }],
        },
        panels,
    }
}

fn system_dashboard(contract: &Contract, system: &str) -> Dashboard {
    let mut layout = Layout::new();
    let groups = watched(contract.system_slos(system));
    // Thresholds of SLOs that watch a gauge as it is go onto that gauge's own panel.
    let mut on_metric: BTreeMap<&str, Vec<Threshold>> = BTreeMap::new();
    for group in &groups {
        match watched_metric(contract, &group.value) {
            Some((metric, true))
                if metric.decl.kind == MetricKind::Gauge
                    && promql::parse(&group.value)
                        .is_ok_and(|e| matches!(e, Expr::VectorSelector(_)))
                    && !on_metric.contains_key(metric.decl.name.as_str()) =>
            {
                on_metric.insert(metric.decl.name.as_str(), steps(&group.conditions));
            }
            _ => {}
        }
    }
    if !groups.is_empty() {
        layout.row("Service-level objectives");
        for group in &groups {
            layout.place(slo_panel(contract, group, None), 6, 6);
        }
    }
    let metrics: Vec<&ContractMetric> = contract.system_metrics(system).collect();
    for (title, kinds) in [
        ("Current values", &[MetricKind::Gauge][..]),
        (
            "Rates and distributions",
            &[MetricKind::Counter, MetricKind::Histogram][..],
        ),
    ] {
        let chosen: Vec<&&ContractMetric> = metrics
            .iter()
            .filter(|m| kinds.contains(&m.decl.kind))
            .collect();
        if chosen.is_empty() {
            continue;
        }
        layout.row(title);
        for metric in chosen {
            let (mut p, w, h) = metric_panel(metric);
            if let (Some(steps), Some(config)) = (
                on_metric.get(metric.decl.name.as_str()),
                p.field_config.as_mut(),
            ) {
                config.defaults.thresholds.steps = steps.clone();
            }
            layout.place(p, w, h);
        }
    }
    dashboard(
        &format!("testmeter-{system}"),
        &format!("testmeter / {system}"),
        &format!(
            "Generated by `testmeter dashboards` from the declarations of the plugins for {system}. Do not edit: regenerate."
        ),
        &["testmeter", system],
        layout.panels,
    )
}

fn overview(contract: &Contract) -> Dashboard {
    let mut layout = Layout::new();
    for system in contract.systems() {
        let groups = watched(contract.system_slos(system));
        if groups.is_empty() {
            continue;
        }
        layout.row(&format!("{system}: service-level objectives"));
        for group in &groups {
            layout.place(slo_panel(contract, group, None), 6, 6);
        }
    }
    layout.row("The agent");
    let stale = contract
        .suites
        .iter()
        .map(stale_after)
        .max()
        .unwrap_or_default()
        .as_secs_f64();
    let last = format!("time() - {}", self_metrics::LAST_SUCCESS.name);
    let mut age_steps = vec![Threshold {
        color: "green".to_owned(),
        value: None,
    }];
    if stale > 0.0 {
        age_steps.push(Threshold {
            color: "red".to_owned(),
            value: Some(stale),
        });
    }
    layout.place(
        panel(
            "stat",
            "Time since each suite's last successful run",
            "Red once a suite is stale: past the staleness alert's threshold (3 intervals plus the timeout).",
            &[(&last, "{{suite}}")],
            "s",
            None,
            age_steps,
            stat_options(),
        ),
        12,
        6,
    );
    layout.place(
        panel(
            "stat",
            "Quarantined plugins",
            "1 while a plugin is quarantined after consecutive failures.",
            &[(self_metrics::PLUGIN_QUARANTINED.name, "{{plugin}}")],
            "short",
            None,
            vec![
                Threshold {
                    color: "green".to_owned(),
                    value: None,
                },
                Threshold {
                    color: "red".to_owned(),
                    value: Some(1.0),
                },
            ],
            stat_options(),
        ),
        12,
        6,
    );
    let runs = format!(
        "sum by (suite, result) (rate({}[$__rate_interval]))",
        self_metrics::SUITE_RUNS.name
    );
    let tests = self_metrics::SUITE_TESTS.name;
    // The agent starts both counters at 0 for every loaded plugin and reason.
    let errors = format!(
        "sum by (plugin, reason) (rate({}[$__rate_interval]))",
        self_metrics::PLUGIN_ERRORS.name
    );
    let rejected = format!(
        "sum by (plugin, reason) (rate({}[$__rate_interval]))",
        self_metrics::SAMPLES_REJECTED.name
    );
    let duration = format!(
        "histogram_quantile(0.95, sum by (le, plugin) (rate({}_bucket[$__rate_interval])))",
        self_metrics::PLUGIN_DURATION.name
    );
    let run_duration = format!(
        "histogram_quantile(0.95, sum by (le, suite) (rate({}_bucket[$__rate_interval])))",
        self_metrics::SUITE_RUN_DURATION.name
    );
    // Every state is written, 0 included; passed and skipped are the rest of the suite.
    let history = format!(
        "sum by (suite, state) ({}{{state!~\"passed|skipped\"}})",
        self_metrics::HISTORY_TESTS.name
    );
    for (title, description, queries, unit) in [
        (
            "Suite runs by result (per second)",
            "`testmeter_suite_runs_total`",
            vec![(runs.as_str(), "{{suite}} {{result}}")],
            "short",
        ),
        (
            "Tests of the latest report",
            "`testmeter_suite_tests`",
            vec![(tests, "{{suite}} {{outcome}}")],
            "short",
        ),
        (
            "Tests by history state (latest run)",
            "`testmeter_history_tests`: new failures, failing, fixed, flaky, slower and quarantined tests of each suite's latest run; each suite's page on the agent lists them",
            vec![(history.as_str(), "{{suite}} {{state}}")],
            "short",
        ),
        (
            "Suite run duration p95",
            "`testmeter_suite_run_duration_seconds`",
            vec![(run_duration.as_str(), "{{suite}}")],
            "s",
        ),
        (
            "Plugin derive duration p95",
            "`testmeter_plugin_duration_seconds`",
            vec![(duration.as_str(), "{{plugin}}")],
            "s",
        ),
        (
            "Plugin errors (per second)",
            "`testmeter_plugin_errors_total`",
            vec![(errors.as_str(), "{{plugin}} {{reason}}")],
            "short",
        ),
        (
            "Rejected samples (per second)",
            "`testmeter_samples_rejected_total`",
            vec![(rejected.as_str(), "{{plugin}} {{reason}}")],
            "short",
        ),
    ] {
        layout.place(
            panel(
                "timeseries",
                title,
                description,
                &queries,
                unit,
                None,
                plain_thresholds(),
                timeseries_options(),
            ),
            12,
            8,
        );
    }
    dashboard(
        "testmeter-overview",
        "testmeter / overview",
        "Generated by `testmeter dashboards`: every system's SLOs and the agent's own health. Do not edit: regenerate.",
        &["testmeter"],
        layout.panels,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::SloDecl;

    fn slo(name: &str, expr: &str, severity: &str) -> ContractSlo {
        ContractSlo {
            plugin: "p".to_owned(),
            systems: vec!["s".to_owned()],
            decl: SloDecl {
                name: name.to_owned(),
                expr: expr.to_owned(),
                for_seconds: 300,
                severity: severity.to_owned(),
                summary: String::new(),
            },
        }
    }

    fn colours(slos: &[ContractSlo]) -> Vec<(Option<f64>, String)> {
        let groups = watched(slos.iter());
        assert_eq!(groups.len(), 1);
        steps(&groups[0].conditions)
            .into_iter()
            .map(|t| (t.value, t.color))
            .collect()
    }

    #[test]
    fn a_floor_with_a_warning_and_a_critical_level_colours_three_bands() {
        let slos = [
            slo("Low", "dedup < 30", "warning"),
            slo("Critical", "dedup < 20", "critical"),
        ];
        assert_eq!(
            colours(&slos),
            [
                (None, "red".to_owned()),
                (Some(20.0), "orange".to_owned()),
                (Some(30.0), "green".to_owned())
            ]
        );
    }

    #[test]
    fn a_ceiling_turns_red_above_it() {
        let slos = [
            slo("Target", "latency > 50", "warning"),
            slo("High", "latency > 67", "critical"),
        ];
        assert_eq!(
            colours(&slos),
            [
                (None, "green".to_owned()),
                (Some(50.0), "orange".to_owned()),
                (Some(67.0), "red".to_owned())
            ]
        );
    }
}
