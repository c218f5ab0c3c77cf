//! Checks each declared SLO before alerts, dashboards, the status page and the gate see it:
//! an SLO that Prometheus could not load, or that would route wrongly, is dropped at load with
//! the plugin, the SLO and the problem in the error.

use promql_parser::parser::value::ValueType;

use super::model::{PluginDecl, SloDecl};
use super::validate::CatalogError;

/// The severities an SLO may have (`wit/plugin.wit`); alert routing matches on them.
pub const SEVERITIES: [&str; 3] = ["critical", "warning", "info"];

/// Removes the SLOs of `decl` that are not valid and returns why each was refused.
pub fn retain_valid(decl: &mut PluginDecl) -> Vec<CatalogError> {
    let mut refused = Vec::new();
    decl.slos.retain(|slo| match problem(slo) {
        None => true,
        Some(problem) => {
            refused.push(CatalogError::InvalidSlo {
                plugin: decl.name.clone(),
                slo: slo.name.clone(),
                problem,
            });
            false
        }
    });
    refused
}

/// What is wrong with `slo`, if anything.
fn problem(slo: &SloDecl) -> Option<String> {
    if !is_alert_name(&slo.name) {
        return Some(
            "its name is not a valid alert name (letters, digits and `_`, not starting with a digit)"
                .to_owned(),
        );
    }
    if !SEVERITIES.contains(&slo.severity.as_str()) {
        return Some(format!(
            "severity {:?} is not one of {}",
            slo.severity,
            SEVERITIES.join(", ")
        ));
    }
    match promql_parser::parser::parse(&slo.expr) {
        Err(error) => Some(format!(
            "expression {:?} is not valid PromQL: {}",
            slo.expr,
            error.trim()
        )),
        Ok(expr) => match expr.value_type() {
            ValueType::Vector | ValueType::Scalar => None,
            other => Some(format!(
                "expression {:?} is a {other}, and an alert condition must be an instant vector",
                slo.expr
            )),
        },
    }
}

/// An alert name the agent writes: `[A-Za-z_][A-Za-z0-9_]*`. Prometheus itself accepts any
/// non-empty string, but `alertname` is the label Alertmanager routes and silences on, so
/// the agent keeps it to the portable identifier form the examples and the WIT use.
fn is_alert_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slo(name: &str, expr: &str, severity: &str) -> SloDecl {
        SloDecl {
            name: name.to_owned(),
            expr: expr.to_owned(),
            for_seconds: 60,
            severity: severity.to_owned(),
            summary: "s".to_owned(),
        }
    }

    #[test]
    fn invalid_slos_are_refused_with_the_problem_and_valid_ones_stay() {
        let mut decl = PluginDecl {
            name: "p".to_owned(),
            version: "1".to_owned(),
            systems: vec![],
            metrics: vec![],
            slos: vec![
                slo("RateLow", "rate(x_total[5m]) < 1", "warning"),
                slo("Broken", "rate(x_total[5m] < 1", "warning"),
                slo("Bad Name", "x < 1", "critical"),
                slo("9Lives", "x < 1", "critical"),
                slo("Paging", "x < 1", "page"),
                slo("RangeVector", "x[5m]", "info"),
                slo("Text", "\"breached\"", "info"),
                slo("Scalar", "vector(1) > bool 0", "info"),
            ],
        };
        let refused: Vec<String> = retain_valid(&mut decl)
            .iter()
            .map(ToString::to_string)
            .collect();
        insta::assert_yaml_snapshot!(refused);
        let kept: Vec<&str> = decl.slos.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(kept, ["RateLow", "Scalar"]);
    }
}
